"""README.md against the code: staff follow it literally, so its settings
table, its zone-map example and its command lines must be what the guide
accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

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
