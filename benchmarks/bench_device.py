#!/usr/bin/env python3
"""The device's radio path: CPU per second of visit, and start latency.

    .venv/bin/python benchmarks/bench_device.py [--seconds 1200] [--laps 1]

A synthetic site of 20 exhibits in a row, 4 m apart, one iBeacon each, every
beacon heard at 10 Hz (200 advertisements a second, the brief's worst case),
RSSI from a path-loss law with 4 dB of noise, for a visitor walking past
each exhibit in turn and stopping at each.

1. CPU, in virtual time, one run of each on the same advertisements:
   - parsing alone (raw manufacturer data -> beacon id), the baseline;
   - parsing and the engine (observe, tick at its deadlines, tracks ending);
   as a share of one core per second of visit (target <= 2 %).
2. Latency, in real time through the real `Device` (durable event log, state
   saved after each action, the engine woken by the loop's timer): from the
   moment a start is due (the advertisement that completes the dwell arrives,
   or the engine's deadline falls due) to the player's start call (target
   p95 <= 20 ms). The device process's whole CPU share is printed beside it.
3. For reference, the receive path the targets leave out: bleak's BlueZ
   backend and dbus_fast decoding each advertisement's PropertiesChanged,
   measured in this process while another process has a mock BlueZ
   (python-dbusmock, tests/bluez_mock.py) send 20 beacons at 10 Hz. Skipped
   when python-dbusmock or dbus-daemon is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guide.actions import Start  # noqa: E402
from guide.ble import APPLE, BeaconParser, ibeacon_payload  # noqa: E402
from guide.device import Device  # noqa: E402
from guide.engine import Engine  # noqa: E402
from guide.zones import load_zones  # noqa: E402

N = 20  # beacons
RATE = 10.0  # Hz per beacon
SPACING = 4.0  # m between exhibits
UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def make_site(folder: Path, track_seconds: float, trigger: str):
    for i in range(N):
        with wave.open(str(folder / f"e{i:02d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(bytes(2 * int(8000 * track_seconds)))
    lines = ["site: Bench hall", "languages: [en]", "tracks_dir: .", f"trigger: {trigger}", "beacons:"]
    for i in range(N):
        lines += [f"  b{i:02d}:", f"    ibeacon: {{uuid: {UUID}, major: 1, minor: {i + 1}}}",
                  "    tx_power: -59", f"    x: {i * SPACING}", "    y: 1.0"]
    lines.append("exhibits:")
    for i in range(N):
        lines.append(f"  - {{id: e{i:02d}, title: {{en: Exhibit {i}}}, beacon: b{i:02d}, "
                     f"radius: 1.5, tracks: {{en: e{i:02d}.wav}}, x: {i * SPACING}, y: 0.0}}")
    (folder / "zones.yaml").write_text("\n".join(lines) + "\n")
    return load_zones(folder / "zones.yaml")


def advertisements(site, seconds: float, stop_s: float, walk_s: float, seed: int = 1):
    """(t, manufacturer_data, service_data, rssi), time-ordered, every beacon at
    RATE Hz: the visitor stops `stop_s` at each exhibit, walks `walk_s` between."""
    rng = random.Random(seed)
    payload = {b.id: {APPLE: ibeacon_payload(b.ident)} for b in site.beacons.values()}
    xs = {b.id: b.x for b in site.beacons.values()}
    period = stop_s + walk_s

    def position(t: float) -> float:
        lap = t % (period * N)
        k, into = divmod(lap, period)
        return k * SPACING + max(0.0, into - stop_s) / walk_s * SPACING

    phases = {b: rng.random() / RATE for b in payload}
    ads = []
    for beacon, phase in phases.items():
        t = phase
        while t < seconds:
            d = math.hypot(position(t) - xs[beacon], 1.0)
            rssi = round(-59 - 20 * math.log10(d) + rng.gauss(0, 4))
            ads.append((t, payload[beacon], {}, max(-127, min(-1, rssi))))
            t += 1 / RATE + rng.uniform(-0.005, 0.005)
    ads.sort(key=lambda a: a[0])
    return ads


def cpu_parse(site, ads) -> float:
    parser = BeaconParser(site.beacons)
    parse = parser.parse
    t0 = time.process_time()
    for _, m, s, r in ads:
        parse(m, s, r)
    return time.process_time() - t0


def cpu_parse_engine(site, ads, durations: dict[str, float]) -> tuple[float, int]:
    parser = BeaconParser(site.beacons)
    parse = parser.parse
    engine = Engine(site, "en")
    starts = 0
    ends_at = math.inf
    t0 = time.process_time()
    for t, m, s, r in ads:
        deadline = engine.next_deadline()
        while deadline is not None and deadline <= t or ends_at <= t:
            if ends_at <= t and (deadline is None or ends_at <= deadline):
                actions, ends_at = engine.finished(ends_at), math.inf
            else:
                actions = engine.tick(deadline)
            for a in actions:
                if isinstance(a, Start):
                    starts += 1
                    ends_at = t + durations[a.track]
            deadline = engine.next_deadline()
        beacon = parse(m, s, r)
        if beacon is not None:
            for a in engine.observe(beacon, r, t):
                if isinstance(a, Start):
                    starts += 1
                    ends_at = t + durations[a.track]
    return time.process_time() - t0, starts


class BenchPlayer:
    """The Player protocol, timing the start calls; a track 'ends' on a timer
    thread after its length, so Finished crosses threads as a real one does."""

    def __init__(self, on_event, lengths: dict[Path, float], device_ref: list):
        self.on_event, self.lengths, self.device_ref = on_event, lengths, device_ref
        self.latencies: list[float] = []
        self._timer: threading.Timer | None = None
        self.volume = 1.0

    def play(self, path, *, offset=0.0):
        called = time.monotonic()
        due = self.device_ref[0].due
        if due is not None:
            self.latencies.append(called - due)
        self.stop()
        from guide.player import Finished
        self._timer = threading.Timer(self.lengths[Path(path)] - offset, self.on_event, [Finished(path=Path(path))])
        self._timer.daemon = True
        self._timer.start()

    def stop(self, *, fade=0.0):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause(self): ...
    def resume(self): ...
    def set_volume(self, v): self.volume = v
    def position(self): return None
    def prefetch(self, paths): ...
    def close(self): self.stop()


class TimedDevice(Device):
    """Notes when each input became due, on the loop's monotonic clock."""

    due: float | None = None

    def _on_sighting(self, beacon, rssi):
        self.due = self.arrival  # set by the source just before
        super()._on_sighting(beacon, rssi)
        self.due = None

    def _on_deadline(self):
        self.due = self._origin + self._deadline  # when the timer was meant to fire
        super()._on_deadline()
        self.due = None


class RawReplay:
    """A Source of raw advertisements at their times, through the parser:
    the bleak callback's work, fed by a clock instead of a radio."""

    def __init__(self, parser, ads, device: TimedDevice):
        self.parser, self.ads, self.device = parser, ads, device

    async def run(self, on_sighting, now):
        loop = asyncio.get_running_loop()
        origin = loop.time() - now()
        parse = self.parser.parse
        for t, m, s, r in self.ads:
            wait = t - now()
            if wait > 0:
                await asyncio.sleep(wait)
            beacon = parse(m, s, r)
            if beacon is not None:
                self.device.arrival = origin + t  # when this advertisement was sent
                on_sighting(beacon, r)


def latency_run(folder: Path, site, ads, lengths) -> tuple[list[float], float, float]:
    ref: list = [None]
    device = TimedDevice(site, lang="en", log_path=folder / "events.jsonl", new_visit=True,
                         make_player=lambda cb: BenchPlayer(cb, lengths, ref))
    ref[0] = device
    source = RawReplay(BeaconParser(site.beacons), ads, device)

    async def main():
        await device.run(source)

    wall0, cpu0 = time.monotonic(), time.process_time()
    asyncio.run(main())
    return device.player.latencies, time.monotonic() - wall0, time.process_time() - cpu0


DRIVER = """
import sys, time, dbus
bus = dbus.bus.BusConnection(sys.argv[1])
paths, seconds, rate = sys.argv[4:], float(sys.argv[2]), float(sys.argv[3])
mocks = [dbus.Interface(bus.get_object("org.bluez", p), "org.freedesktop.DBus.Mock") for p in paths]
t0 = time.monotonic()
k = 0
while time.monotonic() - t0 < seconds:
    for i, m in enumerate(mocks):
        m.UpdateProperties("org.bluez.Device1", {"RSSI": dbus.Int16(-60 - (k + i) % 20)})
    k += 1
    time.sleep(max(0.0, t0 + k / rate - time.monotonic()))
print(k * len(mocks))
"""


def bleak_run(site, seconds: float) -> tuple[int, int, float, float] | None:
    """(advertisements sent, sightings received, wall s, CPU s of this process)."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from bluez_mock import MockBlueZ, available
    except ImportError:
        return None
    if not available():
        return None
    import os
    import subprocess

    from guide.ble import BleakSource

    with MockBlueZ() as bluez:
        bluez.add_adapter("hci0")
        paths = [bluez.add_beacon(f"AA:BB:CC:DD:{i // 256:02X}:{i % 256:02X}", b.ident).path
                 for i, b in enumerate(site.beacons.values())]
        got = [0]
        source = BleakSource(BeaconParser(site.beacons), silence=60)

        async def main():
            task = asyncio.ensure_future(source.run(lambda b, r: got.__setitem__(0, got[0] + 1)))
            await asyncio.sleep(0.5)  # scanning
            wall0, cpu0 = time.monotonic(), time.process_time()
            driver = await asyncio.create_subprocess_exec(
                sys.executable, "-c", DRIVER, os.environ["DBUS_SYSTEM_BUS_ADDRESS"], str(seconds),
                str(RATE), *paths, stdout=subprocess.PIPE)
            out, _ = await driver.communicate()
            await asyncio.sleep(0.2)  # the last ones in flight
            wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return int(out), wall, cpu

        sent, wall, cpu = asyncio.run(main())
    return sent, got[0], wall, cpu


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1200.0, help="virtual visit length for the CPU part")
    ap.add_argument("--laps", type=int, default=1, help="laps of the 20 exhibits for the latency part (0: skip it)")
    ap.add_argument("--bleak-seconds", type=float, default=10.0, help="length of the bleak measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        site = make_site(folder, track_seconds=20.0, trigger="{dwell: 4.0}")
        durations = {e.tracks["en"]: 20.0 for e in site.exhibits}
        ads = advertisements(site, args.seconds, stop_s=40.0, walk_s=4.0)
        n = len(ads)
        parse_s = min(cpu_parse(site, ads) for _ in range(3))
        runs = [cpu_parse_engine(site, ads, durations) for _ in range(3)]
        both_s, starts = min(r[0] for r in runs), runs[0][1]
        print(f"CPU, {N} beacons x {RATE:.0f} Hz, {args.seconds:.0f} s of visit, {n} advertisements, "
              f"{starts} starts (target <= 2 % of one core):")
        print(f"  parsing alone          {100 * parse_s / args.seconds:6.3f} % of one core "
              f"({1e6 * parse_s / n:5.2f} us per advertisement)")
        print(f"  parsing + engine       {100 * both_s / args.seconds:6.3f} % of one core "
              f"({1e6 * both_s / n:5.2f} us per advertisement)")

        measured = bleak_run(site, args.bleak_seconds)
        if measured is None:
            print("bleak + D-Bus: skipped (needs python-dbusmock and dbus-daemon)")
        else:
            sent, received, wall, cpu = measured
            print(f"For reference, the whole receive path: bleak + D-Bus + parsing (mock BlueZ in "
                  f"another process), {wall:.0f} s:")
            print(f"  {sent / wall:5.0f} advertisements/s sent, {received} of {sent} received, "
                  f"{100 * cpu / wall:5.2f} % of one core ({1e6 * cpu / max(1, received):5.0f} us per "
                  "advertisement)")

        if args.laps < 1:
            return
        live = folder / "live"
        live.mkdir()
        site = make_site(live, track_seconds=1.5, trigger="{dwell: 0.5, smoothing: 0.3, glance: 1.0, replay_heard: true}")
        lengths = {site.track_path(e.tracks["en"]): 1.5 for e in site.exhibits}
        seconds = args.laps * N * 3.5
        ads = advertisements(site, seconds, stop_s=3.0, walk_s=0.5, seed=2)
        latencies, wall, cpu = latency_run(live, site, ads, lengths)
        ms = [1000 * x for x in latencies]
        print(f"Latency, start due -> player's start call, real Device in real time, {wall:.0f} s, "
              f"{len(ms)} starts (target p95 <= 20 ms):")
        if ms:
            print(f"  p50 {statistics.median(ms):6.2f} ms   p95 {pct(ms, 0.95):6.2f} ms   "
                  f"max {max(ms):6.2f} ms")
        print(f"  the device process meanwhile: {100 * cpu / wall:5.2f} % of one core "
              "(loop, replay timers, durable log and state, parsing, engine)")


if __name__ == "__main__":
    main()
