"""The visit state on disk: saved atomically, loaded with clear errors, and the
event log's tail read back after a crash."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from guide.errors import DeviceError, GuideError
from guide.eventlog import EventLog, check_event_log
from guide.actions import End, Start
from guide.state import StateFile, VisitState, visit_tail, write_atomic


def state(t=12.5, heard=("dome",), playing=None):
    return VisitState(visitor="visit-1", site="La Coupole", t=t, volume=0.7,
                      engine={"lang": "en", "heard": list(heard), "playing": playing})


def test_a_saved_visit_loads_as_it_was(tmp_path):
    store = StateFile(tmp_path / "state.json")
    playing = {"exhibit": "tunnel", "lang": "en", "track": "en/tunnel.wav", "position": 31.5, "paused": False}
    store.save(state(playing=playing))
    assert store.load() == state(playing=playing)


def test_no_state_file_means_a_new_visit(tmp_path):
    assert StateFile(tmp_path / "state.json").load() is None


def test_saving_again_replaces_the_state_and_leaves_no_temporary_file(tmp_path):
    store = StateFile(tmp_path / "state.json")
    store.save(state(t=1.0))
    store.save(state(t=2.0, heard=("dome", "tunnel")))
    assert store.load().t == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


@pytest.mark.parametrize("content, says", [
    (b"", "not JSON"),
    (b'{"format": "guide-device-state", "vers', "not JSON"),
    (b"\xff\xfe garbage", "binary data"),
    (b'["a list"]', 'lacks "format"'),
    (b'{"lang": "en", "heard": []}', 'lacks "format"'),
    (b'{"format": "guide-device-state", "version": 9}', "version 9"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": 3}', "'visitor' must be a str"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 7, "engine": {}}', "'volume' must be a number from 0.0 to 1.0"),
    # json reads NaN and Infinity, and any size of number: a damaged or hand-edited file
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1e300,'
     b' "volume": 0.5, "engine": {}}', "'t' must be a number from 0.0 to 31622400.0, not 1e+300"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": NaN,'
     b' "volume": 0.5, "engine": {}}', "'t' must be a number from 0.0 to 31622400.0, not nan"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"playing": {"exhibit": "dome", "position": Infinity}}}',
     "'engine.playing.position' must be a number from 0.0 to 86400.0, not inf"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"playing": {"exhibit": "dome", "position": -1e300}}}',
     "'engine.playing.position' must be a number from 0.0 to 86400.0, not -1e+300"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"heard": ["dome", -Infinity]}}',
     "not a visit state written by guide (its engine.heard[1] is not a finite number)"),
    # an engine snapshot of another shape: Engine.restore read "dome" as the exhibits d, o, m and e
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": "dome", "playing": null}}',
     """the visit state's 'engine.heard' must be a list of exhibit names, not "dome";"""),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": [], "walked_off": 3, "playing": null}}',
     "the visit state's 'engine.walked_off' must be a list of exhibit names, not 3;"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "playing": null}}',
     "the visit state lacks 'engine.heard' (a list of exhibit names);"),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": ["en"], "heard": [], "playing": null}}',
     """the visit state's 'engine.lang' must be a language, not ["en"];"""),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": [], "playing": "dome"}}',
     """the visit state's 'engine.playing' must be the playing track or null, not "dome";"""),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": [], "playing": {"exhibit": ["dome"], "lang": "en",'
     b' "track": "en/dome.wav", "position": 3, "paused": false}}}',
     """the visit state's 'engine.playing.exhibit' must be a string, not ["dome"];"""),
    (b'{"format": "guide-device-state", "version": 1, "visitor": "v", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": [], "playing": {"exhibit": "dome", "lang": "en",'
     b' "track": "en/dome.wav", "position": 3}}}',
     "the visit state lacks 'engine.playing.paused' (true or false);"),
    # valid JSON that json.loads reads only with a ValueError or a RecursionError of its own
    (b'{"format": "guide-device-state", "version": 1, "t": ' + b"9" * 5000 + b"}",
     "not a visit state written by guide (it holds a number too long to be one the guide wrote)"),
    (b"[" * 10_000 + b"]" * 10_000, "(it nests arrays or objects deeper than the guide writes)"),
    # half a character: json reads it, and the first save (or the log's first line) could not write it
    (b'{"format": "guide-device-state", "version": 1, "visitor": "visit-\\udc80", "site": "s", "t": 1,'
     b' "volume": 0.5, "engine": {"lang": "en", "heard": [], "playing": null}}',
     "(it holds half a character (a lone surrogate escape"),
])
def test_a_broken_or_foreign_state_file_is_reported_with_the_file_and_the_fix(tmp_path, content, says):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(DeviceError) as e:
        StateFile(path).load()
    assert str(path) in str(e.value) and says in str(e.value) and "--new-visit" in str(e.value)


def test_a_save_that_fails_before_the_rename_leaves_the_old_state(tmp_path, monkeypatch):
    store = StateFile(tmp_path / "state.json")
    store.save(state(t=1.0))

    def power_cut(*_):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(DeviceError, match="state.json: cannot save the visit state.*power cut"):
        store.save(state(t=2.0))
    monkeypatch.undo()
    assert store.load().t == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_temporary_files_left_by_a_crash_are_swept_away_on_load(tmp_path):
    store = StateFile(tmp_path / "state.json")
    store.save(state())
    (tmp_path / ".state.json.abc123de.tmp").write_bytes(b'{"format": "guide-dev')  # as mkstemp names it
    (tmp_path / "other.tmp").write_text("not ours")
    assert store.load() == state()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.tmp", "state.json"]


def test_a_folder_where_the_state_file_goes_is_reported_and_left_alone(tmp_path):
    (tmp_path / "state.json").mkdir()
    (tmp_path / "state.json" / "keep").write_text("mine")
    with pytest.raises(DeviceError, match="state.json: cannot save the visit state .*is a folder"):
        StateFile(tmp_path / "state.json").save(state())
    assert (tmp_path / "state.json" / "keep").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary file left


def test_an_unwritable_directory_is_reported_clearly(tmp_path):
    with pytest.raises(DeviceError, match="cannot save the visit state"):
        write_atomic(tmp_path / "no" / "such" / "dir" / "state.json", b"{}")


WRITER = textwrap.dedent("""
    import sys
    from guide.state import StateFile, VisitState
    store = StateFile(sys.argv[1])
    n = int(sys.argv[2])
    print("ready", flush=True)
    while True:
        n += 1
        # a big state, so that a kill lands inside a write as often as between two
        store.save(VisitState(visitor="v", site="s", t=float(n), volume=0.5,
                              engine={"lang": "en", "heard": [f"exhibit-{i}" for i in range(n % 500)],
                                      "playing": None}))
""")


def test_a_process_killed_while_saving_always_leaves_a_whole_state(tmp_path):
    """SIGKILL at random instants of a tight save loop: the file is always
    either the state before or the state after, and loads."""
    path = tmp_path / "state.json"
    rng = random.Random(4)
    last = 0
    for _ in range(25):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(last)],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.05))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        loaded = StateFile(path).load()
        if loaded is None:  # killed before its first save completed
            assert last == 0
            continue
        assert loaded.t >= last  # never older than what an earlier run had saved
        assert len(loaded.engine["heard"]) == int(loaded.t) % 500
        last = int(loaded.t)
    assert last > 0


# ----- the event log's tail ---------------------------------------------------

def test_the_log_tail_shows_a_track_that_a_crash_left_open(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.wav"), visitor="v1", t=1.0)
        log.write(End(exhibit="dome", reason="finished"), visitor="v1", t=50.0)
        log.write(Start(exhibit="tunnel", lang="en", track="en/tunnel.wav"), visitor="v1", t=60.0)
        log.write(Start(exhibit="dome", lang="fr", track="fr/dome.wav"), visitor="someone-else", t=70.0)
    tail = visit_tail(path, "v1")
    assert tail.t == 60.0 and tail.open_exhibit == "tunnel"


def test_the_log_tail_of_a_visit_whose_tracks_all_ended_has_none_open(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.wav"), visitor="v1", t=1.0)
        log.write(End(exhibit="dome", reason="stopped"), visitor="v1", t=5.0)
        log.write_event({"visitor": "v1", "t": 6.5, "event": "coverage", "lang": "en", "text": "..."})
    with open(path, "a") as f:
        f.write('{"visitor": "v1", "t": 99.0, "event": "sta')  # torn by a crash
    tail = visit_tail(path, "v1")
    assert tail.t == 6.5 and tail.open_exhibit is None


def test_the_log_tail_takes_no_absurd_time_as_the_visit_clock(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.wav"), visitor="v1", t=3.0)
    with open(path, "a") as f:  # edited by hand: json reads these, the device never writes them
        f.write('{"visitor": "v1", "t": 1e300, "event": "end", "exhibit": "dome", "reason": "stopped"}\n')
        f.write('{"visitor": "v1", "t": Infinity, "event": "coverage", "lang": "en"}\n')
    tail = visit_tail(path, "v1")
    assert tail.t == 3.0 and tail.open_exhibit is None


def test_the_log_tail_takes_no_exhibit_that_is_not_a_name_as_a_track_left_open(tmp_path):
    """An edited start without an exhibit name: a restart wrote an end of
    exhibit 5 (or null) into the log, an event no reader expects."""
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.wav"), visitor="v1", t=3.0)
        log.write(End(exhibit="dome", reason="finished"), visitor="v1", t=4.0)
    with open(path, "a") as f:
        f.write('{"visitor": "v1", "t": 5.0, "event": "start", "exhibit": 5, "lang": "en"}\n')
    assert visit_tail(path, "v1") == type(visit_tail(path, "v1"))(t=5.0, open_exhibit=None)


def test_the_log_tail_passes_over_lines_json_reads_only_with_an_error_of_its_own(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.write(Start(exhibit="dome", lang="en", track="en/dome.wav"), visitor="v1", t=3.0)
    with open(path, "ab") as f:  # a rotten card: a number of 5000 digits, arrays nested 10000 deep
        f.write(b'{"visitor": "v1", "t": ' + b"7" * 5000 + b', "event": "end", "exhibit": "dome"}\n')
        f.write(b"[" * 10_000 + b"]" * 10_000 + b"\n")
    assert visit_tail(path, "v1") == type(visit_tail(path, "v1"))(t=3.0, open_exhibit="dome")


def test_the_log_tail_of_a_long_log_is_read_from_its_end(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        for i in range(5000):
            log.write(Start(exhibit=f"e{i}", lang="en", track="en/x.wav"), visitor="v1", t=float(i))
            log.write(End(exhibit=f"e{i}", reason="finished"), visitor="v1", t=i + 0.5)
        log.write(Start(exhibit="last", lang="en", track="en/x.wav"), visitor="v1", t=6000.0)
    assert path.stat().st_size > 200_000
    tail = visit_tail(path, "v1")
    assert tail == type(tail)(t=6000.0, open_exhibit="last")
    assert visit_tail(tmp_path / "none.jsonl", "v1").t is None
    json.loads(path.read_text().splitlines()[-1])


# ----- appending to an event log: only to one, and never half a line ------------

LINE = b'{"visitor": "v1", "t": 1.0, "event": "start", "exhibit": "dome", "lang": "en", "track": "en/dome.wav"}\n'


@pytest.mark.parametrize("content, says", [
    (b"no newline at end", "its last line is not JSON written by the guide"),
    (random.Random(7).randbytes(2000), "binary data"),
    (b"visitor,t,beacon,rssi\nv1,0.0,b-dome,-60\n", "line 1 is not JSON"),
    (b'{"some": "config"}', "its last line is not JSON written by the guide"),
    (b'{"some": "config"}\n', 'line 1 is a JSON object without an "event"'),
    (LINE + b"[1, 2]\n", "line 2 is not a JSON object"),
    (LINE + b"notes\n" + LINE, "line 2 is not JSON"),
    (LINE * 3000 + b"appended by hand\n", "a line near its end is not JSON"),  # a long log: both ends read
    # JSON that json.loads reads only with a ValueError or a RecursionError of its own
    (LINE + b"1" * 5000 + b"\n", "line 2 holds a number too long to be one the guide wrote"),
    (LINE + b'{"event": "start", "t": -' + b"1" * 5000 + b"}\n", "line 2 holds a number too long"),
    (b"[" * 10_000 + b"]" * 10_000 + b"\n", "line 1 nests arrays or objects deeper than the guide writes"),
    (LINE * 3000 + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"\n", "a line near its end nests"),
    # half a character, which a restart would have copied into its own line and failed to write
    (LINE + b'{"visitor": "v1", "t": 2.0, "event": "start", "exhibit": "\\ud800"}\n',
     "line 2 holds half a character"),
    # a line as long as the window read at either end: the window held no line to check (nor cut)
    (b"x" * 200_000 + b"\n", "line 1 is longer than any line the guide writes (64 KiB or more)"),
    (LINE * 2000 + b"y" * 70_000 + b"\n", "a line near its end is longer than any line the guide writes"),
    (b'{"visitor": "' + b"z" * 100_000, "its last line is longer than any line the guide writes"),
    (LINE + b'{"event": "start", "pad": "' + b"a" * 70_000 + b'"}\n', "line 2 is longer than any"),
])
def test_a_file_that_is_not_an_event_log_is_refused_and_left_as_it_was(tmp_path, content, says):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(GuideError) as e:
        EventLog(path, durable=True)
    message = str(e.value)
    assert str(path) in message and "is not a guide event log" in message and says in message
    assert "give another --events path" in message
    assert path.read_bytes() == content


@pytest.mark.parametrize("before, torn", [
    (LINE * 2, b'{"visitor": "v1", "t": 2.5, "event": "st'),  # a crash in the middle of a line
    (b"", b'{"visi'),  # in the middle of the very first line
    (LINE, '{"visitor": "v1", "t": 3.0, "event": "start", "exhibit": "dôme'.encode()[:-1]),  # mid-character
    (LINE * 3000, b'{"visitor": "v1", "t": 9'),  # at the end of a long log
])
def test_a_line_torn_by_a_crash_is_cut_away_and_the_log_goes_on(tmp_path, caplog, before, torn):
    path = tmp_path / "events.jsonl"
    path.write_bytes(before + torn)
    with EventLog(path, durable=True) as log:
        log.write(End(exhibit="dome", reason="stopped"), visitor="v1", t=4.0)
    lines = path.read_bytes().splitlines(keepends=True)
    assert b"".join(lines[:-1]) == before
    assert json.loads(lines[-1]) == {"visitor": "v1", "t": 4.0, "event": "end", "exhibit": "dome",
                                     "reason": "stopped"}
    assert f"{path}: cut away a torn last line ({len(torn)} bytes) left at its end" in caplog.text


@pytest.mark.parametrize("before, nuls, says", [
    (LINE * 2, 60, "60 NUL bytes"),  # the last line's block never reached the disk
    (LINE, 4096, "4096 NUL bytes"),
    (LINE * 3000, 200_000, "200000 NUL bytes"),  # more NULs than the window read
    (LINE + b'{"visitor": "v1", "t": 2', 30, "a torn last line (24 bytes) and 30 NUL bytes"),
])
def test_nul_bytes_a_power_cut_left_at_the_end_are_cut_away_and_the_log_goes_on(tmp_path, caplog,
                                                                                 before, nuls, says):
    path = tmp_path / "events.jsonl"
    path.write_bytes(before + b"\0" * nuls)
    check_event_log(path)  # a log that a repair will mend: accepted, and left as it is
    assert path.stat().st_size == len(before) + nuls
    with caplog.at_level(logging.WARNING, logger="guide"):
        with EventLog(path, durable=True) as log:
            log.write(End(exhibit="dome", reason="stopped"), visitor="v1", t=4.0)
    whole = before[:before.rindex(b"\n") + 1]
    assert path.read_bytes() == whole + b'{"visitor": "v1", "t": 4.0, "event": "end", "exhibit": "dome", ' \
                                        b'"reason": "stopped"}\n'
    assert f"{path}: cut away {says} left at its end by a crash or a power cut" in caplog.text


@pytest.mark.parametrize("content, says", [
    (LINE + b"\0" * 8 + b"\n" + LINE, "line 2 is binary data"),  # not at the end
    (LINE + b"\0" * 8 + LINE, "line 2 is binary data"),
    (LINE + b"\0\0\1\0", "its last line is not JSON written by the guide"),  # not only NULs
    (b"\0" * 100, "its last line is not JSON written by the guide"),  # no line of ours before them
    (b"mine\n" + b"\0" * 100, "line 1 is not JSON"),
])
def test_nul_bytes_that_are_not_the_end_of_an_event_log_are_refused(tmp_path, content, says):
    path = tmp_path / "events.jsonl"
    path.write_bytes(content)
    with pytest.raises(GuideError, match=f"is not a guide event log \\({says}\\)"):
        EventLog(path, durable=True)
    assert path.read_bytes() == content


HOLDER = textwrap.dedent("""
    import sys
    from guide.eventlog import EventLog
    log = EventLog(sys.argv[1], durable=True)
    log.write_event({"visitor": "v1", "t": 1.0, "event": "coverage", "lang": "en"})
    print("writing", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)
    log.write_event({"visitor": "v1", "t": 2.0, "event": "coverage", "lang": "en"})
""")


def test_an_event_log_another_process_writes_is_refused_until_that_process_ends(tmp_path):
    """Two writers would interleave their lines out of time order: the second
    is refused, naming the first, and writes nothing; a writer that was killed
    holds nothing (the kernel drops its lock)."""
    path = tmp_path / "events.jsonl"
    for end in ("exit", "kill"):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert p.stdout.readline() == "writing\n"
            before = path.read_bytes()
            for attempt in (lambda: EventLog(path, durable=True), lambda: check_event_log(path)):
                with pytest.raises(GuideError) as e:
                    attempt()
                assert str(e.value) == (f"another guide run (pid {p.pid}) is writing {path}; "
                                        "stop it, or give another --events path")
            assert path.read_bytes() == before
        finally:
            if end == "kill":
                p.kill()
            p.communicate("")
        with EventLog(path, durable=True) as log:  # free again
            log.write_event({"visitor": "v2", "t": 5.0, "event": "coverage", "lang": "en"})
    assert [e["visitor"] for e in map(json.loads, path.read_text().splitlines())] == ["v1", "v1", "v2", "v1", "v2"]


def test_a_log_open_for_writing_cannot_be_opened_twice_and_is_free_once_closed(tmp_path):
    path = tmp_path / "events.jsonl"
    first = EventLog(path)
    with pytest.raises(GuideError, match="is writing .*events.jsonl; stop it, or give another --events path"):
        EventLog(path)
    first.close()
    EventLog(path).close()


def test_a_write_that_fails_part_way_takes_its_half_line_back_out(tmp_path, monkeypatch):
    """A disk that fills in the middle of a line: the write fails naming the
    file, the part written is removed, and the lines after it are whole."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(LINE)
    log = EventLog(path, durable=True)
    real_write = os.pwrite

    def full_disk(fd, data, offset):
        if fd == log._f.fileno():
            real_write(fd, bytes(data[:20]), offset)  # the disk takes 20 bytes, then is full
            raise OSError(28, "No space left on device")
        return real_write(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(OSError, match="No space left") as e:
        log.write(End(exhibit="dome", reason="stopped"), visitor="v1", t=2.0)
    assert e.value.filename == str(path)
    assert path.read_bytes() == LINE
    monkeypatch.undo()  # space again
    log.write(End(exhibit="dome", reason="finished"), visitor="v1", t=3.0)
    log.close()
    assert [json.loads(line)["t"] for line in path.read_bytes().splitlines()] == [1.0, 3.0]
