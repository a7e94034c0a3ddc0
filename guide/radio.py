"""The radio model: what a visitor's device hears from each beacon as it moves.

The simulator turns a walk (positions over time) into a scan log (one row per
received advertisement) with this model, so the trigger engine can be scored
against the walk's ground truth. Real BLE radio is far messier than a
path-loss formula, and an engine tuned on a clean model fails in a real hall,
so the model has every impairment the engine meets on site:

    rssi = tx_power + beacon offset + device offset      (fixed biases)
           - 10 n log10(distance)                         (path loss)
           - walls crossed x wall_loss_db
           - body loss (the visitor's back towards the beacon)
           + shadowing (fixed per beacon and place, correlated over metres)
           + drift (slow: people passing, the device swinging)
           + fading (per packet, Rician: deep negative fades)
    received when above sensitivity, not lost, not in a receiver dropout

Presets: `RadioModel.textbook()` (clean), `RadioModel.museum()` (the
simulator's default, realistic), `RadioModel.harsh()` (like the real
recordings in data/danis-real-sample: exponent 1.7, offsets of several dB,
neighbours separated by a few dB at most).

    model = RadioModel.museum()
    for visitor, t, beacon, rssi in scans_from_walk(site, read_walks("walks.csv"), model, seed=1):
        ...

Everything random comes from `seed`: the same seed gives the same scan log.
What belongs to the place (shadowing, beacon offsets, multipath) depends on
the seed only, so every visitor of one scenario meets the same building; what
belongs to a visitor (device offset, drift, fades, lost packets) depends on
the seed and the visitor's id, so a visitor's scans do not change when other
visitors are added.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import zlib
from array import array
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from guide.csvlog import (MAX_COORDINATE, header_again, id_problem, not_utf8, number_hint, open_csv, plain_float, short,
                          time_problem, unreadable)
from guide.errors import GuideError, ScanLogError
from guide.site import Site

RSSI_MIN, RSSI_MAX = -127, -1  # the range an advertisement report can carry, dBm
_WAVELENGTH = 0.125  # metres, BLE at 2.4 GHz
_WAVES = 12  # plane waves summed per beacon and channel (Clarke's fading model)
_CHANNELS = 3  # advertising channels 37, 38, 39: each has its own multipath
_MIN_DISTANCE = 0.1  # metres; the far-field formula means nothing closer
_GRID_STEP, _GRID_REACH = 0.4, 30.0  # metres: shadowing maps around each beacon


def _f(default: Any, unit: str, doc: str, *, min: float | None = None,
       max: float | None = None) -> Any:
    return field(default=default, metadata={"unit": unit, "doc": doc, "min": min, "max": max})


@dataclass(frozen=True, kw_only=True)
class RadioModel:
    """How beacon signals reach a visitor's device. Defaults are the museum preset.

    >>> RadioModel.harsh().path_loss_exponent
    1.7
    >>> RadioModel.preset("textbook").shadowing_db
    0.0
    """

    path_loss_exponent: float = _f(
        2.0, "", "how fast the mean signal falls with distance: 10*n dB per decade "
        "(2 in free space; real halls measure 1.6-2.2)", min=1.0, max=6.0)
    shadowing_db: float = _f(
        4.0, "dB", "std of log-normal shadowing: a fixed gain per beacon and place "
        "(furniture, display cases, the beacon's antenna pattern)", min=0, max=20)
    shadowing_distance_m: float = _f(
        2.5, "m", "decorrelation distance of shadowing: two places this far apart "
        "see correlation 1/e", min=0.1, max=50)
    fading_db: float = _f(
        4.0, "dB", "std of per-packet fast fading; Rician (deep negative fades, not "
        "a symmetric Gaussian), Rayleigh at 5.6 dB and scaled beyond", min=0, max=15)
    fading_change_hz: float = _f(
        0.5, "Hz", "how fast multipath changes around a device that stands still "
        "(people moving nearby); walking decorrelates it every few centimetres",
        min=0, max=20)
    packet_loss: float = _f(
        0.15, "", "probability that a packet above sensitivity is still lost",
        min=0, max=0.99)
    body_loss_db: float = _f(
        4.0, "dB", "extra loss when the beacon is straight behind the visitor "
        "(the device hangs in front of the body); a quarter of it side-on",
        min=0, max=40)
    wall_loss_db: float = _f(
        8.0, "dB", "loss per wall segment (site.walls) between device and beacon",
        min=0, max=60)
    rate_hz: float = _f(
        10.0, "Hz", "advertisements heard per second per beacon (about 10 on a "
        "scanner, 1 on a phone); intervals are jittered by +-10 %",
        min=0.01, max=100)
    beacon_offset_db: float = _f(
        3.0, "dB", "std of a fixed per-beacon offset: how wrong each beacon's "
        "declared tx_power is", min=0, max=20)
    device_offset_db: float = _f(
        3.0, "dB", "std of a fixed per-visitor receiver offset (device model, how "
        "it is worn)", min=0, max=20)
    drift_db: float = _f(
        2.0, "dB", "std of a slow random variation per beacon and visitor (people "
        "passing between, the device swinging)", min=0, max=20)
    drift_time_s: float = _f(
        8.0, "s", "time constant of that slow variation", min=0.1, max=600)
    dropout_per_min: float = _f(
        0.2, "1/min", "receiver dropouts (scanner restarts, radio busy) per minute, "
        "during which nothing is heard", min=0, max=60)
    dropout_s: float = _f(
        2.0, "s", "mean length of a dropout (exponentially distributed)", min=0, max=120)
    height_m: float = _f(
        1.0, "m", "height difference between the device and the beacons, added to "
        "the horizontal distance", min=0, max=20)
    sensitivity_dbm: float = _f(
        -100.0, "dBm", "weaker packets are not received", min=-127, max=-20)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata["min"], f.metadata["max"]
            if not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or (lo is not None and value < lo) or (hi is not None and value > hi):
                raise GuideError(
                    f"radio model: {f.name} = {value!r} is out of range; "
                    f"use a number from {lo} to {hi} {f.metadata['unit']}".rstrip())

    @classmethod
    def textbook(cls) -> "RadioModel":
        """Free-space path loss, mild fading, no biases: the easy case."""
        return cls(path_loss_exponent=2.0, shadowing_db=0.0, fading_db=2.0,
                   packet_loss=0.05, body_loss_db=0.0, wall_loss_db=6.0,
                   beacon_offset_db=0.0, device_offset_db=0.0, drift_db=0.0,
                   dropout_per_min=0.0, height_m=0.0)

    @classmethod
    def museum(cls) -> "RadioModel":
        """A realistic hall with visitors wearing dedicated devices (the default)."""
        return cls()

    @classmethod
    def harsh(cls) -> "RadioModel":
        """As nasty as the real recordings of data/danis-real-sample: signal falls
        slowly (exponent 1.7), beacons and devices are off by several dB, and the
        nearest beacon leads its neighbours by a few dB at most."""
        return cls(path_loss_exponent=1.7, shadowing_db=6.0, shadowing_distance_m=2.0,
                   fading_db=5.0, fading_change_hz=1.0, packet_loss=0.3,
                   body_loss_db=5.0, wall_loss_db=5.0, beacon_offset_db=5.0,
                   device_offset_db=4.0, drift_db=3.0, drift_time_s=10.0,
                   dropout_per_min=0.5, dropout_s=3.0, height_m=1.0)

    @classmethod
    def preset(cls, name: str) -> "RadioModel":
        """The preset called `name` (one of PRESETS)."""
        if name not in PRESETS:
            raise GuideError(f"unknown radio model {name!r}; choose one of {', '.join(PRESETS)}")
        return getattr(cls, name)()

    def to_dict(self) -> dict[str, float]:
        """Every field, for scenario.json."""
        return asdict(self)


PRESETS = ("textbook", "museum", "harsh")


# ---------------------------------------------------------------- mean level

def mean_rssi(site: Site, beacon_id: str, x: float, y: float, model: RadioModel) -> float:
    """Expected RSSI (dBm) of `beacon_id` at (x, y): path loss and walls only, no
    random terms (no offsets, shadowing, body, drift or fading).

    >>> mean_rssi(site, "dome-n", 12.0, 40.5, RadioModel.textbook())  # doctest: +SKIP
    -79.0
    """
    return float(mean_levels(site, beacon_id, [x], [y], model)[0])


def mean_levels(site: Site, beacon_id: str, xs: Iterable[float], ys: Iterable[float],
                model: RadioModel) -> np.ndarray:
    """`mean_rssi` of `beacon_id` at many points at once, one array: what
    guide lint asks for every standing spot of an exhibit (a call per point
    made a dense site of 200 exhibits take minutes)."""
    b = site.beacons[beacon_id]
    px, py = np.asarray(xs, dtype=float).ravel(), np.asarray(ys, dtype=float).ravel()
    return _path_level(b.tx_power, b.x, b.y, px, py, model) \
        - model.wall_loss_db * _crossings(px, py, b.x, b.y, _walls(site))


def _path_level(tx: float, bx: float, by: float, px: np.ndarray, py: np.ndarray,
                model: RadioModel) -> np.ndarray:
    d = np.sqrt((px - bx) ** 2 + (py - by) ** 2 + model.height_m ** 2)
    return tx - 10.0 * model.path_loss_exponent * np.log10(np.maximum(d, _MIN_DISTANCE))


def _walls(site: Site) -> np.ndarray:
    """Walls as an array of shape (W, 4): x1, y1, x2, y2."""
    return np.array([[a[0], a[1], b[0], b[1]] for a, b in site.walls], dtype=float).reshape(-1, 4)


def wall_crossings(site: Site, x: float, y: float, bx: float, by: float) -> int:
    """How many of the site's walls the straight line from (x, y) to (bx, by) crosses."""
    return int(_crossings(np.array([x]), np.array([y]), bx, by, _walls(site))[0])


def _crossings(px: np.ndarray, py: np.ndarray, bx: float, by: float,
               walls: np.ndarray) -> np.ndarray:
    """How many walls the straight line from each (px, py) to (bx, by) crosses.
    Only proper crossings count: a beacon mounted on a wall is not behind it."""
    n = np.zeros(px.shape, dtype=float)
    for x1, y1, x2, y2 in walls:
        # the two ends of each segment must lie strictly on opposite sides of the other
        d1 = (bx - px) * (y1 - py) - (by - py) * (x1 - px)
        d2 = (bx - px) * (y2 - py) - (by - py) * (x2 - px)
        d3 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
        d4 = (x2 - x1) * (by - y1) - (y2 - y1) * (bx - x1)
        n += (d1 * d2 < 0) & (d3 * d4 < 0)
    return n


# ---------------------------------------------------------------- reading walks

NO_SCANS = ("no beacon of the site is heard along them (positions are metres in the zone map's "
            "frame), or each visitor has a single position (a walk needs two or more, at "
            "different times)")  # why walks give no scans, for messages


def read_walks(path: str | Path, *, grouped: bool = True) -> Iterator[tuple[str, float, float, float]]:
    """Rows (visitor, t, x, y) of a FORMATS.md walk CSV.

    Extra columns are ignored. A malformed row, or a visitor's time going
    backwards, raises ScanLogError naming the file, the line and the field.
    With `grouped` (what `scans_from_walk` needs) the rows come one visitor
    after another, in the order visitors first appear: a file whose visitors
    are interleaved (FORMATS.md allows it of scan logs and does not forbid it
    of walks) is read once to find that out, then again: interleaved, to
    gather each visitor's positions (24 bytes a row); grouped, streamed.

    >>> rows = list(read_walks("walks.csv"))  # doctest: +SKIP
    """
    p = Path(path)
    if not grouped or _grouped(p):
        yield from _walk_rows(p)
        return
    gathered: dict[str, tuple[array, array, array]] = {}
    for visitor, t, x, y in _walk_rows(p):
        columns = gathered.get(visitor)
        if columns is None:
            columns = gathered[visitor] = (array("d"), array("d"), array("d"))
        columns[0].append(t)
        columns[1].append(x)
        columns[2].append(y)
    for visitor, (ts, xs, ys) in gathered.items():
        for t, x, y in zip(ts, xs, ys):
            yield visitor, t, x, y


def _grouped(p: Path) -> bool:
    """Whether each visitor's rows of the walk at `p` come together."""
    seen: set[str] = set()
    current = None
    for visitor, *_ in _walk_rows(p):
        if visitor != current:
            if visitor in seen:
                return False
            seen.add(visitor)
            current = visitor
    return True


def _walk_rows(p: Path) -> Iterator[tuple[str, float, float, float]]:
    """The rows of `read_walks`, checked, in the file's order."""
    with open_csv(p, "walk", ("visitor", "t", "x", "y")) as (_, reader, index):
        iv, it, ix, iy = index
        width = max(iv, it, ix, iy) + 1
        last: dict[str, float] = {}
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise not_utf8(p, "walk") from None
            except csv.Error as e:
                raise unreadable(p, reader.line_num, e) from None
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if any("\n" in c or "\r" in c for c in row):  # a row over several lines
                raise unreadable(p, line, ValueError("a field holds a line break"))
            if len(row) < width:
                raise ScanLogError(
                    f"{p}:{line}: expected {width} fields (visitor,t,x,y), found {len(row)}")
            visitor = row[iv].strip()
            if visitor not in last:
                why = id_problem(visitor, "visitor")
                if why:
                    raise ScanLogError(f"{p}:{line}: {why}")
            try:
                t = _number(row[it], p, line, "t")
                x = _number(row[ix], p, line, "x")
                y = _number(row[iy], p, line, "y")
            except ScanLogError:
                again = header_again(row, index, ("visitor", "t", "x", "y"))
                if again:
                    raise ScanLogError(f"{p}:{line}: {again}") from None
                raise
            why = time_problem(t, row[it])
            if why:
                raise ScanLogError(f"{p}:{line}: {why}")
            if max(abs(x), abs(y)) > MAX_COORDINATE:
                raise ScanLogError(f"{p}:{line}: x={short(row[ix].strip())}, y={short(row[iy].strip())} is more than "
                                   f"{MAX_COORDINATE / 1000:g} km from the site's origin; positions "
                                   f"are metres in the zone map's frame")
            before = last.get(visitor)
            if before is not None and t < before:
                raise ScanLogError(
                    f"{p}:{line}: field t: time goes backwards for visitor {short(visitor)} "
                    f"({t} after {before}); each visitor's rows must be in time order")
            last[visitor] = t
            yield visitor, t, x, y


def _number(text: str, p: Path, line: int, name: str) -> float:
    try:
        v = plain_float(text)
    except ValueError:
        raise ScanLogError(f"{p}:{line}: field {name} = {short(text.strip())!r} is not a "
                           f"number{number_hint(text)}") from None
    if not math.isfinite(v):
        raise ScanLogError(f"{p}:{line}: field {name} = {short(text.strip())!r} is not a finite number")
    return v


# ---------------------------------------------------------------- scans

def scans_from_walk(site: Site, walk: Iterable[tuple[str, float, float, float]],
                    model: RadioModel, *, seed: int,
                    rate_hz: float | None = None) -> Iterator[tuple[str, float, str, int]]:
    """Scan rows (visitor, t, beacon_id, rssi) heard along `walk`.

    `walk` yields (visitor, t, x, y); each visitor's rows in time order, one
    visitor after another. Positions are interpolated linearly between walk
    samples. Rows come out in time order per visitor, visitor by visitor, `t`
    rounded to the millisecond, `rssi` an int in [-127, -1]. `rate_hz`
    overrides the model's rate. Works visitor by visitor, so the walk may be
    as long as you like.

    >>> rows = scans_from_walk(site, read_walks("walks.csv"), RadioModel.museum(), seed=7)  # doctest: +SKIP
    """
    if rate_hz is not None:
        model = replace(model, rate_hz=float(rate_hz))
    place = _Place(site, model, int(seed))
    done: set[str] = set()
    for visitor, rows in itertools.groupby(walk, key=lambda r: r[0]):
        if visitor in done:
            raise ScanLogError(
                f"walk: the rows of visitor {visitor} are split by other visitors' rows; "
                "give each visitor's rows together (sort the walk by visitor, then t)")
        done.add(visitor)
        arr = np.array([(r[1], r[2], r[3]) for r in rows], dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ScanLogError(f"walk: visitor {visitor} has a position or time that is not a number")
        if np.any(np.diff(arr[:, 0]) < 0):
            k = int(np.argmax(np.diff(arr[:, 0]) < 0)) + 1
            raise ScanLogError(
                f"walk: time goes backwards for visitor {visitor} at t={arr[k, 0]} "
                f"(after {arr[k - 1, 0]}); each visitor's rows must be in time order")
        yield from place.visitor_scans(visitor, arr[:, 0], arr[:, 1], arr[:, 2])


class _Place:
    """What stays fixed for one site, model and seed: beacon offsets, the
    shadowing maps and the multipath wave sets."""

    def __init__(self, site: Site, model: RadioModel, seed: int):
        self.model = model
        self.seed = seed
        self.ids = list(site.beacons)
        beacons = [site.beacons[i] for i in self.ids]
        self.bx = np.array([b.x for b in beacons], dtype=float)
        self.by = np.array([b.y for b in beacons], dtype=float)
        self.tx = np.array([b.tx_power for b in beacons], dtype=float)
        self.walls = _walls(site)
        rngs = [np.random.default_rng([seed, 101, _stable(i)]) for i in self.ids]
        self.offset = np.array([r.normal(0.0, 1.0) for r in rngs]) * model.beacon_offset_db
        self._shadow_grid(rngs)
        # Clarke's model: each beacon and channel gets plane waves from random
        # directions, with random phases and a small Doppler for a changing room.
        nb = len(self.ids)
        shape = (nb, _CHANNELS, _WAVES)
        k = 2 * math.pi / _WAVELENGTH
        ang = np.stack([r.uniform(0, 2 * math.pi, shape[1:]) for r in rngs])
        self.wave_kx = k * np.cos(ang)
        self.wave_ky = k * np.sin(ang)
        self.wave_w = 2 * math.pi * model.fading_change_hz * np.stack(
            [r.normal(0.0, 1.0, shape[1:]) for r in rngs])
        self.wave_phi = np.stack([r.uniform(0, 2 * math.pi, shape[1:]) for r in rngs])
        self.los_phi = np.stack([r.uniform(0, 2 * math.pi, _CHANNELS) for r in rngs])
        self.k_factor, self.fade_scale, self.fade_median = _fading_shape(model.fading_db)

    def _shadow_grid(self, rngs: list[np.random.Generator]) -> None:
        """Shadowing maps, one per beacon on a 0.4 m grid reaching 30 m around
        it (beyond, the edge value holds: signals there are faint anyway): a
        Gaussian field with exponential correlation (Gudmundson), drawn as
        random Fourier features."""
        m = self.model
        step, reach = _GRID_STEP, _GRID_REACH
        cells = int(2 * reach / step) + 1
        self.grid = np.zeros((len(self.ids), cells, cells), dtype=np.float32)
        if m.shadowing_db == 0:
            return
        axis = -reach + step * np.arange(cells)  # offsets from the beacon
        features = 64
        for b, r in enumerate(rngs):
            # radial wavenumber from the 2-D spectrum of exp(-d/L): CDF 1 - (1+(kL)^2)^-1/2,
            # cut at the 90th percentile so the grid resolves every feature
            u = r.uniform(0, 0.9, features)
            kr = np.sqrt((1 - u) ** -2 - 1) / m.shadowing_distance_m
            th = r.uniform(0, 2 * math.pi, features)
            ph = r.uniform(0, 2 * math.pi, features)
            ax = np.outer(kr * np.cos(th), axis + self.bx[b]) + ph[:, None]  # (F, cells)
            ay = np.outer(kr * np.sin(th), axis + self.by[b])
            # cos(a + b) = cos a cos b - sin a sin b, summed over features
            field_ = np.cos(ay).T @ np.cos(ax) - np.sin(ay).T @ np.sin(ax)
            self.grid[b] = (m.shadowing_db * math.sqrt(2.0 / features) * field_).astype(np.float32)

    def shadowing(self, bi: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        last = self.grid.shape[1] - 1.001
        fx = np.clip((px - self.bx[bi] + _GRID_REACH) / _GRID_STEP, 0, last)
        fy = np.clip((py - self.by[bi] + _GRID_REACH) / _GRID_STEP, 0, last)
        ix, iy = fx.astype(int), fy.astype(int)
        ax, ay = fx - ix, fy - iy
        g = self.grid
        return ((g[bi, iy, ix] * (1 - ax) + g[bi, iy, ix + 1] * ax) * (1 - ay)
                + (g[bi, iy + 1, ix] * (1 - ax) + g[bi, iy + 1, ix + 1] * ax) * ay)

    def visitor_scans(self, visitor: str, wt: np.ndarray, wx: np.ndarray,
                      wy: np.ndarray) -> Iterator[tuple[str, float, str, int]]:
        m = self.model
        t0, t1 = float(wt[0]), float(wt[-1])
        nb = len(self.ids)
        if t1 <= t0 or nb == 0:
            return
        rng = np.random.default_rng([self.seed, 102, _stable(visitor)])
        device_offset = rng.normal(0.0, m.device_offset_db)
        drift = self._drift_path(rng, t0, t1)
        n_drop = rng.poisson(m.dropout_per_min * (t1 - t0) / 60.0)
        drops = np.stack([rng.uniform(t0, t1, n_drop),
                          rng.exponential(m.dropout_s, n_drop) if m.dropout_s > 0
                          else np.zeros(n_drop)], axis=1)
        heading = _headings(wt, wx, wy, self.bx, self.by) if m.body_loss_db else None
        # each beacon advertises every 1/rate s, jittered +-10 %; worked through
        # in windows of time so memory stays small for any walk and any site
        period = 1.0 / m.rate_hz
        nxt = t0 + rng.uniform(0, period, nb)  # each beacon's next advertisement
        window = max(10.0, 200_000 / (nb * m.rate_hz))  # s: about 200k packets at a time
        w0 = t0
        while w0 < t1:
            w1 = min(w0 + window, t1)
            count = int((w1 - nxt.min()) * m.rate_hz * 1.15) + 3
            times = nxt[:, None] + np.concatenate(
                [np.zeros((nb, 1)), np.cumsum(period * rng.uniform(0.9, 1.1, (nb, count)), axis=1)],
                axis=1)
            inside = times <= w1
            nxt = times[np.arange(nb), inside.sum(axis=1)]  # first one past the window
            bi = np.broadcast_to(np.arange(nb)[:, None], times.shape)[inside]
            t = times[inside]
            order = np.argsort(t, kind="stable")
            t, bi = t[order], bi[order]
            yield from self._window(visitor, rng, t, bi, wt, wx, wy, device_offset, drift,
                                    drops, heading)
            w0 = w1

    def _window(self, visitor: str, rng: np.random.Generator, t: np.ndarray, bi: np.ndarray,
                wt: np.ndarray, wx: np.ndarray, wy: np.ndarray, device_offset: float,
                drift: tuple[float, float, np.ndarray], drops: np.ndarray,
                heading: np.ndarray | None) -> Iterator[tuple[str, float, str, int]]:
        """The rows heard of the packets sent at times `t` by beacons `bi`."""
        m = self.model
        # the packets that never arrive: lost at random, or during a dropout
        heard = rng.random(t.size) >= m.packet_loss
        for start, length in drops:
            heard &= ~((t >= start) & (t < start + length))
        channel = rng.integers(0, _CHANNELS, t.size)
        t, bi, channel = t[heard], bi[heard], channel[heard]
        px, py = np.interp(t, wt, wx), np.interp(t, wt, wy)
        level = np.empty(t.size)
        for b in np.unique(bi):
            sel = bi == b
            level[sel] = _path_level(self.tx[b], self.bx[b], self.by[b], px[sel], py[sel], m) \
                - m.wall_loss_db * _crossings(px[sel], py[sel], self.bx[b], self.by[b], self.walls)
        level += self.offset[bi] + device_offset + self.shadowing(bi, px, py)
        h0, h, path = drift
        if path.size:
            pos = (t - h0) / h
            i = np.clip(pos.astype(int), 0, path.shape[0] - 2)
            frac = pos - i
            level += path[i, bi] * (1 - frac) + path[i + 1, bi] * frac
        if heading is not None:
            k = np.clip(np.searchsorted(wt, t, side="right") - 1, 0, wt.size - 1)
            to_b = np.arctan2(self.by[bi] - py, self.bx[bi] - px)
            # 0 with the beacon ahead, 1/4 side-on, 1 straight behind
            level -= m.body_loss_db * ((1.0 - np.cos(to_b - heading[k])) / 2.0) ** 2
        level += self._fading(t, bi, channel, px, py)
        rssi = np.rint(level)
        ok = rssi >= m.sensitivity_dbm
        rssi = np.clip(rssi[ok], RSSI_MIN, RSSI_MAX).astype(int)
        t_out = np.round(t[ok], 3)
        names = [self.ids[i] for i in bi[ok].tolist()]
        for tt, name, r in zip(t_out.tolist(), names, rssi.tolist()):
            yield visitor, tt, name, r

    def _drift_path(self, rng: np.random.Generator, t0: float,
                    t1: float) -> tuple[float, float, np.ndarray]:
        """A slow Ornstein-Uhlenbeck wander per beacon: (start, step, values of
        shape (steps, beacons)); empty when the model has no drift."""
        m = self.model
        nb = len(self.ids)
        h = min(1.0, m.drift_time_s / 5.0)
        if m.drift_db == 0:
            return t0, h, np.zeros((0, nb))
        n = int((t1 - t0) / h) + 2
        a = math.exp(-h / m.drift_time_s)
        noise = rng.normal(0.0, m.drift_db * math.sqrt(1 - a * a), (n, nb))
        path = np.empty((n, nb))
        path[0] = rng.normal(0.0, m.drift_db, nb)
        for k in range(1, n):
            path[k] = a * path[k - 1] + noise[k]
        return t0, h, path

    def _fading(self, t: np.ndarray, bi: np.ndarray, channel: np.ndarray,
                px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Per-packet fading in dB, median 0: a line-of-sight part plus Clarke's
        sum of plane waves evaluated where and when the packet arrives, so a
        visitor who stands still keeps a fade for a while and one who walks
        meets a new one every few centimetres."""
        if self.model.fading_db == 0 or t.size == 0:
            return np.zeros(t.size)
        out = np.empty(t.size)
        los = math.sqrt(self.k_factor / (self.k_factor + 1))
        nlos = math.sqrt(1 / (self.k_factor + 1)) / math.sqrt(_WAVES)
        chunk = 50_000
        for s in range(0, t.size, chunk):
            b, c = bi[s:s + chunk], channel[s:s + chunk]
            x, y, tt = px[s:s + chunk, None], py[s:s + chunk, None], t[s:s + chunk, None]
            phase = self.wave_kx[b, c] * x + self.wave_ky[b, c] * y \
                + self.wave_w[b, c] * tt + self.wave_phi[b, c]
            re = los * np.cos(self.los_phi[b, c]) + nlos * np.cos(phase).sum(axis=1)
            im = los * np.sin(self.los_phi[b, c]) + nlos * np.sin(phase).sum(axis=1)
            power = np.maximum(re * re + im * im, 1e-12)
            out[s:s + chunk] = 10.0 * np.log10(power)
        return (out - self.fade_median) * self.fade_scale


def _headings(wt: np.ndarray, wx: np.ndarray, wy: np.ndarray, bx: np.ndarray,
              by: np.ndarray) -> np.ndarray:
    """The way the visitor faces at each walk sample, radians."""
    n = wt.size
    if n < 2:
        return np.zeros(n)
    dt = np.median(np.diff(wt)) or 0.1
    # smooth velocity over about a second, or the whole walk if it is shorter
    # (np.convolve "same" gives the longer of the two, not n, for a kernel past n)
    w = min(n, max(1, int(round(1.0 / dt))))
    # velocity of the step leaving each sample (the last sample keeps the one before);
    # repeated times give no step rather than an infinite speed
    step = np.diff(wt)
    moved = step > 0
    vx, vy = np.zeros(n), np.zeros(n)
    vx[:-1][moved] = np.diff(wx)[moved] / step[moved]
    vy[:-1][moved] = np.diff(wy)[moved] / step[moved]
    vx[-1], vy[-1] = vx[-2], vy[-2]
    if w > 1:
        kern = np.ones(w) / w
        vx, vy = np.convolve(vx, kern, "same"), np.convolve(vy, kern, "same")
    speed = np.hypot(vx, vy)
    walking = speed > 0.3
    heading = np.arctan2(vy, vx)
    # standing: face the nearest beacon if one is close
    still = speed < 0.15
    if bx.size and still.any():
        near = np.empty(n, dtype=int)
        close = np.empty(n, dtype=bool)
        step = max(1, 1_000_000 // bx.size)
        for s in range(0, n, step):
            d = np.hypot(wx[s:s + step, None] - bx[None, :], wy[s:s + step, None] - by[None, :])
            near[s:s + step] = np.argmin(d, axis=1)
            close[s:s + step] = d[np.arange(len(d)), near[s:s + step]] < 2.5
        face = still & close
        heading = np.where(face, np.arctan2(by[near] - wy, bx[near] - wx), heading)
        walking = walking | face
    # otherwise keep the last heading (carry forward; before any, the first one)
    idx = np.where(walking, np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(walking)) if walking.any() else -1
    if first < 0:
        return np.zeros(n)
    idx[idx < 0] = first
    return heading[idx]


@functools.cache
def _fading_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K factors, std of the fade in dB, median in dB) of Rician fading,
    measured once on a fixed sample."""
    rng = np.random.default_rng(20240101)
    ks = np.concatenate([[0.0], np.logspace(-2, 2.5, 46)])
    g = (rng.normal(size=60_000) + 1j * rng.normal(size=60_000)) / math.sqrt(2)
    stds, meds = [], []
    for k in ks:
        h = math.sqrt(k / (k + 1)) + math.sqrt(1 / (k + 1)) * g
        db = 10 * np.log10(np.abs(h) ** 2)
        stds.append(db.std())
        meds.append(np.median(db))
    return ks, np.array(stds), np.array(meds)


def _fading_shape(fading_db: float) -> tuple[float, float, float]:
    """(K factor, scale, median in dB) that give per-packet fades of std
    `fading_db`: Rician up to Rayleigh's 5.6 dB, a scaled Rayleigh beyond."""
    ks, stds, meds = _fading_table()
    if fading_db <= 0:
        return float(ks[-1]), 0.0, 0.0
    if fading_db >= stds[0]:
        return 0.0, fading_db / float(stds[0]), float(meds[0])
    # stds falls as K grows: interpolate on the reversed arrays
    k = float(np.interp(fading_db, stds[::-1], ks[::-1]))
    med = float(np.interp(k, ks, meds))
    return k, 1.0, med


def _stable(text: str) -> int:
    """A hash of `text` that is the same in every run (str hash is salted)."""
    return zlib.crc32(text.encode("utf-8"))
