#!/usr/bin/env python3
"""How far can ranking beacons go on a recording of visitors standing still?

    .venv/bin/python eval/stop_bound.py ../shared/data/danis-real-sample

For a scenario whose scenario.json lists every visitor's stops as
[t0, t1, x, y, ...] (data/danis-real-sample does), this replays idealised
policies, a yardstick for the engine (not a strict bound: the engine
decides again during a stop, these decide once). Each one knows exactly
when every stop begins and ends, reads each beacon's median RSSI over the
whole stop (no noise from smoothing), and starts the loudest exhibit (RSSI
minus tx_power) `dwell` seconds into the stop when it reaches a level and
leads the next exhibit by a lead, the best pair for this very recording
(so it is tuned on the answer). Tracks play to their end, as the engine's
rule 4 requires, and an exhibit starts once per visitor. Printed:

1. ranking with the zone map's tx_power;
2. the same with each beacon's real gain, fitted by least squares on the
   true stop positions (what a perfect per-beacon calibration would give);
3. that, and no start at all at stops away from every exhibit.

Also printed: how the stops at exhibits and the stops away from them compare
(the loudest exhibit's level and lead), which is why (1) and (2) stay low:
with any threshold, about as many stops away from exhibits start a track as
stops at exhibits, and each such track plays to its end over the next stop.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guide import tracks  # noqa: E402
from guide.calibrate import fit_path_loss  # noqa: E402
from guide.cli import guarded  # noqa: E402
from guide.errors import GuideError  # noqa: E402
from guide.metrics import MIN_LISTEN, read_truth  # noqa: E402
from guide.replay import read_scans  # noqa: E402
from guide.zones import load_zones  # noqa: E402


LEVELS = range(-30, 11)  # dB, thresholds tried on the score (RSSI - tx_power)
LEADS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)  # dB


def stop_medians(folder: Path, site, stops: dict[str, list]) -> dict[tuple[str, int], dict[str, float]]:
    """(visitor, stop index) -> beacon -> median RSSI over the stop."""
    heard: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    for v, t, b, rssi in read_scans(folder / "scans.csv", site):
        for i, s in enumerate(stops.get(v, ())):
            if s[0] <= t <= s[1]:
                heard[(v, i, b)].append(rssi)
                break
    out: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (v, i, b), values in heard.items():
        out[(v, i)][b] = float(np.median(values))
    return out


def fit_gains(site, stops, medians) -> tuple[dict[str, float], float]:
    """Per-beacon gain g_b and exponent n of median = g_b - 10 n log10(d),
    least squares over every (stop, beacon) pair, d from the true positions."""
    readings = []
    for (v, i), per in medians.items():
        x0, y0 = stops[v][i][2], stops[v][i][3]
        for b, m in per.items():
            bc = site.beacons[b]
            readings.append((b, m, max(0.3, math.hypot(x0 - bc.x, y0 - bc.y))))
    return fit_path_loss(readings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a scenario folder whose scenario.json lists each visitor's "
                    "stops, as data/danis-real-sample's does")
    args = ap.parse_args()
    sys.exit(guarded("stop_bound.py", lambda: _main(args.folder)))


def _main(folder: Path) -> None:
    try:
        scenario = json.loads((folder / "scenario.json").read_text())
        stops = {v: info["stops"] for v, info in scenario["visitors"].items()}
        hours = sum(info["duration"] for info in scenario["visitors"].values()) / 3600
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GuideError(f"{folder / 'scenario.json'}: needs visitors.*.stops ({e}); give a "
                         "folder eval/make_scenario.py wrote") from None
    site = load_zones(folder / "zones.yaml")
    lang = "en" if "en" in site.languages else site.languages[0]
    by_beacon = {ex.beacon: ex.id for ex in site.exhibits}
    duration = {}
    for ex in site.exhibits:
        found = site.track_for(ex.id, lang)
        duration[ex.id] = tracks.duration(site.track_path(found[1])) if found else 0.0
    dwell = site.trigger.dwell

    # which stop each counted listen row is (the stop holding its middle)
    wanted: dict[tuple[str, int], str] = {}
    for r in read_truth(folder / "truth.csv"):
        if not r.counted:
            continue
        mid = (r.start + r.end) / 2
        for i, s in enumerate(stops.get(r.visitor, ())):
            if s[0] <= mid <= s[1]:
                wanted[(r.visitor, i)] = r.exhibit
    rows = len(wanted)
    medians = stop_medians(folder, site, stops)

    def loudest(key, tx):
        scores = sorted(((m - tx[b], b) for b, m in medians.get(key, {}).items()
                         if b in by_beacon), reverse=True)
        if not scores:
            return None, -math.inf, 0.0
        lead = scores[0][0] - scores[1][0] if len(scores) > 1 else math.inf
        return by_beacon[scores[0][1]], scores[0][0], lead

    def replay(tx, level, lead, only_exhibit_stops=False):
        hits = false = 0
        for v, ss in stops.items():
            busy, heard = -math.inf, set()
            for i, s in enumerate(ss):
                if only_exhibit_stops and (v, i) not in wanted:
                    continue
                ex, score, d = loudest((v, i), tx)
                if ex is None or ex in heard or score < level or d < lead:
                    continue
                t = max(s[0] + dwell, busy)
                if t > s[1]:
                    continue
                heard.add(ex)
                busy = t + duration[ex]
                if wanted.get((v, i)) == ex:
                    hits += 1
                else:
                    false += 1
        return hits / rows if rows else math.nan, false

    def best(tx, only_exhibit_stops=False):
        return max(((*replay(tx, lv, ld, only_exhibit_stops), lv, ld) for lv in LEVELS for ld in LEADS),
                   key=lambda r: (r[0], -r[1]))

    declared = {b: float(bc.tx_power) for b, bc in site.beacons.items()}
    fitted, exponent = fit_gains(site, stops, medians)

    print(f"{folder}: {len(stops)} visitors, {sum(map(len, stops.values()))} stops, "
          f"{rows} listen rows of {MIN_LISTEN:g} s or more")
    for name, tx in (("declared tx_power", declared), ("fitted gains", fitted)):
        at = [loudest(k, tx) for k in wanted]
        right = sum(ex == wanted[k] for k, (ex, _, _) in zip(wanted, at))
        print(f"\n{name}: the exhibit's beacon is the loudest over the stop at {right} of {rows} "
              f"exhibit stops")
        away = [loudest((v, i), tx) for v, ss in stops.items() for i in range(len(ss))
                if (v, i) not in wanted]
        for label, group in (("at an exhibit", at), ("away from exhibits", away)):
            lv = np.percentile([g[1] for g in group if g[0]], [25, 50, 75])
            ld = np.percentile([g[2] for g in group if g[0]], [25, 50, 75])
            print(f"  stops {label:19} ({len(group):3}): loudest score quartiles "
                  f"{lv[0]:.0f} / {lv[1]:.0f} / {lv[2]:.0f} dB, lead {ld[0]:.0f} / {ld[1]:.0f} / {ld[2]:.0f} dB")
    if exponent:
        print(f"\nfitted path-loss exponent {exponent:.2f}; gains relative to the declared tx_power: "
              + ", ".join(f"{b} {g - declared[b]:+.1f}" for b, g in sorted(fitted.items())))
    print("\nbest recall of a stop-level ranking rule that knows every stop's bounds "
          "(tracks play to their end):")
    for name, tx, only in (("declared tx_power", declared, False),
                           ("each beacon's gain known", fitted, False),
                           ("gains known, no start away from exhibits", fitted, True)):
        recall, false, lv, ld = best(tx, only)
        print(f"  {name:42} recall {recall:.2f}  false starts {false} ({false / hours:.1f} "
              f"per visitor-hour)  level >= {lv} dB, lead >= {ld:g} dB")


if __name__ == "__main__":
    main()
