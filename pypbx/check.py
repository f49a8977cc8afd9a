"""``pypbx check -C DIR``: load every configuration file, summarise, list warnings.

Also the one place that loads a whole configuration directory into a :class:`ConfigSet`
(sip.conf, extensions.conf, rtp.conf, pypbx.conf), used by the daemon at start-up and on
reload, so ``check`` and ``run`` can never disagree. Each file may be absent (a warning), but
not all of them. An error is a :class:`~pypbx.config.conf.ConfigError` whose text is
``file:line: message``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from pypbx.config.conf import ConfigError
from pypbx.config.pypbxconf import PbxConfig, load_pypbx_conf
from pypbx.config.rtpconf import RtpConfig, load_rtp_conf
from pypbx.config.sipconf import SipConfig, load_sip_conf
from pypbx.dialplan.model import Dialplan
from pypbx.dialplan.parser import load_dialplan
from pypbx.security.tollfraud import Finding, Severity, analyse

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

    A part is None when its file is absent (pypbx.conf: defaults are used instead).
    """

    config_dir: Path
    sip: SipConfig | None = None
    dialplan: Dialplan | None = None
    rtp: RtpConfig | None = None
    settings: PbxConfig | None = None
    part_warnings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Warning lines (``file:line: message``) per file name of :data:`FILES`."""
    missing: tuple[str, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return [w for name in FILES for w in self.part_warnings.get(name, ())]

    def with_part(self, name: str, value: Any, warnings: list[str]) -> ConfigSet:
        """A copy with one part replaced (the others are the same objects)."""
        notes = {**self.part_warnings, name: tuple(warnings)}
        return replace(self, **{_ATTR[name]: value}, part_warnings=notes)


_ATTR = {
    "sip.conf": "sip",
    "extensions.conf": "dialplan",
    "rtp.conf": "rtp",
    "pypbx.conf": "settings",
}


_LOADERS: dict[str, Callable[[Path], Any]] = {
    "sip.conf": load_sip_conf,
    "extensions.conf": load_dialplan,
    "rtp.conf": load_rtp_conf,
    "pypbx.conf": lambda path: load_pypbx_conf(path.parent),
}


def _warnings_of(obj: Any) -> list[str]:
    out = [str(w) for w in getattr(obj, "warnings", None) or ()]
    if isinstance(obj, Dialplan):
        out += unknown_applications(obj)
    return out


def unknown_applications(dp: Dialplan) -> list[str]:
    """``file:line`` warnings for priorities whose application pypbx does not have.

    Asterisk only finds out when a call reaches the priority ("No application 'X' for
    extension ...") and hangs up; ``pypbx check`` says so beforehand.
    """
    from pypbx.dialplan.interpreter import load_builtins

    registry = load_builtins()
    out: list[str] = []
    for ctx in dp.contexts.values():
        for ext in ctx.extensions:
            for number, prio in sorted(ext.priorities.items()):
                if prio.app and registry.app(prio.app) is None:
                    out.append(
                        f"{prio.origin}: no application '{prio.app}' in pypbx for extension"
                        f" ({ctx.name}, {ext.name}, {number}): a call would hang up there"
                    )
    return out


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
    notes: dict[str, tuple[str, ...]] = {}
    for name in FILES:
        value, warns = load_one(root, name)
        parts[_ATTR[name]] = value
        notes[name] = tuple(warns)
    missing = tuple(n for n in FILES if n not in present)
    return ConfigSet(root, part_warnings=notes, missing=missing, **parts)


def summary_lines(cfg: ConfigSet) -> list[str]:
    """A short human summary: peers, registrations, contexts, extensions, ports, directories."""
    out: list[str] = []
    if cfg.sip is not None:
        peers, regs = len(cfg.sip.peers), len(cfg.sip.registrations)
        out.append(f"sip.conf: {peers} peers, {regs} registrations")
    if cfg.dialplan is not None:
        contexts = list(cfg.dialplan.contexts.values())
        exts = sum(len(c.extensions) for c in contexts)
        out.append(f"extensions.conf: {len(contexts)} contexts, {exts} extensions")
    if cfg.rtp is not None:
        out.append(f"rtp.conf: RTP ports {cfg.rtp.rtpstart}-{cfg.rtp.rtpend}")
    if cfg.settings is not None:
        d = cfg.settings.directories
        out.append(
            f"pypbx.conf: rundir {d.rundir}, datadir {d.datadir}, logdir {d.logdir},"
            f" sounddir {d.sounddir}"
        )
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
    findings = security_findings(cfg)
    for f in findings:
        print(f"{f} [security {f.severity.value.lower()}]", file=out)
    for line in summary_lines(cfg):
        print(line, file=out)
    if findings:
        holes = sum(1 for f in findings if f.severity is Severity.ERROR)
        print(
            f"{len(findings)} security findings ({holes} toll-fraud risks): read them before "
            "exposing this PBX to the internet",
            file=out,
        )
    print(f"pypbx check: {config_dir}: configuration OK", file=out)
    return 0


def security_findings(cfg: ConfigSet) -> list[Finding]:
    """Toll-fraud and injection findings (pypbx.security.tollfraud) for a loaded configuration."""
    if cfg.sip is None or cfg.dialplan is None:
        return []
    return analyse(cfg.sip, cfg.dialplan)
