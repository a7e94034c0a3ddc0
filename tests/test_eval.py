"""The evaluation tools: scenario generator options, and the radio's lead."""

from __future__ import annotations

import importlib.util
import math
import os
import statistics
import sys
from pathlib import Path

import pytest
import yaml

EVAL = Path(__file__).resolve().parent.parent / "eval"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"eval_{name}", EVAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


make_scenario = load("make_scenario")
leads = load("leads")


def groups(zones: Path) -> list[list[tuple[float, float]]]:
    """Beacon positions of the exhibits, grouped by cluster name (coin-1, coin-2...)."""
    z = yaml.safe_load(zones.read_text(encoding="utf-8"))
    out: dict[str, list[tuple[float, float]]] = {}
    for e in z["exhibits"]:
        b = z["beacons"][e["beacon"]]
        stem = e["id"].rsplit("-", 1)[0] if e["id"][-1].isdigit() else e["id"]
        out.setdefault(stem, []).append((b["x"], b["y"]))
    return list(out.values())


def gap(a, b) -> float:
    return min(math.dist(p, q) for p in a for q in b)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    out = {}
    for radio in ("textbook", "harsh"):
        folder = tmp_path_factory.mktemp(radio)
        make_scenario.make(folder, seed=5, rate=1.0, radio=radio, visitors=2, layout="gallery-like",
                           habits="brisk", spread="sparse")
        out[radio] = folder
    return out


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_sparse_site_has_one_cluster_and_room_between_groups(tmp_path, seed):
    rng = make_scenario.np.random.default_rng([seed, 7001])
    plan = make_scenario._layout(rng, "random")
    items = make_scenario._place_exhibits(rng, plan, "random", "sparse")
    zones = tmp_path / "zones.yaml"
    zones.write_text(make_scenario._zones_yaml(items, plan, "t", "", seed), encoding="utf-8")
    found = groups(zones)
    assert sum(len(g) > 1 for g in found) == 1
    assert min(gap(a, b) for i, a in enumerate(found) for b in found[i + 1:]) >= 6.5


def test_the_scenario_records_its_options(scenarios):
    info = (scenarios["textbook"] / "scenario.json").read_text(encoding="utf-8")
    assert '"habits": "brisk"' in info and '"spread": "sparse"' in info
    header = (scenarios["textbook"] / "zones.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith("--habits brisk --spread sparse")


def test_the_listened_exhibit_leads_by_more_on_textbook_radio_than_on_harsh(scenarios):
    clean, harsh = leads.leads(scenarios["textbook"]), leads.leads(scenarios["harsh"])
    assert clean and harsh
    assert statistics.median(clean) > 10 > statistics.median(harsh)
    assert sum(x < 0 for x in clean) < sum(x < 0 for x in harsh)


def test_leads_reports_a_missing_scenario_without_a_traceback(tmp_path, capsys):
    assert leads.main([str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, message", [
    ("--rate", "1_0", "argument --rate: 1_0 is not a number (write it without the '_'); give 10"),
    ("--seed", "-3", "argument --seed: -3 is out of range; give a seed: a whole number, 0 or more"),
    ("--visitors", "0", "argument --visitors: 0 is out of range; give a whole number, 1 or more"),
])
def test_make_scenario_refuses_a_number_the_files_would_refuse(tmp_path, capsys, option, value, message):
    args = ["--out", str(tmp_path / "s"), "--seed", "1", option, value]
    with pytest.raises(SystemExit) as exit_:
        make_scenario.main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_make_scenario_refuses_a_file_or_an_empty_name_as_its_folder(tmp_path, capsys):
    plain = tmp_path / "plain.txt"
    plain.write_text("keep me\n")
    assert make_scenario.main(["--out", str(plain), "--seed", "1"]) == 2
    assert f"--out {plain}: is a file, not a folder" in capsys.readouterr().err
    assert plain.read_text() == "keep me\n"
    assert make_scenario.main(["--out", "", "--seed", "1", "--force"]) == 2
    assert "--out: give the name of a new folder" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["score", "stop_bound", "calibrate_split"])
def test_the_eval_scripts_report_a_missing_scenario_in_one_line_exit_2(tmp_path, script):
    import subprocess

    done = subprocess.run([sys.executable, str(EVAL / f"{script}.py"), str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"{script}.py: error: ") and "nowhere" in done.stderr


def _killed(job):
    os._exit(9)  # a worker the kernel's OOM killer took


def test_score_reports_a_killed_worker_in_one_line_exit_2(scenarios, monkeypatch, capsys):
    score = load("score")
    monkeypatch.setattr(score, "run", _killed)
    monkeypatch.setattr(sys, "argv", ["score.py", str(scenarios["textbook"])])
    with pytest.raises(SystemExit) as stop:
        score.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("score.py: error: a scoring process was killed") and "run again" in err


def _one_exhibit_folder(folder: Path, make_wav) -> Path:
    """A site of one exhibit (a 47 s track) and a visitor who hears it for
    20 s, then only beacons of another site until t=700: the walk's end."""
    (folder / "zones.yaml").write_text(
        "site: One\nlanguages: [en]\nbeacons:\n  b-e1:\n"
        "    ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 9, minor: 1}\n"
        "    tx_power: -59\n    x: 3\n    y: 2\nexhibits:\n  - id: e1\n    title: {en: One}\n"
        "    beacon: b-e1\n    radius: 1.5\n    tracks: {en: en/e1.wav}\n")
    make_wav(folder / "tracks" / "en" / "e1.wav", 47.0)
    (folder / "scans.csv").write_text(
        "visitor,t,beacon,rssi\n" + "".join(f"v1,{i / 10:.1f},b-e1,-62\n" for i in range(201))
        + "v1,350.0,elsewhere,-80\nv1,700.0,elsewhere,-80\n")
    (folder / "truth.csv").write_text("visitor,start,end,exhibit,intent\nv1,0,20,e1,glance\n")
    return folder


@pytest.mark.parametrize("script", ["score", "calibrate_split"])
def test_the_eval_scripts_end_a_walk_at_its_last_scan_row_as_simulate_does(tmp_path, make_wav, script):
    """The track plays out (47 s of unwanted audio, not the 680 s to the
    walk's end) and the walk lasts its whole 700 s, as in simulate.py."""
    from guide.metrics import read_truth
    from guide.zones import load_zones

    folder = _one_exhibit_folder(tmp_path, make_wav)
    module = load(script)
    if script == "score":
        m = module.run((str(folder), "engine", 1.0, 0))
    else:
        m = module.run(load_zones(folder / "zones.yaml"), folder / "scans.csv",
                       read_truth(folder / "truth.csv"), {"v1"})
    assert m.false_starts == 1
    assert m.unwanted == pytest.approx(47.0, abs=0.1)
    assert m.hours == pytest.approx(700 / 3600)
