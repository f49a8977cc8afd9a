"""Real third-party SIP parties for interop tests: Kamailio as the provider, baresip phones.

Each party runs as a child process on a loopback address, bounded in lifetime, and is
stopped (TERM, then KILL) by the fixture that started it. Nothing here talks to anything
but 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def wait_udp(host: str, port: int, timeout: float = 10.0) -> bool:
    """Wait until something answers an OPTIONS on host:port (any SIP response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sip_ping(host, port, timeout=0.3) is not None:
            return True
    return False


def sip_ping(host: str, port: int, *, timeout: float = 1.0, src: str = "127.0.0.1") -> int | None:
    """Send one OPTIONS from ``src`` and return the status code, or None on no answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src, 0))
        lport = s.getsockname()[1]
        branch = f"z9hG4bK{os.urandom(6).hex()}"
        msg = (
            f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src}:{lport};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@{src}>;tag={os.urandom(4).hex()}\r\n"
            f"To: <sip:ping@{host}>\r\n"
            f"Call-ID: {os.urandom(8).hex()}@{src}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n"
        ).encode()
        s.settimeout(timeout)
        s.sendto(msg, (host, port))
        data, _ = s.recvfrom(65535)
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    except (TimeoutError, OSError):
        return None
    finally:
        s.close()


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def write_tone(path: Path, freq: float, seconds: float, *, rate: int = 8000) -> Path:
    """A mono 16-bit sine WAV (the phones' audio source)."""
    n = int(rate * seconds)
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


@dataclass
class Kamailio:
    """Kamailio playing the SIP provider (tests/interop/provider/kamailio.cfg)."""

    workdir: Path
    ip: str = "127.0.0.21"
    port: int = 5060
    defines: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ctl(self) -> Path:
        return self.workdir / "kamailio.ctl"

    @property
    def log(self) -> Path:
        return self.workdir / "kamailio.log"

    def args(self) -> list[str]:
        args = [
            "kamailio",
            "-f",
            str(HERE / "provider" / "kamailio.cfg"),
            "-DD",
            "-E",
            "-m",
            "64",
            "-M",
            "8",
            "-Y",
            str(self.workdir),
            "-w",
            str(self.workdir),
            "-A",
            f"LISTEN=udp:{self.ip}:{self.port}",
            "-A",
            f'CTL_SOCK="unix:{self.ctl}"',
        ]
        for k, v in self.defines.items():
            args += ["-A", f'{k}="{v}"']
        return args

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.args(), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        )
        if not wait_udp(self.ip, self.port, 10):
            self.stop()
            raise RuntimeError(f"kamailio did not start: {self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def kamcmd(self, *cmd: str) -> str:
        out = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.ctl}", *cmd],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")

    def contacts(self) -> str:
        """``ul.dump``: the location table (the trunk account's registered contacts)."""
        return self.kamcmd("ul.dump")


class BaresipCtl:
    """ctrl_tcp client: JSON commands in netstrings, events back in netstrings."""

    def __init__(self, host: str, port: int, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def _read_one(self, deadline: float) -> dict[str, object] | None:
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                n = int(self.buf[:colon])
                if len(self.buf) >= colon + 1 + n + 1:
                    body = self.buf[colon + 1 : colon + 1 + n]
                    self.buf = self.buf[colon + 2 + n :]
                    obj = json.loads(body)
                    return obj if isinstance(obj, dict) else None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def wait_event(self, kind: str, timeout: float = 20.0) -> dict[str, object] | None:
        deadline = time.monotonic() + timeout
        while True:
            obj = self._read_one(deadline)
            if obj is None:
                return None
            if obj.get("event") and obj.get("type") == kind:
                return obj

    def messages(self, timeout: float) -> Iterator[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while (obj := self._read_one(deadline)) is not None:
            yield obj


@dataclass
class Baresip:
    """A headless baresip phone: sends a tone file, records what it hears, auto-answers."""

    workdir: Path
    ip: str
    accounts: list[str]
    tone_hz: float = 440.0
    sip_port: int = 5060
    ctrl_port: int = 4444
    rtp_ports: str = "31000-31999"
    lifetime: int = 600
    proc: subprocess.Popen[bytes] | None = None

    @property
    def recdir(self) -> Path:
        return self.workdir / "rec"

    def write_config(self) -> None:
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        self.recdir.mkdir(parents=True, exist_ok=True)
        tone = write_tone(self.workdir / "tone.wav", self.tone_hz, 120)
        (conf / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen {self.ip}:{self.sip_port}",
                    "call_local_timeout 120",
                    "call_max_calls 4",
                    "audio_player alsa,null",
                    f"audio_source aufile,{tone}",
                    "audio_alert alsa,null",
                    "ausrc_format s16",
                    "auplay_format s16",
                    "auenc_format s16",
                    "audec_format s16",
                    f"rtp_ports {self.rtp_ports}",
                    "rtcp_mux no",
                    f"net_interface {self.ip}",
                    "module_path /usr/lib/baresip/modules",
                    "module g711.so",
                    "module aufile.so",
                    "module alsa.so",
                    "module sndfile.so",
                    "module_tmp account.so",
                    "module_app menu.so",
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen {self.ip}:{self.ctrl_port}",
                    f"snd_path {self.recdir}",
                    "",
                ]
            )
        )
        (conf / "accounts").write_text("\n".join(self.accounts) + "\n")
        (conf / "contacts").write_text("")

    def start(self) -> None:
        self.write_config()
        log = (self.workdir / "baresip.log").open("ab")
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(self.workdir / "conf"), "-t", str(self.lifetime)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.ip, self.ctrl_port), timeout=0.5),
            ):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("baresip did not start")

    def ctl(self) -> BaresipCtl:
        return BaresipCtl(self.ip, self.ctrl_port)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def recordings(self, kind: str = "dec") -> list[Path]:
        return sorted(self.recdir.glob(f"dump-*-{kind}.wav"))


ROOT = HERE.parents[1]
LAUNCH = "import sys, pypbx.sipservice\nfrom pypbx.cli import main\nsys.exit(main(sys.argv[1:]))\n"
"""``python -m pypbx`` with the SIP service imported (until the composition root imports it)."""


@dataclass
class PbxProcess:
    """pypbx running as a real process (``pypbx run -C confdir -vvv``) on 127.0.0.1:port.

    ``verbosity`` is the number of ``-v`` (3 shows registrations, as Asterisk's console)."""

    confdir: Path
    port: int
    ip: str = "127.0.0.1"
    verbosity: int = 3
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.confdir / "pypbx.out"

    def write(self, files: dict[str, str]) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (self.confdir / name).write_text(text)

    def start(self, *, timeout: float = 15.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        out = self.log.open("ab")
        offset = len(self.log_text())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "run", "-C", str(self.confdir)]
            + ["-v"] * self.verbosity,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if "ready (configuration" in self.log_text()[offset:]:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pypbx did not start:\n{self.log_text()[-4000:]}")

    def rx(self, command: str, *, timeout: float = 10.0) -> str:
        """``pypbx -C DIR -rx COMMAND``: the output (stdout and stderr)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run(
            [sys.executable, "-m", "pypbx", "-C", str(self.confdir), "-rx", command],
            capture_output=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
            check=False,
        )
        return out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")

    def wait_for(
        self, command: str, predicate: Callable[[str], bool], *, timeout: float = 15.0
    ) -> str:
        """Run ``command`` until ``predicate(output)`` holds or ``timeout`` passes; the last
        output."""
        deadline = time.monotonic() + timeout
        text = self.rx(command)
        while not predicate(text) and time.monotonic() < deadline:
            time.sleep(0.2)
            text = self.rx(command)
        return text

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, *, timeout: float = 8.0) -> int | None:
        """SIGTERM (the PBX unregisters and exits), KILL after ``timeout``."""
        if self.proc is None:
            return None
        stop_process(self.proc, timeout=timeout)
        return self.proc.returncode

    def kill(self) -> None:
        """``kill -9``: no clean-up at all."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
