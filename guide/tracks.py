"""How long a track lasts, read from the audio file itself.

WAV headers are read directly (the standard library's `wave`), and so are Ogg
Opus and Ogg Vorbis files (the granule position of the last page says how
many samples there are: no decoder needed, about 1,000 times faster than
asking ffprobe); anything else through ffprobe, which ships with ffmpeg
(pydub's decoder). Results are cached
per (path, mtime, size): a simulation asks for the same few tracks thousands
of times.

A track may last at most `MAX_SECONDS` (an hour): the device holds a track it plays
decoded in memory, whole (simpleaudio plays from one buffer), so a longer one
is refused here, by `guide check` and by the player's decoder, naming the
track, its length and the limit. So is a file cut short or damaged
(`check_complete`: an Ogg stream without its whole last page, or with a page
that fails its checksum; a WAV shorter than its header says), which the
decoder refuses too: its header or last page would give a length.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import struct
import subprocess
import wave
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from guide.errors import TrackError, counted

# The longest track the guide plays. Decoded (16-bit mono at 24 kHz, 2.9 MB a
# minute) it is held in memory whole while it plays, twice on the device (the
# decoded track, and the copy simpleaudio reads, scaled by the volume and
# faded): a 45-minute planetarium show costs about 260 MB, an hour 350 MB.
MAX_SECONDS = 60 * 60.0

# A WAV header's sample rate above this is negative to ffmpeg, which reads the
# field as a signed number and refuses the file ("Invalid sample rate: -1")
MAX_RATE = 2**31 - 1


class TrackTooLong(TrackError):
    """A track that lasts longer than the guide can play (`MAX_SECONDS`);
    `seconds` is None when only the decoder found out (the header did not say)."""

    def __init__(self, path: str | os.PathLike, seconds: float | None):
        self.path, self.seconds = Path(path), seconds
        limit = counted(round(MAX_SECONDS / 60), "minute")
        lasts = f"lasts {clock(seconds)}" if seconds is not None else f"lasts more than {limit}"
        super().__init__(f"{path}: the track {lasts}, longer than the {limit} the guide can play "
                         f"(a track is held in memory whole while it plays); split it into parts "
                         f"of at most {limit}, one exhibit each")


def clock(seconds: float) -> str:
    """'1:05:00', '45:00', '0:30': a track's length as a player shows it."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in `path`; TrackError naming the file if unreadable,
    TrackTooLong if it lasts more than `MAX_SECONDS`.

    >>> duration("tracks/en/dome.opus")  # doctest: +SKIP
    61.3
    """
    seconds = length(path)
    if seconds > MAX_SECONDS:
        raise TrackTooLong(path, seconds)
    return seconds


def length(path: str | os.PathLike) -> float:
    """Seconds of audio in `path`, however long; TrackError naming the file if
    unreadable. Use `duration` for a track that is to be played."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise TrackError(f"{p}: cannot read the track ({e.strerror}); check the path in zones.yaml") from None
    check_regular(p, st)
    return _duration(str(p), st.st_mtime_ns, st.st_size)


def durations(paths: Iterable[Path], *, measure: Callable[[Path], float] = duration,
              jobs: int = 8) -> tuple[dict[Path, float], dict[Path, TrackError]]:
    """`measure` (default: `duration`) of each of `paths`, read `jobs` at a
    time (ffprobe takes ~0.1 s a file); the tracks that cannot be played
    apart, each with its TrackError, so that a caller can name them all."""
    paths = list(dict.fromkeys(paths))

    def one(path: Path) -> float | TrackError:
        try:
            return measure(path)
        except TrackError as e:
            return e

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(zip(paths, pool.map(one, paths)))
    return ({p: r for p, r in results.items() if not isinstance(r, TrackError)},
            {p: r for p, r in results.items() if isinstance(r, TrackError)})


@dataclass(frozen=True, kw_only=True)
class Unplayable:
    """A track of the zone map that cannot be played, where, and why.

    >>> str(Unplayable(track="en/dome.opus", exhibit="dome", lang="en", reason="the file is empty"))
    'en/dome.opus (dome, en): the file is empty'
    """

    track: str  # relative to tracks_dir, as in zones.yaml
    exhibit: str
    lang: str
    reason: str  # the TrackError's message, without the path in front

    def __str__(self) -> str:
        return f"{self.track} ({self.exhibit}, {self.lang}): {self.reason}"

    def as_dict(self) -> dict:
        return {"track": self.track, "exhibit": self.exhibit, "lang": self.lang, "error": self.reason}


def reason(error: Exception, path: str | os.PathLike) -> str:
    """A TrackError's message without the path in front (for a message that
    names the track its own way)."""
    message = str(error)
    for prefix in (f"{path}: ", f"{path} "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def check_regular(path: str | os.PathLike, st: os.stat_result) -> None:
    """TrackError unless `st` (of `path`) is a regular file: a folder, or a
    pipe, device or socket (reading a pipe would wait for a writer forever)."""
    if stat.S_ISDIR(st.st_mode):
        raise TrackError(f"{path}: is a directory, not an audio file; check the path in zones.yaml")
    if not stat.S_ISREG(st.st_mode):
        raise TrackError(f"{path}: is not a regular file (a pipe, a device or a socket); "
                         "a track must be an audio file")


def permission_denied(path: str | os.PathLike) -> TrackError:
    """The error for a track that may not be read: not the audio's fault, so
    exporting it again would not help."""
    return TrackError(f"{path}: cannot be read (permission denied); make it readable "
                      f"(chmod a+r {path})")


def check_complete(path: str | os.PathLike, size: int) -> None:
    """Refuse a file cut short where ffmpeg would silently decode what is left:
    an Ogg stream's pages must all be whole and pass their checksums (ffmpeg
    drops a page that fails it), the last flagged end-of-stream, and a WAV
    must hold as many bytes as its header announces. TrackError, never a
    wait, for a pipe or a folder (it may have replaced the file since its stat)."""
    try:
        _check_container(path, size)
    except PermissionError:
        raise permission_denied(path) from None
    except OSError as e:
        raise TrackError(f"{path}: cannot read the track ({e.strerror})") from None


def _check_container(path: str | os.PathLike, size: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a pipe does not wait for a writer
    try:
        check_regular(path, os.fstat(fd))
    except TrackError:
        os.close(fd)
        raise
    with open(fd, "rb") as f:
        head = f.read(12)
        if head[:4] == b"OggS":
            _check_ogg_pages(path, f, size)
        elif head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            _check_wav_size(path, f, size)


def _check_ogg_pages(path: str | os.PathLike, f, size: int) -> None:
    # Every page, from the first: each begins where the one before ends, is
    # whole and passes its checksum (ffmpeg drops a page that fails it, and
    # the device's decoder then refuses the track: so does its length); the
    # last is flagged end-of-stream.
    f.seek(0)
    offset, flags = 0, 0
    while offset < size:
        header = f.read(27)
        if len(header) == 27 and (header[:4] != b"OggS" or header[4] != 0):
            raise TrackError(f"{path}: the file is damaged (no Ogg page where one should begin, "
                             f"at byte {offset:,}); export the track again, or copy it again")
        table = f.read(header[26]) if len(header) == 27 else b""
        body = f.read(sum(table))
        if len(header) < 27 or len(table) < header[26] or len(body) < sum(table):
            raise TrackError(f"{path}: the file is cut short (it ends inside an Ogg page); "
                             "export the track again, or copy it again in full")
        page = header + table + body
        if not _ogg_page_intact(page, 0):
            raise TrackError(f"{path}: the file is damaged (its Ogg page at byte {offset:,} fails "
                             "its checksum); export the track again, or copy it again")
        offset, flags = offset + len(page), header[5]
    if not flags & 0x04:
        raise TrackError(f"{path}: the file is cut short (its Ogg stream has no last page); "
                         "export the track again, or copy it again in full")


def _check_wav_size(path: str | os.PathLike, f, size: int) -> None:
    offset = 12
    while offset + 8 <= size:
        f.seek(offset)
        chunk = f.read(8)
        if len(chunk) < 8:
            return
        ident, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if ident == b"data":
            # 0 and 0xFFFFFFFF: written by a streaming encoder that could not seek back
            if length not in (0, 0xFFFFFFFF) and offset + 8 + length > size:
                missing = offset + 8 + length - size
                raise TrackError(f"{path}: the file is cut short ({missing} bytes of audio missing "
                                 "of what its header announces); export the track again")
            return
        offset += 8 + length + (length & 1)  # chunks are padded to even sizes


@functools.lru_cache(maxsize=4096)
def _duration(path: str, _mtime: int, size: int) -> float:
    seconds = _measure(path, size)
    # a file cut short or damaged has a length (its header's, or what ffprobe
    # finds left), but the device's decoder refuses it: so does this
    check_complete(path, size)
    return seconds


def _measure(path: str, size: int) -> float:
    try:
        open(path, "rb").close()
    except PermissionError:
        raise permission_denied(path) from None
    except OSError:
        pass  # the readers below say what is wrong
    no_frames = False  # a WAV header announcing no audio: empty, unless ffprobe finds some
    if path.lower().endswith(".wav"):
        header = _wav_header(path)  # None: a WAV variant `wave` does not know; ask ffprobe
        if header is not None:
            frames, rate, announced = header
            if not 0 < rate <= MAX_RATE:
                raise TrackError(f"{path}: its header gives a sample rate of {rate} Hz, so it "
                                 "cannot be played; re-export it")
            if 0 < announced <= size:
                return frames / float(rate)
            # 0 or more than the file holds: a streaming encoder's header (0 or
            # 0xFFFFFFFF bytes), or an empty track; ffprobe measures the audio
            no_frames = frames == 0
    elif path.lower().endswith((".opus", ".ogg", ".oga")):
        seconds = _ogg_duration(path)
        if seconds is not None:
            return seconds
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name",
             "-of", "json", path],
            capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        raise TrackError("ffprobe not found: install ffmpeg (./bootstrap does)") from None
    try:
        found = json.loads(out.stdout)
        seconds = float(found["format"]["duration"])
        # the device decodes the first audio stream: ffprobe gives a length
        # (from the header) even for a codec ffmpeg has no decoder for, such
        # as a WAV whose format code is 0 or unknown
        audio = [s for s in found.get("streams", ()) if s.get("codec_type") == "audio"]
    except (ValueError, KeyError, TypeError, AttributeError):
        if no_frames:
            raise TrackError(f"{path}: the track is empty (it holds no audio); "
                             "re-export it") from None
        detail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no duration"
        detail = detail.removeprefix(f"{path}: ")  # the message names the file once
        raise TrackError(f"{path}: not a readable audio file ({detail}); re-export it") from None
    if not seconds > 0:
        raise TrackError(f"{path}: the track is empty; re-export it")
    if not audio:
        raise TrackError(f"{path}: holds no audio stream; export the narration again as Ogg Opus, "
                         "Ogg Vorbis, FLAC, MP3 or WAV")
    if not audio[0].get("codec_name"):
        raise TrackError(f"{path}: its audio is in a format ffmpeg has no decoder for; export it "
                         "again as Ogg Opus, Ogg Vorbis, FLAC, MP3 or WAV")
    return seconds


def header_length(path: str | os.PathLike) -> float | None:
    """The seconds a WAV or Ogg file's own header gives, read without running
    a decoder (no ffprobe: for the device's decoder, which must not wait on
    one); None for other formats, or when the header does not say."""
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None  # opening a pipe would wait for a writer forever
    if path.lower().endswith(".wav"):
        header = _wav_header(path)
        if header is not None and 0 < header[1] <= MAX_RATE and 0 < header[2] <= st.st_size:
            return header[0] / float(header[1])
        return None
    if path.lower().endswith((".opus", ".ogg", ".oga")):
        return _ogg_duration(path)
    return None


def _wav_header(path: str) -> tuple[int, int, int] | None:
    """(frames, sample rate, bytes of audio announced) of a WAV header, or
    None if `wave` cannot read it (ffprobe and ffmpeg judge the file then)."""
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes(), w.getframerate(), w.getnframes() * w.getsampwidth() * w.getnchannels()
    # RuntimeError: `wave` skipping a chunk whose size runs past the end of the file
    except (wave.Error, EOFError, OSError, RuntimeError):
        return None


def _ogg_duration(path: str) -> float | None:
    """Seconds of a single-stream Ogg Opus or Vorbis file, from its first
    page (codec, sample rate, Opus pre-skip) and the granule position of its
    last page; None when the file is anything else (ffprobe decides then)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return None
    if len(head) < 28 or head[:4] != b"OggS":
        return None
    first = head[27 + head[26]:]  # the first packet, after the segment table
    if first[:8] == b"OpusHead" and len(first) >= 12:
        rate, skip = 48000, struct.unpack_from("<H", first, 10)[0]  # Opus counts at 48 kHz
    elif first[:7] == b"\x01vorbis" and len(first) >= 16:
        rate, skip = struct.unpack_from("<I", first, 12)[0], 0
    else:
        return None
    serial = head[14:18]
    at = tail.rfind(b"OggS")
    while at >= 0:  # the last page of this stream (a complete header, that is)
        if len(tail) - at >= 27 and tail[at + 14:at + 18] == serial:
            granule = struct.unpack_from("<q", tail, at + 6)[0]
            # a page cut short or failing its checksum may hold any granule
            # (one damaged byte claimed 138 million hours): the header does
            # not say then, and check_complete names the damage
            if granule > skip and rate > 0 and _ogg_page_intact(tail, at):
                return (granule - skip) / rate
            return None
        at = tail.rfind(b"OggS", 0, at)
    return None


_REFLECTED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _ogg_page_intact(data: bytes, at: int) -> bool:
    """Whether the Ogg page at `data[at:]` is whole and its CRC matches.

    Ogg's CRC-32 is zlib's polynomial unreflected, with no initial or final
    inversion: zlib's C code computes it over the bytes bit-reversed, with
    its register started at 0 (crc32's `value` is the register inverted)."""
    if len(data) - at < 27:
        return False
    segments = data[at + 26]
    end = at + 27 + segments + sum(data[at + 27:at + 27 + segments])
    if len(data) < at + 27 + segments or end > len(data):
        return False
    page = data[at:at + 22] + bytes(4) + data[at + 26:end]  # the CRC counts its own field as 0
    register = ~zlib.crc32(page.translate(_REFLECTED), 0xFFFFFFFF) & 0xFFFFFFFF
    return int(f"{register:032b}"[::-1], 2) == struct.unpack_from("<I", data, at + 22)[0]
