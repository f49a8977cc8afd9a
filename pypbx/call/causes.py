"""SIP responses ↔ Q.850 hangup causes, as chan_sip's ``hangup_sip2cause`` and
``hangup_cause2sip`` map them (RFC 3398 §7.2.4.1 and §8.2.6.1 are the model both follow),
and the ``DIALSTATUS`` a failed leg's cause gives (app_dial ``handle_cause``).
"""

from __future__ import annotations

from pypbx.dialplan.channel_api import DialStatus
from pypbx.dialplan.channel_api import HangupCause as C

__all__ = ["SIP_TO_CAUSE", "cause_to_sip", "dialstatus_for_cause", "sip_to_cause"]

#: chan_sip hangup_sip2cause: a final response to our INVITE → the cause of that leg.
SIP_TO_CAUSE: dict[int, C] = {
    401: C.CALL_REJECTED,
    403: C.CALL_REJECTED,
    404: C.UNALLOCATED,
    405: C.INTERWORKING,
    407: C.CALL_REJECTED,
    408: C.NO_USER_RESPONSE,
    409: C.NORMAL_TEMPORARY_FAILURE,
    410: C.NUMBER_CHANGED,
    411: C.INTERWORKING,
    413: C.INTERWORKING,
    414: C.INTERWORKING,
    415: C.INTERWORKING,
    420: C.NO_ROUTE_DESTINATION,
    480: C.NO_ANSWER,
    481: C.INTERWORKING,
    482: C.INTERWORKING,
    483: C.NO_ANSWER,
    484: C.INVALID_NUMBER_FORMAT,
    485: C.UNALLOCATED,
    486: C.USER_BUSY,
    487: C.INTERWORKING,
    488: C.BEARERCAPABILITY_NOTAVAIL,
    491: C.INTERWORKING,
    493: C.INTERWORKING,
    500: C.NETWORK_OUT_OF_ORDER,
    501: C.FACILITY_REJECTED,
    502: C.DESTINATION_OUT_OF_ORDER,
    503: C.NORMAL_CIRCUIT_CONGESTION,
    504: C.RECOVERY_ON_TIMER_EXPIRE,
    505: C.INTERWORKING,
    600: C.USER_BUSY,
    603: C.CALL_REJECTED,
    604: C.UNALLOCATED,
    606: C.BEARERCAPABILITY_NOTAVAIL,
}

#: chan_sip hangup_cause2sip: the cause a channel hung up with → the response to its INVITE.
_CAUSE_TO_SIP: dict[int, tuple[int, str]] = {
    C.UNALLOCATED: (404, "Not Found"),
    C.NO_ROUTE_DESTINATION: (404, "Not Found"),
    C.NO_ROUTE_TRANSIT_NET: (404, "Not Found"),
    C.NORMAL_CIRCUIT_CONGESTION: (503, "Service Unavailable"),
    C.SWITCH_CONGESTION: (503, "Service Unavailable"),
    C.NO_USER_RESPONSE: (408, "Request Timeout"),
    C.NO_ANSWER: (480, "Temporarily Unavailable"),
    C.SUBSCRIBER_ABSENT: (480, "Temporarily Unavailable"),
    C.CALL_REJECTED: (403, "Forbidden"),
    C.NUMBER_CHANGED: (410, "Gone"),
    C.NORMAL_UNSPECIFIED: (480, "Temporarily Unavailable"),
    C.INVALID_NUMBER_FORMAT: (484, "Address Incomplete"),
    C.USER_BUSY: (486, "Busy Here"),
    C.NETWORK_OUT_OF_ORDER: (500, "Server Internal Failure"),
    C.FACILITY_REJECTED: (501, "Not Implemented"),
    C.CHAN_NOT_IMPLEMENTED: (503, "Service Unavailable"),
    C.DESTINATION_OUT_OF_ORDER: (502, "Bad Gateway"),
    C.BEARERCAPABILITY_NOTAVAIL: (488, "Not Acceptable Here"),
    C.INTERWORKING: (500, "Network Error"),
}


def sip_to_cause(status: int) -> int:
    """The Q.850 cause for a final response (chan_sip's defaults for unlisted codes)."""
    cause = SIP_TO_CAUSE.get(status)
    if cause is not None:
        return int(cause)
    if 400 <= status < 500 or 600 <= status < 700:
        return int(C.INTERWORKING)
    if 500 <= status < 600:
        return int(C.NORMAL_CIRCUIT_CONGESTION)
    return int(C.NORMAL_CLEARING)


def cause_to_sip(cause: int) -> tuple[int, str]:
    """The response an unanswered incoming INVITE gets for ``cause`` (603 Declined when
    chan_sip has no mapping, as sip_hangup does)."""
    return _CAUSE_TO_SIP.get(cause, (603, "Declined"))


def dialstatus_for_cause(cause: int) -> DialStatus:
    """What one failed leg says about the dial: busy, congestion, no answer, or no channel."""
    if cause == C.USER_BUSY:
        return DialStatus.BUSY
    if cause in (C.NORMAL_CIRCUIT_CONGESTION, C.SWITCH_CONGESTION):
        return DialStatus.CONGESTION
    if cause in (C.NO_ANSWER, C.NORMAL_CLEARING, C.NO_USER_RESPONSE):
        return DialStatus.NOANSWER
    return DialStatus.CHANUNAVAIL
