"""An in-memory network for the sans-I/O SIP objects (no sockets, no sleeping).

Nodes are anything with the DESIGN.md contract (``receive``, ``datagrams_to_send``,
``next_timer``, ``handle_timer``, ``next_event``): an ``Endpoint``, or a UA built on one.
Datagrams leave a node only when the network ``collect``s them; they sit ``in_flight`` until
``deliver`` moves them (in order), ``drop`` loses them or ``reorder`` shuffles them. Time
moves only through ``advance(t)``, which fires every timer due up to ``t`` in deadline order
(without delivering anything on its own). Every datagram put on the wire is logged in
``wire`` with its send time, so tests can count retransmissions and measure intervals.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pypbx.sip.endpoint import Endpoint, EndpointConfig
from pypbx.sip.events import Addr
from pypbx.sip.ids import IdFactory
from pypbx.sip.message import Request, make_request
from pypbx.sip.useragent import UserAgent


class Node(Protocol):
    def receive(self, data: bytes, addr: Addr, *, now: float) -> None: ...
    def datagrams_to_send(self, *, now: float) -> list[tuple[bytes, Addr]]: ...
    def next_timer(self) -> float | None: ...
    def handle_timer(self, *, now: float) -> None: ...
    def next_event(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Packet:
    """One datagram on the wire."""

    data: bytes
    src: Addr
    dst: Addr
    sent_at: float

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()

    @property
    def method_or_status(self) -> str:
        """``INVITE``, ``ACK`` ... for requests, ``200`` ... for responses."""
        line = self.first_line
        return line.split(" ")[1] if line.startswith("SIP/") else line.split(" ")[0]


@dataclass
class Network:
    """Several nodes with addresses, one clock, a queue of datagrams in flight."""

    now: float = 0.0
    nodes: dict[Addr, Node] = field(default_factory=dict)
    in_flight: list[Packet] = field(default_factory=list)
    wire: list[Packet] = field(default_factory=list)
    dropped: list[Packet] = field(default_factory=list)
    events: dict[Addr, list[Any]] = field(default_factory=dict)
    #: datagrams for which this returns True are lost as soon as they are sent
    blackhole: Callable[[Packet], bool] | None = None

    def add(self, addr: Addr, node: Node) -> Node:
        self.nodes[addr] = node
        self.events[addr] = []
        return node

    # -- moving datagrams -------------------------------------------------------------

    def collect(self) -> list[Packet]:
        """Take what every node wants to send and put it in flight; also drain events."""
        new: list[Packet] = []
        for addr, node in self.nodes.items():
            for data, dst in node.datagrams_to_send(now=self.now):
                new.append(Packet(data, addr, dst, self.now))
        self.wire.extend(new)
        if self.blackhole is not None:
            lost = [self.blackhole(p) for p in new]  # asked once per datagram
            self.dropped.extend(p for p, gone in zip(new, lost, strict=True) if gone)
            new = [p for p, gone in zip(new, lost, strict=True) if not gone]
        for addr, node in self.nodes.items():
            while (ev := node.next_event()) is not None:
                self.events[addr].append(ev)
        self.in_flight.extend(new)
        return new

    def deliver(self, count: int | None = None) -> int:
        """Deliver up to ``count`` datagrams in flight (all if ``None``), oldest first;
        datagrams to unknown addresses vanish. Returns how many were delivered."""
        self.collect()
        done = 0
        while self.in_flight and (count is None or done < count):
            pkt = self.in_flight.pop(0)
            node = self.nodes.get(pkt.dst)
            if node is not None:
                node.receive(pkt.data, pkt.src, now=self.now)
            done += 1
        self.collect()
        return done

    def settle(self, limit: int = 1000) -> None:
        """Deliver until nothing is in flight (no time passes)."""
        for _ in range(limit):
            if not self.deliver():
                return
        raise AssertionError("network did not settle")

    def drop(self, count: int = 1, where: Callable[[Packet], bool] | None = None) -> list[Packet]:
        """Lose the first ``count`` datagrams in flight (that satisfy ``where``)."""
        self.collect()
        lost: list[Packet] = []
        keep: list[Packet] = []
        for pkt in self.in_flight:
            if len(lost) < count and (where is None or where(pkt)):
                lost.append(pkt)
            else:
                keep.append(pkt)
        self.in_flight = keep
        self.dropped.extend(lost)
        return lost

    def reorder(self, order: Iterable[int] | None = None) -> None:
        """Permute the datagrams in flight (reverse them if no ``order`` is given)."""
        self.collect()
        if order is None:
            self.in_flight.reverse()
        else:
            self.in_flight = [self.in_flight[i] for i in order]

    # -- time ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = [d for n in self.nodes.values() if (d := n.next_timer()) is not None]
        return min(deadlines) if deadlines else None

    def advance(self, until: float, *, deliver: bool = False) -> None:
        """Move the clock to ``until``, firing every due timer at its own deadline. With
        ``deliver`` the network also delivers after each firing (a loss-free link)."""
        self.collect()
        while (d := self.next_deadline()) is not None and d <= until:
            self.now = max(self.now, d)
            for node in self.nodes.values():
                t = node.next_timer()
                if t is not None and t <= self.now:
                    node.handle_timer(now=self.now)
            if deliver:
                self.settle()
            else:
                self.collect()
        self.now = max(self.now, until)
        if deliver:
            self.settle()

    # -- looking at what happened -------------------------------------------------------

    def sent(self, src: Addr, what: str) -> list[Packet]:
        """Datagrams ``src`` put on the wire whose method or status is ``what``."""
        self.collect()
        return [p for p in self.wire if p.src == src and p.method_or_status == what]

    def from_(self, src: Addr) -> list[Packet]:
        """Every datagram ``src`` put on the wire, in order."""
        self.collect()
        return [p for p in self.wire if p.src == src]

    def times(self, src: Addr, what: str) -> list[float]:
        return [p.sent_at for p in self.sent(src, what)]

    def take_events(self, addr: Addr) -> list[Any]:
        """Events of node ``addr`` since the last call."""
        self.collect()
        out, self.events[addr] = self.events[addr], []
        return out


# -- ready-made endpoints and requests for the SIP tests ----------------------------------

ALICE: Addr = ("192.0.2.1", 5060)
BOB: Addr = ("192.0.2.2", 5060)


def make_endpoint(addr: Addr, seed: int, **config: Any) -> Endpoint:
    """An Endpoint at ``addr`` with ids from ``random.Random(seed)``."""
    cfg = EndpointConfig(host=addr[0], port=addr[1], **config)
    return Endpoint(IdFactory(random.Random(seed)), cfg)


def pair(**config: Any) -> tuple[Network, Any, Any]:
    """A network with two endpoints, ALICE and BOB, sharing ``config``."""
    net = Network()
    alice = net.add(ALICE, make_endpoint(ALICE, 1, **config))
    bob = net.add(BOB, make_endpoint(BOB, 2, **config))
    return net, alice, bob


def make_req(
    method: str,
    *,
    to_tag: str | None = None,
    from_tag: str = "ft1",
    call_id: str = "cid-1@192.0.2.1",
    cseq: int = 1,
    uri: str = "sip:bob@192.0.2.2",
    via: str | None = None,
    route: Iterable[str] = (),
    body: bytes = b"",
) -> Request:
    """A request from alice to bob; no Via unless given (the endpoint adds one)."""
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    req = make_request(
        method,
        uri,
        from_=f"<sip:alice@example.com>;tag={from_tag}",
        to=to,
        call_id=call_id,
        cseq=cseq,
        via=via or "SIP/2.0/UDP placeholder",
        contact="<sip:alice@192.0.2.1:5060>",
        route=route,
        body=body,
    )
    if via is None:
        req.headers.remove("via")
    return req


def ua_pair(**config: Any) -> tuple[Network, Any, Any]:
    """Two UserAgents (ALICE, BOB) over endpoints sharing ``config``."""
    net = Network()
    alice = net.add(ALICE, UserAgent(make_endpoint(ALICE, 1, **config),
                                     contact="<sip:alice@192.0.2.1:5060>"))  # fmt: skip
    bob = net.add(BOB, UserAgent(make_endpoint(BOB, 2, **config),
                                 contact="<sip:bob@192.0.2.2:5060>"))  # fmt: skip
    return net, alice, bob
