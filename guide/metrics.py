"""Trigger-quality metrics of FORMATS.md, from a ground truth and an event log.

    m = score(truth_rows, events, durations=..., walk_end=...)
    print(format_table({"engine": m, "naive": m2}))

Definitions (per visitor, summed over visitors):
- hit: a `listen` row of 15 s or more for E during which a track of E starts
  (from 5 s before the row's start to its end), or E's track is already
  playing at the row's start. recall = hits / such rows.
- latency: for each hit, max(0, start.t - row.start); median and p90.
- false start: a start of X that is not the first start of X within a
  `listen` row for X (5 s slack before the row).
- interruption: a track of X that stops before its end (earlier than its
  duration minus 0.5 s after its start) at a time inside a `listen` or
  `wander` row for X.
- unwanted audio: seconds played by false starts, to their end or the end of
  the walk (or the next start, in a log that lacks the end: one track plays
  at a time).
"""

from __future__ import annotations

import csv
import math
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Mapping, Sequence

from guide.csvlog import (check_header, header_again, header_cells, header_keys, id_problem, not_utf8, number_hint,
                          open_text, plain_float, short, shown, time_problem, unreadable)
from guide.errors import ScanLogError, counted, listed

MIN_LISTEN = 15.0  # s: shorter listen rows do not count for recall
SLACK = 5.0  # s a start may precede its listen row
END_TOLERANCE = 0.5  # s: a track ending this close to its duration finished
INTENTS = ("listen", "wander", "glance")


@dataclass(frozen=True, kw_only=True)
class TruthRow:
    visitor: str
    start: float
    end: float
    exhibit: str
    intent: str  # listen | wander | glance

    @property
    def counted(self) -> bool:
        """A `listen` row long enough to count for recall (MIN_LISTEN s or
        more; rounded, so 127.7 to 142.7 is 15 s as it reads)."""
        return self.intent == "listen" and span(self.start, self.end) >= MIN_LISTEN

    def holds_start(self, t: float) -> bool:
        """A start at `t` is within this row, SLACK s before its start
        included (as written: 5.2 - 5 is 0.2, however the floats round)."""
        return span(self.start, t) >= -SLACK and t <= self.end


def span(a: float, b: float) -> float:
    """Seconds from `a` to `b` as the times read: rounded to the microsecond,
    so that 142.7 - 127.7 is 15 and 0.2 - 5.2 is -5 rather than a hair off,
    which would move a figure across a limit of FORMATS.md."""
    return round(b - a, 6)


def read_truth(path: str | os.PathLike, exhibits: Collection[str] | None = None) -> list[TruthRow]:
    """A FORMATS.md ground-truth CSV; ScanLogError naming the file when it is
    not a regular file it can read (`csvlog.open_text`), and file:line on a
    bad row, on an exhibit not in `exhibits` (the zone map's, when given), or
    on a row written twice (naming both lines). Rows of one visitor may touch
    or overlap in time (a wander row still running as the next listen row
    begins): FORMATS.md does not forbid it, and each row is scored by its
    own definition."""
    path = Path(path)
    f = open_text(path, "ground truth")
    rows: list[TruthRow] = []
    seen: dict[TruthRow, int] = {}  # row -> its first line
    with f:
        reader = csv.DictReader(f)
        try:
            fields = reader.fieldnames
        except UnicodeDecodeError:
            raise not_utf8(path, "ground truth") from None
        except csv.Error as e:
            raise unreadable(path, max(reader.reader.line_num, 1), e) from None
        need = ("visitor", "start", "end", "exhibit", "intent")
        if fields is None:  # no line at all, as csvlog.open_csv words it for scan logs and walks
            raise ScanLogError(f"{path}: the ground truth is empty; it needs the header "
                               f"{','.join(need)}")
        cols = header_cells(fields)
        reader.fieldnames = header_keys(cols)  # rows keyed by the names in any case
        check_header(path, "ground truth", cols, need)
        records = iter(reader)
        while True:
            try:
                rec = next(records, None)
            except UnicodeDecodeError:
                raise not_utf8(path, "ground truth") from None
            except csv.Error as e:  # the DictReader's line_num is the last row it returned
                raise unreadable(path, reader.reader.line_num, e) from None
            if rec is None:
                break
            line = reader.line_num
            if any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in rec.values()):
                raise unreadable(path, line, ValueError("a field holds a line break"))
            cells = [v for k, v in rec.items() if k is not None] + list(rec.get(None) or ())
            if not "".join(c or "" for c in cells).strip():
                continue  # a spreadsheet's row of empty cells
            surplus = rec.get(None) or ()
            if any(c.strip() for c in surplus) or any(rec[k] is None for k in need):
                # too many fields (a spreadsheet's trailing empty cells aside), or too few
                found = sum(1 for k, v in rec.items() if k is not None and v is not None)
                raise ScanLogError(f"{path}:{line}: expected {len(cols)} fields, as "
                                   f"the header ({shown(cols)}), found "
                                   f"{found + len(surplus)}")
            try:
                start, end = plain_float(rec["start"]), plain_float(rec["end"])
                if not (math.isfinite(start) and math.isfinite(end)):
                    raise ValueError
            except (TypeError, ValueError):
                again = header_again([rec[k] for k in need], range(len(need)), need)
                if again:
                    raise ScanLogError(f"{path}:{line}: {again}") from None
                hint = number_hint(rec["start"]) or number_hint(rec["end"])
                raise ScanLogError(f"{path}:{line}: start and end must be seconds "
                                   f"(found {short(rec['start'])!r}, {short(rec['end'])!r}){hint}"
                                   ) from None
            why = time_problem(start, rec["start"], "start") or time_problem(end, rec["end"], "end")
            if why:
                raise ScanLogError(f"{path}:{line}: {why}")
            visitor, exhibit = rec["visitor"].strip(), rec["exhibit"].strip()
            why = id_problem(visitor, "visitor") or id_problem(exhibit, "exhibit")
            if why:
                raise ScanLogError(f"{path}:{line}: {why}")
            if exhibits is not None and exhibit not in exhibits:
                raise ScanLogError(f"{path}:{line}: exhibit {short(exhibit)!r} is not in the zone map: "
                                   f"is it the ground truth of another site?")
            if end < start:
                raise ScanLogError(f"{path}:{line}: end ({end:g}) is before start ({start:g})")
            intent = (rec["intent"] or "").strip()
            if intent not in INTENTS:
                raise ScanLogError(f"{path}:{line}: intent {short(intent)!r} is not one of "
                                   f"{', '.join(INTENTS)}")
            row = TruthRow(visitor=visitor, start=start, end=end, exhibit=exhibit, intent=intent)
            first = seen.setdefault(row, line)
            if first != line:  # a copy-paste slip: scored twice, it would count twice
                raise ScanLogError(f"{path}:{line}: this row repeats line {first} ({_stay(row)}), "
                                   "so the stay would be scored twice: delete one of them")
            rows.append(row)
    return rows


def _stay(r: TruthRow) -> str:
    return (f"{short(r.visitor)} {r.intent} at {short(r.exhibit)} from {r.start:.10g} to "
            f"{r.end:.10g} s")


def after_walk(rows: Iterable[TruthRow], ends: Mapping[str, float]) -> list[TruthRow]:
    """The `rows` that start after their visitor's walk ends (`ends`: visitor
    -> the end of their walk, or of their scans), which nothing can match:
    times in another unit or origin, or the truth of a longer walk. Visitors
    not in `ends` are left out (they have no walk at all: said otherwise)."""
    return [r for r in rows if r.visitor in ends and r.start > ends[r.visitor]]


def after_walk_said(late: Sequence[TruthRow], truth: str | os.PathLike, walk: str = "walk") -> str:
    """The rows `after_walk` found, for a message that goes on with what is
    done with them: '2 listen rows of truth.csv start after the walk of their
    visitor ends (v001 at dome, v002 at coin-1)'; `walk`: 'walk' or 'scans'."""
    one = len(late) == 1
    ends = "end" if walk.endswith("s") else "ends"
    return (f"{counted(len(late), 'listen row')} of {truth} start{'s' if one else ''} after the "
            f"{walk} of their visitor {ends} "
            f"({listed(f'{short(r.visitor)} at {short(r.exhibit)}' for r in late)})")


@dataclass(frozen=True, kw_only=True)
class Metrics:
    visitors: int
    hours: float  # visitor-hours
    listen_rows: int
    hits: int
    latencies: tuple[float, ...]
    false_starts: int
    interruptions: int
    unwanted: float  # seconds

    @property
    def recall(self) -> float:
        return self.hits / self.listen_rows if self.listen_rows else float("nan")

    @property
    def latency_median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def latency_p90(self) -> float:
        return _percentile(self.latencies, 0.9)

    def per_hour(self, value: float) -> float:
        return value / self.hours if self.hours else float("nan")

    @classmethod
    def pooled(cls, parts: Iterable["Metrics"]) -> "Metrics":
        """Several scorings as one (visitor-hours, rows and events added up)."""
        parts = list(parts)
        return cls(visitors=sum(m.visitors for m in parts), hours=sum(m.hours for m in parts),
                   listen_rows=sum(m.listen_rows for m in parts), hits=sum(m.hits for m in parts),
                   latencies=tuple(x for m in parts for x in m.latencies),
                   false_starts=sum(m.false_starts for m in parts),
                   interruptions=sum(m.interruptions for m in parts),
                   unwanted=sum(m.unwanted for m in parts))

    def as_dict(self) -> dict:
        """JSON-able; a figure with nothing to measure (no listen rows, no
        hits, no time) is None (JSON null), not NaN, which JSON lacks."""
        return {
            "visitors": self.visitors, "visitor_hours": round(self.hours, 3),
            "listen_rows": self.listen_rows, "hits": self.hits,
            "recall": _json(self.recall, 4),
            "latency_median_s": _json(self.latency_median, 2),
            "latency_p90_s": _json(self.latency_p90, 2),
            "false_starts": self.false_starts,
            "false_starts_per_hour": _json(self.per_hour(self.false_starts), 2),
            "interruptions": self.interruptions,
            "interruptions_per_hour": _json(self.per_hour(self.interruptions), 3),
            "unwanted_audio_s": round(self.unwanted, 1),
            "unwanted_audio_s_per_hour": _json(self.per_hour(self.unwanted), 1),
        }


def _json(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def cell(value: float, spec: str) -> str:
    """A figure for a table (`format(value, spec)`), "n/a" when nothing was measured (NaN)."""
    return "n/a" if math.isnan(value) else format(value, spec)


def _percentile(values: Iterable[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def score(truth: Iterable[TruthRow], events: Iterable[dict], *,
          durations: Mapping[str, float], walk_end: Mapping[str, float]) -> Metrics:
    """Score one event log against its ground truth.

    `durations`: track path (as in start events) -> seconds. `walk_end`:
    visitor -> end of their walk (every visitor scored must be in it)."""
    rows_by: dict[str, list[TruthRow]] = defaultdict(list)
    for r in truth:
        rows_by[r.visitor].append(r)
    starts_by: dict[str, list[dict]] = defaultdict(list)
    plays_by: dict[str, list[tuple[str, float, float, float]]] = defaultdict(list)
    # plays: (exhibit, start t, end t or walk end, full length from start)
    # every start is one play, in the order of the starts: a start with no end
    # before the next start stopped there (a device plays one track at a time);
    # an end naming another exhibit than the one playing ends nothing
    open_: dict[str, dict] = {}
    for e in events:
        v = e["visitor"]
        if e["event"] == "start":
            starts_by[v].append(e)
            if v in open_:
                plays_by[v].append(_play(open_[v], e["t"], durations))
            open_[v] = e
        elif e["event"] == "end" and v in open_ and open_[v]["exhibit"] == e["exhibit"]:
            plays_by[v].append(_play(open_.pop(v), e["t"], durations))
    for v, s in open_.items():
        plays_by[v].append(_play(s, walk_end.get(v, s["t"]), durations, ended=False))

    visitors = set(walk_end) | set(rows_by) | set(starts_by)
    hours = sum(walk_end.get(v, 0.0) for v in visitors) / 3600.0
    listen_rows = hits = false_starts = interruptions = 0
    latencies: list[float] = []
    unwanted = 0.0
    for v in visitors:
        rows = rows_by.get(v, [])
        listens = [r for r in rows if r.intent == "listen"]
        plays = plays_by.get(v, [])
        # recall and latency
        for r in listens:
            if not r.counted:
                continue
            listen_rows += 1
            already = any(ex == r.exhibit and span(r.start, st) < -SLACK and r.start < en
                          for ex, st, en, _, _ in plays)
            first = next((s["t"] for s in starts_by.get(v, [])
                          if s["exhibit"] == r.exhibit and r.holds_start(s["t"])), None)
            if already:
                hits += 1
                latencies.append(0.0)
            elif first is not None:
                hits += 1
                latencies.append(max(0.0, first - r.start))
        # false starts and unwanted audio: a start is wanted when it is the
        # first of its exhibit within a listen row for it (any row it is first in)
        wanted = {next((i for i, (ex, st, *_) in enumerate(plays)
                        if ex == r.exhibit and r.holds_start(st)), None) for r in listens}
        for i, (ex, st, en, _, _) in enumerate(plays):
            if i not in wanted:
                false_starts += 1
                unwanted += max(0.0, en - st)
        # interruptions
        for ex, st, en, full, ended in plays:
            if not ended or span(st, en) >= round(full - END_TOLERANCE, 6):
                continue
            if any(r.exhibit == ex and r.intent in ("listen", "wander") and r.start <= en <= r.end
                   for r in rows):
                interruptions += 1
    return Metrics(visitors=len(visitors), hours=hours, listen_rows=listen_rows, hits=hits,
                   latencies=tuple(latencies), false_starts=false_starts,
                   interruptions=interruptions, unwanted=unwanted)


def _play(start: dict, end_t: float, durations: Mapping[str, float], ended: bool = True):
    full = durations.get(start["track"], math.inf) - start.get("offset", 0.0)
    return (start["exhibit"], start["t"], end_t, full, ended)


def format_table(results: Mapping[str, Metrics]) -> str:
    """Policies side by side, one metric a line."""
    names = list(results)
    lines = [("", *names)]

    def row(label: str, f) -> None:
        lines.append((label, *(f(results[n]) for n in names)))

    row("visitors (visitor-hours)", lambda m: f"{m.visitors} ({m.hours:.2f} h)")
    row("recall", lambda m: f"{cell(m.recall, '.3f')} ({m.hits}/{m.listen_rows})")
    row("latency median (s)", lambda m: cell(m.latency_median, ".1f"))
    row("latency p90 (s)", lambda m: cell(m.latency_p90, ".1f"))
    row("false starts / visitor-hour",
        lambda m: f"{cell(m.per_hour(m.false_starts), '.1f')} ({m.false_starts})")
    row("interruptions / visitor-hour",
        lambda m: f"{cell(m.per_hour(m.interruptions), '.2f')} ({m.interruptions})")
    row("unwanted audio s / visitor-hour",
        lambda m: f"{cell(m.per_hour(m.unwanted), '.0f')} ({m.unwanted:.0f} s)")
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                               for i, (c, w) in enumerate(zip(l, widths))) for l in lines)
