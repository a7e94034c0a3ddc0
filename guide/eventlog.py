"""The event log of FORMATS.md: one JSON object a line, appended.

A device appends durably (each line flushed and fsynced before `write`
returns), so a crash or power loss loses at most the line being written; on
opening, a torn last line (no newline) left by such a crash is cut away, so
the file is always valid JSON Lines. The simulator writes the same lines
without fsync.

    with EventLog("events.jsonl", durable=True) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.opus"), visitor="device", t=12.5)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

from guide.actions import Action, to_event


class EventLog:
    def __init__(self, path: str | os.PathLike, *, durable: bool = False):
        self.path = Path(path)
        self.durable = durable
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._f: IO[str] = open(self.path, "a", encoding="utf-8")

    def write(self, action: Action, *, visitor: str, t: float) -> None:
        self.write_event(to_event(action, visitor=visitor, t=t))

    def write_event(self, event: dict) -> None:
        self._f.write(json.dumps(event, ensure_ascii=False, separators=(", ", ": ")) + "\n")
        if self.durable:
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            if self.durable:
                os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line that has no newline: the line a crash interrupted."""
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # walk back to the previous newline
            pos = size
            while pos > 0:
                step = min(4096, pos)
                f.seek(pos - step)
                chunk = f.read(step)
                nl = chunk.rfind(b"\n")
                if nl >= 0:
                    f.truncate(pos - step + nl + 1)
                    break
                pos -= step
            else:
                f.truncate(0)
            f.flush()
            os.fsync(f.fileno())
    except FileNotFoundError:
        return
