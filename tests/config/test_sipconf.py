"""sip.conf model: [general] defaults and options, peers, register lines, auth, ACLs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.config.conf import ConfigError, Origin, parse_text
from pypbx.config.netaddr import (
    Acl,
    AclAction,
    AclRule,
    is_local,
    parse_network,
    split_hostport,
)
from pypbx.config.sipconf import (
    AUDIO_CODECS,
    AmaFlags,
    CallerId,
    DirectMedia,
    DtmfMode,
    General,
    Insecure,
    NatMode,
    PeerType,
    SipConfig,
    Transport,
    apply_codecs,
    load_sip_conf,
    parse_auth_line,
    parse_callerid,
    parse_nat,
    parse_register_line,
    parse_sip_conf,
)

FR = NatMode.FORCE_RPORT
CO = NatMode.COMEDIA
AFR = NatMode.AUTO_FORCE_RPORT
ACO = NatMode.AUTO_COMEDIA
ORIGIN = Origin("sip.conf", 1)


def sip(text: str) -> SipConfig:
    return parse_sip_conf(parse_text(textwrap.dedent(text), "sip.conf"))


def kinds(cfg: SipConfig) -> list[str]:
    return [w.kind for w in cfg.warnings]


# --- [general] ---------------------------------------------------------------------------------


def test_empty_file_gives_asterisk_defaults_with_pypbx_allowguest() -> None:
    cfg = sip("")
    g = cfg.general
    assert (g.bindaddr, g.bindport, g.tcpenable) == ("0.0.0.0", 5060, False)
    assert g.nat == frozenset({FR})
    assert g.allow == ("ulaw", "alaw", "gsm")
    assert (g.context, g.allowguest, g.allowguest_explicit) == ("default", False, False)
    assert g.alwaysauthreject is True
    assert (g.defaultexpiry, g.minexpiry, g.maxexpiry) == (120, 60, 3600)
    assert (g.registertimeout, g.registerattempts, g.qualifyfreq) == (20, 0, 60)
    assert (g.useragent, g.srvlookup, g.dtmfmode) == ("pypbx", True, DtmfMode.RFC2833)
    assert (g.rtptimeout, g.rtpholdtimeout, g.realm) == (0, 0, "asterisk")
    assert g.directmedia == DirectMedia(enabled=True, across_nat=False)
    assert (cfg.peers, cfg.registrations, cfg.auth, cfg.warnings) == ({}, [], [], [])


GENERAL_OPTIONS: list[tuple[str, str, Any]] = [
    ("bindaddr=192.0.2.1", "bindaddr", "192.0.2.1"),
    ("bindport=5070", "bindport", 5070),
    ("udpbindaddr=192.0.2.2:5080", "bindport", 5080),
    ("udpbindaddr=[::]:5090", "bindaddr", "::"),
    ("tcpenable=yes", "tcpenable", True),
    ("tcpbindaddr=0.0.0.0:5062", "tcpbindport", 5062),
    ("externip=203.0.113.9", "externaddr", "203.0.113.9"),
    ("externaddr=203.0.113.9:5099", "externport", 5099),
    ("externhost=pbx.example.org", "externhost", "pbx.example.org"),
    ("externrefresh=30", "externrefresh", 30),
    ("context=from-sip", "context", "from-sip"),
    ("allowguest=yes", "allowguest", True),
    ("allowguest=no", "allowguest_explicit", True),
    ("alwaysauthreject=no", "alwaysauthreject", False),
    ("defaultexpiry=300", "defaultexpiry", 300),
    ("minexpiry=30", "minexpiry", 30),
    ("maxexpiry=7200", "maxexpiry", 7200),
    ("registertimeout=10", "registertimeout", 10),
    ("registerattempts=5", "registerattempts", 5),
    ("qualify=yes", "qualify", 2000),
    ("qualify=1500", "qualify", 1500),
    ("qualifyfreq=30", "qualifyfreq", 30),
    ("useragent=My PBX", "useragent", "My PBX"),
    ("srvlookup=no", "srvlookup", False),
    ("dtmfmode=info", "dtmfmode", DtmfMode.INFO),
    ("rtptimeout=60", "rtptimeout", 60),
    ("rtpholdtimeout=300", "rtpholdtimeout", 300),
    ("realm=example.org", "realm", "example.org"),
    ("fromdomain=example.org", "fromdomain", "example.org"),
    ("callerid=Reception", "callerid", "Reception"),
    ("language=fr", "language", "fr"),
    ("transport=tcp,udp", "transports", (Transport.TCP, Transport.UDP)),
    ("canreinvite=no", "directmedia", DirectMedia(enabled=False)),
    ("insecure=invite", "insecure", frozenset({Insecure.INVITE})),
    ("nat=no", "nat", frozenset()),
    # [general] nat= adds to chan_sip's default force_rport instead of replacing it
    ("nat=comedia", "nat", frozenset({FR, CO})),
    ("nat=auto_force_rport", "nat", frozenset({AFR})),
]


@pytest.mark.parametrize(("line", "attr", "expected"), GENERAL_OPTIONS)
def test_general_option(line: str, attr: str, expected: Any) -> None:
    cfg = sip(f"[general]\n{line}\n")
    assert getattr(cfg.general, attr) == expected
    assert [w for w in cfg.warnings if w.kind not in ("deprecated", "nat")] == []


def test_bindport_applies_only_when_udpbindaddr_has_no_port() -> None:
    assert sip("[general]\nbindport=5070\nudpbindaddr=1.2.3.4\n").general.bindport == 5070
    cfg = sip("[general]\nbindport=5070\nudpbindaddr=1.2.3.4:5071\n")
    assert (cfg.general.bindaddr, cfg.general.bindport) == ("1.2.3.4", 5071)


BAD_GENERAL: list[tuple[str, str, Any]] = [
    ("bindport=abc", "bindport", 5060),
    ("bindport=70000", "bindport", 5060),
    ("defaultexpiry=0", "defaultexpiry", 120),
    ("minexpiry=soon", "minexpiry", 60),
    ("maxexpiry=-5", "maxexpiry", 3600),
    ("registertimeout=x", "registertimeout", 20),
    ("externrefresh=0", "externrefresh", 10),
    ("qualify=maybe", "qualify", None),
    ("qualifyfreq=often", "qualifyfreq", 60),
    ("rtptimeout=-1", "rtptimeout", 0),
    ("dtmfmode=rfc8233", "dtmfmode", DtmfMode.RFC2833),
    ("localnet=192.168.0.0/255.0.255.0", "localnet", ()),
    ("localnet=nonsense", "localnet", ()),
    ("tcpenable=perhaps", "tcpenable", True),  # chan_sip: anything but a false word enables
    ("srvlookup=perhaps", "srvlookup", False),  # ... while srvlookup needs a true word
]


@pytest.mark.parametrize(("line", "attr", "expected"), BAD_GENERAL)
def test_bad_general_value_warns_with_file_line_and_uses_default(
    line: str, attr: str, expected: Any
) -> None:
    cfg = sip(f"[general]\ncontext=x\n{line}\n")
    assert getattr(cfg.general, attr) == expected
    assert len(cfg.warnings) == 1
    assert str(cfg.warnings[0]).startswith("sip.conf:3: ")
    assert cfg.warnings[0].kind == "bad-value"


def test_localnet_several_lines_both_mask_forms() -> None:
    cfg = sip(
        """
        [general]
        localnet=192.168.0.0/255.255.255.0
        localnet=10.0.0.0/8
        localnet=172.16.5.9/12
        """
    )
    nets = cfg.general.localnet
    assert [str(n) for n in nets] == ["192.168.0.0/24", "10.0.0.0/8", "172.16.0.0/12"]
    assert is_local("192.168.0.77", nets)
    assert is_local("172.31.255.1", nets)
    assert not is_local("192.168.1.1", nets)
    assert not is_local("8.8.8.8", nets)


def test_repeated_key_last_value_wins() -> None:
    cfg = sip("[general]\ncontext=first\ncontext=second\n[a]\ntype=peer\nsecret=1\nsecret=2\n")
    assert cfg.general.context == "second"
    assert cfg.peers["a"].secret == "2"


def test_unknown_general_option_warns() -> None:
    cfg = sip("[general]\nfrobnicate=yes\n")
    assert kinds(cfg) == ["unknown-option"]
    assert "frobnicate" in str(cfg.warnings[0])
    assert str(cfg.warnings[0]).startswith("sip.conf:2:")


def test_known_unmodelled_option_is_silent() -> None:
    assert (
        sip("[general]\ntlsenable=no\njbenable=yes\n[p]\ntype=peer\ncallgroup=1\n").warnings == []
    )


def test_second_general_section_is_ignored() -> None:
    cfg = sip("[general]\ncontext=a\n[general]\ncontext=b\n")
    assert cfg.general.context == "a"
    assert kinds(cfg) == ["ignored-section"]


def test_general_append_section_is_read() -> None:
    cfg = sip("[general]\ncontext=a\n[general](+)\nbindport=5070\n")
    assert (cfg.general.context, cfg.general.bindport) == ("a", 5070)


# --- nat ---------------------------------------------------------------------------------------

NAT_CASES: list[tuple[str, frozenset[NatMode]]] = [
    # chan_sip's own sip_parse_nat_test vectors
    ("yes", frozenset({FR, CO})),
    ("no", frozenset()),
    ("force_rport", frozenset({FR})),
    ("comedia", frozenset({CO})),
    ("auto_force_rport", frozenset({AFR})),
    ("auto_comedia", frozenset({ACO})),
    ("force_rport,auto_force_rport", frozenset({AFR})),
    ("auto_force_rport,force_rport", frozenset({AFR})),
    ("comedia,auto_comedia", frozenset({ACO})),
    ("auto_comedia,comedia", frozenset({ACO})),
    ("force_rport,comedia", frozenset({FR, CO})),
    ("force_rport,auto_comedia", frozenset({FR, ACO})),
    ("force_rport,yes,no", frozenset({FR, CO})),
    ("auto_comedia,no,yes", frozenset()),
    ("route", frozenset()),
]


@pytest.mark.parametrize(("value", "expected"), NAT_CASES)
def test_parse_nat(value: str, expected: frozenset[NatMode]) -> None:
    assert parse_nat(value)[0] == expected


def test_nat_yes_is_deprecated() -> None:
    assert parse_nat("yes")[1] is True
    assert parse_nat("force_rport,comedia")[1] is False


def test_peer_nat_replaces_general_nat_and_default_inherits() -> None:
    cfg = sip("[general]\nnat=comedia\n[a]\ntype=peer\nnat=comedia\n[b]\ntype=peer\n")
    assert cfg.peers["a"].nat == frozenset({CO})
    assert cfg.peers["b"].nat == frozenset({FR, CO})


# --- codecs --------------------------------------------------------------------------------------

CODEC_CASES: list[tuple[list[str], tuple[str, ...]]] = [
    ([], ("ulaw", "alaw", "gsm")),
    (["allow=g729"], ("ulaw", "alaw", "gsm", "g729")),
    (["disallow=all", "allow=alaw,ulaw"], ("alaw", "ulaw")),
    (["disallow=all", "allow=g722", "allow=ulaw"], ("g722", "ulaw")),
    (["allow=ulaw", "disallow=all"], ()),
    (["disallow=gsm"], ("ulaw", "alaw")),
    (["disallow=all", "allow=ulaw", "allow=ulaw"], ("ulaw",)),
    (["disallow=all", "allow=ulaw:20,alaw:30"], ("ulaw", "alaw")),
    (["disallow=all", "allow=h263,ulaw"], ("ulaw",)),
    (["disallow=all", "allow=all", "disallow=ulaw"], tuple(c for c in AUDIO_CODECS if c != "ulaw")),
    (["disallow=all", "allow=!ulaw,alaw"], ("alaw",)),
    (["allow=ULAW,GSM"], ("ulaw", "alaw", "gsm")),
    (["disallow=all", "allow=g722|alaw"], ("g722", "alaw")),
]


@pytest.mark.parametrize(("lines", "expected"), CODEC_CASES)
def test_allow_disallow_in_order(lines: list[str], expected: tuple[str, ...]) -> None:
    body = "\n".join(lines)
    cfg = sip(f"[general]\n{body}\n[p]\ntype=peer\n{body}\n")
    assert cfg.general.allow == expected
    assert cfg.peers["p"].allow == expected


def test_peer_allow_starts_from_general_list() -> None:
    cfg = sip("[general]\ndisallow=all\nallow=alaw\n[p]\ntype=peer\nallow=ulaw\n")
    assert cfg.peers["p"].allow == ("alaw", "ulaw")


def test_unknown_codec_warns_and_is_skipped() -> None:
    cfg = sip("[general]\ndisallow=all\nallow=ulaw,bogus\n")
    assert cfg.general.allow == ("ulaw",)
    assert kinds(cfg) == ["unknown-codec"]
    assert str(cfg.warnings[0]).startswith("sip.conf:3:")


def test_apply_codecs_reports_unknown_names() -> None:
    assert apply_codecs(("ulaw",), "xyz,alaw", allow=True) == (("ulaw", "alaw"), ["xyz"])


# --- register lines ----------------------------------------------------------------------------

REGISTER_CASES: list[tuple[str, dict[str, Any]]] = [
    # the vectors of chan_sip's sip_parse_register_line_test
    ("name@domain", {"user": "name", "host": "domain"}),
    ("name:pass@domain", {"user": "name", "secret": "pass", "host": "domain"}),
    (
        "name@namedomain:pass:authuser@domain",
        {"user": "name", "domain": "namedomain", "secret": "pass", "authuser": "authuser"},
    ),
    ("name@namedomain:pass:authuser@domain/extension", {"extension": "extension"}),
    (
        "tcp://name@namedomain:pass:authuser@domain/extension",
        {"transport": Transport.TCP, "extension": "extension", "host": "domain"},
    ),
    (
        "tls://name@namedomain:pass:authuser@domain/extension~111",
        {"transport": Transport.TLS, "expiry": 111, "port": None},
    ),
    (
        "peer?tcp://name@namedomain:pass:authuser@domain:1234/extension~111",
        {"peer": "peer", "transport": Transport.TCP, "port": 1234, "expiry": 111},
    ),
    (
        "peer?name@namedomain:pass:authuser@domain:1234/extension~111",
        {"peer": "peer", "user": "name", "port": 1234, "extension": "extension"},
    ),
    (
        "name@namedomain:4321:pass:authuser@domain",
        {"domain_port": 4321, "secret": "pass", "authuser": "authuser", "domain": "namedomain"},
    ),
    (
        "name@namedomain:4321::@domain",
        {"domain_port": 4321, "secret": None, "authuser": None, "host": "domain"},
    ),
    # the tutorial's provider line and other real-world forms
    ("xxx:xxx@sip.flowroute.com", {"user": "xxx", "secret": "xxx", "host": "sip.flowroute.com"}),
    ("user:p@ss@host", {"secret": "p@ss", "host": "host"}),
    ("96702:asoSN82?@trunk", {"user": "96702", "secret": "asoSN82", "peer": None}),
    ("udp://u:s@h", {"transport": Transport.UDP, "user": "u", "secret": "s"}),
    ("u:s@h/1234~3600", {"extension": "1234", "expiry": 3600, "port": None}),
    ('"u":"s"@h', {"user": "u", "secret": "s"}),
    ("u:s:authme@10.0.0.1:5070", {"authuser": "authme", "host": "10.0.0.1", "port": 5070}),
    ("u@h", {"extension": "s", "expiry": None, "secret": None, "transport": Transport.UDP}),
]


@pytest.mark.parametrize(("line", "expected"), REGISTER_CASES)
def test_register_line(line: str, expected: dict[str, Any]) -> None:
    reg, notes = parse_register_line(line, ORIGIN)
    assert reg is not None
    assert notes == []
    for attr, value in expected.items():
        assert getattr(reg, attr) == value, attr


REGISTER_NOTES: list[tuple[str, str, Any]] = [
    ("u:s@h:abc", "port", None),
    ("xyz://u:s@h", "transport", Transport.UDP),
    ("u@h~soon", "expiry", None),
]


@pytest.mark.parametrize(("line", "attr", "expected"), REGISTER_NOTES)
def test_register_line_bad_field_notes_and_defaults(line: str, attr: str, expected: Any) -> None:
    reg, notes = parse_register_line(line, ORIGIN)
    assert reg is not None
    assert getattr(reg, attr) == expected
    assert len(notes) == 1


@pytest.mark.parametrize("line", ["", "nohost", "user@", "@host", "a/b@h", "tcp:/x/u@h"])
def test_bad_register_line_refused(line: str) -> None:
    reg, notes = parse_register_line(line, ORIGIN)
    assert reg is None
    assert notes


def test_register_in_general_with_arrow_or_equal_and_bad_one_skipped() -> None:
    cfg = sip(
        """
        [general]
        register => a:1@h1
        register = b:2@h2/100
        register => broken
        """
    )
    assert [(r.user, r.host, r.extension) for r in cfg.registrations] == [
        ("a", "h1", "s"),
        ("b", "h2", "100"),
    ]
    assert cfg.registrations[0].origin == Origin("sip.conf", 3)
    assert kinds(cfg) == ["bad-register"]
    assert str(cfg.warnings[0]).startswith("sip.conf:5:")


@given(st.text(max_size=80))
def test_register_line_never_raises(text: str) -> None:
    reg, notes = parse_register_line(text, ORIGIN)
    assert reg is not None or notes


# --- [authentication] ----------------------------------------------------------------------


def test_authentication_section() -> None:
    cfg = sip(
        """
        [general]
        [authentication]
        auth = mark:topsecret@digium.com
        auth = bob#0123abcd@example.org
        auth = nobody
        realm = nope
        """
    )
    assert [(a.user, a.secret, a.md5secret, a.realm) for a in cfg.auth] == [
        ("mark", "topsecret", None, "digium.com"),
        ("bob", None, "0123abcd", "example.org"),
    ]
    assert "authentication" not in cfg.peers
    assert kinds(cfg) == ["bad-value", "unknown-option"]


@pytest.mark.parametrize(
    ("line", "user", "secret", "realm"),
    [
        ("u:s@r", "u", "s", "r"),
        ("u:s@x@r", "u", "s@x", "r"),
        ("u@r", "u", None, "r"),
        ("u:a:b@r", "u", "a:b", "r"),
    ],
)
def test_parse_auth_line(line: str, user: str, secret: str | None, realm: str) -> None:
    cred = parse_auth_line(line, ORIGIN)
    assert (cred.user, cred.secret, cred.realm) == (user, secret, realm)


# --- peers -------------------------------------------------------------------------------------

PEER_OPTIONS: list[tuple[str, str, Any]] = [
    ("type=Friend", "type", PeerType.FRIEND),
    ("host=dynamic", "dynamic", True),
    ("host=192.0.2.5", "host", "192.0.2.5"),
    ("port=5070", "port", 5070),
    ("defaultip=192.0.2.6", "defaultip", "192.0.2.6"),
    ("secret=s3", "secret", "s3"),
    ("md5secret=abc", "md5secret", "abc"),
    ("remotesecret=rs", "remotesecret", "rs"),
    ("username=u1", "username", "u1"),
    ("username=u1", "defaultuser", "u1"),
    ("defaultuser=u2", "defaultuser", "u2"),
    ("fromuser=f1", "fromuser", "f1"),
    ("fromdomain=example.org", "fromdomain", "example.org"),
    ("authuser=a1", "authuser", "a1"),
    ("context=inbound", "context", "inbound"),
    ("insecure=port,invite", "insecure", frozenset({Insecure.PORT, Insecure.INVITE})),
    ("insecure=no", "insecure", frozenset()),
    ("nat=force_rport,comedia", "nat", frozenset({FR, CO})),
    ("canreinvite=yes", "directmedia", DirectMedia(enabled=True, across_nat=True)),
    ("directmedia=no", "directmedia", DirectMedia(enabled=False)),
    ("directmedia=nonat", "directmedia", DirectMedia(enabled=True)),
    ("directmedia=update,nonat", "directmedia", DirectMedia(enabled=True, update=True)),
    ("directmedia=outgoing", "directmedia", DirectMedia(enabled=True, outgoing=True)),
    ("dtmfmode=inband", "dtmfmode", DtmfMode.INBAND),
    ("dtmfmode=AUTO", "dtmfmode", DtmfMode.AUTO),
    ("qualify=yes", "qualify", 2000),
    ("qualify=no", "qualify", None),
    ("qualify=500", "qualify", 500),
    ("qualify=0", "qualify", None),
    ("qualifyfreq=120", "qualifyfreq", 120),
    ("mailbox=1000@default,1001", "mailbox", ("1000@default", "1001")),
    ('callerid="Alice" <1000>', "callerid", CallerId("Alice", "1000")),
    ("call-limit=2", "call_limit", 2),
    ("call-limit=0", "call_limit", None),
    ("outboundproxy=proxy.example.org", "outboundproxy", "proxy.example.org"),
    ("language=de", "language", "de"),
    ("accountcode=acct", "accountcode", "acct"),
    ("amaflags=billing", "amaflags", AmaFlags.BILLING),
    ("setvar=FOO=bar=baz", "setvar", (("FOO", "bar=baz"),)),
    ("transport=tls,tcp", "transports", (Transport.TLS, Transport.TCP)),
    ("rtptimeout=30", "rtptimeout", 30),
]


@pytest.mark.parametrize(("line", "attr", "expected"), PEER_OPTIONS)
def test_peer_option(line: str, attr: str, expected: Any) -> None:
    cfg = sip(f"[p]\ntype=friend\n{line}\n")
    assert getattr(cfg.peers["p"], attr) == expected
    assert cfg.warnings == []


BAD_PEER: list[tuple[str, str, Any, str]] = [
    ("port=abc", "port", None, "bad-value"),
    ("qualify=maybe", "qualify", None, "bad-value"),
    ("qualifyfreq=x", "qualifyfreq", 45, "bad-value"),
    ("call-limit=lots", "call_limit", None, "bad-value"),
    ("dtmfmode=rfc8233", "dtmfmode", DtmfMode.RFC2833, "bad-value"),
    ("insecure=everything", "insecure", frozenset(), "bad-value"),
    ("insecure=very", "insecure", frozenset({Insecure.PORT, Insecure.INVITE}), "deprecated"),
    ("insecure=yes", "insecure", frozenset({Insecure.PORT}), "deprecated"),
    ("directmedia=sometimes", "directmedia", DirectMedia(enabled=False), "bad-value"),
    ("amaflags=lots", "amaflags", None, "bad-value"),
    ("setvar=novalue", "setvar", (), "bad-value"),
    ("transport=carrier-pigeon", "transports", (Transport.UDP,), "bad-value"),
    ("deny=not-a-net", "acl", Acl(), "bad-value"),
    ("dial=SIP/1000", "context", "default", "unknown-option"),
    ("register => a@b", "context", "default", "unknown-option"),
]


@pytest.mark.parametrize(("line", "attr", "expected", "kind"), BAD_PEER)
def test_bad_peer_value_warns_and_falls_back(
    line: str, attr: str, expected: Any, kind: str
) -> None:
    cfg = sip(f"[general]\nqualifyfreq=45\n[p]\ntype=peer\n{line}\n")
    assert getattr(cfg.peers["p"], attr) == expected
    assert kinds(cfg) == [kind]
    assert str(cfg.warnings[0]).startswith("sip.conf:5:")


def test_peer_defaults_inherit_from_general() -> None:
    cfg = sip(
        """
        [general]
        context=from-users
        dtmfmode=info
        qualify=1500
        qualifyfreq=20
        canreinvite=no
        fromdomain=example.org
        language=es
        insecure=invite
        [p]
        type=peer
        [q]
        type=peer
        qualify=yes
        """
    )
    p = cfg.peers["p"]
    assert (p.context, p.dtmfmode, p.qualify, p.qualifyfreq) == (
        "from-users",
        DtmfMode.INFO,
        1500,
        20,
    )
    assert p.directmedia == DirectMedia(enabled=False)
    assert (p.fromdomain, p.language, p.insecure) == (
        "example.org",
        "es",
        frozenset({Insecure.INVITE}),
    )
    assert cfg.peers["q"].qualify == 1500  # qualify=yes takes [general]'s qualify


def test_peer_without_host_is_kept_like_chan_sip() -> None:
    peer = sip("[u]\ntype=user\nsecret=x\n").peers["u"]
    assert (peer.host, peer.dynamic, peer.port) == (None, False, None)


def test_peer_origin_and_order() -> None:
    cfg = sip("[b]\ntype=peer\n\n[a]\ntype=peer\n")
    assert list(cfg.peers) == ["b", "a"]
    assert cfg.peers["a"].origin == Origin("sip.conf", 4)


def test_section_without_type_or_with_bad_type_is_skipped() -> None:
    cfg = sip("[nothing]\nhost=x\n[odd]\ntype=phone\n[ok]\ntype=peer\n")
    assert list(cfg.peers) == ["ok"]
    assert kinds(cfg) == ["no-type", "unknown-type"]
    assert [str(w.origin) for w in cfg.warnings] == ["sip.conf:1", "sip.conf:4"]


def test_same_name_section_is_merged_into_the_first_like_build_peer() -> None:
    cfg = sip(
        "[p]\ntype=peer\nsecret=1\ncontext=a\nsetvar=A=1\n"
        "[p]\ntype=user\nsecret=2\nsetvar=B=2\n"
        "[P]\ntype=peer\n"
    )
    assert list(cfg.peers) == ["p", "P"]  # build_peer compares names case-sensitively
    p = cfg.peers["p"]
    assert (p.type, p.secret, p.context, p.setvar) == (PeerType.FRIEND, "2", "a", (("B", "2"),))
    assert p.origin == Origin("sip.conf", 1)
    assert kinds(cfg) == ["duplicate-peer"]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["type=peer"], PeerType.PEER),
        (["type=peer", "type=user"], PeerType.FRIEND),
        (["type=user", "type=user"], PeerType.USER),
        (["type=friend", "type=peer"], PeerType.FRIEND),
        (["type=user", "type=bogus"], PeerType.USER),
    ],
)
def test_type_lines_are_ored_together(lines: list[str], expected: PeerType) -> None:
    body = "\n".join(lines)
    assert sip(f"[p]\n{body}\n").peers["p"].type is expected


def test_template_type_friend_cannot_be_narrowed() -> None:
    cfg = sip("[t](!)\ntype=friend\n[p](t)\ntype=peer\n")
    assert cfg.peers["p"].type is PeerType.FRIEND


def test_username_is_the_deprecated_spelling_of_defaultuser() -> None:
    cfg = sip("[a]\ntype=peer\nusername=old\n[b]\ntype=peer\nusername=old\ndefaultuser=new\n")
    assert (cfg.peers["a"].username, cfg.peers["a"].defaultuser) == ("old", "old")
    assert cfg.peers["b"].defaultuser == "new"


def test_template_chain_overrides_in_order() -> None:
    cfg = sip(
        """
        [base](!)
        type=friend
        context=internal
        dtmfmode=rfc2833
        disallow=all
        allow=ulaw
        [phones](!,base)
        host=dynamic
        context=phones
        allow=alaw
        [1000](phones)
        secret=one
        [1001](phones)
        secret=two
        context=vip
        """
    )
    assert list(cfg.peers) == ["1000", "1001"]
    a, b = cfg.peers["1000"], cfg.peers["1001"]
    assert (a.type, a.context, a.dynamic, a.allow) == (
        PeerType.FRIEND,
        "phones",
        True,
        ("ulaw", "alaw"),
    )
    assert (b.context, b.secret) == ("vip", "two")
    assert cfg.warnings == []


def test_acl_permit_deny_last_match_wins() -> None:
    cfg = sip(
        """
        [p]
        type=peer
        deny=0.0.0.0/0.0.0.0
        permit=192.168.1.0/255.255.255.0
        deny=192.168.1.66
        """
    )
    acl = cfg.peers["p"].acl
    assert [r.action for r in acl.rules] == [AclAction.DENY, AclAction.PERMIT, AclAction.DENY]
    assert acl.rules[0].origin == Origin("sip.conf", 4)
    assert acl.allows("192.168.1.10")
    assert not acl.allows("192.168.1.66")
    assert not acl.allows("10.0.0.1")


def test_empty_acl_allows_everything() -> None:
    assert Acl().allows("203.0.113.1")
    rule = AclRule(AclAction.PERMIT, parse_network("10.0.0.0/8"))
    assert Acl((rule,)).allows("192.0.2.1")  # no match: allowed, as ast_apply_ha does


CALLERIDS: list[tuple[str, CallerId]] = [
    ('"John Doe" <1234>', CallerId("John Doe", "1234")),
    ("John Doe <1234>", CallerId("John Doe", "1234")),
    ("<1234>", CallerId("", "1234")),
    ("1234", CallerId("", "1234")),
    ("+1 (555) 123-4567", CallerId("", "+1 (555) 123-4567")),
    ("Reception", CallerId("Reception", "")),
    ('"Front desk"', CallerId("Front desk", "")),
]


@pytest.mark.parametrize(("text", "expected"), CALLERIDS)
def test_parse_callerid(text: str, expected: CallerId) -> None:
    assert parse_callerid(text) == expected


def test_auth_line_inside_peer() -> None:
    peer = sip("[p]\ntype=peer\nauth=u:s@realm\n").peers["p"]
    assert [(a.user, a.realm) for a in peer.auth] == [("u", "realm")]


def test_auth_name_precedence() -> None:
    cfg = sip(
        "[a]\ntype=peer\n[b]\ntype=peer\nusername=u\n[c]\ntype=peer\nusername=u\nauthuser=x\n"
    )
    assert [cfg.peers[n].auth_name for n in "abc"] == ["a", "u", "x"]


# --- networks ----------------------------------------------------------------------------------

NETWORKS: list[tuple[str, str]] = [
    ("192.168.0.0/24", "192.168.0.0/24"),
    ("192.168.0.0/255.255.255.0", "192.168.0.0/24"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    ("10.1.2.3", "10.1.2.3/32"),
    ("0.0.0.0/0.0.0.0", "0.0.0.0/0"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("[2001:db8::1]", "2001:db8::1/128"),
]


@pytest.mark.parametrize(("text", "expected"), NETWORKS)
def test_parse_network(text: str, expected: str) -> None:
    assert str(parse_network(text)) == expected


@pytest.mark.parametrize("text", ["", "x", "10.0.0.0/33", "10.0.0.0/255.0.255.0", "10.0.0.0/::"])
def test_parse_network_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_network(text)


def test_network_contains_checks_family_and_garbage() -> None:
    net = parse_network("10.0.0.0/8")
    assert net.contains("10.9.9.9")
    assert not net.contains("::1")
    assert not net.contains("not-an-ip")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host", ("host", None)),
        ("host:5070", ("host", 5070)),
        ("[::1]:5070", ("::1", 5070)),
        ("[::1]", ("::1", None)),
        ("2001:db8::1", ("2001:db8::1", None)),
    ],
)
def test_split_hostport(text: str, expected: tuple[str, int | None]) -> None:
    assert split_hostport(text) == expected


@pytest.mark.parametrize("text", ["host:x", ":5060", "[::1", "[::1]x", "h:0"])
def test_split_hostport_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        split_hostport(text)


# --- the tutorial ------------------------------------------------------------------------------

TUTORIAL = """\
[general]
context=default
allowguest=no
allow=ulaw
allow=g729
register => xxx:xxx@sip.flowroute.com
nat=yes
externip=203.0.113.10
localnet=192.168.0.0/255.255.255.0

[authentication]

[flowroute]
type=friend
secret=xxx
username=xxx
host=sip.flowroute.com
dtmfmode=rfc2833
context=inbound
canreinvite=no
allow=ulaw
allow=g729
insecure=port,invite
fromdomain=sip.flowroute.com
qualify=yes

[1000]
type=friend
nat=yes
canreinvite=no
secret=mysecretpassword
qualify=yes
mailbox=1000@default
host=dynamic
dtmfmode=rfc2833
dial=SIP/1000
context=outgoing
"""


def test_tutorial_sip_conf(tmp_path: Path) -> None:
    path = tmp_path / "sip.conf"
    path.write_text(TUTORIAL)
    cfg = load_sip_conf(path)
    g = cfg.general
    assert g == General(
        allowguest=False,
        allowguest_explicit=True,
        allow=("ulaw", "alaw", "gsm", "g729"),
        nat=frozenset({FR, CO}),
        externaddr="203.0.113.10",
        localnet=g.localnet,
        origin=Origin(str(path), 1),
    )
    assert [str(n) for n in g.localnet] == ["192.168.0.0/24"]
    [reg] = cfg.registrations
    assert (reg.user, reg.secret, reg.host, reg.port, reg.extension) == (
        "xxx",
        "xxx",
        "sip.flowroute.com",
        None,
        "s",
    )
    assert list(cfg.peers) == ["flowroute", "1000"]
    trunk = cfg.peers["flowroute"]
    assert trunk.insecure == frozenset({Insecure.PORT, Insecure.INVITE})
    assert (trunk.host, trunk.context, trunk.qualify) == ("sip.flowroute.com", "inbound", 2000)
    assert trunk.directmedia == DirectMedia(enabled=False)
    phone = cfg.peers["1000"]
    assert (phone.dynamic, phone.context, phone.mailbox) == (True, "outgoing", ("1000@default",))
    assert phone.nat == frozenset({FR, CO})
    unknown = [w for w in cfg.warnings if w.kind == "unknown-option"]
    assert len(unknown) == 1
    assert str(unknown[0]).startswith(f"{path}:36: ")
    assert "dial" in unknown[0].message
    assert sorted(kinds(cfg)) == ["deprecated", "deprecated", "unknown-option"]


# --- fuzz ----------------------------------------------------------------------------------------

_KEYS = ["type", "host", "port", "nat", "allow", "disallow", "qualify", "insecure", "register"]
_KEYS += ["canreinvite", "callerid", "permit", "deny", "localnet", "bindaddr", "setvar", "auth"]
_KEYS += ["dtmfmode", "call-limit", "transport", "mailbox", "defaultexpiry", "udpbindaddr"]
_VALUE = st.text(alphabet='abyesno0123456789.:/@?~,!#<>" =-_', max_size=20)
_LINE = st.one_of(
    st.tuples(st.sampled_from(_KEYS), st.sampled_from(["=", "=>"]), _VALUE).map("".join),
    st.sampled_from(["[general]", "[authentication]", "[p]", "[t](!)", "[q](t)", "type=peer"]),
)


@given(st.lists(_LINE, max_size=25))
def test_any_sip_conf_gives_a_model_with_warnings_never_an_exception(lines: list[str]) -> None:
    try:
        conf = parse_text("[general]\n" + "\n".join(lines) + "\n", "sip.conf")
    except ConfigError:
        return  # the dialect stage may refuse (e.g. an unknown template); the model never does
    cfg = parse_sip_conf(conf)
    for warning in cfg.warnings:
        assert warning.origin.line >= 1
    for peer in cfg.peers.values():
        assert isinstance(peer.type, PeerType)
        assert all(codec in AUDIO_CODECS for codec in peer.allow)


@pytest.mark.parametrize(
    ("lines", "warned"),
    [
        ("externip=203.0.113.10\n", True),
        ("externhost=pbx.example.org\n", True),
        ("externip=203.0.113.10\nlocalnet=192.168.0.0/255.255.255.0\n", False),
        ("localnet=192.168.0.0/24\n", False),
    ],
)
def test_externip_without_localnet_is_warned(lines: str, warned: bool) -> None:
    cfg = parse_sip_conf(parse_text("[general]\n" + lines, "sip.conf"))
    nat = [w for w in cfg.warnings if w.kind == "nat"]
    assert bool(nat) is warned
    if warned:
        assert str(nat[0]).startswith("sip.conf:2: ")
        assert "localnet" in str(nat[0])
