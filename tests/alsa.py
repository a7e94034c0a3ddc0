"""ALSA's default device as a file, for tests that play through the real
simpleaudio and libasound on a machine without a sound card.

    with file_sink(tmp_path) as sink:           # each play lands in its own file
        play_something()
        sink.plays()                            # [int16 array, ...] one per simpleaudio play

    with file_sink(tmp_path, realtime=True) as sink:   # consumed at the sample rate
        ...
        sink.samples()                          # everything heard so far, in order

How: a temporary asoundrc whose default PCM is ALSA's `file` plugin over a
`null` slave, named by ALSA_CONFIG_PATH (libasound re-reads it when it
changes, so each test has its own). The null slave does not keep time: a
minute "plays" in milliseconds. For a sink that does, the file is a FIFO
read at the sample rate by a thread here, through a pipe shrunk to one page,
so the player gets at most about 0.2 s ahead of the "ear", as with a sound
card. (A pipe to `ffmpeg -re` keeps time too, but buffers 1.5 to 3.5 s ahead,
far more than any sound card does.)
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from guide.audio import BYTES_PER_SECOND

F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in Python 3.10+ on Linux only


def _asoundrc(path: Path, capture: Path, *, truncate: bool) -> None:
    path.write_text(f"""\
pcm.!default {{
    type file
    slave.pcm "nullsink"
    file "{capture}"
    format "raw"
    truncate {"true" if truncate else "false"}
}}
pcm.nullsink {{ type null }}
""")


class Sink:
    """What went into ALSA's default device during a `file_sink` block."""

    def __init__(self, capture: Path):
        self.capture = capture

    def plays(self) -> list[np.ndarray]:
        """One int16 array per PCM opened (each simpleaudio play), in order.
        ALSA's file plugin writes `capture`, then `capture.0001`, ... when it
        may not truncate; empty ones (an opened, unused device) are skipped."""
        files = sorted(self.capture.parent.glob(self.capture.name + "*"),
                       key=lambda p: int(p.name[len(self.capture.name) + 1:] or 0))
        return [a for a in (np.fromfile(f, dtype="<i2") for f in files) if len(a)]

    def samples(self) -> np.ndarray:
        """All samples received, in order."""
        plays = self.plays()
        return np.concatenate(plays) if plays else np.zeros(0, dtype="<i2")


class RealtimeSink(Sink):
    """A FIFO drained at the sample rate. Plays arrive concatenated; a gap
    (nothing to read for a while) starts a new burst."""

    BLOCK = BYTES_PER_SECOND // 100  # 10 ms

    def __init__(self, fifo: Path):
        super().__init__(fifo)
        os.mkfifo(fifo)
        # Open and shrink the pipe before any writer exists: nothing can be in it yet.
        self._fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        fcntl.fcntl(self._fd, F_SETPIPE_SZ, 4096)
        self._keep = os.open(fifo, os.O_WRONLY)  # no EOF between plays
        os.set_blocking(self._fd, True)
        self._bursts: list[bytearray] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="alsa-realtime-sink", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        base, consumed = 0.0, 0
        while True:
            data = os.read(self._fd, self.BLOCK)
            if not data:
                return
            now = time.monotonic()
            with self._lock:
                if not self._bursts or now > base + consumed / BYTES_PER_SECOND + 0.05:
                    base, consumed = now, 0  # it ran dry: a new burst, on a new time base
                    self._bursts.append(bytearray())
                self._bursts[-1].extend(data)
            consumed += len(data)
            time.sleep(max(0.0, base + consumed / BYTES_PER_SECOND - time.monotonic()))

    def plays(self) -> list[np.ndarray]:
        """One int16 array per burst of sound (plays separated by a gap)."""
        with self._lock:
            return [np.frombuffer(bytes(b[:len(b) & ~1]), dtype="<i2") for b in self._bursts]

    def close(self) -> None:
        os.close(self._keep)  # the reader sees EOF once no player holds the FIFO
        self._thread.join(timeout=5)
        os.close(self._fd)


@contextmanager
def file_sink(directory: Path, *, realtime: bool = False) -> Iterator[Sink]:
    """Point ALSA's default device at a capture in `directory` for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "asoundrc"
    saved = os.environ.get("ALSA_CONFIG_PATH")
    sink: Sink
    if realtime:
        sink = RealtimeSink(directory / "capture.fifo")
        _asoundrc(config, sink.capture, truncate=True)  # a FIFO is opened, never created
    else:
        sink = Sink(directory / "capture.raw")
        _asoundrc(config, sink.capture, truncate=False)
    os.environ["ALSA_CONFIG_PATH"] = str(config)
    try:
        yield sink
    finally:
        if saved is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = saved
        if isinstance(sink, RealtimeSink):
            sink.close()


@contextmanager
def no_device(directory: Path) -> Iterator[None]:
    """An ALSA configuration without any default device, for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "asoundrc-empty"
    config.write_text("pcm.nothing { type null }\n")  # no pcm.default at all
    saved = os.environ.get("ALSA_CONFIG_PATH")
    os.environ["ALSA_CONFIG_PATH"] = str(config)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = saved
