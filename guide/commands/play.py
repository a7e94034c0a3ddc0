"""`guide play`: one exhibit's track through the default audio device, the
way a handheld would play it (a staff check of a track).
"""

from __future__ import annotations

import argparse
import queue
import sys

from guide.cli import language, not_one_of, number
from guide.errors import GuideError, TrackError

EPILOG = """\
examples:
  guide play --zones zones.yaml --exhibit dome --lang en
  guide play --zones zones.yaml --exhibit dome --lang nl --offset 30 --volume 0.5

The track is the one the guide would play: the exhibit's track in LANG, or in
the first language of LANG's fallbacks that has one (said when it happens).
Ctrl-C fades it out. Exit status 2, with the reason, for a missing or
undecodable track or when there is no audio device.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "play", help="play one exhibit's track on this machine's audio device",
        description="Play an exhibit's narration in a language through ALSA's default "
                    "device, decoded and faded exactly as on a handheld.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES_YAML", help="the site's zone map")
    p.add_argument("--exhibit", required=True, metavar="ID", help="the exhibit's id in the zone map")
    p.add_argument("--lang", required=True, metavar="LANG", help="the visitor's language, e.g. en")
    p.add_argument("--offset", type=number("seconds from the start, 0 or more", low=0), default=0.0,
                   metavar="SECONDS",
                   help="start this far into the track (default: 0)")
    p.add_argument("--volume", type=number("a gain from 0 to 1", low=0, high=1), default=1.0,
                   metavar="0..1",
                   help="gain on the samples (default: 1.0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from guide.player import Failed, SimpleaudioPlayer
    from guide.tracks import duration
    from guide.zones import load_zones

    site = load_zones(args.zones)
    ids = [e.id for e in site.exhibits]
    if args.exhibit not in ids:
        raise not_one_of("--exhibit", args.exhibit, ids, f"the exhibits of {args.zones}")
    language(site, args.lang)
    found = site.track_for(args.exhibit, args.lang)
    if found is None:
        chain = ", ".join(site.chain(args.lang))
        raise TrackError(f"{args.zones}: exhibit {args.exhibit!r} has no track in {chain}")
    lang, relative = found
    path = site.track_path(relative)
    seconds = duration(path)
    if args.offset >= seconds:
        raise GuideError(f"--offset {args.offset}: {relative} lasts only {seconds:.1f} s")
    if lang != args.lang:
        print(f"no {args.lang} track for {args.exhibit}: playing the {lang} one", file=sys.stderr)

    events: queue.Queue = queue.Queue()
    player = SimpleaudioPlayer(events.put, volume=args.volume)  # DeviceError without a device
    try:
        player.play(path, offset=args.offset)
        left = seconds - args.offset
        where = f" from {_clock(args.offset)}" if args.offset else ""
        print(f"playing {relative}{where} ({_clock(left)} to go) on the default audio device; "
              "Ctrl-C stops", file=sys.stderr)
        try:
            event = events.get()
        except KeyboardInterrupt:
            player.stop(fade=0.5)
            raise
        if isinstance(event, Failed):
            raise TrackError(event.message)
        print("done", file=sys.stderr)
        return 0
    finally:
        player.close()


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"
