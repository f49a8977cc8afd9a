"""A small SIP endpoint process built on :class:`pypbx.transport.stack.SipStack`.

Used by the interop and netns tests. It answers out-of-dialog OPTIONS (the endpoint's
auto_options), acts as a digest-authenticating registrar for one user (in memory,
RFC 3261 §10.3 with RFC 7616 challenges) and answers anything else with a plain final
response. It prints ``READY udp=HOST:PORT tcp=HOST:PORT`` on stdout once bound, logs to
stderr (or ``--log``), and exits cleanly on SIGTERM/SIGINT.

    python tests/interop/stack_endpoint.py --bind 127.0.0.60 --port 0 --tcp
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``pypbx`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pypbx.sip.auth import AuthParseError, DigestServer, Verdict, parse_credentials, uri_matches
from pypbx.sip.events import Event, RequestReceived
from pypbx.sip.headers import Star
from pypbx.sip.uri import SipUri
from pypbx.transport.addr import hostport
from pypbx.transport.loop import loop_name, run
from pypbx.transport.stack import EventHandler, SipStack, StackConfig

log = logging.getLogger("stack_endpoint")

#: Final answers to requests that are not REGISTER (OPTIONS is answered by the endpoint).
_ANSWERS = {"MESSAGE": 200, "INVITE": 486, "BYE": 481, "INFO": 481, "NOTIFY": 481}


@dataclass(slots=True)
class Registrar:
    """One-user registrar: ``bindings`` maps an AOR user to its Contact values."""

    user: str
    password: str
    digest: DigestServer
    bindings: dict[str, list[str]] = field(default_factory=dict)

    def handle(self, stack: SipStack, event: RequestReceived) -> None:
        request = event.request
        now = stack.loop.time()
        value = request.headers.get("authorization")
        if value is None:
            self._challenge(stack, event, now, stale=False)
            return
        try:
            creds = parse_credentials(value)
        except AuthParseError:  # another scheme (RFC 4475 §3.1.1.10) or garbled: challenge
            self._challenge(stack, event, now, stale=False)
            return
        if creds.username != self.user or not uri_matches(creds.uri, request.uri_text):
            stack.reply(event, 403)
            return
        verdict = self.digest.verify(creds, request.method, password=self.password, now=now)
        if verdict is Verdict.OK:
            self._save(stack, event)
        elif verdict is Verdict.BAD_CREDENTIALS:
            stack.reply(event, 403)
        elif verdict is Verdict.MALFORMED:
            stack.reply(event, 400)
        else:
            self._challenge(stack, event, now, stale=verdict is Verdict.STALE)

    def _challenge(
        self, stack: SipStack, event: RequestReceived, now: float, *, stale: bool
    ) -> None:
        challenge = self.digest.challenge(now, stale=stale)
        stack.reply(event, 401, headers=(("WWW-Authenticate", challenge),))

    def _save(self, stack: SipStack, event: RequestReceived) -> None:
        request = event.request
        uri = request.to.uri
        aor = (uri.user if isinstance(uri, SipUri) else None) or str(uri)
        expires = request.expires if request.expires is not None else 3600
        contacts = request.contact
        if any(isinstance(c, Star) for c in contacts) or expires == 0:
            self.bindings.pop(aor, None)
        else:
            self.bindings[aor] = [str(c) for c in contacts]
        headers = [("Contact", f"{c};expires={expires}") for c in self.bindings.get(aor, [])]
        headers.append(("Expires", str(expires)))
        stack.reply(event, 200, headers=headers)
        log.info(
            "registered %s from %s: %d binding(s)", aor, hostport(event.source), len(headers) - 1
        )


def make_handler(registrar: Registrar) -> EventHandler:
    def handler(stack: SipStack, event: Event) -> None:
        if not isinstance(event, RequestReceived):
            return
        method = event.request.method
        if method == "REGISTER":
            registrar.handle(stack, event)
        else:
            stack.reply(event, _ANSWERS.get(method, 501))

    return handler


async def serve(args: argparse.Namespace) -> None:
    digest = DigestServer(os.urandom(16), args.realm, algorithms=("MD5",))
    registrar = Registrar(args.user, args.password, digest)
    config = StackConfig(bindaddr=args.bind, bindport=args.port, tcp=args.tcp)
    stack = SipStack(config, make_handler(registrar))
    await stack.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tcp = stack.tcp_addr
    print(
        f"READY udp={hostport(stack.local_addr)} tcp={hostport(tcp) if tcp else '-'}"
        f" loop={loop_name(loop)}",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await stack.close()
        log.info("stopped (internal errors: %d)", stack.internal_errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--user", default="1000")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--realm", default="pypbx.test")
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        filename=args.log,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
