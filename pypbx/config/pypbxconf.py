"""pypbx.conf: pypbx's own settings, in the Asterisk .conf dialect (cf. Asterisk asterisk.conf).

Sections:

* ``[directories]`` ``rundir`` (control socket, pid file), ``datadir`` (SQLite stores),
  ``logdir``, ``sounddir``. A relative path is relative to the config dir. Defaults: for the
  system config dir ``/etc/pypbx`` the FHS places (``/run/pypbx``, ``/var/lib/pypbx``,
  ``/var/log/pypbx``, ``/usr/share/pypbx/sounds``); for any other config dir ``run/``,
  ``data/``, ``log/`` and ``sounds/`` inside it, so instances with different config dirs never
  share a socket or a database and can run side by side.
* ``[general]`` ``verbose`` and ``debug`` levels, ``controlsocket`` (file name in rundir).
* ``[security]`` ``ban_failures``, ``ban_window``, ``ban_time`` (seconds) and ``allow``
  networks that are never banned (several lines).

A missing file or key gives the default; unknown keys and sections and bad values are
:class:`ConfWarning` entries with ``file:line``, never errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pypbx.config.conf import ConfFile, ConfWarning, Entry, ReadFile, load
from pypbx.config.netaddr import Network, parse_network
from pypbx.config.sipconf import ast_false, ast_true

__all__ = [
    "FILENAME",
    "SYSTEM_CONFIG_DIR",
    "Directories",
    "PbxConfig",
    "Security",
    "default_directories",
    "load_pypbx_conf",
    "parse_pypbx_conf",
]

FILENAME = "pypbx.conf"
SYSTEM_CONFIG_DIR = Path("/etc/pypbx")
_SYSTEM_DIRS = {
    "rundir": Path("/run/pypbx"),
    "datadir": Path("/var/lib/pypbx"),
    "logdir": Path("/var/log/pypbx"),
    "sounddir": Path("/usr/share/pypbx/sounds"),
}
_LOCAL_DIRS = {"rundir": "run", "datadir": "data", "logdir": "log", "sounddir": "sounds"}


@dataclass(frozen=True, slots=True)
class Directories:
    rundir: Path
    datadir: Path
    logdir: Path
    sounddir: Path


@dataclass(frozen=True, slots=True)
class Security:
    """Placeholders for the ban logic: failures within a window lead to a ban of ban_time."""

    ban_failures: int = 5
    ban_window: int = 600
    ban_time: int = 3600
    allow: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class PbxConfig:
    config_dir: Path
    directories: Directories
    verbose: int = 0
    debug: int = 0
    controlsocket: str = "pypbx.ctl"
    security: Security = field(default_factory=Security)
    warnings: tuple[ConfWarning, ...] = ()

    @property
    def control_path(self) -> Path:
        """The control socket: ``controlsocket`` inside rundir."""
        return self.directories.rundir / self.controlsocket

    @property
    def pid_path(self) -> Path:
        return self.directories.rundir / "pypbx.pid"


def _absolute(config_dir: str | os.PathLike[str]) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.fspath(config_dir))))


def default_directories(config_dir: str | os.PathLike[str]) -> Directories:
    """The directories used when pypbx.conf does not name them."""
    cdir = _absolute(config_dir)
    if cdir == SYSTEM_CONFIG_DIR:
        return Directories(**_SYSTEM_DIRS)
    return Directories(**{key: cdir / sub for key, sub in _LOCAL_DIRS.items()})


def _warn(warnings: list[ConfWarning], entry: Entry, message: str, kind: str = "bad-value") -> None:
    warnings.append(ConfWarning(entry.origin, message, kind))


def _number(entry: Entry, warnings: list[ConfWarning], *, minimum: int) -> int | None:
    try:
        number = int(entry.value.strip())
    except ValueError:
        number = None
    if number is None or number < minimum:
        _warn(warnings, entry, f"invalid {entry.key} value {entry.value!r}; using default")
        return None
    return number


def _level(entry: Entry, warnings: list[ConfWarning]) -> int | None:
    """verbose/debug: a number, or yes (1) / no (0)."""
    if ast_true(entry.value):
        return 1
    if ast_false(entry.value):
        return 0
    return _number(entry, warnings, minimum=0)


def parse_pypbx_conf(conf: ConfFile, config_dir: str | os.PathLike[str]) -> PbxConfig:
    """Give meaning to a parsed pypbx.conf belonging to ``config_dir``."""
    cdir = _absolute(config_dir)
    warnings = list(conf.warnings)
    dirs = {k: getattr(default_directories(cdir), k) for k in _LOCAL_DIRS}
    general: dict[str, int | str] = {}
    security: dict[str, int] = {}
    allow: list[Network] = []
    for section in conf.categories():
        name = section.name.lower()
        if name not in ("directories", "general", "security"):
            msg = f"unknown section [{section.name}] ignored"
            warnings.append(ConfWarning(section.origin, msg, "ignored-section"))
            continue
        for entry in section.entries:
            key = entry.key.lower()
            if name == "directories" and key in _LOCAL_DIRS:
                if entry.value.strip():
                    dirs[key] = cdir / entry.value.strip()  # an absolute value replaces cdir
                else:
                    _warn(warnings, entry, f"empty {entry.key}; using default")
            elif name == "general" and key in ("verbose", "debug"):
                level = _level(entry, warnings)
                if level is not None:
                    general[key] = level
            elif name == "general" and key == "controlsocket":
                general[key] = entry.value.strip() or "pypbx.ctl"
            elif name == "security" and key in ("ban_failures", "ban_window", "ban_time"):
                number = _number(entry, warnings, minimum=1)
                if number is not None:
                    security[key] = number
            elif name == "security" and key == "allow":
                try:
                    allow.append(parse_network(entry.value))
                except ValueError as exc:
                    _warn(warnings, entry, f"invalid network {entry.value!r}: {exc}")
            else:
                msg = f"[{section.name}] unknown option {entry.key!r} ignored"
                _warn(warnings, entry, msg, "unknown-option")
    return PbxConfig(
        config_dir=cdir,
        directories=Directories(**dirs),
        verbose=int(general.get("verbose", 0)),
        debug=int(general.get("debug", 0)),
        controlsocket=str(general.get("controlsocket", "pypbx.ctl")),
        security=Security(**security, allow=tuple(allow)),
        warnings=tuple(warnings),
    )


def load_pypbx_conf(
    config_dir: str | os.PathLike[str], *, read_file: ReadFile | None = None
) -> PbxConfig:
    """Read ``config_dir/pypbx.conf``; when it does not exist, every setting is the default."""
    path = os.path.join(os.fspath(config_dir), FILENAME)
    if read_file is None and not os.path.exists(path):
        return PbxConfig(
            config_dir=_absolute(config_dir), directories=default_directories(config_dir)
        )
    return parse_pypbx_conf(load(path, read_file=read_file), config_dir)
