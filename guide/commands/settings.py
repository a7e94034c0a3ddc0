"""`guide settings`: every trigger setting, and what a site sets.

The README's table of settings is this command's `--markdown` output, so the
documentation cannot drift from `guide.settings.TriggerSettings`.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import fields
from typing import Any

from guide.settings import SETTINGS, TriggerSettings
from guide.site import Site

EPILOG = """\
examples:
  guide settings                              names, units, defaults and meanings
  guide settings --zones site/zones.yaml      the values this site uses, and which
                                              exhibits override them
  guide settings --markdown > settings.md     the table in the README
  guide settings --zones site/zones.yaml --json

Settings go in zones.yaml under 'trigger:' at the top level (the whole site),
and under an exhibit's 'trigger:' for those marked per-exhibit:

  trigger: {dwell: 4.0}
  exhibits:
    - id: coin-1
      trigger: {dwell: 6.0}

Exit status: 0 when the settings are listed, 2 when the command itself is
misused or the zone map does not load.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "settings", help="list the trigger settings (and a site's values)",
        description="List every trigger setting of the engine: its name, unit, "
                    "default and meaning. With --zones, also the value the site uses "
                    "and each exhibit's overrides.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", metavar="ZONES_YAML",
                   help="a zone map: show its site-wide values and per-exhibit overrides")
    style = p.add_mutually_exclusive_group()
    style.add_argument("--json", action="store_true", help="print JSON, for programs")
    style.add_argument("--markdown", action="store_true",
                       help="print Markdown tables (the README's settings table)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    site = None
    if args.zones is not None:  # --zones "" is a zone map not found, not none asked for
        from guide.zones import load_zones
        site = load_zones(args.zones)
    if args.json:
        print(json.dumps(_as_json(site), indent=2, ensure_ascii=False))
    elif args.markdown:
        print(_as_markdown(site), end="")
    else:
        print(_as_text(site), end="")
    return 0


def overrides(site: Site) -> dict[str, dict[str, Any]]:
    """Exhibit id -> {setting: value} where the exhibit differs from the site.

    An exhibit that repeats the site's own value is not listed: only what
    actually changes the engine's behaviour there."""
    return {e.id: {f.name: getattr(e.trigger, f.name) for f in fields(TriggerSettings)
                   if getattr(e.trigger, f.name) != getattr(site.trigger, f.name)}
            for e in site.exhibits}


def _value(v: Any) -> str:
    if v is None:
        return "auto"
    if isinstance(v, bool):
        return "true" if v else "false"  # as written in YAML
    return f"{v:g}" if isinstance(v, float) else str(v)


def _with_unit(v: Any, unit: str) -> str:
    return _value(v) + (f" {unit}" if unit and v is not None and not isinstance(v, bool) else "")


def _range(meta: dict[str, Any]) -> str:
    lo, hi = meta["min"], meta["max"]
    if lo is not None and hi is not None:
        return f"{_value(float(lo))} to {_value(float(hi))}"
    if lo is not None:
        return f"at least {_value(float(lo))}"
    if hi is not None:
        return f"at most {_value(float(hi))}"
    return ""


def _scope(meta: dict[str, Any]) -> str:
    return "per exhibit" if meta["per_exhibit"] else "site-wide"


def _as_text(site: Site | None) -> str:
    lines = []
    if site is not None:
        lines += [f"{site.name} ({site.path})", ""]
    for name, f in SETTINGS.items():
        meta = f.metadata
        facts = [x for x in (_range(meta), _scope(meta)) if x]
        if site is not None:
            value = getattr(site.trigger, name)
            facts.insert(0, f"default {_with_unit(f.default, meta['unit'])}")
        else:
            value = f.default
        lines.append(f"{name} = {_with_unit(value, meta['unit'])}  ({'; '.join(facts)})")
        lines += textwrap.wrap(meta["doc"], width=76, initial_indent="    ",
                               subsequent_indent="    ")
    if site is not None:
        lines += ["", "Per-exhibit overrides:"]
        changed = {k: v for k, v in overrides(site).items() if v}
        for exhibit_id, values in changed.items():
            listed = ", ".join(f"{n} = {_with_unit(v, SETTINGS[n].metadata['unit'])}"
                               for n, v in values.items())
            lines.append(f"  {exhibit_id}: {listed}")
        if not changed:
            lines.append("  none: every exhibit uses the site's values")
    return "\n".join(lines) + "\n"


def _as_json(site: Site | None) -> dict[str, Any]:
    out: dict[str, Any] = {"settings": [
        {"name": name, "unit": f.metadata["unit"], "default": f.default,
         "min": f.metadata["min"], "max": f.metadata["max"],
         "per_exhibit": f.metadata["per_exhibit"], "doc": f.metadata["doc"]}
        for name, f in SETTINGS.items()]}
    if site is not None:
        out["zones"] = str(site.path)
        out["site"] = {name: getattr(site.trigger, name) for name in SETTINGS}
        out["exhibits"] = overrides(site)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _as_markdown(site: Site | None) -> str:
    head = ["Setting", "Default", "Range", "Scope", "What it does"]
    if site is not None:
        head.insert(2, "This site")
    rows = []
    for name, f in SETTINGS.items():
        meta = f.metadata
        row = [f"`{name}`", _with_unit(f.default, meta["unit"]), _range(meta),
               _scope(meta), _cell(meta["doc"])]
        if site is not None:
            row.insert(2, _with_unit(getattr(site.trigger, name), meta["unit"]))
        rows.append(row)
    out = _table(head, rows)
    if site is not None:
        changed = [(e, n, v) for e, values in overrides(site).items() for n, v in values.items()]
        out += "\nPer-exhibit overrides:\n\n"
        out += (_table(["Exhibit", "Setting", "Value"],
                       [[f"`{e}`", f"`{n}`", _with_unit(v, SETTINGS[n].metadata["unit"])]
                        for e, n, v in changed])
                if changed else "None: every exhibit uses the site's values.\n")
    return out


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
