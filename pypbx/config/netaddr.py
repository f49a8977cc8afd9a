"""Network values in sip.conf: ``localnet``, ``permit``/``deny`` ACLs, ``host[:port]``.

Semantics follow Asterisk's ``main/acl.c`` (``ast_append_ha`` / ``ast_apply_ha``): a network is
written ``addr``, ``addr/bits`` or ``addr/dotted-mask``; host bits are masked off; an ACL is an
ordered list of permit/deny rules where the *last* matching rule decides, and an address that
matches no rule is allowed. Host and port follow RFC 3261 §19.1.1 / RFC 3986 §3.2.2 (IPv6
literals in brackets).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from pypbx.config.conf import Origin

__all__ = [
    "Acl",
    "AclAction",
    "AclRule",
    "Network",
    "is_local",
    "parse_network",
    "parse_port",
    "split_hostport",
]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Network:
    """An IP network (``192.168.0.0/24``); a single address is a /32 or /128."""

    network: IpNetwork

    def contains(self, addr: str | IpAddress) -> bool:
        """True when ``addr`` (text or ``ipaddress`` object) lies inside this network."""
        try:
            ip = ipaddress.ip_address(addr) if isinstance(addr, str) else addr
        except ValueError:
            return False
        if ip.version != self.network.version:
            return False
        return ip in self.network

    def __str__(self) -> str:
        return str(self.network)


def parse_network(text: str) -> Network:
    """``addr``, ``addr/bits`` or ``addr/dotted-mask`` → :class:`Network`; ``ValueError`` if bad.

    Host bits are masked off, as Asterisk does (``10.1.2.3/8`` is ``10.0.0.0/8``).
    """
    text = text.strip()
    if not text:
        raise ValueError("empty network")
    addr, sep, mask = text.partition("/")
    addr = addr.strip()
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    ip = ipaddress.ip_address(addr)
    bits: int
    if not sep:
        bits = ip.max_prefixlen
    else:
        mask = mask.strip()
        if mask.isdigit():
            bits = int(mask)
            if bits > ip.max_prefixlen:
                raise ValueError(f"prefix length {bits} too long")
        else:
            mask_ip = ipaddress.ip_address(mask)
            if mask_ip.version != ip.version:
                raise ValueError("address and mask differ in IP version")
            value = int(mask_ip)
            bits = bin(value).count("1")
            width = ip.max_prefixlen
            if value != ((1 << bits) - 1) << (width - bits):
                raise ValueError(f"non-contiguous netmask {mask}")
    return Network(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def is_local(addr: str | IpAddress, localnets: tuple[Network, ...] | list[Network]) -> bool:
    """True when ``addr`` is inside one of ``localnets`` (sip.conf ``localnet=`` lines)."""
    return any(net.contains(addr) for net in localnets)


class AclAction(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AclRule:
    action: AclAction
    network: Network
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Acl:
    """Ordered ``permit``/``deny`` rules; the last rule that matches wins; default allow."""

    rules: tuple[AclRule, ...] = ()

    def allows(self, addr: str | IpAddress) -> bool:
        allowed = True
        for rule in self.rules:
            if rule.network.contains(addr):
                allowed = rule.action is AclAction.PERMIT
        return allowed

    def __bool__(self) -> bool:
        return bool(self.rules)


def parse_port(text: str) -> int:
    """A port number 1-65535; ``ValueError`` otherwise."""
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a valid port number")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return port


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → ``(host, port or None)``.

    A bare IPv6 address (more than one colon, no brackets) is taken whole. ``ValueError`` when
    the port is not a number or the host is empty.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"no closing ']' in '{text}'")
        host = text[1:end]
        rest = text[end + 1 :]
        if not rest:
            port = None
        elif rest.startswith(":"):
            port = parse_port(rest[1:])
        else:
            raise ValueError(f"text after ']' in '{text}'")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = parse_port(port_text)
    else:
        host, port = text, None
    if not host:
        raise ValueError(f"no host in '{text}'")
    return host, port
