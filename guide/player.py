"""Audio out behind one small interface: the real device, a WAV file, a recorder.

    player = SimpleaudioPlayer(events.put)            # ALSA's default device
    player.prefetch(likely_next(site, "dome", "en"))  # decoded in the background
    player.play(site.track_path("en/dome.opus"))      # returns at once
    player.position()                                 # 12.4 (seconds), None when idle
    player.pause(); player.resume()
    player.stop(fade=1.5)                             # fades out, no click
    player.close()

`on_event` is called, from the player's own threads, with `Finished(path)`
when a track ends by itself and `Failed(path, message)` when it cannot be
decoded or played (the message names the file); `path` is the one given to
`play`. Nothing else is reported there.

How the real player works, since simpleaudio has neither pause nor volume:
each start hands simpleaudio a private copy of the track from the wanted
position, scaled by the volume. simpleaudio's ALSA thread reads that buffer
as it plays, in 0.1 s chunks, never more than about 0.2 s ahead of the ear
(its ALSA buffer, plus the chunk it is writing). So a fade-out, a pause or a
volume change is written into the buffer a little ahead of that point
(`write_ahead`, 0.3 s): a ramp, then silence, and simpleaudio is stopped only
once the silence has been reached. A track therefore costs twice its decoded
size while it plays (the decoded track, kept for a resume or a volume change,
and that copy; 2.9 MB a minute each), which is why tracks are limited to
`guide.tracks.MAX_SECONDS`; edits are written in place, never as a third copy. Nothing is ever cut mid-wave, so there is
no click; a pause remembers where its fade began, and `resume` starts there
again with a short fade-in. One output at a time: a track started while the
previous one fades out begins when that fade is over (ALSA devices without a
mixer cannot be opened twice, and two streams would overlap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from guide.audio import CHANNELS, RATE, SAMPLE_WIDTH, Pcm, TrackLoader
from guide.errors import DeviceError, GuideError, TrackError
from guide.tracks import clock

logger = logging.getLogger("guide.player")

WRITE_AHEAD = 0.3  # s: beyond simpleaudio's reach (its 0.1 s ALSA buffer and 0.1 s chunk)
DECLICK = 0.02  # s: the shortest ramp, for a stop without fade and a replaced track
PAUSE_FADE = 0.15  # s: out, on pause
FADE_IN = 0.03  # s: in, when a track starts anywhere but at its beginning
VOLUME_RAMP = 0.05  # s: a volume change glides over this, instead of stepping
STOP_MARGIN = 0.05  # s: after a fade has been heard, before simpleaudio is stopped
POLL = 0.02  # s: how often the player looks whether simpleaudio has finished


@dataclass(frozen=True, kw_only=True)
class Finished:
    """The track `path` played to its end by itself."""

    path: Path


@dataclass(frozen=True, kw_only=True)
class Failed:
    """The track `path` could not be decoded or played; `message` says why and names the file."""

    path: Path
    message: str


PlayerEvent = Finished | Failed


@runtime_checkable
class Player(Protocol):
    """What the device, the simulator and the tests play through."""

    def play(self, path: Path, *, offset: float = 0.0) -> None:
        """Start `path` at `offset` seconds; returns at once. Replaces whatever
        plays (with the shortest ramp: send `stop(fade=...)` first for a fade)."""

    def stop(self, *, fade: float = 0.0) -> None:
        """Fade out over `fade` seconds, then silence. Nothing is reported."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def set_volume(self, volume: float) -> None:
        """0.0..1.0 (a gain on the samples); for what plays next and, gliding, for what plays now."""

    @property
    def volume(self) -> float: ...

    def position(self) -> float | None:
        """Seconds into the current track (paused or not), None when idle."""

    def prefetch(self, paths: Sequence[Path]) -> None:
        """Decode these in the background, most likely first."""

    def close(self) -> None: ...


OnEvent = Callable[[PlayerEvent], Any]


def _check_volume(volume: float) -> float:
    volume = float(volume)
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"volume must be between 0.0 and 1.0, not {volume}")
    return volume


# --------------------------------------------------------------------------
# The samples one output reads, and the edits made ahead of the ear

# A WAV file says its size in 32 bits (the RIFF header, 36 bytes, counted in):
# 4 GiB, 24 h 51 min of 16-bit mono at RATE. WavWriter writes no more.
WAV_MAX_FRAMES = (0xFFFFFFFF - 36) // (SAMPLE_WIDTH * CHANNELS)
WAV_MAX_SECONDS = WAV_MAX_FRAMES // RATE
_CHUNK = 1 << 18  # frames scaled at a time: the float copy stays small


def _scaled(src: np.ndarray, gain: float) -> np.ndarray:
    """A writable int16 copy of `src` times `gain` (an exact copy at 1.0)."""
    if gain == 1.0:
        return src.copy()
    out = np.empty(len(src), dtype="<i2")
    _scale_into(out, src, gain)
    return out


def _scale_into(out: np.ndarray, src: np.ndarray, gain: float) -> None:
    """out[:] = src times `gain`, a chunk at a time: no copy of the whole."""
    if gain == 1.0:
        out[:] = src
        return
    g = np.float32(gain)
    for i in range(0, len(src), _CHUNK):
        out[i:i + _CHUNK] = np.rint(src[i:i + _CHUNK] * g)


def _ramp(n: int, *, down: bool) -> np.ndarray:
    """A raised-cosine ramp of n frames, 1 -> 0 (down) or 0 -> 1; smooth at both ends."""
    x = (np.arange(n, dtype=np.float64) + 1.0) / (n + 1.0)
    r = 0.5 * (1.0 + np.cos(np.pi * x))
    return r if down else r[::-1].copy()


class _Voice:
    """A track from frame `first` on, as an output reads it; edited only
    beyond the frame the output may already have read."""

    def __init__(self, pcm: Pcm, first: int, gain: float, *, fade_in: bool):
        self.pcm, self.first, self.gain = pcm, first, gain
        self.buf = _scaled(pcm.array()[first:], gain)
        self.end = len(self.buf)  # frames that sound; zeros after a fade-out
        self.faded = False
        if fade_in:
            n = min(round(FADE_IN * RATE), self.end)
            self.buf[:n] = np.rint(self.buf[:n] * _ramp(n, down=False))

    def fade_out(self, at: int, frames: int) -> int:
        """Ramp down from frame `at` over `frames`, silence after; returns the
        frame where silence begins."""
        at = min(max(at, 0), self.end)
        stop = min(at + max(frames, 1), self.end)
        if stop > at:
            self.buf[at:stop] = np.rint(self.buf[at:stop] * _ramp(frames, down=True)[:stop - at])
        self.buf[stop:self.end] = 0
        self.end, self.faded = stop, True
        return stop

    def regain(self, at: int, gain: float) -> None:
        """From frame `at` on, glide to `gain` and keep it."""
        at = min(max(at, 0), self.end)
        old, self.gain = self.gain, gain
        if self.faded or at >= self.end or gain == old:
            return
        # written in place, nearest the ear first: a second copy of what is
        # left of a long track would double the player's memory
        src = self.pcm.array()[self.first + at:self.first + self.end]
        n = min(round(VOLUME_RAMP * RATE), len(src))
        glide = old + (gain - old) * (np.arange(n, dtype=np.float64) + 1.0) / (n + 1.0)
        self.buf[at:at + n] = np.rint(src[:n] * glide)
        _scale_into(self.buf[at + n:self.end], src[n:], gain)


# --------------------------------------------------------------------------
# The real device: simpleaudio into ALSA's default PCM

_alsa_quiet_handler: Any = None


class _QuietAlsa:
    """Silence libasound's own stderr messages while we probe the device:
    the DeviceError says it better than ten lines of ALSA internals."""

    def __enter__(self) -> None:
        global _alsa_quiet_handler
        self.lib = None
        try:
            try:
                self.lib = ctypes.CDLL("libasound.so.2")
            except OSError:
                self.lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so")
            handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                            ctypes.c_int, ctypes.c_char_p)
            if _alsa_quiet_handler is None:  # kept alive: libasound holds a pointer to it
                _alsa_quiet_handler = handler_type(lambda *args: None)
            self.lib.snd_lib_error_set_handler(_alsa_quiet_handler)
        except (OSError, AttributeError):
            self.lib = None

    def __exit__(self, *exc: object) -> None:
        if self.lib is not None:
            self.lib.snd_lib_error_set_handler(None)  # libasound's default handler again


def check_device() -> None:
    """Raise DeviceError unless ALSA's default device accepts the output format
    (16-bit mono at RATE). Plays nothing (an empty buffer)."""
    try:
        import simpleaudio
    except ImportError as e:
        raise DeviceError(f"no audio output: simpleaudio cannot be loaded ({e}); "
                          "run ./bootstrap to install it") from None
    with _QuietAlsa():
        try:
            probe = simpleaudio.play_buffer(b"", CHANNELS, SAMPLE_WIDTH, RATE)
        except Exception as e:  # _simpleaudio.SimpleaudioError has no importable name
            reason = str(e).split("MSG: ", 1)[-1]
            config = os.environ.get("ALSA_CONFIG_PATH")
            where = (f"the ALSA configuration in ALSA_CONFIG_PATH={config}" if config
                     else "~/.asoundrc or /etc/asound.conf")
            raise DeviceError(f"no audio output: ALSA cannot open its default device ({reason}). "
                              f"Connect a sound card or USB audio adapter ('aplay -l' lists them), "
                              f"or check {where}") from None
    while probe.is_playing():
        time.sleep(0.001)


@dataclass(eq=False)
class _Track:
    """What the player is asked to play: loading, playing or paused."""

    path: Path
    position: float  # s: where it starts, or where it was paused
    requested: float  # clock at play()
    pcm: Pcm | None = None
    paused: bool = False
    fade_in: bool = False
    output: _Output | None = None
    announced: bool = False


@dataclass(eq=False)
class _Output:
    """One simpleaudio play and the voice it reads."""

    play: Any  # simpleaudio.PlayObject
    voice: _Voice
    t0: float  # clock when play_buffer returned
    track: _Track | None  # None once let go of (fading out, draining)
    stop_at: float | None = None
    stop_sent: bool = False

    def heard(self, now: float) -> int:
        """Frames of the voice played by `now` (the clock's estimate)."""
        return min(max(0, int((now - self.t0) * RATE)), self.voice.end)

    def position(self, now: float) -> float:
        return (self.voice.first + self.heard(now)) / RATE


class SimpleaudioPlayer:
    """The device's player: simpleaudio through ALSA's default device.

    Raises DeviceError at construction when there is no usable audio device.
    Decoding happens on the loader's thread, output on the player's own, so
    every method returns at once. `on_started(path, latency)`, if given, is
    called from the player's thread right after simpleaudio has been handed
    the first samples of a track started with `play` (latency: seconds since
    that `play` call); the benchmark measures start-up with it.
    """

    def __init__(self, on_event: OnEvent, *, loader: TrackLoader | None = None, volume: float = 1.0,
                 write_ahead: float = WRITE_AHEAD, clock: Callable[[], float] = time.monotonic,
                 on_started: Callable[[Path, float], Any] | None = None):
        check_device()
        import simpleaudio

        self._play_buffer = simpleaudio.play_buffer
        self._on_event, self._on_started = on_event, on_started
        self._volume = _check_volume(volume)
        self._ahead = round(write_ahead * RATE)
        self._clock = clock
        self._owns_loader = loader is None
        self._loader = loader if loader is not None else TrackLoader()
        self._cond = threading.Condition()  # an RLock: done-callbacks may run inside play()
        self._track: _Track | None = None
        self._outputs: list[_Output] = []  # live simpleaudio plays, oldest first (at most two)
        self._pending: list[PlayerEvent] = []  # reported by the loader's thread
        self._closing = self._closed = False
        self._thread = threading.Thread(target=self._run, name="guide-player", daemon=True)
        self._thread.start()

    # ----- the interface -----------------------------------------------------
    @property
    def volume(self) -> float:
        return self._volume

    @property
    def loader(self) -> TrackLoader:
        return self._loader

    def play(self, path: Path, *, offset: float = 0.0) -> None:
        path = Path(path)
        with self._cond:
            if self._closing:
                raise RuntimeError("the player is closed")
            now = self._clock()
            self._let_go(self._track, DECLICK, now)
            track = self._track = _Track(path=path, position=max(0.0, float(offset)),
                                         requested=now, fade_in=offset > 0)
            future = self._loader.load(path)
            future.add_done_callback(lambda f: self._loaded(track, f))
            self._cond.notify_all()

    def stop(self, *, fade: float = 0.0) -> None:
        with self._cond:
            self._let_go(self._track, fade, self._clock())
            self._track = None
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            track = self._track
            if track is None or track.paused:
                return
            track.paused = True
            if track.output is not None:
                track.position = self._fade(track.output, PAUSE_FADE, self._clock())
                track.output = None
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            track = self._track
            if track is not None and track.paused:
                track.paused, track.fade_in = False, track.position > 0
                self._cond.notify_all()

    def set_volume(self, volume: float) -> None:
        volume = _check_volume(volume)
        with self._cond:
            self._volume = volume
            track = self._track
            if track is not None and track.output is not None:
                out = track.output
                out.voice.regain(out.heard(self._clock()) + self._ahead, volume)

    def position(self) -> float | None:
        with self._cond:
            track = self._track
            if track is None:
                return None
            if track.output is not None:
                return track.output.position(self._clock())
            return track.position

    def prefetch(self, paths: Sequence[Path]) -> None:
        self._loader.prefetch(paths)

    def close(self) -> None:
        """Fade out what plays (briefly), wait for it, stop the threads."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            now = self._clock()
            self._track = None
            for out in self._outputs:  # what plays or still fades: out, and soon
                if not out.stop_sent:
                    self._fade(out, DECLICK, now)
            self._cond.notify_all()
        self._thread.join(timeout=3.0)
        with self._cond:
            for out in self._outputs:  # a device that stopped consuming: cut it
                out.play.stop()
            self._closed = True
        if self._owns_loader:
            self._loader.close()

    def __enter__(self) -> SimpleaudioPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- inside, under the lock -------------------------------------------
    def _let_go(self, track: _Track | None, fade: float, now: float) -> None:
        if track is not None and track.output is not None:
            self._fade(track.output, fade, now)
            track.output = None

    def _fade(self, out: _Output, fade: float, now: float) -> float:
        """Fade `out` to silence beyond the write-ahead, let go of it; returns
        the track position (s) where the fade begins."""
        at = out.heard(now) + self._ahead
        begins = (out.voice.first + min(at, out.voice.end)) / RATE
        silent_from = out.voice.fade_out(at, max(round(fade * RATE), round(DECLICK * RATE)))
        out.track = None
        out.stop_at = out.t0 + silent_from / RATE + STOP_MARGIN
        return begins

    def _loaded(self, track: _Track, future: Any) -> None:
        with self._cond:
            if track is not self._track or future.cancelled():
                return  # replaced, stopped, or the player is closing
            error = future.exception()
            if error is not None:
                self._track = None
                message = str(error) if isinstance(error, TrackError) else f"{track.path}: {error}"
                self._pending.append(Failed(path=track.path, message=message))
            else:
                track.pcm = future.result()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                events, started = self._service(self._clock())
                if self._closing and not self._outputs:
                    return
                if not events and not started:
                    self._cond.wait(POLL if self._outputs else None)
            for event in events:
                try:
                    self._on_event(event)
                except Exception:
                    logger.exception("on_event raised for %s", event)
            for path, latency in started:
                if self._on_started is not None:
                    self._on_started(path, latency)

    def _service(self, now: float) -> tuple[list[PlayerEvent], list[tuple[Path, float]]]:
        events, started = self._pending, []
        self._pending = []
        for out in list(self._outputs):
            if out.stop_at is not None and not out.stop_sent and now >= out.stop_at:
                out.play.stop()  # it plays only silence from here
                out.stop_sent = True
            if not out.play.is_playing():
                self._outputs.remove(out)
                track, out.track = out.track, None  # no cycle keeps its samples alive
                if track is not None:
                    track.output = None
                    if track is self._track:  # it ended by itself
                        self._track = None
                        events.append(Finished(path=track.path))
        track = self._track
        if (track is not None and track.pcm is not None and not track.paused and track.output is None
                and not self._outputs and not self._closing):
            self._start(track, events, started)
        return events, started

    def _start(self, track: _Track, events: list, started: list) -> None:
        pcm = track.pcm
        assert pcm is not None
        first = min(round(track.position * RATE), pcm.frames)
        voice = _Voice(pcm, first, self._volume, fade_in=track.fade_in and first > 0)
        try:
            play = self._play_buffer(voice.buf, CHANNELS, SAMPLE_WIDTH, RATE)
        except Exception as e:  # the device went away mid-visit: this track cannot play
            self._track = None
            events.append(Failed(path=track.path, message=f"{track.path}: the audio output failed ({e})"))
            return
        t0 = self._clock()
        out = _Output(play=play, voice=voice, t0=t0, track=track)
        track.output = out
        self._outputs.append(out)
        if not track.announced:
            track.announced = True
            started.append((track.path, t0 - track.requested))


# --------------------------------------------------------------------------
# A WAV file: what a listener would hear, on a time line

class _Scheduled:
    """A voice placed on the time line, from frame `t0`."""

    def __init__(self, voice: _Voice, t0: int, track: _WavTrack | None):
        self.voice, self.t0, self.track = voice, t0, track

    @property
    def end(self) -> int:
        return self.t0 + self.voice.end


@dataclass(eq=False)
class _WavTrack:
    path: Path
    position: float
    paused: bool = False
    pcm: Pcm | None = None
    voice: _Scheduled | None = None


class WavWriter:
    """A Player that writes what a listener would hear into a WAV file (16-bit
    mono at RATE), on its clock's time line: silence from the moment it is
    made until the first track, between tracks, and after a fade.

        clock = ManualClock()
        out = WavWriter(events.append, "visit.wav", clock=clock)
        out.play(path); clock.now = 30.0; out.stop(fade=1.0); out.close()

    It is an ideal output: a fade begins the instant it is asked for (the
    real player starts it `write_ahead` later), and `play` decodes before it
    returns. A track asked for while the previous one fades out starts when
    that fade ends, as on the device. Time moves when the writer is called;
    with the real clock (`clock=None`) a timer also reports `Finished` on
    time. The file appears, complete, when `close` writes up to the clock's
    now; until then it is `PATH.part`. A time line longer than a WAV file
    can hold (`WAV_MAX_SECONDS`) is refused with a GuideError when the writer
    would pass it, and the part file removed, where `wave` wrote 4 GiB and
    then failed; `guide.render` refuses such a visit before it starts.
    """

    def __init__(self, on_event: OnEvent, path: str | os.PathLike[str], *,
                 clock: Callable[[], float] | None = None, loader: TrackLoader | None = None,
                 volume: float = 1.0):
        self._on_event = on_event
        self.path = Path(path)
        self._part = self.path.with_name(self.path.name + ".part")
        self._realtime = clock is None
        self._clock = clock if clock is not None else time.monotonic
        self._owns_loader = loader is None
        self._loader = loader if loader is not None else TrackLoader()
        self._volume = _check_volume(volume)
        self._lock = threading.RLock()
        self._origin = self._clock()
        self._written = 0  # frames on the time line written so far
        self._voices: list[_Scheduled] = []  # what still has to be written, in time order
        self._track: _WavTrack | None = None
        self._timer: threading.Timer | None = None
        self._outbox: list[PlayerEvent] = []  # reported once the lock is released
        self._closed = False
        self._wav = wave.open(str(self._part), "wb")
        self._wav.setnchannels(CHANNELS)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(RATE)

    @property
    def volume(self) -> float:
        return self._volume

    def play(self, path: Path, *, offset: float = 0.0) -> None:
        path = Path(path)
        try:
            pcm: Pcm | None = self._loader.load(path).result()
            failure = None
        except TrackError as e:
            pcm, failure = None, Failed(path=path, message=str(e))
        with self._lock:
            now = self._advance()
            self._let_go(self._track, DECLICK, now)
            self._track = None
            if pcm is not None:
                self._track = _WavTrack(path=path, position=max(0.0, float(offset)), pcm=pcm)
                self._schedule(self._track, now, fade_in=offset > 0)
            elif failure is not None:
                self._outbox.append(failure)
        self._after()

    def stop(self, *, fade: float = 0.0) -> None:
        with self._lock:
            now = self._advance()
            self._let_go(self._track, fade, now)
            self._track = None
        self._after()

    def pause(self) -> None:
        with self._lock:
            now = self._advance()
            track = self._track
            if track is not None and not track.paused:
                track.paused = True
                if track.voice is not None:
                    track.position = self._fade(track.voice, PAUSE_FADE, now)
                    track.voice = None
        self._after()

    def resume(self) -> None:
        with self._lock:
            now = self._advance()
            track = self._track
            if track is not None and track.paused:
                track.paused = False
                self._schedule(track, now, fade_in=track.position > 0)
        self._after()

    def set_volume(self, volume: float) -> None:
        volume = _check_volume(volume)
        with self._lock:
            now = self._advance()
            self._volume = volume
            track = self._track
            if track is not None and track.voice is not None:
                v = track.voice
                v.voice.regain(max(0, now - v.t0), volume)
        self._after()

    def position(self) -> float | None:
        with self._lock:
            now = self._advance()
            track = self._track
            if track is None:
                result = None
            elif track.voice is None:
                result = track.position
            else:
                v = track.voice
                result = (v.voice.first + min(max(0, now - v.t0), v.voice.end)) / RATE
        self._after()
        return result

    def prefetch(self, paths: Sequence[Path]) -> None:
        self._loader.prefetch(paths)

    def advance(self) -> None:
        """Write up to the clock's now and report tracks that ended meanwhile."""
        with self._lock:
            self._advance()
        self._after()

    def ends_at(self) -> float | None:
        """Clock time when what is scheduled so far has been heard; None if nothing is."""
        with self._lock:
            if not self._voices:
                return None
            return self._origin + self._voices[-1].end / RATE

    def close(self) -> None:
        """Write up to the clock's now (what still plays is cut there, with
        the shortest ramp) and put the file in place."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            try:
                now = self._advance()
                self._let_go(self._track, DECLICK, now)
                self._track = None
                self._advance(max((v.end for v in self._voices), default=now))
                self._wav.close()
                os.replace(self._part, self.path)
            except BaseException:
                # a full disk, a vanished folder: no half file left behind
                try:
                    self._wav.close()
                except Exception:
                    pass
                self._part.unlink(missing_ok=True)
                raise
        self._after()
        if self._owns_loader:
            self._loader.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after(self) -> None:
        """Outside the lock: report what happened, and (real clock) set the
        timer for the end of the current track."""
        with self._lock:
            events, self._outbox = self._outbox, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            track = self._track
            if self._realtime and not self._closed and track is not None and track.voice is not None:
                delay = self._origin + track.voice.end / RATE - self._clock()
                self._timer = threading.Timer(max(0.0, delay) + 0.001, self.advance)
                self._timer.daemon = True
                self._timer.start()
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("on_event raised for %s", event)

    # ----- inside, under the lock -------------------------------------------
    def _frame(self) -> int:
        return max(0, round((self._clock() - self._origin) * RATE))

    def _schedule(self, track: _WavTrack, now: int, *, fade_in: bool) -> None:
        assert track.pcm is not None
        first = min(round(track.position * RATE), track.pcm.frames)
        voice = _Voice(track.pcm, first, self._volume, fade_in=fade_in and first > 0)
        t0 = max([now] + [v.end for v in self._voices])  # after what still fades out
        track.voice = _Scheduled(voice, t0, track)
        self._voices.append(track.voice)

    def _let_go(self, track: _WavTrack | None, fade: float, now: int) -> None:
        if track is not None and track.voice is not None:
            self._fade(track.voice, fade, now)
            track.voice = None

    def _fade(self, v: _Scheduled, fade: float, now: int) -> float:
        at = max(0, now - v.t0)
        begins = (v.voice.first + min(at, v.voice.end)) / RATE
        v.voice.fade_out(at, max(round(fade * RATE), round(DECLICK * RATE)))
        v.track = None
        if at == 0:  # it had not begun: nothing of it is heard
            self._voices.remove(v)
        return begins

    def _advance(self, until: int | None = None) -> int:
        """Write the time line up to `until` (default: now); returns it."""
        target = self._frame() if until is None else until
        if target > WAV_MAX_FRAMES:
            raise GuideError(f"{self.path}: what is to be written lasts {clock(target / RATE)}, "
                             f"longer than a WAV file can hold ({clock(WAV_MAX_SECONDS)}): "
                             "write a shorter stretch of time")
        while self._written < target:
            v = self._voices[0] if self._voices else None
            if v is None or self._written < v.t0:
                stop = target if v is None else min(target, v.t0)
                self._silence(stop - self._written)
                continue
            stop = min(target, v.end)
            if stop > self._written:
                self._wav.writeframesraw(v.voice.buf[self._written - v.t0:stop - v.t0])  # no copy
                self._written = stop
            if self._written >= v.end:
                self._voices.pop(0)
                track, v.track = v.track, None  # no cycle keeps its samples alive
                if track is not None:
                    track.voice = None
                    if track is self._track:
                        self._track = None
                        self._outbox.append(Finished(path=track.path))
        return target

    def _silence(self, frames: int) -> None:
        block = bytes(SAMPLE_WIDTH * min(frames, RATE))
        while frames > 0:
            n = min(frames, RATE)
            self._wav.writeframesraw(block[:n * SAMPLE_WIDTH])
            frames -= n
            self._written += n


class ManualClock:
    """A clock that moves only when told: `clock.now = 12.5`. For WavWriter and
    Recorder driven in virtual time (a replay, a test)."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------
# A recorder, for tests of what drives a player

@dataclass(frozen=True, kw_only=True)
class Call:
    """One call a Recorder received, at its clock's time `t`."""

    t: float
    name: str  # play, stop, pause, resume, volume, prefetch, close
    path: Path | None = None
    offset: float | None = None
    fade: float | None = None
    volume: float | None = None
    paths: tuple[Path, ...] = ()


class Recorder:
    """A Player that plays nothing and remembers every call; it keeps the
    position like a real player would, on its clock. A test ends the current
    track as an output would report it, with `finish()` or `fail(message)`.

        rec = Recorder(events.append, clock=ManualClock())
        device_under_test(rec)
        assert [c.name for c in rec.calls] == ["play", "stop"]
        rec.finish()        # on_event(Finished(path)) for the track playing
    """

    def __init__(self, on_event: OnEvent, *, clock: Callable[[], float] = time.monotonic,
                 volume: float = 1.0):
        self._on_event, self._clock = on_event, clock
        self._volume = _check_volume(volume)
        self.calls: list[Call] = []
        self.playing: Path | None = None  # the current track, paused or not
        self.paused = False
        self.closed = False
        self._position = 0.0  # s, at self._since (or while paused)
        self._since = 0.0

    @property
    def volume(self) -> float:
        return self._volume

    def _record(self, name: str, **fields: Any) -> None:
        if self.closed:
            raise RuntimeError("the player is closed")
        self.calls.append(Call(t=self._clock(), name=name, **fields))

    def play(self, path: Path, *, offset: float = 0.0) -> None:
        self._record("play", path=Path(path), offset=offset)
        self.playing, self.paused = Path(path), False
        self._position, self._since = max(0.0, offset), self._clock()

    def stop(self, *, fade: float = 0.0) -> None:
        self._record("stop", fade=fade)
        self.playing, self.paused = None, False

    def pause(self) -> None:
        self._record("pause")
        if self.playing is not None and not self.paused:
            self._position, self.paused = self.position() or 0.0, True

    def resume(self) -> None:
        self._record("resume")
        if self.playing is not None and self.paused:
            self.paused, self._since = False, self._clock()

    def set_volume(self, volume: float) -> None:
        volume = _check_volume(volume)
        self._record("volume", volume=volume)
        self._volume = volume

    def position(self) -> float | None:
        if self.playing is None:
            return None
        if self.paused:
            return self._position
        return self._position + max(0.0, self._clock() - self._since)

    def prefetch(self, paths: Sequence[Path]) -> None:
        self._record("prefetch", paths=tuple(Path(p) for p in paths))

    def close(self) -> None:
        self._record("close")
        self.closed = True

    def finish(self) -> None:
        """The current track ends by itself: report Finished as an output would."""
        path = self._current()
        self.playing, self.paused = None, False
        self._on_event(Finished(path=path))

    def fail(self, message: str) -> None:
        """The current track cannot be played: report Failed as an output would."""
        path = self._current()
        self.playing, self.paused = None, False
        self._on_event(Failed(path=path, message=message))

    def _current(self) -> Path:
        if self.playing is None:
            raise RuntimeError("nothing is playing")
        return self.playing


__all__ = ["Call", "Failed", "Finished", "ManualClock", "Player", "PlayerEvent", "Recorder",
           "SimpleaudioPlayer", "WavWriter", "check_device"]
