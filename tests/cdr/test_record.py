"""CDR building from channel events: times, durations, dispositions, table text."""

from __future__ import annotations

import pytest

from pypbx.cdr import record
from pypbx.cdr.record import AmaFlags, Cdr, CdrBuilder, CdrError, Disposition

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def builder(**kw: object) -> CdrBuilder:
    args: dict[str, object] = {
        "channel": "SIP/1000-00000001",
        "uniqueid": "1700000000.1",
        "start": T0,
        "clid": '"Alice" <1000>',
        "src": "1000",
        "dst": "18005551234",
        "dcontext": "from-internal",
    }
    args.update(kw)
    return CdrBuilder(**args)  # type: ignore[arg-type]


def test_answered_call() -> None:
    b = builder(accountcode="acme")
    b.application("Dial", "SIP/18005551234@trunk,30")
    b.dialed("SIP/trunk-00000002")
    b.answered(T0 + 4.2)
    b.answered(T0 + 9.0)  # only the first answer counts
    cdr = b.ended(T0 + 65.9)
    assert cdr.disposition is Disposition.ANSWERED
    assert (cdr.duration, cdr.billsec) == (65, 61)  # rounded down, as cdr.c
    assert (cdr.lastapp, cdr.lastdata) == ("Dial", "SIP/18005551234@trunk,30")
    assert cdr.dstchannel == "SIP/trunk-00000002"
    assert cdr.calldate == cdr.start == T0
    assert cdr.answer == T0 + 4.2
    assert cdr.accountcode == "acme"
    assert cdr.amaflags is AmaFlags.DOCUMENTATION


@pytest.mark.parametrize(
    ("status", "congestion", "expected"),
    [
        ("BUSY", False, Disposition.BUSY),
        ("NOANSWER", False, Disposition.NO_ANSWER),
        ("CANCEL", False, Disposition.NO_ANSWER),
        ("CHANUNAVAIL", False, Disposition.FAILED),
        ("CONGESTION", False, Disposition.FAILED),
        ("CONGESTION", True, Disposition.CONGESTION),
        ("ANSWER", False, Disposition.NO_ANSWER),  # never answered on our side
        ("weird", False, Disposition.FAILED),
    ],
)
def test_unanswered_disposition_from_dialstatus(
    status: str, congestion: bool, expected: Disposition
) -> None:
    b = builder(congestion=congestion)
    b.dial_status(status)
    b.hangup_cause(16)  # Dial's status wins over the later hangup cause
    cdr = b.ended(T0 + 20)
    assert cdr.disposition is expected
    assert (cdr.duration, cdr.billsec, cdr.answer) == (20, 0, None)


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (16, Disposition.NO_ANSWER),
        (19, Disposition.NO_ANSWER),
        (17, Disposition.BUSY),
        (1, Disposition.FAILED),
        (34, Disposition.FAILED),
    ],
)
def test_disposition_from_cause(cause: int, expected: Disposition) -> None:
    b = builder()
    b.hangup_cause(cause)
    assert b.ended(T0 + 1).disposition is expected
    assert record.disposition_for_cause(34, congestion=True) is Disposition.CONGESTION


def test_answered_beats_dialstatus() -> None:
    b = builder()
    b.answered(T0 + 1)
    b.dial_status("BUSY")  # e.g. Answer() then a Dial that got busy
    assert b.ended(T0 + 3).disposition is Disposition.ANSWERED


def test_location_follows_dialplan_until_answer() -> None:
    b = builder()
    b.location("s", "ivr")
    assert (b.dst, b.dcontext) == ("s", "ivr")
    b.answered(T0)
    b.location("2", "sales")
    cdr = b.ended(T0)
    assert (cdr.dst, cdr.dcontext) == ("s", "ivr")
    assert (cdr.duration, cdr.billsec) == (0, 0)


def test_ends_once_and_clock_never_goes_back() -> None:
    b = builder()
    cdr = b.ended(T0 - 5)  # a clock step backwards gives 0, not a negative duration
    assert cdr.end == T0
    assert cdr.duration == 0
    with pytest.raises(CdrError):
        b.ended(T0 + 1)


@pytest.mark.parametrize(
    ("word", "flag"),
    [("billing", AmaFlags.BILLING), ("bill", AmaFlags.BILLING), ("omit", AmaFlags.OMIT),
     ("documentation", AmaFlags.DOCUMENTATION), ("default", AmaFlags.DOCUMENTATION)],
)  # fmt: skip
def test_amaflags_words(word: str, flag: AmaFlags) -> None:
    assert AmaFlags.parse(word) is flag


def test_format_time() -> None:
    assert record.format_time(T0, utc=True) == "2023-11-14 22:13:20"
    assert record.format_time(None) == ""


def test_format_table() -> None:
    a = Cdr(T0, T0 + 2, T0 + 12, src="1000", dst="2000", dcontext="internal",
            channel="SIP/1000-01", dstchannel="SIP/2000-02", lastapp="Dial", lastdata="SIP/2000",
            disposition=Disposition.ANSWERED)  # fmt: skip
    b = Cdr(T0, None, T0 + 3, src="1000", dst="18005551234", disposition=Disposition.BUSY)
    text = record.format_table([a, b])
    lines = text.splitlines()
    assert lines[0].split() == [
        "Call", "date", "Src", "Dst", "Context", "Dur", "Bill", "Disposition", "Channel",
        "Dst", "channel", "Last", "app",
    ]  # fmt: skip
    assert "Dial(SIP/2000)" in lines[1]
    assert lines[1].split()[2:8] == ["1000", "2000", "internal", "12", "10", "ANSWERED"]
    assert lines[2].split()[2:7] == ["1000", "18005551234", "3", "0", "BUSY"]
    assert lines[3] == "2 call records"
    col = lines[0].index("Dur")
    assert lines[1][col:].startswith("12 ")
    assert lines[2][col:].startswith("3 ")
    assert record.format_table([]).splitlines()[-1] == "0 call records"


def test_backends_registered() -> None:
    import pypbx.cdr.csvfile
    import pypbx.cdr.sqlite  # noqa: F401

    assert {"csv", "sqlite"} <= set(record.BACKENDS)
    with pytest.raises(CdrError):
        record.register_backend("csv", "again")(lambda path: None)  # type: ignore[arg-type,return-value]
