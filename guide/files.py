"""Replacing a file whole: the one way the guide rewrites a file in place.

    replace_whole(Path("walks.csv"), (line.encode() for line in lines))
    replace_whole(Path("state.json"), [data], durable=True); sync_folder(Path("state.json"))
    with replacing(Path("visit.wav")) as tmp: write_wav(tmp)
    with temporary(Path("zones.yaml")) as tmp: check(tmp)   # a scratch copy beside it

The new content is written beside the file and renamed over it, so at any
instant the file holds its old content or the new one in full, and a failure
leaves no temporary file behind. A file replaced keeps its permissions; a new
one is readable by all (0644), not the temporary file's private 0600.

A process killed mid-write (SIGKILL, a power cut) cannot remove its
temporary file, `.NAME.XXXXXXXX.tmp`. Each writer holds an exclusive flock on
its temporary for as long as it uses it, and the next write of NAME removes
the temporaries beside it that it can lock: their writers are dead (the
kernel drops a dead process's locks), while a live writer's is left alone.

One writer of a file at a time: `lock` flocks an open file without waiting
(GuideError naming the process that holds it), and `hold` does so for a file
that is replaced whole (whose inode changes at each replace) through a lock
file beside it, `.NAME.lock`, removed by `release`.

    fd = hold(Path("state.json"), option="--state"); ...; release(Path("state.json"), fd)
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from guide.errors import GuideError

_RANDOM = "[a-z0-9_]{8}"  # what tempfile.mkstemp puts between the prefix and the suffix


@contextmanager
def temporary(path: Path) -> Iterator[Path]:
    """A new empty file beside `path`, `.NAME.XXXXXXXX.tmp` (private: 0600),
    locked for the block and removed after it unless the block renamed it
    away. Temporaries that dead writers left beside `path` are removed first
    (`sweep_temporaries`). OSError if it cannot be made."""
    sweep_temporaries(path)
    while True:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweeper looks at it
        except OSError:
            pass  # a file system without locks: no sweeper can lock it either, so none removes it
        if _is(name, os.fstat(fd)):
            break
        os.close(fd)  # a sweeper removed it in the instant before the lock: make another
    tmp = Path(name)
    try:
        yield tmp
    finally:
        try:
            tmp.unlink(missing_ok=True)
        finally:
            os.close(fd)  # the lock goes last: until then no sweeper can take the name


def sweep_temporaries(path: Path) -> None:
    """Remove the temporaries of `path` (files named exactly as `temporary`
    names them, beside it) whose writers are dead: those nobody holds locked.
    A live writer's, links, folders and anything unreadable are left alone;
    so is everything when the folder cannot be listed."""
    mine = re.compile(re.escape(f".{path.name}.") + _RANDOM + re.escape(".tmp"))
    try:
        names = [n for n in os.listdir(path.parent) if mine.fullmatch(n)]
    except OSError:
        return
    for name in names:
        leftover = path.parent / name
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # gone already, a link, or not ours to read
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it (or locks are not supported: no telling)
            if _is(leftover, os.fstat(fd)):  # still the file locked, not a new one by that name
                os.unlink(leftover)
        except OSError:
            pass  # a read-only folder: the write that follows says so
        finally:
            os.close(fd)


def _is(name: str | os.PathLike, st: os.stat_result) -> bool:
    """Whether `name` is (still) the file `st` describes."""
    try:
        now = os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` for the new content, written by the
    block (by any means: a stream, a library given a file name). When the
    block ends without an error it is renamed over `path`; otherwise it is
    removed and `path` is as it was. Temporaries a killed writer of `path`
    left are removed first (`temporary`)."""
    with temporary(path) as tmp:
        yield tmp
        if path.is_file():
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)


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


def lock(fd: int, path: Path, how: int, *, option: str) -> None:
    """flock `fd` (LOCK_EX to write, LOCK_SH to read), the open file of
    `path`, without waiting; GuideError naming the process that holds it if
    another does, and the `option` that names `path`. A kernel drops a
    process's locks when it dies, however it dies."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = holder(fd)
        who = "another guide run" + (f" (pid {pid})" if pid else "")
        raise GuideError(f"{who} is writing {path}; stop it, or give another {option} path") from None
    except OSError:
        pass  # a file system without locks (some network shares): nothing to check with


def holder(fd: int) -> int | None:
    """The process holding a flock on the file of `fd`, from /proc/locks
    (Linux); None if it cannot be told."""
    st = os.fstat(fd)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            rows = [line.split() for line in f]
    except OSError:
        return None
    for row in rows:  # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2367502 0 EOF"; a waiter's has "->"
        if len(row) >= 6 and row[1] == "FLOCK" and row[5] == device and row[4].isdigit() and int(row[4]) > 0:
            return int(row[4])
    return None


def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def hold(path: Path, *, option: str) -> int:
    """Become the one writer of `path`, a file replaced whole: an exclusive
    flock on its lock file `.NAME.lock` beside it (made if need be), held
    until `release` (or the process ends). Returns the lock file's descriptor.
    GuideError naming the process that holds it if another does (`lock`);
    OSError if the lock file cannot be made."""
    lock_file = _lock_file(path)
    while True:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            lock(fd, path, fcntl.LOCK_EX, option=option)
        except BaseException:
            os.close(fd)
            raise
        if _is(lock_file, os.fstat(fd)):
            return fd
        os.close(fd)  # its holder released and removed it the instant before: lock the new one


def release(path: Path, fd: int) -> None:
    """Stop being the writer of `path` (`hold`): the lock file is removed,
    then unlocked, so whoever opened it meanwhile sees it gone and makes another."""
    lock_file = _lock_file(path)
    try:
        if _is(lock_file, os.fstat(fd)):
            os.unlink(lock_file)
    except OSError:
        pass  # a read-only folder: the lock file stays, empty and unlocked, and is used again
    finally:
        os.close(fd)


def append_whole(fd: int, data: bytes, good: int) -> int:
    """Append `data` to the file of `fd` (opened to write), whose
    first `good` bytes are its whole content (whole lines), and return the new
    end. A write cut short (a full disk, a file size limit) is taken back out:
    the file ends at `good` again and the OSError is raised, so what follows
    never joins half a line. Should even that cut fail, the next append makes
    it first (or writes nothing). The caller fsyncs if it must."""
    if os.fstat(fd).st_size != good:  # an earlier append failed and could not be taken back
        os.ftruncate(fd, good)
    try:
        view, end = memoryview(data), good
        while view:
            n = os.pwrite(fd, view, end)  # at the end, whether or not the file was opened to append
            view, end = view[n:], end + n
    except BaseException:
        try:
            os.ftruncate(fd, good)
        except OSError:
            pass  # the next append cuts it
        raise
    return good + len(data)
