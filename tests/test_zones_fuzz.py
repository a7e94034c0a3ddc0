"""Property tests of the zone-map loader (guide.zones.load_zones), the one
door every command (guide check, the device, simulate.py) reads a site by.

Each example starts from a real valid zone map (the repository's zones.yaml,
the gallery sample's, a small one written here with real track files),
composes it into YAML nodes, mutates the node tree (keys deleted, duplicated,
renamed; any node replaced by another type, tag, nesting, anchor/alias or
merge key), serialises it back to YAML with PyYAML, and may then damage the
bytes (tabs, BOM, UTF-16 or Latin-1, truncation, random bytes). The property:
the loader returns a Site, or raises ZoneMapError whose every problem names
the file and a line of it; never another exception. Each example is drawn
from one seed (hypothesis prints it on a failure): `mutated(bases, seed)`
makes that file again. The nastiest files also go through the CLI.

It found: `radius: !!int ""` escaping as an IndexError from PyYAML, and
anchors merging the one before twice (`<<: [*m1, *m1]`), read 2**n times.
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from guide.errors import ZoneMapError
from guide.site import Site
from guide.zones import load_zones

REPO = Path(__file__).resolve().parents[1]
T = "tag:yaml.org,2002:"
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

SMALL = f"""\
site: Small
languages: [fr, en]
fallback: {{en: [fr]}}
trigger: {{dwell: 4.0}}
walls: [[[0, 0], [10, 0]]]
intro: {{fr: fr/_intro.wav}}
x-shared: &ib {{tx_power: -59, y: 1.0}}
beacons:
  b-a: {{<<: *ib, ibeacon: {{uuid: {UUID}, major: 1, minor: 1}}, x: 0}}
  b-b: {{eddystone: {{namespace: edd1ebeac04e5defa017, instance: 0123456789ab}},
        tx_power: -62, x: 5, y: 2}}
exhibits:
  - id: a
    title: {{fr: A, en: A}}
    beacon: b-a
    radius: 1.5
    tracks: {{fr: fr/a.wav, en: en/a.wav}}
    trigger: {{dwell: 6.0}}
  - {{id: b, title: {{fr: B}}, beacon: b-b, radius: 2, x: 5.5, y: 2.5, tracks: {{fr: fr/b.wav}}}}
"""


def _write_wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(1600))


def _with_tracks_dir(text: str, tracks_dir: Path) -> Node:
    """The composed map, its tracks_dir made absolute so that it loads from
    anywhere."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    value = ScalarNode(T + "str", str(tracks_dir))
    for i, (key, _) in enumerate(root.value):
        if key.value == "tracks_dir":
            root.value[i] = (key, value)
            break
    else:
        root.value.insert(0, (ScalarNode(T + "str", "tracks_dir"), value))
    return root


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> list[Node]:
    small = tmp_path_factory.mktemp("small")
    for rel in ("fr/a.wav", "en/a.wav", "fr/b.wav", "fr/_intro.wav"):
        _write_wav(small / "tracks" / rel)
    gallery = shared_dir / "data" / "gallery-sample"
    roots = [_with_tracks_dir(SMALL, small / "tracks"),
             _with_tracks_dir((REPO / "zones.yaml").read_text(), REPO / "tracks"),
             _with_tracks_dir((gallery / "zones.yaml").read_text(), gallery / "tracks")]
    for root in roots:  # each base is valid: the mutations, not the base, make it wrong
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "zones.yaml"
            path.write_text(yaml.serialize(root))
            assert isinstance(load_zones(path), Site)
    return roots


# -- mutations of the node tree ---------------------------------------------
# Drawn with one random.Random seeded by hypothesis: the tree they change is
# made in the test, so hypothesis strategies over its nodes could not replay.

NASTY_TEXT = [
    "", " ", "0", "-1", "1e400", "-1e400", "1e-400", ".nan", ".inf", "-.inf", "NaN", "010",
    "0x10", "0o7", "1_0", "1:40", "1" * 5000, "9" * 30, "-" + "9" * 30, "١٠", "true", "no",
    "~", "null", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "\t", "a\tb", "a\nb", "\x00",
    "\x1b[31m", "\x85", "\u2028", "\ud800", "\ufeff", "\u202e", "é", "日本", "😀", "*", "&",
    "!", "%", "@", "`", "'", '"', "{", "[", "- x", "a: b", "#", "<<", "=", "..", "../..",
    "/etc/passwd", "~/x", "fr/a.wav", "fr", "en", "b-a", "dome", "x-", "x-foo", "C:\\x",
    "2", "3.5", "-59", "100000000", "1e3", "a" * 300,
]

TAGS = ["str", "int", "float", "bool", "null", "binary", "timestamp", "set", "omap", "pairs",
        "merge", "value", "yaml", "python/object:os.system", "python/name:os.system",
        "python/object/apply:os.system", "python/tuple", "!local", "tag:example.com,2000:x"]


def _tag(name: str) -> str:
    return name if name.startswith(("!", "tag:")) else T + name


def random_node(rng: random.Random, depth: int = 0) -> Node:
    """Any YAML node: a scalar with any tag and text, a list, a mapping, or
    nesting deeper than any zone map."""
    kind = rng.choice(["scalar", "scalar", "scalar", "list", "map", "deep"]
                      if depth < 2 else ["scalar"])
    if kind == "scalar":
        tag = rng.choice([T + "str", T + "int", T + "float", _tag(rng.choice(TAGS))])
        text = rng.choice(NASTY_TEXT) if rng.random() < 0.8 else "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
            for _ in range(rng.randrange(0, 12)))
        return ScalarNode(tag, text, style=rng.choice([None, None, "'", '"', "|", ">"]))
    if kind == "list":
        return SequenceNode(T + "seq", [random_node(rng, depth + 1)
                                        for _ in range(rng.randrange(4))])
    if kind == "map":
        pairs = [(random_node(rng, depth + 1), random_node(rng, depth + 1))
                 for _ in range(rng.randrange(4))]
        return MappingNode(rng.choice([T + "map", T + "set", T + "omap"]), pairs)
    node: Node = ScalarNode(T + "int", "1")
    for _ in range(rng.randrange(20, 140)):
        node = (SequenceNode(T + "seq", [node]) if rng.random() < 0.5
                else MappingNode(T + "map", [(ScalarNode(T + "str", "k"), node)]))
    return node


def _walk(node: Node, seen: set[int] | None = None) -> list[Node]:
    """Every node of the tree, once each (aliases make it a graph)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return []
    seen.add(id(node))
    found = [node]
    if isinstance(node, SequenceNode):
        for item in node.value:
            found += _walk(item, seen)
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            found += _walk(key, seen) + _walk(value, seen)
    return found


def mutate(rng: random.Random, root: Node) -> None:
    """One change to the tree (in place), at a node chosen anywhere in it."""
    every = _walk(root)
    containers = [n for n in every if isinstance(n, (MappingNode, SequenceNode)) and n.value]
    target = rng.choice(containers)
    i = rng.randrange(len(target.value))
    op = rng.choice(["delete", "duplicate", "rename", "replace", "replace", "retag", "alias",
                     "merge", "self"])
    if isinstance(target, SequenceNode):
        if op == "delete":
            del target.value[i]
        elif op == "duplicate":
            target.value.insert(i, target.value[i])
        elif op == "alias":  # the same node elsewhere: the emitter writes &id001 / *id001
            target.value[i] = rng.choice(every)
        elif op == "self":
            target.value[i] = target
        else:
            target.value[i] = random_node(rng)
        return
    key, value = target.value[i]
    if op == "delete":
        del target.value[i]
    elif op == "duplicate":
        target.value.insert(i, (copy.copy(key), value))  # a duplicate key
    elif op == "rename":
        target.value[i] = (random_node(rng, 2), value)
    elif op == "retag" and isinstance(value, ScalarNode):
        target.value[i] = (key, ScalarNode(_tag(rng.choice(TAGS)), value.value))
    elif op == "alias":
        target.value[i] = (key, rng.choice(every))
    elif op == "merge":
        source = rng.choice(every + [SequenceNode(T + "seq", containers[:3])])
        target.value.append((ScalarNode(T + "merge", "<<"), source))
    elif op == "self":
        target.value[i] = (key, target)
    else:
        target.value[i] = (key, random_node(rng))


# -- damage to the bytes ------------------------------------------------------

def damage(rng: random.Random, text: str) -> bytes:
    op = rng.choice(["none", "none", "none", "tab", "bom", "utf16", "latin1", "truncate",
                     "bytes", "dup-line", "control"])
    data = text.encode("utf-8", "surrogatepass")
    lines = text.split("\n")
    n = rng.randrange(len(lines))
    if op == "tab":
        lines[n] = "\t" + lines[n].lstrip(" ")
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "utf16":
        return text.encode(rng.choice(["utf-16", "utf-16-le", "utf-32"]), "surrogatepass")
    if op == "latin1":
        return text.replace("e", "é").encode("latin-1", "replace")
    if op == "truncate":
        return data[:rng.randrange(len(data) + 1)]
    if op == "bytes":
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.randbytes(rng.randrange(1, 9)) + data[at:]
    if op == "dup-line":
        return "\n".join(lines[:n + 1] + lines[n:]).encode("utf-8", "surrogatepass")
    if op == "control":
        at = rng.randrange(len(text) + 1)
        c = rng.choice(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\r"])
        return (text[:at] + c + text[at:]).encode("utf-8", "surrogatepass")
    return data


def check_outcome(path: Path, data: bytes) -> None:
    try:
        site = load_zones(path)
    except ZoneMapError as e:
        assert e.problems
        # a lone CR ends a line too (YAML's line breaks; an old Mac file)
        lines = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n") + 1
        for p in e.problems:
            assert p.file == str(path), p
            assert p.line is not None and 1 <= p.line <= lines, p
            assert p.message and "\n" not in p.message, p
        str(e)  # the whole message, as the CLI prints it
    else:
        assert isinstance(site, Site)


def mutated(bases: list[Node], seed: int) -> bytes:
    rng = random.Random(seed)
    root = copy.deepcopy(rng.choice(bases))
    for _ in range(rng.randrange(1, 4)):
        mutate(rng, root)
    text = yaml.serialize(root, allow_unicode=rng.random() < 0.5,
                          canonical=rng.random() < 0.1)
    return damage(rng, text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32))
def test_a_mutated_zone_map_loads_or_is_refused_line_by_line(bases: list[Node],
                                                             seed: int) -> None:
    raw = mutated(bases, seed)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "zones.yaml"
        path.write_bytes(raw)
        check_outcome(path, raw)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=400) | st.text(max_size=200).map(lambda s: s.encode("utf-8",
                                                                              "surrogatepass")))
def test_any_bytes_load_or_are_refused_line_by_line(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "zones.yaml"
        path.write_bytes(raw)
        check_outcome(path, raw)


def test_an_empty_file_and_a_directory_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "zones.yaml"
    empty.write_bytes(b"")
    check_outcome(empty, b"")
    with pytest.raises(ZoneMapError) as e:
        load_zones(tmp_path)
    (problem,) = e.value.problems
    assert problem.file == str(tmp_path) and "directory" in problem.message


NASTIEST = {
    "python-object": "site: !!python/object/apply:os.system ['echo pwned']\n",
    "binary": "site: !!binary aGVsbG8=\nlanguages: [fr]\nbeacons: {}\nexhibits: []\n",
    "deep": "site: " + "[" * 5000 + "\n",
    "recursive-merge": "a: &a {<<: *a}\n",
    "utf16": "site: x\n".encode("utf-16").decode("latin-1"),
    "bom-twice": "\ufeff\ufeffsite: x\n",
    "set": "site: !!set {a, b}\nlanguages: !!omap [a: 1]\nbeacons: !!timestamp 2001-12-14\n",
    "empty-int": "site: S\nlanguages: [fr]\nbeacons: {b: {tx_power: !!int '', x: 0, y: 0}}\n",
    "merge-bomb": "\n".join(["x-0: &m0 {x: 0}", *(f"x-{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}"
                                                for i in range(1, 40))])
                  + "\nbeacons: {b: {<<: *m39}}\n",
}


@pytest.mark.parametrize("name", sorted(NASTIEST))
def test_the_nastiest_through_the_cli_are_refused_without_a_traceback(tmp_path: Path,
                                                                     name: str) -> None:
    # guide check reports a zone map that does not load with its other errors and exits
    # 1 (README); a command that needs the site (coverage) exits 2 through cli.guarded
    path = tmp_path / "zones.yaml"
    path.write_bytes(NASTIEST[name].encode("latin-1" if name == "utf16" else "utf-8"))
    for command, status in (("check", 1), ("coverage", 2)):
        run = subprocess.run([sys.executable, "-m", "guide", command, "--zones", str(path)],
                             capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        assert run.returncode == status, (command, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr + run.stdout
        assert f"{path}:" in run.stderr + run.stdout, (command, run.stdout, run.stderr)
