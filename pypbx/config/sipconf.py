"""sip.conf → typed configuration, read as Asterisk's chan_sip reads it.

Meaning stage on top of :mod:`pypbx.config.conf`: ``[general]`` becomes :class:`General`
(chan_sip ``reload_config`` defaults, with pypbx's own ``allowguest=no`` and ``useragent``),
every ``register =>`` line a :class:`Registration` (RFC 3261 §10.2, chan_sip
``sip_parse_register_line``), ``[authentication]`` ``auth =`` lines :class:`AuthCredential`
entries (RFC 2617 §3.2.2, matched by realm), and every other typed section a :class:`Peer`
(chan_sip ``build_peer``) whose defaults come from ``[general]``.

As in Asterisk, nothing here fails a load that the dialect stage accepted: unknown options, bad
values and bad register lines become :class:`ConfWarning` entries with ``file:line`` (a bad value
falls back to its default), and a section without a usable ``type`` is skipped with a warning.
Options are table-driven: one handler per name in ``_COMMON``, ``_GENERAL`` and ``_PEER``;
options Asterisk knows but pypbx does not model are in ``_KNOWN_*`` and accepted silently.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from typing import Any

from pypbx.config.conf import ConfFile, ConfWarning, Entry, ReadFile, Section, load
from pypbx.config.sipmodel import (
    AUDIO_CODECS,
    DEFAULT_CODECS,
    AmaFlags,
    AuthCredential,
    CallerId,
    DirectMedia,
    DtmfMode,
    General,
    Insecure,
    NatMode,
    Peer,
    PeerType,
    Registration,
    SipConfig,
    Transport,
    apply_codecs,
    ast_false,
    ast_true,
    parse_auth_line,
    parse_callerid,
    parse_nat,
    parse_register_line,
)
from pypbx.config.sipoptions import GENERAL, KNOWN_GENERAL, KNOWN_PEER, PEER, Handler, Scope, words

__all__ = [
    "AUDIO_CODECS",
    "DEFAULT_CODECS",
    "AmaFlags",
    "AuthCredential",
    "CallerId",
    "DirectMedia",
    "DtmfMode",
    "General",
    "Insecure",
    "NatMode",
    "Peer",
    "PeerType",
    "Registration",
    "SipConfig",
    "Transport",
    "apply_codecs",
    "ast_false",
    "ast_true",
    "load_sip_conf",
    "parse_auth_line",
    "parse_callerid",
    "parse_nat",
    "parse_register_line",
    "parse_sip_conf",
]


# --- sections → model ----------------------------------------------------------------------


def _apply(
    scope: Scope, entries: list[Entry], table: dict[str, Handler], known: frozenset[str]
) -> None:
    for entry in entries:
        key = entry.key.lower()
        handler = table.get(key)
        if handler is not None:
            handler(scope, entry)
        elif key not in known:
            scope.warn(entry, f"unknown option {entry.key!r} ignored", "unknown-option")


def _field_defaults(cls: type[General] | type[Peer]) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def _build_general(
    conf: ConfFile, warnings: list[ConfWarning]
) -> tuple[General, list[Registration]]:
    sections = [s for s in conf.categories() if s.name.lower() == "general"]
    base = General()
    scope = Scope("general", _field_defaults(General), warnings, base)
    scope.values = dict(scope.defaults)
    if sections:
        scope.values["origin"] = sections[0].origin
        _apply(scope, sections[0].entries, GENERAL, KNOWN_GENERAL)
        for extra in sections[1:]:
            warnings.append(
                ConfWarning(extra.origin, "second [general] section ignored", "ignored-section")
            )
    general = General(**scope.values)
    if sections and (general.externaddr or general.externhost) and not general.localnet:
        entry = next(
            e
            for e in reversed(sections[0].entries)
            if e.key.lower() in ("externip", "externaddr", "externhost")
        )
        warnings.append(
            ConfWarning(
                entry.origin,
                f"[general] {entry.key} is not used without localnet: set localnet to your "
                "LAN (e.g. localnet=192.168.0.0/255.255.255.0), as Asterisk requires",
                "nat",
            )
        )
    return general, scope.registrations


def _peer_defaults(general: General) -> dict[str, Any]:
    inherited = words(
        "context language nat directmedia insecure dtmfmode allow qualify qualifyfreq "
        "fromdomain rtptimeout rtpholdtimeout transports"
    )
    values = _field_defaults(Peer)
    values.update({name: getattr(general, name) for name in inherited})
    return values


def _build_auth(conf: ConfFile, warnings: list[ConfWarning]) -> list[AuthCredential]:
    creds: list[AuthCredential] = []
    sections = [s for s in conf.categories() if s.name.lower() == "authentication"]
    for section in sections[:1]:
        for entry in section.entries:
            if entry.key.lower() != "auth":
                warnings.append(
                    ConfWarning(
                        entry.origin,
                        f"[authentication] unknown option {entry.key!r} ignored",
                        "unknown-option",
                    )
                )
                continue
            try:
                creds.append(parse_auth_line(entry.value, entry.origin))
            except ValueError as exc:
                warnings.append(ConfWarning(entry.origin, f"[authentication] {exc}", "bad-value"))
    return creds


def _peer_type_ok(section: Section, warnings: list[ConfWarning]) -> bool:
    """chan_sip's check before build_peer: the first ``type`` line must be friend/peer/user."""
    types = section.all("type")
    if not types:
        msg = f"section [{section.name}] lacks type; skipped"
        warnings.append(ConfWarning(section.origin, msg, "no-type"))
        return False
    if types[0].value.strip().lower() not in set(PeerType):
        msg = f"unknown type {types[0].value!r} for [{section.name}]; section skipped"
        warnings.append(ConfWarning(types[0].origin, msg, "unknown-type"))
        return False
    return True


def parse_sip_conf(conf: ConfFile) -> SipConfig:
    """Give meaning to a parsed sip.conf (see the module docstring for the rules).

    A second section with exactly the same name is merged into the first, as chan_sip's
    ``build_peer`` does when it finds the peer already built: its options apply on top of the
    first's, except setvar, auth, mailbox and transport, which start again.
    """
    warnings = list(conf.warnings)
    general, registrations = _build_general(conf, warnings)
    auth = _build_auth(conf, warnings)
    defaults = _peer_defaults(general)
    scopes: dict[str, Scope] = {}
    for section in conf.categories():
        if section.name.lower() in ("general", "authentication"):
            continue
        if not _peer_type_ok(section, warnings):
            continue
        scope = scopes.get(section.name)
        if scope is None:
            scope = Scope(section.name, defaults, warnings, general)
            scope.values = {**defaults, "name": section.name, "type": None}
            scope.values["origin"] = section.origin
            scopes[section.name] = scope
        else:
            msg = f"peer [{section.name}] defined again; merged into the first definition"
            warnings.append(ConfWarning(section.origin, msg, "duplicate-peer"))
            for key in ("setvar", "auth", "mailbox", "transports"):
                scope.reset(key)
        _apply(scope, section.entries, PEER, KNOWN_PEER)
    peers = {name: Peer(**scope.values) for name, scope in scopes.items()}
    return SipConfig(general, peers, registrations, auth, warnings)


def load_sip_conf(path: str | os.PathLike[str], *, read_file: ReadFile | None = None) -> SipConfig:
    """Read ``path`` (with its includes) and return its meaning; ``ConfigError`` if refused."""
    return parse_sip_conf(load(path, read_file=read_file))
