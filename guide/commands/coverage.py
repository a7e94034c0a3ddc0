"""`guide coverage`: how much of the visit exists in each language."""

from __future__ import annotations

import argparse
import json

EXAMPLE = """\
example:
  guide coverage --zones zones.yaml
      language  code  exhibits  narration  others play in
      French    fr    16/16     45/45 min  -
      English   en    14/16     38/45 min  French (2)

  guide coverage --zones zones.yaml --json     the same figures for other tools

"Narration" is what a visitor choosing that language hears in all: the part in
their language, of their own tracks plus the fallback tracks played instead.
The device tells each visitor their line before the first exhibit, worded in
their language, and says it aloud where zones.yaml has an intro track for it
(tracks/make_tracks.py writes and speaks the demo site's).

A track that cannot be played (unreadable, cut short, an Ogg file damaged,
or longer than an hour) counts as the device plays it: the next language of
the chain instead, or nothing.
Every such track is listed under the table, with its exhibit, its language
and why (guide check tells more about each track).

Exit status: 0 when every track can be played, 1 when some cannot (the
figures are then those visitors get until they are fixed), 2 when the
command itself is misused or the zone map does not load.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "coverage", help="how much of the visit exists in each language",
        description="Per language: the exhibits and minutes narrated in it, what "
                    "plays in another language instead, and what has no narration.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--lang", action="append", metavar="L",
                   help="only this language (repeatable); default: every language of the site")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from guide.cli import language
    from guide.coverage import coverage, figures, language_name, sentence
    from guide.errors import counted
    from guide.zones import load_zones

    site = load_zones(args.zones)
    langs = list(dict.fromkeys(args.lang)) if args.lang else list(site.languages)
    for lang in langs:
        language(site, lang)
    results = [coverage(site, lang) for lang in langs]
    broken = sorted({b for c in results for b in c.broken}, key=lambda b: (b.track, b.exhibit, b.lang))
    # tracks: {} (narrations still being recorded): silent in every language
    trackless = [e.id for e in site.exhibits if not e.tracks]
    if args.json:
        print(json.dumps({"site": site.name, "languages": [c.as_dict() for c in results],
                          "no_narration": trackless}, ensure_ascii=False, indent=2))
        return 1 if broken else 0
    rows = [("language", "code", "exhibits", "narration", "others play in")]
    for c in results:
        part, whole, unit = figures(c)
        others = [f"{language_name(code)} ({len(ids)})" for code, ids in c.fallback.items()]
        if c.silent:
            others.append(f"none ({len(c.silent)})")
        rows.append((language_name(c.lang), c.lang, f"{c.exhibits}/{c.total_exhibits}",
                     f"{part}/{whole} {'min' if unit == 'minutes' else 's'}", ", ".join(others) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1])
    print()
    for c in results:
        print(sentence(c))
    if trackless:
        print(f"\nNo narration in any language (tracks: {{}}): {', '.join(trackless)}")
    if broken:
        print(f"\n{counted(len(broken), 'track')} cannot be played; visitors hear the next language "
              "of the chain instead, or nothing (the figures above count that):")
        for b in broken:
            print(f"  {b}")
        return 1
    return 0
