"""`guide tune`: search the trigger settings over recorded or simulated walks."""

from __future__ import annotations

import argparse

from guide.cli import number, output_file, rate, seed, site_inputs

EXAMPLE = """\
examples:
  guide tune --zones zones.yaml --scans scans.csv --truth truth.csv
      tries about 200 settings (2 processes, a progress bar), then prints the
      best few beside the current ones, their figures on the visitors it did
      not tune on, and the chosen settings as a zones.yaml snippet:

        trigger:
          dwell: 3.5  # s

  guide tune --zones zones.yaml --walks walks.csv --truth truth.csv --radio harsh --rate 1 --write
      simulated walks (the radio model turns positions into scans); writes the
      chosen settings into zones.yaml (comments and order kept; the old file
      is kept as zones.yaml.bak)

  guide tune --zones zones.yaml --scans scans.csv --truth truth.csv --out trigger.yaml --json

Objective: the highest recall with at most 0.2 interruptions and 400 s of
unwanted audio per visitor-hour; on equal recall the shortest wait. Half the
visitors (alternately) are kept aside to check the result on walks the search
never saw. Exhibits with their own value for a setting keep it.

Interruptions are rare single events: on a few visitor-hours, a count the
limit's own rate would give more than one time in ten (on 2.4 visitor-hours
at 0.2 an hour, 1) is within the limit; the output says so when it applies.

Exit status: 0 when the chosen settings keep within the limits, on the
visitors tuned on and on those kept aside, and do at least as well as the
current ones on the visitors kept aside (recall first, then the wait, then false
starts, as the search ranks them; a median wait less than a second longer counts
as the same, chance on a few walks); 1 otherwise (nothing is written
then, unless --force); 2 on a usage or input error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune", help="search the trigger settings on recorded or simulated walks",
        description="Search the site-wide trigger settings (dwell, margin, hysteresis, "
                    "smoothing, glance, dwell_again) by replaying walks through the engine "
                    "and scoring them against their ground truth.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scans", metavar="CSV", help="a scan log (visitor,t,beacon,rssi)")
    src.add_argument("--walks", metavar="CSV", help="visitor positions (visitor,t,x,y), turned "
                     "into scans by the radio model")
    p.add_argument("--truth", required=True, metavar="CSV", help="the ground truth of those walks")
    p.add_argument("--lang", help="the visitors' language (default: the site's first)")
    p.add_argument("--radio", default="museum", choices=("textbook", "museum", "harsh"),
                   help="with --walks: the radio model preset (default: museum)")
    p.add_argument("--rate", type=rate, help="with --walks: advertisements per second per beacon "
                   "(default: the radio model's, 10; 1 for a phone)")
    p.add_argument("--seed", type=seed, default=7,
                   help="random seed of the search and the radio (default: 7)")
    p.add_argument("--budget", type=number("a number of evaluations, 1 or more", whole=True, low=1),
                   default=200, metavar="N",
                   help="the most settings to try (default: 200, about a minute on 2 cores)")
    p.add_argument("--jobs", type=number("a number of processes, 1 or more", whole=True, low=1),
                   default=2, metavar="N", help="processes (default: 2)")
    p.add_argument("--no-holdout", action="store_true",
                   help="tune on every visitor (no check on walks it did not see)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--write", action="store_true",
                     help="write the chosen settings into the zone map itself")
    out.add_argument("--out", metavar="YAML", help="write the chosen settings as a snippet to this file")
    p.add_argument("--force", action="store_true",
                   help="write even when the chosen settings do not hold up on the visitors kept aside")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import datetime
    import json
    import sys
    from pathlib import Path

    from guide.errors import GuideError, listed
    from guide.files import replace_whole
    from guide.metrics import after_walk_said
    from guide.tune import PARAMETERS, format_result, snippet, tune
    from guide.yamledit import set_trigger, write_zones
    from guide.zones import load_zones

    if args.walks is None and (args.rate is not None or args.radio != "museum"):
        raise GuideError("--radio and --rate apply to --walks (a scan log already has its radio)")
    # what will be written, checked before the search: never one of its inputs
    inputs = site_inputs(load_zones(args.zones), scans=args.scans, walks=args.walks, truth=args.truth)
    out = None
    if args.out is not None:
        out = output_file(args.out, "--out", inputs=inputs,
                          replaces=("a settings snippet of guide tune (a `trigger:` mapping alone)",
                                    _is_snippet))
    if args.write:
        output_file(args.zones, "--write", inputs={k: v for k, v in inputs.items() if k != "--zones"})
    result = tune(args.zones, truth=args.truth, scans=args.scans, walks=args.walks,
                  radio=args.radio, rate=args.rate, seed=args.seed, lang=args.lang,
                  budget=args.budget, jobs=args.jobs, holdout=not args.no_holdout,
                  progress=not args.no_progress and not args.json)
    source = Path(args.scans or args.walks).name
    if result.unheard:  # as guide calibrate words it
        print(f"guide tune: stood at, but their beacon was never heard (flat battery? wrong id in "
              f"zones.yaml?): {listed(result.unheard)}; their listen rows count as missed "
              "whatever the settings", file=sys.stderr)
    if result.late:  # as simulate.py and guide calibrate, with metrics.after_walk
        print(f"guide tune: {after_walk_said(result.late, args.truth, 'scans' if args.scans else 'walk')}: "
              f"{'it counts' if len(result.late) == 1 else 'they count'} as missed", file=sys.stderr)
    note = f"guide tune {datetime.date.today().isoformat()} on {source}"
    chosen = {k: result.chosen.values[k] for k in PARAMETERS}
    text = snippet(chosen, comment=note)
    writable = result.improved and (result.ok or args.force)
    written = None
    if writable and args.write:
        zones = Path(args.zones)
        backup = write_zones(zones, set_trigger(zones.read_text(encoding="utf-8-sig"),
                                                site=result.changes, note=note, file=str(zones)))
        written = f"wrote {', '.join(result.changes)} into {zones} (previous version: {backup})"
    elif writable and out is not None:
        try:  # whole or not at all: a snippet it replaces stays as it was if this fails
            replace_whole(out, [text.encode("utf-8")], durable=True)
        except OSError as e:
            raise GuideError(f"--out {args.out}: cannot write it ({e.strerror or e})") from None
        written = f"wrote the settings to {args.out}"
    if args.json:
        def side(c):
            return {"settings": c.values, "tuned": c.tuned.as_dict(),
                    "held_out": c.held_out.as_dict() if c.held_out else None,
                    "within_limits": c.within_limits(),
                    "held_out_within_limits": c.held_out_within_limits()}
        print(json.dumps({"ok": result.ok, "improved": result.improved,
                          "evaluations": result.evaluations, "seconds": round(result.seconds, 1),
                          "tune_visitors": list(result.tune_visitors),
                          "held_out_visitors": list(result.held_out_visitors),
                          "current": side(result.current), "chosen": side(result.chosen),
                          "best": [side(c) for c in result.best], "changes": result.changes,
                          "unheard": list(result.unheard),
                          "late_listen_rows": [{"visitor": r.visitor, "exhibit": r.exhibit,
                                                "start": r.start} for r in result.late],
                          "snippet": text, "written": written}, indent=2))
    else:
        print(format_result(result), end="")
        if result.improved:
            print("\nThe chosen settings, for zones.yaml (top level):\n")
            print(text, end="")
        if written:
            print(f"\n{written}")
        elif result.improved and (args.write or args.out) and not writable:
            print("\nNothing written (see above); --force writes anyway.", file=sys.stderr)
    return 0 if result.ok else 1


def _is_snippet(path) -> bool:
    """Whether an existing file is what `--out` writes (so it may be replaced):
    YAML whose only top-level key is `trigger`."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and set(data) == {"trigger"}
