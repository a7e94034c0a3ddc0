"""The replay drives the engine as the device does: every observation, a
tick at each deadline the engine asks for, `finished` when a track ends.
The simulator's figures are the device's only if the two agree."""

from __future__ import annotations

import gc
import itertools
import math
import random
import weakref
from pathlib import Path

import pytest

from guide import tracks
from guide.actions import End, Pause, Resume, Start, to_event
from guide.engine import Engine
from guide.replay import ScanStats, read_scans, replay
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


class _Counted(Engine):
    """The engine, its live instances counted: what a replay holds in memory."""

    alive: "weakref.WeakSet[_Counted]"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _Counted.alive.add(self)


def _many_visitors(site, scans, n: int, *, overlap: int) -> list[tuple]:
    """The sample's first minute of v001 walked by `n` visitors, each one
    `overlap` visitors in progress at once (rows interleaved in the order a
    merged log of several devices has them; overlap 1: grouped)."""
    walk = [r[1:] for r in itertools.takewhile(lambda r: r[1] < 60.0, read_scans(scans, site))]
    rows = [(60.0 / overlap * k + t, f"w{k:03d}", t, b, r) for k in range(n) for t, b, r in walk]
    return [row[1:] for row in sorted(rows, key=lambda row: row[0])]


def test_a_grouped_replay_lets_go_of_each_visitor_when_the_next_one_begins(gallery, monkeypatch):
    """A replay kept every visitor's engine to the end of the rows: memory
    grew with the visitors. Grouped (as simulate.py --walks and the demo give
    the rows), it lets go of each as the next begins, with the same events."""
    site, scans = gallery
    rows = _many_visitors(site, scans, 12, overlap=1)
    _Counted.alive = weakref.WeakSet()
    monkeypatch.setattr("guide.replay.Engine", _Counted)
    held: list[int] = []
    events: list[dict] = []

    def emit(event):
        gc.collect()
        held.append(len(_Counted.alive))
        events.append(event)

    assert len(replay(site, rows, lang="en", emit=emit, grouped=True)) == 12
    assert held and max(held) <= 2
    kept: list[dict] = []
    replay(site, rows, lang="en", emit=kept.append)  # every engine to the end
    by_visitor = lambda es: sorted(es, key=lambda e: e["visitor"])  # noqa: E731 (stable: time order kept)
    assert len(events) > 12 and by_visitor(events) == by_visitor(kept)
    with pytest.raises(ValueError, match="not together"):
        replay(site, rows + rows[:1], lang="en", emit=lambda e: None, grouped=True)


def test_visitors_interleaved_in_a_merged_log_each_get_the_events_of_their_own_replay(gallery):
    """A log merged from several devices interleaves its visitors (FORMATS.md
    allows it): each visitor's engine carries on where that visitor's last row
    left it, so each hears what it would have alone, and the replay ends each
    walk at that visitor's last row."""
    site, scans = gallery
    rows = _many_visitors(site, scans, 6, overlap=3)
    assert sum(a[0] != b[0] for a, b in zip(rows, rows[1:])) > 1000  # each row may be another's
    events: list[dict] = []
    ends = replay(site, rows, lang="en", emit=events.append)
    alone: list[dict] = []
    for v in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == v]
        assert replay(site, mine, lang="en", emit=alone.append) == {v: mine[-1][1]}
        assert ends[v] == mine[-1][1]
    assert any(e["event"] == "start" for e in events)
    by_visitor = lambda es: sorted(es, key=lambda e: e["visitor"])  # noqa: E731 (stable: time order kept)
    assert by_visitor(events) == by_visitor(alone)


def test_simulate_lets_go_of_each_visitor_at_the_end_of_their_walk(gallery, monkeypatch, tmp_path):
    """simulate.py --walks replays the scans of one walk after another: the
    engines alive at once are those of the visitor in progress (and the one
    beginning), however many walk."""
    from guide.simulator import main

    site, scans = gallery
    log = tmp_path / "walks.csv"
    log.write_text("visitor,t,x,y\n" + "".join(f"w{k:03d},{t},{k % 7},{2 * t % 9}\n"
                                                for k in range(20) for t in range(0, 60, 2)))
    born: list[int] = []

    class Born(_Counted):
        def __init__(self, *args, **kwargs):
            gc.collect()
            born.append(len(_Counted.alive))
            super().__init__(*args, **kwargs)

    _Counted.alive = weakref.WeakSet()
    monkeypatch.setattr("guide.replay.Engine", Born)
    assert main(["--zones", str(site.path), "--walks", str(log), "--lang", "en", "--no-progress",
                 "--events", str(tmp_path / "events.jsonl")]) == 0
    assert len(born) == 20 and max(born) <= 2


def test_a_scan_log_naming_thousands_of_unknown_beacons_keeps_a_few_names_not_every_one(gallery, tmp_path):
    """Rows of a street's beacons (random ids, never twice the same) are
    skipped and counted; every name was kept, for a message naming ten."""
    site, _ = gallery
    beacon = site.exhibits[0].beacon
    names = [f"street-{random.Random(k).getrandbits(40):010x}" for k in range(5000)]
    log = tmp_path / "scans.csv"
    log.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{k / 10},{name},-90\nv1,{k / 10},{beacon},-60\n"
                                                        for k, name in enumerate(names)))
    stats = ScanStats()
    assert sum(1 for _ in read_scans(log, site, stats=stats)) == 5000
    assert stats.skipped_unknown == 5000
    assert len(stats.unknown_beacons) <= 64
    assert stats.unknown_names() == ", ".join(sorted(names)[:10]) + " ..."
    assert stats.unknown_names(5) == ", ".join(sorted(names)[:5]) + " ..."
