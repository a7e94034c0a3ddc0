"""What the engine asks its driver to do. Small frozen values, no behaviour.

The device performs them on the real player; the simulator performs them in
virtual time; both write them to the event log with `to_event`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True)
class Start:
    """Play `track` (relative to the site's tracks_dir) from `offset` seconds.

    `lang` is the language that actually plays; `wanted` the visitor's own
    when the track is a fallback (None when they are the same)."""

    exhibit: str
    lang: str
    track: str
    offset: float = 0.0
    wanted: str | None = None


@dataclass(frozen=True, kw_only=True)
class End:
    """Stop the exhibit's track; fade out over `fade` seconds (0: it has
    already ended by itself). Reasons: finished, abandoned, skipped, stopped,
    language, replay, interrupted (the naive policy only), error."""

    exhibit: str
    reason: str
    fade: float = 0.0
    track: str | None = None  # with reason "error": the track that could not be played
    error: str | None = None  # with reason "error": why, for whoever reads the event log


@dataclass(frozen=True, kw_only=True)
class Pause:
    exhibit: str
    position: float  # seconds into the track


@dataclass(frozen=True, kw_only=True)
class Resume:
    exhibit: str
    position: float  # seconds into the track where it continues


Action = Start | End | Pause | Resume

_NAMES = {Start: "start", End: "end", Pause: "pause", Resume: "resume"}


def to_event(action: Action, *, visitor: str, t: float) -> dict:
    """The FORMATS.md event-log object for an action performed at `t`."""
    # seconds to the millisecond, as `t`: a position is worked out from clock readings
    body = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(action).items()
            if v is not None}
    if isinstance(action, Start) and action.offset == 0.0:
        del body["offset"]
    if isinstance(action, End) and action.fade == 0.0:
        del body["fade"]
    return {"visitor": visitor, "t": round(t, 3), "event": _NAMES[type(action)], **body}
