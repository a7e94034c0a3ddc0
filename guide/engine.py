"""The trigger engine: when to start an exhibit's track, and when never to cut it.

This file is the one home of the trigger rules. Staff tuning a site read the
rules here and the values in `guide.settings` (zones.yaml ``trigger:`` keys).

The rules
---------
1. Smoothing. Each beacon's RSSI goes through a time-constant filter
   (`smoothing` seconds), so a beacon heard at 1 Hz and one heard at 10 Hz
   settle equally fast. A packet far below the running level (a deep fade, a
   body in the way) is clipped to `FADE_CLIP` dB below it before it counts, so
   one fade cannot flip a decision; a second one in a row counts in full
   (the visitor is walking away). A beacon not heard for a while loses
   `SILENT_DECAY` dB a second after `SILENT_GRACE` seconds, and is forgotten
   after `forget` seconds.
2. Where the visitor is. Exhibits are compared on path loss (smoothed RSSI
   minus the beacon's tx_power), so a louder beacon does not win by being
   louder. The visitor is *at* exhibit X when X's level is at least
   `level` (default: the level expected at X's radius, less `slack`) and X
   leads every other exhibit by `margin` dB (a beacon not heard counts as
   not there).
3. Settling. The visitor has settled at X once that held for `dwell`
   seconds without a break (a drop-out of at most `DIP_PACKETS` packet
   intervals does not count as one), with X heard in the last
   `SILENT_GRACE` seconds; for `dwell_again` seconds at an exhibit whose
   track this visitor already walked away from (rule 5): a visitor whose
   route passes it again is not yet arriving.
   Once settled, the visitor stays at X until X falls `hysteresis` dB below
   its level, or another exhibit leads it by `hysteresis` dB: arriving is
   harder than staying, so two exhibits 2-3 m apart do not flicker.
4. Listening. Nothing the visitor does with their feet cuts a track they are
   listening to: it plays to its end. Only then does the exhibit where the
   visitor has settled (if any) start.
5. Glances. A track whose exhibit the visitor leaves within `glance` seconds
   of its start was a glance (or a wrong start). Time the visitor spent
   settled there waiting for the previous track to end counts towards those
   seconds, up to `wait_credit`: someone who waited is not glancing, unless
   they are below the exhibit's arrival `level` when that credit would close
   the window (they are walking off as it starts). A track whose visitor is
   not at its exhibit when those seconds are up waits `commit_grace` more for
   them to come back; if they leave meanwhile (or are leaving when it runs
   out) it was a glance too. A glance fades out over `fade` seconds (End
   reason "abandoned"), the exhibit does not count as heard, and the exhibit
   where the visitor has settled, if any, starts at once. Leaving
   means another exhibit leading X by `hysteresis`, or X falling `hysteresis`
   below its level (`LEADING_DROP` dB further while X still leads every
   other exhibit by `margin`: a phone held low reads that much weaker while
   its visitor stands still), for `leave` seconds (or `LEAVE_PACKETS` packet
   intervals of X's beacon when that is longer: a phone scanning at 1 Hz
   needs more packets' evidence than a 10 Hz scanner; the interval is
   learnt from 0.1 s, 10 % a packet, so at 1 Hz it reaches 3 s of leaving
   only after about 20 packets of the beacon, and leaving X takes `leave`
   before). Not a drop from the
   level at the start: visitors drift and turn while listening, and that
   alone moves the level by 10 dB.
6. Heard. An exhibit whose track played to its end, or past its glance
   window, is heard and does not start again when the visitor comes back,
   unless `replay_heard` is set (or the visitor presses replay).
7. Language. The track is the visitor's language, else the first language of
   the site's fallback chain that has one; the Start says which language
   plays and which was wanted. An exhibit with no track in any of them is
   skipped silently (and counted as heard).
8. Controls (pause, resume, replay, skip, next language) act at once.

The engine never reads a clock, sleeps or does I/O: callers pass `now`
(seconds on any monotonic clock) and perform the returned actions. Between
observations, call `tick(now)` at `next_deadline()`.

    engine = Engine(site, "en")
    for beacon, rssi, now in observations:
        for action in engine.observe(beacon, rssi, now):
            perform(action)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from guide.actions import Action, End, Pause, Resume, Start
from guide.site import Site

# Fixed constants of the rules above (not tuned per site: they describe radio
# physics and visitor behaviour, not a site's layout).
FADE_CLIP = 10.0  # dB: a packet counts at most this far below the running level
SILENT_GRACE = 2.5  # s without a packet before a beacon's level starts to decay
SILENT_DECAY = 6.0  # dB per second of silence after the grace period
LEAVE_PACKETS = 3.0  # `leave` lasts at least this many packet intervals (slow scanners)
DIP_PACKETS = 1.5  # packet intervals a candidate may drop out without losing its dwell
LEADING_DROP = 4.0  # dB further an exhibit still leading by its margin must fall to count as left
STEP = 0.25  # s between two evaluations of where the visitor is


class EngineError(Exception):
    """A control used in a state where it cannot apply (a bug in the caller)."""


@dataclass(slots=True)
class _Beacon:
    exhibit: int  # index into Engine._exhibits
    tx: float
    level: float = 0.0
    last: float = -math.inf  # time of the last packet
    heard: bool = False
    low: bool = False  # the last packet was a deep fade (clipped)
    interval: float = 0.1  # s between this beacon's packets (running estimate: from 0.1, 10 % a packet)


@dataclass(slots=True)
class _Playing:
    exhibit: str
    index: int
    lang: str
    track: str
    started: float  # engine time the current run of the track began
    offset: float  # track position at `started`
    paused_at: float | None = None  # track position while paused
    committed: bool = False  # past its glance window: never cut by walking
    away_since: float | None = None  # when the visitor started to be away from it
    arrived: float = 0.0  # when the visitor arrived at its exhibit


class Engine:
    """One visitor's trigger engine. See the module docstring for the rules."""

    def __init__(self, site: Site, lang: str, *, heard: frozenset[str] = frozenset()):
        if lang not in site.languages:
            raise ValueError(f"language {lang!r} is not offered by the site ({', '.join(site.languages)})")
        self.site = site
        self.lang = lang
        self._heard: set[str] = set(heard)
        self._exhibits = site.exhibits
        s = site.trigger
        self._tau = s.smoothing
        self._forget = s.forget
        self._fade = s.fade
        self._replay_heard = s.replay_heard
        self._beacons: dict[str, _Beacon] = {}
        self._enter: list[float] = []  # per exhibit: level needed to arrive
        for i, ex in enumerate(site.exhibits):
            t = ex.trigger
            level = t.level if t.level is not None else site.edge_level(ex) - t.slack
            self._enter.append(level)
            b = site.beacons[ex.beacon]
            self._beacons[ex.beacon] = _Beacon(exhibit=i, tx=float(b.tx_power))
        self._beacon_of = [self._beacons[ex.beacon] for ex in site.exhibits]
        self._tx = [float(site.beacons[ex.beacon].tx_power) for ex in site.exhibits]
        self._ids = {ex.id: i for i, ex in enumerate(site.exhibits)}
        self._levels: dict[int, float] = {}  # exhibit index -> level, at the last evaluation
        self._active: list[_Beacon] = []  # beacons heard and not yet forgotten
        self._here: int | None = None  # exhibit the visitor is at (rule 2)
        self._here_since = 0.0
        self._walked_off: set[int] = set()  # exhibits whose track was abandoned
        self._settled = False  # at `_here` for the whole dwell (rule 3)
        self._block: int | None = None  # not to start until the visitor leaves it
        self._lost: tuple[int, float, float] | None = None  # (candidate, since, lost at)
        self._playing: _Playing | None = None
        self._next_eval = -math.inf
        self._deadline: float | None = None

    # ----- public state ---------------------------------------------------
    @property
    def heard(self) -> frozenset[str]:
        return frozenset(self._heard)

    @property
    def playing(self) -> str | None:
        return self._playing.exhibit if self._playing else None

    @property
    def here(self) -> str | None:
        """The exhibit the visitor is at now (rule 2), settled or not."""
        return self._exhibits[self._here].id if self._here is not None else None

    def levels(self) -> dict[str, float]:
        """Smoothed RSSI (dBm) per exhibit whose beacon is heard, as of the
        last evaluation: what the rules compare (calibration reads it)."""
        return {self._exhibits[i].id: level for i, level in self._levels.items()}

    def position(self, now: float) -> float | None:
        """Seconds into the playing track, None when nothing plays."""
        p = self._playing
        if p is None:
            return None
        if p.paused_at is not None:
            return p.paused_at
        return p.offset + (now - p.started)

    def next_deadline(self) -> float | None:
        return self._deadline

    # ----- inputs -----------------------------------------------------------
    def observe(self, beacon: str, rssi: int, now: float) -> list[Action]:
        """One received advertisement. Unknown beacons are ignored."""
        b = self._beacons.get(beacon)
        if b is None:
            return []
        if not b.heard:
            b.heard = True
            b.level = float(rssi)
            self._active.append(b)
        else:
            dt = now - b.last
            if dt < 10.0:
                b.interval += 0.1 * (dt - b.interval)
            d = rssi - b.level
            if d < -FADE_CLIP:
                # one packet far below is a fade; two in a row are the visitor moving
                if not b.low:
                    b.low = True
                    d = -FADE_CLIP
            elif b.low:
                b.low = False
            # time-constant filter: the same settling time at any packet rate
            b.level += d * (1.0 - math.exp(-dt / self._tau)) if dt > 0 else 0.0
        b.last = now
        if now >= self._next_eval:
            return self._evaluate(now)
        return []

    def tick(self, now: float) -> list[Action]:
        """Let time pass with no observation (call at `next_deadline()`)."""
        return self._evaluate(now)

    def finished(self, now: float) -> list[Action]:
        """The playing track ended by itself."""
        p = self._playing
        if p is None:
            return []
        self._heard.add(p.exhibit)
        self._playing = None
        self._hold(p.index)  # replay_heard means on return, not at once
        return [End(exhibit=p.exhibit, reason="finished"), *self._evaluate(now)]

    def failed(self, now: float, message: str = "") -> list[Action]:
        """The playing track could not be played: try the next language of
        the chain that has a track; if none, the exhibit is skipped."""
        p = self._playing
        if p is None:
            return []
        self._playing = None
        out: list[Action] = [End(exhibit=p.exhibit, reason="error", track=p.track, error=message or None)]
        chain = self.site.chain(self.lang)
        tracks = self.site.exhibit(p.exhibit).tracks
        later = chain[chain.index(p.lang) + 1:] if p.lang in chain else ()
        for lang in later:
            if lang in tracks:
                # the visitor's arrival is the failed track's: a wait there was no wait for this one
                self._playing = _Playing(exhibit=p.exhibit, index=p.index, lang=lang, track=tracks[lang],
                                         started=now, offset=0.0, committed=p.committed, arrived=p.arrived)
                out.append(Start(exhibit=p.exhibit, lang=lang, track=tracks[lang],
                                 wanted=self.lang if lang != self.lang else None))
                return out
        self._heard.add(p.exhibit)
        self._hold(p.index)  # as finished: with replay_heard, not again until a return
        out.extend(self._evaluate(now))
        return out

    # ----- visitor controls ----------------------------------------------------
    def pause(self, now: float) -> list[Action]:
        p = self._playing
        if p is None or p.paused_at is not None:
            return []
        p.paused_at = self.position(now)
        p.committed = True  # a visitor who pauses a track is listening to it
        return [Pause(exhibit=p.exhibit, position=p.paused_at)]

    def resume(self, now: float) -> list[Action]:
        p = self._playing
        if p is None or p.paused_at is None:
            return []
        p.offset, p.started, p.paused_at = p.paused_at, now, None
        return [Resume(exhibit=p.exhibit, position=p.offset)]

    def replay(self, now: float) -> list[Action]:
        """Start the current exhibit's track again from the top; with nothing
        playing, the last exhibit heard where the visitor stands."""
        out: list[Action] = []
        target = None
        if self._playing is not None:
            target = self._playing.exhibit
            out.append(End(exhibit=target, reason="replay", fade=self._fade))
            self._playing = None
        elif self._here is not None:
            target = self._exhibits[self._here].id
        if target is None:
            return out
        out.extend(self._start(self._index(target), now, committed=True))
        return out

    def skip(self, now: float) -> list[Action]:
        """Stop the playing track; its exhibit counts as heard."""
        p = self._playing
        if p is None:
            return []
        self._heard.add(p.exhibit)
        self._playing = None
        self._hold(p.index)  # with replay_heard, a skip is not undone at once: not until a return
        return [End(exhibit=p.exhibit, reason="skipped", fade=self._fade)]

    def set_language(self, lang: str, now: float) -> list[Action]:
        """Change the visitor's language; the playing exhibit starts again in it
        (when the new chain gives a different track)."""
        if lang not in self.site.languages:
            raise ValueError(f"language {lang!r} is not offered by the site")
        self.lang = lang
        p = self._playing
        if p is None:
            return []
        found = self.site.track_for(p.exhibit, lang)
        if found is None or found[1] == p.track:
            return []
        self._playing = None
        return [End(exhibit=p.exhibit, reason="language", fade=self._fade),
                *self._start(p.index, now, committed=True)]

    # ----- persistence -------------------------------------------------------
    def snapshot(self, now: float) -> dict:
        """What must survive a reboot (JSON-able): the language, the exhibits
        heard and walked away from (rules 3 and 6), the playing track."""
        p = self._playing
        playing = None
        if p is not None:
            playing = {"exhibit": p.exhibit, "lang": p.lang, "track": p.track,
                       "position": round(self.position(now) or 0.0, 3),
                       "paused": p.paused_at is not None}
        walked_off = sorted(self._exhibits[i].id for i in self._walked_off)
        return {"lang": self.lang, "heard": sorted(self._heard), "walked_off": walked_off,
                "playing": playing}

    @classmethod
    def restore(cls, site: Site, snapshot: dict, now: float) -> tuple["Engine", list[Action]]:
        """An engine continuing a saved visit, and the actions that resume it:
        the interrupted track restarts `resume_rewind` seconds before where it
        stopped (paused tracks stay paused)."""
        heard = frozenset(snapshot.get("heard", ())) & site.exhibit_ids
        lang = snapshot.get("lang")
        engine = cls(site, lang if lang in site.languages else site.languages[0], heard=heard)
        walked_off = snapshot.get("walked_off", ())  # absent from states saved before it existed
        engine._walked_off = {engine._ids[e] for e in walked_off if e in engine._ids}
        p = snapshot.get("playing")
        if not p or p.get("exhibit") not in site.exhibit_ids:
            return engine, []
        found = site.track_for(p["exhibit"], engine.lang)
        if found is None:
            return engine, []
        lang, track = found
        position = float(p.get("position", 0.0))
        if track != p.get("track"):
            position = 0.0  # the map changed under us: start that exhibit afresh
        offset = round(max(0.0, position - site.trigger.resume_rewind), 3)  # as Start and Pause say it
        engine._playing = _Playing(exhibit=p["exhibit"], index=engine._index(p["exhibit"]),
                                   lang=lang, track=track,
                                   started=now, offset=offset, committed=True)
        start = Start(exhibit=p["exhibit"], lang=lang, track=track, offset=offset,
                      wanted=engine.lang if lang != engine.lang else None)
        if p.get("paused"):
            engine._playing.paused_at = offset
            return engine, [start, Pause(exhibit=p["exhibit"], position=offset)]
        return engine, [start]

    # ----- the rules -------------------------------------------------------
    def _evaluate(self, now: float) -> list[Action]:
        self._next_eval = now + STEP
        here = self._locate(now)
        if here != self._here:
            self._move(here, now)
        if here is not None and not self._settled:
            t = self._exhibits[here].trigger
            dwell = max(t.dwell, t.dwell_again) if here in self._walked_off else t.dwell
            self._settled = (now - self._here_since >= dwell
                             and now - self._beacon_of[here].last <= SILENT_GRACE)
        out: list[Action] = []
        p = self._playing
        if p is not None and not p.committed and p.paused_at is None:
            i = p.index
            t = self._exhibits[i].trigger
            left = self._left(p, now)
            # time at the exhibit, not only since its start: a visitor who
            # waited there for the previous track to end is not glancing...
            played = now - max(p.started - t.wait_credit, min(p.started, p.arrived + t.dwell))
            late = played >= t.glance
            # ...unless they are already walking off as it starts: before its
            # own glance seconds have played, a track commits only while its
            # level is still the one needed to arrive
            staying = (here == i and not left
                       and (now - p.started >= t.glance or self._levels.get(i, -math.inf) >= self._enter[i]))
            # past the grace the visitor counts as listening, unless their
            # leaving is still being confirmed (3 packets take 3 s at 1 Hz)
            graced = played >= t.glance + t.commit_grace and p.away_since is None
            if late and (staying or graced):
                p.committed = True
                self._heard.add(p.exhibit)
            elif left:
                # rule 5: a glance or a wrong start; it costs seconds, not minutes
                self._playing = None
                out.append(End(exhibit=p.exhibit, reason="abandoned", fade=self._fade))
                self._hold(i)  # it must be earned again by a fresh arrival
                self._walked_off.add(i)
        if self._playing is None and self._settled and here != self._block:
            ex = self._exhibits[here]
            if ex.id not in self._heard or self._replay_heard:
                out.extend(self._start(here, now, committed=False))
        self._deadline = self._next_deadline(now)
        return out

    def _hold(self, index: int) -> None:
        """Start nothing at exhibit `index` until the visitor has left it: a
        visitor standing there when its track ended (or was abandoned) has
        not arrived again. One who had already left it when it ended arrives
        afresh when they come back, and may hear it (`_move` lifts the hold
        only when the visitor's place changes)."""
        self._block = index if self._here == index else None

    def _move(self, here: int | None, now: float) -> None:
        """The visitor is now at `here` (rule 2). A candidate that drops out
        for at most DIP_PACKETS packet intervals before its dwell is complete
        keeps its dwell: at 1 packet a second one noisy packet is not a walk."""
        lost = self._lost
        self._lost = None
        if here is None and self._here is not None and not self._settled:
            self._lost = (self._here, self._here_since, now)
        elif (lost is not None and here == lost[0]
              and now - lost[2] <= DIP_PACKETS * self._beacon_of[here].interval):
            self._here, self._here_since = here, lost[1]
            return
        self._here = here
        self._here_since = now
        self._settled = False
        if here != self._block:
            self._block = None

    def _left(self, p: "_Playing", now: float) -> bool:
        """Rule 5: has the visitor walked away from the playing exhibit?
        (See the module docstring for why it is judged this way.)"""
        i = p.index
        t = self._exhibits[i].trigger
        level = self._levels.get(i)
        if level is None:
            away = True
        else:
            lead = level - self._tx[i] - self._best_other(i)
            floor = self._enter[i] - t.hysteresis - (LEADING_DROP if lead >= t.margin else 0.0)
            away = lead <= -t.hysteresis or level < floor
        if not away:
            p.away_since = None
            return False
        if p.away_since is None:
            p.away_since = now
        confirm = max(t.leave, LEAVE_PACKETS * self._beacon_of[i].interval)
        return now - p.away_since >= confirm

    def _best_other(self, i: int) -> float:
        best = -math.inf
        for j, level in self._levels.items():
            if j != i and level - self._tx[j] > best:
                best = level - self._tx[j]
        return best

    def _locate(self, now: float) -> int | None:
        """Rule 2: the exhibit the visitor is at, with hysteresis. Also
        refreshes `_levels` (exhibit index -> current level) for rule 5."""
        levels = self._levels
        levels.clear()
        keep: list[_Beacon] = []
        best = second = -math.inf
        best_i = -1
        for b in self._active:
            silent = now - b.last
            if silent > self._forget:
                b.heard = False  # rule 1: forgotten
                continue
            keep.append(b)
            level = b.level
            if silent > SILENT_GRACE:
                level -= SILENT_DECAY * (silent - SILENT_GRACE)
            levels[b.exhibit] = level
            score = level - b.tx
            if score > best:
                second = best
                best, best_i = score, b.exhibit
            elif score > second:
                second = score
        if len(keep) != len(self._active):
            self._active = keep
        if best_i < 0:
            return None
        cur = self._here
        if cur is not None and cur in levels and self._settled:
            t = self._exhibits[cur].trigger
            score = levels[cur] - self._tx[cur]
            other = second if best_i == cur else best
            if levels[cur] >= self._enter[cur] - t.hysteresis and other - score < t.hysteresis:
                return cur
        t = self._exhibits[best_i].trigger
        if levels[best_i] >= self._enter[best_i] and best - second >= t.margin:
            return best_i
        return None

    def _start(self, index: int, now: float, *, committed: bool) -> list[Action]:
        exhibit = self._exhibits[index].id
        found = self.site.track_for(exhibit, self.lang)
        if found is None:
            self._heard.add(exhibit)  # rule 7: nothing to play in any language
            return []
        lang, track = found
        self._playing = _Playing(exhibit=exhibit, index=index, lang=lang, track=track,
                                 started=now, offset=0.0, committed=committed,
                                 arrived=self._here_since if self._here == index else now)
        return [Start(exhibit=exhibit, lang=lang, track=track,
                      wanted=self.lang if lang != self.lang else None)]

    def _index(self, exhibit: str) -> int:
        i = self._ids.get(exhibit)
        if i is None:
            raise EngineError(f"unknown exhibit {exhibit!r}")
        return i

    def _next_deadline(self, now: float) -> float | None:
        if not self._active and self._playing is None:
            return None
        return now + STEP
