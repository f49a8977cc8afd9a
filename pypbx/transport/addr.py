"""Transport addresses for the SIP glue: socket addresses, ``host:port`` text, IP literals.

RFC 3261 §19.1.1 / §25.1 ``hostport`` (an IPv6 reference is written in brackets, RFC 5118
§4.1 and RFC 2732); §18.2.2 sends responses to addresses, so the glue must know whether a
Via host is an IP literal it can send to without a resolver. Pure helpers: no sockets are
opened here (``socket`` is imported only for its address-family constants).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from pypbx.sip.events import Addr

__all__ = [
    "from_sockaddr",
    "hostport",
    "ip_family",
    "is_wildcard",
    "unbracket",
    "unmap_v4",
    "via_host",
]


def unbracket(host: str) -> str:
    """``[::1]`` → ``::1``; other hosts unchanged."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def ip_family(host: str) -> socket.AddressFamily | None:
    """``AF_INET``/``AF_INET6`` for an IP literal (brackets and a ``%zone`` allowed),
    ``None`` for a host name or anything else."""
    text = unbracket(host).split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


def is_wildcard(host: str) -> bool:
    """True for the any-address (``0.0.0.0``, ``::``, empty)."""
    text = unbracket(host)
    if not text:
        return True
    try:
        return ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return False


def via_host(host: str) -> str:
    """The form a host takes in a Via sent-by or a URI: IPv6 in brackets (§25.1)."""
    plain = unbracket(host)
    return f"[{plain}]" if ip_family(plain) == socket.AF_INET6 else plain


def hostport(addr: Addr) -> str:
    """``1.2.3.4:5060`` / ``[::1]:5060`` for logs and URIs."""
    host, port = addr
    return f"{via_host(host)}:{port}"


def unmap_v4(host: str) -> str:
    """``::ffff:192.0.2.1`` (an IPv4 peer seen by a dual-stack IPv6 socket) → ``192.0.2.1``;
    any other host unchanged."""
    if not host.lower().startswith("::ffff:"):
        return host
    try:
        mapped = ipaddress.IPv6Address(host).ipv4_mapped
    except ValueError:
        return host
    return str(mapped) if mapped is not None else host


def from_sockaddr(sockaddr: Any) -> Addr:
    """(host, port) from what a socket reports: drops the IPv6 flowinfo and scope id and
    shows an IPv4-mapped peer as plain IPv4."""
    return unmap_v4(str(sockaddr[0])), int(sockaddr[1])
