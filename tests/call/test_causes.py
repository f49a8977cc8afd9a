"""SIP ↔ Q.850 tables as chan_sip's hangup_sip2cause / hangup_cause2sip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.call.causes import cause_to_sip, dialstatus_for_cause, sip_to_cause
from pypbx.dialplan.channel_api import DialStatus, HangupCause


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (404, HangupCause.UNALLOCATED),
        (486, HangupCause.USER_BUSY),
        (600, HangupCause.USER_BUSY),
        (480, HangupCause.NO_ANSWER),
        (408, HangupCause.NO_USER_RESPONSE),
        (503, HangupCause.NORMAL_CIRCUIT_CONGESTION),
        (603, HangupCause.CALL_REJECTED),
        (488, HangupCause.BEARERCAPABILITY_NOTAVAIL),
        (484, HangupCause.INVALID_NUMBER_FORMAT),
        (499, HangupCause.INTERWORKING),  # unlisted 4xx
        (599, HangupCause.NORMAL_CIRCUIT_CONGESTION),  # unlisted 5xx
        (699, HangupCause.INTERWORKING),
    ],
)
def test_sip_to_cause(status: int, cause: HangupCause) -> None:
    assert sip_to_cause(status) == cause


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        (HangupCause.USER_BUSY, 486),
        (HangupCause.UNALLOCATED, 404),
        (HangupCause.NO_ANSWER, 480),
        (HangupCause.NORMAL_CIRCUIT_CONGESTION, 503),
        (HangupCause.CALL_REJECTED, 403),
        (HangupCause.NORMAL_CLEARING, 603),  # no mapping: Declined
        (HangupCause.NOTDEFINED, 603),
    ],
)
def test_cause_to_sip(cause: HangupCause, status: int) -> None:
    assert cause_to_sip(cause)[0] == status


@pytest.mark.parametrize(
    ("status", "dialstatus"),
    [
        (486, DialStatus.BUSY),
        (600, DialStatus.BUSY),
        (503, DialStatus.CONGESTION),
        (480, DialStatus.NOANSWER),
        (408, DialStatus.NOANSWER),
        (404, DialStatus.CHANUNAVAIL),
        (403, DialStatus.CHANUNAVAIL),
    ],
)
def test_dialstatus_of_a_failed_leg(status: int, dialstatus: DialStatus) -> None:
    assert dialstatus_for_cause(sip_to_cause(status)) is dialstatus


@given(st.integers(min_value=400, max_value=699))
def test_every_failure_maps_to_a_failure_and_back(status: int) -> None:
    cause = sip_to_cause(status)
    assert cause != HangupCause.NORMAL_CLEARING
    back, reason = cause_to_sip(cause)
    assert 400 <= back < 700
    assert reason
