"""SIP parse/serialize micro-benchmark: pypbx vs sippy (if available).

Run: ``.venv/bin/python bench/sip_parse.py [--runs N] [--number N]``.

Prints, per sample message (INVITE with SDP, 200 OK, REGISTER), the median over several
runs of: parses/s (``parse_message``), parses/s including the typed views a transaction
layer touches (top Via branch, From/To tags, CSeq, Call-ID, Request-URI), and
serializations/s, timed in process CPU time so that other load on the machine matters less.

Every parse gets a different message: the Via branch, the tags and the Call-ID change from
one to the next (8192 variants, cycled), as they do between calls; the URIs stay the same,
as they do between calls from one phone to the PBX. So pypbx's memo of parsed URIs and
name-addrs (``pypbx.sip.uri``) helps as much as it would in real traffic, and no more.
The ``before`` column holds this bench's figures for the code before the speed work
(``BEFORE`` below: commit e8f9648, same machine), and ``speedup`` the ratio to them.
If ``sippy`` is importable here, or in ``bench/.venv`` (create it with
``python3 -m venv bench/.venv && bench/.venv/bin/pip install sippy``), the same figures
are measured for sippy's parser and shown side by side with the ratio pypbx/sippy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV_PYTHON = ROOT / "bench" / ".venv" / "bin" / "python"

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\n"
)


def _msg(start: str, headers: list[str], body: bytes = b"") -> bytes:
    lines = [start, *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


VARIANTS = 8192


def _variants(template: bytes) -> list[bytes]:
    """``template`` with its branch, tags and Call-ID made unique (same length: the
    5-digit counter replaces the last 5 characters of each)."""
    out = []
    for i in range(VARIANTS):
        n = b"%05d" % i
        data = template
        for token in (b"776asdhds", b"nashds7", b"1928301774", b"456248", b"a6c85cf"):
            data = data.replace(token, token[:-5] + n)
        for token in (b"a84b4c76e66710@", b"843817637684230@"):
            data = data.replace(token, token[:-6] + n + b"@")
        out.append(data)
    return out


INVITE = _msg(
    "INVITE sip:1001@192.0.2.10 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:1000@192.0.2.10>;tag=1928301774',
        "To: <sip:1001@192.0.2.10>",
        "Call-ID: a84b4c76e66710@192.0.2.101",
        "CSeq: 314159 INVITE",
        "Contact: <sip:1000@192.0.2.101:5060;transport=udp>",
        "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, INFO",
        "Supported: replaces, timer",
        "User-Agent: Softphone 1.0",
        "Content-Type: application/sdp",
    ],
    SDP,
)
OK200 = _msg(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.101",
        'From: "Alice" <sip:1000@192.0.2.10>;tag=1928301774',
        "To: <sip:1001@192.0.2.10>;tag=a6c85cf",
        "Call-ID: a84b4c76e66710@192.0.2.101",
        "CSeq: 314159 INVITE",
        "Contact: <sip:1001@192.0.2.102:5060>",
        "Server: pypbx",
        "Content-Type: application/sdp",
    ],
    SDP,
)
REGISTER = _msg(
    "REGISTER sip:192.0.2.10 SIP/2.0",
    [
        "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport",
        "Max-Forwards: 70",
        "From: <sip:1000@192.0.2.10>;tag=456248",
        "To: <sip:1000@192.0.2.10>",
        "Call-ID: 843817637684230@998sdasdh09",
        "CSeq: 1826 REGISTER",
        "Contact: <sip:1000@192.0.2.101:5060>;expires=3600",
        "Expires: 3600",
        "User-Agent: Softphone 1.0",
    ],
)
SAMPLES = {"INVITE+SDP": INVITE, "200 OK": OK200, "REGISTER": REGISTER}


#: pypbx ops/s of this bench on the code before the speed work (commit e8f9648), medians of
#: three runs interleaved with runs of the new code on the same (noisy, 2-core) machine.
BEFORE = {
    "INVITE+SDP": {"parse": 50_731, "parse+views": 22_660, "serialize": 941_232},
    "200 OK": {"parse": 76_287, "parse+views": 31_317, "serialize": 748_560},
    "REGISTER": {"parse": 71_728, "parse+views": 29_968, "serialize": 1_066_236},
}


def _rate(fn: Callable[[], object], number: int, runs: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=runs, timer=time.process_time)
    return number / statistics.median(times)


def bench_pypbx(number: int, runs: int) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(ROOT))
    from pypbx.sip.message import Request
    from pypbx.sip.parse import parse_message

    out: dict[str, dict[str, float]] = {}
    for name, data in SAMPLES.items():
        parsed = parse_message(data)
        assert parsed.serialize() == data
        variants = _variants(data)
        assert len(set(variants)) == VARIANTS
        feed = itertools.cycle(variants).__next__

        def views(feed: Callable[[], bytes] = feed) -> None:
            m = parse_message(feed())
            _ = (m.top_via.branch, m.from_.tag, m.to.tag, m.cseq.number, m.call_id)
            if isinstance(m, Request):
                _ = m.uri

        out[name] = {
            "parse": _rate(lambda feed=feed: parse_message(feed()), number, runs),
            "parse+views": _rate(views, number, runs),
            "serialize": _rate(parsed.serialize, number, runs),
        }
    return out


def bench_sippy(number: int, runs: int) -> dict[str, dict[str, float]]:
    from sippy.SipRequest import SipRequest  # type: ignore[import-not-found]
    from sippy.SipResponse import SipResponse  # type: ignore[import-not-found]

    def parse(data: bytes) -> object:
        text = data.decode()
        msg = SipResponse(text) if text.startswith("SIP/") else SipRequest(text)
        msg.init_body()
        return msg

    out: dict[str, dict[str, float]] = {}
    for name, data in SAMPLES.items():
        parsed = parse(data)
        feed = itertools.cycle(_variants(data)).__next__

        def views(feed: Callable[[], bytes] = feed) -> None:
            m = parse(feed())
            _ = (
                m.getHFBody("via").getBranch(),
                m.getHFBody("from").getTag(),
                m.getHFBody("to").getTag(),
                m.getHFBody("cseq").getCSeqNum(),
                str(m.getHFBody("call-id")),
            )
            if isinstance(m, SipRequest):
                _ = m.getRURI()

        out[name] = {
            "parse": _rate(lambda feed=feed: parse(feed()), number, runs),
            "parse+views": _rate(views, number, runs),
            "serialize": _rate(lambda p=parsed: p.localStr(), number, runs),
        }
    return out


def sippy_results(number: int, runs: int) -> dict[str, dict[str, float]] | None:
    try:
        import sippy  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        pass
    else:
        return bench_sippy(number, runs)
    if not BENCH_VENV_PYTHON.exists():
        return None
    proc = subprocess.run(
        [str(BENCH_VENV_PYTHON), __file__, "--sippy-json", f"--number={number}", f"--runs={runs}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"(sippy run failed: {proc.stderr.strip()[-200:]})")
        return None
    result: dict[str, dict[str, float]] = json.loads(proc.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs per figure (median)")
    ap.add_argument("--number", type=int, default=5000, help="operations per run")
    ap.add_argument("--sippy-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sippy_json:
        print(json.dumps(bench_sippy(args.number, args.runs)))
        return
    ours = bench_pypbx(args.number, args.runs)
    theirs = sippy_results(args.number, args.runs)
    print(f"Python {sys.version.split()[0]}, median of {args.runs} runs x {args.number} ops")
    header = f"{'message':<12} {'operation':<12} {'pypbx ops/s':>12} {'before':>10} {'speedup':>7}"
    if theirs:
        header += f" {'sippy ops/s':>12} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, figures in ours.items():
        for op, rate in figures.items():
            before = BEFORE[name][op]
            line = f"{name:<12} {op:<12} {rate:>12,.0f} {before:>10,} {rate / before:>6.1f}x"
            if theirs:
                other = theirs[name][op]
                line += f" {other:>12,.0f} {rate / other:>6.1f}x"
            print(line)
    if theirs is None:
        print("(sippy not importable here nor in bench/.venv: no comparison)")


if __name__ == "__main__":
    main()
