#!/usr/bin/env python3
"""Make a random evaluation scenario: a site the engine was never tuned on,
visitors walking it, and what their devices heard.

    python eval/make_scenario.py --out /tmp/scn-7 --seed 7 --rate 1 --radio harsh

writes, in the shape of the shared samples (data/gallery-sample):

    DIR/zones.yaml        a random site: rooms with walls and doorways, 8-20 exhibits
                          (clusters of 2-4 exhibits 2-3 m apart, isolated ones,
                          radii 1.5-3.5 m, tx_power -65..-55 dBm)
    DIR/tracks/en/*.wav   silent tracks of 45-200 s (8 kHz mono 8-bit: small)
    DIR/walks.csv         visitor positions every 0.1 s (guide.walks)
    DIR/truth.csv         what each visitor wanted, and when
    DIR/scans.csv         what each device heard (guide.radio)
    DIR/scenario.json     seed, layout, radio model, rate, visitors, track durations

The same arguments always make the same scenario. See eval/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from guide import tracks  # noqa: E402
from guide.cli import guarded, number, seed  # noqa: E402
from guide.errors import GuideError  # noqa: E402
from guide.radio import PRESETS, RadioModel, scans_from_walk  # noqa: E402
from guide.walks import HABITS, WALK_DT, generate_visitors, plan_visitors, write_truth, write_walks  # noqa: E402
from guide.zones import load_zones  # noqa: E402

LAYOUTS = ("random", "gallery-like", "corridor")
SPREADS = ("dense", "sparse")
LANG = "en"
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
WAV_RATE = 8000
NAMES = [
    "portrait", "tapestry", "sculpture", "armour", "globe", "lute", "clock", "map",
    "helmet", "vase", "mosaic", "altar", "telescope", "model-ship", "manuscript",
    "sword", "fresco", "bust", "loom", "printing-press", "astrolabe", "harp",
    "chest", "icon", "banner", "cannon", "mask", "compass", "sextant", "organ",
    "carriage", "mummy", "totem", "kimono", "anchor", "bell", "crown", "throne",
]
CLUSTERS = ["coin", "medal", "ring", "brooch", "seal", "fossil", "shell", "stamp",
            "miniature", "jewel"]


# ---------------------------------------------------------------- a random site

@dataclass
class _Room:
    name: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class _Plan:
    walls: list[tuple[tuple[float, float], tuple[float, float]]]
    rooms: list[_Room]
    doors: list[tuple[float, float]]  # door centres: keep exhibits out of them


def _r(v: float) -> float:
    return round(float(v), 2)


def _split(a: tuple[float, float], b: tuple[float, float], gaps: list[tuple[float, float]]):
    """Segments of a-b with the gaps (fractions along it) left open."""
    out, last = [], 0.0
    for g0, g1 in sorted(gaps):
        if g0 > last:
            out.append((last, g0))
        last = g1
    if last < 1.0:
        out.append((last, 1.0))
    return [((_r(a[0] + (b[0] - a[0]) * s), _r(a[1] + (b[1] - a[1]) * s)),
             (_r(a[0] + (b[0] - a[0]) * e), _r(a[1] + (b[1] - a[1]) * e))) for s, e in out]


def _door(rng, length: float) -> tuple[float, float]:
    """A doorway 1.2-2.5 m wide at least 1 m from either end, as fractions."""
    width = min(rng.uniform(1.2, 2.5), length - 2.2)
    start = rng.uniform(1.0, length - 1.0 - width)
    return start / length, (start + width) / length


def _grid_plan(rng, cols: list[float], rows: list[float]) -> _Plan:
    """Rooms on a grid, every room reachable: doors along a random spanning
    tree, plus some extra ones."""
    xs = np.concatenate([[0.0], np.cumsum(cols)])
    ys = np.concatenate([[0.0], np.cumsum(rows)])
    nc, nr = len(cols), len(rows)
    rooms = [_Room(f"room-{chr(97 + j * nc + i)}", _r(xs[i]), _r(ys[j]), _r(xs[i + 1]), _r(ys[j + 1]))
             for j in range(nr) for i in range(nc)]
    pairs = [((i, j), (i + 1, j)) for j in range(nr) for i in range(nc - 1)] + \
            [((i, j), (i, j + 1)) for j in range(nr - 1) for i in range(nc)]
    order = [pairs[k] for k in rng.permutation(len(pairs))]
    parent = {(i, j): (i, j) for i in range(nc) for j in range(nr)}

    def find(c):
        while parent[c] != c:
            c = parent[c]
        return c
    doors_on = set()
    for a, b in order:
        if find(a) != find(b):
            parent[find(a)] = find(b)
            doors_on.add((a, b))
        elif rng.random() < 0.35:
            doors_on.add((a, b))
    W, H = xs[-1], ys[-1]
    walls = [((0.0, 0.0), (_r(W), 0.0)), ((_r(W), 0.0), (_r(W), _r(H))),
             ((_r(W), _r(H)), (0.0, _r(H))), ((0.0, _r(H)), (0.0, 0.0))]
    doors = []
    for a, b in pairs:
        (i, j), (i2, j2) = a, b
        if i2 > i:  # vertical wall between columns i and i+1, in row j
            p, q = (xs[i + 1], ys[j]), (xs[i + 1], ys[j + 1])
        else:  # horizontal wall between rows j and j+1, in column i
            p, q = (xs[i], ys[j + 1]), (xs[i + 1], ys[j + 1])
        length = math.hypot(q[0] - p[0], q[1] - p[1])
        gaps = [_door(rng, length)] if (a, b) in doors_on else []
        walls += _split(p, q, gaps)
        for g0, g1 in gaps:
            m = (g0 + g1) / 2
            doors.append((p[0] + (q[0] - p[0]) * m, p[1] + (q[1] - p[1]) * m))
    return _Plan(walls=walls, rooms=rooms, doors=doors)


def _layout(rng, layout: str) -> _Plan:
    if layout == "gallery-like":
        n = int(rng.integers(2, 4))
        w = float(rng.uniform(16, 22))
        return _grid_plan(rng, [w] * n, [float(rng.uniform(12, 16))])
    if layout == "corridor":
        length, width = float(rng.uniform(30, 50)), float(rng.uniform(3.0, 4.0))
        side = int(rng.integers(1, 3))
        cols = [length / side] * side
        plan = _grid_plan(rng, cols, [width, float(rng.uniform(8, 12))])
        # every side room opens onto the corridor (row 0), some onto each other
        plan.rooms[:side] = [_Room("corridor", 0.0, 0.0, _r(length), _r(width))]
        return _corridor_doors(rng, plan, cols, width, length)
    cols = [float(rng.uniform(8, 16)) for _ in range(int(rng.integers(1, 4)))]
    rows = [float(rng.uniform(8, 14)) for _ in range(int(rng.integers(1, 3)))]
    if len(cols) * len(rows) == 1:
        cols.append(float(rng.uniform(8, 16)))
    return _grid_plan(rng, cols, rows)


def _corridor_doors(rng, plan: _Plan, cols: list[float], width: float, length: float) -> _Plan:
    """The corridor is one open space: drop the walls across it, and give each
    side room a doorway onto it."""
    walls = []
    for a, b in plan.walls:
        across = a[0] == b[0] and 0 < a[0] < length and max(a[1], b[1]) <= _r(width) + 1e-9
        along = a[1] == b[1] == _r(width)
        if not across and not along:
            walls.append((a, b))
    doors = [d for d in plan.doors if d[1] > width + 1e-6]
    x = 0.0
    for c in cols:
        g0, g1 = _door(rng, c)
        walls += _split((_r(x), _r(width)), (_r(x + c), _r(width)), [(g0, g1)])
        doors.append((x + c * (g0 + g1) / 2, width))
        x += c
    return _Plan(walls=walls, rooms=plan.rooms, doors=doors)


@dataclass
class _Item:
    id: str
    bx: float  # beacon
    by: float
    x: float | None  # standing position when it differs from the beacon
    y: float | None
    radius: float
    tx: int


def _place_exhibits(rng, plan: _Plan, layout: str, spread: str) -> list[_Item]:
    """8-20 exhibits: on walls and free-standing, clusters of 2-4 exhibits 2-3 m
    apart, and isolated ones with room around them. `spread` "dense": 1-3
    clusters and more by chance, 4.5 m or more between groups; "sparse" (as in
    the shared gallery sample): one cluster, 6.5 m or more between groups."""
    target = int(rng.integers(8, 21))
    names = [str(n) for n in rng.permutation(NAMES)]
    cluster_names = [str(n) for n in rng.permutation(CLUSTERS)]
    groups: list[list[tuple[float, float, tuple[float, float] | None]]] = []  # (bx, by, inward normal)
    placed: list[tuple[float, float]] = []
    isolated: list[bool] = []
    wanted_clusters = int(rng.integers(1, 4))
    wanted_alone = int(rng.integers(1, 4))
    sparse = spread == "sparse"
    if sparse:
        wanted_clusters = 1
    apart = 6.5 if sparse else 4.5  # m a group keeps from every other

    keep: list[float] = []  # how far each placed exhibit keeps others away

    def free(pts, gap):
        return all(
            all(math.hypot(px - qx, py - qy) >= max(gap, k) for (qx, qy), k in zip(placed, keep))
            and all(math.hypot(px - dx, py - dy) >= 2.0 for dx, dy in plan.doors)
            for px, py in pts)

    tries = 0
    count = 0
    in_room = [0] * len(plan.rooms)
    while count < target and tries < 4000:
        tries += 1
        # rooms fill in proportion to their floor area
        weight = np.array([(r.x1 - r.x0) * (r.y1 - r.y0) / (1 + in_room[i]) ** 2
                           for i, r in enumerate(plan.rooms)])
        ri = int(rng.choice(len(plan.rooms), p=weight / weight.sum()))
        room = plan.rooms[ri]
        w, h = room.x1 - room.x0, room.y1 - room.y0
        size = 1
        need_alone = sum(isolated) < wanted_alone and tries < 1500
        if len([g for g in groups if len(g) > 1]) < wanted_clusters or rng.random() < (0 if sparse else 0.15):
            size = int(rng.integers(2, 5))
        if need_alone and len([g for g in groups if len(g) > 1]) >= min(1, wanted_clusters):
            size = 1
        size = min(size, target - count)
        spacing = float(rng.uniform(2.0, 3.0))
        on_wall = rng.random() < (0.8 if layout == "corridor" else 0.6)
        if on_wall:
            side = int(rng.integers(4))
            span = (w if side in (0, 2) else h) - 2.0 - spacing * (size - 1)
            if span <= 0:
                continue
            s = 1.0 + rng.uniform(0, span)
            if side == 0:
                pts = [(room.x0 + s + k * spacing, room.y0 + 0.15) for k in range(size)]
                normal = (0.0, 1.0)
            elif side == 1:
                pts = [(room.x1 - 0.15, room.y0 + s + k * spacing) for k in range(size)]
                normal = (-1.0, 0.0)
            elif side == 2:
                pts = [(room.x0 + s + k * spacing, room.y1 - 0.15) for k in range(size)]
                normal = (0.0, -1.0)
            else:
                pts = [(room.x0 + 0.15, room.y0 + s + k * spacing) for k in range(size)]
                normal = (1.0, 0.0)
        else:
            a = rng.uniform(0, math.pi)
            d = (math.cos(a) * spacing, math.sin(a) * spacing)
            ext = (abs(d[0]) * (size - 1), abs(d[1]) * (size - 1))
            if w - 5.0 - ext[0] <= 0 or h - 5.0 - ext[1] <= 0:
                continue
            x0 = room.x0 + 2.5 + rng.uniform(0, w - 5.0 - ext[0]) + (ext[0] if d[0] < 0 else 0)
            y0 = room.y0 + 2.5 + rng.uniform(0, h - 5.0 - ext[1])
            pts = [(x0 + k * d[0], y0 + k * d[1]) for k in range(size)]
            normal = None
        # groups keep `apart` from everything else; some singles keep 7 m
        alone = size == 1 and (need_alone or rng.random() < 0.3)
        if not free(pts, 7.0 if alone else apart):
            continue
        groups.append([(px, py, normal) for px, py in pts])
        isolated.append(alone)
        placed += pts
        keep += [7.0 if alone else apart] * len(pts)
        count += size
        in_room[ri] += size

    items = []
    for group in groups:
        stem = None
        if len(group) > 1:
            stem = cluster_names.pop(0) if cluster_names else f"case-{len(items)}"
        for k, (bx, by, normal) in enumerate(group):
            eid = f"{stem}-{k + 1}" if stem else (names.pop(0) if names else f"exhibit-{len(items)}")
            near = min((math.hypot(bx - qx, by - qy) for qx, qy in placed if (qx, qy) != (bx, by)),
                       default=10.0)
            if len(group) > 1:
                radius = rng.uniform(1.5, 2.0)
            else:
                radius = rng.uniform(2.0, min(3.5, max(2.0, 0.6 * near)))
            x = y = None
            if normal is not None and rng.random() < 0.5:  # a painting: stand in front of it
                off = rng.uniform(0.6, 0.9)
                x, y = _r(bx + normal[0] * off), _r(by + normal[1] * off)
            elif normal is None and rng.random() < 0.3:  # a statue seen from its front
                a = rng.uniform(0, 2 * math.pi)
                x, y = _r(bx + 0.8 * math.cos(a)), _r(by + 0.8 * math.sin(a))
            items.append(_Item(id=eid, bx=_r(bx), by=_r(by), x=x, y=y,
                               radius=round(float(radius), 1), tx=int(rng.integers(-65, -54))))
    return items


def _zones_yaml(items: list[_Item], plan: _Plan, title: str, header: str, seed: int) -> str:
    beacons = {}
    exhibits = []
    for k, it in enumerate(items):
        bid = f"b-{it.id}"
        beacons[bid] = {"ibeacon": {"uuid": UUID, "major": 100 + seed % 60000, "minor": k + 1},
                        "tx_power": it.tx, "x": it.bx, "y": it.by}
        ex = {"id": it.id, "title": {LANG: it.id.replace("-", " ").capitalize()},
              "beacon": bid, "radius": it.radius}
        if it.x is not None:
            ex["x"], ex["y"] = it.x, it.y
        ex["tracks"] = {LANG: f"{LANG}/{it.id}.wav"}
        exhibits.append(ex)
    doc = {"site": title, "languages": [LANG], "tracks_dir": "tracks", "beacons": beacons,
           "walls": [[list(a), list(b)] for a, b in plan.walls], "exhibits": exhibits}
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def _silent_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * WAV_RATE))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)  # 8-bit PCM is unsigned: 0x80 is silence
        w.setframerate(WAV_RATE)
        w.writeframes(b"\x80" * frames)


# ---------------------------------------------------------------- the scenario

def make(out: Path, *, seed: int, rate: float, radio: str, visitors: int, layout: str,
         habits: str = "lingering", spread: str = "dense") -> dict:
    """Write the scenario into `out`; returns what scenario.json holds."""
    model = RadioModel.preset(radio)
    rng = np.random.default_rng([seed, 7001])
    plan = _layout(rng, layout)
    items = _place_exhibits(rng, plan, layout, spread)
    command = (f"eval/make_scenario.py --seed {seed} --rate {rate:g} --radio {radio} "
               f"--visitors {visitors} --layout {layout}"
               + (f" --habits {habits}" if habits != "lingering" else "")
               + (f" --spread {spread}" if spread != "dense" else ""))
    out.mkdir(parents=True, exist_ok=True)
    (out / "zones.yaml").write_text(_zones_yaml(
        items, plan, f"Random site ({layout} layout, seed {seed})", f"# generated by {command}\n", seed),
        encoding="utf-8")
    for it in items:
        _silent_wav(out / "tracks" / LANG / f"{it.id}.wav", round(float(rng.uniform(45, 200)), 1))
    site = load_zones(out / "zones.yaml")
    durations = {e.id: tracks.duration(site.track_path(e.tracks[LANG])) for e in site.exhibits}
    walk, truth = generate_visitors(site, n=visitors, seed=seed, durations=durations, lang=LANG,
                                    habits=habits)
    write_walks(out / "walks.csv", walk)
    write_truth(out / "truth.csv", truth)

    last_scan: dict[str, float] = {}
    n_scans = 0
    tmp = out / ".scans.csv.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("visitor,t,beacon,rssi\n")
        for v, t, b, r in scans_from_walk(site, walk, model, seed=seed, rate_hz=rate):
            f.write(f"{v},{t:.3f},{b},{r}\n")
            last_scan[v] = t
            n_scans += 1
    os.replace(tmp, out / "scans.csv")

    ends: dict[str, float] = {}
    for row in walk:
        ends[row.visitor] = row.t
    rows_per = {v.id: 0 for v in plan_visitors(visitors, seed=seed)}
    for row in truth:
        rows_per[row.visitor] += 1
    info = {
        "generator": "eval/make_scenario.py",
        "command": command,
        "layout": layout,
        "habits": habits,
        "spread": spread,
        "seed": seed,
        "rate": rate,
        "visitors_n": visitors,
        "walk_dt": WALK_DT,
        "lang": LANG,
        "languages": [LANG],
        "scans": n_scans,
        "radio": {"preset": radio, **model.to_dict(), "rate_hz": rate},
        "walls": [[list(a), list(b)] for a, b in plan.walls],
        "areas": {r.name: [r.x0, r.y0, r.x1, r.y1] for r in plan.rooms},
        "visitors": {
            v.id: {"kind": v.kind, "lang": LANG, "duration": ends.get(v.id, 0.0),
                   "last_scan": last_scan.get(v.id), "rows": rows_per[v.id],
                   "speed": v.speed, "slow_speed": v.slow_speed, "drift": v.drift,
                   "planned_visit": v.visit}
            for v in plan_visitors(visitors, seed=seed)},
        "track_durations": {LANG: {k: round(d, 3) for k, d in durations.items()}},
        "note": "Random evaluation site; the engine was never tuned on it.",
    }
    (out / "scenario.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder to write (created; must be empty)")
    ap.add_argument("--seed", required=True, type=seed, help="the same seed makes the same scenario")
    ap.add_argument("--rate", type=number("10 (scanner) or 1 (phone)"), default=10.0, choices=(10.0, 1.0),
                    help="advertisements per second per beacon: 10 (scanner; the default) or 1 (phone)")
    ap.add_argument("--radio", default="museum", choices=PRESETS, help="radio model preset (default: museum)")
    ap.add_argument("--visitors", type=number("a whole number, 1 or more", whole=True, low=1), default=8,
                    help="how many visitors walk (default 8)")
    ap.add_argument("--layout", default="random", choices=LAYOUTS, help="kind of floor plan (default: random)")
    ap.add_argument("--habits", default="lingering", choices=HABITS,
                    help="how visitors rest between exhibits: lingering (often, long, near "
                         "exhibits; the default) or brisk (like the shared gallery sample)")
    ap.add_argument("--spread", default="dense", choices=SPREADS,
                    help="dense: 1-3 clusters of exhibits 2-3 m apart and more by chance, groups "
                         "4.5 m apart (the default); sparse: one cluster, groups 6.5 m apart "
                         "(like the shared gallery sample)")
    ap.add_argument("--force", action="store_true", help="write into a folder that is not empty")
    a = ap.parse_args(argv)
    return guarded("make_scenario", lambda: _main(a))


def _main(a: argparse.Namespace) -> int:
    if not a.out.strip():
        raise GuideError("--out: give the name of a new folder to write the scenario in")
    a.out = Path(a.out)
    if a.out.exists() and not a.out.is_dir():
        raise GuideError(f"--out {a.out}: is a file, not a folder; give the name of a new folder")
    if a.out.exists() and any(a.out.iterdir()) and not a.force:
        print(f"make_scenario: {a.out} is not empty; choose another --out or add --force",
              file=sys.stderr)
        return 2
    info = make(a.out, seed=a.seed, rate=a.rate, radio=a.radio, visitors=a.visitors,
                layout=a.layout, habits=a.habits, spread=a.spread)
    n_ex = len(info["track_durations"][LANG])
    print(f"{a.out}: {a.layout} site, {n_ex} exhibits, {a.visitors} visitors, "
          f"{info['scans']} scan rows at {a.rate:g} Hz ({a.radio} radio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
