"""The radio model: what a device hears along a walk (guide.radio)."""

from __future__ import annotations

import statistics
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from guide.errors import GuideError, ScanLogError
from guide.radio import RSSI_MAX, RSSI_MIN, RadioModel, mean_rssi, read_walks, scans_from_walk
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def write_site(folder: Path, beacons: dict[str, tuple[float, float, int]],
               walls: list = ()) -> Path:
    """A real zones.yaml (and silent tracks): one exhibit per beacon."""
    lines = ["site: radio test", "languages: [en]", "beacons:"]
    for k, (bid, (x, y, tx)) in enumerate(beacons.items()):
        lines += [f"  {bid}:", f"    ibeacon: {{uuid: {UUID}, major: 1, minor: {k + 1}}}",
                  f"    tx_power: {tx}", f"    x: {x}", f"    y: {y}"]
    if walls:
        lines.append("walls:")
        lines += [f"  - [[{a[0]}, {a[1]}], [{b[0]}, {b[1]}]]" for a, b in walls]
    lines.append("exhibits:")
    for bid in beacons:
        lines += [f"  - id: ex-{bid}", f"    title: {{en: {bid}}}", f"    beacon: {bid}",
                  "    radius: 2.0", f"    tracks: {{en: en/{bid}.wav}}"]
        (folder / "tracks" / "en").mkdir(parents=True, exist_ok=True)
        with wave.open(str(folder / "tracks" / "en" / f"{bid}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)
            w.setframerate(8000)
            w.writeframes(b"\x80" * 8000)
    path = folder / "zones.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def standing(visitor: str, x: float, y: float, seconds: float) -> list[tuple[str, float, float, float]]:
    return [(visitor, 0.0, x, y), (visitor, seconds, x, y)]


CLEAN = replace(RadioModel.textbook(), packet_loss=0.0, wall_loss_db=0.0)


@pytest.fixture
def one_beacon(tmp_path):
    return load_zones(write_site(tmp_path, {"a": (0.0, 0.0, -59)}))


def test_mean_rssi_falls_ten_n_db_per_decade_of_distance(one_beacon):
    for n in (2.0, 3.0):
        model = replace(CLEAN, path_loss_exponent=n)
        at_1 = mean_rssi(one_beacon, "a", 1.0, 0.0, model)
        at_10 = mean_rssi(one_beacon, "a", 10.0, 0.0, model)
        assert at_1 == pytest.approx(-59.0)
        assert at_1 - at_10 == pytest.approx(10 * n)


def test_a_wall_between_device_and_beacon_costs_wall_loss_db(tmp_path):
    site = load_zones(write_site(tmp_path, {"a": (0.0, 0.0, -59)},
                                 walls=[((5, -5), (5, 5)), ((8, -5), (8, 5))]))
    model = replace(CLEAN, wall_loss_db=7.5)
    free = replace(model, wall_loss_db=0.0)
    assert mean_rssi(site, "a", 4.0, 1.0, model) == pytest.approx(mean_rssi(site, "a", 4.0, 1.0, free))
    assert mean_rssi(site, "a", 6.0, 1.0, free) - mean_rssi(site, "a", 6.0, 1.0, model) == pytest.approx(7.5)
    assert mean_rssi(site, "a", 9.0, 1.0, free) - mean_rssi(site, "a", 9.0, 1.0, model) == pytest.approx(15.0)


def test_a_beacon_mounted_on_a_wall_is_not_behind_it(tmp_path):
    site = load_zones(write_site(tmp_path, {"a": (5.0, 0.0, -59)}, walls=[((5, -5), (5, 5))]))
    model = replace(CLEAN, wall_loss_db=10.0)
    assert mean_rssi(site, "a", 3.0, 0.0, model) == pytest.approx(
        mean_rssi(site, "a", 3.0, 0.0, replace(model, wall_loss_db=0.0)))


def test_packets_received_one_metre_away_have_tx_power_as_median(one_beacon):
    for fading in (2.0, 5.6):  # mild Rician, and Rayleigh with its deep fades
        model = replace(CLEAN, fading_db=fading)
        rows = list(scans_from_walk(one_beacon, standing("v", 1.0, 0.0, 120.0), model, seed=4))
        assert len(rows) > 1000
        assert abs(statistics.median(r[3] for r in rows) - (-59)) <= 1.0


def test_fading_has_deep_negative_fades_not_symmetric_noise(one_beacon):
    model = replace(CLEAN, fading_db=5.6, fading_change_hz=2.0)
    walk = [("v", 0.0, 1.0, 0.0), ("v", 300.0, 3.0, 0.0)]  # a slow walk meets many fades
    rssi = np.array([r[3] for r in scans_from_walk(one_beacon, walk, model, seed=2)], dtype=float)
    level = np.array([mean_rssi(one_beacon, "a", 1.0 + 2.0 * r[1] / 300.0, 0.0, model)
                      for r in scans_from_walk(one_beacon, walk, model, seed=2)])
    dev = rssi - level
    below = np.median(dev) - np.percentile(dev, 1)
    above = np.percentile(dev, 99) - np.median(dev)
    assert below > above + 5.0


def test_packet_loss_and_rate_give_the_expected_number_of_packets(one_beacon):
    for rate, loss in ((10.0, 0.0), (10.0, 0.3), (1.0, 0.5)):
        model = replace(CLEAN, rate_hz=rate, packet_loss=loss)
        n = sum(1 for _ in scans_from_walk(one_beacon, standing("v", 1.0, 0.0, 600.0), model, seed=1))
        expected = 600.0 * rate * (1 - loss)
        assert abs(n - expected) <= 4 * (expected * max(loss, 0.02)) ** 0.5 + 3


def test_rate_argument_overrides_the_models_rate(one_beacon):
    walk = standing("v", 1.0, 0.0, 100.0)
    fast = sum(1 for _ in scans_from_walk(one_beacon, walk, CLEAN, seed=1))
    slow = sum(1 for _ in scans_from_walk(one_beacon, walk, CLEAN, seed=1, rate_hz=1.0))
    assert fast == pytest.approx(1000, abs=15)
    assert slow == pytest.approx(100, abs=5)


def test_same_seed_same_scans_and_another_seed_other_scans(tmp_path):
    site = load_zones(write_site(tmp_path, {"a": (0.0, 0.0, -59), "b": (6.0, 0.0, -61)}))
    walk = [("v1", 0.0, 0.0, 1.0), ("v1", 30.0, 6.0, 1.0), ("v2", 0.0, 3.0, 2.0), ("v2", 20.0, 3.0, 2.0)]
    model = RadioModel.harsh()
    first = list(scans_from_walk(site, walk, model, seed=11))
    assert first == list(scans_from_walk(site, walk, model, seed=11))
    assert first != list(scans_from_walk(site, walk, model, seed=12))


def test_a_visitors_scans_do_not_change_when_other_visitors_are_added(one_beacon):
    alone = list(scans_from_walk(one_beacon, standing("v2", 2.0, 0.0, 20.0), RadioModel.museum(), seed=3))
    walk = standing("v1", 1.0, 0.0, 20.0) + standing("v2", 2.0, 0.0, 20.0)
    together = [r for r in scans_from_walk(one_beacon, walk, RadioModel.museum(), seed=3) if r[0] == "v2"]
    assert together == alone


def test_rows_come_in_time_order_per_visitor_with_valid_rssi(tmp_path):
    site = load_zones(write_site(tmp_path, {"a": (0.0, 0.0, -59), "b": (4.0, 0.0, -59)}))
    strong = replace(site, beacons={**site.beacons, "a": replace(site.beacons["a"], tx_power=10)})
    walk = [("v1", 0.0, 0.0, 0.0), ("v1", 60.0, 40.0, 0.0), ("v2", 5.0, 1.0, 0.0), ("v2", 30.0, 1.0, 0.0)]
    rows = list(scans_from_walk(strong, walk, RadioModel.harsh(), seed=5))
    for v in ("v1", "v2"):
        ts = [r[1] for r in rows if r[0] == v]
        assert ts and ts == sorted(ts)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # visitor after visitor
    rssi = [r[3] for r in rows]
    assert all(isinstance(r, int) and RSSI_MIN <= r <= RSSI_MAX for r in rssi)
    assert max(rssi) == RSSI_MAX  # a beacon far too strong is clipped, not passed on
    assert min(r[1] for r in rows if r[0] == "v2") >= 5.0


def test_weak_packets_below_sensitivity_are_not_received(one_beacon):
    model = replace(CLEAN, sensitivity_dbm=-90.0)
    rows = list(scans_from_walk(one_beacon, standing("v", 60.0, 0.0, 30.0), model, seed=1))  # ~ -95 dBm
    near = list(scans_from_walk(one_beacon, standing("v", 20.0, 0.0, 30.0), model, seed=1))  # ~ -85 dBm
    assert len(rows) < 15 and len(near) > 250
    assert all(r[3] >= -90 for r in rows + near)


def test_walking_away_from_a_beacon_puts_the_body_in_the_way(one_beacon):
    model = replace(CLEAN, body_loss_db=10.0, fading_db=0.0)
    towards = [("v", 0.0, 20.0, 0.5), ("v", 16.0, 4.0, 0.5)]
    away = [("v", 0.0, 4.0, 0.5), ("v", 16.0, 20.0, 0.5)]

    def at(walk, x):
        rows = list(scans_from_walk(one_beacon, walk, model, seed=1))
        ts = np.array([r[1] for r in rows])
        xs = np.interp(ts, [w[1] for w in walk], [w[2] for w in walk])
        return np.median([r[3] for r, px in zip(rows, xs) if abs(px - x) < 0.5])

    assert at(towards, 12.0) - at(away, 12.0) == pytest.approx(10.0, abs=1.5)


def test_harsh_radio_often_makes_a_neighbour_louder_than_the_nearest_beacon(tmp_path):
    # exhibits 3 m apart; the visitor stands 1 m from one, 2 m from the other
    pairs = 24
    beacons = {f"n{k}": (10.0 * k, 0.0, -59) for k in range(pairs)}
    beacons.update({f"f{k}": (10.0 * k + 3.0, 0.0, -59) for k in range(pairs)})
    site = load_zones(write_site(tmp_path, beacons))
    walk = [r for k in range(pairs) for r in standing(f"v{k:02d}", 10.0 * k + 1.0, 0.0, 30.0)]

    def neighbour_wins(model):
        heard: dict[tuple[str, str], list[int]] = {}
        for v, _, b, rssi in scans_from_walk(site, walk, model, seed=8):
            heard.setdefault((v, b), []).append(rssi)
        wins = 0
        for k in range(pairs):
            v = f"v{k:02d}"
            near = np.median(heard.get((v, f"n{k}"), [-127]))
            far = np.median(heard.get((v, f"f{k}"), [-127]))
            wins += far > near
        return wins

    assert neighbour_wins(RadioModel.textbook()) == 0
    assert neighbour_wins(RadioModel.harsh()) >= pairs // 8


def test_a_model_with_a_value_out_of_range_is_refused_naming_the_field():
    with pytest.raises(GuideError, match="packet_loss"):
        RadioModel(packet_loss=1.5)
    with pytest.raises(GuideError, match="textbook, museum, harsh"):
        RadioModel.preset("perfect")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_walks_streams_rows_and_ignores_extra_columns(tmp_path):
    p = write(tmp_path / "walks.csv", "visitor,t,x,y,note\nv1,0.0,1.5,2.0,door\nv1,0.1,1.6,2.0,\n\nv2,0,3,4,\n")
    assert list(read_walks(p)) == [("v1", 0.0, 1.5, 2.0), ("v1", 0.1, 1.6, 2.0), ("v2", 0.0, 3.0, 4.0)]


@pytest.mark.parametrize("text, where, field", [
    ("visitor,t,x,y\nv1,0.0,1.0,2.0\nv1,0.1,east,2.0\n", ":3:", "x"),
    ("visitor,t,x,y\nv1,0.0,1.0,2.0\nv1,0.1,1.0,nan\n", ":3:", "y"),
    ("visitor,t,x,y\nv1,5.0,1.0,2.0\nv1,4.0,1.0,2.0\n", ":3:", "backwards"),
    ("visitor,t,x,y\nv1,5.0,1.0,2.0\nv2,0.0,1.0,2.0\nv1,4.0,1.0,2.0\n", ":4:", "backwards"),
    ("visitor,t,x,y\nv1,0.0,1.0\n", ":2:", "expected 4 fields (visitor,t,x,y), found 3"),
    ("visitor,time,x,y\nv1,0.0,1.0,2.0\n", ":1:", "lacks t"),
    ("   \nv1,0.0,1.0,2.0\n", ":1:", "starts with the line visitor,t,x,y (found a blank line)"),
])
def test_a_bad_walk_csv_names_the_file_line_and_field(tmp_path, text, where, field):
    p = write(tmp_path / "walks.csv", text)
    with pytest.raises(ScanLogError) as e:
        list(read_walks(p))
    assert f"walks.csv{where}" in str(e.value)
    assert field in str(e.value)


def test_a_walk_with_its_visitors_interleaved_is_read_one_visitor_after_another(tmp_path):
    p = write(tmp_path / "walks.csv", "visitor,t,x,y\nv2,0,9,9\nv1,0,1,2\nv2,1,8,9\nv1,1,2,2\nv3,0,0,0\n")
    assert list(read_walks(p)) == [("v2", 0.0, 9.0, 9.0), ("v2", 1.0, 8.0, 9.0), ("v1", 0.0, 1.0, 2.0),
                                   ("v1", 1.0, 2.0, 2.0), ("v3", 0.0, 0.0, 0.0)]
    assert [r[0] for r in read_walks(p, grouped=False)] == ["v2", "v1", "v2", "v1", "v3"]


def test_a_missing_walk_file_is_a_clear_error(tmp_path):
    with pytest.raises(ScanLogError, match="nowhere.csv"):
        list(read_walks(tmp_path / "nowhere.csv"))


def test_a_visitors_rows_split_by_another_visitor_are_refused(one_beacon):
    walk = [("v1", 0.0, 1, 0), ("v1", 1.0, 1, 0), ("v2", 0.0, 2, 0), ("v1", 2.0, 1, 0)]
    with pytest.raises(ScanLogError, match="v1"):
        list(scans_from_walk(one_beacon, walk, CLEAN, seed=1))


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_a_walk_shorter_than_the_heading_smoothing_window_is_heard(one_beacon, rows):
    # 0.1 s apart: a walk of fewer samples than the second the headings are smoothed over
    model = RadioModel.museum()
    assert model.body_loss_db > 0  # headings are computed
    for dx in (0.0, 0.1):  # standing, and walking at 1 m/s
        walk = [("v1", 0.1 * k, 1.0 + dx * k, 0.0) for k in range(rows)]
        scans = list(scans_from_walk(one_beacon, walk, model, seed=1, rate_hz=100))
        if rows == 1:
            assert scans == []  # an instant: no time to hear a packet in
        else:
            assert len(scans) > 5
            assert all(0.0 <= t <= 0.1 * (rows - 1) and b == "a" for _, t, b, _ in scans)


def test_a_spreadsheet_walk_with_a_bom_and_repeated_times_is_heard(tmp_path, one_beacon):
    p = tmp_path / "walks.csv"
    p.write_text("\ufeffvisitor,t,x,y\nv1,0.0,1.0,0.0\nv1,0.0,1.0,0.0\nv1,5.0,2.0,0.0\nv1,5.0,2.5,0.0\n"
                 "v1,10.0,3.0,0.0\n", encoding="utf-8")
    rows = list(scans_from_walk(one_beacon, read_walks(p), RadioModel.museum(), seed=1))
    assert len(rows) > 50
