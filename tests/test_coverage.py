"""Honest language coverage: how much of the visit exists in each language,
the sentence a visitor is told, and `guide coverage`."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from guide.cli import main
from guide.coverage import Coverage, coverage, language_name, sentence, site_coverage
from guide.zones import load_zones

RATE = 100  # Hz: silent WAVs of minutes stay small; their length is in the header


def write_site(tmp_path, make_wav, exhibits, *, languages=("fr", "en"), fallback=None):
    """exhibits: {id: {lang: seconds}} -> a loaded Site with real WAV tracks."""
    lines = ["site: Coverage test", f"languages: [{', '.join(languages)}]"]
    if fallback:
        lines.append("fallback: {" + ", ".join(f"{k}: [{', '.join(v)}]" for k, v in fallback.items()) + "}")
    lines.append("beacons:")
    for i, ex in enumerate(exhibits):
        lines += [f"  b-{ex}:", f"    ibeacon: {{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: {i + 1}}}",
                  "    tx_power: -59", f"    x: {i * 5}", "    y: 0"]
    lines.append("exhibits:")
    for ex, tracks in exhibits.items():
        for lang, seconds in tracks.items():
            make_wav(tmp_path / "tracks" / lang / f"{ex}.wav", seconds, rate=RATE)
        listed = ", ".join(f"{lang}: {lang}/{ex}.wav" for lang in tracks)
        lines.append(f"  - {{id: {ex}, title: {{fr: {ex}}}, beacon: b-{ex}, radius: 2, tracks: {{{listed}}}}}")
    (tmp_path / "zones.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path / "zones.yaml"


@pytest.fixture
def coupole(tmp_path, make_wav):
    """16 exhibits: 14 narrated in French and English, 2 in French only.
    English: 12 x 160 s + 2 x 180 s = 38 min; the 2 French-only: 2 x 210 s."""
    exhibits = {f"ex-{i:02d}": {"fr": 150, "en": 160 if i < 12 else 180} for i in range(14)}
    exhibits |= {"ex-14": {"fr": 210}, "ex-15": {"fr": 210}}
    return write_site(tmp_path, make_wav, exhibits)


def test_a_visitor_is_told_how_much_of_the_visit_exists_in_their_language(coupole):
    c = coverage(load_zones(coupole), "en")
    assert (c.exhibits, c.total_exhibits) == (14, 16)
    assert (c.seconds, c.total_seconds) == (2280.0, 2700.0)
    assert c.fallback == {"fr": ("ex-14", "ex-15")} and c.silent == ()
    assert sentence(c) == "English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French"


def test_a_language_with_every_track_says_so(coupole):
    c = coverage(load_zones(coupole), "fr")
    assert c.complete and c.fallback == {}
    assert sentence(c) == "French: all 16 exhibits, 42 minutes"


def test_fallbacks_to_several_languages_and_silent_exhibits_are_all_told(tmp_path, make_wav):
    zones = write_site(tmp_path, make_wav, {
        "a": {"de": 30, "fr": 30},
        "b": {"fr": 20},
        "c": {"en": 25},
        "d": {"nl": 40},
    }, languages=("fr", "en", "de", "nl"), fallback={"de": ["en", "fr"]})
    c = coverage(load_zones(zones), "de")
    assert c.fallback == {"en": ("c",), "fr": ("b",)}  # in the order of the chain
    assert c.silent == ("d",)  # de falls back to en and fr only
    assert (c.seconds, c.total_seconds) == (30.0, 75.0)
    assert sentence(c) == ("German: 1 of 4 exhibits, 30 of 75 seconds; "
                           "2 others play in English (1) and French (1); 1 has no narration")


def test_a_part_short_of_the_whole_never_reads_as_the_whole():
    c = Coverage(lang="nl", exhibits=9, total_exhibits=10, seconds=2690, total_seconds=2700,
                 fallback={"fr": ("x",)}, silent=())
    assert sentence(c) == "Dutch: 9 of 10 exhibits, 44 of 45 minutes; the others play in French"


def test_the_visitor_is_told_in_their_own_language_when_it_is_french_english_german_or_dutch(coupole):
    site = load_zones(coupole)
    assert sentence(coverage(site, "fr"), "fr") == "Français\u00a0: les 16 étapes de la visite, 42 minutes"
    assert sentence(coverage(site, "en"), "en") == (
        "English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French")
    german = Coverage(lang="de", exhibits=17, total_exhibits=19, seconds=1140, total_seconds=1260,
                      fallback={"en": ("planetarium", "mittelbau-dora")}, silent=())
    assert sentence(german, "de") == "Deutsch: 17 von 19 Stationen, 19 von 21 Minuten; die anderen auf Englisch"
    dutch = Coverage(lang="nl", exhibits=16, total_exhibits=19, seconds=1080, total_seconds=1260,
                     fallback={"en": ("a", "b", "c")}, silent=())
    assert sentence(dutch, "nl") == "Nederlands: 16 van de 19 stops, 18 van de 21 minuten; de andere in het Engels"


def test_every_wording_tells_several_fallbacks_and_the_silent_exhibits():
    c = Coverage(lang="de", exhibits=1, total_exhibits=4, seconds=30, total_seconds=75,
                 fallback={"en": ("c",), "fr": ("b",)}, silent=("d",))
    assert sentence(c, "de") == ("Deutsch: 1 von 4 Stationen, 30 von 75 Sekunden; "
                                 "2 weitere auf Englisch (1) und Französisch (1); 1 Station ohne Erläuterung")
    assert sentence(c, "fr") == ("Allemand\u00a0: 1 étape sur 4, 30 secondes sur 75\u00a0; 2 autres sont "
                                 "en anglais (1) et en français (1)\u00a0; 1 étape n'a pas de commentaire")
    assert sentence(c, "nl") == ("Duits: 1 van de 4 stops, 30 van de 75 seconden; "
                                 "2 andere in het Engels (1) en het Frans (1); 1 stop zonder toelichting")
    silent = Coverage(lang="fr", exhibits=1, total_exhibits=3, seconds=30, total_seconds=75,
                      fallback={}, silent=("d", "e"))
    assert sentence(silent, "fr").endswith("\u00a0; 2 étapes n'ont pas de commentaire")


def test_a_language_without_its_own_wording_is_told_in_english():
    c = Coverage(lang="it", exhibits=2, total_exhibits=3, seconds=120, total_seconds=200,
                 fallback={"en": ("x",)}, silent=())
    assert sentence(c, "it") == sentence(c) == (
        "Italian: 2 of 3 exhibits, 2 of 3 minutes; the others play in English")
    assert sentence(c, "pt-BR") == sentence(c)


def test_a_regional_variant_is_worded_like_its_language():
    c = Coverage(lang="fr-BE", exhibits=1, total_exhibits=1, seconds=60, total_seconds=60,
                 fallback={}, silent=())
    assert sentence(c, "fr-BE") == "Français (Belgique)\u00a0: la seule étape de la visite, 60 secondes"


def test_language_names_come_from_their_codes():
    assert [language_name(c) for c in ("en", "fr", "de", "nl", "pt-BR")] == [
        "English", "French", "German", "Dutch", "Portuguese (Brazil)"]
    assert language_name("xx-nonsense-123") == "xx-nonsense-123"
    assert [language_name("en", lang) for lang in ("fr", "de", "nl")] == ["anglais", "Englisch", "Engels"]


def test_every_unreadable_track_is_listed_and_counted_as_the_device_plays_it(coupole):
    site = load_zones(coupole)
    for rel in ("en/ex-03.wav", "en/ex-07.wav", "fr/ex-07.wav"):
        site.track_path(rel).write_bytes(b"not audio at all")
    en, fr = site_coverage(site)[1], site_coverage(site)[0]
    # the device passes over a broken track for the next language of the chain, or plays nothing
    assert (en.exhibits, en.fallback, en.silent) == (12, {"fr": ("ex-03", "ex-14", "ex-15")}, ("ex-07",))
    assert (en.seconds, en.total_seconds) == (2280.0 - 160 - 160, 2700.0 - 160 + 150 - 160)
    assert [(b.track, b.exhibit, b.lang) for b in en.broken] == [
        ("en/ex-03.wav", "ex-03", "en"), ("en/ex-07.wav", "ex-07", "en"), ("fr/ex-07.wav", "ex-07", "fr")]
    assert en.broken[0].reason.startswith("not a readable audio file (")
    assert str(site.track_path("en/ex-03.wav")) not in en.broken[0].reason  # the listing names it
    assert [b.track for b in fr.broken] == ["en/ex-07.wav", "fr/ex-07.wav"] and fr.silent == ("ex-07",)
    assert "1 has no narration" in sentence(en)


def test_the_coverage_command_prints_a_table_and_the_sentences(coupole, capsys):
    assert main(["coverage", "--zones", str(coupole)]) == 0
    out = capsys.readouterr().out
    table = out.splitlines()
    assert table[0].split() == ["language", "code", "exhibits", "narration", "others", "play", "in"]
    assert table[1].split() == ["French", "fr", "16/16", "42/42", "min", "-"]
    assert table[2].split() == ["English", "en", "14/16", "38/45", "min", "French", "(2)"]
    assert "English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French" in out


def test_an_exhibit_with_no_track_yet_is_listed_as_narrated_in_no_language(tmp_path, make_wav,
                                                                        capsys):
    # tracks: {} while its narrations are recorded: silent whatever the language
    zones = write_site(tmp_path, make_wav, {"a": {"fr": 30, "en": 20}, "b": {}})
    assert [c.silent for c in site_coverage(load_zones(zones))] == [("b",), ("b",)]
    assert main(["coverage", "--zones", str(zones)]) == 0
    out = capsys.readouterr().out
    assert "English: 1 of 2 exhibits, 20 of 20 seconds; 1 has no narration" in out
    assert "No narration in any language (tracks: {}): b" in out
    assert main(["coverage", "--zones", str(zones), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["no_narration"] == ["b"]


def test_the_coverage_command_gives_the_same_figures_as_json(coupole, capsys):
    assert main(["coverage", "--zones", str(coupole), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    en = next(x for x in data["languages"] if x["lang"] == "en")
    assert en["exhibits"] == 14 and en["total_exhibits"] == 16
    assert en["seconds"] == 2280.0 and en["total_seconds"] == 2700.0
    assert en["fallback"] == {"fr": ["ex-14", "ex-15"]}
    assert en["sentence"] == sentence(coverage(load_zones(coupole), "en"))


def test_the_coverage_command_reports_a_bad_zone_map_without_a_traceback(tmp_path, capsys):
    (tmp_path / "zones.yaml").write_text("site: x\n")
    assert main(["coverage", "--zones", str(tmp_path / "zones.yaml")]) == 2
    err = capsys.readouterr().err
    assert "zones.yaml" in err and "Traceback" not in err


def test_a_wav_whose_header_gives_no_sample_rate_is_listed_naming_it_not_a_traceback(coupole, capsys):
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 0, 0, 2, 16)  # 0 Hz
    (coupole.parent / "tracks/en/ex-03.wav").write_bytes(
        b"RIFF" + struct.pack("<I", 2036) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", 2000)
        + bytes(2000))
    assert main(["coverage", "--zones", str(coupole)]) == 1
    out, err = capsys.readouterr()
    assert "en/ex-03.wav (ex-03, en): its header gives a sample rate of 0 Hz" in out and "re-export it" in out
    assert "Traceback" not in err


def test_the_coverage_command_lists_every_unplayable_track_and_exits_1(coupole, capsys):
    for rel in ("en/ex-03.wav", "en/ex-07.wav"):
        (coupole.parent / "tracks" / rel).write_bytes(b"not audio at all")
    assert main(["coverage", "--zones", str(coupole)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[2].split() == ["English", "en", "12/16", "33/45", "min", "French", "(4)"]
    assert "2 tracks cannot be played; visitors hear the next language of the chain instead" in out
    assert "\n  en/ex-03.wav (ex-03, en): not a readable audio file (" in out
    assert "\n  en/ex-07.wav (ex-07, en): not a readable audio file (" in out
    assert main(["coverage", "--zones", str(coupole), "--json"]) == 1
    en = json.loads(capsys.readouterr().out)["languages"][1]
    assert [(b["track"], b["exhibit"], b["lang"]) for b in en["broken"]] == [
        ("en/ex-03.wav", "ex-03", "en"), ("en/ex-07.wav", "ex-07", "en")]


def test_a_track_cut_short_is_listed_as_unplayable_as_the_device_refuses_it(coupole, capsys):
    # half a WAV: its header announces the whole; counted at the header's length before
    track = coupole.parent / "tracks" / "en" / "ex-03.wav"
    track.write_bytes(track.read_bytes()[:8000])
    assert main(["coverage", "--zones", str(coupole)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[2].split() == ["English", "en", "13/16", "35/45", "min", "French", "(3)"]
    assert "\n  en/ex-03.wav (ex-03, en): the file is cut short (" in out


def test_an_unreadable_track_asks_for_its_permissions_to_be_fixed(coupole, unprivileged):
    track = coupole.parent / "tracks/en/ex-03.wav"
    track.chmod(0)
    command = unprivileged(sys.executable, "-m", "guide", "coverage", "--zones", str(coupole))
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        track.chmod(0o644)
    assert done.returncode == 1, done.stderr
    assert (f"en/ex-03.wav (ex-03, en): cannot be read (permission denied); make it readable "
            f"(chmod a+r {track})") in done.stdout
    assert "re-export" not in done.stdout and "Traceback" not in done.stderr
