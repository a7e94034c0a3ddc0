"""`guide map`: the site as a picture, with lint findings and one visitor's walk."""

from __future__ import annotations

import argparse

from guide.cli import rate, seed

EXAMPLE = """\
examples:
  guide map --zones zones.yaml --out map.png
      the plan: beacons (blue squares), zones (circles; orange where the radio
      confuses exhibits), overlaps (hatched), walls, doorways, and guide lint's
      findings as numbered red marks, listed under the plan (the 30 most serious,
      then how many more: guide lint --all lists them all); exhibits too close to
      read at the plan's scale are boxed (A, B...) and drawn enlarged under it

  guide map --zones zones.yaml --walks walks.csv --truth truth.csv --visitor v003 --out v003.svg
      adds visitor v003's walk: where each track started (green triangle) and
      ended (grey square), false starts as red crosses

  guide map --zones zones.yaml --scans scans.csv --truth truth.csv --visitor v003 --out v003.png
      the same from a scan log; the walk is then guessed from the radio (dashed)

The format follows the file name: .png or .svg.
Exit status: 0 when the map is written, 2 on a usage or input error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "map", help="draw the site: beacons, zones, overlaps, lint findings, a visitor's walk",
        description="Draw the site plan as PNG or SVG: beacons, zones, walls, overlaps and "
                    "guide lint's findings; optionally one visitor's walk with where each "
                    "track started and ended, false starts highlighted.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", required=True, metavar="ZONES", help="the zone map (zones.yaml)")
    p.add_argument("--out", required=True, metavar="FILE", help="the picture to write (.png or .svg)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scans", metavar="CSV", help="a scan log, to draw one visitor's visit")
    src.add_argument("--walks", metavar="CSV", help="visitor positions (visitor,t,x,y), to draw "
                     "one visitor's walk (scans made by the radio model)")
    p.add_argument("--truth", metavar="CSV", help="ground truth: mark the false starts")
    p.add_argument("--visitor", metavar="ID", help="whose walk to draw")
    p.add_argument("--lang", help="the visitor's language (default: the site's first)")
    p.add_argument("--radio", default="museum", choices=("textbook", "museum", "harsh"),
                   help="radio model for lint and for --walks (default: museum)")
    p.add_argument("--rate", type=rate, help="with --walks: advertisements per second per beacon "
                   "(default: the radio model's, 10; 1 for a phone), as simulate.py --rate")
    p.add_argument("--seed", type=seed, help="with --walks: the radio model's seed (default: 7)")
    p.add_argument("--no-lint", action="store_true", help="leave out guide lint's findings")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from guide.cli import language, output_file, site_inputs, starts_with
    from guide.errors import GuideError, counted
    from guide.sitemap import FORMATS, draw_map, save_map
    from guide.zones import load_zones

    out = Path(args.out)
    if not args.out.strip() or out.suffix.lower() not in FORMATS:
        raise GuideError(f"--out {args.out!r}: give a file name ending in .png or .svg")
    has_source = args.scans is not None or args.walks is not None
    if has_source and not args.visitor:
        raise GuideError("--scans/--walks draw one visitor's walk: say whose with --visitor ID")
    if args.visitor and not has_source:
        raise GuideError("--visitor needs the walk to draw: give --scans or --walks")
    if args.seed is not None and not args.walks:
        raise GuideError("--seed is the radio model's, for --walks (a scan log already has its radio)")
    if args.rate is not None and not args.walks:
        raise GuideError("--rate is the radio model's, for --walks (a scan log already has its radio)")
    if args.truth and not has_source:
        raise GuideError("--truth marks false starts on a walk: give --scans or --walks and --visitor")
    site = load_zones(args.zones)
    # where the picture goes (a link is followed), checked before drawing
    target = output_file(out, "--out", inputs=site_inputs(site, scans=args.scans, walks=args.walks,
                                                          truth=args.truth),
                         replaces=("a PNG or SVG picture", starts_with(b"\x89PNG", b"<?xml", b"<svg")))
    lang = language(site, args.lang)
    lint = None
    if not args.no_lint:
        from guide.lint import lint_site
        lint = lint_site(site, model=args.radio)
    walk = None
    if has_source:
        walk = _walk(site, args, lang)
    fig = draw_map(site, lint=lint, walk=walk)
    save_map(fig, target)
    parts = [counted(len(site.exhibits), "exhibit")]
    if lint is not None:
        parts.append(counted(len(lint.findings), "lint finding"))
    if walk is not None:
        false = sum(1 for m in walk.starts if m.false_start)
        parts.append(f"{walk.visitor}'s walk: {counted(len(walk.starts), 'track')} started"
                     + (f", {false} false" if args.truth else ""))
    print(f"wrote {out} ({'; '.join(parts)})")
    return 0


def _walk(site, args, lang):
    from guide.cli import not_one_of
    from guide.errors import GuideError
    from guide.metrics import read_truth
    from guide.replay import ScanStats, read_scans, replay
    from guide.simulator import track_durations
    from guide.sitemap import walk_from_positions, walk_from_scans

    truth = read_truth(args.truth, site.exhibit_ids) if args.truth else None
    if args.walks:
        from guide.radio import RadioModel, read_walks, scans_from_walk

        walkers: set[str] = set()  # named if the visitor is not among them; their rows are not kept
        positions = [row for row in read_walks(args.walks, grouped=False)
                     if walkers.add(row[0]) or row[0] == args.visitor]
        if not positions:
            raise not_one_of("--visitor", args.visitor, walkers, f"the visitors of {args.walks}")
        seed = 7 if args.seed is None else args.seed  # the default of --seed
        rows = list(scans_from_walk(site, positions, RadioModel.preset(args.radio), seed=seed,
                                    rate_hz=args.rate))
    else:
        stats = ScanStats()
        rows = [r for r in read_scans(args.scans, site, stats=stats) if r[0] == args.visitor]
        stats.check_site(args.scans, site)
        if not rows:  # the stats know every visitor: the others' rows are not kept
            raise not_one_of("--visitor", args.visitor, stats.last_t, f"the visitors of {args.scans}")
    if truth is not None and not any(r.visitor == args.visitor for r in truth):
        raise GuideError(f"--visitor {args.visitor}: no rows of that visitor in {args.truth}, so every "
                         "start would count as false; give that visitor's ground truth, or leave "
                         "out --truth")
    # every track the replay may start, named at once if some cannot be played
    track_durations(site, lang)
    events: list[dict] = []
    replay(site, rows, lang=lang, emit=events.append)
    if args.walks:
        return walk_from_positions(site, args.visitor, positions, events, truth)
    return walk_from_scans(site, args.visitor, rows, events, truth)
