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

and sets, first for each beacon heard from afar:

- ``tx_power`` = what its readings at the *other* exhibits say it is. At each
  stay, every beacon FAR_M or more away in plain sight (no wall between) gave
  a level; one least-squares fit of ``level = tx_power - 10 n log10(distance)``
  over all of them gives each beacon's tx_power and the site's exponent n.
  Only how beacons differ matters to the engine (it ranks exhibits on RSSI
  minus tx_power), so the fitted values are shifted to keep the median of
  the declared ones. A beacon with fewer than MIN_READINGS such readings
  keeps its declared value. Readings near a beacon are left out on purpose:
  there a step to the side moves the level by several dB;

then, with those tx_power values, for each exhibit recorded:

- ``level`` = the LEVEL_PERCENTILE-th percentile of the level seen there,
  less LEVEL_ALLOWANCE dB (another visitor's device reads a few dB lower than
  the staff's, and stands a little elsewhere);
- ``margin`` = the LEAD_PERCENTILE-th percentile of the lead seen there,
  at least MIN_MARGIN dB, and never more than the site's margin.

    site = load_zones("zones.yaml")
    result = calibrate(site, read_scans("walk.csv", site), read_truth("truth.csv"))
    print(format_result(result))
    text = set_beacons(text, result.tx_power_values(), note=...)
    write_zones("zones.yaml", set_trigger(text, exhibits=result.values(), note=...))

An exhibit another one out-leads while staff stand at it cannot be fixed by
settings: it is reported (move a beacon; see `guide lint`).
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from guide.engine import STEP, Engine
from guide.errors import GuideError, listed
from guide.metrics import TruthRow
from guide.lint import enter_level
from guide.radio import wall_crossings
from guide.site import Site

LEVEL_PERCENTILE = 10
LEVEL_ALLOWANCE = 5.0  # dB below the level staff saw
LEAD_PERCENTILE = 10
MIN_MARGIN = 1.0  # dB: a smaller lead is noise; below it the engine would flicker
MIN_SECONDS = 10.0  # s of standing needed to trust an exhibit's figures
RIVAL_SHARE = 0.5  # another exhibit out-leading this one this often: settings cannot help
FAR_M = 2.0  # m: a beacon's readings nearer than this do not go into its tx_power
MIN_READINGS = 3  # stays at other exhibits needed to fit a beacon's tx_power
EXPONENTS = (1.0, 6.0)  # a fitted exponent outside this is not trusted: the site's is used


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
class TxPower:
    """One beacon's tx_power, declared and fitted from the recording."""

    beacon: str
    old: int
    new: int
    readings: int  # stays at other exhibits it was fitted from

    def as_dict(self) -> dict:
        return {"beacon": self.beacon, "old": self.old, "new": self.new, "readings": self.readings}


@dataclass(frozen=True, kw_only=True)
class Calibration:
    changes: tuple[Change, ...]
    tx_power: tuple[TxPower, ...] = ()  # beacons fitted (changed or not)
    tx_kept: tuple[str, ...] = ()  # beacons kept as declared: too few readings from afar
    exponent: float | None = None  # path-loss exponent of the tx_power fit
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

    def tx_power_values(self) -> dict[str, dict[str, int]]:
        """Beacon id -> {"tx_power": ...} for those that change, for `guide.yamledit.set_beacons`."""
        return {t.beacon: {"tx_power": t.new} for t in self.tx_power if t.new != t.old}

    @property
    def ok(self) -> bool:
        """Every exhibit calibrated, and none needs more than settings."""
        return (not self.missing and not self.too_short and not self.unheard
                and not any(c.problem for c in self.changes))

    def as_dict(self) -> dict:
        return {"ok": self.ok, "visitors": list(self.visitors),
                "tx_power": [t.as_dict() for t in self.tx_power], "tx_power_kept": list(self.tx_kept),
                "exponent": None if self.exponent is None else round(self.exponent, 2),
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
                             f"(its visitors: {listed(ids)})")
        chosen |= hit
    return chosen


Stay = tuple[str, float, str]  # (visitor, start of the sampled window, exhibit)


def engine_view(site: Site, rows: Iterable[tuple[str, float, str, int]],
                windows: dict[str, list[tuple[float, float, str]]]
                ) -> Iterator[tuple[str, float, tuple[float, float, str], dict[str, float]]]:
    """(visitor, t, window, levels) every engine STEP inside each visitor's
    `windows` (start, end, exhibit): `levels` maps exhibit id to the smoothed
    level the engine holds for it at t (exhibits not heard are absent).

    The levels are the engine's own (its filter, clipping of deep fades and
    decay of silent beacons), read from a real `Engine` fed the recording.
    They do not depend on tx_power. Visitors' rows may be interleaved, as in
    any scan log, and one visitor's windows may overlap."""

    class _Visitor:
        def __init__(self, spans: list[tuple[float, float, str]]):
            self.engine = Engine(site, site.languages[0])
            # in time order across the windows, which may overlap (two
            # listen rows of one visitor): the engine only goes forward
            self.samples = iter(sorted(((t, span) for span in spans
                                        for t in np.arange(span[0], span[1] + 1e-9, STEP).tolist()),
                                       key=lambda s: s[0]))
            self.next = next(self.samples, None)

        def due(self, v: str, until: float):
            while self.next is not None and self.next[0] <= until:
                t, span = self.next
                self.engine.tick(t)
                yield v, t, span, self.engine.levels()
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


def record(site: Site, rows: Iterable[tuple[str, float, str, int]], truth: Iterable[TruthRow],
           *, visitors: set[str] | None = None, settle: float | None = None
           ) -> dict[Stay, list[dict[str, float]]]:
    """The engine's view (exhibit -> smoothed level) every STEP of each
    `listen` row of `truth` (of `visitors`, default all), skipping the first
    `settle` seconds of each (default: twice the smoothing time, while the
    filter settles). One pass over `rows`."""
    settle = 2.0 * site.trigger.smoothing if settle is None else settle
    known = site.exhibit_ids
    windows: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for r in truth:
        if r.intent != "listen" or r.exhibit not in known:
            continue
        if visitors is not None and r.visitor not in visitors:
            continue
        if r.end - r.start > settle:
            windows[r.visitor].append((r.start + settle, r.end, r.exhibit))
    views: dict[Stay, list[dict[str, float]]] = defaultdict(list)
    for v, _, (start, _, exhibit), view in engine_view(
            site, (row for row in rows if row[0] in windows), windows):
        views[(v, start, exhibit)].append(view)
    return dict(views)


def seen_at(site: Site, views: Mapping[Stay, list[dict[str, float]]]) -> dict[str, Seen]:
    """Level and lead at each exhibit from `record`'s views, leads reckoned
    with the beacons' tx_power in `site`."""
    tx = {e.id: float(site.beacons[e.beacon].tx_power) for e in site.exhibits}
    levels: dict[str, list[float]] = defaultdict(list)
    leads: dict[str, list[float]] = defaultdict(list)
    rivals: dict[str, Counter[str]] = defaultdict(Counter)
    stays: Counter[str] = Counter()
    for (_, _, exhibit), samples in views.items():
        stays[exhibit] += 1
        for view in samples:
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


def measure(site: Site, rows: Iterable[tuple[str, float, str, int]], truth: Iterable[TruthRow],
            *, visitors: set[str] | None = None, settle: float | None = None) -> dict[str, Seen]:
    """What the engine saw at each exhibit during the `listen` rows of
    `truth` (see `record`), with the site's tx_power."""
    return seen_at(site, record(site, rows, truth, visitors=visitors, settle=settle))


def fit_tx_power(site: Site, views: Mapping[Stay, list[dict[str, float]]]
                 ) -> tuple[tuple[TxPower, ...], tuple[str, ...], float | None]:
    """Each beacon's tx_power from its levels at the exhibits FAR_M or more
    away in plain sight (see the module docstring): (the beacons fitted,
    those kept as declared for want of readings, the exponent fitted)."""
    owner = {e.beacon: e.id for e in site.exhibits}  # as the engine: the last exhibit of a beacon
    readings: list[tuple[str, float, float]] = []  # (beacon, level, distance)
    for (_, _, exhibit), samples in views.items():
        at = site.exhibit(exhibit)
        for beacon, ex in owner.items():
            heard = [view[ex] for view in samples if ex in view]
            if 2 * len(heard) < len(samples):
                continue  # heard less than half the stay: its level there is not known
            b = site.beacons[beacon]
            d = math.hypot(at.x - b.x, at.y - b.y)
            if d < FAR_M or wall_crossings(site, at.x, at.y, b.x, b.y):
                continue
            readings.append((beacon, float(np.median(heard)), d))
    count = Counter(b for b, _, _ in readings)
    fitted = sorted(b for b in owner if count[b] >= MIN_READINGS)
    kept = tuple(sorted(b for b in owner if count[b] < MIN_READINGS))
    if len(fitted) < 2:  # one beacon alone has nothing to be compared with
        return (), tuple(sorted(owner)), None
    gains, exponent = fit_path_loss([r for r in readings if r[0] in fitted],
                                    site.trigger.path_loss_exponent)
    declared = [site.beacons[b].tx_power for b in fitted]
    shift = float(np.median(declared)) - float(np.median([gains[b] for b in fitted]))
    return (tuple(TxPower(beacon=b, old=old, new=int(round(gains[b] + shift)), readings=count[b])
                  for b, old in zip(fitted, declared)), kept, exponent)


def fit_path_loss(readings: Sequence[tuple[str, float, float]], fallback: float | None = None
                  ) -> tuple[dict[str, float], float]:
    """Least squares of ``level = gain[beacon] - 10 n log10(distance)`` over
    (beacon, level, distance) readings: each beacon's gain and the exponent
    n. With a `fallback` exponent, used when the fitted one is outside
    EXPONENTS or the distances are too alike to tell it."""
    beacons = sorted({b for b, _, _ in readings})
    column = {b: k for k, b in enumerate(beacons)}
    a = np.zeros((len(readings), len(beacons) + 1))
    y = np.array([level for _, level, _ in readings])
    for k, (beacon, _, d) in enumerate(readings):
        a[k, column[beacon]] = 1.0
        a[k, -1] = -10.0 * math.log10(d)
    solution, _, rank, _ = np.linalg.lstsq(a, y, rcond=None)
    exponent = float(solution[-1])
    if fallback is not None and (rank < a.shape[1] or not EXPONENTS[0] <= exponent <= EXPONENTS[1]):
        exponent = fallback
        solution = np.linalg.lstsq(a[:, :-1], y - exponent * a[:, -1], rcond=None)[0]
    return {b: float(solution[column[b]]) for b in beacons}, exponent


def with_tx_power(site: Site, values: Mapping[str, int]) -> Site:
    """`site` with these beacons' tx_power replaced."""
    if not values:
        return site
    return replace(site, beacons={k: replace(b, tx_power=values.get(k, b.tx_power))
                                  for k, b in site.beacons.items()})


def calibrate(site: Site, rows: Iterable[tuple[str, float, str, int]], truth: Sequence[TruthRow],
              *, visitors: set[str] | None = None, allowance: float = LEVEL_ALLOWANCE,
              min_margin: float = MIN_MARGIN, tx_power: bool = True) -> Calibration:
    """Beacons' tx_power (unless not `tx_power`), then per-exhibit level and
    margin, from a recording (see the module docstring)."""
    views = record(site, rows, truth, visitors=visitors)
    fitted, kept, exponent = fit_tx_power(site, views) if tx_power else ((), (), None)
    seen = seen_at(with_tx_power(site, {t.beacon: t.new for t in fitted}), views)
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
    return Calibration(changes=tuple(changes), tx_power=fitted, tx_kept=kept,
                       exponent=exponent, too_short=tuple(short), missing=missing,
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
    lines: list[str] = []
    moved = [t for t in result.tx_power if t.new != t.old]
    if result.tx_power:
        lines.append(f"Beacons, from their levels at the other exhibits (path-loss exponent "
                     f"{result.exponent:.2f}):")
        if moved:
            lines += ["  " + line for line in _columns(
                [("beacon", "readings", "tx_power old -> new")]
                + [(t.beacon, str(t.readings), f"{t.old} -> {t.new} dBm") for t in moved])]
        same = [t.beacon for t in result.tx_power if t.new == t.old]
        if same:
            lines.append(f"  as declared, within 1 dB: {', '.join(same)}")
    if result.tx_kept:
        lines.append(f"tx_power kept as declared (heard from {FAR_M:g} m or more, in plain sight, "
                     f"in fewer than {MIN_READINGS} stays at other exhibits): {', '.join(result.tx_kept)}")
    if lines:
        lines += ["", "Exhibits (leads with those tx_power values):"]
    lines += _columns(rows)
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


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def _db(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 59 else ("alone" if x > 0 else "unheard")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"
