"""`guide check`: everything that can be checked about a site, in one report."""

from __future__ import annotations

import argparse

EXAMPLE = """\
example:
  guide check --zones zones.yaml
      guide check: zones.yaml (La Coupole)

      Warnings (probably mistakes):
        track fr/dome.opus: starts with 4.2 s of silence; visitors may think ...
        beacon b-spare: is defined but no exhibit uses it: give it an exhibit ...

      Tracks:
        fr: 20 tracks, 20 min
        ...
      19 exhibits, 20 beacons, 75 tracks: 0 errors, 2 warnings.
      No errors; read the warnings.

  guide check --zones zones.yaml --json      the same, for scripts

It checks what the guide checks when it loads the zone map (each problem with
its line), then decodes every track in full: unreadable, silent, too quiet or
truncated tracks, tracks longer than the hour the device can play, long
silences, beacons no exhibit uses, exhibits that visitors of a language get no
narration at, audio files no exhibit uses.

Exit status: 0 when there are no errors (warnings are allowed), 1 when there
are errors, 2 when the command itself is misused.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="check a site: zone map, every track, unused beacons",
        description="Check a site before visitors use it: the zone map, every track "
                    "(decoded in full: readable, its length, not silent or too quiet), beacons no "
                    "exhibit uses and exhibits with no narration in some language.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.add_argument("--tracks", action="store_true", help="list every track and its length")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from guide.check import check_site, format_report

    report = check_site(args.zones, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report, tracks=args.tracks), end="")
    return 0 if report.ok else 1
