#!/usr/bin/env python3
"""Replay speed and memory, our engine beside the naive policy, in one run.

    .venv/bin/python benchmarks/bench_replay.py [--rows 1500000]

Prints, for each policy:
- replay throughput: scan-log CSV in, event log (JSON Lines) out, rows per
  second on one core (target: >= 250,000 for the engine);
- the engine's own cost per observation (the scan log already parsed);
- peak memory (max RSS) of a child process replaying the whole log
  (target: <= 300 MB for 1.5 million rows; the log is streamed).

The scan log is the gallery sample's (../shared/data/gallery-sample),
repeated under new visitor ids until it has --rows rows, written once to a
temporary file. Figures are ratios-friendly: both policies run on the same
machine, same file, same moment.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guide.naive import NaiveEngine  # noqa: E402
from guide.engine import Engine  # noqa: E402
from guide.eventlog import EventLog  # noqa: E402
from guide.replay import read_scans, replay  # noqa: E402
from guide.zones import load_zones  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "gallery-sample"


def make_log(path: Path, rows: int) -> None:
    with open(SAMPLE / "scans.csv", newline="") as f:
        src = list(csv.reader(f))[1:]
    with open(path, "w", newline="") as out:
        w = csv.writer(out)
        w.writerow(["visitor", "t", "beacon", "rssi"])
        n = copy = 0
        while n < rows:
            for v, t, b, r in src:
                w.writerow([f"{v}-{copy}", t, b, r])
                n += 1
                if n >= rows:
                    break
            copy += 1


def replay_file(scans: Path, policy: str, events: Path) -> tuple[int, float]:
    site = load_zones(SAMPLE / "zones.yaml")
    t0 = time.perf_counter()
    with EventLog(events) as log:
        replay(site, read_scans(scans, site), lang="en", emit=log.write_event, policy=policy)
    dt = time.perf_counter() - t0
    rows = sum(1 for _ in open(scans)) - 1
    return rows, dt


def per_observation(policy: str, n: int = 300_000) -> float:
    site = load_zones(SAMPLE / "zones.yaml")
    rows = []
    for i, row in enumerate(read_scans(SAMPLE / "scans.csv", site)):
        if row[0] != "v001":
            continue
        rows.append(row[1:])
        if len(rows) >= n:
            break
    eng = Engine(site, "en") if policy == "engine" else NaiveEngine(site, "en")
    obs = eng.observe
    t0 = time.perf_counter()
    for t, b, r in rows:
        obs(b, r, t)
    return (time.perf_counter() - t0) / len(rows) * 1e9


def child(scans: str, policy: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        replay_file(Path(scans), policy, Path(d) / "events.jsonl")
    print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_500_000)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as d:
        scans = Path(d) / "scans.csv"
        make_log(scans, args.rows)
        size = scans.stat().st_size / 1e6
        print(f"scan log: {args.rows:,} rows, {size:.0f} MB (gallery sample, repeated)\n")
        print(f"{'':34}{'engine':>14}{'naive':>14}")
        res = {}
        for policy in ("engine", "naive"):
            rows, dt = replay_file(scans, policy, Path(d) / f"{policy}.jsonl")
            mem = json.loads(subprocess.run(
                [sys.executable, __file__, "--child", str(scans), policy],
                capture_output=True, text=True, check=True).stdout)["maxrss_kb"] / 1024
            res[policy] = (rows / dt, per_observation(policy), mem)
        e, n = res["engine"], res["naive"]
        print(f"{'replay throughput (rows/s)':34}{e[0]:>14,.0f}{n[0]:>14,.0f}")
        print(f"{'cost per observation (ns)':34}{e[1]:>14,.0f}{n[1]:>14,.0f}")
        print(f"{'peak memory, whole replay (MB)':34}{e[2]:>14,.0f}{n[2]:>14,.0f}")
        print("\ntargets: engine >= 250,000 rows/s; <= 300 MB for 1.5 M rows")


if __name__ == "__main__":
    main()
