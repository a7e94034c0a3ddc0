"""The handheld device: keys, the visit loop, state that survives crashes,
and the whole chain end to end (bleak's BlueZ backend against a mock BlueZ,
simpleaudio into ALSA's file sink)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import random
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest

from alsa import file_sink, no_device
from bluez_mock import MockBlueZ, available
from guide.audio import RATE, decode
from guide.ble import Backoff, BeaconParser, BleakSource
from guide.buttons import Button, TerminalInput
from guide.device import INTRO_FADE, Device
from guide.errors import DeviceError, TrackError
from guide.player import Finished, Recorder, SimpleaudioPlayer
from guide.state import StateFile, VisitState
from guide.zones import load_zones

REPO = Path(__file__).resolve().parents[1]
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
# each track a pure tone of its own, so what reached the sound card tells which played
TRACKS = {("dome", "en"): (440, 1.5), ("dome", "fr"): (330, 1.5),
          ("tunnel", "en"): (550, 4.0), ("tunnel", "fr"): (495, 4.0),
          ("rocket", "fr"): (660, 1.0)}  # no English: it falls back to French


@pytest.fixture
def zones(tmp_path, make_wav) -> Path:
    for (exhibit, lang), (hz, seconds) in TRACKS.items():
        make_wav(tmp_path / "site" / "tracks" / lang / f"{exhibit}.wav", seconds, rate=RATE, tone=hz)
    beacons, exhibits = [], []
    for i, exhibit in enumerate(("dome", "tunnel", "rocket")):
        beacons += [f"  b-{exhibit}:", f"    ibeacon: {{uuid: {UUID}, major: 7, minor: {i + 1}}}",
                    "    tx_power: -59", f"    x: {10 * i}", "    y: 0"]
        langs = ", ".join(f"{lang}: {lang}/{exhibit}.wav" for (e, lang) in TRACKS if e == exhibit)
        exhibits.append(f"  - {{id: {exhibit}, title: {{en: The {exhibit}}}, beacon: b-{exhibit}, "
                        f"radius: 3, tracks: {{{langs}}}}}")
    path = tmp_path / "site" / "zones.yaml"
    path.write_text("\n".join([
        "site: Test bunker", "languages: [en, fr]",
        # quick settings, so that a visit takes seconds
        "trigger: {dwell: 0.4, smoothing: 0.3, glance: 0.5, resume_rewind: 0.5, forget: 2.0}",
        "beacons:", *beacons, "exhibits:", *exhibits]) + "\n")
    return path


@pytest.fixture
def site(zones):
    return load_zones(zones)


@pytest.fixture
def intro_site(zones, make_wav):
    """The same site with a spoken intro in English only (French has none)."""
    make_wav(zones.parent / "tracks" / "en" / "_intro.wav", 4.0, rate=RATE, tone=880)
    zones.write_text(zones.read_text().replace("beacons:", "intro: {en: en/_intro.wav}\nbeacons:"))
    return load_zones(zones)


AT = -55  # dBm where the visitor stands at an exhibit
AWAY = -88


async def hold(emit, levels: dict[str, int | tuple[int, int]], seconds: float, hz: float = 10.0):
    """Advertise each beacon at `hz` for `seconds`; a level (a, b) ramps from a to b."""
    steps = max(1, round(seconds * hz))
    for k in range(steps):
        for beacon, level in levels.items():
            a, b = level if isinstance(level, tuple) else (level, level)
            emit(f"b-{beacon}", round(a + (b - a) * k / max(1, steps - 1)))
        await asyncio.sleep(1 / hz)


class Scripted:
    """A Source whose sightings a test writes as a script: `await script(emit, device)`."""

    def __init__(self, script, device_ref):
        self.script, self.device_ref = script, device_ref

    async def run(self, on_sighting, now):
        await self.script(on_sighting, self.device_ref[0])


class Keys:
    """An Input pressing each button once its condition holds."""

    def __init__(self, script):
        self.script = script

    async def presses(self):
        for condition, button in self.script:
            await until(condition)
            yield button


async def until(condition, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        await asyncio.sleep(0.01)


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def kinds(path: Path) -> list[tuple]:
    return [(e["event"], e.get("exhibit"), e.get("reason") or e.get("lang")) for e in events(path)
            if e["event"] != "coverage"]


def run_device(site, tmp_path, script, *, keys=None, lang="en", new_visit=False, stop_when=None,
               source=Scripted):
    """Run a Device with a Recorder player, sightings from `source` (a Scripted
    class); returns (device, recorder)."""
    made = []

    def make_player(on_event):
        made.append(Recorder(on_event))
        return made[0]

    device = Device(site, lang=lang, make_player=make_player, log_path=tmp_path / "events.jsonl",
                    new_visit=new_visit, save_every=0.2)
    ref = [device]

    async def main():
        stop = asyncio.Event()
        if stop_when is not None:
            async def watch():
                await until(lambda: stop_when(device, made[0]))
                stop.set()
            watcher = asyncio.ensure_future(watch())
        await device.run(source(script, ref), keys, stop)
        if stop_when is not None:
            watcher.cancel()

    asyncio.run(main())
    return device, made[0]


def plays(recorder) -> list[tuple[str, float]]:
    return [(f"{c.path.parent.name}/{c.path.name}", round(c.offset, 1)) for c in recorder.calls if c.name == "play"]


# ----- keys ---------------------------------------------------------------------

def test_single_keypresses_become_buttons_without_enter_and_the_terminal_is_restored():
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r")
    before = termios.tcgetattr(slave)
    seen = {}

    async def main():
        presses = TerminalInput(stream).presses()
        first = asyncio.ensure_future(anext(presses))
        await asyncio.sleep(0.05)  # now reading, in cbreak mode
        mode = termios.tcgetattr(slave)[3]
        seen.update(canonical=bool(mode & termios.ICANON), echo=bool(mode & termios.ECHO))
        os.write(master, b" rslX+-")  # X means nothing
        got = [await first] + [await anext(presses) for _ in range(5)]
        await presses.aclose()
        return got

    try:
        got = asyncio.run(main())
        assert got == [Button.PAUSE, Button.REPLAY, Button.SKIP, Button.LANGUAGE,
                       Button.VOLUME_UP, Button.VOLUME_DOWN]
        assert seen == {"canonical": False, "echo": False}
        assert termios.tcgetattr(slave) == before
    finally:
        stream.close()
        os.close(master)


def test_a_terminal_that_hangs_up_ends_the_keys_without_spinning():
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "r")

    async def main():
        presses = TerminalInput(stream).presses()
        first = asyncio.ensure_future(anext(presses))
        await asyncio.sleep(0.05)
        os.write(master, b"s")
        got = [await first]
        os.close(master)  # the window closed: reads fail with EIO from now on
        # the iteration ends (a reader left on a dead terminal fires for ever, and this times out)
        got += [b async for b in _timed(presses, 5.0)]
        return got

    try:
        assert asyncio.run(main()) == [Button.SKIP]
    finally:
        stream.close()


async def _timed(presses, seconds):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            yield await asyncio.wait_for(anext(presses), deadline - asyncio.get_running_loop().time())
        except StopAsyncIteration:
            return


def test_without_a_terminal_the_keys_do_nothing():
    async def main():
        return [b async for b in TerminalInput(io.StringIO(" r")).presses()]

    assert asyncio.run(main()) == []


# ----- the visit loop, with a recording player ------------------------------------

def test_a_new_visit_is_told_its_language_coverage_before_the_first_exhibit(site, tmp_path, caplog):
    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await hold(emit, {"dome": AT}, 1.0)

    with caplog.at_level(logging.INFO, logger="guide.device"):
        run_device(site, tmp_path, script, stop_when=lambda d, rec: rec.playing)
    log = events(tmp_path / "events.jsonl")
    assert log[0]["event"] == "coverage" and log[1]["event"] == "start"
    sentence = "English: 2 of 3 exhibits, 6 of 7 seconds; the others play in French"
    assert log[0]["text"] == sentence and log[0]["t"] <= log[1]["t"]
    assert sentence in caplog.text


def test_a_broken_track_in_the_visitors_language_is_named_as_broken_not_as_missing(site, tmp_path, caplog):
    broken = site.track_path("en/dome.wav")
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    with pytest.raises(TrackError) as failure:
        decode(broken)

    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing == broken)
        device.player.fail(str(failure.value))  # what the real player reports
        await until(lambda: device.player.playing == site.track_path("fr/dome.wav"))
        device.player.finish()
        await hold(emit, {"dome": AWAY, "rocket": (AWAY, AT)}, 0.5)  # no English track there
        await hold(emit, {"dome": AWAY, "rocket": AT}, 1.0)
        await until(lambda: device.player.playing == site.track_path("fr/rocket.wav"))
        device.player.finish()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.INFO, logger="guide.device"):
        run_device(site, tmp_path, script)
    log = events(tmp_path / "events.jsonl")
    coverage, starts = log[0], [e for e in log if e["event"] == "start"]
    assert coverage["broken"] == ["en/dome.wav"]  # told apart in the coverage, and counted as played
    assert coverage["text"] == "English: 1 of 3 exhibits, 4 of 7 seconds; the others play in French"
    assert [(e["track"], e.get("wanted"), e.get("broken")) for e in starts] == [
        ("en/dome.wav", None, None), ("fr/dome.wav", "en", ["en/dome.wav"]), ("fr/rocket.wav", "en", None)]
    lines = caplog.text.splitlines()
    assert "cannot play en/dome.wav (dome, en): not a readable audio file (" in caplog.text
    assert any(line.endswith(f"cannot play: {failure.value}") for line in lines)
    assert any(line.endswith("> The dome, in French (en/dome.wav cannot be played)") for line in lines)
    assert any(line.endswith("> The rocket, in French (no English track)") for line in lines)
    assert "The dome, in French (no English track)" not in caplog.text


def told(path: Path) -> list[tuple]:
    """What the device told and played, in order: coverage and intro events
    with their language, starts and ends with their exhibit."""
    return [(e["event"], e.get("exhibit") or e.get("lang")) for e in events(path)]


def test_a_new_visit_plays_the_intro_in_the_visitors_language_before_the_first_exhibit(intro_site, tmp_path):
    seen = {}

    async def script(emit, device):
        await until(lambda: device.player.playing is not None)
        seen["first"] = device.player.playing.name
        device.player.finish()  # the intro plays to its end...
        await asyncio.sleep(0.1)
        seen["engine after the intro"] = device.engine.playing
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)  # ...then the visitor settles at the dome
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await asyncio.sleep(0.1)

    device, rec = run_device(intro_site, tmp_path, script)
    assert seen == {"first": "_intro.wav", "engine after the intro": None}
    assert plays(rec) == [("en/_intro.wav", 0.0), ("en/dome.wav", 0.0)]
    assert [c.name for c in rec.calls if c.name in ("play", "stop")][:2] == ["play", "play"]  # nothing to cut
    log = events(tmp_path / "events.jsonl")
    assert told(tmp_path / "events.jsonl") == [
        ("coverage", "en"), ("intro", "en"), ("start", "dome"), ("end", "dome")]
    assert log[1] == {"visitor": device.visitor, "t": log[1]["t"], "event": "intro",
                      "lang": "en", "track": "en/_intro.wav"}
    assert log[3]["reason"] == "finished"  # the dome's own end, not the intro's


def test_an_exhibit_that_starts_during_the_intro_fades_it_out_and_plays(intro_site, tmp_path):
    intro = intro_site.track_path("en/_intro.wav")
    seen = {}

    async def script(emit, device):
        await until(lambda: device.player.playing == intro)
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)  # settles while the intro still plays
        await until(lambda: device.engine.playing == "dome")
        device._from_player_thread(Finished(path=intro))  # a player reporting the intro late
        await asyncio.sleep(0.1)
        seen["after the intro's end"] = device.engine.playing
        device.player.finish()
        await asyncio.sleep(0.1)

    device, rec = run_device(intro_site, tmp_path, script)
    assert seen == {"after the intro's end": "dome"}  # not taken for the dome's end
    calls = [(c.name, c.path.name if c.path else c.fade) for c in rec.calls if c.name in ("play", "stop")]
    assert calls[:3] == [("play", "_intro.wav"), ("stop", INTRO_FADE), ("play", "dome.wav")]
    assert kinds(tmp_path / "events.jsonl") == [
        ("intro", None, "en"), ("start", "dome", "en"), ("end", "dome", "finished")]


def test_a_visit_resumed_after_a_restart_does_not_replay_the_intro(intro_site, tmp_path):
    async def first(emit, device):
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await hold(emit, {"dome": AT}, 3.0)  # the dome plays when the device stops

    run_device(intro_site, tmp_path, first,
               stop_when=lambda d, r: d.engine.playing == "dome" and (r.position() or 0) > 1.0)

    async def second(emit, device):
        await asyncio.sleep(0.3)

    _, rec = run_device(intro_site, tmp_path, second, stop_when=lambda d, r: r.playing)
    (resumed,) = plays(rec)  # the dome resumes; no intro before it
    assert resumed[0] == "en/dome.wav" and resumed[1] > 0
    assert [e[0] for e in told(tmp_path / "events.jsonl")] == [
        "coverage", "intro", "start", "end", "start", "end"]


def test_a_language_without_an_intro_track_only_logs_the_sentence_in_that_language(
        intro_site, tmp_path, caplog):
    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.INFO, logger="guide.device"):
        device, rec = run_device(intro_site, tmp_path, script, lang="fr")
    assert plays(rec) == [("fr/dome.wav", 0.0)]
    log = events(tmp_path / "events.jsonl")
    assert told(tmp_path / "events.jsonl") == [("coverage", "fr"), ("start", "dome"), ("end", "dome")]
    sentence = "Français\u00a0: les 3 étapes de la visite, 7 secondes"
    assert log[0]["text"] == sentence and sentence in caplog.text


def test_skip_during_the_intro_ends_it_and_the_visit_goes_on(intro_site, tmp_path):
    device_ref = []
    keys = Keys([(lambda: device_ref and device_ref[0].player.playing is not None, Button.SKIP)])

    async def script(emit, device):
        device_ref.append(device)
        await until(lambda: any(c.name == "stop" for c in device.player.calls))
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await asyncio.sleep(0.1)

    device, rec = run_device(intro_site, tmp_path, script, keys=keys)
    calls = [(c.name, c.path.name if c.path else c.fade) for c in rec.calls if c.name in ("play", "stop")]
    assert calls[:3] == [("play", "_intro.wav"), ("stop", INTRO_FADE), ("play", "dome.wav")]
    assert kinds(tmp_path / "events.jsonl") == [
        ("intro", None, "en"), ("start", "dome", "en"), ("end", "dome", "finished")]


def test_a_change_of_language_tells_the_new_language_and_plays_its_intro_if_nothing_plays(
        intro_site, tmp_path):
    device_ref = []

    def intro_playing():
        return device_ref[0].player.playing is not None and device_ref[0].player.playing.name == "_intro.wav"

    def coverages() -> int:
        return sum(1 for e in events(tmp_path / "events.jsonl") if e["event"] == "coverage")

    keys = Keys([
        # fr -> en between exhibits: English has an intro, and it plays
        (lambda: device_ref and device_ref[0].engine.heard and device_ref[0].engine.playing is None,
         Button.LANGUAGE),
        (intro_playing, Button.LANGUAGE),  # en -> fr during it: it stops; French has none
        # fr -> en while the tunnel plays: the tunnel goes on in English, no intro over it
        (lambda: device_ref[0].engine.playing == "tunnel", Button.LANGUAGE),
    ])

    async def script(emit, device):
        device_ref.append(device)
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        device.player.finish()  # the dome, in French
        await until(lambda: coverages() == 3)
        await hold(emit, {"dome": AWAY, "tunnel": (AWAY, AT)}, 0.8)
        await until(lambda: device.engine.playing == "tunnel" and device.engine.lang == "en")
        await until(lambda: coverages() == 4)
        assert device.player.playing.name == "tunnel.wav"  # no intro over it
        device.player.finish()
        await asyncio.sleep(0.1)

    device, rec = run_device(intro_site, tmp_path, script, keys=keys, lang="fr")
    assert told(tmp_path / "events.jsonl") == [
        ("coverage", "fr"), ("start", "dome"), ("end", "dome"),
        ("coverage", "en"), ("intro", "en"),
        ("coverage", "fr"),
        ("start", "tunnel"), ("end", "tunnel"), ("start", "tunnel"), ("coverage", "en"), ("end", "tunnel")]
    assert plays(rec)[:2] == [("fr/dome.wav", 0.0), ("en/_intro.wav", 0.0)]
    assert ("stop", INTRO_FADE) in [(c.name, c.fade) for c in rec.calls]


def test_a_visitor_who_settles_hears_the_track_and_each_step_is_logged_and_saved(site, tmp_path):
    saved = {}

    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT), "tunnel": AWAY}, 0.5)  # approaching
        await hold(emit, {"dome": AT, "tunnel": AWAY}, 0.8)
        assert device.player.playing.name == "dome.wav"
        saved["while playing"] = StateFile(tmp_path / "events.jsonl.state.json").load()
        device.player.finish()
        await hold(emit, {"dome": AWAY, "tunnel": AT}, 1.2)  # on to the tunnel
        device.player.finish()
        await asyncio.sleep(0.1)

    device, rec = run_device(site, tmp_path, script)
    assert plays(rec) == [("en/dome.wav", 0.0), ("en/tunnel.wav", 0.0)]
    assert kinds(tmp_path / "events.jsonl") == [
        ("start", "dome", "en"), ("end", "dome", "finished"),
        ("start", "tunnel", "en"), ("end", "tunnel", "finished")]
    playing = saved["while playing"].engine["playing"]
    assert playing["exhibit"] == "dome" and playing["position"] > 0
    final = StateFile(tmp_path / "events.jsonl.state.json").load()
    assert final.engine["heard"] == ["dome", "tunnel"] and final.engine["playing"] is None
    assert rec.closed


def test_a_visit_stopped_mid_track_resumes_it_a_little_before_where_it_stopped(site, tmp_path):
    async def first(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await hold(emit, {"dome": AT}, 3.0)  # keeps playing: the recorder never finishes it

    # stopped a little past 1.2 s: the saved position is rounded to the millisecond
    device, rec = run_device(site, tmp_path, first, stop_when=lambda d, r: (r.position() or 0) > 1.21)
    stopped = StateFile(tmp_path / "events.jsonl.state.json").load()
    position = stopped.engine["playing"]["position"]
    assert position > 1.2

    async def second(emit, device):
        await asyncio.sleep(0.3)

    again, rec2 = run_device(site, tmp_path, second, lang="fr", stop_when=lambda d, r: r.playing)
    offset = [c.offset for c in rec2.calls if c.name == "play"][0]
    assert offset == pytest.approx(position - 0.5, abs=0.01)  # resume_rewind: 0.5 s
    assert again.visitor == device.visitor and again.engine.lang == "en"  # the visit's, not --lang
    log = events(tmp_path / "events.jsonl")
    assert [(e["event"], e.get("reason")) for e in log if e["event"] in ("start", "end")] == [
        ("start", None), ("end", "stopped"), ("start", None), ("end", "stopped")]
    assert log[-2]["offset"] == pytest.approx(offset, abs=0.001)
    times = [e["t"] for e in log]
    assert times == sorted(times)  # the visit clock carried on over the restart


def test_a_beacon_that_goes_silent_is_forgotten_and_the_device_stops_waking(site, tmp_path):
    seen = {}

    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await asyncio.sleep(0.3)
        seen["before"] = (device.engine.here, device.engine.next_deadline() is not None)
        await asyncio.sleep(2.6)  # forget: 2 s
        seen["after"] = (device.engine.here, device.engine.next_deadline())

    run_device(site, tmp_path, script)
    assert seen == {"before": ("dome", True), "after": (None, None)}


def test_the_buttons_pause_resume_change_language_and_volume_and_skip(site, tmp_path):
    def playing(name):
        return lambda: device_ref[0].player.playing is not None and device_ref[0].player.playing.name == name

    device_ref = []
    keys = Keys([
        (lambda: device_ref and device_ref[0].player.playing is not None, Button.PAUSE),
        (lambda: device_ref[0].player.paused, Button.PAUSE),
        (lambda: not device_ref[0].player.paused, Button.VOLUME_DOWN),
        (lambda: device_ref[0].player.volume < 0.8, Button.LANGUAGE),
        (lambda: "fr" in str(device_ref[0].player.playing), Button.SKIP),
    ])

    async def script(emit, device):
        device_ref.append(device)
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.engine.playing is None and "dome" in device.engine.heard)
        await asyncio.sleep(0.3)  # the coverage of the new language is announced

    device, rec = run_device(site, tmp_path, script, keys=keys)
    assert [c.name for c in rec.calls if c.name not in ("prefetch",)][:8] == [
        "volume", "play", "pause", "resume", "volume", "stop", "play", "stop"]
    assert plays(rec) == [("en/dome.wav", 0.0), ("fr/dome.wav", 0.0)]
    assert kinds(tmp_path / "events.jsonl") == [
        ("start", "dome", "en"), ("pause", "dome", None), ("resume", "dome", None),
        ("end", "dome", "language"), ("start", "dome", "fr"), ("end", "dome", "skipped")]
    coverage = [e["lang"] for e in events(tmp_path / "events.jsonl") if e["event"] == "coverage"]
    assert coverage == ["en", "fr"]
    state = StateFile(tmp_path / "events.jsonl.state.json").load()
    assert state.engine["lang"] == "fr" and state.volume == 0.7 and state.engine["heard"] == ["dome"]


class ScriptedRadio(Scripted):
    """A Scripted source that, like a real radio, tells the device when its
    adapter goes and comes back: the script calls `radio[0](up, why)`."""

    radio: list = []

    def watch_radio(self, on_radio):
        ScriptedRadio.radio[:] = [on_radio]


def test_a_pause_during_a_radio_outage_gives_the_audios_position_not_the_engines(site, tmp_path):
    """While the adapter is gone the engine's clock stands still and the
    track plays on. A pause and a resume then say where the audio is (the
    outage included): the engine's own position lags by the outage."""
    flags, seen = set(), {}
    keys = Keys([(lambda: "lost" in flags, Button.PAUSE), (lambda: "back" in flags, Button.PAUSE)])

    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        ScriptedRadio.radio[0](False, "unplugged")
        await asyncio.sleep(1.5)
        flags.add("lost")
        await until(lambda: device.player.paused)
        seen["engine"] = device.engine.position(device.engine_now())  # paused: it stands still
        ScriptedRadio.radio[0](True, None)
        flags.add("back")
        await until(lambda: not device.player.paused)
        flags.add("done")

    device, rec = run_device(site, tmp_path, script, keys=keys, source=ScriptedRadio,
                             stop_when=lambda d, r: "done" in flags)
    log = [e for e in events(tmp_path / "events.jsonl") if e["event"] in ("pause", "resume")]
    assert [e["event"] for e in log] == ["pause", "resume"]
    assert [c for c in rec.calls if c.name == "pause"] and log[0]["position"] >= 1.5  # the 1.5 s of outage played
    assert log[1]["position"] == log[0]["position"]  # it goes on from where it stopped
    assert log[0]["position"] - seen["engine"] >= 1.5 - 0.05  # the engine's lagged by the outage


def test_a_replay_that_ends_while_the_track_is_paused_ends_the_run_keeping_the_pause(site, tmp_path):
    """A paused track is silent and waits for a button that may never come: a
    replay (or a resumed paused visit) that ran out waited for it to play
    out, for ever. The pause is kept for the next run."""
    device_ref, hung = [], []
    keys = Keys([(lambda: device_ref and device_ref[0].player.playing is not None, Button.PAUSE)])

    async def script(emit, device):
        device_ref.append(device)
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.paused)

    give_up = time.monotonic() + 5  # far past the end (within `until`'s 10 s): only when the run waits for ever

    def hanging(device, recorder):
        if time.monotonic() > give_up:
            hung.append(True)
        return bool(hung)

    run_device(site, tmp_path, script, keys=keys, stop_when=hanging)
    assert not hung, "the run waited for the paused track to play out"
    assert kinds(tmp_path / "events.jsonl") == [
        ("start", "dome", "en"), ("pause", "dome", None), ("end", "dome", "stopped")]
    state = StateFile(tmp_path / "events.jsonl.state.json").load()
    assert state.engine["playing"]["exhibit"] == "dome" and state.engine["playing"]["paused"] is True


def test_a_track_that_cannot_be_played_gives_way_to_the_next_language(site, tmp_path, caplog):
    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.player.playing is not None)
        device.player.fail("en/dome.wav: not a readable audio file")
        await until(lambda: device.player.playing is not None)
        device.player.finish()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.ERROR, logger="guide.device"):
        device, rec = run_device(site, tmp_path, script)
    assert plays(rec) == [("en/dome.wav", 0.0), ("fr/dome.wav", 0.0)]
    assert kinds(tmp_path / "events.jsonl") == [
        ("start", "dome", "en"), ("end", "dome", "error"), ("start", "dome", "fr"), ("end", "dome", "finished")]
    assert "not a readable audio file" in caplog.text
    (error,) = [e for e in events(tmp_path / "events.jsonl") if e.get("reason") == "error"]
    assert error["track"] == "en/dome.wav" and "not a readable audio file" in error["error"]  # for staff reading the log


def test_a_disk_failing_mid_track_is_said_once_not_at_every_autosave_and_its_return_is_said(
        site, tmp_path, caplog, monkeypatch):
    """A full or read-only disk while a track plays: every autosave (each
    second) fails, and each printed the same error, thousands of lines in an
    hour; now the first is said, the others counted, and writing again is said."""
    import errno

    import guide.state

    real = guide.state.replace_whole
    disk = {"full": False}

    def replace_whole(path, chunks, *, durable=False):
        if disk["full"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, chunks, durable=durable)

    monkeypatch.setattr(guide.state, "replace_whole", replace_whole)

    async def script(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await hold(emit, {"dome": AT}, 0.8)
        assert device.player.playing.name == "dome.wav"
        disk["full"] = True
        while device.failed_writes < 4:  # autosaves, every 0.2 s while the track plays
            await hold(emit, {"dome": AT}, 0.1)
        disk["full"] = False
        saves = device.failed_writes
        for _ in range(10):  # an autosave or two, which work again
            await hold(emit, {"dome": AT}, 0.1)
        assert device.failed_writes == saves
        device.player.finish()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.INFO, logger="guide"):
        device, rec = run_device(site, tmp_path, script)
    said = [r.getMessage() for r in caplog.records if "cannot save the visit state" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0] and "the visit plays on" in said[0]
    assert device.failed_writes >= 4 and device.first_failure.startswith("save the visit state: ")
    # counted, not listed: an all-day full disk fails 36,000 autosaves
    assert all(len(v) < 4 for v in vars(device).values() if isinstance(v, (list, set, dict)))
    assert any(r.getMessage().startswith("the visit is recorded again") for r in caplog.records)
    assert StateFile(tmp_path / "events.jsonl.state.json").load().engine["heard"] == ["dome"]


def test_a_foreign_state_file_stops_the_device_and_a_new_visit_keeps_it_aside(site, tmp_path):
    state = tmp_path / "events.jsonl.state.json"
    state.write_text('{"some": "other program"}')
    with pytest.raises(DeviceError, match="--new-visit"):
        Device(site, lang="en", make_player=Recorder, log_path=tmp_path / "events.jsonl")
    (tmp_path / "events.jsonl.state.json.unread").write_text("kept by an earlier new visit")

    async def nothing(emit, device):
        await asyncio.sleep(0.1)

    run_device(site, tmp_path, nothing, new_visit=True)
    assert (tmp_path / "events.jsonl.state.json.unread.2").read_text() == '{"some": "other program"}'
    assert (tmp_path / "events.jsonl.state.json.unread").read_text() == "kept by an earlier new visit"
    assert StateFile(state).load().visitor.startswith("visit-")  # the new visit's state


def test_a_new_visit_replaces_a_saved_visit_without_keeping_it(site, tmp_path):
    async def listen(emit, device):
        await hold(emit, {"dome": (AWAY, AT)}, 0.5)
        await until(lambda: device.engine.playing == "dome")
        device.player.finish()
        await asyncio.sleep(0.1)

    run_device(site, tmp_path, listen)
    assert StateFile(tmp_path / "events.jsonl.state.json").load().engine["heard"] == ["dome"]

    async def nothing(emit, device):
        await asyncio.sleep(0.1)

    run_device(site, tmp_path, nothing, new_visit=True)
    assert StateFile(tmp_path / "events.jsonl.state.json").load().engine["heard"] == []
    assert not list(tmp_path.glob("*.unread*"))


def test_a_state_saved_at_another_site_is_not_restored(site, tmp_path):
    StateFile(tmp_path / "s.json").save(VisitState(visitor="v", site="Elsewhere", t=1.0, volume=0.5,
                                                   engine={"lang": "en", "heard": [], "playing": None}))
    with pytest.raises(DeviceError, match="Elsewhere"):
        Device(site, lang="en", make_player=Recorder, log_path=tmp_path / "e.jsonl",
               state_path=tmp_path / "s.json")


# ----- the real command, as a process --------------------------------------------

def walk_csv(path: Path, legs, hz=10.0, visitor="v1"):
    """legs: [(seconds, {exhibit: level or (from, to)})] -> a scan log."""
    rows, t = ["visitor,t,beacon,rssi"], 0.0
    for seconds, levels in legs:
        steps = round(seconds * hz)
        for k in range(steps):
            for exhibit, level in levels.items():
                a, b = level if isinstance(level, tuple) else (level, level)
                rows.append(f"{visitor},{t + k / hz:.3f},b-{exhibit},{round(a + (b - a) * k / max(1, steps - 1))}")
        t += steps / hz
    path.write_text("\n".join(rows) + "\n")
    return path


def guide_run(zones, tmp_path, *extra):
    env = dict(os.environ, ALSA_CONFIG_PATH=os.environ["ALSA_CONFIG_PATH"])
    return subprocess.Popen(
        [sys.executable, "-m", "guide", "run", "--zones", str(zones), "--lang", "en",
         "--events", str(tmp_path / "events.jsonl"), *extra],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_guide_run_reports_a_language_the_site_does_not_offer(zones, tmp_path, capsys):
    from guide.cli import main

    assert main(["run", "--zones", str(zones), "--lang", "de", "--events", str(tmp_path / "e.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "--lang de" in err and "en, fr" in err


def test_guide_run_refuses_a_foreign_state_file_and_says_how_to_go_on(zones, tmp_path, capsys):
    from guide.cli import main

    (tmp_path / "e.jsonl.state.json").write_text("not json")
    with file_sink(tmp_path / "alsa"):
        assert main(["run", "--zones", str(zones), "--events", str(tmp_path / "e.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "e.jsonl.state.json" in err and "--new-visit" in err and "Traceback" not in err


def test_guide_run_new_visit_keeps_a_file_it_cannot_read_instead_of_writing_over_it(zones, tmp_path, capsys):
    notes = tmp_path / "notes.txt"  # --state given the wrong file
    notes.write_text("opening hours: 10-18\n")
    with file_sink(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", tmp_path / "events.jsonl", "--state", notes,
                          "--new-visit", "--replay", short_walk(tmp_path)) == 0
    err = capsys.readouterr().err
    assert f"{notes} was not a visit state this guide reads; it is kept as {notes}.unread" in err
    assert (tmp_path / "notes.txt.unread").read_text() == "opening hours: 10-18\n"
    assert StateFile(notes).load().engine["heard"] == ["dome"]


@pytest.mark.parametrize("t, position", [(5.0, "Infinity"), (5.0, "NaN"), (5.0, "1e300"), ("1e300", 1.0)])
def test_a_state_file_with_an_absurd_number_is_refused_at_each_restart_until_a_new_visit(
        zones, tmp_path, capsys, t, position):
    """A damaged or hand-edited state file: every restart says which value is
    wrong and how to go on (it used to be loaded, and the first save crashed)."""
    state = tmp_path / "events.jsonl.state.json"
    state.write_text(f"""{{"format": "guide-device-state", "version": 1, "visitor": "visit-1",
        "site": "Test bunker", "t": {t}, "volume": 0.5, "engine": {{"lang": "en", "heard": [],
        "playing": {{"exhibit": "tunnel", "lang": "en", "track": "en/tunnel.wav", "position": {position},
                     "paused": false}}}}}}""")
    damaged = state.read_bytes()
    run = ("--zones", zones, "--events", tmp_path / "events.jsonl", "--replay", short_walk(tmp_path))
    with file_sink(tmp_path / "alsa"):
        for _ in range(2):
            assert guide_main(*run) == 2
            err = capsys.readouterr().err
            assert str(state) in err and "must be a number from 0.0 to" in err and "--new-visit" in err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
            assert state.read_bytes() == damaged and not (tmp_path / "events.jsonl").exists()
        assert guide_main(*run, "--new-visit") == 0
        assert guide_main(*run) == 0  # and the new visit's state resumes
    assert StateFile(state).load().engine["heard"] == ["dome"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])  # SIGHUP: its terminal closed
def test_sigterm_ends_the_device_cleanly_with_the_visit_saved(zones, tmp_path, sig):
    scans = walk_csv(tmp_path / "scans.csv", [(0.5, {"tunnel": (AWAY, AT)}), (10.0, {"tunnel": AT})])
    with file_sink(tmp_path / "alsa", realtime=True):
        p = guide_run(zones, tmp_path, "--replay", str(scans))
        state = StateFile(tmp_path / "events.jsonl.state.json")
        deadline = time.monotonic() + 20
        while not (tmp_path / "events.jsonl").exists() or "start" not in (tmp_path / "events.jsonl").read_text():
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # a second into the 4 s tunnel track
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert "Traceback" not in err
    playing = state.load().engine["playing"]
    assert playing["exhibit"] == "tunnel" and 0.5 < playing["position"] < 4.0
    assert kinds(tmp_path / "events.jsonl")[-1] == ("end", "tunnel", "stopped")


def test_a_second_guide_run_on_the_same_event_log_is_refused_while_the_first_runs(zones, tmp_path, capsys):
    """Two runs appending to one log would break its time order and share a
    state file: the second is refused at start, names the first, and writes
    nothing; once the first has ended, even killed, the log is free."""
    log = tmp_path / "events.jsonl"
    state = tmp_path / "events.jsonl.state.json"
    scans = walk_csv(tmp_path / "scans.csv", [(0.5, {"tunnel": (AWAY, AT)}), (30.0, {"tunnel": AT})])
    with file_sink(tmp_path / "alsa", realtime=True):
        for end in (signal.SIGTERM, signal.SIGKILL):
            written = log.stat().st_size if log.exists() else 0
            p = guide_run(zones, tmp_path, "--replay", str(scans))
            try:
                deadline = time.monotonic() + 20
                while not (log.exists() and b"\n" in log.read_bytes()[written:]):  # it has the log open
                    assert time.monotonic() < deadline and p.poll() is None, p.communicate()
                    time.sleep(0.05)
                p.send_signal(signal.SIGSTOP)  # the first run writes nothing more while we look
                assert os.WIFSTOPPED(os.waitpid(p.pid, os.WUNTRACED)[1])
                before = log.read_bytes(), state.read_bytes()
                assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 2
                err = capsys.readouterr().err
                assert err.strip() == (f"guide: error: another guide run (pid {p.pid}) is writing {log}; "
                                       "stop it, or give another --events path")
                assert (log.read_bytes(), state.read_bytes()) == before
            finally:
                p.send_signal(signal.SIGCONT)
                p.send_signal(end)
                p.communicate(timeout=20)
        assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 0
    assert len({e["visitor"] for e in events(log)}) == 1  # one visit, resumed each time


def test_a_second_guide_run_on_the_same_state_file_is_refused_while_the_first_runs(zones, tmp_path, capsys):
    """Two runs with their own event logs but one --state would overwrite
    each other's visit: the second is refused at start, names the first and
    writes nothing; once the first has ended, even killed, the state is free."""
    state = tmp_path / "shared.state.json"
    other = tmp_path / "other.jsonl"
    scans = walk_csv(tmp_path / "scans.csv", [(0.5, {"tunnel": (AWAY, AT)}), (30.0, {"tunnel": AT})])
    with file_sink(tmp_path / "alsa", realtime=True):
        for end in (signal.SIGTERM, signal.SIGKILL):
            log = tmp_path / "events.jsonl"
            written = log.stat().st_size if log.exists() else 0
            p = guide_run(zones, tmp_path, "--replay", str(scans), "--state", str(state))
            try:
                deadline = time.monotonic() + 20
                while not (log.exists() and b"\n" in log.read_bytes()[written:]):  # it has started
                    assert time.monotonic() < deadline and p.poll() is None, p.communicate()
                    time.sleep(0.05)
                p.send_signal(signal.SIGSTOP)  # the first run writes nothing more while we look
                assert os.WIFSTOPPED(os.waitpid(p.pid, os.WUNTRACED)[1])
                before = state.read_bytes()
                assert guide_main("--zones", zones, "--events", other, "--state", state,
                                  "--replay", short_walk(tmp_path)) == 2
                err = capsys.readouterr().err
                assert err.strip() == (f"guide: error: another guide run (pid {p.pid}) is writing {state}; "
                                       "stop it, or give another --state path")
                assert state.read_bytes() == before and not other.exists()
            finally:
                p.send_signal(signal.SIGCONT)
                p.send_signal(end)
                p.communicate(timeout=20)
        assert guide_main("--zones", zones, "--events", other, "--state", state,
                          "--replay", short_walk(tmp_path)) == 0
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith(".")) == []  # no lock file left


def test_a_device_killed_at_random_instants_always_resumes_its_visit(zones, tmp_path):
    """SIGKILL 50 times at random moments of a visit (some during start-up),
    restarting each time: the state always loads, the visit goes on (what was
    heard stays heard, the playing track resumes), and the event log stays
    valid JSON Lines in time order. A last run finishes the visit.
    The visitor stays at the rocket long after the tunnel's track should have
    ended: each restart resumes it where the audio was, and on a loaded
    machine a run killed while it still decodes has played none of it, so the
    kills put off its end by several seconds of the visit; the rocket's track
    still follows it, as it would for a visitor who waits there."""
    zones.write_text(zones.read_text().replace("resume_rewind: 0.5", "resume_rewind: 0.1"))
    scans = walk_csv(tmp_path / "scans.csv", [
        (0.5, {"dome": (AWAY, AT), "tunnel": AWAY}), (3.0, {"dome": AT, "tunnel": AWAY}),
        (5.5, {"dome": AWAY, "tunnel": AT}), (25.0, {"tunnel": AWAY, "rocket": AT}), (1.0, {"rocket": AWAY})])
    rng = random.Random(11)
    state = StateFile(tmp_path / "events.jsonl.state.json")
    heard: set[str] = set()
    positions = []
    run = ("--replay", str(scans), "--save-every", "0.1")
    with file_sink(tmp_path / "alsa", realtime=True):
        for attempt in range(50):
            p = guide_run(zones, tmp_path, *run)
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.0, 0.6))  # somewhere in start-up
            else:
                p.stderr.readline()  # running: it has told the coverage, or that it resumes
                # then long enough for the visit clock to move on: a kill that
                # always lands before the loop runs would never hit a track
                time.sleep(rng.uniform(0.2, 1.2))
            p.send_signal(signal.SIGKILL)
            _, err = p.communicate(timeout=20)
            assert "Traceback" not in err, err
            saved = state.load()  # never raises: the file is always whole
            if saved is None:
                continue
            now = set(saved.engine["heard"])
            assert heard <= now, f"attempt {attempt}: forgot {heard - now}"
            heard = now
            if saved.engine["playing"]:
                positions.append((saved.engine["playing"]["exhibit"], saved.engine["playing"]["position"]))
        p = guide_run(zones, tmp_path, *run)  # the last one, left alone, finishes the visit
        try:
            _, err = p.communicate(timeout=90)
        finally:
            p.kill()
    assert p.returncode == 0, err
    log = events(tmp_path / "events.jsonl")  # every line is JSON
    assert [e["t"] for e in log] == sorted(e["t"] for e in log)
    assert len({e["visitor"] for e in log}) == 1  # one visit throughout
    assert [e["exhibit"] for e in log if e["event"] == "end" and e["reason"] == "finished"] == [
        "dome", "tunnel", "rocket"]
    assert set(state.load().engine["heard"]) == {"dome", "tunnel", "rocket"}
    assert len(positions) >= 5  # many kills hit a playing track...
    assert any(e["event"] == "start" and e.get("offset") for e in log)  # ...which resumed part-way
    starts = [e for e in log if e["event"] == "start"]
    ends = [e for e in log if e["event"] == "end"]
    assert len(starts) == len(ends)  # each restart closed the track a kill had left open


# ----- end to end: bleak + mock BlueZ in, simpleaudio + ALSA out ----------------------

def heard_tones(samples: np.ndarray, window: float = 0.05) -> list[tuple[int, float]]:
    """What a listener heard: (dominant Hz, seconds) runs, 0 for silence."""
    n = round(window * RATE)
    runs: list[list] = []
    for i in range(0, len(samples) - n + 1, n):
        w = samples[i:i + n].astype(float)
        hz = 0 if np.abs(w).max() < 500 else int(round(np.argmax(np.abs(np.fft.rfft(w))) / window / 55) * 55)
        if runs and runs[-1][0] == hz:
            runs[-1][1] += window
        else:
            runs.append([hz, window])
    return [(hz, round(s, 2)) for hz, s in runs if s >= 0.2 or hz]


@pytest.mark.skipif(not available(), reason="needs dbus-daemon (Debian: dbus-daemon)")
def test_a_visit_end_to_end_through_bluez_and_alsa_survives_losing_the_adapter(site, tmp_path):
    """Rising RSSI at the dome: its track plays. The visitor walks on while it
    plays: it is not cut, and the tunnel follows. The adapter is unplugged
    while the tunnel plays: it plays on; the adapter returns, scanning resumes,
    and the visitor settles at the rocket (French: no English track)."""
    with MockBlueZ() as bluez, file_sink(tmp_path / "alsa", realtime=True) as sink:
        bluez.add_adapter("hci0")
        idents = {e.id: site.beacons[e.beacon].ident for e in site.exhibits}
        beacons = {e: bluez.add_beacon(f"AA:BB:CC:DD:EE:0{i}", ident) for i, (e, ident) in enumerate(idents.items())}
        source = BleakSource(BeaconParser(site.beacons), silence=0.5, backoff=Backoff(first=0.2, longest=0.5))
        device = Device(site, lang="en", make_player=SimpleaudioPlayer, log_path=tmp_path / "events.jsonl")
        log = tmp_path / "events.jsonl"

        async def air(levels, seconds):
            for k in range(round(seconds * 10)):
                for exhibit, level in levels.items():
                    a, b = level if isinstance(level, tuple) else (level, level)
                    beacons[exhibit].advertise(round(a + (b - a) * k / max(1, round(seconds * 10) - 1)))
                await asyncio.sleep(0.1)

        async def visit():
            await until(bluez.discovering)  # scanning: nothing is lost
            await air({"dome": (AWAY, AT), "tunnel": AWAY}, 1.0)
            await air({"dome": AT, "tunnel": AWAY}, 1.2)
            assert device.engine.playing == "dome"
            await air({"dome": AWAY, "tunnel": AT}, 2.5)  # walks on while the dome plays
            assert device.engine.playing == "tunnel"
            bluez.remove_adapter("hci0")
            await asyncio.sleep(1.0)  # silence on the radio; the tunnel track plays on
            assert device.engine.playing == "tunnel"
            bluez.add_adapter("hci0")
            for i, (exhibit, ident) in enumerate(idents.items()):
                beacons[exhibit] = bluez.add_beacon(f"AA:BB:CC:DD:EE:0{i}", ident)
            await air({"tunnel": AWAY, "rocket": AT}, 3.0)
            await until(lambda: device.engine.playing is None and "rocket" in device.engine.heard)

        stop = asyncio.Event()

        async def main():
            async def driven():
                try:
                    await visit()
                finally:
                    stop.set()  # a failed assertion must end the device too
            driver = asyncio.ensure_future(driven())
            await device.run(source, None, stop)
            await driver

        asyncio.run(main())
        time.sleep(0.3)
        tones = heard_tones(sink.samples())
    assert kinds(log) == [("start", "dome", "en"), ("end", "dome", "finished"),
                          ("start", "tunnel", "en"), ("radio", None, None), ("radio", None, None),
                          ("end", "tunnel", "finished"),
                          ("start", "rocket", "fr"), ("end", "rocket", "finished")]
    assert [e["state"] for e in events(log) if e["event"] == "radio"] == ["lost", "back"]
    sounding = [(hz, s) for hz, s in tones if hz]
    assert [hz for hz, _ in sounding] == [440, 550, 660]
    assert [s for _, s in sounding] == pytest.approx([1.5, 4.0, 1.0], abs=0.1)  # none cut short
    assert source.restarts >= 1


@pytest.mark.skipif(not available(), reason="needs dbus-daemon")
def test_a_track_not_yet_committed_plays_on_while_the_adapter_is_gone_and_the_loss_is_logged(zones, tmp_path):
    """The adapter is unplugged the instant the dome's track starts, before it
    counts as heard (glance 4 s): the radio's silence is not the visitor
    walking away, so the track is not abandoned; the loss and the return are
    in the event log, and the visitor still standing there keeps hearing it."""
    zones.write_text(zones.read_text().replace("glance: 0.5", "glance: 4"))
    site = load_zones(zones)
    with MockBlueZ() as bluez:
        bluez.add_adapter("hci0")
        beacon = [bluez.add_beacon("AA:BB:CC:DD:EE:01", site.beacons["b-dome"].ident)]
        source = BleakSource(BeaconParser(site.beacons), silence=0.3, backoff=Backoff(first=0.2, longest=0.2))
        made = []
        device = Device(site, lang="en", make_player=lambda on_event: made.append(Recorder(on_event)) or made[0],
                        log_path=tmp_path / "events.jsonl")
        stop = asyncio.Event()

        async def visit():
            try:
                await until(bluez.discovering)
                while device.engine.playing != "dome":
                    beacon[0].advertise(AT)
                    await asyncio.sleep(0.1)
                bluez.remove_adapter("hci0")
                await asyncio.sleep(3.0)  # longer than forget (2 s): the beacon would be forgotten
                assert device.engine.playing == "dome"
                bluez.add_adapter("hci0")
                beacon[0] = bluez.add_beacon("AA:BB:CC:DD:EE:01", site.beacons["b-dome"].ident)
                await until(bluez.discovering)
                for _ in range(10):
                    beacon[0].advertise(AT)
                    await asyncio.sleep(0.1)
                assert device.engine.playing == "dome"
            finally:
                stop.set()

        async def main():
            driver = asyncio.ensure_future(visit())
            await device.run(source, None, stop)
            await driver

        asyncio.run(main())
    log = events(tmp_path / "events.jsonl")
    assert [(e["event"], e.get("state") or e.get("reason") or e.get("lang")) for e in log
            if e["event"] != "coverage"] == [
        ("start", "en"), ("radio", "lost"), ("radio", "back"), ("end", "stopped")]
    assert "No Bluetooth adapters found" in log[2]["error"]
    assert [c.name for c in made[0].calls if c.name in ("play", "stop")] == ["play", "stop"]  # stopped once: at the end
    # the saved position is the audio's, 3 s of outage included (the engine's clock stood still)
    assert StateFile(tmp_path / "events.jsonl.state.json").load().engine["playing"]["position"] > 3.5


def test_through_alsa_the_intro_is_heard_until_the_first_exhibit_cuts_it_short(intro_site, tmp_path):
    """The real player: the intro (880 Hz, 4 s) sounds from the start; the
    visitor settles at the dome a second and a half in, so the intro fades
    out and the dome's track (440 Hz) plays whole."""
    with file_sink(tmp_path / "alsa", realtime=True) as sink:
        device = Device(intro_site, lang="en", make_player=SimpleaudioPlayer, log_path=tmp_path / "events.jsonl")

        async def script(emit, device):
            await asyncio.sleep(0.6)
            await hold(emit, {"dome": (AWAY, AT)}, 0.5)
            await until(lambda: device.engine.playing is None and "dome" in device.engine.heard)

        asyncio.run(device.run(Scripted(script, [device])))
        time.sleep(0.3)
        tones = heard_tones(sink.samples())
    sounding = [(hz, s) for hz, s in tones if hz]
    assert [hz for hz, _ in sounding] == [880, 440]
    assert 1.0 < sounding[0][1] < 3.0  # cut short...
    assert sounding[1][1] == pytest.approx(1.5, abs=0.1)  # ...by the dome, heard whole
    assert kinds(tmp_path / "events.jsonl") == [
        ("intro", None, "en"), ("start", "dome", "en"), ("end", "dome", "finished")]


# ----- the files the device writes: checked first, never damaged ------------------

def guide_main(*argv) -> int:
    from guide.cli import main

    return main(["run", *map(str, argv)])


def short_walk(tmp_path) -> Path:
    return walk_csv(tmp_path / "walk.csv", [(0.5, {"dome": (AWAY, AT)}), (1.0, {"dome": AT})])


@pytest.mark.parametrize("heard, says", [
    ("dome", "'engine.heard' must be a list of exhibit names, not \"dome\""),  # read as exhibits d, o, m, e
    (7, "'engine.heard' must be a list of exhibit names, not 7"),  # "'int' object is not iterable"
])
def test_guide_run_refuses_a_saved_visit_of_another_shape_before_writing_anything(
        zones, tmp_path, capsys, heard, says):
    """A state file damaged into valid JSON: the visit is not resumed with
    its exhibits heard forgotten (replaying them), nor refused in Python's
    words after the log was written to; the log and the state stay as they were."""
    log, state = tmp_path / "events.jsonl", tmp_path / "events.jsonl.state.json"
    log.write_bytes(b'{"visitor": "visit-1", "t": 4.0, "event": "start", "exhibit": "tunnel", "lang": "en", '
                    b'"track": "en/tunnel.wav"}\n')  # a track the crash left open
    StateFile(state).save(VisitState(visitor="visit-1", site="Test bunker", t=5.0, volume=0.8, engine={
        "lang": "en", "heard": ["dome"], "walked_off": [], "playing": None}))
    state.write_text(state.read_text().replace('[\n   "dome"\n  ]', json.dumps(heard)))
    before = log.read_bytes(), state.read_bytes()
    with file_sink(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"guide: error: {state}: the visit state's ") and says in err and "--new-visit" in err
    assert (log.read_bytes(), state.read_bytes()) == before


@pytest.mark.parametrize("content", [b"no newline at end", random.Random(3).randbytes(2000),
                                     b"visitor,t,beacon,rssi\nv1,0.0,b-dome,-60\n"])
def test_guide_run_refuses_an_events_file_that_is_not_an_event_log_and_leaves_it_alone(
        zones, tmp_path, capsys, content):
    mine = tmp_path / "f.txt"
    mine.write_bytes(content)
    with file_sink(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", mine, "--replay", short_walk(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{mine}: is not a guide event log" in err and "give another --events path" in err
    assert mine.read_bytes() == content
    assert not (tmp_path / "f.txt.state.json").exists()  # nothing started


def test_guide_run_without_an_audio_device_says_so_and_writes_no_file(zones, tmp_path, capsys):
    log = tmp_path / "events.jsonl"
    with no_device(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "no audio output" in err and "Traceback" not in err
    assert not log.exists() and not (tmp_path / "events.jsonl.state.json").exists()


@pytest.mark.parametrize("crash, says", [
    (b'{"visitor": "visit-1", "t": 9.5, "event": "sta', "a torn last line (46 bytes)"),
    (b"\0" * 97, "97 NUL bytes"),  # a power cut: the file grew, its last block was never written
], ids=["torn line", "NUL bytes"])
def test_guide_run_resumes_after_a_line_torn_by_a_crash(zones, tmp_path, capsys, crash, says):
    log = tmp_path / "events.jsonl"
    with file_sink(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 0
        whole = log.read_bytes()
        log.write_bytes(whole + crash)
        capsys.readouterr()
        assert guide_main("--zones", zones, "--events", log, "--replay", short_walk(tmp_path)) == 0
    assert log.read_bytes().startswith(whole)
    events(log)  # every line whole JSON again
    assert f"{log}: cut away {says} left at its end by a crash or a power cut" in capsys.readouterr().err


@pytest.mark.parametrize("options, says", [
    (["--events", "{tmp}/out"], "--events {tmp}/out: is a folder; give a file name"),
    (["--events", ""], "--events: give a file name"),
    (["--events", "{tmp}/file.txt/events.jsonl"],
     "--events {tmp}/file.txt/events.jsonl: {tmp}/file.txt is a file, not a folder"),
    (["--state", "{tmp}/out"], "--state {tmp}/out: is a folder; give a file name"),
    (["--state", ""], "--state: give a file name"),
    (["--state", "{tmp}/file.txt/s.json"], "--state {tmp}/file.txt/s.json: {tmp}/file.txt is a file, not a folder"),
    (["--state", "{tmp}/e.jsonl"], "--state {tmp}/e.jsonl is the file of --events"),
    (["--state", "{zones}"], "--state {zones} is the file of --zones"),
    (["--events", "{zones}"], "--events {zones} is the file of --zones"),
    (["--state", "{tmp}/walk.csv"], "--state {tmp}/walk.csv is the file of --replay"),
])
def test_guide_run_names_the_option_of_an_output_path_it_cannot_use(zones, tmp_path, capsys, options, says):
    (tmp_path / "out").mkdir()
    (tmp_path / "file.txt").write_text("mine\n")
    fill = {"tmp": tmp_path, "zones": zones}
    options = [o.format(**fill) for o in options]
    argv = ["--zones", zones, "--events", tmp_path / "e.jsonl", "--replay", short_walk(tmp_path), *options]
    before = zones.read_bytes()
    with file_sink(tmp_path / "alsa"):
        assert guide_main(*argv) == 2
    err = capsys.readouterr().err
    assert says.format(**fill) in err and "Traceback" not in err
    assert zones.read_bytes() == before and (tmp_path / "file.txt").read_text() == "mine\n"
    assert not (tmp_path / "e.jsonl").exists() and list((tmp_path / "out").iterdir()) == []


def test_a_replay_with_nothing_to_play_says_what_is_wrong_with_the_scan_log(zones, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("visitor,t,beacon,rssi\n")
    strangers = tmp_path / "strangers.csv"
    strangers.write_text("visitor,t,beacon,rssi\nv1,0.0,b-gone,-60\nv1,0.1,b-lost,-61\n")
    walk = short_walk(tmp_path)
    cases = [(["--replay", empty], f"--replay {empty}: the scan log has no rows"),
             (["--replay", strangers], f"--replay {strangers}: none of its 2 rows names a beacon of {zones} "
                                       "(it names b-gone, b-lost)"),
             (["--replay", walk, "--visitor", "v9"], f"--visitor v9: {walk} has no rows of that visitor "
                                                     "with a beacon of")]
    for options, says in cases:
        assert guide_main("--zones", zones, "--events", tmp_path / "e.jsonl", *options) == 2
        err = capsys.readouterr().err
        assert says in err and "None" not in err, err


def test_guide_run_replay_reads_the_walk_as_it_plays_it(zones, tmp_path, monkeypatch):
    """--replay read the whole scan log into a list (every visitor's rows,
    then the chosen one's again) before the visit began; it checks the log
    whole first, then reads the visitor's rows as they are played."""
    import guide.ble

    walk = walk_csv(tmp_path / "walk.csv", [(0.5, {"dome": (AWAY, AT)}), (1.0, {"dome": AT})], visitor="v2")
    walk.write_text(walk.read_text() + "".join(f"v{k},{k / 10:.1f},b-tunnel,-80\n" for k in range(3, 40)))
    ahead: list[int] = []

    class Watched(guide.ble.ReplaySource):
        def __init__(self, rows, **kwargs):
            def counted():
                for row in rows:
                    self.read += 1
                    yield row
            self.read = 0
            super().__init__(counted(), **kwargs)

        async def run(self, on_sighting, now):
            def seen(beacon, rssi):
                ahead.append(self.read - self.delivered)
                on_sighting(beacon, rssi)
            await super().run(seen, now)

    monkeypatch.setattr(guide.ble, "ReplaySource", Watched)
    with file_sink(tmp_path / "alsa"):
        assert guide_main("--zones", zones, "--events", tmp_path / "e.jsonl", "--replay", walk,
                          "--visitor", "v2") == 0
    assert len(ahead) == 15 and max(ahead) <= 1
    assert [e["event"] for e in events(tmp_path / "e.jsonl") if e["event"] != "coverage"][:1] == ["start"]


def test_guide_run_refuses_visitor_without_replay(zones, tmp_path):
    # a process: a device that ignored --visitor would scan for beacons until killed
    p = subprocess.run([sys.executable, "-m", "guide", "run", "--zones", str(zones),
                        "--events", str(tmp_path / "e.jsonl"), "--visitor", "v1"],
                       cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "--visitor only goes with --replay" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "e.jsonl").exists()


def test_a_disk_that_fills_up_mid_visit_loses_events_but_never_corrupts_the_files(zones, tmp_path):
    """The event log may grow no further (RLIMIT_FSIZE: the kernel cuts a
    write short, then refuses it, as on a full disk) a few lines into the
    visit: the visit plays on, the device says it cannot record, each line of
    the log is whole, and the state, saved atomically, holds the whole visit."""
    import resource

    log = tmp_path / "events.jsonl"
    earlier = b"".join(json.dumps({"visitor": "earlier", "t": i / 10, "event": "end", "exhibit": "dome",
                                   "reason": "finished"}).encode() + b"\n" for i in range(40))
    log.write_bytes(earlier)
    limit = len(earlier) + 200  # room for the coverage line, then part of the first start
    scans = walk_csv(tmp_path / "scans.csv", [(0.5, {"dome": (AWAY, AT)}), (2.5, {"dome": AT}),
                                              (0.5, {"tunnel": (AWAY, AT)}), (5.0, {"tunnel": AT})])

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with file_sink(tmp_path / "alsa", realtime=True):
        p = subprocess.run(
            [sys.executable, "-m", "guide", "run", "--zones", str(zones), "--lang", "en",
             "--events", str(log), "--replay", str(scans)],
            cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            preexec_fn=small_disk)
    assert p.returncode == 1, p.stderr  # the visit played on, and the run says it was not all kept
    assert "Traceback" not in p.stderr and "cannot record the visit" in p.stderr
    assert "write(s) of it failed" in p.stderr and "free space" in p.stderr
    data = log.read_bytes()
    assert data.startswith(earlier) and data.endswith(b"\n") and len(data) <= limit
    assert [e["event"] for e in events(log)[40:]] == ["coverage"]  # no start fitted whole
    saved = StateFile(tmp_path / "events.jsonl.state.json").load()
    assert saved.engine["heard"] == ["dome", "tunnel"]
