"""Events at the SIP boundary: from the endpoint to its transaction user (RFC 3261 §17,
§8.2, §9.2) and from the INVITE sessions to the call layer (§13-§15).

Every event is a frozen, slotted dataclass named as a past participle. The endpoint queues
them; the TU reads them with ``Endpoint.next_event()``. Keys identify transactions:
:class:`ClientTxnKey` (§17.1.3: branch + CSeq method) and :class:`ServerTxnKey` (§17.2.3:
branch + sent-by + method, or the RFC 2543 fallback fields when the branch has no cookie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pypbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pypbx.sip.session import Session

__all__ = [
    "AckReceived",
    "Addr",
    "CancelReceived",
    "ClientTxnKey",
    "DialogResponseReceived",
    "Event",
    "InDialogRequestReceived",
    "MessageRejected",
    "ReinviteAnswered",
    "ReinviteCancelled",
    "ReinviteReceived",
    "RequestReceived",
    "ResponseDropped",
    "ResponseReceived",
    "ServerTxnKey",
    "SessionAnswered",
    "SessionCancelled",
    "SessionConfirmed",
    "SessionEvent",
    "SessionOffered",
    "SessionProgressed",
    "SessionRejected",
    "SessionTerminated",
    "TransactionKey",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransportError",
]

#: A transport address: (host, port).
Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ClientTxnKey:
    """A client transaction's identity (§17.1.3): the branch of the top Via we sent and
    the CSeq method (a CANCEL shares the INVITE's branch)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerTxnKey:
    """A server transaction's identity (§17.2.3). ``method`` is ``INVITE`` for an ACK.

    For an RFC 3261 branch (``z9hG4bK``) the key is branch, sent-by and method; for an
    RFC 2543 peer ``branch`` is empty and ``legacy`` holds Request-URI, From tag, Call-ID,
    CSeq number and the top Via as written.
    """

    branch: str
    host: str
    port: int | None
    method: str
    legacy: tuple[str, ...] = ()


TransactionKey = ClientTxnKey | ServerTxnKey


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU; answer it with ``Endpoint.send_response(key, ...)``."""

    request: Request
    key: ServerTxnKey
    source: Addr


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response passed up by client transaction ``key`` (2xx retransmissions to INVITE
    included, so that the TU can ACK them again)."""

    response: Response
    key: ClientTxnKey


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK that belongs to no transaction in progress: the ACK for a 2xx (§13.3.1.4).
    ``key`` is the INVITE server transaction it matched in the Accepted state, if any."""

    request: Request
    source: Addr
    key: ServerTxnKey | None = None


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched INVITE server transaction ``invite_key`` still in Proceeding (§9.2).
    The endpoint has answered the CANCEL with 200; the TU answers the INVITE with 487
    (unless the endpoint was configured to do it)."""

    request: Request
    invite_key: ServerTxnKey
    cancel_key: ServerTxnKey
    source: Addr


@dataclass(frozen=True, slots=True)
class TransactionTimedOut:
    """Timer B, F or H fired (§17.1.1.2, §17.1.2.2, §17.2.1)."""

    key: ClientTxnKey | ServerTxnKey


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and was forgotten."""

    key: ClientTxnKey | ServerTxnKey


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport could not send for transaction ``key`` (§17.1.4, §17.2.4)."""

    key: ClientTxnKey | ServerTxnKey
    dest: Addr | None = None


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """Input that was not passed up: unparsable bytes, a merged request (482), the
    transaction limit (503) ... ``status`` is the answer sent, if any."""

    reason: str
    source: Addr
    status: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseDropped:
    """A response that matched no client transaction (a stray, §17.1.3 / §18.1.2)."""

    response: Response
    source: Addr
    reason: str = "no matching client transaction"


Event = (
    RequestReceived
    | ResponseReceived
    | AckReceived
    | CancelReceived
    | TransactionTimedOut
    | TransactionTerminated
    | TransportError
    | MessageRejected
    | ResponseDropped
)


# ---------------------------------------------------------------- session events (§13)
# Raised by pypbx.sip.useragent.UserAgent for the call layer; ``session`` is the live leg.


@dataclass(frozen=True, slots=True)
class SessionOffered:
    """A new INVITE arrived: answer with ``session.ring/answer/reject``."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class SessionProgressed:
    """UAC: a provisional response (``response.to.tag`` names the early dialog)."""

    session: Session
    response: Response


@dataclass(frozen=True, slots=True)
class SessionAnswered:
    """UAC: a 2xx arrived and was ACKed; the session is confirmed."""

    session: Session
    response: Response


@dataclass(frozen=True, slots=True)
class SessionConfirmed:
    """UAS: the ACK for our 2xx arrived (it may carry the SDP answer)."""

    session: Session
    ack: Request


@dataclass(frozen=True, slots=True)
class SessionRejected:
    """UAC: the INVITE failed: a 300-699 (``response``) or timeout/transport error (408/503
    with no response)."""

    session: Session
    status: int
    response: Response | None = None


@dataclass(frozen=True, slots=True)
class SessionCancelled:
    """UAS: the caller cancelled; 487 was sent."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class SessionTerminated:
    """The session ended: ``remote`` is True when the other side ended it."""

    session: Session
    reason: str
    remote: bool


@dataclass(frozen=True, slots=True)
class ReinviteReceived:
    """A re-INVITE: answer with ``session.answer_reinvite``."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class ReinviteCancelled:
    """The peer cancelled its re-INVITE before we answered it (487 was sent)."""

    session: Session
    request: Request


@dataclass(frozen=True, slots=True)
class ReinviteAnswered:
    """The final response to our re-INVITE (491 on glare, §14.1)."""

    session: Session
    response: Response


@dataclass(frozen=True, slots=True)
class InDialogRequestReceived:
    """Another request in the dialog (INFO, UPDATE, REFER ...): ``session.respond(key ...)``."""

    session: Session
    request: Request
    key: ServerTxnKey


@dataclass(frozen=True, slots=True)
class DialogResponseReceived:
    """A response to a request we sent with ``session.request`` (not INVITE/BYE)."""

    session: Session
    response: Response


SessionEvent = (
    SessionOffered
    | SessionProgressed
    | SessionAnswered
    | SessionConfirmed
    | SessionRejected
    | SessionCancelled
    | SessionTerminated
    | ReinviteReceived
    | ReinviteCancelled
    | ReinviteAnswered
    | InDialogRequestReceived
    | DialogResponseReceived
)
