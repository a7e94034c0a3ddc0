"""The site drawn as a plan: beacons, zones, walls, lint findings, one visitor's walk.

`guide map` draws this (PNG or SVG, matplotlib without a display). Staff see
at a glance where the zones overlap, which exhibits the radio confuses
(orange), where lint found something (numbered red marks, listed under the
plan), and, for one visitor, the walk with where each track started (green
triangle) and ended (grey square) and the false starts (red cross).

    fig = draw_map(site, lint=lint_site(site), walk=walk_from_positions(...))
    save_map(fig, "map.png")

Every element has an SVG id (``beacon-<id>``, ``zone-<exhibit>``,
``overlap-<exhibit>_<exhibit>``, ``finding-<n>``, ``start-<n>``...), so a drawing can be checked or styled; a
beacon id's characters other than A-Z a-z 0-9 _ . - are written _ there (see
`svg_names`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guide.errors import GuideError
from guide.files import replace_whole
from guide.metrics import TruthRow, score
from guide.site import Site

BEACON_COLOUR = "#1f3a93"
ZONE_COLOUR = "#4a90d9"
CONFUSED_COLOUR = "#f39c12"
OVERLAP_COLOUR = "#e67e22"
FINDING_COLOUR = "#c0392b"
WALL_COLOUR = "#222222"
DOOR_COLOUR = "#27ae60"
WALK_COLOUR = "#7f8c8d"
START_COLOUR = "#27ae60"
FALSE_COLOUR = "#e74c3c"
DPI = 100
LINE = 0.16  # inches per line of the notes under the plan
LABEL_ROOM = 0.6  # inches under the plan for the x axis and its label
TITLE_ROOM = 0.6  # inches above it for the title
RING_PX = 22  # pixels across a finding's ring
CLOSE_PX = 40  # exhibits closer than this on the plan are also drawn enlarged,
CLUSTER_PX = 80  # and those the radio confuses (with numbered findings) closer than this
INSETS_PER_ROW = 3
INSET_GAP = 0.55  # inches between two panels (room for their titles and scales)
INSET_PAD = 1.5  # m around a group's zones in its panel
ENLARGE = 1.5  # a panel is drawn only if it shows its group at least this much larger than the plan
MAX_PANELS = 9  # panels at most (those with the first findings first)
MAX_LISTED = 30  # findings marked and listed at most (the first, most serious, of lint's order)
LABEL_CHARS = 32  # an exhibit's label is cut (with an ellipsis) past this many characters
TITLE_CHARS = 80  # and the site's name over the plan past this many
LABEL_NEAR_PX = 8  # exhibits whose spots are this close on the picture share one label
# where an exhibit's label may stand around its spot (offset in points, alignment),
# the first that hides least: up-right first (where every label used to stand)
LABEL_PLACES = (((5, 5), "left", "baseline"), ((5, -5), "left", "top"),
                ((-5, 5), "right", "baseline"), ((-5, -5), "right", "top"),
                ((0, 7), "center", "baseline"), ((0, -7), "center", "top"),
                ((7, 0), "left", "center"), ((-7, 0), "right", "center"))
WALL_WIDTH = 2.2  # points
FORMATS = (".png", ".svg")


@dataclass(frozen=True, kw_only=True)
class Mark:
    """Where something happened on a walk."""

    t: float
    x: float
    y: float
    exhibit: str
    false_start: bool | None = None  # None: no ground truth to tell


@dataclass(frozen=True, kw_only=True)
class Walk:
    visitor: str
    path: tuple[tuple[float, float, float], ...]  # (t, x, y)
    estimated: bool  # positions guessed from the radio, not measured
    starts: tuple[Mark, ...]
    ends: tuple[Mark, ...]


# ----------------------------------------------------------------- walks

def _position(path: Sequence[tuple[float, float, float]], t: float) -> tuple[float, float]:
    import bisect

    times = [p[0] for p in path]
    i = bisect.bisect_left(times, t)
    if i <= 0:
        return path[0][1], path[0][2]
    if i >= len(path):
        return path[-1][1], path[-1][2]
    (t0, x0, y0), (t1, x1, y1) = path[i - 1], path[i]
    f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
    return x0 + f * (x1 - x0), y0 + f * (y1 - y0)


def false_starts(truth: Iterable[TruthRow], events: Sequence[dict], *,
                 durations: Mapping[str, float], walk_end: Mapping[str, float]) -> list[bool]:
    """For each start event of `events` (one visitor's, in order), whether it
    is a false start by FORMATS.md's definition, as `guide.metrics.score`
    counts them: a start is false when counting it raises the count."""
    truth = list(truth)
    flags: list[bool] = []
    before = 0
    for i, e in enumerate(events):
        if e["event"] != "start":
            continue
        now = score(truth, events[:i + 1], durations=durations, walk_end=walk_end).false_starts
        flags.append(now > before)
        before = now
    return flags


def _marks(site: Site, visitor: str, path: Sequence[tuple[float, float, float]], events: Sequence[dict],
           truth: Sequence[TruthRow] | None, walk_end: float) -> tuple[tuple[Mark, ...], tuple[Mark, ...]]:
    from guide import tracks

    mine = [e for e in events if e["visitor"] == visitor]
    flags: list[bool | None]
    if truth is not None:
        durations = {e["track"]: tracks.duration(site.track_path(e["track"]))
                     for e in mine if e["event"] == "start"}
        flags = list(false_starts([r for r in truth if r.visitor == visitor], mine,
                                  durations=durations, walk_end={visitor: walk_end}))
    else:
        flags = [None] * sum(1 for e in mine if e["event"] == "start")
    starts, ends = [], []
    k = 0
    for e in mine:
        x, y = _position(path, e["t"])
        if e["event"] == "start":
            starts.append(Mark(t=e["t"], x=x, y=y, exhibit=e["exhibit"], false_start=flags[k]))
            k += 1
        elif e["event"] == "end":
            ends.append(Mark(t=e["t"], x=x, y=y, exhibit=e["exhibit"]))
    return tuple(starts), tuple(ends)


def walk_from_positions(site: Site, visitor: str, positions: Iterable[tuple[str, float, float, float]],
                        events: Sequence[dict], truth: Sequence[TruthRow] | None = None) -> Walk:
    """One visitor's walk from walk rows (visitor, t, x, y), with the events
    (event-log objects) placed where the visitor was."""
    path = tuple((t, x, y) for v, t, x, y in positions if v == visitor)
    if not path:
        raise GuideError(f"--visitor {visitor}: not in the walk")
    starts, ends = _marks(site, visitor, path, events, truth, path[-1][0])
    return Walk(visitor=visitor, path=path, estimated=False, starts=starts, ends=ends)


def walk_from_scans(site: Site, visitor: str, rows: Iterable[tuple[str, float, str, int]],
                    events: Sequence[dict], truth: Sequence[TruthRow] | None = None) -> Walk:
    """One visitor's walk guessed from their scans: each second, the centre of
    the three loudest beacons of the last two seconds, weighted by received
    power. Rough (a metre or more off), but it shows where the visit went."""
    mine = [(t, b, r) for v, t, b, r in rows if v == visitor]
    if not mine:
        raise GuideError(f"--visitor {visitor}: no scans of that visitor")
    path = []
    window = 2.0
    lo = 0
    t = mine[0][0]
    end = mine[-1][0]
    while t <= end:
        while lo < len(mine) and mine[lo][0] < t - window:
            lo += 1
        loud: dict[str, list[int]] = {}
        for tt, b, r in mine[lo:]:
            if tt > t:
                break
            loud.setdefault(b, []).append(r)
        if loud:
            means = sorted(((sum(v) / len(v) - site.beacons[b].tx_power, b) for b, v in loud.items()),
                           reverse=True)[:3]
            top = means[0][0]
            w = [(10 ** ((m - top) / 10), site.beacons[b]) for m, b in means]
            total = sum(x for x, _ in w)
            path.append((t, sum(x * b.x for x, b in w) / total, sum(x * b.y for x, b in w) / total))
        t += 1.0
    if not path:
        raise GuideError(f"--visitor {visitor}: too few scans to draw a walk")
    starts, ends = _marks(site, visitor, path, events, truth, end)
    return Walk(visitor=visitor, path=tuple(path), estimated=True, starts=starts, ends=ends)


# ----------------------------------------------------------------- drawing

def lens(a: tuple[float, float, float], b: tuple[float, float, float], n: int = 24) -> list[tuple[float, float]]:
    """The outline of the overlap of two circles (x, y, r); empty if none."""
    (ax, ay, ra), (bx, by, rb) = a, b
    d = math.hypot(bx - ax, by - ay)
    if d >= ra + rb:
        return []
    if d + min(ra, rb) <= max(ra, rb):  # one inside the other: the smaller one
        cx, cy, r = (ax, ay, ra) if ra <= rb else (bx, by, rb)
        return [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
                for k in range(n)]
    theta = math.atan2(by - ay, bx - ax)
    x = (ra * ra - rb * rb + d * d) / (2 * d)  # from a along the line to b
    alpha = math.acos(max(-1.0, min(1.0, x / ra)))
    beta = math.acos(max(-1.0, min(1.0, (d - x) / rb)))
    pts = [(ax + ra * math.cos(theta - alpha + 2 * alpha * k / n),
            ay + ra * math.sin(theta - alpha + 2 * alpha * k / n)) for k in range(n + 1)]
    back = theta + math.pi
    pts += [(bx + rb * math.cos(back - beta + 2 * beta * k / n),
             by + rb * math.sin(back - beta + 2 * beta * k / n)) for k in range(1, n)]
    return pts


def close_groups(site: Site, metres: float, *, clusters: Iterable[Iterable[str]] = (),
                 cluster_metres: float = 0.0) -> list[tuple[str, ...]]:
    """Exhibits whose beacons or spots stand within `metres` of one another,
    or within `cluster_metres` for two of one of `clusters` (exhibits the
    radio confuses: their findings crowd round them), chained (a-b and b-c:
    one group), as groups of two or more in site order."""
    together = {frozenset((a, b)) for c in clusters for a in c for b in c if a != b}
    points = {e.id: ((e.x, e.y), (site.beacons[e.beacon].x, site.beacons[e.beacon].y))
              for e in site.exhibits}
    ids = [e.id for e in site.exhibits]
    group = {i: i for i in ids}

    def root(i: str) -> str:
        while group[i] != i:
            i = group[i]
        return i

    for k, a in enumerate(ids):
        for b in ids[k + 1:]:
            reach = max(metres, cluster_metres) if frozenset((a, b)) in together else metres
            if min(math.dist(p, q) for p in points[a] for q in points[b]) < reach:
                group[root(b)] = root(a)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(root(i), []).append(i)
    return [tuple(m) for m in members.values() if len(m) > 1]


def _region(site: Site, group: Sequence[str]) -> tuple[float, float, float, float]:
    """A square (x0, x1, y0, y1) around a group's zones and spots."""
    xs, ys = [], []
    for e in (site.exhibit(i) for i in group):
        b = site.beacons[e.beacon]
        xs += [e.x, b.x - e.radius, b.x + e.radius]
        ys += [e.y, b.y - e.radius, b.y + e.radius]
    side = max(max(xs) - min(xs), max(ys) - min(ys)) + 2 * INSET_PAD
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2


def _inside(p: tuple[float, float], region: tuple[float, float, float, float]) -> bool:
    return region[0] <= p[0] <= region[1] and region[2] <= p[1] <= region[3]


def _short(text: str, n: int) -> str:
    """`text` cut to `n` characters, the cut shown by an ellipsis."""
    return text if len(text) <= n else text[:max(n - 1, 1)] + "\u2026"


def draw_map(site: Site, *, lint=None, walk: Walk | None = None, title: str | None = None):
    """The plan as a matplotlib Figure (no display, no global state). Exhibits
    too close together to read at the plan's scale are boxed on it, lettered,
    and drawn again enlarged in panels under it (with their findings), when a
    panel does enlarge them (ENLARGE), MAX_PANELS at most. The first
    MAX_LISTED of lint's findings (the most serious first) are marked and
    listed under the plan, and how many more there are, so the picture keeps
    a viewable size however many there are; `guide lint` lists them all."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    xs, ys = [], []
    for b in site.beacons.values():
        xs.append(b.x)
        ys.append(b.y)
    for e in site.exhibits:
        b = site.beacons[e.beacon]
        xs += [e.x, b.x - e.radius, b.x + e.radius]
        ys += [e.y, b.y - e.radius, b.y + e.radius]
    for (x1, y1), (x2, y2) in site.walls:
        xs += [x1, x2]
        ys += [y1, y2]
    if walk is not None:
        xs += [p[1] for p in walk.path]
        ys += [p[2] for p in walk.path]
    pad = 2.0
    x0, x1, y0, y1 = min(xs) - pad, max(xs) + pad, min(ys) - pad, max(ys) + pad
    width_in = 12.0
    plan_h = max(3.0, min(14.0, width_in * (y1 - y0) / max(x1 - x0, 1e-6)))
    px_per_m = min(0.9 * width_in / max(x1 - x0, 1e-6), plan_h / max(y1 - y0, 1e-6)) * DPI
    panel_in = (0.9 * width_in - (INSETS_PER_ROW - 1) * INSET_GAP) / INSETS_PER_ROW  # square
    shown = list(lint.findings[:MAX_LISTED]) if lint else []
    # a panel only where it enlarges (exhibits at one spot, or a group as wide as
    # the plan, would come out smaller than on the plan), the first findings' first
    enlarging = []
    for g in close_groups(site, CLOSE_PX / px_per_m, clusters=lint.clusters if lint else (),
                          cluster_metres=CLUSTER_PX / px_per_m):
        region = _region(site, g)
        if panel_in * DPI / (region[1] - region[0]) >= ENLARGE * px_per_m:
            first = min((n for n, f in enumerate(shown) if _inside(f.at, region)), default=len(shown))
            enlarging.append((first, g, region))
    enlarging.sort(key=lambda x: x[0])  # stable: site order among equals
    groups = [g for _, g, _ in enlarging[:MAX_PANELS]]
    regions = [r for _, _, r in enlarging[:MAX_PANELS]]
    letters = [chr(ord("A") + k) for k in range(len(groups))]
    rows = -(-len(groups) // INSETS_PER_ROW)
    insets_h = rows * (panel_in + INSET_GAP)
    notes = _notes(lint, walk, bool(groups), unboxed=len(enlarging) - len(groups))
    note_lines = sum(len(n) for n in notes) + len(notes)  # a blank line after each block
    below = LABEL_ROOM + LINE * note_lines + 0.2  # inches under the panels
    # whole pixels, so the saved image is exactly the figure (pixel_of relies on it)
    fig = Figure(figsize=(width_in, round((TITLE_ROOM + plan_h + insets_h + below) * DPI) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    total_h = fig.get_figheight()
    bottom = (below + insets_h) / total_h
    ax = fig.add_axes((0.06, bottom, 0.9, plan_h / total_h))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, color="#eeeeee", linewidth=0.5)
    ax.set_axisbelow(True)
    # text from the site's files is drawn as written: a `$` in a name is no formula
    fig.suptitle(_short(title or site.name, TITLE_CHARS), fontsize=12, parse_math=False)

    boxed = {i for g in groups for i in g}
    findings = list(enumerate(shown, 1))
    in_panel = {n for n, f in findings if any(_inside(f.at, r) for r in regions)}
    labels = _draw_plan(ax, site, lint, walk, label=lambda e: e.id not in boxed)
    for letter, region in zip(letters, regions):
        box = Rectangle((region[0], region[2]), region[1] - region[0], region[3] - region[2],
                        fill=False, edgecolor="#555555", linewidth=0.9, linestyle=(0, (4, 2)), zorder=8)
        box.set_gid(f"panel-box-{letter}")
        ax.add_patch(box)
        ax.annotate(letter, (region[0], region[3]), xytext=(2, 2), textcoords="offset points",
                    fontsize=9, fontweight="bold", color="#555555", va="bottom", zorder=8,
                    parse_math=False)
    _draw_findings(ax, [(n, f) for n, f in findings if n not in in_panel], avoid=labels)

    # the panels: each group enlarged, in rows under the plan
    for k, (letter, group, region) in enumerate(zip(letters, groups, regions)):
        row, col = divmod(k, INSETS_PER_ROW)
        top = below + insets_h - row * (panel_in + INSET_GAP) - INSET_GAP / 2
        inset = fig.add_axes((0.06 + col * (panel_in + INSET_GAP) / width_in, (top - panel_in) / total_h,
                              panel_in / width_in, panel_in / total_h))
        inset.set_gid(f"panel-{letter}")
        inset.set_xlim(region[0], region[1])
        inset.set_ylim(region[2], region[3])
        inset.set_aspect("equal", adjustable="box")
        inset.tick_params(labelsize=6)
        inset.grid(True, color="#eeeeee", linewidth=0.5)
        inset.set_axisbelow(True)
        across = f" ({region[1] - region[0]:.2g} m across)"
        inset.set_title(_short(f"{letter}: {', '.join(group)}", int(panel_in * DPI / 6.5) - len(across))
                        + across, fontsize=8, loc="left", parse_math=False)
        labels = _draw_plan(inset, site, lint, walk, label=lambda e, g=group: e.id in g, gid=f"{letter}-")
        _draw_findings(inset, [(n, f) for n, f in findings if n in in_panel and _inside(f.at, region)],
                       gid=f"{letter}-", avoid=labels)
    y = below - LABEL_ROOM
    for block in notes:
        for line in block:
            fig.text(0.06, y / total_h, line, fontsize=8, family="monospace", va="top",
                     parse_math=False)
            y -= LINE
        y -= LINE
    return fig


def _draw_plan(ax, site: Site, lint, walk: Walk | None, *, label, gid: str = "") -> list:
    """Zones, overlaps, walls, doorways, spots, beacons and the walk on one
    axes; `label(exhibit)` says whether to write its id (exhibits whose spots
    fall on one another share one label), beside its spot where it hides least
    (LABEL_PLACES); every SVG id starts with `gid` (so a panel's elements do
    not take the plan's ids). Returns the labels drawn."""
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Polygon

    confused = {x for c in (lint.clusters if lint else ()) for x in c}
    for e in site.exhibits:
        b = site.beacons[e.beacon]
        colour = CONFUSED_COLOUR if e.id in confused else ZONE_COLOUR
        zone = Circle((b.x, b.y), e.radius, facecolor=colour, alpha=0.15, edgecolor=colour,
                      linewidth=1.2, zorder=1)
        zone.set_gid(f"{gid}zone-{e.id}")
        ax.add_patch(zone)
    # overlaps: the shared part of two zones
    ids = list(site.exhibits)
    for i, a in enumerate(ids):
        ba = site.beacons[a.beacon]
        for c in ids[i + 1:]:
            bc = site.beacons[c.beacon]
            pts = lens((ba.x, ba.y, a.radius), (bc.x, bc.y, c.radius))
            if pts:
                poly = Polygon(pts, closed=True, facecolor=OVERLAP_COLOUR, alpha=0.45,
                               edgecolor=OVERLAP_COLOUR, hatch="///", linewidth=0.8, zorder=2)
                poly.set_gid(f"{gid}overlap-{a.id}_{c.id}")  # "_" is in no exhibit id
                ax.add_patch(poly)
    for k, ((wx1, wy1), (wx2, wy2)) in enumerate(site.walls):
        line = Line2D([wx1, wx2], [wy1, wy2], color=WALL_COLOUR, linewidth=WALL_WIDTH, zorder=3,
                      solid_capstyle="round")
        line.set_gid(f"{gid}wall-{k}")
        ax.add_line(line)
    for k, d in enumerate(lint.doorways if lint else ()):
        line = Line2D([d.a[0], d.b[0]], [d.a[1], d.b[1]], color=DOOR_COLOUR, linewidth=1.2,
                      linestyle=(0, (3, 2)), zorder=3)
        line.set_gid(f"{gid}doorway-{k}")
        ax.add_line(line)
    shared: list[tuple[tuple[float, float], tuple[float, float], list[str]]] = []  # pixel, spot, ids
    ax.apply_aspect()
    for e in site.exhibits:
        b = site.beacons[e.beacon]
        if (e.x, e.y) != (b.x, b.y):
            ax.plot([b.x, e.x], [b.y, e.y], color=ZONE_COLOUR, linewidth=0.6, zorder=4)
            spot, = ax.plot([e.x], [e.y], marker="o", markersize=4, color=ZONE_COLOUR, zorder=5)
            spot.set_gid(f"{gid}spot-{e.id}")
        if label(e):
            px = tuple(ax.transData.transform((e.x, e.y)))
            near = next((s for s in shared if math.dist(s[0], px) < LABEL_NEAR_PX), None)
            if near is None:
                shared.append((px, (e.x, e.y), [e.id]))
            else:
                near[2].append(e.id)
    names = svg_names(site.beacons)
    for bid, b in site.beacons.items():
        marker, = ax.plot([b.x], [b.y], marker="s", markersize=7, color=BEACON_COLOUR,
                          linestyle="none", zorder=6)
        marker.set_gid(f"{gid}beacon-{names[bid]}")
    if walk is not None:
        _draw_walk(ax, walk, gid)
    # each label where it hides least of what is drawn so far (beacons, spots, the
    # walk's marks and texts, the labels before it) and of the walls, inside the plot
    renderer = ax.figure.canvas.get_renderer()
    taken = [a.get_window_extent(renderer).extents for a in _markers(ax)]
    taken += [t.get_window_extent(renderer).extents for t in ax.texts]
    wall_px = WALL_WIDTH * DPI / 72
    walls = ax.transData.transform(np.array(site.walls, dtype=float).reshape(-1, 2)).reshape(-1, 2, 2)
    labels = []
    for _, at, ids in shared:
        text = ", ".join(_short(i, LABEL_CHARS) for i in ids)
        label = ax.annotate(_short(text, 2 * LABEL_CHARS), at, xytext=LABEL_PLACES[0][0],
                            textcoords="offset points", fontsize=8, color="#333333", zorder=8,
                            annotation_clip=True, parse_math=False)
        costs = []
        drawn = np.array(taken).reshape(-1, 4)
        for k, place in enumerate(LABEL_PLACES):
            box = _place(label, place, renderer)
            costs.append((box.width * box.height - _covered(box, np.array([ax.bbox.extents])),  # outside
                          _covered(box, drawn) + _clipped(walls, box.padded(wall_px / 2)) * wall_px, k))
        taken.append(_place(label, LABEL_PLACES[min(costs)[-1]], renderer).extents)
        labels.append(label)
    return labels


def _markers(ax) -> list:
    """The lines of `ax` drawn as markers (beacons, spots, the walk's marks)."""
    return [line for line in ax.lines if line.get_marker() not in ("None", "", " ")]


_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.-]")


def svg_names(ids: Iterable[str]) -> dict[str, str]:
    """Each of `ids` (beacon ids: any short text) as it can stand in an SVG
    element's id, an XML name: each character other than A-Z, a-z, 0-9, '_',
    '.', '-' written '_'; should that give two the same (the ids 'B Dome' and
    'B_Dome'), a changed one takes '_' and six hex digits of a hash of the id
    as written (not of its place in the list). Plain ids are kept as they are.

    >>> svg_names(["b-1", "B Dome", "B_Dome"])
    {'b-1': 'b-1', 'B Dome': 'B_Dome_633705', 'B_Dome': 'B_Dome'}
    """
    plain = {i: _NOT_IN_NAMES.sub("_", i) for i in ids}
    uses = Counter(plain.values())
    names = {}
    for i, name in plain.items():
        if name != i and uses[name] > 1:
            digest = hashlib.sha1(i.encode()).hexdigest()
            n = 6
            while uses[f"{name}_{digest[:n]}"]:  # a plain id the same, or sha1 broken
                n += 2
            name = f"{name}_{digest[:n]}"
            uses[name] += 1
        names[i] = name
    return names


def _place(label, place: tuple[tuple[float, float], str, str], renderer):
    """Stand `label` at `place` (one of LABEL_PLACES) from its point; where it is then drawn."""
    label.xyann, ha, va = place
    label.set_horizontalalignment(ha)
    label.set_verticalalignment(va)
    return label.get_window_extent(renderer)


def _covered(box, boxes) -> float:
    """How much of window extent `box` the window extents `boxes` (an array of
    their (x0, y0, x1, y1)) cover, in square pixels (a part two of them cover
    counted twice): 0 when none of them overlaps it, touching edges included."""
    import numpy as np

    if not len(boxes):
        return 0.0
    w = np.minimum(box.x1, boxes[:, 2]) - np.maximum(box.x0, boxes[:, 0])
    h = np.minimum(box.y1, boxes[:, 3]) - np.maximum(box.y0, boxes[:, 1])
    return float(np.sum(np.clip(w, 0, None) * np.clip(h, 0, None)))


def _clipped(segments, box) -> float:
    """The length (pixels) of the segments (an array of their ends' pixels,
    n x 2 x 2) that lies in window extent `box`, all together."""
    import numpy as np

    p, d = segments[:, 0], segments[:, 1] - segments[:, 0]
    lo, hi = np.zeros(len(segments)), np.ones(len(segments))
    for axis, low, high in ((0, box.x0, box.x1), (1, box.y0, box.y1)):
        start, step = p[:, axis], d[:, axis]
        flat = step == 0  # along the box's side: all of it or none, by where it runs
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(flat, np.where((low <= start) & (start <= high), -np.inf, np.inf),
                         (low - start) / step)
            b = np.where(flat, np.inf, (high - start) / step)
        lo, hi = np.maximum(lo, np.minimum(a, b)), np.minimum(hi, np.maximum(a, b))
    return float(np.sum(np.clip(hi - lo, 0, None) * np.hypot(d[:, 0], d[:, 1])))


def _draw_findings(ax, findings: Sequence[tuple[int, object]], gid: str = "", avoid: Sequence = ()) -> None:
    """Numbered red rings at each (number, finding); rings that would sit on
    one another (a cluster's findings share a spot), on one of the texts
    `avoid` (the exhibits' labels) or on a marker already drawn (a beacon, a
    spot, the walk's marks) are fanned out, with a leader line."""
    import numpy as np
    from matplotlib.transforms import Bbox

    ax.apply_aspect()
    renderer = ax.figure.canvas.get_renderer()
    boxes = np.array([t.get_window_extent(renderer).extents for t in avoid]
                     + [m.get_window_extent(renderer).extents for m in _markers(ax)]).reshape(-1, 4)
    placed: list[tuple[float, float]] = []  # pixel positions taken
    half = RING_PX / 2

    def taken(x: float, y: float) -> bool:
        return (any(math.hypot(x - qx, y - qy) < RING_PX for qx, qy in placed)
                or _covered(Bbox.from_extents(x - half, y - half, x + half, y + half), boxes) > 0)

    for n, f in findings:
        px, py = ax.transData.transform(f.at)
        k = 0
        ox = oy = 0.0
        while taken(px + ox, py + oy):
            k += 1
            angle = math.radians(45 + 40 * (k - 1))
            ox, oy = RING_PX * 1.1 * math.cos(angle) * (1 + (k - 1) // 9), \
                RING_PX * 1.1 * math.sin(angle) * (1 + (k - 1) // 9)
        placed.append((px + ox, py + oy))
        at = ax.transData.inverted().transform((px + ox, py + oy))
        if k:
            ax.plot([f.at[0], at[0]], [f.at[1], at[1]], color=FINDING_COLOUR, linewidth=0.8, zorder=9)
        dot, = ax.plot([at[0]], [at[1]], marker="o", markersize=15, markerfacecolor="white",
                       markeredgecolor=FINDING_COLOUR, markeredgewidth=2, linestyle="none", zorder=9)
        dot.set_gid(f"{gid}finding-{n}")
        ax.annotate(str(n), tuple(at), ha="center", va="center", fontsize=7, fontweight="bold",
                    color=FINDING_COLOUR, zorder=10, parse_math=False)


def _draw_walk(ax, walk: Walk, gid: str = "") -> None:
    xs = [p[1] for p in walk.path]
    ys = [p[2] for p in walk.path]
    line, = ax.plot(xs, ys, color=WALK_COLOUR, linewidth=1.0,
                    linestyle="--" if walk.estimated else "-", alpha=0.8, zorder=5)
    line.set_gid(f"{gid}walk")
    for k, m in enumerate(walk.ends, 1):
        end, = ax.plot([m.x], [m.y], marker="s", markersize=5, color=WALK_COLOUR,
                       linestyle="none", zorder=7)
        end.set_gid(f"{gid}end-{k}")
    for k, m in enumerate(walk.starts, 1):
        if m.false_start:
            mark, = ax.plot([m.x], [m.y], marker="X", markersize=11, color=FALSE_COLOUR,
                            markeredgecolor="white", linestyle="none", zorder=8)
            mark.set_gid(f"{gid}false-start-{k}")
            ax.annotate(m.exhibit, (m.x, m.y), xytext=(6, -10), textcoords="offset points",
                        fontsize=7, color=FALSE_COLOUR, zorder=8, parse_math=False)
        else:
            mark, = ax.plot([m.x], [m.y], marker="^", markersize=8, color=START_COLOUR,
                            markeredgecolor="white", linestyle="none", zorder=8)
            mark.set_gid(f"{gid}start-{k}")


def _notes(lint, walk: Walk | None, panels: bool = False, unboxed: int = 0) -> list[list[str]]:
    """The text under the plan: the key, and each finding marked (the first
    MAX_LISTED) with its first suggestion, and how many more there are."""
    blocks = []
    key = ("Key: blue square = beacon; blue dot = where visitors stand at an exhibit, if not at its "
           "beacon; circle = zone (radius); orange = exhibits the radio confuses; hatched = zones "
           "overlapping; black = walls; green dashes = doorways")
    if lint is not None and lint.findings:
        key += "; red ring n = finding n, listed below"
    if panels:
        key += "; dashed box A, B...: exhibits too close to read at this scale, enlarged under the plan"
    if unboxed:
        key += (f"; {unboxed} more group{'s' if unboxed != 1 else ''} of close exhibits not enlarged "
                f"(the first {MAX_PANELS} with findings are)")
    if walk is not None:
        key += ("; walk of " + walk.visitor + (" (guessed from the radio)" if walk.estimated else "")
                + ": green triangle = track started, grey square = ended, red cross = false start")
    blocks.append(textwrap.wrap(key, 150))
    if lint is not None and lint.findings:
        lines = []
        for n, f in enumerate(lint.findings[:MAX_LISTED], 1):
            first = f"{n:>2}. {f.message}."
            lines += textwrap.wrap(first, 150, subsequent_indent="    ")
            if f.suggestions:
                lines += textwrap.wrap(f.suggestions[0], 150, initial_indent="    -> ",
                                       subsequent_indent="       ")
        more = len(lint.findings) - MAX_LISTED
        if more > 0:
            lines += textwrap.wrap(f"... and {more} more finding{'s' if more != 1 else ''}, not marked: "
                                   f"guide lint --zones {lint.site.path} --all lists them all", 150)
        blocks.append(lines)
    if walk is not None:
        false = sum(1 for m in walk.starts if m.false_start)
        known = any(m.false_start is not None for m in walk.starts)
        blocks.append([f"{walk.visitor}: {len(walk.starts)} track{'s' if len(walk.starts) != 1 else ''} "
                       "started" + (f", {false} false start{'s' if false != 1 else ''}" if known else "")])
    return blocks


def save_map(fig, path: str | os.PathLike[str]) -> Path:
    """Write the figure as PNG or SVG, by the file's suffix: drawn in memory,
    then put in place whole (an existing file is left as it was on any error)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise GuideError(f"{path}: give a file name ending in .png or .svg (the format is "
                         "taken from it)")
    data = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=r"Glyph \d+ .* missing from font")
        fig.savefig(data, format=suffix[1:], dpi=DPI)
    missing: set[str] = set()
    for w in caught:
        m = re.match(r"Glyph (\d+) ", str(w.message))
        if m:
            missing.add(chr(int(m.group(1))))
        else:  # not ours to hide
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    if missing:  # one line for staff, not a library's warning with its source line
        shown = "".join(sorted(missing)[:12]) + ("..." if len(missing) > 12 else "")
        print(f"guide map: the font lacks {shown} ({len(missing)} characters of the site's text): "
              "drawn as boxes", file=sys.stderr)
    try:
        replace_whole(path, [data.getvalue()])
    except OSError as e:
        raise GuideError(f"{path}: cannot write the map ({e.strerror or e})") from None
    return path


def pixel_of(fig, ax_index: int, x: float, y: float) -> tuple[int, int]:
    """(column, row) in the saved PNG of site point (x, y) (row 0 at the top)."""
    ax = fig.axes[ax_index]
    ax.apply_aspect()  # the box an equal-aspect plot really gets, as when saved
    px, py = ax.transData.transform((x, y))
    height = fig.get_figheight() * DPI
    return int(round(px)), int(round(height - py))
