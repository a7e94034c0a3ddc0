"""`guide run`: the handheld device itself."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from guide.cli import number

EXAMPLE = """\
examples:
  guide run --zones zones.yaml --lang en --events /var/lib/guide/events.jsonl
      scan for beacons, play each exhibit's track in English, log what it does
  guide run --zones zones.yaml --lang en --events events.jsonl --new-visit
      the device is handed to a new visitor: forget the previous visit
  guide run --zones zones.yaml --events bench.jsonl --replay walk.csv --visitor staff-1
      play a recorded walk (guide record) through the real audio, without Bluetooth

A visit survives crashes and reboots: its state (language, exhibits heard and
walked away from, the playing track and its position, the volume) is saved beside the event
log (EVENTS.state.json, or --state) and resumed at start, the interrupted track a
few seconds before where it stopped. --lang chooses a new visit's language; a
resumed visit keeps its own. Ctrl-C or SIGTERM stops cleanly. --events is a new
file or an event log of guide's: any other file is refused, and left as it was;
so is a log or a state file another guide run is writing (one run per log and
per state file; a run that was killed holds nothing). A disk that fills up
mid-visit does not stop the visit; the run then exits 1 and says how many
writes failed.

Keys (in a terminal): space pause/resume, r replay, s skip, l next language,
+ / - volume.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run the device: scan beacons, play tracks, keep the visit",
        description="The handheld audio guide: BLE beacons in, narration out.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--lang", metavar="L", help="a new visit's language (default: the site's first)")
    p.add_argument("--events", default="events.jsonl", metavar="JSONL",
                   help="the event log, appended durably (default: events.jsonl)")
    p.add_argument("--state", metavar="PATH", help="the visit state file (default: EVENTS.state.json)")
    p.add_argument("--new-visit", action="store_true",
                   help="start a new visit, ignoring any saved one (a --state file that is not a "
                        "visit state is kept, renamed to NAME.unread)")
    p.add_argument("--adapter", metavar="HCI", help="Bluetooth adapter (default: the first powered one)")
    p.add_argument("--replay", metavar="CSV", help="sightings from a scan log instead of Bluetooth")
    p.add_argument("--visitor", metavar="V", help="with --replay: whose rows (default: the first visitor's)")
    p.add_argument("--save-every", type=number("seconds from 0.05 to 600", low=0.05, high=600),
                   default=1.0, metavar="S",
                   help="while a track plays, save its position every S seconds (default: 1); "
                        "shorter resumes closer to where a crash stopped it, longer writes less")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from guide.ble import BeaconParser, BleakSource, ReplaySource
    from guide.buttons import HELP, TerminalInput
    from guide.cli import language, output_file, site_inputs
    from guide.device import Device
    from guide.errors import GuideError
    from guide.player import SimpleaudioPlayer
    from guide.eventlog import check_event_log
    from guide.replay import ScanStats, read_scans
    from guide.zones import load_zones

    setup_logging(args.quiet)
    if args.visitor is not None and args.replay is None:
        raise GuideError("--visitor only goes with --replay (whose rows of the scan log to play); "
                         "leave it out when scanning beacons")
    site = load_zones(args.zones)
    lang = language(site, args.lang)
    # the files the device writes, checked before anything starts
    inputs = site_inputs(site, replay=args.replay)
    events = output_file(args.events, "--events", inputs=inputs)
    state = output_file(f"{args.events}.state.json" if args.state is None else args.state, "--state",
                        inputs={**inputs, "--events": events})
    check_event_log(events)
    if args.replay:
        # read whole once, to check it before anything starts and to know its
        # visitors; then again as the visit plays: a long walk is never held in memory
        stats = ScanStats()
        visitors = list(dict.fromkeys(v for v, _, _, _ in read_scans(args.replay, site, stats=stats)))
        visitor = args.visitor or (visitors[0] if visitors else None)  # the first in the log
        if visitor not in visitors:
            raise GuideError(_no_rows(args, stats, visitors))
        source = ReplaySource((t, b, r) for v, t, b, r in read_scans(args.replay, site) if v == visitor)
    else:
        source = BleakSource(BeaconParser(site.beacons), adapter=args.adapter)
    device = Device(site, lang=lang, make_player=SimpleaudioPlayer,
                    log_path=events, state_path=state, new_visit=args.new_visit,
                    save_every=args.save_every)
    buttons = TerminalInput()
    if buttons.interactive():
        print(HELP, file=sys.stderr)

    async def main() -> None:
        await device.run(source, buttons, stop_on_signals(asyncio.Event()))

    asyncio.run(main())
    if device.failed_writes:  # the visit played on; whoever collects the device must know
        print(f"guide run: the visit played to its end, but {device.failed_writes} write(s) of it failed "
              f"(first: {device.first_failure}). {events} holds only whole lines and the state file its "
              f"last whole save; free space on the disk (or make it writable) before the next visit.", file=sys.stderr)
        return 1
    return 0


def _no_rows(args: argparse.Namespace, stats, visitors: list[str]) -> str:
    """Why --replay gives the device nothing to play (`visitors`: those with
    rows naming a beacon of the zone map)."""
    from guide.errors import listed

    if stats.rows == 0:
        return f"--replay {args.replay}: the scan log has no rows; record a walk into it (guide record)"
    if not visitors:
        return (f"--replay {args.replay}: none of its {stats.rows} rows names a beacon of {args.zones} "
                f"(it names {stats.unknown_names(5)}); give the zone map the walk was recorded with")
    return (f"--visitor {args.visitor}: {args.replay} has no rows of that visitor with a beacon of "
            f"{args.zones}; its visitors are {listed(sorted(visitors))}")


def stop_on_signals(stop: asyncio.Event) -> asyncio.Event:
    """Set `stop` on SIGINT, SIGTERM or SIGHUP (the terminal or SSH session
    it runs in closed: the visit ends cleanly, saved, as on Ctrl-C, rather
    than killed mid-write). Call inside the running loop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    return stop


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (main() may be called again
    by a program or a test that has replaced it since)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup_logging(quiet: bool = False) -> None:
    """The device's messages on stderr, timed, for the screen and the journal."""
    log = logging.getLogger("guide")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
