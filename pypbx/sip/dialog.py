"""Dialogs (RFC 3261 §12): identity, route set, remote target, CSeq, in-dialog requests.

§12.1.1 (UAS dialog from the request), §12.1.2 (UAC dialog from a 1xx-with-tag or 2xx),
§12.2.1.1 (building a request: Request-URI and Route for loose and strict routing),
§12.2.2 (remote CSeq ordering → 500, target refresh), §13.2.2.4 (route set recomputed
from the 2xx, ACK for the 2xx). A :class:`Dialog` is plain state plus request builders; it
sends nothing. Which dialog a message belongs to is :func:`uas_dialog_id` /
:func:`uac_dialog_id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from pypbx.sip.abnf import ParseError
from pypbx.sip.events import Addr
from pypbx.sip.headers import Star
from pypbx.sip.message import Request, Response, make_request
from pypbx.sip.uri import NameAddr, SipUri, Uri

__all__ = [
    "TARGET_REFRESH",
    "Dialog",
    "DialogId",
    "DialogState",
    "uac_dialog_id",
    "uas_dialog_id",
    "uri_addr",
]

#: Methods whose requests and 2xx refresh the remote target (§12.2, RFC 3311, RFC 6665).
TARGET_REFRESH = frozenset(("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"))


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag, from this UA's point of view."""

    call_id: str
    local_tag: str
    remote_tag: str


class DialogState(StrEnum):
    """§12: a dialog is early (made by a 1xx) or confirmed (made by a 2xx)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def uas_dialog_id(request: Request) -> DialogId | None:
    """The id of the dialog an incoming request belongs to (To tag is ours, §12.2.2);
    ``None`` for a request outside any dialog."""
    local = request.to.tag
    if local is None:
        return None
    return DialogId(request.call_id, local, request.from_.tag or "")


def uac_dialog_id(response: Response) -> DialogId | None:
    """The id of the dialog a response to our request creates or belongs to."""
    remote = response.to.tag
    if remote is None:
        return None
    return DialogId(response.call_id, response.from_.tag or "", remote)


def uri_addr(uri: Uri) -> Addr:
    """Transport address of a SIP URI without DNS: ``maddr`` or host, port or the default
    (5060, 5061 for sips). Name resolution (RFC 3263) is the transport's business."""
    if not isinstance(uri, SipUri):
        raise ValueError(f"cannot route to {uri}")
    host = uri.maddr or uri.host
    port = uri.port or (5061 if uri.secure else 5060)
    return host.strip("[]"), port


def _contact_uri(message: Request | Response) -> Uri | None:
    for contact in message.contact:
        if not isinstance(contact, Star):
            return contact.uri
    return None


class Dialog:
    """The state of one dialog (§12.1): ids, URIs, sequence numbers, route set, target.

    Build one with :meth:`as_uac` or :meth:`as_uas`; ``local_contact`` is what this UA puts
    in Contact of its requests.
    """

    __slots__ = (
        "id",
        "local_contact",
        "local_seq",
        "local_uri",
        "remote_seq",
        "remote_target",
        "remote_uri",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        dialog_id: DialogId,
        *,
        local_uri: NameAddr,
        remote_uri: NameAddr,
        remote_target: Uri,
        route_set: Iterable[NameAddr] = (),
        local_seq: int | None = None,
        remote_seq: int | None = None,
        state: DialogState = DialogState.EARLY,
        secure: bool = False,
        local_contact: NameAddr | None = None,
    ) -> None:
        self.id = dialog_id
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set = tuple(route_set)
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.state = state
        self.secure = secure
        self.local_contact = local_contact

    def __repr__(self) -> str:
        return f"<Dialog {self.state} {self.id}>"

    @classmethod
    def as_uac(
        cls, request: Request, response: Response, *, local_contact: NameAddr | None = None
    ) -> Dialog:
        """§12.1.2: the dialog a 1xx (with To tag) or 2xx to our ``request`` creates. The
        route set is the response's Record-Route reversed; the target its Contact."""
        dialog_id = uac_dialog_id(response)
        if dialog_id is None:
            raise ValueError("a response without To tag creates no dialog")
        target = _contact_uri(response) or request.uri
        state = DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY
        return cls(
            dialog_id,
            local_uri=request.from_,
            remote_uri=response.to,
            remote_target=target,
            route_set=reversed(response.record_route),
            local_seq=request.cseq.number,
            state=state,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            local_contact=local_contact,
        )

    @classmethod
    def as_uas(
        cls,
        request: Request,
        local_tag: str,
        *,
        confirmed: bool = False,
        local_contact: NameAddr | None = None,
    ) -> Dialog:
        """§12.1.1: the dialog our response (with ``local_tag``) to ``request`` creates.
        The route set is the request's Record-Route in order; the target its Contact."""
        target = _contact_uri(request)
        if target is None:
            raise ParseError("dialog-creating request without Contact")
        return cls(
            DialogId(request.call_id, local_tag, request.from_.tag or ""),
            local_uri=request.to.with_tag(local_tag),
            remote_uri=request.from_,
            remote_target=target,
            route_set=request.record_route,
            remote_seq=request.cseq.number,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            local_contact=local_contact,
        )

    # ---------------------------------------------------------------- updates

    def confirm(self, response: Response | None = None) -> None:
        """Early → confirmed. For a UAC, ``response`` (the 2xx) recomputes the route set and
        refreshes the target (§13.2.2.4)."""
        if self.state is DialogState.TERMINATED:
            raise ValueError("dialog is terminated")
        if response is not None:
            self.route_set = tuple(reversed(response.record_route))
            self.refresh_target(response)
        self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        """Mark the dialog ended (BYE, failure, timeout)."""
        self.state = DialogState.TERMINATED

    def refresh_target(self, message: Request | Response) -> None:
        """Take the remote target from ``message``'s Contact, if it has one (§12.2)."""
        target = _contact_uri(message)
        if target is not None:
            self.remote_target = target

    def check_request(self, request: Request) -> int | None:
        """§12.2.2 for an in-dialog request: ``500`` if its CSeq is lower than the last
        one (out of order); else record the CSeq, refresh the target of a target-refresh
        request and return ``None``. ACK and CANCEL carry the INVITE's number and are not
        ordered."""
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_seq is not None and number < self.remote_seq:
            return 500
        self.remote_seq = number
        if request.method in TARGET_REFRESH:
            self.refresh_target(request)
        return None

    # ---------------------------------------------------------------- requests

    @property
    def next_hop(self) -> Uri:
        """Where an in-dialog request goes first: the top route, else the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def request_uri_and_routes(self) -> tuple[Uri, list[NameAddr]]:
        """§12.2.1.1: loose routing (first route has ``lr``) keeps the remote target as
        Request-URI and the route set as Route; strict routing puts the first route in the
        Request-URI and appends the remote target as the last Route."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, list(self.route_set)
        uri = first
        if isinstance(first, SipUri):  # §19.1.1 table: no method param, no headers
            uri = replace(first.without_params("method"), headers=())
        return uri, [*self.route_set[1:], NameAddr(self.remote_target)]

    def create_request(
        self,
        method: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
    ) -> Request:
        """A request within the dialog (§12.2.1.1): From/To with the tags, Call-ID, the
        next local CSeq (or ``cseq`` for ACK/CANCEL), Route and Request-URI per the route
        set, our Contact. The endpoint adds the Via."""
        if self.state is DialogState.TERMINATED and method not in ("ACK", "BYE"):
            raise ValueError("dialog is terminated")
        if cseq is None:
            cseq = 1 if self.local_seq is None else self.local_seq + 1
            self.local_seq = cseq
        uri, routes = self.request_uri_and_routes()
        remote = self.remote_uri.with_tag(self.id.remote_tag)
        local = self.local_uri.with_tag(self.id.local_tag)
        contact = self.local_contact if method in TARGET_REFRESH else None
        request = make_request(
            method,
            uri,
            from_=local,
            to=remote,
            call_id=self.id.call_id,
            cseq=cseq,
            via="SIP/2.0/UDP invalid",
            contact=contact,
            route=routes,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        request.headers.remove("via")  # the endpoint adds ours, with a fresh branch
        return request

    def create_ack(
        self, invite_cseq: int, *, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """The ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (§13.2.2.4): a request
        of its own within the dialog, same CSeq number, method ACK."""
        return self.create_request("ACK", body=body, content_type=content_type, cseq=invite_cseq)
