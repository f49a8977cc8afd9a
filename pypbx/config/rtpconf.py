"""rtp.conf → :class:`RtpConfig`, as Asterisk's res_rtp_asterisk ``rtp_reload`` reads it.

Only ``[general]`` matters: the RTP port range (RFC 3550 §11: RTP on an even port, RTCP on the
next odd one, so ``rtpstart`` is rounded up to even), ``rtpchecksums``, ``strictrtp`` with its
``probation`` count, ``rtcpinterval`` and pypbx's ``rtptimeout``. Values are clamped as Asterisk
clamps them (ports to 1024-65535, the RTCP interval to 500-60000 ms); a start not below the end
warns and falls back to the defaults. A missing file gives the defaults. Options Asterisk knows
but pypbx does not use (ICE, STUN/TURN, DTLS) are accepted silently; others warn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from pypbx.config.conf import ConfFile, ConfWarning, Entry, ReadFile, load
from pypbx.config.sipconf import ast_false, ast_true

__all__ = ["RtpConfig", "StrictRtp", "load_rtp_conf", "parse_rtp_conf"]

DEFAULT_RTP_START = 5000
DEFAULT_RTP_END = 31000
MINIMUM_RTP_PORT = 1024
MAXIMUM_RTP_PORT = 65535
RTCP_MIN_INTERVAL = 500
RTCP_MAX_INTERVAL = 60000

_KNOWN = frozenset(
    {
        "dtmftimeout",
        "icesupport",
        "stunaddr",
        "stunaddr_reresolve_ttl_0",
        "stun_software_attribute",
        "turnaddr",
        "turnusername",
        "turnpassword",
        "ice_blacklist",
        "ice_acl",
        "ice_permit",
        "ice_deny",
        "stun_blacklist",
        "stun_acl",
        "stun_permit",
        "stun_deny",
        "dtls_mtu",
        "srtpreplayprotection",
    }
)


class StrictRtp(StrEnum):
    NO = "no"
    YES = "yes"
    SEQNO = "seqno"


@dataclass(frozen=True, slots=True)
class RtpConfig:
    """RTP settings; ``rtptimeout`` (seconds, 0 = off) is pypbx's global default."""

    rtpstart: int = DEFAULT_RTP_START
    rtpend: int = DEFAULT_RTP_END
    rtpchecksums: bool = True
    strictrtp: StrictRtp = StrictRtp.YES
    probation: int = 4
    rtcpinterval: int = 5000
    rtptimeout: int = 0
    warnings: tuple[ConfWarning, ...] = ()


def _int(entry: Entry, warnings: list[ConfWarning]) -> int | None:
    try:
        return int(entry.value.strip())
    except ValueError:
        warnings.append(
            ConfWarning(entry.origin, f"invalid {entry.key} {entry.value!r}", "bad-value")
        )
        return None


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def parse_rtp_conf(conf: ConfFile) -> RtpConfig:
    """Read ``[general]`` of a parsed rtp.conf (the last value of a repeated key wins)."""
    warnings = list(conf.warnings)
    ints: dict[str, int] = {}
    checksums, strict = True, StrictRtp.YES
    general = next((s for s in conf.categories() if s.name.lower() == "general"), None)
    range_entry: Entry | None = None
    for entry in general.entries if general is not None else []:
        key = entry.key.lower()
        if key in ("rtpstart", "rtpend", "rtcpinterval", "probation", "rtptimeout"):
            number = _int(entry, warnings)
            if number is None:
                continue
            if key in ("rtpstart", "rtpend"):
                number = _clamp(number, MINIMUM_RTP_PORT, MAXIMUM_RTP_PORT)
                range_entry = entry
            elif key == "rtcpinterval":
                number = _clamp(number, RTCP_MIN_INTERVAL, RTCP_MAX_INTERVAL)
            elif number < 0:
                msg = f"{entry.key} must not be negative"
                warnings.append(ConfWarning(entry.origin, msg, "bad-value"))
                continue
            ints[key] = number
        elif key == "rtpchecksums":
            checksums = not ast_false(entry.value)
        elif key == "strictrtp":
            word = entry.value.strip().lower()
            strict = (
                StrictRtp.SEQNO
                if word == "seqno"
                else (StrictRtp.YES if ast_true(word) else StrictRtp.NO)
            )
        elif key not in _KNOWN:
            msg = f"[general] unknown option {entry.key!r} ignored"
            warnings.append(ConfWarning(entry.origin, msg, "unknown-option"))
    start = ints.get("rtpstart", DEFAULT_RTP_START)
    end = ints.get("rtpend", DEFAULT_RTP_END)
    start += start % 2
    if start >= end:
        assert range_entry is not None  # the defaults are a valid range
        msg = f"unreasonable RTP port range {start}-{end}; using the defaults"
        warnings.append(ConfWarning(range_entry.origin, msg, "bad-value"))
        start, end = DEFAULT_RTP_START, DEFAULT_RTP_END
    return RtpConfig(
        rtpstart=start,
        rtpend=end,
        rtpchecksums=checksums,
        strictrtp=strict,
        probation=ints.get("probation", 4),
        rtcpinterval=ints.get("rtcpinterval", 5000),
        rtptimeout=ints.get("rtptimeout", 0),
        warnings=tuple(warnings),
    )


def load_rtp_conf(path: str | os.PathLike[str], *, read_file: ReadFile | None = None) -> RtpConfig:
    """Read rtp.conf at ``path``; a missing file gives :class:`RtpConfig` defaults."""
    if read_file is None and not os.path.exists(path):
        return RtpConfig()
    return parse_rtp_conf(load(path, read_file=read_file))
