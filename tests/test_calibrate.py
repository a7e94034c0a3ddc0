"""`guide calibrate`: per-exhibit level and margin from staff standing at
each exhibit, written into zones.yaml without disturbing anything else."""

from __future__ import annotations

import json
import math
import re

import pytest

from guide import tracks
from guide.calibrate import calibrate, format_result, measure, record
from guide.cli import main
from guide.metrics import TruthRow, score
from guide.radio import wall_crossings
from guide.replay import replay
from guide.yamledit import set_trigger
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

ZONES = """\
# Calibration test site: two exhibits 6 m apart.
site: Calibration test   # the name visitors never see
languages: [fr]

beacons:
  b-a: {ibeacon: {uuid: %(uuid)s, major: 3, minor: 1}, tx_power: -59, x: 0, y: 0}
  b-b: {ibeacon: {uuid: %(uuid)s, major: 3, minor: 2}, tx_power: -59, x: 6, y: 0}
  b-c: {ibeacon: {uuid: %(uuid)s, major: 3, minor: 3}, tx_power: -59, x: 12, y: 0}

exhibits:
  # the first one
  - id: a
    title: {fr: A}
    beacon: b-a
    radius: 2.0          # small room
    tracks: {fr: fr/a.wav}

  - id: b
    title: {fr: B}
    beacon: b-b
    radius: 2.0
    tracks: {fr: fr/b.wav}

  - id: c
    title: {fr: C}
    beacon: b-c
    radius: 2.0
    tracks: {fr: fr/c.wav}
""" % {"uuid": UUID}


@pytest.fixture
def site_dir(tmp_path, make_wav):
    for e in "abc":
        make_wav(tmp_path / "tracks/fr" / f"{e}.wav", 20.0, rate=100)
    (tmp_path / "zones.yaml").write_text(ZONES)
    return tmp_path


def stand(visitor, t0, t1, levels, rate=5.0):
    """Scan rows of someone standing still from t0 to t1, each beacon heard
    `rate` times a second at a constant RSSI."""
    rows = []
    n = int((t1 - t0) * rate)
    for k in range(n):
        for i, (beacon, rssi) in enumerate(levels.items()):
            rows.append((visitor, round(t0 + (k + i / (len(levels) + 1)) / rate, 3), beacon, rssi))
    return rows


# staff stand 40 s at a (a at -60, b at -75: a leads by 15 dB), walk 15 s
# unheard, then 40 s at b (b at -66, a at -69: b leads by only 3 dB)
RECORDING = (stand("staff-1", 0, 40, {"b-a": -60, "b-b": -75})
             + stand("staff-1", 55, 95, {"b-b": -66, "b-a": -69}))
TRUTH = [TruthRow(visitor="staff-1", start=0, end=40, exhibit="a", intent="listen"),
         TruthRow(visitor="staff-1", start=55, end=95, exhibit="b", intent="listen")]


def write_csvs(path, rows, truth):
    (path / "scans.csv").write_text("visitor,t,beacon,rssi\n" + "".join(
        f"{v},{t},{b},{r}\n" for v, t, b, r in rows))
    (path / "truth.csv").write_text("visitor,start,end,exhibit,intent\n" + "".join(
        f"{r.visitor},{r.start},{r.end},{r.exhibit},{r.intent}\n" for r in truth))
    return path / "scans.csv", path / "truth.csv"


def recall(site, visit, want):
    """Recall of the engine replaying `visit` on `site` against `want`."""
    events = []
    ends = replay(site, visit, lang="fr", emit=events.append)
    durations = {e["track"]: tracks.duration(site.track_path(e["track"]))
                 for e in events if e["event"] == "start"}
    return score(want, events, durations=durations, walk_end=ends).recall


def test_the_engines_level_and_lead_at_each_exhibit_are_measured(site_dir):
    seen = measure(load_zones(site_dir / "zones.yaml"), RECORDING, TRUTH)
    assert set(seen) == {"a", "b"}
    assert seen["a"].level_p10 == pytest.approx(-60.0, abs=0.01)
    assert seen["a"].lead_p10 == pytest.approx(15.0, abs=0.01)
    assert seen["b"].level_p50 == pytest.approx(-66.0, abs=0.01)
    assert seen["b"].lead_p50 == pytest.approx(3.0, abs=0.01) and seen["b"].rival == "a"
    assert seen["a"].seconds == pytest.approx(36.0, abs=0.5)  # the first 4 s settle the filter


def test_levels_are_set_below_what_staff_saw_and_margins_to_the_lead_there(site_dir):
    site = load_zones(site_dir / "zones.yaml")
    result = calibrate(site, RECORDING, TRUTH)
    # a keeps the site's margin (its lead is ample): only its level is written
    assert result.values() == {"a": {"level": -65.0}, "b": {"level": -71.0, "margin": 3.0}}
    assert result.missing == ("c",) and not result.ok
    # each beacon heard from afar at one exhibit only: no tx_power to fit
    assert result.tx_power == () and result.tx_kept == ("b-a", "b-b", "b-c")


def test_interleaved_visitors_in_the_log_are_measured_each_on_their_own(site_dir):
    other = [(("staff-2",) + r[1:]) for r in RECORDING]
    mixed = sorted(RECORDING + other, key=lambda r: r[1])
    truth = TRUTH + [TruthRow(visitor="staff-2", start=r.start, end=r.end, exhibit=r.exhibit,
                              intent="listen") for r in TRUTH]
    site = load_zones(site_dir / "zones.yaml")
    assert calibrate(site, mixed, truth).values() == calibrate(site, RECORDING, TRUTH).values()


def test_overlapping_listen_rows_of_one_visitor_each_see_the_levels_of_their_own_time(site_dir):
    """Ground truth may hold overlapping rows (FORMATS.md allows them): the
    engine was read for the second row after the first had run to its end,
    so 10-30 s at a (at -60 dBm) was measured as a stood at 95 s (-80)."""
    rows = stand("staff-1", 0, 40, {"b-a": -60}) + stand("staff-1", 40, 95, {"b-a": -80, "b-b": -66})
    truth = [TruthRow(visitor="staff-1", start=0, end=95, exhibit="a", intent="listen"),
             TruthRow(visitor="staff-1", start=10, end=30, exhibit="a", intent="listen")]
    views = record(load_zones(site_dir / "zones.yaml"), rows, truth)
    inner = views[("staff-1", 14.0, "a")]
    assert len(inner) > 10 and all(v["a"] == pytest.approx(-60.0, abs=0.01) for v in inner)


def test_calibrated_settings_start_a_track_where_the_site_wide_margin_did_not(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    before = load_zones(site_dir / "zones.yaml")
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth)]) == 1  # c was not recorded
    after = load_zones(site_dir / "zones.yaml")
    # a visitor who stands at b as staff did, for a minute
    visit = stand("v1", 0, 60, {"b-b": -66, "b-a": -69})
    want = [TruthRow(visitor="v1", start=0, end=60, exhibit="b", intent="listen")]

    assert (recall(before, visit, want), recall(after, visit, want)) == (0.0, 1.0)


def test_the_zone_map_keeps_its_comments_and_order_and_a_backup(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    zones = site_dir / "zones.yaml"
    main(["calibrate", "--zones", str(zones), "--scans", str(scans), "--truth", str(truth)])
    out = capsys.readouterr().out
    assert "Not recorded (nobody stood there; they keep their settings): c" in out
    assert (site_dir / "zones.yaml.bak").read_text() == ZONES
    new = zones.read_text().splitlines()
    added = [line for line in new if line not in ZONES.splitlines()]
    assert len(added) == 2 and all(line.startswith("    trigger: {level: ") for line in added)
    assert "# guide calibrate " in added[1] and "margin: 3" in added[1]
    old_lines = ZONES.splitlines()
    assert [line for line in new if line in old_lines] == old_lines  # nothing lost or moved
    site = load_zones(zones)
    assert site.exhibit("b").trigger.level == -71.0 and site.exhibit("b").trigger.margin == 3.0


def test_a_dry_run_shows_the_changes_and_writes_nothing(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
          "--truth", str(truth), "--dry-run"])
    assert (site_dir / "zones.yaml").read_text() == ZONES
    assert not (site_dir / "zones.yaml.bak").exists()
    out = capsys.readouterr().out
    assert "-73.0 -> -71.0 dBm" in out and "5 -> 3.0 dB" in out and "Dry run" in out


def test_an_exhibit_another_beacon_outshouts_is_reported_and_exits_1(site_dir, capsys):
    rows = RECORDING + stand("staff-1", 110, 150, {"b-c": -70, "b-b": -64})
    truth = TRUTH + [TruthRow(visitor="staff-1", start=110, end=150, exhibit="c", intent="listen")]
    scans, truth_csv = write_csvs(site_dir, rows, truth)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth_csv), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    (c,) = [x for x in data["changes"] if x["exhibit"] == "c"]
    assert "b is louder here 100% of the time" in c["problem"] and data["missing"] == []


def test_one_exhibit_written_is_counted_in_the_singular(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH[:1])
    main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans), "--truth", str(truth)])
    assert "Wrote level and margin for 1 exhibit into " in capsys.readouterr().out


def test_every_exhibit_recorded_and_fine_exits_0(site_dir):
    rows = RECORDING + stand("staff-1", 110, 150, {"b-c": -58, "b-b": -70})
    truth = TRUTH + [TruthRow(visitor="staff-1", start=110, end=150, exhibit="c", intent="listen")]
    scans, truth_csv = write_csvs(site_dir, rows, truth)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth_csv)]) == 0


def test_a_visitor_pattern_matching_nobody_is_a_clear_error(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth), "--visitor", "v0*"]) == 2
    err = capsys.readouterr().err
    assert "--visitor v0*: no visitor of the ground truth matches it" in err and "staff-1" in err


def test_a_truth_without_listen_rows_is_a_clear_error(site_dir, capsys):
    glances = [TruthRow(visitor="staff-1", start=0, end=40, exhibit="a", intent="glance")]
    scans, truth = write_csvs(site_dir, RECORDING, glances)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth)]) == 2
    assert "nothing to calibrate from: it has no 'listen' rows" in capsys.readouterr().err


def test_truth_rows_without_scans_are_named_as_left_out(site_dir, capsys):
    extra = [TruthRow(visitor="staff-9", start=0, end=40, exhibit="a", intent="listen"),
             TruthRow(visitor="staff-1", start=9000, end=9040, exhibit="a", intent="listen")]
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH + extra)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth), "--dry-run"]) in (0, 1)
    err = capsys.readouterr().err
    assert "1 visitor of" in err and "(staff-9): their stays are left out" in err
    assert "1 listen row of" in err and "(staff-1 at a): left out" in err


@pytest.mark.parametrize("log, message", [
    ("visitor,t,beacon,rssi\nstaff-1,0.0,sensor10,-60\n", "scans.csv: none of its 1 rows names a beacon"),
    ("visitor,t,beacon,rssi\n", "scans.csv: has no rows below its header"),
])
def test_a_scan_log_of_another_site_or_empty_is_named_as_the_problem(site_dir, capsys, log, message):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    scans.write_text(log)
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth)]) == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------- yamledit

def test_settings_join_an_existing_trigger_in_its_own_style():
    text = ("exhibits:\n"
            "  - id: a\n"
            "    trigger:\n"
            "      dwell: 6.0     # slow readers\n"
            "    radius: 2\n"
            "  - {id: b, radius: 2, trigger: {dwell: 3}}\n")
    new = set_trigger(text, exhibits={"a": {"dwell": 7, "margin": 2.5}, "b": {"margin": 1}})
    assert new == ("exhibits:\n"
                   "  - id: a\n"
                   "    trigger:\n"
                   "      dwell: 7     # slow readers\n"
                   "      margin: 2.5\n"
                   "    radius: 2\n"
                   "  - {id: b, radius: 2, trigger: {dwell: 3, margin: 1}}\n")


def test_an_exhibit_without_trigger_gets_one_after_its_radius_or_inside_its_braces():
    text = ("exhibits:\n"
            "- id: a\n"
            "  radius: 2   # tight\n"
            "  tracks: {fr: a.wav}\n"
            "\n"
            "- {id: b, radius: 2}\n")
    new = set_trigger(text, exhibits={"a": {"level": -70.25}, "b": {"level": -71}}, note="calibrated")
    assert new == ("exhibits:\n"
                   "- id: a\n"
                   "  radius: 2   # tight\n"
                   "  trigger: {level: -70.25}  # calibrated\n"
                   "  tracks: {fr: a.wav}\n"
                   "\n"
                   "- {id: b, radius: 2, trigger: {level: -71}}\n")


def test_a_trigger_merged_from_an_anchor_is_carried_into_the_exhibits_own():
    text = ("x-slow: &slow\n"
            "  trigger: {dwell: 8}\n"
            "exhibits:\n"
            "  - <<: *slow\n"
            "    id: a\n"
            "    radius: 2\n")
    new = set_trigger(text, exhibits={"a": {"margin": 2}})
    assert "    radius: 2\n    trigger: {dwell: 8, margin: 2}\n" in new
    assert new.startswith("x-slow: &slow\n  trigger: {dwell: 8}\n")  # the anchor is untouched


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_an_edited_crlf_file_keeps_its_crlf_line_ends(site_dir, bom):
    import difflib

    from guide.yamledit import write_zones
    zones = site_dir / "zones.yaml"
    zones.write_bytes(bom + ZONES.encode().replace(b"\n", b"\r\n"))
    text = zones.read_text(encoding="utf-8-sig")  # as guide tune and guide calibrate read it
    write_zones(zones, set_trigger(text, site={"dwell": 3.5}, exhibits={"a": {"level": -70}},
                                   note="calibrated"))
    raw = zones.read_bytes()
    assert raw.startswith(bom + b"# Calibration test site") and raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")  # every line ends in CRLF
    lines = raw[len(bom):].decode().split("\r\n")
    changed = [d for d in difflib.ndiff(ZONES.split("\n"), lines) if d[0] in "+-?"]
    assert changed == ["+ trigger: {dwell: 3.5}  # calibrated",
                       "+     trigger: {level: -70}  # calibrated"]  # and nothing else
    site = load_zones(zones)
    assert site.trigger.dwell == 3.5 and site.exhibit("a").trigger.level == -70


# exhibit a shares the site-wide trigger mapping through a YAML alias
ALIASED = ZONES.replace("\nbeacons:\n", "\ntrigger: &t {dwell: 4.0}   # site-wide\n\nbeacons:\n").replace(
    "    radius: 2.0          # small room\n", "    radius: 2.0          # small room\n    trigger: *t\n")


def test_an_exhibits_edit_through_an_alias_stays_the_exhibits(site_dir):
    zones = site_dir / "zones.yaml"
    zones.write_text(ALIASED)
    before = load_zones(zones)
    new = set_trigger(ALIASED, exhibits={"a": {"margin": 2.5}}, note="calibrated")
    assert "\ntrigger: &t {dwell: 4.0}   # site-wide\n" in new  # the anchor is untouched
    assert "    trigger: {dwell: 4.0, margin: 2.5}  # calibrated\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert site.trigger == before.trigger and site.exhibit("b").trigger == before.trigger
    a = site.exhibit("a").trigger
    assert (a.dwell, a.margin) == (4.0, 2.5) and a.margin != before.trigger.margin


def test_a_site_wide_edit_does_not_reach_an_exhibit_through_an_alias(site_dir):
    zones = site_dir / "zones.yaml"
    zones.write_text(ALIASED)
    new = set_trigger(ALIASED, site={"dwell": 3.5}, note="tuned")
    assert "\ntrigger: &t {dwell: 3.5}   # site-wide\n" in new
    assert "    trigger: {dwell: 4.0}  # tuned\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert site.trigger.dwell == 3.5 and site.exhibit("b").trigger.dwell == 3.5
    assert site.exhibit("a").trigger.dwell == 4.0


def test_an_exhibits_anchored_trigger_edited_leaves_the_exhibits_using_it_as_they_were(site_dir):
    from guide.errors import ZoneMapError
    text = ALIASED.replace("trigger: &t {dwell: 4.0}   # site-wide\n", "").replace(
        "    trigger: *t\n", "    trigger: &a {margin: 8}\n").replace(
        "    radius: 2.0\n    tracks: {fr: fr/b.wav}\n",
        "    radius: 2.0\n    tracks: {fr: fr/b.wav}\n    trigger: *a\n").replace(
        "    radius: 2.0\n    tracks: {fr: fr/c.wav}\n",
        "    radius: 2.0\n    tracks: {fr: fr/c.wav}\n    trigger: {<<: *a, dwell: 6}\n")
    new = set_trigger(text, exhibits={"a": {"margin": 2}})
    assert "    trigger: &a {margin: 2}\n" in new and "    trigger: {margin: 8}\n" in new
    zones = site_dir / "zones.yaml"
    zones.write_text(new)
    site = load_zones(zones)
    assert [site.exhibit(e).trigger.margin for e in "abc"] == [2, 8, 8]
    assert site.exhibit("c").trigger.dwell == 6
    # a key the edit adds there would reach c through '<<', where it has nothing to keep
    with pytest.raises(ZoneMapError) as info:
        set_trigger(text, exhibits={"a": {"level": -70}}, file="z.yaml")
    (p,) = info.value.problems
    assert p.file == "z.yaml" and "'<<'" in p.message and "level" in p.message
    assert p.line == text.splitlines().index("    trigger: {<<: *a, dwell: 6}") + 1


def test_a_block_trigger_holding_only_a_merge_gets_the_new_values_below_it(site_dir):
    text = ZONES.replace("\nbeacons:\n", "\nx-t: &t {dwell: 4.0}\ntrigger:\n  <<: *t\n\nbeacons:\n")
    new = set_trigger(text, site={"margin": 2.5})
    assert "\ntrigger:\n  <<: *t\n  margin: 2.5\n\nbeacons:\n" in new
    zones = site_dir / "zones.yaml"
    zones.write_text(new)
    assert (load_zones(zones).trigger.dwell, load_zones(zones).trigger.margin) == (4.0, 2.5)


def test_values_written_as_aliases_or_with_anchors_are_edited_in_place(site_dir):
    from guide.errors import ZoneMapError
    from guide.yamledit import set_beacons
    assert ZONES.count("tx_power: -59,") == 3  # b-a, b-b, b-c
    shared = ZONES.replace("tx_power: -59,", "tx_power: &tx -59,", 1).replace("tx_power: -59,", "tx_power: *tx,")
    # a beacon whose tx_power is an alias gets a value of its own; the anchor stays
    site = load_zones_text(site_dir, set_beacons(shared, {"b-b": {"tx_power": -62}}))
    assert [site.beacons[b].tx_power for b in ("b-a", "b-b", "b-c")] == [-59, -62, -59]
    # the anchored value itself would change every alias: refused, with where they are
    with pytest.raises(ZoneMapError) as info:
        set_beacons(shared, {"b-a": {"tx_power": -62}}, file="z.yaml")
    (p,) = info.value.problems
    lines = shared.splitlines()
    assert p.file == "z.yaml" and "&tx -59" in lines[p.line - 1]
    assert f"*tx shares at line {lines.index(next(x for x in lines if '*tx' in x)) + 1}, " in p.message
    assert "write the value out in place of each *tx" in p.message
    # an anchor nothing uses is kept, with the new value
    alone = ZONES.replace("tx_power: -59,", "tx_power: &tx -59,", 1)
    assert "tx_power: &tx -62," in set_beacons(alone, {"b-a": {"tx_power": -62}})


def load_zones_text(folder, text):
    zones = folder / "zones.yaml"
    zones.write_text(text)
    return load_zones(zones)


def test_a_beacon_never_heard_where_staff_stood_is_reported_not_calibrated(site_dir):
    rows = RECORDING + stand("staff-1", 110, 150, {"b-b": -70})  # c's beacon is silent
    truth = TRUTH + [TruthRow(visitor="staff-1", start=110, end=150, exhibit="c", intent="listen")]
    result = calibrate(load_zones(site_dir / "zones.yaml"), rows, truth)
    assert result.unheard == ("c",) and "c" not in result.values() and not result.ok


# ------------------------------------------------------------- tx_power

# Five exhibits 4-8 m apart. Declared tx_power is -59 everywhere, but beacon
# b-a really is 12 dB louder (at b it out-shouts b's own beacon) and b-c 3 dB quieter (as declared values are, in
# the field); the radio falls off with exponent 1.8.
FIVE = {"a": (0, 0), "b": (4, 0), "c": (8, 0), "d": (0, 6), "e": (8, 6)}
TRUE_TX = {"b-a": -47, "b-b": -59, "b-c": -62, "b-d": -59, "b-e": -59}
FIVE_ZONES = ("site: Five\nlanguages: [fr]\nbeacons:\n" + "".join(
    f"  b-{e}: {{ibeacon: {{uuid: {UUID}, major: 4, minor: {i}}}, tx_power: -59, x: {x}, y: {y}}}"
    f"{'   # by the door' if e == 'a' else ''}\n"
    for i, (e, (x, y)) in enumerate(FIVE.items(), 1)) + "exhibits:\n" + "".join(
    f"  - {{id: {e}, title: {{fr: {e}}}, beacon: b-{e}, radius: 2.0, tracks: {{fr: fr/{e}.wav}}}}\n"
    for e in FIVE))


def heard_at(exhibit, skip=()):
    """What a device standing at `exhibit` hears: its own beacon as at 1 m,
    the others by distance, exponent 1.8."""
    x, y = FIVE[exhibit]
    out = {}
    for e, (bx, by) in FIVE.items():
        if e in skip:
            continue
        d = max(1.0, ((x - bx) ** 2 + (y - by) ** 2) ** 0.5)
        out[f"b-{e}"] = round(TRUE_TX[f"b-{e}"] - 18.0 * math.log10(d))
    return out


def five_walk(skip=()):
    rows, truth = [], []
    for k, e in enumerate(FIVE):
        t0 = 50.0 * k
        rows += stand("staff-1", t0, t0 + 40, heard_at(e, skip))
        truth.append(TruthRow(visitor="staff-1", start=t0, end=t0 + 40, exhibit=e, intent="listen"))
    return rows, truth


@pytest.fixture
def five_dir(tmp_path, make_wav):
    for e in FIVE:
        make_wav(tmp_path / "tracks/fr" / f"{e}.wav", 20.0, rate=100)
    (tmp_path / "zones.yaml").write_text(FIVE_ZONES)
    return tmp_path


def test_each_beacons_tx_power_is_fitted_from_its_levels_at_the_other_exhibits(five_dir):
    rows, truth = five_walk()
    result = calibrate(load_zones(five_dir / "zones.yaml"), rows, truth)
    assert {t.beacon: t.new for t in result.tx_power} == TRUE_TX
    assert all(t.readings == 4 for t in result.tx_power) and result.tx_kept == ()
    assert result.exponent == pytest.approx(1.8, abs=0.15)  # from whole-dB readings
    assert result.tx_power_values() == {"b-a": {"tx_power": -47}, "b-c": {"tx_power": -62}}
    # the leads are reckoned with the fitted values: at b, a no longer rivals it
    (b,) = [c for c in result.changes if c.exhibit == "b"]
    assert b.seen.lead_p50 == pytest.approx(18.0 * math.log10(4), abs=0.6)
    assert calibrate(load_zones(five_dir / "zones.yaml"), rows, truth,
                     tx_power=False).tx_power == ()


def test_only_the_differences_between_beacons_are_fitted_not_the_devices_gain(five_dir):
    rows, truth = five_walk()
    quiet = [(v, t, b, r - 7) for v, t, b, r in rows]  # a staff device reading 7 dB low
    result = calibrate(load_zones(five_dir / "zones.yaml"), quiet, truth)
    assert {t.beacon: t.new for t in result.tx_power} == TRUE_TX


def test_a_beacon_heard_from_afar_at_too_few_exhibits_keeps_its_tx_power(five_dir):
    # b-e unheard from a and b: two readings left (c is 4 m... and d 8 m away)
    rows, truth = five_walk()
    rows = [r for r in rows if not (r[2] == "b-e" and r[1] < 100)]
    result = calibrate(load_zones(five_dir / "zones.yaml"), rows, truth)
    assert result.tx_kept == ("b-e",) and "b-e" not in {t.beacon for t in result.tx_power}
    assert "tx_power kept as declared" in format_result(result) and "b-e" in format_result(result)


def test_readings_through_a_wall_do_not_count(five_dir):
    # a wall from (-2, 3) to (3, 3) hides d from a and b (8 dB more loss)
    text = FIVE_ZONES.replace("exhibits:\n", "walls:\n  - [[-2, 3], [3, 3]]\nexhibits:\n")
    (five_dir / "zones.yaml").write_text(text)
    site = load_zones(five_dir / "zones.yaml")
    rows, truth = five_walk()
    stays = {r.exhibit: r for r in truth}
    walled = []
    for v, t, b, rssi in rows:
        at = next(FIVE[e] for e, r in stays.items() if r.start <= t <= r.end)
        beacon = site.beacons[b]
        walled.append((v, t, b, rssi - 8 * wall_crossings(site, *at, beacon.x, beacon.y)))
    result = calibrate(site, walled, truth)
    assert result.tx_kept == ("b-d",)  # heard in plain sight from c and e only
    assert {t.beacon: t.readings for t in result.tx_power} == {"b-a": 3, "b-b": 3, "b-c": 4, "b-e": 4}
    assert {t.beacon: t.new for t in result.tx_power} == {b: TRUE_TX[b] for b in ("b-a", "b-b", "b-c", "b-e")}


def test_calibrated_tx_power_is_written_and_starts_an_exhibit_a_loud_neighbour_hid(five_dir, capsys):
    rows, truth = five_walk()
    scans, truth_csv = write_csvs(five_dir, rows, truth)
    zones = five_dir / "zones.yaml"
    visit = stand("v1", 0, 60, heard_at("b"))  # a visitor standing at b a minute
    want = [TruthRow(visitor="v1", start=0, end=60, exhibit="b", intent="listen")]

    args = ["calibrate", "--zones", str(zones), "--scans", str(scans), "--truth", str(truth_csv)]
    main(args + ["--keep-tx-power"])
    kept = load_zones(zones)
    assert {b.tx_power for b in kept.beacons.values()} == {-59}
    (zones).write_text(FIVE_ZONES)
    main(args)
    out = capsys.readouterr().out
    assert re.search(r"b-a +4 +-59 -> -47 dBm", out) and "Wrote tx_power for 2 beacons" in out
    site = load_zones(zones)
    assert site.beacons["b-a"].tx_power == -47 and site.beacons["b-c"].tx_power == -62
    # line by line: the comment stays, the note is added where there was none
    lines = zones.read_text().splitlines()
    assert [line for line in lines if "b-a:" in line][0].endswith("y: 0}   # by the door")
    assert [line for line in lines if "b-c:" in line][0].split("  # ")[1].startswith("guide calibrate")
    assert (recall(kept, visit, want), recall(site, visit, want)) == (0.0, 1.0)


def test_a_full_disk_leaves_the_zone_map_as_it_was_and_says_so(site_dir, monkeypatch):
    import errno
    import tempfile

    from guide.errors import GuideError
    from guide.yamledit import write_zones
    zones = site_dir / "zones.yaml"
    zones.write_text(ZONES)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(GuideError, match="zones.yaml: cannot write it \\(No space left on device\\); it is as it was"):
        write_zones(zones, set_trigger(ZONES, site={"dwell": 3.5}, note="calibrated"))
    assert zones.read_text() == ZONES and list(site_dir.glob(".zones.yaml.*")) == []
