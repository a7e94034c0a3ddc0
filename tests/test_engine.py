"""The trigger engine's rules, driven directly with fixed clocks (no I/O, no sleep).

A small gallery: three exhibits in a row, `a` and `b` 2.5 m apart, `c` 10 m
further. Scenario helpers feed steady signal levels at a packet rate; the
engine never sees a real clock.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from guide.actions import End, Pause, Resume, Start
from guide.engine import Engine
from guide.naive import NaiveEngine
from guide.settings import TriggerSettings
from guide.site import Beacon, Exhibit, IBeacon, Site

NEAR, FAR, GONE = -55, -80, None  # dBm at 1 m, across the room, not heard


def make_site(**trigger) -> Site:
    settings = TriggerSettings(**trigger)
    beacons = {
        f"b-{n}": Beacon(id=f"b-{n}", ident=IBeacon(uuid="f7826da6-4fa2-4e98-8024-bc5b71e0893e",
                                                  major=1, minor=i),
                         tx_power=-59, x=x, y=0.0)
        for i, (n, x) in enumerate((("a", 0.0), ("b", 2.5), ("c", 12.5)), start=1)}
    tracks = {"a": {"en": "en/a.ogg", "fr": "fr/a.ogg"},
              "b": {"en": "en/b.ogg", "fr": "fr/b.ogg"},
              "c": {"fr": "fr/c.ogg"}}  # c has no English track: falls back to French
    exhibits = tuple(
        Exhibit(id=n, title={"en": n.upper()}, beacon=f"b-{n}", radius=1.5, tracks=tracks[n],
                trigger=settings, x=beacons[f"b-{n}"].x, y=0.0)
        for n in ("a", "b", "c"))
    return Site(path=Path("zones.yaml"), name="test", languages=("en", "fr"),
                fallback={"en": ("fr",), "fr": ("en",)}, tracks_dir=Path("/tracks"),
                beacons=beacons, exhibits=exhibits, trigger=settings)


class Visit:
    """Drives one engine through time; records (t, action)."""

    def __init__(self, site: Site | None = None, lang: str = "en", rate: float = 10.0):
        self.site = site or make_site()
        self.engine = Engine(self.site, lang)
        self.rate = rate
        self.t = 0.0
        self.log: list[tuple[float, object]] = []

    def stay(self, seconds: float, levels: dict[str, int | None], *, fade_every: int = 0) -> list:
        """Hear each beacon at its level for `seconds`; every `fade_every`-th
        packet of each beacon is a deep fade 30 dB down."""
        out = []
        n = 0
        end = self.t + seconds
        step = 1.0 / self.rate
        while self.t < end - 1e-9:
            n += 1
            for i, (beacon, rssi) in enumerate(levels.items()):
                if rssi is None:
                    continue
                r = rssi - 30 if fade_every and n % fade_every == 0 else rssi
                for a in self.engine.observe(f"b-{beacon}", r, self.t + i * 1e-3):
                    out.append((self.t, a))
            self.t += step
        self.log.extend(out)
        return out

    def silence(self, seconds: float) -> list:
        """No packets at all: the engine is woken at its deadlines only."""
        out = []
        end = self.t + seconds
        while True:
            d = self.engine.next_deadline()
            if d is None or d > end:
                break
            self.t = max(self.t, d)
            out.extend((self.t, a) for a in self.engine.tick(self.t))
        self.t = end
        self.log.extend(out)
        return out

    def finish(self) -> list:
        out = [(self.t, a) for a in self.engine.finished(self.t)]
        self.log.extend(out)
        return out


def starts(actions) -> list[str]:
    return [a.exhibit for _, a in actions if isinstance(a, Start)]


def ends(actions) -> list[tuple[str, str]]:
    return [(a.exhibit, a.reason) for _, a in actions if isinstance(a, End)]


AT_A = {"a": NEAR, "b": -70, "c": FAR}
AT_B = {"a": -70, "b": NEAR, "c": FAR}
AT_C = {"a": FAR, "b": FAR, "c": NEAR}
BETWEEN = {"a": -63, "b": -64, "c": FAR}  # half-way between a and b: 1 dB apart


def test_a_visitor_who_settles_at_an_exhibit_hears_it_after_the_dwell():
    v = Visit()
    dwell = v.site.trigger.dwell
    acts = v.stay(dwell + 3, AT_A)
    assert starts(acts) == ["a"]
    t_start = acts[0][0]
    assert dwell <= t_start <= dwell + 2.0  # the dwell, plus the filter settling
    assert acts[0][1] == Start(exhibit="a", lang="en", track="en/a.ogg")


def test_a_visitor_who_stays_less_than_the_dwell_hears_nothing():
    v = Visit()
    assert v.stay(v.site.trigger.dwell - 1.5, AT_A) == []
    assert v.stay(10, AT_C)  # then settles elsewhere: only that one starts
    assert starts(v.log) == ["c"]


def test_two_exhibits_too_close_to_tell_apart_start_neither():
    v = Visit()
    assert v.stay(30, BETWEEN) == []
    assert v.engine.here is None


def test_once_settled_a_neighbour_coming_close_does_not_steal_the_visitor():
    v = Visit()
    v.stay(8, AT_A)
    assert v.engine.here == "a"
    # b creeps up to 2 dB under a: inside the hysteresis, the visitor is still at a
    v.stay(10, {"a": -60, "b": -62, "c": FAR})
    assert v.engine.here == "a"
    # b leads by more than the hysteresis: now the visitor is at b
    v.stay(5, {"a": -66, "b": -58, "c": FAR})
    assert v.engine.here == "b"


def test_a_visitor_who_walks_on_while_listening_hears_the_track_to_its_end():
    v = Visit()
    v.stay(v.site.trigger.glance + 10, AT_A)  # well past the glance window
    assert starts(v.log) == ["a"]
    v.stay(60, AT_C)  # walks on, settles at c
    assert ends(v.log) == []  # a is never cut
    assert starts(v.log) == ["a"]  # and c does not start over it
    acts = v.finish()  # a ends by itself: c, where the visitor stands, starts at once
    assert ends(acts) == [("a", "finished")]
    assert starts(acts) == ["c"]


def test_passing_other_exhibits_while_listening_starts_nothing():
    v = Visit()
    v.stay(20, AT_A)
    for where in (AT_B, BETWEEN, AT_C, AT_B):
        v.stay(6, where)
    assert starts(v.log) == ["a"] and ends(v.log) == []


def test_a_glance_fades_out_quickly_and_does_not_count_as_heard():
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    assert starts(v.log) == ["a"]
    t0 = next(t for t, a in v.log if isinstance(a, Start))
    acts = v.stay(8, AT_C)
    (t_end, end), = [(t, a) for t, a in acts if isinstance(a, End)]
    assert end.exhibit == "a" and end.reason == "abandoned" and end.fade > 0
    assert t_end - t0 < v.site.trigger.glance  # seconds, not minutes
    assert "a" not in v.engine.heard
    # coming back later, it was not heard: it plays
    v.stay(20, AT_A)
    assert starts(v.log).count("a") == 2


@pytest.mark.parametrize("rate", [1.0, 10.0])
def test_a_visitor_back_at_an_exhibit_they_had_walked_off_hears_it(rate):
    # the track is abandoned while the visitor is already between exhibits
    # (at none): coming straight back to it is a fresh arrival, not standing on
    v = Visit(rate=rate)
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    v.stay(12, {"a": -75, "b": -75, "c": FAR})
    assert ends(v.log) == [("a", "abandoned")] and v.engine.here is None
    v.stay(30, AT_A)
    assert starts(v.log) == ["a", "a"]


def test_a_wrong_start_is_replaced_by_the_exhibit_the_visitor_settles_at():
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_B)  # a brief stop at b starts it
    v.stay(15, AT_A)  # but the visitor settles at a
    assert ends(v.log) == [("b", "abandoned")]
    assert starts(v.log) == ["b", "a"]


def test_an_exhibit_already_heard_does_not_restart_when_the_visitor_returns():
    v = Visit()
    v.stay(20, AT_A)
    v.finish()
    v.stay(20, AT_C)
    v.finish()
    v.stay(30, AT_A)
    assert starts(v.log) == ["a", "c"]
    assert v.engine.heard == {"a", "c"}


def test_replay_heard_setting_restarts_an_exhibit_on_return():
    v = Visit(make_site(replay_heard=True))
    v.stay(20, AT_A)
    v.finish()
    v.stay(20, AT_C)
    v.finish()
    v.stay(20, AT_A)
    assert starts(v.log) == ["a", "c", "a"]


def test_the_track_plays_in_the_first_fallback_language_that_has_one():
    v = Visit()
    acts = v.stay(20, AT_C)
    (_, start), = acts
    assert start == Start(exhibit="c", lang="fr", track="fr/c.ogg", wanted="en")


def test_deep_fades_and_lost_packets_do_not_flip_decisions():
    v = Visit()
    v.stay(30, AT_A, fade_every=3)  # a third of the packets 30 dB down
    v.stay(30, AT_A, fade_every=2)
    assert starts(v.log) == ["a"] and ends(v.log) == []


@pytest.mark.parametrize("rate", [1.0, 2.0, 10.0])
def test_the_dwell_is_the_same_at_one_and_ten_packets_a_second(rate):
    v = Visit(rate=rate)
    acts = v.stay(15, AT_A)
    assert starts(acts) == ["a"]
    assert v.site.trigger.dwell <= acts[0][0] <= v.site.trigger.dwell + 2.5


def test_a_silent_beacon_is_forgotten_and_the_engine_stops_asking_for_ticks():
    v = Visit()
    v.stay(1, AT_A)  # heard for a moment, then nothing at all
    assert v.engine.next_deadline() is not None
    v.silence(v.site.trigger.forget + 5)
    assert v.engine.here is None
    assert v.engine.next_deadline() is None
    assert starts(v.log) == []


def test_walking_out_of_range_of_every_beacon_ends_a_glance():
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    acts = v.silence(10)
    assert ends(acts) == [("a", "abandoned")]


def test_pause_and_resume_keep_the_position():
    v = Visit()
    v.stay(20, AT_A)
    e = v.engine
    pos = e.position(v.t)
    (p,) = e.pause(v.t)
    assert isinstance(p, Pause) and p.position == pytest.approx(pos)
    v.stay(60, AT_C)  # paused: walking away neither ends it nor starts c
    assert e.position(v.t) == pytest.approx(pos)
    assert starts(v.log) == ["a"] and ends(v.log) == []
    (r,) = e.resume(v.t)
    assert r == Resume(exhibit="a", position=p.position)
    v.t += 5
    assert e.position(v.t) == pytest.approx(pos + 5)


def test_replay_restarts_the_current_track_from_the_top():
    v = Visit()
    v.stay(20, AT_A)
    acts = v.engine.replay(v.t)
    assert [type(a) for a in acts] == [End, Start]
    assert acts[0].reason == "replay" and acts[1].exhibit == "a" and acts[1].offset == 0.0
    assert v.engine.position(v.t) == 0.0


def test_skip_ends_the_track_and_counts_it_as_heard():
    v = Visit()
    v.stay(8, AT_A)
    (end,) = v.engine.skip(v.t)
    assert end.reason == "skipped" and v.engine.playing is None
    assert "a" in v.engine.heard
    v.stay(20, AT_A)
    assert starts(v.log) == ["a"]  # not started again


@pytest.mark.parametrize("stop", ["skip", "failed", "finished"])
def test_with_replay_heard_a_skipped_or_unplayable_exhibit_waits_for_a_return(stop):
    # replay_heard means on return: not at once, under the feet of a visitor who pressed skip
    v = Visit(make_site(replay_heard=True))
    v.stay(8, AT_A)
    for _ in range(2 if stop == "failed" else 1):  # failed: en, then its fr fallback
        v.log.extend((v.t, a) for a in getattr(v.engine, stop)(v.t))
    assert v.engine.playing is None and "a" in v.engine.heard
    v.stay(20, AT_A)
    assert starts(v.log) == (["a", "a"] if stop == "failed" else ["a"])  # the fallback, not a restart
    v.stay(20, AT_C)
    v.finish()
    v.stay(20, AT_A)
    assert starts(v.log)[-2:] == ["c", "a"]  # back again: it starts


def test_changing_language_restarts_the_exhibit_in_the_new_language():
    v = Visit()
    v.stay(20, AT_A)
    acts = v.engine.set_language("fr", v.t)
    assert ends([(0, a) for a in acts]) == [("a", "language")]
    assert acts[-1] == Start(exhibit="a", lang="fr", track="fr/a.ogg")
    assert v.engine.lang == "fr"


def test_an_unplayable_track_falls_back_to_the_next_language():
    v = Visit()
    v.stay(20, AT_A)
    acts = v.engine.failed(v.t, "en/a.ogg: cannot decode")
    assert acts == [End(exhibit="a", reason="error", track="en/a.ogg", error="en/a.ogg: cannot decode"),
                    Start(exhibit="a", lang="fr", track="fr/a.ogg", wanted="en")]
    acts = v.engine.failed(v.t, "fr/a.ogg: cannot decode")
    assert acts[0] == End(exhibit="a", reason="error", track="fr/a.ogg", error="fr/a.ogg: cannot decode")
    assert v.engine.playing is None
    assert "a" in v.engine.heard  # nothing left to try: the visit moves on


def test_a_saved_visit_resumes_a_little_before_where_it_stopped():
    v = Visit()
    v.stay(20, AT_A)
    snap = v.engine.snapshot(v.t)
    pos = snap["playing"]["position"]
    engine, acts = Engine.restore(v.site, snap, now=1000.0)
    rewind = v.site.trigger.resume_rewind
    assert acts == [Start(exhibit="a", lang="en", track="en/a.ogg", offset=round(pos - rewind, 3))]
    assert engine.playing == "a" and engine.lang == "en"
    assert engine.position(1002.0) == pytest.approx(pos - rewind + 2.0, abs=1e-3)


def test_a_paused_visit_resumes_paused_where_its_start_says():
    v = Visit()
    v.stay(20, AT_A)
    v.engine.pause(v.t)
    snap = v.engine.snapshot(v.t)
    snap["playing"]["position"] = 17.123456  # as a state file written by another version may hold
    engine, acts = Engine.restore(v.site, snap, now=0.0)
    offset = round(17.123456 - v.site.trigger.resume_rewind, 3)
    assert acts == [Start(exhibit="a", lang="en", track="en/a.ogg", offset=offset),
                    Pause(exhibit="a", position=offset)]
    assert engine.resume(5.0) == [Resume(exhibit="a", position=offset)]


def test_a_snapshot_after_a_finished_track_remembers_it_as_heard():
    v = Visit()
    v.stay(20, AT_A)
    v.finish()
    engine, acts = Engine.restore(v.site, v.engine.snapshot(v.t), now=0.0)
    assert acts == [] and engine.heard == {"a"}


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="not offered"):
        Engine(make_site(), "xx")


def test_observations_of_beacons_not_in_the_map_are_ignored():
    v = Visit()
    assert v.engine.observe("somebody-elses-beacon", -40, 0.0) == []


def started_at(v: Visit) -> float:
    return next(t for t, a in v.log if isinstance(a, Start))


def test_a_visitor_walking_off_as_the_glance_window_closes_gets_a_fade_not_the_whole_track():
    site = make_site(glance=8.0, commit_grace=6.0)
    v = Visit(site)
    v.stay(site.trigger.dwell + 1.0, AT_A)
    # off to b 2.5 s before the window closes: the filter and the leave
    # confirmation take longer than that, so leaving is only certain after it
    v.stay(started_at(v) + 8.0 - 2.5 - v.t, AT_A)
    v.stay(10.0, AT_B)
    assert ends(v.log) == [("a", "abandoned")]
    assert "a" not in v.engine.heard


def test_a_visitor_back_at_the_exhibit_within_the_grace_is_listening():
    site = make_site(glance=8.0, commit_grace=6.0)
    v = Visit(site)
    v.stay(site.trigger.dwell + 1.0, AT_A)
    v.stay(started_at(v) + 8.0 - 2.5 - v.t, AT_A)
    v.stay(3.0, AT_B)  # a step towards b as the window closes...
    v.stay(4.0, AT_A)  # ...and back: they are listening
    assert "a" in v.engine.heard
    v.stay(20.0, AT_C)  # now walking on does not cut it
    assert ends(v.log) == []


def test_a_visitor_who_waited_at_the_next_exhibit_is_not_glancing_when_it_starts():
    v = Visit()
    v.stay(v.site.trigger.glance + 10, AT_A)
    v.stay(30, AT_C)  # walks on while a plays, and waits at c
    acts = v.finish()  # a ends: c starts at once
    assert starts(acts) == ["c"]
    v.stay(4, AT_C)
    v.stay(20, AT_B)  # and wanders off soon after: they waited, so they are listening
    assert ends(v.log) == [("a", "finished")]
    assert "c" in v.engine.heard


def test_a_visitor_walking_off_as_the_next_exhibit_starts_did_not_wait_for_it():
    v = Visit()
    v.stay(v.site.trigger.glance + 10, AT_A)
    v.stay(30, AT_C)  # lingers at c while a plays...
    drifting = {"a": FAR, "b": FAR, "c": -72}  # ...and is drifting off as it ends:
    v.stay(3, drifting)  # below c's arrival level, still inside its hysteresis
    assert v.engine.here == "c"
    assert starts(v.finish()) == ["c"]
    v.stay(5, drifting)  # the time spent near c does not make this a listen...
    assert "c" not in v.engine.heard
    v.stay(10, AT_B)  # ...so walking on fades it out
    assert ends(v.log) == [("a", "finished"), ("c", "abandoned")]
    assert "c" not in v.engine.heard


def test_a_visitor_already_walking_off_when_the_grace_runs_out_gets_a_fade():
    # at 1 Hz, leaving takes 3 packets to confirm: the grace running out
    # meanwhile must not turn a walk-off into a listen
    site = make_site(glance=8.0, commit_grace=6.0)
    v = Visit(site, rate=1.0)
    v.stay(site.trigger.dwell + 2.0, AT_A)
    t0 = started_at(v)
    v.stay(t0 + 6.0 - v.t, AT_A)
    v.stay(3.0, AT_B)  # a step towards b: no longer at a...
    v.stay(t0 + 8.0 + 6.0 - 1.0 - v.t, BETWEEN)  # ...hovering between a and b, not leaving
    assert v.engine.here is None and "a" not in v.engine.heard
    v.stay(10.0, AT_C)  # walks off just before the grace runs out
    assert ends(v.log) == [("a", "abandoned")]
    assert "a" not in v.engine.heard


NOWHERE = {"a": FAR, "b": -82, "c": -84}  # in the room, at no exhibit's level


def test_an_exhibit_walked_away_from_needs_the_longer_dwell_to_start_again():
    v = Visit()
    t = v.site.trigger
    assert t.dwell_again > t.dwell
    v.stay(t.dwell + 1.5, AT_A)
    v.stay(8, NOWHERE)  # a glance: faded out, not heard
    assert ends(v.log) == [("a", "abandoned")]
    # passing by again for longer than the dwell but less than dwell_again
    assert v.stay(t.dwell + 1.5, AT_A) == []
    v.stay(8, NOWHERE)
    back = v.t
    acts = v.stay(t.dwell_again + 3, AT_A)  # this time the visitor stays
    assert starts(acts) == ["a"]
    assert t.dwell_again <= acts[0][0] - back <= t.dwell_again + 2.0
    # an exhibit never walked away from still takes the plain dwell
    v.stay(t.glance + 10, AT_A)
    v.finish()
    v.stay(8, NOWHERE)
    back = v.t
    acts = v.stay(t.dwell + 3, AT_B)
    assert starts(acts) == ["b"] and acts[0][0] - back <= t.dwell + 2.0


def test_a_reboot_remembers_the_exhibits_walked_away_from():
    v = Visit()
    t = v.site.trigger
    v.stay(t.dwell + 1.5, AT_A)
    v.stay(8, NOWHERE)
    assert ends(v.log) == [("a", "abandoned")]
    snap = v.engine.snapshot(v.t)
    assert snap["walked_off"] == ["a"]
    # a state saved before walked_off existed restores with the plain dwell
    older = {k: x for k, x in snap.items() if k != "walked_off"}
    for saved, dwell in ((snap, t.dwell_again), (older, t.dwell)):
        again = Visit()
        again.engine, acts = Engine.restore(again.site, saved, now=0.0)
        assert acts == []
        acts = again.stay(t.dwell_again + 3, AT_A)
        assert starts(acts) == ["a"]
        assert dwell <= acts[0][0] <= dwell + 2.0


def test_dwell_again_is_never_shorter_than_the_dwell():
    v = Visit(make_site(dwell=10.0, dwell_again=4.0))
    v.stay(11.5, AT_A)
    v.stay(8, NOWHERE)
    assert ends(v.log) == [("a", "abandoned")]
    assert v.stay(9, AT_A) == []


def test_a_weak_phone_under_the_level_while_its_exhibit_still_leads_keeps_the_track():
    # a's level is -70.5 dBm (tx -59 at 1.5 m, less 8 dB slack); held low, the
    # phone reads -76: 5.5 dB under it, with a still 14 dB ahead of b
    v = Visit()
    t = v.site.trigger
    v.stay(t.dwell + 1.5, AT_A)
    v.stay(t.glance + t.commit_grace + 2, {"a": -76, "b": -90, "c": GONE})
    assert ends(v.log) == [] and "a" in v.engine.heard


@pytest.mark.parametrize("levels", [
    {"a": -76, "b": -78, "c": GONE},  # as low, with b close behind: walking towards b
    {"a": -80, "b": -92, "c": GONE},  # much lower: walking off into an empty room
])
def test_under_the_level_without_a_clear_lead_or_far_under_it_is_leaving(levels):
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    v.stay(10, levels)
    assert ends(v.log) == [("a", "abandoned")] and "a" not in v.engine.heard


def test_one_deep_fade_is_clipped_and_a_second_in_a_row_counts_in_full():
    # rule 1, read through levels() at each evaluation (the filter's weight for
    # a packet dt seconds after the last is 1 - exp(-dt / smoothing)); a fade
    # counts at most FADE_CLIP = 10 dB below the running level
    e = Engine(make_site(), "en")
    w = 1 - math.exp(-1.0 / e.site.trigger.smoothing)  # packets 1 s apart
    e.observe("b-a", -55, 0.0)
    assert e.levels() == {"a": -55.0}
    e.observe("b-a", -95, 1.0)  # 40 dB down: counts as 10 dB down
    level = -55 - 10 * w
    assert e.levels()["a"] == pytest.approx(level)
    e.observe("b-a", -95, 2.0)  # again: the visitor is walking away
    level += (-95 - level) * w
    assert e.levels()["a"] == pytest.approx(level)
    e.observe("b-a", -55, 3.0)  # back up; the next deep fade is clipped again
    level += (-55 - level) * w
    e.observe("b-a", -95, 4.0)
    level -= 10 * w
    assert e.levels()["a"] == pytest.approx(level)
    e.observe("b-a", -40, 4.0)  # a packet at the same instant weighs nothing
    e.tick(4.5)
    assert e.levels()["a"] == pytest.approx(level)


def test_a_silent_beacon_decays_after_the_grace_and_is_forgotten_after_forget_until_heard_again():
    # SILENT_GRACE = 2.5 s, then SILENT_DECAY = 6 dB a second
    e = Engine(make_site(), "en")
    forget = e.site.trigger.forget
    e.observe("b-a", -55, 0.0)
    e.tick(2.5)
    assert e.levels() == {"a": -55.0}
    e.tick(4.0)
    assert e.levels() == {"a": pytest.approx(-55 - 1.5 * 6)}
    e.tick(forget)
    assert e.levels() == {"a": pytest.approx(-55 - (forget - 2.5) * 6)}
    e.tick(forget + 0.25)
    assert e.levels() == {}
    e.observe("b-a", -60, forget + 1)  # heard again: a fresh start, not the old level filtered
    assert e.levels() == {"a": -60.0}


def test_exhibits_are_compared_on_path_loss_not_on_raw_rssi():
    # b's beacon is 10 dB louder: read 2 dB louder than a, it is 8 dB further away
    site = make_site()
    louder = dataclasses.replace(site.beacons["b-b"], tx_power=-49)
    v = Visit(dataclasses.replace(site, beacons={**site.beacons, "b-b": louder}))
    v.stay(10, {"a": -60, "b": -58, "c": FAR})
    assert v.engine.here == "a" and starts(v.log) == ["a"]


def test_arriving_takes_at_least_the_level_and_a_lead_of_at_least_the_margin():
    # rule 2's limits, on a fresh engine (a first packet sets the level as read)
    e = Engine(make_site(level=-70), "en")
    e.observe("b-a", -70, 0.0)
    assert e.here == "a"
    e = Engine(make_site(level=-70), "en")
    e.observe("b-b", -75, 0.0)
    e.observe("b-a", -70, 0.001)
    e.tick(0.25)
    assert e.here == "a"  # 5 dB ahead: the margin
    e = Engine(make_site(level=-70), "en")
    e.observe("b-b", -74, 0.0)
    e.observe("b-a", -70, 0.001)
    e.tick(0.25)
    assert e.here is None


def test_once_settled_the_visitor_stays_until_the_level_falls_hysteresis_below_it():
    # a's level is -70.5 dBm (tx -59 at 1.5 m, less 8 dB slack), its hysteresis 3 dB
    v = Visit()
    v.stay(8, AT_A)
    v.stay(15, {"a": -72, "b": -90, "c": GONE})  # 1.5 dB under its level: still there
    assert v.engine.here == "a"
    v.stay(15, {"a": -75, "b": -90, "c": GONE})  # 4.5 dB under it: gone
    assert v.engine.here is None


@pytest.mark.parametrize("blips, keeps", [(1, True), (2, False)])
def test_at_one_packet_a_second_a_drop_out_of_one_packet_keeps_the_dwell(blips, keeps):
    # rule 3: a candidate that drops out for at most 1.5 packet intervals keeps
    # its dwell; b's beacon reading 30 dB up for `blips` packets takes a's lead
    # under the margin for as many evaluations
    v = Visit(rate=1.0)
    dwell = v.site.trigger.dwell
    v.stay(30, NOWHERE)  # the engine learns the packet rate
    arrived = v.t
    v.stay(1, {"a": -55, "b": -70, "c": FAR})
    assert v.engine.here == "a"
    v.stay(blips, {"a": -55, "b": -40, "c": FAR})
    v.stay(12, {"a": -55, "b": -70, "c": FAR})
    (t,) = [t for t, a in v.log if isinstance(a, Start)]
    if keeps:
        assert arrived + dwell <= t <= arrived + dwell + 1.0
    else:  # the dwell starts again when a leads again
        assert t >= arrived + 1 + blips + dwell


@pytest.mark.parametrize("level, left", [(-73, False), (-74, True)])
def test_without_a_clear_lead_leaving_is_falling_hysteresis_below_the_level(level, left):
    # rule 5: a's level is -70.5 dBm, its hysteresis 3 dB: -73.5 is the limit
    # while a leads b by less than the margin (here 2 dB); a long glance window
    # leaves the levels time to settle
    v = Visit(make_site(glance=30.0))
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    v.stay(30, {"a": level, "b": -75, "c": FAR})
    assert starts(v.log) == ["a"]
    assert ends(v.log) == ([("a", "abandoned")] if left else [])
    assert ("a" in v.engine.heard) is not left


@pytest.mark.parametrize("c, left", [(-58, False), (-56, True)])
def test_another_exhibit_leading_by_the_hysteresis_is_leaving_even_above_the_level(c, left):
    # rule 5: a stays well above its level (-70.5 dBm); c, the last beacon
    # heard, comes 2 or 4 dB ahead of it (hysteresis 3 dB), b far behind
    v = Visit(make_site(glance=30.0))
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    v.stay(30, {"a": -60, "b": -80, "c": c})
    assert ends(v.log) == ([("a", "abandoned")] if left else [])
    assert ("a" in v.engine.heard) is not left


# ----- the naive policy (guide.naive), the baseline scored beside the engine -----

def test_the_naive_policy_starts_the_strongest_beacon_within_its_radius_at_once():
    # a's radius is 1.5 m: its edge reads -59 - 20 log10(1.5) = -62.5 dBm
    n = NaiveEngine(make_site(), "en")
    assert n.observe("b-b", -64, 0.0) == []  # b heard, outside its radius
    assert n.observe("b-a", -63, 0.1) == []  # a just outside its own
    # inside it, and stronger than b
    assert n.observe("b-a", -62, 0.25) == [Start(exhibit="a", lang="en", track="en/a.ogg")]
    assert n.tick(0.3) == [] and n.next_deadline() is None  # no timers at all
    assert n.observe("b-a", -50, 0.5) == []  # playing: not started again
    # b within its radius, but a was heard stronger within the last second (WINDOW)
    assert n.observe("b-b", -55, 1.5) == []
    assert n.observe("b-b", -55, 1.75) == [End(exhibit="a", reason="interrupted"),
                                           Start(exhibit="b", lang="en", track="en/b.ogg")]
    assert n.finished(2.0) == [End(exhibit="b", reason="finished")]
    assert n.finished(2.1) == []
    assert n.observe("b-b", -55, 2.25) == []  # the last one it played, the visitor still there
    assert n.observe("b-a", -50, 2.5) == [Start(exhibit="a", lang="en", track="en/a.ogg")]


def test_the_naive_policy_starts_a_visitor_at_the_very_edge_of_the_radius():
    site = make_site()
    at_one_metre = tuple(dataclasses.replace(ex, radius=1.0) for ex in site.exhibits)
    n = NaiveEngine(dataclasses.replace(site, exhibits=at_one_metre), "en")  # edges at tx_power, -59 dBm
    assert n.observe("b-a", -59, 0.0) == [Start(exhibit="a", lang="en", track="en/a.ogg")]


# ----- rule 8, the controls, and rule 7's fallbacks, in every state -----

def three_languages(**trigger) -> Site:
    """The gallery in en, fr and de: a has all three, b en and de, c fr only;
    German falls back to French, then English."""
    site = make_site(**trigger)
    tracks = {"a": {"en": "en/a.ogg", "fr": "fr/a.ogg", "de": "de/a.ogg"},
              "b": {"en": "en/b.ogg", "de": "de/b.ogg"},
              "c": {"fr": "fr/c.ogg"}}
    exhibits = tuple(dataclasses.replace(ex, tracks=tracks[ex.id]) for ex in site.exhibits)
    return dataclasses.replace(site, languages=("en", "fr", "de"), exhibits=exhibits,
                               fallback={"en": ("fr",), "fr": ("en",), "de": ("fr", "en")})


def test_controls_with_nothing_playing_do_nothing():
    v = Visit()
    v.stay(2, NOWHERE)
    e = v.engine
    assert e.pause(v.t) == [] and e.resume(v.t) == [] and e.skip(v.t) == []
    assert e.failed(v.t, "no track") == [] and e.finished(v.t) == []
    assert e.replay(v.t) == []  # nowhere: nothing to replay
    assert e.set_language("fr", v.t) == [] and e.lang == "fr"  # the next track is French
    assert e.playing is None and e.heard == frozenset() and e.position(v.t) is None
    assert starts(v.stay(20, AT_A)) == ["a"] and v.log[-1][1].lang == "fr"


def test_pausing_twice_or_resuming_a_track_that_plays_does_nothing():
    v = Visit()
    v.stay(20, AT_A)
    e = v.engine
    assert e.resume(v.t) == []  # it plays: nothing to resume
    (p,) = e.pause(v.t)
    v.t += 7
    assert e.pause(v.t) == []  # paused already: the position stays
    assert e.position(v.t) == p.position
    (r,) = e.resume(v.t)
    assert r.position == p.position and e.resume(v.t + 1) == []


def test_a_track_paused_in_its_glance_window_is_listened_to():
    # pausing is listening: walking off after resuming does not fade it out
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    assert v.engine.playing == "a"
    v.engine.pause(v.t)
    v.engine.resume(v.t)
    v.stay(20, AT_C)
    assert ends(v.log) == [] and v.engine.playing == "a"


def test_replay_with_nothing_playing_starts_the_exhibit_where_the_visitor_stands_for_good():
    v = Visit()
    v.stay(20, AT_A)
    v.finish()
    assert v.stay(10, AT_A) == []  # heard: not again by itself
    acts = v.engine.replay(v.t)
    assert acts == [Start(exhibit="a", lang="en", track="en/a.ogg")]
    assert v.engine.position(v.t + 1) == 1.0
    v.stay(1, AT_A)
    v.stay(20, AT_C)  # a replay is asked for: walking off does not fade it out
    assert ends(v.log) == [("a", "finished")] and v.engine.playing == "a"


def test_replay_of_a_paused_track_plays_it_from_the_top():
    v = Visit()
    v.stay(20, AT_A)
    v.engine.pause(v.t)
    v.stay(20, AT_C)  # paused, then the visitor stands at c
    acts = v.engine.replay(v.t)
    assert [(type(a), a.exhibit) for a in acts] == [(End, "a"), (Start, "a")]
    assert v.engine.position(v.t + 2) == 2.0  # playing, not paused


def test_changing_to_a_language_whose_chain_gives_the_same_track_keeps_it_playing():
    # c has only French: an English visitor hears it in French, and choosing
    # French does not restart it
    v = Visit()
    v.stay(20, AT_C)
    assert v.log[-1][1] == Start(exhibit="c", lang="fr", track="fr/c.ogg", wanted="en")
    pos = v.engine.position(v.t)
    assert v.engine.set_language("fr", v.t) == []
    assert v.engine.lang == "fr" and v.engine.playing == "c"
    assert v.engine.position(v.t) == pos


def test_an_unknown_language_is_refused_and_the_visitor_keeps_theirs():
    v = Visit()
    v.stay(20, AT_A)
    with pytest.raises(ValueError, match="not offered"):
        v.engine.set_language("xx", v.t)
    assert v.engine.lang == "en" and v.engine.playing == "a"


def test_an_unplayable_track_falls_back_along_the_chain_to_a_language_that_has_one():
    # German falls back to French, then English; b has no French track
    v = Visit(three_languages(), lang="de")
    v.stay(v.site.trigger.dwell + 1.5, AT_B)
    assert v.engine.playing == "b"
    acts = v.engine.failed(v.t, "de/b.ogg: cannot decode")
    assert acts == [End(exhibit="b", reason="error", track="de/b.ogg", error="de/b.ogg: cannot decode"),
                    Start(exhibit="b", lang="en", track="en/b.ogg", wanted="de")]
    assert v.engine.position(v.t + 1) == 1.0  # from its start
    assert v.engine.playing == "b" and "b" not in v.engine.heard  # in its glance window: not heard yet
    acts = v.engine.failed(v.t + 1, "en/b.ogg: cannot decode")
    assert [type(a) for a in acts] == [End] and "b" in v.engine.heard


def test_a_track_that_fails_in_a_language_outside_the_visitors_chain_is_skipped():
    # c plays in French for an English visitor; they choose German (then
    # English): c has neither, so its French track plays on; if it then fails,
    # there is no later language of the visitor's to try
    site = three_languages()
    v = Visit(dataclasses.replace(site, fallback={**site.fallback, "de": ("en",)}))
    v.stay(20, AT_C)
    assert v.engine.set_language("de", v.t) == []  # no German nor English track: it plays on
    acts = v.engine.failed(v.t, "fr/c.ogg: cannot decode")
    assert [type(a) for a in acts] == [End] and "c" in v.engine.heard


def test_an_exhibit_with_no_track_in_any_language_is_skipped_silently_and_counts_as_heard():
    site = make_site()
    mute = dataclasses.replace(site.exhibits[0], tracks={})
    v = Visit(dataclasses.replace(site, exhibits=(mute, *site.exhibits[1:])))
    assert v.stay(20, AT_A) == []
    assert v.engine.heard == {"a"} and v.engine.playing is None
    assert v.engine.replay(v.t) == []  # nothing to replay either
    assert starts(v.stay(20, AT_B)) == ["b"]


# ----- persistence: what a snapshot holds and how a restore reads it -----

def test_a_snapshot_holds_the_position_to_the_millisecond_and_zero_at_the_start():
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    t0 = started_at(v)
    assert v.engine.snapshot(t0)["playing"]["position"] == 0.0
    assert v.engine.snapshot(t0 + 7.123456)["playing"] == {
        "exhibit": "a", "lang": "en", "track": "en/a.ogg", "position": 7.123, "paused": False}


@pytest.mark.parametrize("lang", ["xx", None])
def test_a_saved_language_the_site_no_longer_offers_restores_in_its_first_language(lang):
    snap = {"lang": lang, "heard": ["b"], "playing": None}
    engine, acts = Engine.restore(make_site(), snap, now=0.0)
    assert engine.lang == "en" and engine.heard == {"b"} and acts == []
    engine, _ = Engine.restore(make_site(), {**snap, "lang": "fr"}, now=0.0)
    assert engine.lang == "fr"


def test_a_saved_track_of_an_exhibit_no_longer_in_the_map_is_not_resumed():
    snap = {"lang": "en", "heard": ["a", "gone"],
            "playing": {"exhibit": "gone", "lang": "en", "track": "en/gone.ogg", "position": 30.0}}
    engine, acts = Engine.restore(make_site(), snap, now=0.0)
    assert acts == [] and engine.playing is None and engine.heard == {"a"}


def test_a_saved_track_of_an_exhibit_now_without_one_is_not_resumed():
    site = make_site()
    mute = dataclasses.replace(site.exhibits[0], tracks={})
    site = dataclasses.replace(site, exhibits=(mute, *site.exhibits[1:]))
    snap = {"lang": "en", "heard": [],
            "playing": {"exhibit": "a", "lang": "en", "track": "en/a.ogg", "position": 30.0}}
    engine, acts = Engine.restore(site, snap, now=0.0)
    assert acts == [] and engine.playing is None


@pytest.mark.parametrize("rewind, playing, offset", [
    (3.0, {"exhibit": "a", "lang": "en", "track": "en/a.ogg", "position": 30.0}, 27.0),
    (3.0, {"exhibit": "a", "lang": "en", "track": "en/a.ogg", "position": 1.5}, 0.0),  # not before its start
    (0.0, {"exhibit": "a", "lang": "en", "track": "en/a.ogg"}, 0.0),  # no position saved: from the start
    (0.0, {"exhibit": "a", "lang": "en", "track": "en/old-a.ogg", "position": 30.0}, 0.0),  # the map changed
])
def test_a_restored_track_resumes_rewound_but_never_before_its_start_nor_into_another_track(
        rewind, playing, offset):
    site = make_site(resume_rewind=rewind)
    engine, acts = Engine.restore(site, {"lang": "en", "heard": [], "playing": playing}, now=100.0)
    assert acts == [Start(exhibit="a", lang="en", track="en/a.ogg", offset=offset)]
    assert engine.position(101.0) == offset + 1.0


def test_a_restored_track_in_a_fallback_language_says_which_was_wanted():
    snap = {"lang": "en", "heard": [],
            "playing": {"exhibit": "c", "lang": "fr", "track": "fr/c.ogg", "position": 10.0}}
    engine, acts = Engine.restore(make_site(), snap, now=0.0)
    assert acts == [Start(exhibit="c", lang="fr", track="fr/c.ogg", offset=7.0, wanted="en")]


# ----- rules 3 and 5 at one packet a second: intervals of the beacon's own rate -----

def away_after_start(v: Visit) -> tuple[float, float]:
    """Settle at a, then b reads 50 dB up: at one packet a second, b's first
    packet (heard before a's) takes a's lead past -hysteresis. (that packet's
    time, the abandonment's time)"""
    v.stay(v.site.trigger.dwell + 2, {"a": -55, "b": -70, "c": FAR})
    assert starts(v.log) == ["a"] and v.t - started_at(v) <= 2  # well inside its glance window
    away = v.t
    v.stay(8, {"b": -20, "a": -55, "c": FAR})
    (t,) = [t for t, a in v.log if isinstance(a, End)]
    assert ends(v.log) == [("a", "abandoned")]
    return away, t


@pytest.mark.parametrize("gap", [0, 15])
def test_at_one_packet_a_second_leaving_takes_three_packets_not_the_two_seconds_of_leave(gap):
    # rule 5: `leave` (2 s), or LEAVE_PACKETS = 3 packet intervals when that is
    # longer; a gap in reception (shorter than forget) is no slower packet rate
    v = Visit(make_site(forget=30.0), rate=1.0)
    v.stay(30, NOWHERE)  # the engine learns the packet rate
    v.t += gap
    v.stay(10, NOWHERE)
    away, t = away_after_start(v)
    assert t - away == 3.0


def test_a_track_restarted_in_a_fallback_language_is_no_more_committed_than_the_failed_one():
    """A track that fails (cannot be decoded) is started again in the next
    language of the chain: the visitor arrived when they did, and walking off
    5 s in is a glance, faded as it would have been without the failure (the
    restarted track forgot the arrival and took the whole wait_credit as if
    the visitor had waited there: it played to its end)."""
    for fail in (False, True):
        v = Visit(three_languages(), lang="de")
        v.stay(30, NOWHERE)
        v.stay(v.site.trigger.dwell + 1.5, AT_B)
        if fail:
            v.log.extend((v.t, a) for a in v.engine.failed(v.t, "de/b.ogg: cannot decode"))
        v.stay(5, AT_B)
        v.stay(15, AT_C)
        assert ends(v.log) == [("b", "error")] * fail + [("b", "abandoned")]
        assert "b" not in v.engine.heard


def test_at_one_packet_a_second_a_drop_out_of_two_packet_intervals_restarts_the_dwell():
    # rule 3: at most DIP_PACKETS = 1.5 intervals keep the dwell; here b (heard
    # first in each second) reads 25, then 15 dB up: a's lead is under the
    # margin at two evaluations, 2 s
    v = Visit(rate=1.0)
    dwell = v.site.trigger.dwell
    v.stay(30, NOWHERE)
    there = {"b": -70, "a": -55, "c": FAR}
    v.stay(3, there)
    assert v.engine.here == "a"
    arrived = v.t - 1
    v.stay(1, {"b": -45, "a": -55, "c": FAR})
    v.stay(1, {"b": -55, "a": -55, "c": FAR})
    assert v.engine.here is None
    back = v.t
    v.stay(1, there)
    assert v.engine.here == "a"
    v.stay(12, there)
    (t,) = [t for t, a in v.log if isinstance(a, Start)]
    assert t >= back + dwell > arrived + dwell + 2


def test_the_engine_evaluates_every_quarter_second_not_at_every_packet():
    # STEP = 0.25 s: packets between two evaluations only feed the filter
    e = Engine(make_site(level=-70), "en")
    e.observe("b-a", -60, 0.0)
    assert e.here == "a" and e.next_deadline() == 0.25
    e.observe("b-b", -40, 0.1)
    e.observe("b-b", -40, 0.2)
    assert e.here == "a" and e.next_deadline() == 0.25  # b leads, not yet evaluated
    e.observe("b-b", -40, 0.25)
    assert e.here == "b" and e.next_deadline() == 0.5


# ----- more of rules 1 to 6, each where a single comparison decides -----

def test_an_exhibit_level_set_in_the_map_replaces_the_one_from_its_radius():
    # a's level from its radius is -70.5 dBm; set to -60, -65 is not there
    # (a fresh engine's first packet sets the level as read)
    e = Engine(make_site(level=-60), "en")
    e.observe("b-a", -65, 0.0)
    assert e.here is None
    e = Engine(make_site(level=-60), "en")
    e.observe("b-a", -60, 0.0)
    assert e.here == "a"


def test_a_packet_exactly_fade_clip_below_is_no_fade_and_a_packet_from_the_past_weighs_nothing():
    # rule 1: a packet counts at most FADE_CLIP = 10 dB below the level; one
    # that far down is not a fade, so the deep one after it is the first
    e = Engine(make_site(), "en")
    w = 1 - math.exp(-1.0 / e.site.trigger.smoothing)
    e.observe("b-a", -55, 0.0)
    e.observe("b-a", -65, 1.0)
    level = -55 - 10 * w
    assert e.levels()["a"] == pytest.approx(level)
    e.observe("b-a", -95, 2.0)  # clipped
    level -= 10 * w
    assert e.levels()["a"] == pytest.approx(level)
    e.observe("b-a", -40, 1.5)  # stamped before the last packet: no weight, either way
    e.tick(2.5)
    assert e.levels()["a"] == pytest.approx(level)


def test_a_short_track_that_plays_to_its_end_in_its_glance_window_is_heard():
    # rule 6: played to its end; and the exhibit where the visitor has settled meanwhile starts at once
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    assert v.engine.playing == "a"
    v.stay(3, AT_A)
    acts = v.finish()
    assert ends(acts) == [("a", "finished")] and v.engine.heard == {"a"}
    v.stay(20, AT_A)
    assert starts(v.log) == ["a"]


def test_a_track_with_no_language_left_gives_way_at_once_to_the_exhibit_the_visitor_settled_at():
    site = make_site()
    v = Visit(dataclasses.replace(site, fallback={"en": (), "fr": ()}))
    v.stay(v.site.trigger.glance + 5, AT_A)
    v.stay(10, AT_B)  # listening to a, settled at b
    acts = v.engine.failed(v.t, "en/a.ogg: cannot decode")
    assert acts[0].reason == "error" and acts[1:] == [Start(exhibit="b", lang="en", track="en/b.ogg")]


def test_with_replay_heard_an_exhibit_starts_again_once_the_visitor_has_left_it_and_come_back():
    v = Visit(make_site(replay_heard=True))
    v.stay(20, AT_A)
    v.engine.skip(v.t)
    v.stay(10, AT_A)
    v.stay(8, NOWHERE)
    assert starts(v.log) == ["a"]
    v.stay(10, AT_A)
    assert starts(v.log) == ["a", "a"]


def test_a_visitor_whose_beacons_all_fall_silent_and_are_forgotten_has_left_a_glance():
    v = Visit(make_site(forget=1.0))
    v.stay(v.site.trigger.dwell + 1.5, AT_A)
    assert v.engine.playing == "a"
    v.silence(5)  # forgotten after 1 s: no level at all is leaving
    assert ends(v.log) == [("a", "abandoned")] and v.engine.levels() == {}


def test_a_visitor_back_before_leave_is_confirmed_starts_leaving_afresh_next_time():
    # rule 5: away for `leave` seconds without a break; 1.5 s away, back, then
    # away again: the second leaving takes its own 2 s
    v = Visit()
    v.stay(v.site.trigger.dwell + 1.0, AT_A)
    assert v.engine.playing == "a"
    away = {"b": -20, "a": -55, "c": FAR}
    v.stay(1.5, away)
    v.stay(3, AT_A)
    assert ends(v.log) == []
    again = v.t
    v.stay(5, away)
    (t,) = [t for t, a in v.log if isinstance(a, End)]
    assert t - again >= v.site.trigger.leave


def test_with_no_hysteresis_a_settled_visitor_stays_while_the_exhibit_leads_at_all():
    v = Visit(make_site(hysteresis=0.0))
    v.stay(8, AT_A)
    assert v.engine.here == "a"
    v.stay(10, {"a": -60, "b": -62, "c": FAR})  # a leads by 2 dB, under the margin
    assert v.engine.here == "a"


def test_a_candidate_left_for_another_exhibit_starts_its_dwell_again_on_return_however_soon():
    # rule 3: only a drop-out of at most DIP_PACKETS intervals keeps the dwell,
    # not a visit to another exhibit in between. a's beacon is heard every 2 s
    # (a 3 s drop-out window), b's every second, half a second after it; the
    # engine is woken at its deadlines between packets
    e = Engine(make_site(), "en")
    trace, started = [], []

    def second(a: int | None, b: int | None, t: float) -> None:
        for step in range(4):
            now = t + step * 0.25
            acts = []
            if step == 0 and a is not None and int(t) % 2 == 0:
                acts += e.observe("b-a", a, now)
            if step == 2 and b is not None:
                acts += e.observe("b-b", b, now)
            acts += e.tick(now)
            trace.append((now, e.here))
            started.extend(now for x in acts if isinstance(x, Start))

    for t in range(40):
        second(-80, -82, t)  # nowhere: the engine learns both packet rates
    for t in range(40, 42):
        second(-55, -75, t)  # at a from 40 s, not yet settled...
    for t in range(42, 44):
        second(-35, -20, t)  # ...b comes up: a is lost, then b leads...
    for t in range(44, 60):
        second(-55, -75, t)  # ...and the visitor is back at a
    assert [h for now, h in trace if 40 <= now < 46] == ["a"] * 14 + [None] * 2 + ["b"] * 6 + ["a"] * 2
    back = 45.5
    assert started and started[0] >= back + e.site.trigger.dwell
