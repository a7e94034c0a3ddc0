"""Properties of the trigger engine (guide.engine) and the naive policy
(guide.naive) over generated visits: any walk, any packet rate, any pressing
of the visitor's buttons, on small real sites read from zones.yaml.

A visit is a list of steps: walking to a place (packets of every beacon in
range at 1-10 Hz, with noise, fades, lost packets and beacons the map does
not know), silences (the driver ticks at `next_deadline()`, as the device
does), and the visitor's controls. The driver plays the "player" as
guide.replay does: a started track ends by itself `duration - offset` seconds
later, and a paused one waits (the device's player holds its position). Every
call's actions go through `Stream`, which checks the invariants the engine's
docstring (rules 1-8) and guide.actions promise.
"""

from __future__ import annotations

import copy
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from guide import tracks
from guide.actions import End, Pause, Resume, Start
from guide.engine import LEAVE_PACKETS, STEP, Engine
from guide.naive import NaiveEngine
from guide.site import Site
from guide.zones import load_zones

UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"

# `a` and `b` 2.5 m apart, `e` 2.5 m from both, `c` 12 m away, `d` on its own.
# German has no track for `b` (its chain: en, fr), English none for `c` (fr);
# `d` has German only, so English and French visitors skip it (rule 7). `d`
# and `e` override per-exhibit settings.
ZONES = f"""\
site: Property gallery
languages: [en, fr, de]
fallback: {{en: [fr], fr: [], de: [en, fr]}}
trigger: {{replay_heard: REPLAY_HEARD}}
beacons:
  b-a: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 1}}, tx_power: -59, x: 0, y: 0}}
  b-b: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 2}}, tx_power: -62, x: 2.5, y: 0}}
  b-c: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 3}}, tx_power: -59, x: 12, y: 0}}
  b-d: {{eddystone: {{namespace: edd1ebeac04e5defa017, instance: 0123456789ab}}, tx_power: -65, x: 6, y: 8}}
  b-e: {{ibeacon: {{uuid: {UUID}, major: 1, minor: 5}}, tx_power: -59, x: 1.25, y: 2.2}}
exhibits:
  - {{id: a, title: {{en: A}}, beacon: b-a, radius: 1.5,
     tracks: {{en: en/a.wav, fr: fr/a.wav, de: de/a.wav}}}}
  - {{id: b, title: {{en: B}}, beacon: b-b, radius: 1.5, tracks: {{en: en/b.wav, fr: fr/b.wav}}}}
  - {{id: c, title: {{fr: C}}, beacon: b-c, radius: 2.5, tracks: {{fr: fr/c.wav}}}}
  - id: d
    title: {{de: D}}
    beacon: b-d
    radius: 2.0
    tracks: {{de: de/d.wav}}
    trigger: {{dwell: 1.0, dwell_again: 0.5, glance: 4.0, commit_grace: 0.0, leave: 0.5,
              margin: 3.0, hysteresis: 2.0}}
  - id: e
    title: {{en: E}}
    beacon: b-e
    radius: 1.0
    tracks: {{en: en/e.wav, fr: fr/e.wav, de: de/e.wav}}
    trigger: {{level: -66, wait_credit: 0.0, glance: 20.0, commit_grace: 10.0, dwell: 2.0}}
"""
SECONDS = {"en/a.wav": 20.0, "fr/a.wav": 22.0, "de/a.wav": 18.0, "en/b.wav": 8.0, "fr/b.wav": 9.0,
           "fr/c.wav": 30.0, "de/d.wav": 6.0, "en/e.wav": 25.0, "fr/e.wav": 3.0, "de/e.wav": 40.0}
BEACON_AT = {"b-a": (0.0, 0.0), "b-b": (2.5, 0.0), "b-c": (12.0, 0.0), "b-d": (6.0, 8.0),
             "b-e": (1.25, 2.2)}
UNKNOWN = "b-stranger"  # a beacon of another site, heard in passing
PLACES = [*BEACON_AT.values(), (1.25, 0.0), (0.6, 1.1), (7.0, 0.0), (30.0, 30.0)]


def write_site(tmp_path: Path, make_wav, *, replay_heard: bool) -> Site:
    for rel, seconds in SECONDS.items():
        make_wav(tmp_path / "tracks" / rel, seconds, rate=200)
    (tmp_path / "zones.yaml").write_text(ZONES.replace("REPLAY_HEARD", str(replay_heard).lower()))
    return load_zones(tmp_path / "zones.yaml")


@pytest.fixture(params=[False, True], ids=["heard-once", "replay-heard"])
def site(request, tmp_path, make_wav) -> Site:
    return write_site(tmp_path, make_wav, replay_heard=request.param)


# ----- generated visits --------------------------------------------------------

@dataclass(frozen=True)
class Walk:
    """Stand at (x, y) for `seconds`, hearing every beacon within 20 m at
    `rate` packets a second (jittered, some lost, some deep fades)."""
    x: float
    y: float
    seconds: float
    rate: float
    noise: float
    lost: float
    seed: int


@dataclass(frozen=True)
class Gap:
    seconds: float  # no packets at all


@dataclass(frozen=True)
class Press:
    control: str  # pause, resume, replay, skip, failed, or a language


places = st.one_of(st.sampled_from(PLACES),
                   st.tuples(st.floats(-3, 15), st.floats(-3, 11)))
rates = st.one_of(st.sampled_from([1.0, 10.0, 2.0, 5.0]), st.floats(1.0, 10.0))
walks = st.builds(lambda p, s, r, n, l, seed: Walk(p[0], p[1], s, r, n, l, seed), places,
                  st.floats(0.2, 25), rates, st.floats(0, 8), st.floats(0, 0.6), st.integers(0, 2**16))
gaps = st.builds(Gap, st.floats(0, 15))
presses = st.builds(Press, st.one_of(
    st.sampled_from(["pause", "resume"]),
    st.sampled_from(["pause", "resume", "replay", "skip", "failed", "en", "fr", "de"])))


@st.composite
def stops(draw, controls: bool = True) -> list:
    """A visitor who stops at an exhibit (long enough to settle, to listen
    past the glance window, or to the end of the track), pressing buttons
    as they listen."""
    x, y = draw(st.sampled_from(PLACES[:-2]))  # at an exhibit, or between two
    rate, noise, lost = draw(rates), draw(st.floats(0, 4)), draw(st.floats(0, 0.3))
    steps: list = []
    for _ in range(draw(st.integers(1, 4))):
        seconds = draw(st.one_of(st.sampled_from([3.0, 7.0, 14.0, 25.0]), st.floats(0.2, 30)))
        steps.append(Walk(x, y, seconds, rate, noise, lost, draw(st.integers(0, 2**16))))
        if controls and draw(st.booleans()):  # a button, or a pause of a few seconds
            steps.extend(draw(st.one_of(presses.map(lambda p: [p]), st.builds(
                lambda s, r: [Press("pause"), Walk(x, y, s, rate, noise, lost, r), Press("resume")],
                st.floats(0, 5), st.integers(0, 2**16)))))
    return steps


def visits_of(*parts) -> st.SearchStrategy[list]:
    return st.lists(st.one_of(*parts), min_size=1, max_size=8).map(lambda lists: sum(lists, []))


visits = visits_of(stops(), st.lists(st.one_of(walks, gaps, presses), min_size=1, max_size=3))
naive_visits = visits_of(stops(controls=False), st.lists(st.one_of(walks, gaps), min_size=1, max_size=3))


def packets(walk: Walk, t0: float):
    """(t, beacon, rssi) of one Walk from t0, in time order (equal times occur)."""
    rnd = random.Random(walk.seed)
    out = []
    t = t0
    end = t0 + walk.seconds
    while t < end:
        for beacon, (bx, by) in BEACON_AT.items():
            d = math.hypot(walk.x - bx, walk.y - by)
            if d > 20 or rnd.random() < walk.lost:
                continue
            rssi = -59 - 20 * math.log10(max(d, 0.3)) + rnd.gauss(0, walk.noise)
            if rnd.random() < 0.05:
                rssi -= 30  # a body in the way
            out.append((t, beacon, int(min(0, max(-127, round(rssi))))))
        if rnd.random() < 0.1:
            out.append((t, UNKNOWN, rnd.randint(-127, 0)))
        if rnd.random() < 0.02:  # the readers' extremes
            out.append((t, rnd.choice(list(BEACON_AT)), rnd.choice((-127, 0))))
        t += max(0.0, rnd.gauss(1.0 / walk.rate, 0.2 / walk.rate))
    return out, end


# ----- the checker -----------------------------------------------------------------

AUTO = ("observe", "tick", "finished")  # the engine's own decisions
ENDS_BY = {"observe": {"abandoned"}, "tick": {"abandoned"}, "finished": {"finished"},
           "skip": {"skipped"}, "replay": {"replay"}, "language": {"language"}, "failed": {"error"},
           "pause": set(), "resume": set()}


@dataclass
class Play:
    exhibit: str
    lang: str
    start: float
    committed: bool  # started by a control or a restore: never a glance
    heard_before: bool
    paused: bool = False
    was_paused: bool = False  # a visitor who pauses a track is listening to it


@dataclass
class Stream:
    """Checks each call's actions against the rules; `strict` off for a
    stream fed invalid input (only its shape is checked then)."""
    site: Site
    engine: Engine | NaiveEngine
    naive: bool = False
    strict: bool = True
    playing: Play | None = None
    t: float = -math.inf
    last_packet: dict = field(default_factory=dict)
    max_interval: dict = field(default_factory=dict)  # beacon -> longest gap < 10 s seen

    def packet(self, beacon: str, t: float) -> None:
        last = self.last_packet.get(beacon)
        if last is not None and t - last < 10.0:
            self.max_interval[beacon] = max(self.max_interval.get(beacon, 0.1), t - last)
        self.last_packet[beacon] = t

    def check(self, kind: str, t: float, actions: list, heard_before: frozenset[str]) -> None:
        site, eng = self.site, self.engine
        if self.strict:
            assert t >= self.t
        self.t = max(self.t, t)
        abandoned: set[str] = set()  # not heard before their start
        for a in actions:
            p = self.playing
            if isinstance(a, Start):
                assert p is None, f"{kind}: {a} while {p} plays"
                chain = site.chain(eng.lang)
                e = self.ended
                # failed(): the next language of the chain that has a track
                fallback = (kind == "failed" and e is not None and a.exhibit == e.exhibit
                            and e.lang in chain and chain.index(a.lang) > chain.index(e.lang))
                auto = kind in AUTO or (kind == "failed" and not fallback)
                if kind == "failed" and a.exhibit == e.exhibit and not site.trigger.replay_heard:
                    assert fallback, f"{a} after {e.lang} failed"  # never the same track again
                self._check_start(auto, fallback, a, heard_before)
                committed = (e.committed or e.was_paused) if fallback else not auto
                self.playing = Play(a.exhibit, a.lang, t, committed, not self.naive and a.exhibit in eng.heard)
                self.returned.discard(a.exhibit)
            elif isinstance(a, End):
                assert p is not None and a.exhibit == p.exhibit, f"{kind}: {a} while {p} plays"
                assert a.reason in (ENDS_BY[kind] if not self.naive else {"finished", "interrupted"}), \
                    f"{kind} gave {a}"
                if self.naive:
                    assert (a.reason == "finished") == (kind == "finished")
                else:
                    self._check_end(kind, t, a, p)
                    if a.reason == "abandoned" and not p.heard_before:
                        abandoned.add(a.exhibit)
                self.ended = p
                self.playing = None
                self.returned.add(a.exhibit)
            elif isinstance(a, Pause):
                assert kind == "pause" and p is not None and not p.paused and a.exhibit == p.exhibit
                assert a.position == eng.position(t)
                p.paused = p.was_paused = True
            elif isinstance(a, Resume):
                assert kind == "resume" and p is not None and p.paused and a.exhibit == p.exhibit
                assert a.position == eng.position(t)
                p.paused = False
            else:
                raise AssertionError(f"not an action: {a!r}")
        assert eng.playing == (self.playing.exhibit if self.playing else None)
        d = eng.next_deadline()
        assert d is None or d >= t
        if self.naive:
            return
        self.returned &= {eng.here}  # the visitor left the others
        assert heard_before <= eng.heard  # nothing is ever un-heard
        for ex in abandoned:
            assert ex not in eng.heard, f"{ex} abandoned yet counted as heard"

    def _check_start(self, auto: bool, fallback: bool, a: Start, heard_before: frozenset[str]) -> None:
        site, eng = self.site, self.engine
        lang = eng.lang
        chain = site.chain(lang)
        assert a.lang in chain, f"{a} is not in the chain of {lang}"
        assert a.wanted == (lang if a.lang != lang else None), a
        assert site.exhibit(a.exhibit).tracks[a.lang] == a.track, a
        assert a.offset == 0.0
        if not fallback:  # rule 7: the first language of the chain that has a track
            assert (a.lang, a.track) == site.track_for(a.exhibit, lang), a
        if auto and not self.naive:
            if not site.trigger.replay_heard:  # rule 6 (eng.heard: as the call left it)
                assert a.exhibit not in heard_before | eng.heard, f"{a.exhibit} started again, already heard"
            # replay_heard: "on return, not at once": an exhibit whose track
            # ended starts again by itself only once the visitor has been
            # somewhere else (the engine's `here`) and come back
            assert a.exhibit not in self.returned, f"{a.exhibit} started again before the visitor left it"

    def _check_end(self, kind: str, t: float, a: End, p: Play) -> None:
        site, eng = self.site, self.engine
        if a.reason in ("finished", "skipped"):
            assert a.exhibit in eng.heard
        if a.reason in ("abandoned", "replay", "language", "skipped"):
            assert a.fade == site.trigger.fade
        if a.reason == "abandoned":
            # rule 4: past its glance window (and the grace, and the leave
            # being confirmed) a track is never cut by walking; nor is a
            # track a control started, or one the visitor paused
            assert not p.committed and not p.was_paused, f"{a} of a track the visitor chose"
            ex = site.exhibit(a.exhibit)
            tr = ex.trigger
            confirm = max(tr.leave, LEAVE_PACKETS * self.max_interval.get(ex.beacon, 0.1))
            window = tr.glance + tr.commit_grace + confirm + 2 * STEP + 1e-6
            assert t - p.start <= window, \
                f"{a.exhibit} cut by walking {t - p.start:.2f} s after its start (window {window:.2f} s)"

    ended: Play | None = None  # the track that ended last (a failed one is replaced)
    returned: set = field(default_factory=set)  # ended, and the visitor has not left them since


class Driver:
    """Feeds a visit to an engine as guide.replay does, checking every call."""

    def __init__(self, site: Site, engine, *, naive: bool = False, strict: bool = True,
                 events: bool = True):
        self.site, self.engine = site, engine
        self.events = events  # hypothesis.event() is for @given tests only
        self.stream = Stream(site, engine, naive=naive, strict=strict)
        self.t = 0.0
        self.track_end = math.inf
        self.remaining: float | None = None  # seconds left of a paused track
        self.log: list = []

    def call(self, kind: str, t: float, fn, *args) -> list:
        heard = self.engine.heard if not self.stream.naive else frozenset()
        acts = fn(*args)
        self.log.append((kind, t, acts))
        for a in acts:
            if isinstance(a, Start):
                self.track_end = t + SECONDS[a.track] - a.offset
            elif isinstance(a, End):
                self.track_end = math.inf
            elif isinstance(a, Pause):
                self.remaining, self.track_end = self.track_end - t, math.inf
            elif isinstance(a, Resume):
                self.track_end = t + self.remaining
        self.stream.check(kind, t, acts, heard)
        for a in acts if self.events else ():  # what the visits reach (--hypothesis-show-statistics)
            event(f"{kind}: {type(a).__name__} {getattr(a, 'reason', '')}".rstrip())
        return acts

    def advance(self, t: float) -> None:
        """Everything due up to `t`: tracks ending by themselves, deadlines."""
        eng = self.engine
        while True:
            d = eng.next_deadline()
            d = math.inf if d is None else d
            if self.track_end <= t and self.track_end <= d:
                at = max(self.track_end, self.t)
                self.track_end = math.inf
                self.t = at
                self.call("finished", at, eng.finished, at)
            elif d <= t:
                self.t = max(d, self.t)
                self.call("tick", self.t, eng.tick, self.t)
            else:
                break
        self.t = t

    def step(self, s) -> None:
        eng = self.engine
        if isinstance(s, Walk):
            rows, end = packets(s, self.t)
            for t, beacon, rssi in rows:
                self.advance(t)
                self.stream.packet(beacon, t)
                self.call("observe", t, eng.observe, beacon, rssi, t)
            self.advance(end)
        elif isinstance(s, Gap):
            self.advance(self.t + s.seconds)
        elif s.control in ("pause", "resume", "replay", "skip", "failed"):
            self.advance(self.t)
            fn = getattr(eng, s.control)
            self.call(s.control, self.t, fn, self.t)
        else:
            self.advance(self.t)
            self.call("language", self.t, eng.set_language, s.control, self.t)

    def run(self, steps) -> list:
        for s in steps:
            self.step(s)
        return self.log


def visit(site: Site, steps, lang: str) -> Driver:
    d = Driver(site, Engine(site, lang))
    d.run(steps)
    return d


# ----- the properties ------------------------------------------------------

PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@settings(PROPS, max_examples=120)
@given(steps=visits, lang=st.sampled_from(["en", "fr", "de"]))
def test_any_visit_gives_a_well_formed_stream_that_keeps_the_rules(site, steps, lang):
    """One track at a time; ends, pauses and resumes name the track playing;
    heard exhibits do not start again (rule 6); a track past its glance
    window is never cut by walking (rule 4); the track is the first of the
    visitor's chain that has one (rule 7); the deadline never lies behind."""
    visit(site, steps, lang)


@PROPS
@given(steps=visits, lang=st.sampled_from(["en", "fr", "de"]))
def test_the_same_visit_gives_the_same_actions(site, steps, lang):
    assert visit(site, steps, lang).log == visit(site, steps, lang).log


def expected_after_restore(site: Site, snap: dict) -> tuple[dict, list]:
    """What Engine.restore promises: the language, the exhibits heard and
    walked away from, and the playing track (the first of the chain now; from
    the top if that is not the track saved), `resume_rewind` seconds earlier,
    paused if it was."""
    p = snap["playing"]
    if p is None or site.track_for(p["exhibit"], snap["lang"]) is None:
        return {**snap, "playing": None}, []
    lang, track = site.track_for(p["exhibit"], snap["lang"])
    position = p["position"] if track == p["track"] else 0.0
    offset = round(max(0.0, position - site.trigger.resume_rewind), 3)
    start = Start(exhibit=p["exhibit"], lang=lang, track=track, offset=offset,
                  wanted=snap["lang"] if lang != snap["lang"] else None)
    actions = [start, Pause(exhibit=p["exhibit"], position=offset)] if p["paused"] else [start]
    return {**snap, "playing": {**p, "lang": lang, "track": track, "position": offset}}, actions


@PROPS
@given(steps=visits, lang=st.sampled_from(["en", "fr", "de"]), data=st.data())
def test_a_restored_visit_carries_on_from_its_snapshot(site, steps, lang, data):
    """What restore promises is the visit, not the radio: the language, the
    exhibits heard and walked away from, and the playing track (rewound by
    `resume_rewind`, paused if it was) come back exactly, and the restored
    engine's snapshot says so; the smoothed levels, packet intervals, where
    the visitor stands and their dwell are learnt again from fresh packets,
    so the actions after a reboot may differ in timing from a visit without
    one (even at a quiet moment: each beacon's packet interval outlives its
    being forgotten, not a reboot). The visit then carries on under every
    rule, an exhibit heard before the reboot not started again by walking."""
    k = data.draw(st.integers(0, len(steps)), label="reboot before step")
    before = Driver(site, Engine(site, lang))
    before.run(steps[:k])
    now = before.t
    snap = json.loads(json.dumps(before.engine.snapshot(now)))  # as the state file holds it
    engine, actions = Engine.restore(site, copy.deepcopy(snap), now)
    want_snap, want_actions = expected_after_restore(site, snap)
    assert actions[:1] == want_actions[:1]
    if len(want_actions) == 2:  # the Pause says where it holds, unrounded
        assert actions[1].exhibit == want_actions[1].exhibit
        assert actions[1].position == pytest.approx(want_actions[1].position, abs=5e-4)
    assert len(actions) == len(want_actions)
    assert engine.snapshot(now) == want_snap
    after = Driver(site, engine)
    after.t = now
    after.stream.t = now
    after.stream.max_interval = dict(before.stream.max_interval)
    for a in actions:  # performed by the device as it starts
        if isinstance(a, Start):
            after.stream.playing = Play(a.exhibit, a.lang, now, committed=True,
                                        heard_before=a.exhibit in engine.heard)
            after.track_end = now + SECONDS[a.track] - a.offset
        else:
            after.stream.playing.paused = True
            after.remaining, after.track_end = after.track_end - now, math.inf
    after.run(steps[k:])


@PROPS
@given(steps=naive_visits, lang=st.sampled_from(["en", "fr", "de"]))
def test_the_naive_policy_gives_a_well_formed_stream(site, steps, lang):
    """Today's behaviour cuts tracks at will, but its stream has the same
    shape: one track at a time, an end naming the track playing, the track
    of the visitor's chain; and it never restarts the exhibit playing."""
    d = Driver(site, NaiveEngine(site, lang), naive=True)
    d.run(steps)
    for kind, _, acts in d.log:
        starts = [a.exhibit for a in acts if isinstance(a, Start)]
        ends = [a.exhibit for a in acts if isinstance(a, End) and a.reason == "interrupted"]
        assert not set(starts) & set(ends)


@PROPS
@given(steps=visits, lang=st.sampled_from(["en", "fr", "de"]),
       bad=st.sampled_from(["xx", "", "EN", "en ", "fr-FR"]))
def test_an_unknown_language_is_refused_and_changes_nothing(site, steps, lang, bad):
    with pytest.raises(ValueError, match="not offered"):
        Engine(site, bad)
    d = visit(site, steps, lang)
    before = d.engine.snapshot(d.t)
    with pytest.raises(ValueError, match="not offered"):
        d.engine.set_language(bad, d.t)
    assert d.engine.snapshot(d.t) == before


@PROPS
@given(steps=visits, lang=st.sampled_from(["en", "fr", "de"]), data=st.data())
def test_time_going_backwards_never_breaks_the_stream(site, steps, lang, data):
    """`now` must not go backwards (callers pass a monotonic clock; the scan
    reader refuses rows out of order). The engine does not check it; fed
    such time anyway it raises nothing and its stream keeps its shape."""
    d = Driver(site, Engine(site, lang), strict=False)
    k = data.draw(st.integers(0, len(steps)))
    d.run(steps[:k])
    d.t = max(0.0, d.t - data.draw(st.floats(0.1, 30)))
    d.stream.strict = False
    d.stream.max_interval = {b: math.inf for b in BEACON_AT}  # rule 4's window is in time
    d.run(steps[k:])


def test_restore_passes_over_what_the_zone_map_no_longer_has(site):
    snap = {"lang": "xx", "heard": ["a", "gone"], "walked_off": ["gone", "b"],
            "playing": {"exhibit": "gone", "lang": "en", "track": "en/gone.wav",
                        "position": 3.0, "paused": False}}
    engine, actions = Engine.restore(site, snap, 5.0)
    assert actions == []
    assert engine.snapshot(5.0) == {"lang": "en", "heard": ["a"], "walked_off": ["b"], "playing": None}


@pytest.mark.parametrize("control", ["skip", "failed"])
def test_replay_heard_waits_for_a_return_after_a_skip_or_a_failure(tmp_path, make_wav, control):
    """replay_heard starts an exhibit again "when the visitor comes back to
    it": not while they still stand there, after skipping it or after its
    track could not be played in any language of their chain."""
    site = write_site(tmp_path, make_wav, replay_heard=True)
    d = Driver(site, Engine(site, "fr"), events=False)  # French: no fallback, a failure leaves nothing to play
    d.run([Walk(0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 1), Press(control), Walk(0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 2)])
