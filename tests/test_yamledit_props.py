"""Properties of the zone-map editor (guide.yamledit) that `guide calibrate
--write` and `guide tune --write` use, over zone maps written in the many
ways staff write YAML (block and flow style, comments everywhere, quoted
keys, keys in any order, triggers absent, empty or null, settings shared
through anchors, aliases and '<<' merge keys, CRLF, a BOM, unicode, a last
line without a newline, ``---`` and ``...``) and the real zone maps (the
repository's, the gallery sample's), edited at random:

1. the edited file loads, with exactly the values asked for, every other
   value of the site (each exhibit's effective trigger, beacons, titles,
   tracks) as it was;
2. an exhibit's edit never changes another exhibit's settings (the
   anchor/merge/alias traps);
3. lines are only added or changed in place: each line of the original is
   still there, or with its values replaced, keeping its key and comment;
   the BOM and the line ends are kept;
4. the same edit made again changes nothing;
5. an edit the editor cannot make safely raises ZoneMapError naming the
   file, and the file on disk is left byte for byte.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guide.errors import ZoneMapError
from guide.settings import PER_EXHIBIT, SETTINGS, TriggerSettings
from guide.yamledit import set_beacons, set_trigger, write_zones
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
REPO = Path(__file__).resolve().parent.parent
PER = sorted(PER_EXHIBIT)
ALL = sorted(SETTINGS)
IDS = ("a", "b", "c")
TRACKS = {"a": "fr/dome.opus", "b": "fr/hexagon.opus", "c": "fr/v1.opus"}
NOTE = "guide calibrate 2024-05-02"


def _value(name: str) -> st.SearchStrategy:
    meta = SETTINGS[name].metadata
    if SETTINGS[name].type in (bool, "bool"):
        return st.booleans()
    lo, hi = meta["min"], meta["max"]
    return st.integers(int(lo * 4) + (lo * 4 != int(lo * 4)), int(hi * 4)).map(
        lambda n: n // 4 if n % 4 == 0 else n / 4)


def _values(names: list[str], max_size: int = 3, auto: bool = False) -> st.SearchStrategy[dict]:
    """Settings with valid values; `auto`: level may be automatic (AUTO)."""
    def value(k):
        return st.one_of(st.sampled_from(AUTO), _value(k)) if auto and k == "level" else _value(k)
    return st.lists(st.sampled_from(names), max_size=max_size, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: value(k) for k in keys}))


class Auto(str):
    """`level` written as automatic: `auto`, `~`, `null` or nothing."""


AUTO = [Auto("auto"), Auto("~"), Auto("null"), Auto("")]


def _written(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.fixture(scope="module")
def tracks() -> Path:
    """The repository's recorded tracks: each exhibit `e` plays TRACKS[e]."""
    return REPO / "tracks"


# -- generated zone maps -------------------------------------------------------

@st.composite
def zone_maps(draw, tracks_dir: str) -> str:
    """A valid zone map (LF line ends, no BOM: see `framed`)."""
    def comment() -> str:
        return draw(st.sampled_from(["", "", "  # why", " #\ttab\tthen é", "    # x: 1, {y}"]))

    def between(indent: str) -> str:
        return draw(st.sampled_from(["", "", f"{indent}# between keys\n", "\n",
                                     f"#\tat column 0\n", f"{indent}  # deeper: {{not: yaml}}\n"]))

    def key(name: str) -> str:
        return draw(st.sampled_from([name, name, f'"{name}"', f"'{name}'"]))

    def mapping(values: dict, indent: str, anchor: str = "", merge: str = "",
                written: dict | None = None) -> str:
        """The text after `trigger:` (up to and with its line end)."""
        lead = f" &{anchor}" if anchor else ""
        items = [(key(k), (written or {}).get(k, _written(v))) for k, v in values.items()]
        if merge:
            items.insert(draw(st.integers(0, len(items))), ("<<", f"*{merge}"))
        form = draw(st.sampled_from(["flow", "block"] if items else ["flow"]))
        if form == "null":
            return (lead if lead else "") + comment() + "\n"
        if form == "tilde":
            return f"{lead} ~{comment()}\n"
        if form == "flow":
            trail = draw(st.sampled_from(["", "", ", ", ","])) if items else ""
            sep = draw(st.sampled_from([", ", ", ", f",{comment()}\n{indent}   "]))
            return f"{lead} {{{sep.join(f'{k}: {v}' for k, v in items)}{trail}}}{comment()}\n"
        out = f"{lead}{comment()}\n"
        for k, v in items:
            out += between(indent + "  ") + f"{indent}  {k}: {v}{comment()}\n"
        return out

    share_site = draw(st.booleans())  # exhibits use the site's trigger through *t / <<: *t
    site_vals = draw(_values(PER if share_site else ALL, auto=True))
    site_form = draw(st.sampled_from(["absent", "present", "present"]))
    if share_site:
        site_form = "present"
    site_anchor = "t" if share_site or draw(st.booleans()) else ""

    x_defaults = draw(st.booleans())  # x-defaults: &xd {radius: 2.0, trigger: {...}}
    x_vals = draw(_values(PER, auto=True))
    x_beacon = draw(st.booleans())  # x-beacon: &xb {tx_power: -59}

    top: list[str] = [
        f"site: {draw(st.sampled_from(['Édit test', repr('Édit test'), 'Édit test  # name']))}\n",
        f"languages: [fr]{comment()}\n",
        f"tracks_dir: '{tracks_dir}'{comment()}\n",
    ]
    top = draw(st.permutations(top))
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["---\n", "--- # the site\n", "# header\n---\n"])))
    lines += [between("") + t for t in top]
    if x_defaults:
        lines.append(f"x-defaults: &xd\n  radius: 2.0\n  trigger:{mapping(x_vals, '  ')}")
    if x_beacon:
        lines.append("x-beacon: &xb {tx_power: -59}\n")
    x_trigger = draw(_values(PER, auto=True)) if draw(st.booleans()) else None  # the site's merges it
    if x_trigger is not None:
        lines.append(f"x-trigger:{mapping(x_trigger, '', anchor='xt')}")
    trigger = ""
    value_anchor = None
    if site_form == "present":
        # a value anchored (`dwell: &v 4`) for exhibits to write `dwell: *v`
        shareable = [k for k, v in site_vals.items() if k in PER_EXHIBIT]
        if shareable and draw(st.booleans()):
            value_anchor = draw(st.sampled_from(shareable))
        written = {value_anchor: f"&v {_written(site_vals[value_anchor])}"} if value_anchor else {}
        body = mapping(site_vals, '', anchor=site_anchor, written=written,
                       merge="xt" if x_trigger is not None else "")
        trigger = between("") + f"trigger:{body}"

    # beacons
    beacon_lines = ["beacons:" + comment() + "\n"]
    first_anchored = draw(st.booleans())  # b-a: &ba {...}, merged by the others
    for n, e in enumerate(IDS):
        from_a = n > 0 and first_anchored and draw(st.booleans())
        merged = x_beacon and draw(st.booleans())
        tx = "" if merged or (from_a and draw(st.booleans())) else \
            f"tx_power: {draw(st.integers(-90, -40))}"
        x, y = 4 * n, draw(st.sampled_from(["0", "0.0", "1.5"]))
        ident = f"{{uuid: {UUID}, major: 3, minor: {n + 1}}}"
        fields = [f"ibeacon: {ident}", f"x: {x}"] + ([tx] if tx else []) + (
            [] if from_a and draw(st.booleans()) else [f"y: {y}"])
        fields = draw(st.permutations(fields)) + (["<<: *xb"] if merged else [])
        if from_a:
            fields.insert(draw(st.integers(0, len(fields))), "<<: *ba")
        lead = " &ba" if n == 0 and first_anchored else ""
        beacon_lines.append(between("  "))
        if draw(st.booleans()):
            beacon_lines.append(f"  b-{e}:{lead} {{{', '.join(fields)}}}{comment()}\n")
        else:
            beacon_lines.append(f"  b-{e}:{lead}{comment()}\n" + "".join(
                between("    ") + f"    {f}{comment()}\n" for f in fields))
    beacons = "".join(beacon_lines)

    # exhibits
    ex_lines = ["exhibits:" + comment() + "\n"]
    anchored: list[str] = []  # exhibits whose own trigger is anchored &e-<id>
    for e in IDS:
        flow = draw(st.booleans())
        uses_x = x_defaults and draw(st.booleans())
        choices = ["none", "own", "own", "empty"]
        if share_site:
            choices += ["alias-site", "merge-site"]
        if anchored:
            choices += ["alias-ex", "merge-ex"]
        form = draw(st.sampled_from(choices))
        own = draw(_values(PER, auto=True))
        own_written = {}
        if value_anchor and draw(st.booleans()):  # `dwell: *v`, the site's value
            own[value_anchor] = site_vals[value_anchor]
            own_written[value_anchor] = "*v"
        indent = "    "
        if form == "none":
            trig = None
        elif form == "empty":
            trig = draw(st.sampled_from([" {}", " {  }"]))  # (null is refused by the loader)
        elif form == "alias-site":
            trig = " *t"
        elif form == "alias-ex":
            trig = f" *e-{draw(st.sampled_from(anchored))}"
        elif form in ("merge-site", "merge-ex"):
            source = "t" if form == "merge-site" else f"e-{draw(st.sampled_from(anchored))}"
            trig = mapping(own, indent, merge=source, written=own_written).rstrip("\n") if not flow else \
                " {" + ", ".join([f"<<: *{source}", *(f"{k}: {own_written.get(k, _written(v))}" for k, v in own.items())]) + "}"
        else:
            anchor = f"e-{e}" if draw(st.booleans()) else ""
            if anchor:
                anchored.append(e)
            trig = (mapping(own, indent, anchor=anchor, written=own_written).rstrip("\n") if not flow else
                    (f" &{anchor}" if anchor else "") + " {" + ", ".join(
                        f"{k}: {own_written.get(k, _written(v))}" for k, v in own.items()) + "}")
        title = draw(st.sampled_from(["Ça", "'Ü: two'", '"漢字"', "plain"]))
        fields = [f"id: {e}", f"title: {{fr: {title}}}", f"beacon: b-{e}",
                  f"tracks: {{fr: {TRACKS[e]}}}"]
        if not uses_x or draw(st.booleans()):
            fields.append(f"radius: {draw(st.sampled_from(['2.0', '1.5', '3']))}")
        if uses_x:
            fields.append("<<: *xd")
        if draw(st.booleans()):
            fields += ["x: 1.0", "y: 2.5"]
        fields = draw(st.permutations(fields))
        if trig is not None:
            fields.insert(draw(st.integers(0, len(fields))), "TRIGGER")
        ex_lines.append(between("  "))
        if flow or (trig is not None and "\n" in trig and flow):
            body = ", ".join(f"trigger:{trig}" if f == "TRIGGER" else f for f in fields)
            ex_lines.append(f"  - {{{body}}}{comment()}\n")
        else:
            out = ""
            for i, f in enumerate(fields):
                text = f"trigger:{trig}" if f == "TRIGGER" else f + comment()
                out += ("  - " if i == 0 else between("    ") + "    ") + text + "\n"
            ex_lines.append(out)
    exhibits = "".join(ex_lines)

    middle = [trigger, beacons] if draw(st.booleans()) else [beacons, trigger]
    lines += middle + [exhibits]
    text = "".join(lines)
    if draw(st.booleans()):
        text += draw(st.sampled_from(["...\n", "# the end\n", "# the end", "\n\n"]))
    if draw(st.booleans()):
        text = text.rstrip("\n")
    return text


def framed(text: str, crlf: bool, bom: bool) -> bytes:
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8-sig" if bom else "utf-8")


@st.composite
def edits(draw, exhibits: list[str], beacons: list[str]):
    site = draw(_values(ALL))
    chosen = draw(st.lists(st.sampled_from(exhibits), unique=True, max_size=3)) if exhibits else []
    per = {e: draw(_values(PER)) for e in chosen}
    chosen = draw(st.lists(st.sampled_from(beacons), unique=True, max_size=3)) if beacons else []
    bvals = {b: draw(st.fixed_dictionaries({}, optional={
        "tx_power": st.integers(-90, -40), "x": st.integers(-40, 400).map(lambda n: n / 4),
        "y": st.integers(-40, 400).map(lambda n: n / 4)})) for b in chosen}
    return site, per, bvals


# -- the properties ------------------------------------------------------------

def _own_triggers(text: str) -> tuple[dict, dict, dict]:
    """(site trigger, exhibit id -> its own trigger, exhibit id -> own x/y)
    as YAML means them (aliases and merges resolved)."""
    data = yaml.safe_load(text)

    def auto(trigger: dict) -> dict:
        return {k: None if v == "auto" else v for k, v in (trigger or {}).items()}
    exhibits = {e["id"]: auto(e.get("trigger")) for e in data["exhibits"]}
    places = {e["id"]: {k: e[k] for k in ("x", "y") if k in e} for e in data["exhibits"]}
    return auto(data.get("trigger")), exhibits, places


def _rounded(values: dict) -> dict:
    return {k: v if isinstance(v, bool) else round(float(v), 2) for k, v in values.items()}


def check_edit(path: Path, original: bytes, site_vals: dict, per: dict, bvals: dict) -> None:
    path.write_bytes(original)
    before = load_zones(path)
    text = path.read_text(encoding="utf-8-sig")
    try:
        new = set_trigger(text, site=site_vals, exhibits=per, note=NOTE, file=str(path))
        new = set_beacons(new, bvals, note=NOTE, file=str(path))
    except ZoneMapError as e:  # 5: refused, naming the file, before anything is written
        event("refused by the editor")
        assert all(p.file == str(path) for p in e.problems), e
        assert path.read_bytes() == original
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"the editor raised {type(e).__name__}: {e}") from e
    try:
        write_zones(path, new, backup=False)
    except ZoneMapError as e:
        assert path.read_bytes() == original  # 5
        raise AssertionError(f"the edit does not load: {e}\n--- edited:\n{new}") from None
    after_bytes = path.read_bytes()
    after = load_zones(path)

    # 1, 2: exactly the values asked for; every other value as it was
    site0, own0, places0 = _own_triggers(text)
    site_trigger = TriggerSettings().override({**site0, **_rounded(site_vals)})
    assert after.trigger == site_trigger, new
    assert before.trigger == TriggerSettings().override(site0)
    beacons = {}
    for b, beacon in before.beacons.items():
        changes = _rounded(bvals.get(b, {}))
        if "tx_power" in changes:
            changes["tx_power"] = int(changes["tx_power"])
        beacons[b] = type(beacon)(**{**beacon.__dict__, **changes})
    assert dict(after.beacons) == beacons, new
    for old, got in zip(before.exhibits, after.exhibits, strict=True):
        assert old.trigger == before.trigger.override(own0[old.id])  # how the loader reads it
        want = site_trigger.override({**own0[old.id], **_rounded(per.get(old.id, {}))})
        assert got.trigger == want, (old.id, new)
        place = {k: getattr(beacons[old.beacon], k) for k in ("x", "y")
                 if k not in places0[old.id]}
        assert got == type(old)(**{**old.__dict__, "trigger": want, **place}), new
    assert (after.name, after.languages, after.tracks_dir, after.walls, dict(after.intro)) == (
        before.name, before.languages, before.tracks_dir, before.walls, dict(before.intro))

    # 3: lines added, or changed in place keeping their key and comment
    assert after_bytes.startswith(b"\xef\xbb\xbf") == original.startswith(b"\xef\xbb\xbf")
    if b"\r\n" in original and original.count(b"\r\n") == original.count(b"\n"):
        assert after_bytes.count(b"\r\n") == after_bytes.count(b"\n")
    elif b"\r" not in original:
        assert b"\r" not in after_bytes
    old_lines, new_lines = text.split("\n"), new.split("\n")
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("equal", "insert"):
            continue
        block = "\n".join(new_lines[j1:j2])
        for line in old_lines[i1:i2]:
            keyed = re.match(r"\s*(?:- )?[\"']?[\w-]+[\"']?:", line)
            if keyed:
                assert keyed[0].strip() in block, (line, block)
            hash_ = line.find("  #")
            if hash_ >= 0 and "# guide" not in line:
                assert line[hash_:].strip() in block, (line, block)

    # 4: the same edit again changes nothing
    again = set_beacons(set_trigger(new, site=site_vals, exhibits=per, note=NOTE), bvals, note=NOTE)
    assert again == new


FAST = settings(max_examples=int(os.environ.get("YAMLEDIT_EXAMPLES", 150)), deadline=None,
                derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@FAST
@given(data=st.data(), crlf=st.booleans(), bom=st.booleans())
def test_edits_of_generated_zone_maps(tmp_path, tracks, data, crlf, bom):
    text = data.draw(zone_maps(str(tracks)))
    site_vals, per, bvals = data.draw(edits(list(IDS), [f"b-{e}" for e in IDS]))
    check_edit(tmp_path / "zones.yaml", framed(text, crlf, bom), site_vals, per, bvals)


REAL = [REPO / "zones.yaml", Path("/work/shared/data/gallery-sample/zones.yaml")]


@pytest.mark.parametrize("source", REAL, ids=["repo", "gallery-sample"])
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), crlf=st.booleans(), bom=st.booleans())
def test_edits_of_real_zone_maps(tmp_path, source, data, crlf, bom):
    if not source.exists():
        pytest.skip(f"{source} is not here")
    text = source.read_text(encoding="utf-8-sig")
    # its tracks where it is, whatever folder the copy is in
    tracks_dir = yaml.safe_load(text).get("tracks_dir", ".")
    text = re.sub(r"(?m)^tracks_dir: *\S+", f"tracks_dir: '{source.parent / tracks_dir}'", text)
    data_ = yaml.safe_load(text)
    site_vals, per, bvals = data.draw(edits([e["id"] for e in data_["exhibits"]],
                                            list(data_["beacons"])))
    check_edit(tmp_path / "zones.yaml", framed(text, crlf, bom), site_vals, per, bvals)
