"""Per-exhibit trigger settings from a recording of staff standing at each exhibit.

Real radio varies from beacon to beacon by many dB (a receiver's gain, how a
beacon is mounted, the case it sits in), so one site-wide `level` and
`margin` either miss quiet exhibits or start loud ones from afar. Staff walk
the site with a device (`guide record`), stand about half a minute at each
exhibit and note when (`listen` rows of a ground-truth CSV). From that
recording this module measures the engine's own view at each exhibit:

- the *level*: the exhibit's smoothed RSSI, through the engine's own filter;
- the *lead*: that level's path-loss score (RSSI - tx_power) over the best
  other exhibit's, which is what the engine's `margin` is compared with;

and sets, for each exhibit recorded:

- ``level`` = the LEVEL_PERCENTILE-th percentile of the level seen there,
  less LEVEL_ALLOWANCE dB (another visitor's device reads a few dB lower than
  the staff's, and stands a little elsewhere);
- ``margin`` = the LEAD_PERCENTILE-th percentile of the lead seen there,
  at least MIN_MARGIN dB, and never more than the site's margin.

    site = load_zones("zones.yaml")
    result = calibrate(site, read_scans("walk.csv", site), read_truth("truth.csv"))
    print(format_result(result))
    write_zones("zones.yaml", set_trigger(text, exhibits=result.values(), note=...))

An exhibit another one out-leads while staff stand at it cannot be fixed by
settings: it is reported (move a beacon; see `guide lint`).
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from guide.engine import STEP, Engine
from guide.errors import GuideError
from guide.metrics import TruthRow
from guide.lint import enter_level
from guide.site import Site

LEVEL_PERCENTILE = 10
LEVEL_ALLOWANCE = 5.0  # dB below the level staff saw
LEAD_PERCENTILE = 10
MIN_MARGIN = 1.0  # dB: a smaller lead is noise; below it the engine would flicker
MIN_SECONDS = 10.0  # s of standing needed to trust an exhibit's figures
RIVAL_SHARE = 0.5  # another exhibit out-leading this one this often: settings cannot help


@dataclass(frozen=True, kw_only=True)
class Seen:
    """What the engine saw at one exhibit while staff stood there."""

    exhibit: str
    seconds: float  # standing time sampled
    rows: int  # listen rows (stays) it came from
    level_p10: float  # dBm
    level_p50: float
    lead_p10: float  # dB over the best other exhibit
    lead_p50: float
    rival: str | None  # the other exhibit that most often came closest
    rival_share: float  # share of the time some other exhibit led (lead < 0)

    def as_dict(self) -> dict:
        return {"exhibit": self.exhibit, "seconds": round(self.seconds, 1), "rows": self.rows,
                "level_p10_dbm": round(self.level_p10, 1), "level_p50_dbm": round(self.level_p50, 1),
                "lead_p10_db": round(self.lead_p10, 1), "lead_p50_db": round(self.lead_p50, 1),
                "rival": self.rival, "rival_share": round(self.rival_share, 3)}


@dataclass(frozen=True, kw_only=True)
class Change:
    """One exhibit's settings before and after (level is the effective level:
    the one the engine would use, set or derived from the radius)."""

    exhibit: str
    seen: Seen
    old_level: float
    new_level: float
    old_margin: float
    new_margin: float
    writes: tuple[str, ...] = ("level", "margin")  # what goes into zones.yaml
    problem: str | None = None  # what settings cannot fix here

    def as_dict(self) -> dict:
        return {"exhibit": self.exhibit, "seen": self.seen.as_dict(),
                "level": {"old": round(self.old_level, 1), "new": round(self.new_level, 1)},
                "margin": {"old": round(self.old_margin, 1), "new": round(self.new_margin, 1)},
                "written": list(self.writes), "problem": self.problem}


@dataclass(frozen=True, kw_only=True)
class Calibration:
    changes: tuple[Change, ...]
    too_short: tuple[tuple[str, float], ...]  # (exhibit, seconds) stood too briefly to trust
    missing: tuple[str, ...]  # exhibits nobody stood at
    unheard: tuple[str, ...] = ()  # stood at, but their beacon never heard
    visitors: tuple[str, ...]  # recordings used

    def values(self) -> dict[str, dict[str, float]]:
        """Exhibit id -> {"level": ..., "margin": ...}, for `guide.yamledit.set_trigger`."""
        out = {}
        for c in self.changes:
            new = {"level": round(c.new_level, 1), "margin": round(c.new_margin, 1)}
            out[c.exhibit] = {k: v for k, v in new.items() if k in c.writes}
        return out

    @property
    def ok(self) -> bool:
        """Every exhibit calibrated, and none needs more than settings."""
        return (not self.missing and not self.too_short and not self.unheard
                and not any(c.problem for c in self.changes))

    def as_dict(self) -> dict:
        return {"ok": self.ok, "visitors": list(self.visitors),
                "changes": [c.as_dict() for c in self.changes],
                "too_short": [{"exhibit": e, "seconds": round(s, 1)} for e, s in self.too_short],
                "missing": list(self.missing), "unheard": list(self.unheard)}


def select_visitors(truth: Iterable[TruthRow], patterns: Sequence[str] | None) -> set[str] | None:
    """The visitors whose ids match any of `patterns` (shell-style: v00[1-9],
    staff-*), or None for all. GuideError when a pattern matches nobody."""
    if not patterns:
        return None
    ids = sorted({r.visitor for r in truth})
    chosen: set[str] = set()
    for p in patterns:
        hit = {v for v in ids if fnmatch.fnmatchcase(v, p)}
        if not hit:
            raise GuideError(f"--visitor {p}: no visitor of the ground truth matches it "
                             f"(its visitors: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''})")
        chosen |= hit
    return chosen


def engine_view(site: Site, rows: Iterable[tuple[str, float, str, int]],
                windows: dict[str, list[tuple[float, float, str]]]) -> Iterator[tuple[str, float, str, dict[str, float]]]:
    """(visitor, t, exhibit, levels) every engine STEP inside each visitor's
    `windows` (start, end, exhibit): `levels` maps exhibit id to the smoothed
    level the engine holds for it at t (exhibits not heard are absent).

    The levels are the engine's own (its filter, clipping of deep fades and
    decay of silent beacons), read from a real `Engine` fed the recording.
    Visitors' rows may be interleaved, as in any scan log."""

    class _Visitor:
        def __init__(self, spans: list[tuple[float, float, str]]):
            self.engine = Engine(site, site.languages[0])
            self.samples = iter([(t, ex) for start, end, ex in sorted(spans)
                                 for t in np.arange(start, end + 1e-9, STEP).tolist()])
            self.next = next(self.samples, None)

        def due(self, v: str, until: float):
            while self.next is not None and self.next[0] <= until:
                t, ex = self.next
                self.engine.tick(t)
                yield v, t, ex, self.engine.levels()
                self.next = next(self.samples, None)

    state: dict[str, _Visitor] = {}
    for v, t, b, r in rows:
        run = state.get(v)
        if run is None:
            run = state[v] = _Visitor(windows.get(v, []))
        if run.next is not None and run.next[0] <= t:
            yield from run.due(v, t)
        run.engine.observe(b, r, t)
    for v, run in state.items():
        yield from run.due(v, math.inf)


def measure(site: Site, rows: Iterable[tuple[str, float, str, int]], truth: Iterable[TruthRow],
            *, visitors: set[str] | None = None, settle: float | None = None) -> dict[str, Seen]:
    """What the engine saw at each exhibit during the `listen` rows of
    `truth` (of `visitors`, default all), skipping the first `settle` seconds
    of each (default: twice the smoothing time, while the filter settles)."""
    settle = 2.0 * site.trigger.smoothing if settle is None else settle
    tx = {e.id: float(site.beacons[e.beacon].tx_power) for e in site.exhibits}
    known = set(tx)
    windows: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    stays: Counter[str] = Counter()
    for r in truth:
        if r.intent != "listen" or r.exhibit not in known:
            continue
        if visitors is not None and r.visitor not in visitors:
            continue
        if r.end - r.start > settle:
            windows[r.visitor].append((r.start + settle, r.end, r.exhibit))
            stays[r.exhibit] += 1
    levels: dict[str, list[float]] = defaultdict(list)
    leads: dict[str, list[float]] = defaultdict(list)
    rivals: dict[str, Counter[str]] = defaultdict(Counter)
    for _, _, exhibit, view in engine_view(site, (row for row in rows if row[0] in windows), windows):
        if exhibit not in view:
            leads[exhibit].append(-math.inf)  # not heard at all: no lead
            continue
        own = view[exhibit] - tx[exhibit]
        best, rival = -math.inf, None
        for other, lv in view.items():
            if other != exhibit and lv - tx[other] > best:
                best, rival = lv - tx[other], other
        levels[exhibit].append(view[exhibit])
        leads[exhibit].append(own - best)
        if rival is not None:
            rivals[exhibit][rival] += 1
    out: dict[str, Seen] = {}
    for exhibit, lead in leads.items():
        lv = np.array(levels[exhibit])
        ld = np.array(lead)
        finite = np.where(np.isfinite(ld), ld, 60.0)  # alone on air: a huge lead
        finite = np.where(np.isneginf(ld), -60.0, finite)
        rival = rivals[exhibit].most_common(1)[0][0] if rivals[exhibit] else None
        out[exhibit] = Seen(
            exhibit=exhibit, seconds=len(ld) * STEP, rows=stays[exhibit],
            # never heard there: no level at all
            level_p10=float(np.percentile(lv, LEVEL_PERCENTILE)) if lv.size else -math.inf,
            level_p50=float(np.median(lv)) if lv.size else -math.inf,
            lead_p10=float(np.percentile(finite, LEAD_PERCENTILE)), lead_p50=float(np.median(finite)),
            rival=rival, rival_share=float(np.mean(ld < 0)))
    return out


def calibrate(site: Site, rows: Iterable[tuple[str, float, str, int]], truth: Sequence[TruthRow],
              *, visitors: set[str] | None = None, allowance: float = LEVEL_ALLOWANCE,
              min_margin: float = MIN_MARGIN) -> Calibration:
    """Per-exhibit level and margin from a recording (see the module docstring)."""
    seen = measure(site, rows, truth, visitors=visitors)
    cap = site.trigger.margin
    changes, short, unheard = [], [], []
    for e in site.exhibits:
        s = seen.get(e.id)
        if s is None:
            continue
        if not math.isfinite(s.level_p10):
            unheard.append(e.id)
            continue
        if s.seconds < MIN_SECONDS:
            short.append((e.id, s.seconds))
            continue
        level = max(-127.0, min(0.0, s.level_p10 - allowance))
        margin = max(min_margin, min(cap, s.lead_p10))
        problem = None
        if s.rival_share >= RIVAL_SHARE:
            problem = (f"{s.rival} is louder here {100 * s.rival_share:.0f}% of the time while "
                       f"staff stand at {e.id}: no setting makes the radio pick {e.id}; move "
                       f"one of the two beacons (guide lint suggests how far)")
        elif s.lead_p50 < margin:
            problem = (f"its lead over {s.rival} is below {margin:g} dB more than half the time: "
                       f"visitors will often wait; move one of the two beacons or stand closer")
        # the site's own margin is not repeated on an exhibit: a later change of
        # the site's margin (guide tune) should still reach it
        writes = ("level", "margin") if margin != cap or e.trigger.margin != cap else ("level",)
        changes.append(Change(exhibit=e.id, seen=s, old_level=enter_level(site, e),
                              new_level=level, old_margin=e.trigger.margin, new_margin=margin,
                              writes=writes, problem=problem))
    missing = tuple(e.id for e in site.exhibits if e.id not in seen)
    used = sorted({r.visitor for r in truth if r.intent == "listen"
                   and (visitors is None or r.visitor in visitors)})
    return Calibration(changes=tuple(changes), too_short=tuple(short), missing=missing,
                       unheard=tuple(unheard), visitors=tuple(used))


def format_result(result: Calibration) -> str:
    head = ("exhibit", "stood", "level seen p10/median", "lead p10/median",
            "level old -> new", "margin old -> new")
    rows = [head]
    for c in result.changes:
        s = c.seen
        rows.append((c.exhibit, _minutes(s.seconds), f"{s.level_p10:.1f} / {s.level_p50:.1f} dBm",
                     f"{_db(s.lead_p10)} / {_db(s.lead_p50)} dB",
                     f"{c.old_level:.1f} -> {c.new_level:.1f} dBm",
                     f"{c.old_margin:g} -> {c.new_margin:.1f} dB" if "margin" in c.writes
                     else f"{c.old_margin:g} dB (the site's)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    problems = [c for c in result.changes if c.problem]
    if problems:
        lines += ["", "Settings cannot fix these:"]
        lines += [f"  {c.exhibit}: {c.problem}" for c in problems]
    if result.too_short:
        lines += ["", "Stood too briefly to trust (keep their settings; stand there half a minute):"]
        lines += [f"  {e}: {s:.0f} s" for e, s in result.too_short]
    if result.unheard:
        lines += ["", "Stood at, but their beacon was never heard (flat battery? wrong id in "
                      f"zones.yaml?): {', '.join(result.unheard)}"]
    if result.missing:
        lines += ["", f"Not recorded (nobody stood there; they keep their settings): "
                      f"{', '.join(result.missing)}"]
    return "\n".join(lines) + "\n"


def _db(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 59 else ("alone" if x > 0 else "unheard")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
