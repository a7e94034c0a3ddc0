"""The handheld's loop: sightings in, the engine decides, the player plays,
and the visit is kept on disk so that nothing a crash does loses it.

    device = Device(site, lang="en", make_player=SimpleaudioPlayer, log_path="events.jsonl")
    await device.run(BleakSource(BeaconParser(site.beacons)), TerminalInput(), stop)

Everything happens on the event loop's thread; the player's thread hands its
Finished/Failed events over with `call_soon_threadsafe`. Time is the visit
clock: seconds since the visit began, continued across restarts (the state
and the event log say where it had got to), on the loop's monotonic clock.
The engine is woken at its own deadline, never polled. While the Bluetooth
adapter is lost the engine's clock stands still (`engine_now`): the silence
of a dead radio is not the visitor walking away, and the track plays on.

Order of work for an action: the player first (a visitor waits for sound,
not for a disk), then the durable event log, then the state file. A write
that fails mid-visit (a full disk) is logged and the visit plays on: the event
log keeps only whole lines and the state file its last whole save, so a
restart resumes from there. At start, before any sound, such a failure stops
the device with a DeviceError naming the file.
A state file has one device at a time: `run` locks it (and the event log)
before writing, and refuses one another run is writing, naming it.

Before the first exhibit of a new visit (and after each change of language)
the visitor is told how much of the visit exists in their language: on screen
and in the logs, and aloud when zones.yaml has an `intro` track for it. The
engine never hears of the intro: an exhibit that starts cuts it short.

A track that cannot be played (broken, or too long) is told apart from one
never recorded: the coverage counts it as the fallback that plays instead and
names it (`broken` in its event, a warning each), and a start that falls back
past it names it too (`broken` in the start event; "en/dome.opus cannot be
played" on screen, where a missing one reads "no English track").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from guide.actions import Action, End, Pause, Resume, Start, to_event
from guide.audio import likely_next
from guide.ble import Source
from guide.buttons import Button, Input
from guide.coverage import coverage, language_name, sentence
from guide.engine import Engine
from guide.errors import DeviceError, GuideError
from guide.eventlog import EventLog
from guide.player import Failed, Player
from guide.render import INTRO_FADE
from guide.site import Site
from guide.state import StateFile, VisitState, VisitTail, visit_tail

logger = logging.getLogger("guide.device")

VOLUME = 0.8  # a new visit's volume; the buttons move it in VOLUME_STEP steps
VOLUME_STEP = 0.1


class Device:
    """One visit on one handheld. Construction reads the saved visit, if any
    (DeviceError for a foreign state file or another site's); `run` plays it."""

    def __init__(self, site: Site, *, lang: str, make_player: Callable[[Callable[[Any], None]], Player],
                 log_path: str | Path, state_path: str | Path | None = None,
                 new_visit: bool = False, save_every: float = 1.0):
        self.site, self.lang, self.save_every = site, lang, save_every
        self._make_player = make_player
        self.store = StateFile(state_path if state_path is not None else f"{log_path}.state.json")
        self._new_visit = new_visit
        self.saved = None if new_visit else self.store.load()
        if self.saved is not None and self.saved.site != site.name:
            raise DeviceError(f"{self.store.path}: the saved visit is of {self.saved.site!r}, but the zone "
                              f"map is {site.name!r}; pass --new-visit to start a new visit")
        self.visitor = self.saved.visitor if self.saved else time.strftime("visit-%Y%m%d-%H%M%S")
        self.tail = visit_tail(log_path, self.visitor) if self.saved else VisitTail(t=None, open_exhibit=None)
        self.volume = self.saved.volume if self.saved else VOLUME
        self.log_path = Path(log_path)
        self._track: Path | None = None  # what the player was last told to play
        self._intro: Path | None = None  # the intro track playing, if one is
        self._paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._jobs: set[asyncio.Future] = set()
        self._here: str | None = None
        self._lag = 0.0  # seconds the engine's clock stood still while the radio was lost
        self._radio_lost: float | None = None  # the visit clock when the adapter was lost, while it is
        # writes of the visit that failed mid-visit: how many, and the first (a count, not a list:
        # a full disk fails an autosave every second, 36,000 in a 10-hour day)
        self.failed_writes = 0
        self.first_failure: str | None = None
        self._failing: str | None = None  # the last failure, while writes fail

    def now(self) -> float:
        return self.loop.time() - self._origin

    def engine_now(self) -> float:
        """The engine's clock: the visit clock, less the time the radio was
        lost. It stands still while the adapter is gone, so that the radio's
        silence does not read as the visitor walking away."""
        return (self.now() if self._radio_lost is None else self._radio_lost) - self._lag

    async def run(self, source: Source, buttons: Input | None = None, stop: asyncio.Event | None = None) -> None:
        """Play the visit until `stop` is set, or until a finite source has no
        more sightings and nothing plays. The state is saved on the way out."""
        self.loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        resume_t = max(self.saved.t, self.tail.t or 0.0) if self.saved else 0.0
        self._origin = self.loop.time() - resume_t  # the visit clock carries on from there
        self._quiet = asyncio.Event()
        # the player first: a device with no sound card stops before the event
        # log is created, and leaves no empty log behind
        self.player = self._make_player(self._from_player_thread)
        try:
            self.store.lock()  # one run per state file, as per event log: another is named and refused
            kept = self.store.keep_unreadable() if self._new_visit else None
            if kept is not None:
                logger.warning("%s was not a visit state this guide reads; it is kept as %s, and a "
                               "new visit starts", self.store.path, kept)
            self.log = EventLog(self.log_path, durable=True)
        except BaseException:
            self.store.unlock()
            self.player.close()
            raise
        self.player.set_volume(self.volume)
        tasks: list[asyncio.Task] = []
        try:
            try:
                self.engine, actions = self._begin(self.now())
                self._save(self.now())  # the visit exists on disk from its first instant
            except OSError as e:  # before any sound: stop, and say which file
                raise DeviceError(f"{e.filename or self.log_path}: cannot record the visit "
                                  f"({e.strerror or e}); check the disk and the --events path") from None
            if self.saved is None:  # before the first exhibit (reading durations takes a second)
                await self._announce(self.lang)
            self._perform(actions)
            watch_radio = getattr(source, "watch_radio", None)
            if watch_radio is not None:  # a real radio says when its adapter goes and comes back
                watch_radio(self._on_radio)
            tasks = [asyncio.create_task(c) for c in (
                stop.wait(), source.run(self._on_sighting, self.now),
                self._read_buttons(buttons), self._autosave())]
            stopped, sighting = tasks[:2]
            await asyncio.wait([stopped, sighting], return_when=asyncio.FIRST_COMPLETED)
            if sighting.done() and not stop.is_set():
                sighting.result()  # a source that crashed is a bug: let it show
                tasks.append(asyncio.create_task(self._quiet.wait()))  # the last track plays out
                await asyncio.wait([stopped, tasks[-1]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, *self._jobs):
                task.cancel()
            await asyncio.gather(*tasks, *self._jobs, return_exceptions=True)
            self._shut_down()

    def _begin(self, now: float) -> tuple[Engine, list[Action]]:
        if self.saved is None:
            return Engine(self.site, self.lang), []
        if self.tail.open_exhibit:  # the crash cut a track off: say so in the log
            self.log.write(End(exhibit=self.tail.open_exhibit, reason="stopped"), visitor=self.visitor, t=now)
        try:
            engine, actions = Engine.restore(self.site, dict(self.saved.engine), now)
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise DeviceError(f"{self.store.path}: the saved visit does not fit this zone map ({e}); "
                              "pass --new-visit to start a new visit") from None
        logger.info("resuming %s at %.1f s: %s, %d exhibit(s) heard", self.visitor, now,
                    language_name(engine.lang), len(engine.heard))
        return engine, actions

    # ----- inputs, each followed by _perform ---------------------------------
    def _on_sighting(self, beacon: str, rssi: int) -> None:
        self._perform(self.engine.observe(beacon, rssi, self.engine_now()))

    def _on_deadline(self) -> None:
        self._timer = self._deadline = None
        self._perform(self.engine.tick(self.engine_now()))

    def _from_player_thread(self, event: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self._on_player, event)
        except RuntimeError:
            pass  # the loop has closed: the visit is over, the state saved

    def _on_player(self, event: Any) -> None:
        if self._intro is not None and Path(event.path) == self._intro:
            self._intro_over(event)  # the engine never hears of the intro
            return
        if self._track is None or Path(event.path) != self._track:
            return  # about a track already replaced or stopped
        now = self.engine_now()
        if isinstance(event, Failed):
            logger.error("cannot play: %s", event.message)  # the message names the file
            self._perform(self.engine.failed(now, event.message))
        else:
            self._perform(self.engine.finished(now))

    def _on_button(self, button: Button) -> None:
        now, e = self.engine_now(), self.engine
        if button in (Button.VOLUME_UP, Button.VOLUME_DOWN):
            step = VOLUME_STEP if button is Button.VOLUME_UP else -VOLUME_STEP
            self.volume = round(min(1.0, max(0.0, self.volume + step)), 2)
            self.player.set_volume(self.volume)
            logger.info("volume %d%%", round(self.volume * 100))
            self._perform([], always_save=True)
        elif button is Button.LANGUAGE:
            langs = self.site.languages
            lang = langs[(langs.index(e.lang) + 1) % len(langs)]
            self._stop_intro()
            self._background(self._announce(lang))
            self._perform(e.set_language(lang, now), always_save=True)
        elif self._intro is not None and e.playing is None and button in (Button.PAUSE, Button.SKIP):
            self._stop_intro()  # a visitor who would rather not hear it
        else:
            act = {Button.PAUSE: e.resume if self._paused else e.pause,
                   Button.REPLAY: e.replay, Button.SKIP: e.skip}[button]
            self._perform(act(now))

    # ----- outputs --------------------------------------------------------
    def _perform(self, actions: list[Action], *, always_save: bool = False) -> None:
        now = self.now()
        played = []
        for action in actions:  # each as played: a pause after a start reads that start's audio
            played.append(self._heard_at(action))
            self._play(played[-1])
        actions = played
        try:
            for action in actions:
                broken = _passed_over(self.site, action)
                if broken:  # said apart from a track never recorded in the visitor's language
                    self.log.write_event({**to_event(action, visitor=self.visitor, t=now), "broken": broken})
                else:
                    self.log.write(action, visitor=self.visitor, t=now)
                _show(self.site, action, broken)
            if actions or always_save:
                self._save(now)
                self._recorded()
        except (OSError, GuideError) as e:  # a full or failing disk: the visit goes on
            self._unrecorded("record the visit", e)
        self._mark_quiet()
        if self.engine.here != self._here:  # arriving somewhere: decode its track during the dwell
            self._here = self.engine.here
            if self._here is not None:
                self.player.prefetch(likely_next(self.site, self._here, self.engine.lang,
                                                 skip=self.engine.heard))
        if self.engine.next_deadline() != self._deadline:
            self._schedule()

    def _heard_at(self, action: Action) -> Action:
        """A pause or resume says where the audio is, which the player knows:
        the engine's clock stood still while the radio was lost, so its
        position lags the audio's by every outage since the track began."""
        if isinstance(action, (Pause, Resume)):
            heard = self.player.position()
            if heard is not None:
                return replace(action, position=round(heard, 3))
        return action

    def _schedule(self) -> None:
        """Wake the engine at its deadline, on its clock (none while the radio is lost)."""
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline = self.engine.next_deadline()
        self._timer = (None if deadline is None or self._radio_lost is not None
                       else self.loop.call_at(self._origin + self._lag + deadline, self._on_deadline))

    def _on_radio(self, up: bool, why: str | None = None) -> None:
        """The adapter was lost (`up` False, `why` says how) or is back. While
        it is lost the engine's clock stands still: the beacon of the exhibit
        playing is not forgotten, so its track plays on, and the visit carries
        on from there when the radio returns. Both are in the event log."""
        if up == (self._radio_lost is None):
            return
        if up:
            self._lag += self.now() - self._radio_lost
            self._radio_lost = None
            logger.info("the radio is back: the visit goes on")
            self._record({"event": "radio", "state": "back"})
        else:
            self._radio_lost = self.now()
            logger.warning("the radio is lost: the visit waits for it%s",
                           f" ({self.engine.playing} plays on)" if self.engine.playing else "")
            self._record({"event": "radio", "state": "lost", "error": why or "no adapter"})
        self._schedule()

    def _play(self, action: Action) -> None:
        if isinstance(action, Start):
            self._stop_intro()  # the exhibit wins
            self._track, self._paused = self.site.track_path(action.track), False
            self.player.play(self._track, offset=action.offset)
        elif isinstance(action, End):
            if action.reason not in ("finished", "error"):  # those have stopped by themselves
                self.player.stop(fade=action.fade)
            self._track, self._paused = None, False
        elif isinstance(action, Pause):
            self.player.pause()
            self._paused = True
        elif isinstance(action, Resume):
            self.player.resume()
            self._paused = False

    def _save(self, now: float) -> None:
        engine = self.engine.snapshot(self.engine_now())
        heard = self.player.position() if engine["playing"] is not None else None
        if heard is not None:
            # where the audio is: the engine's clock stood still while the radio was
            # lost, so its position lags by the outage, and a resume would replay that
            engine["playing"]["position"] = round(heard, 3)
        self.store.save(VisitState(visitor=self.visitor, site=self.site.name, t=round(now, 3),
                                   volume=self.volume, engine=engine))

    def _mark_quiet(self) -> None:
        """Nothing plays (a paused track is silent, and waits for a button that
        may never come): a finite source may end the visit now."""
        silent = self.engine.playing is None or self._paused
        self._quiet.set() if silent and self._intro is None else self._quiet.clear()

    async def _announce(self, lang: str) -> None:
        """Tell the visitor how much of the visit exists in their language, in
        that language: on screen and in the logs, then aloud if the site has an
        intro track for it and no exhibit plays (none is cut short for it)."""
        try:  # on a worker thread: reading the tracks' lengths must not hold up the radio
            c = await self.loop.run_in_executor(None, coverage, self.site, lang)
        except GuideError as e:
            logger.warning("cannot tell the language coverage: %s", e)
        else:
            logger.info("%s", sentence(c, lang))
            for b in c.broken:
                logger.warning("cannot play %s", b)
            told = {"event": "coverage", "lang": lang, "text": sentence(c, lang)}
            self._record(told | {"broken": [b.track for b in c.broken]} if c.broken else told)
        intro = self.site.intro.get(lang)
        if intro is None or self.engine.playing is not None or self.engine.lang != lang:
            return
        self._intro = self.site.track_path(intro)
        self.player.play(self._intro)
        logger.info("> the intro, in %s", language_name(lang))
        self._record({"event": "intro", "lang": lang, "track": intro})
        self._mark_quiet()

    def _stop_intro(self) -> None:
        if self._intro is not None:
            self.player.stop(fade=INTRO_FADE)
            self._intro = None
            self._mark_quiet()

    def _intro_over(self, event: Any) -> None:
        if isinstance(event, Failed):  # the visit goes on without it
            logger.warning("cannot play the intro: %s", event.message)
        self._intro = None
        self._mark_quiet()

    def _record(self, event: dict) -> None:
        """An event of the device's own (not an engine action) into the log."""
        try:
            self.log.write_event({"visitor": self.visitor, "t": round(self.now(), 3), **event})
        except (OSError, GuideError) as e:
            self._unrecorded("record the visit", e)

    def _unrecorded(self, what: str, e: Exception) -> None:
        """A write of the visit failed and the visit goes on: say so now (once
        while the same failure lasts: a track's autosave fails every second),
        and count it for the end, the first named (`guide run` then exits
        non-zero)."""
        failure = f"cannot {what}: {e}"
        if failure != self._failing:
            logger.error("%s%s", failure, "" if self._failing else "; the visit plays on (said once, "
                         "until writing works again)")
        self._failing = failure
        self.failed_writes += 1
        if self.first_failure is None:
            self.first_failure = f"{what}: {e}"

    def _recorded(self) -> None:
        """A write of the visit worked: after failures, say it is kept again."""
        if self._failing is not None:
            self._failing = None
            logger.warning("the visit is recorded again (%d write(s) failed until now)", self.failed_writes)

    def _background(self, job: Any) -> None:
        task = asyncio.ensure_future(job)
        self._jobs.add(task)  # held, so the task is not collected mid-way
        task.add_done_callback(self._jobs.discard)

    async def _read_buttons(self, buttons: Input | None) -> None:
        if buttons is not None:
            async for button in buttons.presses():
                try:
                    self._on_button(button)
                except (OSError, GuideError) as e:
                    logger.error("the %s button: %s", button.value, e)

    async def _autosave(self) -> None:
        """Keep the playing position fresh on disk, for a resume close to it."""
        while True:
            await asyncio.sleep(self.save_every)
            if self.engine.playing is not None and not self._paused:
                try:
                    self._save(self.now())
                    self._recorded()
                except (OSError, GuideError) as e:
                    self._unrecorded("save the visit state", e)

    def _shut_down(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._track = self._intro = None  # late player events are about a finished visit
        engine = getattr(self, "engine", None)
        try:
            if engine is not None:
                now = self.now()
                try:
                    if engine.playing is not None:
                        # the state still says "playing": a restart resumes it
                        self.log.write(End(exhibit=engine.playing, reason="stopped"), visitor=self.visitor, t=now)
                    self._save(now)
                except (OSError, GuideError) as e:  # a full disk: the last good state stays on disk
                    self._unrecorded("record the end of the visit", e)
        finally:
            try:
                self.player.stop()
                self.player.close()
            finally:
                try:
                    self.log.close()
                except OSError as e:
                    self._unrecorded("close the event log", e)
                finally:
                    self.store.unlock()


def _passed_over(site: Site, action: Action) -> list[str]:
    """The tracks a start of another language than the visitor's passed over:
    those of the visitor's chain before the one it plays. The engine passes
    over a track only when it cannot be played (it starts the first language
    of the chain with a track, and the next one when that fails)."""
    if not isinstance(action, Start) or action.wanted is None:
        return []
    tracks = site.exhibit(action.exhibit).tracks
    chain = site.chain(action.wanted)
    before = chain[:chain.index(action.lang)] if action.lang in chain else chain
    return [tracks[lang] for lang in before if lang in tracks]


def _show(site: Site, action: Action, broken: list[str] = ()) -> None:
    """One line a person can read, for the screen and the system log;
    `broken`: the tracks a start passed over because they cannot be played."""
    def title(exhibit: str, lang: str) -> str:
        t = site.exhibit(exhibit).title
        return t.get(lang) or next(iter(t.values()), exhibit)

    if isinstance(action, Start):
        where = f" from {action.offset:.0f} s" if action.offset else ""
        why = [f"{track} cannot be played" for track in broken]
        if action.wanted and action.wanted not in site.exhibit(action.exhibit).tracks:
            why.insert(0, f"no {language_name(action.wanted)} track")
        note = f" ({'; '.join(why)})" if why else ""
        logger.info("> %s, in %s%s%s", title(action.exhibit, action.lang),
                    language_name(action.lang), where, note)
    elif isinstance(action, End):
        logger.info("x %s: %s", action.exhibit, action.reason)
    elif isinstance(action, Pause):
        logger.info("|| %s paused at %.0f s", action.exhibit, action.position)
    elif isinstance(action, Resume):
        logger.info("> %s resumed at %.0f s", action.exhibit, action.position)
