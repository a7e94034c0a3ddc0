"""`guide lint`: layout problems found from the plan and the radio model,
each with a concrete fix; silence on a well-spaced site."""

from __future__ import annotations

import json
import math

import pytest

from guide.cli import main
from guide.lint import lint_site, noise_of
from guide.radio import RadioModel
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def write_site(tmp_path, make_wav, exhibits, *, walls=(), trigger=None):
    """exhibits: [(id, beacon x, beacon y, radius)] or with a 5th item, the
    standing spot (x, y) -> zones.yaml path."""
    lines = ["site: Lint test", "languages: [fr]"]
    if trigger:
        lines.append("trigger: {" + ", ".join(f"{k}: {v}" for k, v in trigger.items()) + "}")
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
        lines.append(f"  - {{id: {e}, title: {{fr: {e}}}, beacon: b-{e}, radius: {r}{where}, "
                     f"tracks: {{fr: fr/{e}.wav}}}}")
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
