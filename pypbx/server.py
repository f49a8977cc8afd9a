"""The composition root: configuration → objects → services; reload; signals; shutdown.

:class:`Pbx` owns the loaded :class:`~pypbx.check.ConfigSet`, the run-time directories of
``pypbx.conf``, the control socket and a list of :class:`Service` objects (the SIP stack, the
RTP relay ...). Each service starts with the PBX, stops on SIGTERM/SIGINT or ``core stop``
(hang up calls, unregister, release ports) and is told about reloads. A reload builds the new
configuration aside and swaps it whole; a configuration with an error keeps the old one and
reports ``file:line: message``. Several PBXs with different configuration directories run side
by side: everything they share on a machine lives in their own run directory.

Garbage collection: once every service has started, what start-up built (modules, the
configuration, the dial plan) is moved out of the collector's sight (``gc.freeze``) and the
young generation is collected every :data:`GC_THRESHOLDS` allocations instead of 700, so a
registration burst does not pay for scanning long-lived objects again and again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pypbx import __version__
from pypbx.check import ConfigSet, load_config_dir, load_one
from pypbx.config.conf import ConfigError
from pypbx.config.pypbxconf import PbxConfig, default_directories, load_pypbx_conf
from pypbx.config.rtpconf import RtpConfig
from pypbx.config.sipconf import SipConfig
from pypbx.dialplan.astdb import AstDb
from pypbx.dialplan.interpreter import GlobalVars
from pypbx.dialplan.model import Dialplan
from pypbx.errors import PbxError
from pypbx.log import FanoutHandler, VerbosityFilter, verbose

if TYPE_CHECKING:
    from pypbx.control.cdr import CdrStore
    from pypbx.control.sip import SipRuntime

__all__ = [
    "SERVICE_FACTORIES",
    "AlreadyRunning",
    "Directories",
    "Pbx",
    "ReloadResult",
    "Service",
    "Shutdown",
    "directories_for",
    "register_service",
    "serve",
    "stricter",
]

log = logging.getLogger("pypbx.server")

GC_THRESHOLDS = (10_000, 20, 20)
"""``gc.set_threshold`` once started (Python's default is 700, 10, 10)."""

STOP_TIMEOUT = 4.0
"""Seconds all services together get to stop before the PBX exits anyway (SIGTERM → exit
within 5 s)."""


class Shutdown(StrEnum):
    """How the PBX was asked to stop (Asterisk's ``core stop now|gracefully|when convenient``).

    A stricter request replaces a milder one (NOW > GRACEFULLY > WHEN_CONVENIENT), never the
    other way round: SIGTERM during a graceful wait hangs up at once.
    """

    WHEN_CONVENIENT = "when convenient"
    """Keep accepting calls; stop as soon as no channel is left."""
    GRACEFULLY = "gracefully"
    """Refuse new calls (503); stop once the live ones have ended."""
    NOW = "now"
    """Hang up every call (BYE), unregister, stop."""


_STRICTNESS = {Shutdown.WHEN_CONVENIENT: 0, Shutdown.GRACEFULLY: 1, Shutdown.NOW: 2}


def stricter(current: Shutdown | None, mode: Shutdown) -> Shutdown:
    """The shutdown that applies when ``mode`` is asked for while ``current`` is pending."""
    if current is None or _STRICTNESS[mode] > _STRICTNESS[current]:
        return mode
    return current


IDLE_POLL = 0.05
"""Seconds between looks at the channel list while a graceful shutdown waits."""


class AlreadyRunning(PbxError):
    """Another pypbx answers on this run directory's control socket."""


class Service(Protocol):
    """A long-lived part of the PBX (SIP transport, registrations, RTP relay ...)."""

    name: str

    async def start(self, pbx: Pbx) -> None:
        """Open sockets, start timers. Raise to refuse the start-up."""

    async def stop(self) -> None:
        """Hang up, unregister, release ports."""

    def describe(self) -> list[str]:
        """Lines for the start-up banner, e.g. ``SIP listening on udp 127.0.0.1:5060``."""
        ...

    async def reload(self, config: ConfigSet) -> list[str]:
        """Adopt a new configuration (unchanged parts are the same objects); report lines."""
        ...


ServiceFactory = Callable[["Pbx"], "Service | None"]
SERVICE_FACTORIES: list[ServiceFactory] = []
"""Factories called at start-up, in order, to build the PBX's services (None = not wanted)."""


def _load_builtin_services() -> None:
    """Import the built-in services so their factories register (SIP first, then calls)."""
    import importlib

    for name in ("pypbx.sipservice", "pypbx.call.manager"):  # order matters: calls attach to SIP
        importlib.import_module(name)


def register_service(factory: ServiceFactory) -> ServiceFactory:
    """Decorator for a service factory: ``@register_service def sip(pbx): return SipService()``."""
    SERVICE_FACTORIES.append(factory)
    return factory


@dataclass(frozen=True, slots=True)
class Directories:
    """Where a PBX keeps its run-time files (``[directories]`` of pypbx.conf)."""

    rundir: Path
    datadir: Path
    logdir: Path
    sounddir: Path
    control_socket: Path
    pid_file: Path


def directories_for(config_dir: Path, settings: PbxConfig | None) -> Directories:
    """The run-time directories and files of a configuration (pypbx.conf or its defaults)."""
    if settings is None:
        settings = PbxConfig(config_dir.resolve(), default_directories(config_dir))
    d = settings.directories
    return Directories(
        d.rundir, d.datadir, d.logdir, d.sounddir, settings.control_path, settings.pid_path
    )


def control_socket_for(config_dir: str | Path) -> Path:
    """The control socket of the PBX configured in ``config_dir`` (reads only pypbx.conf)."""
    root = Path(config_dir)
    try:
        settings: PbxConfig | None = load_pypbx_conf(root)
    except ConfigError:
        settings = None
    return directories_for(root, settings).control_socket


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """The outcome of a reload: ``ok`` is False when the old configuration was kept."""

    ok: bool
    lines: tuple[str, ...]


def _plain(value: Any) -> Any:
    """A comparable form of a config value with its ``origin`` (file:line) fields dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(
            (f.name, _plain(getattr(value, f.name)))
            for f in dataclasses.fields(value)
            if f.name not in ("origin", "origins")
        )
    if isinstance(value, dict):
        return tuple((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(_plain(v) for v in value)
    return value


def sip_changes(old: Any, new: Any) -> list[str]:
    """What a sip.conf reload changes: peers and registrations added, removed, changed."""
    old_peers: dict[str, Any] = dict(getattr(old, "peers", None) or {})
    new_peers: dict[str, Any] = dict(getattr(new, "peers", None) or {})
    lines = [f"Peer added: {n}" for n in new_peers if n not in old_peers]
    lines += [f"Peer removed: {n}" for n in old_peers if n not in new_peers]
    lines += [
        f"Peer changed: {n}"
        for n in new_peers
        if n in old_peers and _plain(new_peers[n]) != _plain(old_peers[n])
    ]
    old_regs = [_plain(r) for r in getattr(old, "registrations", None) or ()]
    new_regs = [_plain(r) for r in getattr(new, "registrations", None) or ()]
    regs_new = list(getattr(new, "registrations", None) or ())
    regs_old = list(getattr(old, "registrations", None) or ())
    lines += [
        f"Registration added: {_reg_name(r)}"
        for r, p in zip(regs_new, new_regs, strict=True)
        if p not in old_regs
    ]
    lines += [
        f"Registration removed: {_reg_name(r)}"
        for r, p in zip(regs_old, old_regs, strict=True)
        if p not in new_regs
    ]
    if old is not None and _plain(getattr(old, "general", None)) != _plain(
        getattr(new, "general", None)
    ):
        lines.append("General settings changed")
    return lines


def _reg_name(reg: Any) -> str:
    user = getattr(reg, "username", None) or getattr(reg, "user", None) or "?"
    host = getattr(reg, "host", None) or getattr(reg, "hostname", None) or "?"
    return f"{user}@{host}"


class Pbx:
    """One running PBX: configuration, directories, services, control socket, lifecycle."""

    def __init__(
        self,
        config: ConfigSet,
        *,
        clock: Callable[[], float] = time.time,
        log_filter: VerbosityFilter | None = None,
        fanout: FanoutHandler | None = None,
    ) -> None:
        self.config = config
        self.dirs = directories_for(config.config_dir, config.settings)
        self.clock = clock
        self.started_at = clock()
        self.reloaded_at = self.started_at
        self.log_filter = log_filter or VerbosityFilter(0)
        self.fanout = fanout or FanoutHandler()
        self.services: list[Service] = []
        self.stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self.channels: list[Any] = []
        """Live channels (the call layer fills it); read by ``core show channels``."""
        self.calls_processed = 0
        self.active_calls = 0
        self.cdr_store: CdrStore | None = None
        """The CDR backend ``cdr show last`` reads (set by the call layer)."""
        self.sip_runtime: SipRuntime | None = None
        """Run-time SIP state (peer addresses, qualify, registration states), set by the SIP
        service; ``sip show peers`` falls back to the loaded sip.conf when it is None."""
        self.accepting_calls = True
        self.call_handler: Any = None
        """Set by the call layer: the SIP service hands it INVITEs (see pypbx.sipservice)."""
        self.listening: list[str] = []
        self._stop_event: asyncio.Event | None = None
        self.shutdown: Shutdown | None = None
        """The pending shutdown (None while running normally)."""
        self.stopping = False
        """True once the services are being stopped: too late to abort the shutdown."""
        self._reload_lock = asyncio.Lock()
        self._astdb: AstDb | None = None
        self.globals = GlobalVars()
        """The dial plan's shared ``[globals]`` (``GLOBAL()``), kept across reloads unless
        ``clearglobalvars=yes``."""
        if config.dialplan is not None:
            self.globals.load(config.dialplan, warn=log.warning)

    @property
    def astdb(self) -> AstDb:
        """The astdb in the data directory (opened on first use, closed at stop)."""
        if self._astdb is None:
            self._astdb = AstDb.in_data_dir(self.dirs.datadir)
        return self._astdb

    # -- configuration -------------------------------------------------------------------

    @property
    def sip(self) -> SipConfig | None:
        return self.config.sip

    @property
    def dialplan(self) -> Dialplan | None:
        return self.config.dialplan

    @property
    def rtp(self) -> RtpConfig | None:
        return self.config.rtp

    @property
    def settings(self) -> PbxConfig | None:
        return self.config.settings

    @property
    def verbosity(self) -> int:
        return self.log_filter.level

    async def _reload(
        self, names: tuple[str, ...], describe: Callable[[ConfigSet], list[str]]
    ) -> ReloadResult:
        async with self._reload_lock:
            new = self.config
            notes: list[str] = []
            for name in names:
                try:
                    if not (self.config.config_dir / name).exists():  # as chan_sip: keep the old
                        raise ConfigError(f"{self.config.config_dir / name}: file not found")
                    value, warnings = load_one(self.config.config_dir, name)
                except ConfigError as exc:
                    log.warning("reload of %s refused: %s", name, exc)
                    return ReloadResult(
                        False,
                        (str(exc), f"{name} not reloaded: keeping the running configuration."),
                    )
                for w in warnings:
                    log.warning("%s", w)
                notes += [f"WARNING: {w}" for w in warnings]  # lines skipped, as Asterisk does
                new = new.with_part(name, value, warnings)
            lines = [*notes, *describe(new)]
            old, self.config = self.config, new
            if new.dialplan is not None and new.dialplan is not old.dialplan:
                self.globals.load(new.dialplan, warn=log.warning)
            for svc in self.services:
                try:
                    lines += await svc.reload(new)
                except PbxError as exc:
                    self.config = old
                    return ReloadResult(
                        False,
                        (f"{svc.name}: {exc}", "Reload failed: keeping the running configuration."),
                    )
            self.reloaded_at = self.clock()
            verbose(log, 1, "Reloaded %s", ", ".join(names))
            return ReloadResult(True, tuple(lines))

    async def reload_sip(self) -> ReloadResult:
        """``sip reload``: re-read sip.conf aside, swap, report what changed."""
        old = self.config.sip

        def report(new: ConfigSet) -> list[str]:
            changes = sip_changes(old, new.sip)
            return [
                *changes,
                f"SIP reloaded: {len(changes) or 'no'} change{'' if len(changes) == 1 else 's'}.",
            ]

        return await self._reload(("sip.conf",), report)

    async def reload_rtp(self) -> ReloadResult:
        """``module reload res_rtp_asterisk.so``: re-read rtp.conf aside and swap it."""
        return await self._reload(("rtp.conf",), lambda _new: ["RTP configuration reloaded."])

    async def reload_dialplan(self) -> ReloadResult:
        """``dialplan reload``: re-read extensions.conf aside and swap it."""
        return await self._reload(("extensions.conf",), lambda _new: ["Dialplan reloaded."])

    # -- lifecycle -------------------------------------------------------------------------

    def request_stop(self, *, graceful: bool = False) -> None:
        """Ask :meth:`run` to stop (``graceful`` waits for live calls to end first)."""
        self.request_shutdown(Shutdown.GRACEFULLY if graceful else Shutdown.NOW)

    def request_shutdown(self, mode: Shutdown) -> Shutdown:
        """Ask :meth:`run` to stop in ``mode`` (or the stricter pending one); the mode now."""
        self.shutdown = stricter(self.shutdown, mode)
        self.accepting_calls = self.shutdown is Shutdown.WHEN_CONVENIENT
        if self._stop_event is not None:
            self._stop_event.set()
        return self.shutdown

    def abort_shutdown(self) -> bool:
        """``core abort shutdown``: cancel a waiting shutdown; False when none can be."""
        if self.shutdown is None or self.shutdown is Shutdown.NOW or self.stopping:
            return False
        self.shutdown = None
        self.accepting_calls = True
        if self._stop_event is not None:
            self._stop_event.clear()
        verbose(log, 0, "Shutdown aborted")
        return True

    def _prepare_dirs(self) -> None:
        for d in (self.dirs.rundir, self.dirs.datadir, self.dirs.logdir):
            d.mkdir(parents=True, exist_ok=True)

    async def _until_idle(self) -> bool:
        """Wait, as the pending shutdown asks, until no channel is left: True to stop now,
        False when the shutdown was aborted."""
        announced = False
        while True:
            mode = self.shutdown
            if mode is None:
                return False
            if mode is Shutdown.NOW or not self.channels:
                return True
            if not announced:
                verbose(log, 1, "Waiting for %d channels to hang up", len(self.channels))
                announced = True
            await asyncio.sleep(IDLE_POLL)

    async def run(self) -> int:
        """Start, serve until asked to stop, stop everything; the process exit code."""
        from pypbx.control.server import ControlServer

        self._stop_event = asyncio.Event()
        if self.shutdown is not None:  # asked before run() started
            self._stop_event.set()
        self._prepare_dirs()
        control = ControlServer(self, self.dirs.control_socket)
        await control.start()  # raises AlreadyRunning before we touch the pid file
        self.dirs.pid_file.write_text(f"{os.getpid()}\n")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        started: list[Service] = []
        try:
            self.listening = [f"Control socket {self.dirs.control_socket} (mode 0660)"]
            _load_builtin_services()
            for factory in SERVICE_FACTORIES:
                svc = factory(self)
                if svc is not None:
                    self.services.append(svc)
            for svc in self.services:
                await svc.start(self)
                started.append(svc)
                self.listening += svc.describe()
            tune_gc()
            for line in self.listening:
                verbose(log, 0, "Listening: %s", line)
            verbose(
                log, 0, "pypbx %s ready (configuration %s)", __version__, self.config.config_dir
            )
            while True:
                await self._stop_event.wait()
                if await self._until_idle():
                    break
            verbose(log, 0, "pypbx stopping")
        finally:
            self.stopping = True
            self.accepting_calls = False
            deadline = loop.time() + STOP_TIMEOUT
            stoppers: list[tuple[str, Callable[[], Awaitable[None]]]]
            stoppers = [(svc.name, svc.stop) for svc in reversed(started)]
            stoppers += [("stop hook", hook) for hook in reversed(self.stop_hooks)]
            for name, stop in stoppers:
                try:
                    await asyncio.wait_for(stop(), max(0.1, deadline - loop.time()))
                except (TimeoutError, PbxError, OSError) as exc:
                    log.warning("%s did not stop cleanly: %r", name, exc)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await control.close()
            if self._astdb is not None:
                self._astdb.close()
            self.dirs.pid_file.unlink(missing_ok=True)
        verbose(log, 0, "pypbx stopped")
        return 0


def tune_gc() -> None:
    """Freeze what start-up allocated and set :data:`GC_THRESHOLDS` (see the docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _new_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve(config_dir: str, *, extra_verbosity: int = 0, json_logs: bool = False) -> int:
    """``pypbx run``: load the configuration, set up logging, run until stopped."""
    from pypbx.log import setup

    try:
        config = load_config_dir(config_dir)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        print(f"pypbx: {config_dir}: configuration has an error, not starting", file=sys.stderr)
        return 1
    level = (config.settings.verbose if config.settings is not None else 0) + extra_verbosity
    dirs = directories_for(config.config_dir, config.settings)
    fanout = FanoutHandler()
    try:
        flt = setup(verbosity=level, json_logs=json_logs, logdir=dirs.logdir, fanout=fanout)
    except OSError as exc:
        print(f"pypbx: {dirs.logdir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for w in config.warnings:
        log.warning("%s", w)
    pbx = Pbx(config, log_filter=flt, fanout=fanout)
    try:
        with asyncio.Runner(loop_factory=_new_loop_factory()) as runner:
            return runner.run(pbx.run())
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 1
    except (PbxError, OSError) as exc:  # a service refused to start (port taken ...)
        log.error("cannot start: %s", exc)
        return 1
