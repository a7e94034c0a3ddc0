"""Search the site-wide trigger settings over recorded or simulated walks.

`guide tune` runs this. Every candidate setting replays the walks through
the real engine (`guide.replay`) and is scored against their ground truth
(`guide.metrics`), in parallel over processes. The objective, in order:

1. respect the limits: interruptions at most MAX_INTERRUPTIONS per
   visitor-hour and unwanted audio at most MAX_UNWANTED s per visitor-hour
   (a candidate over a limit loses a tenth of recall per 10 % it is over);
2. the highest recall;
3. on equal recall, the lowest median latency, then the fewest false starts.

Visitors are split in two, alternately (sorted by id, those with a listen
row that counts for recall first, so both halves have some): settings are chosen on
one half and reported on the other, which the search never saw, beside the
current settings, so a setting that only fits the walks it was tuned on
shows.

    result = tune("zones.yaml", scans="scans.csv", truth="truth.csv", budget=200, jobs=2)
    print(format_result(result))

What no setting can change is in the result for the caller to warn about:
`unheard`, the exhibits stood at whose beacon the scans never hear there,
and `late`, the listen rows starting after their visitor's scans end.

A few walks are a small sample, and a search picks whatever got lucky on
them. Measured on the gallery sample (3 visitors tuned on, 3 kept aside),
three things made the choice hold on the unseen half:

- The search starts in a region two grid steps either side of the current
  settings, which grows only where the best candidates press against its
  edge (so a bad setting is still left behind, step by step).
- It aims below the limits (SAFETY): unwanted audio comes mostly from a few
  visitors' glances and doubled between the two halves, so the search aims
  at half its limit; interruptions are rare single events, so a count the
  limit's own rate would often produce on those few hours is not held
  against a candidate (CHANCE).
- Among candidates tied with the best, the one whose neighbours also score
  best is chosen: a plateau holds, a lone peak was luck (PLATEAU_SHARE of
  the budget is kept for it).

The search itself: the current settings and a spread of candidates covering
the region (a quarter of the budget), then best-first steps: from the best
candidate not yet stepped from, each setting one or two grid steps either
way, evaluated at once; random jumps of two settings at a time when nothing
new is near. Exhibits that override a setting in zones.yaml keep their own.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from guide.errors import GuideError, counted, listed
from guide.metrics import MIN_LISTEN, Metrics, TruthRow, after_walk, read_truth, score
from guide.metrics import cell  # the metrics' own cells: n/a for nothing measured
from guide.replay import ScanRow, ScanStats, read_scans, replay, started_track_durations
from guide.settings import SETTINGS, TriggerSettings
from guide.site import Site

MAX_INTERRUPTIONS = 0.2  # per visitor-hour
MAX_UNWANTED = 400.0  # s of unwanted audio per visitor-hour
SAFETY = (1.0, 0.5)  # share of each limit the search aims at: interruptions, unwanted audio
CHANCE = 0.1  # interruptions: too many is a count the limit's own rate exceeds this rarely
LATENCY_SLACK = 1.0  # s: on unseen walks, a slower median by less than this is a tie
REGION = 2  # grid steps either side of the current values searched at first
PLATEAU_SHARE = 20  # % of the budget kept to look around the best few (see _Search._plateau)

# The values tried for each setting: round numbers staff can read and type.
GRIDS: dict[str, tuple[float, ...]] = {
    "dwell": (1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12),
    "margin": (0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, 12),
    "hysteresis": (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10),
    "smoothing": (0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8),
    "glance": (4, 6, 8, 10, 12, 15, 20, 25, 30),
    "dwell_again": (2, 3, 4, 5, 6, 8, 10, 12, 15, 20),
}
PARAMETERS = tuple(GRIDS)


Values = dict[str, float]


# ----------------------------------------------------------------- applying

def site_values(site: Site) -> Values:
    """The site-wide values of the tuned settings."""
    return {name: float(getattr(site.trigger, name)) for name in PARAMETERS}


def apply_settings(site: Site, values: Mapping[str, Any]) -> Site:
    """`site` with site-wide settings `values`; exhibits that override a
    setting (their value differs from the site's) keep their own."""
    bad = [k for k in values if k not in SETTINGS]
    if bad:
        raise GuideError(f"unknown trigger setting {bad[0]!r}; see guide settings")
    trigger = site.trigger.override(dict(values))
    names = [f.name for f in fields(TriggerSettings)]
    exhibits = []
    for e in site.exhibits:
        own = {n: getattr(e.trigger, n) for n in names
               if getattr(e.trigger, n) != getattr(site.trigger, n)}
        exhibits.append(replace(e, trigger=trigger.override(own)))
    return replace(site, trigger=trigger, exhibits=tuple(exhibits))


def default_space(current: TriggerSettings) -> dict[str, tuple[float, ...]]:
    """Each setting's grid, with the current value added, within its limits."""
    space = {}
    for name, grid in GRIDS.items():
        meta = SETTINGS[name].metadata
        values = set(float(v) for v in grid) | {float(getattr(current, name))}
        lo = meta["min"] if meta["min"] is not None else -math.inf
        hi = meta["max"] if meta["max"] is not None else math.inf
        space[name] = tuple(sorted(v for v in values if lo <= v <= hi))
    return space


# ----------------------------------------------------------------- scoring

def evaluate(site: Site, rows: Mapping[str, Sequence[ScanRow]], truth: Sequence[TruthRow], *,
             visitors: Iterable[str], lang: str,
             walk_end: Mapping[str, float] | None = None) -> Metrics:
    """Replay `visitors` (their rows from `rows`, visitor -> scan rows) through
    the engine and score them against their truth rows (as simulate.py does)."""
    chosen = sorted(visitors)
    events: list[dict] = []
    ends = replay(site, itertools.chain.from_iterable(rows.get(v, ()) for v in chosen),
                  lang=lang, emit=events.append,
                  walk_end={v: walk_end[v] for v in chosen if walk_end and v in walk_end})
    ends = {v: ends.get(v, 0.0) for v in chosen}
    wanted = set(chosen)
    return score([r for r in truth if r.visitor in wanted], events,
                 durations=started_track_durations(site, events), walk_end=ends)


def violation(m: Metrics, *, safety: tuple[float, float] = (1.0, 1.0),
              chance: bool = False) -> float:
    """How far over the limits (each scaled by `safety`: interruptions,
    unwanted audio), as fractions of them; 0 within both.

    With `chance`, interruptions are judged as the rare events they are:
    on a few visitor-hours even a setting within the limit often shows one,
    so only those beyond what the limit itself makes likely (a Poisson
    count at the limit's rate, exceeded one time in CHANCE) count."""
    if not m.hours:
        return 0.0
    cap_i, cap_u = MAX_INTERRUPTIONS * safety[0], MAX_UNWANTED * safety[1]
    if chance:
        allowed = _poisson_bound(cap_i * m.hours, CHANCE)
        over_i = max(0.0, m.interruptions - allowed) / m.hours / cap_i
    else:
        over_i = max(0.0, m.per_hour(m.interruptions) - cap_i) / cap_i
    return over_i + max(0.0, m.per_hour(m.unwanted) - cap_u) / cap_u


def _poisson_bound(mean: float, chance: float) -> int:
    """The smallest k with P(X > k) < chance, X ~ Poisson(mean)."""
    k, p = 0, math.exp(-mean)
    cdf = p
    while 1.0 - cdf >= chance:
        k += 1
        p *= mean / k
        cdf += p
    return k


def objective(m: Metrics, *, safety: tuple[float, float] = (1.0, 1.0),
              chance: bool = False) -> tuple[float, float, float]:
    """Larger is better: (recall less the penalty, -latency, -false starts/h).
    A candidate over a limit (see `violation`) loses a tenth of recall per
    10 % it is over."""
    recall = m.recall if m.listen_rows else 0.0
    latency = m.latency_median if m.latencies else 1e9
    return (round(recall - violation(m, safety=safety, chance=chance), 9), -round(latency, 3),
            -m.per_hour(m.false_starts))


# ----------------------------------------------------------------- workers

_W: dict[str, Any] = {}  # the worker process's site, rows and truth


def _init_worker(zones: str, scans: str, truth: str, lang: str, walk_end: dict[str, float]) -> None:
    from guide.zones import load_zones

    site = load_zones(zones)
    by: dict[str, list[ScanRow]] = defaultdict(list)
    for row in read_scans(scans, site):
        by[row[0]].append(row)
    _W.update(site=site, rows=dict(by), truth=read_truth(truth), lang=lang, walk_end=walk_end)


def _evaluate_task(values: Values, visitors: tuple[str, ...]) -> Metrics:
    site = apply_settings(_W["site"], values)
    return evaluate(site, _W["rows"], _W["truth"], visitors=visitors, lang=_W["lang"],
                    walk_end=_W["walk_end"])


# ----------------------------------------------------------------- the search

@dataclass(frozen=True, kw_only=True)
class Candidate:
    values: Values
    tuned: Metrics  # on the visitors it was tuned on
    held_out: Metrics | None = None  # on the others

    @property
    def key(self) -> tuple[float, float, float]:
        return objective(self.tuned, safety=SAFETY, chance=True)

    def within_limits(self) -> bool:
        """Within the limits on the walks tuned on, as the search judges them
        (interruptions allowing for chance; see `violation`)."""
        return violation(self.tuned, chance=True) == 0.0

    def held_out_within_limits(self) -> bool | None:
        """The same on the walks kept aside; None when none were."""
        return None if self.held_out is None else violation(self.held_out, chance=True) == 0.0


@dataclass(frozen=True, kw_only=True)
class TuneResult:
    current: Candidate
    chosen: Candidate
    best: tuple[Candidate, ...]  # the best few, best first (chosen is the first)
    evaluations: int
    seconds: float
    tune_visitors: tuple[str, ...]
    held_out_visitors: tuple[str, ...]
    # what the walks cannot show, whatever the settings (see `heard_at`):
    unheard: tuple[str, ...] = ()  # exhibits stood at, but their beacon never heard there
    late: tuple[TruthRow, ...] = ()  # listen rows starting after their visitor's scans end

    @property
    def improved(self) -> bool:
        return self.chosen.values != self.current.values

    @property
    def changes(self) -> Values:
        """The chosen values that differ from the current ones."""
        return {k: v for k, v in self.chosen.values.items() if v != self.current.values[k]}

    @property
    def holds_up(self) -> bool:
        """Chosen is at least as good as current on the walks it did not see,
        by the objective in its order: recall less the penalty for the limits
        (strictly counted); when that ties, the median latency, a difference
        below LATENCY_SLACK being a tie (a fraction of a second between two
        settings on a few walks is chance); when that ties too, no more false
        starts an hour. (The false starts were left out: settings starting
        more tracks nobody wanted, all else equal, passed as holding up.)"""
        c, k = self.chosen.held_out, self.current.held_out
        if c is None or k is None:
            return True
        (primary_c, latency_c, false_c), (primary_k, latency_k, false_k) = objective(c), objective(k)
        if abs(primary_c - primary_k) > 1e-9:
            return primary_c > primary_k
        if abs(latency_c - latency_k) > LATENCY_SLACK:  # negated latencies: larger is faster
            return latency_c > latency_k
        return false_c >= false_k - 1e-9

    @property
    def ok(self) -> bool:
        return (self.chosen.within_limits() and self.holds_up
                and self.chosen.held_out_within_limits() is not False)


def split_visitors(visitors: Iterable[str], holdout: bool = True, listened: Collection[str] | None = None
                   ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tuned on, held out), each in id order: alternate visitors in id order,
    those of `listened` (with a listen row that counts for recall) first, so
    that both halves have recall to measure when two visitors do (visitors
    who only glanced, kept aside, showed nothing and passed any settings);
    all tuned on when `holdout` is false or there is only one visitor."""
    ids = sorted(set(visitors), key=lambda v: (listened is not None and v not in listened, v))
    if not holdout or len(ids) < 2:
        return tuple(sorted(ids)), ()
    return tuple(sorted(ids[0::2])), tuple(sorted(ids[1::2]))


def tune(zones: str | os.PathLike[str], *, truth: str | os.PathLike[str],
         scans: str | os.PathLike[str] | None = None, walks: str | os.PathLike[str] | None = None,
         radio: str = "museum", rate: float | None = None, seed: int = 7,
         lang: str | None = None, budget: int = 200, jobs: int = 2, holdout: bool = True,
         space: Mapping[str, Sequence[float]] | None = None, progress: bool = False,
         ) -> TuneResult:
    """Search the settings (see the module docstring). Give `scans` (a scan
    log) or `walks` (positions, turned into scans by the radio model `radio`
    at `rate` Hz with `seed`)."""
    from guide.cli import language
    from guide.zones import load_zones

    started = time.monotonic()
    if (scans is None) == (walks is None):
        raise GuideError("give the walks to tune on: --scans (a recorded scan log) or "
                         "--walks (positions, turned into scans by the radio model)")
    if budget < 1:
        raise GuideError(f"--budget {budget}: give a number of evaluations, 1 or more")
    site = load_zones(zones)
    lang = language(site, lang)
    truth_rows = read_truth(truth, site.exhibit_ids)
    if not truth_rows:
        raise GuideError(f"{truth}: the ground truth has no rows: nothing to tune against")
    space = dict(space or default_space(site.trigger))
    with tempfile.TemporaryDirectory(prefix="guide-tune-") as tmp:
        walk_end: dict[str, float] = {}
        if walks is not None:
            scans = _scans_from_walks(site, Path(walks), Path(tmp) / "scans.csv", radio, rate,
                                      seed, walk_end)
        stats = ScanStats()
        heard = heard_at(site, read_scans(scans, site, stats=stats), truth_rows)  # checked once, here
        if walks is not None and not stats.rows:
            from guide.radio import NO_SCANS

            raise GuideError(f"{walks}: the walks gave no scans: {NO_SCANS}")
        stats.check_site(scans, site)
        if walks is None:
            walk_end = dict(stats.last_t)  # a walk ends at its last row, known beacon or not
        visitors = set(stats.last_t) & {r.visitor for r in truth_rows}
        if not visitors:
            raise GuideError(f"no visitor of {truth} is in the scans: they are not the same walks")
        tune_on, held = split_visitors(visitors, holdout, {r.visitor for r in truth_rows if r.counted})
        late = after_walk((r for r in truth_rows if r.counted), walk_end)
        stood = {r.exhibit for r in truth_rows if r.intent == "listen" and r.visitor in walk_end
                 and r.start <= walk_end[r.visitor]}
        unheard = tuple(e.id for e in site.exhibits if e.id in stood and e.id not in heard)
        if not any(r.counted and r.visitor in tune_on for r in truth_rows):
            raise GuideError(f"{truth}: no `listen` row of {MIN_LISTEN:g} s or more for the visitors "
                             f"tuned on ({listed(tune_on, 6)}): recall cannot be measured, so there "
                             "is nothing to tune for; record walks where visitors listen at exhibits")
        search = _Search(space, site_values(site), budget, seed, progress)
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        try:
            with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx,
                                     initializer=_init_worker,
                                     initargs=(str(zones), str(scans), str(truth), lang, walk_end)) as pool:
                def run(cands: list[Values], who: tuple[str, ...]) -> list[Metrics]:
                    return list(pool.map(_evaluate_task, cands, [who] * len(cands)))

                ranked = search.run(lambda cands: run(cands, tune_on))
                current = search.seen[_freeze(site_values(site))]
                top = ranked[:5]
                finals = top + ([current] if all(c.values != current.values for c in top) else [])
                held_metrics = run([c.values for c in finals], held) if held else [None] * len(finals)
        except BrokenProcessPool:  # a worker killed (out of memory, or by hand): no traceback of ours
            raise GuideError(f"a process of the search ended abruptly (killed, most likely for want of "
                             f"memory), so nothing was chosen or written; run again with fewer --jobs "
                             f"(now {jobs}), or on shorter walks") from None
    with_held = {_freeze(c.values): replace(c, held_out=m) for c, m in zip(finals, held_metrics)}
    best = tuple(with_held[_freeze(c.values)] for c in top)
    cur = with_held[_freeze(current.values)]
    chosen = best[0]
    if chosen.key <= cur.key:
        chosen = cur  # nothing beat the current settings
    return TuneResult(current=cur, chosen=chosen, best=best, evaluations=search.evaluated,
                      seconds=time.monotonic() - started, tune_visitors=tune_on,
                      held_out_visitors=held, unheard=unheard, late=tuple(late))


def heard_at(site: Site, rows: Iterable[ScanRow], truth: Iterable[TruthRow]) -> set[str]:
    """The exhibits whose beacon was heard (one packet is enough) during a
    `listen` row at them of `truth`, over `rows` (read once). An exhibit
    stood at but missing here was never heard where visitors listened (a
    flat battery, a wrong id in zones.yaml): no setting can start it."""
    beacon = {e.id: e.beacon for e in site.exhibits}
    windows: dict[tuple[str, str], list[tuple[float, float, str]]] = defaultdict(list)
    for r in truth:
        if r.intent == "listen" and r.exhibit in beacon:
            windows[(r.visitor, beacon[r.exhibit])].append((r.start, r.end, r.exhibit))
    heard: set[str] = set()
    for v, t, b, _ in rows:
        for start, end, exhibit in windows.get((v, b), ()):
            if start <= t <= end:
                heard.add(exhibit)
    return heard


def _scans_from_walks(site: Site, walks: Path, out: Path, radio: str, rate: float | None,
                      seed: int, walk_end: dict[str, float]) -> Path:
    """The scan log the radio model makes of `walks`, written once for the workers."""
    from guide.radio import RadioModel, read_walks, scans_from_walk

    def noted():
        for row in read_walks(walks):
            walk_end[row[0]] = row[1]
            yield row

    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write("visitor,t,beacon,rssi\n")
        for v, t, b, r in scans_from_walk(site, noted(), RadioModel.preset(radio), seed=seed,
                                          rate_hz=rate):
            f.write(f"{v},{t:.3f},{b},{r}\n")
    return out


def _canonical(values: Mapping[str, float]) -> Values:
    """`values` as the engine reads them: a `dwell_again` shorter than the
    `dwell` acts as the dwell, so two such candidates are one."""
    out = dict(values)
    if "dwell" in out and out.get("dwell_again", math.inf) < out["dwell"]:
        out["dwell_again"] = out["dwell"]
    return out


def _freeze(values: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, float(v)) for k, v in _canonical(values).items()))


class _Search:
    """Best-first search in a region around the current settings that grows
    where the best candidates press against its edge; see the module docstring."""

    def __init__(self, space: Mapping[str, Sequence[float]], start: Values, budget: int,
                 seed: int, progress: bool):
        self.space = {k: tuple(v) for k, v in space.items()}
        self.start = {k: float(v) for k, v in start.items()}
        self.budget = budget
        self.rng = random.Random(seed)
        self.seen: dict[tuple, Candidate] = {}
        self.evaluated = 0
        self.widened = False  # the region was just opened to the whole grid
        # the region searched: grid indices lo..hi of each setting, REGION steps
        # either side of the current value to begin with
        self.lo, self.hi = {}, {}
        for name, grid in self.space.items():
            i = _index(grid, self.start[name])
            self.lo[name], self.hi[name] = max(0, i - REGION), min(len(grid) - 1, i + REGION)
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=budget, desc="tuning", unit="setting", file=sys.stderr,
                            leave=False, disable=None)

    def _batch(self, evaluate: Callable[[list[Values]], list[Metrics]], cands: list[Values]) -> None:
        fresh, keys = [], set()
        for c in map(_canonical, cands):  # stored as the engine reads them
            k = _freeze(c)
            if k not in self.seen and k not in keys:
                keys.add(k)
                fresh.append(c)
        fresh = fresh[:max(0, self.budget - self.evaluated)]
        if not fresh:
            return
        for c, m in zip(fresh, evaluate(fresh)):
            self.seen[_freeze(c)] = Candidate(values=dict(c), tuned=m)
        self.evaluated += len(fresh)
        if self.bar is not None:
            self.bar.update(len(fresh))
        self._grow()

    def _grow(self) -> None:
        """Widen the region wherever the best candidate sits on its edge, and
        everywhere while nothing beats the current settings: they may be far
        from good (a bad value, a new site)."""
        best = max(self.seen.values(), key=lambda c: c.key)
        start = self.seen.get(_freeze(self.start))
        if start is not None and best.key <= start.key:
            # nothing near beats them: look everywhere, spread out
            wider = any(self.lo[k] > 0 or self.hi[k] < len(g) - 1 for k, g in self.space.items())
            self.lo = {k: 0 for k in self.space}
            self.hi = {k: len(g) - 1 for k, g in self.space.items()}
            self.widened = self.widened or wider
            return
        for name, grid in self.space.items():
            i = _index(grid, best.values[name])
            if i == self.lo[name]:
                self.lo[name] = max(0, i - REGION)
            if i == self.hi[name]:
                self.hi[name] = min(len(grid) - 1, i + REGION)

    def _inside(self, values: Values) -> bool:
        return all(self.lo[k] <= _index(g, values[k]) <= self.hi[k] for k, g in self.space.items())

    def neighbours(self, values: Values, reach: int) -> list[Values]:
        out = []
        for name, grid in self.space.items():
            i = _index(grid, values[name])
            for step in range(-reach, reach + 1):
                j = i + step
                if step and self.lo[name] <= j <= self.hi[name]:
                    out.append({**values, name: grid[j]})
        return out

    def jump(self, values: Values) -> Values:
        out = dict(values)
        for name in self.rng.sample(list(self.space), 2):
            grid = self.space[name]
            i = _index(grid, values[name]) + self.rng.choice((-3, -2, 2, 3))
            out[name] = grid[max(self.lo[name], min(self.hi[name], i))]
        return out

    def _plateau(self, evaluate: Callable[[list[Values]], list[Metrics]]) -> list[Candidate]:
        """The candidates best first. Among those tied with the best (same
        score, latency within half a second), the one whose neighbours (one
        grid step of one setting) score best comes first: on a few walks, a
        lone peak is luck, a plateau is a setting that will hold."""
        ranked = sorted(self.seen.values(), key=lambda c: c.key, reverse=True)
        best = ranked[0].key
        tied = [c for c in ranked if c.key[0] == best[0] and c.key[1] >= best[1] - 0.5][:4]
        if len(tied) < 2:
            return ranked
        for c in tied:
            self._batch(evaluate, self.neighbours(c.values, 1))

        def flatness(c: Candidate) -> float:
            near = [self.seen[_freeze(n)].key[0] for n in self.neighbours(c.values, 1)
                    if _freeze(n) in self.seen]
            return sum(near) / len(near) if near else -math.inf

        tied.sort(key=flatness, reverse=True)
        chosen = {_freeze(c.values) for c in tied}
        return tied + [c for c in sorted(self.seen.values(), key=lambda c: c.key, reverse=True)
                       if _freeze(c.values) not in chosen]

    def spread(self, n: int) -> list[Values]:
        """`n` candidates covering each setting's range in the region evenly
        (a Latin hypercube over the grids), in random combinations."""
        columns = {}
        for name, grid in self.space.items():
            span = list(grid[self.lo[name]:self.hi[name] + 1])
            values = span * (n // len(span) + 1)
            self.rng.shuffle(values)
            columns[name] = values[:n]
        return [{name: columns[name][i] for name in self.space} for i in range(n)]

    def run(self, evaluate: Callable[[list[Values]], list[Metrics]]) -> list[Candidate]:
        try:
            self._batch(evaluate, [self.start] + self.spread(max(1, self.budget // 4)))
            stepped: set[tuple] = set()  # candidates whose neighbours were all tried
            search_budget = self.budget - self.budget * PLATEAU_SHARE // 100
            while self.evaluated < search_budget:
                ranked = sorted(self.seen.values(), key=lambda c: c.key, reverse=True)
                centre = next((c for c in ranked if _freeze(c.values) not in stepped), None)
                count = self.evaluated
                if self.widened:
                    self.widened = False
                    self._batch(evaluate, self.spread(max(1, self.budget // 4)))
                    continue
                if centre is not None:
                    # best first: one or two grid steps of each setting from the
                    # best candidate not yet stepped from
                    stepped.add(_freeze(centre.values))
                    self._batch(evaluate, self.neighbours(centre.values, 2))
                if self.evaluated == count:
                    # nothing new nearby: two settings at a time around the best few
                    self._batch(evaluate, [self.jump(c.values) for c in ranked[:3] for _ in range(3)])
                if self.evaluated == count and centre is None:
                    self._batch(evaluate, self.spread(8))
                    if self.evaluated == count:
                        break  # the whole region is tried
            return self._plateau(evaluate)
        finally:
            if self.bar is not None:
                self.bar.close()


def _index(grid: Sequence[float], value: float) -> int:
    return min(range(len(grid)), key=lambda i: abs(grid[i] - value))


# ----------------------------------------------------------------- output

def snippet(values: Mapping[str, float], *, comment: str | None = None) -> str:
    """The chosen settings as zones.yaml lines, to paste at the top level."""
    from guide.yamledit import format_value

    lines = [f"# {comment}"] if comment else []
    lines.append("trigger:")
    lines += [f"  {k}: {format_value(v)}" + (f"  # {SETTINGS[k].metadata['unit']}"
                                               if SETTINGS[k].metadata["unit"] else "")
              for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    return f"{v:g}"


def format_result(r: TuneResult) -> str:
    def cells(m: Metrics | None) -> list[str]:
        if m is None:
            return ["-"] * 5
        # nothing to measure (no hit: no latency) reads n/a, as in simulate.py's table
        return [cell(m.recall, ".3f"), cell(m.latency_median, ".1f"),
                cell(m.per_hour(m.false_starts), ".1f"), cell(m.per_hour(m.interruptions), ".2f"),
                cell(m.per_hour(m.unwanted), ".0f")]

    head = ["", *PARAMETERS, "recall", "latency s", "false/h", "interr./h", "unwanted s/h"]
    rows = [head]
    shown = list(r.best)
    if all(c.values != r.current.values for c in shown):
        shown.append(r.current)
    for i, c in enumerate(shown):
        label = ("current" if c.values == r.current.values else "") + \
                (" chosen" if c.values == r.chosen.values else "")
        label = label.strip() or f"#{i + 1}"
        flag = "" if c.within_limits() else " (over a limit)"
        rows.append([label + flag, *(_fmt(c.values[k]) for k in PARAMETERS), *cells(c.tuned)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(row, widths)))
    lines = [f"Tuned on {counted(len(r.tune_visitors), 'visitor')} ({listed(r.tune_visitors, 6)}): "
             f"{r.evaluations} settings "
             f"tried in {r.seconds:.0f} s. Limits: interruptions <= {MAX_INTERRUPTIONS:g}/h, "
             f"unwanted audio <= {MAX_UNWANTED:g} s/h.", "", fmt(rows[0])]
    lines += [fmt(row) for row in rows[1:]]
    chance = [c for c in shown if c.tuned.per_hour(c.tuned.interruptions) > MAX_INTERRUPTIONS
              and c.within_limits()]
    if chance:
        hours = chance[0].tuned.hours
        lines.append(f"(On {hours:.1f} visitor-hours, {_poisson_bound(MAX_INTERRUPTIONS * hours, CHANCE)} "
                     "interruption(s) can happen by chance at the limit's own rate: not held against a setting.)")
    if r.held_out_visitors:
        lines += ["", f"On the {counted(len(r.held_out_visitors), 'visitor')} it did not tune on "
                      f"({listed(r.held_out_visitors, 6)}):"]
        def held(label: str, c: Candidate) -> list[str]:
            flag = " (over a limit)" if c.held_out_within_limits() is False else ""
            return [label + flag, *cells(c.held_out)]

        rows2 = [["", "recall", "latency s", "false/h", "interr./h", "unwanted s/h"],
                 held("current", r.current), held("chosen", r.chosen)]
        widths2 = [max(len(row[i]) for row in rows2) for i in range(len(rows2[0]))]
        lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths2))) for row in rows2]
    else:
        lines += ["", "No visitors were kept aside (one visitor, or --no-holdout): nothing shows "
                      "whether these settings hold on walks they were not tuned on."]
    if not r.improved:
        lines += ["", "No setting tried beats the current ones: keep them."]
    elif not r.holds_up:
        lines.append("")
        lines.append("The chosen settings do worse than the current ones on the walks they were "
                     "not tuned on: they fit these walks only. Keep the current settings, or "
                     "record more walks and tune again.")
    elif not r.chosen.within_limits():
        lines.append("")
        lines.append("No setting tried keeps within the limits: record more walks, or fix the "
                     "layout (guide lint) before tuning.")
    elif r.chosen.held_out_within_limits() is False:
        lines.append("")
        lines.append("The chosen settings do better than the current ones on the walks they were "
                     "not tuned on, but are over a limit there: these walks do not show settings "
                     "that hold. Record more walks, or fix the layout (guide lint) before tuning.")
    return "\n".join(lines) + "\n"
