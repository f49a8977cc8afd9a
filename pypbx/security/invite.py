"""INVITE authentication outcomes reported to the abuse guard (RFC 3261 §22.3; issue 9 item 3).

The call layer authenticates dialog-creating requests through
:meth:`pypbx.peers.PeerDirectory.authenticate_invite`. :class:`GuardedDirectory` is that
directory with one addition: each outcome is also told to a :class:`~pypbx.security.guard.Guard`
(a refused credential → :meth:`Guard.auth_failed`; an accepted request that carried
credentials → :meth:`Guard.auth_ok`), so the call layer needs no code of its own for bans.
A challenge (the first, unauthenticated INVITE) is not a failure. A request accepted without
credentials (a peer matched by host with ``insecure=invite``, a guest) earns no trust.
"""

from __future__ import annotations

from pypbx.peers import InviteAuth, InviteDecision, PeerDirectory
from pypbx.security.guard import Guard
from pypbx.sip.abnf import ParseError
from pypbx.sip.auth import AuthParseError, parse_credentials
from pypbx.sip.events import Addr
from pypbx.sip.message import Request
from pypbx.sip.uri import SipUri

__all__ = ["GuardedDirectory", "claimed_user"]


def claimed_user(request: Request) -> str | None:
    """The user a request claims to be: its digest username, else its From user."""
    for value in request.headers.get_all("proxy-authorization") + request.headers.get_all(
        "authorization"
    ):
        try:
            return parse_credentials(value).username
        except AuthParseError:
            break
    try:
        uri = request.from_.uri
    except ParseError:
        return None
    return uri.user if isinstance(uri, SipUri) and uri.user else None


class GuardedDirectory(PeerDirectory):
    """A :class:`PeerDirectory` whose INVITE authentication feeds ``guard`` (when set)."""

    guard: Guard | None = None

    def authenticate_invite(self, request: Request, source: Addr, *, now: float) -> InviteAuth:
        auth = super().authenticate_invite(request, source, now=now)
        guard = self.guard
        if guard is None:
            return auth
        if auth.auth_failure:
            guard.auth_failed(source[0], claimed_user(request), now=now)
        elif auth.decision is InviteDecision.ACCEPT and request.headers.count(
            "proxy-authorization"
        ):
            guard.auth_ok(source[0], user=claimed_user(request), now=now)
        return auth
