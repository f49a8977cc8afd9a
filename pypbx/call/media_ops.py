"""The media engine of one call leg while the dial plan owns it: what the leg plays (sound
files, indication tones, hold music, Echo) and the DTMF it hears; and the digits a bridged
leg's INFO sends to the other leg in that leg's own mode.

Sending is paced 20 ms packets of the leg's negotiated G.711 codec (RFC 3551 §4.5.14) from one
:class:`~pypbx.media.player.Packetizer` per leg, so successive plays continue one RTP stream
(RFC 3550 §5.1). Digits reach one queue from three sources, as chan_sip takes them:
RFC 4733 §2.5.2 telephone-events on the leg's negotiated payload type, SIP INFO bodies
(``application/dtmf-relay`` ``Signal=5``, ``application/dtmf`` ``5``) and, with
``dtmfmode=inband``, a Goertzel detector on the decoded audio. Sound files are looked up in
``sounddir`` as Asterisk does (name with or without extension, language folder first).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path

from pypbx.media.audio import (
    AudioError,
    DtmfDetector,
    Encoding,
    Sound,
    dtmf_tone,
    frames,
    load_sound,
    parse_tones,
    samples_of,
    tone_stream,
)
from pypbx.media.dtmf import DtmfBegan, DtmfError, DtmfReceiver, digit_of
from pypbx.media.player import (
    Packetizer,
    Sender,
    play,
    send_digits_in_stream,
    send_in_stream,
)
from pypbx.media.relay import RelayLeg
from pypbx.media.rtp import RtpError, parse_rtp
from pypbx.sip.sdp import Codec

__all__ = [
    "DIGIT_MS",
    "HOLD_TUNE",
    "EventSender",
    "MediaEngine",
    "MediaFormat",
    "Played",
    "Sender",
    "SoundLibrary",
    "choose_format",
    "hold_music",
    "info_body",
    "info_digit",
    "info_status",
]

log = logging.getLogger("pypbx.call")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_G711 = {"pcmu": Encoding.ULAW, "pcma": Encoding.ALAW}
_MAX_BUFFERED = 64
DIGIT_MS = 100  # a digit's duration when the source does not tell it (inband, a lost end)


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """What a leg speaks: the G.711 encoding and payload type it sends, and the payload
    types its telephone-events may arrive on."""

    encoding: Encoding
    payload_type: int
    event_types: frozenset[int] = frozenset()


def choose_format(negotiated: Sequence[Codec], events: Iterable[int] = ()) -> MediaFormat | None:
    """The first PCMU/PCMA codec of a leg's negotiated list (its payload type), or None when the
    leg speaks no G.711 (then nothing is played to it)."""
    for codec in negotiated:
        encoding = _G711.get(codec.name.lower())
        if encoding is not None and codec.clock_rate == 8000:
            return MediaFormat(encoding, codec.payload_type, frozenset(events))
    return None


@dataclass(frozen=True, slots=True)
class Played:
    """How a play ended: the digit that interrupted it, and the first file that was missing."""

    digit: str = ""
    missing: str | None = None


# --- SIP INFO DTMF (chan_sip handle_request_info) ---------------------------------------------

_EVENT_CHARS = {"*": 10, "#": 11, "a": 12, "b": 13, "c": 14, "d": 15, "!": 16}


def _signal_digit(text: str) -> str | None:
    value = text.strip().lower()
    if not value:
        return None
    event = _EVENT_CHARS.get(value[0])
    if event is None:
        if not value.isdigit() or len(value) > 3:
            return None
        event = int(value)
    digit = digit_of(event)
    return None if digit is None or digit == "!" else digit


_INFO_KINDS = ("application/dtmf-relay", "application/dtmf", "application/media_control+xml")


def info_status(content_type: str, body: bytes) -> int:
    """The answer to an INFO: 200 when empty or of a kind chan_sip takes, else 415."""
    kind = content_type.partition(";")[0].strip().lower()
    return 200 if not body or kind in _INFO_KINDS else 415


def info_body(digit: str, duration_ms: int = 100) -> tuple[str, bytes]:
    """The (content type, body) of an INFO that sends ``digit`` (chan_sip ``dtmfmode=info``)."""
    return "application/dtmf-relay", f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()


def info_digit(content_type: str, body: bytes) -> str | None:
    """The DTMF digit of a SIP INFO body, or None when it carries none.

    ``application/dtmf-relay`` has a ``Signal=`` line; ``application/dtmf`` is the digit itself.
    Either may name the digit (``5``, ``*``, ``#``, ``A``) or its RFC 4733 event code
    (``10`` is ``*``, ``11`` is ``#``). Flash (16) is not a digit.
    """
    kind = content_type.partition(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip().lower() == "signal":
                return _signal_digit(value)
        return None
    if kind == "application/dtmf":
        return _signal_digit(text)
    return None


# --- sound files in sounddir -------------------------------------------------------------------

_PREFERRED = {
    Encoding.ULAW: ("ulaw", "pcm", "ul", "wav", "alaw", "al", "sln", "raw"),
    Encoding.ALAW: ("alaw", "al", "wav", "ulaw", "pcm", "ul", "sln", "raw"),
    Encoding.SLIN: ("sln", "raw", "wav", "ulaw", "pcm", "ul", "alaw", "al"),
}
_KNOWN = frozenset(_PREFERRED[Encoding.ULAW])


class SoundLibrary:
    """Sound files by Asterisk name (``digits/5``, ``tt-monkeys.wav``, ``/abs/path``), found in
    ``sounddir`` in the format cheapest for the leg; the last few loaded are kept."""

    def __init__(self, sounddir: Path, *, keep: int = 64) -> None:
        self.sounddir = sounddir
        self.keep = keep
        self._cache: OrderedDict[tuple[Path, int, int], Sound] = OrderedDict()

    def find(
        self, name: str, encoding: Encoding = Encoding.ULAW, language: str = ""
    ) -> Path | None:
        """The file for ``name``: itself when it has a known extension, else the first of
        ``name.<ext>`` to exist, native formats first; ``sounddir/<language>/`` is looked in
        before ``sounddir/`` (Asterisk's language folders)."""
        if name.startswith("/"):
            bases = [Path(name)]
        else:
            bases = [self.sounddir / language / name] if language else []
            bases.append(self.sounddir / name)
        for base in bases:
            ext = base.name.rpartition(".")[2].lower() if "." in base.name else ""
            if ext in _KNOWN and base.is_file():
                return base
            for candidate in _PREFERRED[encoding]:
                path = base.with_name(f"{base.name}.{candidate}")
                if path.is_file():
                    return path
        return None

    def load(
        self, name: str, encoding: Encoding = Encoding.ULAW, language: str = ""
    ) -> Sound | None:
        """The sound ``name`` (None when no file exists or it cannot be read as 8 kHz audio)."""
        path = self.find(name, encoding, language)
        if path is None:
            return None
        try:
            st = path.stat()
            key = (path, st.st_mtime_ns, st.st_size)
            sound = self._cache.get(key)
            if sound is None:
                sound = load_sound(path.name, path.read_bytes())
                self._cache[key] = sound
                while len(self._cache) > self.keep:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        except (OSError, AudioError) as exc:
            log.warning("Unable to open %s: %s", path, exc)
            return None
        return sound


HOLD_TUNE = "!0/200,!523/400,!659/400,!784/400,!1047/800,!0/1800"
"""The generated hold music (one round, looped) of a class without files."""


def hold_music(sounds: SoundLibrary | None, klass: str, encoding: Encoding) -> list[bytes]:
    """One round of a music-on-hold class (res_musiconhold ``mode=files``): the files of
    ``sounddir/moh/<class>`` in name order, else the generated :data:`HOLD_TUNE`."""
    out: list[bytes] = []
    if sounds is not None:
        folder = sounds.sounddir / "moh" / klass
        names = sorted({p.stem for p in folder.glob("*.*")}) if folder.is_dir() else []
        for name in names:
            sound = sounds.load(f"moh/{klass}/{name}", encoding)
            if sound is not None:
                out.extend(frames(sound, encoding))
    if not out:
        out = list(islice(tone_stream(parse_tones(HOLD_TUNE), encoding), 3000))
    return out


class EventSender:
    """Digits for one leg, one after the other, inside the stream relayed to it
    (:func:`~pypbx.media.player.send_in_stream`), else on our own stream: RFC 4733 events, or
    the keys' tones for a leg that takes DTMF inband."""

    def __init__(
        self, ssrc: int, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.ssrc = ssrc
        self.clock, self.sleep = clock, sleep
        self._own: Packetizer | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(
        self,
        digit: str,
        source: RelayLeg | None,
        target: RelayLeg,
        pt: int,
        *,
        duration_ms: int = 120,
    ) -> None:
        """RFC 4733 events on payload type ``pt``, the key held ``duration_ms``."""
        self._start(self._events(digit, source, target, pt, duration_ms / 1000))

    def send_inband(
        self,
        digit: str,
        source: RelayLeg | None,
        target: RelayLeg,
        fmt: MediaFormat,
        *,
        duration_ms: int = 120,
    ) -> None:
        """The key's tones in the leg's G.711 codec for ``duration_ms``."""
        self._start(self._tones(digit, source, target, fmt, duration_ms))

    def _start(self, job: Coroutine[object, object, bool]) -> asyncio.Task[bool]:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every digit queued so far has gone out."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _own_stream(self, pt: int) -> Packetizer:
        if self._own is None:
            self._own = Packetizer(self.ssrc, pt)
        self._own.payload_type = pt
        return self._own

    async def _events(
        self, digit: str, source: RelayLeg | None, target: RelayLeg, pt: int, duration: float
    ) -> bool:
        async with self._lock:
            own = self._own_stream(pt)
            return await send_digits_in_stream(
                digit, source, target, pt, own, duration=duration, clock=self.clock,
                sleep=self.sleep,
            )  # fmt: skip

    async def _tones(
        self, digit: str, source: RelayLeg | None, target: RelayLeg, fmt: MediaFormat, ms: int
    ) -> bool:
        frames_out = dtmf_tone(digit, fmt.encoding, ms=ms)

        async def tones(packetizer: Packetizer) -> None:
            await play(frames_out, target, packetizer, clock=self.clock, sleep=self.sleep)

        async with self._lock:
            own = self._own_stream(fmt.payload_type)
            return await send_in_stream(
                source, target, fmt.payload_type, own, tones, clock=self.clock, sleep=self.sleep
            )

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


# --- the engine --------------------------------------------------------------------------------


class MediaEngine:
    """What one leg plays and the digits it hears (sink of the leg's unbridged packets)."""

    def __init__(
        self,
        sender: Sender,
        fmt: MediaFormat | None,
        *,
        ssrc: int,
        sounds: SoundLibrary | None = None,
        inband: bool = False,
        name: str = "",
        language: str = "",
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.sender = sender
        self.format = fmt
        self.sounds = sounds
        self.name = name
        self.language = language
        self.clock = clock
        self.sleep = sleep
        pt = fmt.payload_type if fmt is not None else 0
        self.packetizer = Packetizer(ssrc, pt)
        self.digits: deque[str] = deque(maxlen=_MAX_BUFFERED)
        self.receiver = DtmfReceiver()
        self.detector = DtmfDetector() if inband else None
        self.echoing = False
        self.closed = False
        self._wake = asyncio.Event()
        self._playing: asyncio.Task[object] | None = None
        self._stop_digits = ""
        self._interrupted = ""
        self._tones: asyncio.Task[object] | None = None

    # -- what the leg hears ---------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """One RTP packet from the leg: telephone-events and inband tones become digits;
        while echoing, audio goes back on our own stream."""
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        fmt = self.format
        if fmt is None:  # no G.711 on this leg: Echo bounces the packets as they are
            if self.echoing:
                self.sender.send(data)
            return
        pt = packet.payload_type
        if pt in fmt.event_types:
            try:
                events = self.receiver.receive(packet.payload, packet.timestamp)
            except DtmfError:
                return
            for ev in events:
                if isinstance(ev, DtmfBegan) and ev.digit != "!":  # flash is no digit
                    self.push_digit(ev.digit)
            return
        if pt != fmt.payload_type:
            return
        if self.detector is not None:
            for digit in self.detector.feed(samples_of(packet.payload, fmt.encoding)):
                self.push_digit(digit)
        if self.echoing and packet.payload:
            self.sender.send(self.packetizer.packet(packet.payload, samples=len(packet.payload)))

    def push_digit(self, digit: str) -> None:
        """A digit heard (RFC 4733, INFO or inband): queue it; a stop digit ends the play."""
        if self.closed:
            return
        self.digits.append(digit)
        self._wake.set()
        task = self._playing
        if task is not None and not task.done() and digit in self._stop_digits:
            self._interrupted = digit
            task.cancel()

    def _take(self, wanted: str) -> str:
        """The first buffered digit in ``wanted`` (others before it are dropped), or ''."""
        while self.digits:
            digit = self.digits.popleft()
            if digit in wanted:
                return digit
        return ""

    async def next_digit(self, timeout: float) -> str:
        """The next digit heard within ``timeout`` seconds ('' on timeout or hangup)."""
        deadline = self.clock() + max(0.0, timeout)
        while not self.digits and not self.closed:
            left = deadline - self.clock()
            if left <= 0:
                return ""
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return ""
        return self.digits.popleft() if self.digits else ""

    async def read_digits(self, max_digits: int, timeout: float, *, terminator: str = "#") -> str:
        """Digits until ``max_digits`` (0: no limit), a terminator (not returned) or
        ``timeout`` seconds without a digit, as app_read's ``ast_app_getdata``. Tones
        playing (Read's ``i`` option) stop at the first digit."""
        got = ""
        while not self.closed and (max_digits <= 0 or len(got) < max_digits):
            digit = await self.next_digit(timeout)
            self.stop_tones()
            if not digit or digit in terminator:
                break
            got += digit
        return got

    # -- what the leg plays -----------------------------------------------------------------

    async def play(
        self, files: Sequence[str], *, stop_digits: str = "", keep_going: bool = False
    ) -> Played:
        """Play ``files`` in order (Playback, Background, Say*).

        A buffered or arriving digit in ``stop_digits`` ends the play and is returned; other
        digits heard meanwhile are dropped (Asterisk's ``ast_waitstream``). A missing file
        ends the play (reported in ``missing``) unless ``keep_going``, which skips it.
        """
        self.stop_tones()
        if stop_digits:
            digit = self._take(stop_digits)
            if digit:
                return Played(digit)
        else:
            self.digits.clear()
        missing: str | None = None
        for name in files:
            if self.closed:
                break
            fmt = self.format
            sound = (
                self.sounds.load(name, fmt.encoding, self.language)
                if self.sounds is not None and fmt is not None
                else None
            )
            if sound is None or fmt is None:
                log.warning("%s: File %s does not exist in any format", self.name, name)
                missing = missing or name
                if keep_going:
                    continue
                return Played("", missing)
            digit = await self._stream(frames(sound, fmt.encoding), stop_digits)
            if digit:
                return Played(digit, missing)
        if not stop_digits:
            self.digits.clear()
        return Played("", missing)

    async def _stream(self, audio: Iterable[bytes], stop_digits: str) -> str:
        """Send ``audio`` paced; '' when it ended, else the stop digit that cut it short."""
        self._stop_digits, self._interrupted = stop_digits, ""
        task: asyncio.Task[object] = asyncio.ensure_future(
            play(audio, self.sender, self.packetizer, clock=self.clock, sleep=self.sleep)
        )
        self._playing = task
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
            self._playing = None
            self._stop_digits = ""
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s: playback failed: %r", self.name, task.exception())
        digit, self._interrupted = self._interrupted, ""
        if digit:
            self._take(digit)  # the interrupting digit is consumed, not left for the next read
        return digit

    def start_tones(self, spec: str) -> bool:
        """Play a tone list in the background until :meth:`stop_tones` (PlayTones)."""
        self.stop_tones()
        if self.format is None or self.closed:
            return False
        try:
            segments = parse_tones(spec)
        except ValueError:
            log.warning("%s: Unable to start playtones (%s)", self.name, spec)
            return False
        audio = tone_stream(segments, self.format.encoding)
        self._tones = asyncio.ensure_future(
            play(audio, self.sender, self.packetizer, clock=self.clock, sleep=self.sleep)
        )
        return True

    def stop_tones(self) -> None:
        if self._tones is not None:
            self._tones.cancel()
            self._tones = None

    @property
    def playing_tones(self) -> bool:
        return self._tones is not None and not self._tones.done()

    async def echo(self) -> None:
        """Send the leg's audio back to it until ``#`` or hangup (app_echo)."""
        self.stop_tones()
        self.digits.clear()
        self.packetizer.talkspurt()
        self.echoing = True
        try:
            while not self.closed:
                if await self.next_digit(3600.0) == "#":
                    break
        finally:
            self.echoing = False

    async def loop(self, audio: Sequence[bytes], seconds: float | None) -> None:
        """Play ``audio`` again and again for ``seconds`` (None: until hangup): hold music."""
        self.stop_tones()
        if not audio:
            return
        stream: Iterable[bytes] = cycle(audio)
        if seconds is not None:
            stream = islice(stream, max(0, round(seconds / 0.02)))
        await self._stream(stream, "")

    def close(self) -> None:
        """Hangup: stop every play and wake every reader."""
        self.closed = True
        self.echoing = False
        self.stop_tones()
        if self._playing is not None:
            self._playing.cancel()
        self._wake.set()
