"""Track durations, read from the files themselves."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from guide.errors import TrackError
from guide.audio import decode
from guide.tracks import _ogg_duration, check_complete, duration, header_length


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
    with pytest.raises(TrackError, match="broken.opus: not a readable audio file") as e:
        duration(bad)
    assert str(e.value).count(str(bad)) == 1  # ffprobe's own words name it too: said once


def test_a_missing_track_is_a_clear_error(tmp_path):
    with pytest.raises(TrackError, match="nope.opus: cannot read the track"):
        duration(tmp_path / "nope.opus")


def wav_header(rate: int, frames: bytes) -> bytes:
    """A 16-bit mono PCM WAV of `frames`, its header claiming `rate` Hz."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + 16 + 8 + len(frames)) + b"WAVEfmt " + fmt
            + b"data" + struct.pack("<I", len(frames)) + frames)


def test_a_wav_with_a_sample_rate_of_0_is_a_clear_error_not_a_division_by_zero(tmp_path):
    bad = tmp_path / "zero.wav"
    bad.write_bytes(wav_header(0, bytes(2000)))
    with pytest.raises(TrackError, match=r"zero.wav: its header gives a sample rate of 0 Hz.*re-export"):
        duration(bad)


@pytest.mark.parametrize("code", [0, 0xFFFE])
def test_a_wav_in_a_codec_ffmpeg_cannot_decode_has_no_length(tmp_path, make_wav, code):
    # ffprobe gives such a file (format code 0, or an extensible header
    # without its extension) the length of its header, so simulate and guide
    # coverage counted a track the device's decoder refuses
    data = bytearray(make_wav(tmp_path / "ok.wav", 1.0, tone=440).read_bytes())
    struct.pack_into("<H", data, 20, code)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(bytes(data))
    with pytest.raises(TrackError, match="bad.wav: its audio is in a format ffmpeg has no decoder for"):
        duration(bad)
    with pytest.raises(TrackError, match="bad.wav: cannot be decoded"):
        decode(bad)


def test_a_file_without_audio_has_no_length(tmp_path):
    video = tmp_path / "dome.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=duration=1:size=32x32",
                    "-c:v", "mpeg4", str(video)], check=True)
    with pytest.raises(TrackError, match="dome.mp4: holds no audio stream; export the narration again"):
        duration(video)


def test_a_wav_without_samples_is_an_empty_track(tmp_path, make_wav):
    with pytest.raises(TrackError, match="empty.wav: the track is empty"):
        duration(make_wav(tmp_path / "empty.wav", 0))


def test_a_streamed_wav_whose_header_gives_no_length_is_measured(tmp_path):
    # a streaming encoder cannot go back to write the data size: 0 or 0xFFFFFFFF
    data = bytearray(wav_header(8000, bytes(2 * 8000)))
    for size in (0, 0xFFFFFFFF):
        data[40:44] = struct.pack("<I", size)
        (tmp_path / "streamed.wav").write_bytes(data)
        assert duration(tmp_path / "streamed.wav") == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name, codec", [("a.opus", "libopus"), ("a.ogg", "libvorbis")])
def test_an_ogg_file_cut_short_has_no_duration_as_the_decoder_plays_none(tmp_path, name, codec):
    # a copy interrupted mid-page still has a last page header with a granule
    # position; its length was counted (coverage, simulator) as if playable
    whole = encode(tmp_path / name, 2.5, codec).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(whole[:len(whole) - 10])
    with pytest.raises(TrackError, match=rf"cut-{name}: the file is cut short \(it ends inside an Ogg page\)"):
        duration(cut)


@pytest.mark.parametrize("name, codec", [("a.opus", "libopus"), ("a.ogg", "libvorbis")])
@pytest.mark.parametrize("where", ["last granule", "last page", "middle"])
def test_an_ogg_file_with_a_damaged_page_is_called_damaged(tmp_path, name, codec, where):
    # one byte of a bad copy in the last page's granule position made its
    # length 138 million hours, refused as "longer than the guide can play,
    # split it"; elsewhere it went unseen: the length was counted (coverage,
    # simulator) while ffmpeg drops a page that fails its CRC and the device's
    # decoder refuses the track
    data = bytearray(encode(tmp_path / name, 12, codec).read_bytes())
    last = data.rfind(b"OggS")
    at = {"last granule": last + 12, "last page": len(data) - 3, "middle": len(data) // 2}[where]
    data[at] ^= 0x55
    bad = tmp_path / f"bad-{name}"
    bad.write_bytes(bytes(data))
    said = rf"bad-{name}: the file is damaged \(its Ogg page at byte [\d,]+ fails its checksum\); export"
    if where == "last granule":
        assert header_length(bad) is None  # the device's decoder asks it first
    with pytest.raises(TrackError, match=said):
        duration(bad)
    with pytest.raises(TrackError, match=said):
        decode(bad)


def test_an_ogg_page_that_does_not_begin_where_the_last_ended_is_damage(tmp_path):
    data = bytearray(encode(tmp_path / "a.opus", 2.5, "libopus").read_bytes())
    second = data.find(b"OggS", 4)
    data[second:second + 4] = b"Oggs"
    bad = tmp_path / "bad.opus"
    bad.write_bytes(bytes(data))
    with pytest.raises(TrackError, match=rf"bad.opus: the file is damaged \(no Ogg page where one "
                                         rf"should begin, at byte {second:,}\)"):
        duration(bad)


def test_a_wav_shorter_than_its_header_says_has_no_duration(tmp_path, make_wav):
    data = make_wav(tmp_path / "whole.wav", 1.0).read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:-8000])
    with pytest.raises(TrackError, match=r"cut.wav: the file is cut short \(8000 bytes of audio missing"):
        duration(tmp_path / "cut.wav")


def test_a_pipe_or_a_folder_is_not_a_track(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")  # reading it would wait for a writer forever
    with pytest.raises(TrackError, match="pipe.wav: is not a regular file"):
        duration(tmp_path / "pipe.wav")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(TrackError, match="folder.wav: is a directory"):
        duration(tmp_path / "folder.wav")


def test_an_unreadable_track_says_to_fix_its_permissions_not_to_export_it_again(tmp_path, make_wav,
                                                                               unprivileged):
    path = make_wav(tmp_path / "locked.wav", 0.5)
    code = ("import sys\nfrom guide.tracks import duration\nfrom guide.errors import TrackError\n"
            "try:\n    duration(sys.argv[1])\nexcept TrackError as e:\n    print(e)\n")
    path.chmod(0)
    try:
        out = subprocess.run(unprivileged(sys.executable, "-c", code, str(path)),
                             capture_output=True, text=True, check=True).stdout
    finally:
        path.chmod(0o644)
    assert "locked.wav: cannot be read (permission denied)" in out
    assert f"chmod a+r {path}" in out and "re-export" not in out


def test_a_track_longer_than_the_guide_can_play_has_a_length_but_no_playing_duration(tmp_path, make_wav,
                                                                                     monkeypatch):
    from guide import tracks
    from guide.tracks import TrackTooLong, length

    monkeypatch.setattr(tracks, "MAX_SECONDS", 60.0)
    path = make_wav(tmp_path / "show.wav", 61.0)
    assert length(path) == pytest.approx(61.0)
    with pytest.raises(TrackTooLong, match=r"show.wav: the track lasts 1:01, longer than the 1 minute"):
        duration(path)
    assert duration(make_wav(tmp_path / "short.wav", 60.0)) == pytest.approx(60.0)


def test_a_wav_whose_fmt_chunk_size_runs_past_the_end_is_an_error_naming_it(tmp_path, make_wav):
    # `wave` raised a bare RuntimeError skipping the chunk: a traceback from
    # guide check, coverage, simulate and the device's decoder
    path = make_wav(tmp_path / "a.wav", 0.5)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 16, 0xFFFFFFF0)  # the fmt chunk's size
    path.write_bytes(data)
    assert header_length(path) is None
    with pytest.raises(TrackError, match=f"{path}: not a readable audio file"):
        duration(path)
    with pytest.raises(TrackError, match=f"{path}: cannot be decoded"):
        decode(path)


def test_check_complete_refuses_a_pipe_without_waiting_for_a_writer(tmp_path):
    # a track replaced by a pipe after its stat: opening it waited forever
    path = tmp_path / "a.opus"
    os.mkfifo(path)
    with pytest.raises(TrackError, match=f"{path}: is not a regular file"):
        check_complete(path, 0)


def test_a_wav_whose_sample_rate_ffmpeg_reads_as_negative_has_no_length(tmp_path):
    # 0xFFFFFFFF Hz: the header gave 0.000 s, which simulate and coverage used,
    # while the decoder refuses the file ("Invalid sample rate: -1")
    bad = tmp_path / "huge.wav"
    bad.write_bytes(wav_header(0xFFFFFFFF, bytes(2000)))
    assert header_length(bad) is None
    with pytest.raises(TrackError, match=r"huge.wav: its header gives a sample rate of 4294967295 Hz"):
        duration(bad)
    with pytest.raises(TrackError, match="huge.wav: cannot be decoded"):
        decode(bad)
