"""A small internet in Linux network namespaces, for NAT tests (issue 7, item 4).

::

                         wan (router + bridge br0: 203.0.113.1/24, 198.51.100.1/24)
            ┌───────────────────┼────────────────────────┐
        provider           pbxnat (MASQUERADE)       phonenat (MASQUERADE)
     198.51.100.10     wan0 203.0.113.2              wan0 203.0.113.3
                       lan0 192.168.50.1             lan0 192.168.60.1
                      (lan1 192.168.51.1)                 │
                            │                             │
                           pbx 192.168.50.10            phone 192.168.60.10
                     (lanphone 192.168.51.10)

The public ranges are TEST-NET-2/3 (RFC 5737): they exist only inside these namespaces.
Every link is a veth pair created between two of our namespaces; nothing touches the root
namespace's interfaces, and no namespace has a route out, so no packet can leave.

The NAT routers behave like home routers: LAN → WAN is masqueraded, WAN → LAN passes only
for established flows and for the port forwards a test adds (:meth:`Topology.port_forward`).

``topology(lan_phone=True)`` adds a second LAN behind pbxnat with a ``lanphone`` host: a phone
at the PBX's site (routed, not masqueraded, between the two LANs), for "several localnet" tests.

Root only. :func:`unavailable` says why a host cannot run these tests; :func:`topology` builds
and always tears down (namespaces deleted, processes started with :meth:`Topology.popen`
killed), even when the test body raises. :meth:`Topology.capture` records the UDP datagrams
seen on one interface (a small AF_PACKET sniffer: no tcpdump needed), to check what
addresses a message carried on each side of a NAT. :func:`sweep_stale` removes namespaces left by
processes that died without cleaning up. Every wait is bounded by a timeout.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

PREFIX = "pypbx-"
TIMEOUT = 10.0

WAN = "wan"
PROVIDER = "provider"
PBXNAT = "pbxnat"
PBX = "pbx"
PHONENAT = "phonenat"
PHONE = "phone"
ROLES = (WAN, PROVIDER, PBXNAT, PBX, PHONENAT, PHONE)
LANPHONE = "lanphone"
"""The optional host on pbxnat's second LAN (``topology(lan_phone=True)``)."""


@dataclass(frozen=True, slots=True)
class Iface:
    """One interface of a namespace: name, address/prefix."""

    role: str
    name: str
    cidr: str

    @property
    def ip(self) -> str:
        return self.cidr.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair between two namespaces; ``a_bridge`` enslaves side a to ``br0``."""

    a: Iface
    b: Iface
    a_bridge: bool = False


# The veth pairs; the wan side of the public links joins the bridge.
_LINKS = (
    Link(Iface(WAN, "w-prov", ""), Iface(PROVIDER, "eth0", "198.51.100.10/24"), a_bridge=True),
    Link(Iface(WAN, "w-pbxn", ""), Iface(PBXNAT, "wan0", "203.0.113.2/24"), a_bridge=True),
    Link(Iface(WAN, "w-phnn", ""), Iface(PHONENAT, "wan0", "203.0.113.3/24"), a_bridge=True),
    Link(Iface(PBXNAT, "lan0", "192.168.50.1/24"), Iface(PBX, "eth0", "192.168.50.10/24")),
    Link(Iface(PHONENAT, "lan0", "192.168.60.1/24"), Iface(PHONE, "eth0", "192.168.60.10/24")),
)
_LAN_PHONE_LINK = Link(
    Iface(PBXNAT, "lan1", "192.168.51.1/24"), Iface(LANPHONE, "eth0", "192.168.51.10/24")
)
_WAN_BRIDGE_ADDRS = ("203.0.113.1/24", "198.51.100.1/24")
_GATEWAYS = {
    PROVIDER: "198.51.100.1",
    PBXNAT: "203.0.113.1",
    PHONENAT: "203.0.113.1",
    PBX: "192.168.50.1",
    PHONE: "192.168.60.1",
    LANPHONE: "192.168.51.1",
}
_ROUTERS = (WAN, PBXNAT, PHONENAT)
_LAN_IFACE = {LANPHONE: "lan1"}
_NATS = (PBXNAT, PHONENAT)

# The address each host has in its own namespace, and the one the internet sees.
ADDRESSES = {
    WAN: "203.0.113.1",
    PROVIDER: "198.51.100.10",
    PBXNAT: "203.0.113.2",
    PBX: "192.168.50.10",
    PHONENAT: "203.0.113.3",
    PHONE: "192.168.60.10",
    LANPHONE: "192.168.51.10",
}
LANS = {PBXNAT: "192.168.50.0/24", PHONENAT: "192.168.60.0/24"}
LAN_PHONE_NET = "192.168.51.0/24"
_BEHIND = {PBX: PBXNAT, PHONE: PHONENAT, LANPHONE: PBXNAT}


class TopologyError(RuntimeError):
    """A command building or using the topology failed (its stderr is in the message)."""


def unavailable() -> str | None:
    """Why namespace tests cannot run here (not root, ``ip``/``iptables`` missing), or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespace tests need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed"
    return None


def _cmd(argv: Sequence[str], *, timeout: float = TIMEOUT, check: bool = True) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TopologyError(f"timed out after {timeout}s: {' '.join(argv)}") from exc
    if check and done.returncode != 0:
        raise TopologyError(f"{' '.join(argv)} -> {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    out = _cmd(["ip", "netns", "list"])
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def delete_namespace(name: str) -> None:
    """Delete one namespace; a missing one is not an error."""
    _cmd(["ip", "netns", "delete", name], check=False)


_PID_RE = re.compile(r"(\d+)-")


def _alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def sweep_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces named ``<prefix><pid>-...`` whose creating process is gone."""
    removed = []
    for name in list_namespaces():
        if not name.startswith(prefix):
            continue
        m = _PID_RE.match(name[len(prefix) :])
        if m is None or _alive(int(m.group(1))):
            continue
        delete_namespace(name)
        removed.append(name)
    return removed


# argv: interface, udp port (0 = any). Prints "ready", then one JSON line per IPv4 UDP packet
# seen on the interface (both directions).
_SNIFFER = """
import base64, json, socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
port = int(sys.argv[2])
print("ready", flush=True)
while True:
    frame, meta = s.recvfrom(65535)
    if len(frame) < 42 or frame[12:14] != b"\\x08\\x00":
        continue
    ip = frame[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17:
        continue
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if port and port not in (sport, dport):
        continue
    print(json.dumps({
        "src": socket.inet_ntoa(ip[12:16]), "sport": sport,
        "dst": socket.inet_ntoa(ip[16:20]), "dport": dport,
        "outgoing": meta[2] == 4,
        "payload": base64.b64encode(ip[ihl + 8:]).decode(),
    }), flush=True)
"""


@dataclass(frozen=True, slots=True)
class Packet:
    """One captured UDP datagram; ``outgoing`` when the capturing namespace sent it."""

    src: str
    sport: int
    dst: str
    dport: int
    outgoing: bool
    payload: bytes


@dataclass
class Capture:
    """A running capture (see :meth:`Topology.capture`); :meth:`stop` returns the packets.

    A thread drains the sniffer's output as it comes: a full pipe would stall the sniffer
    and the kernel would drop what it could not queue (a call's RTP is 100 packets/s)."""

    proc: subprocess.Popen[Any]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(stdout.readline, "")), daemon=True
        )
        self._reader.start()

    def stop(self) -> list[Packet]:
        """Stop capturing (bounded wait) and return what was seen, in order."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise TopologyError("capture did not stop") from exc
        if self._reader is not None:
            self._reader.join(TIMEOUT)
            if self._reader.is_alive():
                raise TopologyError("capture output not drained")
        elif self.proc.stdout is not None:
            self.lines.extend(self.proc.stdout.read().splitlines())
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        packets = []
        for line in self.lines:
            if not line.strip():
                continue
            d = json.loads(line)
            packets.append(
                Packet(
                    d["src"], d["sport"], d["dst"], d["dport"], d["outgoing"],
                    base64.b64decode(d["payload"]),
                )
            )  # fmt: skip
        return packets


_counter = itertools.count()


@dataclass
class Topology:
    """A built topology: namespace names per role, helpers to run programs inside."""

    prefix: str
    namespaces: dict[str, str]
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        """The namespace name of a role (``pbx``, ``phone``, ``provider`` ...)."""
        return self.namespaces[role]

    def addr(self, role: str) -> str:
        """The host's own address (private for ``pbx``/``phone``)."""
        return ADDRESSES[role]

    def public_addr(self, role: str) -> str:
        """The address the internet sees for a host (its NAT router's WAN address)."""
        return ADDRESSES[_BEHIND.get(role, role)]

    def argv(self, role: str, argv: Sequence[str]) -> list[str]:
        """``ip netns exec <ns> argv...``."""
        return ["ip", "netns", "exec", self.ns(role), *argv]

    def run(
        self,
        role: str,
        argv: Sequence[str],
        *,
        timeout: float = TIMEOUT,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program in a namespace and wait for it (at most ``timeout`` seconds)."""
        full = self.argv(role, argv)
        try:
            done = subprocess.run(
                full, capture_output=True, text=True, timeout=timeout, input=input, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TopologyError(f"timed out after {timeout}s: {' '.join(full)}") from exc
        if check and done.returncode != 0:
            raise TopologyError(f"{' '.join(full)} -> {done.returncode}: {done.stderr.strip()}")
        return done

    def python(
        self, role: str, code: str, *args: str, timeout: float = TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code args...`` (this interpreter) in a namespace."""
        return self.run(role, [sys.executable, "-c", code, *args], timeout=timeout, check=check)

    def popen(self, role: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a program in a namespace (``kwargs`` go to ``Popen``); it is killed at
        teardown if still running."""
        proc: subprocess.Popen[Any] = subprocess.Popen(self.argv(role, argv), **kwargs)
        self._procs.append(proc)
        return proc

    def port_forward(self, router: str, proto: str, ports: str, role: str) -> None:
        """DNAT ``ports`` (``5060`` or ``10000:20000``) arriving on ``router``'s WAN side to
        the host ``role`` behind it (the tutorial's "forward 5060 and 10000-20000")."""
        if _BEHIND.get(role) != router:
            raise ValueError(f"{role} is not behind {router}")
        to = self.addr(role)
        dest = ports.replace(":", "-")
        lan = _LAN_IFACE.get(role, "lan0")
        for rule in (
            ["-t", "nat", "-A", "PREROUTING", "-i", "wan0", "-p", proto, "--dport", ports,
             "-j", "DNAT", "--to-destination", f"{to}:{dest}"],
            ["-A", "FORWARD", "-i", "wan0", "-o", lan, "-p", proto, "-d", to, "--dport", ports,
             "-m", "conntrack", "--ctstate", "DNAT", "-j", "ACCEPT"],
        ):  # fmt: skip
            self.run(router, ["iptables", *rule])

    def capture(self, role: str, iface: str, port: int = 0) -> Capture:
        """Start capturing IPv4 UDP on ``iface`` of a namespace (only ``port`` if given);
        returns once the capture is ready (or raises after ``TIMEOUT``)."""
        proc = self.popen(
            role,
            [sys.executable, "-c", _SNIFFER, iface, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        if not ready or proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise TopologyError(f"capture on {role}/{iface} did not start")
        capture = Capture(proc)
        capture.start_reading()
        return capture

    def kill_processes(self) -> None:
        """Kill what :meth:`popen` started (each by its own pid), waiting a bounded time."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=TIMEOUT)
        self._procs.clear()

    def teardown(self) -> list[str]:
        """Kill our processes, delete our namespaces; returns those still present (none)."""
        self.kill_processes()
        for name in self.namespaces.values():
            delete_namespace(name)
        left = [n for n in list_namespaces() if n.startswith(self.prefix)]
        for name in left:
            delete_namespace(name)
        return [n for n in list_namespaces() if n.startswith(self.prefix)]


def _sysctl(topo: Topology, role: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    topo.run(role, ["sh", "-c", f"echo {value} > {path}"])


def _build(topo: Topology) -> None:
    for name in topo.namespaces.values():
        _cmd(["ip", "netns", "add", name])
    for role in topo.namespaces:
        topo.run(role, ["ip", "link", "set", "lo", "up"])
    topo.run(WAN, ["ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0"])
    for cidr in _WAN_BRIDGE_ADDRS:
        topo.run(WAN, ["ip", "addr", "add", cidr, "dev", "br0"])
    topo.run(WAN, ["ip", "link", "set", "br0", "up"])
    lan_phone = LANPHONE in topo.namespaces
    for link in (*_LINKS, _LAN_PHONE_LINK) if lan_phone else _LINKS:
        a, b = link.a, link.b
        _cmd(["ip", "-n", topo.ns(a.role), "link", "add", a.name, "type", "veth",
              "peer", "name", b.name, "netns", topo.ns(b.role)])  # fmt: skip
        for side in (a, b):
            if side.cidr:
                topo.run(side.role, ["ip", "addr", "add", side.cidr, "dev", side.name])
            topo.run(side.role, ["ip", "link", "set", side.name, "up"])
        if link.a_bridge:
            topo.run(a.role, ["ip", "link", "set", a.name, "master", "br0"])
    for role, gateway in _GATEWAYS.items():
        if role in topo.namespaces:
            topo.run(role, ["ip", "route", "add", "default", "via", gateway])
    for role in _ROUTERS:
        _sysctl(topo, role, "net.ipv4.ip_forward", "1")
    for role in _NATS:
        for rule in (
            ["-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"],
            ["-P", "FORWARD", "DROP"],
            ["-A", "FORWARD", "-i", "lan0", "-o", "wan0", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "wan0", "-o", "lan0", "-m", "conntrack",
             "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ):  # fmt: skip
            topo.run(role, ["iptables", *rule])
    if lan_phone:  # the two LANs of the PBX site talk to each other without NAT
        for rule in (
            ["-A", "FORWARD", "-i", "lan0", "-o", "lan1", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "lan1", "-o", "lan0", "-j", "ACCEPT"],
            ["-A", "FORWARD", "-i", "lan1", "-o", "wan0", "-j", "ACCEPT"],
        ):
            topo.run(PBXNAT, ["iptables", *rule])


@contextmanager
def topology(prefix: str | None = None, *, lan_phone: bool = False) -> Iterator[Topology]:
    """Build the topology, yield it, and tear it down whatever happens.

    ``prefix`` defaults to ``pypbx-<pid>-<n>-`` (unique per process and call);
    ``lan_phone`` adds the ``lanphone`` host on a second LAN behind pbxnat. Stale
    namespaces of dead processes are swept first. Raises :class:`TopologyError` when a
    build step fails (after cleaning up what was built).
    """
    sweep_stale()
    if prefix is None:
        prefix = f"{PREFIX}{os.getpid()}-{next(_counter)}-"
    roles = (*ROLES, LANPHONE) if lan_phone else ROLES
    topo = Topology(prefix, {role: prefix + role for role in roles})
    try:
        _build(topo)
        yield topo
    finally:
        left = topo.teardown()
    if left:
        raise TopologyError(f"namespaces left behind: {left}")
