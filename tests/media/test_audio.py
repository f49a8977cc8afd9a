"""G.711, transcoding tables, sound files, tones and Goertzel DTMF detection."""

from __future__ import annotations

import math
import struct
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pypbx.media import audio
from pypbx.media.audio import AudioError, DtmfDetector, Encoding, Sound


# Known G.711 values (ITU-T G.711 tables; 0xFF/0xD5 are the silence codes).
@pytest.mark.parametrize(
    ("octet", "linear"),
    [
        (0xFF, 0),
        (0x7F, 0),
        (0xFE, 8),
        (0x80, 32124),
        (0x00, -32124),
        (0xF0, 120),
        (0xCE, 988),
        (0xC0, 1884),
    ],
)
def test_ulaw_decode_known(octet: int, linear: int) -> None:
    assert audio.ulaw_to_linear(octet) == linear
    assert audio.ULAW_DECODE[octet] == linear


@pytest.mark.parametrize(
    ("octet", "linear"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_alaw_decode_known(octet: int, linear: int) -> None:
    assert audio.alaw_to_linear(octet) == linear


@pytest.mark.parametrize(
    ("linear", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7F, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (1000, 0xCE, 0xFA),
    ],
)
def test_encode_known(linear: int, ulaw: int, alaw: int) -> None:
    assert audio.linear_to_ulaw(linear) == ulaw
    assert audio.linear_to_alaw(linear) == alaw


@pytest.mark.parametrize("octet", range(256))
def test_decode_then_encode_is_identity(octet: int) -> None:
    assert audio.linear_to_alaw(audio.alaw_to_linear(octet)) == octet
    # µ-law has two zeros (0xFF and 0x7F); the encoder picks +0.
    assert audio.linear_to_ulaw(audio.ulaw_to_linear(octet)) == (0xFF if octet == 0x7F else octet)


@given(st.integers(-32768, 32767))
def test_quantisation_error_is_bounded(sample: int) -> None:
    # G.711 keeps 4 mantissa bits: error below 1/16 of the magnitude plus the smallest step.
    for enc, dec in (
        (audio.linear_to_ulaw, audio.ulaw_to_linear),
        (audio.linear_to_alaw, audio.alaw_to_linear),
    ):
        back = dec(enc(sample))
        assert abs(back - sample) <= abs(sample) / 16 + 16 or abs(sample) > 32000
        assert (back >= 0) == (sample >= 0) or abs(sample) < 8


def test_bulk_codec_matches_per_sample() -> None:
    samples = list(range(-32768, 32768, 97))
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    ulaw, alaw = audio.ulaw_encode(pcm), audio.alaw_encode(pcm)
    assert list(ulaw) == [audio.linear_to_ulaw(s) for s in samples]
    assert list(alaw) == [audio.linear_to_alaw(s) for s in samples]
    assert audio.ulaw_decode(ulaw) == struct.pack(
        f"<{len(samples)}h", *(audio.ulaw_to_linear(b) for b in ulaw)
    )
    assert audio.samples_of(alaw, Encoding.ALAW) == [audio.alaw_to_linear(b) for b in alaw]
    assert audio.samples_of(pcm, Encoding.SLIN) == samples
    with pytest.raises(AudioError):
        audio.ulaw_encode(b"\0")


def test_transcoding_tables() -> None:
    assert len(audio.ULAW_TO_ALAW) == len(audio.ALAW_TO_ULAW) == 256
    assert audio.ULAW_TO_ALAW[audio.ULAW_SILENCE] == audio.ALAW_SILENCE
    assert audio.ALAW_TO_ULAW[audio.ALAW_SILENCE] == 0xFE  # +8 is µ-law's 0xFE exactly
    for octet in range(256):
        u = audio.ulaw_to_linear(octet)
        a = audio.alaw_to_linear(audio.ULAW_TO_ALAW[octet])
        assert abs(a - u) <= max(16, abs(u) // 16)


def _dominant_frequency(samples: list[int], rate: int = 8000) -> float:
    candidates = range(200, 3800, 10)
    return max(candidates, key=lambda f: audio.goertzel_power(samples, f, rate))


def test_tone_frames_are_phase_continuous_and_right_frequency() -> None:
    frames = list(islice(audio.tone_frames([1000.0], amplitude=10000), 5))
    assert all(len(f) == 320 for f in frames)
    samples = audio.samples_of(b"".join(frames), Encoding.SLIN)
    expected = [round(10000 * math.sin(2 * math.pi * 1000 * i / 8000)) for i in range(800)]
    assert samples == expected
    assert _dominant_frequency(samples) == 1000


def _wav(tag: int, bits: int, body: bytes, rate: int = 8000, channels: int = 1) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * bits // 8, bits // 8, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd chunk: padded
    chunks += b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(
    ("tag", "bits", "body", "encoding"),
    [
        (1, 16, struct.pack("<3h", 0, 1000, -1000), Encoding.SLIN),
        (7, 8, b"\xff\x80\x00", Encoding.ULAW),
        (6, 8, b"\xd5\xaa", Encoding.ALAW),
    ],
)
def test_read_wav(tag: int, bits: int, body: bytes, encoding: Encoding) -> None:
    sound = audio.read_wav(_wav(tag, bits, body))
    assert sound == Sound(encoding, body)
    assert sound.samples == len(body) * 8 // bits


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFX....WAVE", "RIFF"),
        (_wav(1, 16, b"", rate=16000), "8000 Hz"),
        (_wav(1, 16, b"", channels=2), "mono"),
        (_wav(3, 32, b""), "format tag 3"),
        (_wav(1, 8, b""), "8-bit"),
        (b"RIFF\0\0\0\0WAVE", "no data"),
    ],
)
def test_read_wav_rejects(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        audio.read_wav(data)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("a.ulaw", Encoding.ULAW),
        ("b.PCM", Encoding.ULAW),
        ("c.alaw", Encoding.ALAW),
        ("d.sln", Encoding.SLIN),
    ],
)
def test_load_raw_sound(name: str, encoding: Encoding) -> None:
    assert audio.load_sound(name, b"\x01\x02").encoding is encoding
    with pytest.raises(AudioError):
        audio.load_sound("x.mp3", b"")


def test_frames_pad_last_with_silence_and_transcode() -> None:
    sound = Sound(Encoding.ULAW, b"\x00" * 200)
    out = list(audio.frames(sound, Encoding.ALAW))
    assert [len(f) for f in out] == [160, 160]
    assert out[1][40:] == b"\xd5" * 120
    assert out[0] == bytes([audio.ULAW_TO_ALAW[0]]) * 160
    assert sound.duration == 0.025
    slin = list(audio.frames(sound, Encoding.SLIN))
    assert [len(f) for f in slin] == [320, 320]
    assert slin[1][80:] == b"\0" * 240


DIGIT_TONES = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


def _signal(plan: list[tuple[str | None, int]], amplitude: int = 5000) -> list[int]:
    """(digit or None for silence, number of 20 ms frames) → samples through µ-law."""
    out: list[int] = []
    for digit, count in plan:
        freqs = [float(f) for f in DIGIT_TONES[digit]] if digit else []
        pcm = b"".join(islice(audio.tone_frames(freqs, amplitude=amplitude), count))
        out += audio.samples_of(audio.ulaw_encode(pcm), Encoding.ULAW)
    return out


@pytest.mark.parametrize("digit", sorted(DIGIT_TONES))
def test_goertzel_detects_every_digit(digit: str) -> None:
    assert DtmfDetector().feed(_signal([(None, 2), (digit, 4), (None, 2)])) == [digit]


def test_goertzel_sequence_held_and_repeated_digits() -> None:
    plan: list[tuple[str | None, int]] = [("1", 10), (None, 3), ("1", 3), ("2", 4), (None, 2)]
    plan += [("#", 5)]
    detector = DtmfDetector()
    samples = _signal(plan)
    found = []
    for start in range(0, len(samples), 160):  # streaming in 20 ms chunks
        found += detector.feed(samples[start : start + 160])
    assert found == ["1", "1", "2", "#"]


@pytest.mark.parametrize(
    "freqs",
    [[1000.0], [697.0], [697.0, 770.0], [350.0, 440.0], [1209.0, 1336.0], []],
)
def test_goertzel_ignores_non_dtmf(freqs: list[float]) -> None:
    pcm = b"".join(islice(audio.tone_frames(freqs, amplitude=6000), 20))
    assert DtmfDetector().feed(audio.samples_of(pcm, Encoding.SLIN)) == []


def test_goertzel_rejects_strong_twist_and_quiet_signal() -> None:
    row = audio.samples_of(
        b"".join(islice(audio.tone_frames([697.0], amplitude=8000), 10)), Encoding.SLIN
    )
    col = audio.samples_of(
        b"".join(islice(audio.tone_frames([1209.0], amplitude=1000), 10)), Encoding.SLIN
    )
    assert DtmfDetector().feed([a + b for a, b in zip(row, col, strict=True)]) == []
    assert DtmfDetector().feed(_signal([("5", 10)], amplitude=50)) == []


@given(st.binary(max_size=200))
def test_read_wav_fuzz_raises_only_audio_error(data: bytes) -> None:
    try:
        sound = audio.read_wav(b"RIFF\0\0\0\0WAVE" + data)
    except AudioError:
        return
    assert sound.encoding in Encoding


@given(st.lists(st.integers(-32768, 32767), max_size=1200))
def test_detector_never_fails_on_noise(samples: list[int]) -> None:
    found = DtmfDetector().feed(samples)
    assert all(d in "0123456789*#ABCD" for d in found)


# --- indication tones and DTMF key tones ---------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "segments"),
    [
        ("busy", [audio.ToneSegment((480.0, 620.0), 500), audio.ToneSegment((), 500)]),
        ("Ring", [audio.ToneSegment((440.0, 480.0), 2000), audio.ToneSegment((), 4000)]),
        ("dial", [audio.ToneSegment((350.0, 440.0), None)]),
        ("!950/330,0", [audio.ToneSegment((950.0,), 330, True), audio.ToneSegment((), None)]),
        ("425*50/1000", [audio.ToneSegment((425.0, 50.0), 1000)]),
    ],
)
def test_parse_tones(spec: str, segments: list[audio.ToneSegment]) -> None:
    assert audio.parse_tones(spec) == segments


@pytest.mark.parametrize("spec", ["", "abc", "440/-5", "9000/100", "440/x"])
def test_parse_tones_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        audio.parse_tones(spec)


def test_every_named_tone_parses() -> None:
    for name in audio.TONE_LISTS:
        assert audio.parse_tones(name)


def test_busy_cadence_frames() -> None:
    frames = [
        audio.samples_of(f, Encoding.ULAW)
        for f in islice(audio.tone_stream(audio.parse_tones("busy"), Encoding.ULAW), 100)
    ]
    loud = [max(abs(s) for s in f) > 1000 for f in frames]
    assert loud == ([True] * 25 + [False] * 25) * 2
    first = [s for f in frames[:25] for s in f]
    powers = {hz: audio.goertzel_power(first, hz) for hz in (350.0, 480.0, 620.0, 1000.0)}
    assert min(powers[480.0], powers[620.0]) > 100 * max(powers[350.0], powers[1000.0])


def test_once_only_parts_do_not_repeat() -> None:
    stream = audio.tone_stream(audio.parse_tones("!1000/100,!0/40"), Encoding.ALAW)
    assert len(list(stream)) == 5 + 2
    repeating = islice(audio.tone_stream(audio.parse_tones("!1000/40,0/20"), Encoding.ULAW), 6)
    loud = [max(abs(s) for s in audio.samples_of(f, Encoding.ULAW)) > 1000 for f in repeating]
    assert loud == [True, True, False, False, False, False]


@pytest.mark.parametrize("key", list("0123456789*#ABCD"))
@pytest.mark.parametrize("encoding", [Encoding.ULAW, Encoding.ALAW])
def test_dtmf_tone_is_detected_as_its_key(key: str, encoding: Encoding) -> None:
    frames = audio.dtmf_tone(key, encoding)
    assert len(frames) == 6 + 2
    detector = DtmfDetector()
    assert detector.feed(audio.samples_of(b"".join(frames), encoding)) == [key]


@pytest.mark.parametrize(("key", "pair"), [("1", (697.0, 1209.0)), ("d", (941.0, 1633.0))])
def test_dtmf_frequencies(key: str, pair: tuple[float, float]) -> None:
    assert audio.dtmf_frequencies(key) == pair


@pytest.mark.parametrize("bad", ["", "x", "12", "!"])
def test_dtmf_frequencies_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="DTMF key"):
        audio.dtmf_frequencies(bad)
