"""Lint a site plan: where the radio, the walls or the layout will trip the guide.

`guide lint` runs this on a zone map alone, before anyone walks the site.
It predicts, with the project's radio model (`guide.radio`), what a visitor's
device sees where visitors stand, and reports:

- *overlap*: two exhibits' zones (radius around each beacon) overlap;
- *indistinct*: at the places visitors stand at one exhibit, the radio often
  cannot give it the lead the engine needs (`margin`) over a neighbour: the
  expected lead is compared with the site's noise, and the share of visitors
  who would get a clean lead is estimated;
- *weak*: where visitors stand, the signal often stays below the level the
  engine needs to arrive (`level`, or the level at the radius less `slack`);
- *doorway*: people passing through a doorway walk through an exhibit's zone;
- *through-wall*: a beacon near a wall reaches people on its other side (a
  place enclosed by walls, within sight of another exhibit or a doorway: not
  the outside of the building or solid rock);
- *behind-wall*: visitors stand on the other side of a wall from their own
  exhibit's beacon;
- *setting*: a setting the engine reads otherwise than written (a
  `dwell_again` below the `dwell`, which the engine waits anyway).

Each finding says what to change (move a beacon, shrink a radius, merge the
exhibits, raise the dwell or the level of one exhibit, lower the margin), with
numbers; a setting is only ever suggested within the range the zone-map loader
accepts (`guide.settings`, and `guide.zones.MAX_RADIUS` for a radius): where no
such value would do, the finding says so and suggests what would.

    report = lint_site(load_zones("zones.yaml"), model="museum")
    print(format_report(report))

The noise: the lead of one beacon over another where a visitor stands varies
from visitor to visitor and moment to moment by the model's per-beacon
offsets, shadowing, drift and (after the engine's smoothing) fading; its
standard deviation is `Noise.lead`. A visitor gets the lead when the expected
lead, plus that noise, reaches the margin: the estimated share is the mean,
over the standing spots, of the normal probability of that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping

from guide.errors import counted
from guide.radio import RadioModel, mean_levels, mean_rssi
from guide.settings import SETTINGS, TriggerSettings
from guide.site import Exhibit, Site
from guide.zones import MAX_RADIUS

THRESHOLD = 0.8  # share of visitors that must get a clean lead / enough level
STAND_RINGS = (0.0, 0.5, 1.0)  # m from the exhibit's spot where visitors stand
STAND_DIRECTIONS = 8
NEIGHBOUR_REACH = 15.0  # m: exhibits further apart are not confused (lead > 20 dB)
DOOR_MIN, DOOR_MAX = 0.7, 6.0  # m: gaps between wall ends that are doorways
JOIN = 0.05  # m: wall ends this close are one point (walls meeting at a corner)
JAMB_COS = 0.05  # a doorway's side wall leaves it at 87 degrees or more (a right angle, drawn roughly)
BEYOND_WALL = 0.5  # m past a wall where someone on the other side walks
ENCLOSED_RAYS, ENCLOSED_HITS, ENCLOSED_REACH = 16, 13, 25.0  # inside the building?
VISIT_REACH = 12.0  # m: a place within sight of an exhibit or a doorway is visited
MERGE_WITHIN = 2.5  # m: exhibits this close or closer are offered a merge
DWELL_STEP = 2.0  # s added to the dwell of an exhibit started in passing
KINDS = ("behind-wall", "overlap", "indistinct", "weak", "doorway", "through-wall", "setting")

Point = tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class Noise:
    """How much the engine's view varies where visitors stand (1 sigma, dB)."""

    lead: float  # the lead of one exhibit over another (smoothed, in path loss)
    level: float  # one exhibit's smoothed level (includes the device's offset)


def noise_of(model: RadioModel, smoothing: float) -> Noise:
    """The noise of the engine's smoothed view under `model`.

    Offsets, shadowing and drift change over seconds to minutes, so smoothing
    does not remove them; per-packet fading is averaged over the filter's
    window (about twice its time constant), by as many independent fades as
    the packet rate and the multipath's rate of change allow. A lead is the
    difference of two such levels (the device's own offset cancels)."""
    independent = max(1.0, 2.0 * smoothing * min(model.rate_hz, 2.0 * max(model.fading_change_hz, 0.05)))
    fading = model.fading_db / math.sqrt(independent)
    slow = model.beacon_offset_db ** 2 + model.shadowing_db ** 2 + model.drift_db ** 2
    # never below half a dB: RSSI comes in whole dB
    return Noise(lead=max(0.5, math.sqrt(2.0 * (slow + fading ** 2))),
                 level=max(0.5, math.sqrt(slow + fading ** 2 + model.device_offset_db ** 2)))


@dataclass(frozen=True, kw_only=True)
class Doorway:
    """A gap between two wall ends, where people pass."""

    a: Point
    b: Point

    @property
    def middle(self) -> Point:
        return ((self.a[0] + self.b[0]) / 2, (self.a[1] + self.b[1]) / 2)

    @property
    def width(self) -> float:
        return math.dist(self.a, self.b)


@dataclass(frozen=True, kw_only=True)
class LintFinding:
    kind: str  # one of KINDS
    exhibits: tuple[str, ...]
    at: Point  # where to mark it on the map
    message: str
    suggestions: tuple[str, ...]
    severity: str = "warning"  # "error" for a layout that cannot work
    figures: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "exhibits": list(self.exhibits),
                "at": [round(self.at[0], 2), round(self.at[1], 2)], "message": self.message,
                "suggestions": list(self.suggestions),
                "figures": {k: round(v, 3) for k, v in self.figures.items()}}


@dataclass(frozen=True, kw_only=True)
class LintReport:
    site: Site
    model: str  # radio preset name
    noise: Noise
    findings: tuple[LintFinding, ...]
    clusters: tuple[tuple[str, ...], ...]  # exhibits the radio confuses, grouped
    doorways: tuple[Doorway, ...]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {"zones": str(self.site.path), "site": self.site.name, "radio_model": self.model,
                "noise_db": {"lead": round(self.noise.lead, 2), "level": round(self.noise.level, 2)},
                "ok": self.ok, "clusters": [list(c) for c in self.clusters],
                "doorways": [{"a": list(d.a), "b": list(d.b)} for d in self.doorways],
                "findings": [f.as_dict() for f in self.findings]}


def lint_site(site: Site, *, model: str | RadioModel = "museum",
              threshold: float = THRESHOLD) -> LintReport:
    """Every finding for `site` under the radio `model` (a preset name or a model)."""
    radio = RadioModel.preset(model) if isinstance(model, str) else model
    name = model if isinstance(model, str) else "custom"
    noise = noise_of(radio, site.trigger.smoothing)
    linter = _Linter(site, radio, noise, threshold)
    findings = linter.run()
    order = {k: i for i, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (f.severity != "error", order[f.kind], f.exhibits))
    return LintReport(site=site, model=name, noise=noise, findings=tuple(findings),
                      clusters=linter.clusters(findings), doorways=tuple(linter.doorways))


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _accepts(setting: str, value: float) -> bool:
    """Would the zone-map loader accept `value` for the trigger `setting`?"""
    meta = SETTINGS[setting].metadata
    return ((meta["min"] is None or value >= meta["min"])
            and (meta["max"] is None or value <= meta["max"]))


def _raised_dwell(site: Site, e: Exhibit) -> float | None:
    """The dwell to suggest for `e`: DWELL_STEP more than the site's, no more
    than the loader accepts; None when `e` waits that long already. Raising
    it is a stopgap (the radio confuses e as before), so the next lint of a
    site that did as told does not ask for DWELL_STEP more again."""
    hi = SETTINGS["dwell"].metadata["max"]
    to = site.trigger.dwell + DWELL_STEP if hi is None else min(site.trigger.dwell + DWELL_STEP, hi)
    return to if to > e.trigger.dwell else None


def _dwell_change(e: Exhibit, dwell: float) -> str:
    """"the dwell for E to D s (now N s)", and its dwell_again with it when
    that would fall below D: a dwell_again below the dwell is itself a
    finding (`_Linter.dwell_again`), so the fix must not make one."""
    t = e.trigger
    text = f"the dwell for {e.id} to {dwell:g} s (now {t.dwell:g} s)"
    if t.dwell_again < dwell:
        text += f" and its dwell_again to {dwell:g} s (now {t.dwell_again:g} s)"
    return text


def enter_level(site: Site, exhibit: Exhibit) -> float:
    """The smoothed RSSI the engine needs to arrive at `exhibit` (engine rule
    2): its `level`, or the level expected at its radius less `slack`."""
    t = exhibit.trigger
    return t.level if t.level is not None else site.edge_level(exhibit) - t.slack


class _Linter:
    def __init__(self, site: Site, radio: RadioModel, noise: Noise, threshold: float):
        self.site, self.radio, self.noise, self.threshold = site, radio, noise, threshold
        self.walls = [((float(a[0]), float(a[1])), (float(b[0]), float(b[1]))) for a, b in site.walls]
        self.doorways = _doorways(self.walls)
        self._spots: dict[str, list[Point]] = {}
        # a beacon's expected score at a point of the site as it is, and each
        # exhibit's clearance: every pair near an exhibit asks for them again
        self._scores: dict[tuple[str, Point], float] = {}
        self._spot_scores: dict[tuple[str, str], list[float]] = {}  # (beacon, exhibit): at its spots
        self._clearance: dict[str, float] = {}
        # the site without walls and with only the pair being moved apart, for
        # spacing_needed (a copy of the whole site per step made it quadratic)
        self._open = replace(site, walls=(), exhibits=(), beacons={})

    # -- what visitors see -------------------------------------------------

    def spots(self, e: Exhibit) -> list[Point]:
        """Where visitors stand at `e`: its spot and rings around it, within its
        radius, not behind a wall from the spot."""
        found = self._spots.get(e.id)
        if found is None:
            found = self._spots[e.id] = _spots_of(e, self.walls)
        return found

    def score(self, site: Site, e: Exhibit, p: Point) -> float:
        """Expected path-loss score (RSSI - tx_power) of `e`'s beacon at `p`
        (remembered for the site as it is)."""
        if site is not self.site:
            return mean_rssi(site, e.beacon, p[0], p[1], self.radio) - site.beacons[e.beacon].tx_power
        key = (e.beacon, p)
        found = self._scores.get(key)
        if found is None:
            found = self._scores[key] = (mean_rssi(site, e.beacon, p[0], p[1], self.radio)
                                         - site.beacons[e.beacon].tx_power)
        return found

    def scores(self, site: Site, e: Exhibit, at: Exhibit, spots: list[Point]) -> list[float]:
        """`score` of `e`'s beacon at each of `spots`, those of exhibit `at`,
        in one call of the radio model (remembered for the site as it is)."""
        key = (e.beacon, at.id)
        found = self._spot_scores.get(key) if site is self.site else None
        if found is None:
            found = (mean_levels(site, e.beacon, [p[0] for p in spots], [p[1] for p in spots], self.radio)
                     - site.beacons[e.beacon].tx_power).tolist()
            if site is self.site:
                self._spot_scores[key] = found
        return found

    def pair(self, site: Site, a: Exhibit, b: Exhibit) -> tuple[float, float, float]:
        """At `a`'s standing spots: (share of visitors for whom `a` leads `b` by
        a's margin, share for whom `b` leads `a` by b's margin, median lead)."""
        s = self.noise.lead
        ok = wrong = 0.0
        leads = []
        spots = self.spots(a) if site is self.site else _spots_of(a, self.walls)
        for sa, sb in zip(self.scores(site, a, a, spots), self.scores(site, b, a, spots)):
            lead = sa - sb
            leads.append(lead)
            ok += _phi((lead - a.trigger.margin) / s)
            wrong += _phi((-lead - b.trigger.margin) / s)
        n = len(spots)
        leads.sort()
        return ok / n, wrong / n, leads[n // 2]

    # -- the checks ----------------------------------------------------------

    def run(self) -> list[LintFinding]:
        out: list[LintFinding] = []
        exhibits = self.site.exhibits
        for e in exhibits:
            out += self.behind_wall(e)
        for i, a in enumerate(exhibits):
            for b in exhibits[i + 1:]:
                out += self.overlap(a, b)
                out += self.indistinct(a, b)
        for e in exhibits:
            out += self.weak(e)
            out += self.doorway(e)
            out += self.through_wall(e)
        out += self.dwell_again()
        return out

    def behind_wall(self, e: Exhibit) -> list[LintFinding]:
        b = self.site.beacons[e.beacon]
        n = sum(_crosses((e.x, e.y), (b.x, b.y), w) for w in self.walls)
        if not n:
            return []
        return [LintFinding(
            kind="behind-wall", severity="error", exhibits=(e.id,), at=(e.x, e.y),
            message=(f"{e.id}: visitors stand at ({e.x:g}, {e.y:g}), on the other side of "
                     f"{'a wall' if n == 1 else f'{n} walls'} from its beacon {e.beacon} "
                     f"at ({b.x:g}, {b.y:g})"),
            suggestions=(f"move beacon {e.beacon} to the visitors' side of the wall",
                         f"or correct {e.id}'s x/y (where visitors stand) in zones.yaml"))]

    def dwell_again(self) -> list[LintFinding]:
        """A dwell_again below the dwell, for the site or an exhibit that sets
        either itself: the engine waits the longer of the two for a visitor
        coming back, so the shorter wait written there never happens."""
        site = self.site.trigger
        found: list[tuple[tuple[str, ...], Point, str, str, TriggerSettings]] = []
        if site.dwell_again < site.dwell:
            spots = [(e.x, e.y) for e in self.site.exhibits] or [(0.0, 0.0)]
            middle = (sum(p[0] for p in spots) / len(spots), sum(p[1] for p in spots) / len(spots))
            found.append(((), middle, "the site", "top-level trigger", site))
        for e in self.site.exhibits:
            t = e.trigger
            if t.dwell_again < t.dwell and (t.dwell, t.dwell_again) != (site.dwell, site.dwell_again):
                found.append(((e.id,), (e.x, e.y), e.id, f"{e.id}'s trigger", t))
        out = []
        for exhibits, at, who, where, t in found:
            suggestions = []
            if _accepts("dwell_again", t.dwell):
                suggestions.append(f"raise the dwell_again of {who} to {t.dwell:g} s ({where}: "
                                   f"{{dwell_again: {t.dwell:g}}}; now {t.dwell_again:g} s), "
                                   "what the engine waits anyway")
            if _accepts("dwell", t.dwell_again):
                suggestions.append(f"{'or ' if suggestions else ''}lower the dwell of {who} to "
                                   f"{t.dwell_again:g} s ({where}: {{dwell: {t.dwell_again:g}}}; now "
                                   f"{t.dwell:g} s), if a visitor coming back should wait only that "
                                   "long (a first visit then waits that long too)")
            out.append(LintFinding(
                kind="setting", exhibits=exhibits, at=at,
                message=(f"{who}: dwell_again ({t.dwell_again:g} s) is below dwell ({t.dwell:g} s), "
                         "and the engine never waits less than the dwell: a visitor coming back "
                         f"waits {t.dwell:g} s, not {t.dwell_again:g} s"),
                suggestions=tuple(suggestions),
                figures={"dwell_s": t.dwell, "dwell_again_s": t.dwell_again}))
        return out

    def overlap(self, a: Exhibit, b: Exhibit) -> list[LintFinding]:
        ba, bb = self.site.beacons[a.beacon], self.site.beacons[b.beacon]
        d = math.dist((ba.x, ba.y), (bb.x, bb.y))
        if d >= a.radius + b.radius:
            return []
        over = a.radius + b.radius - d
        suggestions = []
        fit = (d - 0.2) / (a.radius + b.radius)
        ra, rb = a.radius * fit, b.radius * fit
        big, small = (a, b) if a.radius >= b.radius else (b, a)
        alone = d - 0.2 - small.radius
        if big.radius >= d and alone >= 0.8:
            # one zone alone reaches past the other beacon: its radius is the fault;
            # offer the radius that clears every zone, the same in each of its findings
            clear = self.clearance(big)
            everywhere = 0.8 <= clear <= alone
            suggestions.append(f"shrink the radius of {big.id} to {_down(clear if everywhere else alone)} m "
                               f"(now {big.radius:g} m): it reaches past beacon {small.beacon}, "
                               f"{d:.1f} m away" + (", and at that it overlaps no other zone"
                                                    if everywhere else ""))
        elif min(ra, rb) >= 0.8:
            suggestions.append(f"shrink the radii: {a.id} to {_down(ra)} m and {b.id} to "
                               f"{_down(rb)} m (now {a.radius:g} and {b.radius:g} m; the beacons "
                               f"are {d:.1f} m apart)")
        else:
            suggestions.append(f"move the beacons apart: {a.beacon} and {b.beacon} are only "
                               f"{d:.1f} m apart")
        if d <= MERGE_WITHIN:
            suggestions.append(f"or merge {a.id} and {b.id} into one exhibit (one beacon, one "
                               "narration covering both)")
        mid = ((ba.x + bb.x) / 2, (ba.y + bb.y) / 2)
        return [LintFinding(
            kind="overlap", exhibits=(a.id, b.id), at=mid,
            message=(f"{a.id} and {b.id}: their zones overlap by {over:.1f} m (radii "
                     f"{a.radius:g} + {b.radius:g} m, beacons {d:.1f} m apart): a visitor "
                     "between them is 'at' both"),
            suggestions=tuple(suggestions), figures={"overlap_m": over, "distance_m": d})]

    def clearance(self, e: Exhibit) -> float:
        """The largest radius of `e` that overlaps no other zone (less 0.2 m)."""
        found = self._clearance.get(e.id)
        if found is None:
            beacons = self.site.beacons
            b = beacons[e.beacon]
            found = self._clearance[e.id] = min(
                (math.dist((b.x, b.y), (beacons[o.beacon].x, beacons[o.beacon].y)) - 0.2 - o.radius
                 for o in self.site.exhibits if o.id != e.id), default=math.inf)
        return found

    def indistinct(self, a: Exhibit, b: Exhibit) -> list[LintFinding]:
        if math.dist((a.x, a.y), (b.x, b.y)) > NEIGHBOUR_REACH:
            return []
        ok_a, false_b, lead_a = self.pair(self.site, a, b)
        ok_b, false_a, lead_b = self.pair(self.site, b, a)
        if min(ok_a, ok_b) >= self.threshold:
            return []
        ba, bb = self.site.beacons[a.beacon], self.site.beacons[b.beacon]
        d = math.dist((ba.x, ba.y), (bb.x, bb.y))
        worse, other = (a, b) if ok_a <= ok_b else (b, a)
        need = self.spacing_needed(a, b, d)
        lower = self.margin_needed(a, b, d) if need is None else None
        suggestions = []
        if lower is not None:
            # no spacing gives the lead the margin asks for: the margin is the fault
            margin, spaced = lower
            now = max(a.trigger.margin, b.trigger.margin)
            high = [e for e in (a, b) if e.trigger.margin > margin]
            whose = ("the site's margin" if all(e.trigger.margin == self.site.trigger.margin for e in high)
                     else f"the margin for {' and '.join(e.id for e in high)}")
            suggestions.append(
                f"lower {whose} to {margin:g} dB (trigger: {{margin: {margin:g}}}; now {now:g} dB): "
                f"no spacing would give the radio a {now:g} dB lead here" + (
                    f"; at {margin:g} dB it tells them apart where they stand" if spaced is None else
                    f"; at {margin:g} dB, beacons about {spaced:.0f} m apart would (now {d:.1f} m)"))
        elif need is not None:
            suggestions.append(f"move the beacons apart: {a.beacon} and {b.beacon} are {d:.1f} m "
                               f"apart; about {need:.0f} m would let the radio tell them apart")
        else:
            suggestions.append(f"move the beacons apart: {a.beacon} and {b.beacon} are {d:.1f} m "
                               "apart, too close for this radio at any practical distance")
        if d <= MERGE_WITHIN or (need is None and lower is None):
            suggestions.append(f"merge {a.id} and {b.id} into one exhibit (one beacon, one "
                               "narration covering both)")
        # the one a visitor at the other most often starts by mistake waits longer (not
        # when the margin is the fault: it keeps visitors from starting either one)
        started, at_ = (b, a) if false_b >= false_a else (a, b)
        dwell = _raised_dwell(self.site, started)
        if lower is None and dwell is not None:
            suggestions.append(f"raise {_dwell_change(started, dwell)}, so a visitor at "
                               f"{at_.id} does not start it in passing")
        suggestions.append(f"record staff standing at {a.id} and {b.id} (guide record) and run "
                           "guide calibrate: per-exhibit levels and margins from the real radio")
        mid = ((ba.x + bb.x) / 2, (ba.y + bb.y) / 2)
        return [LintFinding(
            kind="indistinct", exhibits=(a.id, b.id), at=mid,
            message=(f"{a.id} and {b.id} ({d:.1f} m apart): the radio can hardly tell them apart. "
                     f"Where visitors stand at {worse.id}, its expected lead over {other.id} is "
                     f"{lead_a if worse is a else lead_b:.1f} dB against the {worse.trigger.margin:g} dB "
                     f"it needs and {self.noise.lead:.0f} dB of noise: about "
                     f"{100 * min(ok_a, ok_b):.0f}% of visitors there would get it started"),
            suggestions=tuple(suggestions),
            figures={"distance_m": d, f"share_started_{a.id}": ok_a, f"share_started_{b.id}": ok_b,
                     f"lead_db_at_{a.id}": lead_a, f"lead_db_at_{b.id}": lead_b,
                     f"share_wrong_{b.id}_at_{a.id}": false_b, f"share_wrong_{a.id}_at_{b.id}": false_a})]

    def spacing_needed(self, a: Exhibit, b: Exhibit, d: float) -> float | None:
        """Beacon spacing at which both would pass: b (and its spot) moved
        straight away from a, in open space (the walls are left out: this is
        a distance to aim for, and the radio model is slow with walls), up to
        12 m more."""
        ba, bb = self.site.beacons[a.beacon], self.site.beacons[b.beacon]
        ux, uy = (bb.x - ba.x) / (d or 1.0), (bb.y - ba.y) / (d or 1.0)
        if d == 0:
            ux, uy = 1.0, 0.0
        step = 0.5
        for k in range(1, 25):
            shift = k * step
            moved_b = replace(bb, x=bb.x + ux * shift, y=bb.y + uy * shift)
            moved_e = replace(b, x=b.x + ux * shift, y=b.y + uy * shift)
            site = replace(self._open, beacons={a.beacon: ba, b.beacon: moved_b}, exhibits=(a, moved_e))
            ok_a, _, _ = self.pair(site, a, moved_e)
            ok_b, _, _ = self.pair(site, moved_e, a)
            if min(ok_a, ok_b) >= self.threshold:
                return d + shift
        return None

    def margin_needed(self, a: Exhibit, b: Exhibit, d: float) -> tuple[float, float | None] | None:
        """When no spacing would do: (margin, None) for the highest margin, in
        whole dB, at which the radio tells a and b apart where they stand, else
        (the default margin, the spacing that would do at it); None when not
        even the default would do. Never below the default: a lower margin
        trades clean starts for wrong ones, which this does not weigh."""
        floor = SETTINGS["margin"].default

        def at(m: float) -> tuple[Exhibit, Exhibit]:
            def lowered(e: Exhibit) -> Exhibit:
                return replace(e, trigger=replace(e.trigger, margin=min(e.trigger.margin, m)))
            return lowered(a), lowered(b)

        def here(m: float) -> bool:
            x, y = at(m)
            return min(self.pair(self.site, x, y)[0], self.pair(self.site, y, x)[0]) >= self.threshold

        low, high = math.ceil(floor), math.ceil(max(a.trigger.margin, b.trigger.margin)) - 1
        if low <= high and here(low):
            while low < high:  # here(low) holds
                mid = (low + high + 1) // 2
                low, high = (mid, high) if here(mid) else (low, mid - 1)
            return float(low), None
        if max(a.trigger.margin, b.trigger.margin) <= floor:
            return None
        spaced = self.spacing_needed(*at(floor), d)
        return None if spaced is None else (floor, spaced)

    def weak(self, e: Exhibit) -> list[LintFinding]:
        need = enter_level(self.site, e)
        levels = sorted(self.score(self.site, e, p) + self.site.beacons[e.beacon].tx_power
                        for p in self.spots(e))
        share = sum(_phi((lv - need) / self.noise.level) for lv in levels) / len(levels)
        if share >= self.threshold:
            return []
        median = levels[len(levels) // 2]
        suggested = median - self.noise.level
        b = self.site.beacons[e.beacon]
        d = math.dist((e.x, e.y), (b.x, b.y))
        t = e.trigger
        radius = 10 ** ((b.tx_power - t.slack - suggested) / (10 * t.path_loss_exponent))
        highest, lowest = SETTINGS["level"].metadata["max"], SETTINGS["level"].metadata["min"]
        level = min(math.floor(suggested), highest)
        # only values the loader accepts; a level is a radius in other units, so
        # none that reaches further than a radius may
        fixes = []
        if _accepts("level", level) and radius <= MAX_RADIUS:
            fixes.append(f"lower the level for {e.id} to {level} dBm "
                         f"(trigger: {{level: {level}}}; now {need:.0f} dBm)")
        if t.level is None and float(_up(radius)) <= MAX_RADIUS:
            fixes.append(f"raise its radius to {_up(radius)} m (now {e.radius:g} m)")
        moves = []
        if d > 1.0:
            moves.append(f"move beacon {e.beacon} closer to where visitors stand "
                         f"(now {d:.1f} m from ({e.x:g}, {e.y:g}))")
        if not fixes:
            why = (f"its zone would have to reach about {radius:.0f} m, and the guide takes "
                   f"radii up to {MAX_RADIUS:g} m" if radius > MAX_RADIUS else
                   f"it would need a level below {lowest:g} dBm, the lowest the guide takes")
            moves.append(f"check {e.id}'s x/y and beacon {e.beacon}'s x/y and tx_power in "
                         f"zones.yaml: no level or radius would get it started ({why})")
        suggestions = [s if i == 0 else f"or {s}" for i, s in enumerate(fixes + moves)]
        return [LintFinding(
            kind="weak", exhibits=(e.id,), at=(e.x, e.y),
            message=(f"{e.id}: where visitors stand, its beacon is expected at about {median:.0f} dBm, "
                     f"against the {need:.0f} dBm the engine needs to arrive: about "
                     f"{100 * share:.0f}% of visitors would get it started"),
            suggestions=tuple(suggestions), figures={"share_started": share, "level_dbm": median,
                                                     "needed_dbm": need})]

    def doorway(self, e: Exhibit) -> list[LintFinding]:
        b = self.site.beacons[e.beacon]
        near = [(_seg_distance((b.x, b.y), (d.a, d.b)), d) for d in self.doorways]
        near = [(dist, d) for dist, d in near if dist < e.radius]
        if not near:
            return []
        dist, door = min(near, key=lambda x: x[0])
        suggestions = []
        if dist - 0.5 >= 1.0:
            suggestions.append(f"shrink the radius of {e.id} to {_down(dist - 0.5)} m (now {e.radius:g} m)")
        suggestions.append(f"move beacon {e.beacon} at least {_up(e.radius + 1.0 - dist)} m further "
                           "from the doorway")
        dwell = _raised_dwell(self.site, e)
        if dwell is not None:
            suggestions.append(f"or raise {_dwell_change(e, dwell)}, so people walking through "
                               "do not start it")
        mx, my = door.middle
        return [LintFinding(
            kind="doorway", exhibits=(e.id,), at=door.middle,
            message=(f"{e.id}: people passing through the doorway at ({mx:.1f}, {my:.1f}) "
                     f"({door.width:.1f} m wide) walk through its zone ({dist:.1f} m from its "
                     f"beacon, radius {e.radius:g} m)"),
            suggestions=tuple(suggestions), figures={"distance_m": dist})]

    def through_wall(self, e: Exhibit) -> list[LintFinding]:
        b = self.site.beacons[e.beacon]
        need = enter_level(self.site, e)
        worst: tuple[float, Point, float] | None = None
        for w in self.walls:
            c = _closest((b.x, b.y), w)
            d = math.dist(c, (b.x, b.y))
            if d >= e.radius:
                continue
            if d > 1e-6:
                ux, uy = (c[0] - b.x) / d, (c[1] - b.y) / d
            else:  # beacon on the wall: the side away from where visitors stand
                nx, ny = w[1][1] - w[0][1], w[0][0] - w[1][0]
                n = math.hypot(nx, ny) or 1.0
                nx, ny = nx / n, ny / n
                if nx * (e.x - b.x) + ny * (e.y - b.y) > 0:
                    nx, ny = -nx, -ny
                ux, uy = nx, ny
            far = (c[0] + ux * BEYOND_WALL, c[1] + uy * BEYOND_WALL)
            if not any(_crosses((b.x, b.y), far, x) for x in self.walls):
                continue  # the wall ends here: not behind it
            if not self.enclosed(far) or not self.visited(far, e):
                continue  # the outside of the building, solid ground, a place nobody goes
            level = mean_rssi(self.site, e.beacon, far[0], far[1], self.radio)
            if level >= need and (worst is None or level > worst[0]):
                worst = (level, far, d)
        if worst is None:
            return []
        level, far, d = worst
        standing = sorted(self.score(self.site, e, p) + b.tx_power for p in self.spots(e))
        median = standing[len(standing) // 2]
        suggestions = []
        raise_to = math.ceil(level + self.noise.level)
        if raise_to <= median - self.noise.level and _accepts("level", raise_to):
            suggestions.append(f"raise the level for {e.id} to {raise_to} dBm (trigger: {{level: "
                               f"{raise_to}}}; visitors at it see about {median:.0f} dBm)")
        suggestions.append(f"move beacon {e.beacon} away from the wall ({d:.1f} m now)")
        if d - 0.2 >= 0.8:
            suggestions.append(f"or shrink the radius of {e.id} to {_down(d - 0.2)} m (now {e.radius:g} m)")
        return [LintFinding(
            kind="through-wall", exhibits=(e.id,), at=far,
            message=(f"{e.id}: its beacon is {d:.1f} m from a wall, and people on the other side "
                     f"around ({far[0]:.1f}, {far[1]:.1f}) would see it at about {level:.0f} dBm, "
                     f"above the {need:.0f} dBm that starts it (the wall costs only "
                     f"{self.radio.wall_loss_db:g} dB)"),
            suggestions=tuple(suggestions), figures={"level_dbm": level, "needed_dbm": need})]

    def enclosed(self, p: Point) -> bool:
        """Is `p` inside the building: do walls surround it (most rays from it
        meet a wall within ENCLOSED_REACH)?"""
        hits = 0
        for k in range(ENCLOSED_RAYS):
            a = 2 * math.pi * (k + 0.5) / ENCLOSED_RAYS
            q = (p[0] + ENCLOSED_REACH * math.cos(a), p[1] + ENCLOSED_REACH * math.sin(a))
            if any(_crosses(p, q, w) for w in self.walls):
                hits += 1
        return hits >= ENCLOSED_HITS

    def visited(self, p: Point, e: Exhibit) -> bool:
        """Do people go to `p`: can one see from it, with no wall between,
        another exhibit's spot (within VISIT_REACH) or a doorway?"""
        def seen(q: Point) -> bool:
            return not any(_crosses(p, q, w) for w in self.walls)

        return (any(o.id != e.id and math.dist(p, (o.x, o.y)) <= VISIT_REACH and seen((o.x, o.y))
                    for o in self.site.exhibits)
                or any(math.dist(p, d.middle) <= VISIT_REACH and seen(d.middle) for d in self.doorways))

    def clusters(self, findings: list[LintFinding]) -> tuple[tuple[str, ...], ...]:
        parent = {e.id: e.id for e in self.site.exhibits}

        def root(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for f in findings:
            if f.kind in ("indistinct", "overlap"):
                a, b = f.exhibits
                parent[root(a)] = root(b)
        groups: dict[str, list[str]] = {}
        for e in self.site.exhibits:
            groups.setdefault(root(e.id), []).append(e.id)
        return tuple(tuple(g) for g in groups.values() if len(g) > 1)


def _spots_of(e: Exhibit, walls: list[tuple[Point, Point]]) -> list[Point]:
    out = [(e.x, e.y)]
    for r in STAND_RINGS[1:]:
        r = min(r, e.radius)
        for k in range(STAND_DIRECTIONS):
            a = 2 * math.pi * k / STAND_DIRECTIONS
            p = (e.x + r * math.cos(a), e.y + r * math.sin(a))
            if not any(_crosses((e.x, e.y), p, w) for w in walls):
                out.append(p)
    return out


def _down(x: float) -> str:
    return f"{math.floor(x * 4) / 4:g}"


def _up(x: float) -> str:
    return f"{math.ceil(x * 2) / 2:g}"


# --------------------------------------------------------------------- geometry

def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _crosses(p: Point, q: Point, wall: tuple[Point, Point]) -> bool:
    """Does the open segment p-q properly cross `wall` (touching does not count)?"""
    a, b = wall
    d1, d2 = _cross(p, q, a), _cross(p, q, b)
    d3, d4 = _cross(a, b, p), _cross(a, b, q)
    return d1 * d2 < 0 and d3 * d4 < 0


def _closest(p: Point, seg: tuple[Point, Point]) -> Point:
    (ax, ay), (bx, by) = seg
    dx, dy = bx - ax, by - ay
    n = dx * dx + dy * dy
    t = 0.0 if n == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / n))
    return (ax + t * dx, ay + t * dy)


def _seg_distance(p: Point, seg: tuple[Point, Point]) -> float:
    return math.dist(p, _closest(p, seg))


def _doorways(walls: list[tuple[Point, Point]]) -> list[Doorway]:
    """Gaps between wall ends: two ends DOOR_MIN-DOOR_MAX m apart with no wall
    between them or along them, each end joined to its nearest such end. An
    end where walls meet (a corner) counts once; at each end of a gap, a wall
    must run away from it (`_jamb`): the two walls of a corner do not, and a
    gap from a corner across the room it closes is no doorway."""
    ends: list[Point] = []
    for w in walls:
        for p in w:
            if all(math.dist(p, e) >= JOIN for e in ends):
                ends.append(p)
    best: dict[int, tuple[float, int]] = {}
    for k, p in enumerate(ends):
        for m in range(k + 1, len(ends)):
            q = ends[m]
            d = math.dist(p, q)
            if (not DOOR_MIN <= d <= DOOR_MAX or not _jamb(p, q, walls) or not _jamb(q, p, walls)
                    or not _open_gap(p, q, walls)):
                continue
            for x, y in ((k, m), (m, k)):
                if x not in best or d < best[x][0]:
                    best[x] = (d, y)
    pairs = {tuple(sorted((k, m))) for k, (_, m) in best.items()}
    return [Doorway(a=ends[k], b=ends[m]) for k, m in sorted(pairs)]


def _jamb(p: Point, q: Point, walls: list[tuple[Point, Point]]) -> bool:
    """Whether a wall at `p` runs away from the gap p-q (at a right angle or
    more): the side of a doorway, not a corner whose walls both run along the
    gap's side of it."""
    gap = (q[0] - p[0], q[1] - p[1])
    for w in walls:
        if _seg_distance(p, w) >= JOIN:
            continue
        for end in w:
            away = (end[0] - p[0], end[1] - p[1])
            length = math.hypot(*away)
            if length >= JOIN and (gap[0] * away[0] + gap[1] * away[1]) <= JAMB_COS * length * math.dist(p, q):
                return True
    return False


def _open_gap(p: Point, q: Point, walls: list[tuple[Point, Point]]) -> bool:
    for w in walls:
        if _crosses(p, q, w):
            return False
        for t in (0.25, 0.5, 0.75):  # lying along a wall is not a gap in it
            s = (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)
            if _seg_distance(s, w) < 0.05:
                return False
    return True


# --------------------------------------------------------------------- output

_TITLES = {
    "behind-wall": "Visitors behind a wall from their beacon",
    "overlap": "Zones that overlap",
    "indistinct": "Exhibits the radio cannot tell apart",
    "weak": "Signal too weak where visitors stand",
    "doorway": "Zones across a doorway",
    "through-wall": "Beacons heard through a wall",
    "setting": "Settings the engine reads otherwise",
}


SHOWN_PER_KIND = 10  # findings of one kind `guide lint` prints unless asked for all


def format_report(report: LintReport, *, per_kind: int | None = None) -> str:
    """The report as text; with `per_kind`, at most that many findings of each
    kind, followed by how many more there are (the count at the end is of all)."""
    site = report.site
    lines = [f"guide lint: {site.path} ({site.name})",
             f"radio model '{report.model}': where visitors stand, the lead of one beacon over "
             f"another varies by about {report.noise.lead:.0f} dB and a level by "
             f"{report.noise.level:.0f} dB (1 sigma); {counted(len(report.doorways), 'doorway')} found in the walls"]
    if report.clusters:
        lines += ["", "Close clusters (exhibits the radio confuses):"]
        lines += [f"  {', '.join(c)}" for c in report.clusters]
    for kind in KINDS:
        items = [f for f in report.findings if f.kind == kind]
        if not items:
            continue
        lines += ["", f"{_TITLES[kind]}:"]
        shown = items if per_kind is None else items[:per_kind]
        for f in shown:
            lines.append(f"  {'ERROR ' if f.severity == 'error' else ''}{f.message}.")
            lines += [f"    - {s}" for s in f.suggestions]
        if len(shown) < len(items):
            lines.append(f"  ... and {len(items) - len(shown)} more of this kind "
                         "(guide lint --all lists them all, --json too)")
    n = len(report.findings)
    lines += ["", "No findings: all is well." if not n else
              f"{counted(n, 'finding')}. After changing zones.yaml, run guide lint again."]
    return "\n".join(lines) + "\n"

