"""Replaying visits through the engine in virtual time.

The simulator's core: scan rows in, event-log objects out, one engine per
visitor, tracks lasting their real durations. The device runs the same engine
in real time; here `now` is the scan log's own clock, and the "player" is a
note of when the playing track will end.

    site = load_zones("zones.yaml")
    rows = read_scans("scans.csv", site)           # streams; never holds the log
    events = []
    summary = replay(site, rows, lang="en", emit=events.append)

`read_scans` validates as it streams: a malformed row, a row out of time
order or an implausible RSSI stops the replay with the file and line; rows
naming a beacon the map does not know are skipped and counted.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

from guide.actions import Action, End, Start, to_event
from guide.csvlog import (MAX_T, bytes_read, header_again, id_problem, not_utf8, number_hint, open_csv, plain_float,
                          short, time_problem, unreadable, visible)
from guide.engine import Engine
from guide.errors import ScanLogError, listed
from guide.naive import NaiveEngine
from guide.site import Site
from guide import tracks

ScanRow = tuple[str, float, str, int]  # visitor, t, beacon, rssi

POLICIES = ("engine", "naive")
UNKNOWN_NAMES_KEPT = 32  # unknown beacon names a ScanStats keeps for its messages


class _Policy(Protocol):
    def observe(self, beacon: str, rssi: int, now: float) -> list[Action]: ...
    def tick(self, now: float) -> list[Action]: ...
    def finished(self, now: float) -> list[Action]: ...
    def next_deadline(self) -> float | None: ...


@dataclass(kw_only=True)
class ScanStats:
    """What a scan-log read saw (filled in as it streams)."""

    rows: int = 0
    skipped_unknown: int = 0
    # the first UNKNOWN_NAMES_KEPT unknown beacon names in sorted order (at
    # most twice that many), not every one: a street's beacons are thousands
    unknown_beacons: set[str] = field(default_factory=set)
    last_t: dict[str, float] = field(default_factory=dict)  # visitor -> last scan time

    def note_unknown(self, beacon: str) -> None:
        """A row named `beacon`, which the zone map lacks."""
        self.skipped_unknown += 1
        names = self.unknown_beacons
        if beacon not in names:
            names.add(beacon)
            if len(names) > 2 * UNKNOWN_NAMES_KEPT:
                self.unknown_beacons = set(sorted(names)[:UNKNOWN_NAMES_KEPT])

    def unknown_names(self, most: int = 10) -> str:
        """The unknown beacons named, for a message: 'x, y, z ...' (`most`
        below UNKNOWN_NAMES_KEPT), each as written, a control character
        escaped ('dome\\x00x', not 'domex')."""
        return listed([visible(short(b)) for b in sorted(self.unknown_beacons)], most)

    def check_site(self, path: str | os.PathLike, site: Site) -> None:
        """ScanLogError when rows were read and none named a beacon of `site`:
        the log is another site's (rows naming unknown beacons are otherwise
        skipped and counted, never fatal); also when it has no rows at all."""
        if not self.rows:
            raise ScanLogError(f"{path}: has no rows below its header, so there is nothing to "
                               "replay; give a scan log that holds a walk")
        if self.skipped_unknown == self.rows:
            raise ScanLogError(f"{path}: none of its {self.rows} rows names a beacon of "
                               f"{site.path.name} (it names {self.unknown_names()}): is it the "
                               "scan log of another site?")


def read_scans(path: str | os.PathLike, site: Site, *, stats: ScanStats | None = None,
               progress: bool = False) -> Iterator[ScanRow]:
    """Stream a FORMATS.md scan log as (visitor, t, beacon, rssi) tuples."""
    path = Path(path)
    stats = stats if stats is not None else ScanStats()
    known = site.beacons
    with open_csv(path, "scan log", ("visitor", "t", "beacon", "rssi")) as (f, reader, index):
        iv, it, ib, ir = index
        width = max(iv, it, ib, ir) + 1
        last_t = stats.last_t
        bar = _Progress(path, f) if progress else None
        cur_v = None
        never = prev = -math.inf
        max_t = MAX_T
        n = 0
        row: list[str] = []
        try:
            for row in reader:
                if len(row) < width or not row[iv]:
                    if not "".join(row).strip():
                        continue  # a blank line, or a spreadsheet's row of empty cells
                n += 1
                b = row[ib]
                v = row[iv]
                tt, rr = row[it], row[ir]
                t = float(tt)
                try:
                    r = int(rr)
                except ValueError:
                    r = round(float(rr))  # some tools write -71.0 or average to -70.5
                if "_" in tt or "_" in rr or not tt.isascii() or not rr.isascii():
                    raise ValueError  # 1_0 or ١٠ read as 10: csvlog.plain_float, inlined
                if v != cur_v:
                    v = v.strip()  # padded values, as padded headers, are accepted
                    if v != cur_v:
                        why = id_problem(v, "visitor")
                        if why:
                            raise _BadRow(why)
                        if cur_v is not None:
                            last_t[cur_v] = prev
                        cur_v = v
                        prev = last_t.get(v, never)
                if not t >= prev:  # also catches NaN
                    raise _BadRow(time_problem(t, row[it]) or
                                  f"t={short(row[it].strip())} is earlier than this visitor's previous row "
                                  f"(t={prev:g}); each visitor's rows must be in time order")
                if prev == never or t > max_t:  # a visitor's first row, or far out
                    why = time_problem(t, row[it])
                    if why:
                        raise _BadRow(why)
                if not -127 <= r <= 0:
                    raise _BadRow(f"rssi={short(row[ir].strip())} is not a plausible signal strength; "
                                  f"RSSI is a negative dBm value between -127 and 0")
                prev = t
                if b not in known:
                    b = b.strip()
                    if b not in known:
                        stats.note_unknown(b)
                        continue
                if bar is not None and not n & 0xFFFF:
                    bar.update()
                yield v, t, b, r
        except UnicodeDecodeError:
            raise not_utf8(path, "scan log") from None
        except (ValueError, OverflowError, IndexError, _BadRow) as e:
            line = reader.line_num
            if isinstance(e, _BadRow):
                why = str(e)
            elif any("\n" in c or "\r" in c for c in row):  # a row over several lines
                raise unreadable(path, line, e) from None
            elif len(row) < width:
                why = f"expected {width} fields (visitor,t,beacon,rssi), found {len(row)}"
            else:
                why = (header_again(row, index, ("visitor", "t", "beacon", "rssi"))
                       or _not_a_number(row[it], row[ir]))
            raise ScanLogError(f"{path}:{line}: {why}") from None
        except csv.Error as e:
            raise unreadable(path, reader.line_num, e) from None
        finally:
            if cur_v is not None:
                last_t[cur_v] = prev
            stats.rows += n
            if bar is not None:
                bar.close()


class _BadRow(Exception):
    pass


def _not_a_number(t: str, rssi: str) -> str:
    """Which of a row's `t` and `rssi` is not a number (read only on the way out)."""
    bad = []
    for name, text, unit in (("t", t, "a number of seconds"), ("rssi", rssi, "a number of dBm")):
        try:
            ok = math.isfinite(plain_float(text))
        except ValueError:
            ok = False
        if not ok:
            bad.append(f"field {name} = {short(text)!r} is not {unit}{number_hint(text)}")
    return "; ".join(bad) or f"t={short(t)!r} and rssi={short(rssi)!r} are not numbers it can read"


class _Progress:
    """A progress bar on stderr by bytes read (tqdm), for long replays."""

    def __init__(self, path: Path, f) -> None:
        from tqdm import tqdm

        self._f = f
        self._done = 0
        self._bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                         desc=f"replay {path.name}", leave=False, disable=None)

    def update(self) -> None:
        pos = bytes_read(self._f)
        self._bar.update(pos - self._done)
        self._done = pos

    def close(self) -> None:
        self._bar.close()


@dataclass(slots=True)
class _Run:
    """One visitor's replay: its engine and the virtual player."""

    visitor: str
    engine: _Policy
    track_end: float = math.inf  # when the playing track will finish by itself
    due: float = -math.inf  # earliest time anything but an observation is due
    last: float = 0.0


def replay(site: Site, rows: Iterable[ScanRow], *, lang: str, emit: Callable[[dict], None],
           policy: str = "engine", walk_end: dict[str, float] | None = None,
           visitor_lang: dict[str, str] | None = None,
           grouped: bool = False) -> dict[str, float]:
    """Run every visitor's rows through a fresh engine; `emit` receives each
    event-log object in time order per visitor. Returns each visitor's last
    time (the end of its walk: `walk_end` if given, else its last row).

    A visitor's engine is kept until the end of `rows` (a visitor of a
    scan log may have a row anywhere up to its last line), or, with
    `grouped` (each visitor's rows together, as `guide.radio.scans_from_walk`
    gives them), until the first row of the next visitor: memory then holds
    one engine however many visitors walk (their walk end must then be in
    `walk_end` by the time their last row is read)."""
    make = {"engine": Engine, "naive": NaiveEngine}.get(policy)
    if make is None:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    durations: dict[str, float] = {}

    def duration(track: str) -> float:
        d = durations.get(track)
        if d is None:
            d = durations[track] = tracks.duration(site.track_path(track))
        return d

    def perform(run: _Run, actions: list[Action], t: float) -> None:
        for a in actions:
            if type(a) is Start:
                run.track_end = t + duration(a.track) - a.offset
            elif type(a) is End:
                # the fade still sounds, but the track is over for the engine
                run.track_end = math.inf
            emit(to_event(a, visitor=run.visitor, t=t))
        d = run.engine.next_deadline()
        run.due = min(run.track_end, d if d is not None else math.inf)

    def advance(run: _Run, t: float) -> None:
        """Everything due up to `t`: tracks ending, engine deadlines."""
        eng = run.engine
        while True:
            d = eng.next_deadline()
            d = math.inf if d is None else d
            if run.track_end <= t and run.track_end <= d:
                at = run.track_end
                run.track_end = math.inf
                perform(run, eng.finished(at), at)
            elif d <= t:
                perform(run, eng.tick(d), d)
            else:
                run.due = min(run.track_end, d)
                return

    runs: dict[str, _Run] = {}  # the visitors in progress
    ends: dict[str, float] = {}

    def finish(run: _Run) -> None:
        """The visitor's walk is over: what was due until its end, then let go of its engine."""
        v = run.visitor
        end = max(run.last, (walk_end or {}).get(v, run.last))
        advance(run, end)
        ends[v] = end
        del runs[v]

    run: _Run | None = None
    inf = math.inf
    cur = None
    for v, t, b, r in rows:
        if v != cur:
            if grouped and cur is not None:
                finish(run)
            run = runs.get(v)
            if run is None:
                if v in ends:
                    raise ValueError(f"the rows of visitor {v!r} are not together (grouped)")
                vl = (visitor_lang or {}).get(v, lang)
                run = runs[v] = _Run(visitor=v, engine=make(site, vl))
            cur = v
        if t >= run.due:
            advance(run, t)
        run.last = t
        acts = run.engine.observe(b, r, t)
        if acts:
            perform(run, acts, t)
        elif run.due == inf:  # idle until now: the engine may want a tick again
            d = run.engine.next_deadline()
            if d is not None:
                run.due = d
    for run in list(runs.values()):
        finish(run)
    for v, end in (walk_end or {}).items():
        ends.setdefault(v, end)  # visitors the radio never reached still walked
    return ends


def started_track_durations(site: Site, events: Iterable[dict]) -> dict[str, float]:
    """Seconds of every track the events start (what the metrics need)."""
    return {e["track"]: tracks.duration(site.track_path(e["track"]))
            for e in events if e["event"] == "start"}
