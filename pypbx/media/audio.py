"""Audio samples: ITU-T G.711 µ-law/A-law (tables built once), the PCMU↔PCMA transcoding tables,
WAV and raw sound files for Playback, tone generation with Asterisk's indications.conf tone
lists (``440+480/2000,0/4000``, ``!`` parts played once), DTMF key tones, and Goertzel DTMF
detection (ITU-T Q.24 frequencies) for ``dtmfmode=inband``.

Linear audio ("slin", as Asterisk calls it) is signed 16-bit little-endian at 8 kHz. Sound files
follow Asterisk's formats: ``.wav`` (RIFF, 8 kHz mono, 16-bit PCM or G.711), ``.ulaw``/``.pcm``,
``.alaw`` and ``.sln``/``.raw``.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from itertools import cycle, islice

from pypbx.errors import PbxError

__all__ = [
    "ALAW_DECODE",
    "ALAW_SILENCE",
    "ALAW_TO_ULAW",
    "DTMF_COLS",
    "DTMF_ROWS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "TONE_LISTS",
    "ULAW_DECODE",
    "ULAW_SILENCE",
    "ULAW_TO_ALAW",
    "AudioError",
    "DtmfDetector",
    "Encoding",
    "Sound",
    "ToneSegment",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_linear",
    "decode",
    "dtmf_frequencies",
    "dtmf_tone",
    "encode",
    "frames",
    "goertzel_power",
    "linear_to_alaw",
    "linear_to_ulaw",
    "load_sound",
    "parse_tones",
    "read_wav",
    "samples_of",
    "tone_frames",
    "tone_stream",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_linear",
]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5
_SILENCE = {"slin": b"\0\0", "ulaw": b"\xff", "alaw": b"\xd5"}  # one sample, by encoding
_BIG_ENDIAN = sys.byteorder == "big"


class AudioError(PbxError):
    """A sound file pypbx cannot play."""


class Encoding(StrEnum):
    """Sample encodings, named as Asterisk names the formats."""

    SLIN = "slin"
    ULAW = "ulaw"
    ALAW = "alaw"


# --- G.711 (ITU-T G.711 §2-§3, the classic segment algorithms) -------------------------------

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def linear_to_ulaw(sample: int) -> int:
    """One signed 16-bit sample → one µ-law octet."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _ULAW_CLIP) + _ULAW_BIAS
    exponent = magnitude.bit_length() - 8
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_to_linear(octet: int) -> int:
    """One µ-law octet → one signed 16-bit sample."""
    u = ~octet & 0xFF
    exponent = (u >> 4) & 0x07
    sample = (((u & 0x0F) << 3) + _ULAW_BIAS << exponent) - _ULAW_BIAS
    return -sample if u & 0x80 else sample


def linear_to_alaw(sample: int) -> int:
    """One signed 16-bit sample → one A-law octet (13-bit magnitude, even bits inverted)."""
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = max(0, pcm.bit_length() - 5)  # segment ends 0x1F, 0x3F, ... 0xFFF
    if seg >= 8:
        return 0x7F ^ mask
    value = seg << 4
    value |= (pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F
    return value ^ mask


def alaw_to_linear(octet: int) -> int:
    """One A-law octet → one signed 16-bit sample."""
    a = octet ^ 0x55
    value = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        value += 8
    else:
        value = (value + 0x108) << (seg - 1)
    return value if a & 0x80 else -value


ULAW_DECODE: tuple[int, ...] = tuple(ulaw_to_linear(i) for i in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(alaw_to_linear(i) for i in range(256))
# Direct G.711 transcoding, one octet to one octet: use with ``bytes.translate``.
ULAW_TO_ALAW: bytes = bytes(linear_to_alaw(s) for s in ULAW_DECODE)
ALAW_TO_ULAW: bytes = bytes(linear_to_ulaw(s) for s in ALAW_DECODE)

_ULAW_PCM: tuple[bytes, ...] = tuple(struct.pack("<h", s) for s in ULAW_DECODE)
_ALAW_PCM: tuple[bytes, ...] = tuple(struct.pack("<h", s) for s in ALAW_DECODE)


@cache
def _encode_table(law: Encoding) -> bytes:
    """65,536 octets indexed by the unsigned view of a 16-bit sample (built on first use)."""
    fn = linear_to_ulaw if law is Encoding.ULAW else linear_to_alaw
    return bytes(fn(i - 65536 if i >= 32768 else i) for i in range(65536))


def _unsigned(pcm: bytes) -> array[int]:
    if len(pcm) % 2:
        raise AudioError("16-bit audio must have an even number of octets")
    words = array("H", pcm)
    if _BIG_ENDIAN:
        words.byteswap()
    return words


def ulaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian linear audio → µ-law."""
    return bytes(map(_encode_table(Encoding.ULAW).__getitem__, _unsigned(pcm)))


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit little-endian linear audio → A-law."""
    return bytes(map(_encode_table(Encoding.ALAW).__getitem__, _unsigned(pcm)))


def ulaw_decode(data: bytes) -> bytes:
    """µ-law → 16-bit little-endian linear audio."""
    return b"".join(map(_ULAW_PCM.__getitem__, data))


def alaw_decode(data: bytes) -> bytes:
    """A-law → 16-bit little-endian linear audio."""
    return b"".join(map(_ALAW_PCM.__getitem__, data))


def samples_of(data: bytes, encoding: Encoding) -> list[int]:
    """Audio in ``encoding`` as a list of signed sample values."""
    if encoding is Encoding.ULAW:
        return [ULAW_DECODE[b] for b in data]
    if encoding is Encoding.ALAW:
        return [ALAW_DECODE[b] for b in data]
    if len(data) % 2:
        raise AudioError("16-bit audio must have an even number of octets")
    words = array("h", data)
    if _BIG_ENDIAN:
        words.byteswap()
    return words.tolist()


def decode(data: bytes, encoding: Encoding) -> bytes:
    """Audio in ``encoding`` → linear 16-bit little-endian."""
    if encoding is Encoding.ULAW:
        return ulaw_decode(data)
    if encoding is Encoding.ALAW:
        return alaw_decode(data)
    return bytes(data)


def encode(pcm: bytes, encoding: Encoding) -> bytes:
    """Linear 16-bit little-endian → audio in ``encoding``."""
    if encoding is Encoding.ULAW:
        return ulaw_encode(pcm)
    if encoding is Encoding.ALAW:
        return alaw_encode(pcm)
    return bytes(pcm)


def _convert(data: bytes, source: Encoding, target: Encoding) -> bytes:
    if source is target:
        return bytes(data)
    if source is Encoding.ULAW and target is Encoding.ALAW:
        return data.translate(ULAW_TO_ALAW)
    if source is Encoding.ALAW and target is Encoding.ULAW:
        return data.translate(ALAW_TO_ULAW)
    return encode(decode(data, source), target)


# --- sound files ------------------------------------------------------------------------------

_WAV_FORMATS = {1: Encoding.SLIN, 6: Encoding.ALAW, 7: Encoding.ULAW}
_WAV_EXTENSIBLE = 0xFFFE
_RAW_EXTENSIONS = {
    "ulaw": Encoding.ULAW,
    "ul": Encoding.ULAW,
    "pcm": Encoding.ULAW,
    "alaw": Encoding.ALAW,
    "al": Encoding.ALAW,
    "sln": Encoding.SLIN,
    "raw": Encoding.SLIN,
}


@dataclass(frozen=True, slots=True)
class Sound:
    """Decoded-enough audio: samples in one encoding at 8 kHz mono."""

    encoding: Encoding
    data: bytes

    @property
    def samples(self) -> int:
        """Number of samples."""
        return len(self.data) // 2 if self.encoding is Encoding.SLIN else len(self.data)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples / SAMPLE_RATE

    def to(self, encoding: Encoding) -> bytes:
        """The samples in another encoding."""
        return _convert(self.data, self.encoding, encoding)


def read_wav(data: bytes) -> Sound:
    """A RIFF/WAVE file (8 kHz mono; 16-bit PCM, µ-law or A-law) → :class:`Sound`."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise AudioError("short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _WAV_EXTENSIBLE and len(body) >= 26:
                (tag,) = struct.unpack_from("<H", body, 24)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("data chunk before fmt chunk")
            return Sound(_wav_encoding(*fmt), bytes(body) if fmt[0] != 1 else body[: size & ~1])
        offset += 8 + size + (size & 1)
    raise AudioError("no data chunk")


def _wav_encoding(tag: int, channels: int, rate: int, bits: int) -> Encoding:
    encoding = _WAV_FORMATS.get(tag)
    if encoding is None:
        raise AudioError(f"unsupported WAV format tag {tag}")
    if channels != 1 or rate != SAMPLE_RATE:
        raise AudioError(f"WAV must be 8000 Hz mono, not {rate} Hz x{channels}")
    if bits != (16 if encoding is Encoding.SLIN else 8):
        raise AudioError(f"unsupported {bits}-bit {encoding} WAV")
    return encoding


def load_sound(name: str, data: bytes) -> Sound:
    """A sound file's bytes → :class:`Sound`, the format chosen by the file name's extension."""
    ext = name.rpartition(".")[2].lower()
    if ext == "wav":
        return read_wav(data)
    encoding = _RAW_EXTENSIONS.get(ext)
    if encoding is None:
        raise AudioError(f"unknown sound format {ext!r}")
    if encoding is Encoding.SLIN and len(data) % 2:
        data = data[:-1]
    return Sound(encoding, bytes(data))


def frames(sound: Sound, encoding: Encoding, samples: int = FRAME_SAMPLES) -> Iterator[bytes]:
    """The sound in ``encoding`` cut into frames of ``samples``, the last padded with silence."""
    data = sound.to(encoding)
    width = 2 if encoding is Encoding.SLIN else 1
    step = samples * width
    silence = {Encoding.SLIN: b"\0\0", Encoding.ULAW: b"\xff", Encoding.ALAW: b"\xd5"}[encoding]
    for start in range(0, len(data), step):
        chunk = data[start : start + step]
        if len(chunk) < step:
            chunk += silence * ((step - len(chunk)) // width)
        yield chunk


# --- tones ------------------------------------------------------------------------------------


def tone_frames(
    frequencies: Sequence[float],
    *,
    amplitude: int = 8000,
    samples: int = FRAME_SAMPLES,
    rate: int = SAMPLE_RATE,
) -> Iterator[bytes]:
    """Endless phase-continuous frames (16-bit linear) of the sum of sines at ``frequencies``.

    ``amplitude`` is the peak of each sine; the sum is clipped to 16 bits.
    """
    steps = [2.0 * math.pi * f / rate for f in frequencies]
    n = 0
    while True:
        frame = array("h")
        for i in range(n, n + samples):
            value = sum(math.sin(step * i) for step in steps) * amplitude
            frame.append(max(-32768, min(32767, round(value))))
        n += samples
        if _BIG_ENDIAN:
            frame.byteswap()
        yield frame.tobytes()


# --- indication tones (Asterisk indications.conf, country "us") ---------------------------

TONE_LISTS: dict[str, str] = {
    "dial": "350+440",
    "busy": "480+620/500,0/500",
    "ring": "440+480/2000,0/4000",
    "congestion": "480+620/250,0/250",
    "callwaiting": "440/300,0/10000",
    "dialrecall": "!350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440",
    "record": "1400/500,0/15000",
    "info": "!950/330,!1400/330,!1800/330,0",
    "stutter": "!350+440/100,!0/100,!350+440/100,!0/100,!350+440/100,!0/100,350+440",
}


@dataclass(frozen=True, slots=True)
class ToneSegment:
    """One part of a tone list: the summed frequencies (none = silence), its length in ms
    (None = until stopped) and whether it plays once only (``!``)."""

    frequencies: tuple[float, ...]
    ms: int | None
    once: bool = False


def parse_tones(spec: str) -> list[ToneSegment]:
    """A tone name (``busy``) or list (``!950/330,440+480/2000,0/4000``) → segments.

    ``f1*f2`` (modulation) is played as ``f1+f2``. Raises ValueError on a malformed list.
    """
    text = TONE_LISTS.get(spec.strip().lower(), spec)
    out: list[ToneSegment] = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        once = item.startswith("!")
        freqs, _, length = item.lstrip("!").partition("/")
        ms = int(length) if length.strip() else None
        values = tuple(float(f) for f in freqs.replace("*", "+").split("+") if f.strip())
        if (ms is not None and ms < 0) or any(not 0 <= f < 4000 for f in values):
            raise ValueError(f"bad tone segment {item!r}")
        out.append(ToneSegment(tuple(f for f in values if f > 0), ms or None, once))
    if not out:
        raise ValueError(f"empty tone list {spec!r}")
    return out


@lru_cache(maxsize=64)
def _segment_frames(segment: ToneSegment, encoding: Encoding) -> tuple[bytes, ...]:
    """The frames of one segment (one second of them when it lasts until stopped)."""
    count = 50 if segment.ms is None else max(1, -(-segment.ms // 20))
    if not segment.frequencies:
        return (_SILENCE[encoding] * FRAME_SAMPLES,) * count
    amplitude = 6000 // len(segment.frequencies)
    pcm = islice(tone_frames(segment.frequencies, amplitude=amplitude), count)
    return tuple(encode(f, encoding) for f in pcm)


def tone_stream(segments: Sequence[ToneSegment], encoding: Encoding) -> Iterator[bytes]:
    """20 ms frames of a tone list: the parts in order, then again from the first part
    without ``!``; a part without a length plays forever; all-``!`` lists end."""
    repeat = next((i for i, s in enumerate(segments) if not s.once), None)
    first = True
    while first or repeat is not None:
        start = 0 if first else (repeat or 0)
        first = False
        for segment in segments[start:]:
            chunk = _segment_frames(segment, encoding)
            if segment.ms is None:
                yield from cycle(chunk)
            yield from chunk


def dtmf_tone(digit: str, encoding: Encoding, *, ms: int = 120, gap_ms: int = 40) -> list[bytes]:
    """20 ms frames of a DTMF key's two tones for ``ms``, then ``gap_ms`` of silence
    (``dtmfmode=inband``; -9 dBm0-ish per tone as Asterisk's generator)."""
    tone = tone_frames(dtmf_frequencies(digit), amplitude=5000)
    out = [encode(f, encoding) for f in islice(tone, max(1, ms // 20))]
    return out + [_SILENCE[encoding] * FRAME_SAMPLES] * (gap_ms // 20)


# --- DTMF detection (Goertzel) ----------------------------------------------------------------

DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYS = ("123A", "456B", "789C", "*0#D")
_BLOCK = 205  # the classic 8 kHz DTMF block: bins fall close to the eight frequencies


def dtmf_frequencies(digit: str) -> tuple[float, float]:
    """The (row, column) frequencies of a DTMF key (ITU-T Q.23); ValueError if not a key."""
    key = digit.upper()
    for r, row in enumerate(_KEYS):
        c = row.find(key) if len(key) == 1 else -1
        if c >= 0:
            return DTMF_ROWS[r], DTMF_COLS[c]
    raise ValueError(f"not a DTMF key: {digit!r}")


def goertzel_power(samples: Sequence[float], frequency: float, rate: int = SAMPLE_RATE) -> float:
    """Squared magnitude of ``frequency`` in ``samples`` (a sine of peak A gives ≈ (A·N/2)²)."""
    coeff = 2.0 * math.cos(2.0 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


class DtmfDetector:
    """Streaming DTMF detector on 8 kHz linear samples (``dtmfmode=inband``).

    Each 205-sample block is classified: one row and one column tone carry most of the block's
    energy, neither dominated by another tone of its group, within the twist limits. A digit is
    reported once, when two blocks in a row agree, and again only after a block without it.
    """

    __slots__ = ("_buffer", "_current", "_last_block", "min_level")

    def __init__(self, *, min_level: float = 100.0) -> None:
        self.min_level = min_level  # RMS below which a block is silence
        self._buffer: list[int] = []
        self._last_block: str | None = None
        self._current: str | None = None

    def feed(self, samples: Sequence[int]) -> list[str]:
        """Add samples; return the digits that started in them."""
        self._buffer.extend(samples)
        found: list[str] = []
        while len(self._buffer) >= _BLOCK:
            block, self._buffer = self._buffer[:_BLOCK], self._buffer[_BLOCK:]
            digit = self._classify(block)
            if digit != self._current:
                self._current = None
            if digit is not None and digit == self._last_block and self._current is None:
                self._current = digit
                found.append(digit)
            self._last_block = digit
        return found

    def _classify(self, block: Sequence[int]) -> str | None:
        energy = float(sum(x * x for x in block))
        if energy < self.min_level**2 * len(block):
            return None
        norm = energy * len(block) / 2.0  # a pure sine exactly on a bin gives power/norm = 1
        rows = [goertzel_power(block, f) / norm for f in DTMF_ROWS]
        cols = [goertzel_power(block, f) / norm for f in DTMF_COLS]
        r = max(range(4), key=rows.__getitem__)
        c = max(range(4), key=cols.__getitem__)
        row, col = rows[r], cols[c]
        if row + col < 0.6 or row < 0.1 or col < 0.1:
            return None
        if not 0.16 <= col / row <= 6.3:  # reverse twist 8 dB, normal twist 8 dB
            return None
        if any(p > row * 0.16 for i, p in enumerate(rows) if i != r):
            return None
        if any(p > col * 0.16 for i, p in enumerate(cols) if i != c):
            return None
        return _KEYS[r][c]
