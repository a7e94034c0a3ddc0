"""Replacing a file whole, and the temporary files a killed writer leaves:
the next write of the same file removes them, never one a live writer uses."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from guide.files import replace_whole, replacing, sweep_temporaries, temporary

REPO = Path(__file__).resolve().parents[1]

# a writer in a process of its own: it stops inside `replacing` until told to go on
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from guide.files import replacing
    with replacing(Path(sys.argv[1])) as tmp:
        tmp.write_text("from the other writer\\n")
        print(tmp, flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)
""")


def writer(path: Path) -> tuple[subprocess.Popen, Path]:
    """A process stopped in the middle of replacing `path`, and its temporary."""
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return p, Path(p.stdout.readline().strip())


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_the_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "walks.csv"
    path.write_text("old\n")
    p, tmp = writer(path)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert tmp.exists() and tmp.name.startswith(".walks.csv.")  # what a kill leaves behind
    replace_whole(path, [b"new\n"])
    assert path.read_text() == "new\n" and temporaries(tmp_path) == []


def test_the_temporary_of_a_live_writer_is_left_alone_and_its_write_completes(tmp_path):
    path = tmp_path / "walks.csv"
    p, tmp = writer(path)
    try:
        replace_whole(path, [b"mine\n"])
        assert temporaries(tmp_path) == [tmp.name] and tmp.read_text() == "from the other writer\n"
        assert path.read_text() == "mine\n"
    finally:
        p.communicate("")  # it goes on, and replaces the file in turn
    assert p.returncode == 0
    assert path.read_text() == "from the other writer\n" and temporaries(tmp_path) == []


def test_only_unlocked_regular_files_named_as_a_temporary_of_that_file_are_removed(tmp_path):
    path = tmp_path / "state.json"
    stale = [".state.json.abcd_123.tmp", ".state.json.z9y8x7w6.tmp"]
    kept = [".state.json.abc123.tmp",  # not mkstemp's 8 characters
            ".state.json.abcd_123.tmp.bak", "state.json.abcd_123.tmp", ".other.json.abcd_123.tmp",
            ".state.json.ABCD_123.tmp", "notes.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".state.json.folder12.tmp").mkdir()
    (tmp_path / ".state.json.linkxxxx.tmp").symlink_to(tmp_path / "notes.tmp")
    held = tmp_path / ".state.json.held1234.tmp"  # a writer in this process: an open, locked file
    with open(held, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        sweep_temporaries(path)
        assert held.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        kept + [".state.json.folder12.tmp", ".state.json.linkxxxx.tmp", held.name])
    assert (tmp_path / "notes.tmp").read_text() == "x"  # a link's target is not touched


def test_a_temporary_removed_by_a_sweeper_before_its_writer_locked_it_is_made_again(tmp_path, monkeypatch):
    """The instant between creating a temporary and locking it: a sweeper
    that takes it then removes it, and the writer must notice, not write into
    a file that no longer has a name."""
    path = tmp_path / "visit.wav"
    made = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp_then_sweep(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            sweep_temporaries(path)  # another process's write of the same file, just then
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_sweep)
    with replacing(path) as tmp:
        tmp.write_bytes(b"RIFF")
    assert len(made) == 2 and not Path(made[0]).exists()
    assert path.read_bytes() == b"RIFF" and temporaries(tmp_path) == []


def test_a_scratch_temporary_is_removed_after_its_block_whatever_happens(tmp_path):
    path = tmp_path / "zones.yaml"
    with pytest.raises(RuntimeError):
        with temporary(path) as tmp:
            tmp.write_text("x")
            raise RuntimeError
    with temporary(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".zones.yaml.")
        assert os.stat(tmp).st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == []
