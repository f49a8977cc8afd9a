"""Toll-fraud analysis of sip.conf + extensions.conf for ``pypbx check`` (issue 9 items 1-2).

The classic hole: a context that takes calls *without authentication* can reach a ``Dial``
to a trunk, so anyone on the Internet calls premium numbers on the owner's bill. RFC 3261
§22.1 leaves the choice of which requests to challenge to the server; these are the ones
pypbx (as chan_sip's ``check_user_full``) lets in unchallenged:

* guests, in ``[general] context``, when ``allowguest=yes`` (chan_sip's default was yes,
  pypbx's is no, so a config that sets it relies on guest calls: a warning says so);
* a peer matched by its source address with ``insecure=invite``, into the peer's context;
* a peer with neither ``secret`` nor ``md5secret``: matched by address, or (``type=user``
  and ``friend``) by the From user name, which anyone can write.

From each such context the analysis follows ``include =>`` and the jumps whose target context
is written literally (Goto, GotoIf, GotoIfTime, Gosub, GosubIf, Macro, ``Dial(Local/x@ctx)``
and the applications inside ExecIf/Exec) and looks at every ``Dial`` it can reach. A target
is a *trunk* when it is a SIP peer with a fixed (non-dynamic) host, a peer named by a
``register =>`` line or with ``insecure=``, a host name or address that is no peer, or a
DAHDI/Zap line; ``[globals]`` and literal ``Set()`` values are substituted to find it.

Findings (``file:line: message``):

* error: an unauthenticated context can dial a trunk with a number that is not fixed (from
  ``${EXTEN}``, caller id or any variable), or lets the caller choose the peer itself;
* warning: an unauthenticated context dials a trunk with a fixed number, or a peer the
  analysis cannot name; ``allowguest=yes``; ``alwaysauthreject=no`` (user names leak);
* warning, anywhere in the plan: a catch-all pattern (``_X.``, ``_.``, ``_!``: ``.``/``!``
  match any characters) feeds ``${EXTEN}`` into a SIP or DAHDI Dial target (injection and
  fraud risk; a ``Local/`` target goes back to the dial plan, whose patterns decide), a
  pattern whose sets admit characters other than ``0-9*#+`` does, or caller-supplied text
  (``CALLERID``, ``SIP_HEADER`` ...) is part of a Dial target. pypbx neutralises dial-string
  syntax in caller text at run time (``&``, ``,``, ``@``, ``/`` cannot add a destination), but
  the pattern still decides which numbers go out.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from pypbx.config.conf import Origin
from pypbx.config.sipconf import Insecure, Peer, PeerType, SipConfig
from pypbx.dialplan.args import split_application, split_args, split_assignment
from pypbx.dialplan.model import Dialplan, Extension, Priority
from pypbx.dialplan.pattern import Wildcard

__all__ = [
    "DialTarget",
    "Finding",
    "Reach",
    "Severity",
    "TrunkKind",
    "UnauthenticatedEntry",
    "analyse",
    "dial_targets",
    "trunk_reason",
    "unauthenticated_entries",
]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, printed as ``file:line: message``."""

    severity: Severity
    origin: Origin | None
    message: str

    def __str__(self) -> str:
        return self.message if self.origin is None else f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class UnauthenticatedEntry:
    """A context that takes calls nobody authenticated, and why."""

    context: str
    reason: str
    origin: Origin | None


class TrunkKind(StrEnum):
    """What a Dial target turned out to be."""

    LOCAL = "local"  # a peer that is not a trunk (a phone)
    TRUNK = "trunk"
    CALLER_CHOSEN = "caller-chosen"  # the caller picks the peer
    UNKNOWN = "unknown"  # a variable the analysis cannot resolve
    OTHER = "other"  # not a SIP/DAHDI destination (Local/ is followed as a jump)


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One ``&``-separated destination of a Dial after substitution of known variables."""

    text: str
    kind: TrunkKind
    peer: str
    number: str
    why: str = ""

    @property
    def number_fixed(self) -> bool:
        return "${" not in self.number and "$[" not in self.number


@dataclass(frozen=True, slots=True)
class Reach:
    """An extension reached from an unauthenticated context, and the way it was reached."""

    context: str
    extension: Extension
    via: str


# --- sip.conf side ---------------------------------------------------------------------------


def _has_secret(peer: Peer) -> bool:
    return bool(peer.secret or peer.md5secret)


def unauthenticated_entries(sip: SipConfig) -> list[UnauthenticatedEntry]:
    """The contexts pypbx lets calls into without a digest challenge (module docstring)."""
    out: list[UnauthenticatedEntry] = []
    g = sip.general
    if g.allowguest:
        out.append(UnauthenticatedEntry(g.context, "allowguest=yes", g.origin))
    for peer in sip.peers.values():
        by_host = peer.type is not PeerType.USER and peer.host is not None
        where = "its registered address" if peer.dynamic else f"host {peer.host}"
        acl = ", limited by permit/deny" if peer.acl else ""
        if by_host and Insecure.INVITE in peer.insecure:
            why = f"peer [{peer.name}] with insecure=invite, matched by {where}{acl}"
        elif not _has_secret(peer) and peer.type is not PeerType.PEER:
            why = f"peer [{peer.name}] without secret: any caller with From user '{peer.name}'"
            why += acl
        elif not _has_secret(peer) and by_host:
            why = f"peer [{peer.name}] without secret, matched by {where}{acl}"
        else:
            continue
        out.append(UnauthenticatedEntry(peer.context, why, peer.origin))
    return out


def trunk_reason(sip: SipConfig, peer: Peer) -> str | None:
    """Why ``peer`` counts as a trunk, or None for a phone (a dynamic peer)."""
    for reg in sip.registrations:
        if (reg.peer or "").lower() == peer.name.lower() or (
            peer.host is not None and reg.host.lower() == peer.host.lower()
        ):
            return f"register => line at {reg.origin}"
    if peer.insecure:
        return "insecure=" + ",".join(sorted(peer.insecure))
    if peer.host is not None and not peer.dynamic:
        return f"fixed host {peer.host}"
    return None


# --- variables -------------------------------------------------------------------------------

_REF: Final = re.compile(
    r"\$\{(?:GLOBAL\((?P<g>[A-Za-z0-9_]+)\)|(?P<v>[A-Za-z0-9_]+))\}", re.IGNORECASE
)
# Text the caller writes (Request-URI, From, headers): never a safe Dial target.
_CALLER_TEXT: Final = re.compile(
    r"\$\{(?:EXTEN\b|INVALID_EXTEN\b|DNID\b|RDNIS\b|CALLERID[(]|CALLERIDNUM\b|CALLERIDNAME\b"
    r"|CONNECTEDLINE[(]|REDIRECTING[(]|SIP_HEADER[(]|PJSIP_HEADER[(]|SIPDOMAIN\b|SIPURI\b)",
    re.IGNORECASE,
)
_EXTEN: Final = re.compile(r"\$\{EXTEN\b", re.IGNORECASE)
_MAX_EXPANSIONS: Final = 16
_DIAL_DIGITS: Final = frozenset("0123456789*#+")


def _known_values(dp: Dialplan) -> dict[str, tuple[str, ...]]:
    """Values a variable may hold: its ``[globals]`` value and every literal ``Set()``."""
    values: dict[str, list[str]] = {}
    for name, value in dp.global_vars().items():
        values.setdefault(name, []).append(value)
    for _, _, prio in _priorities(dp):
        for app, args in _calls(prio.app, prio.args):
            if app != "set":
                continue
            pair = split_assignment(args)
            if pair is not None:
                name = pair[0].strip().lstrip("_")
                if name and pair[1] not in values.setdefault(name, []):
                    values[name].append(pair[1])
    return {k: tuple(v) for k, v in values.items()}


def _expand(text: str, known: dict[str, tuple[str, ...]]) -> list[str]:
    """``text`` with every known variable replaced by each value it may hold (bounded)."""
    done: list[str] = []
    work = deque([(text, 0)])
    while work and len(done) < _MAX_EXPANSIONS:
        current, depth = work.popleft()
        match = next(
            (m for m in _REF.finditer(current) if (m.group("g") or m.group("v")) in known),
            None,
        )
        if match is None or depth >= 8:
            done.append(current)
            continue
        for value in known[match.group("g") or match.group("v")]:
            work.append((current[: match.start()] + value + current[match.end() :], depth + 1))
    return done or [text]


# --- dial targets ----------------------------------------------------------------------------


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.partition(":")[0] if host.count(":") == 1 else host


def _classify_sip(sip: SipConfig, text: str, resource: str) -> DialTarget:
    head, slash, tail = resource.partition("/")
    if "@" in head:
        number, _, peer_text = head.rpartition("@")
    else:
        number, peer_text = (tail if slash else ""), head
    peer_name = _strip_port(peer_text)
    if _CALLER_TEXT.search(peer_name):
        return DialTarget(text, TrunkKind.CALLER_CHOSEN, peer_name, number)
    if "${" in peer_name or "$[" in peer_name:
        return DialTarget(text, TrunkKind.UNKNOWN, peer_name, number)
    folded = {p.name.lower(): p for p in sip.peers.values()}
    peer = folded.get(peer_name.lower())
    if peer is None:
        peer = next(
            (p for p in sip.peers.values() if p.host and p.host.lower() == peer_name.lower()),
            None,
        )
    if peer is not None:
        why = trunk_reason(sip, peer)
        kind = TrunkKind.LOCAL if why is None else TrunkKind.TRUNK
        return DialTarget(text, kind, peer.name, number, why or "")
    if "." in peer_name or ":" in peer_name:
        return DialTarget(text, TrunkKind.TRUNK, peer_name, number, "a host that is no peer")
    return DialTarget(text, TrunkKind.LOCAL, peer_name, number, "no such peer")


def _first_arg(args: str) -> str:
    """The destination list of Dial data (``""`` when there is none)."""
    fields = split_args(args, max_args=2)
    return fields[0] if fields else ""


def dial_targets(
    sip: SipConfig, args: str, known: dict[str, tuple[str, ...]] | None = None
) -> list[DialTarget]:
    """The destinations of ``Dial(args)``, each classified (known variables substituted)."""
    first = _first_arg(args)
    if not first:
        return []
    out: list[DialTarget] = []
    for text in _expand(first, known or {}):
        for target in (t.strip() for t in text.split("&")):
            tech, slash, resource = target.partition("/")
            tech = tech.strip().lower()
            if not slash:
                out.append(DialTarget(target, TrunkKind.UNKNOWN, target, ""))
            elif tech == "sip":
                out.append(_classify_sip(sip, target, resource))
            elif tech in ("dahdi", "zap"):
                out.append(DialTarget(target, TrunkKind.TRUNK, target, resource, "a PSTN line"))
            else:
                out.append(DialTarget(target, TrunkKind.OTHER, resource, resource))
    return out


# --- dial plan walk --------------------------------------------------------------------------


def _priorities(dp: Dialplan) -> Iterator[tuple[str, Extension, Priority]]:
    for ctx in dp.contexts.values():
        for ext in ctx.extensions:
            for prio in ext.priorities.values():
                yield ctx.name, ext, prio


def _calls(app: str, args: str, depth: int = 0) -> list[tuple[str, str]]:
    """``(app, args)`` with the applications ExecIf/Exec run, names lower-cased."""
    name = app.strip().lower()
    out = [(name, args)]
    if depth > 4:
        return out
    inner: list[str] = []
    if name == "execif":
        _, q, rest = args.partition("?")
        inner = split_args(rest, ":") if q else []
    elif name == "exec":
        inner = [args]
    for text in inner:
        call = split_application(text)
        out.extend(_calls(call.name, call.data, depth + 1))
    return out


def _branches(args: str) -> list[str]:
    """``cond?a:b`` → ``[a, b]`` (the empty ones dropped)."""
    _, q, rest = args.partition("?")
    if not q:
        return []
    return [b for b in split_args(rest, ":", max_args=2) if b.strip()]


def _label(text: str) -> list[str]:
    """``[[context,]exten,]priority[(args)]`` split, without Gosub arguments."""
    parts = [p.strip() for p in split_args(text)]
    if parts:
        parts[-1] = parts[-1].partition("(")[0]
    return parts


def _jumps(app: str, args: str) -> list[tuple[str | None, str | None]]:
    """(context or None for the current one, exten or None for the current one) targets."""
    labels: list[str]
    if app in ("goto", "gosub"):
        labels = [args]
    elif app in ("gotoif", "gosubif", "gotoiftime", "gosubiftime"):
        labels = _branches(args)
    elif app == "macro":
        name = split_args(args)[0].strip() if args.strip() else ""
        return [(f"macro-{name}", "s")] if name else []
    elif app == "dial":
        out: list[tuple[str | None, str | None]] = []
        for target in split_args(args, max_args=2)[:1]:
            for t in target.split("&"):
                tech, _, rest = t.strip().partition("/")
                if tech.lower() == "local":
                    exten, _, ctx = rest.partition("/")[0].partition("@")
                    out.append((ctx or "default", exten))
        return out
    else:
        return []
    result: list[tuple[str | None, str | None]] = []
    for label in labels:
        parts = _label(label)
        if len(parts) >= 3:
            result.append((parts[-3], parts[-2]))
        elif len(parts) == 2:
            result.append((None, parts[0]))
    return result


class _Walk:
    """Breadth-first reach of extensions from one context (each extension once)."""

    def __init__(self, dp: Dialplan) -> None:
        self.dp = dp
        self.reached: dict[Extension, Reach] = {}
        self.queue: deque[Reach] = deque()
        self.unresolved: list[tuple[Priority, str]] = []

    def whole_context(self, ctx: str, via: str) -> None:
        for name in self.dp.search_order(ctx):
            step = via if name == ctx else f"{via}, include '{name}'"
            for ext in self.dp.ordered_extensions(name):
                self.add(ctx, ext, step)

    def matching(self, ctx: str, exten: str, via: str) -> None:
        if "${" in exten or "$[" in exten:
            self.whole_context(ctx, via)
            return
        for name in self.dp.search_order(ctx):
            for ext in self.dp.ordered_extensions(name):
                if ext.name == exten or ext.pattern.matches(exten):
                    self.add(ctx, ext, via)

    def add(self, ctx: str, ext: Extension, via: str) -> None:
        if ext not in self.reached:
            reach = self.reached[ext] = Reach(ctx, ext, via)
            self.queue.append(reach)

    def run(self, start: str) -> dict[Extension, Reach]:
        self.whole_context(start, f"context '{start}'")
        while self.queue:
            reach = self.queue.popleft()
            for prio in reach.extension.priorities.values():
                for app, args in _calls(prio.app, prio.args):
                    for ctx, exten in _jumps(app, args):
                        self.follow(reach, prio, ctx, exten)
        return self.reached

    def follow(self, reach: Reach, prio: Priority, ctx: str | None, exten: str | None) -> None:
        ctx = reach.context if ctx is None else ctx
        if "${" in ctx or "$[" in ctx:
            self.unresolved.append((prio, ctx))
            return
        via = f"{reach.via}, {prio.app} at {prio.origin}"
        if exten is None:
            return
        self.matching(ctx, exten, via)


# --- findings --------------------------------------------------------------------------------


def _general_findings(sip: SipConfig) -> list[Finding]:
    g = sip.general
    out: list[Finding] = []
    if g.allowguest:
        out.append(
            Finding(
                Severity.WARNING,
                g.origin,
                f"allowguest=yes: calls from anyone are accepted into context '{g.context}' "
                "without authentication; chan_sip defaulted to yes but pypbx defaults to no, "
                "and this configuration relies on guest calls",
            )
        )
    if not g.alwaysauthreject:
        out.append(
            Finding(
                Severity.WARNING,
                g.origin,
                "alwaysauthreject=no: unknown user names get a different answer, so scanners "
                "can list the valid ones",
            )
        )
    return out


def _pattern_findings(sip: SipConfig, dp: Dialplan) -> list[Finding]:
    known = _known_values(dp)
    out: list[Finding] = []
    for _, ext, prio in _priorities(dp):
        for app, args in _calls(prio.app, prio.args):
            if app != "dial":
                continue
            target = _first_arg(args)
            shown = f"Dial({target})"
            targets = dial_targets(sip, args, known)
            if all(t.kind is TrunkKind.OTHER for t in targets):
                continue  # Local/ goes back to the dial plan, whose patterns decide
            if _EXTEN.search(target) and ext.is_pattern:
                out.extend(_exten_finding(ext, prio, shown, targets))
            elif _CALLER_TEXT.search(_EXTEN.sub("", target)):
                out.append(
                    Finding(
                        Severity.WARNING,
                        prio.origin,
                        f"{shown} puts caller-supplied text into the dial string",
                    )
                )
    return out


def _exten_finding(
    ext: Extension, prio: Priority, shown: str, targets: list[DialTarget]
) -> list[Finding]:
    trunks = sorted({t.peer for t in targets if t.kind is TrunkKind.TRUNK})
    to = f" (trunk {', '.join(repr(t) for t in trunks)})" if trunks else ""
    tokens = ext.pattern.tokens
    if any(tok in (Wildcard.DOT, Wildcard.BANG) for tok in tokens):
        message = (
            f"catch-all pattern '{ext.name}' feeds ${{EXTEN}} into {shown}{to}: any number "
            "(and any characters) the caller dials goes out; injection and toll-fraud risk, "
            "restrict it to the numbers you mean (e.g. _1NXXNXXXXXX)"
        )
        return [Finding(Severity.WARNING, prio.origin, message)]
    extra: set[str] = set()
    for tok in tokens:
        if isinstance(tok, frozenset):
            extra |= tok - _DIAL_DIGITS
    if not extra:
        return []
    chars = "".join(sorted(extra))
    message = f"pattern '{ext.name}' lets characters other than 0-9*#+ ({chars!r}) into {shown}{to}"
    return [Finding(Severity.WARNING, prio.origin, message)]


def _fraud_findings(
    sip: SipConfig, dp: Dialplan, entries: list[UnauthenticatedEntry]
) -> list[Finding]:
    known = _known_values(dp)
    ways: dict[str, list[UnauthenticatedEntry]] = {}
    for entry in entries:
        if entry.context in dp.contexts:
            ways.setdefault(entry.context, []).append(entry)
    out: list[Finding] = []
    for ctx_name, doors in ways.items():
        ctx = dp.contexts[ctx_name]
        why = "; ".join(f"{d.reason}{f', {d.origin}' if d.origin else ''}" for d in doors)
        head = f"context '{ctx_name}' takes calls without authentication ({why})"
        walk = _Walk(dp)
        for reach in walk.run(ctx_name).values():
            for prio in reach.extension.priorities.values():
                for app, args in _calls(prio.app, prio.args):
                    if app == "dial":
                        out.extend(_dial_finding(sip, head, reach, prio, args, known, ctx.origin))
        for prio, target in walk.unresolved:
            msg = (
                f"{head}; cannot follow {prio.app}({prio.args}) at {prio.origin}: "
                f"context {target!r} is not written literally"
            )
            out.append(Finding(Severity.WARNING, ctx.origin, msg))
    return out


def _dial_finding(
    sip: SipConfig,
    head: str,
    reach: Reach,
    prio: Priority,
    args: str,
    known: dict[str, tuple[str, ...]],
    origin: Origin,
) -> list[Finding]:
    where = (
        f"Dial({_first_arg(args)}) at {prio.origin} (exten '{reach.extension.name}', {reach.via})"
    )
    targets = dial_targets(sip, args, known)
    caller = [t for t in targets if t.kind is TrunkKind.CALLER_CHOSEN]
    open_trunks = [t for t in targets if t.kind is TrunkKind.TRUNK and not t.number_fixed]
    fixed = [t for t in targets if t.kind is TrunkKind.TRUNK and t.number_fixed]
    unknown = [t for t in targets if t.kind is TrunkKind.UNKNOWN]
    if caller:
        msg = f"{head} and lets the caller choose the SIP peer: {where}"
        return [Finding(Severity.ERROR, origin, msg)]
    if open_trunks:
        t = open_trunks[0]
        msg = (
            f"{head} and can dial trunk '{t.peer}' ({t.why}) with a number it does not fix: "
            f"toll-fraud hole: {where}"
        )
        return [Finding(Severity.ERROR, origin, msg)]
    if fixed:
        t = fixed[0]
        msg = f"{head} and dials trunk '{t.peer}' ({t.why}) to {t.number!r}: {where}"
        return [Finding(Severity.WARNING, origin, msg)]
    if unknown:
        msg = f"{head}; cannot tell whether {unknown[0].peer!r} is a trunk: {where}"
        return [Finding(Severity.WARNING, origin, msg)]
    return []


def analyse(sip: SipConfig, dp: Dialplan) -> list[Finding]:
    """Every finding for this pair of files, ordered by file and line (module docstring)."""
    entries = unauthenticated_entries(sip)
    findings = _general_findings(sip) + _fraud_findings(sip, dp, entries)
    findings += _pattern_findings(sip, dp)
    unique = list(dict.fromkeys(findings))

    def key(f: Finding) -> tuple[str, int, int, str]:
        o = f.origin
        rank = 0 if f.severity is Severity.ERROR else 1
        return ("" if o is None else o.file, 0 if o is None else o.line, rank, f.message)

    return sorted(unique, key=key)
