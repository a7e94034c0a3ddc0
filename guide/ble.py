"""Beacon advertisements in, beacon ids out: the radio edge of the device.

Two things live here:

- `BeaconParser` turns one advertisement (manufacturer data, service data,
  RSSI) into the zone map's beacon id, by a lookup built from the identities
  in `site.beacons`: an iBeacon is Apple's manufacturer data (company 0x004C)
  ``02 15 <uuid:16> <major:2> <minor:2> <tx:1>``; an Eddystone-UID is service
  data under UUID 0xFEAA ``00 <tx:1> <namespace:10> <instance:6> [<rfu:2>]``.
  Anything else is dropped and counted, never raised: a radio hears whatever
  is around (phones, headphones, other sites' beacons, corrupted packets).

- Sources of sightings, all with one method ``await source.run(on_sighting,
  now)`` that calls ``on_sighting(beacon_id, rssi)`` for each advertisement of
  a configured beacon until cancelled (or, for a finite source, returns when
  it has no more):

  - `BleakSource`: a real Bluetooth adapter through bleak. It survives having
    no adapter at start and losing it mid-visit, retrying with backoff.
  - `ReplaySource`: recorded rows ``(t, beacon, rssi)`` delivered when the
    visit clock ``now()`` reaches ``t`` (a scan log, or a test's script).

    parser = BeaconParser(site.beacons)
    source = BleakSource(parser)
    await source.run(lambda beacon, rssi: print(beacon, rssi), loop.time)
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from guide.site import Beacon, Eddystone, IBeacon

logger = logging.getLogger("guide.ble")

APPLE = 0x004C  # Bluetooth SIG company identifier of Apple: iBeacons live under it
EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"  # 16-bit service UUID 0xFEAA, in full
_IBEACON_PREFIX = b"\x02\x15"  # iBeacon type 0x02, then 0x15 = 21 bytes follow
_IBEACON_LEN = 23
_EDDYSTONE_UID = 0x00  # frame type; URL (0x10), TLM (0x20), EID (0x30) are not beacons for us
_EDDYSTONE_UID_LEN = 18  # the 2 reserved bytes at the end are optional in practice
_UNKNOWN_KEPT = 256  # distinct unconfigured identities remembered for the staff report

OnSighting = Callable[[str, int], None]
"""Called with (beacon id of the zone map, RSSI in dBm) for each advertisement."""


@dataclass(frozen=True, kw_only=True)
class ParseCounts:
    """What the parser did with the advertisements it was given.

    sightings: configured beacons, passed on.
    unknown: well-formed iBeacon/Eddystone-UID frames of beacons not in the zone map.
    malformed: frames that claim to be iBeacon/Eddystone-UID but are too short or mistyped.
    implausible: configured beacons heard with an RSSI outside -127..0 dBm (or none).
    other: advertisements with no beacon frame at all (phones, headphones, ...).
    """

    sightings: int = 0
    unknown: int = 0
    malformed: int = 0
    implausible: int = 0
    other: int = 0

    @property
    def dropped(self) -> int:
        return self.unknown + self.malformed + self.implausible + self.other


class BeaconParser:
    """Advertisement -> beacon id of the zone map, or None (dropped and counted).

    >>> parser = BeaconParser(site.beacons)  # doctest: +SKIP
    >>> parser.parse({0x004C: bytes.fromhex("0215f7826da6...")}, {}, -63)  # doctest: +SKIP
    'dome-n'
    """

    def __init__(self, beacons: Mapping[str, Beacon]):
        self._ibeacon: dict[bytes, str] = {}
        self._eddystone: dict[bytes, str] = {}
        for beacon in beacons.values():
            key = identity_key(beacon.ident)
            table = self._ibeacon if isinstance(beacon.ident, IBeacon) else self._eddystone
            table[key] = beacon.id
        self.sightings = self.unknown = self.malformed = self.implausible = self.other = 0
        self.unknown_seen: dict[IBeacon | Eddystone, int] = {}

    def counts(self) -> ParseCounts:
        return ParseCounts(sightings=self.sightings, unknown=self.unknown,
                           malformed=self.malformed, implausible=self.implausible,
                           other=self.other)

    def parse(self, manufacturer_data: Mapping[int, Any] | None,
              service_data: Mapping[str, Any] | None, rssi: Any) -> str | None:
        """The configured beacon this advertisement comes from, else None.

        Never raises, whatever the types or contents of its arguments: it runs
        in the radio callback, and a bad packet must cost one packet only."""
        try:
            key, table = self._frame(manufacturer_data, service_data)
        except (TypeError, ValueError, AttributeError):  # mistyped data from a backend
            self.malformed += 1
            return None
        if key is None:
            return None  # counted by _frame
        beacon = table.get(key)
        if beacon is None:
            self.unknown += 1
            self._remember_unknown(key, table is self._ibeacon)
            return None
        # type() rather than isinstance(): True is an int but not an RSSI
        if type(rssi) is not int or not -127 <= rssi <= 0:
            self.implausible += 1
            return None
        self.sightings += 1
        return beacon

    def _frame(self, manufacturer_data, service_data) -> tuple[bytes | None, dict[bytes, str]]:
        if manufacturer_data:
            apple = manufacturer_data.get(APPLE)
            if apple is not None and bytes(apple[:2]) == _IBEACON_PREFIX:
                if len(apple) < _IBEACON_LEN:
                    self.malformed += 1
                    return None, self._ibeacon
                return bytes(apple[2:22]), self._ibeacon
        if service_data:
            frame = service_data.get(EDDYSTONE)
            if frame is not None and len(frame) > 0 and frame[0] == _EDDYSTONE_UID:
                if len(frame) < _EDDYSTONE_UID_LEN:
                    self.malformed += 1
                    return None, self._eddystone
                return bytes(frame[2:18]), self._eddystone
        self.other += 1
        return None, self._ibeacon

    def _remember_unknown(self, key: bytes, is_ibeacon: bool) -> None:
        ident = _identity_from_key(key, is_ibeacon)
        if ident in self.unknown_seen or len(self.unknown_seen) < _UNKNOWN_KEPT:
            self.unknown_seen[ident] = self.unknown_seen.get(ident, 0) + 1


def identity_key(ident: IBeacon | Eddystone) -> bytes:
    """The bytes of an advertisement that name this beacon (what `parse` looks up)."""
    if isinstance(ident, IBeacon):
        return uuidlib.UUID(ident.uuid).bytes + ident.major.to_bytes(2, "big") + ident.minor.to_bytes(2, "big")
    return bytes.fromhex(ident.namespace) + bytes.fromhex(ident.instance)


def _identity_from_key(key: bytes, is_ibeacon: bool) -> IBeacon | Eddystone:
    if is_ibeacon:
        return IBeacon(uuid=str(uuidlib.UUID(bytes=key[:16])),
                       major=int.from_bytes(key[16:18], "big"), minor=int.from_bytes(key[18:20], "big"))
    return Eddystone(namespace=key[:10].hex(), instance=key[10:16].hex())


def ibeacon_payload(ident: IBeacon, tx_power: int = -59) -> bytes:
    """Apple manufacturer data of an iBeacon advertising `ident` (for tests and tools)."""
    return _IBEACON_PREFIX + identity_key(ident) + (tx_power & 0xFF).to_bytes(1, "big")


def eddystone_payload(ident: Eddystone, tx_power: int = -18) -> bytes:
    """0xFEAA service data of an Eddystone-UID frame advertising `ident`."""
    return bytes([_EDDYSTONE_UID, tx_power & 0xFF]) + identity_key(ident) + b"\x00\x00"


def describe(ident: IBeacon | Eddystone) -> str:
    """The identity as it is written in zones.yaml, for staff reports."""
    if isinstance(ident, IBeacon):
        return f"ibeacon: {{uuid: {ident.uuid}, major: {ident.major}, minor: {ident.minor}}}"
    return f'eddystone: {{namespace: "{ident.namespace}", instance: "{ident.instance}"}}'


class Source(Protocol):
    """Where sightings come from: a radio, a recording, a test."""

    async def run(self, on_sighting: OnSighting, now: Callable[[], float]) -> None:
        """Call `on_sighting(beacon, rssi)` for each advertisement, on the
        running event loop's thread, until cancelled. `now()` is the visit
        clock (seconds); a finite source returns when it has nothing more."""
        ...


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Waits between attempts to reach the adapter: first, doubling, capped."""

    first: float = 1.0
    longest: float = 30.0

    def delays(self) -> Iterable[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.longest)


class BleakSource:
    """Sightings from a Bluetooth adapter, through bleak (BlueZ on Linux).

    Resilience, because a device in a museum has no one to restart it:
    - no adapter at start: a clear message, then retries with backoff;
    - the adapter vanishing mid-visit: the radio goes silent. After `silence`
      seconds without any advertisement (from anything, beacon or not) the scan
      is restarted; while that fails (the adapter is gone), retries back off,
      and scanning resumes when the adapter returns. The player is not touched,
      so the track goes on playing; `watch_radio` tells the device when the
      adapter is lost and back (it then stops the engine's clock meanwhile).
    A scan restart in a quiet corridor costs a few milliseconds and is harmless.
    """

    def __init__(self, parser: BeaconParser, *, adapter: str | None = None,
                 silence: float = 5.0, backoff: Backoff = Backoff(),
                 scanner_factory: Callable[..., Any] | None = None):
        self.parser = parser
        self.adapter = adapter
        self.silence = silence
        self.backoff = backoff
        self._factory = scanner_factory
        self.heard = 0  # advertisements of any kind received
        self.restarts = 0  # scans restarted after a silence or a failure
        self.scanned = False  # a scan has started at least once (an adapter was reached)
        self.last_error: str | None = None  # why the adapter could not be reached, last time
        self._on_radio: Callable[[bool, str | None], None] | None = None

    def watch_radio(self, on_radio: Callable[[bool, str | None], None]) -> None:
        """Have `on_radio(False, why)` called when the adapter cannot be
        reached (at start or after losing it) and `on_radio(True, None)` when
        scanning starts again after that, on the event loop's thread."""
        self._on_radio = on_radio

    def _scanner(self, callback: Callable[[Any, Any], None]) -> Any:
        if self._factory is not None:
            return self._factory(callback)
        from bleak import BleakScanner  # imported here: replay and tests need no Bluetooth stack

        # DuplicateData: report every advertisement, not only changed ones; a
        # visitor standing still hears the same RSSI twice, and the engine
        # must not forget a beacon that is still there.
        bluez: dict[str, Any] = {"filters": {"DuplicateData": True}}
        if self.adapter:
            bluez["adapter"] = self.adapter
        return BleakScanner(detection_callback=callback, bluez=bluez)

    async def run(self, on_sighting: OnSighting, now: Callable[[], float] | None = None) -> None:
        parse = self.parser.parse

        loop = asyncio.get_running_loop()

        def callback(_device: Any, adv: Any) -> None:
            self.heard += 1
            self._last_heard = loop.time()
            beacon = parse(adv.manufacturer_data, adv.service_data, adv.rssi)
            if beacon is not None:
                on_sighting(beacon, adv.rssi)

        where = self.adapter or "the default adapter"
        delays = iter(self.backoff.delays())
        scanned = failing = False
        while True:
            scanner = self._scanner(callback)
            try:
                await scanner.start()
            except Exception as e:  # bleak, D-Bus and OS errors all mean "no adapter now"
                delay = next(delays)
                self.last_error = _explain(e, where)
                logger.warning(
                    "%s: %s; retrying in %g s. Check that the adapter is plugged in "
                    "and powered and that bluetoothd is running (systemctl status bluetooth).",
                    "Bluetooth adapter lost" if scanned else "No Bluetooth adapter",
                    self.last_error, delay)
                if not failing and self._on_radio is not None:
                    self._on_radio(False, self.last_error)
                failing = True
                await asyncio.sleep(delay)
                continue
            logger.log(logging.WARNING if failing else logging.INFO, "%s on %s",
                       "Bluetooth adapter back: scanning again" if scanned and failing else
                       "Bluetooth adapter found: scanning for beacons" if failing else
                       "scanning for beacons", where)
            if failing and self._on_radio is not None:
                self._on_radio(True, None)
            scanned, failing, delays = True, False, iter(self.backoff.delays())
            self.scanned = True
            try:
                await self._watch()
            finally:
                await _stop_quietly(scanner)
            self.restarts += 1

    async def _watch(self) -> None:
        """Return once the radio has been silent for `silence` seconds (to the
        moment: an adapter that is gone must be told to the device before the
        engine takes the silence for the visitor walking away)."""
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        while (wait := self._last_heard + self.silence - loop.time()) > 0:
            await asyncio.sleep(wait)
        logger.debug("no advertisements for %.0f s: restarting the scan", self.silence)


def _explain(e: BaseException, where: str) -> str:
    # bleak's errors carry (message, reason): the message is what a person reads
    text = (e.args[0] if e.args and isinstance(e.args[0], str) else str(e)).strip() or type(e).__name__
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError)):
        return f"cannot reach BlueZ over the system D-Bus ({text})"
    return f"cannot scan on {where} ({text})"


async def _stop_quietly(scanner: Any) -> None:
    try:
        await scanner.stop()
    except Exception as e:  # the adapter is gone: nothing left to stop
        logger.debug("stopping the scan: %s", e)


class ReplaySource:
    """Recorded sightings, delivered when the visit clock reaches their time.

    Rows are ``(t, beacon, rssi)`` in non-decreasing `t` (seconds of the visit,
    as in a scan log's rows for one visitor), read as they are delivered: an
    iterator (a scan log being read) is never held whole, however long the
    walk. Rows before the clock's value at start are skipped, so a device
    restarted mid-visit carries on where the recording is, not from its
    beginning; rows of the last `catch_up` seconds are delivered at once (a
    fresh engine knows no levels yet, and the row at t=0 must not be lost to
    the instant it takes to start). Rows naming a beacon outside `known` are
    skipped and counted (`skipped`, as they are read).

    >>> source = ReplaySource([(0.0, "dome-n", -71), (0.1, "dome-n", -70)], known={"dome-n"})
    """

    def __init__(self, rows: Iterable[tuple[float, str, int]], *, known: Iterable[str] | None = None,
                 catch_up: float = 1.0):
        self.catch_up = catch_up
        self.rows = rows
        self.known = None if known is None else set(known)
        self.skipped = 0
        self.delivered = 0

    async def run(self, on_sighting: OnSighting, now: Callable[[], float]) -> None:
        known = self.known
        start = now() - self.catch_up
        for t, beacon, rssi in self.rows:
            if known is not None and beacon not in known:
                self.skipped += 1
                continue
            if t < start:
                continue
            wait = t - now()
            if wait > 0:
                await asyncio.sleep(wait)
            on_sighting(beacon, rssi)
            self.delivered += 1
