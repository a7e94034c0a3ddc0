"""`guide record`: walk the site once with a device, write a scan log."""

from __future__ import annotations

import argparse

from guide.cli import number
from guide.csvlog import MAX_T

EXAMPLE = """\
example:
  guide record --zones zones.yaml --out walk-2024-05-02.csv --visitor staff-1
      (walk the site; Ctrl-C when done)
  python simulate.py --zones zones.yaml --scans walk-2024-05-02.csv ...
      (replay the walk in the simulator to tune the trigger settings)

Rows are FORMATS.md scan-log rows (visitor,t,beacon,rssi), one per
advertisement of a beacon of the zone map, t in seconds since the recording
began. At the end it lists the zone map's beacons never heard (flat battery?)
and beacons heard that the zone map does not have, written as zones.yaml
identities ready to paste. A recording in which no beacon of the zone map
was heard exits 1 and leaves no file. --force replaces only a scan log (never
the zone map or another file), and only once the new recording is done; until
then the rows go to CSV.XXXX.part beside it, which a recording that is killed
leaves behind (the next `guide record` into CSV names it). A disk that fills
up stops the recording after its last whole row, and it exits 1 saying so.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "record", help="record a scan log from real beacon advertisements",
        description="Scan for the zone map's beacons and write every advertisement "
                    "heard to a scan log, to replay a real walk in the simulator.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--out", required=True, metavar="CSV", help="the scan log to write")
    p.add_argument("--visitor", default="staff", help="the visitor column's value (default: staff)")
    p.add_argument("--adapter", metavar="HCI", help="Bluetooth adapter (default: the first powered one)")
    p.add_argument("--duration", type=number(f"seconds, more than 0 and at most a week ({MAX_T:g})",
                                             low=0, high=MAX_T),
                   metavar="S", help="stop after S seconds (default: at Ctrl-C)")
    p.add_argument("--force", action="store_true",
                   help="replace CSV if it is a scan log (never another file), once the new "
                        "recording is done")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import csv
    import io
    import os
    import shutil
    import sys
    import tempfile
    from collections import Counter
    from pathlib import Path

    from guide.ble import BeaconParser, BleakSource, describe
    from guide.cli import output_file, site_inputs
    from guide.commands.run import setup_logging, stop_on_signals
    from guide.csvlog import id_problem
    from guide.errors import GuideError
    from guide.files import append_whole
    from guide.zones import load_zones

    setup_logging(args.quiet)
    site = load_zones(args.zones)
    why = id_problem(args.visitor.strip(), "visitor")
    if why or "," in args.visitor or args.visitor != args.visitor.strip():
        raise GuideError(f"--visitor {args.visitor!r}: give a short id without commas or spaces "
                         f"around it (e.g. staff-1){'; ' + why if why else ''}")
    if args.duration == 0:  # the type refused the rest
        raise GuideError(f"--duration 0: give a number of seconds, more than 0 and at most a week ({MAX_T:g})")
    out = output_file(args.out, "--out", inputs=site_inputs(site))
    replacing = out.exists() and out.stat().st_size > 0
    if replacing and not args.force:
        raise GuideError(f"{out} already exists: choose another name, or pass --force to overwrite it")
    if replacing and not _is_scan_log(out):
        raise GuideError(f"--out {out}: exists and is not a scan log (its first line is not a "
                         "visitor,t,beacon,rssi header); --force only replaces scan logs: "
                         "give another name, or move the file away")
    for part in _cut_short(out):
        print(f"guide: warning: {part} holds the rows of an earlier `guide record --force` into {out} "
              "that was cut short (killed, or a power loss) before it could replace it; it is a scan "
              f"log: rename it to keep that walk (mv {part} walk-cut-short.csv), or delete it",
              file=sys.stderr)
    parser = BeaconParser(site.beacons)
    source = BleakSource(parser, adapter=args.adapter)
    heard: Counter[str] = Counter()
    try:
        if replacing:  # the old log stays whole until the new one has rows to replace it with
            # `out` is where the data goes (output_file follows a link): a link stays a link
            fd, part = tempfile.mkstemp(dir=out.parent, prefix=f"{out.name}.", suffix=".part")
            target = Path(part)
        else:
            target = out
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise GuideError(f"{out}: cannot write the scan log ({e.strerror})") from None
    if replacing:
        print(f"recording into {target}; it replaces {out} when the recording ends", file=sys.stderr)
    # rows are made in memory and written whole, each second: a full disk cuts
    # the recording after its last whole row, never in the middle of one
    pending = io.StringIO()
    rows = csv.writer(pending, lineterminator="\n")
    rows.writerow(["visitor", "t", "beacon", "rssi"])
    kept = {"bytes": 0, "rows": 0, "t": 0.0}  # what the file holds whole
    failed: list[OSError] = []

    def save(t: float) -> None:
        data = pending.getvalue().encode("utf-8")
        pending.seek(0)
        pending.truncate()
        try:
            for row in data.splitlines(keepends=True):  # a row at a time: those that fit are kept
                kept["bytes"] = append_whole(fd, row, kept["bytes"])
                kept["rows"] += 1
        finally:
            kept["t"] = t
            if data:
                os.fsync(fd)

    async def record() -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def on_sighting(beacon: str, rssi: int) -> None:
            rows.writerow([args.visitor, f"{loop.time() - t0:.3f}", beacon, rssi])
            heard[beacon] += 1

        stop = stop_on_signals(asyncio.Event())
        if args.duration is not None:
            loop.call_later(args.duration, stop.set)
        try:
            save(0.0)  # the header: a disk already full stops the recording before it scans
        except OSError as e:
            failed.append(e)
            return
        scan = asyncio.create_task(source.run(on_sighting, lambda: loop.time() - t0))
        try:
            while not stop.is_set():  # a crash loses at most the last second of rows
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                try:
                    save(loop.time() - t0)
                except OSError as e:  # a full disk: keep what is whole, and stop
                    failed.append(e)
                    break
        finally:
            scan.cancel()
            await asyncio.gather(scan, return_exceptions=True)

    try:
        asyncio.run(record())
    finally:
        os.close(fd)
    if failed:
        e = failed[0]
        if kept["rows"] <= 1:  # not even a row: no file that looks like a recording
            target.unlink(missing_ok=True)
        else:
            print(f"{target}: {kept['rows'] - 1} of the {sum(heard.values())} advertisements heard "
                  f"are kept, of the first {kept['t']:.0f} s of the recording", file=sys.stderr)
        if replacing:
            left = f"{out} is left as it was" + (f"; the rows recorded are in {target}" if kept["rows"] > 1 else "")
        else:
            left = f"{out} holds the rows recorded until then" if kept["rows"] > 1 else f"no file was written to {out}"
        print(f"guide: error: {target}: cannot write the scan log ({e.strerror or e}) "
              f"{kept['t']:.0f} s into the recording, which stopped there, every row written whole "
              f"({left}); free space on the disk and record the rest of the walk", file=sys.stderr)
        return 1
    counts = parser.counts()
    if not heard:  # nothing to replay: no file that looks like a recording
        target.unlink(missing_ok=True)
        kept = f"{out} is left as it was" if replacing else f"no file was written to {out}"
        during = "" if args.duration is None else f" in {args.duration:g} s"
        if not source.scanned:
            why = (f"no Bluetooth adapter could be reached{during} ({source.last_error or 'none found'}); "
                   "check that the adapter is plugged in and powered and that bluetoothd is running")
        elif not source.heard:
            why = (f"the adapter scanned but heard no advertisement at all{during}; "
                   "check that the beacons are powered and in range")
        else:
            why = (f"the adapter heard {source.heard} advertisements{during}, none from a beacon of "
                   f"{args.zones}; check that the zone map is this site's")
        _report_unknown(parser, describe)
        print(f"guide: error: nothing recorded: {why} ({kept})", file=sys.stderr)
        return 1
    if replacing:
        try:
            shutil.copymode(out, target)  # the new log keeps the old one's permissions
            os.replace(target, out)
        except OSError as e:
            raise GuideError(f"{out}: cannot replace it with the recording ({e.strerror or e}); "
                             f"the recording is in {target}") from None
    print(f"{out}: {counts.sightings} advertisements from {len(heard)} of the zone map's "
          f"{len(site.beacons)} beacons", file=sys.stderr)
    for beacon in sorted(site.beacons):
        print(f"  {beacon}: {heard[beacon] or 'never heard'}", file=sys.stderr)
    if counts.malformed or counts.implausible:
        print(f"  dropped: {counts.malformed} malformed, {counts.implausible} with an implausible RSSI",
              file=sys.stderr)
    _report_unknown(parser, describe)
    return 0


def _report_unknown(parser, describe) -> None:
    import sys

    if parser.unknown_seen:
        print("beacons heard that the zone map does not have:", file=sys.stderr)
        for ident, n in sorted(parser.unknown_seen.items(), key=lambda kv: -kv[1]):
            print(f"  {describe(ident)}   # {n} advertisements", file=sys.stderr)


def _cut_short(out) -> list:
    """The `.part` files a killed `record --force` left beside `out` (a path
    from output_file, links followed; their names are those `tempfile.mkstemp`
    gives below)."""
    import glob

    try:
        return sorted(p for p in out.parent.glob(f"{glob.escape(out.name)}.*.part") if p.is_file())
    except OSError:
        return []


def _is_scan_log(path) -> bool:
    """Whether `path` opens with a scan log's header (as guide.replay reads one)."""
    from guide.csvlog import open_csv
    from guide.errors import ScanLogError

    try:
        with open_csv(path, "scan log", ("visitor", "t", "beacon", "rssi")):
            return True
    except ScanLogError:
        return False
