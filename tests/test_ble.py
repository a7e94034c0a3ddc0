"""Advertisements into beacon ids, and the sources that deliver them: the
parser on its own (and fuzzed), a replayed recording, and bleak's real BlueZ
backend against a mock BlueZ on a private system bus."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bluez_mock import MockBlueZ, available
from guide.ble import (APPLE, EDDYSTONE, Backoff, BeaconParser, BleakSource,
                       ReplaySource, describe, eddystone_payload, ibeacon_payload)
from guide.site import Eddystone, IBeacon
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
DOME = IBeacon(uuid=UUID, major=100, minor=1)
TUNNEL = IBeacon(uuid=UUID, major=100, minor=2)
ROCKET = Eddystone(namespace="edd1ebeac04e5defa017", instance="0000000000a1")
STRANGER = IBeacon(uuid=UUID, major=100, minor=99)

ZONES = f"""\
site: Test bunker
languages: [fr, en]
beacons:
  dome-n:
    ibeacon: {{uuid: {UUID}, major: 100, minor: 1}}
    tx_power: -59
    x: 0
    y: 0
  tunnel-3:
    ibeacon: {{uuid: {UUID.upper()}, major: 100, minor: 2}}
    tx_power: -59
    x: 10
    y: 0
  rocket:
    eddystone: {{namespace: "{ROCKET.namespace}", instance: "{ROCKET.instance}"}}
    tx_power: -59
    x: 20
    y: 0
exhibits:
  - {{id: dome, title: {{fr: La coupole}}, beacon: dome-n, radius: 3, tracks: {{fr: fr/dome.wav}}}}
  - {{id: tunnel, title: {{fr: Le tunnel}}, beacon: tunnel-3, radius: 3, tracks: {{fr: fr/tunnel.wav}}}}
  - {{id: rocket, title: {{fr: La fusée}}, beacon: rocket, radius: 3, tracks: {{fr: fr/rocket.wav}}}}
"""


@pytest.fixture
def site(tmp_path, make_wav):
    for name in ("dome", "tunnel", "rocket"):
        make_wav(tmp_path / "tracks" / "fr" / f"{name}.wav", 0.5)
    (tmp_path / "zones.yaml").write_text(ZONES)
    return load_zones(tmp_path / "zones.yaml")


@pytest.fixture
def parser(site):
    return BeaconParser(site.beacons)


def apple(ident, tx=-59):
    return {APPLE: ibeacon_payload(ident, tx)}


# ----- the parser -----------------------------------------------------------

def test_an_ibeacon_of_the_zone_map_is_named_by_its_beacon_id(parser):
    assert parser.parse(apple(DOME), {}, -63) == "dome-n"
    assert parser.parse(apple(TUNNEL), None, -80) == "tunnel-3"  # uuid written upper-case in the map
    assert parser.counts().sightings == 2


def test_an_eddystone_uid_of_the_zone_map_is_named_by_its_beacon_id(parser):
    assert parser.parse({}, {EDDYSTONE: eddystone_payload(ROCKET)}, -70) == "rocket"
    # the two reserved bytes at the end are often left out
    assert parser.parse({}, {EDDYSTONE: eddystone_payload(ROCKET)[:18]}, -70) == "rocket"


def test_a_beacon_outside_the_zone_map_is_dropped_and_remembered_for_staff(parser):
    assert parser.parse(apple(STRANGER), {}, -60) is None
    assert parser.parse(apple(STRANGER), {}, -61) is None
    assert parser.counts().unknown == 2
    assert parser.unknown_seen == {STRANGER: 2}
    assert describe(STRANGER) == f"ibeacon: {{uuid: {UUID}, major: 100, minor: 99}}"


@pytest.mark.parametrize("rssi", [1, 20, -128, -300, None, True, 3.5, "-60"])
def test_an_implausible_rssi_is_dropped_and_counted(parser, rssi):
    assert parser.parse(apple(DOME), {}, rssi) is None
    assert parser.counts().implausible == 1


@pytest.mark.parametrize("rssi", [0, -127])
def test_the_ends_of_the_rssi_range_are_plausible(parser, rssi):
    assert parser.parse(apple(DOME), {}, rssi) == "dome-n"


def test_a_short_beacon_frame_is_malformed_and_dropped(parser):
    assert parser.parse({APPLE: ibeacon_payload(DOME)[:22]}, {}, -60) is None
    assert parser.parse({}, {EDDYSTONE: eddystone_payload(ROCKET)[:17]}, -60) is None
    assert parser.counts().malformed == 2


def test_advertisements_that_are_not_beacons_are_counted_as_other(parser):
    airpods = {APPLE: bytes.fromhex("0719010e2022f58f01000a")}
    eddystone_url = {EDDYSTONE: bytes.fromhex("10ee03676f6f676c6507")}
    assert parser.parse(airpods, {}, -50) is None
    assert parser.parse({0x0075: b"\x42\x04"}, eddystone_url, -50) is None
    assert parser.parse({}, {}, -50) is None
    counts = parser.counts()
    assert counts.other == 3 and counts.dropped == 3 and counts.sightings == 0


def _junk():
    data = st.one_of(st.binary(max_size=40), st.integers(), st.none(), st.text(max_size=5),
                     st.lists(st.integers(0, 255), max_size=30))
    beaconish = st.sampled_from([ibeacon_payload(DOME), eddystone_payload(ROCKET)]).flatmap(
        lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))
    return st.one_of(data, beaconish, st.binary(min_size=1, max_size=40).map(lambda b: b"\x02\x15" + b),
                     st.binary(max_size=30).map(lambda b: b"\x00" + b))


@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(manufacturer=st.one_of(st.none(), st.dictionaries(
           st.one_of(st.just(APPLE), st.integers(-1, 70000)), _junk(), max_size=3)),
       service=st.one_of(st.none(), st.dictionaries(
           st.one_of(st.just(EDDYSTONE), st.text(max_size=40)), _junk(), max_size=3)),
       rssi=st.one_of(st.integers(-1000, 1000), st.none(), st.floats(), st.booleans()))
def test_fuzzed_advertisements_never_crash_the_parser(site,  # read-only: safe to share
                                                     manufacturer, service, rssi):
    parser = BeaconParser(site.beacons)
    beacon = parser.parse(manufacturer, service, rssi)
    assert beacon is None or beacon in site.beacons
    counts = parser.counts()
    assert counts.sightings + counts.dropped == 1
    if beacon is not None:
        assert type(rssi) is int and -127 <= rssi <= 0


# ----- replayed sightings -----------------------------------------------------

def test_a_replay_delivers_each_row_when_the_visit_clock_reaches_it():
    rows = [(0.0, "dome-n", -71), (0.05, "dome-n", -70), (0.10, "ghost", -60), (0.15, "rocket", -80)]
    source = ReplaySource(rows, known={"dome-n", "rocket"})
    got = []

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        now = lambda: loop.time() - t0  # noqa: E731
        await source.run(lambda b, r: got.append((now(), b, r)), now)

    asyncio.run(main())
    assert [(b, r) for _, b, r in got] == [("dome-n", -71), ("dome-n", -70), ("rocket", -80)]
    assert all(when >= t for (when, _, _), t in zip(got, (0.0, 0.05, 0.15)))
    assert source.skipped == 1


def test_a_replay_restarted_mid_visit_carries_on_from_the_visit_clock():
    rows = [(t / 10, "dome-n", -70 - t) for t in range(10)]
    source = ReplaySource(rows, catch_up=0.1)
    got = []

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time() - 0.55  # the visit had reached 0.55 s before the restart
        await source.run(lambda b, r: got.append(r), lambda: loop.time() - t0)

    asyncio.run(main())
    assert got == [-75, -76, -77, -78, -79]  # from 0.5 s, less the catch-up


def test_a_replay_reads_its_rows_as_it_delivers_them_never_holding_the_walk():
    """ReplaySource made a list of its rows first: `guide run --replay` of a
    day's walk (7 million rows at 10 Hz from 20 beacons) held all of it."""
    read, ahead = [0], []

    def rows():
        for k in range(2000):
            read[0] += 1
            yield k / 1000, "ghost" if k % 7 == 0 else "dome-n", -70
    source = ReplaySource(rows(), known={"dome-n"}, catch_up=20.0)

    async def main():  # the clock at 10 s, past every row: all delivered at once
        await source.run(lambda b, r: ahead.append(read[0] - source.delivered - source.skipped), lambda: 10.0)

    asyncio.run(main())
    assert source.delivered + source.skipped == 2000 and source.skipped == 286
    assert max(ahead) <= 1  # the row being delivered, no more


# ----- bleak's real BlueZ backend against the mock BlueZ -----------------------

needs_dbus = pytest.mark.skipif(not available(), reason="needs dbus-daemon (Debian: dbus-daemon)")


@pytest.fixture
def bluez():
    with MockBlueZ() as mock:
        yield mock


async def _until(condition, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


def _run_source(source, script):
    got = []

    async def main():
        task = asyncio.create_task(source.run(lambda b, r: got.append((b, r))))
        try:
            await script(got)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return got


@needs_dbus
def test_bleak_reports_configured_beacons_and_ignores_the_rest(site, bluez):
    bluez.add_adapter("hci0")
    dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
    rocket = bluez.add_beacon("AA:BB:CC:DD:EE:02", ROCKET)
    stranger = bluez.add_beacon("AA:BB:CC:DD:EE:03", STRANGER)
    phone = bluez.add_device("AA:BB:CC:DD:EE:04", manufacturer={0x0006: b"\x01\x09\x20"})
    source = BleakSource(BeaconParser(site.beacons), silence=10)

    async def script(got):
        await _until(bluez.discovering)  # the scan is running: nothing is lost
        for rssi in (-80, -75, -70):
            dome.advertise(rssi)
            stranger.advertise(rssi)
            phone.advertise(rssi)
            rocket.advertise(rssi - 5)
        await _until(lambda: len(got) >= 6)
        await asyncio.sleep(0.1)

    got = _run_source(source, script)
    assert [g for g in got if g[0] == "dome-n"][-3:] == [("dome-n", -80), ("dome-n", -75), ("dome-n", -70)]
    assert [g for g in got if g[0] == "rocket"][-3:] == [("rocket", -85), ("rocket", -80), ("rocket", -75)]
    assert {b for b, _ in got} == {"dome-n", "rocket"}
    assert source.parser.counts().unknown >= 3 and source.parser.counts().other >= 3


@needs_dbus
def test_with_no_adapter_it_says_so_and_retries_until_one_appears(site, bluez, caplog):
    source = BleakSource(BeaconParser(site.beacons), silence=10, backoff=Backoff(first=0.1, longest=0.2))

    async def script(got):
        await _until(lambda: sum("No Bluetooth adapter" in r.message for r in caplog.records) >= 2)
        bluez.add_adapter("hci0")
        dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
        await _until(lambda: any("adapter found" in r.message for r in caplog.records))
        dome.advertise(-66)
        await _until(lambda: got)

    with caplog.at_level(logging.INFO, logger="guide.ble"):
        got = _run_source(source, script)
    assert got[-1] == ("dome-n", -66)
    message = next(r.message for r in caplog.records if "No Bluetooth adapter" in r.message)
    assert "retrying" in message and "bluetoothd" in message


@needs_dbus
def test_an_adapter_that_vanishes_mid_visit_is_found_again_when_it_returns(site, bluez, caplog):
    bluez.add_adapter("hci0")
    dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
    source = BleakSource(BeaconParser(site.beacons), silence=0.3, backoff=Backoff(first=0.1, longest=0.4))

    async def script(got):
        await _until(bluez.discovering)
        dome.advertise(-70)
        await _until(lambda: got)
        bluez.remove_adapter("hci0")
        await _until(lambda: any("adapter lost" in r.message for r in caplog.records))
        bluez.add_adapter("hci0")
        back = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
        await _until(lambda: any("scanning again" in r.message for r in caplog.records))
        back.advertise(-61)
        await _until(lambda: got[-1] == ("dome-n", -61))

    with caplog.at_level(logging.INFO, logger="guide.ble"):
        got = _run_source(source, script)
    assert got[0] == ("dome-n", -70) and got[-1] == ("dome-n", -61)
    assert source.restarts >= 1


@needs_dbus
def test_guide_record_writes_a_scan_log_the_simulator_can_replay(site, bluez, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from guide.replay import read_scans

    bluez.add_adapter("hci0")
    dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
    stranger = bluez.add_beacon("AA:BB:CC:DD:EE:03", STRANGER)
    out = tmp_path / "walk.csv"
    p = subprocess.Popen(
        [sys.executable, "-m", "guide", "record", "--zones", str(site.path), "--out", str(out),
         "--visitor", "staff-1", "--duration", "3"],
        cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "scanning for beacons" not in p.stderr.readline():
            assert p.poll() is None, p.communicate()
        levels = list(range(-90, -54, 5))
        for rssi in levels:  # the walker comes closer to the dome
            dome.advertise(rssi)
            stranger.advertise(-80)
        _, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out.read_text().splitlines()[0] == "visitor,t,beacon,rssi"
    rows = list(read_scans(out, site))  # a valid FORMATS.md scan log
    assert [(v, b, r) for v, t, b, r in rows][-len(levels):] == [("staff-1", "dome-n", r) for r in levels]
    assert all(0 <= t < 3.5 for _, t, _, _ in rows)
    assert "tunnel-3: never heard" in err and "rocket: never heard" in err
    assert describe(STRANGER) in err  # ready to paste into zones.yaml


@needs_dbus
@pytest.mark.parametrize("force", [False, True], ids=["new", "--force"])
def test_guide_record_on_a_full_disk_keeps_every_whole_row_and_says_what_was_lost(site, bluez, tmp_path, force):
    """The scan log may grow no further (RLIMIT_FSIZE: the kernel cuts a
    write short, then refuses it, as a full disk does) after a few rows: the
    recording stops there, exits 1 saying so, with no traceback from the
    radio's callback, and the file ends with a whole row (it used to end in
    half a row); with --force the old scan log is left as it was."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    from guide.replay import read_scans

    bluez.add_adapter("hci0")
    dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
    out = tmp_path / "walk.csv"
    old = "visitor,t,beacon,rssi\nold,0.000,dome-n,-90\n"
    if force:
        out.write_text(old)
    limit = 300  # the header and a few rows

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = subprocess.Popen(
        [sys.executable, "-m", "guide", "record", "--zones", str(site.path), "--out", str(out),
         "--duration", "3", *(["--force"] if force else [])],
        cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=small_disk)
    try:
        while "scanning for beacons" not in p.stderr.readline():
            assert p.poll() is None, p.communicate()
        for i in range(200):
            dome.advertise(-60 - i % 20)
        _, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 1, err
    assert "Traceback" not in err and "cannot write the scan log (File too large)" in err
    assert "free space on the disk" in err
    kept = out if not force else next(tmp_path.glob("walk.csv.*.part"))
    if force:
        assert out.read_text() == old and f"{out} is left as it was; the rows recorded are in {kept}" in err
    data = kept.read_bytes()
    assert data.endswith(b"\n") and limit - 40 < len(data) <= limit  # whole rows, as many as fitted
    rows = list(read_scans(kept, site))
    assert len(rows) >= 5 and {b for _, _, b, _ in rows} == {"dome-n"}
    assert f"{kept}: {len(rows)} of the " in err and "advertisements heard are kept" in err


def test_guide_record_refuses_to_overwrite_a_scan_log(site, tmp_path, capsys):
    from guide.cli import main

    out = tmp_path / "walk.csv"
    out.write_text("visitor,t,beacon,rssi\nv,0.0,dome-n,-60\n")
    assert main(["record", "--zones", str(site.path), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text().endswith("-60\n")


# ----- guide record: what it will not write over, and a recording of nothing -----

@pytest.fixture
def no_bluez(monkeypatch, tmp_path):
    """A system bus that is not there: no adapter can be reached (and no real one is touched)."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")


def record(site, *options) -> int:
    from guide.cli import main

    return main(["record", "--zones", str(site.path), "--duration", "1", *map(str, options)])


@pytest.mark.parametrize("spelling", ["{zones}", "{tmp}/./zones.yaml", "{tmp}/link.yaml"])
def test_guide_record_never_writes_over_the_zone_map_even_with_force(site, tmp_path, capsys, no_bluez, spelling):
    (tmp_path / "link.yaml").symlink_to(site.path)
    before = site.path.read_bytes()
    out = spelling.format(zones=site.path, tmp=tmp_path)
    assert record(site, "--out", out, "--force") == 2
    err = capsys.readouterr().err
    assert f"--out {out} is the file of --zones" in err and "another --out path" in err
    assert site.path.read_bytes() == before


def test_guide_record_force_replaces_only_a_scan_log(site, tmp_path, capsys, no_bluez):
    notes = tmp_path / "notes.txt"
    notes.write_text("the walk of 2 May: start at the dome\n")
    assert record(site, "--out", notes, "--force") == 2
    err = capsys.readouterr().err
    assert f"--out {notes}: exists and is not a scan log" in err and "--force only replaces scan logs" in err
    assert notes.read_text() == "the walk of 2 May: start at the dome\n"


@pytest.mark.parametrize("options, message", [
    (["--visitor", "staff\t1"], "holds the control character"),
    (["--visitor", "a,b"], "without commas"),
    (["--visitor", " staff"], "without commas or spaces around it"),
    (["--duration", "inf"], "argument --duration: inf is out of range; give seconds, more than 0"),
    (["--duration", "1_0"], "argument --duration: 1_0 is not a number (write it without the '_')"),
    (["--duration", "0"], "--duration 0: give a number of seconds"),
])
def test_guide_record_refuses_a_visitor_or_duration_it_could_not_write(site, tmp_path, capsys, no_bluez,
                                                                        options, message):
    from guide.cli import main

    assert main(["record", "--zones", str(site.path), "--out", str(tmp_path / "w.csv"), *options]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "w.csv").exists()


def test_guide_record_with_an_empty_out_asks_for_a_file_name(site, tmp_path, capsys, no_bluez):
    assert record(site, "--out", "") == 2
    assert "guide: error: --out: give a file name" in capsys.readouterr().err


def test_guide_record_without_any_adapter_fails_and_keeps_no_empty_recording(site, tmp_path, capsys, no_bluez):
    out = tmp_path / "walk.csv"
    assert record(site, "--out", out) == 1
    err = capsys.readouterr().err
    assert "nothing recorded: no Bluetooth adapter could be reached in 1 s" in err
    assert f"no file was written to {out}" in err
    assert not out.exists()
    # --force over an earlier walk: that walk is kept, not traded for nothing
    out.write_text("visitor,t,beacon,rssi\nstaff,0.000,dome-n,-60\n")
    assert record(site, "--out", out, "--force") == 1
    assert f"{out} is left as it was" in capsys.readouterr().err
    assert out.read_text() == "visitor,t,beacon,rssi\nstaff,0.000,dome-n,-60\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks", "walk.csv", "zones.yaml"]


def test_guide_record_names_the_rows_a_killed_recording_left_behind(site, tmp_path, capsys, no_bluez):
    out = tmp_path / "walk [1].csv"  # glob characters in the name are not patterns
    left = tmp_path / "walk [1].csv.k2j9x.part"  # as tempfile names it in a `record --force`
    left.write_text("visitor,t,beacon,rssi\nstaff,0.000,dome-n,-60\n")
    (tmp_path / "walk1.csv.k2j9x.part").write_text("another walk's\n")
    assert record(site, "--out", out) == 1  # no adapter here: only the warning matters
    err = capsys.readouterr().err
    assert f"warning: {left} holds the rows of an earlier `guide record --force` into {out}" in err
    assert "walk1.csv" not in err
    assert left.read_text() == "visitor,t,beacon,rssi\nstaff,0.000,dome-n,-60\n"  # never touched


@needs_dbus
def test_guide_record_that_hears_nothing_says_so_and_exits_1(site, bluez, tmp_path, capsys):
    bluez.add_adapter("hci0")
    out = tmp_path / "walk.csv"
    assert record(site, "--out", out) == 1
    err = capsys.readouterr().err
    assert "nothing recorded: the adapter scanned but heard no advertisement at all in 1 s" in err
    assert not out.exists()


@needs_dbus
def test_guide_record_force_replaces_a_scan_log_once_the_new_walk_is_recorded(site, bluez, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    bluez.add_adapter("hci0")
    dome = bluez.add_beacon("AA:BB:CC:DD:EE:01", DOME)
    out = tmp_path / "walk.csv"
    out.write_text("visitor,t,beacon,rssi\nold,0.000,dome-n,-90\n")
    p = subprocess.Popen(
        [sys.executable, "-m", "guide", "record", "--zones", str(site.path), "--out", str(out),
         "--visitor", "new", "--duration", "2", "--force"],
        cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "scanning for beacons" not in p.stderr.readline():
            assert p.poll() is None, p.communicate()
        assert out.read_text() == "visitor,t,beacon,rssi\nold,0.000,dome-n,-90\n"  # until the end
        for rssi in (-70, -65, -60):
            dome.advertise(rssi)
        _, err = p.communicate(timeout=20)
    finally:
        p.kill()
    assert p.returncode == 0, err
    rows = out.read_text().splitlines()
    assert rows[0] == "visitor,t,beacon,rssi" and [r.split(",")[3] for r in rows[1:]][-3:] == ["-70", "-65", "-60"]
    assert all(r.startswith("new,") for r in rows[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks", "walk.csv", "zones.yaml"]
