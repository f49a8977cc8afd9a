"""Registration both ways against real parties (issue 5): pypbx as a real process registers to
Kamailio as the provider, and baresip registers to pypbx as extension 1000.

Loopback only, free ports, every wait bounded; each test is skipped only when its tool is not
installed.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.parties import Baresip, Kamailio, PbxProcess, have
from tests.interop.sipp import free_port

pytestmark = pytest.mark.interop

PROVIDER_IP = "127.0.0.21"
PHONE_IP = "127.0.0.23"
PSTN_IP = "127.0.0.22"
needs_kamailio = pytest.mark.skipif(
    not (have("kamailio") and have("kamcmd")), reason="not installed: kamailio/kamcmd"
)
needs_baresip = pytest.mark.skipif(not have("baresip"), reason="not installed: baresip")

EXTENSIONS = "[internal]\nexten => 1,1,Hangup()\n"


def sip_conf(pbx_port: int, *, register: str = "", peers: str = "") -> str:
    lines = ["[general]", "bindaddr=127.0.0.1", f"bindport={pbx_port}", "minexpiry=10"]
    if register:
        lines.append(f"register => {register}")
    return "\n".join(lines) + "\n" + peers


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Kamailio]:
    kam = Kamailio(tmp_path / "kamailio", ip=PROVIDER_IP, port=free_port(PROVIDER_IP))
    kam.start()
    try:
        yield kam
    finally:
        kam.stop()


def start_pbx(tmp_path: Path, name: str, sip: str) -> PbxProcess:
    port = int(re.search(r"bindport=(\d+)", sip).group(1))  # type: ignore[union-attr]
    pbx = PbxProcess(tmp_path / name, port)
    pbx.write({"sip.conf": sip, "extensions.conf": EXTENSIONS})
    pbx.start()
    return pbx


def registry_state(text: str) -> str:
    for line in text.splitlines():
        if line.startswith(PROVIDER_IP):
            for state in (
                "Registered",
                "Rejected",
                "No Authentication",
                "Request Sent",
                "Auth. Sent",
                "Timeout",
                "Unregistered",
                "Failed",
            ):
                if state in line:
                    return state
    return ""


def pstn_invite(provider_port: int, *, timeout: float = 8.0) -> tuple[int, str]:
    """An INVITE to the DID from the PSTN side (127.0.0.22); the final status and the
    Server header of the answer (the ACK for it is not needed by the test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((PSTN_IP, 0))
        port = sock.getsockname()[1]
        tag = os.urandom(4).hex()
        invite = (
            f"INVITE sip:18182223333@{PROVIDER_IP}:{provider_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PSTN_IP}:{port};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:13105550100@{PSTN_IP}>;tag={tag}\r\n"
            f"To: <sip:18182223333@{PROVIDER_IP}>\r\n"
            f"Call-ID: did-{tag}@{PSTN_IP}\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:13105550100@{PSTN_IP}:{port}>\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.sendto(invite, (PROVIDER_IP, provider_port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                break
            head = data.split(b"\r\n", 1)[0].split(b" ")
            if len(head) > 1 and head[1].isdigit() and int(head[1]) >= 200:
                server = re.search(rb"(?im)^Server:\s*(.*)$", data)
                return int(head[1]), server.group(1).decode() if server else ""
        return 0, ""
    finally:
        sock.close()


def contact_of(dump: str) -> str | None:
    match = re.search(r"Address: (sip:\S+)", dump)
    return match.group(1) if match else None


@needs_kamailio
def test_pypbx_registers_to_kamailio_and_keeps_its_contact(
    tmp_path: Path, provider: Kamailio
) -> None:
    pbx_port = free_port("127.0.0.1")
    register = f"acct1:trunksecret@{PROVIDER_IP}:{provider.port}/1000~10"
    pbx = start_pbx(tmp_path, "good", sip_conf(pbx_port, register=register))
    try:
        text = pbx.wait_for(
            "sip show registry", lambda t: registry_state(t) == "Registered", timeout=15
        )
        assert registry_state(text) == "Registered", text + pbx.log_text()
        assert f"{PROVIDER_IP}:{provider.port}" in text
        dump = provider.contacts()
        assert "acct1" in dump, dump
        contact = contact_of(dump)
        assert contact == f"sip:1000@127.0.0.1:{pbx_port}", dump
        # a 10 s expiry is refreshed 8 s after each 200: wait for a refresh, same Contact
        first = re.search(r"Expires: (\d+)", dump)
        assert first is not None, dump
        time.sleep(9)
        dump2 = provider.contacts()
        assert contact_of(dump2) == contact, dump2
        assert dump2.count("Address: ") == 1, dump2
        log = provider.log.read_text(errors="replace")
        assert log.count("REGISTERED acct1") >= 2, "no refresh seen by the provider"
        assert registry_state(pbx.rx("sip show registry")) == "Registered"
        # a call from the PSTN side to the DID reaches pypbx through the provider after the
        # refresh: Kamailio routes it to the registered contact; this config has no trunk
        # peer for the provider, so pypbx treats it as a stranger (407 challenge, or 480 when
        # no call layer is loaded) and the provider relays that answer back
        status, server = pstn_invite(provider.port)
        assert status in (407, 480), (status, server)
        assert "pypbx-test-provider" not in server  # pypbx's answer, not Kamailio's own 480
        log = provider.log.read_text(errors="replace")
        assert f"PSTN->CUSTOMER 18182223333 -> sip:18182223333@127.0.0.1:{pbx_port}" in log
    finally:
        pbx.stop()
    # stop() unregistered: the provider's location table no longer holds the contact
    deadline = time.monotonic() + 5
    while "Address: " in provider.contacts() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Address: " not in provider.contacts(), provider.contacts()
    assert "Unregistered from" in pbx.log_text()


@needs_kamailio
def test_wrong_trunk_password_is_shown_rejected(tmp_path: Path, provider: Kamailio) -> None:
    pbx_port = free_port("127.0.0.1")
    register = f"acct1:WRONGsecret@{PROVIDER_IP}:{provider.port}"
    pbx = start_pbx(tmp_path, "bad", sip_conf(pbx_port, register=register))
    try:
        text = pbx.wait_for(
            "sip show registry",
            lambda t: registry_state(t) in ("Rejected", "No Authentication"),
            timeout=15,
        )
        assert registry_state(text) in ("Rejected", "No Authentication"), text + pbx.log_text()
        assert "Address: " not in provider.contacts()
        assert "Registration to 'acct1@127.0.0.21' is now" in pbx.log_text()
    finally:
        pbx.stop()


@needs_kamailio
def test_unreachable_provider_times_out(tmp_path: Path) -> None:
    pbx_port = free_port("127.0.0.1")
    dead = free_port(PROVIDER_IP)
    conf = sip_conf(pbx_port, register=f"acct1:trunksecret@{PROVIDER_IP}:{dead}")
    conf = conf.replace("minexpiry=10\n", "minexpiry=10\nregistertimeout=1\n")
    pbx = start_pbx(tmp_path, "dead", conf)
    try:
        text = pbx.wait_for(
            "sip show registry", lambda t: registry_state(t) == "Timeout", timeout=10
        )
        assert registry_state(text) in ("Timeout", "Request Sent"), text
        time.sleep(1.5)
        assert "timed out, trying again" in pbx.log_text(), pbx.log_text()
    finally:
        pbx.stop()


# -- baresip as extension 1000 -------------------------------------------------------------

PEER_1000 = """
[1000]
type=friend
host=dynamic
secret=mysecretpassword
qualify=yes
context=internal
"""


def phone(tmp_path: Path, pbx_port: int, password: str) -> Baresip:
    account = (
        f"<sip:1000@127.0.0.1:{pbx_port}>;auth_pass={password};regint=60;"
        "answermode=auto;audio_codecs=PCMU"
    )
    return Baresip(
        tmp_path / "phone",
        ip=PHONE_IP,
        accounts=[account],
        sip_port=free_port(PHONE_IP),
        ctrl_port=free_port(PHONE_IP, kind=socket.SOCK_STREAM),
        lifetime=60,
    )


def peer_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.startswith("1000")), "")


@needs_baresip
def test_baresip_registers_and_is_qualified(tmp_path: Path) -> None:
    pbx_port = free_port("127.0.0.1")
    pbx = start_pbx(tmp_path, "pbx", sip_conf(pbx_port, peers=PEER_1000))
    bs = phone(tmp_path, pbx_port, "mysecretpassword")
    bs.start()
    try:
        text = pbx.wait_for("sip show peers", lambda t: "OK (" in peer_line(t), timeout=20)
        line = peer_line(text)
        assert PHONE_IP in line, text + pbx.log_text()
        assert re.search(r"OK \(\d+ ms\)", line), text
        assert str(bs.sip_port) in line
        assert f"Registered SIP '1000' at {PHONE_IP}:{bs.sip_port}" in pbx.log_text()
        detail = pbx.rx("sip show peer 1000")
        assert "Reg. Contact" in detail
        assert PHONE_IP in detail
    finally:
        bs.stop()
        pbx.stop()


@needs_baresip
def test_baresip_with_a_wrong_password_does_not_register(tmp_path: Path) -> None:
    pbx_port = free_port("127.0.0.1")
    pbx = start_pbx(tmp_path, "pbx", sip_conf(pbx_port, peers=PEER_1000))
    bs = phone(tmp_path, pbx_port, "WRONG")
    bs.start()
    try:
        deadline = time.monotonic() + 10
        while "Wrong password" not in pbx.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Wrong password" in pbx.log_text(), pbx.log_text()
        line = peer_line(pbx.rx("sip show peers"))
        assert "(Unspecified)" in line, line
        assert PHONE_IP not in line
    finally:
        bs.stop()
        pbx.stop()
