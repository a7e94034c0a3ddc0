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


def test_a_walk_with_its_visitors_interleaved_in_time_scores_as_the_same_walk_grouped(scenario, capsys,
                                                                                    tmp_path):
    header, *rows = (scenario / "walks.csv").read_text().splitlines()
    mixed = tmp_path / "walks.csv"  # every visitor's rows by time, as a simulator stepping them all writes
    mixed.write_text("\n".join([header, *sorted(rows, key=lambda r: float(r.split(",")[1]))]) + "\n")
    assert mixed.read_text() != (scenario / "walks.csv").read_text()
    figures = []
    for walks in (scenario / "walks.csv", mixed):
        code, out, err = run(capsys, "--zones", scenario / "zones.yaml", "--walks", walks,
                             "--truth", scenario / "truth.csv", "--json", "--no-progress")
        assert code == 0, err
        figures.append(json.loads(out))
    assert figures[0] == figures[1] and figures[0]["engine"]["listen_rows"] > 0


@pytest.mark.parametrize("row, message", [
    ("v1,0.5,b-e1", r"scans.csv:3: expected 4 fields"),
    ("v1,abc,b-e1,-60", r"scans.csv:3: field t = 'abc' is not a number of seconds$"),
    ("v1,0.1,b-e1,-60", r"scans.csv:3: t=0.1 is earlier than this visitor's previous row"),
    ("v1,0.5,b-e1,12", r"scans.csv:3: rssi=12 is not a plausible signal strength"),
    ("v1,0.5,b-e1,loud", r"scans.csv:3: field rssi = 'loud' is not a number of dBm$"),
    ("v1,0.5,b-e1,-inf", r"scans.csv:3: field rssi = '-inf' is not a number of dBm$"),
    ("v1,0.5,b-e1,nan", r"scans.csv:3: field rssi = 'nan' is not a number of dBm$"),
    ("v1,x,b-e1,loud", r"scans.csv:3: field t = 'x' is not a number of seconds; "
                       r"field rssi = 'loud' is not a number of dBm$"),
    # epoch nanoseconds: this used to spin forever (t + 0.25 == t at 1e16)
    ("v1,1700000000000000000,b-e1,-60", r"scans.csv:3: t=1700000000000000000 is more than a week "
                                         r"after the walk began.*convert epoch or millisecond"),
    ("v1,inf,b-e1,-60", r"scans.csv:3: t=inf is not a number of seconds"),
    ("v2,-5,b-e1,-60", r"scans.csv:3: t=-5 is negative: times count the seconds since"),
    (",0.5,b-e1,-60", r"scans.csv:3: the visitor is empty"),
])
def test_a_malformed_scan_log_stops_with_its_file_and_line(scenario, capsys, tmp_path, row, message):
    bad = tmp_path / "scans.csv"
    bad.write_text(f"visitor,t,beacon,rssi\nv1,0.2,b-e1,-60\n{row}\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", bad)
    assert code == 2
    assert "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize("option, header, rows", [
    ("--scans", "visitor,t,beacon,rssi", ["v1,0.1,b-e1,-60", 'v1,0.2,"b-e1,-61', "v1,0.3,b-e1,-62", "v1,0.4,b-e1,-62"]),
    ("--scans", "visitor,t,beacon,rssi", ["v1,0.1,b-e1,-60", 'v1,0.2,"b-e1,-61']),  # read on to the end
    ("--walks", "visitor,t,x,y", ["v1,0,1,1", 'v1,1,"2,1', "v1,2,3,1", "v1,3,4,1"]),
    ("--truth", "visitor,start,end,exhibit,intent", ["v1,0,20,e1,listen", 'v1,30,"40,e1,listen',
                                                     "v1,50,60,e1,listen"]),
])
def test_a_stray_quote_is_reported_on_its_own_line_not_where_the_csv_reader_gave_up(
        scenario, capsys, tmp_path, option, header, rows):
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([header, *rows]) + "\n")
    source = ["--walks", bad] if option == "--walks" else ["--scans", bad]
    if option == "--truth":
        source = ["--scans", scenario / "scans.csv", "--truth", bad, "--no-progress"]
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", *source)
    assert code == 2 and "Traceback" not in err
    assert 'bad.csv:3: a quote (") opened on this line is not closed on it' in err, err


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


def test_padded_values_are_read_as_padded_headers_are(scenario, tmp_path):
    padded = tmp_path / "padded.csv"
    padded.write_text("visitor, t, beacon, rssi\n v1 , 0.0, b-e1 , -60\nv1,0.5, b-e2,-71\n")
    site = load_zones(scenario / "zones.yaml")
    assert list(read_scans(padded, site)) == [("v1", 0.0, "b-e1", -60), ("v1", 0.5, "b-e2", -71)]


def test_a_scan_log_of_another_site_is_refused(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    log.write_text("visitor,t,beacon,rssi\nv1,0.0,sensor10,-60\nv1,0.1,sensor11,-50\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    assert code == 2
    assert "none of its 2 rows names a beacon of zones.yaml (it names sensor10, sensor11)" in err


def test_a_scan_log_not_in_utf8_is_refused_where_it_stops_being_utf8(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    rows = "".join(f"v1,{i / 10:.1f},b-e1,-60\n" for i in range(5000))
    log.write_bytes(b"visitor,t,beacon,rssi\n" + rows.encode() + "Ren\xe9,0.0,b-e1,-60\n".encode("latin-1"))
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    # the line and the byte, not where the decoder's read-ahead stopped
    assert code == 2 and "scans.csv:5002: not UTF-8 text (the byte 0xE9, character 4 of the line)" in err
    assert "save the scan log as UTF-8" in err


def test_a_truth_naming_an_exhibit_the_site_lacks_is_refused_with_its_line(scenario, capsys, tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("visitor,start,end,exhibit,intent\nv001,10,60,e1,listen\nv001,70,90,nosuch,listen\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--truth", truth, "--no-progress")
    assert code == 2 and "truth.csv:3: exhibit 'nosuch' is not in the zone map" in err


@pytest.mark.parametrize("source, lack", [("scans", "no scans"), ("walks", "no positions in walks.csv")])
def test_truth_visitors_without_scans_are_reported(scenario, capsys, tmp_path, source, lack):
    truth = tmp_path / "truth.csv"
    truth.write_text((scenario / "truth.csv").read_text() + "v999,10,60,e1,listen\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", f"--{source}", scenario / f"{source}.csv",
                       "--truth", truth, "--no-progress")
    assert code == 0 and f"1 visitor of truth.csv has {lack} (v999)" in err


@pytest.mark.parametrize("args, message", [
    (["--truth", "t.csv"], "--truth goes with --scans or --walks"),
    (["--render-audio", "x.wav", "--visitor", "v1"], "--render-audio goes with --scans or --walks"),
    (["--scans", "{scans}", "--rate", "1"], "--rate, --radio and --seed apply to --walks and the demo"),
    (["--scans", "{scans}", "--radio", "harsh"], "--rate, --radio and --seed apply to --walks"),
    (["--scans", "{scans}", "--seed", "3"], "--rate, --radio and --seed apply to --walks"),
    (["--scans", "{scans}", "--visitors", "3"], "--visitors is for the demo"),
    (["--scans", "{scans}", "--json"], "--json prints the metrics: give --truth"),
    (["--scans", "{scans}", "--visitor", "v001"], "--visitor goes with --render-audio"),
])
def test_options_that_do_not_go_together_are_refused_before_any_work(scenario, capsys, args, message):
    args = [a.format(scans=scenario / "scans.csv") for a in args]
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", *args)
    assert code == 2 and message in err, err


@pytest.mark.parametrize("option, value, message", [
    ("--seed", "-1", "--seed: -1 is out of range; give a seed: a whole number, 0 or more"),
    ("--seed", "1_0", "--seed: 1_0 is not a whole number (write it without the '_')"),
    ("--rate", "0", "--rate: 0 is out of range; give advertisements per second per beacon, from 0.01 to 100"),
    ("--rate", "nan", "--rate: nan is out of range"),
    ("--visitors", "0", "--visitors: 0 is out of range; give a whole number from 1 to 500 (each 100 visitors"),
    ("--visitors", "1000000", "--visitors: 1000000 is out of range; give a whole number from 1 to 500"),
    ("--visitors", "٣", "--visitors: ٣ is not a whole number (write it with the digits 0-9"),
])
def test_bad_numbers_are_usage_errors(scenario, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        main(["--zones", str(scenario / "zones.yaml"), option, value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_output_files_are_checked_before_the_replay(scenario, capsys, tmp_path):
    args = ["--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv", "--no-progress"]
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, *args, "--events", tmp_path / "folder")
    assert code == 2 and "--events" in err and "is a folder; give a file name" in err
    code, _, err = run(capsys, *args, "--events", "")
    assert code == 2 and "--events: give a file name" in err
    (tmp_path / "plain").write_text("x")
    code, _, err = run(capsys, *args, "--events", tmp_path / "plain" / "events.jsonl")
    assert code == 2 and "plain is a file, not a folder" in err and "Traceback" not in err
    code, _, err = run(capsys, *args, "--render-audio", "/dev/null", "--visitor", "v001")
    assert code == 2 and "is not a regular file" in err


@pytest.mark.parametrize("output, target, named", [
    ("--events", "scans.csv", "is the file of --scans"),
    ("--events", "zones.yaml", "is the file of --zones"),
    ("--events", "truth.csv", "is the file of --truth"),
    ("--events", "tracks/en/e1.wav", "is the file of the track en/e1.wav of e1"),
    ("--render-audio", "truth.csv", "is the file of --truth"),
    ("--render-audio", "events.jsonl", "is the file of --events"),
])
def test_an_output_that_is_one_of_the_inputs_is_refused_and_left_alone(
        scenario, capsys, tmp_path, output, target, named):
    (tmp_path / "events.jsonl").write_text('{"visitor": "v0", "t": 1.0, "event": "start"}\n')
    paths = {"zones.yaml": scenario / "zones.yaml", "scans.csv": scenario / "scans.csv",
             "truth.csv": scenario / "truth.csv", "tracks/en/e1.wav": scenario / "tracks/en/e1.wav",
             "events.jsonl": tmp_path / "events.jsonl"}
    link = tmp_path / "another-name"  # another spelling of the same file is the same file
    link.symlink_to(paths[target])
    before = paths[target].read_bytes()
    args = ["--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
            "--truth", scenario / "truth.csv", "--no-progress"]
    if output == "--render-audio":
        args += ["--events", tmp_path / "events.jsonl", "--visitor", "v001"]
    code, _, err = run(capsys, *args, output, link)
    assert code == 2 and f"{output} {link} {named}" in err and "Traceback" not in err, err
    assert paths[target].read_bytes() == before


def test_a_scan_log_or_walk_needs_its_zone_map(scenario, capsys):
    for option in ("--scans", "--walks"):
        code, _, err = run(capsys, option, scenario / f"{option[2:]}.csv")
        assert code == 2 and f"{option} needs --zones" in err, err


def test_an_event_log_behind_a_link_is_written_where_the_link_points(scenario, capsys, tmp_path):
    target = tmp_path / "logs" / "events.jsonl"
    target.parent.mkdir()
    target.write_text('{"visitor": "v0", "t": 1.0, "event": "start"}\n')  # an older replay's
    target.chmod(0o640)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    code, _, _ = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                     "--events", link, "--no-progress")
    assert code == 0 and link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith('{"visitor"') and (target.stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("option, what", [("--zones", "zone map"), ("--scans", "scan log"),
                                          ("--truth", "ground truth"), ("--events", "file")])
def test_a_loop_of_symbolic_links_says_how_to_mend_it(scenario, capsys, tmp_path, option, what):
    loop = tmp_path / "loop.csv"
    loop.symlink_to("loop.csv")
    given = {"--zones": scenario / "zones.yaml", "--scans": scenario / "scans.csv",
             "--truth": scenario / "truth.csv", "--events": tmp_path / "events.jsonl", option: loop}
    code, _, err = run(capsys, *[x for kv in given.items() for x in kv], "--no-progress")
    assert code == 2 and "Traceback" not in err, err
    assert f"{loop}: leads through a loop of symbolic links" in err, err
    assert f"replace the link with the {what} itself, or a link to it" in err, err


def test_a_binary_file_is_refused_as_a_scan_log(scenario, capsys, tmp_path):
    log = tmp_path / "scans.csv"
    log.write_bytes(bytes(range(256)) * 4)  # \n (0x0A) ends line 1, \r (0x0D) line 2, as csv reads them
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", log)
    assert code == 2 and "scans.csv:3: not UTF-8 text (the byte 0x80" in err and "Traceback" not in err


@pytest.mark.parametrize("option, header", [("--scans", "visitor,t,beacon,rssi"), ("--walks", "visitor,t,x,y")])
def test_a_log_with_a_header_and_no_rows_is_refused(scenario, capsys, tmp_path, option, header):
    log = tmp_path / "log.csv"
    log.write_text(header + "\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", option, log)
    assert code == 2 and f"log.csv: has no rows below its header, so there is nothing to replay" in err, err


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


@pytest.mark.parametrize("name", ["v001.mp3", "v001.ogg", "v001"])
def test_render_audio_refuses_a_file_name_that_is_not_a_wav_before_the_replay(scenario, capsys, tmp_path, name):
    out = tmp_path / name
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--render-audio", out, "--visitor", "v001", "--events", tmp_path / "e.jsonl",
                       "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert f"simulate.py: error: --render-audio {out}: give a file name ending in .wav" in err
    assert not out.exists() and not (tmp_path / "e.jsonl").exists()  # refused before any work
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--render-audio", tmp_path / "v001.WAV", "--visitor", "v001", "--no-progress")
    assert code == 0, err


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


@pytest.mark.parametrize("source", ["--scans", "demo"])
def test_every_track_that_cannot_be_played_is_named_at_once_before_the_replay(scenario, capsys, tmp_path,
                                                                            source):
    import shutil

    site = tmp_path / "site"
    shutil.copytree(scenario, site)
    (site / "tracks/en/e3.wav").write_bytes(b"not audio at all")
    (site / "tracks/en/e9.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    args = ["--scans", site / "scans.csv"] if source == "--scans" else ["--visitors", "1"]
    code, _, err = run(capsys, "--zones", site / "zones.yaml", *args, "--events", tmp_path / "e.jsonl",
                       "--no-progress")
    assert code == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == (f"simulate.py: error: 2 tracks the replay would start cannot be played, so the visits "
                        f"cannot be timed; fix them (guide check --zones {site / 'zones.yaml'} tells more):")
    assert lines[1].startswith("  en/e3.wav (e3, en): not a readable audio file (")
    assert lines[2].startswith("  en/e9.wav (e9, en): ")
    assert not (tmp_path / "e.jsonl").exists()  # stopped before the replay, nothing written


def test_the_demo_runs_the_rate_and_policy_asked_for_and_writes_their_events(scenario, capsys, tmp_path):
    out = tmp_path / "demo.jsonl"
    code, stdout, _ = run(capsys, "--zones", scenario / "zones.yaml", "--visitors", "2", "--rate", "1",
                          "--policy", "naive", "--events", out, "--json", "--no-progress")
    assert code == 0
    assert list(json.loads(stdout)) == ["1 Hz"] and list(json.loads(stdout)["1 Hz"]) == ["naive"]
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events and {e["event"] for e in events} == {"start", "end"}


def test_an_existing_file_that_is_not_an_event_log_is_never_written_over(scenario, capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my precious notes\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--events", notes, "--no-progress")
    assert code == 2 and "notes.txt: is not a guide event log (line 1 is not JSON)" in err
    assert notes.read_text() == "my precious notes\n"
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--events", f"{tmp_path}/new/", "--no-progress")
    assert code == 2 and "is a folder; give a file name" in err and not (tmp_path / "new").exists()


@pytest.mark.parametrize("source", ["--walks", "--scans"])
def test_a_walk_ends_where_the_visitor_stops_not_at_the_last_packet_heard(scenario, capsys, tmp_path, source):
    """A visitor who hears e1 for 20 s then walks out of range for ten minutes:
    the track plays to its end, and the walk lasts its whole 700 s."""
    if source == "--walks":
        log = tmp_path / "walk.csv"
        log.write_text("visitor,t,x,y\nv1,0,3,2.5\nv1,20,3,2.5\nv1,20.1,500,500\nv1,700,500,500\n")
    else:  # the last rows name a beacon of another site: still the visitor's walk
        log = tmp_path / "scans.csv"
        log.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{i / 10:.1f},b-e1,-62\n" for i in range(201))
                       + "v1,350.0,elsewhere,-80\nv1,700.0,elsewhere,-80\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("visitor,start,end,exhibit,intent\nv1,0,20,e1,glance\n")
    events = tmp_path / "events.jsonl"
    code, out, _ = run(capsys, "--zones", scenario / "zones.yaml", source, log, "--truth", truth,
                       "--events", events, "--json", "--no-progress")
    assert code == 0
    m = json.loads(out)["engine"]
    assert m["visitor_hours"] == pytest.approx(700 / 3600, abs=1e-3)
    ends = [json.loads(line) for line in events.read_text().splitlines() if '"end"' in line]
    assert [e["reason"] for e in ends] == ["finished"]  # e1's track (47 s) played out
    assert m["unwanted_audio_s"] == pytest.approx(47.0, abs=0.1)


def test_spreadsheet_rows_of_empty_cells_are_skipped_in_scans_and_truth(scenario, capsys, tmp_path):
    scans, truth = tmp_path / "scans.csv", tmp_path / "truth.csv"
    scans.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{i / 10:.1f},b-e1,-62\n" for i in range(300))
                     + ",,,\n   \n")
    truth.write_text("visitor,start,end,exhibit,intent,note\nv1,0,30,e1,listen\n,,,,,\n")
    code, out, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scans, "--truth", truth,
                         "--json", "--no-progress")
    assert code == 0, err
    assert json.loads(out)["engine"]["listen_rows"] == 1


def test_visitors_of_the_scans_missing_from_the_truth_are_reported(scenario, capsys, tmp_path):
    truth = tmp_path / "truth.csv"
    rows = (scenario / "truth.csv").read_text().splitlines()
    truth.write_text("\n".join(r for r in rows if not r.startswith("v002,")) + "\n")
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--truth", truth, "--no-progress")
    assert code == 0
    assert "1 visitor of the scans has no rows in truth.csv (v002): every track they start counts " \
           "as a false start" in err


def test_a_walk_that_gives_no_scans_says_why(scenario, capsys, tmp_path):
    walk = tmp_path / "walk.csv"
    walk.write_text("visitor,t,x,y\nv1,0,3,2.5\n")  # one position: no walk to hear anything on
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--walks", walk, "--no-progress")
    assert code == 0 and "walk.csv: the walks gave no scans: no beacon of the site is heard" in err


def test_listen_rows_after_the_end_of_their_walk_are_reported_once_as_missed(scenario, capsys, tmp_path):
    """Nothing can match them (times in another unit, or a longer walk's
    truth): scored silently, they only lowered the recall."""
    truth = tmp_path / "truth.csv"
    truth.write_text((scenario / "truth.csv").read_text() + "v002,500000,500060,e1,listen\n"
                     "v002,500100,500105,e2,listen\n")  # too short to count: not scored, not named
    code, out, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                         "--truth", truth, "--policy", "both", "--no-progress")
    assert code == 0
    assert err.count("1 listen row of truth.csv starts after the walk of their visitor ends "
                     "(v002 at e1): it counts as missed") == 1
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--truth", scenario / "truth.csv", "--no-progress")
    assert code == 0 and "after the walk" not in err


def test_render_audio_of_a_visitor_no_track_was_played_for_says_so(scenario, capsys, tmp_path):
    """A visitor of the replay who heard nothing is not 'not one of the visitors';
    a replay where nobody heard anything does not end in 'give one of none'."""
    beacon = load_zones(scenario / "zones.yaml").exhibits[0].beacon
    faint = "".join(f"{v},{t / 2:.1f},{beacon},-99\n" for v in ("q001", "q002") for t in range(60))
    scans = tmp_path / "scans.csv"
    scans.write_text((scenario / "scans.csv").read_text() + faint)
    out = tmp_path / "v.wav"
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scans,
                       "--render-audio", out, "--visitor", "q002", "--no-progress")
    assert code == 2 and ("--visitor q002: no track was played for them in this replay, so they "
                          "heard nothing to render; give one a track was played for: v001") in err, err
    scans.write_text("visitor,t,beacon,rssi\n" + faint)
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scans,
                       "--render-audio", out, "--visitor", "q003", "--no-progress")
    assert code == 2 and ("--visitor q003: no track was played for any visitor of this replay, so "
                          "there is no visit to render") in err and "none" not in err, err
    assert not out.exists()


def test_render_audio_of_an_unknown_visitor_suggests_the_nearest_and_writes_nothing(scenario, capsys, tmp_path):
    out = tmp_path / "v.wav"
    code, _, err = run(capsys, "--zones", scenario / "zones.yaml", "--scans", scenario / "scans.csv",
                       "--render-audio", out, "--visitor", "V001", "--no-progress")
    assert code == 2 and ("--visitor V001: not one of the visitors a track was played for; did you "
                          "mean v001? give one of v001") in err, err
    assert not out.exists()
