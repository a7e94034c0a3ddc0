#!/usr/bin/env python3
"""Audio: how fast a track starts, how much memory a visit takes, how long decoding takes.

    .venv/bin/python benchmarks/bench_audio.py [--zones zones.yaml] [--lang en] [--dwell 1.0]

Everything plays through the real simpleaudio and libasound into ALSA's
`file` plugin (a temporary asoundrc; no sound card needed), and decodes
through the real ffmpeg. One run prints, side by side:

1. Trigger-to-first-sample latency, p50/p95 over every track of the site in
   one language (target p95 <= 50 ms with prefetch):
   - without prefetch: a player whose cache holds nothing, so each play()
     decodes on demand (the baseline);
   - with prefetch, as the device does it: at each exhibit in turn the
     player is told `likely_next(...)` (this exhibit and its 3 nearest, not
     yet heard), the visitor stands for `--dwell` seconds (shorter than the
     engine's default dwell of 5 s, so the figure errs on the slow side),
     then the track is started.
   Measured: from the play() call to simpleaudio's play_buffer returning, i.e.
   the first samples handed to ALSA (the writer thread is running and has the
   buffer; a sound card adds its own ~0.1 s buffer on top, identical in both).
2. Peak memory (VmHWM, the peak resident set) of a device-like run through the whole site in
   that language, in a fresh process: prefetch, dwell, play each track to its
   end, with the default cache budget (target <= 150 MB); beside it, the same
   process's RSS once the player is up and before the first track.
3. Decode time per minute of audio for each format (file extension) under
   the site's tracks_dir: guide.audio.decode (ffmpeg converts, streamed),
   beside pydub's own recipe (from_file, then set_channels(1),
   set_sample_width(2), set_frame_rate) with its peak memory and the longest
   stall a 1 ms ticker thread saw (the GIL held), on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guide.audio import DEFAULT_BUDGET, RATE, TrackCache, TrackLoader, audio_segment, decode, likely_next  # noqa: E402
from guide.player import Failed, SimpleaudioPlayer  # noqa: E402
from guide.zones import load_zones  # noqa: E402


def alsa_file_sink(folder: Path) -> None:
    """Point ALSA's default device at a file (overwritten by each play, so a
    whole visit does not fill the disk)."""
    config = folder / "asoundrc"
    config.write_text(f"""\
pcm.!default {{
    type file
    slave.pcm "nullsink"
    file "{folder / 'capture.raw'}"
    format "raw"
    truncate true
}}
pcm.nullsink {{ type null }}
""")
    os.environ["ALSA_CONFIG_PATH"] = str(config)


def tracks_of(site, lang: str) -> list[tuple[str, Path]]:
    out = []
    for exhibit in site.exhibits:
        found = site.track_for(exhibit.id, lang)
        if found is not None:
            out.append((exhibit.id, site.track_path(found[1])))
    return out


def play_through(player, path: Path, events: queue.Queue) -> None:
    player.play(path)
    event = events.get(timeout=120)
    if isinstance(event, Failed):
        raise SystemExit(f"bench_audio: {event.message}")


def latencies(site, lang: str, dwell: float) -> tuple[list[float], list[float]]:
    visit = tracks_of(site, lang)
    # Without prefetch: a cache of 0 bytes keeps nothing, every play decodes.
    cold: list[float] = []
    events: queue.Queue = queue.Queue()
    loader = TrackLoader(TrackCache(budget=0))
    with SimpleaudioPlayer(events.put, loader=loader, on_started=lambda p, s: cold.append(s)) as player:
        for _, path in visit:
            play_through(player, path, events)
    loader.close()
    # With prefetch, as the device does it.
    warm: list[float] = []
    events = queue.Queue()
    with SimpleaudioPlayer(events.put, on_started=lambda p, s: warm.append(s)) as player:
        heard: set[str] = set()
        for exhibit_id, path in visit:
            player.prefetch(likely_next(site, exhibit_id, lang, skip=heard))
            time.sleep(dwell)
            play_through(player, path, events)
            heard.add(exhibit_id)
    return cold, warm


def device_run(zones: str, lang: str, dwell: float) -> dict:
    """The memory figure, measured in this (fresh) process."""
    site = load_zones(zones)
    events: queue.Queue = queue.Queue()
    with SimpleaudioPlayer(events.put) as player:
        ready_rss = rss_now()
        heard: set[str] = set()
        for exhibit_id, path in tracks_of(site, lang):
            player.prefetch(likely_next(site, exhibit_id, lang, skip=heard))
            time.sleep(dwell)
            play_through(player, path, events)
            heard.add(exhibit_id)
        cached = player.loader.cache.bytes
    return {"peak_mb": proc_status("VmHWM"), "ready_mb": ready_rss, "cached_mb": cached / 2**20, "tracks": len(heard)}


def proc_status(field: str) -> float:
    """A memory figure of this process in MB: VmRSS (now) or VmHWM (its peak).
    Not ru_maxrss: a child made by fork and exec inherits its parent's."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_now() -> float:
    return proc_status("VmRSS")


class Ticker:
    """A thread that wants to run every 1 ms; the longest gap it sees is the
    longest time another thread kept it from running (the GIL)."""

    def __enter__(self) -> Ticker:
        self.gap, self._stop = 0.0, False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop:
            time.sleep(0.001)
            now = time.perf_counter()
            self.gap, last = max(self.gap, now - last), now

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()


def pydub_recipe(path: Path):
    seg = audio_segment().from_file(str(path))
    return seg.set_channels(1).set_sample_width(2).set_frame_rate(RATE)


def decode_figures(files: list[Path], how) -> tuple[float, float]:
    """(seconds of decoding per minute of audio, longest ticker gap in ms) for
    decoding `files` one after the other with `how`."""
    seconds = audio = 0.0
    with Ticker() as ticker:
        for path in files:
            t0 = time.perf_counter()
            result = how(path)
            seconds += time.perf_counter() - t0
            audio += len(result.raw_data if hasattr(result, "raw_data") else result.samples) / (2 * RATE)
            del result
    return seconds / (audio / 60), ticker.gap * 1000


def decode_run(how_name: str, files: list[str]) -> dict:
    """Decode figures measured in this (fresh) process, memory included."""
    how = decode if how_name == "guide" else pydub_recipe
    base = rss_now()
    per_minute, gap = decode_figures([Path(f) for f in files], how)
    return {"per_minute": per_minute, "gap_ms": gap, "peak_extra_mb": proc_status("VmHWM") - base}


def in_fresh_process(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False,
                         env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"bench_audio: the measuring process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zones", default=str(ROOT / "zones.yaml"))
    ap.add_argument("--lang", default="en")
    ap.add_argument("--dwell", type=float, default=1.0, help="seconds at each exhibit before its track starts")
    ap.add_argument("--device-run", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--decode-run", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.device_run:
        print(json.dumps(device_run(args.zones, args.lang, args.dwell)))
        return
    if args.decode_run:
        print(json.dumps(decode_run(args.decode_run[0], args.decode_run[1:])))
        return

    with tempfile.TemporaryDirectory() as tmp:
        alsa_file_sink(Path(tmp))
        site = load_zones(args.zones)
        n = len(tracks_of(site, args.lang))
        print(f"bench_audio: {site.name}, {n} tracks in {args.lang}, output {RATE} Hz 16-bit mono, "
              f"cache budget {DEFAULT_BUDGET / 2**20:.0f} MB, dwell {args.dwell:g} s, {os.cpu_count()} CPUs",
              flush=True)

        cold, warm = latencies(site, args.lang, args.dwell)
        print("\n1. Trigger-to-first-sample latency (play() -> simpleaudio.play_buffer returned), ms")
        print(f"   {'':28}{'p50':>8}{'p95':>8}{'max':>8}{'n':>5}")
        for name, xs in (("without prefetch (decode)", cold), ("with prefetch (device)", warm)):
            ms = [x * 1000 for x in xs]
            print(f"   {name:28}{pct(ms, .5):8.1f}{pct(ms, .95):8.1f}{max(ms):8.1f}{len(ms):5d}")
        print(f"   target: p95 <= 50 ms with prefetch: {'met' if pct(warm, .95) <= 0.050 else 'NOT met'}")

        mem = in_fresh_process("--device-run", "--zones", args.zones, "--lang", args.lang,
                               "--dwell", str(args.dwell))
        print(f"\n2. Memory of a device-like run through all {mem['tracks']} exhibits in {args.lang} "
              "(fresh process, real simpleaudio into ALSA's file sink)")
        print(f"   RSS with the player up, before the first track {mem['ready_mb']:8.1f} MB")
        print(f"   peak RSS over the whole visit                  {mem['peak_mb']:8.1f} MB"
              f"   (cache holding {mem['cached_mb']:.1f} MB at the end)")
        print(f"   target: peak <= 150 MB: {'met' if mem['peak_mb'] <= 150 else 'NOT met'}")

        by_format: dict[str, list[str]] = defaultdict(list)
        for path in sorted(site.tracks_dir.rglob("*")):
            if path.is_file() and path.suffix.lower() in {".opus", ".ogg", ".oga", ".mp3", ".flac", ".wav", ".m4a"}:
                by_format[path.suffix.lower()].append(str(path))
        print(f"\n3. Decoding, each format under {site.tracks_dir} (fresh process per row, files one after another)")
        print(f"   {'format':8}{'files':>6}  {'':30}{'s per min of audio':>19}{'GIL stall':>11}{'peak +MB':>10}")
        for ext, files in sorted(by_format.items()):
            for label, how in (("guide.audio.decode (ffmpeg)", "guide"),
                               ("pydub from_file + set_*", "pydub")):
                r = in_fresh_process("--decode-run", how, *files)
                print(f"   {ext:8}{len(files):6d}  {label:30}{r['per_minute']:19.3f}{r['gap_ms']:9.1f} ms"
                      f"{r['peak_extra_mb']:10.1f}")


if __name__ == "__main__":
    main()
