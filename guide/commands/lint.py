"""`guide lint`: where the layout will trip the guide, and what to change."""

from __future__ import annotations

import argparse

EXAMPLE = """\
example:
  guide lint --zones zones.yaml
      Close clusters (exhibits the radio confuses):
        v1, v2-rocket, v2-engine

      Exhibits the radio cannot tell apart:
        v1 and v2-rocket (2.5 m apart): the radio can hardly tell them apart. Where
        visitors stand at v1, its expected lead over v2-rocket is 5.1 dB against the
        5 dB it needs and 8 dB of noise: about 50% of visitors there would get it started.
          - move the beacons apart: ... about 6 m would let the radio tell them apart
          - raise the dwell for v1 to 7 s (now 5 s), so a visitor at v2-rocket does not ...
      ...

  guide lint --zones zones.yaml --radio harsh     judge with harsher radio (phones, thick walls)
  guide lint --zones zones.yaml --json          every finding, for scripts
  guide lint --zones zones.yaml --all           every finding as text (by default
                                                at most 10 of each kind, then how many more)

It finds zones that overlap, exhibits the radio cannot tell apart where
visitors stand (the radio model's expected lead against its noise), signal
too weak where visitors stand, zones across a doorway, beacons heard through
a wall, visitors standing behind a wall from their beacon, and a dwell_again
below its dwell (the engine waits the dwell anyway); each with what to change,
only ever to values zones.yaml accepts. 'guide map' draws them.

Exit status: 0 when there is nothing to report, 1 when there are findings,
2 on a usage or input error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lint", help="find layout problems: overlaps, exhibits the radio confuses, doorways",
        description="Check the site plan with the radio model: overlapping zones, exhibits "
                    "the radio cannot tell apart, weak signal, doorways and walls, each "
                    "with a concrete suggestion.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--radio", default="museum", choices=("textbook", "museum", "harsh"),
                   help="the radio model preset to judge with (default: museum)")
    p.add_argument("--all", action="store_true",
                   help="print every finding (by default at most 10 of each kind, then how "
                        "many more; --json always lists them all)")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts (every finding)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from guide.lint import SHOWN_PER_KIND, format_report, lint_site
    from guide.zones import load_zones

    report = lint_site(load_zones(args.zones), model=args.radio)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report, per_kind=None if args.all else SHOWN_PER_KIND), end="")
    return 0 if report.ok else 1
