"""The per-leg media engine, driven without sockets: a fake clock paces the sending, RTP
packets are fed by hand, and sound files are written to a temporary sounddir."""

from __future__ import annotations

import asyncio
import math
import random
import struct
import textwrap
import wave
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pypbx.call.bridge import EventTap, InbandTap, digit_ms
from pypbx.call.channel import ChannelNamer, ChannelState, ChannelTable
from pypbx.call.media_ops import (
    EventSender,
    MediaEngine,
    MediaFormat,
    Played,
    SoundLibrary,
    choose_format,
    hold_music,
    info_body,
    info_digit,
    info_status,
)
from pypbx.call.sip_channel import SipChannel
from pypbx.call.sip_env import CallEnv
from pypbx.config.conf import parse_text
from pypbx.dialplan.channel_api import RecordingChannel
from pypbx.dialplan.interpreter import Execution
from pypbx.dialplan.parser import parse_dialplan
from pypbx.media.audio import (
    DtmfDetector,
    Encoding,
    alaw_encode,
    goertzel_power,
    samples_of,
    tone_frames,
    ulaw_encode,
)
from pypbx.media.dtmf import DtmfBegan, DtmfReceiver, digit_packets
from pypbx.media.rtp import RtpPacket, parse_rtp
from pypbx.sip.sdp import Codec

T = TypeVar("T")
ULAW = MediaFormat(Encoding.ULAW, 0, frozenset({101}))
ALAW = MediaFormat(Encoding.ALAW, 8, frozenset({101}))


class FakeTime:
    """A clock that moves only when the engine sleeps; ``hooks[k]`` runs at the k-th sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps = 0
        self.hooks: dict[int, Callable[[], None]] = {}

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        hook = self.hooks.pop(self.sleeps, None)
        if hook is not None:
            hook()
        await asyncio.sleep(0)


class FakeLeg:
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock
        self.sent: list[tuple[float, RtpPacket]] = []

    def send(self, data: bytes) -> bool:
        self.sent.append((self.clock.now, parse_rtp(data)))
        return True


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_engine(
    tmp_path: Path, fmt: MediaFormat | None = ULAW, *, inband: bool = False
) -> tuple[MediaEngine, FakeLeg, FakeTime]:
    clock = FakeTime()
    leg = FakeLeg(clock)
    engine = MediaEngine(
        leg,
        fmt,
        ssrc=0x1234,
        sounds=SoundLibrary(tmp_path),
        inband=inband,
        name="SIP/1000-00000001",
        clock=clock,
        sleep=clock.sleep,
    )
    return engine, leg, clock


def write_wav(path: Path, hz: float, seconds: float) -> Path:
    n = round(8000 * seconds)
    pcm = b"".join(
        struct.pack("<h", round(10000 * math.sin(2 * math.pi * hz * i / 8000))) for i in range(n)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return path


def dominant(samples: list[int], candidates: tuple[float, ...]) -> float:
    return max(candidates, key=lambda f: goertzel_power(samples, f))


def rtp(pt: int, seq: int, ts: int, payload: bytes, *, marker: bool = False) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, ts, 0xCAFE, payload, marker).to_bytes()


def event_packets(digits: str, pt: int = 101) -> list[bytes]:
    """RFC 4733 trains for ``digits`` as a phone sends them (end packet three times)."""
    out: list[bytes] = []
    seq, ts = 1, 8000
    for digit in digits:
        for planned in digit_packets(digit, timestamp=ts, duration=0.1):
            out.append(rtp(pt, seq, planned.timestamp, planned.payload, marker=planned.marker))
            seq += 1
        ts += 1600
    return out


# --- codec choice -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("negotiated", "expected"),
    [
        ([Codec(0, "PCMU", 8000)], (Encoding.ULAW, 0)),
        ([Codec(8, "PCMA", 8000), Codec(0, "PCMU", 8000)], (Encoding.ALAW, 8)),
        ([Codec(18, "G729", 8000), Codec(8, "PCMA", 8000)], (Encoding.ALAW, 8)),
        ([Codec(96, "pcmu", 8000)], (Encoding.ULAW, 96)),  # dynamic payload type, any case
        ([Codec(9, "G722", 8000)], None),
        ([], None),
    ],
)
def test_choose_format_takes_the_first_g711_codec(
    negotiated: list[Codec], expected: tuple[Encoding, int] | None
) -> None:
    fmt = choose_format(negotiated, {101})
    if expected is None:
        assert fmt is None
    else:
        assert fmt is not None
        assert (fmt.encoding, fmt.payload_type, fmt.event_types) == (
            *expected,
            frozenset({101}),
        )


# --- SIP INFO -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay", b"Signal= *\r\nDuration=250\r\n", "*"),
        ("Application/DTMF-Relay; charset=utf-8", b"signal=#\n", "#"),
        ("application/dtmf-relay", b"Signal=10\r\n", "*"),
        ("application/dtmf-relay", b"Signal=11\r\n", "#"),
        ("application/dtmf-relay", b"Signal=b\r\n", "B"),
        ("application/dtmf-relay", b"Signal=16\r\n", None),  # flash is not a digit
        ("application/dtmf-relay", b"Duration=160\r\n", None),
        ("application/dtmf-relay", b"Signal=x\r\n", None),
        ("application/dtmf", b"7", "7"),
        ("application/dtmf", b"  11\r\n", "#"),
        ("application/dtmf", b"", None),
        ("text/plain", b"Signal=5", None),
    ],
)
def test_info_digit(content_type: str, body: bytes, digit: str | None) -> None:
    assert info_digit(content_type, body) == digit


# --- sound files --------------------------------------------------------------------------------


def test_sound_lookup_with_and_without_extension(tmp_path: Path) -> None:
    write_wav(tmp_path / "hello.wav", 440, 0.1)
    (tmp_path / "hello.ulaw").write_bytes(b"\xff" * 800)
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "1.alaw").write_bytes(b"\xd5" * 160)
    lib = SoundLibrary(tmp_path)
    assert lib.find("hello", Encoding.ULAW) == tmp_path / "hello.ulaw"  # native first
    assert lib.find("hello", Encoding.ALAW) == tmp_path / "hello.wav"
    assert lib.find("hello.wav", Encoding.ULAW) == tmp_path / "hello.wav"
    assert lib.find("digits/1") == tmp_path / "digits" / "1.alaw"
    assert lib.find(str(tmp_path / "hello.wav")) == tmp_path / "hello.wav"  # absolute
    assert lib.find("nope") is None
    sound = lib.load("hello.wav")
    assert sound is not None
    assert sound.samples == 800


def test_language_folder_first(tmp_path: Path) -> None:
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "hello.ulaw").write_bytes(b"\x01" * 160)
    (tmp_path / "hello.ulaw").write_bytes(b"\x02" * 160)
    (tmp_path / "bye.ulaw").write_bytes(b"\x03" * 160)
    lib = SoundLibrary(tmp_path)
    assert lib.find("hello", Encoding.ULAW, "fr") == tmp_path / "fr" / "hello.ulaw"
    assert lib.find("hello", Encoding.ULAW, "") == tmp_path / "hello.ulaw"
    assert lib.find("bye", Encoding.ULAW, "fr") == tmp_path / "bye.ulaw"  # falls back
    engine, leg, _ = make_engine(tmp_path)
    engine.language = "fr"
    run(engine.play(["hello", "bye"]))
    assert [p.payload[0] for _, p in leg.sent] == [1, 3]


def test_unreadable_sound_is_missing(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    assert SoundLibrary(tmp_path).load("bad") is None


# --- paced playback -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "encode"), [(ULAW, ulaw_encode), (ALAW, alaw_encode)], ids=["pcmu", "pcma"]
)
def test_playback_is_paced_20ms_in_the_legs_codec(
    tmp_path: Path, fmt: MediaFormat, encode: Callable[[bytes], bytes]
) -> None:
    write_wav(tmp_path / "tone.wav", 1000, 0.5)
    engine, leg, _ = make_engine(tmp_path, fmt)
    played = run(engine.play(["tone"]))
    assert played == Played()
    assert len(leg.sent) == 25
    times = [round(t - 100.0, 6) for t, _ in leg.sent]
    assert times == [round(0.02 * k, 6) for k in range(25)]
    packets = [p for _, p in leg.sent]
    assert {p.payload_type for p in packets} == {fmt.payload_type}
    assert [p.sequence for p in packets] == list(range(25))
    assert [p.timestamp for p in packets] == [160 * k for k in range(25)]
    assert packets[0].marker
    assert not any(p.marker for p in packets[1:])
    assert {p.ssrc for p in packets} == {0x1234}
    assert all(len(p.payload) == 160 for p in packets)
    heard = samples_of(b"".join(p.payload for p in packets), fmt.encoding)
    assert dominant(heard, (440.0, 1000.0, 1400.0)) == 1000.0
    # the wav's own samples, encoded: the same octets went out
    with wave.open(str(tmp_path / "tone.wav")) as w:
        assert packets[3].payload == encode(w.readframes(w.getnframes())[960:1280])


def test_files_play_in_order_on_one_stream(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.1)
    (tmp_path / "b.ulaw").write_bytes(b"\x7f" * 330)  # 2 frames + a padded one
    engine, leg, _ = make_engine(tmp_path)
    assert run(engine.play(["a", "b"])) == Played()
    packets = [p for _, p in leg.sent]
    assert len(packets) == 5 + 3
    assert [p.sequence for p in packets] == list(range(8))
    assert [p.marker for p in packets] == [True, False, False, False, False, True, False, False]
    assert packets[-1].payload == b"\x7f" * 10 + b"\xff" * 150


def test_missing_file_stops_the_play_and_is_reported(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.04)
    engine, leg, _ = make_engine(tmp_path)
    assert run(engine.play(["a", "nope", "a"])) == Played("", "nope")
    assert len(leg.sent) == 2


def test_keep_going_skips_a_missing_file(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.04)
    engine, leg, _ = make_engine(tmp_path)
    assert run(engine.play(["a", "nope", "a"], keep_going=True)) == Played("", "nope")
    assert len(leg.sent) == 4


def test_no_g711_on_the_leg_plays_nothing(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.04)
    engine, leg, _ = make_engine(tmp_path, None)
    assert run(engine.play(["a"])) == Played("", "a")
    assert leg.sent == []


def test_stop_digit_interrupts_background_and_is_returned(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", 440, 2.0)
    engine, leg, clock = make_engine(tmp_path)
    clock.hooks[10] = lambda: engine.push_digit("7")

    async def go() -> tuple[Played, str]:
        played = await engine.play(["long"], stop_digits="0123456789*#")
        return played, await engine.next_digit(0)

    played, left = run(go())
    assert played == Played("7")
    assert left == ""  # the interrupting digit was consumed
    assert 10 <= len(leg.sent) <= 12


def test_digit_typed_before_background_ends_it_at_once(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", 440, 2.0)
    engine, leg, _ = make_engine(tmp_path)
    engine.push_digit("3")
    assert run(engine.play(["long"], stop_digits="0123456789")) == Played("3")
    assert leg.sent == []


def test_playback_without_stop_digits_drops_what_was_typed(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.2)
    engine, leg, clock = make_engine(tmp_path)
    engine.push_digit("1")
    clock.hooks[3] = lambda: engine.push_digit("2")

    async def go() -> tuple[Played, str]:
        return await engine.play(["a"]), await engine.next_digit(0)

    assert run(go()) == (Played(), "")
    assert len(leg.sent) == 10  # not interrupted


def test_hangup_stops_the_play(tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", 440, 2.0)
    engine, leg, clock = make_engine(tmp_path)
    clock.hooks[5] = engine.close
    assert run(engine.play(["long", "long"])) == Played()
    assert len(leg.sent) <= 6


# --- digits heard -------------------------------------------------------------------------------


def test_rfc4733_events_become_digits_once_each(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path)
    for packet in event_packets("12#"):
        engine.receive(packet)
    assert list(engine.digits) == ["1", "2", "#"]
    assert run(engine.read_digits(5, 0.0, terminator="#")) == "12"


def test_flash_event_is_not_a_digit(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path)
    engine.receive(rtp(101, 1, 800, bytes([16, 0x8A, 0, 160])))
    engine.receive(rtp(101, 2, 960, bytes([5, 0x8A, 0, 160])))
    assert list(engine.digits) == ["5"]


def test_events_on_another_payload_type_are_not_digits(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path)
    for packet in event_packets("5", pt=96):
        engine.receive(packet)
    engine.receive(b"\x80junk")
    assert list(engine.digits) == []


@pytest.mark.parametrize(
    ("typed", "max_digits", "terminator", "expected", "left"),
    [
        ("1234", 3, "#", "123", "4"),
        ("12#34", 0, "#", "12", "34"),
        ("12*4", 0, "*#", "12", "4"),
        ("", 4, "#", "", ""),
        ("98", 0, "", "98", ""),  # no terminator: until the timeout
    ],
)
def test_read_digits(
    tmp_path: Path, typed: str, max_digits: int, terminator: str, expected: str, left: str
) -> None:
    engine, _, _ = make_engine(tmp_path)
    for d in typed:
        engine.push_digit(d)
    assert run(engine.read_digits(max_digits, 0.0, terminator=terminator)) == expected
    assert "".join(engine.digits) == left


def test_read_digits_waits_for_digits_that_come_later(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path)

    async def go() -> str:
        loop = asyncio.get_running_loop()
        loop.call_soon(engine.push_digit, "4")
        loop.call_soon(engine.push_digit, "2")
        return await engine.read_digits(2, 5.0)

    assert run(go()) == "42"


def test_hangup_wakes_a_reader(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path)

    async def go() -> str:
        asyncio.get_running_loop().call_soon(engine.close)
        return await engine.read_digits(4, 30.0)

    assert run(go()) == ""


def _g711_packets(frames_pcm: list[bytes], fmt: MediaFormat) -> list[bytes]:
    enc = ulaw_encode if fmt.encoding is Encoding.ULAW else alaw_encode
    return [rtp(fmt.payload_type, k, 160 * k, enc(f)) for k, f in enumerate(frames_pcm)]


def _dtmf_audio(keys: str) -> list[bytes]:
    """Each key: 100 ms of its two tones, then 60 ms of silence (20 ms linear frames)."""
    freqs = {"1": (697, 1209), "5": (770, 1336), "9": (852, 1477), "#": (941, 1477)}
    out: list[bytes] = []
    for key in keys:
        tone = tone_frames(freqs[key], amplitude=6000)
        out += [next(tone) for _ in range(5)]
        out += [b"\0" * 320] * 3
    return out


@pytest.mark.parametrize("fmt", [ULAW, ALAW], ids=["pcmu", "pcma"])
def test_inband_dtmf_is_detected_on_g711(tmp_path: Path, fmt: MediaFormat) -> None:
    engine, _, _ = make_engine(tmp_path, fmt, inband=True)
    for packet in _g711_packets(_dtmf_audio("159#"), fmt):
        engine.receive(packet)
    assert "".join(engine.digits) == "159#"


def test_inband_ignores_speechlike_tones_and_is_off_by_default(tmp_path: Path) -> None:
    engine, _, _ = make_engine(tmp_path, ULAW, inband=True)
    tone = tone_frames((440.0, 480.0), amplitude=6000)
    for packet in _g711_packets([next(tone) for _ in range(50)], ULAW):
        engine.receive(packet)
    assert list(engine.digits) == []
    plain, _, _ = make_engine(tmp_path, ULAW)
    for packet in _g711_packets(_dtmf_audio("5"), ULAW):
        plain.receive(packet)
    assert list(plain.digits) == []


# --- Echo ----------------------------------------------------------------------------------------


def test_echo_returns_audio_on_our_stream_until_pound(tmp_path: Path) -> None:
    engine, leg, _ = make_engine(tmp_path)

    async def go() -> None:
        task = asyncio.ensure_future(engine.echo())
        await asyncio.sleep(0)
        assert engine.echoing
        for k in range(3):
            engine.receive(rtp(0, 500 + k, 9000 + 160 * k, bytes([k]) * 160))
        engine.receive(rtp(8, 600, 1, b"\x00" * 160))  # not our codec
        for packet in event_packets("#"):
            engine.receive(packet)
        await asyncio.wait_for(task, 5.0)

    run(go())
    packets = [p for _, p in leg.sent]
    assert [p.payload for p in packets] == [bytes([k]) * 160 for k in range(3)]
    assert [(p.sequence, p.timestamp, p.ssrc) for p in packets] == [
        (0, 0, 0x1234),
        (1, 160, 0x1234),
        (2, 320, 0x1234),
    ]
    assert packets[0].marker
    assert not engine.echoing
    engine.receive(rtp(0, 503, 9480, b"\x01" * 160))
    assert len(leg.sent) == 3  # echo is over


# --- tones ---------------------------------------------------------------------------------------


def test_play_tones_runs_in_background_until_stopped(tmp_path: Path) -> None:
    engine, leg, clock = make_engine(tmp_path)

    async def go() -> None:
        assert engine.start_tones("ring")
        while clock.sleeps < 30:
            await asyncio.sleep(0)
        assert engine.playing_tones
        engine.stop_tones()
        await asyncio.sleep(0)

    run(go())
    assert 29 <= len(leg.sent) <= 31
    assert not engine.playing_tones
    assert not engine.start_tones("nonsense")


def test_hold_music_loops_for_its_duration(tmp_path: Path) -> None:
    engine, leg, _ = make_engine(tmp_path)
    audio = [bytes([k]) * 160 for k in range(3)]
    run(engine.loop(audio, 0.2))
    assert [p.payload[0] for _, p in leg.sent] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


# --- the dial plan on a SIP channel's engine ----------------------------------------------------


def sip_channel(tmp_path: Path) -> tuple[SipChannel, FakeLeg]:
    env = CallEnv(
        ua=cast(Any, None),
        directory=cast(Any, None),
        ports=cast(Any, None),
        media_host="192.0.2.1",
        sip_host="192.0.2.1",
        namer=ChannelNamer(),
        channels=ChannelTable(),
        loop_time=lambda: 0.0,
        wall_time=lambda: 1_800_000_000.0,
        flush=lambda: None,
        register_session=lambda _s, _c: None,
        sounds=SoundLibrary(tmp_path),
    )
    chan = SipChannel(env, "SIP/1000-00000001", "1.1", peer=None, outgoing=False)
    chan.set_state(ChannelState.RING)
    chan.set_state(ChannelState.UP)
    engine, leg, _ = make_engine(tmp_path)
    engine.name = chan.name
    chan.media = engine
    return chan, leg


MENU = """
[menu]
exten => s,1,Background(menu)
same => n,WaitExten(0.05)
exten => 1,1,Set(CHOSE=one)
exten => 2,1,Set(CHOSE=two)
exten => 21,1,Set(CHOSE=twentyone)
exten => i,1,Set(CHOSE=invalid)
exten => t,1,Set(CHOSE=timeout)
"""


def execution(chan: object, text: str, context: str) -> Execution:
    plan = parse_dialplan(parse_text(textwrap.dedent(text), "extensions.conf"))
    return Execution(
        plan,
        chan,  # type: ignore[arg-type]
        context=context,
        exten="s",
        clock=lambda: 1_800_000_000.0,
        rng=random.Random(0),
        digit_timeout=0.05,
        response_timeout=0.05,
    )


@pytest.mark.parametrize(
    ("info", "events", "chose"),
    [
        ("2", "1", "twentyone"),  # INFO then RFC 4733, one extension
        ("", "1", "one"),
        ("2", "", "two"),
        ("9", "", "invalid"),
        ("", "", "timeout"),
    ],
)
def test_background_menu_routes_the_digits_heard(
    tmp_path: Path, info: str, events: str, chose: str
) -> None:
    write_wav(tmp_path / "menu.wav", 440, 0.1)
    chan, leg = sip_channel(tmp_path)
    for digit in info:
        assert chan.info_received("application/dtmf-relay", f"Signal={digit}\r\n".encode()) == 200
    assert chan.media is not None
    for packet in event_packets(events):
        chan.media.receive(packet)
    ex = execution(chan, MENU, "menu")
    run(ex.run())
    assert ex.vars.get("CHOSE") == chose
    assert ex.vars.get("BACKGROUNDSTATUS") == "SUCCESS"
    if info or events:
        assert leg.sent == []  # the buffered digit cut the prompt before it began
    else:
        assert len(leg.sent) == 5


def test_read_collects_digits_into_a_variable(tmp_path: Path) -> None:
    write_wav(tmp_path / "prompt.wav", 440, 0.04)
    chan, _ = sip_channel(tmp_path)
    for packet in event_packets("42#7"):
        assert chan.media is not None
        chan.media.receive(packet)
    ex = execution(chan, "[r]\nexten => s,1,Read(PIN,prompt,4)\n", "r")
    run(ex.run())
    assert (ex.vars.get("PIN"), ex.vars.get("READSTATUS")) == ("42", "OK")


def test_missing_sound_fails_playback_and_background(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 440, 0.04)
    chan, leg = sip_channel(tmp_path)
    text = """
    [p]
    exten => s,1,Playback(a&gone&a)
    same => n,Set(P=${PLAYBACKSTATUS})
    same => n,Background(gone)
    same => n,Set(B=${BACKGROUNDSTATUS})
    same => n,Playback(a)
    """
    ex = execution(chan, text, "p")
    run(ex.run())
    assert (ex.vars.get("P"), ex.vars.get("B")) == ("FAILED", "FAILED")
    assert ex.vars.get("PLAYBACKSTATUS") == "SUCCESS"
    assert len(leg.sent) == 2 + 2  # the first a, then the last Playback
    assert any("Playback failed on SIP/1000-00000001 for a&gone&a" in m for m in ex.messages)


def test_info_statuses_and_early_digits(tmp_path: Path) -> None:
    chan, _ = sip_channel(tmp_path)
    chan.media = None
    assert chan.info_received("application/dtmf", b"5") == 200
    assert chan.info_received("application/dtmf-relay", b"Signal=16\r\n") == 200
    assert chan.info_received("text/plain", b"hello") == 415
    assert chan.info_received("", b"") == 200
    assert chan.early_digits == ["5"]


@dataclass
class SoundRecording(RecordingChannel):
    """The dry-run channel, plus the SIP channel's play_sounds/music_on_hold."""

    missing: set[str] = field(default_factory=set)
    calls: list[tuple[str, object]] = field(default_factory=list)

    async def play_sounds(
        self, files: list[str], *, stop_digits: str = "", keep_going: bool = False
    ) -> Played:
        self.calls.append(("play", (tuple(files), keep_going)))
        gone = next((f for f in files if f in self.missing), None)
        return Played("", gone)

    async def music_on_hold(self, klass: str, seconds: float | None) -> None:
        self.calls.append(("moh", (klass, seconds)))


@pytest.mark.parametrize(
    ("line", "call"),
    [
        ("SayDigits(12)", ("play", (("digits/1", "digits/2"), True))),
        ("SayNumber(5)", ("play", (("digits/5",), True))),
        ("Playback(x&y)", ("play", (("x", "y"), False))),
        ("MusicOnHold(jazz,5)", ("moh", ("jazz", 5.0))),
        ("MusicOnHold()", ("moh", ("default", None))),
    ],
)
def test_apps_use_the_sound_channel(line: str, call: tuple[str, object]) -> None:
    chan = SoundRecording(answered=True)
    ex = execution(chan, f"[a]\nexten => s,1,{line}\n", "a")
    run(ex.run())
    assert chan.calls == [call]


def test_say_skips_missing_files_without_failing() -> None:
    chan = SoundRecording(answered=True, missing={"digits/1"})
    ex = execution(chan, "[a]\nexten => s,1,SayDigits(1)\nsame => n,Set(OK=yes)\n", "a")
    run(ex.run())
    assert ex.vars.get("OK") == "yes"


def test_hold_music_class_from_files_else_a_generated_round(tmp_path: Path) -> None:
    chan, leg = sip_channel(tmp_path)
    engine = chan.media
    assert engine is not None
    lib = SoundLibrary(tmp_path)
    generated = hold_music(lib, "default", Encoding.ULAW)
    assert len(generated) == (200 + 3 * 400 + 800 + 1800) // 20  # one finite round
    alaw = hold_music(None, "jazz", Encoding.ALAW)  # no sounddir: generated too
    notes = (523.0, 659.0, 784.0, 1047.0)
    for first, note in ((10, 523.0), (30, 659.0), (50, 784.0), (70, 1047.0)):
        heard = samples_of(b"".join(alaw[first : first + 20]), Encoding.ALAW)
        assert dominant(heard, notes) == note
    write_wav(tmp_path / "moh" / "jazz" / "a.wav", 440, 0.1)
    write_wav(tmp_path / "moh" / "jazz" / "b.wav", 880, 0.06)
    assert len(hold_music(lib, "jazz", Encoding.ULAW)) == 5 + 3
    run(chan.music_on_hold("jazz", 0.32))
    assert len(leg.sent) == 16


@pytest.mark.parametrize("digit", list("0123456789*#ABCD"))
def test_info_body_round_trips(digit: str) -> None:
    kind, body = info_body(digit)
    assert info_digit(kind, body) == digit


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/dtmf-relay", b"Signal=1", 200),
        ("application/DTMF; x=y", b"1", 200),
        ("application/media_control+xml", b"<media_control/>", 200),
        ("", b"", 200),
        ("text/plain", b"hi", 415),
    ],
)
def test_info_status(content_type: str, body: bytes, status: int) -> None:
    assert info_status(content_type, body) == status


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["application/dtmf-relay", "application/dtmf", "text/x"]), st.binary())
def test_info_digit_takes_any_body(content_type: str, body: bytes) -> None:
    digit = info_digit(content_type, body)
    assert digit is None or (len(digit) == 1 and digit in "0123456789*#ABCD")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300), st.sampled_from([0, 8, 101, 13]))
def test_engine_receive_takes_any_packet(tmp_path: Path, payload: bytes, pt: int) -> None:
    engine, leg, _ = make_engine(tmp_path, inband=True)
    engine.echoing = True
    engine.receive(payload)
    engine.receive(rtp(pt, 1, 160, payload))
    assert all(d in "0123456789*#ABCD" for d in engine.digits)
    assert len(leg.sent) <= 1


# --- digits sent to a leg -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [ULAW, ALAW], ids=["pcmu", "pcma"])
def test_event_sender_plays_inband_keys_in_the_legs_codec(fmt: MediaFormat) -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    sender = EventSender(0x77, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        sender.send_inband("5", None, cast(Any, leg), fmt)
        sender.send_inband("#", None, cast(Any, leg), fmt)
        await sender.drain()

    run(go())
    packets = [p for _, p in leg.sent]
    assert len(packets) == 2 * (6 + 2)
    assert {(p.ssrc, p.payload_type) for p in packets} == {(0x77, fmt.payload_type)}
    assert [p.sequence for p in packets] == list(range(16))
    heard = samples_of(b"".join(p.payload for p in packets), fmt.encoding)
    assert DtmfDetector().feed(heard) == ["5", "#"]
    times = [round(t - 100.0, 6) for t, _ in leg.sent]
    assert times[:8] == [round(0.02 * k, 6) for k in range(8)]


def test_event_sender_sends_rfc4733_one_digit_after_the_other() -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    sender = EventSender(0x77, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for digit in "12":
            sender.send(digit, None, cast(Any, leg), 96)
        await sender.drain()

    run(go())
    packets = [p for _, p in leg.sent]
    assert {p.payload_type for p in packets} == {96}
    assert [p.sequence for p in packets] == list(range(len(packets)))
    rx = DtmfReceiver()
    got = [e for p in packets for e in rx.receive(p.payload, p.timestamp)]
    assert [e.digit for e in got if isinstance(e, DtmfBegan)] == ["1", "2"]


# --- taps of a bridged leg --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("samples", "ms"),
    [(0, 100), (-5, 100), (800, 100), (1280, 160), (80, 40), (8, 40), (160000, 2000)],
)
def test_digit_ms_from_event_duration(samples: int, ms: int) -> None:
    assert digit_ms(samples) == ms


def test_event_tap_delivers_each_digit_once_at_its_end() -> None:
    got: list[tuple[str, int]] = []
    tap = EventTap(lambda d, ms: got.append((d, ms)))
    packets = event_packets("12")
    assert all(tap(p) for p in packets)  # every event packet is consumed
    assert got == [("1", 100), ("2", 100)]  # digit_packets' 0.1 s keys, end sent three times


def test_inband_tap_finds_the_keys_and_consumes_nothing() -> None:
    got: list[str] = []
    tap = InbandTap(lambda d, _ms: got.append(d), Encoding.ALAW)
    packets = _g711_packets(_dtmf_audio("9#"), ALAW)
    assert not any(tap(p) for p in packets)
    assert got == ["9", "#"]


def test_event_sender_holds_the_key_as_long_as_asked() -> None:
    clock = FakeTime()
    leg = FakeLeg(clock)
    sender = EventSender(0x77, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        sender.send("9", None, cast(Any, leg), 101, duration_ms=300)
        sender.send_inband("9", None, cast(Any, leg), ULAW, duration_ms=300)
        await sender.drain()

    run(go())
    events = [p for _, p in leg.sent if p.payload_type == 101]
    ends = {struct.unpack("!H", p.payload[2:4])[0] for p in events if p.payload[1] & 0x80}
    assert ends == {2400}  # 300 ms at 8 kHz
    tones = [p for _, p in leg.sent if p.payload_type == 0]
    assert len(tones) == (300 + 40) // 20  # the key, then the 40 ms gap
