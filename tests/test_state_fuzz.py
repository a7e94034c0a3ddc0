"""The device's state file and event log, damaged as a power cut, a full SD
card, a bad copy or a person editing them would damage them: restoring either
resumes the visit (the log's earlier whole lines kept byte for byte) or stops
with a GuideError naming the file and the fix, the files left as they were;
never another exception.

The files are the real ones: a Device plays a short visit (the dome heard,
the tunnel playing when it stops) and each example damages a copy of what it
wrote, then restores from it as `guide run` does (check_event_log, Device,
Device.run)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alsa import file_sink
from guide.audio import RATE
from guide.device import Device
from guide.errors import GuideError
from guide.eventlog import check_event_log
from guide.player import Recorder
from guide.state import StateFile
from guide.zones import load_zones

REPO = Path(__file__).resolve().parents[1]
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
AT = -55
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(zones.yaml, the event log, the state file) of a real visit: the dome
    heard, the tunnel playing when the device was stopped."""
    import math
    import struct
    import wave

    root = tmp_path_factory.mktemp("visit")
    beacons, exhibits = [], []
    for i, exhibit in enumerate(("dome", "tunnel", "rocket")):
        for lang in ("en", "fr"):
            (root / "tracks" / lang).mkdir(parents=True, exist_ok=True)
            with wave.open(str(root / "tracks" / lang / f"{exhibit}.wav"), "wb") as w:
                w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
                w.writeframes(struct.pack("<800h", *(round(9000 * math.sin(i * k / 7)) for k in range(800))))
        beacons += [f"  b-{exhibit}:", f"    ibeacon: {{uuid: {UUID}, major: 7, minor: {i + 1}}}",
                    "    tx_power: -59", f"    x: {10 * i}", "    y: 0"]
        exhibits.append(f"  - {{id: {exhibit}, title: {{en: The {exhibit}}}, beacon: b-{exhibit}, "
                        f"radius: 3, tracks: {{en: en/{exhibit}.wav, fr: fr/{exhibit}.wav}}}}")
    zones = root / "zones.yaml"
    zones.write_text("\n".join([
        "site: Test bunker", "languages: [en, fr]",
        "trigger: {dwell: 0.4, smoothing: 0.3, glance: 0.5, resume_rewind: 0.5, forget: 2.0}",
        "beacons:", *beacons, "exhibits:", *exhibits]) + "\n")
    site = load_zones(zones)
    log, state = root / "events.jsonl", root / "state.json"
    device = Device(site, lang="en", make_player=Recorder, log_path=log, state_path=state, save_every=0.2)
    stop = asyncio.Event()

    class Walk:
        async def run(self, emit, now):
            async def stand(beacon, until):
                while not until():
                    emit(beacon, AT)
                    await asyncio.sleep(0.05)
            await stand("b-dome", lambda: device.player.playing is not None)
            device.player.finish()
            await stand("b-tunnel", lambda: device.engine.playing == "tunnel")
            stop.set()

    asyncio.run(device.run(Walk(), None, stop))
    saved = StateFile(state).load()
    assert saved.engine["heard"] == ["dome"] and saved.engine["playing"]["exhibit"] == "tunnel"
    return zones, log.read_bytes(), state.read_bytes()


def restore(zones: Path, log: Path, state: Path) -> None:
    """What `guide run` does with the files before and at the start of a visit."""
    check_event_log(log)
    device = Device(load_zones(zones), lang="en", make_player=Recorder, log_path=log, state_path=state)

    async def main():
        stop = asyncio.Event()
        stop.set()  # the visit resumes (restore, first save), then stops at once

        class Nothing:
            async def run(self, emit, now):
                await asyncio.Event().wait()

        await device.run(Nothing(), None, stop)

    asyncio.run(main())


def whole_lines(data: bytes) -> bytes:
    """The lines of an event log a restart must keep: all but a torn last one
    and the NUL bytes a power cut leaves at the end."""
    kept, newline, _ = data.rstrip(b"\0").rpartition(b"\n")
    return kept + newline


def check_restore(zones: Path, log_bytes: bytes, state_bytes: bytes | None, blame: str) -> str:
    """Restore from these files; the property of the module docstring.
    `blame`: which file's error is expected ("state" or "log"). Returns
    "resumed" or "refused"."""
    folder = Path(tempfile.mkdtemp(dir=zones.parent))
    try:
        log, state = folder / "events.jsonl", folder / "state.json"
        log.write_bytes(log_bytes)
        if state_bytes is not None:
            state.write_bytes(state_bytes)
        try:
            restore(zones, log, state)
        except GuideError as e:
            message = str(e)
            named = state if blame == "state" else log
            assert str(named) in message, message
            assert ("--new-visit" in message or "move it away" in message if blame == "state"
                    else "--events" in message), message
            assert log.read_bytes() == log_bytes  # never made worse
            assert (state.read_bytes() if state.exists() else None) == state_bytes
            return "refused"
        assert log.read_bytes().startswith(whole_lines(log_bytes))
        for line in log.read_bytes()[len(whole_lines(log_bytes)):].splitlines():
            json.loads(line)  # what the restart wrote is whole JSON
        assert StateFile(state).load() is not None
        return "resumed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----- ways of damaging a file ---------------------------------------------------------

def json_values():
    leaves = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30, max_value=10**60)
              | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
              | st.sampled_from(["gone", "de", "dome", "tunnel", "en", "\ud800", "visit-1", ""]))
    return st.recursive(leaves, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=6), kids, max_size=3), max_leaves=6)


@st.composite
def damaged_bytes(draw, original: bytes, others: list[bytes]) -> bytes:
    how = draw(st.sampled_from(["truncate", "torn", "nul", "nul over", "flip", "other", "binary", "long"]))
    n = len(original)
    if how == "long":  # a bad copy: a block of another file within, no end of line in it
        at = draw(st.integers(0, n))
        return original[:at] + draw(st.sampled_from([b"x", b"\0", b'{"visitor": "'])) * 70_000 + original[at:]
    if how == "truncate":
        return original[:draw(st.integers(0, n))]
    if how == "torn":
        return original + draw(st.binary(min_size=1, max_size=40) | st.sampled_from(
            [b'{"visitor": "visit', b'{"visitor": "v", "t": 3.5, "event": "sta', b'\xc3']))
    if how == "nul":
        return original[:draw(st.integers(0, n))] + b"\0" * draw(st.integers(1, 5000))
    if how == "nul over":  # the last block overwritten with zeros
        cut = draw(st.integers(0, n))
        return original[:cut] + b"\0" * (n - cut)
    if how == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, n - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if how == "other":
        return draw(st.sampled_from(others))
    return draw(st.binary(max_size=300))


def edited_state(original: bytes):
    """The state file as a person might edit it: a field of the wrong type,
    a number too big or not finite, an unknown key, a key deleted, an
    exhibit or a language the zone map no longer has."""
    data = json.loads(original)
    places = [(), ("engine",), ("engine", "playing")]

    @st.composite
    def edit(draw):
        body = json.loads(json.dumps(data))
        where = draw(st.sampled_from(places))
        target = body
        for key in where:
            target = target[key]
        key = draw(st.sampled_from(sorted(target)) | st.text(max_size=6))
        if draw(st.booleans()) and key in target:
            del target[key]
        else:
            target[key] = draw(json_values())
        return json.dumps(body, ensure_ascii=draw(st.booleans()), indent=1).encode("utf-8", "surrogatepass")

    return edit()


def others(written) -> list[bytes]:
    zones, log, state = written
    scan = b"visitor,t,beacon,rssi\nv1,0.0,b-dome,-60\nv1,0.1,b-dome,-61\n"
    return [b"", scan, zones.read_bytes(), log, state, b"\0" * 4096, bytes(range(256)) * 4]


# ----- the properties -------------------------------------------------------------------

def test_the_written_files_resume_as_they_are(written):
    zones, log, state = written
    assert check_restore(zones, log, state, "state") == "resumed"


@FUZZ
@given(data=st.data())
def test_a_damaged_state_file_resumes_or_is_refused_naming_it_and_left_as_it_was(written, data):
    zones, log, state = written
    damaged = data.draw(damaged_bytes(state, others(written)) | edited_state(state))
    check_restore(zones, log, damaged, "state")


@FUZZ
@given(data=st.data())
def test_a_damaged_event_log_resumes_keeping_its_whole_lines_or_is_refused_as_it_was(written, data):
    zones, log, state = written
    damaged = data.draw(damaged_bytes(log, others(written)))
    check_restore(zones, damaged, state, "log")


# ----- the nastiest, through the real command ------------------------------------------

def nasty_state(state: bytes, **edits) -> bytes:
    body = json.loads(state)
    for key, value in edits.items():
        target = body
        *path, last = key.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return json.dumps(body).encode()


NASTY = {  # name: (how the files are damaged, which file the error names); None: the visit resumes
    "state: half a character": (lambda d, s, l: d["state"].write_bytes(nasty_state(s, visitor="v\udc80")), "state"),
    "state: a scan log": (lambda d, s, l: d["state"].write_text("visitor,t,beacon,rssi\nv1,0.0,b-dome,-60\n"),
                          "state"),
    "state: zeros": (lambda d, s, l: d["state"].write_bytes(b"\0" * len(s)), "state"),
    "state: NaN position": (lambda d, s, l: d["state"].write_bytes(
        s.replace(b'"position": ', b'"position": NaN, "was": ')), "state"),
    "state: a folder": (lambda d, s, l: d["state"].mkdir(), "state"),
    "state: a loop of links": (lambda d, s, l: d["state"].symlink_to(d["state"]), "state"),
    "log: one huge line": (lambda d, s, l: d["log"].write_bytes(b"x" * 200_000 + b"\n"), "log"),
    "log: half a character": (lambda d, s, l: d["log"].write_bytes(
        l + b'{"visitor": "v", "t": 1.0, "event": "start", "exhibit": "\\udc80"}\n'), "log"),
    "log: zeros within": (lambda d, s, l: d["log"].write_bytes(l[:40] + b"\0" * 512 + l[40:]), "log"),
    "state: a site edited since": (lambda d, s, l: d["state"].write_bytes(nasty_state(
        s, engine__lang="de", engine__heard=["gone", "dome"], engine__playing__exhibit="gone")), None),
}


@pytest.mark.parametrize("name", NASTY)
def test_guide_run_on_the_nastiest_damage_exits_2_naming_the_file_or_resumes(written, tmp_path, name):
    zones, log_bytes, state_bytes = written
    files = {"log": tmp_path / "events.jsonl", "state": tmp_path / "events.jsonl.state.json"}
    files["log"].write_bytes(log_bytes)
    damage, blame = NASTY[name]
    damage(files, state_bytes, log_bytes)
    before = {k: p.read_bytes() if p.is_file() else None for k, p in files.items()}
    walk = tmp_path / "walk.csv"
    walk.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{i / 10:.1f},b-rocket,-88\n" for i in range(5)))
    with file_sink(tmp_path / "alsa"):
        p = subprocess.run([sys.executable, "-m", "guide", "run", "--zones", str(zones), "--events",
                            str(files["log"]), "--replay", str(walk)], cwd=REPO, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert "Traceback" not in p.stderr, p.stderr
    if blame is None:
        assert p.returncode == 0, p.stderr
        assert files["log"].read_bytes().startswith(log_bytes)
        assert StateFile(files["state"]).load().engine["heard"] == ["dome"]
        return
    assert p.returncode == 2, p.stderr
    assert str(files[blame]) in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert {k: p.read_bytes() if p.is_file() else None for k, p in files.items()} == before


@pytest.mark.parametrize("where", ["state", "log", "folder"])
def test_guide_run_on_an_unreadable_file_or_a_read_only_folder_exits_2_naming_it(
        written, tmp_path, unprivileged, where):
    zones, log_bytes, state_bytes = written
    folder = tmp_path / "device"
    folder.mkdir()
    log, state = folder / "events.jsonl", folder / "events.jsonl.state.json"
    log.write_bytes(log_bytes)
    state.write_bytes(state_bytes)
    walk = tmp_path / "walk.csv"
    walk.write_text("visitor,t,beacon,rssi\nv1,0.0,b-rocket,-88\n")
    {"state": state, "log": log, "folder": folder}[where].chmod(0o555 if where == "folder" else 0)
    try:
        with file_sink(tmp_path / "alsa"):
            p = subprocess.run(unprivileged(sys.executable, "-m", "guide", "run", "--zones", str(zones),
                                            "--events", str(log), "--replay", str(walk)),
                               cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60, env=dict(os.environ))
    finally:
        for path in (folder, log, state):
            path.chmod(0o755 if path == folder else 0o644)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    named = {"state": state, "log": log, "folder": folder}[where]
    assert str(named) in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert (log.read_bytes(), state.read_bytes()) == (log_bytes, state_bytes)
