"""Coverage-guided fuzzing (atheris, libFuzzer) of what pypbx reads from the network and disk.

Issue 9 item 5. Run as ``python tests/security/atheris_fuzz.py [libFuzzer options] [CORPUS]``;
``tests/security/test_atheris.py`` runs a bounded campaign when atheris is installed. The
first input byte picks the target, the rest is its input. The invariant for every target:
the documented error or a value, never another exception:

* the SIP parser (``parse_message``): a Message or ``ParseError``;
* the abuse guard's glance and screen (``peek``/``Guard.screen``): never raises;
* digest headers (``parse_credentials``/``parse_challenge``): a value or ``AuthParseError``;
* SDP (``parse_sdp``): a value or a ``PbxError`` (``SdpError``);
* the conf dialect and sip.conf meaning (``parse_text``/``parse_sip_conf``): a value or
  ``ConfigError`` (bad values are warnings, not exceptions);
* dial plan expressions (``evaluate``): always a string (syntax errors are warnings).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import suppress

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from pypbx.config.conf import ConfigError, parse_text
    from pypbx.config.sipconf import parse_sip_conf
    from pypbx.dialplan.expr import evaluate
    from pypbx.errors import PbxError
    from pypbx.security.guard import Guard, peek
    from pypbx.sip.abnf import ParseError
    from pypbx.sip.auth import AuthParseError, parse_challenge, parse_credentials
    from pypbx.sip.parse import parse_message
    from pypbx.sip.sdp import parse_sdp

GUARD = Guard()


def _sip(data: bytes) -> None:
    with suppress(ParseError):
        parse_message(data)


def _guard(data: bytes) -> None:
    peek(data)
    GUARD.screen("UDP", data, "127.0.0.1", now=0.0)


def _digest(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (parse_credentials, parse_challenge):
        with suppress(AuthParseError):
            parse(text)


def _sdp(data: bytes) -> None:
    with suppress(PbxError):
        parse_sdp(data)


def _conf(data: bytes) -> None:
    with suppress(ConfigError):
        parse_sip_conf(parse_text(data.decode("utf-8", "replace"), "sip.conf"))


def _expr(data: bytes) -> None:
    result = evaluate(data.decode("utf-8", "replace"))
    if not isinstance(result, str):
        raise TypeError(f"evaluate returned {type(result).__name__}")


TARGETS: list[Callable[[bytes], None]] = [_sip, _guard, _digest, _sdp, _conf, _expr]


def one_input(data: bytes) -> None:
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](data[1:])


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
