"""Dialogs (§12): ids, route sets from Record-Route, target refresh, CSeq rules, in-dialog
requests with loose and strict routing."""

from __future__ import annotations

import pytest

from pypbx.sip.abnf import ParseError
from pypbx.sip.dialog import (
    Dialog,
    DialogId,
    DialogState,
    uac_dialog_id,
    uas_dialog_id,
    uri_addr,
)
from pypbx.sip.message import Request, build_response
from pypbx.sip.parse import parse_message
from pypbx.sip.uri import parse_uri
from tests.harness import make_req

RR = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


def _invite(*record_route: str) -> Request:
    req = make_req("INVITE", via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKd", cseq=7)
    for rr in record_route:
        req.headers.add("Record-Route", rr)
    return req


def _answer(req: Request, status: int = 200, *, tag: str = "bt", contact: str | None = None):
    resp = build_response(req, status, to_tag=tag)
    for rr in req.get_all("Record-Route"):
        resp.headers.add("Record-Route", rr)
    resp.headers.add("Contact", contact or "<sip:bob@192.0.2.2:5062>")
    return resp


def test_ids_from_both_sides() -> None:
    req = _invite()
    resp = _answer(req)
    assert uac_dialog_id(resp) == DialogId("cid-1@192.0.2.1", "ft1", "bt")
    assert uac_dialog_id(build_response(req, 100)) is None
    in_dialog = make_req("BYE", to_tag="bt")
    assert uas_dialog_id(in_dialog) == DialogId("cid-1@192.0.2.1", "bt", "ft1")
    assert uas_dialog_id(make_req("INVITE")) is None


def test_uac_dialog_route_set_is_record_route_reversed() -> None:
    req = _invite(*RR)
    dlg = Dialog.as_uac(req, _answer(req))
    assert [str(r.uri) for r in dlg.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert str(dlg.remote_target) == "sip:bob@192.0.2.2:5062"
    assert dlg.state is DialogState.CONFIRMED
    assert dlg.local_seq == 7
    assert dlg.remote_seq is None
    assert dlg.id.local_tag == "ft1"


def test_uas_dialog_route_set_keeps_order_and_takes_contact() -> None:
    req = _invite(*RR)
    dlg = Dialog.as_uas(req, "bobtag")
    assert [str(r.uri) for r in dlg.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert str(dlg.remote_target) == "sip:alice@192.0.2.1:5060"
    assert dlg.remote_seq == 7
    assert dlg.local_seq is None
    assert dlg.state is DialogState.EARLY
    assert dlg.id == DialogId("cid-1@192.0.2.1", "bobtag", "ft1")
    req.headers.remove("Contact")
    with pytest.raises(ParseError):
        Dialog.as_uas(req, "x")


def test_early_dialog_is_confirmed_by_2xx_with_new_route_set_and_target() -> None:
    req = _invite("<sip:early.example.com;lr>")
    ringing = _answer(req, 180, contact="<sip:bob@192.0.2.2:5070>")
    dlg = Dialog.as_uac(req, ringing)
    assert dlg.state is DialogState.EARLY
    ok = build_response(req, 200, to_tag="bt")
    ok.headers.add("Record-Route", "<sip:final.example.com;lr>")
    ok.headers.add("Contact", "<sip:bob@192.0.2.2:5080>")
    dlg.confirm(ok)
    assert dlg.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dlg.route_set] == ["sip:final.example.com;lr"]
    assert str(dlg.remote_target) == "sip:bob@192.0.2.2:5080"


def test_loose_routing_request() -> None:
    req = _invite(*RR)
    dlg = Dialog.as_uac(req, _answer(req), local_contact=None)
    bye = dlg.create_request("BYE")
    assert bye.uri_text == "sip:bob@192.0.2.2:5062"
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert bye.cseq.number == 8
    assert bye.from_.tag == "ft1"
    assert bye.to.tag == "bt"
    assert bye.call_id == "cid-1@192.0.2.1"
    assert "via" not in bye.headers
    assert str(dlg.next_hop) == "sip:p2.example.com;lr"


def test_strict_routing_request() -> None:
    # a UAS keeps Record-Route in order: the first hop is a strict router (no ;lr)
    req = _invite("<sip:strict.example.com;method=INVITE?X=1>", "<sip:p1.example.com;lr>")
    dlg = Dialog.as_uas(req, "bobtag")
    bye = dlg.create_request("BYE")
    assert bye.uri_text == "sip:strict.example.com"  # method param and headers stripped
    assert [str(r.uri) for r in bye.route] == [
        "sip:p1.example.com;lr",
        "sip:alice@192.0.2.1:5060",  # the remote target goes last
    ]
    assert str(dlg.next_hop) == "sip:strict.example.com;method=INVITE?X=1"
    info = dlg.create_request("INFO", body=b"x", content_type="application/dtmf-relay")
    assert (bye.cseq.number, info.cseq.number) == (1, 2)
    assert info.body == b"x"
    assert info.get("Content-Type") == "application/dtmf-relay"


def test_no_route_set_request_goes_to_target() -> None:
    req = _invite()
    dlg = Dialog.as_uac(req, _answer(req))
    bye = dlg.create_request("BYE")
    assert bye.route == []
    assert dlg.next_hop == parse_uri("sip:bob@192.0.2.2:5062")
    assert uri_addr(dlg.next_hop) == ("192.0.2.2", 5062)


def test_ack_for_2xx_uses_invite_cseq_and_does_not_advance() -> None:
    req = _invite(*RR)
    dlg = Dialog.as_uac(req, _answer(req))
    ack = dlg.create_ack(7)
    assert (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert len(ack.route) == 2
    assert dlg.local_seq == 7
    assert dlg.create_request("BYE").cseq.number == 8


def test_uas_first_request_starts_local_cseq() -> None:
    dlg = Dialog.as_uas(_invite(), "bobtag")
    bye = dlg.create_request("BYE")
    assert bye.cseq.number == 1
    assert bye.from_.tag == "bobtag"
    assert bye.to.tag == "ft1"
    assert bye.uri_text == "sip:alice@192.0.2.1:5060"


@pytest.mark.parametrize(
    ("method", "cseq", "expected", "remote_seq"),
    [
        ("BYE", 8, None, 8),
        ("INFO", 7, None, 7),  # equal is not lower
        ("BYE", 6, 500, 7),
        ("ACK", 1, None, 7),  # ACK/CANCEL are not ordered
        ("CANCEL", 1, None, 7),
    ],
)
def test_remote_cseq_rules(method: str, cseq: int, expected: int | None, remote_seq: int) -> None:
    dlg = Dialog.as_uas(_invite(), "bobtag")
    req = make_req(method, to_tag="bobtag", cseq=cseq)
    assert dlg.check_request(req) == expected
    assert dlg.remote_seq == remote_seq


def test_reinvite_refreshes_target_but_info_does_not() -> None:
    dlg = Dialog.as_uas(_invite(), "bobtag")
    info = make_req("INFO", to_tag="bobtag", cseq=8)
    info.headers.set("Contact", "<sip:alice@198.51.100.1>")
    dlg.check_request(info)
    assert str(dlg.remote_target) == "sip:alice@192.0.2.1:5060"
    reinvite = make_req("INVITE", to_tag="bobtag", cseq=9)
    reinvite.headers.set("Contact", "<sip:alice@198.51.100.1>")
    dlg.check_request(reinvite)
    assert str(dlg.remote_target) == "sip:alice@198.51.100.1"


def test_contact_only_in_target_refresh_requests() -> None:
    from pypbx.sip.uri import parse_name_addr

    me = parse_name_addr("<sip:bob@192.0.2.2>")
    dlg = Dialog.as_uas(_invite(), "bobtag", local_contact=me)
    assert dlg.create_request("INVITE").get("Contact") == "<sip:bob@192.0.2.2>"
    assert dlg.create_request("BYE").get("Contact") is None


def test_terminated_dialog_builds_only_bye_and_ack() -> None:
    dlg = Dialog.as_uas(_invite(), "bobtag")
    dlg.terminate()
    with pytest.raises(ValueError, match="terminated"):
        dlg.create_request("INFO")
    with pytest.raises(ValueError, match="terminated"):
        dlg.confirm()
    assert dlg.create_request("BYE").method == "BYE"


def test_created_request_survives_the_wire() -> None:
    req = _invite(*RR)
    dlg = Dialog.as_uac(req, _answer(req))
    bye = dlg.create_request("BYE")
    bye.headers.insert_first("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKw")
    again = parse_message(bye.serialize())
    assert isinstance(again, Request)
    assert uas_dialog_id(again) == DialogId("cid-1@192.0.2.1", "bt", "ft1")


@pytest.mark.parametrize(
    ("uri", "addr"),
    [
        ("sip:a@192.0.2.9", ("192.0.2.9", 5060)),
        ("sips:a@192.0.2.9", ("192.0.2.9", 5061)),
        ("sip:a@[2001:db8::1]:5070", ("2001:db8::1", 5070)),
        ("sip:a@host.example;maddr=192.0.2.44", ("192.0.2.44", 5060)),
    ],
)
def test_uri_addr(uri: str, addr: tuple[str, int]) -> None:
    assert uri_addr(parse_uri(uri)) == addr


def test_uri_addr_refuses_tel() -> None:
    with pytest.raises(ValueError, match="route"):
        uri_addr(parse_uri("tel:+15551234"))
