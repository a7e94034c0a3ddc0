"""The simulator's command line (`python simulate.py`): replay visits, score them.

    python simulate.py                                   # the La Coupole demo
    python simulate.py --zones Z --scans S --lang en --events out.jsonl --truth T
    python simulate.py --zones Z --walks W --rate 1 --truth T --policy both

The same engine as the device runs in virtual time (guide.replay); the naive
policy (guide.naive) is today's museum behaviour, shown beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from guide import tracks
from guide.cli import guarded, language, not_one_of, number, output_file, rate, seed, site_inputs, starts_with
from guide.errors import GuideError, TrackError, counted, listed
from guide.eventlog import check_event_log
from guide.eventlog import line as event_line
from guide.files import replace_whole
from guide.metrics import Metrics, after_walk, after_walk_said, format_table, read_truth, score
from guide.replay import POLICIES, ScanStats, read_scans, replay, started_track_durations
from guide.site import Site
from guide.zones import load_zones

ROOT = Path(__file__).resolve().parent.parent
DEMO_ZONES = ROOT / "zones.yaml"
DEMO_VISITORS = 12
# The demo's most generated visitors: a run costs about 3 minutes and 150 MB per
# 100 visitors on 2 cores (12: 24 s, 240 MB; 100: 175 s, 420 MB), so 500 is
# a quarter of an hour and about 1 GB; a million filled memory without a word.
MAX_DEMO_VISITORS = 500
DEMO_RATES = (10.0, 1.0)
SEED = 7  # of the radio model and the demo's visitors, when --seed is not given

EXAMPLES = """\
examples:
  python simulate.py
      the bundled La Coupole site, generated visitors at 10 Hz and 1 Hz,
      our engine beside the naive policy
  python simulate.py --zones zones.yaml --scans walk.csv --lang en --events events.jsonl
      replay a recorded scan log (guide record) and write the event log
  python simulate.py --zones Z --scans S --truth truth.csv --policy both
      score a replay against its ground truth, beside the naive policy
  python simulate.py --zones Z --walks walks.csv --rate 1 --radio harsh --truth T
      turn positions into scans with the radio model (a phone's 1 Hz, harsh radio)
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="simulate.py",
        description="Replay visitor walks through the trigger engine in virtual time "
                    "and score the result. With no arguments: the La Coupole demo.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zones", type=Path, help="the zone map (needed with --scans and --walks; "
                   "the demo's default: zones.yaml of La Coupole)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scans", type=Path, help="a scan log (CSV: visitor,t,beacon,rssi)")
    src.add_argument("--walks", type=Path, help="visitor positions (CSV: visitor,t,x,y), "
                     "turned into scans by the radio model")
    p.add_argument("--lang", help="the visitors' language (default: the site's first)")
    p.add_argument("--events", help="write the event log (JSON Lines) here (the demo: its "
                   "first rate's, of our engine unless --policy naive)")
    p.add_argument("--truth", type=Path, help="ground truth (CSV): print the trigger-quality metrics")
    p.add_argument("--policy", choices=(*POLICIES, "both"),
                   help="engine (ours), naive (today's guides) or both side by side "
                        "(default: engine; the demo: both)")
    p.add_argument("--rate", type=rate, help="with --walks or the demo: advertisements per "
                   "second per beacon (default: the radio model's, 10; the demo runs 10 and 1)")
    p.add_argument("--radio", choices=("textbook", "museum", "harsh"),
                   help="with --walks or the demo: radio model preset (default: museum)")
    p.add_argument("--seed", type=seed, help="with --walks or the demo: random seed of the radio "
                   f"model and the demo's visitors (default: {SEED})")
    p.add_argument("--visitors", type=number(f"a whole number from 1 to {MAX_DEMO_VISITORS} (each 100 "
                                             "visitors cost about 3 minutes and 150 MB; for more, run "
                                             "it again with another --seed)",
                                             whole=True, low=1, high=MAX_DEMO_VISITORS),
                   help=f"demo only: how many generated visitors, at most {MAX_DEMO_VISITORS} "
                        f"(about 3 minutes per 100; default: {DEMO_VISITORS})")
    p.add_argument("--render-audio", metavar="OUT.wav",
                   help="write what one visitor (--visitor) would have heard, as a WAV file")
    p.add_argument("--visitor", help="with --render-audio: which visitor")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    """simulate.py: the exit statuses of `guide` (guide.cli)."""
    args = build_parser().parse_args(argv)
    return guarded("simulate.py", lambda: _demo(args) if args.scans is None and args.walks is None
                   else _run(args))


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not go together, refused before any work; then the
    default seed."""
    demo = args.scans is None and args.walks is None
    if demo:
        for given, name in ((args.truth, "--truth"), (args.render_audio, "--render-audio"),
                            (args.visitor, "--visitor")):
            if given is not None:
                raise GuideError(f"{name} goes with --scans or --walks: the demo scores its own "
                                 "generated visitors")
    else:
        if args.zones is None:
            raise GuideError(f"{'--scans' if args.scans is not None else '--walks'} needs --zones, the "
                             f"zone map of the site it was recorded on (the demo's is {DEMO_ZONES})")
        if args.visitors is not None:
            raise GuideError("--visitors is for the demo: --scans and --walks bring their own")
        if args.scans is not None and (args.rate is not None or args.radio is not None
                                       or args.seed is not None):
            raise GuideError("--rate, --radio and --seed apply to --walks and the demo "
                             "(a scan log already has its radio)")
        if args.json and args.truth is None:
            raise GuideError("--json prints the metrics: give --truth")
        if args.render_audio is not None and not args.visitor:
            raise GuideError("--render-audio needs --visitor: whose visit to render")
        if args.visitor is not None and args.render_audio is None:
            raise GuideError("--visitor goes with --render-audio: whose visit to render")
    if args.seed is None:
        args.seed = SEED


def _check_outputs(args: argparse.Namespace, site: Site) -> None:
    """The files the run writes, refused before any work when they cannot be
    written or are one of its inputs (the zone map, a track, a log)."""
    inputs = site_inputs(site, scans=args.scans, walks=args.walks, truth=args.truth)
    if args.events is not None:
        args.events = output_file(args.events, "--events", inputs=inputs)
        check_event_log(args.events)  # never over a file that is not an event log
    if args.render_audio is not None:
        from guide.render import check_name

        given = args.render_audio
        args.render_audio = output_file(args.render_audio, "--render-audio",
                                        inputs={**inputs, "--events": args.events},
                                        replaces=("a WAV file", starts_with(b"RIFF")))
        check_name(given, "--render-audio")


class _Source:
    """Where the scan rows come from, and where each visitor's walk ends."""

    def __init__(self, site: Site, args: argparse.Namespace):
        self.site, self.args = site, args
        self.stats = ScanStats()
        self.walk_end: dict[str, float] = {}

    def rows(self) -> Iterator[tuple[str, float, str, int]]:
        a = self.args
        if a.scans is not None:
            return read_scans(a.scans, self.site, stats=self.stats, progress=not a.no_progress)
        from guide.radio import RadioModel, read_walks, scans_from_walk

        rows = scans_from_walk(self.site, self._note_ends(read_walks(a.walks)),
                               RadioModel.preset(a.radio or "museum"), seed=a.seed, rate_hz=a.rate)
        rows = self._noting_rows(rows)
        return rows if a.no_progress else _counting(rows, f"replay {a.walks.name}")

    def _noting_rows(self, rows: Iterable[tuple[str, float, str, int]]):
        for row in rows:
            self.stats.rows += 1
            yield row

    def _note_ends(self, walk: Iterable[tuple[str, float, float, float]]):
        for row in walk:
            self.walk_end[row[0]] = row[1]
            yield row

    def ends(self) -> dict[str, float]:
        """Each visitor's walk end: the last row of the scan log (known
        beacon or not), or the walk's last position. A scan log's are
        complete once `rows()` is exhausted; a walk's are filled as it is read,
        each visitor's before their scans (scans_from_walk reads a visitor's
        positions whole first), which is when replay() looks."""
        return self.stats.last_t if self.args.scans is not None else self.walk_end


def _run(args: argparse.Namespace) -> int:
    _check_options(args)
    site = load_zones(args.zones or DEMO_ZONES)
    _check_outputs(args, site)
    lang = language(site, args.lang)
    track_durations(site, lang)  # every track the replay may start, before the replay
    policies = POLICIES if args.policy == "both" else (args.policy or "engine",)
    truth = read_truth(args.truth, site.exhibit_ids) if args.truth else None
    results: dict[str, Metrics] = {}
    for policy in policies:
        source = _Source(site, args)
        events: list[dict] = []
        ends = replay(site, source.rows(), lang=lang, emit=events.append, policy=policy,
                      walk_end=source.ends(), grouped=args.walks is not None)
        stats = source.stats
        if args.scans is not None:
            stats.check_site(args.scans, site)
        elif not ends:
            raise GuideError(f"{args.walks}: has no rows below its header, so there is nothing to "
                             "replay; give a walk that holds positions")
        elif not stats.rows and policy == policies[0]:
            from guide.radio import NO_SCANS

            print(f"simulate.py: {args.walks}: the walks gave no scans: {NO_SCANS}", file=sys.stderr)
        if stats.skipped_unknown and policy == policies[0]:
            print(f"simulate.py: skipped {stats.skipped_unknown} scan rows naming beacons "
                  f"not in the zone map: {stats.unknown_names()}", file=sys.stderr)
        if truth is not None and policy == policies[0]:
            absent = sorted({r.visitor for r in truth} - set(ends))
            if absent:  # of the walks: every visitor in it walked, heard or not
                lack = "no scans" if args.scans is not None else f"no positions in {args.walks.name}"
                print(f"simulate.py: {counted(len(absent), 'visitor')} of {args.truth.name} "
                      f"{'has' if len(absent) == 1 else 'have'} {lack} "
                      f"({listed(absent)}): their "
                      "listen rows count as missed", file=sys.stderr)
            late = after_walk((r for r in truth if r.counted), ends)
            if late:
                print(f"simulate.py: {after_walk_said(late, args.truth.name)}: "
                      f"{'it counts' if len(late) == 1 else 'they count'} as missed", file=sys.stderr)
            untold = sorted(set(ends) - {r.visitor for r in truth})
            if untold:
                print(f"simulate.py: {counted(len(untold), 'visitor')} of the "
                      f"{'scans' if args.scans else 'walks'} {'has' if len(untold) == 1 else 'have'} "
                      f"no rows in {args.truth.name} ({listed(untold)}): every track they "
                      "start counts as a false start", file=sys.stderr)
        if args.events and policy == policies[0]:
            _write_events(args.events, events)
        if args.render_audio and policy == policies[0]:
            _render(site, events, args.visitor, args.render_audio, lang, ends)
        if truth is not None:
            results[policy] = score(truth, events, durations=started_track_durations(site, events), walk_end=ends)
        else:
            starts = sum(1 for e in events if e["event"] == "start")
            print(f"{policy}: {counted(len(ends), 'visitor')}, {counted(starts, 'track')} started",
                  file=sys.stderr)
    if results:
        _print(results, args.json)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The bundled site with generated visitors, at 10 Hz and at 1 Hz."""
    from guide.radio import RadioModel, scans_from_walk
    from guide.walks import generate_visitors

    _check_options(args)
    args.visitors = DEMO_VISITORS if args.visitors is None else args.visitors
    args.radio = args.radio or "museum"
    site = load_zones(args.zones or DEMO_ZONES)
    _check_outputs(args, site)
    lang = language(site, args.lang)
    durations = track_durations(site, lang)
    walk, truth = generate_visitors(site, n=args.visitors, seed=args.seed,
                                    durations=durations, lang=lang)
    walk_end: dict[str, float] = {}
    for row in walk:
        walk_end[row[0]] = row[1]
    print(f"{site.name}: {len(site.exhibits)} exhibits, {args.visitors} generated visitors "
          f"(listeners, glancers, wanderers), language {lang}", file=sys.stderr)
    tables = []
    rates = (args.rate,) if args.rate else DEMO_RATES
    policies = POLICIES if args.policy in (None, "both") else (args.policy,)
    bar = tqdm(total=len(rates) * len(policies), desc="simulating", unit="run", leave=False,
               disable=True if args.no_progress else None)
    for rate in rates:
        results = {}
        for policy in policies:
            bar.set_postfix_str(f"{policy} at {rate:g} Hz")
            events: list[dict] = []
            rows = scans_from_walk(site, walk, RadioModel.preset(args.radio),
                                   seed=args.seed, rate_hz=rate)
            replay(site, rows, lang=lang, emit=events.append, policy=policy, walk_end=walk_end,
                   grouped=True)
            results[policy] = score(truth, events, durations=started_track_durations(site, events),
                                    walk_end=walk_end)
            if args.events and policy == policies[0] and rate == rates[0]:
                _write_events(args.events, events)
            bar.update()
        tables.append((rate, results))
    bar.close()
    if args.json:
        print(json.dumps({f"{rate:g} Hz": {p: m.as_dict() for p, m in r.items()}
                          for rate, r in tables}, indent=2))
    else:
        for rate, results in tables:
            print(f"\n{rate:g} Hz per beacon, radio model '{args.radio}':")
            print(format_table(results))
    return 0


def _counting(rows: Iterator, desc: str) -> Iterator:
    """Scan rows, counted on a progress bar on stderr (no total is known)."""
    with tqdm(desc=desc, unit=" rows", unit_scale=True, leave=False, disable=None,
              miniters=65536) as bar:
        n = 0
        for row in rows:
            yield row
            n += 1
            if not n & 0xFFFF:
                bar.update(0x10000)


def track_durations(site: Site, lang: str) -> dict[str, float]:
    """Seconds of the track each exhibit plays to visitors choosing `lang`
    (`Site.track_for`), by exhibit id. The replay times every track it starts
    by its file, so a track that cannot be played stops the run before it
    begins, with every such track named at once (not the first one met)."""
    chosen = {ex.id: found for ex in site.exhibits if (found := site.track_for(ex.id, lang)) is not None}
    lengths, errors = tracks.durations(site.track_path(rel) for _, rel in chosen.values())
    if errors:
        bad = sorted({tracks.Unplayable(track=rel, exhibit=ex, lang=played,
                                        reason=tracks.reason(errors[site.track_path(rel)], site.track_path(rel)))
                      for ex, (played, rel) in chosen.items() if site.track_path(rel) in errors},
                     key=lambda u: (u.track, u.exhibit))
        raise TrackError("\n".join([
            f"{counted(len(bad), 'track')} the replay would start cannot be played, so the visits "
            f"cannot be timed; fix {'it' if len(bad) == 1 else 'them'} (guide check --zones "
            f"{site.path} tells more):", *(f"  {u}" for u in bad)]))
    return {ex: lengths[site.track_path(rel)] for ex, (_, rel) in chosen.items()}


def _write_events(path: Path, events: list[dict]) -> None:
    """A replay rewrites its event log whole (`path` passed guide.cli.output_file)."""
    try:
        replace_whole(path, (event_line(e) for e in events), durable=True)
    except OSError as e:
        raise GuideError(f"--events {path}: cannot write it ({e.strerror or e})") from None


def _render(site: Site, events: list[dict], visitor: str, out: Path, lang: str,
            visitors: Iterable[str]) -> None:
    """Render what `visitor` heard; a GuideError when no track was played for
    them, saying whether they walked at all (`visitors`: those of the replay)
    and which visitors have a visit to render, if any."""
    from guide.render import render_visit

    mine = [e for e in events if e["visitor"] == visitor]
    if not mine:
        played = {e["visitor"] for e in events}
        if not played:
            raise GuideError(f"--visitor {visitor}: no track was played for any visitor of this "
                             "replay, so there is no visit to render; give walks or scans that "
                             "reach the site's exhibits (guide lint tells which the radio misses)")
        if visitor in visitors:
            raise GuideError(f"--visitor {visitor}: no track was played for them in this replay, "
                             f"so they heard nothing to render; give one a track was played for: "
                             f"{listed(sorted(played))}")
        raise not_one_of("--visitor", visitor, played, "the visitors a track was played for")
    if lang in site.intro:  # the device speaks the site's intro as the visit begins
        mine.insert(0, {"visitor": visitor, "t": 0.0, "event": "intro", "lang": lang,
                        "track": site.intro[lang]})
    try:
        done = render_visit(site, mine, out)
    except OSError as e:
        raise GuideError(f"--render-audio {out}: cannot write it ({e.strerror or e})") from None
    for problem in done.problems:
        print(f"simulate.py: {problem}", file=sys.stderr)
    print(f"simulate.py: wrote what {visitor} heard ({done.seconds:.0f} s, "
          f"{done.starts} tracks) to {out}", file=sys.stderr)


def _print(results: dict[str, Metrics], as_json: bool) -> None:
    if as_json:
        print(json.dumps({p: m.as_dict() for p, m in results.items()}, indent=2))
    else:
        print(format_table(results))
