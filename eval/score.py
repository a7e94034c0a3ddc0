#!/usr/bin/env python3
"""Score the engine beside the naive policy on many scenario folders, pooled.

    .venv/bin/python eval/score.py DIR [DIR ...] [--rate-keep 0.1 --subsamples 4]

Each DIR holds zones.yaml, scans.csv and truth.csv (the shared samples, or
folders written by eval/make_scenario.py). `--rate-keep 0.1` keeps each
packet with probability 0.1 (a 10 Hz log becomes about 1 Hz), over
`--subsamples` independent draws, so one sample gives a steadier 1 Hz figure.
Prints one table per folder and the pooled table.
"""

from __future__ import annotations

import argparse
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guide.cli import guarded, number  # noqa: E402
from guide.errors import GuideError  # noqa: E402
from guide.metrics import Metrics, format_table, read_truth, score  # noqa: E402
from guide.replay import POLICIES, ScanStats, read_scans, replay, started_track_durations  # noqa: E402
from guide.zones import load_zones  # noqa: E402


def run(job: tuple[str, str, float, int]) -> Metrics:
    folder, policy, keep, seed = job
    d = Path(folder)
    site = load_zones(d / "zones.yaml")
    stats = ScanStats()
    rows = read_scans(d / "scans.csv", site, stats=stats)
    if keep < 1.0:
        rng = random.Random(seed)
        rows = (r for r in rows if rng.random() < keep)
    events: list[dict] = []
    # a walk ends at its last row, known beacon or not (as in simulate.py)
    ends = replay(site, rows, lang=site.languages[0] if "en" not in site.languages else "en",
                  emit=events.append, policy=policy, walk_end=stats.last_t)
    return score(read_truth(d / "truth.csv"), events,
                 durations=started_track_durations(site, events), walk_end=ends)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="scenario folders (zones.yaml, scans.csv, truth.csv)")
    ap.add_argument("--rate-keep", default=1.0, metavar="P",
                    type=number("a share of the packets kept, from 0.01 to 1", low=0.01, high=1),
                    help="keep each packet with this probability (0.1: a 10 Hz log becomes about 1 Hz; default: 1, every packet)")
    ap.add_argument("--subsamples", default=1, metavar="N",
                    type=number("a whole number, 1 or more", whole=True, low=1),
                    help="with --rate-keep: independent draws, pooled (default: 1)")
    ap.add_argument("--quiet", action="store_true", help="only the pooled table")
    args = ap.parse_args()
    sys.exit(guarded("score.py", lambda: _main(args)))


def _main(args: argparse.Namespace) -> None:
    for f in args.folders:  # here, where an error is one line: a worker's would lose its message
        site = load_zones(Path(f) / "zones.yaml")
        read_truth(Path(f) / "truth.csv", site.exhibit_ids)
        next(iter(read_scans(Path(f) / "scans.csv", site)), None)  # opens it, reads its header
    seeds = range(1, args.subsamples + 1) if args.rate_keep < 1.0 else [0]
    jobs = [(f, p, args.rate_keep, s) for f in args.folders for p in POLICIES for s in seeds]
    try:
        with ProcessPoolExecutor(2) as pool:
            results = list(pool.map(run, jobs))
    except BrokenProcessPool:  # a worker killed: out of memory, or by hand
        raise GuideError("a scoring process was killed before it finished (out of memory, or "
                         "stopped by hand); nothing was scored: run again, with fewer folders "
                         "at once if memory is short") from None
    by: dict[tuple[str, str], list[Metrics]] = {}
    for (f, p, _, _), m in zip(jobs, results):
        by.setdefault((f, p), []).append(m)
    if not args.quiet:
        for f in args.folders:
            print(f"\n{f}" + (f" (packets kept: {args.rate_keep:g})" if args.rate_keep < 1 else ""))
            print(format_table({p: Metrics.pooled(by[(f, p)]) for p in POLICIES}))
    print(f"\npooled over {len(args.folders)} folder(s):")
    print(format_table({p: Metrics.pooled(m for (f, q), ms in by.items() if q == p for m in ms)
                        for p in POLICIES}))


if __name__ == "__main__":
    main()
