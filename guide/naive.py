"""Today's museum behaviour, the baseline every table shows beside the engine.

The strongest beacon whose packet puts the visitor within its exhibit's
radius starts that exhibit at once, cutting whatever plays. Distance comes
from the raw RSSI of each packet (log-distance, exponent 2); there is no
smoothing, dwell or hysteresis. It does not restart the exhibit that is
already playing, nor the last one it played while the visitor stays there.
Same interface as `guide.engine.Engine`, so the same replay drives both.
"""

from __future__ import annotations

import math

from guide.actions import Action, End, Start
from guide.site import Site

WINDOW = 1.0  # s: packets older than this no longer compete for "strongest"


class NaiveEngine:
    def __init__(self, site: Site, lang: str):
        self.site = site
        self.lang = lang
        # per beacon: (exhibit id, tx_power, rssi at the radius edge)
        self._beacons = {}
        for ex in site.exhibits:
            tx = site.beacons[ex.beacon].tx_power
            edge = tx - 20.0 * math.log10(max(ex.radius, 0.1))
            self._beacons[ex.beacon] = (ex.id, tx, edge)
        self._recent: dict[str, tuple[float, int]] = {}  # beacon -> (t, rssi)
        self._playing: str | None = None
        self._last: str | None = None

    @property
    def playing(self) -> str | None:
        return self._playing

    def next_deadline(self) -> float | None:
        return None

    def tick(self, now: float) -> list[Action]:
        return []

    def finished(self, now: float) -> list[Action]:
        if self._playing is None:
            return []
        ex, self._playing = self._playing, None
        return [End(exhibit=ex, reason="finished")]

    def observe(self, beacon: str, rssi: int, now: float) -> list[Action]:
        info = self._beacons.get(beacon)
        if info is None:
            return []
        self._recent[beacon] = (now, rssi)
        exhibit, tx, edge = info
        if rssi < edge or exhibit == self._playing or exhibit == self._last:
            return []
        # strongest (by path loss) among beacons heard within the window
        for other, (t, r) in self._recent.items():
            if other != beacon and now - t <= WINDOW and r - self._beacons[other][1] > rssi - tx:
                return []
        out: list[Action] = []
        if self._playing is not None:
            out.append(End(exhibit=self._playing, reason="interrupted"))
        found = self.site.track_for(exhibit, self.lang)
        self._last = exhibit
        if found is None:
            self._playing = None
            return out
        self._playing = exhibit
        lang, track = found
        out.append(Start(exhibit=exhibit, lang=lang, track=track,
                         wanted=self.lang if lang != self.lang else None))
        return out
