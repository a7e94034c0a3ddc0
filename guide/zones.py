"""Read zones.yaml into a `guide.site.Site`, reporting every problem at once.

    >>> site = load_zones("/work/shared/data/gallery-sample/zones.yaml")
    >>> site.languages
    ('en', 'fr')
    >>> site.track_for("coin-1", "fr")
    ('fr', 'fr/coin-1.wav')

The format is zones.yaml of FORMATS.md, plus these optional keys::

    fallback: {nl: [en, fr]}        # language -> languages to try next, in order
    walls: [[[0, 0], [40, 0]]]      # wall segments [[x, y], [x, y]], metres
    trigger: {dwell: 4.0}           # site-wide engine settings (guide.settings)
    intro: {fr: fr/_intro.opus}     # language -> track played before the first exhibit
    exhibits:
      - id: coin-1
        x: 30.0                     # where visitors stand (default: the beacon)
        y: 8.5
        trigger: {dwell: 6.0}       # this exhibit's own (per-exhibit settings only)

How it reads: the YAML is *composed* with the safe loader (never constructed
into Python objects by PyYAML), so every node keeps its line and column, and
this module walks the node tree itself. Every problem found is collected and
the load fails once, with a `ZoneMapError` that lists them all in file order,
each naming the line, the key and the fix. No Site exists until the whole file
is valid, so nothing downstream meets a half-checked zone map.

Choices made here, for staff writing the file:
- Text is taken as written: ``languages: [no]`` is Norwegian, not false, and a
  beacon keyed ``100`` has the id "100". Numbers must be numbers: ``"3.0"``
  in quotes is refused, as are true/false. Unquoted, ``1e3`` and ``1e-9`` are
  numbers (YAML 1.1, hence PyYAML, reads them as text: it wants ``1.0e+3``);
  ``1:40``, a base-60 number to YAML 1.1 (100), is refused as a number, as
  is ``010`` (octal 8 to YAML 1.1; a beacon's minor written so was never heard)
  and ``1_0`` (10 to YAML 1.1); digits are 0-9, not another script's (``١٠``).
- A type tag the guide does not read (``!!set``, ``!!binary``, ``!!python/tuple``)
  is refused on any value, a mapping or list too, not ignored; ``!!str`` makes
  a value text, so ``radius: !!str 2`` is refused as ``radius: "2"`` is.
- Text holds no control character, not even a tab or a line break: ids,
  names, titles, languages and paths are each shown on one line, where an
  escape written in double quotes (``"\\e[31m"``, ``"\\0"``) would garble the
  terminal. The values of ``x-`` keys (below) are not read, so not checked.
  Nor does the file hold the line breaks of YAML 1.1 that editors show within
  a line (U+0085, U+2028, U+2029): YAML would end a comment there and read
  the rest of the line, and line numbers would not be an editor's.
- Coordinates are within 100 km of the origin and a radius at most 100 m: no
  real site is larger, and a BLE beacon is not heard farther.
- Fallback: a language with no ``fallback`` entry falls back to every other
  declared language in the order of ``languages`` (so the default language,
  the first, comes first). An explicit entry replaces that chain for its
  language; ``nl: []`` means "no fallback: say there is no track".
- An exhibit's ``trigger`` values override the site's ``trigger`` values for
  that exhibit only; ``Exhibit.trigger`` is the merged result.
- Top-level keys beginning with ``x-`` are ignored: a place to keep YAML
  anchors that beacons or exhibits share through ``<<:`` merge keys.
- An exhibit's ``tracks`` may be ``{}`` (its narrations not recorded yet): it
  loads, and plays nothing in any language; the key itself is required.
- ``intro`` tracks are checked like exhibit tracks (a declared language, a
  file inside tracks_dir); a language without one is simply not spoken to.
- The mappings in the Site (beacons, fallback, titles, tracks, intro) are `FrozenDict`:
  real dicts (JSON and pickle work) that refuse to be changed.
"""

from __future__ import annotations

import difflib
import errno
import math
import os
import re
import stat
import types
import typing
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from guide.csvlog import (MAX_COORDINATE, NotRegular, control_char, looped, number_hint, open_input,
                          plain_float, utf16, visible)
from guide.csvlog import short as _short
from guide.errors import Problem, ZoneMapError, counted
from guide.settings import SETTINGS, TriggerSettings
from guide.site import Beacon, Eddystone, Exhibit, IBeacon, Segment, Site

__all__ = ["FrozenDict", "load_zones"]


class FrozenDict(dict):
    """A dict that cannot be changed after it is made.

    Still a dict, so `json.dumps`, `pickle` and `copy.deepcopy` work on a Site:

        >>> d = FrozenDict({"en": "en/dome.ogg"})
        >>> d["fr"] = "fr/dome.ogg"
        Traceback (most recent call last):
        TypeError: FrozenDict is read-only
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> typing.NoReturn:
        raise TypeError("FrozenDict is read-only")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle would otherwise rebuild us item by item through __setitem__
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def load_zones(path: str | os.PathLike[str], *, intro: bool = True) -> Site:
    """Read and check a zone map; raise ZoneMapError listing every problem.

    `intro=False` leaves out the ``intro:`` key, unread and unchecked (the Site
    has no intro): for tracks/make_tracks.py, which makes the intro tracks from
    the rest of the map, so a missing intro file cannot stop it making them."""
    if not os.fspath(path):  # Path("") is ".", the folder it runs in
        raise ZoneMapError([Problem(file="''", line=None, message=(
            "the zone map's path is empty: give the path of its zones.yaml"))])
    path = Path(path)
    file = str(path)  # as the user wrote it: messages should echo their words
    text = _read_text(path, file)
    loader = None
    try:
        loader = _Loader(text)  # reads ahead: a control character can stop it here already
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        raise ZoneMapError([_syntax_problem(file, e)]) from None
    except _TooDeep as e:
        raise ZoneMapError([Problem(
            file=file, line=e.mark.line + 1, column=e.mark.column + 1, message=(
                f"the YAML is nested more than {_MAX_DEPTH} levels deep here: a zone map "
                "needs only a few levels; remove the extra nesting (an unclosed '[' or '{'?)"))]
        ) from None
    except yaml.reader.ReaderError as e:  # a control character: PyYAML gives no mark
        line = text.count("\n", 0, e.position) + 1
        column = e.position - text.rfind("\n", 0, e.position)
        raise ZoneMapError([Problem(
            file=file, line=line, column=column, message=f"the control character "
            f"U+{e.character:04X} cannot appear in a YAML file: delete it")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.surrogates:  # the reader's messages would echo them, and no terminal prints them
        raise ZoneMapError([Problem(
            file=file, line=node.start_mark.line + 1, column=node.start_mark.column + 1,
            message=f"the text holds the escape \\u{ord(_SURROGATE.search(node.value)[0]):04x}, "
            "half of a UTF-16 surrogate pair, which is not valid Unicode text: write the "
            "character itself (or \\U0001F600 for one beyond U+FFFF) or remove the escape")
            for node in loader.surrogates])
    return _Reader(file, path.absolute(), intro=intro).site(root)


_MAX_DEPTH = 100  # levels of nesting; a zone map has 5, and PyYAML composes recursively
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark):
        super().__init__(mark)
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """The safe loader, composing only, refusing what nothing after it could
    handle: nesting deep enough to exhaust Python's stack (_TooDeep, at the
    node that is too deep), and text holding a lone surrogate (a "\\ud800"
    escape in double quotes), which cannot be printed or saved as UTF-8: such
    scalars are collected in `surrogates`."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0
        self.surrogates: list[ScalarNode] = []

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.depth >= _MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_scalar_node(self, anchor: str | None) -> ScalarNode:
        tag = self.peek_event().tag
        node = super().compose_scalar_node(anchor)
        if tag not in (None, "!"):  # an explicit tag: the author's word on the type
            node.explicit = True  # type: ignore[attr-defined]
        if _SURROGATE.search(node.value):
            self.surrogates.append(node)
        return node


# --------------------------------------------------------------------------
# Reading the file and YAML syntax

def _read_text(path: Path, file: str) -> str:
    def fail(message: str, line: int | None = None) -> ZoneMapError:
        return ZoneMapError([Problem(file=file, line=line, message=message)])

    if path.is_dir():
        raise fail("is a directory, not a zone map: give the path of its zones.yaml")
    try:
        with open_input(path, "rb") as f:
            raw = f.read()
    except NotRegular as e:
        raise fail(f"is {e.kind}, not a regular file: the zone map is read from a file; give "
                   "the path of the zones.yaml file itself") from None
    except FileNotFoundError:
        raise fail("no such file: check the path (the zone map is usually "
                   "zones.yaml beside the tracks/ folder)") from None
    except PermissionError:
        raise fail("cannot be read (permission denied): make it readable "
                   f"(chmod a+r {file})") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise fail(looped(e.filename or path, "zone map")) from None
        raise fail(f"cannot be read ({e.strerror or e}): check the file and the disk") from None
    if utf16(raw):
        raise fail("is UTF-16 text (Notepad's 'Unicode'), not UTF-8: save it as UTF-8 "
                   "(in Notepad: File, Save As, Encoding: UTF-8)", 1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1  # lines as YAML ends them
        raise fail(f"is not UTF-8 text (byte 0x{raw[e.start]:02x}): save it as UTF-8",
                   line) from None
    odd = _ODD_BREAK.search(text)
    if odd:  # YAML ends a line there, an editor does not: the lines would differ
        at = odd.start()
        raise ZoneMapError([Problem(
            file=file, line=text.count("\n", 0, at) + 1, column=at - text.rfind("\n", 0, at),
            message=f"the character U+{ord(odd[0]):04X} ({_ODD_BREAK_NAMES[odd[0]]}) ends a line "
            "for YAML but not in an editor, so what the file shows is not what it says (a "
            "comment going on as YAML): delete it, or start a new line")])
    return text


# Line breaks of YAML 1.1 besides \n and \r, which editors show within a line
_ODD_BREAK = re.compile("[\x85\u2028\u2029]")
_ODD_BREAK_NAMES = {"\x85": "next line, NEL", "\u2028": "line separator",
                    "\u2029": "paragraph separator"}


_SYNTAX_HINTS = (
    ("found character '\\t'", "indent with spaces, not tabs"),
    ("found duplicate anchor", "give each &anchor its own name"),
    ("found undefined alias", "define the &anchor before the *alias that uses it"),
    ("but found another document", "keep one document: remove the '---' or '...' line"),
    ("mapping values are not allowed here",
     "a value containing ': ' must be quoted, or a key is indented wrongly"),
    ("could not find expected ':'", "each key needs a ':' after it; check the indentation"),
)


def _syntax_problem(file: str, e: yaml.MarkedYAMLError) -> Problem:
    mark = e.problem_mark or e.context_mark
    what = e.problem or "unreadable YAML"  # may quote an anchor or a tag: cut below
    if e.context and e.context_mark and e.context_mark is not mark:
        what += f" ({e.context} at line {e.context_mark.line + 1})"
    what = _short(what, 200)
    hint = next((h for key, h in _SYNTAX_HINTS if key in what),
                "fix the YAML syntax here (indentation, a missing ':', an unclosed "
                "bracket or quote)")
    return Problem(file=file, line=mark.line + 1 if mark else None,
                   column=mark.column + 1 if mark else None,
                   message=f"YAML syntax error: {what}: {hint}")


# --------------------------------------------------------------------------
# Checking the node tree

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _YAML + "map", _YAML + "seq"
_PLAIN_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _YAML + "timestamp"})

_ID = re.compile(r"[a-z0-9-]+\Z")  # FORMATS.md: "lower-case letters, digits, '-'"
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_HEX = re.compile(r"[0-9a-f]*\Z")

# Bounds no real site comes near: further out, a number is a typing slip (or a
# fuzzer), and the geometry of `guide lint` and `guide map` overflows. Walks
# share the coordinate bound (guide.csvlog).
MAX_RADIUS = 100.0  # m: a BLE beacon is not heard reliably much farther
_COORD_WHY = ("site coordinates in metres, from a corner of the site (no site is "
              "100 km across)")
_RADIUS_WHY = ("the distance in metres within which a visitor is at it (a BLE beacon "
               "is not heard reliably beyond about 100 m)")

_TOP_REQUIRED = ("site", "languages", "beacons", "exhibits")
_TOP_OPTIONAL = ("tracks_dir", "fallback", "walls", "trigger", "intro")
_BEACON_REQUIRED = ("tx_power", "x", "y")
_BEACON_OPTIONAL = ("ibeacon", "eddystone")
_EXHIBIT_REQUIRED = ("id", "title", "beacon", "radius", "tracks")
_EXHIBIT_OPTIONAL = ("x", "y", "trigger")

# What to write when a required key is missing, shown in the message.
_EXAMPLES = {
    "site": "site: La Coupole",
    "languages": "languages: [fr, en]  (the first is the default)",
    "beacons": "beacons: {dome-n: {ibeacon: {...}, tx_power: -59, x: 12.0, y: 30.5}}",
    "exhibits": "exhibits: [{id: dome, title: {fr: La coupole}, beacon: dome-n, "
                "radius: 3.0, tracks: {fr: fr/dome.ogg}}]",
    "tx_power": "tx_power: -59  (RSSI measured 1 m from the beacon, dBm)",
    "x": "x: 12.0  (metres, site coordinates)",
    "y": "y: 30.5  (metres, site coordinates)",
    "id": "id: dome  (lower-case letters, digits and '-')",
    "title": "title: {fr: La coupole, en: The dome}",
    "beacon": "beacon: dome-n  (a key of beacons:)",
    "radius": "radius: 3.0  (metres; a visitor this close is at the exhibit)",
    "tracks": "tracks: {fr: fr/dome.ogg}  (relative to tracks_dir)",
    "uuid": "uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e",
    "major": "major: 100  (0 to 65535)",
    "minor": "minor: 1  (0 to 65535)",
    "namespace": 'namespace: "edd1ebeac04e5defa017"  (20 hex digits)',
    "instance": 'instance: "0123456789ab"  (12 hex digits)',
}


class _Entry(NamedTuple):
    key: Node
    value: Node


class _Entries(dict[str, _Entry]):
    """The entries of a mapping, keyed by their text, and in `meant` each
    allowed key absent from it that an unknown key was taken for (the key ->
    the misspelt key's node): that key's one problem is the misspelling,
    already reported, so it is not reported missing too, nor its default
    (tracks/, the beacon's position) looked for."""

    def __init__(self, entries: dict[str, _Entry], meant: dict[str, Node]):
        super().__init__(entries)
        self.meant = meant


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _kind(node: Node) -> str:
    """How a node reads to someone who wrote it, for 'must be X, not Y'."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "empty"
    if node.tag == _BOOL:
        return f"true/false ({_short(node.value)})"
    if node.tag in (_INT, _FLOAT):
        return f"the number {_short(node.value)}"
    return f"the text {_echo(node.value)!r}"


def _fmt(x: float) -> str:
    if isinstance(x, int) and abs(x) >= 10**16:  # beyond a float: f"{x:g}" overflows
        return f"a {len(str(abs(x)))}-digit number"
    return f"{x:.10g}"  # not 6 digits: -100000.5 is not -100000


def _echo(text: str) -> str:
    """Text the user wrote, for a message: cut short if it is long (a whole
    CSV file given as the zone map is one plain scalar)."""
    return _short(text, 60)


_SETTING_TYPES = typing.get_type_hints(TriggerSettings)


def _type_of(name: str) -> tuple[type, bool]:
    """(float, int, bool or str; whether None is allowed) of a TriggerSettings field."""
    hint = _SETTING_TYPES[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    base = next(a for a in args if a is not type(None))
    return base, type(None) in args


class _Reader:
    """Walks the composed node tree, collecting Problems, then builds the Site."""

    def __init__(self, file: str, path: Path, *, intro: bool = True):
        self.file = file
        self.path = path
        self.with_intro = intro
        self.problems: list[Problem] = []
        self.languages: tuple[str, ...] | None = None  # None: unusable, skip checks
        self.beacon_ids: set[str] | None = None  # every key under beacons:, valid or not
        self._constructor = yaml.constructor.SafeConstructor()
        self._merged: dict[int, dict[str, _Entry]] = {}  # id of a '<<' source -> its entries

    # -- reporting ---------------------------------------------------------

    def fail(self, node: Node, message: str) -> None:
        mark = node.start_mark
        message = visible(message)  # a value echoed as written (`!!int "\e"`): never raw
        self.problems.append(Problem(file=self.file, line=mark.line + 1,
                                     column=mark.column + 1, message=message))

    def raise_if_any(self) -> None:
        if self.problems:
            unique = list(dict.fromkeys(self.problems))  # a merged anchor can repeat one
            unique.sort(key=lambda p: (p.line or 0, p.column or 0))
            raise ZoneMapError(unique)

    # -- node shapes ---------------------------------------------------------

    def mapping(self, node: Node, where: str, *, required: tuple[str, ...] = (),
                optional: tuple[str, ...] | None = None, what: str = "",
                extensions: bool = False, each: str = "") -> _Entries | None:
        """The entries of a mapping node, keyed by their text. `optional=None`
        means any key is allowed (ids, languages); otherwise unknown keys are
        reported with a guess at what was meant. `extensions`: ignore x- keys.
        A guess that is a required key not given is that key's one problem:
        the unknown key says so ("every exhibit needs one", `each` naming
        who needs it) and the key is not also reported missing."""
        if not isinstance(node, MappingNode):
            self.fail(node, f"{where} must be a mapping of 'key: value' lines, not "
                      f"{_kind(node)}{': ' + what if what else ''}")
            return None
        if node.tag != _MAP:  # `!!set`, `!!python/object:...`: not ignored, as for a scalar
            self.tagged(node, where)
            return None
        entries = self._entries(node, where, set())
        meant: dict[str, Node] = {}
        if optional is not None:
            allowed = (*required, *optional)
            for key, entry in entries.items():
                if key in allowed or (extensions and key.startswith("x-")):
                    continue
                guess = _did_you_mean(key, allowed)
                needed = ""
                if guess is not None and guess not in entries:
                    meant.setdefault(guess, entry.key)
                    if guess in required:
                        needed = f" ({each or where} needs one)"
                self.fail(entry.key, f"unknown key '{_echo(key)}' in {where}: " + (
                    f"did you mean '{_echo(guess)}'?{needed}" if guess else
                    f"the keys allowed here are {', '.join(allowed)}"))
        for key in required:
            if key not in entries and key not in meant:
                self.fail(node, f"{where} is missing '{key}': add it, e.g. "
                          f"{_EXAMPLES.get(key, key + ': ...')}")
        return _Entries(entries, meant)

    def _entries(self, node: MappingNode, where: str, merging: set[int]) -> dict[str, _Entry]:
        merging.add(id(node))  # an anchor can merge itself: `a: &a {<<: *a}`
        entries: dict[str, _Entry] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _YAML + "merge":
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag == _NULL:
                self.fail(key_node, f"a key in {where} is {_kind(key_node)}: "
                          "keys must be plain names")
                continue
            key = key_node.value
            c = control_char(key)
            if c:
                self.fail(key_node, f"a key in {where} {_echo(key)!r} {_unprintable(c)}")
                continue
            if key in entries:
                first = entries[key].key.start_mark.line + 1
                self.fail(key_node, f"duplicate key '{_echo(key)}' in {where} (first at line "
                          f"{first}): YAML would silently keep only the last one; "
                          "remove or rename one of them")
                continue
            entries[key] = _Entry(key_node, value_node)
        # `<<: *anchor` (or a list of them) fills in keys not given explicitly
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.fail(source, f"'<<' in {where} must merge a mapping (*anchor), "
                              f"not {_kind(source)}")
                    continue
                if id(source) in merging:
                    self.fail(source, f"'<<' in {where} merges a mapping into itself: "
                              "merge another anchor")
                    continue
                # read once: anchors each merging the one before it twice would
                # otherwise be read 2**n times (a file of 30 lines that never loads)
                merged = self._merged.get(id(source))
                if merged is None:
                    merged = self._merged[id(source)] = self._entries(source, where, merging)
                for key, entry in merged.items():
                    entries.setdefault(key, entry)
        merging.discard(id(node))
        return entries

    def sequence(self, node: Node, where: str, example: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.fail(node, f"{where} must be a list, not {_kind(node)}: e.g. {example}")
            return None
        if node.tag != _SEQ:  # `!!omap`, `!!python/tuple`
            self.tagged(node, where)
            return None
        return node.value

    def tagged(self, node: Node, where: str) -> None:
        """Report a node the file tags with a type the guide does not read."""
        tag = "!!" + node.tag[len(_YAML):] if node.tag.startswith(_YAML) else node.tag
        self.fail(node, f"{where} has the YAML tag {_echo(tag)}, which the guide does "
                  "not read: remove the tag")

    def scalar_ok(self, node: Node, where: str, wanted: str) -> bool:
        if isinstance(node, ScalarNode) and node.tag in _PLAIN_TAGS and node.tag != _NULL:
            return True
        if isinstance(node, ScalarNode) and node.tag not in _PLAIN_TAGS:
            self.tagged(node, where)
        else:
            self.fail(node, f"{where} must be {wanted}, not {_kind(node)}")
        return False

    def text(self, node: Node, where: str, wanted: str = "text") -> str | None:
        """The scalar exactly as written (see the module docstring), holding
        no control character; a block scalar (`>` or `|`, the text on the
        lines below its key) without the line break YAML keeps at its end."""
        if not self.scalar_ok(node, where, wanted):
            return None
        value = node.value.rstrip("\n") if node.style in (">", "|") else node.value
        if not value.strip():
            self.fail(node, f"{where} is empty: it must be {wanted}")
            return None
        c = control_char(value)
        if c:
            self.fail(node, f"{where} {_echo(value)!r} {_unprintable(c)}")
            return None
        return value

    def path_text(self, node: Node, where: str, wanted: str) -> str | None:
        """Text naming a file or folder (no NUL, which no file name can hold:
        `text` refuses every control character)."""
        return self.text(node, where, wanted)

    def number(self, node: Node, where: str, *, unit: str = "", integer: bool = False,
               lo: float | None = None, hi: float | None = None,
               positive: bool = False, why: str = "") -> float | None:
        wanted = "a whole number" if integer else "a number"
        suffix = f": {why}" if why else ""
        unit_s = f" {unit}" if unit else ""
        bounds = (f"between {_fmt(lo)} and {_fmt(hi)}" if lo is not None and hi is not None
                  else f"at least {_fmt(lo)}" if lo is not None
                  else f"at most {_fmt(hi)}" if hi is not None else "")
        plain = isinstance(node, ScalarNode) and node.style is None
        value: float
        if plain and _LEADING_ZERO.match(node.value):  # YAML 1.1: 010 is octal 8, and 08 is text
            digits = node.value.replace("_", "")
            octal = ("does not read it as a number" if set(digits.lstrip("+-")) & {"8", "9"}
                     else f"reads it as the octal number {int(digits, 8)}" if len(digits) <= 24
                     else "reads it as an octal number")
            meant = digits.lstrip("+-").lstrip("0") or "0"  # not int(): 5000 digits overflow str()
            meant = ("-" if digits.startswith("-") and meant != "0" else "") + meant
            self.fail(node, f"{where} {_short(node.value)}: with its leading zero, YAML 1.1 "
                      f"{octal}; write {_short(meant)} if that is what you meant")
            return None
        if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
            try:
                value = (self._constructor.construct_yaml_int(node) if node.tag == _INT
                         else self._constructor.construct_yaml_float(node))
            except (ValueError, IndexError):  # `!!int 1e9`, more digits than Python will
                # read, or `!!int ""` (PyYAML looks at the sign of no digit: IndexError)
                if not node.value.strip(" _"):
                    self.fail(node, f"{where} must be {wanted}, not the empty text "
                              f"{node.value!r}{suffix}")
                    return None
                self.fail(node, f"{where} must be {bounds + unit_s if bounds else wanted}, "
                          f"not {_short(node.value)}{suffix}")
                return None
            if "_" in node.value:  # YAML 1.1: 1_0 is 10, 1_2.5 is 12.5
                self.fail(node, f"{where} {_short(node.value)}: YAML 1.1 reads the '_' as a digit "
                          f"separator, so this is {_exact(value)}; write {_exact(value)} if that is "
                          "what you meant")
                return None
            if plain and ":" in node.value:  # YAML 1.1: 1:40 is 1 * 60 + 40
                self.fail(node, f"{where} {_short(node.value)} is read as a base-60 number "
                          f"({_exact(value)}) by YAML 1.1: write {_exact(value)} if that is "
                          "what you meant, else the number you meant, without ':'")
                return None
        elif plain and node.tag == _STR and not _explicit(node) and _looks_numeric(node.value):
            # YAML 1.1 wants a '.' and a signed exponent (1.0e+9), so PyYAML reads
            # 1e9, 1e-9 or 4.0e12 as text; written without quotes, they are numbers
            value = plain_float(node.value)
        elif (isinstance(node, ScalarNode) and node.tag == _STR
              and (node.style in ("'", '"') or _explicit(node)) and _looks_numeric(node.value)):
            fix = "remove " + " and ".join(
                ["the tag !!str"] * _explicit(node) + ["the quotes"] * (node.style in ("'", '"')))
            self.fail(node, f"{where} must be {wanted}, not the text {_short(node.value)!r}: "
                      + fix)
            return None
        else:
            if self.scalar_ok(node, where, wanted):  # bool, text (١٠, 1_0e3), a date...
                hint = number_hint(node.value) if node.tag == _STR else ""
                self.fail(node, f"{where} must be {wanted}, not {_kind(node)}{hint}{suffix}")
            return None
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(node, f"{where} must be " + (
                    f"{bounds}{unit_s}" if math.isinf(value) and bounds else "a finite number")
                    + f", not {_short(node.value)}{suffix}")
                return None
            if integer:
                hint = (f" (write {int(value)})" if value.is_integer() and abs(value) < 1e16
                        else "")
                self.fail(node, f"{where} must be a whole number, not "
                          f"{_short(node.value)}{hint}{suffix}")
                return None
        # a float as written: 1e-400 reads as 0.0, and "not 0" would puzzle its writer
        shown = _short(node.value) if isinstance(value, float) else _fmt(value)
        if positive and value <= 0:
            self.fail(node, f"{where} must be greater than 0, not {shown}{suffix}")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(node, f"{where} must be {bounds}{unit_s}, not {shown}{suffix}")
            return None
        return value

    def coordinate(self, node: Node, where: str) -> float | None:
        """A site coordinate, metres within MAX_COORDINATE of the origin."""
        return self.number(node, where, unit="m", lo=-MAX_COORDINATE, hi=MAX_COORDINATE, why=_COORD_WHY)

    def language(self, node: Node, where: str) -> str | None:
        """A language code that must be one of `languages:`."""
        lang = self.text(node, where, "a language code")
        if lang is None or self.languages is None:
            return lang
        if lang not in self.languages:
            guess = _did_you_mean(lang, self.languages)
            self.fail(node, f"{where}: '{_echo(lang)}' is not one of the site's languages "
                      f"({', '.join(self.languages)}): " + (
                          f"did you mean '{_echo(guess)}'? Or add" if guess else "add") +
                      f" '{_echo(lang)}' to languages:")
            return None
        return lang

    def ident(self, node: Node, where: str) -> str | None:
        value = self.text(node, where, "an id")
        if value is None:
            return None
        if not _ID.match(value):
            # accents dropped ('bobinés' -> 'bobines'), anything else another letter
            plain = unicodedata.normalize("NFKD", value.lower()).encode("ascii", "ignore").decode()
            fixed = re.sub(r"[^a-z0-9-]+", "-", plain).strip("-") or "dome-n"
            self.fail(node, f"{where} '{_echo(value)}' is not a valid id: use lower-case "
                      f"letters, digits and '-' only (e.g. '{_echo(fixed)}')")
            return None
        return value

    def beacon_ident(self, node: Node) -> str | None:
        """A beacon's id: FORMATS.md asks only for "a short id", so any text
        a scan log's cell can hold (a MAC address, 'B_Dome', 'sensor 20'), but
        not padded with spaces, which the scan log's reader strips off."""
        value = self.text(node, "beacon id", "an id")
        if value is None:
            return None
        if value != value.strip():
            self.fail(node, f"beacon id {_echo(value)!r} begins or ends with a space, which a "
                      f"scan log's cell does not keep: write '{_echo(value.strip())}'")
            return None
        return value

    # -- the zone map ----------------------------------------------------------

    def site(self, root: Node | None) -> Site:
        if root is None:
            self.problems.append(Problem(file=self.file, line=1, message=(
                "the zone map is empty: it needs site, languages, beacons and exhibits "
                "(see FORMATS.md)")))
            self.raise_if_any()
        top = self.mapping(root, "the zone map", required=_TOP_REQUIRED,
                           optional=_TOP_OPTIONAL,
                           what="start with 'site:', 'languages:', 'beacons:', 'exhibits:'",
                           extensions=True, each="the zone map")
        if top is None:
            self.raise_if_any()
        assert top is not None and root is not None

        name = self.text(top["site"].value, "site", "the site's name") if "site" in top else None
        self.languages = self.read_languages(top["languages"].value) if "languages" in top else None
        tracks_dir = self.read_tracks_dir(top.get("tracks_dir"), root,
                                          misspelt="tracks_dir" in top.meant)
        fallback = self.read_fallback(top.get("fallback"))
        trigger = (self.read_trigger(top["trigger"].value, "trigger", per_exhibit=False)
                   if "trigger" in top else {})
        site_trigger = TriggerSettings().override(trigger or {})
        walls = self.read_walls(top["walls"].value) if "walls" in top else ()
        intro = (self.read_intro(top["intro"].value, tracks_dir)
                 if "intro" in top and self.with_intro else {})
        beacons = self.read_beacons(top["beacons"].value) if "beacons" in top else None
        exhibits = (self.read_exhibits(top["exhibits"].value, beacons, tracks_dir, site_trigger)
                    if "exhibits" in top else [])

        self.raise_if_any()
        assert name is not None and self.languages is not None and beacons is not None
        assert tracks_dir is not None
        langs = self.languages
        return Site(
            path=self.path,
            name=name,
            languages=langs,
            fallback=FrozenDict({lang: fallback.get(lang, tuple(x for x in langs if x != lang))
                                 for lang in langs}),
            tracks_dir=tracks_dir,
            beacons=FrozenDict(beacons),
            exhibits=tuple(exhibits),
            trigger=site_trigger,
            walls=tuple(walls),
            intro=FrozenDict(intro),
        )

    def read_languages(self, node: Node) -> tuple[str, ...] | None:
        items = self.sequence(node, "languages", "languages: [fr, en, de, nl]")
        if items is None:
            return None
        if not items:
            self.fail(node, "languages is empty: list at least one, e.g. [fr, en]")
            return None
        langs: list[str] = []
        ok = True
        for item in items:
            lang = self.text(item, "each of languages", "a language code")
            if lang is None:
                ok = False
            elif not _LANG.match(lang):
                self.fail(item, f"'{_echo(lang)}' in languages is not a language code: use a "
                          "lower-case ISO 639 code such as fr, en, de, nl (optionally with "
                          "a region or script, e.g. pt-BR)")
                ok = False
            elif lang in langs:
                self.fail(item, f"'{_echo(lang)}' is listed twice in languages: remove one")
                ok = False
            else:
                langs.append(lang)
        return tuple(langs) if ok else None

    def read_tracks_dir(self, entry: _Entry | None, root: Node, *,
                        misspelt: bool = False) -> Path | None:
        """The tracks folder: `entry` (tracks_dir:), else tracks/ beside the
        zone map, unless tracks_dir was `misspelt` (reported: no folder, so
        the tracks are not looked for in the wrong one)."""
        if entry is None and misspelt:
            return None
        if entry is None:
            try:
                directory, found = _look(self.path.parent / "tracks")
            except OSError as e:
                self.fail(root, f"no tracks_dir is given and the default, tracks/ beside "
                          f"the zone map, {_unlookable(e, 'folder')}")
                return None
            if found is None or not stat.S_ISDIR(found.st_mode):
                self.fail(root, f"no tracks_dir is given and the default, tracks/ beside "
                          f"the zone map ({directory}), is not a directory: create it "
                          "or add 'tracks_dir: PATH' (relative to this file)")
                return None
            return directory
        value = self.path_text(entry.value, "tracks_dir", "a folder path")
        if value is None:
            return None
        try:
            directory, found = _look(self.path.parent / value)
        except OSError as e:
            self.fail(entry.value, f"tracks_dir '{_echo(value)}' {_unlookable(e, 'folder')}")
            return None
        if found is None or not stat.S_ISDIR(found.st_mode):
            state = "is not a directory" if found is not None else "does not exist"
            self.fail(entry.value, f"tracks_dir '{_echo(value)}' ({_short(str(directory), 200)}) "
                      f"{state}: " + ((found is None and _path_hint(self.path.parent, value))
                                      or "create it or fix the path (it is relative to the zone "
                                      "map's folder)"))
            return None
        return directory

    def read_fallback(self, entry: _Entry | None) -> dict[str, tuple[str, ...]]:
        if entry is None:
            return {}
        entries = self.mapping(entry.value, "fallback",
                               what="e.g. fallback: {nl: [en, fr]}")
        result: dict[str, tuple[str, ...]] = {}
        for key, (key_node, value_node) in (entries or {}).items():
            lang = self.language(key_node, "fallback")
            others = [x for x in ("en", "fr", "de") if x != key][:2]
            if isinstance(value_node, ScalarNode) and value_node.value.strip():
                others = [value_node.value.strip()]  # 'en: fr' meant en: [fr]
            items = self.sequence(value_node, f"fallback of '{_echo(key)}'",
                                  f"{_echo(key)}: [{_echo(', '.join(others))}]")
            if items is None:
                continue
            chain: list[str] = []
            for item in items:
                other = self.language(item, f"fallback of '{_echo(key)}'")
                if other is None:
                    continue
                if other == key:
                    self.fail(item, f"the fallback of '{_echo(key)}' lists '{_echo(key)}' itself: "
                              "remove it (a language is always tried first)")
                elif other in chain:
                    self.fail(item, f"the fallback of '{_echo(key)}' lists '{other}' twice: "
                              "remove one")
                else:
                    chain.append(other)
            if lang is not None:
                result[lang] = tuple(chain)
        return result

    def read_intro(self, node: Node, tracks_dir: Path | None) -> dict[str, str]:
        """Language -> the track played before the first exhibit, checked like
        an exhibit's tracks."""
        intro, _ = self.per_language(
            node, "intro", "e.g. intro: {fr: fr/_intro.opus}",
            lambda value, lang: self.track(value, f"intro track in '{_echo(lang)}'", tracks_dir),
            required=False)
        return intro

    def per_language(self, node: Node, where: str, example: str,
                     read: Callable[[Node, str], str | None], *,
                     required: bool = True) -> tuple[dict[str, str], bool]:
        """A mapping of declared language -> value (titles, tracks, intro),
        each value checked by `read(value_node, lang)`, and whether every
        entry was good. An empty mapping is a problem when `required`;
        `example` says what to write."""
        result: dict[str, str] = {}
        ok = True
        for lang, (key_node, value_node) in (self.mapping(node, where, what=example) or {}).items():
            value = read(value_node, lang)
            if self.language(key_node, where) and value is not None:
                result[lang] = value
            else:
                ok = False
        if required and isinstance(node, MappingNode) and not node.value:
            self.fail(node, f"{where} is empty: give at least one language, {example}")
        return result, ok

    def read_trigger(self, node: Node, where: str, *,
                     per_exhibit: bool) -> dict[str, Any] | None:
        entries = self.mapping(node, where, what="e.g. trigger: {dwell: 4.0}")
        if entries is None:
            return None
        values: dict[str, Any] = {}
        for key, (key_node, value_node) in entries.items():
            meta = SETTINGS.get(key)
            if meta is None:
                guess = _did_you_mean(key, SETTINGS)
                self.fail(key_node, f"unknown setting '{_echo(key)}' in {where}: " + (
                    f"did you mean '{_echo(guess)}'?" if guess else
                    "run 'guide settings' for the list"))
                continue
            if per_exhibit and not meta.metadata["per_exhibit"]:
                self.fail(key_node, f"'{key}' in {where} is a site-wide setting and "
                          "cannot differ per exhibit: move it to the top-level trigger:")
                continue
            kind, nullable = _type_of(key)
            setting = f"{where}.{key}"
            if nullable and isinstance(value_node, ScalarNode) and (
                    value_node.tag == _NULL or value_node.value.strip().lower() == "auto"):
                values[key] = None  # "automatic" (as `guide settings` shows it): level from tx_power
                continue
            if kind is bool:
                if (isinstance(value_node, ScalarNode) and value_node.tag == _BOOL
                        and value_node.value.lower() in self._constructor.bool_values):
                    values[key] = self._constructor.construct_yaml_bool(value_node)
                elif isinstance(value_node, ScalarNode) and value_node.tag == _BOOL:
                    self.fail(value_node, f"{setting} must be true or false, not "
                              f"{_short(value_node.value)!r}")  # `!!bool maybe`
                elif self.scalar_ok(value_node, setting, "true or false"):
                    self.fail(value_node, f"{setting} must be true or false, not "
                              f"{_kind(value_node)}")
                continue
            if kind is str:
                text = self.text(value_node, setting)
                if text is not None:
                    values[key] = text
                continue
            unit = meta.metadata["unit"]
            value = self.number(value_node, setting, unit=unit, integer=kind is int,
                                lo=meta.metadata["min"], hi=meta.metadata["max"],
                                why=meta.metadata["doc"])
            if value is not None:
                values[key] = kind(value)
        return values

    def read_walls(self, node: Node) -> list[Segment]:
        example = "[[0, 0], [40, 0]]"
        items = self.sequence(node, "walls", f"walls: [{example}]")
        walls: list[Segment] = []
        for n, item in enumerate(items or (), 1):
            where = f"wall {n}"
            ends = self.sequence(item, where, example)
            if ends is None:
                continue
            if ends and all(isinstance(e, ScalarNode) for e in ends):
                self.fail(item, f"{where} is a list of {counted(len(ends), 'number')}: "
                          f"a wall is a list of its 2 ends, each [x, y], e.g. {example}")
                continue
            if len(ends) != 2:
                self.fail(item, f"{where} has {counted(len(ends), 'point')}: "
                          "a wall is a straight "
                          f"segment with 2 ends, e.g. {example} (split a bent wall in two)")
                continue
            points = []
            for end in ends:
                coords = self.sequence(end, f"each end of {where}", "[0, 0]")
                if coords is None:
                    continue
                if len(coords) != 2:
                    self.fail(end, f"an end of {where} is a list of {len(coords)}: "
                              "a point is a list of 2 numbers [x, y], in metres")
                    continue
                x, y = (self.coordinate(c, f"a coordinate of {where}") for c in coords)
                if x is not None and y is not None:
                    points.append((float(x), float(y)))
            if len(points) == 2:
                if points[0] == points[1]:
                    self.fail(item, f"{where} starts and ends at the same point "
                              f"{list(points[0])}: give its two different ends")
                else:
                    walls.append((points[0], points[1]))
        return walls

    def read_beacons(self, node: Node) -> dict[str, Beacon] | None:
        entries = self.mapping(node, "beacons",
                               what="each beacon's id, then its identity and position")
        if entries is None:
            return None
        if not entries:
            self.fail(node, "beacons is empty: define the beacon of each exhibit, e.g. "
                      + _EXAMPLES["beacons"])
            return None
        self.beacon_ids = set(entries)
        beacons: dict[str, Beacon] = {}  # the valid ones
        seen: dict[IBeacon | Eddystone, tuple[str, int]] = {}
        for key, (key_node, value_node) in entries.items():
            beacon_id = self.beacon_ident(key_node)
            beacon = self.read_beacon(value_node, key)
            if beacon is None:
                continue
            first = seen.get(beacon.ident)
            if first is not None:
                self.fail(value_node, f"beacon '{_echo(key)}' has the same identity as beacon "
                          f"'{_echo(first[0])}' (line {first[1]}): the guide could not tell "
                          "them apart; give each beacon its own "
                          + ("major/minor" if isinstance(beacon.ident, IBeacon)
                             else "instance"))
                continue
            seen[beacon.ident] = (key, key_node.start_mark.line + 1)
            if beacon_id is not None:
                beacons[beacon_id] = beacon
        return beacons

    def read_beacon(self, node: Node, key: str) -> Beacon | None:
        where = f"beacon '{_echo(key)}'"
        entries = self.mapping(node, where, required=_BEACON_REQUIRED,
                               optional=_BEACON_OPTIONAL, each="every beacon")
        if entries is None:
            return None
        ident: IBeacon | Eddystone | None = None
        kinds = [k for k in _BEACON_OPTIONAL if k in entries]
        if not kinds and any(k in entries.meant for k in _BEACON_OPTIONAL):
            pass  # its misspelt ibeacon: or eddystone: is reported
        elif len(kinds) != 1:
            self.fail(node, f"{where} has {'both' if kinds else 'neither'} ibeacon: "
                      f"{'and' if kinds else 'nor'} eddystone: give exactly one, e.g. "
                      "ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 100, "
                      "minor: 1}")
        elif kinds == ["ibeacon"]:
            ident = self.read_ibeacon(entries["ibeacon"].value, where)
        else:
            ident = self.read_eddystone(entries["eddystone"].value, where)
        tx = (self.number(entries["tx_power"].value, f"{where} tx_power", unit="dBm",
                          integer=True, lo=-127, hi=20,
                          why="the RSSI measured 1 m from the beacon, typically about -59")
              if "tx_power" in entries else None)
        x, y = (self.coordinate(entries[c].value, f"{where} {c}") if c in entries
                else None for c in ("x", "y"))
        if ident is None or tx is None or x is None or y is None:
            return None
        return Beacon(id=key, ident=ident, tx_power=int(tx), x=float(x), y=float(y))

    def read_ibeacon(self, node: Node, where: str) -> IBeacon | None:
        where = f"{where} ibeacon"
        entries = self.mapping(node, where, required=("uuid", "major", "minor"), optional=(),
                               each="every ibeacon")
        if entries is None:
            return None
        uuid = None
        if "uuid" in entries:
            uuid_node = entries["uuid"].value
            raw = self.text(uuid_node, f"{where} uuid", "a UUID")
            if raw is not None:
                uuid = raw.strip().lower()
                if not _UUID.match(uuid):
                    digits = re.sub(r"[{}\-\s]", "", uuid)
                    hint = ("write it as 8-4-4-4-12 hex digits, e.g. "
                            "f7826da6-4fa2-4e98-8024-bc5b71e0893e")
                    if len(digits) == 32 and _HEX.match(digits):
                        hint = (f"write it as {digits[:8]}-{digits[8:12]}-{digits[12:16]}-"
                                f"{digits[16:20]}-{digits[20:]}")
                    self.fail(uuid_node, f"{where} uuid '{_echo(raw)}' is not a UUID: {hint}")
                    uuid = None
        major, minor = (
            self.number(entries[k].value, f"{where} {k}", integer=True, lo=0, hi=65535,
                        why="an iBeacon field is 16 bits")
            if k in entries else None for k in ("major", "minor"))
        if uuid is None or major is None or minor is None:
            return None
        return IBeacon(uuid=uuid, major=int(major), minor=int(minor))

    def read_eddystone(self, node: Node, where: str) -> Eddystone | None:
        where = f"{where} eddystone"
        entries = self.mapping(node, where, required=("namespace", "instance"), optional=(),
                               each="every eddystone")
        if entries is None:
            return None
        values = {}
        for key, digits in (("namespace", 20), ("instance", 12)):
            if key not in entries:
                continue
            value_node = entries[key].value
            raw = self.text(value_node, f"{where} {key}", f"{digits} hex digits")
            if raw is None:
                continue
            value = raw.strip().lower()
            if len(value) != digits or not _HEX.match(value):
                hint = "drop the 0x prefix; " if value.startswith("0x") else ""
                self.fail(value_node, f"{where} {key} '{_echo(raw)}' must be exactly {digits} hex "
                          f"digits (0-9, a-f), it has {len(value)} characters: {hint}copy it "
                          "from the beacon's configuration app (quote it if it is all digits)")
                continue
            values[key] = value
        if len(values) != 2:
            return None
        return Eddystone(**values)

    def read_exhibits(self, node: Node, beacons: dict[str, Beacon] | None,
                      tracks_dir: Path | None, site_trigger: TriggerSettings) -> list[Exhibit]:
        items = self.sequence(node, "exhibits", "exhibits: [{id: dome, ...}]  or one "
                              "'- id: dome' block per exhibit")
        if items is None:
            return []
        if not items:
            self.fail(node, "exhibits is empty: describe at least one exhibit, e.g. "
                      + _EXAMPLES["exhibits"])
            return []
        # Checked even for exhibits with other problems, so all show at once:
        ids: dict[str, int] = {}  # exhibit id -> line
        users: dict[str, tuple[str, int]] = {}  # beacon -> (which exhibit, line)
        exhibits = []
        for n, item in enumerate(items, 1):
            exhibit = self.read_exhibit(item, n, beacons, tracks_dir, site_trigger, ids, users)
            if exhibit is not None:
                exhibits.append(exhibit)
        return exhibits

    def read_exhibit(self, node: Node, n: int, beacons: dict[str, Beacon] | None,
                     tracks_dir: Path | None, site_trigger: TriggerSettings,
                     ids: dict[str, int], users: dict[str, tuple[str, int]]) -> Exhibit | None:
        named = _peek_id(node)  # every message names the exhibit by its id if it can
        where = f"exhibit '{_echo(named)}'" if named else f"exhibit {n}"
        entries = self.mapping(node, where, required=_EXHIBIT_REQUIRED,
                               optional=_EXHIBIT_OPTIONAL,
                               what="id, title, beacon, radius, tracks", each="every exhibit")
        if entries is None:
            return None
        line = node.start_mark.line + 1
        exhibit_id = self.ident(entries["id"].value, f"{where} id") if "id" in entries else None
        ok = exhibit_id is not None
        if exhibit_id in ids:
            self.fail(entries["id"].value, f"exhibit id '{_echo(exhibit_id)}' is already used by "
                      f"the exhibit at line {ids[exhibit_id]}: exhibit ids must be unique")
            ok = False
        elif exhibit_id is not None:
            ids[exhibit_id] = line

        title: dict[str, str] = {}
        if "title" in entries:
            title, good = self.per_language(
                entries["title"].value, f"{where} title", "e.g. title: {fr: La coupole}",
                lambda value, lang: self.text(value, f"{where} title in '{_echo(lang)}'",
                                              "the title"))
            ok = ok and good
        ok = ok and bool(title)

        beacon = None
        if "beacon" in entries:
            beacon_node = entries["beacon"].value
            beacon = self.text(beacon_node, f"{where} beacon", "a beacon id")
            declared = self.beacon_ids
            if beacon is not None and declared is not None and beacon not in declared:
                guess = _did_you_mean(beacon, declared)
                self.fail(beacon_node, f"{where} uses beacon '{_echo(beacon)}', which is not "
                          "defined under beacons: " + (
                              f"did you mean '{_echo(guess)}'?" if guess else
                              "add it there or fix the id"))
                beacon = None
            elif beacon is not None and beacon in users:
                other, other_line = users[beacon]
                self.fail(beacon_node, f"{where} uses beacon '{_echo(beacon)}', already the "
                          f"beacon of {other} (line {other_line}): the guide "
                          "maps each beacon to one exhibit; give each exhibit its own")
                beacon = None
            elif beacon is not None:
                users[beacon] = (where, line)
            if beacon is not None and (beacons is None or beacon not in beacons):
                beacon = None  # declared, but has problems of its own (reported)

        radius = (self.number(entries["radius"].value, f"{where} radius", unit="m",
                              positive=True, hi=MAX_RADIUS, why=_RADIUS_WHY)
                  if "radius" in entries else None)

        tracks: dict[str, str] = {}
        if "tracks" in entries:
            tracks, good = self.per_language(
                entries["tracks"].value, f"{where} tracks", "e.g. tracks: {fr: fr/dome.ogg}",
                lambda value, lang: self.track(value, f"{where} track in '{_echo(lang)}'",
                                               tracks_dir),
                required=False)  # tracks: {} while its narrations are being recorded
            ok = ok and good

        position: list[float | None] = [None, None]
        given = [c for c in ("x", "y") if c in entries]
        if len(given) == 1:
            missing = "y" if given == ["x"] else "x"
            if missing not in entries.meant:  # else its misspelling is reported
                self.fail(entries[given[0]].key, f"{where} gives {given[0]} but not {missing}: "
                          "give both (where visitors stand) or neither (the beacon's position)")
            ok = False
        else:
            for i, c in enumerate(given):
                position[i] = self.coordinate(entries[c].value, f"{where} {c}")
                ok = ok and position[i] is not None

        trigger = site_trigger
        if "trigger" in entries:
            values = self.read_trigger(entries["trigger"].value, f"{where} trigger",
                                       per_exhibit=True)
            if values is None:
                ok = False
            else:
                trigger = site_trigger.override(values)

        if not ok or beacon is None or radius is None or beacons is None:
            return None
        b = beacons[beacon]
        x, y = position
        return Exhibit(id=exhibit_id, title=FrozenDict(title), beacon=beacon,
                       radius=float(radius), tracks=FrozenDict(tracks), trigger=trigger,
                       x=b.x if x is None else float(x), y=b.y if y is None else float(y))

    def track(self, node: Node, where: str, tracks_dir: Path | None) -> str | None:
        """A track path, relative to tracks_dir and staying inside it."""
        rel = self.path_text(node, where, "a file path")
        if rel is None:
            return None
        if os.path.isabs(rel) or rel.startswith("~") or _WINDOWS_ABSOLUTE.match(rel):
            self.fail(node, f"{where} '{_echo(rel)}' is an absolute path: write it relative to "
                      "tracks_dir (e.g. fr/dome.ogg), so the site can be copied to a device")
            return None
        if tracks_dir is None:
            return rel  # already reported; the file cannot be looked for
        target = tracks_dir / rel
        inside = os.path.normpath(target)
        if not Path(inside).is_relative_to(tracks_dir):
            self.fail(node, f"{where} '{_echo(rel)}' leads outside tracks_dir ({tracks_dir}): "
                      "put the file under tracks_dir and give its path from there")
            return None
        try:
            resolved, found = _look(target)
        except OSError as e:
            self.fail(node, f"{where} '{_echo(rel)}' {_unlookable(e, 'file')}")
            return None
        if found is None and resolved != Path(inside):
            # a link leads there: name the link and the missing file, wherever it would be
            fix = ("put the file there or fix the link" if resolved.is_relative_to(tracks_dir)
                   else "replace the link with the audio file itself, copied into tracks_dir")
            self.fail(node, f"{where} '{_echo(rel)}' is a broken link: it points at "
                      f"{_short(str(resolved), 200)}, which does not exist: {fix}")
            return None
        if not resolved.is_relative_to(tracks_dir):
            self.fail(node, f"{where} '{_echo(rel)}' is a link to {resolved}, outside tracks_dir "
                      f"({tracks_dir}): copy the file into tracks_dir instead")
            return None
        if found is None:
            self.fail(node, f"{where}: track file '{_echo(rel)}' not found (looked for "
                      f"{_short(str(target), 200)}): "
                      + (_path_hint(tracks_dir, rel) or "add the file or fix the path (relative "
                         "to tracks_dir)"))
            return None
        if stat.S_ISDIR(found.st_mode):
            self.fail(node, f"{where} '{_echo(rel)}' is a directory, not an audio file: give "
                      "the path of the file itself")
            return None
        if not stat.S_ISREG(found.st_mode):
            self.fail(node, f"{where} '{_echo(rel)}' is not a regular file (a pipe, a device or "
                      "a socket), not an audio file: give the path of the audio file itself")
            return None
        return rel


# A Windows drive (C:\\ or C:/) or network share (\\\\server), copied from Explorer
_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\")


def _path_hint(base: Path, rel: str) -> str | None:
    """How to write `rel`, a path under `base` that was not found, when the
    mistake is a common one: a Windows path (a drive letter, a backslash
    between folders), or a name whose upper and lower case differ from the
    file's (Windows and macOS ignore case, the device does not). None when no
    such hint applies."""
    if _WINDOWS_ABSOLUTE.match(rel):
        return ("that is a Windows path: give the path on this machine, relative to the zone "
                "map's folder, with / between folders (e.g. tracks_dir: tracks)")
    parts = [part for part in rel.replace("\\", "/").split("/") if part not in ("", ".")]
    here, found = base, []
    for part in parts:
        try:
            names = [part] if (here / part).exists() else sorted(
                n for n in os.listdir(here) if n.casefold() == part.casefold())
        except OSError:
            names = []
        if len(names) != 1:
            break
        found.append(names[0])
        here = here / names[0]
    else:
        if parts and "/".join(found) != rel:
            why = ("write / between folders, not \\" if "\\" in rel else
                   "the upper and lower case must be the file's: the device tells 'A' from 'a'")
            return f"did you mean '{_echo('/'.join(found))}'? ({why})"
    if "\\" in rel:
        return "write / between folders, not \\, and check the path"
    return None


def _look(path: Path) -> tuple[Path, os.stat_result | None]:
    """Where `path` leads, symbolic links followed, and what is there (None:
    nothing). OSError when that cannot be told: a loop of symbolic links, a
    name too long, a folder on the way that may not be searched."""
    try:
        resolved = path.resolve()
    except RuntimeError:  # Python < 3.13 says so for a loop of symbolic links
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path)) from None
    try:
        return resolved, resolved.stat()
    except (FileNotFoundError, NotADirectoryError):
        return resolved, None


def _unlookable(e: OSError, what: str) -> str:
    """The end of a message about a path `_look` could not follow."""
    if e.errno == errno.ELOOP:
        return looped(str(e.filename), what)
    return (f"cannot be looked at ({e.strerror or e}): check the path, and the permissions "
            "of the folders on the way")


def _unprintable(c: str) -> str:
    """The end of a message on a text holding the control character `c`
    (written as an escape in double quotes: "\\e[31m", "\\0", "\\x07")."""
    if c in "\t\n\r":
        what = {"\t": "a tab", "\n": "a line break", "\r": "a carriage return"}[c]
        return (f"holds {what} (U+{ord(c):04X}), and every text of a zone map is shown on one "
                "line: delete it (or put a space)")
    return (f"holds the control character U+{ord(c):04X}, which would print raw (garbling the "
            "terminal) wherever the text is shown: delete it")


def _explicit(node: Node) -> bool:
    """Whether the node was tagged in the file (`!!str 2`): its text is then
    text, not a number PyYAML failed to resolve (1e3)."""
    return getattr(node, "explicit", False)


def _peek_id(node: Node) -> str | None:
    """The valid `id:` of a mapping node, read before the node is checked."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if (isinstance(key, ScalarNode) and key.value == "id"
                    and isinstance(value, ScalarNode) and _ID.match(value.value)):
                return value.value
    return None


def _exact(x: float) -> str:
    """A number written out in full, for 'write 100' (not 1e+02)."""
    if isinstance(x, int):
        return str(x) if abs(x) < 10**16 else _fmt(x)
    return repr(x)


_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+\Z")  # 010, -059, 08: not 0, 0.5 or 0x10


def _looks_numeric(text: str) -> bool:
    """A plain ASCII number (csvlog.plain_float): not 1_0, nor ١٠."""
    try:
        plain_float(text)
    except ValueError:
        return False
    return True
