"""Sans-I/O message framing for stream transports (TCP/TLS).

RFC 3261 §18.3: on a stream the Content-Length header is mandatory and delimits the body;
§7.5: CRLFs before a start line are ignored. RFC 5626 §3.5.1 keep-alives: a double CRLF
("ping") is answered with a single CRLF ("pong"). Memory is bounded: a header section
or a message larger than the configured limits raises ``ParseError`` and the stream must
be closed (it cannot be resynchronised).
"""

from __future__ import annotations

from dataclasses import dataclass

from pypbx.sip.abnf import ParseError, ascii_uint

__all__ = [
    "PONG",
    "FramerEvent",
    "KeepAlivePing",
    "KeepAlivePong",
    "MessageFramed",
    "StreamFramer",
]

#: What to send back for a :class:`KeepAlivePing`.
PONG = b"\r\n"
_CL_NAMES = (b"content-length", b"l")


@dataclass(frozen=True, slots=True)
class MessageFramed:
    """One complete message (start line to end of body), ready for ``parse_message``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class KeepAlivePing:
    """The peer sent CRLFCRLF; answer with :data:`PONG`."""


@dataclass(frozen=True, slots=True)
class KeepAlivePong:
    """The peer sent a lone CRLF (a pong to our ping); nothing to answer."""


FramerEvent = MessageFramed | KeepAlivePing | KeepAlivePong


class StreamFramer:
    """Feed stream bytes with :meth:`feed`, then drain :meth:`next_event` until ``None``.

    After a ``ParseError`` the framer is broken: every later call raises it again.
    """

    __slots__ = ("_buf", "_error", "max_header_size", "max_message_size")

    def __init__(self, *, max_header_size: int = 16384, max_message_size: int = 65536) -> None:
        self.max_header_size = max_header_size
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._error: ParseError | None = None

    @property
    def buffered(self) -> int:
        """Octets received but not yet framed."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received octets."""
        if self._error is not None:
            raise self._error
        self._buf += data

    def next_event(self) -> FramerEvent | None:
        """The next complete message or keep-alive, or ``None`` if more data is needed."""
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ParseError as exc:
            self._error = exc
            self._buf.clear()
            raise

    def _next(self) -> FramerEvent | None:
        buf = self._buf
        if buf[:2] == b"\r\n":
            if buf[:4] == b"\r\n\r\n":
                del buf[:4]
                return KeepAlivePing()
            if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                return None  # maybe the start of a ping: wait
            del buf[:2]
            return KeepAlivePong()
        if buf[:1] == b"\n":
            del buf[:1]  # stray LF between messages: ignore (§7.5 robustness)
            return self._next()
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.max_header_size:
                raise ParseError("header section too large", 513)
            return None
        if end > self.max_header_size:
            raise ParseError("header section too large", 513)
        length = _content_length(bytes(buf[:end]))
        total = end + 4 + length
        if total > self.max_message_size:
            raise ParseError("message too large", 413)
        if len(buf) < total:
            return None
        data = bytes(buf[:total])
        del buf[:total]
        return MessageFramed(data)


def _content_length(head: bytes) -> int:
    """Content-Length from a header section; required on streams (§18.3)."""
    found: int | None = None
    for line in head.split(b"\r\n")[1:]:
        colon = line.find(b":")
        if colon <= 0:
            continue
        if line[:colon].rstrip(b" \t").lower() not in _CL_NAMES:
            continue
        value = line[colon + 1 :].strip()
        length = ascii_uint(value, 2**31)
        if length is None:
            raise ParseError("malformed Content-Length")
        if found is not None and found != length:
            raise ParseError("conflicting Content-Length headers")
        found = length
    if found is None:
        raise ParseError("Content-Length is required on stream transports")
    return found
