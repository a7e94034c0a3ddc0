"""How long a track lasts, read from the audio file itself.

WAV headers are read directly (the standard library's `wave`); anything else
through ffprobe, which ships with ffmpeg (pydub's decoder). Results are cached
per (path, mtime, size): a simulation asks for the same few tracks thousands
of times.
"""

from __future__ import annotations

import functools
import json
import os
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
    return _duration(str(p), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4096)
def _duration(path: str, _mtime: int, _size: int) -> float:
    if path.lower().endswith(".wav"):
        try:
            with wave.open(path, "rb") as w:
                return w.getnframes() / float(w.getframerate())
        except (wave.Error, EOFError, OSError):
            pass  # WAV variants `wave` does not know (float, extensible): ask ffprobe
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
        detail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no duration"
        raise TrackError(f"{path}: not a readable audio file ({detail}); re-export it") from None
    if not seconds > 0:
        raise TrackError(f"{path}: the track is empty; re-export it")
    return seconds
