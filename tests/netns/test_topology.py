"""The namespace internet of tests/netns/topology.py does what NAT tests rely on.

UDP probes run as small Python programs inside the namespaces: an echo server answers each
datagram with the source address it saw, which is how MASQUERADE is observed.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.netns.topology import (
    PBX,
    PBXNAT,
    PHONE,
    PHONENAT,
    PREFIX,
    PROVIDER,
    WAN,
    Topology,
    TopologyError,
    delete_namespace,
    list_namespaces,
    sweep_stale,
    topology,
    unavailable,
)

_WHY = unavailable()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]

WAIT = 5.0

# argv: port, idle seconds. Prints "ready", then "ip:port payload" per datagram, and echoes
# the source address back. Exits after `idle` seconds without traffic.
ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
print("ready", flush=True)
while True:
    try:
        data, addr = s.recvfrom(2048)
    except TimeoutError:
        break
    print(f"{addr[0]}:{addr[1]} {data.decode()}", flush=True)
    s.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)
"""

# argv: host, port, local port, payload, seconds. Prints the reply; "error: ..." if none.
PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[3])))
s.settimeout(float(sys.argv[5]))
try:
    s.sendto(sys.argv[4].encode(), (sys.argv[1], int(sys.argv[2])))
    data, _ = s.recvfrom(2048)
except OSError as exc:
    print(f"error: {exc}")
    sys.exit(2)
print(data.decode())
"""


@pytest.fixture
def topo() -> Iterator[Topology]:
    with topology() as t:
        yield t


def start_echo(topo: Topology, role: str, port: int, idle: float = WAIT) -> subprocess.Popen[str]:
    proc: subprocess.Popen[str] = topo.popen(
        role,
        [sys.executable, "-c", ECHO, str(port), str(idle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], WAIT)
    assert ready, "echo server did not start in time"
    assert proc.stdout.readline().strip() == "ready"
    return proc


def probe(
    topo: Topology,
    role: str,
    host: str,
    port: int,
    local_port: int,
    payload: str,
    *,
    wait: float = 2.0,
) -> str:
    args = (host, str(port), str(local_port), payload, str(wait))
    done = topo.python(role, PROBE, *args, check=False)
    return done.stdout.strip()


def finish(proc: subprocess.Popen[str]) -> list[str]:
    """Stop an echo server and return the lines it printed after "ready"."""
    proc.kill()
    out, _ = proc.communicate(timeout=WAIT)
    return out.splitlines()


def test_phone_is_masqueraded_behind_phonenat(topo: Topology) -> None:
    server = start_echo(topo, PROVIDER, 7000)
    reply = probe(topo, PHONE, topo.addr(PROVIDER), 7000, 40000, "from-phone")
    seen = finish(server)
    host, _, port = reply.partition(":")
    assert host == topo.public_addr(PHONE) == "203.0.113.3"
    assert port.isdigit()
    assert seen == [f"{reply} from-phone"]
    assert not any("192.168.60." in line for line in seen)


def test_capture_shows_both_sides_of_the_nat(topo: Topology) -> None:
    server = start_echo(topo, PROVIDER, 7004)
    inside = topo.capture(PHONE, "eth0", port=7004)
    outside = topo.capture(PROVIDER, "eth0", port=7004)
    reply = probe(topo, PHONE, topo.addr(PROVIDER), 7004, 40004, "hello 192.168.60.10")
    finish(server)
    sent_in = [p for p in inside.stop() if p.dport == 7004]
    got_out = [p for p in outside.stop() if p.dport == 7004]
    assert [(p.src, p.sport, p.outgoing) for p in sent_in] == [(topo.addr(PHONE), 40004, True)]
    assert [(p.src, p.outgoing) for p in got_out] == [(topo.public_addr(PHONE), False)]
    # the payload crosses the NAT untouched: a private address inside it stays (no SIP ALG)
    assert got_out[0].payload == b"hello 192.168.60.10"
    assert f"{got_out[0].src}:{got_out[0].sport}" == reply


def test_pbx_reaches_provider_through_pbxnat(topo: Topology) -> None:
    server = start_echo(topo, PROVIDER, 7001)
    reply = probe(topo, PBX, topo.addr(PROVIDER), 7001, 5060, "from-pbx")
    seen = finish(server)
    assert reply.partition(":")[0] == topo.public_addr(PBX) == "203.0.113.2"
    assert seen == [f"{reply} from-pbx"]


def test_lan_hosts_reach_their_router(topo: Topology) -> None:
    server = start_echo(topo, PBXNAT, 7002)
    reply = probe(topo, PBX, "192.168.50.1", 7002, 41000, "lan")
    finish(server)
    assert reply == f"{topo.addr(PBX)}:41000"  # no NAT inside the LAN


@pytest.mark.parametrize(("target", "router"), [(PBX, PBXNAT), (PHONE, PHONENAT)])
def test_provider_cannot_reach_private_lans(topo: Topology, target: str, router: str) -> None:
    # no route at all
    reply = probe(topo, PROVIDER, topo.addr(target), 7003, 42000, "direct", wait=1.0)
    assert reply.startswith("error:"), reply
    # even when the internet routes the private LAN to its NAT router on purpose, the
    # router drops a new inbound flow
    server = start_echo(topo, target, 7003, idle=1.0)
    lan = "192.168.50.0/24" if target == PBX else "192.168.60.0/24"
    topo.run(WAN, ["ip", "route", "add", lan, "via", topo.addr(router)])
    reply = probe(topo, PROVIDER, topo.addr(target), 7003, 42001, "routed", wait=1.0)
    assert reply.startswith("error:"), reply
    assert finish(server) == []


def test_port_forward_reaches_the_pbx(topo: Topology) -> None:
    topo.port_forward(PBXNAT, "udp", "5060", PBX)
    server = start_echo(topo, PBX, 5060)
    reply = probe(topo, PROVIDER, topo.public_addr(PBX), 5060, 43000, "INVITE")
    seen = finish(server)
    # the pbx sees the provider's real address; the provider's answer came back un-DNATed
    assert seen == [f"{topo.addr(PROVIDER)}:43000 INVITE"]
    assert reply == f"{topo.addr(PROVIDER)}:43000"


def test_port_forward_only_behind_its_router(topo: Topology) -> None:
    with pytest.raises(ValueError, match="not behind"):
        topo.port_forward(PBXNAT, "udp", "5060", PHONE)


def test_nothing_leaves_the_namespaces(topo: Topology) -> None:
    # the internet router has no way out
    out = topo.run(WAN, ["ip", "route", "get", "192.0.2.1"], check=False)
    assert out.returncode != 0
    assert "unreachable" in out.stderr.lower()
    assert "default" not in topo.run(WAN, ["ip", "route"]).stdout
    # no root-namespace interface is linked to one of ours
    root_links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=WAIT, check=True
    ).stdout
    assert topo.prefix not in root_links
    for role in topo.namespaces:
        links = topo.run(role, ["ip", "-o", "link", "show"]).stdout
        assert "lo:" in links
        assert "state UNKNOWN" in links.split("lo:", 1)[1].splitlines()[0]  # lo is up


def test_teardown_deletes_every_namespace() -> None:
    with topology() as t:
        names = set(t.namespaces.values())
        assert names <= set(list_namespaces())
        proc = t.popen(PROVIDER, ["sleep", "30"])
    assert not names & set(list_namespaces())
    assert proc.poll() is not None  # the process started inside was killed


def _fail_inside(prefixes: list[str]) -> None:
    with topology() as t:
        prefixes.append(t.prefix)
        raise RuntimeError("boom")


def test_teardown_runs_when_the_test_fails() -> None:
    prefixes: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        _fail_inside(prefixes)
    (prefix,) = prefixes
    assert not [n for n in list_namespaces() if n.startswith(prefix)]


def _build_only(prefix: str) -> None:
    with topology(prefix=prefix):
        pass


def test_build_failure_cleans_up() -> None:
    # "/" is not allowed in a namespace name: the first `ip netns add` fails
    bad = f"{PREFIX}{os.getpid()}-bad/"
    with pytest.raises(TopologyError, match="netns add"):
        _build_only(bad)
    assert not [n for n in list_namespaces() if n.startswith(bad[:-1])]


def test_sweep_removes_only_dead_owners() -> None:
    dead = f"{PREFIX}4194999-0-stale"  # above pid_max: never a live process
    mine = f"{PREFIX}{os.getpid()}-999-keep"
    try:
        for name in (dead, mine):
            subprocess.run(["ip", "netns", "add", name], check=True, timeout=WAIT)
        removed = sweep_stale()
        assert dead in removed
        assert mine not in removed
        present = set(list_namespaces())
        assert dead not in present
        assert mine in present
    finally:
        delete_namespace(dead)
        delete_namespace(mine)
