"""Registrar benchmark: authenticated REGISTER/s at >= 99 % success and memory per 10,000
bindings, for pypbx and for Kamailio as a registrar, in the same run on the same SIPp scenario.

Run: ``.venv/bin/python bench/registrations.py [--repeats 3] [--rates 500,1000,...]``.

Each party gets N users (``u10000``…, all authenticating as ``burst``/``burstsecret``, the
way ``tests/interop/test_registrar_sipp.py`` drives SIPp). The scenario is
``tests/interop/scenarios_reg/reg_auth.xml``: REGISTER, 401, REGISTER with credentials, 200.
Both registrars run side by side (idle while the other is driven). For each offered rate
SIPp sends ``rate × 3`` registrations; each party's best offer where >= 99 % succeed is then
repeated ``--repeats`` times, alternating between the parties so that both meet the same
noise of a shared machine, and the table shows the median achieved rate (successful
registrations per second of SIPp's own clock, from its statistics screen), the ratio
pypbx/Kamailio, and the registrar's CPU time per registration (user + system,
/proc/PID/stat: less sensitive to the noise than the rate). Memory: the PSS of the party's
processes before and after 10,000 fresh bindings at 500/s, measured 33 s after the last
burst so that the transactions are gone (/proc/PID/smaps_rollup; Kamailio's shared memory
counts once): the process's real growth, including memory the freed transactions leave
behind. A last line gives what pypbx's Location itself holds per binding (tracemalloc,
loading the filled store). pypbx runs at verbosity 0 (no line per registration), with the
abuse guard's rate limit off and loopback allowed (one SIPp address registering thousands of
users is what the guard is there to stop). About 3 minutes in all; 2 cores: SIPp and the
registrar share them. Everything runs on loopback and each SIPp run is bounded by its own
timeout.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypbx.location import Location  # noqa: E402
from pypbx.location_store import LocationStore  # noqa: E402
from tests.interop.parties import PbxProcess, stop_process, wait_udp  # noqa: E402
from tests.interop.sipp import free_port, run_sipp, sipp_command  # noqa: E402

SCENARIO = ROOT / "tests" / "interop" / "scenarios_reg" / "reg_auth.xml"
AUTH_USER = "burst"
AUTH_PASS = "burstsecret"
SIPP_IP = "127.0.0.24"
KAMAILIO_IP = "127.0.0.31"
TARGET_RATE = 2000
TARGET_BYTES = 2048
MEMORY_BINDINGS = 10_000
MEMORY_RATE = 500
SETTLE = 33.0
"""Seconds to wait after the memory run: a UDP non-INVITE transaction lingers 32 s."""


def users(n: int) -> list[str]:
    return [f"u{10000 + i}" for i in range(n)]


def pss_kib(pids: list[int]) -> int:
    """Proportional set size of the processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


def group_pids(pgid: int) -> list[int]:
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                out.append(int(entry.name))
        except OSError:
            continue
    return out


@dataclass
class Party:
    """A registrar under test: where it listens and how to read its memory."""

    name: str
    host: str
    port: int
    pids: Callable[[], list[int]]
    stop: Callable[[], None]


def start_pypbx(work: Path, n: int) -> Party:
    port = free_port("127.0.0.1")
    pbx = PbxProcess(work / "pypbx", port, verbosity=0)
    peers = "".join(
        f"[{u}]\ntype=friend\nhost=dynamic\ndefaultuser={AUTH_USER}\nsecret={AUTH_PASS}\n"
        for u in users(n)
    )
    general = (
        f"[general]\nbindaddr=127.0.0.1\nbindport={port}\nminexpiry=60\nmaxexpiry=3600\n"
        # one SIPp source registering thousands of users is a flood and a scanner to the
        # abuse guard: let loopback through, as Kamailio's config has no such limits
        "ratelimit=0\nbanallow=127.0.0.0/8\n\n"
    )
    pypbx_conf = "[general]\nverbose=0\n"
    pbx.write(
        {
            "sip.conf": general + peers,
            "extensions.conf": "[internal]\nexten => 1,1,Hangup()\n",
            "pypbx.conf": pypbx_conf,
        }
    )
    pbx.start(timeout=60)
    assert pbx.proc is not None
    proc = pbx.proc

    def stop() -> None:
        pbx.stop()

    return Party("pypbx", "127.0.0.1", port, lambda: [proc.pid], stop)


KAMAILIO_CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children={children}
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{ip}:{port}

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 60)
modparam("registrar", "max_expires", 3600)

request_route {{
    if (!is_method("REGISTER")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if (!is_present_hf("Authorization")) {{ www_challenge("bench.test", "1"); exit; }}
    if ($au != "{user}") {{ sl_send_reply("403", "Forbidden"); exit; }}
    if (pv_www_authenticate("bench.test", "{password}", "0") < 0) {{
        www_challenge("bench.test", "1");
        exit;
    }}
    consume_credentials();
    if (!save("location")) sl_reply_error();
    exit;
}}
"""


def start_kamailio(work: Path, children: int) -> Party:
    port = free_port(KAMAILIO_IP)
    kdir = work / "kamailio"
    kdir.mkdir(parents=True, exist_ok=True)
    cfg = kdir / "registrar.cfg"
    cfg.write_text(
        KAMAILIO_CFG.format(
            children=children, ip=KAMAILIO_IP, port=port, user=AUTH_USER, password=AUTH_PASS
        )
    )
    log = (kdir / "kamailio.log").open("ab")
    proc = subprocess.Popen(
        [
            "kamailio",
            "-f",
            str(cfg),
            "-DD",
            "-E",
            "-m",
            "256",
            "-M",
            "16",
            "-Y",
            str(kdir),
            "-w",
            str(kdir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if not wait_udp(KAMAILIO_IP, port, 10):
        stop_process(proc)
        raise RuntimeError(f"kamailio did not start: {(kdir / 'kamailio.log').read_text()}")
    return Party(
        "kamailio", KAMAILIO_IP, port, lambda: group_pids(proc.pid), lambda: stop_process(proc)
    )


@dataclass(frozen=True)
class Run:
    """One SIPp run: ``seconds`` from SIPp's first call to its end (its own clock, so
    the start-up of the SIPp process does not count); ``cpu`` is the registrar's CPU
    seconds (user + system) during the run."""

    offered: int
    sent: int
    successful: int
    seconds: float
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.successful / self.seconds if self.seconds > 0 else 0.0

    @property
    def success(self) -> float:
        return self.successful / self.sent if self.sent else 0.0

    @property
    def cpu_us(self) -> float:
        """Registrar CPU microseconds per successful registration."""
        return self.cpu / self.successful * 1e6 if self.successful else 0.0


_EPOCH_RE = {
    name: re.compile(rf"^\s*{name}\s*\|[^|\n]*\t([0-9]+\.[0-9]+)", re.M)
    for name in ("Start Time", "Current Time")
}


def sipp_seconds(screen: str) -> float | None:
    """How long SIPp sent and waited, from its statistics screen: the epoch times of the
    first ``Start Time`` and the last ``Current Time``."""
    starts = _EPOCH_RE["Start Time"].findall(screen)
    ends = _EPOCH_RE["Current Time"].findall(screen)
    if not starts or not ends:
        return None
    seconds = float(ends[-1]) - float(starts[0])
    return seconds if seconds > 0 else None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def sipp_run(work: Path, party: Party, names: list[str], rate: int, local_port: int) -> Run:
    inf = work / f"users-{len(names)}.csv"
    if not inf.exists():
        inf.write_text("SEQUENTIAL\n" + "".join(f"{u}\n" for u in names))
    run_dir = work / f"sipp-{party.name}-{rate}-{time.monotonic_ns()}"
    run_dir.mkdir()
    calls = len(names)
    cmd = sipp_command(
        SCENARIO,
        f"{party.host}:{party.port}",
        workdir=run_dir,
        local_ip=SIPP_IP,
        local_port=local_port,
        calls=calls,
        timeout=max(20.0, calls / rate * 4),
        extra=[
            "-inf",
            str(inf),
            "-au",
            AUTH_USER,
            "-ap",
            AUTH_PASS,
            "-r",
            str(rate),
            "-l",
            str(max(200, rate)),
            "-buff_size",
            "4194304",
        ],
    )
    cmd.args.remove("-trace_msg")
    pids = party.pids()
    cpu = cpu_seconds(pids)
    started = time.monotonic()
    result = run_sipp(cmd)
    wall = time.monotonic() - started
    cpu = cpu_seconds(pids) - cpu
    seconds = sipp_seconds(result.screen) or wall
    shutil.rmtree(run_dir, ignore_errors=True)
    return Run(rate, calls, result.successful or 0, seconds, cpu)


KEEPS_UP = 0.95
"""An offer is sustained when the achieved rate is at least this share of it."""


def best_offer(work: Path, party: Party, rates: list[int], port: int) -> tuple[int | None, float]:
    """Offer rising rates until success drops below 99 % or the party stops keeping up.

    Returns the highest offer the party sustained (>= 99 % success, achieved >= 95 % of the
    offer; else the offer that achieved most) and the peak achieved rate of the ladder. Above
    its capacity a registrar falls behind, SIPp retransmits after 500 ms and the extra work
    makes it fall further behind: an offer just past the knee gives a good or a collapsed
    run by chance, so the repeats use the highest sustained offer."""
    passing: list[Run] = []
    for rate in rates:
        run = sipp_run(work, party, users(rate * 3), rate, port)
        print(
            f"  {party.name:<9} offered {rate:>5}/s: {run.successful}/{run.sent} ok "
            f"({run.success:.1%}), {run.rate:,.0f}/s, {run.cpu_us:,.0f} us CPU each",
            flush=True,
        )
        if run.success < 0.99:
            break
        passing.append(run)
        if run.rate < rate * 0.8:
            break  # it no longer keeps up: higher offers only queue
    if not passing:
        return None, 0.0
    peak = max(r.rate for r in passing)
    sustained = [r for r in passing if r.rate >= r.offered * KEEPS_UP]
    best = max(sustained, key=lambda r: r.offered) if sustained else None
    if best is None:
        best = max(passing, key=lambda r: r.rate)
    return best.offered, peak


@dataclass
class Figures:
    """What the table prints for one party."""

    name: str
    offer: int | None
    runs: list[Run]
    memory: float
    peak: float = 0.0

    @property
    def rate(self) -> float:
        """Median achieved rate of the repeats at >= 99 % success (0 if none)."""
        good = [r.rate for r in self.runs if r.success >= 0.99]
        return statistics.median(good) if good else 0.0

    @property
    def cpu_us(self) -> float:
        return statistics.median(r.cpu_us for r in self.runs) if self.runs else 0.0

    @property
    def success(self) -> float:
        return min((r.success for r in self.runs), default=0.0)


def memory_per_binding(work: Path, parties: list[Party]) -> list[float]:
    """PSS growth per binding of each party once the registrations' transactions are gone
    (timer J): 10,000 fresh bindings each, one party after the other, then a wait of
    ``SETTLE`` seconds after the last burst."""
    before = [pss_kib(p.pids()) for p in parties]
    bound: list[int] = []
    for party in parties:
        run = sipp_run(work, party, users(MEMORY_BINDINGS), MEMORY_RATE, free_port(SIPP_IP))
        if run.successful < MEMORY_BINDINGS * 0.99:
            print(f"  {party.name}: only {run.successful} bindings for the memory figure")
        bound.append(max(1, run.successful))
    time.sleep(SETTLE)
    after = [pss_kib(p.pids()) for p in parties]
    return [(a - b) * 1024 / n for a, b, n in zip(after, before, bound, strict=True)]


def loaded_memory_per_binding(work: Path) -> tuple[float, int]:
    """The steady-state cost of a binding, without the burst's transient memory: the bytes
    Python allocates (tracemalloc) to load the store the runs filled into a Location, as
    pypbx does at start-up."""
    store_path = work / "pypbx" / "data" / "location.sqlite3"
    with LocationStore(store_path) as store:
        rows = store.load(0.0)
    del rows
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        location = Location(max_contacts=100)
        with LocationStore(store_path) as store:
            count = location.load(store.load(0.0), 0.0)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / max(1, count), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rates", default="500,1000,1500,2000,2200,2400,2600,3000,4000")
    parser.add_argument("--kamailio-children", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory burst")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    for tool in ("sipp", "kamailio"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    loaded, count = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="pypbx-bench-reg-") as tmp:
        work = Path(tmp)
        n_peers = max(MEMORY_BINDINGS, max(rates) * 3)
        parties = [start_pypbx(work, n_peers)]
        try:
            parties.append(start_kamailio(work, args.kamailio_children))
            figures = [Figures(p.name, None, [], 0.0) for p in parties]
            if not args.no_memory:
                for fig, memory in zip(figures, memory_per_binding(work, parties), strict=True):
                    fig.memory = memory
            ports = [free_port(SIPP_IP) for _ in parties]
            for party, fig, port in zip(parties, figures, ports, strict=True):
                fig.offer, fig.peak = best_offer(work, party, rates, port)
            # the repeats alternate between the parties, so that both see the same noise
            for _ in range(args.repeats):
                for party, fig, port in zip(parties, figures, ports, strict=True):
                    if fig.offer is not None:
                        run = sipp_run(work, party, users(fig.offer * 3), fig.offer, port)
                        fig.runs.append(run)
                        print(
                            f"  {party.name:<9} repeat  {run.offered:>5}/s: {run.successful}/"
                            f"{run.sent} ok ({run.success:.1%}), {run.rate:,.0f}/s, "
                            f"{run.cpu_us:,.0f} us CPU each",
                            flush=True,
                        )
        finally:
            for party in parties:
                party.stop()
        if not args.no_memory:
            loaded, count = loaded_memory_per_binding(work)
    print()
    header = (
        f"{'registrar':<10} {'offered/s':>9} {'auth REGISTER/s':>16} {'peak/s':>7} "
        f"{'success':>8} {'CPU us/reg':>10} {'bytes/binding':>14}"
    )
    print(header)
    for fig in figures:
        print(
            f"{fig.name:<10} {fig.offer or 0:>9,} {fig.rate:>16,.0f} {fig.peak:>7,.0f} "
            f"{fig.success:>8.1%} {fig.cpu_us:>10,.0f} {fig.memory:>14,.0f}"
        )
    pypbx, kamailio = figures[0], figures[-1]
    if kamailio.rate > 0 and len(figures) > 1:
        print(f"pypbx / kamailio: {pypbx.rate / kamailio.rate:.2f} of the rate", end="")
        if kamailio.cpu_us > 0:
            print(f", {pypbx.cpu_us / kamailio.cpu_us:.1f}x the CPU per registration", end="")
        print()
    print(
        f"(median of {args.repeats} alternating runs at each party's highest sustained offer; "
        "peak: best single run of the ladder; rates by SIPp's clock; targets for pypbx: "
        f">= {TARGET_RATE:,}/s, <= {TARGET_BYTES:,} bytes per binding)"
    )
    if count:
        print(
            f"pypbx Location holding the {count:,} stored bindings: {loaded:,.0f} bytes per "
            "binding (tracemalloc; the burst figure above is the process's PSS growth)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
