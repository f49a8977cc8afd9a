"""NAT rules of sip.conf, as chan_sip applies them: RFC 3581 (rport), RFC 3261 §18.2.1/§18.2.2.

Pure decisions, no sockets, no clock: the glue hands in addresses and gets addresses back.

* ``our_address`` is chan_sip's ``ast_sip_ouraddrfor``: the external address (``externaddr``/
  ``externhost``) goes into Via/Contact/SDP only when ``localnet`` is configured, an external
  address is known and the destination is outside every ``localnet``. IPv6 destinations are
  never remapped. Otherwise the bound address is used (the interface address the glue chose
  when bound to a wildcard).
* ``effective_nat`` is ``check_via``/``check_for_nat``: NAT is detected when the top Via
  sent-by *address* (the port is ignored) differs from the packet source; ``auto_force_rport``
  and ``auto_comedia`` turn into ``force_rport``/``comedia`` exactly then.
* ``response_target`` is ``sip_real_dst``; ``stamp_via`` is ``copy_via_headers``;
  ``contact_target`` is ``set_address_from_contact`` (and ``parse_register_contact`` with
  ``rport_present``); ``media_target`` says whether RTP latches (``comedia``,
  ``AST_RTP_PROPERTY_NAT``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from pypbx.config.netaddr import Network, is_local, split_hostport
from pypbx.config.sipmodel import STANDARD_SIP_PORT, STANDARD_TLS_PORT, General, NatMode
from pypbx.sip.events import Addr
from pypbx.sip.headers import Via
from pypbx.sip.message import Request, Response
from pypbx.sip.sdp import Connection, SdpError, connection_for, parse_sdp
from pypbx.sip.uri import NameAddr, SipUri

__all__ = [
    "MediaTarget",
    "NatPolicy",
    "contact_target",
    "effective_nat",
    "force_rport_label",
    "media_target",
    "nat_detected",
    "nat_label",
    "remap_message",
    "response_target",
    "rewrite_contact",
    "rewrite_from_host",
    "rewrite_message",
    "rewrite_sdp",
    "rewrite_via",
    "stamp_via",
]

_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(host: str) -> _IpAddress | None:
    """An IP literal (brackets, a ``%zone`` allowed; IPv4-mapped IPv6 shown as IPv4)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _uri_host(host: str) -> str:
    """The form a host takes in a Via sent-by or a URI: IPv6 in brackets (RFC 3261 §25.1)."""
    ip = _ip(host)
    if ip is not None and ip.version == 6 and not host.startswith("["):
        return f"[{host}]"
    return host


def _plain_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _is_wildcard(host: str) -> bool:
    ip = _ip(host)
    return not host or (ip is not None and ip.is_unspecified)


@dataclass(frozen=True, slots=True)
class NatPolicy:
    """The ``[general]`` NAT settings with the glue's externhost lookup.

    ``externhost_ip`` is the address the glue last resolved ``externhost`` to (None when
    there is no externhost or the lookup failed); a resolved externhost is preferred over
    ``externaddr``. Build a new policy with :meth:`with_externhost_ip` after a re-lookup.
    """

    general: General
    externhost_ip: str | None = None

    def with_externhost_ip(self, ip: str | None) -> NatPolicy:
        """A copy carrying a fresh ``externhost`` lookup result."""
        return replace(self, externhost_ip=ip)

    @property
    def externhost_name(self) -> tuple[str, int | None] | None:
        """(name, port) the glue should resolve, every ``externrefresh`` seconds; None if unset."""
        if self.general.externhost is None:
            return None
        try:
            return split_hostport(self.general.externhost)
        except ValueError:
            return None

    def externhost_due(self, resolved_at: float | None, now: float) -> bool:
        """True when ``externhost`` needs a (re-)lookup: never done, or ``externrefresh`` passed."""
        if self.general.externhost is None:
            return False
        return resolved_at is None or now >= resolved_at + self.general.externrefresh

    @property
    def external(self) -> tuple[str, int | None] | None:
        """The external (host, port or None) to advertise, if one is known."""
        name = self.externhost_name
        if name is not None and self.externhost_ip is not None:
            return self.externhost_ip, name[1]
        if self.general.externaddr is not None:
            return self.general.externaddr, self.general.externport
        return None

    @property
    def localnet(self) -> tuple[Network, ...]:
        return self.general.localnet

    def is_external(self, dest_ip: str) -> bool:
        """True when ``dest_ip`` would get the external address (``want_remap``)."""
        if not self.localnet or self.external is None:
            return False
        ip = _ip(dest_ip)
        if ip is None or ip.version == 6:
            return False
        return not is_local(ip, self.localnet)

    def our_address(self, dest_ip: str, local_addr: Addr) -> Addr:
        """The (host, port) for Via/Contact/SDP in a message to ``dest_ip``.

        ``local_addr`` is the address the glue sends from: the interface address the system
        would use toward ``dest_ip`` when bound to a wildcard, and the bound port. Raises
        ``ValueError`` when neither ``bindaddr`` nor ``local_addr`` is a usable address.
        """
        external = self.external
        if external is not None and self.is_external(dest_ip):
            host, port = external
            return host, port or local_addr[1] or self.general.bindport
        host = local_addr[0]
        if not _is_wildcard(self.general.bindaddr):
            host = self.general.bindaddr
        if _is_wildcard(host):
            raise ValueError(f"no interface address toward {dest_ip}: the glue gave {host!r}")
        return _plain_host(host), local_addr[1] or self.general.bindport


# --- per-packet decisions ---------------------------------------------------------------------


def nat_detected(via: Via, source: Addr) -> bool:
    """``check_for_nat``: the Via sent-by address differs from the source address.

    Ports are not compared. A sent-by host name (not resolvable here) counts as different,
    as an unresolvable name does in chan_sip.
    """
    sent_by = _ip(via.host)
    src = _ip(source[0])
    return sent_by is None or src is None or sent_by != src


def effective_nat(peer_nat: Iterable[NatMode], via: Via, source: Addr) -> frozenset[NatMode]:
    """The modes in force for one packet: only ``FORCE_RPORT`` and ``COMEDIA`` remain.

    ``auto_force_rport``/``auto_comedia`` become their plain twin when NAT is detected
    (:func:`nat_detected`) and nothing otherwise; ``nat=yes`` is already force_rport+comedia.
    """
    modes = frozenset(peer_nat)
    out: set[NatMode] = set()
    natted: bool | None = None
    for plain, auto in (
        (NatMode.FORCE_RPORT, NatMode.AUTO_FORCE_RPORT),
        (NatMode.COMEDIA, NatMode.AUTO_COMEDIA),
    ):
        if auto in modes:
            if natted is None:
                natted = nat_detected(via, source)
            if natted:
                out.add(plain)
        elif plain in modes:
            out.add(plain)
    return frozenset(out)


def _rport_requested(via: Via) -> bool:
    return via.has_rport and via.param("rport") is None


def response_target(via: Via, source: Addr, modes: Iterable[NatMode]) -> Addr:
    """``sip_real_dst``: where a response (or a reply in the same exchange) goes.

    With ``force_rport`` or a bare ``;rport`` in the Via: the source ip:port. Otherwise the
    source ip (or the Via ``maddr`` when it is an IP literal) and the Via port (5060 if none).
    """
    if NatMode.FORCE_RPORT in frozenset(modes) or _rport_requested(via):
        return source
    host = source[0]
    maddr = via.maddr
    if maddr is not None and _ip(maddr) is not None:
        host = _plain_host(maddr)
    return host, via.port or STANDARD_SIP_PORT


def stamp_via(via: Via, source: Addr, modes: Iterable[NatMode]) -> Via:
    """``copy_via_headers``: the top Via of a response, with ``received`` always set.

    ``rport=<source port>`` is added with ``force_rport`` or when the Via asked for it
    (a bare ``;rport``), replacing the bare one; ``received`` comes before ``rport``.
    """
    add_rport = NatMode.FORCE_RPORT in frozenset(modes) or _rport_requested(via)
    drop = {"received", "rport"} if add_rport else {"received"}
    params = [p for p in via.params if p[0].lower() not in drop]
    params.append(("received", _plain_host(source[0])))
    if add_rport:
        params.append(("rport", str(source[1])))
    return Via(via.transport, via.host, via.port, tuple(params), via.protocol)


def _default_port(uri: SipUri) -> int:
    if uri.secure or uri.transport == "tls":
        return STANDARD_TLS_PORT
    return STANDARD_SIP_PORT


def contact_target(
    contact_uri: SipUri,
    source: Addr,
    modes: Iterable[NatMode],
    *,
    rport_present: bool = False,
) -> Addr:
    """Where in-dialog requests and calls to this peer go (``set_address_from_contact``).

    With ``force_rport`` the Contact is not trusted: the source address of the request
    (the registration's, for calls) is used. ``rport_present`` is for REGISTER
    (``parse_register_contact``): a bare ``;rport`` in its Via also keeps the source.
    Otherwise the Contact's host and port (5060, 5061 for sips/TLS); a host name there is
    for the glue to resolve.
    """
    if NatMode.FORCE_RPORT in frozenset(modes) or rport_present:
        return source
    return _plain_host(contact_uri.host), contact_uri.port or _default_port(contact_uri)


@dataclass(frozen=True, slots=True)
class MediaTarget:
    """Where RTP goes first, and whether to move to the first packet's source (comedia)."""

    addr: Addr
    latch: bool


def media_target(sdp_addr: str, sdp_port: int, modes: Iterable[NatMode]) -> MediaTarget:
    """The SDP address is where RTP goes first; with ``comedia`` it is only a guess and the
    relay latches onto the source of the first packet it gets (symmetric RTP)."""
    return MediaTarget((sdp_addr, sdp_port), NatMode.COMEDIA in frozenset(modes))


def nat_label(modes: Iterable[NatMode]) -> str:
    """``sip_nat_mode``: ``NAT`` when force_rport or comedia is in force, else ``no NAT``."""
    active = frozenset(modes)
    return "NAT" if {NatMode.FORCE_RPORT, NatMode.COMEDIA} & active else "no NAT"


def force_rport_label(configured: Iterable[NatMode], modes: Iterable[NatMode]) -> str:
    """``force_rport_string`` for ``sip show peer``: ``Auto (Yes)``/``Auto (No)`` or Yes/No."""
    on = NatMode.FORCE_RPORT in frozenset(modes)
    if NatMode.AUTO_FORCE_RPORT in frozenset(configured):
        return "Auto (Yes)" if on else "Auto (No)"
    return "Yes" if on else "No"


# --- rewriting our outgoing messages ----------------------------------------------------------


def rewrite_via(msg: Request, addr: Addr | tuple[str, int | None]) -> None:
    """Set the sent-by of our top Via to ``addr`` (in place; parameters kept; a port of
    None keeps the Via's own port)."""
    top = msg.top_via
    port = top.port if addr[1] is None else addr[1]
    new = Via(top.transport, _uri_host(addr[0]), port, top.params, top.protocol)
    msg.headers.replace_first("Via", str(new))


def rewrite_contact(msg: Request | Response, addr: Addr | tuple[str, int | None]) -> None:
    """Set host:port of every SIP Contact of ``msg`` to ``addr`` (in place; a port of None
    keeps each Contact's own port).

    User part and parameters are kept; ``*`` and non-SIP URIs are left alone.
    """
    if "Contact" not in msg.headers:
        return
    values: list[str] = []
    for contact in msg.contact:
        if isinstance(contact, NameAddr) and isinstance(contact.uri, SipUri):
            port = contact.uri.port if addr[1] is None else addr[1]
            uri = replace(contact.uri, host=_uri_host(addr[0]), port=port)
            contact = replace(contact, uri=uri)
        values.append(str(contact))
    msg.headers.set("Contact", ", ".join(values))


def rewrite_sdp(sdp: bytes, host: str) -> bytes:
    """Put ``host`` in the ``o=`` and every ``c=`` line of an SDP body; ports are kept.

    A ``c=`` holding the any-address (RFC 2543 hold) is kept. An empty or unparsable body is
    returned unchanged (it is not ours to fix).
    """
    if not sdp.strip():
        return sdp
    try:
        sd = parse_sdp(sdp)
    except SdpError:
        return sdp
    plain = _plain_host(host)
    conn = connection_for(plain)

    media = tuple(replace(m, connection=conn) if _moved(m.connection) else m for m in sd.media)
    origin = replace(sd.origin, addrtype=conn.addrtype, address=plain)
    connection = conn if _moved(sd.connection) else sd.connection
    return replace(sd, origin=origin, connection=connection, media=media).to_bytes()


def _moved(conn: Connection | None) -> bool:
    return conn is not None and not _is_wildcard(conn.host)


def _is_sdp(msg: Request | Response) -> bool:
    ctype = msg.content_type
    return ctype is not None and ctype.split(";", 1)[0].strip().lower() == "application/sdp"


def rewrite_message(msg: Request | Response, addr: Addr) -> None:
    """Our address in an outgoing message: top Via (requests), Contact and an SDP body."""
    if isinstance(msg, Request):
        rewrite_via(msg, addr)
    rewrite_contact(msg, addr)
    if msg.body and _is_sdp(msg):
        msg.body = rewrite_sdp(msg.body, addr[0])


def _contact_is_ours(msg: Request | Response) -> bool:
    """Whether the Contacts of ``msg`` name us: not in a response to REGISTER (the registrar
    lists the UA's own bindings) nor in a 3xx (redirect targets)."""
    if isinstance(msg, Request):
        return True
    if 300 <= msg.status < 400:
        return False
    cseq = msg.headers.get("CSeq") or ""
    return cseq.split()[-1:] != ["REGISTER"]


def rewrite_from_host(msg: Request, host: str, ours: Collection[str]) -> None:
    """Set the host of the From URI of our request to ``host`` when it is one of ``ours``
    (chan_sip writes its own address there: ``ourip``, the external one when remapping). A
    From naming someone else (our To as a UAS, a ``fromdomain``) is left alone; the tag and
    user part are kept, so the dialog stays the same (RFC 3261 §12.2.1.1 matches tags)."""
    if "From" not in msg.headers:
        return
    sender = msg.from_
    uri = sender.uri
    if not isinstance(uri, SipUri) or _plain_host(uri.host) not in ours:
        return
    msg.headers.set("From", str(replace(sender, uri=replace(uri, host=_uri_host(host)))))


def remap_message(
    msg: Request | Response,
    host: str,
    port: int | None = None,
    *,
    from_hosts: Collection[str] = (),
) -> bool:
    """chan_sip's remapping of one outgoing message to ``host`` (``port``: externport, None
    keeps the ports already written): the top Via sent-by of a request, the Contacts that
    name us (see :func:`_contact_is_ours`), the ``o=``/``c=`` lines of an SDP body, and the
    From host of a request when it is one of ``from_hosts`` (our own addresses).
    Returns True when something changed (in place)."""
    before = (
        msg.headers.get("Via"),
        msg.headers.get("Contact"),
        msg.headers.get("From"),
        msg.body,
    )
    if isinstance(msg, Request) and "Via" in msg.headers:
        rewrite_via(msg, (host, port))
    if isinstance(msg, Request) and from_hosts:
        rewrite_from_host(msg, host, from_hosts)
    if _contact_is_ours(msg):
        rewrite_contact(msg, (host, port))
    if msg.body and _is_sdp(msg):
        msg.body = rewrite_sdp(msg.body, host)
    return before != (
        msg.headers.get("Via"),
        msg.headers.get("Contact"),
        msg.headers.get("From"),
        msg.body,
    )
