"""`guide lint`: layout problems found from the plan and the radio model,
each with a concrete fix; silence on a well-spaced site."""

from __future__ import annotations

import json
import math
import re

import pytest

from guide.cli import main
from guide.lint import lint_site, noise_of
from guide.radio import RadioModel
from guide.settings import SETTINGS
from guide.zones import MAX_RADIUS, load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def write_site(tmp_path, make_wav, exhibits, *, walls=(), trigger=None, triggers=None):
    """exhibits: [(id, beacon x, beacon y, radius)] or with a 5th item, the
    standing spot (x, y); trigger: the site's settings, triggers: {id: an
    exhibit's} -> zones.yaml path."""
    def settings(values):
        return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"

    lines = ["site: Lint test", "languages: [fr]"]
    if trigger:
        lines.append(f"trigger: {settings(trigger)}")
    if walls:
        lines.append("walls:")
        lines += [f"  - [[{a[0]}, {a[1]}], [{b[0]}, {b[1]}]]" for a, b in walls]
    lines.append("beacons:")
    for i, (e, x, y, *_) in enumerate(exhibits):
        lines.append(f"  b-{e}: {{ibeacon: {{uuid: {UUID}, major: 2, minor: {i + 1}}}, "
                     f"tx_power: -59, x: {x}, y: {y}}}")
    lines.append("exhibits:")
    for e, x, y, r, *spot in exhibits:
        make_wav(tmp_path / "tracks" / "fr" / f"{e}.wav", 0.1)
        where = f", x: {spot[0][0]}, y: {spot[0][1]}" if spot else ""
        own = f", trigger: {settings(triggers[e])}" if triggers and e in triggers else ""
        lines.append(f"  - {{id: {e}, title: {{fr: {e}}}, beacon: b-{e}, radius: {r}{where}, "
                     f"tracks: {{fr: fr/{e}.wav}}{own}}}")
    path = tmp_path / "zones.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def kinds(report):
    return sorted((f.kind, f.exhibits) for f in report.findings)


def test_exhibits_10_m_apart_in_a_room_give_no_findings(tmp_path, make_wav, capsys):
    grid = [(f"e{i}{j}", 5 + 10 * i, 5 + 10 * j, 2.5) for i in range(3) for j in range(2)]
    room = [((0, 0), (30, 0)), ((30, 0), (30, 20)), ((30, 20), (0, 20)), ((0, 20), (0, 0))]
    zones = write_site(tmp_path, make_wav, grid, walls=room)
    report = lint_site(load_zones(zones))
    assert report.findings == () and report.clusters == ()
    assert main(["lint", "--zones", str(zones)]) == 0
    assert "No findings: all is well." in capsys.readouterr().out


def test_a_close_cluster_is_flagged_as_one_with_moves_merges_and_dwell_suggestions(tmp_path, make_wav):
    row = [("v1", 10, 10, 1.5), ("v2", 12.5, 10, 1.5), ("v3", 15, 10, 1.5), ("far", 30, 10, 2.5)]
    report = lint_site(load_zones(write_site(tmp_path, make_wav, row)))
    assert report.clusters == (("v1", "v2", "v3"),)
    pairs = {f.exhibits for f in report.findings if f.kind == "indistinct"}
    assert {("v1", "v2"), ("v2", "v3")} <= pairs
    assert not any("far" in f.exhibits for f in report.findings)
    f = next(f for f in report.findings if f.kind == "indistinct" and f.exhibits == ("v1", "v2"))
    assert f.figures["share_started_v1"] < 0.8
    text = " / ".join(f.suggestions)
    assert "move the beacons apart: b-v1 and b-v2 are 2.5 m apart; about" in text
    assert "merge v1 and v2 into one exhibit" in text
    assert "raise the dwell for" in text and "guide calibrate" in text


def test_overlapping_zones_get_radii_that_no_longer_overlap(tmp_path, make_wav):
    zones = write_site(tmp_path, make_wav, [("a", 0, 0, 2), ("b", 3, 0, 2)])
    (f,) = [f for f in lint_site(load_zones(zones)).findings if f.kind == "overlap"]
    assert f.figures["overlap_m"] == pytest.approx(1.0)
    assert "shrink the radii: a to 1.25 m and b to 1.25 m" in f.suggestions[0]
    assert 1.25 + 1.25 < 3


def test_the_needed_spacing_actually_separates_the_pair(tmp_path, make_wav):
    report = lint_site(load_zones(write_site(tmp_path, make_wav, [("a", 0, 0, 1.5), ("b", 3, 0, 1.5)])))
    f = next(f for f in report.findings if f.kind == "indistinct")
    need = float(f.suggestions[0].split("about ")[1].split(" m")[0])
    apart = write_site(tmp_path / "apart", make_wav, [("a", 0, 0, 1.5), ("b", need + 0.5, 0, 1.5)])
    assert not [f for f in lint_site(load_zones(apart)).findings if f.kind == "indistinct"]


def test_a_harsher_radio_model_means_more_noise_and_more_findings(tmp_path, make_wav):
    museum, harsh = noise_of(RadioModel.museum(), 2.0), noise_of(RadioModel.harsh(), 2.0)
    assert harsh.lead > museum.lead > noise_of(RadioModel.textbook(), 2.0).lead
    site = load_zones(write_site(tmp_path, make_wav, [("a", 0, 0, 2), ("b", 7, 0, 2)]))
    assert lint_site(site, model="textbook").findings == ()
    assert [f.kind for f in lint_site(site, model="harsh").findings] == ["indistinct"]


def test_a_zone_across_a_doorway_is_flagged_with_a_smaller_radius(tmp_path, make_wav):
    # a wall along y=10 with a 2 m doorway from x=9 to x=11; beacon 2 m from it
    walls = [((0, 10), (9, 10)), ((11, 10), (20, 10))]
    zones = write_site(tmp_path, make_wav, [("door", 10, 8, 3)], walls=walls)
    report = lint_site(load_zones(zones))
    assert [(d.a, d.b) for d in report.doorways] == [((9.0, 10.0), (11.0, 10.0))]
    (f,) = [f for f in report.findings if f.kind == "doorway"]
    assert f.at == (10.0, 10.0) and f.figures["distance_m"] == pytest.approx(2.0)
    assert "shrink the radius of door to 1.5 m" in f.suggestions[0]
    assert any("raise the dwell for door" in s for s in f.suggestions)


def test_a_corner_is_no_doorway_and_a_doorway_where_walls_meet_is_found_once(tmp_path, make_wav):
    # a room with a 2.24 m doorway near its top-left corner: the corner at
    # (0, 0), two wall ends that are no doorway's side, was joined across the
    # room to the doorway's side (a false finding: "visitors walk through
    # its zone"); and a tunnel mouth, where the hall's wall and the tunnel's
    # meet at each side, was listed once per pair of walls (its far end is
    # a doorway too, of two free ends)
    room = [((0, 0), (10, 0)), ((10, 0), (10, 3.5)), ((10, 3.5), (3.33, 3.5)),
            ((1.09, 3.5), (0, 3.5)), ((0, 3.5), (0, 0))]
    tunnel = [((50, 0), (45, 2)), ((50, 0), (50, -10)), ((56, 0), (61, 2)), ((56, 0), (56, -10))]
    zones = write_site(tmp_path, make_wav, [("far", 40, 40, 2)], walls=room + tunnel)
    report = lint_site(load_zones(zones))
    assert sorted(tuple(sorted((d.a, d.b))) for d in report.doorways) == [
        ((1.09, 3.5), (3.33, 3.5)), ((50.0, -10.0), (56.0, -10.0)), ((50.0, 0.0), (56.0, 0.0))]


def test_a_beacon_heard_through_a_wall_into_a_room_is_flagged_but_not_through_an_outer_wall(tmp_path, make_wav):
    # two rooms side by side (x 0-10 and 10-20), a doorway far down the middle wall
    walls = [((0, 0), (20, 0)), ((20, 0), (20, 10)), ((20, 10), (0, 10)), ((0, 10), (0, 0)),
             ((10, 10), (10, 3)), ((10, 1.5), (10, 0))]
    exhibits = [("inner", 9.8, 8, 2.5, (8.5, 8)),  # on the middle wall: the other room hears it
                ("outer", 5, 9.8, 2.5, (5, 8.5)),  # on the outside wall
                ("other", 15, 5, 2)]
    report = lint_site(load_zones(write_site(tmp_path, make_wav, exhibits, walls=walls)))
    through = [f for f in report.findings if f.kind == "through-wall"]
    assert [f.exhibits for f in through] == [("inner",)]
    assert through[0].at[0] > 10  # marked on the far side
    assert any("move beacon b-inner away from the wall" in s for s in through[0].suggestions)


def test_visitors_standing_behind_a_wall_from_their_beacon_is_an_error(tmp_path, make_wav):
    walls = [((0, 5), (20, 5))]
    zones = write_site(tmp_path, make_wav, [("hidden", 10, 4, 2, (10, 6))], walls=walls)
    (f,) = [f for f in lint_site(load_zones(zones)).findings if f.kind == "behind-wall"]
    assert f.severity == "error" and "on the other side of a wall" in f.message


def test_a_standing_spot_far_from_its_beacon_is_weak_with_a_level_to_set(tmp_path, make_wav):
    zones = write_site(tmp_path, make_wav, [("faint", 0, 0, 1.5, (4, 0)), ("x", 30, 0, 2)])
    (f,) = [f for f in lint_site(load_zones(zones)).findings if f.kind == "weak"]
    assert f.figures["share_started"] < 0.8 and f.figures["level_dbm"] < f.figures["needed_dbm"]
    level = int(f.suggestions[0].split("to ")[1].split(" dBm")[0])
    assert level < f.figures["level_dbm"]
    assert any("raise its radius" in s for s in f.suggestions)


@pytest.mark.parametrize("away", [400, 5000])
def test_a_spot_beyond_any_zone_from_its_beacon_gets_no_level_or_radius_the_loader_refuses(
        tmp_path, make_wav, away):
    # as far as it is, the level or radius it needs are out of zones.yaml's range
    zones = write_site(tmp_path, make_wav, [("far", 0, 0, 1.5, (away, 0)), ("x", 30, 0, 2)])
    (f,) = [f for f in lint_site(load_zones(zones)).findings if f.kind == "weak"]
    level = SETTINGS["level"].metadata
    for s in f.suggestions:
        for value in re.findall(r"level: (-?\d+)", s):
            assert level["min"] <= int(value) <= level["max"]
        for value in re.findall(r"radius to ([\d.]+) m", s):
            assert float(value) <= MAX_RADIUS
    assert not any("lower the level" in s or "raise its radius" in s for s in f.suggestions)
    assert f.suggestions[0].startswith("move beacon b-far closer to where visitors stand")
    assert "check far's x/y" in f.suggestions[1] and "no level or radius" in f.suggestions[1]


def test_a_dwell_at_its_maximum_is_not_raised_beyond_it(tmp_path, make_wav):
    # a close pair and a zone across a doorway: both would raise the dwell
    walls = [((0, 10), (9, 10)), ((11, 10), (20, 10))]
    exhibits = [("door", 10, 8, 3), ("a", 3, 3, 1.5), ("b", 6, 3, 1.5)]
    top = SETTINGS["dwell"].metadata["max"]
    for dwell, raised in ((top - 1, [top]), (top, [])):
        zones = write_site(tmp_path / str(dwell), make_wav, exhibits, walls=walls,
                           trigger={"dwell": dwell, "dwell_again": top})
        found = [f.kind for f in lint_site(load_zones(zones)).findings]
        assert {"doorway", "indistinct"} <= set(found)
        values = [float(v) for f in lint_site(load_zones(zones)).findings for s in f.suggestions
                  for v in re.findall(r"raise the dwell for \S+ to ([\d.]+) s", s)]
        assert sorted(set(values)) == raised


def test_a_raised_dwell_raises_a_dwell_again_it_would_pass_so_the_fix_makes_no_new_finding(
        tmp_path, make_wav):
    # a close pair and a zone across a doorway, the site's dwell 7 s, dwell_again the default 8 s
    walls = [((0, 10), (9, 10)), ((11, 10), (20, 10))]
    exhibits = [("door", 10, 8, 3), ("a", 3, 3, 1.5), ("b", 6, 3, 1.5)]
    zones = write_site(tmp_path / "before", make_wav, exhibits, walls=walls, trigger={"dwell": 7})
    raised = [m for f in lint_site(load_zones(zones)).findings for s in f.suggestions
              for m in re.findall(r"raise the dwell for (\S+) to 9 s \(now 7 s\)( and its dwell_again "
                                  r"to 9 s \(now 8 s\))?", s)]
    assert {e for e, _ in raised} >= {"door"} and len({e for e, _ in raised}) == 2, raised
    assert all(again for _, again in raised), raised
    # doing as told: the exhibits raised get both values, no 'setting' finding appears,
    # and the dwell is not asked for again (the radio confuses them as before)
    own = {e: {"dwell": 9, "dwell_again": 9} for e, _ in raised}
    after = lint_site(load_zones(write_site(tmp_path / "after", make_wav, exhibits, walls=walls,
                                            trigger={"dwell": 7}, triggers=own)))
    assert {"doorway", "indistinct"} <= {f.kind for f in after.findings}
    assert not [f for f in after.findings if f.kind == "setting"]
    assert not [s for f in after.findings for s in f.suggestions if "raise the dwell for" in s]
    # with room under the dwell_again, only the dwell is named
    zones = write_site(tmp_path / "low", make_wav, exhibits, walls=walls)
    texts = [s for f in lint_site(load_zones(zones)).findings for s in f.suggestions if "dwell" in s]
    assert texts and not any("dwell_again" in t for t in texts), texts


def test_a_zone_far_larger_than_the_spacing_is_told_to_shrink_not_its_neighbours(tmp_path, make_wav):
    exhibits = [("big", 0, 0, 100), ("near", 7, 0, 2.5), ("far", 30, 0, 2.5)]
    report = lint_site(load_zones(write_site(tmp_path, make_wav, exhibits)))
    overlaps = [f for f in report.findings if f.kind == "overlap"]
    assert [f.exhibits for f in overlaps] == [("big", "far"), ("big", "near")]
    for f in overlaps:  # one radius, clear of both neighbours, in each finding
        assert f.suggestions[0].startswith("shrink the radius of big to 4.25 m (now 100 m)")
        assert not any("move the beacons apart" in s for s in f.suggestions)
    exhibits[0] = ("big", 0, 0, 4.25)
    fixed = lint_site(load_zones(write_site(tmp_path / "fixed", make_wav, exhibits)))
    assert not [f for f in fixed.findings if f.kind == "overlap"]


def test_a_margin_no_spacing_can_give_is_named_as_the_fix(tmp_path, make_wav):
    # 8 m apart is plenty at the usual margin; no spacing gives the radio a 40 dB lead
    pair = [("a", 0, 0, 1.5), ("b", 8, 0, 1.5)]
    zones = write_site(tmp_path, make_wav, pair, trigger={"margin": 40})
    (f,) = [f for f in lint_site(load_zones(zones)).findings if f.kind == "indistinct"]
    first = f.suggestions[0]
    assert first.startswith("lower the site's margin to ") and "now 40 dB" in first
    assert not any("any practical distance" in s or "merge" in s or "raise the dwell" in s
                   for s in f.suggestions)
    margin = float(re.search(r"\{margin: ([\d.]+)\}", first).group(1))
    bounds = SETTINGS["margin"].metadata
    assert bounds["min"] <= margin < 40 and margin <= bounds["max"]
    lowered = write_site(tmp_path / "lowered", make_wav, pair, trigger={"margin": margin})
    assert not [f for f in lint_site(load_zones(lowered)).findings if f.kind == "indistinct"]
    # too close even at the usual margin: lower it and move them apart
    close = write_site(tmp_path / "close", make_wav, [("a", 0, 0, 1.5), ("b", 3, 0, 1.5)],
                       trigger={"margin": 40})
    (f,) = [f for f in lint_site(load_zones(close)).findings if f.kind == "indistinct"]
    assert re.match(r"lower the site's margin to [\d.]+ dB .*beacons about \d+ m apart would",
                    f.suggestions[0])


def test_a_dwell_again_below_the_dwell_is_flagged_for_the_site_and_for_an_exhibit(tmp_path, make_wav):
    grid = [("e1", 0, 0, 2), ("e2", 15, 0, 2), ("e3", 30, 0, 2), ("e4", 45, 0, 2)]
    own = {"e2": {"dwell": 10}, "e3": {"dwell_again": 9}, "e4": {"dwell": 10, "dwell_again": 12}}
    zones = write_site(tmp_path, make_wav, grid, trigger={"dwell": 6, "dwell_again": 4}, triggers=own)
    found = [f for f in lint_site(load_zones(zones)).findings if f.kind == "setting"]
    assert [f.exhibits for f in found] == [(), ("e2",)]
    assert all(f.severity == "warning" for f in found)
    assert "raise the dwell_again of the site to 6 s" in found[0].suggestions[0]
    assert "raise the dwell_again of e2 to 10 s" in found[1].suggestions[0]
    own["e2"]["dwell_again"] = 10
    fixed = write_site(tmp_path / "fixed", make_wav, grid, trigger={"dwell": 6, "dwell_again": 6},
                       triggers=own)
    assert lint_site(load_zones(fixed)).findings == ()


def test_lint_flags_the_demo_sites_close_clusters(shared_dir):
    from pathlib import Path

    demo = lint_site(load_zones(Path(__file__).resolve().parents[1] / "zones.yaml"))
    clusters = {frozenset(c) for c in demo.clusters}
    assert {frozenset({"v1", "v2-rocket", "v2-engine"}), frozenset({"occupation", "daily-life"}),
            frozenset({"space-race", "planetarium"})} == clusters
    gallery = lint_site(load_zones(shared_dir / "data/gallery-sample/zones.yaml"))
    assert [set(c) for c in gallery.clusters] == [{"coin-1", "coin-2", "coin-3"}]


def test_json_lists_findings_with_where_to_mark_them_and_exits_1(tmp_path, make_wav, capsys):
    zones = write_site(tmp_path, make_wav, [("a", 0, 0, 2), ("b", 3, 0, 2)])
    assert main(["lint", "--zones", str(zones), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["clusters"] == [["a", "b"]]
    assert {f["kind"] for f in data["findings"]} == {"overlap", "indistinct"}
    assert all(len(f["at"]) == 2 and f["suggestions"] for f in data["findings"])
    smoothing = load_zones(zones).trigger.smoothing
    assert math.isclose(data["noise_db"]["lead"], noise_of(RadioModel.museum(), smoothing).lead,
                        abs_tol=0.01)


def test_many_findings_print_ten_of_each_kind_and_say_how_many_more_all_and_json_list_every_one(
        tmp_path, make_wav, capsys):
    row = [(f"e{i}", 1.5 * i, 0, 1.0) for i in range(16)]  # 15 overlapping neighbours, and more
    zones = write_site(tmp_path, make_wav, row)
    report = lint_site(load_zones(zones))
    overlaps = [f for f in report.findings if f.kind == "overlap"]
    assert len(overlaps) == 15
    assert main(["lint", "--zones", str(zones)]) == 1
    out = capsys.readouterr().out
    section = out[out.index("Zones that overlap:"):].split("\n\n")[0]
    assert section.count("their zones overlap") == 10
    assert "  ... and 5 more of this kind (guide lint --all lists them all, --json too)" in section
    assert f"{len(report.findings)} findings." in out  # the count is of them all
    assert main(["lint", "--zones", str(zones), "--all"]) == 1
    out = capsys.readouterr().out
    assert out.count("their zones overlap") == 15 and "more of this kind" not in out
    assert main(["lint", "--zones", str(zones), "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["findings"]) == len(report.findings)


def test_lint_asks_the_radio_model_once_per_exhibit_spots_not_once_per_point(tmp_path, make_wav, monkeypatch):
    """A dense site of 200 exhibits took minutes (guide map too): every standing
    spot of every pair, and of each spacing tried, was a call of the radio model."""
    import guide.radio as radio
    from guide.lint import lint_site
    from guide.zones import load_zones

    beacons, exhibits = [], []
    for i in range(4):
        beacons.append(f"  b{i}:\n    ibeacon: {{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, "
                       f"minor: {i + 1}}}\n    tx_power: -59\n    x: {0.5 * i}\n    y: 0")
        exhibits.append(f"  - id: e{i}\n    title: {{en: E{i}}}\n    beacon: b{i}\n    radius: 1\n"
                        f"    tracks: {{en: en/e{i}.wav}}")
        make_wav(tmp_path / "tracks" / "en" / f"e{i}.wav", 0.5)
    (tmp_path / "zones.yaml").write_text("site: Dense\nlanguages: [en]\nbeacons:\n" + "\n".join(beacons)
                                         + "\nexhibits:\n" + "\n".join(exhibits) + "\n")
    site = load_zones(tmp_path / "zones.yaml")
    calls = []
    real = radio._path_level
    monkeypatch.setattr(radio, "_path_level", lambda *a: calls.append(len(a[3])) or real(*a))
    report = lint_site(site)
    assert {f.kind for f in report.findings} >= {"indistinct", "overlap"}
    # 6 pairs, each tried at up to 24 spacings, 17 spots each: per point it was thousands of calls
    assert len(calls) < 2 * 6 * 2 * 25 + 100 and max(calls) == 17, (len(calls), sum(calls))
