"""SDP for pypbx: the RFC 4566 model and parser (:mod:`pypbx.sip.sdp_model`) and RFC 3264
offer/answer (:mod:`pypbx.sip.sdp_offer`) under one name.
"""

from __future__ import annotations

from pypbx.sip.sdp_model import (
    Attribute,
    Bandwidth,
    Connection,
    Line,
    Media,
    NotAcceptable,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    connection_for,
    parse_sdp,
)
from pypbx.sip.sdp_offer import (
    ASTERISK_CODECS,
    STATIC_PAYLOAD_TYPES,
    TELEPHONE_EVENT,
    Codec,
    Direction,
    build_answer,
    build_offer,
    codec_for,
    codecs,
    direction,
    is_hold,
    negotiate,
    rewrite_connection,
    telephone_event,
)

__all__ = [
    "ASTERISK_CODECS",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "Line",
    "Media",
    "NotAcceptable",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Timing",
    "build_answer",
    "build_offer",
    "codec_for",
    "codecs",
    "connection_for",
    "direction",
    "is_hold",
    "negotiate",
    "parse_sdp",
    "rewrite_connection",
    "telephone_event",
]
