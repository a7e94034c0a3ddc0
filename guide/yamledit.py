"""Writing settings into zones.yaml, leaving everything else as staff wrote it.

`guide tune` and `guide calibrate` change a few numbers (trigger settings,
beacons' tx_power: `set_trigger`, `set_beacons`) in a file people
edit by hand, full of comments that explain the site. Only the lines that
change are touched: every other byte (comments, blank lines, key order,
quoting, flow or block style, indentation) stays exactly as it was.

    text = Path("zones.yaml").read_text(encoding="utf-8")
    new = set_trigger(text, site={"dwell": 3.5},
                      exhibits={"coin-1": {"level": -68.5, "margin": 2.0}},
                      note="guide calibrate 2024-05-02")
    backup = write_zones(Path("zones.yaml"), new)   # checked by load_zones first

What an edit looks like:
- a setting already written (``dwell: 6.0``, in ``trigger: {...}`` or in a
  block) has its value replaced where it stands;
- a setting not yet written is added to that ``trigger:`` mapping, in its
  style (``{dwell: 6.0, margin: 2}`` or one more line of the block);
- an exhibit with no ``trigger:`` gets ``trigger: {...}`` on a new line after
  its ``radius:`` (the setting it is tuned with), with `note` as a comment;
- a site with no top-level ``trigger:`` gets one just before ``beacons:`` (and
  the comments that introduce it);
- an edit changes only the trigger it is for, even where YAML shares one
  mapping between several: a ``trigger: *t`` (an alias) being edited becomes
  a mapping of its own (the aliased values and the new ones), the ``&t``
  anchor untouched; and where the mapping edited in place is an anchor that
  another trigger uses (``*t`` or ``<<: *t``), that one gets the values it
  had written out (those that change: a value written again as it is
  changes nothing, so the same edit made twice is made once); a site-wide
  setting (``smoothing``) added to the site's trigger never reaches an
  exhibit's through such sharing, which the loader would refuse: a ``*t``
  becomes a copy without it, a ``<<: *t`` is refused (ZoneMapError naming
  its line) before anything is written.

`write_zones` keeps the file's encoding details: a UTF-8 BOM, and CRLF line
ends (callers read the file with universal newlines, so `text` has LF).

Why not a round-trip YAML library: re-dumping the whole file is only as
faithful as the library, and ruamel.yaml 0.19 measurably was not, on this
project's own demo zones.yaml: it dropped the comments between items of the
``walls:`` list and re-indented 250 lines. Here the file is composed with
PyYAML (as `guide.zones` does), whose nodes carry exact character positions,
and the edits are made in the text at those positions.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from guide.errors import GuideError, Problem, ZoneMapError
from guide.files import replace_whole, sync_folder, temporary
from guide.settings import PER_EXHIBIT, SETTINGS

__all__ = ["set_trigger", "write_zones", "format_value"]

_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"


def format_value(value: Any) -> str:
    """A setting as it is written in YAML: 3.5, 4, -68.25, true.

    >>> format_value(4.0), format_value(-68.254), format_value(True)
    ('4', '-68.25', 'true')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"{round(float(value), 2):g}"


def set_trigger(text: str, *, site: Mapping[str, Any] | None = None,
                exhibits: Mapping[str, Mapping[str, Any]] | None = None,
                note: str | None = None, file: str = "zones.yaml") -> str:
    """`text` (a zones.yaml) with the site-wide `site` settings and each
    exhibit's `exhibits[id]` settings written in; nothing else changes.

    `note` becomes a comment on each ``trigger:`` line this adds (never on
    lines that were already there). Raises ZoneMapError naming `file` if
    the text is not YAML or an exhibit id is not in it."""
    root = _compose(text, file)
    edits = _Edits(text, file)
    found = _exhibit_nodes(root)
    missing = [e for e in exhibits or () if e not in found]
    if missing:
        raise ZoneMapError([Problem(file=file, message=f"has no exhibit {', '.join(missing)}: "
                                    "the settings are for another zone map")])
    wanted = {e: _formatted(values) for e, values in (exhibits or {}).items() if values}
    owners = [(root, _formatted(site or {}))] + [
        (exhibit, wanted.get(exhibit_id, {})) for exhibit_id, exhibit in found.items()]
    # The trigger mappings that will be edited where they are written, with the
    # keys that change: these must not reach another trigger sharing the mapping.
    # A value written again as it is changes nothing another trigger could see.
    protected: dict[int, set[str]] = {}
    for owner, values in owners:
        entry = _own(owner).get("trigger")
        if values and entry and isinstance(entry[1], MappingNode) and not _is_alias(*entry):
            keys = _changing(text, entry[1], values)
            if owner is root:  # a key the site gets, an exhibit sharing it had from the site
                # (unless the site's trigger gave it, itself or by a '<<' of its own),
                # or a site-wide one, which an exhibit's trigger cannot hold
                keys &= set(_entries(entry[1])) | (set(SETTINGS) - PER_EXHIBIT)
            protected[id(entry[1])] = keys
    _set_site(edits, root, owners[0][1], note, protected)
    for exhibit, values in owners[1:]:
        _set_exhibit(edits, exhibit, values, note, protected)
    return edits.apply()


def set_beacons(text: str, beacons: Mapping[str, Mapping[str, Any]], *, note: str | None = None,
                file: str = "zones.yaml") -> str:
    """`text` (a zones.yaml) with each beacon's `beacons[id]` values (e.g.
    ``{"tx_power": -64}``) written into its own mapping, in its style; a value
    the beacon takes from a '<<' anchor gets an own one (the anchor serves
    other beacons too), and a beacon taking a changed value with '<<' from
    the mapping of a beacon edited gets the value it had written out. `note`
    as for `set_trigger`. ZoneMapError naming `file` if the text is not YAML
    or a beacon id is not in it."""
    root = _compose(text, file)
    entry = _own(root).get("beacons")
    found = ({k.value: v for k, v in entry[1].value if isinstance(k, ScalarNode)
              and isinstance(v, MappingNode)} if entry and isinstance(entry[1], MappingNode) else {})
    missing = [b for b in beacons if b not in found]
    if missing:
        raise ZoneMapError([Problem(file=file, message=f"has no beacon {', '.join(missing)}: "
                                    "the values are for another zone map")])
    edits = _Edits(text, file)
    wanted = {b: _formatted(values) for b, values in beacons.items() if values}
    # a beacon merging another's mapping with '<<' (`b-2: {<<: *b-1, x: 6}`)
    # keeps the values it had of those that change there
    protected: dict[int, set[str]] = {}
    for beacon, values in wanted.items():
        protected[id(found[beacon])] = _changing(text, found[beacon], values)
    done: set[int] = set()
    for beacon, node in found.items():
        values = wanted.get(beacon, {})
        values = {**_pins(edits, node, protected, values), **values}
        if values and id(node) not in done:
            done.add(id(node))
            _set_in_mapping(edits, node, values, note)
    return edits.apply()


def write_zones(path: str | os.PathLike[str], text: str, *, backup: bool = True) -> Path | None:
    """Replace the zone map at `path` with `text`, once `guide.zones.load_zones`
    accepts it; the old file is kept beside it as NAME.bak (returned) when
    `backup`. The file is swapped in whole: a crash leaves the old or the
    new one, never half of each (and the next write removes the temporary
    files a killed one left, `guide.files.temporary`). A zone map reached through a symbolic link
    is replaced where the link points (the link stays a link)."""
    from guide.zones import load_zones

    given = Path(path)
    real = Path(os.path.realpath(given))
    saved = real.with_name(real.name + ".bak") if backup else None
    if saved is not None and saved.exists() and not saved.is_file():
        raise GuideError(f"{saved}: is not a file, so the previous zone map cannot be kept "
                         "there; move it away and run again")
    raw = real.read_bytes()
    # CRLF if most lines of the old file end so (a file saved on Windows)
    if raw.count(b"\r\n") * 2 > raw.count(b"\n"):
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    data = text.encode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
    # loaded beside the name it is known by, so tracks_dir resolves as for it
    try:
        with temporary(given) as tmp:
            tmp.write_bytes(data)
            load_zones(tmp)
    except OSError as e:  # a full disk, a read-only folder
        raise GuideError(f"{given}: cannot write it ({e.strerror or e}); it is as it was") from None
    except ZoneMapError as e:
        raise ZoneMapError([Problem(file=str(given), message=(
            "the edited zone map would not load, so it was not written (a bug in "
            f"the guide; please report it with the file): {p.message}")) for p in e.problems]) from None
    try:
        if saved is not None:
            shutil.copy2(real, saved)
        replace_whole(real, [data], durable=True)
        sync_folder(real)
    except OSError as e:
        raise GuideError(f"{given}: cannot write it ({e.strerror or e}); it is as it was") from None
    return saved


# --------------------------------------------------------------------------

def _compose(text: str, file: str) -> MappingNode:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ZoneMapError([Problem(file=file, line=mark.line + 1 if mark else None,
                                    message=f"cannot be edited, it is not valid YAML ({e}); "
                                            "fix it (guide check shows how) and run again")]) from None
    if not isinstance(root, MappingNode):
        raise ZoneMapError([Problem(file=file, message="is not a zone map (no 'key: value' "
                                                       "lines at the top level)")])
    return root


class _Edits:
    """Replacements of spans of the original text, applied all at once."""

    def __init__(self, text: str, file: str = "zones.yaml"):
        self.text = text
        self.file = file
        self._edits: list[tuple[int, int, str]] = []
        self._aliases: list[tuple[int, int, str]] | None = None

    def _alias_spans(self) -> list[tuple[int, int, str]]:
        if self._aliases is None:
            self._aliases = [(e.start_mark.index, e.end_mark.index, e.anchor)
                             for e in yaml.parse(self.text, Loader=yaml.SafeLoader)
                             if isinstance(e, yaml.AliasEvent)]
        return self._aliases

    def alias_after(self, index: int) -> tuple[int, int]:
        """The span of the first *alias written after `index`."""
        spans = self._alias_spans()
        start, end, _ = spans[bisect.bisect_left(spans, (index, 0, ""))]
        return start, end

    def aliases_of(self, anchor: str) -> list[int]:
        """The lines (1-based) where *`anchor` is written."""
        return [self.text.count("\n", 0, start) + 1 for start, _, name in self._alias_spans()
                if name == anchor]

    def replace(self, start: int, end: int, new: str) -> None:
        self._edits.append((start, end, new))

    def insert(self, at: int, new: str) -> None:
        self._edits.append((at, at, new))

    def apply(self) -> str:
        out = self.text
        # from the end, so earlier positions stay valid; inserts at one place keep their order
        for start, end, new in sorted(self._edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + new + out[end:]
        return out

    def line_end(self, index: int) -> int:
        """Index of the newline ending the line that holds `index` (or len)."""
        n = self.text.find("\n", index)
        return len(self.text) if n < 0 else n

    def line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1


def _own(node: MappingNode) -> dict[str, tuple[Node, Node]]:
    """A mapping's own 'key: value' entries (not those merged with '<<')."""
    return {k.value: (k, v) for k, v in node.value
            if isinstance(k, ScalarNode) and k.tag != _MERGE}


def _merged(node: MappingNode, key: str) -> Node | None:
    """The value of `key` that '<<: *anchor' gives `node`, if any."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.tag == _MERGE:
            for source in (v.value if isinstance(v, SequenceNode) else [v]):
                if isinstance(source, MappingNode):
                    found = _own(source).get(key)
                    if found is not None:
                        return found[1]
                    deeper = _merged(source, key)
                    if deeper is not None:
                        return deeper
    return None


def _exhibit_nodes(root: MappingNode) -> dict[str, MappingNode]:
    entry = _own(root).get("exhibits")
    out: dict[str, MappingNode] = {}
    if entry is None or not isinstance(entry[1], SequenceNode):
        return out
    for item in entry[1].value:
        if isinstance(item, MappingNode):
            ident = _own(item).get("id")
            if ident is not None and isinstance(ident[1], ScalarNode):
                out[ident[1].value] = item
    return out


def _is_alias(key: Node, value: Node) -> bool:
    """Whether `value` is written as an *alias: the node is where its &anchor
    is, before its key (a value written in place comes after its key)."""
    return value.start_mark.index < key.end_mark.index


def _entries(mapping: MappingNode) -> dict[str, tuple[MappingNode, Node]]:
    """Every 'key: value' of a mapping, its own first, then those merged with
    '<<', each with the mapping it is written in."""
    out: dict[str, tuple[MappingNode, Node]] = {}
    for source in (mapping, *_sources(mapping)):
        for k, (_, v) in _own(source).items():
            out.setdefault(k, (source, v))
    return out


def _changing(text: str, mapping: MappingNode, values: Mapping[str, str]) -> set[str]:
    """The keys of `values` (as written) that change `mapping`'s own entries:
    a value written again as it is changes nothing another mapping sharing
    it could see."""
    own = _own(mapping)
    return {k for k, v in values.items() if k not in own or _value_source(text, own[k][1]) != v}


def _written(text: str, mapping: Node) -> dict[str, str]:
    """A trigger mapping's values, own and merged, as written (for a copy)."""
    if not isinstance(mapping, MappingNode):
        return {}
    return {k: _value_source(text, v) for k, (_, v) in _entries(mapping).items()}


def _pins(edits: _Edits, mapping: MappingNode, protected: Mapping[int, set[str]],
          values: Mapping[str, str]) -> dict[str, str]:
    """The values `mapping` takes with '<<' whose keys are being changed
    (`protected`: id -> keys) in a mapping it merges, at any depth (where
    the value comes from the mapping edited or from one that mapping merges,
    which the key added there would override), as written: to write into
    it, so that it keeps them. ZoneMapError if a key added there would reach
    it: it has no value of its own to keep."""
    entries = _entries(mapping)
    # a key changing in any mapping merged, at any depth: a value it gives
    # (itself or a mapping it merges) would reach this one
    changing = set().union(*(protected.get(id(m), ()) for m in _sources(mapping)))
    pins = {k: _value_source(edits.text, v) for k, (source, v) in entries.items()
            if source is not mapping and k in changing and k not in values}
    for source in _sources(mapping):
        added = [k for k in protected.get(id(source), ()) if k not in entries and k not in values]
        if added:
            line = mapping.start_mark.line + 1
            why = ("for that exhibit alone" if PER_EXHIBIT.issuperset(added) else
                   "(site-wide settings, which an exhibit's trigger cannot hold)")
            raise ZoneMapError([Problem(file=edits.file, line=line, message=(
                f"this trigger takes values with '<<' from the trigger at line "
                f"{source.start_mark.line + 1}, and the edit adds {', '.join(sorted(added))} there "
                f"{why}, which would reach this one too: write the values out "
                "here in place of the '<<' and run again"))])
    return pins


def _sources(mapping: MappingNode, seen: frozenset[int] = frozenset()) -> list[MappingNode]:
    """The mappings merged into `mapping` with '<<', at any depth."""
    out = []
    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.tag == _MERGE:
            for source in (v.value if isinstance(v, SequenceNode) else [v]):
                if isinstance(source, MappingNode) and id(source) not in seen | {id(mapping)}:
                    out += [source, *_sources(source, seen | {id(mapping)})]
    return out


def _shares(mapping: Node, protected: Mapping[int, set[str]]) -> bool:
    """Whether `mapping` is, or merges, one whose keys are being changed."""
    return isinstance(mapping, MappingNode) and any(
        protected.get(id(m)) for m in (mapping, *_sources(mapping)))


def _value_source(text: str, node: Node) -> str:
    """A value as written, without the &anchor it may define (a copy must not
    define it again)."""
    return re.sub(r"\A&[^\s]+\s*", "", _source(text, node))


def _formatted(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: format_value(v) for k, v in values.items()}


def _flow(values: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def _comment(note: str | None) -> str:
    return f"  # {note}" if note else ""


def _source(text: str, node: Node) -> str:
    return text[node.start_mark.index:node.end_mark.index]


def _set_in_mapping(edits: _Edits, mapping: MappingNode, values: dict[str, str],
                    note: str | None = None) -> None:
    """Write `values` (as written in YAML) into an existing trigger mapping, in
    its own style. A comment this module wrote on its line ('# guide ...')
    gets the new `note`."""
    _renote(edits, mapping, note)
    own = _own(mapping)
    added: dict[str, str] = {}
    for name, value in values.items():
        if name not in own:
            added[name] = value
            continue
        k, v = own[name]
        if _is_alias(k, v):  # `name: *a`: this one gets a value of its own; &a is left alone
            edits.replace(*edits.alias_after(k.end_mark.index), value)
            continue
        anchor = re.match(r"&([^\s]+)\s*", _source(edits.text, v))
        if anchor and edits.aliases_of(anchor[1]):
            raise ZoneMapError([Problem(file=edits.file, line=v.start_mark.line + 1, message=(
                f"{name} is written with the anchor &{anchor[1]}, which *{anchor[1]} shares at line "
                f"{', '.join(map(str, edits.aliases_of(anchor[1])))}; the edit changes {name} here "
                f"alone: write the value out in place of each *{anchor[1]} and run again"))])
        # `level:` or `level: &l` with nothing after it (null: automatic) gets the space it lacks
        start = v.start_mark.index + (anchor.end() if anchor else 0)
        edits.replace(start, v.end_mark.index,
                      ("" if edits.text[start - 1].isspace() else " ") + value)
    if not added:
        return
    if mapping.flow_style:
        _flow_append(edits, mapping, ", ".join(f"{k}: {v}" for k, v in added.items()))
        return
    # after the last entry, '<<' included (a mapping may hold nothing else),
    # at the column of the first (of its '?' when it is written `? key`)
    first = mapping.value[0][0]
    column = first.start_mark.column
    lead = edits.text[edits.line_start(first.start_mark.index):first.start_mark.index]
    if lead.strip().startswith("?"):
        column = len(lead) - len(lead.lstrip())
    at = edits.line_end(_last_end(edits, mapping))
    edits.insert(at, "".join(f"\n{' ' * column}{k}: {v}" for k, v in added.items()))


def _last_end(edits: _Edits, mapping: MappingNode) -> int:
    """Where the last entry of a non-empty `mapping` ends; an *alias ends
    where it is written, not where its &anchor is."""
    return max(_entry_end(edits, k, v) for k, v in mapping.value)


def _entry_end(edits: _Edits, key: Node, value: Node) -> int:
    """Where the entry `key: value` ends; an *alias ends where it is
    written, not where its &anchor is (in another exhibit, say)."""
    return edits.alias_after(key.end_mark.index)[1] if _is_alias(key, value) else _end(edits, value)


def _end(edits: _Edits, node: Node) -> int:
    """Where a value ends: a block collection (``ibeacon:`` and its lines)
    where its last entry does; PyYAML ends it where the next token starts,
    past the comments and blank lines after it."""
    if not getattr(node, "flow_style", True) and node.value:
        return (_last_end(edits, node) if isinstance(node, MappingNode)
                else _end(edits, node.value[-1]))
    return node.end_mark.index


def _flow_append(edits: _Edits, mapping: MappingNode, entries: str) -> None:
    """`entries` ('k: v, k: v') written at the end of the flow mapping
    `mapping`, after a comma unless it is empty or already ends with one
    (``{dwell: 4, }``, which YAML allows)."""
    close = mapping.end_mark.index - 1  # the '}'
    rest = re.sub(r"#[^\n]*", "", edits.text[_last_end(edits, mapping):close]) if mapping.value else ","
    edits.insert(close, ("" if "," in rest else ", ") + entries)


def _renote(edits: _Edits, mapping: MappingNode, note: str | None) -> None:
    """`note` as the comment of a one-line ``trigger: {...}``: added when the
    line has none, replacing one this module wrote ('# guide ...'), never
    replacing a comment of the staff's."""
    if mapping.flow_style:
        _note_after(edits, mapping.end_mark.index, note)


def _note_after(edits: _Edits, end: int, note: str | None) -> None:
    """`note` as the comment of the line where a one-line value ends at `end`
    (as for `_renote`)."""
    if not note:
        return
    eol = edits.line_end(end)
    rest = edits.text[end:eol]
    hash_ = rest.find("#")
    if hash_ < 0 and not rest.strip():
        edits.insert(end + len(rest.rstrip()), f"  # {note}")
    elif hash_ >= 0 and rest[hash_:].startswith("# guide ") and not rest[:hash_].strip(" ,"):
        edits.replace(end + hash_, eol, f"# {note}")


def _set_own(edits: _Edits, key: Node, node: Node, values: dict[str, str], note: str | None,
             protected: Mapping[int, set[str]]) -> None:
    """Write `values` (may be none) into the trigger `key: node` of the site
    or an exhibit; if it shares a mapping whose `protected` keys change
    elsewhere, write out the values it had."""
    if _is_alias(key, node):
        # `trigger: *t`: the &t mapping is another trigger's too; give this
        # one a copy of its own in place of the alias
        if values or _shares(node, protected):
            start, end = edits.alias_after(key.end_mark.index)
            edits.replace(start, end, _flow({**_written(edits.text, node), **values}))
            _note_after(edits, end, note)
        return
    if isinstance(node, MappingNode):
        pins = _pins(edits, node, protected, values)
        if values or pins:
            _set_in_mapping(edits, node, {**pins, **values}, note)
        return
    # `trigger:` with nothing after it: give it the whole mapping
    if values:
        edits.replace(node.start_mark.index, node.end_mark.index,
                      (" " if not _source(edits.text, node) else "") + _flow(values))


def _set_exhibit(edits: _Edits, exhibit: MappingNode, values: dict[str, str],
                 note: str | None, protected: Mapping[int, set[str]]) -> None:
    own = _own(exhibit)
    if "trigger" in own:
        _set_own(edits, *own["trigger"], values, note, protected)
        return
    # No trigger of its own. One merged from an anchor would be replaced
    # whole by the exhibit's own, so carry its values over.
    inherited = _merged(exhibit, "trigger")
    if not values and not (inherited is not None and _shares(inherited, protected)):
        return
    written = {**_written(edits.text, inherited), **values} if inherited is not None else values
    if exhibit.flow_style:
        _flow_append(edits, exhibit, f"trigger: {_flow(written)}")
        return
    column = min(k.start_mark.column for k, _ in own.values())
    # after `radius:` (what the settings refine), else after the last one-line value
    anchor = own.get("radius")
    if anchor is None or not isinstance(anchor[1], ScalarNode):
        singles = [(k, v) for k, v in own.values() if isinstance(v, ScalarNode)
                   or getattr(v, "flow_style", False)]
        anchor = max(singles, key=lambda kv: _entry_end(edits, *kv)) if singles else None
    if anchor is None:  # every value is a block collection: before the first key
        first = min(k.start_mark.index for k, _ in own.values())
        edits.insert(edits.line_start(first) + column,
                     f"trigger: {_flow(written)}{_comment(note)}\n{' ' * column}")
        return
    at = edits.line_end(_entry_end(edits, *anchor))
    edits.insert(at, f"\n{' ' * column}trigger: {_flow(written)}{_comment(note)}")


def _set_site(edits: _Edits, root: MappingNode, values: dict[str, str], note: str | None,
              protected: Mapping[int, set[str]]) -> None:
    own = _own(root)
    if "trigger" in own:
        _set_own(edits, *own["trigger"], values, note, protected)
        return
    if not values:
        return
    line = f"trigger: {_flow(values)}{_comment(note)}"
    if root.flow_style:
        _flow_append(edits, root, line.split("  #")[0])
        return
    # before `beacons:` or `exhibits:`, whichever comes first, and above the
    # comments that introduce it (they belong to it, not to the trigger)
    keys = [k for name, (k, _) in own.items() if name in ("beacons", "exhibits")]
    if not keys:
        edits.insert(len(edits.text), ("" if edits.text.endswith("\n") else "\n") + line + "\n")
        return
    lines = edits.text.split("\n")
    row = min(k.start_mark.line for k in keys)
    column = keys[0].start_mark.column
    top = row
    while top > 0 and (not lines[top - 1].strip() or lines[top - 1].lstrip().startswith("#")):
        top -= 1
    while top < row and not lines[top].strip():
        top += 1  # keep the blank lines that separate it from what comes before
    at = sum(len(x) + 1 for x in lines[:top])
    gap = "\n" if top < row else ""  # a blank line between it and the comments that follow
    edits.insert(at, " " * column + line + "\n" + gap)
