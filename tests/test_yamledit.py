"""Editing zones.yaml in place (guide.yamledit): every edit `guide tune` and
`guide calibrate` can make to a zone map the loader accepts gives one it
accepts, with the values asked for and nothing else changed."""

from __future__ import annotations

import pytest

from guide.errors import ZoneMapError
from guide.yamledit import set_trigger
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

ZONES = f"""\
site: Edit test
languages: [fr]
trigger: &t {{dwell: 4}}
beacons:
  b-a: {{ibeacon: {{uuid: {UUID}, major: 3, minor: 1}}, tx_power: -59, x: 0, y: 0}}
  b-b: {{ibeacon: {{uuid: {UUID}, major: 3, minor: 2}}, tx_power: -59, x: 6, y: 0}}
exhibits:
  - id: a
    title: {{fr: A}}
    beacon: b-a
    radius: 2.0
    trigger: SHARED
    tracks: {{fr: fr/a.wav}}
  - id: b
    title: {{fr: B}}
    beacon: b-b
    radius: 2.0
    tracks: {{fr: fr/b.wav}}
"""


@pytest.fixture
def zones(tmp_path, make_wav):
    for e in "ab":
        make_wav(tmp_path / "tracks/fr" / f"{e}.wav", 1.0, rate=100)
    return tmp_path / "zones.yaml"


def test_a_site_wide_setting_added_to_the_site_trigger_never_reaches_an_exhibit_aliasing_it(zones):
    text = ZONES.replace("SHARED", "*t")
    zones.write_text(text)
    load_zones(zones)  # valid before the edit
    new = set_trigger(text, site={"smoothing": 1.5})
    assert "trigger: &t {dwell: 4, smoothing: 1.5}\n" in new
    assert "    trigger: {dwell: 4}\n" in new  # a copy of what it had, without smoothing
    zones.write_text(new)
    site = load_zones(zones)  # an exhibit's trigger holding smoothing would be refused
    assert (site.trigger.smoothing, site.trigger.dwell) == (1.5, 4)
    assert site.exhibit("a").trigger.dwell == 4 and site.exhibit("b").trigger.smoothing == 1.5


def test_a_site_wide_setting_that_would_reach_an_exhibit_through_a_merge_is_refused_naming_it(zones):
    text = ZONES.replace("SHARED", "{<<: *t, margin: 2}")
    zones.write_text(text)
    load_zones(zones)
    with pytest.raises(ZoneMapError) as info:
        set_trigger(text, site={"smoothing": 1.5}, file="z.yaml")
    (p,) = info.value.problems
    assert p.file == "z.yaml" and p.line == text.splitlines().index(
        "    trigger: {<<: *t, margin: 2}") + 1
    assert "smoothing" in p.message and "site-wide" in p.message and "'<<'" in p.message
    # a setting an exhibit may hold reaches it through the merge, as YAML means
    new = set_trigger(text, site={"margin": 3, "glance": 9})
    zones.write_text(new)
    site = load_zones(zones)
    assert site.exhibit("a").trigger.margin == 2 and site.exhibit("a").trigger.glance == 9


@pytest.mark.parametrize("written, edited", [
    # a block mapping whose first key is written `? key`: new keys at the '?'
    ("trigger:\n  ? dwell\n  : 4\n", "trigger:\n  ? dwell\n  : 3.5\n  margin: 2\n"),
    # a flow mapping ending in a comma, as YAML allows, even before a comment
    ("trigger: {dwell: 4, }\n", "trigger: {dwell: 3.5, margin: 2}\n"),
    ("trigger: {dwell: 4,   # by hand\n}\n", "trigger: {dwell: 3.5,   # by hand\nmargin: 2}\n"),
    ("trigger: {  # by hand\n}\n", "trigger: {  # by hand\nmargin: 2, dwell: 3.5}\n"),
])
def test_settings_are_added_to_a_trigger_in_any_form_yaml_allows(zones, written, edited):
    text = ZONES.replace("trigger: &t {dwell: 4}\n", written).replace("    trigger: SHARED\n", "")
    zones.write_text(text)
    load_zones(zones)
    new = set_trigger(text, site={"margin": 2, "dwell": 3.5})
    assert new == text.replace(written, edited)
    zones.write_text(new)
    site = load_zones(zones)  # the edit wrote '    margin: 2' or ', , margin: 2': not YAML
    assert (site.trigger.dwell, site.trigger.margin) == (3.5, 2)


def test_a_trigger_is_added_to_an_exhibit_written_in_flow_style_ending_in_a_comma(zones):
    text = ZONES.replace("    trigger: SHARED\n", "").replace(
        "  - id: b\n    title: {fr: B}\n    beacon: b-b\n    radius: 2.0\n    tracks: {fr: fr/b.wav}\n",
        "  - {id: b, title: {fr: B}, beacon: b-b, radius: 2.0, tracks: {fr: fr/b.wav}, }\n")
    zones.write_text(text)
    load_zones(zones)
    new = set_trigger(text, exhibits={"b": {"dwell": 7}})
    assert "tracks: {fr: fr/b.wav}, trigger: {dwell: 7}}\n" in new
    zones.write_text(new)
    assert load_zones(zones).exhibit("b").trigger.dwell == 7


def test_a_value_added_after_a_block_mapping_goes_below_its_lines_not_past_the_comments(zones):
    """PyYAML ends a block mapping where the next token starts: a tx_power
    added after a beacon's block ``ibeacon:`` (its own taken with '<<') went
    below the comments after it, under ``exhibits:``, and did not load."""
    from guide.yamledit import set_beacons
    text = ZONES.replace("    trigger: SHARED\n", "").replace("beacons:\n", "x-b: &b {tx_power: -59}\nbeacons:\n").replace(
        f"  b-b: {{ibeacon: {{uuid: {UUID}, major: 3, minor: 2}}, tx_power: -59, x: 6, y: 0}}\n",
        f"  b-b:\n    <<: *b\n    x: 6\n    y: 0\n    ibeacon:\n      uuid: {UUID}\n      major: 3\n"
        "      minor: 2\n    # the last beacon\n\n# what visitors hear\n").replace(
        "trigger: &t {dwell: 4}\n", "trigger:\n  <<:\n    dwell: 4\n  # site-wide\n\n")
    zones.write_text(text)
    load_zones(zones)
    new = set_beacons(text, {"b-b": {"tx_power": -61}})
    assert "      minor: 2\n    tx_power: -61\n    # the last beacon\n" in new
    new = set_trigger(new, site={"margin": 2})
    assert "    dwell: 4\n  margin: 2\n  # site-wide\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert site.beacons["b-b"].tx_power == -61 and site.beacons["b-a"].tx_power == -59
    assert (site.trigger.dwell, site.trigger.margin) == (4, 2)


def test_an_exhibits_new_trigger_goes_below_its_own_radius_written_as_an_alias(zones):
    """`radius: *r`: the node is where its &r is, in another exhibit, and the
    trigger went there: exhibit a got the settings calibrated for b, and the
    file loaded, so nothing said so."""
    text = ZONES.replace("    trigger: SHARED\n", "").replace(
        "    radius: 2.0\n    tracks: {fr: fr/a.wav}\n", "    radius: &r 2.0\n    tracks: {fr: fr/a.wav}\n").replace(
        "    radius: 2.0\n    tracks: {fr: fr/b.wav}\n", "    radius: *r\n    tracks: {fr: fr/b.wav}\n")
    zones.write_text(text)
    load_zones(zones)
    new = set_trigger(text, exhibits={"b": {"level": -70}})
    assert "    radius: *r\n    trigger: {level: -70}\n    tracks: {fr: fr/b.wav}\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert (site.exhibit("a").trigger.level, site.exhibit("b").trigger.level) == (None, -70)


def test_a_setting_written_again_as_it_is_changes_nothing_where_the_trigger_is_shared(zones):
    """A key of the site's trigger being edited was copied into each trigger
    sharing it (`*t`, `<<: *t`) even when the value stayed the same: writing
    the same edit twice (or a value it already had) rewrote those triggers."""
    for shared in ("*t", "{<<: *t, margin: 2}"):
        text = ZONES.replace("SHARED", shared)
        zones.write_text(text)
        load_zones(zones)
        assert set_trigger(text, site={"dwell": 4}) == text
        once = set_trigger(text, site={"glance": 9})
        assert set_trigger(once, site={"glance": 9}) == once
        zones.write_text(once)
        assert load_zones(zones).exhibit("a").trigger.glance == 9


def test_a_beacons_edit_never_reaches_a_beacon_merging_its_mapping(zones):
    """`b-b: {<<: *ba, ...}` takes tx_power from b-a's mapping: calibrating
    b-a's tx_power silently changed b-b's too; b-b now keeps its own."""
    from guide.yamledit import set_beacons
    text = ZONES.replace("    trigger: SHARED\n", "").replace("  b-a: {", "  b-a: &ba {").replace(
        "major: 3, minor: 2}, tx_power: -59, x: 6, y: 0}", "major: 3, minor: 2}, <<: *ba, x: 6}")
    zones.write_text(text)
    assert load_zones(zones).beacons["b-b"].tx_power == -59
    new = set_beacons(text, {"b-a": {"tx_power": -70, "y": 0}})
    assert "minor: 2}, <<: *ba, x: 6, tx_power: -59}\n" in new
    assert set_beacons(new, {"b-a": {"tx_power": -70}}) == new
    zones.write_text(new)
    site = load_zones(zones)
    assert (site.beacons["b-a"].tx_power, site.beacons["b-b"].tx_power) == (-70, -59)


def test_a_value_taken_through_two_merges_is_kept_when_the_mapping_between_gets_its_own(zones):
    """b-a takes tx_power from x-b with '<<' and b-b merges b-a: calibrating
    b-a gives it a tx_power of its own, which b-b then took instead of the
    one it had from x-b, as only a value merged straight from the edited
    mapping was kept."""
    from guide.yamledit import set_beacons
    text = ZONES.replace("    trigger: SHARED\n", "").replace("beacons:\n", "x-b: &xb {tx_power: -59}\nbeacons:\n").replace(
        "  b-a: {", "  b-a: &ba {<<: *xb, ").replace(", tx_power: -59, x: 0, y: 0}", ", x: 0, y: 0}").replace(
        "major: 3, minor: 2}, tx_power: -59, x: 6, y: 0}", "major: 3, minor: 2}, <<: *ba, x: 6}")
    zones.write_text(text)
    assert load_zones(zones).beacons["b-b"].tx_power == -59
    new = set_beacons(text, {"b-a": {"tx_power": -70}})
    assert "minor: 2}, <<: *ba, x: 6, tx_power: -59}\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert (site.beacons["b-a"].tx_power, site.beacons["b-b"].tx_power) == (-70, -59)


@pytest.mark.parametrize("shared", ["{<<: *t, glance: 9}", "*t"])
def test_a_setting_the_site_trigger_merges_stays_for_an_exhibit_sharing_it(zones, shared):
    """The site's trigger takes margin from x-t with '<<', exhibit a shares
    the site's: a site-wide margin written into the site's trigger reached
    a, which had x-t's margin written for it (as YAML reads it) and lost it."""
    text = ZONES.replace("SHARED", shared).replace(
        "trigger: &t {dwell: 4}\n", "x-t: &xt {margin: 4}\ntrigger: &t {<<: *xt, dwell: 4}\n")
    zones.write_text(text)
    assert load_zones(zones).exhibit("a").trigger.margin == 4
    new = set_trigger(text, site={"margin": 2})
    zones.write_text(new)
    site = load_zones(zones)
    assert (site.trigger.margin, site.exhibit("a").trigger.margin, site.exhibit("b").trigger.margin) == (2, 4, 2)


@pytest.mark.parametrize("written", ["trigger:\n      level:\n      dwell: 3\n",
                                     "trigger:\n      level:  # auto\n      dwell: 3\n",
                                     "trigger: {level: , dwell: 3}\n"])
def test_a_setting_written_with_no_value_gets_one(zones, written):
    """`level:` with nothing after it is null, which the loader reads as
    automatic: calibrating it wrote `level:-70`, not YAML, and guide
    calibrate --write failed with 'a bug in the guide'."""
    text = ZONES.replace("    trigger: SHARED\n", "    " + written)
    zones.write_text(text)
    assert load_zones(zones).exhibit("a").trigger.level is None
    new = set_trigger(text, exhibits={"a": {"level": -70}})
    zones.write_text(new)
    assert load_zones(zones).exhibit("a").trigger.level == -70


def test_a_setting_anchored_with_no_value_is_copied_without_its_anchor_and_set_keeping_it(zones):
    """`level: &l` (null, automatic, anchored): the copy an exhibit's `*t`
    gets defined &l again, and setting it dropped or glued the anchor; either
    way the edit would not load."""
    text = ZONES.replace("SHARED", "*t").replace(
        "trigger: &t {dwell: 4}\n", "trigger: &t\n  level: &l\n  dwell: 4\n")
    zones.write_text(text)
    load_zones(zones)
    new = set_trigger(text, site={"dwell": 5})
    assert "    trigger: {level: , dwell: 4}\n" in new
    zones.write_text(new)
    site = load_zones(zones)
    assert (site.exhibit("a").trigger.level, site.exhibit("a").trigger.dwell) == (None, 4)
    new = set_trigger(text.replace("*t", "{dwell: 4}"), site={"level": -60})
    assert "  level: &l -60\n" in new
    zones.write_text(new)
    assert load_zones(zones).trigger.level == -60
