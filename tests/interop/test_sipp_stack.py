"""Interop: SIPp against the pypbx SIP stack on loopback (issue 3, interop proof).

SIPp as client sends OPTIONS (UDP and TCP) and a digest-authenticated REGISTER to
``stack_endpoint.py``; SIPp as server challenges requests from our client transactions
(MESSAGE, and INVITE/ACK/BYE) and verifies the credentials we compute. Every run is
bounded by SIPp's ``-timeout`` and a subprocess timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pypbx.sip.message import Request, Response, make_request
from pypbx.sip.uri import NameAddr, SipUri
from pypbx.transport.loop import run
from pypbx.transport.stack import SipStack, StackConfig
from tests.interop.conftest import EndpointProcess
from tests.interop.sipp import free_port, run_sipp, sipp_command, start_sipp
from tests.transport.wire import v6_available

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]
INTEROP_TOOLS = ("sipp",)  # skipped only when SIPp is truly absent (conftest.py)

SIPP_IP = "127.0.0.61"
STACK_IP = "127.0.0.62"


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_options_answered_200(
    stack_endpoint: EndpointProcess, tmp_path: Path, transport: str
) -> None:
    cmd = sipp_command(
        "uac_options",
        stack_endpoint.target,
        workdir=tmp_path,
        local_ip=SIPP_IP,
        local_port=free_port(SIPP_IP),
        transport=transport,
        timeout=10,
    )
    result = run_sipp(cmd)
    assert result.ok, result.explain()
    assert result.successful == 1
    assert "SIP/2.0 200 OK" in result.messages
    assert stack_endpoint.alive()


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_register_with_digest(
    stack_endpoint: EndpointProcess, tmp_path: Path, transport: str
) -> None:
    cmd = sipp_command(
        "uac_register_auth",
        stack_endpoint.target,
        workdir=tmp_path,
        local_ip=SIPP_IP,
        local_port=free_port(SIPP_IP),
        transport=transport,
        timeout=10,
        keys={"expires": "300"},
        extra=["-s", "1000", "-au", "1000", "-ap", "secret"],
    )
    result = run_sipp(cmd)
    assert result.ok, result.explain()
    # the challenge, then the authenticated REGISTER and its 200 OK
    assert "SIP/2.0 401" in result.messages
    assert 'Authorization: Digest username="1000"' in result.messages
    assert "registered 1000" in stack_endpoint.log_text()


def test_sipp_register_wrong_password_refused(
    stack_endpoint: EndpointProcess, tmp_path: Path
) -> None:
    cmd = sipp_command(
        "uac_register_badpw",
        stack_endpoint.target,
        workdir=tmp_path,
        local_ip=SIPP_IP,
        local_port=free_port(SIPP_IP),
        timeout=10,
        keys={"expires": "300"},
        extra=["-s", "1000", "-au", "1000", "-ap", "not-the-secret"],
    )
    result = run_sipp(cmd)
    assert result.ok, result.explain()
    assert "registered" not in stack_endpoint.log_text()


def _request(method: str, target: tuple[str, int], local: tuple[str, int], body: bytes) -> Request:
    host, port = target
    return make_request(
        method,
        SipUri(user="trunk", host=host, port=port),
        from_=f"<sip:pypbx@{local[0]}:{local[1]}>;tag=pypbxfrom1",
        to=f"<sip:trunk@{host}:{port}>",
        call_id=f"interop-{method.lower()}@{local[0]}",
        cseq=1,
        via=f"SIP/2.0/UDP {local[0]}:{local[1]};rport",
        contact=f"<sip:pypbx@{local[0]}:{local[1]}>",
        body=body,
        content_type="text/plain" if method == "MESSAGE" else "application/sdp",
    )


_SDP = (
    b"v=0\r\no=pypbx 1 1 IN IP4 127.0.0.62\r\ns=-\r\nc=IN IP4 127.0.0.62\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _bye(invite: Request, ok: Response) -> Request:
    """The in-dialog BYE (§15.1.1) for the dialog the 200 OK established."""
    contact = ok.contact[0]
    assert isinstance(contact, NameAddr)
    bye = Request("BYE", contact.uri)
    bye.headers.add("Max-Forwards", "70")
    bye.headers.add("From", invite.headers.get("from") or "")
    bye.headers.add("To", ok.headers.get("to") or "")
    bye.headers.add("Call-ID", invite.call_id)
    bye.headers.add("CSeq", f"{ok.cseq.number + 1} BYE")
    return bye


async def _client_flow(
    method: str, sipp_addr: tuple[str, int], password: str
) -> tuple[Response, Response | None]:
    config = StackConfig(bindaddr=STACK_IP, bindport=0)
    async with SipStack(config) as stack:
        body = b"hello from pypbx" if method == "MESSAGE" else _SDP
        req = _request(method, sipp_addr, stack.local_addr, body)
        final = await stack.request(req, sipp_addr, auth=("acct1", password))
        bye_final = None
        if method == "INVITE" and final.status == 200:
            bye_final = await stack.request(_bye(req, final), sipp_addr)
        await asyncio.sleep(0.2)  # let the last ACK/200 retransmissions settle
        return final, bye_final


@pytest.mark.parametrize(
    ("scenario", "method"), [("uas_auth_message", "MESSAGE"), ("uas_auth_invite", "INVITE")]
)
def test_stack_client_answers_sipp_challenge(tmp_path: Path, scenario: str, method: str) -> None:
    port = free_port(SIPP_IP)
    cmd = sipp_command(
        scenario,
        None,
        workdir=tmp_path,
        local_ip=SIPP_IP,
        local_port=port,
        timeout=15,
        keys={"authuser": "acct1", "authpass": "trunksecret"},
    )
    sipp = start_sipp(cmd)
    try:
        final, bye_final = run(_client_flow(method, (SIPP_IP, port), "trunksecret"))
        result = sipp.wait()
    finally:
        sipp.stop()
    assert final.status == 200, result.explain()
    if method == "INVITE":
        assert bye_final is not None
        assert bye_final.status == 200
    assert result.ok, result.explain()
    assert "Authorization: Digest" in result.messages


def test_stack_client_wrong_password_gets_403(tmp_path: Path) -> None:
    port = free_port(SIPP_IP)
    cmd = sipp_command(
        "uas_auth_message",
        None,
        workdir=tmp_path,
        local_ip=SIPP_IP,
        local_port=port,
        timeout=10,
        keys={"authuser": "acct1", "authpass": "trunksecret"},
    )
    sipp = start_sipp(cmd)
    try:
        final, _ = run(_client_flow("MESSAGE", (SIPP_IP, port), "wrong"))
        result = sipp.wait()
    finally:
        sipp.stop()
    assert final.status == 403
    assert result.returncode != 0  # the scenario counts bad credentials as a failed call


def test_sipp_options_over_ipv6(tmp_path: Path) -> None:
    if not v6_available():
        pytest.skip("no IPv6 loopback")
    endpoint = EndpointProcess(tmp_path / "endpoint6.log", bind="::1", port=free_port("::1"))
    try:
        cmd = sipp_command(
            "uac_options",
            f"[{endpoint.host}]:{endpoint.port}",
            workdir=tmp_path,
            local_ip="::1",
            local_port=free_port("::1"),
            timeout=10,
        )
        result = run_sipp(cmd)
    finally:
        endpoint.stop()
    assert result.ok, result.explain()
    assert "received=::1" in result.messages
