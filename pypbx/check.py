"""``pypbx check -C DIR``: load every configuration file, summarise, list warnings.

Also the one place that loads a whole configuration directory into a :class:`ConfigSet`
(sip.conf, extensions.conf, rtp.conf, pypbx.conf), used by the daemon at start-up and on
reload, so ``check`` and ``run`` can never disagree. Each file may be absent (a warning), but
not all of them. An error is a :class:`~pypbx.config.conf.ConfigError` whose text is
``file:line: message``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from pypbx.config.conf import ConfigError

__all__ = [
    "FILES",
    "ConfigSet",
    "check_main",
    "load_config_dir",
    "load_one",
    "summary_lines",
]

FILES = ("sip.conf", "extensions.conf", "rtp.conf", "pypbx.conf")


@dataclass(frozen=True, slots=True)
class ConfigSet:
    """Everything read from one configuration directory; swapped as a whole on reload.

    ``sip`` is a ``SipConfig``, ``dialplan`` a ``Dialplan``, ``rtp`` an ``RtpConfig`` and
    ``settings`` a ``PbxConfig`` (None when the file is absent or its loader is not built).
    """

    config_dir: Path
    sip: Any = None
    dialplan: Any = None
    rtp: Any = None
    settings: Any = None
    warnings: tuple[str, ...] = ()
    missing: tuple[str, ...] = field(default=())

    def with_part(self, name: str, value: Any, warnings: list[str]) -> ConfigSet:
        """A copy with one part replaced (the others are the same objects)."""
        kept = tuple(w for w in self.warnings if not _warning_is_for(w, name))
        return replace(self, **{_ATTR[name]: value}, warnings=kept + tuple(warnings))


_ATTR = {
    "sip.conf": "sip",
    "extensions.conf": "dialplan",
    "rtp.conf": "rtp",
    "pypbx.conf": "settings",
}


def _warning_is_for(text: str, name: str) -> bool:
    head = text.split(":", 1)[0]
    return Path(head).name == name


def _loader(module: str, names: tuple[str, ...]) -> Callable[..., Any] | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    for n in names:
        fn = getattr(mod, n, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def _load_sip(path: Path) -> Any:
    fn = _loader("pypbx.config.sipconf", ("load_sip_conf",))
    return None if fn is None else fn(str(path))


def _load_dialplan(path: Path) -> Any:
    fn = _loader("pypbx.dialplan.parser", ("load_dialplan",))
    return None if fn is None else fn(str(path))


def _load_rtp(path: Path) -> Any:
    fn = _loader("pypbx.config.rtpconf", ("load_rtp_conf", "load_rtpconf", "load"))
    return None if fn is None else fn(str(path))


def _load_settings(path: Path) -> Any:
    fn = _loader("pypbx.config.pypbxconf", ("load_pypbx_conf",))
    return None if fn is None else fn(path.parent)


_LOADERS: dict[str, Callable[[Path], Any]] = {
    "sip.conf": _load_sip,
    "extensions.conf": _load_dialplan,
    "rtp.conf": _load_rtp,
    "pypbx.conf": _load_settings,
}


def _warnings_of(obj: Any) -> list[str]:
    return [str(w) for w in getattr(obj, "warnings", None) or ()]


def load_one(config_dir: Path, name: str) -> tuple[Any, list[str]]:
    """Load one file of the directory: ``(value or None, warning lines)``.

    Raises :class:`ConfigError` (``file:line: message``) when the file is wrong.
    """
    path = config_dir / name
    notes: list[str] = []
    if not path.exists():
        if name != "pypbx.conf":
            return None, [f"{path}: file not found"]
        notes.append(f"{path}: file not found, using default directories")
    try:
        value = _LOADERS[name](path)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    if value is None and path.exists():
        return None, [f"{path}: not loaded (this pypbx has no loader for {name} yet)"]
    return value, notes + _warnings_of(value)


def load_config_dir(config_dir: str | Path) -> ConfigSet:
    """Load all of ``config_dir``; raises :class:`ConfigError` on the first error."""
    root = Path(config_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: configuration directory not found")
    present = [n for n in FILES if (root / n).exists()]
    if not present:
        raise ConfigError(f"{root}: no configuration found (none of {', '.join(FILES)})")
    parts: dict[str, Any] = {}
    warnings: list[str] = []
    for name in FILES:
        value, warns = load_one(root, name)
        parts[_ATTR[name]] = value
        warnings.extend(warns)
    missing = tuple(n for n in FILES if n not in present)
    return ConfigSet(root, warnings=tuple(warnings), missing=missing, **parts)


def _count(obj: Any, attr: str) -> int:
    value = getattr(obj, attr, None)
    return len(value) if value is not None else 0


def summary_lines(cfg: ConfigSet) -> list[str]:
    """A short human summary: peers, registrations, contexts, extensions, ports, directories."""
    out: list[str] = []
    if cfg.sip is not None:
        peers, regs = _count(cfg.sip, "peers"), _count(cfg.sip, "registrations")
        out.append(f"sip.conf: {peers} peers, {regs} registrations")
    if cfg.dialplan is not None:
        contexts = getattr(cfg.dialplan, "contexts", {}) or {}
        ctx_list = list(contexts.values()) if isinstance(contexts, dict) else list(contexts)
        exts = sum(_count(c, "extensions") for c in ctx_list)
        out.append(f"extensions.conf: {len(ctx_list)} contexts, {exts} extensions")
    if cfg.rtp is not None:
        start, end = getattr(cfg.rtp, "rtpstart", None), getattr(cfg.rtp, "rtpend", None)
        out.append(f"rtp.conf: RTP ports {start}-{end}")
    if cfg.settings is not None:
        dirs = [
            f"{k}={getattr(cfg.settings, k)}"
            for k in ("rundir", "datadir", "logdir", "sounddir")
            if getattr(cfg.settings, k, None) is not None
        ]
        out.append("pypbx.conf: " + (", ".join(dirs) if dirs else "loaded"))
    out.append(f"{len(cfg.warnings)} warnings")
    return out


def check_main(config_dir: str, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The ``pypbx check`` command: 0 when the configuration loads, 1 on an error."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        cfg = load_config_dir(config_dir)
    except ConfigError as exc:
        print(str(exc), file=err)
        print(f"pypbx check: {config_dir}: configuration has an error", file=err)
        return 1
    for w in cfg.warnings:
        print(w, file=out)
    for line in summary_lines(cfg):
        print(line, file=out)
    print(f"pypbx check: {config_dir}: configuration OK", file=out)
    return 0
