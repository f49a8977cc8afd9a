"""Sans-I/O SIP endpoint throughput: requests in, responses out, no sockets.

Run: ``.venv/bin/python bench/sip_endpoint.py [--runs N] [--number N]``.

Each round feeds ``--number`` pre-built datagrams (distinct branches and Call-IDs, as from
many phones) to ``Endpoint.receive``, drains ``datagrams_to_send`` and the TU events after
every datagram, then moves the clock 40 s on and fires the due timers (the finished
transactions' Timer J, RFC 3261 §17.2.2), so the cost of ending transactions is counted too.
Scenarios:

* ``OPTIONS -> 200``: out-of-dialog OPTIONS answered by the endpoint itself (§11.2).
* ``REGISTER -> 401``: a REGISTER without credentials; a minimal TU answers with a digest
  challenge from :class:`pypbx.sip.auth.DigestServer` (RFC 3261 §22.2), statelessly
  (``forget=True``: the transaction ends at once instead of waiting for Timer J).
* ``REGISTER+auth -> 200``: a REGISTER carrying valid credentials (qop=auth, fresh
  nonce-count); the TU parses and verifies them and answers 200.

Figures are round trips per second of process CPU time (median of ``--runs`` rounds).
The ``before`` column holds this bench's figures for the code before the speed work
(``BEFORE`` below: commit e8f9648, same machine), and ``speedup`` the ratio to them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pypbx.sip.auth import DigestServer, Verdict, answer_challenge  # noqa: E402
from pypbx.sip.endpoint import Endpoint, EndpointConfig  # noqa: E402
from pypbx.sip.events import RequestReceived  # noqa: E402
from pypbx.sip.ids import IdFactory  # noqa: E402
from pypbx.sip.message import build_response  # noqa: E402

#: Round trips/s of this bench on the code before the speed work (commit e8f9648), medians of
#: three runs interleaved with runs of the new code on the same (noisy, 2-core) machine.
BEFORE = {"OPTIONS -> 200": 7_020, "REGISTER -> 401": 5_186, "REGISTER+auth -> 200": 3_515}

SOURCE = ("192.0.2.101", 5060)
REALM = "pypbx"
PASSWORD = "s3cret"


def _options(i: int) -> bytes:
    return (
        f"OPTIONS sip:192.0.2.10 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKopt{i};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:monitor@192.0.2.101>;tag=f{i}\r\n"
        f"To: <sip:192.0.2.10>\r\n"
        f"Call-ID: opt{i}@192.0.2.101\r\n"
        f"CSeq: 1 OPTIONS\r\n"
        f"Accept: application/sdp\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def _register(i: int, authorization: str | None = None) -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"REGISTER sip:192.0.2.10 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKreg{i};rport\r\n"
        f"Max-Forwards: 70\r\n"
        f"From: <sip:1000@192.0.2.10>;tag=r{i}\r\n"
        f"To: <sip:1000@192.0.2.10>\r\n"
        f"Call-ID: reg{i}@192.0.2.101\r\n"
        f"CSeq: 2 REGISTER\r\n"
        f"Contact: <sip:1000@192.0.2.101:5060>;expires=3600\r\n"
        f"{auth}"
        f"Expires: 3600\r\n"
        f"User-Agent: Softphone 1.0\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


class _Registrar:
    """The smallest TU that challenges REGISTER and accepts good credentials."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.digest = DigestServer(b"bench-secret", REALM, nonce_lifetime=1e9)
        self.answered = 0

    def handle(self, event: object, now: float) -> None:
        if not isinstance(event, RequestReceived):
            return
        request = event.request
        creds = request.get("Authorization")
        if creds is None:
            headers = [("WWW-Authenticate", self.digest.challenge(now))]
            response = build_response(request, 401, to_tag=self.endpoint.ids.tag(), headers=headers)
            # a plain challenge is answered statelessly, as pypbx's registrar does (§8.2.7)
            self.endpoint.send_response(event.key, response, now=now, forget=True)
            self.answered += 1
            return
        verdict = self.digest.verify(creds, request.method, password=PASSWORD, now=now)
        status = 200 if verdict is Verdict.OK else 403
        response = build_response(request, status, to_tag=self.endpoint.ids.tag())
        self.endpoint.send_response(event.key, response, now=now)
        self.answered += 1


def _round(datagrams: list[bytes]) -> Callable[[], int]:
    """A fresh endpoint + TU; the returned callable runs one round and counts responses."""
    config = EndpointConfig(host="192.0.2.10", max_transactions=10 * len(datagrams))
    endpoint = Endpoint(IdFactory(random.Random(1)), config)
    tu = _Registrar(endpoint)
    clock = [1000.0]

    def run() -> int:
        now = clock[0]
        sent = 0
        receive = endpoint.receive
        to_send = endpoint.datagrams_to_send
        next_event = endpoint.next_event
        for data in datagrams:
            receive(data, SOURCE, now=now)
            while (event := next_event()) is not None:
                tu.handle(event, now)
            sent += len(to_send(now=now))
        now += 40.0
        endpoint.handle_timer(now=now)
        while next_event() is not None:
            pass
        clock[0] = now
        return sent

    return run


def _authorized(number: int) -> list[bytes]:
    """REGISTERs with valid credentials, each answering its own fresh nonce."""
    server = DigestServer(b"bench-secret", REALM, nonce_lifetime=1e9)
    out = []
    for i in range(number):
        challenge = server.challenge(1000.0)
        value = answer_challenge(
            challenge,
            method="REGISTER",
            uri="sip:192.0.2.10",
            username="1000",
            password=PASSWORD,
            cnonce=f"c{i}",
            nc=1,
        )
        out.append(_register(i, value))
    return out


def measure(name: str, datagrams: list[bytes], runs: int) -> float:
    rates = []
    for _ in range(runs):
        run = _round(datagrams)  # a fresh endpoint: every datagram starts a transaction
        start = time.process_time()
        sent = run()
        elapsed = time.process_time() - start
        if sent != len(datagrams):
            raise SystemExit(f"{name}: {sent} responses for {len(datagrams)} requests")
        rates.append(len(datagrams) / elapsed)
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed rounds per figure (median)")
    ap.add_argument("--number", type=int, default=5000, help="round trips per round")
    args = ap.parse_args()
    n = args.number
    scenarios = {
        "OPTIONS -> 200": [_options(i) for i in range(n)],
        "REGISTER -> 401": [_register(i) for i in range(n)],
        "REGISTER+auth -> 200": _authorized(n),
    }
    print(f"Python {sys.version.split()[0]}, median of {args.runs} rounds x {n} round trips")
    header = f"{'scenario':<22} {'round trips/s':>14} {'us each':>8} {'before':>8} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for name, datagrams in scenarios.items():
        rate = measure(name, datagrams, args.runs)
        before = BEFORE[name]
        print(f"{name:<22} {rate:>14,.0f} {1e6 / rate:>8.1f} {before:>8,} {rate / before:>7.1f}x")


if __name__ == "__main__":
    main()
