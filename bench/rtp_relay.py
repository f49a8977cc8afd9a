"""RTP relay benchmark: G.711 calls through pypbx's relay on loopback.

Run: ``.venv/bin/python bench/rtp_relay.py [--calls 50,200,500,1000] [--seconds 5]
[--loop both|asyncio|uvloop] [--mode paced|blast] [--profile] [--micro]``.

The relay runs in a child process (``--serve``): one :class:`RelayLeg` per call leg on the
rtp.conf tutorial range (10000-20000), legs joined by :class:`Relay`, strictrtp=yes. This
process plays both phones of every call: each phone socket sends one 172-octet PCMU packet
every 20 ms (``paced``: 100 packets/s per call in, 100 out), sends spread evenly over the 20 ms,
the send time stamped in the payload. ``blast`` sends as fast as this process can, to find
the relay's ceiling. Printed per run: offered and relayed packets/s, loss, one-way transit
through the relay p50/p99 and added jitter (p99 - p50) as seen by the receiving phone, the
relay process's CPU % (getrusage over the measured window), relayed packets per CPU-second
(in + out) and this generator's own CPU %, which on a 2-core machine shares the cores and
bounds what can be offered. ``--profile`` prints the relay's top functions (cProfile);
``--micro`` times ``datagram_received`` in-process with a stub transport.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pypbx.config.rtpconf import StrictRtp  # noqa: E402
from pypbx.media.ports import PortAllocator  # noqa: E402
from pypbx.media.relay import LegOptions, Relay, RelayLeg  # noqa: E402

HOST = "127.0.0.1"
RTP_START, RTP_END = 10000, 20000
PTIME = 0.02
GROUPS = 20  # sends are spread over this many slots per 20 ms


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# --- the relay process ---------------------------------------------------------------------


def serve(loop_name: str, profile: bool) -> None:
    _raise_nofile()
    config = json.loads(sys.stdin.readline())
    loop = _new_loop(loop_name)
    asyncio.set_event_loop(loop)
    done = loop.create_future()
    legs: list[RelayLeg] = []
    profiler = cProfile.Profile() if profile else None
    marks: dict[str, Any] = {}

    def counters() -> tuple[int, int]:
        return sum(leg.packets_in for leg in legs), sum(leg.packets_out for leg in legs)

    def on_stdin() -> None:
        line = sys.stdin.readline().strip()
        if line == "start":
            marks["cpu0"], marks["t0"], marks["c0"] = _cpu(), time.monotonic(), counters()
            if profiler is not None:
                profiler.enable()
        elif line in ("stop", ""):
            if profiler is not None:
                profiler.disable()
            cpu, now, (pin, pout) = _cpu(), time.monotonic(), counters()
            wall = now - marks.get("t0", now) or 1e-9
            report = {
                "cpu": (cpu - marks.get("cpu0", cpu)) / wall,
                "in": (pin - marks.get("c0", (0, 0))[0]) / wall,
                "out": (pout - marks.get("c0", (0, 0))[1]) / wall,
                "dropped": sum(leg.dropped_strict + leg.dropped_learning for leg in legs),
                "unroutable": sum(leg.dropped_unroutable for leg in legs),
            }
            if profiler is not None:
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
                report["profile"] = text.getvalue()
            print(json.dumps(report), flush=True)
            if not done.done():
                done.set_result(None)

    async def main() -> None:
        alloc = PortAllocator(RTP_START, RTP_END, HOST)
        options = LegOptions(strict=StrictRtp.YES)
        remotes = [tuple(r) for r in config["remotes"]]
        for remote in remotes:
            leg = RelayLeg(alloc.allocate(), remote=remote, options=options, on_close=alloc.release)
            await leg.open()
            legs.append(leg)
        relays = [Relay(legs[i], legs[i + 1]) for i in range(0, len(legs), 2)]
        print(json.dumps({"ports": [leg.port for leg in legs]}), flush=True)
        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await done
        for relay in relays:
            relay.close()

    loop.run_until_complete(main())
    loop.close()


# --- the phones ---------------------------------------------------------------------------


class Phone(asyncio.DatagramProtocol):
    __slots__ = ("received", "transit")

    def __init__(self, transit: list[int]) -> None:
        self.transit = transit
        self.received = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        self.transit.append(time.monotonic_ns() - struct.unpack_from("!Q", data, 12)[0])


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] / 1000.0


def run_point(
    calls: int, seconds: float, loop_name: str, mode: str, profile: bool, gen_loop: str
) -> dict[str, Any]:
    socks = []
    for _ in range(2 * calls):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        socks.append(s)
    remotes = [s.getsockname() for s in socks]
    cmd = [sys.executable, __file__, "--serve", "--loop", loop_name]
    if profile:
        cmd.append("--profile")
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write(json.dumps({"remotes": remotes}) + "\n")
    child.stdin.flush()
    ports = json.loads(child.stdout.readline())["ports"]

    loop = _new_loop(gen_loop or loop_name)
    transit: list[int] = []
    phones: list[Phone] = []
    transports: list[asyncio.DatagramTransport] = []
    sent = 0

    async def generate() -> None:
        nonlocal sent
        for s in socks:
            phone = Phone(transit)
            t, _ = await loop.create_datagram_endpoint(lambda p=phone: p, sock=s)
            phones.append(phone)
            transports.append(t)
        targets = [(HOST, p) for p in ports]
        headers = [struct.pack("!BBHII", 0x80, 0, 0, 0, 0x1000 + i) for i in range(len(socks))]
        pad = bytes(160 - 8)
        pack = struct.Struct("!BBHII").pack
        seqs = [0] * len(socks)
        groups = [list(range(g, len(socks), GROUPS)) for g in range(GROUPS)]
        # warm-up: one packet per phone so every leg has locked its source
        for i, t in enumerate(transports):
            t.sendto(headers[i] + struct.pack("!Q", time.monotonic_ns()) + pad, targets[i])
        await asyncio.sleep(0.5)
        transit.clear()
        for p in phones:
            p.received = 0
        child.stdin.write("start\n")
        child.stdin.flush()
        start = loop.time()
        end = start + seconds
        slot = PTIME / GROUPS
        tick = 0
        while True:
            due = start + tick * slot
            if (loop.time() if mode == "blast" else due) >= end:
                break
            delay = due - loop.time()
            if mode == "paced" and delay > 0:
                await asyncio.sleep(delay)
            elif mode == "blast":
                await asyncio.sleep(0)
            for i in groups[tick % GROUPS]:
                seq = seqs[i] = (seqs[i] + 1) & 0xFFFF
                transports[i].sendto(
                    pack(0x80, 0, seq, seq * 160, 0x1000 + i)
                    + struct.pack("!Q", time.monotonic_ns())
                    + pad,
                    targets[i],
                )
            sent += len(groups[tick % GROUPS])
            tick += 1
        child.stdin.write("stop\n")
        child.stdin.flush()
        await asyncio.sleep(0.3)  # stragglers

    cpu0, t0 = _cpu(), time.monotonic()
    loop.run_until_complete(generate())
    gen_cpu = (_cpu() - cpu0) / (time.monotonic() - t0)
    report = json.loads(child.stdout.readline())
    child.stdin.close()
    child.wait(timeout=30)
    for t in transports:
        t.close()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    received = sum(p.received for p in phones)
    transit.sort()
    p50, p99 = _percentile(transit, 0.5), _percentile(transit, 0.99)
    return {
        "loop": loop_name,
        "calls": calls,
        "offered": sent / seconds,
        "relay_in": report["in"],
        "relay_out": report["out"],
        "loss": 1 - received / sent if sent else 0.0,
        "p50_us": p50,
        "p99_us": p99,
        "jitter_us": p99 - p50,
        "relay_cpu": report["cpu"],
        "per_core": (report["in"] + report["out"]) / 2 / report["cpu"] if report["cpu"] else 0.0,
        "gen_cpu": gen_cpu,
        "profile": report.get("profile", ""),
    }


# --- in-process micro-benchmark ---------------------------------------------------------------


class _NullTransport:
    def sendto(self, data: bytes, addr: Any) -> None:
        pass

    def abort(self) -> None:
        pass


def micro(number: int = 500_000) -> None:
    from pypbx.media.codecs import route_between
    from pypbx.sip.sdp import Codec

    alloc = PortAllocator(RTP_START, RTP_END, HOST)
    a = RelayLeg(alloc.allocate(), remote=(HOST, 4000))
    b = RelayLeg(alloc.allocate(), remote=(HOST, 4002))
    a.transport = b.transport = _NullTransport()  # type: ignore[assignment]
    Relay(a, b)
    packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 7) + bytes(160)
    src = (HOST, 4000)
    a.datagram_received(packet, src)
    pcmu, pcma = [Codec(0, "PCMU", 8000)], [Codec(8, "PCMA", 8000)]
    ev101 = [*pcmu, Codec(101, "telephone-event", 8000)]
    ev96 = [*pcmu, Codec(96, "telephone-event", 8000)]
    event = struct.pack("!BBHII", 0x80, 101, 1, 160, 7) + bytes(4)
    cases = [
        ("forward", None, packet),
        ("pt-rewrite", route_between(ev101, ev96), event),
        ("pcmu->pcma", route_between(pcmu, pcma), packet),
    ]
    for name, route, pkt in cases:
        a.set_route(route)
        recv = a.datagram_received
        t0 = time.perf_counter()
        for _ in range(number):
            recv(pkt, src)
        dt = time.perf_counter() - t0
        print(f"  {name:<12} {dt / number * 1e9:7.0f} ns/packet  ({number / dt:,.0f} packets/s)")
    a.close()
    b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", default="50,200,500,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--loop", default="both", choices=["both", "asyncio", "uvloop"])
    parser.add_argument("--mode", default="paced", choices=["paced", "blast"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--micro", action="store_true")
    parser.add_argument("--gen-loop", default="", choices=["", "asyncio", "uvloop"])
    args = parser.parse_args()
    if args.serve:
        serve(args.loop, args.profile)
        return
    _raise_nofile()
    if args.micro:
        print("datagram_received with a stub transport (no syscalls):")
        micro()
        return
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loops = [name for name in loops if name != "uvloop"]
    print(f"mode={args.mode} seconds={args.seconds} cores={os.cpu_count()}")
    head = (
        f"{'loop':<8}{'calls':>6}{'offered/s':>11}{'relayed/s':>11}{'loss%':>8}"
        f"{'p50us':>8}{'p99us':>9}{'jit99us':>9}{'relayCPU%':>10}{'pkts/core-s':>12}{'genCPU%':>9}"
    )
    print(head)
    for loop_name in loops:
        for calls in (int(c) for c in args.calls.split(",")):
            r = run_point(calls, args.seconds, loop_name, args.mode, args.profile, args.gen_loop)
            print(
                f"{r['loop']:<8}{r['calls']:>6}{r['offered']:>11,.0f}{r['relay_out']:>11,.0f}"
                f"{100 * r['loss']:>8.3f}{r['p50_us']:>8.0f}{r['p99_us']:>9.0f}"
                f"{r['jitter_us']:>9.0f}{100 * r['relay_cpu']:>10.1f}{r['per_core']:>12,.0f}"
                f"{100 * r['gen_cpu']:>9.1f}",
                flush=True,
            )
            if args.profile:
                print(r["profile"])


if __name__ == "__main__":
    main()
