"""RFC 4475 SIP torture test messages, read in place from the shared corpus.

Each message's verdict comes from ``verdicts.tsv``. Invalid messages are rejected either by
``parse_message`` (framing, start line, mandatory headers) or, for those that are
well-framed but carry a malformed header a UAS must answer with 400, by
``validate_message``; the table below says which stage and which status, and a test checks
the table against the verdict file so the two cannot drift apart.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pypbx.sip.abnf import ParseError
from pypbx.sip.headers import CSeq
from pypbx.sip.message import Request, Response
from pypbx.sip.parse import check_request, parse_message, unsupported_options, validate_message
from pypbx.sip.uri import AbsoluteUri, SipUri

CORPUS = Path(__file__).parents[3] / "shared" / "corpus" / "rfc4475"
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"RFC 4475 corpus not found at {CORPUS}"
)

# name -> (stage, status): stage "parse" or "validate" for invalid messages.
INVALID = {
    "badinv01": ("validate", 400),  # ;;,;,, in Via: empty params/values
    "clerr": ("parse", 400),
    "ncl": ("parse", 400),
    "scalar02": ("parse", 400),  # CSeq > 2**31-1 (also Max-Forwards 300)
    "scalarlg": ("parse", 400),  # response: CSeq overflow, caller drops it
    "quotbal": ("validate", 400),
    "ltgtruri": ("parse", 400),
    "lwsruri": ("parse", 400),
    "lwsstart": ("parse", 400),
    "trws": ("parse", 400),
    "escruri": ("parse", 400),
    "baddate": ("validate", 400),
    "regbadct": ("validate", 400),
    "badaspec": ("validate", 400),
    "baddn": ("validate", 400),
    "badvers": ("parse", 505),
    "mismatch01": ("parse", 400),
    "mismatch02": ("parse", 400),
    "bigcode": ("parse", 400),
    "insuf": ("parse", 400),
    "multi01": ("parse", 400),
    "mcl01": ("parse", 400),
    "test": ("parse", 400),
}


def _verdicts() -> dict[str, str]:
    path = CORPUS / "verdicts.tsv"
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {row["name"]: row["verdict"] for row in csv.DictReader(fh, delimiter="\t")}


VERDICTS = _verdicts()
NAMES = sorted(VERDICTS)


def _load(name: str) -> bytes:
    return (CORPUS / f"{name}.dat").read_bytes()


def test_table_matches_verdict_file():
    assert len(NAMES) == 50
    assert {n for n, v in VERDICTS.items() if v == "invalid"} == set(INVALID)
    assert {p.stem for p in CORPUS.glob("*.dat")} == set(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if VERDICTS[n] == "valid"])
def test_valid_messages_parse_and_validate(name):
    msg = parse_message(_load(name))
    validate_message(msg)
    # every valid message survives serialize → parse with the same key fields
    again = parse_message(msg.serialize())
    assert again.call_id == msg.call_id
    assert again.cseq == msg.cseq
    assert again.body == msg.body
    assert len(again.via) == len(msg.via)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_rejected(name):
    stage, status = INVALID[name]
    data = _load(name)
    if stage == "parse":
        with pytest.raises(ParseError) as exc:
            parse_message(data)
    else:
        msg = parse_message(data)
        with pytest.raises(ParseError) as exc:
            validate_message(msg)
    assert exc.value.status == status


def test_wsinv_short_tortuous_invite():
    msg = parse_message(_load("wsinv"))
    assert isinstance(msg, Request)
    assert msg.uri == SipUri("chair-dnrc.example.com", "vivekg", params=(("unknownparam", None),))
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display == 'J Rosenberg \\"'
    assert msg.max_forwards == 68
    assert msg.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.get("Subject") == ""
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = msg.contact
    assert contact.display == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.param("q") == "0.33"
    assert msg.route[0].uri.lr
    assert len(msg.body) == 150
    assert msg.serialize() == _load("wsinv")


def test_intmeth_exotic_characters():
    msg = parse_message(_load("intmeth"))
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.max_forwards == 255
    assert msg.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_escapes():
    msg = parse_message(_load("esc01"))
    assert isinstance(msg, Request)
    assert msg.uri == SipUri("example.net", "sips:user@example.com")
    assert msg.to.uri == SipUri("example.com", "user")
    assert msg.from_.uri == SipUri("example.net", "I have spaces")
    contact = msg.contact[0]
    assert isinstance(contact.uri, SipUri)
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))
    null = parse_message(_load("escnull"))
    assert null.to.uri == SipUri("example.com", "null-\x00-null")
    assert [c.uri.user for c in null.contact] == ["\x00", "\x00\x00"]


def test_esc02_percent_is_not_an_escape_in_method_or_header_name():
    msg = parse_message(_load("esc02"))
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R"
    assert msg.from_.display == "%Z%45"
    assert len(msg.contact) == 2  # "C%6Fntact" is some other header
    assert msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_semiuri_longreq():
    assert parse_message(_load("lwsdisp")).from_.display == "caller"
    semi = parse_message(_load("semiuri"))
    assert isinstance(semi, Request)
    assert semi.uri == SipUri("example.com", "user;par=u@example.net")
    assert len(semi.get_all("Accept")) == 6
    long = parse_message(_load("longreq"))
    assert len(long.via) == 34
    assert long.to.uri.port == 6000
    assert len(long.to.display or "") > 80


def test_dblreq_extra_octets_ignored():
    msg = parse_message(_load("dblreq"))
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_transports_and_bcast():
    msg = parse_message(_load("transports"))
    assert [v.transport for v in msg.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    bcast = parse_message(_load("bcast"))
    assert bcast.via[1].host == "255.255.255.255"


def test_mpart01_binary_body_kept():
    msg = parse_message(_load("mpart01"))
    assert msg.content_type == "multipart/mixed"
    assert len(msg.body) == int(msg.get("Content-Length") or "0")
    assert b"\x00" in msg.body or b"\r" in msg.body


def test_reason_phrases():
    unreason = parse_message(_load("unreason"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(_load("noreason"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_unknown_schemes_are_well_formed():
    unk = parse_message(_load("unkscm"))
    assert isinstance(unk, Request)
    assert unk.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")
    novel = parse_message(_load("novelsc"))
    assert isinstance(novel, Request)
    assert novel.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")
    msg = parse_message(_load("unksm2"))
    assert msg.to.uri == AbsoluteUri("isbn", "2983792873")
    assert msg.from_.uri == AbsoluteUri("http", "//www.example.com")
    assert msg.contact[0].uri == AbsoluteUri("name", "John_Smith")


def test_contact_params_vs_uri_params():
    c1 = parse_message(_load("cparam01")).contact[0]
    assert c1.param("unknownparam") is None
    assert c1.params == (("unknownparam", None),)
    assert isinstance(c1.uri, SipUri)
    assert c1.uri.params == ()
    c2 = parse_message(_load("cparam02")).contact[0]
    assert c2.params == ()
    assert c2.uri.params == (("unknownparam", None),)
    rt = parse_message(_load("regescrt")).contact[0]
    assert rt.uri.headers == (("Route", "<sip:sip.example.com>"),)


def test_semantic_cases_parse():
    assert parse_message(_load("badbranch")).top_via.branch == "z9hG4bK"
    assert parse_message(_load("zeromf")).max_forwards == 0
    bext = parse_message(_load("bext01"))
    assert bext.option_tags("Require") == ["nothingsupportsthis", "nothingsupportsthiseither"]
    assert len(bext.option_tags("Proxy-Require")) == 2
    assert parse_message(_load("invut")).content_type == "application/unknownformat"
    assert parse_message(_load("regaut01")).get("Authorization", "").startswith("NoOneKnows")
    assert parse_message(_load("sdp01")).get("Accept") == "text/nobodyKnowsThis"
    rfc2543 = parse_message(_load("inv2543"))
    assert rfc2543.top_via.branch is None
    assert rfc2543.from_.tag is None
    assert rfc2543.max_forwards is None
    assert rfc2543.get("Content-Length") is None
    assert rfc2543.body.startswith(b"v=0")


@pytest.mark.parametrize(
    ("name", "status"),
    [("unkscm", 416), ("novelsc", 416), ("bext01", 420), ("zeromf", None), ("unksm2", None)],
)
def test_uas_checks(name, status):
    msg = parse_message(_load(name))
    assert isinstance(msg, Request)
    if status is None:
        check_request(msg)
        return
    with pytest.raises(ParseError) as exc:
        check_request(msg)
    assert exc.value.status == status


def test_bext01_unsupported_list():
    msg = parse_message(_load("bext01"))
    assert isinstance(msg, Request)
    expected = ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert unsupported_options(msg, ["100rel"]) == expected
    assert unsupported_options(msg, ["NOTHINGSUPPORTSTHIS"]) == ["nothingSupportsThisEither"]
    check_request(msg, supported=expected)
