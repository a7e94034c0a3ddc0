"""Fixtures shared by every test file. Keep this small: a fixture used by one
file belongs in that file."""

from __future__ import annotations

import math
import os
import shutil
import struct
import wave
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# In CI every property test draws the same examples on every run (derandomize),
# so a build passes or fails on the code, not on the draw; a developer's run
# still explores new examples (and remembers failing ones in .hypothesis/).
# Loaded here, before the test modules build their own settings from it.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared/ folder (FORMATS.md, sample data), which sits
    beside the repository in every checkout and in CI. GUIDE_SHARED_DIR
    points elsewhere when it does not."""
    path = Path(os.environ.get("GUIDE_SHARED_DIR", REPO.parent / "shared"))
    if not (path / "FORMATS.md").is_file():
        pytest.fail(f"shared/ not found at {path}: it must sit beside the repository "
                    f"({REPO}), or set GUIDE_SHARED_DIR to its path", pytrace=False)
    return path


MakeWav = Callable[..., Path]


@pytest.fixture
def make_wav() -> MakeWav:
    """make_wav(path, seconds, rate=8000, tone=None): write a 16-bit mono WAV,
    silent, or a sine of `tone` Hz at half scale; parent folders are created.

        make_wav(tmp_path / "tracks/fr/dome.wav", 2.0)
    """

    def make(path: str | os.PathLike[str], seconds: float, rate: int = 8000,
             tone: float | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        n = round(seconds * rate)
        if tone is None:
            frames = bytes(2 * n)
        else:
            frames = struct.pack(f"<{n}h", *(
                round(16383 * math.sin(2 * math.pi * tone * i / rate)) for i in range(n)))
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(frames)
        return path

    return make


@pytest.fixture
def unprivileged() -> Callable[..., list[str]]:
    """unprivileged(*command): `command`, run so that file permissions apply
    (as root they would not); skips the test when that cannot be arranged."""
    def wrap(*command: str) -> list[str]:
        if os.geteuid() != 0:
            return list(command)
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    return wrap
