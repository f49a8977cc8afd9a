"""DNS SRV lookups for SIP servers without blocking the loop (RFC 3263 §4.2, RFC 2782,
RFC 1035 §4 message format).

``srvlookup=yes`` in sip.conf: a ``register =>`` host given without a port is looked up as
``_sip._udp.<host>`` (``_sip._tcp`` for TCP); the record with the lowest priority wins, the
highest weight among equals (a deterministic pick: pypbx has one target per line). No record,
no answer or a broken answer falls back to the plain host name on port 5060, as chan_sip
does. One UDP query to each ``nameserver`` of /etc/resolv.conf in turn, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SrvRecord",
    "build_srv_query",
    "nameservers",
    "parse_srv_answer",
    "pick",
    "query_srv",
    "srv_name",
]

TYPE_SRV = 33
CLASS_IN = 1
DNS_PORT = 53


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


def srv_name(host: str, transport: str) -> str:
    """``_sip._udp.example.com`` for a host and a transport (udp/tcp)."""
    return f"_sip._{transport.lower()}.{host.rstrip('.')}"


def build_srv_query(name: str, query_id: int) -> bytes:
    """A recursive query for the SRV records of ``name``."""
    header = struct.pack("!HHHHHH", query_id & 0xFFFF, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        bytes([len(part)]) + part for part in (p.encode("idna") for p in name.split(".") if p)
    )
    return header + labels + b"\x00" + struct.pack("!HH", TYPE_SRV, CLASS_IN)


class _Truncated(Exception):
    """The answer ends or points outside itself."""


def _name(data: bytes, offset: int) -> tuple[str, int]:
    """A possibly compressed name at ``offset``; returns it and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounds pointer loops
        if offset >= len(data):
            raise _Truncated
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise _Truncated
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    raise _Truncated


def parse_srv_answer(data: bytes, query_id: int) -> list[SrvRecord]:
    """The SRV records of an answer to our query (empty for an error, another id or junk)."""
    try:
        if len(data) < 12:
            return []
        qid, flags, qdcount, ancount = struct.unpack("!HHHH", data[:8])
        if qid != query_id or not flags & 0x8000 or flags & 0x000F:
            return []
        offset = 12
        for _ in range(qdcount):
            _, offset = _name(data, offset)
            offset += 4
        records: list[SrvRecord] = []
        for _ in range(ancount):
            _, offset = _name(data, offset)
            if offset + 10 > len(data):
                raise _Truncated
            rtype, rclass, _ttl, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
            offset += 10
            if rtype == TYPE_SRV and rclass == CLASS_IN and rdlength >= 7:
                priority, weight, port = struct.unpack("!HHH", data[offset : offset + 6])
                target, _ = _name(data, offset + 6)
                if target:
                    records.append(SrvRecord(priority, weight, port, target))
            offset += rdlength
        return records
    except (_Truncated, struct.error):
        return []


def pick(records: list[SrvRecord]) -> SrvRecord | None:
    """Lowest priority, then highest weight (RFC 2782 order without the random draw)."""
    usable = [r for r in records if r.target != "."]
    return min(usable, key=lambda r: (r.priority, -r.weight)) if usable else None


def nameservers(resolv_conf: str | Path = "/etc/resolv.conf") -> list[str]:
    """The ``nameserver`` lines of resolv.conf (127.0.0.1 when there are none)."""
    try:
        text = Path(resolv_conf).read_text()
    except OSError:
        return ["127.0.0.1"]
    found = [
        line.split()[1]
        for line in text.splitlines()
        if line.strip().startswith("nameserver") and len(line.split()) > 1
    ]
    return found or ["127.0.0.1"]


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if not self.future.done():
            self.future.set_result(data)


async def query_srv(
    name: str,
    *,
    servers: list[tuple[str, int]],
    query_id: Callable[[], int],
    timeout: float = 2.0,
) -> list[SrvRecord]:
    """Ask each server in turn for ``name``'s SRV records; the first usable answer wins."""
    loop = asyncio.get_running_loop()
    for host, port in servers:
        qid = query_id() & 0xFFFF
        future: asyncio.Future[bytes] = loop.create_future()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda future=future: _Answer(future),  # type: ignore[misc]
                remote_addr=(host, port),
            )
        except OSError:
            continue
        try:
            transport.sendto(build_srv_query(name, qid))
            with contextlib.suppress(TimeoutError):
                records = parse_srv_answer(await asyncio.wait_for(future, timeout), qid)
                if records:
                    return records
        finally:
            transport.close()
    return []
