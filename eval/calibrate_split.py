#!/usr/bin/env python3
"""What `guide calibrate` buys on visitors it was not calibrated on.

    .venv/bin/python eval/calibrate_split.py ../shared/data/danis-real-sample

Splits the scenario's visitors in two halves (alternately, in id order),
calibrates on one half's `listen` rows as `guide calibrate` would, replays
the other half only, then the other way round, and prints the two folds
pooled: the zone map as declared, calibrated with tx_power kept as declared
(`--keep-tx-power`: levels and margins only), and fully calibrated.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guide.calibrate import calibrate, with_tx_power  # noqa: E402
from guide.cli import guarded  # noqa: E402
from guide.metrics import Metrics, format_table, read_truth, score  # noqa: E402
from guide.replay import ScanStats, read_scans, replay, started_track_durations  # noqa: E402
from guide.site import Site  # noqa: E402
from guide.zones import load_zones  # noqa: E402


def calibrated(site: Site, scans: Path, truth, visitors: set[str], tx_power: bool) -> Site:
    result = calibrate(site, read_scans(scans, site), truth, visitors=visitors, tx_power=tx_power)
    site = with_tx_power(site, {t.beacon: t.new for t in result.tx_power})
    values = result.values()
    return replace(site, exhibits=tuple(
        replace(e, trigger=e.trigger.override(values[e.id])) if e.id in values else e
        for e in site.exhibits))


def run(site: Site, scans: Path, truth, visitors: set[str]) -> Metrics:
    stats = ScanStats()
    rows = (r for r in read_scans(scans, site, stats=stats) if r[0] in visitors)
    events: list[dict] = []
    lang = "en" if "en" in site.languages else site.languages[0]
    # a walk ends at its last row, known beacon or not (as in simulate.py): the
    # replay reads stats.last_t once the rows are read, which fills it
    ends = replay(site, rows, lang=lang, emit=events.append, walk_end=stats.last_t)
    ends = {v: t for v, t in ends.items() if v in visitors}
    return score([r for r in truth if r.visitor in visitors], events,
                 durations=started_track_durations(site, events), walk_end=ends)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a scenario folder (zones.yaml, scans.csv, truth.csv)")
    folder = ap.parse_args().folder
    sys.exit(guarded("calibrate_split.py", lambda: _main(folder)))


def _main(folder: Path) -> None:
    site = load_zones(folder / "zones.yaml")
    scans = folder / "scans.csv"
    truth = read_truth(folder / "truth.csv")
    ids = sorted({r.visitor for r in truth})
    halves = (set(ids[0::2]), set(ids[1::2]))
    results: dict[str, list[Metrics]] = {"as declared": [], "calibrated, tx_power kept": [],
                                         "calibrated": []}
    for fit, test in (halves, halves[::-1]):
        results["as declared"].append(run(site, scans, truth, test))
        for name, tx in (("calibrated, tx_power kept", False), ("calibrated", True)):
            results[name].append(run(calibrated(site, scans, truth, fit, tx), scans, truth, test))
    print(f"{folder}: calibrated on one half of the visitors, replayed on the other, both ways")
    print(format_table({k: Metrics.pooled(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
