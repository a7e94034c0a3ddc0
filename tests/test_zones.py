"""The zone-map loader: what a valid zones.yaml becomes, and how every kind of
mistake is reported (where, what, and how to fix it), all at once."""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from guide.cli import main
from guide.errors import Problem, ZoneMapError
from guide.settings import TriggerSettings
from guide.site import Eddystone, IBeacon
from guide.zones import FrozenDict, load_zones

REPO = Path(__file__).resolve().parents[1]
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

# A small valid site. Tests change one thing in it (`edit`) and mark the line
# they expect to be blamed with a "# <-" comment.
VALID = """\
site: Test gallery
languages: [fr, en, de, nl]
beacons:
  b-dome:
    ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1}
    tx_power: -59
    x: 12.0
    y: 30.5
  b-coin:
    eddystone: {namespace: edd1ebeac04e5defa017, instance: 0123456789ab}
    tx_power: -62
    x: 30
    y: 7.5
  b-spare:
    ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 3}
    tx_power: -59
    x: 1.0
    y: 1.0
exhibits:
  - id: dome
    title: {fr: La coupole, en: The dome}
    beacon: b-dome
    radius: 3.0
    tracks: {fr: fr/dome.wav, en: en/dome.wav}
  - id: coin-1
    title: {fr: Pièce}
    beacon: b-coin
    radius: 1.5
    tracks: {fr: fr/coin-1.wav}
"""
TRACKS = ("fr/dome.wav", "en/dome.wav", "fr/coin-1.wav", "de/dome.wav")


def edit(old: str, new: str, text: str = VALID) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def line_of(text: str, marker: str = "# <-") -> int:
    """1-based number of the line holding `marker`."""
    (n,) = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    return n


def column_of(text: str, needle: str) -> int:
    """1-based column of `needle` on the marked line."""
    return text.splitlines()[line_of(text) - 1].index(needle) + 1


def marked(p: Problem, text: str, needle: str) -> Problem:
    """`p`, checked to be reported on the line marked '# <-', at `needle`."""
    assert (p.line, p.column) == (line_of(text), column_of(text, needle)), p
    return p


@pytest.fixture
def site_dir(tmp_path: Path, make_wav) -> Path:
    for rel in TRACKS:
        make_wav(tmp_path / "tracks" / rel, 0.1)
    return tmp_path


@pytest.fixture
def load(site_dir: Path):
    def load(text: str):
        path = site_dir / "zones.yaml"
        path.write_text(text, encoding="utf-8")
        return load_zones(path)
    return load


@pytest.fixture
def problems(load):
    """The problems reported for a zone map that must fail to load."""
    def problems(text: str) -> list[Problem]:
        with pytest.raises(ZoneMapError) as info:
            load(text)
        return info.value.problems
    return problems


@pytest.fixture
def problem(problems):
    """The one problem reported for a zone map with one mistake."""
    def problem(text: str) -> Problem:
        found = problems(text)
        assert len(found) == 1, "\n".join(map(str, found))
        return found[0]
    return problem


# --------------------------------------------------------------------------
# A valid map

def test_a_valid_map_loads_with_its_values(load, site_dir):
    site = load(VALID)
    assert site.name == "Test gallery"
    assert site.path == site_dir / "zones.yaml"
    assert site.languages == ("fr", "en", "de", "nl")
    assert site.tracks_dir == (site_dir / "tracks").resolve()
    assert [e.id for e in site.exhibits] == ["dome", "coin-1"]
    dome = site.exhibit("dome")
    assert dome.title == {"fr": "La coupole", "en": "The dome"}
    assert dome.beacon == "b-dome" and dome.radius == 3.0
    assert dome.tracks == {"fr": "fr/dome.wav", "en": "en/dome.wav"}
    assert site.beacons["b-dome"].ident == IBeacon(
        uuid="f7826da6-4fa2-4e98-8024-bc5b71e0893e", major=100, minor=1)
    assert site.beacons["b-coin"].ident == Eddystone(
        namespace="edd1ebeac04e5defa017", instance="0123456789ab")
    assert site.beacons["b-coin"].tx_power == -62
    assert isinstance(site.beacons["b-coin"].x, float)
    assert site.trigger == TriggerSettings()
    assert site.walls == ()
    assert site.track_path("fr/dome.wav").is_file()


def test_without_fallback_each_language_falls_back_to_the_others_default_first(load):
    site = load(VALID)
    assert site.fallback == {"fr": ("en", "de", "nl"), "en": ("fr", "de", "nl"),
                             "de": ("fr", "en", "nl"), "nl": ("fr", "en", "de")}
    assert site.track_for("coin-1", "nl") == ("fr", "fr/coin-1.wav")


def test_an_explicit_fallback_replaces_the_default_chain_for_its_language(load):
    site = load(edit("languages: [fr, en, de, nl]\n",
                     "languages: [fr, en, de, nl]\nfallback: {nl: [en, fr], de: []}\n"))
    assert site.chain("nl") == ("nl", "en", "fr")
    assert site.chain("de") == ("de",)  # no fallback at all
    assert site.chain("en") == ("en", "fr", "de", "nl")  # untouched
    assert site.track_for("dome", "nl") == ("en", "en/dome.wav")
    assert site.track_for("coin-1", "de") is None


def test_exhibit_trigger_values_override_the_sites_for_that_exhibit_only(load):
    text = edit("exhibits:\n", "trigger: {dwell: 5, replay_heard: yes, margin: 2.5}\nexhibits:\n")
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    trigger: {dwell: 6.5, level: -70}\n",
                text)
    site = load(text)
    assert site.trigger == TriggerSettings(dwell=5.0, replay_heard=True, margin=2.5)
    assert site.exhibit("dome").trigger == site.trigger
    assert site.exhibit("coin-1").trigger == TriggerSettings(
        dwell=6.5, level=-70.0, replay_heard=True, margin=2.5)
    assert isinstance(site.trigger.dwell, float)


def test_level_auto_as_guide_settings_shows_it_is_the_default_level(load):
    text = edit("exhibits:\n", "trigger: {level: -75}\nexhibits:\n")
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    trigger: {level: auto}\n", text)
    site = load(text)
    assert site.trigger.level == -75.0 and site.exhibit("coin-1").trigger.level is None


def test_an_exhibit_stands_at_its_beacon_unless_given_x_and_y(load):
    site = load(edit("    radius: 1.5\n", "    radius: 1.5\n    x: 31\n    y: 8.5\n"))
    assert (site.exhibit("dome").x, site.exhibit("dome").y) == (12.0, 30.5)
    assert (site.exhibit("coin-1").x, site.exhibit("coin-1").y) == (31.0, 8.5)


def test_walls_are_read_as_segments_in_metres(load):
    site = load(edit("exhibits:\n", "walls:\n  - [[0, 0], [40, 0]]\n  - [[0, 0], [0, 20.5]]\n"
                     "exhibits:\n"))
    assert site.walls == (((0.0, 0.0), (40.0, 0.0)), ((0.0, 0.0), (0.0, 20.5)))


def test_tracks_dir_is_relative_to_the_zone_map(load, site_dir, make_wav):
    for rel in ("fr/dome.wav", "en/dome.wav", "fr/coin-1.wav"):
        make_wav(site_dir / "audio" / rel, 0.1)
    site = load(edit("languages:", "tracks_dir: audio\nlanguages:"))
    assert site.tracks_dir == (site_dir / "audio").resolve()


def test_uuids_and_eddystone_ids_are_stored_in_lower_case(load):
    text = edit("f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1",
                "F7826DA6-4FA2-4E98-8024-BC5B71E0893E, major: 100, minor: 1")
    site = load(edit("edd1ebeac04e5defa017, instance: 0123456789ab",
                     "EDD1EBEAC04E5DEFA017, instance: 0123456789AB", text))
    assert site.beacons["b-dome"].ident.uuid == "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
    assert site.beacons["b-coin"].ident == Eddystone(
        namespace="edd1ebeac04e5defa017", instance="0123456789ab")


def test_text_is_taken_as_written_so_norwegian_is_not_false(load, site_dir, make_wav):
    make_wav(site_dir / "tracks/no/dome.wav", 0.1)
    text = edit("languages: [fr, en, de, nl]", "languages: [fr, no]")
    text = edit("tracks: {fr: fr/dome.wav, en: en/dome.wav}",
                "tracks: {fr: fr/dome.wav, no: no/dome.wav}", text)
    text = edit("title: {fr: La coupole, en: The dome}", "title: {fr: 1944}", text)
    # an all-digit Eddystone id would be an integer to YAML
    site = load(edit("edd1ebeac04e5defa017", "12345678901234567890", text))
    assert site.languages == ("fr", "no")
    assert site.exhibit("dome").title == {"fr": "1944"}
    assert site.beacons["b-coin"].ident.namespace == "12345678901234567890"


def test_anchors_merge_keys_and_x_keys_let_beacons_share_settings(load):
    text = edit("beacons:\n", "x-ours: &ours {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, "
                "major: 100}\nbeacons:\n")
    text = edit("ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1}",
                "ibeacon: {<<: *ours, minor: 1}", text)
    site = load(text)
    assert site.beacons["b-dome"].ident == IBeacon(
        uuid="f7826da6-4fa2-4e98-8024-bc5b71e0893e", major=100, minor=1)


def test_a_mapping_merged_into_itself_is_refused_not_looped_on(problems):
    text = edit("  b-spare:\n", "  b-spare: &self\n    <<: *self  # <-\n")
    (p,) = problems(text)
    assert "merges a mapping into itself" in p.message
    assert (p.line, p.column) == (line_of(text) - 1, len("  b-spare: ") + 1)  # its anchor


def test_anchors_merging_the_one_before_twice_are_each_read_once_not_2_to_the_n_times(
        load, monkeypatch):
    # 30 such lines took 2**30 readings of a mapping: a zone map that never loaded.
    # Counted, not timed: each merged mapping is read once however often it is merged.
    from guide import zones
    reads = []
    entries = zones._Reader._entries
    monkeypatch.setattr(zones._Reader, "_entries",
                        lambda self, *args: reads.append(1) or entries(self, *args))
    levels = ["x-m0: &m0 {tx_power: -59}"] + [
        f"x-m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 16)]
    text = edit("beacons:\n", "\n".join(levels) + "\nbeacons:\n")
    text = edit("    tx_power: -59\n    x: 1.0\n", "    <<: *m15\n    x: 1.0\n", text)
    assert load(text).beacons["b-spare"].tx_power == -59
    assert len(reads) < 100


@pytest.mark.parametrize("old,new,tag,said", [
    ("beacons:\n", "beacons: !!set  # <-\n", "!!set", "beacons has the YAML tag !!set"),
    ("languages: [fr, en, de, nl]\n", "languages: !!python/tuple [fr, en, de, nl]  # <-\n", "!!python",
     "languages has the YAML tag !!python/tuple"),
    ("  - id: coin-1\n", "  - !!python/object/new:os.system  # <-\n    id: coin-1\n", "!!python",
     "exhibit 'coin-1' has the YAML tag !!python/object/new:os.system"),
    ("title: {fr: Pièce}", "title: !!set {fr: Pièce}  # <-", "!!set",
     "exhibit 'coin-1' title has the YAML tag !!set"),
    ("site: Test gallery", "site: !!binary VGVzdA==  # <-", "!!binary",
     "site has the YAML tag !!binary"),
])
def test_a_mapping_or_list_tagged_with_a_type_is_refused_as_a_tagged_value_is(problem, old,
                                                                               new, tag, said):
    # a !!set, !!omap or !!python/object mapping was read as a plain one, its tag ignored
    text = edit(old, new)
    p = marked(problem(text), text, tag)
    assert p.message == said + ", which the guide does not read: remove the tag"


def test_the_sites_mappings_are_read_only_but_still_pickle_and_serialise(load):
    site = load(VALID)
    with pytest.raises(TypeError):
        site.beacons["new"] = site.beacons["b-dome"]  # type: ignore[index]
    with pytest.raises(TypeError):
        site.exhibit("dome").tracks["de"] = "de/dome.wav"  # type: ignore[index]
    with pytest.raises(TypeError):
        site.fallback.update(fr=())  # type: ignore[attr-defined]
    assert isinstance(site.fallback, FrozenDict)
    assert pickle.loads(pickle.dumps(site)) == site
    assert copy.deepcopy(site) == site
    assert json.loads(json.dumps(site.exhibit("dome").title)) == {"fr": "La coupole",
                                                                   "en": "The dome"}


@pytest.mark.parametrize("sample", ["gallery-sample", "danis-real-sample"])
def test_the_shared_samples_load(shared_dir, sample):
    site = load_zones(shared_dir / "data" / sample / "zones.yaml")
    assert len(site.exhibits) == 12
    assert site.languages == ("en", "fr")
    for exhibit in site.exhibits:
        for lang in site.languages:
            assert site.track_path(site.track_for(exhibit.id, lang)[1]).is_file()


# --------------------------------------------------------------------------
# The file itself

def test_a_missing_file_is_one_problem_not_an_oserror(tmp_path):
    with pytest.raises(ZoneMapError) as info:
        load_zones(tmp_path / "nope.yaml")
    (p,) = info.value.problems
    assert p.file == str(tmp_path / "nope.yaml") and "no such file" in p.message


def test_a_directory_is_refused_with_a_hint(tmp_path):
    with pytest.raises(ZoneMapError) as info:
        load_zones(tmp_path)
    (p,) = info.value.problems
    assert "is a directory" in p.message and "zones.yaml" in p.message


def test_an_empty_path_is_said_to_be_empty_not_the_folder_it_runs_in(tmp_path, monkeypatch):
    """Path("") is "."; `--zones ''` was reported as '.: is a directory'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZoneMapError) as info:
        load_zones("")
    (p,) = info.value.problems
    assert "path is empty" in p.message and "is a directory" not in p.message


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])  # \r alone: an old Mac editor's, a line to YAML
def test_a_file_that_is_not_utf8_names_its_line(site_dir, newline):
    path = site_dir / "zones.yaml"
    path.write_bytes(VALID.replace("Pièce", "Pi\xe8ce").replace("\n", newline).encode("latin-1"))
    with pytest.raises(ZoneMapError) as info:
        load_zones(path)
    (p,) = info.value.problems
    assert p.line == line_of(VALID, "Pièce") and "save it as UTF-8" in p.message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])  # with a BOM (Notepad), without
@pytest.mark.parametrize("accents", [True, False])  # an ASCII-only map still decodes as UTF-8 (with NULs)
def test_a_zone_map_saved_as_utf16_says_so_not_a_byte_or_a_nul(site_dir, encoding, accents):
    path = site_dir / "zones.yaml"
    path.write_bytes((VALID if accents else VALID.replace("Pièce", "Piece")).encode(encoding))
    with pytest.raises(ZoneMapError) as info:
        load_zones(path)
    (p,) = info.value.problems
    assert p.line == 1 and "UTF-16" in p.message and "save it as UTF-8" in p.message, p


def test_a_nul_in_a_utf8_map_is_not_taken_for_utf16(problem):
    p = problem(edit("site: Test gallery", "site: Test\x00gallery"))
    assert "U+0000" in p.message and "UTF-16" not in p.message, p


def test_nesting_too_deep_for_the_parser_is_a_problem_at_its_line(problem):
    deep = "[" * 500 + "]" * 500
    text = VALID + f"x-deep: {deep}  # <-\n"
    p = problem(text)
    assert p.line == line_of(text) and "nested more than 100 levels deep" in p.message


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83d\\ude00"])
def test_text_holding_a_lone_surrogate_escape_is_not_valid_unicode(problem, escape):
    text = edit("site: Test gallery\n", f'site: "Salle {escape}"  # <-\n')
    p = marked(problem(text), text, '"Salle')
    assert f"the escape {escape[:6]}" in p.message and "not valid Unicode text" in p.message
    str(p).encode("utf-8")  # printable: the message itself holds no surrogate


def test_a_whole_file_echoed_as_a_value_is_cut_short(site_dir):
    path = site_dir / "scans.csv"  # a scan log given as the zone map: one long plain scalar
    path.write_text("visitor,t,beacon,rssi\n" + "v001,0.032,b-tapestry,-82\n" * 50_000)
    with pytest.raises(ZoneMapError) as info:
        load_zones(path)
    (p,) = info.value.problems
    assert "must be a mapping of 'key: value' lines, not the text 'visitor,t,beacon" in p.message
    assert re.search(r"\.\.\. \(1[0-9]{6} characters\)'", p.message) and len(p.message) < 300


@pytest.mark.parametrize("old,new,needle,said", [
    ("fr/coin-1.wav}", f"fr/{'x' * 5000}.wav}}  # <-", "fr/xxx",
     f"exhibit 'coin-1' track in 'fr' 'fr/{'x' * 53}... (5007 characters)' cannot be looked at"),
    ("site: Test gallery\n", f"site: Test gallery\ncolour{'r' * 1000}: red  # <-\n", "colour",
     f"unknown key 'colour{'r' * 50}... (1006 characters)' in the zone map"),
    ("beacon: b-coin", f"beacon: b-{'c' * 5000}  # <-", "b-ccc",
     f"uses beacon 'b-{'c' * 54}... (5002 characters)', which is not defined"),
])
def test_long_values_are_cut_short_wherever_a_message_quotes_them(problem, old, new, needle, said):
    text = edit(old, new)
    p = marked(problem(text), text, needle)
    assert said in p.message and len(p.message) < 400


def test_an_empty_file_says_what_it_needs(problem):
    p = problem("")
    assert p.line == 1 and "empty" in p.message and "languages" in p.message


def test_a_yaml_syntax_error_gives_line_and_column(problem):
    text = edit("    radius: 3.0\n", "    radius: [3.0\n")
    p = problem(text)
    assert "YAML syntax error" in p.message
    # found on the next line, where 'tracks:' cannot be inside a list...
    assert (p.line, p.column) == (24, len("    tracks:"))
    # ...and the message points back at the unclosed bracket
    assert "flow sequence at line 23" in p.message


def test_tabs_get_the_indent_with_spaces_hint(problem):
    text = edit("    radius: 3.0\n", "\tradius: 3.0  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 1) and "spaces, not tabs" in p.message


def test_two_documents_in_one_file_are_refused(problem):
    p = problem(VALID + "---\nsite: other\n")
    assert p.line == VALID.count("\n") + 1 and "remove the '---'" in p.message


def test_a_document_that_is_not_a_mapping_is_refused(problem):
    p = problem("- site: x\n- languages: [fr]\n")
    assert (p.line, p.column) == (1, 1)
    assert "must be a mapping" in p.message and "not a list" in p.message


# --------------------------------------------------------------------------
# Keys and types

def test_a_duplicate_key_is_refused_not_silently_overwritten(problem):
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    radius: 2.5  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 5)
    assert "duplicate key 'radius'" in p.message
    assert f"first at line {line_of(text) - 1}" in p.message


def test_a_duplicate_beacon_id_is_a_duplicate_key(problem):
    text = edit("  b-spare:\n", "  b-dome:  # <-\n")
    p = problem(text)
    assert p.line == line_of(text) and "duplicate key 'b-dome'" in p.message


@pytest.mark.parametrize("old,new,guess", [
    ("site: Test gallery", "site: Test gallery\nlangauges: [fr]  # <-", "languages"),
    ("    radius: 3.0\n", "    raduis: 3.0  # <-\n    radius: 3.0\n", "radius"),
    ("    tx_power: -62\n", "    tx_power: -62\n    txpower: -62  # <-\n", "tx_power"),
    ("major: 100, minor: 1}", "major: 100, minor: 1, minr: 2}  # <-", "minor"),
])
def test_an_unknown_key_suggests_the_key_meant(problem, old, new, guess):
    text = edit(old, new)
    p = problem(text)
    assert p.line == line_of(text)
    assert "unknown key" in p.message and f"did you mean '{guess}'?" in p.message


@pytest.mark.parametrize("old,new,needle,needs", [
    ("languages: [fr, en, de, nl]", "langauges: [fr, en, de, nl]  # <-", "langauges",
     "the zone map needs one"),
    ("    radius: 3.0\n", "    raduis: 3.0  # <-\n", "raduis", "every exhibit needs one"),
    ("    tx_power: -62\n", "    txpower: -62  # <-\n", "txpower", "every beacon needs one"),
    ("major: 100, minor: 1}", "major: 100, minr: 1}  # <-", "minr", "every ibeacon needs one"),
    ("instance: 0123456789ab}", "instnce: 0123456789ab}  # <-", "instnce",
     "every eddystone needs one"),
    # not required, but not to be reported absent either
    ("    ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1}",
     "    ibeacn: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1}  # <-",
     "ibeacn", None),
    ("    radius: 1.5\n", "    radius: 1.5\n    x: 3\n    yy: 4  # <-\n", "yy", None),
    ("    radius: 1.5\n", "    radius: 1.5\n    trigger: {dwel: 6}  # <-\n", "dwel", None),
])
def test_a_misspelt_key_is_its_keys_one_problem_not_also_a_missing_one(problem, old, new,
                                                                         needle, needs):
    text = edit(old, new)
    p = marked(problem(text), text, needle)
    assert f"'{needle}'" in p.message and "did you mean" in p.message
    assert "missing" not in p.message and "neither" not in p.message
    assert (needs in p.message) if needs else "needs one" not in p.message


def test_a_misspelt_tracks_dir_is_one_problem_not_also_a_missing_default(problem, site_dir):
    (site_dir / "tracks").rename(site_dir / "audio")
    text = edit("languages:", "track_dir: audio  # <-\nlanguages:")
    p = marked(problem(text), text, "track_dir")
    assert "unknown key 'track_dir'" in p.message and "did you mean 'tracks_dir'?" in p.message


def test_a_misspelt_key_still_lets_the_files_other_problems_show(problems):
    text = edit("    radius: 3.0\n", "    raduis: 3.0\n")
    text = edit("    tx_power: -62\n", "    tx_power: 62\n", text)
    text = edit("    radius: 1.5\n", "", text)
    found = problems(text)
    assert [p.line for p in found] == [11, 23, 25], "\n".join(map(str, found))
    assert "tx_power must be between -127 and 20" in found[0].message
    assert "unknown key 'raduis'" in found[1].message
    assert "exhibit 'coin-1' is missing 'radius'" in found[2].message


def test_an_unknown_key_with_no_close_match_lists_the_allowed_keys(problem):
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    colour: red  # <-\n")
    p = problem(text)
    assert p.line == line_of(text)
    assert "the keys allowed here are id, title, beacon, radius, tracks" in p.message


def test_a_missing_required_key_points_at_its_mapping_with_an_example(problem):
    text = edit("  - id: coin-1\n", "  - id: coin-1  # <-\n")
    text = edit("    radius: 1.5\n", "", text)
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 5)
    assert "exhibit 'coin-1' is missing 'radius'" in p.message and "radius: 3.0" in p.message


def test_a_missing_top_level_key_is_reported_at_the_top(problem):
    p = problem(edit("site: Test gallery\n", ""))
    assert (p.line, p.column) == (1, 1) and "missing 'site'" in p.message


@pytest.mark.parametrize("value,said", [
    ('"3.0"', "remove the quotes"),
    ("true", "not true/false"),
    ("three", "must be a number, not the text 'three'"),
    ("[3]", "must be a number, not a list"),
    (".nan", "finite"),
])
def test_a_number_must_be_a_number(problem, value, said):
    text = edit("    radius: 3.0\n", f"    radius: {value}  # <-\n")
    p = marked(problem(text), text, value)
    assert "radius" in p.message and said in p.message


@pytest.mark.parametrize("old,value,said", [
    ("    radius: 3.0\n", "!!str 2", "radius must be a number, not the text '2': remove the tag !!str"),
    ("    radius: 3.0\n", "!!str 1e3", "not the text '1e3': remove the tag !!str"),
    ("    radius: 3.0\n", '!!str "2"', "not the text '2': remove the tag !!str and the quotes"),
    ("    tx_power: -62\n", "!!str -62", "tx_power must be a whole number, not the text '-62'"),
])
def test_a_number_tagged_as_text_is_refused_as_quoted_text_is(problem, old, value, said):
    # `!!str` is the author saying "this is text", as quotes are: not read as the number
    key = old.split(":")[0]
    text = edit(old, f"{key}: {value}  # <-\n")
    p = marked(problem(text), text, value)
    assert said in p.message


def test_yaml_1_1_floats_without_a_dot_or_an_exponent_sign_are_numbers(load):
    # PyYAML reads 1e3 and 25e-1 as text (YAML 1.1 wants 1.0e+3); unquoted, they are numbers
    text = edit("    x: 12.0\n    y: 30.5\n", "    x: 1e3\n    y: -3E1\n")
    text = edit("    radius: 3.0\n", "    radius: 25e-1\n    trigger: {dwell: 4e0}\n", text)
    text = edit("exhibits:\n", "walls: [[[0, 0], [1e2, 1e-9]]]\nexhibits:\n", text)
    site = load(text)
    beacon, dome = site.beacons["b-dome"], site.exhibit("dome")
    assert (beacon.x, beacon.y, dome.radius, dome.trigger.dwell) == (1000.0, -30.0, 2.5, 4.0)
    assert site.walls == (((0.0, 0.0), (100.0, 1e-9)),)
    assert all(type(v) is float for v in (beacon.x, beacon.y, dome.radius, dome.trigger.dwell))


@pytest.mark.parametrize("old,new,value,said", [
    ("    radius: 3.0\n", '    radius: "1e3"  # <-\n', '"1e3"', "not the text '1e3': remove the quotes"),
    ("    radius: 3.0\n", "    radius: '25e-1'  # <-\n", "'25e-1'", "remove the quotes"),
    ("major: 100, minor: 1}", "major: 1e2, minor: 1}  # <-", "1e2",
     "major must be a whole number, not 1e2 (write 100)"),
    ("    tx_power: -62\n", "    tx_power: -5.95e1  # <-\n", "-5.95e1", "must be a whole number, not -5.95e1:"),
    ("    radius: 3.0\n", "    radius: nan  # <-\n", "nan", "must be a finite number, not nan"),
    ("    radius: 3.0\n", "    radius: 1e400  # <-\n", "1e400", "must be at most 100 m, not 1e400"),
])
def test_yaml_1_1_floats_are_refused_quoted_not_whole_or_not_finite(problem, old, new, value, said):
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message


@pytest.mark.parametrize("old,new,value,said", [
    ("major: 100, minor: 1}", "major: 1:40, minor: 1}  # <-", "1:40",
     "ibeacon major 1:40 is read as a base-60 number (100) by YAML 1.1: write 100"),
    ("exhibits:\n", "trigger: {dwell: 1:05.5}  # <-\nexhibits:\n", "1:05.5",
     "trigger.dwell 1:05.5 is read as a base-60 number (65.5) by YAML 1.1: write 65.5"),
    ("    radius: 3.0\n", "    radius: -1:30  # <-\n", "-1:30", "(-90)"),
    # a minor of 010 loaded as 8: the beacon labelled 10 was never heard
    ("major: 100, minor: 1}", "major: 100, minor: 010}  # <-", "010",
     "ibeacon minor 010: with its leading zero, YAML 1.1 reads it as the octal number 8; write 10"),
    ("major: 100, minor: 1}", "major: 100, minor: 09}  # <-", "09",
     "minor 09: with its leading zero, YAML 1.1 does not read it as a number; write 9"),
    ("    tx_power: -62\n", "    tx_power: -062  # <-\n", "-062", "octal number -50; write -62"),
])
def test_yaml_1_1_base_60_and_octal_numbers_are_refused_not_silently_converted(problem, load, old, new,
                                                                               value, said):
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message
    # in a text, 1:40 and 010 are the text written; 0.5 stays a number
    site = load(edit("title: {fr: Pièce}", "title: {fr: 1:40, en: '010'}").replace(
        "    radius: 3.0\n", "    radius: 0.5\n", 1))
    assert site.exhibit("coin-1").title == {"fr": "1:40", "en": "010"}
    assert 0.5 in {e.radius for e in site.exhibits}


@pytest.mark.parametrize("old,new,value,said", [
    ("major: 100, minor: 1}", "major: 100, minor: 1_0}  # <-", "1_0",
     "ibeacon minor 1_0: YAML 1.1 reads the '_' as a digit separator, so this is 10; write 10 if"),
    ("    x: 30\n", "    x: 1_2.5  # <-\n", "1_2.5", "x 1_2.5: YAML 1.1 reads the '_' as a digit "
                                                   "separator, so this is 12.5; write 12.5 if"),
    ("    radius: 3.0\n", "    radius: !!float 2_5  # <-\n", "!!float", "so this is 25.0; write 25.0"),
    ("exhibits:\n", "trigger: {dwell: 1_0}  # <-\nexhibits:\n", "1_0", "trigger.dwell 1_0: YAML 1.1"),
    # not numbers to YAML, but to Python's float(): 10000, 10, 10
    ("    x: 30\n", "    x: 1_0e3  # <-\n", "1_0e3",
     "x must be a number, not the text '1_0e3' (write it without the '_')"),
    ("    x: 30\n", "    x: \u0661\u0660  # <-\n", "\u0661",
     "x must be a number, not the text '\u0661\u0660' (write it with the digits 0-9; it holds "
     "'\u0661', U+0661)"),
    ("    tx_power: -62\n", "    tx_power: -\uff16\uff12  # <-\n", "-\uff16", "(write it with the digits 0-9"),
])
def test_numbers_python_or_yaml_1_1_would_read_otherwise_are_refused(problem, old, new, value, said):
    """Only plain ASCII decimal numbers are numbers: YAML 1.1 reads 1_0 as
    10, and Python's float() the digits of every script."""
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message


@pytest.mark.parametrize("old,new,value,said", [
    ("major: 100, minor: 1}", "major: 100, minor: !!int 1e9}  # <-", "!!int",
     "minor must be between 0 and 65535, not 1e9"),
    ("    x: 30\n", "    x: !!float ten  # <-\n", "!!float",
     "x must be between -100000 and 100000 m, not ten"),
    # PyYAML's constructors index the sign of an empty text: an IndexError escaped
    ("    radius: 3.0\n", '    radius: !!int ""  # <-\n', "!!int",
     "radius must be a number, not the empty text ''"),
    ("    x: 30\n", "    x: !!float _  # <-\n", "!!float",
     "x must be a number, not the empty text '_'"),
    ("    tx_power: -62\n", "    tx_power: !!int  # <-\n", "!!int",
     "tx_power must be a whole number, not the empty text ''"),
    ("major: 100, minor: 1}", f"major: 100, minor: {'9' * 5000}}}  # <-", "9999",
     f"minor must be between 0 and 65535, not {'9' * 20}... (5000 characters)"),
    ("    x: 30\n", f"    x: {'9' * 400}  # <-\n", "9999",
     "x must be between -100000 and 100000 m, not a 400-digit number"),
    ("exhibits:\n", "trigger: {replay_heard: !!bool maybe}  # <-\nexhibits:\n", "!!bool",
     "trigger.replay_heard must be true or false, not 'maybe'"),
    ("major: 100, minor: 1}", f"major: 100, minor: 0{'7' * 5000}}}  # <-", "0777",
     f"YAML 1.1 reads it as an octal number; write {'7' * 20}... (5000 characters) if"),
])
def test_numbers_python_cannot_read_or_convert_are_problems_not_tracebacks(problem, old, new,
                                                                          value, said):
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message


def test_languages_must_be_a_list(problem):
    text = edit("languages: [fr, en, de, nl]", "languages: fr  # <-")
    # every title and track language is then unknown, but only the cause is reported
    p = problem(text)
    assert p.line == line_of(text) and "must be a list" in p.message


def test_a_language_listed_twice_is_refused(problem):
    text = edit("languages: [fr, en, de, nl]", "languages: [fr, en, fr]  # <-")
    p = problem(text)
    assert (p.line, p.column) == (2, len("languages: [fr, en, ") + 1)
    assert "'fr' is listed twice" in p.message


@pytest.mark.parametrize("bad,fixed", [("Coin_1", "coin-1"), ("Dome", "dome"),
                                       ("pièce", "piece"), ("la Pièce d'Or", "la-piece-d-or")])
def test_ids_must_be_lower_case_letters_digits_and_dashes(problem, bad, fixed):
    text = edit("  - id: coin-1\n", f"  - id: {bad}  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 9)
    assert "not a valid id" in p.message and f"e.g. '{fixed}'" in p.message


def test_an_exhibit_id_may_be_any_run_of_lower_case_letters_digits_and_dashes(load):
    site = load(edit("  - id: coin-1\n", "  - id: -coin-1-\n"))  # as FORMATS.md words it
    assert site.exhibit("-coin-1-").beacon == "b-coin"


@pytest.mark.parametrize("given", ["AA:BB:CC:DD:EE:01", "B_Dome", "sensor 20", "101"])
def test_a_beacon_id_is_any_short_id_as_formats_md_allows(load, given):
    # FORMATS.md: "keyed by a short id"; only exhibit ids are held to a- z, 0-9, '-'
    text = edit("  b-dome:\n", f'  "{given}":\n').replace("beacon: b-dome", f'beacon: "{given}"')
    site = load(text)
    assert site.exhibit("dome").beacon == given and given in site.beacons


@pytest.mark.parametrize("given, why", [(" b-spare", "begins or ends with a space"),
                                        ("b\\tspare", "holds a tab")])
def test_a_beacon_id_must_survive_a_scan_log_cell(problem, given, why):
    text = edit("  b-spare:\n", f'  "{given}":  # <-\n')
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 3) and why in p.message, p.message


# --------------------------------------------------------------------------
# Exhibits and beacons

def test_two_exhibits_with_one_id_are_refused(problem):
    text = edit("  - id: coin-1\n", "  - id: dome  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 9)
    assert "'dome' is already used by the exhibit at line 20" in p.message


def test_an_exhibit_naming_an_undefined_beacon_gets_a_suggestion(problem):
    text = edit("    beacon: b-coin\n", "    beacon: b-con  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 13)
    assert "'b-con', which is not defined" in p.message and "did you mean 'b-coin'?" in p.message


def test_a_beacon_used_by_two_exhibits_is_refused(problem):
    text = edit("    beacon: b-coin\n", "    beacon: b-dome  # <-\n")
    p = problem(text)
    assert p.line == line_of(text)
    assert "already the beacon of exhibit 'dome' (line 20)" in p.message


def test_two_ibeacons_with_one_identity_are_refused(problem):
    text = edit("major: 100, minor: 3}", "major: 100, minor: 1}")
    p = problem(text)
    assert p.line == 15  # b-spare's identity
    assert "same identity as beacon 'b-dome' (line 4)" in p.message
    assert "major/minor" in p.message


def test_two_eddystones_with_one_identity_are_refused(problem):
    text = edit("    ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 3}",
                "    eddystone: {namespace: EDD1EBEAC04E5DEFA017, instance: 0123456789ab}")
    p = problem(text)
    assert p.line == 15 and "same identity as beacon 'b-coin'" in p.message


@pytest.mark.parametrize("uuid,hint", [
    ("f7826da6-4fa2-4e98-8024-bc5b71e0893", "8-4-4-4-12 hex digits"),
    ("f7826da6-4fa2-4e98-8024-bc5b71e0893g", "8-4-4-4-12 hex digits"),
    ("F7826DA64FA24E988024BC5B71E0893E", "write it as f7826da6-4fa2-4e98-8024-bc5b71e0893e"),
])
def test_a_malformed_ibeacon_uuid_is_refused(problem, uuid, hint):
    text = edit("{uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, minor: 1}",
                f"{{uuid: {uuid}, major: 100, minor: 1}}  # <-")
    p = marked(problem(text), text, uuid)
    assert "is not a UUID" in p.message and hint in p.message


@pytest.mark.parametrize("ident,field,value", [
    ("major: 65536, minor: 1", "major", "65536"),
    ("major: 100, minor: -1", "minor", "-1"),
])
def test_major_and_minor_must_fit_in_16_bits(problem, ident, field, value):
    text = edit("major: 100, minor: 1}", f"{ident}}}  # <-")
    p = marked(problem(text), text, value)
    assert f"{field} must be between 0 and 65535" in p.message


@pytest.mark.parametrize("ident,value,said", [
    ("namespace: edd1ebeac04e5defa0, instance: 0123456789ab", "edd1ebeac04e5defa0",
     "exactly 20 hex digits"),
    ("namespace: 0xedd1ebeac04e5defa0, instance: 0123456789ab", "0xedd1ebeac04e5defa0",
     "drop the 0x prefix"),
    ("namespace: edd1ebeac04e5defa017, instance: 0123456789xy", "0123456789xy",
     "exactly 12 hex digits"),
])
def test_malformed_eddystone_ids_are_refused(problem, ident, value, said):
    text = edit("namespace: edd1ebeac04e5defa017, instance: 0123456789ab}", f"{ident}}}  # <-")
    p = marked(problem(text), text, value)
    assert said in p.message


def test_a_beacon_needs_exactly_one_of_ibeacon_and_eddystone(problems):
    text = edit("  b-spare:\n", "  b-spare:\n    eddystone: {namespace: edd1ebeac04e5defa017,"
                " instance: 0123456789ff}\n")
    text = edit("    eddystone: {namespace: edd1ebeac04e5defa017, instance: 0123456789ab}\n",
                "", text)
    found = problems(text)
    assert [(p.line, p.column) for p in found] == [(10, 5), (14, 5)]
    assert "b-coin' has neither ibeacon: nor eddystone" in found[0].message
    assert "b-spare' has both ibeacon: and eddystone" in found[1].message
    assert "give exactly one" in found[1].message


@pytest.mark.parametrize("value,said", [
    ("21", "between -127 and 20 dBm"),
    ("-128", "between -127 and 20 dBm"),
    ("-59.5", "must be a whole number"),
])
def test_tx_power_is_whole_dbm_within_the_ble_range(problem, value, said):
    text = edit("    tx_power: -62\n", f"    tx_power: {value}  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 15) and said in p.message


@pytest.mark.parametrize("radius", ["0", "-1.5"])
def test_a_radius_must_be_positive(problem, radius):
    text = edit("    radius: 1.5\n", f"    radius: {radius}  # <-\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 13)
    assert "radius must be greater than 0" in p.message and "metres" in p.message


@pytest.mark.parametrize("old,new,value,said", [
    ("    x: 12.0\n", "    x: 1.0e+308  # <-\n", "1.0e+308",
     "beacon 'b-dome' x must be between -100000 and 100000 m, not 1.0e+308"),
    ("    y: 7.5\n", "    y: -100000.5  # <-\n", "-100000.5",
     "beacon 'b-coin' y must be between -100000 and 100000 m, not -100000.5:"),
    ("    radius: 1.5\n", "    radius: 1.5\n    x: 4.0e+5  # <-\n    y: 0\n", "4.0e+5",
     "exhibit 'coin-1' x must be between -100000 and 100000 m, not 4.0e+5"),
    ("exhibits:\n", "walls: [[[-1.0e+308, 0], [0, 1]]]  # <-\nexhibits:\n", "-1.0e+308",
     "a coordinate of wall 1 must be between -100000 and 100000 m, not -1.0e+308"),
    ("    radius: 1.5\n", "    radius: 1.0e+308  # <-\n", "1.0e+308",
     "exhibit 'coin-1' radius must be at most 100 m, not 1.0e+308"),
    ("    radius: 1.5\n", "    radius: 1e-400  # <-\n", "1e-400",
     "exhibit 'coin-1' radius must be greater than 0, not 1e-400"),
    ("    radius: 1.5\n", "    radius: 100.5  # <-\n", "100.5", "radius must be at most 100 m"),
])
def test_coordinates_and_radii_beyond_any_real_site_are_refused(problem, old, new, value, said):
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message
    assert "100 km" in p.message if "radius" not in said else "100 m" in p.message


def test_coordinates_and_radii_at_the_bounds_load(load):
    text = edit("    x: 12.0\n    y: 30.5\n", "    x: -100000\n    y: 100000.0\n")
    text = edit("    radius: 1.5\n", "    radius: 100\n    x: 1e5\n    y: -1e5\n", text)
    text = edit("exhibits:\n", "walls: [[[-100000, -100000], [100000, 100000]]]\nexhibits:\n", text)
    site = load(text)
    coin = site.exhibit("coin-1")
    assert (site.beacons["b-dome"].x, site.beacons["b-dome"].y) == (-100000, 100000)
    assert (coin.radius, coin.x, coin.y) == (100, 100000, -100000)


def test_an_exhibit_with_only_x_or_only_y_is_refused(problem):
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    x: 4.0  # <-\n")
    p = problem(text)
    assert p.line == line_of(text) and "gives x but not y" in p.message


# --------------------------------------------------------------------------
# Languages and tracks

def test_a_title_or_track_in_an_undeclared_language_is_refused(problems):
    text = edit("title: {fr: Pièce}", "title: {fr: Pièce, es: Moneda}")
    text = edit("tracks: {fr: fr/coin-1.wav}", "tracks: {fr: fr/coin-1.wav, nll: fr/coin-1.wav}",
                text)
    title, track = problems(text)
    assert (title.line, title.column) == (26, 24)
    assert "'es' is not one of the site's languages (fr, en, de, nl)" in title.message
    assert "add 'es' to languages:" in title.message
    assert (track.line, track.column) == (29, 33) and "did you mean 'nl'?" in track.message


@pytest.mark.parametrize("value,example", [
    ("fr", "e.g. en: [fr]"), ("fr, de", "e.g. en: [fr, de]"), ("{fr: 1}", "e.g. en: [fr, de]")])
def test_a_fallback_that_is_not_a_list_gets_an_example_not_naming_its_own_language(
        problem, value, example):
    text = edit("languages: [fr, en, de, nl]\n", f"languages: [fr, en, de, nl]\nfallback:\n  en: {value}  # <-\n")
    p = problem(text)
    assert p.line == line_of(text) and "must be a list" in p.message and p.message.endswith(example), p


def test_fallback_naming_undeclared_languages_or_itself_is_refused(problems):
    text = edit("languages: [fr, en, de, nl]\n", "languages: [fr, en, de, nl]\n"
                "fallback: {es: [fr], nl: [en, nl, it, en]}\n")
    found = problems(text)
    assert [(p.line, p.column) for p in found] == [(3, 12), (3, 31), (3, 35), (3, 39)]
    assert "'es' is not one of the site's languages" in found[0].message
    assert "lists 'nl' itself" in found[1].message
    assert "'it' is not one of" in found[2].message
    assert "lists 'en' twice" in found[3].message


def test_a_track_file_that_does_not_exist_is_named_with_where_it_was_looked_for(
        problem, site_dir):
    text = edit("fr/coin-1.wav}", "fr/coin-2.wav}  # <-")
    p = marked(problem(text), text, "fr/coin-2.wav")
    assert "'fr/coin-2.wav' not found" in p.message
    assert str(site_dir / "tracks" / "fr" / "coin-2.wav") in p.message


def test_a_track_path_that_is_a_directory_is_refused(problem):
    text = edit("fr/coin-1.wav}", "fr}  # <-")
    p = problem(text)
    assert p.line == line_of(text) and "is a directory, not an audio file" in p.message


@pytest.mark.parametrize("path,said", [
    ("/etc/passwd", "is an absolute path"),
    ("../zones.yaml", "leads outside tracks_dir"),
    ("fr/../../zones.yaml", "leads outside tracks_dir"),
])
def test_a_track_path_may_not_escape_tracks_dir(problem, path, said):
    text = edit("fr/coin-1.wav}", f"{path}}}  # <-")
    p = marked(problem(text), text, path)
    assert said in p.message


@pytest.mark.parametrize("path,said", [
    ("fr/Coin-1.wav", "did you mean 'fr/coin-1.wav'? (the upper and lower case must be the file's"),
    ("FR/coin-1.WAV", "did you mean 'fr/coin-1.wav'? (the upper and lower case must be the file's"),
    ("fr\\coin-1.wav", "did you mean 'fr/coin-1.wav'? (write / between folders, not \\)"),
    ("Fr\\Coin-1.wav", "did you mean 'fr/coin-1.wav'? (write / between folders, not \\)"),
    ("fr\\coin-9.wav", "write / between folders, not \\, and check the path"),
    ("fr/coin-9.wav", "add the file or fix the path"),
])
def test_a_track_path_with_the_wrong_case_or_backslashes_names_the_file_meant(problem, path, said):
    text = edit("fr/coin-1.wav}", f"{path}}}  # <-")
    p = marked(problem(text), text, path)
    assert f"track file '{path}' not found" in p.message and said in p.message, p


@pytest.mark.parametrize("path", ["C:\\Users\\musee\\fr\\coin-1.wav", "C:/musee/fr/coin-1.wav",
                                  "\\\\server\\audio\\coin-1.wav"])
def test_a_windows_track_path_is_an_absolute_path(problem, path):
    text = edit("fr/coin-1.wav}", f"'{path}'}}  # <-")
    p = marked(problem(text), text, "'")
    assert "is an absolute path: write it relative to tracks_dir" in p.message, p


def test_a_windows_tracks_dir_is_said_to_be_one(problem):
    text = edit("languages:", "tracks_dir: C:\\Users\\musee\\audio  # <-\nlanguages:")
    p = marked(problem(text), text, "C:")
    assert "does not exist: that is a Windows path" in p.message and "with / between" in p.message, p


@pytest.mark.parametrize("old,new,value,said", [
    ("fr/coin-1.wav}", '"fr/coin-1.wav\\0x"}  # <-', '"fr/coin-1.wav',
     "exhibit 'coin-1' track in 'fr' 'fr/coin-1.wav\\x00x' holds the control character U+0000"),
    ("fr: fr/dome.wav,", 'fr: "fr/\\x00dome.wav",  # <-\n   ', '"fr/',
     "exhibit 'dome' track in 'fr' 'fr/\\x00dome.wav' holds the control character U+0000"),
    ("languages: [fr, en, de, nl]\n", "languages: [fr, en, de, nl]\ntracks_dir: \"tr\\0acks\"  # <-\n",
     '"tr', "tracks_dir 'tr\\x00acks' holds the control character U+0000"),
])
def test_a_nul_character_in_a_path_is_a_problem_not_a_valueerror(problem, old, new, value, said):
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message and "delete it" in p.message


CONTROL_END = "which would print raw (garbling the terminal) wherever the text is shown: delete it"


@pytest.mark.parametrize("old,new,value,said", [
    ("site: Test gallery", 'site: "\\e[31mTest gallery"  # <-', '"',
     f"site '\\x1b[31mTest gallery' holds the control character U+001B, {CONTROL_END}"),
    ("title: {fr: Pièce}", 'title: {fr: "Pi\\x07èce"}  # <-', '"Pi',
     f"exhibit 'coin-1' title in 'fr' 'Pi\\x07èce' holds the control character U+0007, {CONTROL_END}"),
    ("title: {fr: Pièce}", 'title: {fr: "Pi\\0èce"}  # <-', '"Pi', "'Pi\\x00èce' holds the control"),
    ("title: {fr: Pièce}", 'title: {fr: "Pi\\tèce"}  # <-', '"Pi',
     "'Pi\\tèce' holds a tab (U+0009), and every text of a zone map is shown on one line: delete it "
     "(or put a space)"),
    ("languages: [fr, en, de, nl]", 'languages: [fr, en, de, "n\\nl"]  # <-', '"n',
     "each of languages 'n\\nl' holds a line break (U+000A)"),
    ("  - id: coin-1", '  - id: "coin-1\\x9b"  # <-', '"coin', "id 'coin-1\\x9b' holds the control character U+009B"),
    ("  b-spare:", '  "b-\\x1bspare":  # <-', '"b-', f"a key in beacons 'b-\\x1bspare' holds the control "
                                                    f"character U+001B, {CONTROL_END}"),
])
def test_a_control_character_in_a_text_or_a_key_is_refused_where_it_is(problem, old, new, value, said):
    """An escape in double quotes ("\\e[31m", "\\0", "\\x07") was loaded, then
    printed raw by check, coverage and settings: it garbled the terminal."""
    text = edit(old, new)
    p = marked(problem(text), text, value)
    assert said in p.message
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", str(p))  # the message itself prints as it reads


def test_a_title_written_as_a_block_scalar_is_read_without_its_last_line_break(load, problem):
    """YAML keeps a line break at the end of a block scalar (`>` or `|`):
    it is not part of the title, and a title folded over lines is one line."""
    site = load(edit("title: {fr: La coupole, en: The dome}",
                     "title:\n      fr: >\n        La\n        coupole\n      en: |\n        The dome\n"))
    assert site.exhibit("dome").title == {"fr": "La coupole", "en": "The dome"}
    text = edit("title: {fr: La coupole, en: The dome}", "title:\n      en: |\n        The\n        dome\n")
    assert "holds a line break" in problem(text).message


def test_no_message_echoes_a_control_character_raw(problems, load):
    """Values the reader echoes without reading them as text (a number, a
    tag) are written as escapes; free notes under an x- key are not read."""
    text = edit("    tx_power: -62\n", '    tx_power: !!int "\\e[2J"\n')
    text = edit("    x: 30\n", '    x: "\\x07"\n', text)
    found = problems(text)
    lines = VALID.splitlines()
    assert [p.line for p in found] == [lines.index("    tx_power: -62") + 1, lines.index("    x: 30") + 1]
    assert "not \\x1b[2J" in found[0].message and "'\\x07'" in found[1].message
    assert not any(re.search(r"[\x00-\x1f\x7f-\x9f]", str(p)) for p in found)
    assert load(edit("beacons:\n", 'x-notes: "line one\\nline two\\ttabbed"\nbeacons:\n'))


def test_a_symlink_out_of_tracks_dir_is_refused(problem, site_dir):
    (site_dir / "secret.wav").write_bytes(b"RIFF")
    (site_dir / "tracks" / "fr" / "link.wav").symlink_to(site_dir / "secret.wav")
    text = edit("fr/coin-1.wav}", "fr/link.wav}  # <-")
    p = problem(text)
    assert p.line == line_of(text)
    assert "is a link to" in p.message and "outside tracks_dir" in p.message


def test_a_symlink_inside_tracks_dir_is_fine(load, site_dir):
    (site_dir / "tracks" / "fr" / "alias.wav").symlink_to(site_dir / "tracks/fr/coin-1.wav")
    site = load(edit("fr/coin-1.wav}", "fr/alias.wav}"))
    assert site.exhibit("coin-1").tracks["fr"] == "fr/alias.wav"


def test_a_track_that_is_a_pipe_is_not_called_a_directory(problem, site_dir):
    os.mkfifo(site_dir / "tracks" / "fr" / "pipe.wav")
    text = edit("fr/coin-1.wav}", "fr/pipe.wav}  # <-")
    p = marked(problem(text), text, "fr/pipe.wav")
    assert "'fr/pipe.wav' is not a regular file (a pipe" in p.message
    assert "directory" not in p.message


def test_a_symlink_loop_as_a_track_is_a_problem_at_its_line_not_a_crash(problem, site_dir):
    loop = site_dir / "tracks" / "fr" / "loop.wav"
    loop.symlink_to("loop.wav")
    text = edit("fr/coin-1.wav}", "fr/loop.wav}  # <-")
    p = marked(problem(text), text, "fr/loop.wav")
    assert f"'fr/loop.wav' leads through a loop of symbolic links ({loop} leads back" in p.message
    assert "replace the link with the file itself" in p.message


def test_a_symlink_loop_as_tracks_dir_is_a_problem_at_its_line_not_a_crash(problem, site_dir, capsys):
    (site_dir / "tloop").symlink_to("tloop")
    text = edit("languages:", "tracks_dir: tloop  # <-\nlanguages:")
    p = marked(problem(text), text, "tloop")
    assert "tracks_dir 'tloop' leads through a loop of symbolic links" in p.message
    assert main(["settings", "--zones", str(site_dir / "zones.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"zones.yaml:{line_of(text)}:13: tracks_dir 'tloop' leads through a loop" in err
    assert "Traceback" not in err


def test_a_missing_tracks_dir_is_one_problem_not_one_per_track(problem):
    text = edit("languages:", "tracks_dir: audio  # <-\nlanguages:")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 13)
    assert "tracks_dir 'audio'" in p.message and "does not exist" in p.message


def test_an_exhibit_with_no_track_yet_loads_but_its_tracks_key_is_still_required(load, problem):
    # FORMATS.md: an exhibit may lack a track in some languages; `tracks: {}` while they
    # are being recorded lacks them all, and a site in that state must still load
    site = load(edit("tracks: {fr: fr/coin-1.wav}", "tracks: {}"))
    assert site.exhibit("coin-1").tracks == {}
    assert [site.track_for("coin-1", lang) for lang in site.languages] == [None] * 4
    text = edit("    tracks: {fr: fr/coin-1.wav}\n", "")
    p = problem(text)
    assert "exhibit 'coin-1' is missing 'tracks'" in p.message
    text = edit("tracks: {fr: fr/coin-1.wav}", "tracks:  # <-")
    p = problem(text)
    assert p.line == line_of(text) and "tracks must be a mapping" in p.message


TRACKLESS = f"""\
site: Trackless
languages: [fr, en]
fallback: {{en: []}}
beacons:
  b-a: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 1}}, tx_power: -59, x: 0, y: 0}}
  b-b: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 2}}, tx_power: -59, x: 20, y: 0}}
exhibits:
  - {{id: a, title: {{fr: A}}, beacon: b-a, radius: 2, tracks: {{fr: fr/a.wav}}}}
  - {{id: b, title: {{fr: B}}, beacon: b-b, radius: 2, tracks: {{}}}}
"""


def test_an_exhibit_with_no_track_is_silent_to_the_engine_as_one_lacking_the_visitors_chain(
        tmp_path, make_wav):
    # rule 7: nothing plays where no language of the chain has a track; `a` has none in
    # English (no fallback), `b` none at all, so English visitors hear neither, French a only
    from guide.engine import Engine
    make_wav(tmp_path / "tracks" / "fr" / "a.wav", 2.0)
    (tmp_path / "zones.yaml").write_text(TRACKLESS)
    site = load_zones(tmp_path / "zones.yaml")

    def starts(lang: str, beacon: str) -> list[str]:
        engine, out = Engine(site, lang), []
        for i in range(300):  # 30 s at 10 Hz, close to the beacon
            out += engine.observe(beacon, -55, i / 10)
        out += engine.tick(31.0)
        return [a.exhibit for a in out if type(a).__name__ == "Start"]

    assert starts("en", "b-a") == starts("en", "b-b") == starts("fr", "b-b") == []
    assert starts("fr", "b-a") == ["a"]


def test_lint_map_and_the_simulator_run_on_an_exhibit_with_no_track(tmp_path, make_wav, capsys):
    make_wav(tmp_path / "tracks" / "fr" / "a.wav", 2.0)
    zones = tmp_path / "zones.yaml"
    zones.write_text(TRACKLESS)
    walks = tmp_path / "walks.csv"
    walks.write_text("visitor,t,x,y\nv1,0,0,0\nv1,40,0,0\nv1,45,20,0\nv1,90,20,0\n")
    assert main(["lint", "--zones", str(zones)]) == 0
    assert main(["map", "--zones", str(zones), "--walks", str(walks), "--visitor", "v1",
                 "--out", str(tmp_path / "map.svg")]) == 0
    assert (tmp_path / "map.svg").stat().st_size > 0
    capsys.readouterr()
    events = tmp_path / "events.jsonl"
    for lang in ("fr", "en"):
        run = subprocess.run([sys.executable, str(REPO / "simulate.py"), "--zones", str(zones),
                              "--walks", str(walks), "--lang", lang, "--events", str(events),
                              "--no-progress"], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
        started = [json.loads(line)["exhibit"] for line in events.read_text().splitlines()
                   if json.loads(line)["event"] == "start"]
        assert started == (["a"] if lang == "fr" else [])


def test_an_intro_track_per_language_is_read_like_the_exhibit_tracks(load, site_dir, make_wav):
    assert load(VALID).intro == {}  # optional: no intro, nothing spoken before the first exhibit
    make_wav(site_dir / "tracks" / "fr" / "_intro.wav", 0.1)
    make_wav(site_dir / "tracks" / "en" / "_intro.wav", 0.1)
    site = load(edit("beacons:", "intro: {fr: fr/_intro.wav, en: en/_intro.wav}\nbeacons:"))
    assert site.intro == {"fr": "fr/_intro.wav", "en": "en/_intro.wav"}
    assert isinstance(site.intro, FrozenDict) and site.track_path(site.intro["en"]).is_file()


def test_an_intro_in_an_undeclared_language_or_with_a_missing_file_is_refused(problems, site_dir, make_wav):
    make_wav(site_dir / "tracks" / "fr" / "_intro.wav", 0.1)
    text = edit("beacons:", "intro:\n  es: fr/_intro.wav  # <-\n  en: en/_intro.wav\nbeacons:")
    unknown, missing = problems(text)
    assert (unknown.line, unknown.column) == (line_of(text), 3)
    assert "intro: 'es' is not one of the site's languages (fr, en, de, nl)" in unknown.message
    assert (missing.line, missing.column) == (line_of(text) + 1, 7)
    assert "intro track in 'en'" in missing.message and "'en/_intro.wav' not found" in missing.message
    assert str(site_dir / "tracks" / "en" / "_intro.wav") in missing.message


def test_an_intro_must_be_a_mapping_and_stay_inside_tracks_dir(problems):
    text = edit("beacons:", "intro: fr/_intro.wav  # <-\nbeacons:")
    (p,) = problems(text)
    assert p.line == line_of(text) and "intro must be a mapping" in p.message
    text = edit("beacons:", "intro: {fr: ../zones.yaml}  # <-\nbeacons:")
    (p,) = problems(text)
    marked(p, text, "../zones.yaml")
    assert "leads outside tracks_dir" in p.message


def test_the_intro_can_be_left_out_to_make_its_tracks_from_the_rest_of_the_map(site_dir):
    path = site_dir / "zones.yaml"
    path.write_text(edit("beacons:", "intro: {fr: fr/_intro.wav}\nbeacons:"), encoding="utf-8")
    with pytest.raises(ZoneMapError, match="_intro.wav"):
        load_zones(path)
    site = load_zones(path, intro=False)
    assert site.intro == {} and [e.id for e in site.exhibits] == ["dome", "coin-1"]


# --------------------------------------------------------------------------
# Trigger settings

def test_an_unknown_setting_suggests_the_setting_meant(problem):
    text = edit("exhibits:\n", "trigger: {dwel: 5}  # <-\nexhibits:\n")
    p = problem(text)
    assert (p.line, p.column) == (line_of(text), 11)
    assert "unknown setting 'dwel'" in p.message and "did you mean 'dwell'?" in p.message


@pytest.mark.parametrize("value,said", [
    ("dwell: '5'", "remove the quotes"),
    ("dwell: 500", "must be between 0 and 120 s, not 500"),
    ("smoothing: 0", "must be between 0.1 and 30 s"),
    ("replay_heard: 1", "must be true or false"),
    ("fade: true", "must be a number"),
])
def test_a_setting_must_have_its_type_and_be_in_range(problem, value, said):
    text = edit("exhibits:\n", f"trigger: {{{value}}}  # <-\nexhibits:\n")
    p = marked(problem(text), text, value.split(": ")[1])
    assert said in p.message


def test_a_site_wide_setting_cannot_be_set_per_exhibit(problem):
    text = edit("    radius: 1.5\n", "    radius: 1.5\n    trigger: {dwell: 6, fade: 2}  # <-\n")
    p = marked(problem(text), text, "fade")
    assert "'fade'" in p.message and "move it to the top-level trigger:" in p.message


# --------------------------------------------------------------------------
# Walls

@pytest.mark.parametrize("wall,said", [
    ("[[0, 0], [1, 1], [2, 2]]", "has 3 points"),
    ("[[0, 0]]", "has 1 point:"),
    ("[20, 8, 20, 17]", "wall 1 is a list of 4 numbers: a wall is a list of its 2 ends, each [x, y]"),
    ("[[0, 0], [1]]", "a point is a list of 2 numbers"),
    ("[[0, 0], [1, x]]", "must be a number, not the text 'x'"),
    ("[[0, 0], [0, 0]]", "starts and ends at the same point"),
    ("5", "wall 1 must be a list, not the number 5"),
])
def test_each_wall_is_a_pair_of_points(problem, wall, said):
    text = edit("exhibits:\n", f"walls:\n  - {wall}  # <-\nexhibits:\n")
    p = problem(text)
    assert p.line == line_of(text) and said in p.message


# --------------------------------------------------------------------------
# All at once

def test_every_problem_is_reported_at_once_in_file_order(problems):
    text = edit("site: Test gallery\n", "site: Test gallery\nsite: again\n")
    text = edit("    tx_power: -62\n", "    tx_power: 99\n", text)
    text = edit("    radius: 3.0\n", "    radius: -3.0\n    colour: red\n", text)
    text = edit("  - id: coin-1\n", "  - id: dome\n", text)
    found = problems(text)
    assert [p.line for p in found] == [2, 12, 24, 25, 27]
    assert "duplicate key 'site'" in found[0].message
    assert "tx_power" in found[1].message
    assert "radius" in found[2].message
    assert "unknown key 'colour'" in found[3].message
    assert "'dome' is already used" in found[4].message


def test_the_error_message_lists_each_problem_with_file_line_and_column(load, site_dir):
    text = edit("    radius: 3.0\n", "    radius: 0\n")
    with pytest.raises(ZoneMapError) as info:
        load(text)
    message = str(info.value)
    assert message.startswith("1 problem in the zone map:")
    assert f"{site_dir / 'zones.yaml'}:23:13: exhibit 'dome' radius must be" in message


@pytest.mark.parametrize("text, line, column", [
    ("site: a\x01b\n", 1, 8),  # near the top: PyYAML's reader stops as it is created
    ("site: Gallery\nlanguages: [en]\n# a note\x07\n", 3, 9),
    ("\x00" * 64, 1, 1),  # a file of zeros, as a power cut can leave
])
def test_a_control_character_is_named_with_its_line_and_column(problem, text, line, column):
    p = problem(text)
    assert (p.line, p.column) == (line, column)
    assert "cannot appear in a YAML file: delete it" in p.message


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
def test_a_line_break_editors_show_within_a_line_is_refused_where_it_is(problem, char):
    # YAML ends the comment at the character: the rest of the line, shown as
    # part of the comment, would be read as a key (a second site: here)
    text = edit("beacons:\n", f"# old name{char}site: Old gallery\nbeacons:\n")
    p = problem(text)
    lines = text.split("\n")  # as an editor counts them (not str.splitlines)
    (n,) = [i for i, line in enumerate(lines, 1) if char in line]
    assert (p.line, p.column) == (n, lines[n - 1].index(char) + 1)
    assert f"U+{ord(char):04X}" in p.message and "delete it" in p.message
