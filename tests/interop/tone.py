"""A small stdlib FFT tone checker for recordings: dominant frequency, share of the
spectral power near it, and how many seconds are not silent."""

from __future__ import annotations

import cmath
import math
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

N = 4096


def _fft(x: list[complex]) -> list[complex]:
    n = len(x)
    if n == 1:
        return x
    even, odd = _fft(x[0::2]), _fft(x[1::2])
    out = [0j] * n
    for k in range(n // 2):
        t = cmath.exp(-2j * math.pi * k / n) * odd[k]
        out[k], out[k + n // 2] = even[k] + t, even[k] - t
    return out


@dataclass(frozen=True)
class Tone:
    dominant_hz: float
    peak_share: float
    active_s: float
    total_s: float


def read_mono(path: Path) -> tuple[list[float], int]:
    with wave.open(str(path), "rb") as w:
        rate, width, chans = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit audio")
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    return [float(s) for s in samples[::chans]], rate


def analyse(path: Path) -> Tone:
    """Average power spectrum over the loud windows; active = 20 ms frames above -40 dBFS."""
    x, rate = read_mono(path)
    frame = rate // 50
    active = sum(
        1
        for i in range(0, len(x) - frame + 1, frame)
        if math.sqrt(sum(v * v for v in x[i : i + frame]) / frame) > 327.0
    )
    power = [0.0] * (N // 2)
    windows = 0
    for start in range(0, len(x) - N + 1, N):
        chunk = x[start : start + N]
        if max(abs(v) for v in chunk) < 500:
            continue
        hann = [c * (0.5 - 0.5 * math.cos(2 * math.pi * i / (N - 1))) for i, c in enumerate(chunk)]
        spec = _fft([complex(v) for v in hann])
        for k in range(1, N // 2):
            power[k] += abs(spec[k]) ** 2
        windows += 1
        if windows >= 6:
            break
    total = sum(power) or 1.0
    peak = max(range(N // 2), key=lambda k: power[k])
    band = sum(power[max(0, peak - 4) : peak + 5])
    return Tone(peak * rate / N, band / total, active * frame / rate, len(x) / rate)


def has_tone(path: Path, hz: float, *, tol: float = 15.0, min_share: float = 0.5) -> bool:
    t = analyse(path)
    return abs(t.dominant_hz - hz) <= tol and t.peak_share >= min_share
