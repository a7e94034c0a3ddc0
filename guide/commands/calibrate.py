"""`guide calibrate`: beacons' tx_power, per-exhibit levels and margins, from staff standing at each exhibit."""

from __future__ import annotations

import argparse

EXAMPLE = """\
example:
  1. Walk the site with a device, standing half a minute at each exhibit:
       guide record --zones zones.yaml --out calib.csv --visitor staff-1
     and note when you stood where, as ground truth (one 'listen' row each):
       visitor,start,end,exhibit,intent
       staff-1,12.0,45.0,coin-1,listen
       staff-1,52.0,84.0,coin-2,listen
  2. guide calibrate --zones zones.yaml --scans calib.csv --truth calib-truth.csv
       Beacons, from their levels at the other exhibits (path-loss exponent 1.72):
         beacon   readings  tx_power old -> new
         coin-2   11        -59 -> -64 dBm
       ...
       Exhibits (leads with those tx_power values):
       exhibit  stood  level seen p10/median  lead p10/median  level old -> new    margin old -> new
       coin-1   33 s   -63.2 / -61.0 dBm      4.1 / 6.3 dB     -72.5 -> -68.2 dBm  5 -> 4.1 dB
       ...
     and zones.yaml gets the new tx_power on those beacons and, on each exhibit
     recorded (comments and order kept, the previous file kept as zones.yaml.bak):
       trigger: {level: -68.2, margin: 4.1}  # guide calibrate 2024-05-02 on calib.csv

  guide calibrate ... --dry-run          show what would change, write nothing
  guide calibrate ... --keep-tx-power    leave every beacon's tx_power as it is
  guide calibrate ... --visitor 'staff-*' --json

A beacon's tx_power is fitted from its levels where staff stood at other
exhibits, 2 m or more away with no wall between (near a beacon a step aside
moves the level by several dB): declared values are often several dB off,
and the engine compares exhibits on RSSI minus tx_power. Each exhibit's level
then becomes a low percentile of the level the engine saw there less 5 dB
(other visitors' devices read a little lower); its margin a low percentile
of its lead over the loudest other exhibit, at least 1 dB and at most the
site's margin.

Exit status: 0 when every exhibit was calibrated and settings suffice; 1 when
some exhibit was not recorded (or too briefly), or another exhibit out-leads
it where staff stood (settings cannot fix that: move a beacon); 2 on a usage
or input error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate", help="beacons' tx_power, per-exhibit level and margin, from staff "
                          "standing at each exhibit",
        description="From a recording of staff standing at each exhibit (guide record) and "
                    "its ground truth, measure what the engine sees at each exhibit and "
                    "write each beacon's 'tx_power' and each exhibit's 'level' and 'margin' "
                    "into zones.yaml.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--scans", required=True, metavar="CSV", help="the recording (scan log)")
    p.add_argument("--truth", required=True, metavar="CSV",
                   help="when staff stood at which exhibit ('listen' rows)")
    p.add_argument("--visitor", action="append", metavar="ID",
                   help="only these recordings (repeatable; shell patterns like 'staff-*' "
                        "or 'v00[1-9]'); default: all")
    p.add_argument("--dry-run", action="store_true", help="show the changes, write nothing")
    p.add_argument("--keep-tx-power", action="store_true",
                   help="leave every beacon's tx_power as declared (only levels and margins)")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import datetime
    import json
    import sys
    from pathlib import Path

    from guide.calibrate import calibrate, format_result, select_visitors
    from guide.cli import output_file
    from guide.errors import GuideError, counted, listed
    from guide.metrics import after_walk, after_walk_said, read_truth
    from guide.replay import ScanStats, read_scans
    from guide.yamledit import set_beacons, set_trigger, write_zones
    from guide.zones import load_zones

    zones = Path(args.zones)
    site = load_zones(zones)
    if not args.dry_run:  # checked before the work: calibrate writes into the zone map
        output_file(zones, "--zones", inputs={"--scans": args.scans, "--truth": args.truth})
    truth = read_truth(args.truth, site.exhibit_ids)
    visitors = select_visitors(truth, args.visitor)
    stats = ScanStats()
    result = calibrate(site, read_scans(args.scans, site, stats=stats), truth, visitors=visitors,
                       tx_power=not args.keep_tx_power)
    stats.check_site(args.scans, site)  # an empty log, or another site's: its own error
    rows = [r for r in truth if r.intent == "listen" and (visitors is None or r.visitor in visitors)]
    unrecorded = sorted({r.visitor for r in rows} - set(stats.last_t))
    late = after_walk(rows, stats.last_t)
    if result.changes and unrecorded:
        print(f"guide calibrate: {counted(len(unrecorded), 'visitor')} of {args.truth} not in "
              f"{args.scans} ({listed(unrecorded)}): their stays are left out", file=sys.stderr)
    if result.changes and late:
        print(f"guide calibrate: {after_walk_said(late, args.truth, 'scans')}: left out", file=sys.stderr)
    if not result.changes:
        if not rows:
            why = "it has no 'listen' rows for those visitors"
        elif not set(stats.last_t) & {r.visitor for r in rows}:
            why = "its visitors are not in the scan log"
        elif all(r.start > stats.last_t.get(r.visitor, -1.0) for r in rows):
            why = (f"its listen rows start after the scans of their visitors end: are the times "
                   f"of both in seconds since the walk began?")
        else:
            why = "the stays are too short (stand half a minute at each exhibit)"
        raise GuideError(f"{args.truth}: nothing to calibrate from: {why}")
    note = f"guide calibrate {datetime.date.today().isoformat()} on {Path(args.scans).name}"
    written = None
    if not args.dry_run:
        text = set_beacons(zones.read_text(encoding="utf-8-sig"), result.tx_power_values(),
                           note=note, file=str(zones))
        text = set_trigger(text, exhibits=result.values(), note=note, file=str(zones))
        backup = write_zones(zones, text)
        written = {"zones": str(zones), "backup": str(backup)}
    if args.json:
        print(json.dumps({**result.as_dict(), "written": written}, indent=2))
    else:
        print(f"guide calibrate: {zones} from {args.scans} "
              f"({len(result.visitors)} recording{'s' if len(result.visitors) != 1 else ''})\n")
        print(format_result(result), end="")
        print()
        if written:
            beacons = len(result.tx_power_values())
            tx = f"tx_power for {counted(beacons, 'beacon')}, " if beacons else ""
            print(f"Wrote {tx}"
                  f"level and margin for {counted(len(result.changes), 'exhibit')} into {zones} "
                  f"(previous version: {written['backup']}).")
        else:
            print("Dry run: nothing written.")
    return 0 if result.ok else 1
