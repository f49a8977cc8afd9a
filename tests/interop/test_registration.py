"""Registration both ways against real parties (issue 5): pypbx as a real process registers to
Kamailio as the provider, and baresip registers to pypbx as extension 1000.

Loopback only, free ports, every wait bounded; each test is skipped only when its tool is not
installed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.parties import Baresip, Kamailio, PbxProcess, have
from tests.interop.sipp import free_port

pytestmark = pytest.mark.interop

PROVIDER_IP = "127.0.0.21"
PHONE_IP = "127.0.0.23"
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
        # a provider-initiated OPTIONS to that contact reaches pypbx after the refresh
        from tests.interop.parties import sip_ping

        assert sip_ping("127.0.0.1", pbx_port, src=PROVIDER_IP) == 200
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
        ctrl_port=free_port(PHONE_IP, kind=__import__("socket").SOCK_STREAM),
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
