"""The zone map in memory: frozen dataclasses built by `guide.zones.load_zones`.

Everything here is valid by construction: the loader checks the file and
reports every problem before any of these objects exist, so the engine, the
device and the tools never meet a half-valid site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from guide.settings import TriggerSettings


@dataclass(frozen=True, kw_only=True)
class IBeacon:
    """An Apple iBeacon identity; `uuid` is lower-case, canonical 8-4-4-4-12."""

    uuid: str
    major: int
    minor: int


@dataclass(frozen=True, kw_only=True)
class Eddystone:
    """An Eddystone-UID identity; lower-case hex, 20 and 12 digits."""

    namespace: str
    instance: str


@dataclass(frozen=True, kw_only=True)
class Beacon:
    id: str
    ident: IBeacon | Eddystone
    tx_power: int  # dBm measured at 1 m
    x: float  # metres
    y: float


@dataclass(frozen=True, kw_only=True)
class Exhibit:
    id: str
    title: Mapping[str, str]  # language -> title
    beacon: str  # a key of Site.beacons
    radius: float  # metres
    tracks: Mapping[str, str]  # language -> path relative to Site.tracks_dir
    trigger: TriggerSettings  # site defaults merged with this exhibit's overrides
    x: float  # where visitors stand; defaults to the beacon's position
    y: float


Segment = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True, kw_only=True)
class Site:
    path: Path  # the zones.yaml it was loaded from
    name: str
    languages: tuple[str, ...]  # the first is the default
    fallback: Mapping[str, tuple[str, ...]]  # language -> languages to try next, in order
    tracks_dir: Path  # absolute
    beacons: Mapping[str, Beacon]
    exhibits: tuple[Exhibit, ...]
    trigger: TriggerSettings  # site-level settings
    walls: tuple[Segment, ...] = ()  # optional; radio model and lint use them
    # language -> track (relative to tracks_dir) the device plays before the
    # first exhibit: a welcome and how much of the visit exists in that language
    intro: Mapping[str, str] = field(default_factory=dict)
    _by_id: Mapping[str, Exhibit] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.id: e for e in self.exhibits})

    def exhibit(self, exhibit_id: str) -> Exhibit:
        return self._by_id[exhibit_id]

    @property
    def exhibit_ids(self) -> frozenset[str]:
        return frozenset(self._by_id)

    def chain(self, lang: str) -> tuple[str, ...]:
        """The languages to try for a visitor who chose `lang`, best first."""
        return (lang, *self.fallback.get(lang, ()))

    def track_for(self, exhibit_id: str, lang: str) -> tuple[str, str] | None:
        """(language actually played, track path relative to tracks_dir), or None
        when the exhibit has no track in `lang` nor any language of its chain."""
        tracks = self._by_id[exhibit_id].tracks
        for candidate in self.chain(lang):
            if candidate in tracks:
                return candidate, tracks[candidate]
        return None

    def track_path(self, relative: str) -> Path:
        return self.tracks_dir / relative

    def edge_level(self, exhibit: Exhibit) -> float:
        """RSSI (dBm) expected at the edge of an exhibit's radius, from its
        beacon's tx_power and the site's path-loss exponent."""
        tx = self.beacons[exhibit.beacon].tx_power
        n = exhibit.trigger.path_loss_exponent
        return tx - 10.0 * n * math.log10(max(exhibit.radius, 0.1))
