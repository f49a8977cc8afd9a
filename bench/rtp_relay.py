"""RTP relay benchmark: G.711 calls through pypbx's relay on loopback.

Run: ``.venv/bin/python bench/rtp_relay.py [--calls 50,200,500,1000] [--seconds 5 | --long]
[--repeat 3] [--warmup 6] [--groups 20] [--generator c|python] [--pin | --no-pin] [--rt | --no-rt]
[--loop both|asyncio|uvloop] [--route forward|transcode|both] [--rcvbuf BYTES] [--profile]
[--micro]``.

The relay runs in a child process (``--serve``): one :class:`RelayLeg` per call leg on the
rtp.conf tutorial range (10000-20000), legs joined by :class:`Relay`, strictrtp=yes; with
``--route transcode`` the A side is PCMU and the B side PCMA, so every packet is translated.
Once the legs are set up it calls :func:`pypbx.server.tune_gc` as the server does once started
(without it the bench would measure collector pauses the server does not have).

The phones: all A-side phones share one socket and all B-side phones another (the relay cannot
tell: each leg still has its own port, source check and peer). Each call sends one 172-octet
packet per direction every 20 ms, sends spread over ``--groups`` slots per 20 ms; the generator
notes each packet's send time (CLOCK_REALTIME, right before its own sendto) by stream and
sequence number (the payload stays plain G.711 silence, so transcoding touches no stamp).
Arrival times are the kernel's (``SO_TIMESTAMPNS``), so the generator's own lateness in
reading does not count as the relay's. The default generator is ``bench/rtpgen.c`` (see its
header for the protocol), compiled on demand into ``bench/.build/`` with ``cc``: at 1000 calls
(100,000 packets/s each way) the Python generator took ~94% of a core, fell behind (85,000/s
offered, sends up to 800 ms late) and fought the relay for the cores, so those numbers
measured the generator. The C one paces with ``clock_nanosleep(TIMER_ABSTIME)`` and reads
with ``recvmmsg``. ``--generator python`` keeps the old one (same schedule and warm-up).

Warm-up: pypbx legs learn their source for 5 s (strictrtp) and lock onto it after that. The
generator sends on the normal schedule for ``--warmup`` seconds (6; keep it above 5.5 so that
every leg gets packets after its learning window), drains, and only then does the relay take
its "start" marks (CPU, packet counters) and the measured ``--seconds`` begin.

Pinning (``--pin``, the default with 2 or more usable CPUs): the relay child on the second CPU,
this process and the generator on the first, so the two do not take turns on one core. With
``--rt`` (the default as root) the C generator runs at SCHED_FIFO priority 1, so other work on
its CPU cannot make it late (it sleeps between slots; the relay keeps normal priority, as in
production). Other processes on the machine then crowd the relay's CPU instead: relay CPU % of
wall time drops and transit grows, while CPU µs per packet stays a fair measure.

Printed per point (medians over ``--repeat`` runs): offered and relayed packets/s, loss (not
received at all, after a drain until 0.3 s quiet), the kernel's drops on the relay's sockets
and on the phones' sockets (``/proc/net/udp``), one-way transit p50/p99, the added jitter as
the spread of the inter-arrival time against the sender's spacing (|Δarrival - Δsend| of
consecutive packets of one stream: median and p99), relay CPU % of one core and the kernel's
share of it, relay CPU µs per relayed packet and, from it, CPU per call at 100 packets/s
(robust when other processes take the cores), the generator's CPU % and how late its sends fell
behind the schedule (the offered rate is measured over the real sending time: a starved
generator shows less), and ``path``: the share of the relay's received packets that took its
fast path (``LegStats.fast_in``; "-" when legs do not count it).
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
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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
GROUPS = 20  # default: sends are spread over this many slots per 20 ms
WARMUP = 6.0  # default: past the 5 s strictrtp learning window on every leg
QUIET, HARD_STOP = 0.3, 5.0  # drains end after QUIET s without a packet, at HARD_STOP s at most
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
PHONE_RCVBUF = 32 * 1024 * 1024  # as root: room for ~0.5 s of everything relayed to one side
HEADER = struct.Struct("!BBHII")  # the RTP header
RING = 4096  # send times kept per stream: 82 s of packets (a later arrival would be misread)
TIMESPEC = struct.Struct("@qq")
PCMU, PCMA = [Codec(0, "PCMU", 8000)], [Codec(8, "PCMA", 8000)]
RTPGEN_SRC = Path(__file__).with_name("rtpgen.c")
RTPGEN = Path(__file__).with_name(".build") / "rtpgen"


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


def pin_cpus() -> tuple[int, int] | None:
    """The CPUs for (generator, relay) when pinning is possible: the first two usable ones."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


# --- the relay process ---------------------------------------------------------------------


def serve(loop_name: str, profile: bool, relay_path: str = "c") -> None:
    import asyncio

    from pypbx.media.poller import FastTable, MediaPoller
    from pypbx.server import tune_gc

    if relay_path == "c" and FastTable is None:
        sys.exit("rtp_relay: the C fast path is not built (pip install -e . with cc and headers)")
    MediaPoller.use_c = relay_path == "c"

    _raise_nofile()
    config = json.loads(sys.stdin.readline())
    if config.get("cpu") is not None:
        os.sched_setaffinity(0, {config["cpu"]})
    loop = _new_loop(loop_name)
    asyncio.set_event_loop(loop)
    done = loop.create_future()
    legs: list[RelayLeg] = []
    profiler = cProfile.Profile() if profile else None
    marks: dict[str, Any] = {}

    def counters() -> tuple[int, int]:
        stats = [leg.stats() for leg in legs]
        return sum(st.packets_in for st in stats), sum(st.packets_out for st in stats)

    def fast_in() -> int | None:
        """Packets received on the relay's fast path so far (``LegStats.fast_in``), if counted."""
        if not legs or not hasattr(legs[0].stats(), "fast_in"):
            return None
        return sum(getattr(leg.stats(), "fast_in", 0) for leg in legs)

    def on_stdin() -> None:
        line = sys.stdin.readline().strip()
        if line == "start":
            marks["cpu0"], marks["t0"], marks["c0"] = _cpu(), time.monotonic(), counters()
            marks["sys0"] = _sys_cpu()
            marks["fast0"] = fast_in()
            if profiler is not None:
                profiler.enable()
            print(json.dumps({"started": True}), flush=True)
        elif line == "stop":  # the marks end; relaying goes on for the generator's drain
            if profiler is not None:
                profiler.disable()
            cpu, now, (pin, pout) = _cpu(), time.monotonic(), counters()
            cpu0, t0 = marks.get("cpu0", cpu), marks.get("t0", now)
            in0, out0 = marks.get("c0", (0, 0))
            wall = now - t0 or 1e-9
            fast0, fast1 = marks.get("fast0"), fast_in()
            fast = (
                None
                if fast0 is None or fast1 is None or pin == in0
                else (fast1 - fast0) / (pin - in0)
            )
            report = {
                "cpu": (cpu - cpu0) / wall,
                "sys_share": (_sys_cpu() - marks.get("sys0", 0.0)) / (cpu - cpu0)
                if cpu > cpu0
                else 0.0,
                "in": (pin - in0) / wall,
                "out": (pout - out0) / wall,
                "fast": fast,
                "dropped": sum(leg.dropped_strict + leg.dropped_learning for leg in legs),
                "unroutable": sum(leg.dropped_unroutable for leg in legs),
            }
            if profiler is not None:
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
                report["profile"] = text.getvalue()
            print(json.dumps(report), flush=True)
        if line == "" and not done.done():  # the driver is done: stop relaying
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
        tune_gc()
        bufs = {legs[0].pair.rtp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}
        print(json.dumps({"ports": [leg.port for leg in legs], "rcvbuf": sorted(bufs)}), flush=True)
        loop.add_reader(sys.stdin.fileno(), on_stdin)
        await done
        for relay in relays:
            relay.close()

    loop.run_until_complete(main())
    loop.close()


# --- the phones ---------------------------------------------------------------------------


def _percentile(sorted_values: Any, q: float) -> float:
    if not len(sorted_values):
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def build_rtpgen() -> Path:
    """``bench/.build/rtpgen``, compiled from ``bench/rtpgen.c`` when missing or older."""
    if not RTPGEN.exists() or RTPGEN.stat().st_mtime < RTPGEN_SRC.stat().st_mtime:
        RTPGEN.parent.mkdir(exist_ok=True)
        cmd = ["cc", "-O2", "-Wall", "-Wextra", "-o", str(RTPGEN), str(RTPGEN_SRC)]
        subprocess.run(cmd, check=True)
    return RTPGEN


class CPhones:
    """The phones as ``bench/rtpgen.c`` plays them (a child process; protocol in its header)."""

    def __init__(
        self,
        streams: int,
        route: str,
        seconds: float,
        warmup: float,
        groups: int,
        cpu: int | None,
        rt: bool,
    ) -> None:
        cmd = [str(build_rtpgen()), "--streams", str(streams), "--route", route]
        cmd += ["--seconds", str(seconds), "--warmup", str(warmup), "--groups", str(groups)]
        cmd += ["--rcvbuf", str(PHONE_RCVBUF)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        if rt:
            cmd += ["--rt", "1"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self._read()
        self.addresses = [(HOST, hello["a"]), (HOST, hello["b"])]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise RuntimeError(f"rtpgen exited with status {self.proc.returncode}")
        result: dict[str, Any] = json.loads(line)
        return result

    def _write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def warm_up(self, ports: list[int]) -> dict[str, Any]:
        self._write("ports " + " ".join(map(str, ports)))
        return self._read()

    def measure(self, on_sent: Callable[[], None]) -> dict[str, Any]:
        self._write("go")
        if self._read().get("event") != "sent":
            raise RuntimeError("rtpgen: expected the 'sent' event")
        on_sent()
        done = self._read()
        self.proc.wait(timeout=10)

        def us(value: float) -> float:
            return value if value >= 0 else float("nan")

        wall = done["wall_s"] or 1e-9
        return {
            "sent": done["sent"],
            "received": done["received"],
            "send_span": wall,
            "p50_us": us(done["transit_p50_us"]),
            "p99_us": us(done["transit_p99_us"]),
            "jit50_us": us(done["jitter_p50_us"]),
            "jit99_us": us(done["jitter_p99_us"]),
            "gen_cpu": done["cpu_s"] / wall,
            "gen_late_ms": done["late_max_ms"],
            "gen_late_p99_ms": done["late_p99_ms"],
        }

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Receiver:
    """Drains one phone socket: counts per stream, transit and inter-arrival deviation (µs)."""

    def __init__(self, sock: socket.socket, sent_at: list[array[int]]) -> None:
        self.sock = sock
        self.sent_at = sent_at
        self.reset()
        self.last = [(0, 0, 0)] * len(sent_at)  # per SSRC: (seq, send ns, arrival ns)

    def reset(self) -> None:
        self.received = 0
        self.transit = array("q")
        self.spread = array("q")

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


def _phone_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, PHONE_RCVBUF)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PHONE_RCVBUF)
    return s


class PythonPhones:
    """The phones in this process, with plain non-blocking sockets (no event loop)."""

    def __init__(
        self, streams: int, route: str, seconds: float, warmup: float, groups: int
    ) -> None:
        self.a_sock, self.b_sock = _phone_socket(), _phone_socket()
        self.addresses = [self.a_sock.getsockname(), self.b_sock.getsockname()]
        self.seconds, self.warmup = seconds, warmup
        self.streams = streams
        # stream i: call i // 2, A side (even i) sends on a_sock to leg 2k, B side on b_sock
        self.socks = [self.a_sock if i % 2 == 0 else self.b_sock for i in range(streams)]
        # what arrives on the B socket was sent by the A side of the same call, and vice versa
        self.sent_at = [array("q", bytes(8 * RING)) for _ in range(streams)]
        self.receivers = [Receiver(self.a_sock, self.sent_at), Receiver(self.b_sock, self.sent_at)]
        self.pt_of = [0 if (i % 2 == 0 or route != "transcode") else 8 for i in range(streams)]
        silence = {0: b"\xff" * 160, 8: b"\xd5" * 160}
        self.payloads = [silence[pt] for pt in self.pt_of]
        self.groups = [list(range(g, streams, groups)) for g in range(groups)]
        self.seqs = [0] * streams
        self.targets: list[tuple[str, int]] = []

    def _drain_all(self) -> int:
        return sum(r.drain() for r in self.receivers)

    def _drain_quiet(self) -> int:
        total = 0
        now = time.monotonic()
        quiet_until, hard_stop = now + QUIET, now + HARD_STOP
        while time.monotonic() < min(quiet_until, hard_stop):
            select.select([self.a_sock, self.b_sock], [], [], 0.05)
            n = self._drain_all()
            total += n
            if n:
                quiet_until = time.monotonic() + QUIET
        return total

    def _paced(self, seconds: float) -> tuple[int, float, float, float]:
        """Send on the schedule for ``seconds`` (at least one round): packets sent, start,
        the end of the last send and the worst lateness of a slot (all monotonic seconds)."""
        sent_at, seqs, socks, pt_of = self.sent_at, self.seqs, self.socks, self.pt_of
        payloads, targets, pack = self.payloads, self.targets, HEADER.pack
        groups, drain_all = self.groups, self._drain_all
        sockets = [self.a_sock, self.b_sock]
        slot = PTIME / len(groups)
        slots = max(len(groups), round(seconds / slot))
        start = last_send = time.monotonic()
        late = 0.0
        sent = 0
        for tick in range(slots):
            due = start + tick * slot
            while True:
                now = time.monotonic()
                if now >= due:
                    break
                select.select(sockets, [], [], due - now)
                drain_all()
            late = max(late, time.monotonic() - due)
            for i in groups[tick % len(groups)]:
                seq = seqs[i] = (seqs[i] + 1) & 0xFFFF or 1
                sent_at[i][seq % RING] = time.time_ns()
                socks[i].sendto(pack(0x80, pt_of[i], seq, seq * 160, i) + payloads[i], targets[i])
            last_send = time.monotonic()
            sent += len(groups[tick % len(groups)])
            drain_all()
        return sent, start, last_send, late

    def warm_up(self, ports: list[int]) -> dict[str, Any]:
        self.targets = [(HOST, p) for p in ports]
        sent, _start, _end, late = self._paced(self.warmup)
        received = self._drain_quiet()
        for r in self.receivers:
            r.reset()
        return {"sent": sent, "received": received, "late_max_ms": late * 1000}

    def measure(self, on_sent: Callable[[], None]) -> dict[str, Any]:
        cpu0 = _cpu()
        sent, start, last_send, late = self._paced(self.seconds)
        gen_cpu = (_cpu() - cpu0) / (last_send - start or 1e-9)
        on_sent()
        self._drain_quiet()
        received = sum(r.received for r in self.receivers)
        transit = sorted(x for r in self.receivers for x in r.transit)
        spread = sorted(x for r in self.receivers for x in r.spread)
        return {
            "sent": sent,
            "received": received,
            "send_span": last_send - start,
            "p50_us": _percentile(transit, 0.5),
            "p99_us": _percentile(transit, 0.99),
            "jit50_us": _percentile(spread, 0.5),
            "jit99_us": _percentile(spread, 0.99),
            "gen_cpu": gen_cpu,
            "gen_late_ms": late * 1000,
            "gen_late_p99_ms": float("nan"),
        }

    def close(self) -> None:
        self.a_sock.close()
        self.b_sock.close()


def _read_json(stream: IO[str]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise RuntimeError("the relay process exited")
    result: dict[str, Any] = json.loads(line)
    return result


def run_point(
    calls: int,
    seconds: float,
    loop_name: str,
    route: str,
    profile: bool,
    rcvbuf: int | None,
    nice: int = 0,
    *,
    generator: str = "c",
    warmup: float = WARMUP,
    groups: int = GROUPS,
    cpus: tuple[int, int] | None = None,
    rt: bool = False,
    relay_path: str = "c",
) -> dict[str, Any]:
    gen_cpu, relay_cpu = cpus if cpus is not None else (None, None)
    phones: CPhones | PythonPhones
    if generator == "c":
        phones = CPhones(2 * calls, route, seconds, warmup, groups, gen_cpu, rt)
    else:
        phones = PythonPhones(2 * calls, route, seconds, warmup, groups)
    cmd = [sys.executable, __file__, "--serve", "--loop", loop_name, "--relay-path", relay_path]
    if profile:
        cmd.append("--profile")
    child = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        config = {
            "remotes": phones.addresses,
            "calls": calls,
            "route": route,
            "rcvbuf": rcvbuf,
            "cpu": relay_cpu,
        }
        child.stdin.write(json.dumps(config) + "\n")
        child.stdin.flush()
        hello = _read_json(child.stdout)
        ports: list[int] = hello["ports"]
        phones.warm_up(ports)
        relay_ports = set(ports)
        phone_ports = {addr[1] for addr in phones.addresses}
        drops0 = udp_drops(relay_ports), udp_drops(phone_ports)
        child.stdin.write("start\n")
        child.stdin.flush()
        _read_json(child.stdout)  # {"started": true}: the relay's marks are taken

        def stop_relay() -> None:
            assert child.stdin is not None
            child.stdin.write("stop\n")
            child.stdin.flush()

        gen = phones.measure(stop_relay)
        report = _read_json(child.stdout)
        drops = udp_drops(relay_ports) - drops0[0], udp_drops(phone_ports) - drops0[1]
        child.stdin.close()
        child.wait(timeout=30)
    finally:
        phones.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    sent = gen["sent"]
    out = report["out"]
    return {
        "loop": loop_name,
        "route": route,
        "calls": calls,
        "offered": sent / max(seconds, gen["send_span"]),
        "relay_in": report["in"],
        "relay_out": out,
        "loss": 1 - gen["received"] / sent if sent else 0.0,
        "relay_drops": drops[0],
        "phone_drops": drops[1],
        "p50_us": gen["p50_us"],
        "p99_us": gen["p99_us"],
        "jit50_us": gen["jit50_us"],
        "jit99_us": gen["jit99_us"],
        "relay_cpu": report["cpu"],
        "sys_share": report["sys_share"],
        "us_per_pkt": 1e6 * report["cpu"] / out if out else float("nan"),
        # at the nominal 100 packets/s per call (50 each way), from the CPU cost per packet:
        # unlike CPU % of wall time, this holds when other processes starve the relay
        "cpu_per_call": 100 * report["cpu"] / out if out else float("nan"),
        "gen_cpu": gen["gen_cpu"],
        "gen_late_ms": gen["gen_late_ms"],
        "gen_late_p99_ms": gen["gen_late_p99_ms"],
        "fast": float("nan") if report.get("fast") is None else report["fast"],
        "rcvbuf": hello["rcvbuf"][0],
        "profile": report.get("profile", ""),
    }


# --- in-process micro-benchmark ---------------------------------------------------------------


def _null_send(data: bytes | bytearray) -> int:
    return len(data)


def micro(number: int = 500_000) -> None:
    alloc = PortAllocator(RTP_START, RTP_END, HOST)
    a = RelayLeg(alloc.allocate(), remote=(HOST, 4000))
    b = RelayLeg(alloc.allocate(), remote=(HOST, 4002))
    Relay(a, b)
    a._out = b._out = _null_send  # the legs are not opened: sends go nowhere, no syscall
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
    ("loop", "<15", "{}"),
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
    ("fast", ">6", "{:.0%}"),
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
    "fast": "path",
}


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, float) and value != value:  # NaN: not measured
        return "-"
    return fmt.format(value)


def _row(r: dict[str, Any]) -> str:
    return "".join(f"{_cell(r[k], fmt):{align}}" for k, align, fmt in COLUMNS)


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
    parser.add_argument(
        "--warmup", type=float, default=WARMUP, help="seconds of sending before measuring"
    )
    parser.add_argument("--groups", type=int, default=GROUPS, help="send slots per 20 ms")
    parser.add_argument(
        "--generator",
        choices=["c", "python"],
        default="c" if shutil.which("cc") else "python",
        help="the phones: bench/rtpgen.c (built with cc) or this process",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=pin_cpus() is not None,
        help="relay on the second CPU, generator on the first",
    )
    parser.add_argument(
        "--rt",
        action=argparse.BooleanOptionalAction,
        default=os.geteuid() == 0,
        help="the C generator at SCHED_FIFO 1 (keeps its schedule when other work shares its CPU)",
    )
    parser.add_argument("--loop", default="uvloop", choices=["both", "asyncio", "uvloop"])
    parser.add_argument("--route", default="forward", choices=["forward", "transcode", "both"])
    parser.add_argument("--rcvbuf", type=int, default=None, help="SO_RCVBUF of relay sockets")
    parser.add_argument(
        "--relay-nice", type=int, default=0, help="nice value of the relay (root for < 0)"
    )
    parser.add_argument(
        "--relay-path",
        default="c",
        choices=["c", "python", "both"],
        help="the relay's fast path in C (pypbx/media/_fastrelay.c) or its Python twin",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--micro", action="store_true")
    args = parser.parse_args()
    if args.serve:
        serve(args.loop, args.profile, args.relay_path)
        return
    _raise_nofile()
    if args.micro:
        print("datagram_received (the slow path) with a stub send (no syscalls):")
        micro()
        return
    seconds = 60.0 if args.long else args.seconds
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loops = [name for name in loops if name != "uvloop"]
    routes = ["forward", "transcode"] if args.route == "both" else [args.route]
    cpus = pin_cpus() if args.pin else None
    if cpus is not None:  # this process too: the relay child moves itself to its own CPU
        os.sched_setaffinity(0, {cpus[0]})
    if args.generator == "c":
        build_rtpgen()
    print(
        f"seconds={seconds} warmup={args.warmup} groups={args.groups} repeat={args.repeat} "
        f"cores={os.cpu_count()} generator={args.generator}"
        f"{' (SCHED_FIFO)' if args.rt and args.generator == 'c' else ''} "
        f"pin={f'generator:{cpus[0]},relay:{cpus[1]}' if cpus else 'off'} "
        f"relay rcvbuf={args.rcvbuf or 'system default'} relay nice={args.relay_nice} "
        f"(net.core.rmem_default={Path('/proc/sys/net/core/rmem_default').read_text().strip()})"
    )
    print("".join(f"{HEADS.get(k, k):{align}}" for k, align, _fmt in COLUMNS), flush=True)
    per_call: dict[tuple[str, int], dict[str, float]] = {}
    paths = ["c", "python"] if args.relay_path == "both" else [args.relay_path]
    for loop_name, relay_path in ((lo, pa) for lo in loops for pa in paths):
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
                        generator=args.generator,
                        warmup=args.warmup,
                        groups=args.groups,
                        cpus=cpus,
                        rt=args.rt and args.generator == "c",
                        relay_path=relay_path,
                    )
                    for _ in range(args.repeat)
                ]
                r = _median_row(runs)
                r["loop"] = f"{loop_name}/{relay_path}"
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
