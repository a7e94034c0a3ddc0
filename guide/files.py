"""Replacing a file whole: the one way the guide rewrites a file in place.

    replace_whole(Path("walks.csv"), (line.encode() for line in lines))
    replace_whole(Path("state.json"), [data], durable=True); sync_folder(Path("state.json"))
    with replacing(Path("visit.wav")) as tmp: write_wav(tmp)

The new content is written beside the file and renamed over it, so at any
instant the file holds its old content or the new one in full, and a failure
leaves no temporary file behind. A file replaced keeps its permissions; a new
one is readable by all (0644), not the temporary file's private 0600.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` for the new content, written by the
    block (by any means: a stream, a library given a file name). When the
    block ends without an error it is renamed over `path`; otherwise it is
    removed and `path` is as it was."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if path.is_file():
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_whole(path: Path, chunks: Iterable[bytes], *, durable: bool = False) -> None:
    """Replace `path` by the concatenated `chunks`. With `durable`, the bytes
    are on disk before the rename (`sync_folder` then makes the rename itself
    survive a power cut). OSError (the old content left as it was) if it cannot."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        if durable:
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them


def sync_folder(path: Path) -> None:
    """fsync the folder of `path`, so that a rename into it survives a power cut."""
    dir_fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
