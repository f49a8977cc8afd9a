"""Call benchmarks through pypbx, SIPp driven (issue 6), printed as a table.

1. Call setups per second: a SIPp caller with digest auth (407) → pypbx → SIPp as the trunk,
   ``--hold`` s calls at ``--rates`` calls/s for ``--duration`` s each; failed-call share.
2. Concurrent relayed calls: ``--concurrent`` calls up at once with RTP both ways (SIPp
   ``rtp_stream``, PCMU 50 packets/s per direction): pypbx CPU % (of one core) in the steady
   window, RSS per call, and the share of the packets the SIPps sent that pypbx relayed
   (from its relay totals at stop; pypbx drops the first packets of a stream while strictrtp
   learns the source, 4 per stream by default; packets that arrive on a leg before it is
   bridged or after its partner hung up count as not relayed too). The steady window starts
   once every leg's strictrtp learning window (5 s) is over, and ``fast_pct`` is the share of
   the received packets that took the relay's fast path (locked source, socket connected).
   The setup-rate table also gives the kernel's UDP receive-buffer drops during the run
   (all sockets; the concurrent runs leave it out because SIPp never reads its RTP sockets).
   ``--transcode`` adds each concurrent point with the trunk allowing only alaw (SIPp answers
   PCMA and streams A-law): pypbx translates every packet; compare ``cpu_pct_per_call``.

pypbx runs as a real process (``python -m pypbx run``) on 127.0.0.1 with rtp.conf's
10000-20000. Every run is bounded in time. Added jitter is not measured (SIPp does not
report received RTP timing); see the report.

    .venv/bin/python bench/calls.py --rates 50,100,200 --duration 20 --concurrent 50,200
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "interop" / "scenarios_call"
CALLER_IP = "127.0.0.24"
TRUNK_IP = "127.0.0.25"
LAUNCH = (
    "import sys, pypbx.sipservice, pypbx.call.manager\n"
    "from pypbx.cli import main\nsys.exit(main(sys.argv[1:]))\n"
)
TICK = os.sysconf("SC_CLK_TCK")
LEARNING = 5.0
"""rtp.conf's strictrtp learning window: a leg takes the relay's fast path once it is over."""


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def sip_conf(port: int, trunk_port: int, trunk_allow: str = "ulaw") -> str:
    return f"""[general]
bindaddr=127.0.0.1
bindport={port}
alwaysauthreject=yes

[1000]
type=friend
host=dynamic
secret=mysecretpassword
context=internal
call-limit=0
disallow=all
allow=ulaw

[trunk]
type=peer
host={TRUNK_IP}
port={trunk_port}
insecure=port,invite
context=from-trunk
disallow=all
allow={trunk_allow}
"""


EXTENSIONS = "[internal]\nexten => _1NXXNXXXXXX,1,Dial(SIP/trunk/${EXTEN},30)\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rcvbuf_errors() -> int:
    """The kernel's UDP receive-buffer drop counter (all sockets: pypbx's and SIPp's)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    udp = [row for row in lines if row and row[0] == "Udp:"]
    return int(udp[1][udp[0].index("RcvbufErrors")]) if len(udp) == 2 else 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Pbx:
    workdir: Path
    port: int
    trunk_port: int
    proc: subprocess.Popen[bytes] | None = None
    trunk_allow: str = "ulaw"

    def start(self) -> None:
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "sip.conf").write_text(sip_conf(self.port, self.trunk_port, self.trunk_allow))
        (conf / "extensions.conf").write_text(EXTENSIONS)
        (conf / "rtp.conf").write_text("[general]\nrtpstart=10000\nrtpend=20000\n")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = self.workdir / "pypbx.out"
        launch = [sys.executable, "-c", LAUNCH]
        if os.environ.get("BENCH_PROFILE"):  # cProfile pypbx: BENCH_PROFILE=out.prof
            script = self.workdir / "launch.py"
            script.write_text(LAUNCH)
            launch = [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                os.environ["BENCH_PROFILE"],
                str(script),
            ]
        self.proc = subprocess.Popen(
            [*launch, "run", "-C", str(conf)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "call layer attached" in self.text() or "ready (configuration" in self.text():
                time.sleep(0.5)
                return
            time.sleep(0.1)
        raise RuntimeError("pypbx did not start:\n" + self.text()[-3000:])

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> dict[str, int]:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        m = re.search(
            r"RTP relay totals: legs=(\d+) packets_in=(\d+) \(fast path (\d+)\) "
            r"packets_out=(\d+) dropped=(\d+)",
            self.text(),
        )
        keys = ("legs", "packets_in", "fast_in", "packets_out", "dropped")
        return dict(zip(keys, map(int, m.groups()), strict=True)) if m else {}


def sipp(
    scenario: Path,
    ip: str,
    port: int,
    target: str | None,
    workdir: Path,
    *,
    extra: list[str],
    timeout: int,
) -> subprocess.Popen[bytes]:
    args = ["sipp", "-sf", str(scenario), "-i", ip, "-p", str(port), "-mi", ip]
    if "-mp" not in extra:
        args += ["-mp", str(free_port(ip))]
    args += ["-nostdin", "-nd", "-timeout", f"{timeout}s", "-trace_screen", "-trace_err"]
    args += ["-screen_file", str(workdir / f"{scenario.stem}_screen.log")]
    args += ["-error_file", str(workdir / f"{scenario.stem}_errors.log")]
    args += extra
    if target:
        args.append(target)
    return subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def counts(workdir: Path, stem: str) -> tuple[int, int]:
    try:
        screen = (workdir / f"{stem}_screen.log").read_text(errors="replace")
    except OSError:
        return 0, 0
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    bad = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", screen)
    return (int(ok[-1]) if ok else 0), (int(bad[-1]) if bad else 0)


def rtp_variants(workdir: Path, transcode: bool = False) -> tuple[Path, Path]:
    """uac_call / uas_answer with SIPp rtp_stream (PCMU tone, looped) after the ACK; with
    ``transcode`` the trunk answers PCMA and streams A-law (pypbx translates every packet)."""
    wav = workdir / "tone.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", "mu-law", str(wav), "synth", "4", "sine",
         "440"], check=True,
    )  # fmt: skip
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", str(workdir / "tone_alaw.wav"),
         "synth", "4", "sine", "1000"], check=True,
    )  # fmt: skip

    def stream(name: str, pt: int) -> str:
        action = f'<exec rtp_stream="{name},-1,{pt}"/>'
        return f"  <nop>\n    <action>\n      {action}\n    </action>\n  </nop>\n"

    uac = (SCENARIOS / "uac_call.xml").read_text()
    uac = uac.replace("  <pause/>\n", stream("tone.wav", 0) + "  <pause/>\n")
    uas = (SCENARIOS / "uas_answer.xml").read_text()
    far = stream("tone_alaw.wav", 8) if transcode else stream("tone.wav", 0)
    uas = uas.replace('  <recv request="BYE" timeout="20000"/>', far + '  <recv request="BYE"/>')
    if transcode:
        uas = uas.replace(
            "m=audio [media_port] RTP/AVP 0 101", "m=audio [media_port] RTP/AVP 8 101"
        )
        uas = uas.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
    (workdir / "uac_call_rtp.xml").write_text(uac)
    (workdir / "uas_answer_rtp.xml").write_text(uas)
    return workdir / "uac_call_rtp.xml", workdir / "uas_answer_rtp.xml"


def setup_rate(base: Path, rate: int, duration: int, hold: int) -> dict[str, float]:
    work = base / f"rate{rate}"
    work.mkdir()
    pbx = Pbx(work, free_port("127.0.0.1"), free_port(TRUNK_IP))
    pbx.start()
    assert pbx.proc is not None
    total = rate * duration
    limit = timeout = duration + hold + 30
    uas = sipp(SCENARIOS / "uas_answer.xml", TRUNK_IP, pbx.trunk_port, None, work,
               extra=["-m", str(total)], timeout=limit)  # fmt: skip
    cpu0, t0, drops0 = cpu_seconds(pbx.proc.pid), time.monotonic(), rcvbuf_errors()
    uac = sipp(
        SCENARIOS / "uac_call.xml", CALLER_IP, free_port(CALLER_IP), f"127.0.0.1:{pbx.port}",
        work, timeout=timeout,
        extra=["-s", "18005551234", "-key", "caller", "1000", "-au", "1000", "-ap",
               "mysecretpassword", "-auth_uri", f"18005551234@127.0.0.1:{pbx.port}",
               "-r", str(rate), "-m", str(total), "-d", str(hold * 1000),
               "-l", str(rate * (hold + 5))],
    )  # fmt: skip
    try:
        uac.wait(timeout=limit + 10)
    except subprocess.TimeoutExpired:
        uac.kill()
    cpu = (cpu_seconds(pbx.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
    try:
        uas.wait(timeout=10)
    except subprocess.TimeoutExpired:
        uas.kill()
    pbx.stop()
    ok, bad = counts(work, "uac_call")
    return {"rate": rate, "calls": total, "ok": ok, "failed": bad,
            "failed_pct": 100.0 * (total - ok) / total, "cpu_pct": cpu,
            "udp_rcvbuf_drops": rcvbuf_errors() - drops0}  # fmt: skip


def concurrent(base: Path, n: int, steady: int, transcode: bool = False) -> dict[str, float]:
    work = base / f"conc{n}{'-transcode' if transcode else ''}"
    work.mkdir()
    uac_sf, uas_sf = rtp_variants(work, transcode)
    pbx = Pbx(
        work,
        free_port("127.0.0.1"),
        free_port(TRUNK_IP),
        trunk_allow="alaw" if transcode else "ulaw",
    )
    pbx.start()
    assert pbx.proc is not None
    rate = min(100, max(10, n // 5))
    ramp = n / rate + 2 + LEARNING  # every leg has locked its source: the steady state
    hold = int(ramp + steady + 2)
    limit = hold + 40
    rss0, drops0 = rss_kib(pbx.proc.pid), rcvbuf_errors()
    uas = sipp(uas_sf, TRUNK_IP, pbx.trunk_port, None, work,
               extra=["-m", str(n), "-mp", "40000"],
               timeout=limit)  # fmt: skip
    uac = sipp(
        uac_sf, CALLER_IP, free_port(CALLER_IP), f"127.0.0.1:{pbx.port}", work, timeout=limit,
        extra=["-s", "18005551234", "-key", "caller", "1000", "-au", "1000", "-ap",
               "mysecretpassword", "-auth_uri", f"18005551234@127.0.0.1:{pbx.port}",
               "-r", str(rate), "-m", str(n), "-d", str(hold * 1000), "-l", str(n),
               "-mp", "50000"],
    )  # fmt: skip
    time.sleep(ramp)
    cpu0, t0 = cpu_seconds(pbx.proc.pid), time.monotonic()
    time.sleep(steady)
    cpu = (cpu_seconds(pbx.proc.pid) - cpu0) / (time.monotonic() - t0) * 100
    rss = rss_kib(pbx.proc.pid)
    for proc in (uac, uas):
        try:
            proc.wait(timeout=limit + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
    totals = pbx.stop()
    ok, bad = counts(work, "uac_call_rtp")
    relayed = totals.get("packets_out", 0)
    received = totals.get("packets_in", 0)
    loss = 100.0 * (1 - relayed / received) if received else float("nan")
    return {"calls": n, "codecs": "PCMU<>PCMA" if transcode else "PCMU", "ok": ok,
            "failed": bad, "cpu_pct": cpu, "cpu_pct_per_call": cpu / max(1, n),
            "rss_per_call_kib": (rss - rss0) / max(1, n),
            "pkts_in": received, "pkts_out": relayed,
            "fast_pct": 100.0 * totals.get("fast_in", 0) / received if received else 0.0,
            "relay_loss_pct": loss, "udp_rcvbuf_drops": rcvbuf_errors() - drops0}  # fmt: skip


def table(rows: list[dict[str, float]], cols: list[str]) -> str:
    widths = [max([len(c), *(len(_fmt(r[c])) for r in rows)]) for c in cols]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(_fmt(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True))
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def _fmt(v: float) -> str:
    if not isinstance(v, float):
        return str(v)
    return f"{v:.3f}" if 0 < abs(v) < 1 else f"{v:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="50,100,200")
    ap.add_argument("--duration", type=int, default=20, help="seconds per setup-rate run")
    ap.add_argument("--hold", type=int, default=5, help="call length in seconds")
    ap.add_argument("--concurrent", default="50,200")
    ap.add_argument("--steady", type=int, default=10, help="measuring window, seconds")
    ap.add_argument("--workdir", help="keep logs here instead of a temporary directory")
    ap.add_argument(
        "--transcode",
        action="store_true",
        help="also run each concurrent point with a PCMA-only trunk (PCMU<->PCMA in pypbx)",
    )
    args = ap.parse_args()
    if shutil.which("sipp") is None:
        print("bench/calls.py needs sipp", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pypbx-bench-calls-") as tmp:
        base = Path(args.workdir or tmp)
        base.mkdir(parents=True, exist_ok=True)
        rates = [setup_rate(base, int(r), args.duration, args.hold)
                 for r in args.rates.split(",") if r]  # fmt: skip
        if rates:
            print("Call setups (SIPp caller with 407 auth → pypbx → SIPp trunk)")
            print(
                table(
                    rates,
                    ["rate", "calls", "ok", "failed", "failed_pct", "cpu_pct", "udp_rcvbuf_drops"],
                )
            )
        if args.concurrent:
            modes = [False, True] if args.transcode else [False]
            conc = [concurrent(base, int(n), args.steady, mode)
                    for n in args.concurrent.split(",") if n for mode in modes]  # fmt: skip
            print("\nConcurrent relayed calls (50 pkt/s per direction; PCMU<>PCMA: transcoded)")
            cols = ["calls", "codecs", "ok", "failed", "cpu_pct", "cpu_pct_per_call"]
            cols += ["rss_per_call_kib", "pkts_in", "pkts_out", "fast_pct"]
            print(table(conc, [*cols, "relay_loss_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
