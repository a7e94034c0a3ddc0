"""Generated visitors and their ground truth (guide.walks)."""

from __future__ import annotations

import wave
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from guide.errors import GuideError, ScanLogError
from guide.radio import read_walks
from guide.walks import (GLANCE, MAX_VISIT, MIN_VISIT, WALK_DT, generate_visitors, plan_visitors,
                         read_truth, write_truth, write_walks)
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

# Two rooms, 20 x 12 m each, joined by a 2 m doorway in x = 20 (y 5..7).
WALLS = [((0, 0), (40, 0)), ((40, 0), (40, 12)), ((40, 12), (0, 12)), ((0, 12), (0, 0)),
         ((20, 0), (20, 5)), ((20, 7), (20, 12))]
# id: beacon x, y, radius, standing x/y or None (then the beacon's position)
EXHIBITS = {
    "portrait": (4.0, 11.85, 2.5, None),  # on a wall: visitors stand in front of it
    "tapestry": (0.15, 6.0, 2.5, (0.9, 6.0)),
    "sculpture": (10.0, 6.0, 3.0, None),
    "armour": (16.0, 0.15, 2.0, None),
    "coin-1": (28.0, 6.0, 1.5, None),  # a cluster, 2.5 m apart
    "coin-2": (30.5, 6.0, 1.5, None),
    "coin-3": (29.2, 8.3, 1.5, None),
    "clock": (39.85, 3.0, 2.5, None),
    "globe": (25.0, 2.5, 2.5, None),
    "lute": (35.0, 11.85, 2.0, None),
}
DURATIONS = {"portrait": 120.0, "tapestry": 64.0, "sculpture": 140.0, "armour": 45.0,
             "coin-1": 172.0, "coin-2": 185.0, "coin-3": 90.0, "clock": 200.0,
             "globe": 143.0, "lute": 97.0}


def write_site(folder: Path) -> Path:
    lines = ["site: two rooms", "languages: [en]", "beacons:"]
    for k, (eid, (x, y, _, _)) in enumerate(EXHIBITS.items()):
        lines += [f"  b-{eid}:", f"    ibeacon: {{uuid: {UUID}, major: 1, minor: {k + 1}}}",
                  "    tx_power: -59", f"    x: {x}", f"    y: {y}"]
    lines.append("walls:")
    lines += [f"  - [[{a[0]}, {a[1]}], [{b[0]}, {b[1]}]]" for a, b in WALLS]
    lines.append("exhibits:")
    for eid, (_, _, radius, stand) in EXHIBITS.items():
        lines += [f"  - id: {eid}", f"    title: {{en: {eid}}}", f"    beacon: b-{eid}",
                  f"    radius: {radius}", f"    tracks: {{en: en/{eid}.wav}}"]
        if stand:
            lines += [f"    x: {stand[0]}", f"    y: {stand[1]}"]
        (folder / "tracks" / "en").mkdir(parents=True, exist_ok=True)
        with wave.open(str(folder / "tracks" / "en" / f"{eid}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)
            w.setframerate(8000)
            w.writeframes(b"\x80" * 800)
    path = folder / "zones.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return load_zones(write_site(tmp_path_factory.mktemp("site")))


@pytest.fixture(scope="module")
def visit(site):
    walk, truth = generate_visitors(site, n=6, seed=21, durations=DURATIONS, lang="en",
                                    mix={"listener": 1, "glancer": 1, "wanderer": 1})
    return walk, truth


def by_visitor(rows):
    out = defaultdict(list)
    for r in rows:
        out[r[0] if isinstance(r, tuple) else r.visitor].append(r)
    return out


def positions(walk):
    return {v: np.array([(r.t, r.x, r.y) for r in rows]) for v, rows in by_visitor(walk).items()}


def test_every_visitor_walks_every_tenth_of_a_second_for_15_to_40_minutes(visit):
    walk, _ = visit
    for v, a in positions(walk).items():
        assert a[0, 0] == 0.0
        assert np.allclose(np.diff(a[:, 0]), WALK_DT)
        assert MIN_VISIT <= a[-1, 0] <= MAX_VISIT


def test_visitors_walk_at_human_speeds(visit):
    for a in positions(visit[0]).values():
        speed = np.hypot(*np.diff(a[:, 1:], axis=0).T) / WALK_DT
        assert speed.max() < 1.9
        moving = speed[speed > 0.3]
        assert 0.4 < np.median(moving) < 1.6


def test_truth_rows_are_in_time_order_and_never_overlap(visit):
    walk, truth = visit
    ends = {v: a[-1, 0] for v, a in positions(walk).items()}
    for v, rows in by_visitor(truth).items():
        for r in rows:
            assert 0 <= r.start < r.end <= ends[v] + 1e-9
        for a, b in zip(rows, rows[1:]):
            assert a.start <= b.start
            assert a.end <= b.start + 1e-9, (a, b)


def test_the_mix_of_kinds_shows_in_the_truth(visit):
    _, truth = visit
    intents = {r.intent for r in truth}
    assert intents == {"listen", "wander", "glance"}


def test_listen_rows_happen_within_the_exhibits_radius(site, visit):
    walk, truth = visit
    pos = positions(walk)
    listens = [r for r in truth if r.intent == "listen"]
    assert len(listens) >= 12
    for r in listens:
        a = pos[r.visitor]
        during = a[(a[:, 0] >= r.start - 1e-9) & (a[:, 0] <= r.end + 1e-9)]
        e = site.exhibit(r.exhibit)
        assert len(during) >= 1
        assert np.hypot(during[:, 1] - e.x, during[:, 2] - e.y).max() <= e.radius, r


def test_glances_last_one_to_six_seconds_near_the_exhibit(site, visit):
    walk, truth = visit
    pos = positions(walk)
    glances = [r for r in truth if r.intent == "glance"]
    assert glances
    for r in glances:
        assert GLANCE[0] - 1e-9 <= r.end - r.start <= GLANCE[1] + 1e-9
        a = pos[r.visitor]
        during = a[(a[:, 0] >= r.start - 1e-9) & (a[:, 0] <= r.end + 1e-9)]
        e = site.exhibit(r.exhibit)
        assert np.hypot(during[:, 1] - e.x, during[:, 2] - e.y).max() <= max(2.3, e.radius + 0.3)


def test_wander_rows_follow_a_listen_and_end_when_its_track_ends(visit):
    walk, truth = visit
    ends = {v: a[-1, 0] for v, a in positions(walk).items()}
    wanders = 0
    for v, rows in by_visitor(truth).items():
        for prev, r in zip([None, *rows], rows):
            if r.intent != "wander":
                continue
            wanders += 1
            assert prev is not None and prev.intent == "listen" and prev.exhibit == r.exhibit
            assert r.start == pytest.approx(prev.end)
            track_end = prev.start + DURATIONS[r.exhibit]
            assert r.end == pytest.approx(min(track_end, ends[v]), abs=0.051)
    assert wanders >= 3


def test_a_listen_after_a_wander_starts_no_earlier_than_the_previous_track_ends(visit):
    _, truth = visit
    for rows in by_visitor(truth).values():
        playing_until = 0.0
        for r in rows:
            if r.intent == "listen":
                assert r.start >= playing_until - 1e-9
                playing_until = r.start + DURATIONS[r.exhibit]
            if r.intent == "glance":
                assert r.start >= playing_until - 1e-9


def test_nobody_listens_to_the_same_exhibit_twice(visit):
    _, truth = visit
    for rows in by_visitor(truth).values():
        heard = [r.exhibit for r in rows if r.intent == "listen"]
        assert len(heard) == len(set(heard))


def test_no_step_of_any_walk_crosses_a_wall(visit):
    walk, _ = visit
    for a in positions(walk).values():
        p, q = a[:-1, 1:], a[1:, 1:]
        for (x1, y1), (x2, y2) in WALLS:
            d1 = (q[:, 0] - p[:, 0]) * (y1 - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x1 - p[:, 0])
            d2 = (q[:, 0] - p[:, 0]) * (y2 - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x2 - p[:, 0])
            d3 = (x2 - x1) * (p[:, 1] - y1) - (y2 - y1) * (p[:, 0] - x1)
            d4 = (x2 - x1) * (q[:, 1] - y1) - (y2 - y1) * (q[:, 0] - x1)
            assert not ((d1 * d2 <= 0) & (d3 * d4 <= 0)).any()


def test_visitors_reach_the_second_room_through_the_doorway(visit):
    walk, truth = visit
    assert any(r.exhibit.startswith("coin") for r in truth)
    for a in positions(walk).values():
        crossing = (a[:-1, 1] < 20) != (a[1:, 1] < 20)
        assert ((a[1:, 2][crossing] > 5) & (a[1:, 2][crossing] < 7)).all()


def test_wanderers_leave_before_the_track_ends_and_listeners_mostly_stay(site):
    _, w = generate_visitors(site, n=2, seed=5, durations=DURATIONS, lang="en", mix={"wanderer": 1})
    _, li = generate_visitors(site, n=2, seed=5, durations=DURATIONS, lang="en", mix={"listener": 1})

    def stayed(truth):
        listens = [r for r in truth if r.intent == "listen"]
        return sum(r.end - r.start >= DURATIONS[r.exhibit] for r in listens) / len(listens)

    assert stayed(w) < 0.3 < 0.5 < stayed(li)


def rests(site, walk, truth):
    """(seconds, metres beyond the nearest exhibit's radius) of every stand of
    5 s or more, within 0.8 m, outside every truth row."""
    rows = by_visitor(truth)
    out = []
    for v, p in positions(walk).items():
        i = 0
        while i < len(p):
            j = i
            while j + 1 < len(p) and np.hypot(*(p[j + 1, 1:] - p[i, 1:])) < 0.8:
                j += 1
            t0, t1 = p[i, 0], p[j, 0]
            if t1 - t0 >= 5 and not any(r.start < t1 and r.end > t0 for r in rows[v]):
                x, y = p[(i + j) // 2, 1:]
                out.append((t1 - t0, min(np.hypot(x - e.x, y - e.y) - e.radius for e in site.exhibits)))
            i = j + 1
    return out


def test_brisk_visitors_rest_briefly_and_further_from_exhibits(site):
    args = dict(n=6, seed=3, durations=DURATIONS, lang="en", mix={"glancer": 1})
    lingering = rests(site, *generate_visitors(site, habits="lingering", **args))
    brisk = rests(site, *generate_visitors(site, habits="brisk", **args))
    assert lingering and brisk
    assert max(s for s, _ in brisk) <= 35 < max(s for s, _ in lingering)
    assert min(m for _, m in brisk) >= 1.5 > min(m for _, m in lingering)
    assert sum(s for s, _ in brisk) < 0.5 * sum(s for s, _ in lingering)


def test_plan_honours_the_mix_proportions():
    kinds = [v.kind for v in plan_visitors(10, seed=1, mix={"listener": 3, "glancer": 2})]
    assert sorted(kinds) == ["glancer"] * 4 + ["listener"] * 6


def test_the_same_seed_makes_the_same_visitors(site):
    a = generate_visitors(site, n=1, seed=9, durations=DURATIONS, lang="en")
    b = generate_visitors(site, n=1, seed=9, durations=DURATIONS, lang="en")
    c = generate_visitors(site, n=1, seed=10, durations=DURATIONS, lang="en")
    assert a == b
    assert a[0] != c[0]


def test_bad_arguments_are_refused_with_the_fix(site):
    with pytest.raises(GuideError, match="runner"):
        plan_visitors(2, seed=1, mix={"runner": 1})
    with pytest.raises(GuideError, match="clock"):
        generate_visitors(site, n=1, seed=1, durations={k: v for k, v in DURATIONS.items() if k != "clock"},
                          lang="en")
    with pytest.raises(GuideError, match="en"):
        generate_visitors(site, n=1, seed=1, durations=DURATIONS, lang="xx")
    with pytest.raises(GuideError, match="lingering, brisk"):
        generate_visitors(site, n=1, seed=1, durations=DURATIONS, lang="en", habits="lazy")


def test_walk_and_truth_files_read_back_as_written(tmp_path, visit):
    walk, truth = visit
    write_walks(tmp_path / "walks.csv", walk)
    write_truth(tmp_path / "truth.csv", truth)
    back = list(read_walks(tmp_path / "walks.csv"))
    assert len(back) == len(walk)
    assert all(b == (w.visitor, w.t, w.x, w.y) for b, w in zip(back, walk))
    assert read_truth(tmp_path / "truth.csv") == truth
    assert (tmp_path / "truth.csv").read_text().startswith("visitor,start,end,exhibit,intent\n")


@pytest.mark.parametrize("row, message", [
    ("v001,1e9,2,2", r"walks.csv:3: t=1e9 is more than a week after the walk began"),
    ("v001,-1,2,2", r"walks.csv:3: t=-1 is negative"),
    ("v001,2,1e300,2", r"walks.csv:3: x=1e300, y=2 is more than 100 km from the site's origin"),
    (",2,2,2", r"walks.csv:3: the visitor is empty"),
    ("v\x002,2,2,2", r"walks.csv:3: the visitor 'v\\x002' holds the control character '\\x00'"),
    (f"v001,2,{'9' * 300},2", r"walks.csv:3: x=9{20}\.\.\. \(300 characters\), y=2 is more than 100 km"),
    (f"v001,2,{'x' * 300},2", r"walks.csv:3: field x = 'x{20}\.\.\. \(300 characters\)' is not a number"),
])
def test_a_walk_row_out_of_any_site_or_visit_is_refused_with_its_line(tmp_path, row, message):
    p = tmp_path / "walks.csv"
    p.write_text(f"visitor,t,x,y\nv001,0,2,2\n{row}\n")
    with pytest.raises(ScanLogError, match=message):
        list(read_walks(p))


def test_a_walk_header_naming_a_column_twice_is_refused(tmp_path):
    p = tmp_path / "walks.csv"
    p.write_text("visitor,t,x,y,x\nv001,0,2,2,9\n")
    with pytest.raises(ScanLogError, match=r"walks.csv:1: the header names the column x twice "
                                           r"\(columns 3, 5\); a walk names each column once: "
                                           r"rename or delete all but one"):
        list(read_walks(p))


def test_a_long_walk_time_is_echoed_cut_short(tmp_path):
    p = tmp_path / "walks.csv"
    p.write_text(f"visitor,t,x,y\nv001,0,2,2\nv001,1{'0' * 300},2,2\n")
    with pytest.raises(ScanLogError, match=r"walks.csv:3: t=10{19}\.\.\. \(301 characters\) is "
                                           r"more than a week after the walk began"):
        list(read_walks(p))


def test_the_entrance_of_a_site_100_km_across_is_found_near_its_corner(tmp_path):
    """simulate.py --zones Z (generated visitors) on a valid site spanning the
    coordinate limits died of a MemoryError: the entrance was sought on a
    0.5 m grid of the whole site (1 TiB), when it is found by the corner."""
    from guide.walks import _entrance, _Floor

    wav = tmp_path / "tracks" / "en" / "a.wav"
    wav.parent.mkdir(parents=True)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(1), w.setframerate(8000)
        w.writeframes(b"\x80" * 8000)
    exhibits = "".join(f"  - {{id: e{i}, title: {{en: E}}, beacon: b{i}, radius: 2, tracks: {{en: en/a.wav}}}}\n"
                       for i in range(2))
    (tmp_path / "zones.yaml").write_text(
        "site: Wide\nlanguages: [en]\nbeacons:\n"
        "  b0: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 1}, "
        "tx_power: -59, x: -100000, y: -100000}\n"
        "  b1: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 2}, "
        "tx_power: -59, x: 100000, y: 100000}\n"
        "exhibits:\n" + exhibits)
    site = load_zones(tmp_path / "zones.yaml")
    x, y = _entrance(site, _Floor(site))
    # the grid's first free spot from the corner (-100003, -100003), 3 m or more from e0's zone
    assert (x, y) == (-100002.5, -100002.5)
