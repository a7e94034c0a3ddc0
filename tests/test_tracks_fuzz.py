"""Property tests of every reader of audio tracks over damaged files.

Real tracks (the repository's Opus narration, a small WAV and an MP3 made
here) are damaged as copies, disks and people damage them: cut short at any
byte, bytes flipped, a range overwritten with zeros or random bytes, a WAV
header field set to a value that lies (0 channels, 0 Hz, 64-bit, a-law, a
huge data size), a file saved under another format's name. Each reader
(`guide.tracks.length`/`duration`/`header_length`/`check_complete`,
`guide.audio.decode`/`stream`, the TrackLoader and WavWriter player) either
succeeds or raises a TrackError naming the file; never another exception,
never an ffmpeg left running or unreaped, and never a cut-short WAV or Ogg
decoded as if whole. The nastiest go through `guide check`, `guide play`
and simulate.py on a small site.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guide import tracks
from alsa import file_sink
from guide.audio import RATE, TrackCache, TrackLoader, decode, stream
from guide.cli import main
from guide.errors import TrackError
from guide.player import Failed, ManualClock, WavWriter

REPO = Path(__file__).resolve().parents[1]
OPUS = REPO / "tracks" / "en" / "_intro.opus"  # the smallest real narration (6 s)
PY = sys.executable

# A decoded track and the length its header gives agree within a few output
# samples of resampling, and Opus's last granule rounding (20 ms packets).
AGREE = 0.03


def children() -> list[str]:
    """This process's child processes (running or unreaped), from /proc."""
    found = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            found += Path(f"/proc/{os.getpid()}/task/{task}/children").read_text().split()
        except OSError:
            pass
    return found


def sine_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    n = round(seconds * rate)
    x = np.rint(12000 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return path


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("originals")
    wav = sine_wav(d / "a.wav")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame",
                    str(d / "a.mp3")], check=True)
    return {"wav": wav.read_bytes(), "opus": OPUS.read_bytes(), "mp3": (d / "a.mp3").read_bytes()}


# offset, struct format and nasty values of the fields of a canonical WAV header
WAV_FIELDS = {
    "riff size": (4, "<I", [0, 4, 0xFFFFFFFF]),
    "fmt size": (16, "<I", [0, 2, 14, 18, 0xFFFFFFF0]),
    "format": (20, "<H", [0, 3, 6, 7, 0x55, 0xFFFE, 0xFFFF]),
    "channels": (22, "<H", [0, 2, 8, 0xFFFF]),
    "rate": (24, "<I", [0, 1, 8, 44100, 0x7FFFFFFF, 0xFFFFFFFF]),
    "byte rate": (28, "<I", [0, 1, 0xFFFFFFFF]),
    "block align": (32, "<H", [0, 1, 3, 8, 0xFFFF]),
    "bits": (34, "<H", [0, 1, 8, 24, 32, 64, 0xFFFF]),
    "data size": (40, "<I", [0, 1, 2, 3, 0x7FFFFFF0, 0xFFFFFFFF]),
}


@st.composite
def damaged(draw, originals: dict[str, bytes]) -> tuple[str, str, bytes, bool]:
    """(kind, suffix, bytes, cut): an original damaged one or more ways;
    `cut` when audio bytes were cut off its end."""
    kind = draw(st.sampled_from(sorted(originals)))
    data = bytearray(originals[kind])
    cut = False
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["truncate", "flip", "zeros", "random", "field"]))
        if how == "truncate":
            n = draw(st.integers(0, len(data)))
            cut = cut or n < len(data)
            del data[n:]
        elif how == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif how in ("zeros", "random") and data:
            i = draw(st.integers(0, len(data) - 1))
            n = draw(st.integers(1, min(4096, len(data) - i)))
            data[i:i + n] = bytes(n) if how == "zeros" else draw(st.binary(min_size=n, max_size=n))
        elif how == "field" and kind == "wav":
            offset, fmt, values = WAV_FIELDS[draw(st.sampled_from(sorted(WAV_FIELDS)))]
            if offset + struct.calcsize(fmt) <= len(data):
                struct.pack_into(fmt, data, offset, draw(st.sampled_from(values)))
    suffix = draw(st.sampled_from([kind, kind, "wav", "opus", "ogg", "mp3"]))
    return kind, suffix, bytes(data), cut


def outcome(read, path: Path):
    """What `read(path)` gives, or the TrackError it raises, which must name
    the file; any other exception fails the test."""
    try:
        return read(path)
    except TrackError as e:
        assert str(path) in str(e), f"{e!r} does not name {path}"
        return e


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_all(path: Path) -> dict:
    tracks._duration.cache_clear()
    results = {
        "length": outcome(tracks.length, path),
        "duration": outcome(tracks.duration, path),
        "complete": outcome(lambda p: tracks.check_complete(p, size(p)), path),
        "decode": outcome(decode, path),
        "stream": outcome(lambda p: sum(len(a) for a in stream(p, chunk=4096)) / RATE, path),
    }
    header = tracks.header_length(path)  # never raises: None when the header does not say
    assert header is None or (isinstance(header, float) and header >= 0)
    results["header"] = header
    assert children() == [], "an ffmpeg or ffprobe is left running or unreaped"
    return results


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_reader_reads_a_damaged_track_or_names_it(tmp_path, originals, data):
    kind, suffix, content, cut = data.draw(damaged(originals))
    path = tmp_path / f"track.{suffix}"
    path.write_bytes(content)
    r = read_all(path)
    pcm, streamed = r["decode"], r["stream"]
    # decode and stream read the same samples the same way
    assert isinstance(pcm, TrackError) == isinstance(streamed, TrackError), r
    # what simulate and coverage count as playable (it has a length) the
    # device plays: every page of an Ogg file is checked, so damage anywhere
    # in one is seen (a WAV's samples and an MP3's frames have no checksum,
    # and a WAV header may name a codec its data is not in: ffmpeg finds out
    # only by decoding)
    if content[:4] == b"OggS" and not isinstance(r["length"], TrackError):
        assert not isinstance(pcm, TrackError), r
    if isinstance(pcm, TrackError):
        return
    assert pcm.duration == pytest.approx(streamed, abs=1 / RATE)
    assert pcm.duration > 0
    # a track the device plays is whole: a WAV or Ogg file cut short is refused
    if cut and kind in ("wav", "opus"):
        pytest.fail(f"{kind} cut short decoded as {pcm.duration:.3f} s: {r}")
    # what the device decodes lasts what its header says (simulate, coverage)
    if r["header"] is not None:
        assert pcm.duration == pytest.approx(r["header"], abs=AGREE), r
    if not isinstance(r["duration"], TrackError) and kind != "mp3":
        assert pcm.duration == pytest.approx(r["duration"], abs=AGREE), r


@pytest.mark.parametrize("special", ["empty", "directory", "fifo", "loop", "zeros", "text"])
def test_special_files_are_named_by_every_reader(tmp_path, special):
    path = tmp_path / "track.opus"
    if special == "empty":
        path.write_bytes(b"")
    elif special == "directory":
        path.mkdir()
    elif special == "fifo":
        os.mkfifo(path)
    elif special == "loop":
        path.symlink_to(path.name)
    elif special == "zeros":
        path.write_bytes(bytes(20_000))
    else:
        path.write_text("narration to be recorded\n" * 40)
    r = read_all(path)
    for reader in ("length", "duration", "decode", "stream"):
        assert isinstance(r[reader], TrackError), (reader, r)
    assert r["header"] is None


def test_fifty_megabytes_of_random_bytes_is_refused_without_hanging(tmp_path):
    path = tmp_path / "track.wav"
    path.write_bytes(np.random.default_rng(7).bytes(50 * 2**20))
    r = read_all(path)
    for reader in ("length", "decode", "stream"):
        assert isinstance(r[reader], TrackError), (reader, r)


def test_a_stream_abandoned_midway_leaves_no_ffmpeg(tmp_path):
    path = tmp_path / "a.opus"
    shutil.copy(OPUS, path)
    chunks = stream(path, chunk=4096)
    next(chunks)
    chunks.close()
    assert children() == []


def test_the_loader_and_the_wav_player_report_a_damaged_track_by_name(tmp_path, originals):
    bad = tmp_path / "bad.opus"
    bad.write_bytes(originals["opus"][: len(originals["opus"]) // 2])
    good = sine_wav(tmp_path / "good.wav")
    events: list = []
    with TrackLoader(TrackCache()) as loader:
        loader.prefetch([bad, good])
        with pytest.raises(TrackError, match=f"{bad}: the file is cut short"):
            loader.load(bad).result(timeout=30)
        assert loader.load(good).result(timeout=30).duration == pytest.approx(0.5, abs=0.01)
        clock = ManualClock()
        out = WavWriter(events.append, tmp_path / "visit.wav", clock=clock, loader=loader)
        out.play(bad)
        clock.now = 1.0
        out.play(good)
        clock.now = 2.0
        out.close()
    failed = [e for e in events if isinstance(e, Failed)]
    assert [e.path for e in failed] == [bad] and str(bad) in failed[0].message
    assert children() == []


# --- the nastiest through the commands, on a small site -------------------

ZONES = """\
site: Fuzz
tracks_dir: tracks
languages: [en]
beacons:
{beacons}
exhibits:
{exhibits}
"""


def site_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    beacons, exhibits = [], []
    for i, (name, content) in enumerate(files.items()):
        (tmp_path / "tracks" / "en").mkdir(parents=True, exist_ok=True)
        (tmp_path / "tracks" / "en" / name).write_bytes(content)
        beacons.append(f"  b{i}: {{ibeacon: {{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, "
                       f"minor: {i + 1}}}, tx_power: -59, x: {i * 10}, y: 0}}")
        exhibits.append(f"  - {{id: e{i}, title: {{en: E{i}}}, beacon: b{i}, radius: 3, "
                        f"tracks: {{en: en/{name}}}}}")
    zones = tmp_path / "zones.yaml"
    zones.write_text(ZONES.format(beacons="\n".join(beacons), exhibits="\n".join(exhibits)))
    return zones


def nasty(originals: dict[str, bytes]) -> dict[str, bytes]:
    wav = bytearray(originals["wav"])
    struct.pack_into("<I", wav, 16, 0xFFFFFFF0)
    opus = bytearray(originals["opus"])
    opus[len(opus) // 2:len(opus) // 2 + 512] = bytes(512)
    return {"cut.opus": originals["opus"][:5000], "fmt.wav": bytes(wav), "crc.opus": bytes(opus),
            "text.ogg": b"not audio\n" * 50, "mp3.wav": originals["mp3"]}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([PY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_guide_check_names_each_damaged_track(tmp_path, originals):
    files = nasty(originals)
    zones = site_with(tmp_path, files)
    result = run("-m", "guide", "check", "--zones", str(zones), cwd=tmp_path)
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert result.returncode != 0
    for name in files:
        if name != "mp3.wav":  # an MP3 named .wav plays: ffmpeg reads what it is
            assert f"en/{name}" in out, (name, out)


def test_guide_play_and_simulate_name_a_damaged_track(tmp_path, originals, capsys):
    files = nasty(originals)
    zones = site_with(tmp_path, files)
    for i, name in enumerate(files):
        if name == "mp3.wav":
            continue
        with file_sink(tmp_path / "alsa"):
            status = main(["play", "--zones", str(zones), "--exhibit", f"e{i}", "--lang", "en"])
        err = capsys.readouterr().err
        assert status == 2 and f"en/{name}" in err and "Traceback" not in err, err
        assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert children() == []
    scans = tmp_path / "scans.csv"
    scans.write_text("visitor,t,beacon,rssi\n" + "".join(f"v1,{t / 10},b0,-60\n" for t in range(100)))
    result = run(str(REPO / "simulate.py"), "--zones", str(zones), "--scans", str(scans), cwd=tmp_path)
    out = result.stdout + result.stderr
    assert "Traceback" not in out and result.returncode == 2, out
    assert "cut.opus" in out or "fmt.wav" in out or "text.ogg" in out, out
