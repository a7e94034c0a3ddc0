"""`guide calibrate`: per-exhibit level and margin from staff standing at
each exhibit, written into zones.yaml without disturbing anything else."""

from __future__ import annotations

import json

import pytest

from guide import tracks
from guide.calibrate import calibrate, measure
from guide.cli import main
from guide.metrics import TruthRow, score
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


def test_interleaved_visitors_in_the_log_are_measured_each_on_their_own(site_dir):
    other = [(("staff-2",) + r[1:]) for r in RECORDING]
    mixed = sorted(RECORDING + other, key=lambda r: r[1])
    truth = TRUTH + [TruthRow(visitor="staff-2", start=r.start, end=r.end, exhibit=r.exhibit,
                              intent="listen") for r in TRUTH]
    site = load_zones(site_dir / "zones.yaml")
    assert calibrate(site, mixed, truth).values() == calibrate(site, RECORDING, TRUTH).values()


def test_calibrated_settings_start_a_track_where_the_site_wide_margin_did_not(site_dir, capsys):
    scans, truth = write_csvs(site_dir, RECORDING, TRUTH)
    before = load_zones(site_dir / "zones.yaml")
    assert main(["calibrate", "--zones", str(site_dir / "zones.yaml"), "--scans", str(scans),
                 "--truth", str(truth)]) == 1  # c was not recorded
    after = load_zones(site_dir / "zones.yaml")
    # a visitor who stands at b as staff did, for a minute
    visit = stand("v1", 0, 60, {"b-b": -66, "b-a": -69})
    want = [TruthRow(visitor="v1", start=0, end=60, exhibit="b", intent="listen")]

    def recall(site):
        events = []
        ends = replay(site, visit, lang="fr", emit=events.append)
        durations = {e["track"]: tracks.duration(site.track_path(e["track"]))
                     for e in events if e["event"] == "start"}
        return score(want, events, durations=durations, walk_end=ends).recall

    assert (recall(before), recall(after)) == (0.0, 1.0)


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


def test_a_beacon_never_heard_where_staff_stood_is_reported_not_calibrated(site_dir):
    rows = RECORDING + stand("staff-1", 110, 150, {"b-b": -70})  # c's beacon is silent
    truth = TRUTH + [TruthRow(visitor="staff-1", start=110, end=150, exhibit="c", intent="listen")]
    result = calibrate(load_zones(site_dir / "zones.yaml"), rows, truth)
    assert result.unheard == ("c",) and "c" not in result.values() and not result.ok
