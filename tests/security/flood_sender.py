"""Flood sender for the live flood test (runs as its own process).

``python flood_sender.py MODE HOST PORT SECONDS RATE SRC1 [SRC2 ...]`` sends, round-robin
from one UDP socket per source address, a mix of malformed and valid-looking
OPTIONS/INVITE/REGISTER datagrams for SECONDS seconds, paced to at most RATE datagrams per
second in total, then prints one JSON line: ``{"sent": N, "seconds": S, "rate": N/S,
"errors": E}``. MODE ``scan`` targets a new random user in every request (a scanner's
signature); ``steady`` repeats one user per source (no scan signal: only the rate limit and
the message checks stand in the way).
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time


def datagrams(host: str, port: int, src: str, rng: random.Random, *, steady: bool) -> list[bytes]:
    out: list[bytes] = []
    fixed = str(rng.randrange(100, 99_999_999))
    for i in range(400):
        user = fixed if steady else str(rng.randrange(100, 99_999_999))
        method = ("OPTIONS", "INVITE", "REGISTER")[i % 3]
        branch = f"z9hG4bKfl{rng.getrandbits(48):x}"
        ruri = f"sip:{user}@{host}:{port}" if method != "REGISTER" else f"sip:{host}:{port}"
        valid = (
            f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:5060;branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{host}>;tag={rng.getrandbits(32):x}\r\n"
            f"To: <sip:{user}@{host}>\r\n"
            f"Call-ID: fl{rng.getrandbits(64):x}@{src}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:{user}@{src}:5060>\r\n"
            "User-Agent: flood\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        kind = i % 8
        if kind < 4:
            out.append(valid)
        elif kind == 4:
            out.append(valid[: rng.randrange(10, len(valid))])  # truncated
        elif kind == 5:
            out.append(rng.randbytes(rng.randrange(1, 1400)))  # noise
        elif kind == 6:
            out.append(valid.replace(b"CSeq: 1", b"CSeq: x"))  # bad header value
        else:
            out.append(valid.replace(b"\r\n\r\n", b"\r\n" + b"X: y\r\n" * 200 + b"\r\n"))
    return out


def main(argv: list[str]) -> None:
    steady = argv[0] == "steady"
    host, port, seconds, rate = argv[1], int(argv[2]), float(argv[3]), float(argv[4])
    sources = argv[5:]
    rng = random.Random(9)
    socks = []
    for src in sources:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((src, 0))
        sock.setblocking(False)
        socks.append((sock, datagrams(host, port, src, rng, steady=steady)))
    dest = (host, port)
    sent = errors = 0
    start = time.monotonic()
    end = start + seconds
    batch = 64
    while (now := time.monotonic()) < end:
        if sent > (now - start) * rate:
            time.sleep(0.001)
            continue
        for k in range(batch):
            sock, data = socks[(sent + k) % len(socks)]
            try:
                sock.sendto(data[(sent // len(socks) + k) % len(data)], dest)
            except OSError:  # a full socket buffer: counted, not retried
                errors += 1
        sent += batch
    took = time.monotonic() - start
    sent -= errors
    print(json.dumps({"sent": sent, "seconds": took, "rate": sent / took, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1:])
