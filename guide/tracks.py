"""How long a track lasts, read from the audio file itself.

WAV headers are read directly (the standard library's `wave`), and so are Ogg
Opus and Ogg Vorbis files (the granule position of the last page says how
many samples there are: no decoder needed, about 1,000 times faster than
asking ffprobe); anything else through ffprobe, which ships with ffmpeg
(pydub's decoder). Results are cached
per (path, mtime, size): a simulation asks for the same few tracks thousands
of times.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import struct
import subprocess
import wave
from pathlib import Path

from guide.errors import TrackError


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in `path`; TrackError naming the file if unreadable.

    >>> duration("tracks/en/dome.opus")  # doctest: +SKIP
    61.3
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise TrackError(f"{p}: cannot read the track ({e.strerror}); check the path in zones.yaml") from None
    check_regular(p, st)
    return _duration(str(p), st.st_mtime_ns, st.st_size)


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


@functools.lru_cache(maxsize=4096)
def _duration(path: str, _mtime: int, size: int) -> float:
    try:
        open(path, "rb").close()
    except PermissionError:
        raise permission_denied(path) from None
    except OSError:
        pass  # the readers below say what is wrong
    no_frames = False  # a WAV header announcing no audio: empty, unless ffprobe finds some
    if path.lower().endswith(".wav"):
        try:
            with wave.open(path, "rb") as w:
                frames, rate = w.getnframes(), w.getframerate()
                announced = frames * w.getsampwidth() * w.getnchannels()
        except (wave.Error, EOFError, OSError):
            pass  # WAV variants `wave` does not know (float, extensible): ask ffprobe
        else:
            if rate <= 0:
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
            ["ffprobe", "-v", "error", "-show_entries", "format=duration",
             "-of", "json", path],
            capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:
        raise TrackError("ffprobe not found: install ffmpeg (./bootstrap does)") from None
    try:
        seconds = float(json.loads(out.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        if no_frames:
            raise TrackError(f"{path}: the track is empty (it holds no audio); "
                             "re-export it") from None
        detail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no duration"
        raise TrackError(f"{path}: not a readable audio file ({detail}); re-export it") from None
    if not seconds > 0:
        raise TrackError(f"{path}: the track is empty; re-export it")
    return seconds


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
            if granule > skip and rate > 0:
                return (granule - skip) / rate
            return None
        at = tail.rfind(b"OggS", 0, at)
    return None
