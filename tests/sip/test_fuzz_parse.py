"""The fuzz invariant (DESIGN.md §3): any bytes → a Message or ParseError, nothing else.

Covers ``parse_message``, ``validate_message`` and every typed view, on random bytes and
on mutations of valid messages (RFC 4475 corpus plus built-in samples). The long seeded
campaign (>= 100k inputs) is marked ``slow``.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.sip.abnf import ParseError
from pypbx.sip.framing import StreamFramer
from pypbx.sip.message import Request, Response
from pypbx.sip.parse import check_request, parse_message, validate_message

CORPUS = Path(__file__).parents[3] / "shared" / "corpus"

SEEDS = [
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.com>\r\n"
    b'From: "Alice" <sip:alice@atlanta.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@[2001:db8::1]:5060;transport=tcp>;expires=60\r\n"
    b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n",
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP h:5061;branch=z9hG4bKx;received=1.2.3.4\r\n"
    b"f: <sip:a@b>;tag=1\r\nt: sip:c@d;tag=2\r\ni: x\r\nCSeq: 1 BYE\r\nl: 0\r\n\r\n",
]


def _corpus_seeds() -> list[bytes]:
    out: list[bytes] = []
    for sub in ("rfc4475", "rfc5118"):
        d = CORPUS / sub
        if d.is_dir():
            out.extend(p.read_bytes() for p in sorted(d.glob("*.dat")))
    return out


ALL_SEEDS = SEEDS + _corpus_seeds()
ALPHABET = b' \t\r\n:;,<>"\\@[]/=?%.0123456789zZ-'


def exercise(data: bytes) -> None:
    """Parse and touch every view; only ParseError may escape."""
    try:
        msg = parse_message(data)
    except ParseError as exc:
        assert 400 <= exc.status <= 599
        return
    assert isinstance(msg, Request | Response)
    out = msg.serialize()
    assert isinstance(out, bytes)
    for attr in (
        "via",
        "call_id",
        "cseq",
        "from_",
        "to",
        "contact",
        "route",
        "record_route",
        "max_forwards",
        "expires",
        "content_type",
    ):
        with contextlib.suppress(ParseError):
            getattr(msg, attr)
    try:
        validate_message(msg)
        if isinstance(msg, Request):
            check_request(msg, supported=["100rel", "timer"])
    except ParseError as exc:
        assert exc.status in (400, 416, 420)
        return
    # a message that validates must survive its own serialization
    again = parse_message(out)
    assert again.call_id == msg.call_id
    assert again.body == msg.body


def mutate(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(5)
        pos = rnd.randrange(len(buf) + 1)
        if op == 0 and buf:
            del buf[pos : pos + rnd.randint(1, 8)]
        elif op == 1:
            buf[pos:pos] = bytes([rnd.choice(ALPHABET)]) * rnd.randint(1, 3)
        elif op == 2 and buf:
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
        elif op == 3:
            a = rnd.randrange(len(buf) + 1)
            buf[pos:pos] = buf[a : a + rnd.randint(1, 40)]
        else:
            buf[pos:pos] = rnd.choice([b"\r\n", b"\r\n ", b"9" * 30, b";;", b",", b'"', b"%"])
    return bytes(buf)


@given(st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_random_bytes(data):
    exercise(data)


@given(st.sampled_from(ALL_SEEDS), st.integers(0, 2**32 - 1))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_messages(seed, salt):
    exercise(mutate(seed, random.Random(salt)))


@given(st.lists(st.sampled_from([*ALPHABET, *b"SIP/2.0 INVITE sip:a@b CSeq Via"]), max_size=300))
@settings(max_examples=400, deadline=None)
def test_sip_alphabet(chars):
    exercise(b"OPTIONS sip:a@b SIP/2.0\r\n" + bytes(chars))


@given(st.sampled_from(ALL_SEEDS), st.lists(st.integers(1, 64), max_size=8), st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_framer_only_raises_parse_error(seed, cuts, noise):
    framer = StreamFramer(max_header_size=2048, max_message_size=4096)
    stream = b"\r\n\r\n" + seed + noise + seed
    pos = 0
    try:
        for cut in [*cuts, len(stream)]:
            framer.feed(stream[pos : pos + cut])
            pos += cut
            while (event := framer.next_event()) is not None:
                assert event is not None
    except ParseError:
        pass


@pytest.mark.slow
def test_long_seeded_campaign(request):
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("long fuzz campaign: run with -m slow")
    rnd = random.Random(4475)
    for i in range(120_000):
        if i % 5 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(200)))
        else:
            data = mutate(rnd.choice(ALL_SEEDS), rnd)
        exercise(data)
