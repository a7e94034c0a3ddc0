"""The replay drives the engine as the device does: every observation, a
tick at each deadline the engine asks for, `finished` when a track ends.
The simulator's figures are the device's only if the two agree."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from guide import tracks
from guide.actions import End, Pause, Resume, Start, to_event
from guide.engine import Engine
from guide.replay import read_scans, replay
from guide.zones import load_zones


@pytest.fixture(scope="module")
def gallery(shared_dir: Path):
    folder = shared_dir / "data" / "gallery-sample"
    return load_zones(folder / "zones.yaml"), folder / "scans.csv"


def as_the_device_drives_it(site, rows) -> list[dict]:
    """One engine per visitor, called as guide.device calls it: a tick at
    every deadline and `finished` at every track end before each packet is
    observed, in time order."""
    events: list[dict] = []
    by: dict[str, list] = {}
    for row in rows:
        by.setdefault(row[0], []).append(row)
    for visitor, mine in by.items():
        engine, track_end = Engine(site, "en"), math.inf

        def perform(actions, t):
            nonlocal track_end
            for a in actions:
                if isinstance(a, Start):
                    track_end = t + tracks.duration(site.track_path(a.track)) - a.offset
                elif isinstance(a, End):
                    track_end = math.inf
                events.append(to_event(a, visitor=visitor, t=t))

        def until(t):
            nonlocal track_end
            while True:
                d = engine.next_deadline()
                d = math.inf if d is None else d
                if track_end <= t and track_end <= d:
                    at, track_end = track_end, math.inf
                    perform(engine.finished(at), at)
                elif d <= t:
                    perform(engine.tick(d), d)
                else:
                    return

        for _, t, beacon, rssi in mine:
            until(t)
            perform(engine.observe(beacon, rssi, t), t)
        until(mine[-1][1])
    return events


def test_an_event_gives_its_seconds_to_the_millisecond():
    assert to_event(Pause(exhibit="dome", position=1.0713426619913662), visitor="v1", t=2.00049) == {
        "visitor": "v1", "t": 2.0, "event": "pause", "exhibit": "dome", "position": 1.071}
    assert to_event(Resume(exhibit="dome", position=1.0713426619913662), visitor="v1", t=3)["position"] == 1.071
    start = Start(exhibit="dome", lang="en", track="en/dome.ogg", offset=12.34567)
    assert to_event(start, visitor="v1", t=3)["offset"] == 12.346


@pytest.mark.parametrize("keep", [1.0, 0.1])  # the sample at 10 Hz, and thinned to 1 Hz
def test_the_replay_gives_the_events_of_the_engine_driven_as_on_the_device(gallery, keep):
    site, scans = gallery
    rng = random.Random(5)
    rows = [r for r in read_scans(scans, site) if r[0] in ("v001", "v002", "v003")
            and rng.random() < keep]
    events: list[dict] = []
    replay(site, rows, lang="en", emit=events.append)
    assert any(e["event"] == "start" for e in events)
    assert events == as_the_device_drives_it(site, rows)


def test_a_few_seconds_heard_then_a_long_silence_are_no_dwell(gallery):
    """2 s at an exhibit (under its 5 s dwell), a minute with no packet (a
    pocket, a lift, a lost adapter), then two packets: that is no arrival.
    The replay used to tick the engine only once it had started something,
    so the silence never happened for it and the first packet after it
    started the track."""
    site, _ = gallery
    ex = site.exhibits[0]
    rows = [("v", round(0.1 * i, 1), ex.beacon, -50) for i in range(20)]
    rows += [("v", 62.0, ex.beacon, -50), ("v", 62.1, ex.beacon, -50)]
    events: list[dict] = []
    replay(site, rows, lang="en", emit=events.append)
    assert events == []
    steady = [("v", round(0.1 * i, 1), ex.beacon, -50) for i in range(100)]
    replay(site, steady, lang="en", emit=events.append)  # the same packets, without the gap, do start it
    assert [e["event"] for e in events] == ["start"]
