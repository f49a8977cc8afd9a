"""A tiny raw-socket SIP user agent for the live attack tests (no pypbx code on this side).

Blocking UDP on a chosen loopback source address; builds REGISTER/INVITE/ACK by hand, answers
digest challenges (RFC 2617 MD5, qop=auth), retransmits a request on RFC 3261 timer A/E
(T1 = 0.5 s doubling) until a final answer, ACKs a 2xx and answers a BYE with 200.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import socket
import time
from dataclasses import dataclass, field

_counter = itertools.count(1)

SDP = (
    "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


@dataclass
class Reply:
    """A received SIP message, split into its first line, headers and body."""

    first: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def status(self) -> int:
        parts = self.first.split(" ", 2)
        return int(parts[1]) if self.first.startswith("SIP/2.0 ") and len(parts) > 1 else 0

    @property
    def method(self) -> str | None:
        return None if self.first.startswith("SIP/2.0") else self.first.split(" ", 1)[0]

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def header_names(self) -> list[str]:
        return sorted({k.lower() for k, _ in self.headers})


def parse_reply(data: bytes) -> Reply | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.append((name.strip(), value.strip()))
    return Reply(lines[0], headers, body, data)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # RFC 2617 digest


def digest(challenge: str, *, method: str, uri: str, user: str, password: str) -> str:
    """The Authorization value answering ``challenge`` (a WWW-/Proxy-Authenticate value)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = params["realm"], params["nonce"]
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if "auth" in params.get("qop", ""):
        cnonce, nc = f"{next(_counter):08x}", "00000001"
        resp = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        resp = _md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{resp}", algorithm=MD5{extra}'
    )


@dataclass
class RawUa:
    """One UDP socket on ``ip`` talking to the PBX at ``server``."""

    ip: str
    server: tuple[str, int]
    user: str = "1000"
    password: str = ""
    sock: socket.socket = field(init=False)
    port: int = field(init=False)
    seen: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.ip, 0))
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    # -- building -------------------------------------------------------------------------

    def build(
        self,
        method: str,
        ruri: str,
        *,
        call_id: str,
        cseq: int,
        to: str | None = None,
        from_user: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: str = "",
    ) -> bytes:
        host = self.server[0]
        branch = f"z9hG4bK{next(_counter)}x{time.monotonic_ns()}"
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{from_user or self.user}@{host}>;tag=f{call_id[:8]}",
            f"To: {to or f'<sip:{self.user}@{host}>'}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.ip}:{self.port}>",
            "User-Agent: rawsip-test",
        ]
        lines += [f"{k}: {v}" for k, v in headers or []]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    # -- exchanging -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float) -> Reply | None:
        """The next message within ``timeout`` (BYEs are answered 200 on the way)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except (TimeoutError, BlockingIOError):
                return None
            reply = parse_reply(data)
            if reply is None:
                continue
            self.seen.append(reply)
            if reply.method == "BYE":
                self.send(self._answer(reply, 200, "OK"))
                continue
            if reply.method is not None:
                continue
            return reply
        return None

    def transact(self, data: bytes, *, timeout: float = 4.0) -> Reply | None:
        """Send a request until its final response (retransmitting on timer A/E)."""
        reply = parse_reply(data)
        assert reply is not None
        call_id, cseq = reply.get("Call-ID"), reply.get("CSeq")
        start = time.monotonic()
        interval, next_send, provisional = 0.5, start, False
        while time.monotonic() - start < timeout:
            if not provisional and time.monotonic() >= next_send:
                self.send(data)
                next_send = time.monotonic() + interval
                interval = min(interval * 2, 4.0)
            got = self.receive(max(0.01, min(next_send - time.monotonic(), 0.1)))
            if got is None or got.get("Call-ID") != call_id or got.get("CSeq") != cseq:
                continue
            if got.status < 200:
                provisional = True
                continue
            return got
        return None

    def _answer(self, request: Reply, status: int, reason: str) -> bytes:
        lines = [f"SIP/2.0 {status} {reason}"]
        for key in ("Via", "From", "To", "Call-ID", "CSeq"):
            lines += [f"{key}: {v}" for v in request.get_all(key)]
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    # -- whole exchanges ------------------------------------------------------------------

    def register(self, *, expires: int = 300, password: str | None = None) -> Reply | None:
        """REGISTER, answering one 401; the final reply."""
        host, port = self.server
        ruri = f"sip:{host}:{port}"
        call_id = f"reg-{self.user}-{self.ip}"
        cseq = next(_counter)
        first = self.transact(
            self.build(
                "REGISTER", ruri, call_id=call_id, cseq=cseq, headers=[("Expires", str(expires))]
            )
        )
        if first is None or first.status != 401:
            return first
        auth = digest(
            first.get("WWW-Authenticate") or "",
            method="REGISTER",
            uri=ruri,
            user=self.user,
            password=self.password if password is None else password,
        )
        headers = [("Expires", str(expires)), ("Authorization", auth)]
        return self.transact(
            self.build("REGISTER", ruri, call_id=call_id, cseq=cseq + 1, headers=headers)
        )

    def call(self, exten: str, *, timeout: float = 4.0) -> tuple[Reply | None, float]:
        """INVITE ``exten`` (answering one 407), ACK a 2xx; (final reply, seconds taken)."""
        host, port = self.server
        ruri = f"sip:{exten}@{host}:{port}"
        call_id = f"call-{next(_counter)}-{time.monotonic_ns()}"
        body = SDP.format(ip=self.ip, port=40000 + self.port % 1000 * 2)
        to = f"<sip:{exten}@{host}>"
        start = time.monotonic()
        invite = self.build("INVITE", ruri, call_id=call_id, cseq=1, to=to, body=body)
        first = self.transact(invite, timeout=timeout)
        final = first
        cseq = 1
        if first is not None and first.status == 407:
            self.send(self._ack(ruri, first, call_id, 1, invite))
            auth = digest(
                first.get("Proxy-Authenticate") or "",
                method="INVITE",
                uri=ruri,
                user=self.user,
                password=self.password,
            )
            cseq = 2
            invite = self.build(
                "INVITE",
                ruri,
                call_id=call_id,
                cseq=2,
                to=to,
                body=body,
                headers=[("Proxy-Authorization", auth)],
            )
            final = self.transact(invite, timeout=timeout)
        took = time.monotonic() - start
        if final is not None:
            self.send(self._ack(ruri, final, call_id, cseq, invite))
        return final, took

    def _ack(self, ruri: str, final: Reply, call_id: str, cseq: int, invite: bytes) -> bytes:
        """§17.1.1.3: a non-2xx ACK reuses the INVITE's Via (same transaction); a 2xx ACK
        goes to the Contact with a new branch (§13.2.2.4)."""
        sent = parse_reply(invite)
        assert sent is not None
        if final.status < 300:
            contact = final.get("Contact") or f"<{ruri}>"
            target = contact[contact.find("<") + 1 : contact.find(">")] if "<" in contact else ruri
            via = f"SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bKack{next(_counter)}"
        else:
            target, via = ruri, sent.get("Via") or ""
        lines = [
            f"ACK {target} SIP/2.0",
            f"Via: {via}",
            "Max-Forwards: 70",
            f"From: {final.get('From')}",
            f"To: {final.get('To')}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} ACK",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
