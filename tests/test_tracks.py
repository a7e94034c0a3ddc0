"""Track durations, read from the files themselves."""

from __future__ import annotations

import subprocess

import pytest

from guide.errors import TrackError
from guide.tracks import _ogg_duration, duration


def encode(path, seconds, codec):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-ar", "48000", "-c:a", codec,
                    str(path)], check=True)
    return path


@pytest.mark.parametrize("name, codec", [("a.opus", "libopus"), ("a.ogg", "libvorbis")])
def test_ogg_durations_come_from_the_last_page_and_match_the_audio(tmp_path, name, codec):
    path = encode(tmp_path / name, 2.5, codec)
    assert _ogg_duration(str(path)) == pytest.approx(2.5, abs=0.03)
    assert duration(path) == pytest.approx(2.5, abs=0.03)


def test_a_wav_duration_comes_from_its_header(tmp_path, make_wav):
    assert duration(make_wav(tmp_path / "a.wav", 1.25)) == pytest.approx(1.25)


def test_a_file_that_is_not_audio_is_a_clear_error_naming_it(tmp_path):
    bad = tmp_path / "broken.opus"
    bad.write_bytes(b"OggS but not really" * 10)
    with pytest.raises(TrackError, match="broken.opus: not a readable audio file"):
        duration(bad)


def test_a_missing_track_is_a_clear_error(tmp_path):
    with pytest.raises(TrackError, match="nope.opus: cannot read the track"):
        duration(tmp_path / "nope.opus")
