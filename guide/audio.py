"""Decoded tracks: one output format, a byte-budget cache, a background loader.

Every track is decoded once into the output format, 16-bit signed
little-endian mono at `RATE` Hz (the demo narrations are 24 kHz mono Opus, so
nothing is lost), and kept in a `TrackCache` while it is likely to be played.
A `TrackLoader` decodes on its own thread, urgent requests (a track the
visitor is waiting for) before prefetches, so nothing the engine or the scan
loop does ever waits on a decoder:

    loader = TrackLoader(TrackCache(budget=32 * 2**20))
    loader.prefetch(likely_next(site, "dome", "en"))    # returns at once
    pcm = loader.load(site.track_path("en/dome.opus")).result()   # done at once on a hit
    pcm.duration, pcm.array()                           # seconds; int16 samples

Decoding runs pydub's converter (ffmpeg, `pydub.AudioSegment.converter`) and
has it convert too: channels, rate and sample width in one pass, streamed into
the result. pydub's own `from_file` was measured on a 130 s Opus track: it
hands back 32-bit integer samples at 48 kHz (which simpleaudio would read as
float), peaks at 70 MB more memory, and its `set_frame_rate` (audioop) holds
the GIL for about 70 ms, a stall of every other thread; its `parameters`
cannot reach ffmpeg's output options (they land after the output name, and
ffmpeg ignores them). This way a decode costs the result's size (read from
ffmpeg's pipe a megabyte at a time into one growing buffer) and leaves the GIL
alone. `stream` hands over the same samples a chunk at a time, for an analysis
whose memory must not grow with the track (`guide check`).

A track longer than `guide.tracks.MAX_SECONDS` is refused (`TrackTooLong`):
by the length in its WAV or Ogg header before ffmpeg starts, or once that
much has been decoded when there is no such header (no ffprobe is run: a
visitor may be waiting for the track).

A file that is missing, empty, cut short (an Ogg stream without its last page,
a WAV shorter than its header says) or that ffmpeg cannot read raises
`TrackError` naming the file; truncated MP3s cannot be told from short ones.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from guide import tracks
from guide.errors import TrackError
from guide.site import Site
from guide.tracks import TrackTooLong, check_complete, check_regular

logger = logging.getLogger("guide.audio")

RATE = 24_000  # Hz: the demo's narrations are made at 24 kHz; plenty for speech
SAMPLE_WIDTH = 2  # bytes: 16-bit signed, little-endian
CHANNELS = 1
BYTES_PER_SECOND = RATE * SAMPLE_WIDTH * CHANNELS  # 48 kB/s, 2.9 MB a minute

# Enough for the current track and the next few: the demo's narrations last
# 30-90 s (1.4-4.3 MB each decoded); 32 MB holds about 11 minutes of audio.
DEFAULT_BUDGET = 32 * 2**20

_FAILURES_KEPT = 256  # undecodable files remembered, so a broken track fails at once
CHUNK = 1 << 20  # bytes of samples read from ffmpeg at a time (22 s of audio)


@dataclass(frozen=True, kw_only=True)
class Pcm:
    """One decoded track in the output format, and the file it came from.

        pcm = decode(Path("tracks/en/dome.opus"))
        pcm.duration          # 61.3 (seconds)
        pcm.array()[:24000]   # the first second, int16, read-only
    """

    path: Path
    samples: bytes | bytearray  # int16 little-endian mono at RATE; never changed
    mtime_ns: int  # the file's, when it was decoded: a changed file is decoded again
    size: int

    @property
    def frames(self) -> int:
        return len(self.samples) // SAMPLE_WIDTH

    @property
    def duration(self) -> float:
        return self.frames / RATE

    def array(self) -> np.ndarray:
        """The samples as a read-only int16 array (no copy)."""
        a = np.frombuffer(self.samples, dtype="<i2")
        a.flags.writeable = False
        return a


def decode(path: str | os.PathLike[str], *, started: Callable[[subprocess.Popen], None] | None = None) -> Pcm:
    """Decode an audio file (anything ffmpeg reads) into the output format.

    Raises TrackError naming the file when it is missing, empty, truncated,
    undecodable or longer than `guide.tracks.MAX_SECONDS` (TrackTooLong).
    `started` receives the ffmpeg process as soon as it runs, for a caller
    that may need to terminate it (the loader, for an urgent track).
    """
    path = Path(path)
    seconds = tracks.header_length(path)  # a long WAV or Ogg track is refused before decoding
    if seconds is not None and seconds > tracks.MAX_SECONDS:
        raise TrackTooLong(path, seconds)
    limit = round(tracks.MAX_SECONDS * RATE) * SAMPLE_WIDTH  # when the header is wrong or silent
    samples = bytearray()  # grown in place: no list of chunks joined into a second copy
    st = None
    with contextlib.closing(_chunks(path, started)) as chunks:  # closed: ffmpeg ends with it
        for chunk, st in chunks:
            samples += chunk
            if len(samples) > limit:
                raise TrackTooLong(path, None)
    assert st is not None
    return Pcm(path=path, samples=samples, mtime_ns=st.st_mtime_ns, size=st.st_size)


def stream(path: str | os.PathLike[str], chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """The samples `decode` would give, as int16 arrays of at most `chunk`
    bytes, in order, however long the track: the memory of one chunk. Raises
    TrackError as `decode` does (but no TrackTooLong): a damaged file only
    after its last chunk, when ffmpeg has said so.

        peak = max(int(np.abs(a.astype(np.int32)).max()) for a in stream(path))
    """
    with contextlib.closing(_chunks(Path(path), None, chunk)) as chunks:
        for data, _ in chunks:
            yield np.frombuffer(data, dtype="<i2")


def _chunks(path: Path, started: Callable[[subprocess.Popen], None] | None,
            chunk: int = CHUNK) -> Iterator[tuple[bytes, os.stat_result]]:
    """ffmpeg's output for `path`, a whole number of samples at a time, each
    with the file's stat; the checks and errors of `decode`. Closing the
    generator early terminates ffmpeg."""
    AudioSegment = audio_segment()  # its converter setting says which ffmpeg to run
    try:
        st = path.stat()
    except FileNotFoundError:
        raise TrackError(f"{path}: track not found; check the file exists, and the "
                         "tracks_dir and tracks of the zone map") from None
    except OSError as e:
        raise TrackError(f"{path}: cannot read the track ({e.strerror})") from None
    check_regular(path, st)  # ffmpeg would wait on a pipe for a writer forever
    if st.st_size == 0:
        raise TrackError(f"{path}: the file is empty; export the track again")
    check_complete(path, st.st_size)
    chunk -= chunk % SAMPLE_WIDTH
    command = [AudioSegment.converter, "-nostdin", "-hide_banner", "-loglevel", "error",
               "-i", str(path), "-map", "0:a:0", "-vn",
               "-ac", str(CHANNELS), "-ar", str(RATE), "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"]
    # ffmpeg's complaints go to a file, not a pipe: nobody has to drain it
    # while the samples are read, and a flood of them cannot stall ffmpeg
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=errors)
        except FileNotFoundError:
            raise TrackError(f"{path}: cannot decode: {AudioSegment.converter!r} (ffmpeg) is not "
                             "installed; install ffmpeg (./bootstrap does)") from None
        total = 0
        try:
            if started is not None:
                started(process)
            assert process.stdout is not None
            carry = b""  # an odd byte left at the end of a read
            while True:
                data = process.stdout.read(chunk)
                if not data:
                    break
                if carry:
                    data, carry = carry + data, b""
                if len(data) % SAMPLE_WIDTH:
                    data, carry = data[:-1], data[-1:]
                if data:
                    total += len(data)
                    yield data, st
            process.wait()
        finally:
            process.stdout.close()  # first: an ffmpeg blocked writing to a full pipe then fails at once
            if process.returncode is None:  # the caller stopped early, or an error
                _terminate(process)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:  # it ignored the SIGTERM
                    process.kill()
                    process.wait()
        errors.seek(0)
        message = _ffmpeg_message(errors.read(64 * 1024), path)
    if process.returncode != 0:
        raise TrackError(f"{path}: cannot be decoded ({message or f'ffmpeg exit status {process.returncode}'}); "
                         "export it again as Ogg Opus, Ogg Vorbis, FLAC, MP3 or WAV")
    if message:
        # ffmpeg went on past damaged data: the visitor would hear a glitch or a cut
        raise TrackError(f"{path}: the audio is damaged ({message}); export the track again")
    if total < SAMPLE_WIDTH:
        raise TrackError(f"{path}: contains no audio; export the track again")


def audio_segment() -> type:
    """pydub's AudioSegment class. pydub 0.25's source has regular expressions
    with invalid escapes, which warn when it is first compiled (a
    DeprecationWarning, a SyntaxWarning from Python 3.12): where warnings are
    errors, as in the test suite, that would break the import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydub import AudioSegment
    return AudioSegment


def _ffmpeg_message(stderr: bytes, path: Path) -> str:
    """ffmpeg's first complaint, without its "[decoder @ 0x...]" or path prefix."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("Last message repeated"):
            continue
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1]
        if line.startswith(f"{path}: "):
            line = line[len(f"{path}: "):]
        return line
    return ""


class TrackCache:
    """Decoded tracks, least recently used dropped first, within a byte budget.

    Keyed by path and checked against the file's mtime and size, so a track
    edited on disk is decoded again. Thread-safe.

        cache = TrackCache(budget=32 * 2**20)
        cache.put(decode(path))
        cache.get(path)        # the Pcm, or None if absent or the file changed
    """

    def __init__(self, budget: int = DEFAULT_BUDGET):
        if budget < 0:
            raise ValueError(f"budget must be >= 0 bytes, not {budget}")
        self.budget = budget
        self._entries: OrderedDict[str, Pcm] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        """Bytes of samples held now (always <= budget)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: str | os.PathLike[str]) -> Pcm | None:
        key, identity = _key(path), _identity(path)
        with self._lock:
            pcm = self._entries.get(key)
            if pcm is None:
                return None
            if identity != (pcm.mtime_ns, pcm.size):
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return pcm

    def touch(self, path: str | os.PathLike[str]) -> bool:
        """Mark a track as just used (it is dropped last); False if not held."""
        return self.get(path) is not None

    def put(self, pcm: Pcm) -> None:
        """Keep `pcm`, dropping the least recently used to stay in budget.
        A track larger than the whole budget is not kept."""
        n = len(pcm.samples)
        key = _key(pcm.path)
        with self._lock:
            if key in self._entries:
                self._remove(key)
            if n > self.budget:
                return
            while self._bytes + n > self.budget:
                self._remove(next(iter(self._entries)))
            self._entries[key] = pcm
            self._bytes += n

    def _remove(self, key: str) -> None:
        self._bytes -= len(self._entries.pop(key).samples)


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(path)


def _identity(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass(eq=False)
class _Job:
    path: Path
    future: Future = field(default_factory=Future)
    urgent: bool = False


class TrackLoader:
    """Decodes tracks on one worker thread into a TrackCache.

    `load` is for a track wanted now: it goes before any prefetch, and a
    prefetch being decoded is interrupted (and decoded again later) so the
    wanted track does not wait for it. `prefetch` replaces the previous list
    of likely tracks; one too large for the cache's budget is not decoded
    ahead (it would be thrown away, after costing its size in memory). Broken
    files are remembered (until they change) and fail at once the next time.

        loader = TrackLoader()
        loader.prefetch([a, b, c])          # most likely first
        future = loader.load(b)             # concurrent.futures.Future[Pcm]
        future.add_done_callback(...)       # TrackError as its exception if b is broken
        loader.close()
    """

    def __init__(self, cache: TrackCache | None = None, *,
                 decoder: Callable[..., Pcm] = decode):
        self.cache = cache if cache is not None else TrackCache()
        self._decode = decoder
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}  # queued or running, by path key
        self._urgent: deque[_Job] = deque()
        self._likely: list[_Job] = []
        self._running: _Job | None = None
        self._process: subprocess.Popen | None = None
        self._interrupted = False
        self._failures: OrderedDict[str, tuple[tuple[int, int] | None, str]] = OrderedDict()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="guide-track-loader", daemon=True)
        self._thread.start()

    def load(self, path: str | os.PathLike[str]) -> Future:
        """A Future of the decoded track; already done when it was cached or is
        known to be broken."""
        path = Path(path)
        pcm = self.cache.get(path)
        if pcm is not None:
            return _done(pcm)
        key = _key(path)
        with self._cond:
            failure = self._failure(key, path)
            if failure is not None:
                return _failed(TrackError(failure))
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = _Job(path=path)
            if not job.urgent:
                job.urgent = True
                if job in self._likely:
                    self._likely.remove(job)
                if job is not self._running:
                    self._urgent.append(job)
            running = self._running
            if running is not None and not running.urgent:
                self._interrupted = True  # the worker puts it back among the likely ones
                if self._process is not None:
                    _terminate(self._process)
            self._cond.notify_all()
            return job.future

    def prefetch(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Decode these in the background, most likely first, instead of the
        previous list; tracks already cached are only marked as recently used."""
        paths = [Path(p) for p in paths]
        for p in reversed(paths):  # the most likely ends up the most recently used
            self.cache.touch(p)
        with self._cond:
            for job in self._likely:
                if not job.urgent and job is not self._running:
                    self._jobs.pop(_key(job.path), None)
                    job.future.cancel()
            self._likely = []
            seen: set[str] = set()
            for p in paths:
                key = _key(p)
                if key in seen or self._failure(key, p) is not None or self.cache.get(p) is not None:
                    continue
                seen.add(key)
                job = self._jobs.get(key)
                if job is None:
                    job = self._jobs[key] = _Job(path=p)
                if not job.urgent and job is not self._running:
                    self._likely.append(job)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the worker; a decode under way is abandoned."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            if self._process is not None:
                _terminate(self._process)
            self._cond.notify_all()
        self._thread.join(timeout=5)
        for job in self._jobs.values():
            job.future.cancel()

    def __enter__(self) -> TrackLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _failure(self, key: str, path: Path) -> str | None:
        known = self._failures.get(key)
        if known is None:
            return None
        identity, message = known
        if identity != _identity(path):
            del self._failures[key]  # the file changed: try it again
            return None
        return message

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._urgent and not self._likely:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._urgent.popleft() if self._urgent else self._likely.pop(0)
                self._running, self._interrupted = job, False
            if not job.urgent and self._too_big(job.path):
                with self._cond:
                    skip = not job.urgent  # else wanted meanwhile: decode it after all
                    if skip:
                        self._running = None
                        self._jobs.pop(_key(job.path), None)
                if skip:
                    job.future.cancel()
                    continue
            try:
                pcm = self.cache.get(job.path) or self._decode(job.path, started=self._started)
            except TrackError as e:
                outcome: Pcm | Exception = e
            except Exception as e:  # a bug, not the file's fault: report it, keep the worker
                logger.exception("decoding %s", job.path)
                outcome = e
            else:
                outcome = pcm
            with self._cond:
                self._running, self._process = None, None
                if self._closed:
                    return
                if isinstance(outcome, Exception) and self._interrupted:
                    # cut short for an urgent track: again after it (this one may
                    # have become urgent meanwhile too)
                    if job.urgent:
                        self._urgent.append(job)
                    else:
                        self._likely.insert(0, job)
                    continue
                self._jobs.pop(_key(job.path), None)
                if isinstance(outcome, TrackError):
                    self._failures[_key(job.path)] = (_identity(job.path), str(outcome))
                    while len(self._failures) > _FAILURES_KEPT:
                        self._failures.popitem(last=False)
                elif isinstance(outcome, Pcm):
                    self.cache.put(outcome)
            # resolve outside the lock: callbacks run here and may call back in
            try:
                if isinstance(outcome, Exception):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
            except InvalidStateError:
                pass  # cancelled by close() meanwhile

    def _too_big(self, path: Path) -> bool:
        """Whether `path`, decoded, would not fit the cache: a prefetch of it
        would be thrown away, after costing its size in memory."""
        seconds = tracks.header_length(path)  # None: not known without a decoder; decode it
        return seconds is not None and seconds * BYTES_PER_SECOND > self.cache.budget

    def _started(self, process: subprocess.Popen) -> None:
        with self._cond:
            self._process = process
            if self._closed or (self._interrupted and self._running is not None and not self._running.urgent):
                _terminate(process)


def _terminate(process: subprocess.Popen) -> None:
    try:
        process.terminate()
    except OSError:
        pass  # already gone


def _done(pcm: Pcm) -> Future:
    f: Future = Future()
    f.set_result(pcm)
    return f


def _failed(error: Exception) -> Future:
    f: Future = Future()
    f.set_exception(error)
    return f


def likely_next(site: Site, exhibit_id: str, lang: str, k: int = 3, *,
                skip: Collection[str] = ()) -> list[Path]:
    """The tracks a visitor at `exhibit_id` is likely to need next, most
    likely first: that exhibit's own, then those of its `k` nearest
    neighbours (by distance between where visitors stand), each in the
    visitor's language or the first of its fallbacks that has one. Exhibits
    in `skip` (say, the ones already heard) are left out.

        player.prefetch(likely_next(site, "dome", "en", skip=engine.heard))
    """
    here = site.exhibit(exhibit_id)
    others = sorted((e for e in site.exhibits if e.id != exhibit_id and e.id not in skip),
                    key=lambda e: (math.hypot(e.x - here.x, e.y - here.y), e.id))
    paths: list[Path] = []
    own = None if exhibit_id in skip else _track(site, exhibit_id, lang)
    if own is not None:
        paths.append(own)
    wanted = len(paths) + max(0, k)
    for exhibit in others:  # neighbours without a track in the chain are passed over
        if len(paths) >= wanted:
            break
        path = _track(site, exhibit.id, lang)
        if path is not None and path not in paths:
            paths.append(path)
    return paths


def _track(site: Site, exhibit_id: str, lang: str) -> Path | None:
    found = site.track_for(exhibit_id, lang)
    return None if found is None else site.track_path(found[1])
