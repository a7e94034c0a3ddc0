"""The one family of errors the guide raises for a user's mistake.

    GuideError                 anything a user can fix; the CLI prints it, exit 2
    ├── ZoneMapError           zones.yaml is wrong (carries every Problem at once)
    ├── ScanLogError           a scan log, walk or truth CSV is malformed
    ├── TrackError             an audio track is missing or cannot be decoded
    └── DeviceError            no audio device, no Bluetooth adapter, ...

Messages name the file, the line (and column where known), the key and the fix.
Anything else that escapes is a bug in the guide, not the user's fault.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


def counted(n: int, noun: str) -> str:
    """'1 visitor', '3 visitors': a count for a message, in English."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def half_up(x: float) -> int:
    """Halves up, as people round a figure for a message (Python's round()
    sends 6.5 to 6)."""
    return math.floor(x + 0.5)


def listed(names: Iterable[str], most: int = 10) -> str:
    """Names for a message, the first `most` of them: 'a, b, c ...'."""
    names = list(names)
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong in an input file, with where it is and how to fix it."""

    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class GuideError(Exception):
    """A problem the user can fix; str() is the whole message for them."""


class ZoneMapError(GuideError):
    """zones.yaml has one or more problems; all of them are in `problems`."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the zone map:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class ScanLogError(GuideError):
    """A CSV input (scan log, walk, ground truth) is malformed."""


class TrackError(GuideError):
    """An audio track is missing, truncated or cannot be decoded."""


class DeviceError(GuideError):
    """A piece of hardware (audio output, Bluetooth adapter) is unavailable."""
