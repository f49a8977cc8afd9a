"""INVITE sessions (RFC 3261 §13, §14, §15) on top of the endpoint, per call leg.

§13.2 (UAC: early dialogs from 1xx with tags — several when the INVITE forks — the ACK
for every 2xx, re-ACK of retransmitted 2xx, BYE for extra forked 2xx), §13.3 (UAS: 1xx,
2xx retransmitted from T1 doubling to T2 until the ACK, BYE after 64*T1 without it,
§13.3.1.4), §9 (CANCEL from the UAC, 487 by the UAS), §14 (re-INVITE, 491 on glare,
500 on overlap), §15 (BYE both ways), §12.2.2 (481 for unknown dialogs).

:class:`UserAgent` wraps one :class:`~pypbx.sip.endpoint.Endpoint` and keeps the same
sans-I/O contract; it dispatches endpoint events to :class:`Session` objects and queues
session events (``pypbx.sip.events``: SessionOffered, SessionAnswered ...) for the call
layer. Endpoint events that belong to no session (REGISTER, out-of-dialog MESSAGE ...) are
passed through unchanged. The session states move by a table; an illegal move raises and
leaves the state alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from enum import StrEnum
from typing import TYPE_CHECKING

from pypbx.sip.auth import (
    AuthError,
    ClientAuthState,
    challenge_header,
    credentials_header,
    parse_challenge,
)
from pypbx.sip.dialog import Dialog, DialogId, uac_dialog_id, uri_addr
from pypbx.sip.endpoint import UnknownTransaction
from pypbx.sip.events import (
    Addr,
    ClientTxnKey,
    DialogResponseReceived,
    InDialogRequestReceived,
    ReinviteAnswered,
    ReinviteCancelled,
    ReinviteReceived,
    ServerTxnKey,
    SessionAnswered,
    SessionCancelled,
    SessionConfirmed,
    SessionProgressed,
    SessionRejected,
    SessionTerminated,
    TransactionKey,
)
from pypbx.sip.message import Request, Response, build_response
from pypbx.sip.transaction import IllegalTransition

if TYPE_CHECKING:
    from pypbx.sip.useragent import UserAgent

__all__ = ["TABLE", "Role", "Session", "SessionInput", "SessionState"]


class Role(StrEnum):
    """Which side of the INVITE this leg is."""

    UAC = "UAC"
    UAS = "UAS"


class SessionState(StrEnum):
    """The INVITE usage of a leg."""

    INITIAL = "initial"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class SessionInput(StrEnum):
    """What moves a session."""

    PROVISIONAL = "1xx with tag"
    ANSWER = "2xx"
    REJECT = "300-699 or timeout"
    CANCEL = "CANCEL"
    ACK_TIMEOUT = "no ACK for 64*T1"
    BYE = "BYE"


_R, _S, _I = Role, SessionState, SessionInput
TABLE: dict[tuple[Role, SessionState, SessionInput], SessionState] = {
    (_R.UAC, _S.INITIAL, _I.PROVISIONAL): _S.EARLY,
    (_R.UAC, _S.EARLY, _I.PROVISIONAL): _S.EARLY,
    (_R.UAC, _S.INITIAL, _I.ANSWER): _S.CONFIRMED,
    (_R.UAC, _S.EARLY, _I.ANSWER): _S.CONFIRMED,
    (_R.UAC, _S.INITIAL, _I.REJECT): _S.TERMINATED,
    (_R.UAC, _S.EARLY, _I.REJECT): _S.TERMINATED,
    (_R.UAC, _S.CONFIRMED, _I.BYE): _S.TERMINATED,
    (_R.UAS, _S.INITIAL, _I.PROVISIONAL): _S.EARLY,
    (_R.UAS, _S.EARLY, _I.PROVISIONAL): _S.EARLY,
    (_R.UAS, _S.INITIAL, _I.ANSWER): _S.CONFIRMED,
    (_R.UAS, _S.EARLY, _I.ANSWER): _S.CONFIRMED,
    (_R.UAS, _S.INITIAL, _I.REJECT): _S.TERMINATED,
    (_R.UAS, _S.EARLY, _I.REJECT): _S.TERMINATED,
    (_R.UAS, _S.INITIAL, _I.CANCEL): _S.TERMINATED,
    (_R.UAS, _S.EARLY, _I.CANCEL): _S.TERMINATED,
    (_R.UAS, _S.EARLY, _I.BYE): _S.TERMINATED,  # §15: a caller may BYE an early dialog
    (_R.UAS, _S.CONFIRMED, _I.ACK_TIMEOUT): _S.TERMINATED,
    (_R.UAS, _S.CONFIRMED, _I.BYE): _S.TERMINATED,
}
del _R, _S, _I


# ---------------------------------------------------------------- the session


class Session:
    """One INVITE usage (a call leg). Made by :meth:`UserAgent.invite` (UAC) or handed
    out in :class:`SessionOffered` (UAS)."""

    def __init__(
        self, ua: UserAgent, role: Role, invite: Request, key: TransactionKey, origin: Addr
    ) -> None:
        self.ua = ua
        self.role = role
        self.state = SessionState.INITIAL
        self.invite = invite
        self.invite_key = key
        self.call_id = invite.call_id
        self.local_tag = (invite.from_.tag if role is Role.UAC else ua.endpoint.ids.tag()) or ""
        self.dialog: Dialog | None = None
        self.early: dict[str, Dialog] = {}
        self.origin = origin  # where the INVITE went (UAC) or came from (UAS)
        self.dest = origin if ua.symmetric else None  # fixed next hop, else the dialog
        self.cancelled = False
        self.auth: ClientAuthState | None = None  # UAC: answers 401/407 once per challenge
        self._auth_tries = 0
        self._last_ack: tuple[int, Request, Addr] | None = None
        self._reinvite_out: ClientTxnKey | None = None
        self._reinvite_in: tuple[ServerTxnKey, Request] | None = None
        # UAS 2xx retransmission (§13.3.1.4): (cseq, response, key), next deadline, interval
        self._unacked: tuple[int, Response, ServerTxnKey] | None = None
        self._ids: set[DialogId] = set()
        self._retx_at: float | None = None
        self._retx_interval = 0.0
        self._give_up_at: float | None = None

    def __repr__(self) -> str:
        return f"<Session {self.role} {self.state} {self.call_id}>"

    # -- table ----------------------------------------------------------------------

    def _require(self, event: SessionInput) -> SessionState:
        nxt = TABLE.get((self.role, self.state, event))
        if nxt is None:
            raise IllegalTransition(f"{self.role} session in {self.state}: {event} not allowed")
        return nxt

    def _move(self, event: SessionInput) -> None:
        nxt = self._require(event)
        self.state = nxt
        if nxt is SessionState.TERMINATED:
            self._retx_at = self._give_up_at = None
            if self.dialog is not None:
                self.dialog.terminate()
            for did in list(self._ids):
                self.ua._unbind(did)

    def _end(self, event: SessionInput, reason: str, *, remote: bool) -> None:
        self._move(event)
        self.ua._emit(SessionTerminated(self, reason, remote))

    # -- helpers --------------------------------------------------------------------

    def _hop(self, dialog: Dialog | None = None) -> Addr:
        """Next hop of an in-dialog request: the fixed ``dest`` (symmetric), else the route
        set / remote target; a target we cannot route to (tel:) falls back to ``origin``."""
        dialog = dialog or self.dialog
        if self.dest is not None or dialog is None:
            return self.dest or self.origin
        try:
            return uri_addr(dialog.next_hop)
        except ValueError:
            return self.origin

    def _send_in_dialog(self, request: Request, now: float) -> ClientTxnKey:
        key = self.ua.endpoint.send_request(request, self._hop(), now=now)
        self.ua._by_key[key] = self
        return key

    def _response(
        self,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        extra = list(headers)
        if 100 < status < 300 and request.method == "INVITE":
            extra.append(("Contact", str(self.ua.contact)))
        if content_type is not None:
            extra.append(("Content-Type", content_type))
        tag = self.local_tag if status > 100 else None
        return build_response(request, status, to_tag=tag, headers=extra, body=body)

    # -- UAS actions ----------------------------------------------------------------

    def ring(
        self, *, status: int = 180, body: bytes = b"", content_type: str | None = None, now: float
    ) -> None:
        """Send a provisional response with our tag (an early dialog, §13.3.1.1)."""
        if self.role is not Role.UAS or not 100 < status < 200:
            raise ValueError("ring() is a UAS 101-199")
        self._require(SessionInput.PROVISIONAL)
        resp = self._response(self.invite, status, body=body, content_type=content_type)
        assert isinstance(self.invite_key, ServerTxnKey)
        self.ua.endpoint.send_response(self.invite_key, resp, now=now)
        self._move(SessionInput.PROVISIONAL)
        if self.dialog is None:
            self.dialog = Dialog.as_uas(self.invite, self.local_tag, local_contact=self.ua.contact)
            self.ua._bind(self.dialog.id, self)

    def answer(self, *, body: bytes = b"", content_type: str | None = None, now: float) -> None:
        """Send 200 OK and retransmit it until the ACK comes (§13.3.1.4)."""
        if self.role is not Role.UAS:
            raise ValueError("answer() is for the UAS")
        self._require(SessionInput.ANSWER)
        resp = self._response(self.invite, 200, body=body, content_type=content_type)
        assert isinstance(self.invite_key, ServerTxnKey)
        self._send_2xx(self.invite.cseq.number, resp, self.invite_key, now)
        self._move(SessionInput.ANSWER)
        if self.dialog is None:
            self.dialog = Dialog.as_uas(self.invite, self.local_tag, local_contact=self.ua.contact)
            self.ua._bind(self.dialog.id, self)
        self.dialog.confirm()

    def reject(self, status: int = 486, *, now: float) -> None:
        """Refuse the INVITE with a 300-699."""
        if self.role is not Role.UAS or status < 300:
            raise ValueError("reject() is a UAS 300-699")
        self._require(SessionInput.REJECT)
        assert isinstance(self.invite_key, ServerTxnKey)
        self.ua.endpoint.send_response(
            self.invite_key, self._response(self.invite, status), now=now
        )
        self._move(SessionInput.REJECT)
        self.ua._emit(SessionTerminated(self, f"rejected with {status}", remote=False))

    def _send_2xx(self, cseq: int, resp: Response, key: ServerTxnKey, now: float) -> None:
        self.ua.endpoint.send_response(key, resp, now=now)
        timers = self.ua.endpoint.config.timers
        self._unacked = (cseq, resp, key)
        self._retx_interval = timers.t1
        self._retx_at = None if self.ua.endpoint.config.reliable else now + timers.t1
        self._give_up_at = now + 64 * timers.t1

    # -- UAC actions ----------------------------------------------------------------

    def cancel(self, *, now: float) -> None:
        """Cancel our INVITE (§9.1); the session ends with the 487 (SessionRejected)."""
        if self.role is not Role.UAC or self.state not in (
            SessionState.INITIAL,
            SessionState.EARLY,
        ):
            raise IllegalTransition(f"cannot CANCEL a {self.role} session in {self.state}")
        assert isinstance(self.invite_key, ClientTxnKey)
        self.cancelled = True
        key = self.ua.endpoint.cancel(self.invite_key, now=now)
        if key is not None:
            self.ua._by_key[key] = self

    # -- both sides -----------------------------------------------------------------

    def bye(self, *, now: float) -> None:
        """End a confirmed session (§15.1.1)."""
        if self.state is not SessionState.CONFIRMED:
            raise IllegalTransition(f"BYE needs a confirmed session, not {self.state}")
        assert self.dialog is not None
        self._require(SessionInput.BYE)
        self._send_in_dialog(self.dialog.create_request("BYE"), now)
        self._end(SessionInput.BYE, "local BYE", remote=False)

    def hangup(self, *, status: int = 603, now: float) -> None:
        """Whatever ends this leg now: CANCEL, a rejection, or BYE."""
        if self.state is SessionState.TERMINATED:
            return
        if self.state is SessionState.CONFIRMED:
            self.bye(now=now)
        elif self.role is Role.UAC:
            if not self.cancelled:
                self.cancel(now=now)
        else:
            self.reject(status, now=now)

    def reinvite(
        self, *, body: bytes = b"", content_type: str | None = None, now: float
    ) -> ClientTxnKey:
        """Send a re-INVITE (§14.1); only one at a time."""
        if self.state is not SessionState.CONFIRMED or self.dialog is None:
            raise IllegalTransition("re-INVITE needs a confirmed session")
        if self._reinvite_out is not None or self._reinvite_in is not None:
            raise IllegalTransition("a re-INVITE is already in progress")
        req = self.dialog.create_request("INVITE", body=body, content_type=content_type)
        self._reinvite_out = self._send_in_dialog(req, now)
        return self._reinvite_out

    def cancel_reinvite(self, *, now: float) -> None:
        """Cancel our pending re-INVITE (§9.1, §14.1); it ends with ReinviteAnswered(487)."""
        if self._reinvite_out is None:
            raise IllegalTransition("no re-INVITE of ours in progress")
        key = self.ua.endpoint.cancel(self._reinvite_out, now=now)
        if key is not None:
            self.ua._by_key[key] = self

    def answer_reinvite(
        self,
        status: int = 200,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        now: float,
    ) -> None:
        """Answer the pending incoming re-INVITE (a 2xx is retransmitted until ACKed)."""
        if self._reinvite_in is None:
            raise IllegalTransition("no re-INVITE to answer")
        key, req = self._reinvite_in
        self._reinvite_in = None
        resp = self._response(req, status, body=body, content_type=content_type)
        if 200 <= status < 300:
            self._send_2xx(req.cseq.number, resp, key, now)
        else:
            self.ua.endpoint.send_response(key, resp, now=now)

    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        now: float,
    ) -> ClientTxnKey:
        """Send another in-dialog request (INFO, UPDATE, REFER ...). Before the answer, a UAC
        sends it in the early dialog of the latest provisional response with a To tag (as
        chan_sip does, e.g. SIP INFO digits to an IVR heard in early media)."""
        dialog = self.dialog
        if dialog is None and self.role is Role.UAC and self.state is SessionState.EARLY:
            dialog = next(reversed(self.early.values()), None)
        if method in ("INVITE", "ACK", "BYE", "CANCEL") or dialog is None:
            raise ValueError(f"use the session's own action for {method}")
        req = dialog.create_request(method, body=body, content_type=content_type, headers=headers)
        key = self.ua.endpoint.send_request(req, self._hop(dialog), now=now)
        self.ua._by_key[key] = self
        return key

    def respond(
        self,
        key: ServerTxnKey,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        now: float,
    ) -> None:
        """Answer an :class:`InDialogRequestReceived`."""
        resp = self._response(request, status, body=body, content_type=content_type)
        self.ua.endpoint.send_response(key, resp, now=now)

    # -- timers ---------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """Next 2xx retransmission or the ACK give-up deadline."""
        times = [t for t in (self._retx_at, self._give_up_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, *, now: float) -> None:
        """Retransmit the unacknowledged 2xx; give up after 64*T1 with a BYE."""
        if self._unacked is None:
            return
        if self._give_up_at is not None and now >= self._give_up_at:
            self._unacked = None
            self._retx_at = self._give_up_at = None
            if self.state is SessionState.CONFIRMED and self.dialog is not None:
                self._send_in_dialog(self.dialog.create_request("BYE"), now)
                self._end(SessionInput.ACK_TIMEOUT, "no ACK for the 2xx", remote=False)
            return
        t2 = self.ua.endpoint.config.timers.t2
        while self._retx_at is not None and now >= self._retx_at:
            _, resp, key = self._unacked
            try:
                self.ua.endpoint.send_response(key, resp, now=now)
            except (UnknownTransaction, IllegalTransition):
                self.ua.endpoint.send_stateless(resp)
            self._retx_interval = min(self._retx_interval * 2, t2)
            self._retx_at += self._retx_interval

    # -- input from the user agent ----------------------------------------------------

    def _on_response(self, resp: Response, key: ClientTxnKey, now: float) -> None:
        if key == self.invite_key:
            self._on_invite_response(resp, now)
        elif key == self._reinvite_out:
            if 200 <= resp.status < 300:
                assert self.dialog is not None
                self.dialog.refresh_target(resp)
                self._ack(self.dialog, resp.cseq.number, now)
            if resp.status >= 200:
                self._reinvite_out = None
                self.ua._emit(ReinviteAnswered(self, resp))
        elif key.method == "INVITE" and 200 <= resp.status < 300:
            self._reack(resp)  # a retransmitted 2xx to an earlier re-INVITE
        elif key.method not in ("BYE", "CANCEL") and resp.status >= 200:
            self.ua._emit(DialogResponseReceived(self, resp))

    def _ack(self, dialog: Dialog, cseq: int, now: float) -> None:
        ack = dialog.create_ack(cseq)
        dest = self._hop(dialog)
        self.ua.endpoint.send_stateless(ack, dest)
        if dialog is self.dialog:
            self._last_ack = (cseq, ack, dest)

    def _reack(self, resp: Response) -> bool:
        if self._last_ack is not None and self._last_ack[0] == resp.cseq.number:
            self.ua.endpoint.send_stateless(self._last_ack[1], self._last_ack[2])
            return True
        return False

    def _on_invite_response(self, resp: Response, now: float) -> None:
        did = uac_dialog_id(resp)
        pending = self.state in (SessionState.INITIAL, SessionState.EARLY)
        if resp.status < 200:
            if not pending:
                return  # a late provisional
            if did is not None:
                if did.remote_tag not in self.early:
                    early = Dialog.as_uac(self.invite, resp, local_contact=self.ua.contact)
                    self.early[did.remote_tag] = early
                    self.ua._bind(did, self)
                else:
                    self.early[did.remote_tag].refresh_target(resp)
                self._move(SessionInput.PROVISIONAL)
            self.ua._emit(SessionProgressed(self, resp))
            return
        if resp.status >= 300:
            if pending and self._retry_with_credentials(resp, now):
                return
            if pending:
                self._move(SessionInput.REJECT)
                self.ua._emit(SessionRejected(self, resp.status, resp))
            return
        if did is None:
            return  # a 2xx without To tag cannot be ACKed in a dialog
        if not pending:
            if self.dialog is not None and did == self.dialog.id:
                self._reack(resp)
                return
            # §13.2.2.4: another fork answered too (or one answered after we gave up):
            # ACK it and hang it up at once
            extra = self.early.get(did.remote_tag) or Dialog.as_uac(self.invite, resp)
            extra.confirm(resp)
            self._ack(extra, resp.cseq.number, now)
            self.ua.endpoint.send_request(extra.create_request("BYE"), self._hop(extra), now=now)
            return
        dialog = self.early.pop(did.remote_tag, None)
        if dialog is None:
            dialog = Dialog.as_uac(self.invite, resp, local_contact=self.ua.contact)
        dialog.confirm(resp)
        self.dialog = dialog
        for tag in self.early:
            self.ua._unbind(DialogId(self.call_id, self.local_tag, tag))
        self.early.clear()
        self.ua._bind(dialog.id, self)
        self._move(SessionInput.ANSWER)
        self._ack(dialog, resp.cseq.number, now)
        self.ua._emit(SessionAnswered(self, resp))
        if self.cancelled:  # the 2xx crossed our CANCEL (§9.1): end it with BYE
            self.bye(now=now)

    def _retry_with_credentials(self, resp: Response, now: float) -> bool:
        """§22.2/§22.3: answer a 401/407 to our INVITE with a new INVITE (same Call-ID and
        From tag, CSeq + 1, new branch) carrying credentials for every challenged realm."""
        auth = self.auth
        if auth is None or resp.status not in (401, 407) or self.cancelled:
            return False
        if self._auth_tries >= 3:
            return False
        name, creds_name = challenge_header(resp.status), credentials_header(resp.status)
        sent = self.invite.headers.get_all(creds_name)
        try:
            challenges = [parse_challenge(v) for v in resp.headers.get_all(name)]
            if not challenges or not any([auth.learn(c, sent=sent) for c in challenges]):
                return False
            retry = self.invite.copy()
            retry.headers.remove("via")
            retry.headers.remove(creds_name)
            retry.headers.set("CSeq", f"{self.invite.cseq.number + 1} INVITE")
            for ch in challenges:
                value = auth.authorization(
                    ch.realm,
                    method="INVITE",
                    uri=retry.uri_text,
                    cnonce=self.ua.endpoint.ids.tag(),
                    body=retry.body,
                )
                retry.headers.add(creds_name, value)
        except AuthError:
            return False
        key = self.ua.endpoint.send_request(retry, self.origin, now=now)
        self._auth_tries += 1
        self.invite, self.invite_key = retry, key
        self.ua._by_key[key] = self
        return True

    def _on_invite_failure(self, status: int) -> None:
        """The INVITE transaction timed out (408) or could not send (503)."""
        if self.state not in (SessionState.INITIAL, SessionState.EARLY):
            return
        self._move(SessionInput.REJECT)
        if self.role is Role.UAC:
            self.ua._emit(SessionRejected(self, status))
        else:
            self.ua._emit(SessionTerminated(self, f"INVITE transaction failed ({status})", False))

    def _on_request(self, req: Request, key: ServerTxnKey, now: float) -> None:
        assert self.dialog is not None
        status = self.dialog.check_request(req)
        if status is not None:
            self.ua.endpoint.send_response(key, self._response(req, status), now=now)
            return
        if req.method == "BYE":
            self.ua.endpoint.send_response(key, self._response(req, 200), now=now)
            if self.role is Role.UAS and self.state is SessionState.EARLY:
                assert isinstance(self.invite_key, ServerTxnKey)
                resp = self._response(self.invite, 487)
                self.ua.endpoint.send_response(self.invite_key, resp, now=now)
            if self.state is not SessionState.TERMINATED:
                self._unacked = None
                self._end(SessionInput.BYE, "remote BYE", remote=True)
        elif req.method == "INVITE":
            if self._reinvite_out is not None:  # §14.2 glare
                self.ua.endpoint.send_response(key, self._response(req, 491), now=now)
            elif self._reinvite_in is not None or self._unacked is not None:
                resp = self._response(req, 500, headers=(("Retry-After", "1"),))
                self.ua.endpoint.send_response(key, resp, now=now)
            else:
                self._reinvite_in = (key, req)
                self.ua._by_key[key] = self  # so that a CANCEL of it finds us
                self.ua._emit(ReinviteReceived(self, req))
        else:
            self.ua._emit(InDialogRequestReceived(self, req, key))

    def _on_ack(self, ack: Request) -> None:
        if self._unacked is None or ack.cseq.number != self._unacked[0]:
            return  # a retransmitted or stray ACK
        first = self._unacked[0] == self.invite.cseq.number
        self._unacked = None
        self._retx_at = self._give_up_at = None
        if first:
            self.ua._emit(SessionConfirmed(self, ack))

    def _on_cancel(self, cancel: Request, invite_key: ServerTxnKey, now: float) -> None:
        if self._reinvite_in is not None and self._reinvite_in[0] == invite_key:
            _, req = self._reinvite_in
            self._reinvite_in = None
            with suppress(IllegalTransition):
                self.ua.endpoint.send_response(invite_key, self._response(req, 487), now=now)
            self.ua._emit(ReinviteCancelled(self, cancel))
            return
        if invite_key != self.invite_key:
            return
        if self.state not in (SessionState.INITIAL, SessionState.EARLY):
            return
        assert isinstance(self.invite_key, ServerTxnKey)
        with suppress(IllegalTransition):  # unless the endpoint sent 487 itself (auto_487)
            resp = self._response(self.invite, 487)
            self.ua.endpoint.send_response(self.invite_key, resp, now=now)
        self._move(SessionInput.CANCEL)
        self.ua._emit(SessionCancelled(self, cancel))
