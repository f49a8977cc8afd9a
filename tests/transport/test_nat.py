"""NAT rules (pypbx.transport.nat) against chan_sip's behaviour, table by table."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.config.conf import parse_text
from pypbx.config.netaddr import Network, parse_network
from pypbx.config.sipconf import General, NatMode, SipConfig, parse_sip_conf
from pypbx.sip.events import Addr
from pypbx.sip.headers import Via, parse_via
from pypbx.sip.message import Request, Response, build_response, make_request
from pypbx.sip.parse import parse_message
from pypbx.sip.sdp import parse_sdp
from pypbx.sip.uri import SipUri
from pypbx.transport.nat import (
    MediaTarget,
    NatPolicy,
    contact_target,
    effective_nat,
    force_rport_label,
    media_target,
    nat_detected,
    nat_label,
    remap_message,
    response_target,
    rewrite_contact,
    rewrite_from_host,
    rewrite_message,
    rewrite_sdp,
    rewrite_via,
    stamp_via,
)

FR = NatMode.FORCE_RPORT
CO = NatMode.COMEDIA
AFR = NatMode.AUTO_FORCE_RPORT
ACO = NatMode.AUTO_COMEDIA

_octet = st.integers(0, 255)
_ipv4 = st.tuples(_octet, _octet, _octet, _octet).map(lambda t: ".".join(map(str, t)))

EXTERN = "203.0.113.5"
LAN = ("192.168.0.10", 5060)


def sip(text: str) -> SipConfig:
    return parse_sip_conf(parse_text(textwrap.dedent(text), "sip.conf"))


# The tutorial's [general] NAT lines and its phone.
TUTORIAL = sip(
    f"""
    [general]
    nat=yes
    externip={EXTERN}
    localnet=192.168.0.0/255.255.255.0

    [1000]
    type=friend
    nat=yes
    host=dynamic
    """
)


def general(**kw: object) -> General:
    return dataclasses.replace(General(), **kw)  # type: ignore[arg-type]


def nets(*texts: str) -> tuple[Network, ...]:
    return tuple(parse_network(t) for t in texts)


# --- our_address -------------------------------------------------------------------------------


def test_tutorial_config_parses_into_policy() -> None:
    g = TUTORIAL.general
    assert g.externaddr == EXTERN
    assert g.localnet == nets("192.168.0.0/24")
    assert TUTORIAL.peers["1000"].nat == frozenset({FR, CO})
    policy = NatPolicy(g)
    assert policy.our_address("198.51.100.7", LAN) == (EXTERN, 5060)
    assert policy.our_address("192.168.0.33", LAN) == LAN


SEVERAL = general(
    externaddr=EXTERN,
    localnet=nets("192.168.0.0/24", "10.0.0.0/8", "172.16.0.0/12"),
)


@pytest.mark.parametrize(
    ("gen", "dest", "local", "expected"),
    [
        # outside every localnet: external address, our port when externip has none
        (SEVERAL, "198.51.100.7", ("192.168.0.10", 5060), (EXTERN, 5060)),
        (SEVERAL, "198.51.100.7", ("192.168.0.10", 5070), (EXTERN, 5070)),
        # inside any of several localnets: the local address
        (SEVERAL, "192.168.0.200", ("192.168.0.10", 5060), ("192.168.0.10", 5060)),
        (SEVERAL, "10.20.30.40", ("10.0.0.1", 5060), ("10.0.0.1", 5060)),
        (SEVERAL, "172.31.255.254", ("172.16.0.1", 5060), ("172.16.0.1", 5060)),
        (SEVERAL, "172.32.0.1", ("172.16.0.1", 5060), (EXTERN, 5060)),
        # externip=host:port: that port
        (
            general(externaddr=EXTERN, externport=5099, localnet=nets("192.168.0.0/24")),
            "198.51.100.7",
            ("192.168.0.10", 5060),
            (EXTERN, 5099),
        ),
        # externaddr without any localnet: chan_sip never remaps (want_remap needs localaddr)
        (general(externaddr=EXTERN), "198.51.100.7", LAN, LAN),
        # localnet without externaddr: nothing to remap to
        (general(localnet=nets("192.168.0.0/24")), "198.51.100.7", LAN, LAN),
        # IPv6 destinations are never remapped; v4-mapped ones are IPv4
        (SEVERAL, "2001:db8::1", ("2001:db8::5", 5060), ("2001:db8::5", 5060)),
        (SEVERAL, "::ffff:198.51.100.7", LAN, (EXTERN, 5060)),
        (SEVERAL, "::ffff:192.168.0.9", LAN, LAN),
        # a specific bindaddr is used as such
        (general(bindaddr="192.168.0.2"), "192.168.0.33", ("0.0.0.0", 5060), ("192.168.0.2", 5060)),
        # the glue reports port 0: bindport
        (general(bindport=5080), "192.168.0.33", ("192.168.0.10", 0), ("192.168.0.10", 5080)),
        # a host name destination cannot be classified: local address
        (SEVERAL, "sip.example.net", LAN, LAN),
    ],
)
def test_our_address(gen: General, dest: str, local: Addr, expected: Addr) -> None:
    assert NatPolicy(gen).our_address(dest, local) == expected


def test_our_address_never_wildcard() -> None:
    with pytest.raises(ValueError, match="interface address"):
        NatPolicy(General()).our_address("192.168.0.33", ("0.0.0.0", 5060))
    with pytest.raises(ValueError, match="interface address"):
        NatPolicy(General()).our_address("::1", ("::", 5060))


def test_our_address_ipv6_local_unbracketed() -> None:
    assert NatPolicy(General()).our_address("::1", ("[::1]", 5060)) == ("::1", 5060)


EXTERNHOST = general(
    externhost="pbx.example.net:5090",
    externrefresh=30,
    localnet=nets("192.168.0.0/24"),
)


@pytest.mark.parametrize(
    ("gen", "resolved", "expected"),
    [
        # the glue resolved externhost: its address, the port written in externhost
        (EXTERNHOST, "203.0.113.77", ("203.0.113.77", 5090)),
        # no port in externhost: our port
        (dataclasses.replace(EXTERNHOST, externhost="pbx.example.net"), "203.0.113.77",
         ("203.0.113.77", 5060)),
        # not resolved yet and no externaddr: local address
        (EXTERNHOST, None, LAN),
        # not resolved: externaddr is the fallback
        (dataclasses.replace(EXTERNHOST, externaddr=EXTERN), None, (EXTERN, 5060)),
        # resolved externhost wins over externaddr
        (dataclasses.replace(EXTERNHOST, externaddr=EXTERN), "203.0.113.77",
         ("203.0.113.77", 5090)),
    ],
)  # fmt: skip
def test_externhost(gen: General, resolved: str | None, expected: Addr) -> None:
    policy = NatPolicy(gen).with_externhost_ip(resolved)
    assert policy.our_address("198.51.100.7", LAN) == expected


def test_externhost_refresh_schedule() -> None:
    policy = NatPolicy(EXTERNHOST)
    assert policy.externhost_name == ("pbx.example.net", 5090)
    assert policy.externhost_due(None, now=0.0)
    assert not policy.externhost_due(100.0, now=129.9)
    assert policy.externhost_due(100.0, now=130.0)
    assert NatPolicy(General()).externhost_name is None
    assert not NatPolicy(General()).externhost_due(None, now=0.0)


# --- NAT detection and the auto_* modes ---------------------------------------------------------

PHONE_VIA = parse_via("SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;rport")
PUBLIC_SRC = ("198.51.100.60", 40123)
SAME_SRC = ("192.168.60.10", 5060)


@pytest.mark.parametrize(
    ("via", "source", "natted"),
    [
        (PHONE_VIA, PUBLIC_SRC, True),
        (PHONE_VIA, SAME_SRC, False),
        # the port does not count, only the address
        (PHONE_VIA, ("192.168.60.10", 40000), False),
        (parse_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1"), ("2001:db8::1", 7), False),
        (parse_via("SIP/2.0/UDP phone.example;branch=z9hG4bK1"), SAME_SRC, True),
    ],
)
def test_nat_detected(via: Via, source: Addr, natted: bool) -> None:
    assert nat_detected(via, source) is natted


@pytest.mark.parametrize(
    ("peer_nat", "source", "expected"),
    [
        (frozenset({FR, CO}), SAME_SRC, {FR, CO}),  # nat=yes: always, NAT or not
        (frozenset({FR, CO}), PUBLIC_SRC, {FR, CO}),
        (frozenset(), PUBLIC_SRC, set()),  # nat=no
        (frozenset({FR}), PUBLIC_SRC, {FR}),  # the default
        (frozenset({AFR}), PUBLIC_SRC, {FR}),
        (frozenset({AFR}), SAME_SRC, set()),
        (frozenset({ACO}), PUBLIC_SRC, {CO}),
        (frozenset({ACO}), SAME_SRC, set()),
        (frozenset({AFR, ACO}), PUBLIC_SRC, {FR, CO}),
        (frozenset({AFR, ACO}), SAME_SRC, set()),
        (frozenset({FR, ACO}), SAME_SRC, {FR}),
        (frozenset({AFR, CO}), SAME_SRC, {CO}),
    ],
)
def test_effective_nat(peer_nat: frozenset[NatMode], source: Addr, expected: set[NatMode]) -> None:
    assert effective_nat(peer_nat, PHONE_VIA, source) == expected


# --- responses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("via", "modes", "expected"),
    [
        # force_rport: the source, even without rport in the Via
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1", {FR}, PUBLIC_SRC),
        # a bare rport: the source
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1;rport", set(), PUBLIC_SRC),
        # neither: the source address with the Via port
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1", set(), ("198.51.100.60", 5062)),
        ("SIP/2.0/UDP 192.168.60.10;branch=z9hG4bK1", set(), ("198.51.100.60", 5060)),
        # comedia alone does not touch signalling
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1", {CO}, ("198.51.100.60", 5062)),
        # an rport that already has a value is not a request for one
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1;rport=9", set(), ("198.51.100.60", 5062)),
        # maddr (an IP literal) replaces the address unless rport/force_rport
        (
            "SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1;maddr=198.51.100.99",
            set(),
            ("198.51.100.99", 5062),
        ),
        ("SIP/2.0/UDP 192.168.60.10:5062;branch=z9hG4bK1;maddr=198.51.100.99", {FR}, PUBLIC_SRC),
    ],
)
def test_response_target(via: str, modes: set[NatMode], expected: Addr) -> None:
    assert response_target(parse_via(via), PUBLIC_SRC, modes) == expected


@pytest.mark.parametrize(
    ("via", "modes", "expected"),
    [
        (
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;rport",
            set(),
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;received=198.51.100.60;rport=40123",
        ),
        (
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1",
            {FR},
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;received=198.51.100.60;rport=40123",
        ),
        # received is always added, even without NAT handling
        (
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1",
            set(),
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;received=198.51.100.60",
        ),
        # an old received is replaced, not doubled
        (
            "SIP/2.0/UDP 192.168.60.10:5060;received=1.2.3.4;branch=z9hG4bK1",
            set(),
            "SIP/2.0/UDP 192.168.60.10:5060;branch=z9hG4bK1;received=198.51.100.60",
        ),
    ],
)
def test_stamp_via(via: str, modes: set[NatMode], expected: str) -> None:
    assert str(stamp_via(parse_via(via), PUBLIC_SRC, modes)) == expected


def test_stamp_via_ipv6_received_is_bare() -> None:
    via = parse_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport")
    stamped = stamp_via(via, ("2001:db8::9", 5062), set())
    assert stamped.received == "2001:db8::9"
    assert stamped.rport == 5062


# --- requests toward a peer: Contact vs source ----------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "modes", "rport_present", "expected"),
    [
        ("sip:1000@192.168.60.10:5062", {FR, CO}, False, PUBLIC_SRC),
        ("sip:1000@192.168.60.10:5062", {FR}, False, PUBLIC_SRC),
        # comedia is about media: the Contact is trusted
        ("sip:1000@192.168.60.10:5062", {CO}, False, ("192.168.60.10", 5062)),
        ("sip:1000@192.168.60.10:5062", set(), False, ("192.168.60.10", 5062)),
        ("sip:1000@192.168.60.10", set(), False, ("192.168.60.10", 5060)),
        ("sips:1000@192.168.60.10", set(), False, ("192.168.60.10", 5061)),
        ("sip:1000@192.168.60.10;transport=tls", set(), False, ("192.168.60.10", 5061)),
        ("sip:1000@[2001:db8::1]:5070", set(), False, ("2001:db8::1", 5070)),
        ("sip:1000@phone.example", set(), False, ("phone.example", 5060)),
        # REGISTER with a bare rport keeps the source as the binding address
        ("sip:1000@192.168.60.10:5062", set(), True, PUBLIC_SRC),
    ],
)
def test_contact_target(
    contact: str, modes: set[NatMode], rport_present: bool, expected: Addr
) -> None:
    uri = SipUri.parse(contact)
    assert contact_target(uri, PUBLIC_SRC, modes, rport_present=rport_present) == expected


@pytest.mark.parametrize(
    ("modes", "latch"),
    [({FR, CO}, True), ({CO}, True), ({FR}, False), (set(), False)],
)
def test_media_target(modes: set[NatMode], latch: bool) -> None:
    assert media_target("192.168.60.10", 4000, modes) == MediaTarget(("192.168.60.10", 4000), latch)


@pytest.mark.parametrize(
    ("configured", "modes", "nat", "rport"),
    [
        ({FR, CO}, {FR, CO}, "NAT", "Yes"),
        ({CO}, {CO}, "NAT", "No"),
        (set(), set(), "no NAT", "No"),
        ({AFR}, {FR}, "NAT", "Auto (Yes)"),
        ({AFR}, set(), "no NAT", "Auto (No)"),
    ],
)
def test_labels(configured: set[NatMode], modes: set[NatMode], nat: str, rport: str) -> None:
    assert nat_label(modes) == nat
    assert force_rport_label(configured, modes) == rport


# --- rewriting outgoing messages -----------------------------------------------------------------

SDP = (
    b"v=0\r\no=pypbx 1 1 IN IP4 192.168.50.2\r\ns=-\r\nc=IN IP4 192.168.50.2\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 0 101\r\nc=IN IP4 192.168.50.2\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
)


def invite(body: bytes = SDP) -> Request:
    return make_request(
        "INVITE",
        "sip:100@198.51.100.7",
        from_="<sip:pbx@192.168.50.2>;tag=a",
        to="<sip:100@198.51.100.7>",
        call_id="c1",
        cseq=1,
        via="SIP/2.0/UDP 192.168.50.2:5060;branch=z9hG4bK77;rport",
        contact="<sip:pbx@192.168.50.2:5060;transport=udp>",
        body=body,
        content_type="application/sdp" if body else None,
    )


def test_rewrite_via_keeps_params() -> None:
    req = invite()
    rewrite_via(req, (EXTERN, 5099))
    assert req.top_via.sent_by == (EXTERN, 5099)
    assert req.top_via.branch == "z9hG4bK77"
    assert req.top_via.has_rport


def test_rewrite_via_only_top() -> None:
    req = invite()
    req.add("Via", "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKold")
    rewrite_via(req, ("2001:db8::5", 5060))
    vias = req.via
    assert [v.host for v in vias] == ["[2001:db8::5]", "10.9.9.9"]


def test_rewrite_contact_keeps_user_and_params() -> None:
    req = invite()
    rewrite_contact(req, (EXTERN, 5060))
    (contact,) = req.contact
    assert str(contact) == f"<sip:pbx@{EXTERN}:5060;transport=udp>"


def test_rewrite_contact_star_and_absent() -> None:
    req = invite()
    req.set("Contact", "*")
    rewrite_contact(req, (EXTERN, 5060))
    assert req.get("Contact") == "*"
    req.remove("Contact")
    rewrite_contact(req, (EXTERN, 5060))
    assert "Contact" not in req.headers


def test_rewrite_sdp_origin_and_connections() -> None:
    out = parse_sdp(rewrite_sdp(SDP, EXTERN))
    assert out.origin.address == EXTERN
    assert out.connection is not None
    assert out.connection.address == EXTERN
    assert out.media[0].connection is not None
    assert out.media[0].connection.address == EXTERN
    assert out.media[0].port == 10000
    assert out.media[0].formats == ("0", "101")


def test_rewrite_sdp_keeps_hold_address_and_ipv6() -> None:
    hold = SDP.replace(b"c=IN IP4 192.168.50.2\r\nt=", b"c=IN IP4 0.0.0.0\r\nt=")
    out = parse_sdp(rewrite_sdp(hold, "2001:db8::5"))
    assert out.connection is not None
    assert out.connection.address == "0.0.0.0"
    assert out.media[0].connection is not None
    assert str(out.media[0].connection) == "IN IP6 2001:db8::5"
    assert out.origin.addrtype == "IP6"


def test_rewrite_sdp_to_the_same_address_changes_nothing() -> None:
    assert rewrite_sdp(SDP, "192.168.50.2") == SDP


@given(host=_ipv4)
def test_rewrite_sdp_is_idempotent_and_only_moves_addresses(host: str) -> None:
    once = rewrite_sdp(SDP, host)
    assert rewrite_sdp(once, host) == once
    assert once.replace(host.encode(), b"192.168.50.2") == SDP


@pytest.mark.parametrize("body", [b"", b"   ", b"not sdp at all"])
def test_rewrite_sdp_leaves_bad_bodies(body: bytes) -> None:
    assert rewrite_sdp(body, EXTERN) == body


def test_rewrite_message_request_and_response() -> None:
    req = invite()
    rewrite_message(req, (EXTERN, 5060))
    wire = req.serialize()
    assert b"192.168.50.2" not in wire.split(b"\r\n\r\n", 1)[1]
    assert req.top_via.host == EXTERN
    parsed = parse_message(wire)
    assert isinstance(parsed, Request)
    assert parsed.get("Content-Length") == str(len(parsed.body))

    resp = Response(200, headers=[("Via", "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK9")])
    resp.add("Contact", "<sip:pbx@192.168.50.2>")
    resp.add("Content-Type", "application/sdp")
    resp.body = SDP
    rewrite_message(resp, (EXTERN, 5060))
    assert resp.top_via.host == "198.51.100.7"  # a response's Via is the peer's
    assert str(resp.contact[0]) == f"<sip:pbx@{EXTERN}:5060>"
    assert parse_sdp(resp.body).origin.address == EXTERN


def test_rewrite_message_leaves_non_sdp_body() -> None:
    req = invite(body=b"")
    req.add("Content-Type", "text/plain")
    req.body = b"c=IN IP4 192.168.50.2"
    rewrite_message(req, (EXTERN, 5060))
    assert req.body == b"c=IN IP4 192.168.50.2"


# --- properties ----------------------------------------------------------------------------------


@given(dest=_ipv4)
def test_external_exactly_outside_every_localnet(dest: str) -> None:
    policy = NatPolicy(SEVERAL)
    local = any(n.contains(dest) for n in SEVERAL.localnet)
    got = policy.our_address(dest, LAN)
    assert got == (LAN if local else (EXTERN, 5060))


@given(
    modes=st.frozensets(st.sampled_from(list(NatMode))),
    src=_ipv4,
    port=st.integers(1, 65535),
)
def test_effective_nat_only_plain_modes(modes: frozenset[NatMode], src: str, port: int) -> None:
    out = effective_nat(modes, PHONE_VIA, (src, port))
    natted = src != "192.168.60.10"
    for plain, auto in ((FR, AFR), (CO, ACO)):
        wanted = natted if auto in modes else plain in modes
        assert (plain in out) is wanted
    assert out <= {FR, CO}


# --- remap_message: what chan_sip remaps in one outgoing message ---------------------------------


def test_remap_message_keeps_ports_when_none_and_reports_change() -> None:
    req = invite()
    req.set("Via", "SIP/2.0/UDP 192.168.50.2:5080;branch=z9hG4bK77;rport")
    req.set("Contact", "<sip:pbx@192.168.50.2:5080>")
    assert remap_message(req, EXTERN)
    assert req.top_via.sent_by == (EXTERN, 5080)
    assert str(req.contact[0]) == f"<sip:pbx@{EXTERN}:5080>"
    assert parse_sdp(req.body).origin.address == EXTERN
    assert req.get("From") == "<sip:pbx@192.168.50.2>;tag=a"  # not named ours: kept
    assert not remap_message(req, EXTERN)  # a second pass changes nothing


@pytest.mark.parametrize(
    ("status", "method", "contact_kept"),
    [
        (200, "REGISTER", True),  # the registrar lists the UA's bindings
        (302, "INVITE", True),  # redirect targets
        (200, "INVITE", False),  # our Contact in a 2xx to INVITE
        (180, "INVITE", False),
    ],
)
def test_remap_message_leaves_contacts_that_are_not_ours(
    status: int, method: str, contact_kept: bool
) -> None:
    req = invite()
    req.set("CSeq", f"1 {method}")
    resp = build_response(req, status, to_tag="t", body=b"")
    resp.add("Contact", "<sip:1000@192.168.60.10:5060>")
    remap_message(resp, EXTERN, 5099)
    kept = str(resp.contact[0]) == "<sip:1000@192.168.60.10:5060>"
    assert kept is contact_kept
    assert resp.top_via.host == "192.168.50.2"  # a response's Via is the peer's


@pytest.mark.parametrize(
    ("ours", "expected"),
    [
        (("192.168.50.2",), f"<sip:pbx@{EXTERN}>;tag=a"),
        (("127.0.0.1",), "<sip:pbx@192.168.50.2>;tag=a"),
        ((), "<sip:pbx@192.168.50.2>;tag=a"),
    ],
)
def test_rewrite_from_host_only_ours(ours: tuple[str, ...], expected: str) -> None:
    req = invite()
    rewrite_from_host(req, EXTERN, ours)
    assert req.get("From") == expected
