"""SRV lookups (RFC 2782 / RFC 3263 §4.2): message building and parsing, the pick, and a
``register =>`` line without a port following the SRV answer of a fake DNS server on
loopback."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.sipservice import SipService
from pypbx.sipservice_dns import (
    SrvRecord,
    build_srv_query,
    nameservers,
    parse_srv_answer,
    pick,
    query_srv,
    srv_name,
)
from tests.interop.sipp import free_port
from tests.test_sipservice import FakeProvider, make_pbx, write_conf


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\x00"


def srv_answer(query: bytes, records: list[SrvRecord], *, rcode: int = 0) -> bytes:
    """An answer to ``query``: the question copied, the targets written uncompressed, the
    owner names as a pointer to the question (offset 12)."""
    qid = struct.unpack("!H", query[:2])[0]
    header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
    body = query[12:]
    for r in records:
        rdata = struct.pack("!HHH", r.priority, r.weight, r.port) + encode_name(r.target)
        body += b"\xc0\x0c" + struct.pack("!HHIH", 33, 1, 60, len(rdata)) + rdata
    return header + body


RECORDS = [
    SrvRecord(20, 0, 5070, "backup.example.test"),
    SrvRecord(10, 5, 5080, "small.example.test"),
    SrvRecord(10, 50, 5090, "big.example.test"),
]


def test_srv_name_and_query_shape() -> None:
    assert srv_name("example.test.", "UDP") == "_sip._udp.example.test"
    query = build_srv_query("_sip._udp.example.test", 0x1234)
    assert query[:2] == b"\x12\x34"
    assert query.endswith(encode_name("_sip._udp.example.test") + b"\x00\x21\x00\x01")


def test_answer_round_trip_and_pick() -> None:
    query = build_srv_query("_sip._udp.example.test", 7)
    records = parse_srv_answer(srv_answer(query, RECORDS), 7)
    assert records == RECORDS
    assert pick(records) == RECORDS[2]  # lowest priority, then highest weight
    assert pick([]) is None


@pytest.mark.parametrize(
    ("mutate", "qid"),
    [
        pytest.param(lambda a: a, 8, id="other-id"),
        pytest.param(lambda a: a[:-3], 7, id="truncated"),
        pytest.param(lambda a: a[:2] + b"\x81\x83" + a[4:], 7, id="nxdomain"),
        pytest.param(lambda a: b"", 7, id="empty"),
    ],
)
def test_bad_answers_give_no_records(mutate: object, qid: int) -> None:
    query = build_srv_query("_sip._udp.example.test", 7)
    answer = mutate(srv_answer(query, RECORDS))  # type: ignore[operator]
    assert parse_srv_answer(answer, qid) == []


@given(st.binary(max_size=300))
def test_any_bytes_parse_to_records_or_nothing(data: bytes) -> None:
    records = parse_srv_answer(data, int.from_bytes(data[:2] or b"\x00", "big"))
    assert isinstance(records, list)


def test_nameservers_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# x\nsearch lan\nnameserver 192.0.2.1\nnameserver  192.0.2.2\n")
    assert nameservers(conf) == ["192.0.2.1", "192.0.2.2"]
    assert nameservers(tmp_path / "missing") == ["127.0.0.1"]


class FakeDns(asyncio.DatagramProtocol):
    def __init__(self, records: list[SrvRecord]) -> None:
        self.records = records
        self.names: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.names.append(data[12:-4])
        assert self.transport is not None
        self.transport.sendto(srv_answer(data, self.records), addr)


def test_query_srv_against_a_fake_server_and_a_silent_one() -> None:
    async def main() -> list[SrvRecord]:
        loop = asyncio.get_running_loop()
        port = free_port("127.0.0.1")
        silent = free_port("127.0.0.1")
        transport, _ = await loop.create_datagram_endpoint(
            lambda: FakeDns(RECORDS), local_addr=("127.0.0.1", port)
        )
        try:
            return await query_srv(
                "_sip._udp.example.test",
                servers=[("127.0.0.1", silent), ("127.0.0.1", port)],
                query_id=lambda: 99,
                timeout=0.2,
            )
        finally:
            transport.close()

    assert asyncio.run(main()) == RECORDS


def test_register_line_without_port_follows_srv(tmp_path: Path) -> None:
    pbx_port = free_port("127.0.0.1")
    provider = FakeProvider()
    dns: list[FakeDns] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await provider.stack.start()
        target = SrvRecord(10, 10, provider.stack.local_addr[1], "127.0.0.1")
        dns.append(FakeDns([target]))
        dport = free_port("127.0.0.1")
        transport, _ = await loop.create_datagram_endpoint(
            lambda: dns[0], local_addr=("127.0.0.1", dport)
        )
        write_conf(tmp_path, pbx_port, general="register => acct1:pw@sip.example.test/55")
        pbx = make_pbx(tmp_path)
        svc = SipService(dns_servers=[("127.0.0.1", dport)])
        await svc.start(pbx)
        try:
            for _ in range(200):
                if provider.requests:
                    break
                await asyncio.sleep(0.01)
        finally:
            await svc.stop()
            transport.close()
            await provider.stack.close()

    asyncio.run(main())
    assert dns[0].names[0] == encode_name("_sip._udp.sip.example.test")
    assert provider.requests, "the REGISTER did not reach the SRV target"
    assert provider.requests[0].uri_text == "sip:sip.example.test"
