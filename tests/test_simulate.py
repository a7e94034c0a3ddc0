"""simulate.py end to end: a small site, generated visitors, real files.

The scenario is built once per session: a 12-exhibit gallery with a cluster
of exhibits 2.5 m apart, silent WAV tracks of real durations, visitors from
guide.walks turned into a 10 Hz scan log by the project's radio model.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from guide.radio import RadioModel, scans_from_walk
from guide.replay import read_scans
from guide.simulator import main
from guide.walks import generate_visitors, write_truth, write_walks
from guide.zones import load_zones

REPO = Path(__file__).resolve().parents[1]

ZONES = """\
site: Test gallery
languages: [en, fr]
tracks_dir: tracks
walls:
  - [[0, 0], [30, 0]]
  - [[30, 0], [30, 12]]
  - [[30, 12], [0, 12]]
  - [[0, 12], [0, 0]]
beacons:
{beacons}
exhibits:
{exhibits}
"""

SPOTS = [("e1", 3, 2), ("e2", 9, 2), ("e3", 15, 2), ("e4", 21, 2), ("e5", 27, 2),
         ("e6", 3, 10), ("e7", 9, 10), ("e8", 15, 10), ("e9", 17.5, 10), ("e10", 20, 10),
         ("e11", 27, 10), ("e12", 15, 6)]


@pytest.fixture(scope="session")
def scenario(tmp_path_factory) -> Path:
    import wave

    d = tmp_path_factory.mktemp("scenario")
    beacons, exhibits = [], []
    for i, (ex, x, y) in enumerate(SPOTS, start=1):
        beacons.append(f"  b-{ex}:\n    ibeacon: {{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, "
                       f"major: 9, minor: {i}}}\n    tx_power: -59\n    x: {x}\n    y: {y}")
        exhibits.append(f"  - id: {ex}\n    title: {{en: Exhibit {i}}}\n    beacon: b-{ex}\n"
                        f"    radius: 1.5\n    tracks: {{en: en/{ex}.wav}}")
        with wave.open(str(_mk(d / "tracks" / "en" / f"{ex}.wav")), "wb") as w:
            w.setnchannels(1), w.setsampwidth(1), w.setframerate(1000)
            w.writeframes(b"\x80" * (1000 * (40 + 7 * i)))
    (d / "zones.yaml").write_text(ZONES.format(beacons="\n".join(beacons),
                                               exhibits="\n".join(exhibits)))
    site = load_zones(d / "zones.yaml")
    durations = {ex: 40.0 + 7 * i for i, (ex, _, _) in enumerate(SPOTS, start=1)}
    walk, truth = generate_visitors(site, n=4, seed=11, durations=durations, lang="en")
    write_walks(d / "walks.csv", walk)
    write_truth(d / "truth.csv", truth)
    with open(d / "scans.csv", "w") as f:
        f.write("visitor,t,beacon,rssi\n")
        for v, t, b, r in scans_from_walk(site, walk, RadioModel.museum(), seed=3, rate_hz=10):
            f.write(f"{v},{t:.3f},{b},{r}\n")
    return d


def _mk(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_engine_beats_the_naive_policy_on_the_same_visits(scenario, capsys):
    code, out, _ = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--truth", scenario / "truth.csv", "--policy", "both", "--json",
                       "--no-progress")
    assert code == 0
    r = json.loads(out)
    ours, naive = r["engine"], r["naive"]
    assert ours["recall"] >= 0.8
    assert ours["interruptions"] <= 1 < naive["interruptions"]
    assert ours["false_starts"] * 3 < naive["false_starts"]
    assert ours["unwanted_audio_s"] * 2 < naive["unwanted_audio_s"]
    assert ours["latency_median_s"] <= 8


def test_the_event_log_follows_formats_md(scenario, capsys, tmp_path):
    out = tmp_path / "events.jsonl"
    code, _, _ = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                     "--lang", "en", "--events", out, "--no-progress")
    assert code == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events and {e["event"] for e in events} <= {"start", "end"}
    last_t: dict[str, float] = {}
    playing: dict[str, str | None] = {}
    for e in events:
        v = e["visitor"]
        assert e["t"] >= last_t.get(v, 0.0)  # in time order per visitor
        last_t[v] = e["t"]
        if e["event"] == "start":
            assert playing.get(v) is None and e["lang"] == "en" and e["track"] == f"en/{e['exhibit']}.wav"
            playing[v] = e["exhibit"]
        else:
            assert playing.get(v) == e["exhibit"] and e["reason"] in ("finished", "abandoned")
            playing[v] = None


def test_walks_are_turned_into_scans_by_the_radio_model_at_one_hertz(scenario, capsys):
    code, out, _ = run(capsys, "--zones", scenario / "zones.yaml", "--walks", scenario / "walks.csv",
                       "--rate", "1", "--truth", scenario / "truth.csv", "--json")
    assert code == 0
    ours = json.loads(out)["engine"]
    assert ours["recall"] >= 0.6 and ours["listen_rows"] > 0


@pytest.mark.parametrize("row, message", [
    ("v1,0.5,b-e1", r"scans.csv:3: expected 4 fields"),
    ("v1,abc,b-e1,-60", r"scans.csv:3: t must be a number of seconds"),
    ("v1,0.1,b-e1,-60", r"scans.csv:3: t=0.1 is earlier than this visitor's previous row"),
    ("v1,0.5,b-e1,12", r"scans.csv:3: rssi=12 is not a plausible signal strength"),
    ("v1,0.5,b-e1,loud", r"scans.csv:3: t must be a number of seconds and rssi a number of dBm"),
    ("v1,0.5,b-e1,-inf", r"scans.csv:3: t must be a number of seconds and rssi a number of dBm"),
])
def test_a_malformed_scan_log_stops_with_its_file_and_line(scenario, capsys, tmp_path, row, message):
    bad = tmp_path / "scans.csv"
    bad.write_text(f"visitor,t,beacon,rssi\nv1,0.2,b-e1,-60\n{row}\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", bad)
    assert code == 2
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_rows_naming_unknown_beacons_are_skipped_and_counted(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    log.write_text("visitor,t,beacon,rssi\nv1,0.0,b-e1,-60\nv1,0.1,stranger,-50\n"
                   "v1,0.2,stranger,-50\nv1,0.3,b-e1,-61\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    assert code == 0
    assert "skipped 2 scan rows naming beacons not in the zone map: stranger" in err


def test_a_spreadsheet_export_of_a_scan_log_is_accepted(scenario, capsys, tmp_path):
    """FORMATS.md: accept more, never less. A BOM, columns in another order
    with an extra one, CRLF line ends, decimal RSSI and a trailing blank line
    replay exactly as the plain log does."""
    plain = tmp_path / "plain.csv"
    plain.write_text("visitor,t,beacon,rssi\nv1,0.0,b-e1,-60\nv1,0.5,b-e2,-71\n")
    fancy = tmp_path / "fancy.csv"
    fancy.write_bytes("\ufeffrssi,visitor,t,beacon,phone\r\n-60.0,v1,0.0,b-e1,x\r\n"
                      "-71,v1,0.5,b-e2,x\r\n\r\n".encode("utf-8"))
    site = load_zones(scenario / "zones.yaml")
    assert list(read_scans(fancy, site)) == list(read_scans(plain, site)) == [
        ("v1", 0.0, "b-e1", -60), ("v1", 0.5, "b-e2", -71)]


def test_a_binary_file_is_refused_as_a_scan_log(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    log.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    assert code == 2 and "scans.csv:1: not a CSV text file" in err and "Traceback" not in err


def test_a_scan_log_without_the_header_is_refused(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    log.write_text("v1,0.0,b-e1,-60\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    assert code == 2 and "scans.csv:1: the header lacks" in err


def test_simulate_py_runs_as_a_script(scenario):
    p = subprocess.run([sys.executable, str(REPO / "simulate.py"), "--zones",
                        str(scenario / "zones.yaml"), "--scans", str(scenario / "nope.csv")],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2
    assert "nope.csv: cannot open the scan log" in p.stderr and "Traceback" not in p.stderr


def test_render_audio_writes_what_one_visitor_heard(scenario, capsys, tmp_path):
    import wave

    out = tmp_path / "v001.wav"
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--render-audio", out, "--visitor", "v001", "--events", tmp_path / "e.jsonl",
                       "--no-progress")
    assert code == 0 and "wrote what v001 heard" in err
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    last = max(e["t"] for e in events if e["visitor"] == "v001")
    with wave.open(str(out)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        assert w.getnframes() / w.getframerate() >= last  # the silences are kept


def test_render_audio_needs_a_visitor(scenario, capsys, tmp_path):
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--render-audio", tmp_path / "x.wav", "--no-progress")
    assert code == 2 and "--render-audio needs --visitor" in err


def test_render_audio_begins_with_the_sites_spoken_intro(scenario, capsys, tmp_path, make_wav):
    """The device speaks the intro as a visit begins; so does a rendered visit."""
    import wave

    import numpy as np

    make_wav(scenario / "tracks" / "en" / "_intro-tone.wav", 3.0, rate=24000, tone=440)
    zones = scenario / "zones-with-intro.yaml"
    zones.write_text((scenario / "zones.yaml").read_text()
                     .replace("tracks_dir: tracks\n", "tracks_dir: tracks\nintro: {en: en/_intro-tone.wav}\n"))
    out = tmp_path / "v001.wav"
    code, _, err = run(capsys, "--zones", zones, "--scans", scenario / "scans.csv", "--lang", "en",
                       "--render-audio", out, "--visitor", "v001", "--no-progress")
    assert code == 0, err
    with wave.open(str(out)) as w:
        heard = np.frombuffer(w.readframes(w.getframerate()), dtype="<i2")  # the first second
    assert np.abs(heard).max() > 10000  # the tone, not the silence the exhibits' tracks are
