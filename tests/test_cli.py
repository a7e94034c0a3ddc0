"""The `guide` command line: discovery of subcommands, exit statuses, and
`guide settings`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import guide.commands
import guide.commands.settings
from guide.cli import build_parser, main, output_file
from guide.errors import GuideError, TrackError
from guide.settings import SETTINGS

REPO = Path(__file__).resolve().parents[1]


def guide_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m guide ARGS` as a user would, in a separate process."""
    return subprocess.run([sys.executable, "-m", "guide", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def zones(tmp_path: Path, make_wav) -> Path:
    make_wav(tmp_path / "tracks/fr/a.wav", 0.1)
    make_wav(tmp_path / "tracks/fr/b.wav", 0.1)
    path = tmp_path / "zones.yaml"
    path.write_text("""\
site: CLI test
languages: [fr]
trigger: {dwell: 7}
beacons:
  b1: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 1},
       tx_power: -59, x: 0, y: 0}
  b2: {ibeacon: {uuid: f7826da6-4fa2-4e98-8024-bc5b71e0893e, major: 1, minor: 2},
       tx_power: -59, x: 5, y: 0}
exhibits:
  - {id: coin-1, title: {fr: A}, beacon: b1, radius: 2, tracks: {fr: fr/a.wav},
     trigger: {dwell: 6.5, margin: 4}}
  - {id: dome, title: {fr: B}, beacon: b2, radius: 2, tracks: {fr: fr/b.wav}}
""")
    return path


def test_python_m_guide_without_a_command_prints_help_and_exits_2():
    result = guide_cmd()
    assert result.returncode == 2
    assert "usage: guide" in result.stderr and "settings" in result.stderr


def test_a_site_name_the_terminal_cannot_encode_is_printed_escaped_not_a_traceback(zones):
    """A site named in Chinese, checked under a Latin-1 (or ASCII) locale:
    the report died on a UnicodeEncodeError as it printed the name."""
    zones.write_text(zones.read_text().replace("site: CLI test", "site: Musée 博物馆"))
    done = subprocess.run([sys.executable, "-m", "guide", "check", "--zones", str(zones), "--no-progress"],
                          cwd=REPO, capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "latin-1"})
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    assert "(Musée \\u535a\\u7269\\u9986)".encode("latin-1") in done.stdout


def test_python_m_guide_settings_lists_every_setting():
    result = guide_cmd("settings")
    assert result.returncode == 0, result.stderr
    for name in SETTINGS:
        assert f"\n{name} = " in "\n" + result.stdout


def test_a_bad_zone_map_exits_2_with_the_problem_and_no_traceback(tmp_path):
    bad = tmp_path / "zones.yaml"
    bad.write_text("site: x\nlanguages: [fr]\nbeacons: {}\nexhibits: []\nwalls: 3\n")
    result = guide_cmd("settings", "--zones", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("guide: error: ")
    assert f"{bad}:3:10: beacons is empty" in result.stderr
    assert f"{bad}:5:8: walls must be a list" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_zone_map_exits_2_without_a_traceback(tmp_path, capsys):
    assert main(["settings", "--zones", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err


def test_settings_with_zones_shows_site_values_and_per_exhibit_overrides(zones, capsys):
    assert main(["settings", "--zones", str(zones)]) == 0
    out = capsys.readouterr().out
    assert f"dwell = 7 s  (default {SETTINGS['dwell'].default:g} s;" in out
    assert "  coin-1: margin = 4 dB, dwell = 6.5 s" in out
    assert "dome:" not in out  # uses the site's values


def test_settings_json_gives_defaults_site_values_and_overrides(zones, capsys):
    assert main(["settings", "--zones", str(zones), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in data["settings"]] == list(SETTINGS)
    dwell = next(s for s in data["settings"] if s["name"] == "dwell")
    assert dwell["unit"] == "s" and dwell["per_exhibit"] is True
    assert dwell["default"] == SETTINGS["dwell"].default
    assert data["site"]["dwell"] == 7.0
    assert data["exhibits"] == {"coin-1": {"margin": 4.0, "dwell": 6.5}, "dome": {}}


def test_settings_markdown_is_a_table_with_one_row_per_setting(capsys):
    assert main(["settings", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| Setting | Default |") and lines[1].startswith("|---|")
    assert [line.split(" | ")[0] for line in lines[2:]] == [f"| `{n}`" for n in SETTINGS]


def test_settings_markdown_with_zones_adds_the_sites_column_and_overrides(zones, capsys):
    assert main(["settings", "--markdown", "--zones", str(zones)]) == 0
    out = capsys.readouterr().out
    assert f"| `dwell` | {SETTINGS['dwell'].default:g} s | 7 s |" in out
    assert "| `coin-1` | `dwell` | 6.5 s |" in out


def test_every_command_help_shows_an_example():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub.choices, "no subcommands were found"
    for name, command in sub.choices.items():
        assert "example" in command.format_help(), f"'guide {name} --help' has no example"


@pytest.mark.parametrize("name", ["settings", "check", "coverage", "lint", "calibrate", "tune", "map"])
def test_every_staff_command_help_gives_its_exit_status_as_the_readme_says(name):
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert "Exit status: 0 when" in sub.choices[name].format_help(), f"'guide {name} --help'"


def test_a_module_added_to_guide_commands_becomes_a_subcommand(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello.py").write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello', epilog='example: guide hello')\n"
        "    p.set_defaults(run=lambda args: print('hello') or 3)\n")
    monkeypatch.setattr(guide.commands, "__path__", [*guide.commands.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "guide.commands.hello", raising=False)
    try:
        assert main(["hello"]) == 3
    finally:
        sys.modules.pop("guide.commands.hello", None)
    assert capsys.readouterr().out == "hello\n"


def test_a_guide_error_from_a_command_exits_2_with_its_message(monkeypatch, capsys):
    def fail(args):
        raise TrackError("fr/dome.ogg cannot be decoded: re-encode it")
    monkeypatch.setattr(guide.commands.settings, "run", fail)
    assert main(["settings"]) == 2
    assert capsys.readouterr().err == "guide: error: fr/dome.ogg cannot be decoded: re-encode it\n"


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(guide.commands.settings, "run", interrupted)
    assert main(["settings"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_usage_errors_and_help_return_instead_of_exiting(capsys):
    assert main(["settings", "--no-such-option"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    assert main(["settings", "--help"]) == 0
    assert "--zones" in capsys.readouterr().out


def test_a_file_the_system_will_not_let_us_write_exits_2_naming_it(monkeypatch, capsys):
    def full(args):
        raise OSError(28, "No space left on device", "/media/card/events.jsonl")
    monkeypatch.setattr(guide.commands.settings, "run", full)
    assert main(["settings"]) == 2
    assert capsys.readouterr().err == "guide: error: /media/card/events.jsonl: No space left on device\n"


def test_an_os_error_about_no_file_is_a_bug_and_keeps_its_traceback(monkeypatch):
    def bug(args):
        raise OSError("something inside the guide")
    monkeypatch.setattr(guide.commands.settings, "run", bug)
    with pytest.raises(OSError, match="something inside the guide"):
        main(["settings"])


def test_output_file_refuses_what_cannot_be_a_file_and_makes_missing_folders(tmp_path):
    assert output_file(tmp_path / "new" / "deep" / "out.csv", "--out") == tmp_path / "new/deep/out.csv"
    assert (tmp_path / "new" / "deep").is_dir() and not list((tmp_path / "new" / "deep").iterdir())
    for path, message in [("", "--out: give a file name"),
                          (tmp_path, "is a folder"),
                          ("/dev/null", "is not a regular file"),
                          (tmp_path / "new" / "deep" / "out.csv" / "x", "out.csv is a file, not a folder")]:
        if path == tmp_path / "new" / "deep" / "out.csv" / "x":
            (tmp_path / "new" / "deep" / "out.csv").write_text("")
        with pytest.raises(GuideError, match=message):
            output_file(path, "--out")
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "new" / "deep" / "out.csv")
    assert output_file(link, "--out") == tmp_path / "new" / "deep" / "out.csv"


def _numeric_options(parser: argparse.ArgumentParser):
    """(parser, option, type) of every option taking a number, subcommands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _numeric_options(sub)
        elif action.type is not None and action.type not in (str, Path) and action.option_strings:
            yield parser, action.option_strings[-1], action.type


@pytest.mark.parametrize("text, why", [
    ("1_0", "write it without the '_'"), ("١٠", "write it with the digits 0-9"), ("１０", "digits 0-9"),
    (" 7", "without the spaces"), ("7\n", "without the spaces"), ("", "give "),
    ("nan", "give "), ("inf", "give "), ("-inf", "give "), ("1e999", "give "),
])
def test_every_numeric_option_takes_a_plain_number_as_the_files_do(text, why):
    """Python's float() and int() read '1_0' as 10, Arabic-Indic or full-width
    digits, padding, 'nan' and 'inf'; a numeric option, like a cell of a
    file (csvlog.plain_float), refuses them, naming the form it wants."""
    from guide.simulator import build_parser as simulate_parser

    found = [(p, o, t) for parser in (build_parser(), simulate_parser())
             for p, o, t in _numeric_options(parser)]
    assert {o for _, o, _ in found} >= {"--seed", "--rate", "--budget", "--jobs", "--visitors",
                                        "--save-every", "--duration", "--offset", "--volume"}
    for parser, option, type_ in found:
        with pytest.raises(argparse.ArgumentTypeError) as e:
            type_(text)
        assert "give " in str(e.value) and why in str(e.value), (parser.prog, option, str(e.value))


def test_a_numeric_option_out_of_its_range_is_a_usage_error_naming_it(capsys):
    assert main(["tune", "--zones", "z", "--truth", "t", "--scans", "s", "--seed", "1_0"]) == 2
    assert "argument --seed: 1_0 is not a whole number (write it without the '_'); give a seed: " \
           "a whole number, 0 or more" in capsys.readouterr().err
    for option, value in (("--seed", "-1"), ("--budget", "0"), ("--jobs", "0"), ("--rate", "nan")):
        assert main(["tune", "--zones", "z", "--truth", "t", "--walks", "s", option, value]) == 2
        assert f"argument {option}: {value} is out of range; give " in capsys.readouterr().err
    assert main(["tune", "--zones", "z", "--truth", "t", "--scans", "s", "--seed", "7.0"]) == 2
    assert "7.0 is not a whole number" in capsys.readouterr().err


def test_settings_with_an_empty_zones_path_is_an_error_not_the_defaults(capsys):
    assert main(["settings", "--zones", ""]) == 2
    assert "zone map" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["coverage"], ["tune", "--scans", "s.csv", "--truth", "t.csv"]])
def test_an_empty_or_unknown_language_is_refused_not_taken_for_the_default(zones, capsys, command):
    """--lang '' ran guide tune in the site's first language; EN or French
    get the code they mean suggested."""
    for given, hint in (("", ""), ("EN", ""), ("French", "did you mean fr? "), ("FR", "did you mean fr? ")):
        assert main([*command, "--zones", str(zones), "--lang", given]) == 2
        shown = repr(given) if not given else given
        assert (f"guide: error: --lang {shown}: not one of the languages {zones} offers; {hint}"
                "give one of fr") in capsys.readouterr().err
