"""What one visitor heard, as a WAV file, from the event log of their visit.

    from guide.render import render_visit
    events = [e for e in replay_events if e["visitor"] == "v001"]
    done = render_visit(site, events, "v001.wav")
    done.seconds, done.problems      # 1834.2, () when every track could be played

The file starts at t = 0 (the start of the walk) and keeps the silences
between tracks, so staff can listen to a simulated visit as it would have
sounded. Each event is performed on a `WavWriter` in virtual time, the way
the device performs it on the real player: `start` plays the track (from
`offset`), `end` fades out over its `fade` (an end "finished" or "error" has
already stopped by itself, as on the device), `pause` fades briefly and
`resume` continues from the event's `position`; `intro` plays the site's
spoken introduction, which an exhibit starting cuts short with a quick fade
(as the device does). A track still playing after the last event plays to
its end. Other kinds of event are passed over.
A track that cannot be decoded is silence, and one line in `problems`.
A visit longer than a WAV file can hold (`guide.player.WAV_MAX_SECONDS`,
24 h 51 min) is refused before anything is written: the rendering stays
true to time, silences included, so a shorter walk is the way to hear it.
The file is a WAV and its name must say so (`FORMATS`): nothing converts it,
and a player trusting an .mp3 name would refuse it or play noise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guide.audio import TrackLoader
from guide import tracks
from guide.errors import GuideError, TrackError
from guide.files import replacing
from guide.player import WAV_MAX_SECONDS, Failed, ManualClock, PlayerEvent, WavWriter
from guide.site import Site

FORMATS = (".wav",)  # what render_visit writes, by file name
_RESUME_SLACK = 0.05  # s: a resume this close to where the pause left off just resumes
INTRO_FADE = 0.3  # s: an exhibit starting during the intro fades it out this fast (device too)


@dataclass(frozen=True, kw_only=True)
class Rendering:
    """The WAV written by `render_visit`, and what could not be played."""

    path: Path
    seconds: float  # length of the file
    starts: int  # tracks started
    problems: tuple[str, ...]  # one message per track that could not be played


def render_visit(site: Site, events: Iterable[Mapping[str, Any]], out_path: str | os.PathLike[str], *,
                 loader: TrackLoader | None = None) -> Rendering:
    """Write what the visitor of `events` (FORMATS.md event dicts, one
    visitor, in time order) heard into `out_path` (16-bit mono WAV), replaced
    whole once the visit is rendered: an error or Ctrl-C on the way leaves
    the file as it was. GuideError for a name not ending in .wav, and for a
    visit too long for a WAV file (before anything is decoded or written)."""
    out_path = Path(out_path)
    check_name(out_path)
    events = list(events)
    _check(events)
    seconds = _length(site, events)
    if seconds > WAV_MAX_SECONDS:
        raise GuideError(f"{out_path}: the visit lasts {tracks.clock(seconds)}, longer than a WAV file "
                         f"can hold ({tracks.clock(WAV_MAX_SECONDS)}, 4 GiB): render a shorter walk, "
                         "e.g. the stretch of the scan log to listen to")
    clock = ManualClock(0.0)
    reported: list[PlayerEvent] = []
    own_loader = loader is None
    loader = loader if loader is not None else TrackLoader()
    try:
        with replacing(out_path) as rendering:  # renamed over out_path once rendered
            writer = WavWriter(reported.append, rendering, clock=clock, loader=loader)
            try:
                starts = _perform(site, events, writer, clock)
            finally:
                writer.close()
    finally:
        if own_loader:
            loader.close()
    problems = tuple(e.message for e in reported if isinstance(e, Failed))
    return Rendering(path=out_path, seconds=round(clock.now, 3), starts=starts, problems=problems)


def _perform(site: Site, events: list[Mapping[str, Any]], writer: WavWriter, clock: ManualClock) -> int:
    """Play `events` into `writer` on virtual `clock`; how many tracks started."""
    starts, current, intro_ends = 0, None, None
    for event in events:
        clock.now = max(clock.now, float(event["t"]))
        kind = event.get("event")
        if kind == "intro":
            writer.play(site.track_path(str(event["track"])))
            intro_ends = writer.ends_at()
        elif kind == "start":
            if intro_ends is not None and clock.now < intro_ends:
                writer.stop(fade=INTRO_FADE)  # the exhibit wins
            intro_ends = None
            current = site.track_path(str(event["track"]))
            writer.play(current, offset=float(event.get("offset", 0.0)))
            starts += 1
        elif kind == "end":
            if event.get("reason") not in ("finished", "error"):
                writer.stop(fade=float(event.get("fade", 0.0)))
            current = None
        elif kind == "pause":
            writer.pause()
        elif kind == "resume" and current is not None:
            where = writer.position()
            wanted = float(event.get("position", where if where is not None else 0.0))
            if where is not None and abs(where - wanted) <= _RESUME_SLACK:
                writer.resume()
            else:  # the engine chose to go back (or on) a little: play from there
                writer.play(current, offset=wanted)
    # a track still playing plays out to its end; a fade or pause under way ends
    clock.now = max(clock.now, writer.ends_at() or clock.now)
    return starts


def check_name(path: str | os.PathLike[str], option: str = "") -> None:
    """GuideError unless `path` ends in .wav (`FORMATS`), named after
    `option` when given: WAV data under another name misleads players."""
    if Path(path).suffix.lower() not in FORMATS:
        raise GuideError(f"{option + ' ' if option else ''}{path}: give a file name ending in .wav "
                         "(what the visitor heard is written as WAV; convert it afterwards if need "
                         "be, e.g. ffmpeg -i visit.wav visit.mp3)")


def _length(site: Site, events: list[Mapping[str, Any]]) -> float:
    """Seconds the rendering lasts, at least, and a little more when a pause
    is still under way: to the last event, and on to the end of what plays
    then (from its start's offset or resume's position; header length)."""
    last, playing = 0.0, None  # (track, where it plays from) after the last event
    for event in events:
        last = float(event["t"])
        kind = event.get("event")
        if kind in ("start", "intro"):
            playing = (str(event["track"]), float(event.get("offset", 0.0)))
        elif kind == "end":
            playing = None
        elif kind == "resume" and playing is not None:
            playing = (playing[0], float(event.get("position", playing[1])))
    if playing is None:
        return last
    try:
        return last + max(0.0, tracks.duration(site.track_path(playing[0])) - playing[1])
    except TrackError:
        return last  # it cannot be played: silence, one of the problems


def _check(events: list[Mapping[str, Any]]) -> None:
    visitors = sorted({str(e.get("visitor")) for e in events if "visitor" in e})
    if len(visitors) > 1:
        raise GuideError(f"the events are of {len(visitors)} visitors ({', '.join(visitors[:5])}"
                         f"{', ...' if len(visitors) > 5 else ''}); render one visitor's at a time")
    last = float("-inf")
    for i, event in enumerate(events, 1):
        try:
            t = float(event["t"])
        except (KeyError, TypeError, ValueError):
            raise GuideError(f"event {i} ({dict(event)}) has no time 't' in seconds") from None
        if t < last:
            raise GuideError(f"event {i} (t={t}) comes before the one ahead of it (t={last}); "
                             "the events must be in time order")
        last = t
        if event.get("event") in ("start", "intro") and "track" not in event:
            raise GuideError(f"event {i} ({event.get('event')} at t={t}) names no 'track'")
