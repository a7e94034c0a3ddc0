#!/usr/bin/env python3
"""How well does a scenario's radio separate the exhibit a visitor listens at?

    .venv/bin/python eval/leads.py ../shared/data/gallery-sample /tmp/scn/*

For every `listen` row of each scenario: each beacon's median path loss over
the row (RSSI less the zone map's tx_power), and the lead of the listened
exhibit over the loudest other exhibit. Printed per scenario: the rows with
scans, the median and lower quartile of that lead, and the rows where
another exhibit is louder. It tells which of our radio presets a scenario
from elsewhere is most like (eval/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from guide.errors import GuideError  # noqa: E402
from guide.metrics import read_truth  # noqa: E402
from guide.replay import read_scans  # noqa: E402
from guide.zones import load_zones  # noqa: E402


def leads(folder: Path) -> list[float]:
    """The listened exhibit's lead (dB) over the loudest other, per listen row."""
    site = load_zones(folder / "zones.yaml")
    rows = defaultdict(list)
    for r in read_truth(folder / "truth.csv", site.exhibit_ids):
        if r.intent == "listen":
            rows[r.visitor].append(r)
    exhibit_of = {e.beacon: e.id for e in site.exhibits}
    heard: dict[tuple[str, int], dict[str, list[int]]] = {}
    at = defaultdict(int)  # visitor -> index of the first row not yet over
    for visitor, t, beacon, rssi in read_scans(folder / "scans.csv", site):
        mine = rows.get(visitor)
        if not mine:
            continue
        k = at[visitor]
        while k < len(mine) and mine[k].end < t:
            k += 1
        at[visitor] = k
        if k < len(mine) and mine[k].start <= t and beacon in exhibit_of:
            loss = rssi - site.beacons[beacon].tx_power
            heard.setdefault((visitor, k), defaultdict(list))[exhibit_of[beacon]].append(loss)
    out = []
    for (visitor, k), per in heard.items():
        target = rows[visitor][k].exhibit
        if target not in per:
            continue
        medians = {e: statistics.median(v) for e, v in per.items()}
        other = max((m for e, m in medians.items() if e != target), default=None)
        if other is not None:
            out.append(medians[target] - other)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="scenario folders (zones.yaml, truth.csv, scans.csv)")
    a = ap.parse_args(argv)
    print("scenario | listen rows | median lead | lower quartile | another louder")
    for folder in a.folders:
        try:
            got = sorted(leads(folder))
        except (GuideError, OSError) as e:
            print(f"leads: {folder}: {e}", file=sys.stderr)
            return 2
        if not got:
            print(f"{folder} | 0 | - | - | -")
            continue
        q1 = got[len(got) // 4]
        print(f"{folder} | {len(got)} | {statistics.median(got):.1f} dB | {q1:.1f} dB | "
              f"{sum(x < 0 for x in got)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
