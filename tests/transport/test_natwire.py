"""The NAT glue (pypbx.transport.natwire): the stack's outbound rewrite built from [general]
(externip/externhost/localnet/bindaddr), the externhost refresh, and the inbound force_rport
rewrite. No sockets: the interface probe and the resolver are injected."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx import sipservice_register
from pypbx.config.conf import Origin
from pypbx.config.netaddr import parse_network
from pypbx.config.sipconf import General, NatMode, Registration
from pypbx.sip.message import Request, Response, build_response, make_request
from pypbx.sip.parse import parse_message
from pypbx.sip.sdp import parse_sdp
from pypbx.sip.uri import NameAddr, SipUri
from pypbx.sipservice_register import RegistrationLine
from pypbx.transport import natwire
from pypbx.transport.natwire import Destination, NatGlue, _sent_by
from pypbx.transport.stack import StackConfig

EXTERN = "203.0.113.2"
LAN_IP = "192.168.50.10"
PROVIDER = ("198.51.100.10", 5060)
LAN_PHONE = ("192.168.50.20", 5060)
OTHER_LAN_PHONE = ("192.168.51.10", 5062)
NATTED_PHONE = ("203.0.113.3", 40123)

SDP = (
    f"v=0\r\no=pypbx 7 1 IN IP4 {LAN_IP}\r\ns=pypbx\r\nc=IN IP4 {LAN_IP}\r\nt=0 0\r\n"
    "m=audio 10000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
).encode()


def general(**kw: object) -> General:
    base: dict[str, object] = {"bindaddr": LAN_IP}
    base.update(kw)
    return dataclasses.replace(General(), **base)  # type: ignore[arg-type]


def nets(*texts: str) -> tuple[object, ...]:
    return tuple(parse_network(t) for t in texts)


TUTORIAL = general(externaddr=EXTERN, localnet=nets("192.168.50.0/24", "192.168.51.0/24"))


def invite(host: str = LAN_IP, port: int = 5060, *, body: bytes = SDP) -> bytes:
    req = make_request(
        "INVITE",
        "sip:18002223333@198.51.100.10",
        from_=f"<sip:acct1@{host}>;tag=a1",
        to="<sip:18002223333@198.51.100.10>",
        call_id=f"c1@{host}",
        cseq=1,
        via=f"SIP/2.0/UDP {host}:{port};branch=z9hG4bKnat1;rport",
        contact=f"<sip:s@{host}:{port}>",
        body=body,
        content_type="application/sdp" if body else None,
    )
    return bytes(req)


def register_ok(contact: str) -> bytes:
    reg = make_request(
        "REGISTER",
        f"sip:{LAN_IP}",
        from_="<sip:1000@pbx>;tag=r1",
        to="<sip:1000@pbx>",
        call_id="r1@phone",
        cseq=3,
        via="SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bKreg;received=203.0.113.3;rport=40123",
        contact=contact,
    )
    ok = build_response(reg, 200, to_tag="t1")
    ok.headers.add("Contact", contact + ";expires=600")
    return bytes(ok)


def parsed(data: bytes) -> Request | Response:
    return parse_message(data)


def addresses(data: bytes) -> tuple[str, str, str, str]:
    """(Via sent-by, Contact host:port, o= address, c= address) of a message we sent."""
    msg = parsed(data)
    via = msg.top_via
    contact = msg.contact[0]
    assert isinstance(contact, NameAddr)
    uri = contact.uri
    assert isinstance(uri, SipUri)
    sd = parse_sdp(msg.body)
    assert sd.connection is not None
    return (
        f"{via.host}:{via.port}",
        f"{uri.host}:{uri.port}",
        sd.origin.address,
        sd.connection.host,
    )


# --- when is there a rewrite at all ------------------------------------------------------------


@pytest.mark.parametrize(
    ("gen", "active"),
    [
        (general(), False),  # specific bindaddr, nothing to remap
        (general(externaddr=EXTERN), False),  # chan_sip remaps only with a localnet
        (general(localnet=nets("192.168.50.0/24")), False),  # nothing to remap to
        (TUTORIAL, True),
        (general(externhost="pbx.example.net", localnet=nets("192.168.50.0/24")), True),
        (general(bindaddr="0.0.0.0"), True),  # the loopback placeholder must be replaced
        (general(bindaddr="::"), True),
    ],
)
def test_rewrite_is_installed_only_when_a_rule_can_apply(gen: General, active: bool) -> None:
    assert (NatGlue(gen, local_ip=lambda ip: LAN_IP).rewrite is not None) is active


@pytest.mark.parametrize(
    ("dest", "kind"),
    [
        ("198.51.100.10", Destination.OUTSIDE),
        ("203.0.113.3", Destination.OUTSIDE),
        ("192.168.50.20", Destination.INSIDE),
        ("192.168.51.10", Destination.INSIDE),  # the second localnet
        ("192.168.52.1", Destination.OUTSIDE),
        ("127.0.0.1", Destination.LOOPBACK),
        ("::1", Destination.LOOPBACK),
        ("2001:db8::1", Destination.INSIDE),  # IPv6 is never remapped
        ("::ffff:198.51.100.10", Destination.OUTSIDE),
        ("not-an-ip", Destination.LOOPBACK),
    ],
)
def test_destinations_are_classified_by_localnet(dest: str, kind: Destination) -> None:
    assert NatGlue(TUTORIAL).classify(dest) is kind


# --- externip + localnet -----------------------------------------------------------------------


def test_outside_destination_gets_external_address_everywhere() -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    out = glue.rewrite("UDP", invite(), PROVIDER)
    assert addresses(out) == (f"{EXTERN}:5060", f"{EXTERN}:5060", EXTERN, EXTERN)
    assert LAN_IP.encode() not in out.split(b"\r\n")[1]  # the Via line
    assert f"From: <sip:acct1@{EXTERN}>;tag=a1".encode() in out  # chan_sip's ourip
    msg = parsed(out)
    assert msg.top_via.branch == "z9hG4bKnat1"
    assert msg.top_via.has_rport
    assert int(msg.headers.get("Content-Length") or 0) == len(msg.body)
    assert b"m=audio 10000 RTP/AVP 0" in msg.body  # the media port is kept
    assert glue.rewritten == 1


@pytest.mark.parametrize("dest", [LAN_PHONE, OTHER_LAN_PHONE, ("127.0.0.1", 5060)])
def test_inside_destination_is_untouched_and_not_parsed(
    dest: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None

    def no_parse(data: bytes) -> None:
        raise AssertionError("parsed a message that needs no change")

    monkeypatch.setattr(natwire, "parse_message", no_parse)
    data = invite()
    assert glue.rewrite("UDP", data, dest) is data
    assert glue.rewritten == 0


@pytest.mark.parametrize(
    ("from_", "expected"),
    [
        (f"<sip:acct1@{LAN_IP}>;tag=f", f"<sip:acct1@{EXTERN}>;tag=f"),
        ('"Bob" <sip:1000@127.0.0.1>;tag=f', f"Bob <sip:1000@{EXTERN}>;tag=f"),  # a token name
        # someone else's URI (our To as a UAS, a fromdomain): kept
        ("<sip:18182223333@198.51.100.10>;tag=f", "<sip:18182223333@198.51.100.10>;tag=f"),
        ("<sip:acct1@provider.test>;tag=f", "<sip:acct1@provider.test>;tag=f"),
        ("<tel:+18182223333>;tag=f", "<tel:+18182223333>;tag=f"),
    ],
)
def test_from_host_is_remapped_only_when_it_names_us(from_: str, expected: str) -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    req = parsed(invite())
    assert isinstance(req, Request)
    req.headers.set("From", from_)
    out = parsed(glue.rewrite("UDP", bytes(req), PROVIDER))
    assert out.headers.get("From") == expected
    assert out.from_.tag == "f"


def test_externport_is_used_for_via_and_contact() -> None:
    glue = NatGlue(dataclasses.replace(TUTORIAL, externport=5099))
    assert glue.rewrite is not None
    out = glue.rewrite("UDP", invite(port=5060), PROVIDER)
    assert addresses(out)[:2] == (f"{EXTERN}:5099", f"{EXTERN}:5099")


def test_without_externport_our_own_port_is_kept() -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    out = glue.rewrite("UDP", invite(port=5080), PROVIDER)
    assert addresses(out)[:2] == (f"{EXTERN}:5080", f"{EXTERN}:5080")


def test_response_to_natted_phone_carries_external_contact_and_sdp() -> None:
    req = parse_message(invite(host="192.168.60.10"))
    assert isinstance(req, Request)
    ok = build_response(req, 200, to_tag="x", body=SDP)
    ok.headers.set("Content-Type", "application/sdp")
    ok.headers.add("Contact", f"<sip:{LAN_IP}:5060>")
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    out = parsed(glue.rewrite("UDP", bytes(ok), NATTED_PHONE))
    # the Via is the phone's: a response never rewrites it
    assert out.top_via.host == "192.168.60.10"
    assert str(out.contact[0]) == f"<sip:{EXTERN}:5060>"
    assert parse_sdp(out.body).origin.address == EXTERN


def test_register_response_keeps_the_phone_contacts() -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    data = register_ok("<sip:1000@192.168.60.10:5060>")
    assert glue.rewrite("UDP", data, NATTED_PHONE) == data


def test_message_without_sdp_rewrites_via_and_contact_only() -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    out = parsed(glue.rewrite("UDP", invite(body=b""), PROVIDER))
    assert (out.top_via.host, out.body) == (EXTERN, b"")


def test_unparsable_bytes_go_out_unchanged() -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    assert glue.rewrite("UDP", b"\r\n\r\n", PROVIDER) == b"\r\n\r\n"
    assert glue.rewrite("UDP", b"garbage 192.168.50.10", PROVIDER) == b"garbage 192.168.50.10"


_octet = st.integers(0, 255)


@given(
    inside=st.tuples(st.sampled_from([50, 51]), _octet).map(lambda t: f"192.168.{t[0]}.{t[1]}"),
    outside=st.tuples(st.integers(1, 126), _octet, _octet, st.integers(1, 254)).map(
        lambda t: ".".join(map(str, t))
    ),
)
def test_inside_untouched_and_outside_never_leaks_the_lan(inside: str, outside: str) -> None:
    glue = NatGlue(TUTORIAL)
    assert glue.rewrite is not None
    data = invite()
    assert glue.rewrite("UDP", data, (inside, 5060)) is data
    if outside.startswith(("10.", "192.168.50.", "192.168.51.")):
        return
    out = glue.rewrite("UDP", data, (outside, 5060))
    assert addresses(out) == (f"{EXTERN}:5060", f"{EXTERN}:5060", EXTERN, EXTERN)


# --- wildcard bindaddr -------------------------------------------------------------------------


def test_wildcard_bind_replaces_loopback_placeholder_toward_the_lan() -> None:
    probed: list[str] = []

    def local_ip(dest: str) -> str:
        probed.append(dest)
        return LAN_IP

    glue = NatGlue(general(bindaddr="0.0.0.0"), local_ip=local_ip)
    assert glue.rewrite is not None
    data = invite(host="127.0.0.1")
    out = glue.rewrite("UDP", data, LAN_PHONE)
    assert addresses(out) == (f"{LAN_IP}:5060", f"{LAN_IP}:5060", LAN_IP, LAN_IP)
    assert parsed(out).headers.get("From") == f"<sip:acct1@{LAN_IP}>;tag=a1"
    glue.rewrite("UDP", data, LAN_PHONE)
    assert probed == [LAN_PHONE[0]]  # the interface probe is cached per destination
    # toward loopback the placeholder is right
    assert glue.rewrite("UDP", data, ("127.0.0.1", 5070)) is data
    # a message that already carries a real address is not parsed again
    plain = invite(host=LAN_IP)
    assert glue.rewrite("UDP", plain, LAN_PHONE) is plain


def test_wildcard_bind_with_externip_outside_uses_external() -> None:
    gen = dataclasses.replace(TUTORIAL, bindaddr="0.0.0.0")
    glue = NatGlue(gen, local_ip=lambda ip: LAN_IP)
    assert glue.rewrite is not None
    out = glue.rewrite("UDP", invite(host="127.0.0.1"), PROVIDER)
    assert addresses(out) == (f"{EXTERN}:5060", f"{EXTERN}:5060", EXTERN, EXTERN)
    inside = glue.rewrite("UDP", invite(host="127.0.0.1"), OTHER_LAN_PHONE)
    assert addresses(inside)[0] == f"{LAN_IP}:5060"


def test_wildcard_bind_outside_remaps_the_interface_address_in_from() -> None:
    # glue such as qualify writes the interface address itself (not the placeholder)
    gen = dataclasses.replace(TUTORIAL, bindaddr="0.0.0.0")
    glue = NatGlue(gen, local_ip=lambda ip: LAN_IP)
    assert glue.rewrite is not None
    out = parsed(glue.rewrite("UDP", invite(host=LAN_IP), NATTED_PHONE))
    assert out.headers.get("From") == f"<sip:acct1@{EXTERN}>;tag=a1"
    assert addresses(bytes(out))[:2] == (f"{EXTERN}:5060", f"{EXTERN}:5060")


def test_wildcard_bind_without_route_leaves_message() -> None:
    glue = NatGlue(general(bindaddr="0.0.0.0"), local_ip=lambda ip: None)
    assert glue.rewrite is not None
    data = invite(host="127.0.0.1")
    assert glue.rewrite("UDP", data, LAN_PHONE) is data


# --- externhost --------------------------------------------------------------------------------


class FakeDns:
    def __init__(self, *answers: list[str] | OSError) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        answer = self.answers.pop(0)
        if isinstance(answer, OSError):
            raise answer
        return answer


def test_externhost_is_resolved_in_the_background_and_refreshed() -> None:
    now = [100.0]
    dns = FakeDns(["203.0.113.7"], OSError("SERVFAIL"), ["2001:db8::9", "203.0.113.8"])
    gen = general(
        externhost="pbx.example.net:5090",
        externrefresh=30,
        localnet=nets("192.168.50.0/24"),
    )

    async def scenario() -> list[tuple[str, int] | None]:
        glue = NatGlue(gen, clock=lambda: now[0], resolver=dns)
        rewrite = glue.rewrite
        assert rewrite is not None
        seen: list[tuple[str, int] | None] = []

        def via() -> tuple[str, int] | None:
            out = parsed(rewrite("UDP", invite(), PROVIDER))
            host, port = out.top_via.host, out.top_via.port
            return None if host == LAN_IP else (host, port or 0)

        seen.append(via())  # the first lookup is still running: untouched
        await asyncio.sleep(0)
        seen.append(via())
        now[0] += 10
        seen.append(via())  # not due: no new lookup
        now[0] += 25
        seen.append(via())  # due: lookup started, the old address stays meanwhile
        await asyncio.sleep(0)
        seen.append(via())  # the lookup failed: still the old address
        now[0] += 31
        via()
        await asyncio.sleep(0)
        seen.append(via())  # IPv6 answers are skipped
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        None,
        ("203.0.113.7", 5090),
        ("203.0.113.7", 5090),
        ("203.0.113.7", 5090),
        ("203.0.113.7", 5090),
        ("203.0.113.8", 5090),
    ]
    assert dns.asked == [("pbx.example.net", 5090)] * 3


def test_externhost_refresh_can_be_awaited() -> None:
    gen = general(externhost="pbx.example.net", localnet=nets("192.168.50.0/24"))
    glue = NatGlue(gen, resolver=FakeDns(["203.0.113.9"]))  # no loop: nothing started
    assert glue.external is None
    assert asyncio.run(glue.refresh()) == "203.0.113.9"
    assert glue.policy.external == ("203.0.113.9", None)


def test_resolved_externhost_wins_over_externip() -> None:
    gen = dataclasses.replace(TUTORIAL, externhost="pbx.example.net")
    glue = NatGlue(gen, resolver=FakeDns(["203.0.113.9"]))
    assert glue.policy.external == (EXTERN, None)
    asyncio.run(glue.refresh())
    assert glue.policy.external == ("203.0.113.9", None)


# --- inbound force_rport -----------------------------------------------------------------------


def phone_register(
    via_host: str = "192.168.60.10", rport: bool = False, branch: str = "z9hG4bKph"
) -> bytes:
    req = make_request(
        "REGISTER",
        "sip:203.0.113.2",
        from_="<sip:1000@203.0.113.2>;tag=p1",
        to="<sip:1000@203.0.113.2>",
        call_id="p1@phone",
        cseq=1,
        via=f"SIP/2.0/UDP {via_host}:5060;branch={branch}" + (";RPort" if rport else ""),
        contact=f"<sip:1000@{via_host}:5060>",
    )
    return bytes(req)


FR = NatMode.FORCE_RPORT
CO = NatMode.COMEDIA
AFR = NatMode.AUTO_FORCE_RPORT


@pytest.mark.parametrize(
    ("modes", "via_host", "adds"),
    [
        (frozenset({FR}), "192.168.60.10", True),  # the default nat=force_rport
        (frozenset({FR, CO}), "192.168.60.10", True),  # nat=yes
        (frozenset(), "192.168.60.10", False),  # nat=no
        (frozenset({CO}), "192.168.60.10", False),  # comedia alone
        (frozenset({AFR}), "192.168.60.10", True),  # auto: sent-by != source
        (frozenset({AFR}), "203.0.113.3", False),  # auto: no NAT seen
    ],
)
def test_inbound_force_rport_adds_rport(
    modes: frozenset[NatMode], via_host: str, adds: bool
) -> None:
    glue = NatGlue(general(nat=modes))
    data = phone_register(via_host)
    out = glue.inbound("UDP", data, NATTED_PHONE)
    via = parsed(out).top_via
    assert via.has_rport is adds
    assert via.branch == "z9hG4bKph"
    if not adds:
        assert out is data


@pytest.mark.parametrize(
    ("transport", "data"),
    [
        ("UDP", phone_register(rport=True)),  # asked for rport already
        ("TCP", phone_register()),  # the connection is the way back
        ("UDP", register_ok("<sip:1000@192.168.60.10>")),  # a response
        ("UDP", b"REGISTER sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n"),  # no Via: the endpoint's 400
    ],
)
def test_inbound_leaves_other_messages(transport: str, data: bytes) -> None:
    assert NatGlue(general(nat=frozenset({FR}))).inbound(transport, data, NATTED_PHONE) is data


def test_inbound_is_not_fooled_by_rport_letters_elsewhere() -> None:
    glue = NatGlue(general(nat=frozenset({FR})))
    data = phone_register(branch="z9hG4bKnorport1")
    via = parsed(glue.inbound("UDP", data, NATTED_PHONE)).top_via
    assert via.has_rport
    assert via.branch == "z9hG4bKnorport1"


def test_inbound_uses_the_peer_nat_setting() -> None:
    calls: list[str] = []

    def peer_nat(request: Request, source: tuple[str, int]) -> frozenset[NatMode] | None:
        calls.append(request.method)
        return frozenset() if request.from_.uri.user == "2000" else None  # type: ignore[union-attr]

    glue = NatGlue(general(nat=frozenset({FR})), peer_nat=peer_nat)
    data = phone_register()
    assert parsed(glue.inbound("UDP", data, NATTED_PHONE)).top_via.has_rport
    other = data.replace(b"sip:1000@", b"sip:2000@")
    assert glue.inbound("UDP", other, NATTED_PHONE) is other
    assert calls == ["REGISTER", "REGISTER"]


# --- the trunk REGISTER Contact (sipservice_register) ------------------------------------------


class _FakeStack:
    """What RegistrationLine.contact_address reads from the stack."""

    def __init__(self, bindaddr: str) -> None:
        self.config = StackConfig(bindaddr=bindaddr, bindport=5060)
        self.local_addr = (bindaddr, 5060)


@pytest.mark.parametrize(
    ("gen", "provider_ip", "answers", "expected"),
    [
        (TUTORIAL, PROVIDER[0], [], (EXTERN, 5060)),
        (TUTORIAL, "192.168.51.7", [], (LAN_IP, 5060)),  # a provider inside a localnet
        (dataclasses.replace(TUTORIAL, externport=5099), PROVIDER[0], [], (EXTERN, 5099)),
        (
            general(externhost="pbx.example.net", localnet=nets("192.168.50.0/24")),
            PROVIDER[0],
            ["203.0.113.9"],
            ("203.0.113.9", 5060),
        ),
        # the externhost lookup failed: externip, else the local address
        (
            dataclasses.replace(TUTORIAL, externhost="pbx.example.net"),
            PROVIDER[0],
            OSError("no such name"),
            (EXTERN, 5060),
        ),
        (general(), PROVIDER[0], [], (LAN_IP, 5060)),
    ],
)
def test_trunk_register_contact_address(
    gen: General,
    provider_ip: str,
    answers: list[str] | OSError,
    expected: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if isinstance(answers, OSError):
            raise answers
        return answers

    monkeypatch.setattr(sipservice_register, "resolve_host", resolve)
    reg = Registration("acct1", "provider.test", Origin("sip.conf", 3))
    line = RegistrationLine(
        reg,
        gen,
        _FakeStack(gen.bindaddr),  # type: ignore[arg-type]
        clock=lambda: 1000.0,
    )
    line.dest = (provider_ip, 5060)
    assert asyncio.run(line.contact_address()) == expected
    assert asked == (["pbx.example.net"] if gen.externhost else [])
    # externhost is looked at again only after externrefresh
    assert not line._contact_due() or gen.externhost is None


@pytest.mark.parametrize(
    ("source", "untouched"),
    [
        (("192.168.60.10", 5060), True),  # sent-by is the source: the Via already leads back
        (("192.168.60.10", 40000), False),  # same host, another port (a NAT keeping the IP)
        (("192.168.60.11", 5060), False),
    ],
)
def test_inbound_forces_rport_only_when_the_via_does_not_lead_back(
    source: tuple[str, int], untouched: bool
) -> None:
    data = phone_register()
    out = NatGlue(general(nat=frozenset({FR}))).inbound("UDP", data, source)
    assert (out is data) is untouched
    assert parsed(out).top_via.has_rport is not untouched


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b" SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKa", ("10.0.0.1", 5062)),
        (b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", ("10.0.0.1", 5060)),
        (b"SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKa", ("2001:db8::1", 5070)),
        (b"SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKa", ("2001:db8::1", 5060)),
        (b"SIP/2.0/UDP 10.0.0.1:50x0", None),
        (b"garbage", None),
    ],
)
def test_sent_by_of_a_raw_via_value(value: bytes, expected: tuple[str, int] | None) -> None:
    assert _sent_by(value) == expected
