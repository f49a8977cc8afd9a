"""pypbx's registrar driven by SIPp (issue 5): digest REGISTER, re-register, unregister, 423,
a burst of 1000 bindings, persistence across restart and ``kill -9`` during a burst.

pypbx runs as a real process on 127.0.0.1 (free port), SIPp on 127.0.0.24; the scenarios live
in ``scenarios_reg/`` and take the AOR user from an injection file. SIPp 3.6 cannot take
digest credentials per call from that file, so every generated peer has the same
``defaultuser``/``secret`` pair (the registrar accepts a peer's name or its defaultuser).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.parties import PbxProcess
from tests.interop.sipp import free_port, run_sipp, sipp_command, start_sipp

pytestmark = pytest.mark.interop
INTEROP_TOOLS = ("sipp",)

SCENARIOS = Path(__file__).resolve().parent / "scenarios_reg"
SIPP_IP = "127.0.0.24"


AUTH_USER = "burst"
AUTH_PASS = "burstsecret"


def users(n: int) -> list[tuple[str, str]]:
    return [(f"u{1000 + i}", AUTH_PASS) for i in range(n)]


def sip_conf(port: int, accounts: list[tuple[str, str]]) -> str:
    general = (
        "[general]\nbindaddr=127.0.0.1\n"
        f"bindport={port}\nminexpiry=60\nmaxexpiry=3600\ndefaultexpiry=120\n"
    )
    peers = "".join(
        f"\n[{user}]\ntype=friend\nhost=dynamic\ndefaultuser={AUTH_USER}\nsecret={pw}\n"
        "context=internal\n"
        for user, pw in accounts
    )
    return general + peers


@pytest.fixture
def pbx(tmp_path: Path) -> Iterator[PbxProcess]:
    port = free_port("127.0.0.1")
    proc = PbxProcess(tmp_path / "pbx", port)
    proc.write(
        {
            "sip.conf": sip_conf(port, users(1000)),
            "extensions.conf": "[internal]\nexten => 1,1,Hangup()\n",
        }
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def injection(tmp_path: Path, accounts: list[tuple[str, str]]) -> Path:
    path = tmp_path / f"users{len(accounts)}.csv"
    path.write_text("SEQUENTIAL\n" + "".join(f"{u};{p}\n" for u, p in accounts))
    return path


def sipp(
    tmp_path: Path,
    pbx: PbxProcess,
    scenario: str,
    accounts: list[tuple[str, str]],
    *,
    calls: int | None = None,
    rate: int = 10,
    timeout: float = 20.0,
    trace: bool = True,
) -> tuple[list[str], Path]:
    work = tmp_path / f"sipp-{scenario}-{time.monotonic_ns()}"
    work.mkdir()
    extra = ["-inf", str(injection(tmp_path, accounts)), "-r", str(rate), "-l", "200"]
    extra += ["-au", AUTH_USER, "-ap", AUTH_PASS]
    run = sipp_command(
        SCENARIOS / f"{scenario}.xml",
        f"127.0.0.1:{pbx.port}",
        workdir=work,
        local_ip=SIPP_IP,
        local_port=free_port(SIPP_IP),
        calls=calls or len(accounts),
        timeout=timeout,
        extra=extra,
    )
    args = run.args if trace else [a for a in run.args if a != "-trace_msg"]
    return args, work


def run_scenario(
    tmp_path: Path, pbx: PbxProcess, scenario: str, accounts: list[tuple[str, str]], **kw: object
) -> str:
    from tests.interop.sipp import SippRun

    args, work = sipp(tmp_path, pbx, scenario, accounts, **kw)  # type: ignore[arg-type]
    result = run_sipp(SippRun(args, work, 60.0))
    assert result.ok, result.explain() + pbx.log_text()[-3000:]
    assert result.successful == len(accounts)
    return result.logs


def store(pbx: PbxProcess) -> sqlite3.Connection:
    return sqlite3.connect(str(pbx.confdir / "data" / "location.sqlite3"))


def stored_users(pbx: PbxProcess) -> set[str]:
    with store(pbx) as db:
        return {row[0] for row in db.execute("SELECT aor FROM bindings")}


def peer_host(pbx: PbxProcess, name: str) -> str:
    text = pbx.rx(f"sip show peers like {name}")
    line = next((ln for ln in text.splitlines() if ln.startswith(name)), "")
    return line.split()[1] if line else ""


def test_auth_register_reregister_unregister(tmp_path: Path, pbx: PbxProcess) -> None:
    one = users(1)
    logs = run_scenario(tmp_path, pbx, "reg_auth", one)
    assert "bound expires=300" in logs
    assert stored_users(pbx) == {"u1000"}
    assert peer_host(pbx, "u1000") == SIPP_IP
    logs = run_scenario(tmp_path, pbx, "reg_refresh", one)
    assert "bound expires=600" in logs
    assert "Registered SIP 'u1000'" in pbx.log_text()
    run_scenario(tmp_path, pbx, "reg_unregister", one)
    assert stored_users(pbx) == set()
    assert peer_host(pbx, "u1000") == "(Unspecified)"
    assert "Unregistered SIP 'u1000'" in pbx.log_text()


def test_expiry_below_minexpiry_gets_423(tmp_path: Path, pbx: PbxProcess) -> None:
    logs = run_scenario(tmp_path, pbx, "reg_423", users(1))
    assert "min-expires 60" in logs
    assert stored_users(pbx) == set()
    assert "below minexpiry 60" in pbx.log_text()


def test_burst_of_1000_bindings_then_restart(tmp_path: Path, pbx: PbxProcess) -> None:
    accounts = users(1000)
    run_scenario(tmp_path, pbx, "reg_auth", accounts, rate=400, timeout=40, trace=False)
    assert stored_users(pbx) == {u for u, _ in accounts}
    assert "1000 sip peers" in pbx.rx("sip show peers")
    pbx.stop()
    assert pbx.proc is not None
    assert pbx.proc.returncode == 0
    pbx.start()
    assert peer_host(pbx, "u1500") == SIPP_IP
    assert "Loaded 1000 SIP registrations" in pbx.log_text()


def test_kill_9_during_a_burst_keeps_the_store_intact(tmp_path: Path, pbx: PbxProcess) -> None:
    accounts = users(1000)
    args, work = sipp(tmp_path, pbx, "reg_auth", accounts, rate=300, timeout=15)
    from tests.interop.sipp import SippRun

    proc = start_sipp(SippRun(args, work, 15.0))
    try:
        deadline = time.monotonic() + 10
        while len(stored_users(pbx)) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        pbx.kill()
    finally:
        proc.stop()
    acked = set(re.findall(r"SIP/2\.0 200 OK\r?\n(?:.*\r?\n)*?To: <sip:(u\d+)@", _read(work)))
    with store(pbx) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    saved = stored_users(pbx)
    assert 100 <= len(saved) < 1000, "the kill did not land inside the burst"
    assert acked, "no 200 seen in the SIPp trace"
    assert acked <= saved, f"answered 200 but not stored: {sorted(acked - saved)[:5]}"
    pbx.start()
    assert peer_host(pbx, next(iter(saved))) == SIPP_IP
    assert stored_users(pbx) == saved


def _read(work: Path) -> str:
    path = work / "sipp_messages.log"
    return path.read_text(errors="replace") if path.exists() else ""
