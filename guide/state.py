"""The visit's state on disk, so a crash, a flat battery or a reboot loses nothing.

A device saves the visit (language, exhibits heard and walked away from, the
playing track and its position, volume) after every action and every few
seconds while a track plays. Each save is atomic: the JSON goes to a
temporary file in the same directory, is flushed and fsynced, then
`os.replace`d over the state file, and the directory is fsynced so the
rename itself is durable. Whenever power goes, the file on disk is the old
state or the new one, never a mixture.

    store = StateFile("events.jsonl.state.json")
    store.save(VisitState(visitor="visit-1", site="La Coupole", t=12.5, volume=0.8,
                          engine=engine.snapshot(12.5)))
    state = store.load()        # None when there is no state yet; DeviceError if foreign
    store.keep_unreadable()     # a new visit: move a file load refuses out of its way

One device at a time: `lock` makes this process the state file's one writer
(until `unlock` or its end), so two runs given one --state cannot overwrite
each other's visit; a second is refused naming the first (GuideError).

The event log says what happened up to the crash, to the line: `visit_tail`
reads its end, so a restarted device keeps the visit clock moving forward and
closes a track the crash left open.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from guide.csvlog import short
from guide.errors import DeviceError
from guide.eventlog import NotJSON, parse
from guide.files import hold, release, replace_whole, sweep_temporaries, sync_folder

FORMAT = "guide-device-state"
VERSION = 1
_TAIL_BYTES = 1 << 16  # the end of the event log that is read back: hundreds of events
MAX_T = 366 * 24 * 3600.0  # s: no visit lasts a year; a larger visit clock is damage, or an epoch time
MAX_POSITION = 24 * 3600.0  # s into a track: no narration lasts a day
_MISSING = object()  # a key the state file lacks, as an error names it


@dataclass(frozen=True, kw_only=True)
class VisitState:
    visitor: str  # the visit's id in the event log
    site: str  # the zone map's site name: a state from another site is not restored
    t: float  # the visit clock when saved: seconds since the visit began
    volume: float  # 0..1
    engine: Mapping[str, Any]  # Engine.snapshot(t)


class StateFile:
    """One visit's state file: `load` validates, `save` replaces atomically."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._held: int | None = None  # the lock file's descriptor while locked

    def lock(self) -> None:
        """Be the one writer of this state file until `unlock`: GuideError
        naming the process that is (another guide run on it), DeviceError if
        the lock cannot be made beside the file (a read-only folder)."""
        if self._held is not None:
            return
        try:
            self._held = hold(self.path, option="--state")
        except OSError as e:
            raise DeviceError(f"{self.path}: cannot lock the visit state ({e.strerror or e}); "
                              f"check that {self.path.parent} exists and is writable") from None

    def unlock(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            release(self.path, held)

    def load(self) -> VisitState | None:
        """The saved visit, or None if there is none. DeviceError (naming the
        file and the fix) if the file is not a state this program wrote, or
        holds what it never writes (NaN, Infinity, a visit clock past a year,
        a track position past a day, an engine snapshot of another shape:
        exhibits heard that are not a list of names, a playing track without
        its exhibit)."""
        sweep_temporaries(self.path)  # what a crash in the middle of a save left
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise DeviceError(f"{self.path}: cannot read the visit state ({e.strerror}); "
                              "check the permissions of the file and its directory") from None
        try:
            data = parse(raw)
        except NotJSON as e:
            raise self._foreign(f"it {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise self._foreign(f'it lacks "format": "{FORMAT}"')
        version = data.get("version")
        if version != VERSION:
            raise DeviceError(
                f"{self.path}: visit state version {version!r}, this guide reads version "
                f"{VERSION}; update the guide, or pass --new-visit to start a new visit over it")
        state = VisitState(
            visitor=self._field(data, "visitor", str),
            site=self._field(data, "site", str),
            t=self._number(data.get("t"), "t", 0.0, MAX_T),
            volume=self._number(data.get("volume"), "volume", 0.0, 1.0),
            engine=self._field(data, "engine", dict),
        )
        playing = state.engine.get("playing")
        if isinstance(playing, dict) and "position" in playing:  # the saved state plays on from here
            self._number(playing["position"], "engine.playing.position", 0.0, MAX_POSITION)
        where = _non_finite(data)  # never written (save refuses them): the file was damaged or edited
        if where is not None:
            raise self._foreign(f"its {where} is not a finite number")
        self._snapshot(state.engine)
        return state

    def keep_unreadable(self) -> Path | None:
        """Before a new visit's first save over `path`: a file there that
        `load` refuses (another program's, a damaged state, one of another
        version) is renamed beside it to NAME.unread (NAME.unread.2, ... when
        taken), so the new visit does not destroy what it could not read.
        Returns that name; None when there was nothing to keep (no file, an
        empty one, or a state, which a new visit replaces). DeviceError if
        the file cannot be moved."""
        try:
            if self.path.stat().st_size == 0:
                return None
            self.load()
            return None
        except FileNotFoundError:
            return None
        except (DeviceError, OSError):
            pass
        aside, n = self.path.with_name(f"{self.path.name}.unread"), 1
        while aside.exists():  # an earlier one kept: NAME.unread.2, .3, ...
            n += 1
            aside = self.path.with_name(f"{self.path.name}.unread.{n}")
        try:
            os.rename(self.path, aside)
            sync_folder(self.path)
        except OSError as e:
            raise DeviceError(f"{self.path}: not a visit state this guide reads, and it cannot be "
                              f"moved aside to {aside.name} ({e.strerror or e}); move it away "
                              "yourself, or give --state another file") from None
        return aside

    def save(self, state: VisitState) -> None:
        body = {"format": FORMAT, "version": VERSION, **asdict(state)}
        data = json.dumps(body, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
        write_atomic(self.path, data + b"\n")

    def _foreign(self, why: str) -> DeviceError:
        return DeviceError(f"{self.path}: not a visit state written by guide ({why}); "
                           "move it away, or pass --new-visit to start a new visit (it is then kept "
                           f"as {self.path.name}.unread)")

    def _field(self, data: dict, key: str, kind: type) -> Any:
        value = data.get(key)
        if not isinstance(value, kind):
            raise DeviceError(f"{self.path}: the visit state's {key!r} must be a "
                              f"{kind.__name__}, not {value!r}; pass --new-visit to start a new visit over it")
        return value

    def _snapshot(self, engine: Mapping[str, Any]) -> None:
        """DeviceError unless `engine` has the shape of what Engine.snapshot
        writes: a language, lists of exhibit names (walked_off may be absent:
        states saved before it existed), and the playing track or null. The
        exhibits and languages themselves are the zone map's to judge
        (Engine.restore passes over those it has not)."""
        def refuse(key: str, kind: str, value: Any) -> DeviceError:
            if value is _MISSING:
                why = f" lacks 'engine.{key}' ({kind})"
            else:  # as JSON, as the file writes it
                why = f"'s 'engine.{key}' must be {kind}, not {short(json.dumps(value, ensure_ascii=True), 60)}"
            return DeviceError(f"{self.path}: the visit state{why}; pass --new-visit to start a new visit over it")

        names = "a list of exhibit names"
        for key, kind, fits in (("lang", "a language", lambda v: isinstance(v, str)),
                                ("heard", names, _names), ("walked_off", names, _names),
                                ("playing", "the playing track or null", lambda v: v is None or isinstance(v, dict))):
            if key not in engine and key != "walked_off":
                raise refuse(key, kind, _MISSING)
            if key in engine and not fits(engine[key]):
                raise refuse(key, kind, engine[key])
        playing = engine["playing"]
        if playing is not None:  # its position is checked with the numbers, above
            for key in ("exhibit", "lang", "track"):
                if not isinstance(playing.get(key), str):
                    raise refuse(f"playing.{key}", "a string", playing.get(key, _MISSING))
            if "position" not in playing:
                raise refuse("playing.position", "a number", _MISSING)
            if not isinstance(playing.get("paused"), bool):
                raise refuse("playing.paused", "true or false", playing.get("paused", _MISSING))

    def _number(self, value: Any, key: str, low: float, high: float) -> float:
        """`value` as a float, or DeviceError unless it is a number from `low`
        to `high` (never NaN or infinite: they fail the comparison)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise DeviceError(f"{self.path}: the visit state's {key!r} must be a number from "
                              f"{low} to {high}, not {value!r}; pass --new-visit to start a new visit over it")
        return float(value)


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _non_finite(value: Any, where: str = "") -> str | None:
    """Where in `value` (parsed JSON) a NaN or an infinity is, e.g.
    "engine.playing.position"; None if nowhere."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        children = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for place, child in children:
        found = _non_finite(child, place)
        if found is not None:
            return found
    return None


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` by `data` so that, at any instant of a crash, the file
    holds either its old content or `data` in full. DeviceError (naming the
    file) if it cannot: a full disk, a folder in its place, a read-only disk;
    the old content is then left as it was."""
    path = Path(path)
    directory = path.parent
    try:
        replace_whole(path, [data], durable=True)
    except OSError as e:
        why = ("it is a folder; give a file name for --state" if path.is_dir() else
               f"check that {directory} exists and is writable" if not directory.is_dir()
               else "the previous state is kept")
        raise DeviceError(f"{path}: cannot save the visit state ({e.strerror or e}); {why}") from None
    try:
        sync_folder(path)
    except OSError as e:
        raise DeviceError(f"{path}: saved, but the rename may not survive a power cut "
                          f"({e.strerror or e})") from None


@dataclass(frozen=True, kw_only=True)
class VisitTail:
    """What the end of the event log says about one visit."""

    t: float | None  # the time of its last event (None: no event yet)
    open_exhibit: str | None  # a track it started and did not end (a crash cut it off)


def visit_tail(log_path: str | os.PathLike, visitor: str) -> VisitTail:
    """Read the end of the event log for `visitor`'s last event and open track.

    Only the last few hundred events are read, so this stays fast however long
    the log grows. Lines that are not JSON objects are skipped, and a `t` that
    is not a visit clock (NaN, Infinity, past a year) is not taken as one,
    nor a start's exhibit that is not a name as a track left open."""
    try:
        with open(log_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return VisitTail(t=None, open_exhibit=None)
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first line read is probably a partial one
    t: float | None = None
    open_exhibit: str | None = None
    closed = False
    for line in reversed(lines):
        try:
            event = parse(line)
        except NotJSON:
            continue
        if not isinstance(event, dict) or event.get("visitor") != visitor:
            continue
        when = event.get("t")
        if t is None and isinstance(when, (int, float)) and not isinstance(when, bool) and 0 <= when <= MAX_T:
            t = float(when)
        kind = event.get("event")
        if kind == "end":
            closed = True
        if kind == "start":
            exhibit = event.get("exhibit")
            if not closed and isinstance(exhibit, str):  # an edited line's 5 or null is no exhibit to end
                open_exhibit = exhibit
            break
    return VisitTail(t=t, open_exhibit=open_exhibit)
