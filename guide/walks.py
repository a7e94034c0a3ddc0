"""Generated museum visitors: where they walk, and what they wanted (ground truth).

The simulator scores the trigger engine on walks whose intent is known. This
module makes such walks for any site, as rows of FORMATS.md: walk rows
(visitor, t, x, y) every 0.1 s and truth rows (visitor, start, end, exhibit,
intent).

    walk, truth = generate_visitors(site, n=8, seed=3, durations={"dome": 95.0, ...}, lang="en")
    write_walks("walks.csv", walk)
    write_truth("truth.csv", truth)

What a visitor does, and the truth it leaves (the semantics of the public
samples):
- walks at 0.8-1.5 m/s between exhibits, around walls (through their gaps);
  walks past some exhibits without stopping (no row: no track wanted);
- stands at an exhibit's standing spot (0.3-1.0 m from the exhibit's x/y,
  swaying and drifting a little) to listen: a `listen` row from arrival, or
  from the end of the previous track if that still plays, to leaving;
- leaving before the track ends leaves a `wander` row from leaving to the
  track's end (the track is taken to start at the listen row's start); the
  visitor strolls on, may pause near other exhibits, and may stand at the next
  exhibit waiting for the track to end, all without another row;
- looks at an exhibit for 1-6 s: a `glance` row (no track wanted);
- never listens to an exhibit twice, skips some, and leaves after 15-40 min.

Kinds of visitor, mixed by `mix` (weights): "listener" (listens to most
tracks to the end), "glancer" (many glances, some listens, comes back for more
glances), "wanderer" (starts listening, then walks on while the track plays).
How they all rest and pause between exhibits is `habits` (`HABITS`).
Everything comes from `seed`; each visitor from the seed and its own id.
"""

from __future__ import annotations

import heapq
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

import numpy as np

from guide.errors import GuideError, Problem, ZoneMapError
from guide.files import replace_whole
from guide.metrics import TruthRow, read_truth
from guide.site import Exhibit, Site

__all__ = ["WalkRow", "TruthRow", "Visitor", "KINDS", "DEFAULT_MIX", "HABITS", "WALK_DT",
           "generate_visitors", "plan_visitors", "write_walks", "write_truth", "read_truth"]

WALK_DT = 0.1  # s between walk rows
KINDS = ("listener", "glancer", "wanderer")
DEFAULT_MIX: Mapping[str, float] = {"listener": 0.4, "glancer": 0.3, "wanderer": 0.3}
MIN_VISIT, MAX_VISIT = 15 * 60.0, 40 * 60.0  # s
GLANCE = (1.0, 6.0)  # s a glance lasts
CLEARANCE = 0.4  # m visitors keep from walls while walking


class WalkRow(NamedTuple):
    """One walk sample. A tuple, so that it unpacks like a CSV row and
    `guide.radio.scans_from_walk` takes the rows as they are."""

    visitor: str
    t: float  # s since the visitor's walk began
    x: float  # m
    y: float


@dataclass(frozen=True, kw_only=True)
class Visitor:
    """Who one generated visitor is (scenario.json records it)."""

    id: str
    kind: str  # one of KINDS
    speed: float  # m/s walking between exhibits
    slow_speed: float  # m/s strolling while a track plays on
    drift: float  # m, std of the sway and drift when standing
    visit: float  # s the visitor means to stay (15-40 min)


@dataclass(frozen=True)
class _Kind:
    listen: float  # weights of what the visitor does at the next exhibit
    glance: float
    walk_past: float
    skip: float  # never goes there (may still walk by)
    to_end: float  # probability a listen lasts to the end of the track
    early: tuple[float, float]  # otherwise leaves after this fraction of the track
    short: tuple[float, float] | None  # or after this many seconds (wanderers)
    rest: float  # probability of a rest away from exhibits before the next stop


_KINDS = {
    "listener": _Kind(listen=0.75, glance=0.12, walk_past=0.08, skip=0.05, to_end=0.7,
                      early=(0.55, 0.97), short=None, rest=0.06),
    "glancer": _Kind(listen=0.25, glance=0.55, walk_past=0.12, skip=0.08, to_end=0.45,
                     early=(0.3, 0.9), short=None, rest=0.05),
    "wanderer": _Kind(listen=0.65, glance=0.1, walk_past=0.1, skip=0.15, to_end=0.1,
                      early=(0.2, 0.6), short=(10.0, 45.0), rest=0.05),
}


@dataclass(frozen=True)
class Habits:
    """How a crowd spends its time away from exhibits (the same for every kind)."""

    rest: tuple[float, float]  # s a rest (a bench, a window) lasts
    rest_from: tuple[float, float]  # m from the exhibit a rest is drawn near
    rest_clear: float  # m a rest keeps beyond every exhibit's radius
    pause: tuple[float, float]  # s a pause near another exhibit lasts while a track plays on
    rest_share: float  # once every exhibit is done: share of rests among the stops left


HABITS = {
    # visitors who sit down often, for long, close to exhibits: the harder
    # case, and the one every figure before session 9 was measured on
    "lingering": Habits(rest=(15.0, 60.0), rest_from=(2.0, 6.0), rest_clear=1.0,
                        pause=(5.0, 20.0), rest_share=0.5),
    # fewer, shorter rests further from exhibits, and short pauses while a
    # track plays on: the visitors of the shared gallery sample (its rests
    # last 6-30 s at 2-5.5 m beyond the nearest radius, its pauses 5-7 s)
    "brisk": Habits(rest=(6.0, 30.0), rest_from=(3.0, 8.0), rest_clear=2.0,
                    pause=(4.0, 8.0), rest_share=0.25),
}


# ---------------------------------------------------------------- public API

def plan_visitors(n: int, *, seed: int, mix: Mapping[str, float] | None = None) -> list[Visitor]:
    """The `n` visitors `generate_visitors` makes with this seed and mix: kinds
    in the mix's proportions (largest remainder, shuffled), speeds, visit length.

    >>> [v.kind for v in plan_visitors(3, seed=1, mix={"listener": 1})]
    ['listener', 'listener', 'listener']
    """
    if not isinstance(n, int) or n < 0:
        raise GuideError(f"visitors: n = {n!r}; give a whole number of visitors, 0 or more")
    weights = _mix(mix)
    total = sum(weights.values())
    quota = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: quota[k] - counts[k], reverse=True)[:n - sum(counts.values())]:
        counts[k] += 1
    kinds = [k for k in KINDS for _ in range(counts.get(k, 0))]
    rng = np.random.default_rng([int(seed), 11])
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        vid = f"v{i + 1:03d}"
        r = _rng(seed, vid, 1)
        out.append(Visitor(id=vid, kind=str(kind), speed=round(float(r.uniform(0.8, 1.5)), 2),
                           slow_speed=round(float(r.uniform(0.35, 0.65)), 2),
                           drift=round(float(r.uniform(0.04, 0.14)), 3),
                           visit=round(float(r.uniform(MIN_VISIT, MAX_VISIT)), 1)))
    return out


def generate_visitors(site: Site, *, n: int, seed: int, durations: Mapping[str, float],
                      lang: str, mix: Mapping[str, float] | None = None,
                      entrance: tuple[float, float] | None = None,
                      habits: str = "lingering",
                      ) -> tuple[list[WalkRow], list[TruthRow]]:
    """Walk rows and truth rows of `n` generated visitors, visitor after visitor.

    `durations` maps exhibit id to the seconds of the track a visitor choosing
    `lang` hears there; exhibits with no track in that language (nor its
    fallbacks) are only glanced at. `entrance` is where every walk begins and
    ends (default: a free spot near the lower-left corner of the site).
    `habits` names how visitors rest and pause between exhibits (`HABITS`).

    >>> walk, truth = generate_visitors(site, n=2, seed=1, durations=d, lang="en")  # doctest: +SKIP
    >>> truth[0]  # doctest: +SKIP
    TruthRow(visitor='v001', start=21.3, end=140.2, exhibit='dome', intent='listen')
    """
    if lang not in site.languages:
        raise GuideError(f"language {lang!r} is not offered by {site.path}; "
                         f"choose one of {', '.join(site.languages)}")
    if habits not in HABITS:
        raise GuideError(f"habits {habits!r}: choose one of {', '.join(HABITS)}")
    tracks: dict[str, float] = {}
    for e in site.exhibits:
        if site.track_for(e.id, lang) is None:
            continue
        d = durations.get(e.id)
        if d is None:
            raise GuideError(f"durations: no entry for exhibit {e.id}, which has a track in "
                             f"{lang}; give the seconds of that track")
        if not (isinstance(d, (int, float)) and math.isfinite(d) and d > 0):
            raise GuideError(f"durations: exhibit {e.id} = {d!r}; give a track length in seconds above 0")
        tracks[e.id] = float(d)
    visitors = plan_visitors(n, seed=seed, mix=mix)
    if not site.exhibits or not visitors:
        return [], []
    floor = _Floor(site)
    start = _entrance(site, floor) if entrance is None else (float(entrance[0]), float(entrance[1]))
    walk: list[WalkRow] = []
    truth: list[TruthRow] = []
    for v in visitors:
        w, tr = _Visit(site, floor, v, tracks, start, _rng(seed, v.id, 2), HABITS[habits]).run()
        walk += w
        truth += tr
    return walk, truth


def write_walks(path: str | os.PathLike, rows: Iterable[tuple[str, float, float, float]]) -> None:
    """Write a FORMATS.md walk CSV (replaced whole, never left half-written)."""
    def lines():
        yield "visitor,t,x,y\n"
        for visitor, t, x, y in rows:
            yield f"{visitor},{_num(t)},{x:.2f},{y:.2f}\n"
    _write_atomic(Path(path), lines())


def write_truth(path: str | os.PathLike, rows: Iterable[TruthRow]) -> None:
    """Write a FORMATS.md ground-truth CSV (replaced whole, never left half-written)."""
    def lines():
        yield "visitor,start,end,exhibit,intent\n"
        for r in rows:
            yield f"{r.visitor},{_num(r.start)},{_num(r.end)},{r.exhibit},{r.intent}\n"
    _write_atomic(Path(path), lines())


# ---------------------------------------------------------------- one visit

class _Visit:
    """One visitor's walk, built sample by sample (index k is time k * WALK_DT)."""

    def __init__(self, site: Site, floor: "_Floor", who: Visitor, tracks: Mapping[str, float],
                 entrance: tuple[float, float], rng: np.random.Generator, habits: Habits):
        self.site, self.floor, self.who, self.tracks, self.rng = site, floor, who, tracks, rng
        self.habits = habits
        self.kind = _KINDS[who.kind]
        self.entrance = entrance
        self.xy: list[np.ndarray] = [np.array([entrance], dtype=float)]
        self.pos = np.array(entrance, dtype=float)
        self.rows: list[tuple[int, int, str, str]] = []  # start, end (sample indices), exhibit, intent
        self.heard: set[str] = set()
        self.seen: dict[str, int] = {}  # exhibit -> sample when last stood at
        self.play_end = -1  # sample index where the current track ends (wander), or -1
        self.at_rest = True  # the last leg ended standing
        self.centre = np.mean([[e.x, e.y] for e in site.exhibits], axis=0)

    @property
    def k(self) -> int:
        """Index of the last sample so far."""
        return sum(len(a) for a in self.xy) - 1

    def run(self) -> tuple[list[WalkRow], list[TruthRow]]:
        rng, kind = self.rng, self.kind
        reachable = [e for e in self.site.exhibits if self._reachable(e)]
        if not reachable:
            raise ZoneMapError([Problem(file=str(self.site.path), message=(
                "no exhibit can be reached from the entrance without crossing a wall; "
                "leave a doorway (a gap of 1 m or more) in the walls"))])
        todo = list(reachable)
        reach = float(rng.uniform(6.0, 15.0))  # m: how strongly the next stop is a near one
        deadline = self.who.visit / WALK_DT
        while todo and self.k < deadline:
            d = np.array([math.hypot(e.x - self.pos[0], e.y - self.pos[1]) for e in todo])
            w = np.exp(-(d - d.min()) / reach)
            e = todo.pop(int(rng.choice(len(todo), p=w / w.sum())))
            wants = e.id in self.tracks and e.id not in self.heard
            acts = np.array([kind.listen if wants else 0.0, kind.glance, kind.walk_past, kind.skip])
            act = ("listen", "glance", "walk_past", "skip")[int(rng.choice(4, p=acts / acts.sum()))]
            if act == "skip":
                continue
            if rng.random() < kind.rest:
                self._rest()
            getattr(self, "_" + act)(e)
        # time left: come back for more glances (glancers stay until they mean
        # to leave; everyone stays the minimum visit)
        goal = deadline if self.who.kind == "glancer" else MIN_VISIT / WALK_DT
        for _ in range(300):
            if self.k >= goal:
                break
            # not an exhibit looked at in the last two minutes
            fresh = [e for e in reachable if self.k - self.seen.get(e.id, -10**9) > 120 / WALK_DT]
            if rng.random() < self.habits.rest_share or not fresh:
                self._rest()
            else:
                self._glance(fresh[int(rng.integers(len(fresh)))])
        self._walk(self.entrance, stop=True)
        return self._rows()

    # -- what a visitor does at an exhibit

    def _listen(self, e: Exhibit) -> None:
        while self._playing_for() > 40.0 / WALK_DT:
            # long wait ahead: stroll and pause elsewhere before queueing at e
            if not self._filler(avoid=e):
                break
        spot, limit = self._spot(e, listen=True)
        if spot is None:
            return
        self._walk(spot, stop=True)
        arrive = self.k
        begin = max(arrive, self.play_end)  # the previous track plays out first
        self._wander_ends(begin)
        length = self.tracks[e.id] / WALK_DT
        kind, rng = self.kind, self.rng
        if rng.random() < kind.to_end:
            stay = length + rng.uniform(1.0, 12.0) / WALK_DT
        elif kind.short is not None:
            stay = min(rng.uniform(*kind.short) / WALK_DT, 0.9 * length)
        else:
            stay = rng.uniform(*kind.early) * length
        leave = begin + max(1, int(round(stay)))
        self._stand(spot, leave - self.k, limit)
        self.rows.append((begin, leave, e.id, "listen"))
        self.heard.add(e.id)
        self.seen[e.id] = self.k
        end = begin + int(round(length))
        if end > leave:
            self.rows.append((leave, end, e.id, "wander"))
            self.play_end = end
        else:
            self.play_end = -1

    def _glance(self, e: Exhibit) -> None:
        spot, limit = self._spot(e, listen=False)
        if spot is None:
            return
        self._walk(spot, stop=True)
        if self._playing_for() > 0:
            # a track plays on: this is a pause within the wander, not a glance
            self._stand(spot, int(self.rng.uniform(2.0, 10.0) / WALK_DT), limit)
            return
        n = int(round(self.rng.uniform(*GLANCE) / WALK_DT))
        start = self.k
        self._stand(spot, n, limit)
        self.rows.append((start, start + n, e.id, "glance"))
        self.seen[e.id] = self.k

    def _walk_past(self, e: Exhibit) -> None:
        r = min(1.5, e.radius) * self.rng.uniform(0.3, 1.0)
        for _ in range(12):
            a = self.rng.uniform(0, 2 * math.pi)
            p = np.array([e.x + r * math.cos(a), e.y + r * math.sin(a)])
            if (self.floor.clearance(p[None])[0] >= 0.3 and self.floor.inside(p)
                    and not self.floor.crosses(np.array([e.x, e.y]), p)):
                self._walk(p, stop=False)
                return

    def _rest(self) -> None:
        """Stand somewhere away from every exhibit (a bench, a window)."""
        for _ in range(30):
            e = self.site.exhibits[int(self.rng.integers(len(self.site.exhibits)))]
            a, r = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(*self.habits.rest_from)
            p = np.array([e.x + r * math.cos(a), e.y + r * math.sin(a)])
            if (self.floor.clearance(p[None])[0] >= 0.5 and self.floor.inside(p)
                    and not self.floor.crosses(np.array([e.x, e.y]), p)
                    and all(math.hypot(p[0] - o.x, p[1] - o.y) > o.radius + self.habits.rest_clear
                            for o in self.site.exhibits)
                    and self.floor.route(self.pos, p) is not None):
                self._walk(p, stop=True)
                self._stand(p, int(self.rng.uniform(*self.habits.rest) / WALK_DT), 0.3)
                return

    def _filler(self, avoid: Exhibit) -> bool:
        """While a track plays on: pause near another exhibit, or rest."""
        others = [o for o in self.site.exhibits if o.id != avoid.id
                  and math.hypot(o.x - self.pos[0], o.y - self.pos[1]) < 10.0]
        if others and self.rng.random() < 0.7:
            o = others[int(self.rng.integers(len(others)))]
            spot, limit = self._spot(o, listen=False)
            if spot is not None:
                self._walk(spot, stop=True)
                self._stand(spot, int(self.rng.uniform(*self.habits.pause) / WALK_DT), limit)
                return True
        before = self.k
        self._rest()
        return self.k > before

    def _playing_for(self) -> int:
        """Samples until the wandering track ends (0 when none plays)."""
        return max(0, self.play_end - self.k)

    def _wander_ends(self, k: int) -> None:
        if self.play_end >= 0 and self.play_end <= k:
            self.play_end = -1

    # -- where to stand

    def _reachable(self, e: Exhibit) -> bool:
        spot, _ = self._spot(e, listen=True)
        return spot is not None

    def _spot(self, e: Exhibit, *, listen: bool) -> tuple[np.ndarray | None, float]:
        """A standing spot for `e` and how far the visitor may drift from it, or
        (None, 0) when none can be reached. Listening spots stay inside the
        radius with the drift; glances may be from further out."""
        rng, floor = self.rng, self.floor
        if listen:
            hi = max(0.15, min(1.0, e.radius - 0.45))
            lo = min(0.3, hi)
        else:
            hi = max(0.3, min(2.0, e.radius))
            lo = min(0.4, hi)
        c = np.array([e.x, e.y])
        beacon = self.site.beacons[e.beacon]
        inward = self.centre - c
        inward = inward / (np.linalg.norm(inward) or 1.0)
        n = 32
        ang = rng.uniform(0, 2 * math.pi) + np.arange(n) * 2 * math.pi / n
        rad = rng.uniform(lo, hi, n)
        pts = c + np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
        clr = floor.clearance(pts)
        score = rng.uniform(0, 1.0, n) + 0.8 * (np.cos(ang) * inward[0] + np.sin(ang) * inward[1])
        others = [o for o in self.site.exhibits if o.id != e.id]
        for i in range(n):
            p = pts[i]
            if clr[i] < 0.25 or not floor.inside(p) or floor.crosses(c, p):
                score[i] = -np.inf
                continue
            mine = rad[i]
            if any(math.hypot(p[0] - o.x, p[1] - o.y) < mine + 0.3 for o in others):
                score[i] -= 2.0  # nearer a neighbour than its own exhibit
            if listen and math.hypot(p[0] - beacon.x, p[1] - beacon.y) > e.radius:
                score[i] -= 1.0
        for i in np.argsort(-score):
            if not np.isfinite(score[i]):
                break
            if floor.route(self.pos, pts[i]) is None:
                continue
            room = min(0.3, clr[i] - 0.1)
            limit = min(room, e.radius - rad[i] - 0.1) if listen else room
            return pts[i], max(0.02, limit)
        return None, 0.0

    # -- moving

    def _walk(self, target: np.ndarray | tuple[float, float], *, stop: bool) -> None:
        target = np.asarray(target, dtype=float)
        path = self.floor.route(self.pos, target)
        if path is None or np.allclose(path[0], path[-1]):
            return
        v = self.who.slow_speed if self._playing_for() > 0 else self.who.speed
        pts = _walk_samples(np.array(path), v, self.at_rest, stop, self.rng)
        if not self.floor.path_ok(np.vstack([self.pos[None], pts])):
            pts = _walk_samples(np.array(path), v, self.at_rest, stop, self.rng, smooth=False)
        self.xy.append(pts)
        self.pos = pts[-1].copy()
        self.at_rest = stop
        self._wander_ends(self.k)

    def _stand(self, spot: np.ndarray, n: int, limit: float) -> None:
        if n <= 0:
            return
        rng, dt = self.rng, WALK_DT
        sigma = min(self.who.drift, limit)
        a = math.exp(-dt / 4.0)  # drift wanders with a 4 s time constant
        noise = rng.normal(0.0, sigma * math.sqrt(1 - a * a), (n, 2))
        off = np.zeros((n, 2))
        prev = self.pos - spot
        for i in range(n):
            prev = a * prev + noise[i]
            off[i] = prev
        f, ph = rng.uniform(0.2, 0.5), rng.uniform(0, 2 * math.pi, 2)
        tt = np.arange(1, n + 1) * dt
        sway = min(0.03, limit / 3) * np.stack([np.sin(2 * math.pi * f * tt + ph[0]),
                                                np.sin(2 * math.pi * f * 0.8 * tt + ph[1])], axis=1)
        off += sway
        norm = np.linalg.norm(off, axis=1)
        over = norm > limit
        off[over] *= (limit / norm[over])[:, None]
        pts = spot + off
        self.xy.append(pts)
        self.pos = pts[-1].copy()
        self.at_rest = True
        self._wander_ends(self.k)

    def _rows(self) -> tuple[list[WalkRow], list[TruthRow]]:
        xy = np.vstack(self.xy)
        last = min(len(xy) - 1, int(round(MAX_VISIT / WALK_DT)))
        xy = xy[:last + 1]
        vid = self.who.id
        walk = [WalkRow(vid, round(k * WALK_DT, 1), round(float(x), 2), round(float(y), 2))
                for k, (x, y) in enumerate(xy.tolist())]
        truth = []
        for start, end, ex, intent in sorted(self.rows):
            end = min(end, last)
            if end > start:
                truth.append(TruthRow(visitor=vid, start=round(start * WALK_DT, 1),
                                      end=round(end * WALK_DT, 1), exhibit=ex, intent=intent))
        return walk, truth


def _walk_samples(path: np.ndarray, v: float, from_rest: bool, stop: bool,
                  rng: np.random.Generator, *, smooth: bool = True) -> np.ndarray:
    """Positions every WALK_DT along the polyline `path` (its first point
    excluded), speeding up from rest and slowing to a stop where asked, with a
    little meander and gait sway unless `smooth` is False."""
    seg = np.diff(path, axis=0)
    lens = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lens)])
    total = float(cum[-1])
    dt = WALK_DT
    s, vc = 0.0, (0.0 if from_rest else v)
    phase = rng.uniform(0, 2 * math.pi)
    out = []
    k = 0
    while True:
        k += 1
        vt = v * (1.0 + 0.06 * math.sin(2 * math.pi * k * dt / 4.0 + phase))
        if stop:
            vt = min(vt, max(0.15, math.sqrt(2 * 0.5 * max(0.0, total - s))))
        vc = vt if vt < vc else min(vt, vc + 1.0 * dt)
        s += max(vc, 0.05) * dt
        if s >= total:
            out.append(total)
            break
        out.append(s)
    ss = np.array(out)
    x = np.interp(ss, cum, path[:, 0])
    y = np.interp(ss, cum, path[:, 1])
    pts = np.stack([x, y], axis=1)
    if not smooth or len(ss) < 5:
        return pts
    # lateral meander (slow) and gait sway (about 1 Hz), none at the ends
    i = np.clip(np.searchsorted(cum, ss, side="right") - 1, 0, len(lens) - 1)
    d = seg[i] / np.maximum(lens[i], 1e-9)[:, None]
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    a = math.exp(-dt / 3.0)
    noise = rng.normal(0.0, 0.07 * math.sqrt(1 - a * a), len(ss))
    mean = np.empty(len(ss))
    m = 0.0
    for j in range(len(ss)):
        m = a * m + noise[j]
        mean[j] = m
    lateral = np.clip(mean, -0.15, 0.15) + 0.02 * np.sin(2 * math.pi * 0.9 * ss / max(v, 0.1) + phase)
    taper = np.minimum(1.0, np.minimum(ss, total - ss) / 1.5)
    pts = pts + (lateral * taper)[:, None] * normal
    # round the corners a little (0.5 s moving average), keeping both ends
    kern = np.ones(5) / 5
    pad = np.vstack([np.repeat(path[:1], 2, axis=0), pts, np.repeat(pts[-1:], 2, axis=0)])
    sm = np.stack([np.convolve(pad[:, 0], kern, "valid"), np.convolve(pad[:, 1], kern, "valid")], axis=1)
    sm[-1] = pts[-1]
    return sm


# ---------------------------------------------------------------- the floor plan

class _Floor:
    """Walls, and shortest routes around them (a visibility graph over points
    just off the wall ends, so visitors go through doorways)."""

    def __init__(self, site: Site, clearance: float = CLEARANCE):
        self.c = clearance
        self.w = np.array([[a[0], a[1], b[0], b[1]] for a, b in site.walls],
                          dtype=float).reshape(-1, 4)
        xs = [*self.w[:, 0], *self.w[:, 2], *(e.x for e in site.exhibits)]
        ys = [*self.w[:, 1], *self.w[:, 3], *(e.y for e in site.exhibits)]
        # spots must lie within the walls' and exhibits' bounding box: never
        # on the far side of an outer wall
        self.box = (min(xs), min(ys), max(xs), max(ys)) if len(self.w) else None
        self.nodes = self._nodes()
        n = len(self.nodes)
        self.graph = np.full((n, n), np.inf)
        if n:
            ii, jj = np.triu_indices(n, 1)
            ok = self._segments_clear(self.nodes[ii], self.nodes[jj], self.c * 0.95)
            dist = np.hypot(*(self.nodes[ii] - self.nodes[jj]).T)
            self.graph[ii[ok], jj[ok]] = dist[ok]
            self.graph[jj[ok], ii[ok]] = dist[ok]

    def _nodes(self) -> np.ndarray:
        if not len(self.w):
            return np.zeros((0, 2))
        ends = np.vstack([self.w[:, :2], self.w[:, 2:]])
        ends = np.unique(np.round(ends, 3), axis=0)
        ang = np.arange(8) * math.pi / 4 + math.pi / 8
        ring = 1.6 * self.c * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        cand = (ends[:, None, :] + ring[None, :, :]).reshape(-1, 2)
        cand = cand[self.clearance(cand) >= 0.98 * self.c]
        keep: list[np.ndarray] = []
        for p in cand:
            if all(np.hypot(*(p - q)) > 0.1 for q in keep):
                keep.append(p)
        return np.array(keep).reshape(-1, 2)

    def clearance(self, pts: np.ndarray) -> np.ndarray:
        """Distance (m) from each point to the nearest wall (inf with no walls)."""
        pts = np.asarray(pts, dtype=float).reshape(-1, 2)
        if not len(self.w):
            return np.full(len(pts), np.inf)
        return _point_seg(pts[:, None, 0], pts[:, None, 1], self.w).min(axis=1)

    def inside(self, p: np.ndarray) -> bool:
        """In the building: within the walls' and exhibits' bounding box, and
        walled in (a ray cast from p meets a wall in 12 of 16 directions), so
        no visitor rests or enters on the far side of an outer wall."""
        if self.box is None:
            return True
        x0, y0, x1, y1 = self.box
        if not (x0 < p[0] < x1 and y0 < p[1] < y1):
            return False
        ang = np.arange(16) * (math.pi / 8) + 0.01
        dx, dy = np.cos(ang)[:, None], np.sin(ang)[:, None]
        x1_, y1_, x2_, y2_ = (self.w[None, :, i] for i in range(4))
        ex, ey = x2_ - x1_, y2_ - y1_
        den = dx * ey - dy * ex
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((x1_ - p[0]) * ey - (y1_ - p[1]) * ex) / den  # along the ray
            u = ((x1_ - p[0]) * dy - (y1_ - p[1]) * dx) / den  # along the wall
        hit = (np.abs(den) > 1e-12) & (t > 0) & (u >= 0) & (u <= 1)
        return int(hit.any(axis=1).sum()) >= 12

    def crosses(self, p: np.ndarray, q: np.ndarray) -> bool:
        if not len(self.w):
            return False
        return bool(_proper_cross(p[None], q[None], self.w).any())

    def path_ok(self, pts: np.ndarray) -> bool:
        """No step between consecutive points crosses a wall."""
        if not len(self.w) or len(pts) < 2:
            return True
        return not _proper_cross(pts[:-1], pts[1:], self.w).any()

    def _segments_clear(self, p: np.ndarray, q: np.ndarray, need: float | np.ndarray) -> np.ndarray:
        """For segments p[i]-q[i]: no wall crossed and none nearer than `need`."""
        if not len(self.w):
            return np.ones(len(p), dtype=bool)
        out = np.empty(len(p), dtype=bool)
        need = np.broadcast_to(np.asarray(need, dtype=float), (len(p),))
        step = max(1, 200_000 // len(self.w))
        for s in range(0, len(p), step):
            a, b = p[s:s + step], q[s:s + step]
            cross = _proper_cross(a, b, self.w).any(axis=1)
            dist = _seg_seg(a, b, self.w).min(axis=1)
            out[s:s + step] = ~cross & (dist >= need[s:s + step])
        return out

    def route(self, p: np.ndarray, q: np.ndarray) -> list[np.ndarray] | None:
        """Shortest walkable polyline from p to q, or None when walls close q off."""
        p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
        if not len(self.w):
            return [p, q]
        cp, cq = self.clearance(p[None])[0], self.clearance(q[None])[0]
        if self._segments_clear(p[None], q[None], min(self.c, cp, cq) - 0.02)[0]:
            return [p, q]
        n = len(self.nodes)
        if n == 0:
            return None
        reach_p = self._segments_clear(np.repeat(p[None], n, 0), self.nodes, min(self.c, cp) - 0.02)
        reach_q = self._segments_clear(np.repeat(q[None], n, 0), self.nodes, min(self.c, cq) - 0.02)
        if not reach_p.any() or not reach_q.any():
            return None
        # Dijkstra from p over the nodes; q is reached from any node that sees it
        dist = np.where(reach_p, np.hypot(*(self.nodes - p).T), np.inf)
        prev = np.full(n, -1)
        done = np.zeros(n, dtype=bool)
        heap = [(d, i) for i, d in enumerate(dist) if np.isfinite(d)]
        heapq.heapify(heap)
        while heap:
            d, i = heapq.heappop(heap)
            if done[i]:
                continue
            done[i] = True
            nd = d + self.graph[i]
            better = nd < dist
            for j in np.nonzero(better)[0]:
                dist[j] = nd[j]
                prev[j] = i
                heapq.heappush(heap, (nd[j], j))
        total = dist + np.where(reach_q, np.hypot(*(self.nodes - q).T), np.inf)
        last = int(np.argmin(total))
        if not np.isfinite(total[last]):
            return None
        chain = [last]
        while prev[chain[-1]] >= 0:
            chain.append(int(prev[chain[-1]]))
        return [p, *(self.nodes[i] for i in reversed(chain)), q]


def _cross2(ax, ay, bx, by):
    return ax * by - ay * bx


def _proper_cross(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(K, W) booleans: segment p[k]-q[k] properly crosses wall w (ends strictly
    on both sides of each other; touching or running along does not count)."""
    px, py, qx, qy = p[:, None, 0], p[:, None, 1], q[:, None, 0], q[:, None, 1]
    x1, y1, x2, y2 = w[None, :, 0], w[None, :, 1], w[None, :, 2], w[None, :, 3]
    d1 = _cross2(qx - px, qy - py, x1 - px, y1 - py)
    d2 = _cross2(qx - px, qy - py, x2 - px, y2 - py)
    d3 = _cross2(x2 - x1, y2 - y1, px - x1, py - y1)
    d4 = _cross2(x2 - x1, y2 - y1, qx - x1, qy - y1)
    return (d1 * d2 < 0) & (d3 * d4 < 0)


def _point_seg(px, py, w: np.ndarray) -> np.ndarray:
    """Distances from points (broadcast arrays px, py) to segments w (..., 4)."""
    x1, y1, x2, y2 = w[..., 0], w[..., 1], w[..., 2], w[..., 3]
    dx, dy = x2 - x1, y2 - y1
    den = np.maximum(dx * dx + dy * dy, 1e-12)
    u = np.clip(((px - x1) * dx + (py - y1) * dy) / den, 0.0, 1.0)
    return np.hypot(px - (x1 + u * dx), py - (y1 + u * dy))


def _seg_seg(p: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(K, W) distances between segments p[k]-q[k] and walls w (0 where they cross)."""
    seg = np.concatenate([p, q], axis=1)[:, None, :]
    d = np.minimum.reduce([
        _point_seg(p[:, None, 0], p[:, None, 1], w[None]),
        _point_seg(q[:, None, 0], q[:, None, 1], w[None]),
        _point_seg(w[None, :, 0], w[None, :, 1], seg),
        _point_seg(w[None, :, 2], w[None, :, 3], seg),
    ])
    return np.where(_proper_cross(p, q, w), 0.0, d)


def _entrance(site: Site, floor: _Floor) -> tuple[float, float]:
    """A free spot near the site's lower-left corner, away from every exhibit,
    from which an exhibit can be reached.

    The spots of a 0.5 m grid are tried nearest the corner first, drawn in
    quarter-discs of growing reach: the whole grid of a site 10 km across
    would not fit in memory, and a spot is nearly always found near the corner."""
    xs = [e.x for e in site.exhibits]
    ys = [e.y for e in site.exhibits]
    x0, y0, x1, y1 = floor.box if floor.box else (min(xs) - 3, min(ys) - 3, max(xs) + 3, max(ys) + 3)
    ax, ay = np.arange(x0 + 0.5, x1, 0.5), np.arange(y0 + 0.5, y1, 0.5)
    ex = np.array([[e.x, e.y] for e in site.exhibits])
    rad = np.array([e.radius for e in site.exhibits])
    tried = 0
    done, reach, whole = -1.0, 16.0, math.hypot(x1 - x0, y1 - y0)
    while done < whole and tried <= 60:
        gx, gy = np.meshgrid(ax[ax <= x0 + reach], ay[ay <= y0 + reach])
        cand = np.stack([gx.ravel(), gy.ravel()], axis=1)
        dist = np.hypot(cand[:, 0] - x0, cand[:, 1] - y0)
        cand = cand[(dist > done) & (dist <= reach)]  # this ring: row-major, as one grid would be
        done, reach = reach, reach * 2
        cand = cand[floor.clearance(cand) >= 0.6]
        far = (np.hypot(cand[:, None, 0] - ex[None, :, 0], cand[:, None, 1] - ex[None, :, 1])
               > rad[None, :] + 1.0).all(axis=1)
        cand = cand[far]
        cand = cand[np.argsort(np.hypot(cand[:, 0] - x0, cand[:, 1] - y0), kind="stable")]
        for p in cand:
            if not floor.inside(p):
                continue
            tried += 1
            if tried > 60:
                break
            near = ex[np.argsort(np.hypot(*(ex - p).T))[:3]]
            if any(floor.route(p, e) is not None for e in near):
                return float(p[0]), float(p[1])
    raise ZoneMapError([Problem(file=str(site.path), message=(
        "no free spot for visitors to enter: every place is walled off or inside an "
        "exhibit's radius; leave a doorway in the walls"))])


# ---------------------------------------------------------------- helpers

def _mix(mix: Mapping[str, float] | None) -> dict[str, float]:
    if mix is None:
        return dict(DEFAULT_MIX)
    out = {}
    for k, w in mix.items():
        if k not in KINDS:
            raise GuideError(f"visitor mix: unknown kind {k!r}; choose from {', '.join(KINDS)}")
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise GuideError(f"visitor mix: {k} = {w!r}; give a weight of 0 or more")
        out[k] = float(w)
    if not sum(out.values()) > 0:
        raise GuideError("visitor mix: every weight is 0; give at least one kind a weight above 0")
    return out


def _rng(seed: int, visitor: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, zlib.crc32(visitor.encode("utf-8"))])


def _num(v: float) -> str:
    """Seconds with up to 3 decimals, no trailing zeros ("12.5", "3.0")."""
    s = f"{v:.3f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_whole(path, (line.encode("utf-8") for line in lines))
