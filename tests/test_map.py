"""`guide map`: a picture of the site staff can look at instead of reading:
valid PNG and SVG files with the beacons, zones, findings and a walk in them."""

from __future__ import annotations

import math
import re
import struct
import xml.etree.ElementTree as ET

import pytest

from guide.cli import main
from guide.lint import lint_site
from guide.metrics import TruthRow
from guide.sitemap import (BEACON_COLOUR, LABEL_CHARS, MAX_LISTED, RING_PX, close_groups, draw_map,
                           false_starts, lens, pixel_of, save_map, walk_from_positions)
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def zones(tmp_path, make_wav):
    for e in ("a", "b", "far"):
        make_wav(tmp_path / "tracks/fr" / f"{e}.wav", 5.0, rate=100)
    path = tmp_path / "zones.yaml"
    path.write_text(f"""\
site: Map test
languages: [fr]
walls:
  - [[-3, -3], [30, -3]]
  - [[30, -3], [30, 6]]
beacons:
  b-a: {{ibeacon: {{uuid: {UUID}, major: 5, minor: 1}}, tx_power: -59, x: 0, y: 0}}
  b-b: {{ibeacon: {{uuid: {UUID}, major: 5, minor: 2}}, tx_power: -59, x: 3, y: 0}}
  b-far: {{ibeacon: {{uuid: {UUID}, major: 5, minor: 3}}, tx_power: -59, x: 25, y: 0}}
exhibits:
  - {{id: a, title: {{fr: A}}, beacon: b-a, radius: 2, tracks: {{fr: fr/a.wav}}}}
  - {{id: b, title: {{fr: B}}, beacon: b-b, radius: 2, tracks: {{fr: fr/b.wav}}}}
  - {{id: far, title: {{fr: F}}, beacon: b-far, radius: 2, tracks: {{fr: fr/far.wav}}}}
""")
    return path


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_a_png_map_has_the_figures_size_and_beacons_where_they_stand(zones, tmp_path):
    import matplotlib.image

    site = load_zones(zones)
    fig = draw_map(site, lint=lint_site(site))
    out = save_map(fig, tmp_path / "map.png")
    w, h = png_size(out)
    assert (w, h) == (round(fig.get_figwidth() * 100), round(fig.get_figheight() * 100))
    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (h, w)
    want = tuple(int(BEACON_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5))
    col, row = pixel_of(fig, 0, 25, 0)  # b-far: no finding drawn over it
    assert pixels[row, col][:3] == pytest.approx(want, abs=0.02)
    assert tuple(pixels[2, 2][:3]) == (1.0, 1.0, 1.0)  # the corner is background


def test_an_svg_map_names_every_beacon_zone_overlap_wall_and_finding(zones, tmp_path, capsys):
    out = tmp_path / "map.svg"
    assert main(["map", "--zones", str(zones), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    ids = {el.get("id") for el in ET.parse(out).iter() if el.get("id")}
    assert {"beacon-b-a", "beacon-b-b", "beacon-b-far", "zone-a", "zone-b", "zone-far",
            "overlap-a_b", "wall-0", "wall-1"} <= ids
    assert {"finding-1", "finding-2"} <= ids and "finding-3" not in ids  # overlap + indistinct a/b
    assert "overlap-a_far" not in ids
    assert not {i for i in ids if i.startswith("panel")}  # 3 m apart on a 37 m plan: readable as is


def test_exhibits_too_close_to_read_are_boxed_and_drawn_enlarged_under_the_plan(zones, tmp_path):
    text = zones.read_text().replace("x: 3, y: 0}", "x: 1.5, y: 0}").replace("x: 25, y: 0}", "x: 120, y: 0}")
    zones.write_text(text)  # a and b 1.5 m apart on a 120 m plan: a few pixels
    site = load_zones(zones)
    lint = lint_site(site)
    events = [{"visitor": "v1", "t": 2.0, "event": "start", "exhibit": "a", "lang": "fr", "track": "fr/a.wav"}]
    walk = walk_from_positions(site, "v1", [("v1", t, t * 0.5, 0.5) for t in range(0, 10)], events)
    fig = draw_map(site, lint=lint, walk=walk)
    save_map(fig, tmp_path / "map.svg")
    ids = {el.get("id") for el in ET.parse(tmp_path / "map.svg").iter() if el.get("id")}
    assert {"panel-box-A", "panel-A", "A-zone-a", "A-zone-b", "A-overlap-a_b", "A-beacon-b-a"} <= ids
    assert {"walk", "start-1", "A-walk", "A-start-1"} <= ids  # the walk on the plan and in the panel
    assert "panel-B" not in ids and "zone-far" in ids  # far stands alone
    # a and b's findings are numbered as under the plan, and drawn in the panel only
    near = [n for n, f in enumerate(lint.findings, 1) if f.at[0] < 10]
    assert near and all(f"A-finding-{n}" in ids and f"finding-{n}" not in ids for n in near)
    assert fig.axes[1].get_title(loc="left").startswith("A: a, b (")
    panel = fig.axes[1]  # to scale: the panel's metre is many times the plan's
    assert panel.get_xlim()[1] - panel.get_xlim()[0] < 10 < fig.axes[0].get_xlim()[1] - fig.axes[0].get_xlim()[0]


def test_a_walk_shows_where_tracks_started_and_highlights_false_starts(zones, tmp_path):
    site = load_zones(zones)
    positions = [("v1", t / 2, min(t / 2, 10) * 2.5, 0.0) for t in range(0, 41)]
    events = [
        {"visitor": "v1", "t": 1.0, "event": "start", "exhibit": "a", "lang": "fr", "track": "fr/a.wav"},
        {"visitor": "v1", "t": 6.0, "event": "end", "exhibit": "a", "reason": "finished"},
        {"visitor": "v1", "t": 8.0, "event": "start", "exhibit": "far", "lang": "fr", "track": "fr/far.wav"},
    ]
    truth = [TruthRow(visitor="v1", start=0, end=6, exhibit="a", intent="listen")]
    walk = walk_from_positions(site, "v1", positions, events, truth)
    assert [(m.exhibit, m.false_start) for m in walk.starts] == [("a", False), ("far", True)]
    assert walk.starts[1].x == pytest.approx(20.0) and walk.ends[0].x == pytest.approx(15.0)
    save_map(draw_map(site, walk=walk), tmp_path / "walk.svg")
    ids = {el.get("id") for el in ET.parse(tmp_path / "walk.svg").iter() if el.get("id")}
    assert {"walk", "start-1", "false-start-2", "end-1"} <= ids


def test_the_map_command_draws_a_visitors_walk_from_walks_and_truth(zones, tmp_path, capsys):
    walks = tmp_path / "walks.csv"
    walks.write_text("visitor,t,x,y\n" + "".join(f"v1,{t / 2},{min(t / 2, 30) * 0.8:.2f},0.5\n"
                                                  for t in range(0, 121)))
    truth = tmp_path / "truth.csv"
    truth.write_text("visitor,start,end,exhibit,intent\nv1,0,60,far,listen\n")
    out = tmp_path / "v1.png"
    assert main(["map", "--zones", str(zones), "--walks", str(walks), "--truth", str(truth),
                 "--visitor", "v1", "--out", str(out)]) == 0
    assert "v1's walk" in capsys.readouterr().out
    assert png_size(out)[0] == 1200
    # an interleaved walk is drawn (only v1's rows are read); a truth without v1 is refused
    walks.write_text("visitor,t,x,y\nv1,0,0,0.5\nv2,0,5,5\nv1,10,8,0.5\n")
    truth.write_text("visitor,start,end,exhibit,intent\nv2,0,60,far,listen\n")
    assert main(["map", "--zones", str(zones), "--walks", str(walks), "--visitor", "v1",
                 "--out", str(out)]) == 0
    assert main(["map", "--zones", str(zones), "--walks", str(walks), "--truth", str(truth),
                 "--visitor", "v1", "--out", str(out)]) == 2
    assert "--visitor v1: no rows of that visitor in" in capsys.readouterr().err
    assert main(["map", "--zones", str(zones), "--seed", "3", "--out", str(out)]) == 2
    assert "--seed is the radio model's, for --walks" in capsys.readouterr().err


def test_one_exhibit_and_one_track_started_are_counted_in_the_singular(zones, tmp_path, capsys):
    zones.write_text(zones.read_text().split("  - {id: a,")[0]
                     + "  - {id: far, title: {fr: F}, beacon: b-far, radius: 2, tracks: {fr: fr/far.wav}}\n")
    scans = tmp_path / "scans.csv"
    scans.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{t / 2},b-far,-50\n" for t in range(60)))
    truth = tmp_path / "truth.csv"
    truth.write_text("visitor,start,end,exhibit,intent\nv1,0,30,far,listen\n")
    assert main(["map", "--zones", str(zones), "--scans", str(scans), "--truth", str(truth),
                 "--visitor", "v1", "--out", str(tmp_path / "m.png")]) == 0
    assert "(1 exhibit; 0 lint findings; v1's walk: 1 track started, 0 false)" in capsys.readouterr().out


def test_characters_the_font_lacks_are_named_in_one_line_not_a_library_warning(zones, tmp_path, capfd):
    zones.write_text(zones.read_text().replace("site: Map test", "site: '東京 Map test'"))
    assert main(["map", "--zones", str(zones), "--out", str(tmp_path / "m.png"), "--no-lint"]) == 0
    err = capfd.readouterr().err
    assert "guide map: the font lacks 京東 (2 characters of the site's text): drawn as boxes" in err
    assert "UserWarning" not in err


@pytest.mark.parametrize("name", [r"Hall $\frac{ $ A", "Tickets $5 or $10"])
def test_dollar_signs_in_the_site_and_walk_are_drawn_as_written_not_as_formulas(zones, tmp_path, name):
    zones.write_text(zones.read_text().replace("site: Map test", "site: '" + name + "'"))
    site = load_zones(zones)
    assert site.name == name
    walk = walk_from_positions(site, "v$1", [("v$1", t, t * 0.5, 0.5) for t in range(0, 10)], [])
    out = tmp_path / "map.svg"
    save_map(draw_map(site, lint=lint_site(site), walk=walk), out)
    svg = out.read_text()
    for text in (name, "v$1: 0 tracks started"):
        start = svg.index(f"<!-- {text} -->")  # one text each, drawn glyph by glyph:
        assert svg[start:svg.index("</g>", start)].count("<use ") == len(text)  # `$` too
    assert main(["map", "--zones", str(zones), "--out", str(tmp_path / "map.png")]) == 0


def test_the_key_names_the_exhibits_dots_and_the_findings_rings(zones):
    zones.write_text(zones.read_text().replace("radius: 2, tracks: {fr: fr/a.wav}",
                                               "radius: 2, x: 0, y: 1, tracks: {fr: fr/a.wav}"))
    site = load_zones(zones)
    fig = draw_map(site, lint=lint_site(site))
    assert [line.get_gid() for line in fig.axes[0].lines if line.get_marker() == "o"][:1] == ["spot-a"]
    key = " ".join(t.get_text() for t in fig.texts)
    assert "blue dot = where visitors stand at an exhibit" in key and "red ring n = finding n" in key
    assert "red ring" not in " ".join(t.get_text() for t in draw_map(site).texts)  # none drawn


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_a_map_that_fails_to_draw_leaves_the_existing_file_as_it_was(zones, tmp_path, suffix):
    out = tmp_path / f"map{suffix}"
    out.write_bytes(b"the good old map")
    fig = draw_map(load_zones(zones))
    fig.text(0.5, 0.5, r"$\frac{$")  # a formula matplotlib cannot parse: fails while saving
    with pytest.raises(ValueError):
        save_map(fig, out)
    assert out.read_bytes() == b"the good old map"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["map" + suffix, "zones.yaml", "tracks"])


def test_a_map_behind_a_link_is_drawn_where_the_link_points(zones, tmp_path):
    target = tmp_path / "maps" / "site.svg"
    target.parent.mkdir()
    target.write_text("<?xml version='1.0'?><svg/>")  # an older map
    link = tmp_path / "latest.svg"
    link.symlink_to(target)
    assert main(["map", "--zones", str(zones), "--out", str(link), "--no-lint"]) == 0
    assert link.is_symlink() and target.read_text().startswith("<?xml")


def test_false_starts_are_counted_as_the_metrics_count_them():
    events = [
        {"visitor": "v", "t": 0.0, "event": "start", "exhibit": "a", "track": "a"},
        {"visitor": "v", "t": 3.0, "event": "end", "exhibit": "a", "reason": "abandoned"},
        {"visitor": "v", "t": 4.0, "event": "start", "exhibit": "a", "track": "a"},
        {"visitor": "v", "t": 50.0, "event": "end", "exhibit": "a", "reason": "finished"},
        {"visitor": "v", "t": 60.0, "event": "start", "exhibit": "b", "track": "b"},
    ]
    truth = [TruthRow(visitor="v", start=2, end=40, exhibit="a", intent="listen")]
    flags = false_starts(truth, events, durations={"a": 46.0, "b": 10.0}, walk_end={"v": 70.0})
    assert flags == [False, True, True]  # a second start of a in one row, b wanted by nobody


def test_bad_map_requests_are_clear_errors(zones, tmp_path, capsys):
    assert main(["map", "--zones", str(zones), "--out", str(tmp_path / "map.jpg")]) == 2
    assert "ending in .png or .svg" in capsys.readouterr().err
    assert main(["map", "--zones", str(zones), "--out", str(tmp_path / "m.png"),
                 "--scans", "scans.csv"]) == 2
    assert "--visitor" in capsys.readouterr().err
    assert main(["map", "--zones", str(zones), "--out", str(tmp_path / "m.png"), "--visitor", "v1"]) == 2
    assert "give --scans or --walks" in capsys.readouterr().err


def test_close_groups_chain_neighbours_and_reach_further_for_exhibits_the_radio_confuses(zones):
    site = load_zones(zones)  # a, b 3 m apart; far 22 m from b
    assert close_groups(site, 2.9) == []
    assert close_groups(site, 3.1) == [("a", "b")]
    assert close_groups(site, 2.0, clusters=[("a", "b")], cluster_metres=3.1) == [("a", "b")]
    assert close_groups(site, 2.0, clusters=[("a", "far")], cluster_metres=3.1) == []
    assert close_groups(site, 22.1) == [("a", "b", "far")]  # far is near b only: chained


def test_the_overlap_of_two_zones_is_the_lens_inside_both():
    pts = lens((0, 0, 2), (3, 0, 2))
    assert pts and all(math.hypot(x, y) <= 2 + 1e-9 and math.hypot(x - 3, y) <= 2 + 1e-9 for x, y in pts)
    assert min(x for x, _ in pts) == pytest.approx(1.0) and max(x for x, _ in pts) == pytest.approx(2.0)
    assert lens((0, 0, 1), (3, 0, 1)) == []
    assert len(lens((0, 0, 3), (0.5, 0, 1))) == 24  # one inside the other: the smaller circle


def _start_mark(svg_path):
    """Where the walk's first start is drawn: the (x, y) of its marker in the SVG."""
    for el in ET.parse(svg_path).iter():
        if el.get("id") == "start-1":
            use = next(u for u in el.iter() if u.tag == f"{SVG}use")
            return float(use.get("x")), float(use.get("y"))
    raise AssertionError("no start drawn")


def test_the_walk_is_simulated_at_the_rate_asked_as_simulate_py_does(zones, tmp_path, capsys):
    walks = tmp_path / "walks.csv"  # towards far at 0.5 m/s: arrives while walking on
    walks.write_text("visitor,t,x,y\n" + "".join(f"v1,{t},{min(18 + t * 0.5, 30):.2f},0.5\n"
                                                  for t in range(0, 61)))
    marks = {}
    for rate in (None, "10", "1"):
        out = tmp_path / f"v1-{rate}.svg"
        assert main(["map", "--zones", str(zones), "--walks", str(walks), "--visitor", "v1",
                     "--no-lint", "--out", str(out)] + (["--rate", rate] if rate else [])) == 0
        marks[rate] = _start_mark(out)
    assert marks["10"] == marks[None]  # the radio model's rate is 10 Hz
    assert marks["1"] != marks[None]  # at 1 Hz the engine hears far later: started further on
    for bad in ("0", "nan", "fast"):
        assert main(["map", "--zones", str(zones), "--walks", str(walks), "--visitor", "v1",
                     "--rate", bad, "--out", str(tmp_path / "m.png")]) == 2
        assert "argument --rate: " in capsys.readouterr().err
    assert main(["map", "--zones", str(zones), "--rate", "1", "--out", str(tmp_path / "m.png")]) == 2
    assert "--rate is the radio model's, for --walks" in capsys.readouterr().err


def test_every_track_the_walk_cannot_play_is_named_at_once(zones, tmp_path, capsys):
    for e in ("a", "far"):
        (tmp_path / "tracks/fr" / f"{e}.wav").write_bytes(b"not a wav")
    walks = tmp_path / "walks.csv"
    walks.write_text("visitor,t,x,y\nv1,0,0,0.5\nv1,30,25,0.5\n")
    out = tmp_path / "v1.png"
    assert main(["map", "--zones", str(zones), "--walks", str(walks), "--visitor", "v1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "2 tracks the replay would start cannot be played" in err
    assert "fr/a.wav (a, fr)" in err and "fr/far.wav (far, fr)" in err and "Traceback" not in err
    assert not out.exists()


def _row(tmp_path, make_wav, points, radius=1, name="Row", beacon_ids=None):
    """zones.yaml with one exhibit e<k> at each (x, y) of `points`, its
    beacon b<k> (or the k-th of `beacon_ids`)."""
    ids = beacon_ids or [f"b{k}" for k in range(len(points))]
    lines = [f"site: {name}", "languages: [fr]", "beacons:"]
    lines += [f"  '{bid}': {{ibeacon: {{uuid: {UUID}, major: 6, minor: {k + 1}}}, tx_power: -59, "
              f"x: {x}, y: {y}}}" for k, (bid, (x, y)) in enumerate(zip(ids, points))]
    lines.append("exhibits:")
    for k, bid in enumerate(ids):
        make_wav(tmp_path / "tracks/fr" / f"e{k}.wav", 0.1, rate=100)
        lines.append(f"  - {{id: e{k}, title: {{fr: E}}, beacon: '{bid}', radius: {radius}, "
                     f"tracks: {{fr: fr/e{k}.wav}}}}")
    path = tmp_path / "zones.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_plan_with_many_findings_marks_the_first_and_says_how_many_more_at_a_viewable_size(tmp_path, make_wav):
    zones = _row(tmp_path, make_wav, [(1.5 * k, 0) for k in range(60)])
    site = load_zones(zones)
    lint = lint_site(site)
    assert len(lint.findings) > 2 * MAX_LISTED
    out = tmp_path / "map.svg"
    assert main(["map", "--zones", str(zones), "--out", str(out)]) == 0
    ids = {el.get("id") for el in ET.parse(out).iter() if el.get("id")}
    marked = {int(i.rsplit("-", 1)[1]) for i in ids if re.fullmatch(r"([A-Z]-)?finding-\d+", i)}
    assert marked == set(range(1, MAX_LISTED + 1))  # the first (most serious), each once
    more = len(lint.findings) - MAX_LISTED
    fig = draw_map(site, lint=lint)
    notes = " ".join(t.get_text() for t in fig.texts)
    assert f"... and {more} more findings, not marked: guide lint --zones {zones}" in notes
    assert notes.rstrip().endswith("--all lists them all")
    assert fig.get_figheight() < 25  # inches: it grew by a line or two per finding


@pytest.mark.parametrize("points, radius", [([(5, 5), (5, 5)], 3), ([(0, 0), (0.002, 0)], 0.001)])
def test_exhibits_at_one_spot_get_one_readable_label_and_no_panel_smaller_than_the_plan(
        tmp_path, make_wav, points, radius):
    site = load_zones(_row(tmp_path, make_wav, points, radius=radius))
    fig = draw_map(site, lint=lint_site(site))
    assert len(fig.axes) == 1  # a panel would have shown them smaller than the plan does
    ax = fig.axes[0]
    labels = [t for t in ax.texts if "e0" in t.get_text()]
    assert [t.get_text() for t in labels] == ["e0, e1"]
    box = labels[0].get_window_extent(fig.canvas.get_renderer())
    rings = [line for line in ax.lines if (line.get_gid() or "").startswith("finding-")]
    assert rings
    for ring in rings:  # no numbered mark sits on the label
        x, y = ax.transData.transform(ring.get_xydata()[0])
        assert not (box.x0 - RING_PX / 2 < x < box.x1 + RING_PX / 2
                    and box.y0 - RING_PX / 2 < y < box.y1 + RING_PX / 2)


def test_long_ids_and_site_names_are_cut_with_an_ellipsis(zones, tmp_path):
    long_id, long_site = "x" * 120, "N" * 200
    text = zones.read_text().replace("id: far,", f"id: {long_id},").replace("Map test", long_site)
    zones.write_text(text)
    fig = draw_map(load_zones(zones))
    label = next(t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("xxx"))
    assert label == "x" * (LABEL_CHARS - 1) + "\u2026"
    title = fig._suptitle.get_text()
    assert title.endswith("\u2026") and len(title) < 100
    out = save_map(fig, tmp_path / "m.png")
    assert png_size(out)[0] == 1200


def test_an_unknown_visitor_or_language_is_refused_with_the_nearest_one_and_no_picture(zones, tmp_path, capsys):
    walks = tmp_path / "walks.csv"
    walks.write_text("visitor,t,x,y\nv001,0,0,0.5\nv002,0,5,5\nv001,10,8,0.5\n")
    scans = tmp_path / "scans.csv"
    scans.write_text("visitor,t,beacon,rssi\nv001,0,b-a,-60\nv002,1,b-b,-62\n")
    out = tmp_path / "m.svg"
    for source, path in (("--walks", walks), ("--scans", scans)):
        assert main(["map", "--zones", str(zones), source, str(path), "--visitor", "V001",
                     "--out", str(out), "--no-lint"]) == 2
        assert (f"--visitor V001: not one of the visitors of {path}; did you mean v001? give one of "
                "v001, v002") in capsys.readouterr().err
    assert main(["map", "--zones", str(zones), "--lang", "French", "--out", str(out), "--no-lint"]) == 2
    assert (f"--lang French: not one of the languages {zones} offers; did you mean fr? give one of fr"
            in capsys.readouterr().err)
    assert main(["map", "--zones", str(zones), "--out", "", "--no-lint"]) == 2
    assert "--out '': give a file name ending in .png or .svg" in capsys.readouterr().err
    assert not out.exists()


def _spaced(tmp_path, make_wav):
    """Three exhibits with long names 2.5 m apart, the middle one a little
    higher and a wall over the first, on a 40 m plan: written up-right of its
    spot, each label would lie on the next beacon, the next label or the wall."""
    lines = ["site: Labels", "languages: [fr]", "walls:", "  - [[-1, 0.5], [1.5, 0.5]]", "beacons:"]
    points = {"cannon-of-the-west-wing": (0, 0), "cannon-of-the-east-wing": (2.5, 0.4),
              "the-last-cannon": (5, 0), "far": (40, 10)}
    for k, (x, y) in enumerate(points.values()):
        lines.append(f"  b{k}: {{ibeacon: {{uuid: {UUID}, major: 7, minor: {k + 1}}}, tx_power: -59, "
                     f"x: {x}, y: {y}}}")
    lines.append("exhibits:")
    for k, e in enumerate(points):
        make_wav(tmp_path / "tracks/fr" / f"{e}.wav", 0.1, rate=100)
        lines.append(f"  - {{id: {e}, title: {{fr: E}}, beacon: b{k}, radius: 0.5, tracks: {{fr: fr/{e}.wav}}}}")
    path = tmp_path / "zones.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_exhibit_labels_keep_off_each_other_the_beacons_the_walls_and_the_edge(tmp_path, make_wav):
    from matplotlib.transforms import Bbox

    site = load_zones(_spaced(tmp_path, make_wav))
    fig = draw_map(site)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    labels = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert set(labels) == {e.id for e in site.exhibits}
    marks = [line.get_window_extent(renderer) for line in ax.lines
             if (line.get_gid() or "").startswith(("beacon-", "spot-"))]
    assert len(marks) == 4
    def overlap(a, b):
        both = Bbox.intersection(a, b)
        return both is not None and both.width * both.height > 0

    boxes = list(labels.values())
    for k, box in enumerate(boxes):
        assert not any(overlap(box, b) for b in boxes[k + 1:] + marks)
        assert ax.bbox.x0 <= box.x0 and box.x1 <= ax.bbox.x1  # inside the plot
        assert ax.bbox.y0 <= box.y0 and box.y1 <= ax.bbox.y1
    (wx0, wy0), (wx1, wy1) = ax.transData.transform([(-1, 0.5), (1.5, 0.5)])
    west = labels["cannon-of-the-west-wing"]  # the wall runs level: not through the label
    assert not (west.y0 < wy0 < west.y1 and west.x0 < wx1 and wx0 < west.x1)
    far = next(t for t in ax.texts if t.get_text() == "far")  # nothing near: where it always stood
    assert far.xyann == (5, 5) and far.get_horizontalalignment() == "left"


def test_beacon_ids_with_spaces_or_signs_give_valid_unique_svg_ids_and_plain_ones_keep_theirs(
        tmp_path, make_wav):
    # FORMATS.md lets a beacon's id be any short text: here two that differ only in
    # a space and an underscore, and signs an XML id cannot hold
    beacons = {"B Dome": (0, 0), "B_Dome": (0.2, 0), "salle 2/3 <est>": (9, 0), "b-ok": (40, 0)}
    zones = _row(tmp_path, make_wav, list(beacons.values()), name="Ids", beacon_ids=list(beacons))
    out = tmp_path / "map.svg"
    assert main(["map", "--zones", str(zones), "--out", str(out)]) == 0
    ids = [el.get("id") for el in ET.parse(out).iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", i)] == []
    beacon_ids = [i for i in ids if i.startswith("beacon-")]
    assert len(beacon_ids) == 4  # the plain ones as they are, the others with '_' for each sign
    assert {"beacon-B_Dome", "beacon-b-ok", "beacon-salle_2_3__est_"} <= set(beacon_ids)
    assert "A-beacon-B_Dome" in ids and len([i for i in ids if i.startswith("A-beacon-B_Dome")]) == 2  # panel


def test_each_overlap_has_its_own_svg_id_whatever_the_exhibit_ids(zones, tmp_path):
    # "a" with "b-c" and "a-b" with "c": joined by "-" both were overlap-a-b-c
    text = zones.read_text().replace("x: 25, y: 0}", "x: 25, y: 0}\n  b-d: {ibeacon: {uuid: %s, "
                                     "major: 5, minor: 4}, tx_power: -59, x: 27, y: 0}" % UUID)
    text = text.replace("id: b,", "id: b-c,").replace("id: far,", "id: a-b,")
    text += "  - {id: c, title: {fr: C}, beacon: b-d, radius: 2, tracks: {fr: fr/b.wav}}\n"
    zones.write_text(text)
    out = tmp_path / "map.svg"
    save_map(draw_map(load_zones(zones)), out)
    ids = [el.get("id") for el in ET.parse(out).iter() if (el.get("id") or "").startswith("overlap-")]
    assert sorted(ids) == ["overlap-a-b_c", "overlap-a_b-c"]


def test_a_finding_ring_keeps_off_the_beacon_it_would_hide(zones):
    # a ring at a finding's spot covered a beacon standing there (a ring is
    # bigger than a beacon's square): it is fanned out, with a leader line
    from types import SimpleNamespace

    from matplotlib.transforms import Bbox

    from guide.sitemap import _draw_findings

    fig = draw_map(load_zones(zones))
    ax = fig.axes[0]
    _draw_findings(ax, [(1, SimpleNamespace(at=(0.0, 0.0)))])  # where beacon b-a stands
    renderer = fig.canvas.get_renderer()
    extent = {line.get_gid(): line.get_window_extent(renderer) for line in ax.lines if line.get_gid()}
    both = Bbox.intersection(extent["finding-1"], extent["beacon-b-a"])
    assert both is None or both.width * both.height == 0
