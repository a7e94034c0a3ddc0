"""Decoding, caching and playing tracks, through the real pydub/ffmpeg,
simpleaudio and libasound into ALSA's file sink (see tests/alsa.py)."""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from alsa import file_sink, no_device
from guide import tracks as track_lengths
from guide.audio import BYTES_PER_SECOND, RATE, TrackCache, TrackLoader, audio_segment, decode, likely_next
from guide.cli import main
from guide.errors import DeviceError, TrackError
from guide.player import Failed, Finished, ManualClock, SimpleaudioPlayer, WavWriter
from guide.tracks import TrackTooLong
from guide.zones import load_zones

SECONDS = 3.0
AudioSegment = audio_segment()  # pydub's, imported so that its old regexes do not warn


def tone(seconds: float = SECONDS) -> np.ndarray:
    """A loud, speech-band test signal: three partials under a slow swell,
    never near silence for long, so every sample tells where it belongs."""
    t = np.arange(round(seconds * RATE)) / RATE
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t)
    x = swell * (0.5 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 347 * t + 1)
                 + 0.2 * np.sin(2 * np.pi * 1130 * t + 2))
    return np.rint(x * 12000).astype("<i2")


def segment(samples: np.ndarray) -> AudioSegment:
    return AudioSegment(samples.tobytes(), sample_width=2, frame_rate=RATE, channels=1)


@pytest.fixture(scope="session")
def tracks(tmp_path_factory) -> dict[str, Path]:
    """The test signal in every form a site might hand us, some of them broken."""
    d = tmp_path_factory.mktemp("tracks")
    sound = segment(tone())
    paths = {
        "wav16": d / "tone16.wav",
        "wav32": d / "tone32.wav",  # 32-bit integer samples
        "float32": d / "tone-float.wav",  # 32-bit float samples
        "opus": d / "tone.opus",  # pydub decodes Opus to 32-bit integers
        "short": d / "short.wav",
    }
    for form, path, how in [(sound, paths["wav16"], {}),
                            (sound.set_sample_width(4), paths["wav32"], {}),
                            (sound, paths["float32"], {"codec": "pcm_f32le"}),
                            (segment(tone(0.5)), paths["short"], {})]:
        form.export(path, format="wav", **how).close()  # export returns the open file
    sound.export(paths["opus"], format="opus").close()
    data = paths["opus"].read_bytes()
    paths["cut-opus"] = d / "cut.opus"
    paths["cut-opus"].write_bytes(data[:len(data) * 6 // 10])
    data = paths["wav16"].read_bytes()
    paths["cut-wav"] = d / "cut.wav"
    paths["cut-wav"].write_bytes(data[:len(data) * 6 // 10])
    paths["junk"] = d / "junk.opus"
    paths["junk"].write_bytes(bytes(range(256)) * 20)
    paths["empty"] = d / "empty.opus"
    paths["empty"].write_bytes(b"")
    return paths


class Events:
    """What a player reports, collected for a test."""

    def __init__(self) -> None:
        self.q: queue.Queue = queue.Queue()

    def __call__(self, event) -> None:
        self.q.put(event)

    def next(self, timeout: float = 20.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the player reported nothing in {timeout} s")

    def none_left(self) -> bool:
        return self.q.empty()


def settle(seconds: float) -> None:
    """Let real time pass (for the real-time sink), not an assertion on it."""
    time.sleep(seconds)


# ----- decoding ----------------------------------------------------------------

def test_a_16_bit_wav_at_the_output_rate_decodes_to_its_own_samples(tracks):
    pcm = decode(tracks["wav16"])
    np.testing.assert_array_equal(pcm.array(), tone())
    assert pcm.duration == SECONDS


@pytest.mark.parametrize("kind", ["wav32", "float32"])
def test_32_bit_sources_decode_to_the_same_16_bit_samples(tracks, kind):
    np.testing.assert_array_equal(decode(tracks[kind]).array(), tone())


def test_an_opus_track_decodes_to_16_bit_samples_of_the_same_sound(tracks):
    assert AudioSegment.from_file(tracks["opus"]).sample_width == 4  # what pydub alone gives
    samples = decode(tracks["opus"]).array()
    assert samples.dtype == np.dtype("<i2") and len(samples) == len(tone())
    assert np.corrcoef(samples.astype(float), tone().astype(float))[0, 1] > 0.99


@pytest.mark.parametrize("kind, says", [
    ("cut-opus", "cut short"),
    ("cut-wav", "cut short"),
    ("junk", "cannot be decoded"),
    ("empty", "empty"),
])
def test_a_broken_track_fails_to_decode_naming_the_file(tracks, kind, says):
    with pytest.raises(TrackError) as e:
        decode(tracks[kind])
    assert str(tracks[kind]) in str(e.value) and says in str(e.value)


def test_a_missing_track_fails_to_decode_naming_the_file(tmp_path):
    with pytest.raises(TrackError, match=f"{tmp_path / 'nowhere.opus'}: track not found"):
        decode(tmp_path / "nowhere.opus")


# ----- cache and loader ------------------------------------------------------------

def test_the_cache_stays_within_its_budget_dropping_the_least_recently_used(tracks, tmp_path):
    a, b, c = (tmp_path / f"{n}.wav" for n in "abc")
    for p in (a, b, c):
        p.write_bytes(tracks["wav16"].read_bytes())
    size = len(decode(a).samples)
    cache = TrackCache(budget=2 * size + 10)
    cache.put(decode(a))
    cache.put(decode(b))
    assert cache.get(a) is not None  # a is now the most recently used
    cache.put(decode(c))
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    assert cache.bytes == 2 * size <= cache.budget


def test_a_track_changed_on_disk_is_not_served_from_the_cache(tracks, tmp_path):
    path = tmp_path / "t.wav"
    path.write_bytes(tracks["wav16"].read_bytes())
    cache = TrackCache()
    cache.put(decode(path))
    path.write_bytes(tracks["short"].read_bytes())
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.get(path) is None


def test_a_prefetched_track_is_ready_without_decoding_again(tracks):
    calls: list[Path] = []

    def counting(path, **kw):
        calls.append(path)
        return decode(path, **kw)

    with TrackLoader(decoder=counting) as loader:
        loader.prefetch([tracks["wav16"]])
        deadline = time.monotonic() + 20
        while loader.cache.get(tracks["wav16"]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        future = loader.load(tracks["wav16"])
        assert future.done() and calls == [tracks["wav16"]]


def test_a_wanted_track_is_decoded_before_the_tracks_merely_likely(tracks):
    gate, order = threading.Event(), []

    def gated(path, **kw):
        gate.wait(20)  # holds the first decode until the queue is set up
        order.append(path.name)
        return decode(path, **kw)

    with TrackLoader(decoder=gated) as loader:
        loader.prefetch([tracks["wav16"], tracks["wav32"], tracks["float32"]])
        time.sleep(0.05)  # the worker has taken the first one
        wanted = loader.load(tracks["opus"])
        gate.set()
        wanted.result(timeout=20)
    assert order[-1] != "tone.opus" and order.index("tone.opus") <= 1


def test_a_broken_track_fails_at_once_the_second_time(tracks):
    calls = []

    def counting(path, **kw):
        calls.append(path)
        return decode(path, **kw)

    with TrackLoader(decoder=counting) as loader:
        for _ in range(2):
            with pytest.raises(TrackError):
                loader.load(tracks["junk"]).result(timeout=20)
    assert len(calls) == 1


def test_likely_next_is_the_exhibit_then_its_nearest_neighbours_in_the_visitors_language(tmp_path, make_wav):
    for rel in ["en/a.wav", "fr/a.wav", "fr/b.wav", "en/c.wav", "fr/c.wav", "fr/d.wav", "en/e.wav"]:
        make_wav(tmp_path / "tracks" / rel, 0.1)
    beacons, exhibits = [], []
    for i, (name, x, tracks) in enumerate([("a", 0, "{en: en/a.wav, fr: fr/a.wav}"), ("b", 9, "{fr: fr/b.wav}"),
                                           ("c", 3, "{en: en/c.wav, fr: fr/c.wav}"), ("d", 5, "{fr: fr/d.wav}"),
                                           ("e", 40, "{en: en/e.wav}")], 1):
        beacons.append(f"  b{name}: {{ibeacon: {{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, "
                       f"minor: {i}}}, tx_power: -59, x: {x}, y: 0}}")
        exhibits.append(f"  - {{id: {name}, title: {{fr: {name}}}, beacon: b{name}, radius: 1, tracks: {tracks}}}")
    zones = tmp_path / "zones.yaml"
    zones.write_text("site: t\nlanguages: [fr, en]\nfallback: {en: [fr]}\nbeacons:\n" + "\n".join(beacons)
                     + "\nexhibits:\n" + "\n".join(exhibits) + "\n")
    site = load_zones(zones)
    t = tmp_path / "tracks"
    assert likely_next(site, "a", "en", k=3) == [t / "en/a.wav", t / "en/c.wav", t / "fr/d.wav", t / "fr/b.wav"]
    assert likely_next(site, "a", "en", k=2, skip={"a", "c"}) == [t / "fr/d.wav", t / "fr/b.wav"]


# ----- playing through ALSA ---------------------------------------------------------

def test_the_device_receives_exactly_the_decoded_track_and_reports_its_end(tracks, tmp_path):
    events = Events()
    with file_sink(tmp_path) as sink:
        with SimpleaudioPlayer(events) as player:
            player.play(tracks["opus"])
            assert events.next() == Finished(path=tracks["opus"])
            assert player.position() is None
    assert len(sink.plays()) == 1
    np.testing.assert_array_equal(sink.plays()[0], decode(tracks["opus"]).array())


@pytest.mark.parametrize("kind", ["wav32", "float32"])
def test_32_bit_sources_play_as_their_16_bit_samples(tracks, tmp_path, kind):
    events = Events()
    with file_sink(tmp_path) as sink:
        with SimpleaudioPlayer(events) as player:
            player.play(tracks[kind])
            assert isinstance(events.next(), Finished)
    np.testing.assert_array_equal(sink.samples(), tone())


def test_the_volume_scales_what_plays(tracks, tmp_path):
    events = Events()
    with file_sink(tmp_path) as sink:
        with SimpleaudioPlayer(events, volume=0.25) as player:
            assert player.volume == 0.25
            player.play(tracks["wav16"])
            assert isinstance(events.next(), Finished)
    np.testing.assert_allclose(sink.samples(), tone() * 0.25, atol=0.51)


def test_a_track_started_at_an_offset_starts_there_with_a_short_fade_in(tracks, tmp_path):
    events = Events()
    with file_sink(tmp_path) as sink:
        with SimpleaudioPlayer(events) as player:
            player.play(tracks["wav16"], offset=1.0)
            assert isinstance(events.next(), Finished)
    heard, rest = sink.samples(), tone()[RATE:]
    assert len(heard) == len(rest)
    ramp_in = round(0.05 * RATE)
    np.testing.assert_array_equal(heard[ramp_in:], rest[ramp_in:])
    assert abs(int(heard[0])) < abs(int(rest[0])) or rest[0] == 0


def test_a_broken_track_is_reported_naming_it_and_the_next_track_plays(tracks, tmp_path):
    events = Events()
    with file_sink(tmp_path) as sink:
        with SimpleaudioPlayer(events) as player:
            player.play(tracks["cut-opus"])
            failed = events.next()
            assert isinstance(failed, Failed) and failed.path == tracks["cut-opus"]
            assert str(tracks["cut-opus"]) in failed.message
            player.play(tracks["wav16"])
            assert events.next() == Finished(path=tracks["wav16"])
    np.testing.assert_array_equal(sink.samples(), tone())


def test_a_stop_mid_track_fades_out_after_an_exact_prefix(tracks, tmp_path):
    events, fade = Events(), 0.4
    with file_sink(tmp_path, realtime=True) as sink:
        with SimpleaudioPlayer(events) as player:
            player.loader.load(tracks["wav16"]).result(timeout=20)
            player.play(tracks["wav16"])
            settle(0.8)
            player.stop(fade=fade)
            assert player.position() is None
            settle(1.2)
        settle(0.3)
        heard = sink.samples()
    assert events.none_left()  # a stopped track is not "finished"
    original = tone()
    k = int(np.argmax(heard[:len(original)] != original[:len(heard)]))
    assert 0.5 * RATE < k < 2.0 * RATE  # stopped mid-track, after what had been heard
    np.testing.assert_array_equal(heard[:k], original[:k])
    loud = np.abs(original[k:k + RATE]) > 2000
    n = min(RATE, len(heard) - k)
    gain = np.where(loud[:n], heard[k:k + n] / np.where(loud[:n], original[k:k + n], 1), np.nan)
    gain = gain[~np.isnan(gain)]
    assert gain[0] > 0.98  # no step down where the fade begins: no click
    assert np.all(np.diff(gain) <= 0.002)  # only ever down
    last = int(np.nonzero(heard)[0][-1])
    assert (last - k) / RATE == pytest.approx(fade, abs=0.01)
    assert not heard[last + 1:].any()  # then silence


def test_pause_then_resume_continues_where_it_stopped(tracks, tmp_path):
    events = Events()
    original = tone()
    with file_sink(tmp_path, realtime=True) as sink:
        with SimpleaudioPlayer(events) as player:
            player.loader.load(tracks["wav16"]).result(timeout=20)
            player.play(tracks["wav16"])
            settle(0.8)
            player.pause()
            paused_at = player.position()
            settle(0.6)
            assert player.position() == paused_at
            player.resume()
            assert events.next() == Finished(path=tracks["wav16"])
        settle(0.4)
        heard = sink.samples()
    k = int(np.argmax(heard[:len(original)] != original[:len(heard)]))
    np.testing.assert_array_equal(heard[:k], original[:k])  # up to the pause, exactly
    assert paused_at == pytest.approx(k / RATE, abs=0.005)  # where its fade began
    # The resumed part is the rest of the track from there: same length, same samples
    # once its short fade-in is over, nothing skipped and nothing repeated.
    start = round(paused_at * RATE)
    rest = original[start:]
    ramp_in = round(0.05 * RATE)
    np.testing.assert_array_equal(heard[-len(rest) + ramp_in:], rest[ramp_in:])
    assert not heard[-len(rest) - round(0.02 * RATE):-len(rest)].any()  # silence before it


def test_a_volume_change_while_playing_glides_to_the_new_level(tracks, tmp_path):
    events = Events()
    original = tone()
    with file_sink(tmp_path, realtime=True) as sink:
        with SimpleaudioPlayer(events) as player:
            player.loader.load(tracks["wav16"]).result(timeout=20)
            player.play(tracks["wav16"])
            settle(0.6)
            player.set_volume(0.5)
            assert player.volume == 0.5
            assert events.next() == Finished(path=tracks["wav16"])
        settle(0.4)
        heard = sink.samples()
    assert len(heard) == len(original)
    k = int(np.argmax(heard != original))
    assert 0.3 * RATE < k < 2.0 * RATE
    np.testing.assert_array_equal(heard[:k], original[:k])
    glide = round(0.1 * RATE)
    np.testing.assert_allclose(heard[k + glide:], original[k + glide:] * 0.5, atol=0.51)
    loud = np.abs(original[k:k + glide]) > 2000
    gain = heard[k:k + glide][loud] / original[k:k + glide][loud]
    assert gain[0] > 0.98 and np.all(np.diff(gain) <= 0.002)  # down smoothly, no step


def test_no_audio_device_is_a_device_error_that_says_so(tmp_path):
    with no_device(tmp_path), pytest.raises(DeviceError, match="no audio output: ALSA cannot open"):
        SimpleaudioPlayer(Events())


# ----- guide play --------------------------------------------------------------------

@pytest.fixture
def site(tmp_path, tracks) -> Path:
    (tmp_path / "tracks/fr").mkdir(parents=True)
    (tmp_path / "tracks/fr/dome.opus").write_bytes(tracks["opus"].read_bytes())
    (tmp_path / "tracks/fr/tunnel.opus").write_bytes(tracks["cut-opus"].read_bytes())
    zones = tmp_path / "zones.yaml"
    zones.write_text("""\
site: play test
languages: [fr, en]
beacons:
  b1: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 1}, tx_power: -59, x: 0, y: 0}
  b2: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 2}, tx_power: -59, x: 9, y: 0}
exhibits:
  - {id: dome, title: {fr: Coupole}, beacon: b1, radius: 2, tracks: {fr: fr/dome.opus}}
  - {id: tunnel, title: {fr: Tunnel}, beacon: b2, radius: 2, tracks: {fr: fr/tunnel.opus}}
""")
    return zones


def test_guide_play_plays_the_track_of_the_visitors_language_or_its_fallback(site, tmp_path, capsys):
    with file_sink(tmp_path / "alsa") as sink:
        status = main(["play", "--zones", str(site), "--exhibit", "dome", "--lang", "en"])
    assert status == 0, capsys.readouterr().err
    assert "no en track for dome: playing the fr one" in capsys.readouterr().err
    np.testing.assert_array_equal(sink.samples(), decode(tmp_path / "tracks/fr/dome.opus").array())


def test_guide_play_without_an_audio_device_exits_2_saying_so(site, tmp_path, capsys):
    with no_device(tmp_path / "alsa"):
        status = main(["play", "--zones", str(site), "--exhibit", "dome", "--lang", "fr"])
    err = capsys.readouterr().err
    assert status == 2 and "guide: error: no audio output" in err and "Traceback" not in err


def test_guide_play_of_a_broken_track_exits_2_naming_the_file(site, tmp_path, capsys):
    with file_sink(tmp_path / "alsa"):
        status = main(["play", "--zones", str(site), "--exhibit", "tunnel", "--lang", "fr"])
    err = capsys.readouterr().err
    assert status == 2 and "tunnel.opus" in err and "cut short" in err


def test_guide_play_of_an_unknown_exhibit_suggests_the_right_one(site, capsys):
    assert main(["play", "--zones", str(site), "--exhibit", "dom", "--lang", "fr"]) == 2
    assert "--exhibit dom: not one of the exhibits of" in (err := capsys.readouterr().err)
    assert "did you mean dome?" in err


def test_guide_play_of_a_wav_without_samples_says_the_track_is_empty(site, tmp_path, capsys):
    segment(tone(0.0)).export(tmp_path / "tracks/fr/dome.wav", format="wav").close()
    site.write_text(site.read_text().replace("fr/dome.opus", "fr/dome.wav"))
    with file_sink(tmp_path / "alsa"):
        status = main(["play", "--zones", str(site), "--exhibit", "dome", "--lang", "fr"])
    err = capsys.readouterr().err
    assert status == 2 and "dome.wav: the track is empty" in err
    assert "--offset" not in err and "Traceback" not in err


def test_guide_play_refuses_a_track_longer_than_the_guide_can_play(site, tmp_path, make_wav, monkeypatch,
                                                                 capsys):
    monkeypatch.setattr(track_lengths, "MAX_SECONDS", 60.0)
    make_wav(tmp_path / "tracks/fr/dome.wav", 61.0)
    site.write_text(site.read_text().replace("fr/dome.opus", "fr/dome.wav"))
    with file_sink(tmp_path / "alsa") as sink:
        status = main(["play", "--zones", str(site), "--exhibit", "dome", "--lang", "fr"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "dome.wav: the track lasts 1:01, longer than the 1 minute the guide can play" in err
    assert sink.plays() == []


# ----- memory: a long track ----------------------------------------------------------

def traced_peak(work) -> tuple[object, int]:
    """work()'s result, and the most memory Python and numpy held at once
    while it ran, beyond what they held before (bytes)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = work()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_decoding_holds_the_track_once_not_a_second_copy_to_join(tmp_path, make_wav):
    path = make_wav(tmp_path / "long.wav", 240.0)  # 11.5 MB decoded
    pcm, peak = traced_peak(lambda: decode(path))
    assert pcm.duration == 240.0
    assert peak < 1.5 * len(pcm.samples)  # ffmpeg's output read into one buffer, not joined


def test_a_volume_change_during_a_long_track_is_written_in_place_not_into_a_second_copy(tmp_path, make_wav):
    path = make_wav(tmp_path / "long.wav", 240.0, tone=300)
    clock = ManualClock()
    writer = WavWriter(lambda event: None, tmp_path / "out.wav", clock=clock)
    try:
        writer.play(path)
        clock.now = 1.0
        size = len(decode(path).samples)
        _, peak = traced_peak(lambda: writer.set_volume(0.5))
        assert peak < size / 4
        clock.now = 2.0
    finally:
        writer.close()
    heard, original = decode(tmp_path / "out.wav").array(), decode(path).array()
    later = slice(round(1.2 * RATE), round(1.9 * RATE))  # past the glide, before the end's ramp
    np.testing.assert_allclose(heard[later], original[later] * 0.5, atol=0.51)


def test_a_track_longer_than_the_guide_can_play_is_refused_by_its_length_before_decoding(
        tmp_path, make_wav, monkeypatch):
    monkeypatch.setattr(track_lengths, "MAX_SECONDS", 60.0)
    path = make_wav(tmp_path / "show.wav", 61.0)
    calls = []
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: calls.append(a) or pytest.fail("ffmpeg ran"))
    with pytest.raises(TrackTooLong) as e:
        decode(path)
    assert str(e.value).startswith(f"{path}: the track lasts 1:01, longer than the 1 minute the guide can play")
    assert not calls


def test_a_track_whose_header_gives_no_length_is_refused_once_the_limit_has_been_decoded(
        tmp_path, make_wav, monkeypatch):
    monkeypatch.setattr(track_lengths, "MAX_SECONDS", 60.0)
    wav = make_wav(tmp_path / "show.wav", 90.0)
    path = tmp_path / "show.flac"  # its length is not read before decoding (that takes ffprobe)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(path)], check=True)
    (pcm, error), peak = traced_peak(lambda: _outcome(lambda: decode(path)))
    assert pcm is None and isinstance(error, TrackTooLong)
    assert str(error).startswith(f"{path}: the track lasts more than 1 minute, longer than the 1 minute")
    assert peak < 1.5 * 61 * BYTES_PER_SECOND  # it stopped there, not at the end


def _outcome(work):
    try:
        return work(), None
    except TrackError as e:
        return None, e


def test_a_prefetch_of_a_track_too_large_for_the_cache_is_not_decoded(tracks, tmp_path, make_wav):
    big = make_wav(tmp_path / "big.wav", 30.0)  # 1.4 MB decoded
    calls: list[Path] = []

    def counting(path, **kw):
        calls.append(path)
        return decode(path, **kw)

    with TrackLoader(TrackCache(budget=1 << 20), decoder=counting) as loader:
        loader.prefetch([big, tracks["wav16"]])
        deadline = time.monotonic() + 20
        while loader.cache.get(tracks["wav16"]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [tracks["wav16"]]  # decoded, it would have been thrown away
        assert loader.load(big).result(timeout=20).duration == 30.0  # wanted, it is decoded


def test_a_pipe_is_not_decoded_as_a_track(tmp_path):
    os.mkfifo(tmp_path / "pipe.opus")  # ffmpeg would wait for a writer forever
    with pytest.raises(TrackError, match="pipe.opus: is not a regular file"):
        decode(tmp_path / "pipe.opus")
