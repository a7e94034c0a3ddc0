"""Rendering what a visitor heard (guide.render) and the WAV writer and
recorder players it rests on."""

from __future__ import annotations

import queue
import wave
from pathlib import Path

import numpy as np
import pytest

from guide.audio import RATE, TrackLoader, decode
from guide.errors import GuideError
from guide.player import WAV_MAX_SECONDS, Failed, Finished, ManualClock, Player, Recorder, WavWriter
from guide.render import INTRO_FADE, render_visit
from guide.zones import load_zones

FADE_IN = round(0.05 * RATE)  # frames: more than the player's fade-in after a pause or an offset


@pytest.fixture
def site(tmp_path, make_wav):
    """Two exhibits: a 3 s tone and a 1 s tone, plus one whose track is broken."""
    make_wav(tmp_path / "tracks/en/long.wav", 3.0, rate=RATE, tone=440)
    make_wav(tmp_path / "tracks/en/short.wav", 1.0, rate=RATE, tone=660)
    data = (tmp_path / "tracks/en/long.wav").read_bytes()
    (tmp_path / "tracks/en/cut.wav").write_bytes(data[:len(data) // 2])
    zones = tmp_path / "zones.yaml"
    zones.write_text("""\
site: render test
languages: [en]
beacons:
  b1: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 1}, tx_power: -59, x: 0, y: 0}
  b2: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 2}, tx_power: -59, x: 9, y: 0}
  b3: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 3}, tx_power: -59, x: 20, y: 0}
exhibits:
  - {id: long, title: {en: Long}, beacon: b1, radius: 2, tracks: {en: en/long.wav}}
  - {id: short, title: {en: Short}, beacon: b2, radius: 2, tracks: {en: en/short.wav}}
  - {id: cut, title: {en: Cut}, beacon: b3, radius: 2, tracks: {en: en/cut.wav}}
""")
    return load_zones(zones)


def track(site, name: str) -> np.ndarray:
    return decode(site.track_path(f"en/{name}.wav")).array()


def read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def at(seconds: float) -> int:
    return round(seconds * RATE)


def ev(t: float, event: str, **fields) -> dict:
    return {"visitor": "v001", "t": t, "event": event, **fields}


def test_a_visit_renders_its_tracks_at_their_times_with_silence_between(site, tmp_path):
    events = [ev(1.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(4.0, "end", exhibit="long", reason="finished"),
              ev(6.0, "start", exhibit="short", lang="en", track="en/short.wav"),
              ev(7.0, "end", exhibit="short", reason="finished")]
    done = render_visit(site, events, tmp_path / "v001.wav")
    heard = read(tmp_path / "v001.wav")
    assert done.seconds == 7.0 and done.starts == 2 and done.problems == ()
    assert len(heard) == at(7.0)
    assert not heard[:at(1.0)].any() and not heard[at(4.0):at(6.0)].any()
    np.testing.assert_array_equal(heard[at(1.0):at(4.0)], track(site, "long"))
    np.testing.assert_array_equal(heard[at(6.0):], track(site, "short"))


def test_an_end_with_a_fade_fades_out_from_that_moment(site, tmp_path):
    events = [ev(0.5, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(2.0, "end", exhibit="long", reason="abandoned", fade=0.8)]
    done = render_visit(site, events, tmp_path / "v.wav")
    heard, original = read(tmp_path / "v.wav"), track(site, "long")
    np.testing.assert_array_equal(heard[at(0.5):at(2.0)], original[:at(1.5)])
    tail, under = heard[at(2.0):at(2.8)].astype(float), original[at(1.5):at(2.3)].astype(float)
    loud = np.abs(under) > 4000
    gain = tail[loud] / under[loud]
    assert gain[0] > 0.98 and gain[-1] < 0.02 and np.all(np.diff(gain) <= 0.002)
    assert not heard[at(2.8):].any()
    assert done.seconds == pytest.approx(2.8, abs=0.01)


def test_pause_leaves_a_silence_and_resume_continues_where_it_left_off(site, tmp_path):
    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(1.0, "pause", exhibit="long", position=1.0),
              ev(3.0, "resume", exhibit="long", position=1.0)]
    render_visit(site, events, tmp_path / "v.wav")
    heard, original = read(tmp_path / "v.wav"), track(site, "long")
    assert len(heard) == at(3.0) + at(2.0)  # the pause, then the rest of the track
    np.testing.assert_array_equal(heard[:at(1.0)], original[:at(1.0)])
    assert not heard[at(1.2):at(3.0)].any()
    np.testing.assert_array_equal(heard[at(3.0) + FADE_IN:], original[at(1.0) + FADE_IN:])


def test_a_resume_from_another_position_plays_from_there(site, tmp_path):
    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(2.0, "pause", exhibit="long", position=2.0),
              ev(3.0, "resume", exhibit="long", position=1.5)]
    render_visit(site, events, tmp_path / "v.wav")
    heard, original = read(tmp_path / "v.wav"), track(site, "long")
    np.testing.assert_array_equal(heard[at(3.0) + FADE_IN:], original[at(1.5) + FADE_IN:])


def test_a_track_still_playing_when_the_events_end_plays_to_its_end(site, tmp_path):
    events = [ev(2.0, "start", exhibit="long", lang="en", track="en/long.wav")]
    done = render_visit(site, events, tmp_path / "v.wav")
    heard = read(tmp_path / "v.wav")
    assert done.seconds == 5.0 and len(heard) == at(5.0)
    np.testing.assert_array_equal(heard[at(2.0):], track(site, "long"))


def test_a_start_with_an_offset_plays_the_rest_of_the_track(site, tmp_path):
    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav", offset=2.0)]
    render_visit(site, events, tmp_path / "v.wav")
    heard = read(tmp_path / "v.wav")
    assert len(heard) == at(1.0)
    np.testing.assert_array_equal(heard[FADE_IN:], track(site, "long")[at(2.0) + FADE_IN:])


def test_a_track_started_while_another_fades_out_begins_after_the_fade(site, tmp_path):
    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(1.0, "end", exhibit="long", reason="abandoned", fade=0.5),
              ev(1.0, "start", exhibit="short", lang="en", track="en/short.wav")]
    render_visit(site, events, tmp_path / "v.wav")
    heard = read(tmp_path / "v.wav")
    assert len(heard) == at(1.5) + at(1.0)
    np.testing.assert_array_equal(heard[at(1.5):], track(site, "short"))


def test_the_intro_plays_until_an_exhibit_starts_and_fades_quickly_for_it(site, tmp_path):
    """As on the device: the spoken intro opens the visit; the first exhibit
    cuts it short with INTRO_FADE and then plays from its top."""
    events = [ev(0.0, "intro", lang="en", track="en/long.wav"),
              ev(1.0, "start", exhibit="short", lang="en", track="en/short.wav"),
              ev(2.0 + INTRO_FADE, "end", exhibit="short", reason="finished")]
    done = render_visit(site, events, tmp_path / "v.wav")
    heard, intro = read(tmp_path / "v.wav"), track(site, "long")
    np.testing.assert_array_equal(heard[:at(1.0)], intro[:at(1.0)])
    fading = np.abs(heard[at(1.0):at(1.0 + INTRO_FADE)].astype(float))
    assert fading[:100].max() > 4000 and fading[-100:].max() < 300
    np.testing.assert_array_equal(heard[at(1.0 + INTRO_FADE):], track(site, "short"))
    assert done.starts == 1 and done.seconds == pytest.approx(2.0 + INTRO_FADE, abs=0.01)


def test_an_intro_heard_to_its_end_is_not_cut_by_a_later_start(site, tmp_path):
    events = [ev(0.0, "intro", lang="en", track="en/short.wav"),
              ev(2.0, "start", exhibit="short", lang="en", track="en/short.wav")]
    render_visit(site, events, tmp_path / "v.wav")
    heard, short = read(tmp_path / "v.wav"), track(site, "short")
    np.testing.assert_array_equal(heard[:at(1.0)], short)
    assert not heard[at(1.0):at(2.0)].any()
    np.testing.assert_array_equal(heard[at(2.0):], short)


def test_a_broken_track_is_silence_and_a_problem_naming_it_and_the_visit_goes_on(site, tmp_path):
    events = [ev(0.0, "start", exhibit="cut", lang="en", track="en/cut.wav"),
              ev(0.0, "end", exhibit="cut", reason="error"),
              ev(1.0, "start", exhibit="short", lang="en", track="en/short.wav")]
    done = render_visit(site, events, tmp_path / "v.wav")
    heard = read(tmp_path / "v.wav")
    assert len(done.problems) == 1 and str(site.track_path("en/cut.wav")) in done.problems[0]
    assert not heard[:at(1.0)].any()
    np.testing.assert_array_equal(heard[at(1.0):], track(site, "short"))


def test_a_file_name_that_is_not_a_wav_is_refused_not_given_wav_data(site, tmp_path):
    events = [ev(0.0, "start", exhibit="short", lang="en", track="en/short.wav")]
    with pytest.raises(GuideError, match=r"v\.mp3: give a file name ending in \.wav"):
        render_visit(site, events, tmp_path / "v.mp3")
    assert list(tmp_path.glob("v.mp3*")) == []


def test_events_out_of_time_order_are_refused_saying_which(site, tmp_path):
    events = [ev(5.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              ev(2.0, "end", exhibit="long", reason="finished")]
    with pytest.raises(GuideError, match=r"event 2 \(t=2.0\) comes before"):
        render_visit(site, events, tmp_path / "v.wav")
    assert not (tmp_path / "v.wav").exists()


def test_events_of_two_visitors_are_refused(site, tmp_path):
    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav"),
              {**ev(1.0, "end", exhibit="long", reason="finished"), "visitor": "v002"}]
    with pytest.raises(GuideError, match="2 visitors"):
        render_visit(site, events, tmp_path / "v.wav")


@pytest.mark.parametrize("last", [
    [ev(WAV_MAX_SECONDS + 5.0, "end", exhibit="short", reason="finished")],
    # the last event is within the limit, but the track it starts plays on past it
    [ev(WAV_MAX_SECONDS - 1.0, "start", exhibit="long", lang="en", track="en/long.wav")]])
def test_a_visit_too_long_for_a_wav_file_is_refused_before_anything_is_written(site, tmp_path, last):
    events = [ev(0.0, "start", exhibit="short", lang="en", track="en/short.wav"), *last]
    with pytest.raises(GuideError, match=r"v\.wav: the visit lasts 24:51:2\d, longer than a WAV "
                                         r"file can hold \(24:51:18, 4 GiB\): render a shorter walk"):
        render_visit(site, events, tmp_path / "v.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks", "zones.yaml"]


def test_a_visit_that_just_fits_a_wav_file_is_not_refused(site):
    from guide.render import _length

    events = [ev(0.0, "start", exhibit="long", lang="en", track="en/long.wav", offset=1.0),
              ev(WAV_MAX_SECONDS - 2.5, "pause", exhibit="long"),
              ev(WAV_MAX_SECONDS - 2.2, "resume", exhibit="long", position=1.5)]
    assert _length(site, events) == pytest.approx(WAV_MAX_SECONDS - 0.7)


def test_the_wav_writer_refuses_to_pass_what_a_wav_file_holds_and_leaves_no_part(site, tmp_path):
    clock = ManualClock(0.0)
    writer = WavWriter([].append, tmp_path / "w.wav", clock=clock)
    clock.now = WAV_MAX_SECONDS + 60.0
    with pytest.raises(GuideError, match=r"w\.wav: what is to be written lasts 24:52:18, longer than a WAV"):
        writer.advance()
    with pytest.raises(GuideError):
        writer.close()
    assert list(tmp_path.glob("w.wav*")) == []


def test_a_render_cut_short_leaves_the_file_there_as_it_was(site, tmp_path):
    out = tmp_path / "v.wav"
    render_visit(site, [ev(0.0, "start", exhibit="short", lang="en", track="en/short.wav")], out)
    before = out.read_bytes()

    class Interrupted(TrackLoader):  # Ctrl-C as the second track is loaded
        def load(self, path):
            if Path(path).name == "long.wav":
                raise KeyboardInterrupt
            return super().load(path)

    events = [ev(0.0, "start", exhibit="short", lang="en", track="en/short.wav"),
              ev(2.0, "start", exhibit="long", lang="en", track="en/long.wav")]
    with Interrupted() as loader, pytest.raises(KeyboardInterrupt):
        render_visit(site, events, out, loader=loader)
    assert out.read_bytes() == before  # not the first two seconds of the new one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks", "v.wav", "zones.yaml"]


# ----- the WAV writer and the recorder, as players ----------------------------------

def test_the_wav_writer_reports_a_track_that_ends_as_its_clock_passes_the_end(site, tmp_path):
    clock, events = ManualClock(10.0), []
    writer = WavWriter(events.append, tmp_path / "w.wav", clock=clock)
    writer.play(site.track_path("en/short.wav"))
    clock.now = 10.5
    assert writer.position() == 0.5 and events == []
    clock.now = 11.2
    writer.advance()
    assert events == [Finished(path=site.track_path("en/short.wav"))] and writer.position() is None
    writer.close()
    np.testing.assert_array_equal(read(tmp_path / "w.wav")[:at(1.0)], track(site, "short"))


def test_the_wav_writer_on_the_real_clock_reports_the_end_by_itself(site, tmp_path):
    events: queue.Queue = queue.Queue()
    writer = WavWriter(events.put, tmp_path / "w.wav")
    writer.play(site.track_path("en/short.wav"))
    assert events.get(timeout=10) == Finished(path=site.track_path("en/short.wav"))
    writer.close()
    assert len(read(tmp_path / "w.wav")) >= at(1.0)


def test_the_wav_writer_reports_a_broken_track_naming_it(site, tmp_path):
    events = []
    with WavWriter(events.append, tmp_path / "w.wav", clock=ManualClock()) as writer:
        writer.play(site.track_path("en/cut.wav"))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert str(site.track_path("en/cut.wav")) in events[0].message


def test_the_recorder_remembers_each_call_and_keeps_the_position_on_its_clock(tmp_path):
    clock, events = ManualClock(), []
    rec = Recorder(events.append, clock=clock)
    assert isinstance(rec, Player)
    rec.play(tmp_path / "a.opus", offset=5.0)
    clock.now = 2.0
    rec.pause()
    clock.now = 9.0
    assert rec.position() == 7.0
    rec.resume()
    clock.now = 10.0
    assert rec.position() == 8.0
    rec.finish()
    assert events == [Finished(path=tmp_path / "a.opus")] and rec.position() is None
    assert [(c.t, c.name) for c in rec.calls] == [(0.0, "play"), (2.0, "pause"), (9.0, "resume")]
