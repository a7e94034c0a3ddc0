"""Trigger settings: every tuning value of the engine, with its unit and default.

They live in zones.yaml under the optional key ``trigger:`` at site level, and
under ``trigger:`` of an exhibit for the values marked per-exhibit, which
override the site's for that exhibit only::

    trigger:
      dwell: 4.0            # seconds
    exhibits:
      - id: coin-1
        trigger: {dwell: 6.0, margin: 4.0}

The zone-map loader validates these keys by reading the fields below (name,
type, ``unit``, ``min``/``max``, ``per_exhibit``, ``doc``), so this dataclass is
the one list of what may be tuned; the README table is generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


def _s(default: Any, unit: str, doc: str, *, min: float | None = None,
       max: float | None = None, per_exhibit: bool = False) -> Any:
    return field(default=default, metadata={
        "unit": unit, "doc": doc, "min": min, "max": max, "per_exhibit": per_exhibit})


@dataclass(frozen=True, kw_only=True)
class TriggerSettings:
    """The engine's tuning values (see the module docstring for where they live)."""

    smoothing: float = _s(
        2.0, "s", "time constant of the RSSI filter; longer rides out fades and "
        "lost packets, shorter reacts sooner", min=0.1, max=30)
    forget: float = _s(
        10.0, "s", "a beacon not heard for this long is forgotten", min=1, max=120)
    path_loss_exponent: float = _s(
        2.0, "", "how fast signal falls with distance, used to turn an "
        "exhibit's radius into the level expected at its edge", min=1.0, max=6.0)
    level: float | None = _s(
        None, "dBm", "smoothed RSSI a visitor must reach to be at this exhibit; "
        "default (`auto`): the beacon's tx_power at the exhibit's radius, less `slack`",
        min=-127, max=0, per_exhibit=True)
    slack: float = _s(
        8.0, "dB", "how far below the level expected at the radius still counts "
        "(phones and bodies differ by several dB)", min=0, max=40, per_exhibit=True)
    margin: float = _s(
        5.0, "dB", "lead over every other exhibit needed to arrive", min=0, max=40,
        per_exhibit=True)
    hysteresis: float = _s(
        3.0, "dB", "once arrived, the visitor stays until another exhibit leads by "
        "this much, or the level falls this far below `level`", min=0, max=40,
        per_exhibit=True)
    dwell: float = _s(
        5.0, "s", "how long the visitor must stay settled before the track starts",
        min=0, max=120, per_exhibit=True)
    dwell_again: float = _s(
        8.0, "s", "`dwell` at an exhibit whose track this visitor already walked "
        "away from (a glance, or a wrong start): someone passing it again is not "
        "yet arriving (never less than `dwell`)", min=0, max=120, per_exhibit=True)
    glance: float = _s(
        12.0, "s", "a track the visitor leaves within this many seconds of its "
        "start was a glance: it fades out and the exhibit is not counted as heard",
        min=0, max=60, per_exhibit=True)
    wait_credit: float = _s(
        8.0, "s", "time a visitor spent settled at an exhibit while the previous "
        "track played out counts towards its glance window, up to this much: "
        "someone who waited there is not glancing (unless already below the "
        "exhibit's `level`, walking off, when the credit would close the window)",
        min=0, max=60, per_exhibit=True)
    leave: float = _s(
        2.0, "s", "how long the visitor must be away from an exhibit whose track "
        "is in its glance window before it counts as left (at least 3 packet "
        "intervals of its beacon, for slow scanners)", min=0, max=30, per_exhibit=True)
    commit_grace: float = _s(
        6.0, "s", "a track whose visitor is elsewhere when its glance window "
        "closes waits this long for them to come back before it counts as "
        "listened to; if they leave meanwhile (or are leaving when it runs out) "
        "it was a glance", min=0, max=60,
        per_exhibit=True)
    fade: float = _s(
        1.0, "s", "length of the fade-out of an abandoned or stopped track",
        min=0, max=10)
    replay_heard: bool = _s(
        False, "", "start an exhibit again when the visitor comes back to it")
    resume_rewind: float = _s(
        3.0, "s", "after a reboot, resume the interrupted track this many seconds "
        "before where it stopped", min=0, max=60)

    def override(self, values: dict[str, Any]) -> "TriggerSettings":
        """A copy with some values replaced (already validated by the loader)."""
        return replace(self, **values)


SETTINGS = {f.name: f for f in fields(TriggerSettings)}
PER_EXHIBIT = frozenset(n for n, f in SETTINGS.items() if f.metadata["per_exhibit"])
