"""README.md against the code: staff follow it literally, so its settings
table, its zone-map example and its command lines must be what the guide
accepts."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from guide import actions, zones
from guide.cli import build_parser, main
from guide.simulator import build_parser as simulate_parser
from guide.zones import load_zones

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, flags=re.S | re.M)


def test_the_settings_table_is_what_guide_settings_markdown_prints(capsys):
    assert main(["settings", "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.strip() in README


def test_the_zone_map_example_loads(tmp_path):
    (example,) = [b for b in blocks("yaml") if b.startswith("site:")]
    (tmp_path / "tracks").symlink_to(ROOT / "tracks")
    (tmp_path / "zones.yaml").write_text(example, encoding="utf-8")
    site = load_zones(tmp_path / "zones.yaml")
    assert [e.id for e in site.exhibits] == ["dome"]


def command_lines() -> list[list[str]]:
    lines = [line for block in blocks("sh") for line in block.splitlines()]
    lines += re.findall(r"^\| `((?:guide|python simulate\.py) [^`]*)`", README, flags=re.M)
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:1] == ["guide"] or words[:2] == ["python", "simulate.py"]:
            commands.append(words)
    return commands


@pytest.mark.parametrize("words", command_lines(), ids=" ".join)
def test_every_command_line_parses(words):
    if words[0] == "guide":
        args = build_parser().parse_args(words[1:])
        assert hasattr(args, "run")
    else:
        simulate_parser().parse_args(words[2:])


def test_the_command_lines_are_found():
    found = {w[1] if w[0] == "guide" else "simulate.py" for w in command_lines()}
    assert found >= {"run", "record", "coverage", "play", "check", "lint", "calibrate", "tune", "map",
                     "simulate.py"}


def test_the_layout_table_names_every_module_of_guide():
    """'What is where' is how a new developer finds a module: one the table
    does not name is one they will not look for."""
    table = README.split("## What is where", 1)[1].split("\n\n", 2)[1]
    named = set(re.findall(r"`(guide/[\w/]+(?:\.py)?)`", table))
    modules = {f"guide/{p.name}" for p in (ROOT / "guide").glob("*.py") if not p.name.startswith("__")}
    assert sorted(modules - named) == []
    assert "guide/commands/" in named


def written_events() -> dict[str, set[str]]:
    """Every kind of event the guide writes, with its fields: the engine's
    actions, and the dict literals with an "event" in guide/ (the device's own)."""
    kinds = {name: {f.name for f in dataclasses.fields(cls)} for cls, name in actions._NAMES.items()}
    for path in (ROOT / "guide").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                kind = [v.value for k, v in zip(node.keys, node.values)
                        if isinstance(k, ast.Constant) and k.value == "event" and isinstance(v, ast.Constant)]
                if kind:
                    kinds.setdefault(kind[0], set()).update(set(keys) - {"event", "visitor", "t"})
    return kinds


def end_reasons() -> set[str]:
    return {kw.value.value for path in (ROOT / "guide").glob("*.py")
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "End"
            for kw in node.keywords if kw.arg == "reason" and isinstance(kw.value, ast.Constant)}


def test_the_event_log_section_names_every_event_the_guide_writes_and_its_fields():
    """Whoever reads a device's event log learns its kinds and fields there:
    one the guide writes and the section leaves out is a line they cannot read."""
    section = README.split("### Event log", 1)[1].split("\n## ", 1)[0]
    kinds = written_events()
    assert {"start", "end", "pause", "resume", "coverage", "intro"} <= kinds.keys()
    missing = [f"{kind}.{field}" if field else kind for kind, fields in sorted(kinds.items())
               for field in ["", *sorted(fields)]
               if not (f"`{field or kind}`" in section or f'"{field or kind}"' in section)]
    assert missing == []
    reasons = end_reasons()
    assert {"finished", "abandoned", "interrupted", "stopped"} <= reasons
    assert sorted(r for r in reasons if f"`{r}`" not in section) == []


def test_the_zone_map_example_shows_every_key_the_loader_accepts():
    """Staff write zones.yaml from this example: a key it leaves out is one
    they do not know they may use."""
    (example,) = [b for b in blocks("yaml") if b.startswith("site:")]
    shown = set(re.findall(r"([a-z_]+):", example))  # comments count: 'or eddystone: {...}'
    accepted = {*zones._TOP_REQUIRED, *zones._TOP_OPTIONAL, *zones._BEACON_REQUIRED, *zones._BEACON_OPTIONAL,
                *zones._EXHIBIT_REQUIRED, *zones._EXHIBIT_OPTIONAL,
                "uuid", "major", "minor", "namespace", "instance"}  # read_ibeacon, read_eddystone
    assert sorted(accepted - shown) == []
    assert re.search(r"^x-[\w-]+:", example, flags=re.M), "the top level's x- keys, which the loader ignores"


def test_the_set_up_text_names_every_debian_package_bootstrap_installs():
    """Someone setting up by hand, or on another distribution, goes by the
    README's list: a package it leaves out is a build that fails later."""
    listed = re.search(r"^DEBIAN_PACKAGES=\((.*?)\)", (ROOT / "bootstrap").read_text(encoding="utf-8"),
                       flags=re.S | re.M)
    packages = listed.group(1).split()
    assert "ffmpeg" in packages
    setup = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert [p for p in packages if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", setup)] == []


def options(parser: argparse.ArgumentParser) -> set[str]:
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options(sub)
    return found


def test_every_option_the_readme_names_exists():
    """An option the README names and no command takes (renamed, or gone)
    sends staff to a usage error."""
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", README))
    taken = options(build_parser()) | options(simulate_parser())
    taken |= {o for path in (ROOT / "eval").glob("*.py")  # the eval scripts build their parsers in main()
              for o in re.findall(r"add_argument\(\"(--[a-z-]+)\"", path.read_text(encoding="utf-8"))}
    assert {"--new-visit", "--render-audio", "--write"} <= named
    assert sorted(named - taken) == []
