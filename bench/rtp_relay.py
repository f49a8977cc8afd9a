"""RTP relay benchmark: G.711 calls through pypbx's relay on loopback.

Run: ``.venv/bin/python bench/rtp_relay.py [--calls 50,200,500,1000] [--seconds 5 | --long]
[--repeat 3] [--loop both|asyncio|uvloop] [--route forward|transcode|both] [--rcvbuf BYTES]
[--profile] [--micro]``.

The relay runs in a child process (``--serve``): one :class:`RelayLeg` per call leg on the
rtp.conf tutorial range (10000-20000), legs joined by :class:`Relay`, strictrtp=yes; with
``--route transcode`` the A side is PCMU and the B side PCMA, so every packet is translated.

This process plays every phone with plain non-blocking sockets (no event loop): all A-side
phones share one socket and all B-side phones another (the relay cannot tell: each leg still
has its own port, source check and peer), which keeps the generator cheap enough to leave
the relay a core on a 2-core machine. Each call sends one 172-octet packet per direction every
20 ms, sends spread over 20 slots per 20 ms; the generator notes each packet's send time by
stream and sequence number (the payload stays plain G.711 silence, so transcoding does not
touch any stamp). Arrival times are the kernel's (``SO_TIMESTAMPNS``), so the generator's own
lateness in reading does not count as the relay's.

Printed per point (medians over ``--repeat`` runs): offered and relayed packets/s, loss (not
received at all, after a drain), the kernel's drops on the relay's sockets and on the phones'
sockets (``/proc/net/udp``), one-way transit p50/p99, the added jitter as the spread of the
inter-arrival time against the sender's spacing (|Δarrival - Δsend| of consecutive packets of
one stream: median and p99), relay CPU % of one core and the kernel's share of it, relay CPU
µs per relayed packet and, from it, CPU per call at 100 packets/s (robust when other processes
take the cores), the generator's CPU % and how late its sends fell behind the 20 ms schedule
(the offered rate is measured over the real sending time: a starved generator shows less).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import select
import socket
import statistics
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pypbx.config.rtpconf import StrictRtp  # noqa: E402
from pypbx.media.codecs import route_between  # noqa: E402
from pypbx.media.ports import PortAllocator  # noqa: E402
from pypbx.media.relay import LegOptions, Relay, RelayLeg  # noqa: E402
from pypbx.sip.sdp import Codec  # noqa: E402

HOST = "127.0.0.1"
RTP_START, RTP_END = 10000, 20000
PTIME = 0.02
GROUPS = 20  # sends are spread over this many slots per 20 ms
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
HEADER = struct.Struct("!BBHII")  # the RTP header
RING = 2048  # send times kept per stream: 41 s of packets (a later arrival would be misread)
TIMESPEC = struct.Struct("@qq")
PCMU, PCMA = [Codec(0, "PCMU", 8000)], [Codec(8, "PCMA", 8000)]


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sys_cpu() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _new_loop(name: str) -> Any:
    import asyncio

    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def udp_drops(ports: set[int]) -> int:
    """The kernel's receive drops summed over the UDP sockets bound to ``ports``."""
    total = 0
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if port in ports:
                total += int(fields[-1])
    return total


# --- the relay process ---------------------------------------------------------------------


def serve(loop_name: str, profile: bool) -> None:
    import asyncio

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
            marks["sys0"] = _sys_cpu()
            if profiler is not None:
                profiler.enable()
        elif line in ("stop", ""):
            if profiler is not None:
                profiler.disable()
            cpu, now, (pin, pout) = _cpu(), time.monotonic(), counters()
            wall = now - marks.get("t0", now) or 1e-9
            report = {
                "cpu": (cpu - marks.get("cpu0", cpu)) / wall,
                "sys_share": (_sys_cpu() - marks.get("sys0", 0.0)) / (cpu - marks["cpu0"])
                if cpu > marks.get("cpu0", cpu)
                else 0.0,
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
        rcvbuf = config.get("rcvbuf")
        alloc = PortAllocator(RTP_START, RTP_END, HOST, rcvbuf=rcvbuf)
        options = LegOptions(strict=StrictRtp.YES)
        a_remote, b_remote = (tuple(r) for r in config["remotes"])
        transcode = config["route"] == "transcode"
        for _ in range(config["calls"]):
            for remote in (a_remote, b_remote):
                pair = alloc.allocate()
                leg = RelayLeg(pair, remote=remote, options=options, on_close=alloc.release)
                await leg.open()
                legs.append(leg)
        relays = []
        for i in range(0, len(legs), 2):
            if transcode:
                a_to_b, b_to_a = route_between(PCMU, PCMA), route_between(PCMA, PCMU)
                relays.append(Relay(legs[i], legs[i + 1], a_to_b=a_to_b, b_to_a=b_to_a))
            else:
                relays.append(Relay(legs[i], legs[i + 1]))
        bufs = {legs[0].pair.rtp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}
        print(json.dumps({"ports": [leg.port for leg in legs], "rcvbuf": sorted(bufs)}), flush=True)
        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await done
        for relay in relays:
            relay.close()

    loop.run_until_complete(main())
    loop.close()


# --- the phones ---------------------------------------------------------------------------


def _phone_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:  # as root: room for ~0.5 s of everything relayed to this side
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024 * 1024)
    return s


def _percentile(sorted_values: Any, q: float) -> float:
    if not len(sorted_values):
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


class Receiver:
    """Drains one phone socket: counts per stream, transit and inter-arrival deviation (µs)."""

    def __init__(self, sock: socket.socket, sent_at: list[array[int]]) -> None:
        self.sock = sock
        self.sent_at = sent_at
        self.received = 0
        self.transit = array("q")
        self.spread = array("q")
        self.last = [(0, 0, 0)] * len(sent_at)  # per SSRC: (seq, send ns, arrival ns)

    def drain(self) -> int:
        sock, unpack, ts = self.sock, HEADER.unpack_from, TIMESPEC.unpack_from
        transit, spread, last, sent_at = self.transit, self.spread, self.last, self.sent_at
        n = 0
        while True:
            try:
                data, anc, _flags, _addr = sock.recvmsg(256, 64)
            except BlockingIOError:
                break
            n += 1
            _v, _pt, seq, _ts, ssrc = unpack(data)
            sent = sent_at[ssrc][seq % RING]
            if anc:
                sec, nsec = ts(anc[0][2])
                arrived = sec * 1_000_000_000 + nsec
            else:
                arrived = time.time_ns()
            transit.append((arrived - sent) // 1000)
            prev_seq, prev_sent, prev_arrived = last[ssrc]
            if prev_seq and seq == (prev_seq + 1) & 0xFFFF:
                spread.append(abs((arrived - prev_arrived) - (sent - prev_sent)) // 1000)
            last[ssrc] = (seq, sent, arrived)
        self.received += n
        return n


def run_point(
    calls: int,
    seconds: float,
    loop_name: str,
    route: str,
    profile: bool,
    rcvbuf: int | None,
    nice: int = 0,
) -> dict[str, Any]:
    a_sock, b_sock = _phone_socket(), _phone_socket()
    cmd = [sys.executable, __file__, "--serve", "--loop", loop_name]
    if profile:
        cmd.append("--profile")
    child = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    remotes = [a_sock.getsockname(), b_sock.getsockname()]
    config = {"remotes": remotes, "calls": calls, "route": route, "rcvbuf": rcvbuf}
    child.stdin.write(json.dumps(config) + "\n")
    child.stdin.flush()
    hello = json.loads(child.stdout.readline())
    ports: list[int] = hello["ports"]
    relay_ports, phone_ports = set(ports), {a_sock.getsockname()[1], b_sock.getsockname()[1]}
    # stream i: call i // 2, A side (even i) sends on a_sock to leg 2k, B side on b_sock
    socks = [a_sock if i % 2 == 0 else b_sock for i in range(2 * calls)]
    targets = [(HOST, p) for p in ports]
    # what arrives on the B socket was sent by the A side of the same call, and vice versa
    sent_at = [array("q", bytes(8 * RING)) for _ in range(2 * calls)]
    receivers = [Receiver(a_sock, sent_at), Receiver(b_sock, sent_at)]
    pt_of = [0 if (i % 2 == 0 or route != "transcode") else 8 for i in range(2 * calls)]
    silence = {0: b"\xff" * 160, 8: b"\xd5" * 160}
    payloads = [silence[pt] for pt in pt_of]
    pack = HEADER.pack
    groups = [list(range(g, 2 * calls, GROUPS)) for g in range(GROUPS)]
    seqs = [0] * (2 * calls)
    sent = 0

    def send(i: int) -> None:
        seq = seqs[i] = (seqs[i] + 1) & 0xFFFF or 1
        sent_at[i][seq % RING] = time.time_ns()
        socks[i].sendto(pack(0x80, pt_of[i], seq, seq * 160, i) + payloads[i], targets[i])

    def drain_all() -> int:
        return sum(r.drain() for r in receivers)

    # warm-up: every leg sees its phone once (strict RTP accepts the SDP address at once)
    for i in range(2 * calls):
        send(i)
    end_warm = time.monotonic() + 0.5
    while time.monotonic() < end_warm:
        select.select([a_sock, b_sock], [], [], 0.05)
        drain_all()
    for r in receivers:
        r.received = 0
        r.transit = array("q")
        r.spread = array("q")
    drops0 = udp_drops(relay_ports), udp_drops(phone_ports)
    child.stdin.write("start\n")
    child.stdin.flush()
    cpu0 = _cpu()
    start = time.monotonic()
    last_send = start
    slot = PTIME / GROUPS
    tick = 0
    late = 0.0
    while True:
        due = start + tick * slot
        if due >= start + seconds:
            break
        while True:
            now = time.monotonic()
            if now >= due:
                break
            select.select([a_sock, b_sock], [], [], due - now)
            drain_all()
        late = max(late, time.monotonic() - due)
        for i in groups[tick % GROUPS]:
            send(i)
        last_send = time.monotonic()
        sent += len(groups[tick % GROUPS])
        tick += 1
        drain_all()
    child.stdin.write("stop\n")
    child.stdin.flush()
    quiet_until = time.monotonic() + 0.3
    hard_stop = time.monotonic() + 5.0
    while time.monotonic() < min(quiet_until, hard_stop):  # stragglers: until 0.3 s quiet
        select.select([a_sock, b_sock], [], [], 0.05)
        if drain_all():
            quiet_until = time.monotonic() + 0.3
    gen_cpu = (_cpu() - cpu0) / (time.monotonic() - start)
    report = json.loads(child.stdout.readline())
    drops = udp_drops(relay_ports) - drops0[0], udp_drops(phone_ports) - drops0[1]
    child.stdin.close()
    child.wait(timeout=30)
    a_sock.close()
    b_sock.close()
    received = sum(r.received for r in receivers)
    transit = sorted(x for r in receivers for x in r.transit)
    spread = sorted(x for r in receivers for x in r.spread)
    return {
        "loop": loop_name,
        "route": route,
        "calls": calls,
        "offered": sent / max(seconds, last_send - start),
        "relay_in": report["in"],
        "relay_out": report["out"],
        "loss": 1 - received / sent if sent else 0.0,
        "relay_drops": drops[0],
        "phone_drops": drops[1],
        "p50_us": _percentile(transit, 0.5),
        "p99_us": _percentile(transit, 0.99),
        "jit50_us": _percentile(spread, 0.5),
        "jit99_us": _percentile(spread, 0.99),
        "relay_cpu": report["cpu"],
        "sys_share": report["sys_share"],
        "us_per_pkt": 1e6 * report["cpu"] / report["out"] if report["out"] else float("nan"),
        # at the nominal 100 packets/s per call (50 each way), from the CPU cost per packet:
        # unlike CPU % of wall time, this holds when other processes starve the relay
        "cpu_per_call": 100 * report["cpu"] / report["out"] if report["out"] else float("nan"),
        "gen_cpu": gen_cpu,
        "gen_late_ms": late * 1000,
        "rcvbuf": hello["rcvbuf"][0],
        "profile": report.get("profile", ""),
    }


# --- in-process micro-benchmark ---------------------------------------------------------------


class _NullTransport:
    def sendto(self, data: bytes, addr: Any) -> None:
        pass

    def abort(self) -> None:
        pass


def micro(number: int = 500_000) -> None:
    alloc = PortAllocator(RTP_START, RTP_END, HOST)
    a = RelayLeg(alloc.allocate(), remote=(HOST, 4000))
    b = RelayLeg(alloc.allocate(), remote=(HOST, 4002))
    a.transport = b.transport = _NullTransport()  # type: ignore[assignment]
    Relay(a, b)
    packet = struct.pack("!BBHII", 0x80, 0, 1, 160, 7) + bytes(160)
    src = (HOST, 4000)
    a.datagram_received(packet, src)
    ev101 = [*PCMU, Codec(101, "telephone-event", 8000)]
    ev96 = [*PCMU, Codec(96, "telephone-event", 8000)]
    event = struct.pack("!BBHII", 0x80, 101, 1, 160, 7) + bytes(4)
    cases = [
        ("forward", None, packet),
        ("pt-rewrite", route_between(ev101, ev96), event),
        ("pcmu->pcma", route_between(PCMU, PCMA), packet),
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


COLUMNS = [
    ("loop", "<8", "{}"),
    ("route", "<10", "{}"),
    ("calls", ">6", "{}"),
    ("offered", ">10", "{:,.0f}"),
    ("relay_out", ">10", "{:,.0f}"),
    ("loss", ">8", "{:.3%}"),
    ("relay_drops", ">7", "{:.0f}"),
    ("phone_drops", ">7", "{:.0f}"),
    ("p50_us", ">8", "{:.0f}"),
    ("p99_us", ">8", "{:.0f}"),
    ("jit50_us", ">7", "{:.0f}"),
    ("jit99_us", ">7", "{:.0f}"),
    ("relay_cpu", ">8", "{:.1%}"),
    ("sys_share", ">5", "{:.0%}"),
    ("us_per_pkt", ">7", "{:.1f}"),
    ("cpu_per_call", ">9", "{:.3%}"),
    ("gen_cpu", ">8", "{:.1%}"),
    ("gen_late_ms", ">8", "{:.1f}"),
]
HEADS = {
    "offered": "offered/s",
    "relay_out": "relayed/s",
    "relay_drops": "rdrops",
    "phone_drops": "pdrops",
    "p50_us": "p50us",
    "p99_us": "p99us",
    "jit50_us": "jit50",
    "jit99_us": "jit99",
    "relay_cpu": "relCPU",
    "us_per_pkt": "us/pkt",
    "sys_share": "sys",
    "cpu_per_call": "CPU/call",
    "gen_cpu": "genCPU",
    "gen_late_ms": "lateMs",
}


def _row(r: dict[str, Any]) -> str:
    return "".join(f"{fmt.format(r[k]):{align}}" for k, align, fmt in COLUMNS)


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[0])
    for key, _align, fmt in COLUMNS:
        if fmt != "{}":
            out[key] = statistics.median(r[key] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", default="50,200,500,1000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--long", action="store_true", help="60 s per point")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point (medians)")
    parser.add_argument("--loop", default="uvloop", choices=["both", "asyncio", "uvloop"])
    parser.add_argument("--route", default="forward", choices=["forward", "transcode", "both"])
    parser.add_argument("--rcvbuf", type=int, default=None, help="SO_RCVBUF of relay sockets")
    parser.add_argument(
        "--relay-nice", type=int, default=0, help="nice value of the relay (root for < 0)"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--micro", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve(args.loop, args.profile)
        return
    _raise_nofile()
    if args.micro:
        print("datagram_received with a stub transport (no syscalls):")
        micro()
        return
    seconds = 60.0 if args.long else args.seconds
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loops = [name for name in loops if name != "uvloop"]
    routes = ["forward", "transcode"] if args.route == "both" else [args.route]
    print(
        f"seconds={seconds} repeat={args.repeat} cores={os.cpu_count()} "
        f"relay rcvbuf={args.rcvbuf or 'system default'} relay nice={args.relay_nice} "
        f"(net.core.rmem_default={Path('/proc/sys/net/core/rmem_default').read_text().strip()})"
    )
    print("".join(f"{HEADS.get(k, k):{align}}" for k, align, _fmt in COLUMNS), flush=True)
    per_call: dict[tuple[str, int], dict[str, float]] = {}
    for loop_name in loops:
        for calls in (int(c) for c in args.calls.split(",")):
            for route in routes:
                runs = [
                    run_point(
                        calls,
                        seconds,
                        loop_name,
                        route,
                        args.profile,
                        args.rcvbuf,
                        args.relay_nice,
                    )
                    for _ in range(args.repeat)
                ]
                r = _median_row(runs)
                per_call.setdefault((loop_name, calls), {})[route] = r["cpu_per_call"]
                print(_row(r), flush=True)
                if args.profile:
                    print(runs[-1]["profile"])
    if len(routes) == 2:
        print("transcoding PCMU<->PCMA, relay CPU per call (% of one core), median of runs:")
        for (loop_name, calls), cpu in per_call.items():
            extra = cpu["transcode"] - cpu["forward"]
            print(
                f"  {loop_name} {calls} calls: forward {cpu['forward']:.4%}, "
                f"transcode {cpu['transcode']:.4%} (+{extra:.4%} per call)"
            )


if __name__ == "__main__":
    main()
