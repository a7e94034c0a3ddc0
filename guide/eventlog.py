"""The event log of FORMATS.md: one JSON object a line, appended.

A device appends durably (each line written whole, then fsynced, before
`write` returns), so a crash or power loss loses at most the line being
written. A line that cannot be written whole (a full disk) is taken back out
of the file, so the lines after it never follow half a line. On opening, what
a crash leaves at the end is cut away (a torn last line, without its newline;
NUL bytes, where a power cut grew the file but never wrote its last block),
saying so, so the file is always valid JSON Lines. The simulator writes the
same lines without fsync.

An existing file is appended to only if it is an event log: its complete
lines are JSON objects with an "event", shorter than 64 KiB, and an
unfinished last line looks like the start of one of ours. Anything else (a
user's other file, binary data) is refused with a GuideError and left
exactly as it was.

One writer at a time: an EventLog holds an exclusive flock on the file while
it is open (the kernel drops it when the process dies, however it dies), and
opening or checking a log that another process holds so is a GuideError
naming that process.

    with EventLog("events.jsonl", durable=True) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.opus"), visitor="device", t=12.5)
"""

from __future__ import annotations

import codecs
import fcntl
import json
import logging
import os
import stat
from pathlib import Path
from typing import IO

from guide.actions import Action, to_event
from guide.errors import GuideError
from guide.files import append_whole, lock

_CHECKED = 1 << 16  # bytes read at each end of an existing log to tell whether it is one
_OPENING = b'{"visitor": '  # how every line the guide writes begins (to_event, Device._record)
_LONG = f"is longer than any line the guide writes ({_CHECKED // 1024} KiB or more)"

logger = logging.getLogger("guide.eventlog")


class EventLog:
    def __init__(self, path: str | os.PathLike, *, durable: bool = False):
        self.path = Path(path)
        self.durable = durable
        try:
            if self.path.parent != Path(""):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            _regular(self.path)
            # durable: unbuffered, so that a failed write leaves nothing behind to retry later
            self._f: IO[bytes] = open(self.path, "ab+", buffering=0 if durable else -1)
            try:
                # held until close: one writer at a time
                lock(self._f.fileno(), self.path, fcntl.LOCK_EX, option="--events")
                _check(self._f, self.path, repair=True)
                self._good = self._f.seek(0, os.SEEK_END)  # where the last whole line ends
            except BaseException:
                self._f.close()
                raise
        except (FileExistsError, NotADirectoryError):
            raise GuideError(f"{self.path}: cannot open the event log: part of its folder path is a "
                             "file, not a folder; give another --events path") from None
        except OSError as e:
            raise GuideError(f"{self.path}: cannot open the event log ({e.strerror or e}); check that its "
                             "folder exists and is writable, or give another --events path") from None

    def write(self, action: Action, *, visitor: str, t: float) -> None:
        self.write_event(to_event(action, visitor=visitor, t=t))

    def write_event(self, event: dict) -> None:
        data = line(event)
        if not self.durable:
            self._f.write(data)
            return
        fd = self._f.fileno()
        try:
            self._good = append_whole(fd, data, self._good)  # no half line stays in the file
            os.fsync(fd)
        except OSError as e:  # a full disk, a failing card: say which file
            raise OSError(e.errno, e.strerror or str(e), str(self.path)) from None

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.flush()
                if self.durable:
                    os.fsync(self._f.fileno())
            finally:
                self._f.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def line(event: dict) -> bytes:
    """One event as a line of the log (UTF-8, with its newline)."""
    return (json.dumps(event, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode("utf-8")


class NotJSON(ValueError):
    """What `parse` raises: the text is not JSON this program can read.
    `why` says so in a few words ("is not JSON"); str() adds where, if known."""

    def __init__(self, why: str, detail: str = ""):
        super().__init__(f"{why} ({detail})" if detail else why)
        self.why = why


def parse(text: str | bytes) -> object:
    """`text` (UTF-8 if bytes) as parsed JSON; NotJSON for anything else,
    including what json.loads refuses with a ValueError or RecursionError of
    its own (a whole number of thousands of digits, arrays nested thousands
    deep), and text holding half a character (a lone surrogate, "\\udc80",
    which reads but cannot be written back in UTF-8): the guide never writes
    them, a damaged or edited file may hold them."""
    try:
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        value = json.loads(text)
        if "\\u" in text:  # an escape may be a lone surrogate: the value must write back as UTF-8
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        return value
    except UnicodeDecodeError:
        raise NotJSON("is binary data") from None
    except UnicodeEncodeError:
        raise NotJSON("holds half a character (a lone surrogate escape, \\ud800 to \\udfff)") from None
    except json.JSONDecodeError as e:
        raise NotJSON("is binary data" if "\0" in e.doc else "is not JSON", str(e)) from None
    except ValueError:  # int(): a number of more digits than sys.get_int_max_str_digits()
        raise NotJSON("holds a number too long to be one the guide wrote") from None
    except RecursionError:
        raise NotJSON("nests arrays or objects deeper than the guide writes") from None


def check_event_log(path: str | os.PathLike, *, repair: bool = False) -> None:
    """GuideError unless `path` is missing, empty or an event log that no
    other process is writing (an open EventLog); with `repair`, what a crash
    left at its end is cut away (a torn last line: no newline; NUL bytes
    after it or after the last whole line). Reads at most the first and last
    64 KiB (and the trailing NULs). OSError if the file cannot be read."""
    path = Path(path)
    if not _regular(path):
        return
    with open(path, "rb+" if repair else "rb") as f:
        lock(f.fileno(), path, fcntl.LOCK_EX if repair else fcntl.LOCK_SH, option="--events")
        _check(f, path, repair=repair)


def _regular(path: Path) -> bool:
    """False if `path` is missing, True if it is a file; GuideError if it is
    a folder, a device or a pipe (which opening could wait on forever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        raise GuideError(f"{path}: is a folder, not an event log; give a file name for --events")
    if not stat.S_ISREG(st.st_mode):
        raise GuideError(f"{path}: is not a regular file (a device or a pipe); give another --events path")
    return True


def _check(f: IO[bytes], path: Path, *, repair: bool) -> None:
    """`check_event_log` on the open file `f` (readable; writable to repair)."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    end = _before_nuls(f, size)
    if end == 0:
        end = size  # nothing but NULs: no line of ours to keep, and not a log to empty
    f.seek(0)
    head = f.read(min(end, _CHECKED))
    if end > len(head):
        f.seek(max(len(head), end - _CHECKED))
        tail = f.read(end - f.tell())
    else:
        tail = b""
    # no line the guide writes is as long as a window: each window holds the end
    # of a line, so a file is never taken for a log unread (one huge line)
    if end <= 2 * _CHECKED:
        whole, _, torn = (head + tail).rpartition(b"\n")
        lines = whole.split(b"\n")
        longest = max(range(len(lines)), key=lambda i: len(lines[i]))
        if len(lines[longest]) >= _CHECKED:
            raise _foreign(path, f"line {longest + 1} {_LONG}")
        _check_lines(path, lines, first=1)
    else:
        if b"\n" not in head:
            raise _foreign(path, f"line 1 {_LONG}")
        _check_lines(path, head.split(b"\n")[:-1], first=1)  # the last one is cut by the window
        if b"\n" not in tail[:-1]:
            raise _foreign(path, f"a line near its end {_LONG}")
        lines = tail.split(b"\n")
        torn = lines.pop()
        _check_lines(path, lines[1:], first=None)  # the first one is cut by the window
    if len(torn) >= _CHECKED:
        raise _foreign(path, f"its last line {_LONG}")
    if torn and not _looks_torn(torn):
        raise _foreign(path, "its last line is not JSON written by the guide")
    cut = [what for n, what in ((len(torn), f"a torn last line ({len(torn)} bytes)"),
                                (size - end, f"{size - end} NUL bytes")) if n]
    if not cut or not repair:
        return
    f.truncate(end - len(torn))
    f.flush()
    os.fsync(f.fileno())
    logger.warning("%s: cut away %s left at its end by a crash or a power cut", path, " and ".join(cut))


def _before_nuls(f: IO[bytes], size: int) -> int:
    """Where the run of NUL bytes that ends the file begins (`size` if it
    does not end in one)."""
    end = size
    while end > 0:
        n = min(end, _CHECKED)
        f.seek(end - n)
        kept = len(f.read(n).rstrip(b"\0"))
        end -= n - kept
        if kept:
            break
    return end


def _check_lines(path: Path, lines: list[bytes], first: int | None) -> None:
    for i, line in enumerate(lines):
        if not line.strip():
            continue  # a blank line harms nothing
        try:
            event = parse(line)
            why = ("is not a JSON object" if not isinstance(event, dict) else
                   'is a JSON object without an "event"' if not isinstance(event.get("event"), str) else None)
        except NotJSON as e:
            why = e.why
        if why is not None:
            where = f"line {first + i}" if first is not None else "a line near its end"
            raise _foreign(path, f"{where} {why}")


def _looks_torn(fragment: bytes) -> bool:
    """Whether `fragment` can be the beginning of a line the guide writes:
    every line opens with the visitor, as json.dumps writes it (control
    characters escaped), in UTF-8 with perhaps the last character cut in two."""
    n = min(len(fragment), len(_OPENING))
    if fragment[:n] != _OPENING[:n] or any(b < 0x20 for b in fragment):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(fragment, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _foreign(path: Path, why: str) -> GuideError:
    return GuideError(f"{path}: is not a guide event log ({why}); give another --events path "
                      "(the file is left as it was)")
