"""RFC 5118 IPv6 torture test messages, read in place from the shared corpus.

The archive copies use LF line ends throughout (the parser tolerates that). Two SDP
messages carry a Content-Length that does not match their (LF-only) body: as stored they
are rejected like RFC 4475 ``clerr``; with Content-Length corrected to the body actually
present (the wire form the RFC intends) they parse, which is what the "valid" verdict means.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pypbx.sip.abnf import ParseError
from pypbx.sip.message import Request
from pypbx.sip.parse import parse_message, validate_message
from pypbx.sip.uri import SipUri

CORPUS = Path(__file__).parents[3] / "shared" / "corpus" / "rfc5118"
pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"RFC 5118 corpus not found at {CORPUS}"
)

INVALID = {"ipv6-bad": ("validate", 400)}
LENGTH_MISMATCH = {"ipv6-in-sdp": (268, 242), "mult-ip-in-sdp": (181, 180)}


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


def _fixed(name: str) -> bytes:
    """The message with Content-Length set to the body that is actually there."""
    data = _load(name)
    stated, actual = LENGTH_MISMATCH[name]
    head, _, body = data.partition(b"\n\n")
    assert len(body) == actual
    return (
        head.replace(f"Content-Length: {stated}".encode(), f"Content-Length: {actual}".encode())
        + b"\n\n"
        + body
    )


def test_table_matches_verdict_file():
    assert len(NAMES) == 12
    assert {n for n, v in VERDICTS.items() if v == "invalid"} == set(INVALID)
    assert {p.stem for p in CORPUS.glob("*.dat")} == set(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if VERDICTS[n] == "valid"])
def test_valid_messages(name):
    data = _fixed(name) if name in LENGTH_MISMATCH else _load(name)
    msg = parse_message(data)
    validate_message(msg)
    again = parse_message(msg.serialize())
    assert again.call_id == msg.call_id
    assert again.body == msg.body


@pytest.mark.parametrize("name", sorted(LENGTH_MISMATCH))
def test_archive_copies_with_wrong_length_are_rejected(name):
    with pytest.raises(ParseError) as exc:
        parse_message(_load(name))
    assert exc.value.status == 400


def test_ipv6_bad_request_uri():
    msg = parse_message(_load("ipv6-bad"))
    with pytest.raises(ParseError) as exc:
        validate_message(msg)
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("name", "host", "port"),
    [
        ("ipv6-good", "[2001:db8::10]", None),
        ("port-ambiguous", "[2001:db8::10:5070]", None),
        ("port-unambiguous", "[2001:db8::10]", 5070),
        ("ipv6-bug-abnf-3-colons", "[2001:db8:::192.0.2.1]", None),
        ("ipv6-correct-abnf-2-colons", "[2001:db8::192.0.2.1]", None),
    ],
)
def test_request_uri_hosts(name, host, port):
    msg = parse_message(_load(name))
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    assert (uri.host, uri.port) == (host, port)


def test_ipv6_in_headers():
    good = parse_message(_load("ipv6-good"))
    assert good.top_via.host == "[2001:db8::9:1]"
    assert good.contact[0].uri == SipUri("[2001:db8::1]", "caller")
    multi = parse_message(_load("mult-ip-in-header"))
    assert [(v.host, v.port, v.received) for v in multi.via] == [
        ("[2001:db8::9:1]", 6050, None),
        ("192.0.2.1", None, None),
        ("[2001:db8::9:255]", None, "192.0.2.200"),
    ]
    mapped = parse_message(_load("ipv4-mapped-ipv6"))
    assert [(v.host, v.port) for v in mapped.via] == [
        ("[::ffff:192.0.2.10]", 19823),
        ("[::ffff:192.0.2.2]", None),
    ]
    assert mapped.contact[0].uri.host == "[::ffff:192.0.2.2]"
    assert b"IN IP6 ::ffff:192.0.2.2" in mapped.body


@pytest.mark.parametrize(
    ("name", "received"),
    [
        ("via-received-param-with-delim", "[2001:db8::9:255]"),
        ("via-received-param-no-delim", "2001:db8::9:255"),
    ],
)
def test_via_received(name, received):
    assert parse_message(_load(name)).top_via.received == received
