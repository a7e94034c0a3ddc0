"""`guide check`: one report of everything wrong with a site, errors apart
from warnings, and an exit status scripts can trust."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from guide import tracks
from guide.check import check_site, format_report
from guide.cli import main

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def write_site(tmp_path, exhibits, *, languages=("fr", "en"), extra_beacons=(), fallback=None):
    """exhibits: {id: {lang: relative track path}} -> zones.yaml (tracks not made here)."""
    lines = ["site: Check test", f"languages: [{', '.join(languages)}]"]
    if fallback is not None:
        lines.append("fallback: {" + ", ".join(f"{k}: [{', '.join(v)}]" for k, v in fallback.items()) + "}")
    lines.append("beacons:")
    for i, b in enumerate([*(f"b-{e}" for e in exhibits), *extra_beacons]):
        lines.append(f"  {b}: {{ibeacon: {{uuid: {UUID}, major: 1, minor: {i + 1}}}, "
                     f"tx_power: -59, x: {i * 8}, y: 0}}")
    lines.append("exhibits:")
    for e, tracks in exhibits.items():
        listed = ", ".join(f"{lang}: {rel}" for lang, rel in tracks.items())
        lines.append(f"  - {{id: {e}, title: {{fr: {e}}}, beacon: b-{e}, radius: 2, tracks: {{{listed}}}}}")
    path = tmp_path / "zones.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def good(tmp_path, make_wav):
    for e in ("dome", "v2"):
        for lang in ("fr", "en"):
            make_wav(tmp_path / "tracks" / lang / f"{e}.wav", 1.5, tone=440)
    return write_site(tmp_path, {e: {lang: f"{lang}/{e}.wav" for lang in ("fr", "en")}
                                 for e in ("dome", "v2")})


def test_a_good_site_reports_every_track_with_its_length_and_exits_0(good, capsys):
    report = check_site(good)
    assert report.ok and report.findings == ()
    assert sorted(t.path for t in report.tracks) == ["en/dome.wav", "en/v2.wav", "fr/dome.wav", "fr/v2.wav"]
    assert all(t.seconds == pytest.approx(1.5, abs=0.01) and t.error is None for t in report.tracks)
    assert main(["check", "--zones", str(good), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 errors, 0 warnings" in out and "All is well." in out


def test_a_zone_map_that_does_not_load_is_reported_with_its_lines_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "zones.yaml"
    bad.write_text("site: x\nlanguages: [fr]\nbeacons: {}\nexhibits: []\n")
    assert main(["check", "--zones", str(bad), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:3:10: beacons is empty" in out
    assert "does not load" in out and "Traceback" not in out


def test_an_undecodable_track_is_an_error_naming_the_exhibits_that_use_it(good, capsys):
    (good.parent / "tracks/en/v2.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    report = check_site(good)
    assert not report.ok
    (err,) = [f for f in report.findings if f.severity == "error"]
    assert err.subject == "track en/v2.wav" and "v2 (en)" in err.message
    broken = next(t for t in report.tracks if t.path == "en/v2.wav")
    assert broken.seconds is None and broken.error
    assert main(["check", "--zones", str(good), "--no-progress"]) == 1
    assert "Fix the errors" in capsys.readouterr().out


def test_a_silent_track_is_a_warning_and_the_exit_status_stays_0(tmp_path, make_wav):
    make_wav(tmp_path / "tracks/fr/dome.wav", 2.0)  # all zeros
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    report = check_site(zones)
    assert report.ok
    (w,) = report.findings
    assert w.severity == "warning" and "silent" in w.message and "dome (fr)" in w.message
    assert main(["check", "--zones", str(zones), "--no-progress"]) == 0


def test_a_track_too_quiet_throughout_is_called_quiet_not_a_silence_at_its_start(tmp_path):
    import wave

    # 10 s of speech-like tone exported 40 dB too low: loudest sample -46 dBFS, above "silent"
    path = tmp_path / "tracks/fr/dome.wav"
    path.parent.mkdir(parents=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(struct.pack("<80000h", *(round(164 * math.sin(2 * math.pi * 300 * i / 8000))
                                               for i in range(80000))))
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    report = check_site(zones)
    assert report.ok
    (w,) = report.findings
    assert w.severity == "warning" and w.subject == "track fr/dome.wav", w
    assert w.message.startswith("is too quiet to hear: none of its 10.0 s reaches -45 dBFS"), w
    assert "loudest sample -46 dBFS" in w.message and "dome (fr)" in w.message, w


def tone_between_silences(tmp_path: Path, make_wav, before: float, after: float) -> None:
    """tracks/fr/dome.wav: `before` s of nothing, 1 s of a tone, `after` s of nothing."""
    import wave

    make_wav(tmp_path / "tone.wav", 1.0, tone=300)
    with wave.open(str(tmp_path / "tone.wav")) as w:
        tone = w.readframes(w.getnframes())
    path = tmp_path / "tracks/fr/dome.wav"
    path.parent.mkdir(parents=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(bytes(int(2 * 8000 * before)) + tone + bytes(int(2 * 8000 * after)))


def test_a_long_silence_before_the_narration_is_a_warning(tmp_path, make_wav):
    tone_between_silences(tmp_path, make_wav, 4, 0)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    report = check_site(zones)
    (w,) = report.findings
    assert "starts with 4.0 s of silence" in w.message
    assert report.tracks[0].leading_silence == pytest.approx(4.0, abs=0.06)


def test_a_beacon_no_exhibit_uses_is_a_warning(tmp_path, make_wav):
    make_wav(tmp_path / "tracks/fr/dome.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",),
                       extra_beacons=["b-spare"])
    (w,) = check_site(zones).findings
    assert w.subject == "beacon b-spare" and "no exhibit uses it" in w.message


def test_the_summary_counts_one_exhibit_beacon_and_track_in_the_singular(tmp_path, make_wav, capsys):
    make_wav(tmp_path / "tracks/fr/dome.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    assert main(["check", "--zones", str(zones), "--no-progress"]) == 0
    assert "\n1 exhibit, 1 beacon, 1 track: 0 errors, 0 warnings.\n" in capsys.readouterr().out


def test_exhibits_a_language_gets_no_narration_at_are_warned_and_fallbacks_noted(tmp_path, make_wav):
    for rel in ("fr/dome.wav", "fr/v2.wav", "en/dome.wav"):
        make_wav(tmp_path / "tracks" / rel, 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav", "en": "en/dome.wav"},
                                  "v2": {"fr": "fr/v2.wav"}},
                       languages=("fr", "en", "nl"), fallback={"en": ["fr"], "nl": []})
    report = check_site(zones)
    (w,) = [f for f in report.findings if f.severity == "warning"]
    assert w.subject == "language nl" and "dome, v2" in w.message
    notes = [f for f in report.findings if f.severity == "note"]
    assert any(n.subject == "language en" and "1 exhibit plays in French for visitors choosing English: v2" in n.message
               for n in notes)


def test_an_audio_file_no_exhibit_uses_is_noted_with_where_it_probably_belongs(tmp_path, make_wav):
    for rel in ("fr/dome.wav", "en/dome.wav"):
        make_wav(tmp_path / "tracks" / rel, 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr", "en"))
    notes = [f for f in check_site(zones).findings if f.subject == "file en/dome.wav"]
    assert len(notes) == 1 and "add it to dome's tracks (en: en/dome.wav)" in notes[0].message


def test_a_file_an_exhibit_plays_through_a_link_is_used_not_advised_for_deletion(tmp_path, make_wav):
    make_wav(tmp_path / "tracks/fr/dome-take2.wav", 1.0, tone=440)
    (tmp_path / "tracks/fr/dome.wav").symlink_to("dome-take2.wav")
    (tmp_path / "tracks/fr/alias.wav").symlink_to("dome.wav")  # a link on the way is used too
    make_wav(tmp_path / "tracks/fr/old.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/alias.wav"}}, languages=("fr",))
    notes = [f.subject for f in check_site(zones).findings if "no exhibit uses it" in f.message]
    assert notes == ["file fr/old.wav"]


@pytest.mark.parametrize("target, fix", [
    ("/nonexistent/guide-test/dome.wav", "replace the link with the audio file itself"),
    ("gone.wav", "put the file there or fix the link")])
def test_a_broken_link_as_a_track_is_called_broken_naming_the_missing_file(tmp_path, make_wav, target, fix):
    (tmp_path / "tracks/fr").mkdir(parents=True)
    (tmp_path / "tracks/fr/dome.wav").symlink_to(target)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    (err,) = check_site(zones).findings
    missing = tmp_path.resolve() / "tracks/fr" / target
    assert f"'fr/dome.wav' is a broken link: it points at {missing}, which does not exist: {fix}" in err.message
    assert "outside tracks_dir" not in err.message and err.severity == "error"


def test_languages_the_coverage_sentence_is_not_worded_in_are_one_warning_naming_them(tmp_path, make_wav):
    langs = ("fr", "es", "zh", "de-AT", "en")
    for lang in langs:
        make_wav(tmp_path / "tracks" / lang / "dome.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {lang: f"{lang}/dome.wav" for lang in langs}}, languages=langs)
    (w,) = [f for f in check_site(zones).findings if f.subject == "languages"]
    assert w.severity == "warning"
    assert ("worded in English, French, German, Dutch only: visitors choosing Spanish (es), "
            "Chinese (zh) will be told it in English") in w.message


def test_json_output_has_the_findings_and_every_track(good, capsys):
    (good.parent / "tracks/en/v2.wav").write_bytes(b"not audio at all")
    assert main(["check", "--zones", str(good), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == 1 and data["exhibits"] == 2
    assert {t["path"] for t in data["tracks"]} == {"en/dome.wav", "en/v2.wav", "fr/dome.wav", "fr/v2.wav"}
    assert data["findings"][0]["severity"] == "error"


def test_the_text_report_lists_tracks_with_lengths_on_request(good):
    text = format_report(check_site(good), tracks=True)
    assert "fr: 2 tracks" in text and "fr/dome.wav  1.5 s" in text


def test_the_intro_tracks_are_checked_and_not_reported_as_unused(tmp_path, make_wav):
    make_wav(tmp_path / "tracks/fr/dome.wav", 1.0, tone=440)
    make_wav(tmp_path / "tracks/fr/_intro.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    zones.write_text(zones.read_text() + "intro: {fr: fr/_intro.wav}\n")
    report = check_site(zones)
    assert not [f for f in report.findings if f.subject == "file fr/_intro.wav"]
    intro, = [t for t in report.tracks if t.path == "fr/_intro.wav"]
    assert intro.used_by == (("intro", "fr"),) and intro.seconds == pytest.approx(1.0, abs=0.05)


def test_text_that_is_not_valid_unicode_is_reported_at_its_line_not_a_crash(good, capsys):
    good.write_text(good.read_text().replace("site: Check test", 'site: "Salle \\ud83d"'))
    assert main(["check", "--zones", str(good), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"{good}:1:7: the text holds the escape \\ud83d" in out
    assert "not valid Unicode text" in out and "Traceback" not in out


def test_an_unreadable_track_asks_for_its_permissions_to_be_fixed_not_a_new_export(good, unprivileged):
    track = good.parent / "tracks/en/v2.wav"
    track.chmod(0)
    command = unprivileged(sys.executable, "-m", "guide", "check", "--zones", str(good), "--no-progress")
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        track.chmod(0o644)
    assert done.returncode == 1, done.stderr
    assert (f"track en/v2.wav: cannot be played: cannot be read (permission denied); "
            f"make it readable (chmod a+r {track})") in done.stdout
    assert "export" not in done.stdout and "Traceback" not in done.stderr


def test_checking_a_long_track_takes_no_more_memory_than_a_short_one(tmp_path, make_wav):
    def peak(seconds: float) -> int:
        folder = tmp_path / f"{seconds:g}"
        make_wav(folder / "tracks/fr/dome.wav", seconds, tone=440)
        zones = write_site(folder, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
        tracemalloc.start()
        try:
            report = check_site(zones)
            used = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.ok and report.tracks[0].seconds == pytest.approx(seconds)
        return used

    assert peak(480.0) < 1.5 * peak(60.0)  # 8 minutes, 23 MB decoded: streamed, a chunk at a time


def test_the_analysis_of_a_track_runs_on_across_the_chunks_it_is_decoded_in(tmp_path, make_wav):
    tone_between_silences(tmp_path, make_wav, 30, 20)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}}, languages=("fr",))
    (info,) = check_site(zones).tracks  # 2.4 MB decoded: three chunks
    assert info.seconds == pytest.approx(51.0)
    assert info.leading_silence == pytest.approx(30.0, abs=0.06)
    assert info.trailing_silence == pytest.approx(20.0, abs=0.06)
    assert info.peak_dbfs == pytest.approx(-6.0, abs=0.1)


def test_a_track_longer_than_the_guide_can_play_is_an_error_giving_its_length_and_the_limit(
        tmp_path, make_wav, monkeypatch, capsys):
    monkeypatch.setattr(tracks, "MAX_SECONDS", 60.0)
    make_wav(tmp_path / "tracks/fr/dome.wav", 75.0, tone=440)
    make_wav(tmp_path / "tracks/fr/v2.wav", 59.0, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav"}, "v2": {"fr": "fr/v2.wav"}},
                       languages=("fr",))
    report = check_site(zones)
    (err,) = [f for f in report.findings if f.severity == "error"]
    assert err.subject == "track fr/dome.wav"
    assert err.message.startswith("cannot be played: the track lasts 1:15, longer than the 1 minute "
                                  "the guide can play")
    assert "split it" in err.message and "dome (fr)" in err.message
    assert main(["check", "--zones", str(zones), "--no-progress", "--tracks"]) == 1
    out = capsys.readouterr().out
    assert "fr: 2 tracks, 59 s, 1 too long" in out and "fr/dome.wav  1:15 TOO LONG" in out


def test_a_broken_track_says_what_each_language_hears_instead_through_the_fallback_chain(
        tmp_path, make_wav, capsys):
    """The device passes over a track it cannot play to the next language of
    the chain with one that plays: the message says so, where it said the
    visitors would hear nothing."""
    for rel in ("fr/dome.wav", "de/v2.wav", "fr/v2.wav"):
        make_wav(tmp_path / "tracks" / rel, 1.0, tone=440)
    (tmp_path / "tracks/en").mkdir()
    for rel in ("en/dome.wav", "en/v2.wav"):
        (tmp_path / "tracks" / rel).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav", "en": "en/dome.wav"},
                                  "v2": {"en": "en/v2.wav", "de": "de/v2.wav", "fr": "fr/v2.wav"}},
                       languages=("fr", "en", "de"), fallback={"en": ["fr"], "de": ["en"]})
    errors = {f.subject: f.message for f in check_site(zones).findings if f.severity == "error"}
    assert errors["track en/dome.wav"].endswith(
        "; at dome (en): visitors choosing English hear it in French instead, "
        "visitors choosing German hear nothing")
    assert errors["track en/v2.wav"].endswith(
        "; at v2 (en): visitors choosing English hear it in French instead")
    assert all("would hear nothing" not in m for m in errors.values())
    assert main(["check", "--zones", str(zones), "--no-progress"]) == 1
    assert "visitors choosing English hear it in French instead" in capsys.readouterr().out


def test_the_fallback_suggested_for_a_language_heard_nowhere_is_one_with_tracks_there(tmp_path, make_wav):
    """It suggested the site's first language, itself without a track there
    (fallback: {de: [en]} when en has none either), and '...' for the first."""
    for e in ("dome", "v2"):
        make_wav(tmp_path / "tracks" / "fr" / f"{e}.wav", 1.0, tone=440)
    zones = write_site(tmp_path, {e: {"fr": f"fr/{e}.wav"} for e in ("dome", "v2")},
                       languages=("en", "fr", "de"), fallback={"en": [], "de": []})
    warnings = {f.subject: f.message for f in check_site(zones).findings if f.severity == "warning"}
    assert warnings["language de"].endswith(
        "no track in de and it has no fallback; add a track, or a fallback for de in zones.yaml "
        "(fallback: {de: [fr]})"), warnings
    assert warnings["language en"].endswith("(fallback: {en: [fr]})"), warnings


def test_an_exhibit_with_no_track_in_any_language_is_one_warning_naming_it(tmp_path, make_wav):
    # tracks: {} (narrations still being recorded) loads; check says visitors there hear
    # nothing, once, not once a language with a fallback to add that could not help
    make_wav(tmp_path / "tracks" / "fr" / "dome.wav", 1.5, tone=440)
    make_wav(tmp_path / "tracks" / "en" / "dome.wav", 1.5, tone=440)
    zones = write_site(tmp_path, {"dome": {"fr": "fr/dome.wav", "en": "en/dome.wav"}, "v2": {}})
    report = check_site(zones)
    assert report.ok
    warnings = [(f.subject, f.message) for f in report.findings if f.severity == "warning"]
    assert len(warnings) == 1
    subject, message = warnings[0]
    assert subject == "exhibit v2" and "no track in any language" in message
    assert "visitors there hear nothing" in message


@pytest.mark.parametrize("lengths, check, coverage", [
    ((60.0, 90.0), "3 min", "3/3 min"),  # Python's round sent 2.5 to 2
    ((30.0,), "30 s", "30/30 s"),  # half a minute, rounded up, was '1 min'
])
def test_a_language_s_narration_reads_as_guide_coverage_gives_it(tmp_path, make_wav, capsys,
                                                                  lengths, check, coverage):
    """Check and coverage on one site gave two figures: 60 + 90 s was '2 min'
    in check and '3/3 min' in coverage."""
    for i, seconds in enumerate(lengths):
        make_wav(tmp_path / "tracks" / "fr" / f"t{i}.wav", seconds)
    zones = write_site(tmp_path, {f"t{i}": {"fr": f"fr/t{i}.wav"} for i in range(len(lengths))},
                       languages=("fr",))
    main(["check", "--zones", str(zones), "--no-progress"])
    assert f"  fr: {len(lengths)} track{'s' if len(lengths) > 1 else ''}, {check}\n" in capsys.readouterr().out
    assert main(["coverage", "--zones", str(zones)]) == 0
    assert coverage in capsys.readouterr().out
