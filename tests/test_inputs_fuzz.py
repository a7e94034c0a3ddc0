"""Fuzzing the CSV inputs of FORMATS.md (scan log, walk, ground truth) and
the event log `simulate.py --events` checks before replacing it.

Each example starts from a slice of a real sample file (the gallery sample,
danis' real recording) and mutates it as people and tools damage files:
columns deleted, duplicated, swapped or added, the header lost or doubled,
cells emptied, padded, quoted or replaced by odd numbers (nan, 1e308, hex,
'1_0', other scripts' digits), rows duplicated, swapped or dropped, CRLF or
CR line ends, BOMs, UTF-16 or Latin-1, NUL bytes, stray quotes, a cut last
line, gzip (damaged too) (folders, pipes and devices: tests/test_csvlog.py). The property: a
reader yields rows or raises a GuideError whose one-line message names the
file; never another exception. What FORMATS.md allows (extra columns,
columns in any order, interleaved visitors; and, accepting more, names in
any case, gzip) must be read as the plain file.
A few of the nastiest go through simulate.py end to end.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guide.errors import GuideError
from guide.eventlog import check_event_log
from guide.metrics import read_truth
from guide.radio import read_walks
from guide.replay import ScanStats, read_scans
from guide.zones import load_zones

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GUIDE_SHARED_DIR", REPO.parent / "shared"))
GALLERY = SHARED / "data" / "gallery-sample"
DANIS = SHARED / "data" / "danis-real-sample"


def _head(path: Path, n: int) -> list[list[str]]:
    """The header and the first `n` rows of a sample CSV, as cells."""
    with open(path, newline="", encoding="utf-8") as f:
        return [row for _, row in zip(range(n + 1), csv.reader(f))]


def _interleaved(path: Path, per: int) -> list[list[str]]:
    """The header and `per` rows of each of the first two visitors, interleaved."""
    by: dict[str, list[list[str]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        for row in reader:
            if len(by) == 2 and row[0] not in by:
                break
            if len(by.setdefault(row[0], [])) < per:
                by[row[0]].append(row)
    a, b = by.values()
    return [header, *(r for pair in zip(a, b) for r in pair)]


def _truth(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[:12]


SOURCES = {
    "scans": [_head(GALLERY / "scans.csv", 25), _head(DANIS / "scans.csv", 25),
              _interleaved(GALLERY / "scans.csv", 10)],
    "walks": [_head(GALLERY / "walks.csv", 25), _interleaved(GALLERY / "walks.csv", 10)],
    "truth": [_truth(GALLERY / "truth.csv"), _truth(DANIS / "truth.csv")],
}
SITES = {"gallery": load_zones(GALLERY / "zones.yaml"), "danis": load_zones(DANIS / "zones.yaml")}

ODD = ["", " ", "  -71 ", "nan", "NaN", "inf", "-inf", "Infinity", "1e308", "-1e308", "1e309",
       "-0", "-0.0", "+5", "0x10", "1_0", "١٠", "１０", "5e", "1e-320", "-71.5", "-127.6", "0.5",
       "-1", "604801", "9" * 400, "9" * 5000, "x" * 3000, '"', '""', '"-71"', "a\"b", "\x00",
       "\x00-71", "\t5", "\u00a0", "é", "\ufeff", "\ufeffv001", "v001", "v002", "dome", "listen",
       "wander", "glance", "b-unknown", "1,2", "\r", "\n", "12\r\n13"]


@st.composite
def damaged(draw, kind: str) -> bytes:
    """A sample file of `kind` ("scans", "walks", "truth"), mutated."""
    rows = [list(r) for r in draw(st.sampled_from(SOURCES[kind]))]
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["del_col", "dup_col", "swap_col", "extra_col", "del_header",
                                   "dup_header", "cell", "pad", "quote", "dup_row", "swap_rows",
                                   "del_row", "header_only", "empty", "reverse_t"]))
        width = max((len(r) for r in rows), default=0)
        if op == "del_col" and width:
            i = draw(st.integers(0, width - 1))
            rows = [r[:i] + r[i + 1:] for r in rows]
        elif op == "dup_col" and width:
            i = draw(st.integers(0, width - 1))
            rows = [r + r[i:i + 1] for r in rows]
        elif op == "swap_col" and width > 1:
            i, j = draw(st.integers(0, width - 1)), draw(st.integers(0, width - 1))
            for r in rows:
                if max(i, j) < len(r):
                    r[i], r[j] = r[j], r[i]
        elif op == "extra_col":
            at = draw(st.integers(0, width))
            name = draw(st.sampled_from(["note", "", "device", "rssi2"]))
            rows = [r[:at] + [name if k == 0 else draw(st.sampled_from(ODD[:8] + ["x", "3"]))] + r[at:]
                    for k, r in enumerate(rows)]
        elif op == "del_header" and rows:
            rows = rows[1:]
        elif op == "dup_header" and rows:
            rows.insert(draw(st.integers(1, len(rows))), list(rows[0]))
        elif op in ("cell", "pad", "quote") and len(rows) > 1:
            r = rows[draw(st.integers(0, len(rows) - 1))]
            if r:
                c = draw(st.integers(0, len(r) - 1))
                if op == "cell":
                    r[c] = draw(st.sampled_from(ODD))
                elif op == "pad":
                    pad = st.sampled_from(["", " ", "\t", "  "])
                    r[c] = draw(pad) + r[c] + draw(pad)
                else:
                    r[c] = draw(st.sampled_from(['"', "'"])) + r[c]
        elif op == "dup_row" and len(rows) > 1:
            i = draw(st.integers(1, len(rows) - 1))
            rows.insert(i, list(rows[i]))
        elif op == "swap_rows" and len(rows) > 2:
            i = draw(st.integers(1, len(rows) - 2))
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
        elif op == "del_row" and len(rows) > 1:
            del rows[draw(st.integers(1, len(rows) - 1))]
        elif op == "header_only":
            rows = rows[:1]
        elif op == "empty":
            rows = []
        elif op == "reverse_t" and len(rows) > 2:
            rows = rows[:1] + rows[:0:-1]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])),
               quoting=quoting).writerows(rows)
    text = draw(st.sampled_from(["", "\ufeff", "\ufeff\ufeff"])) + out.getvalue()
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1", "utf-16-le"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 5)) == 0:
        data = gzip.compress(data, mtime=0)  # read decompressed; the cuts below damage it
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from([b"\x00", b'"', b"\xff", b"\xe9", b"\n", b"\r", b",", b"CUT"]))
        data = data[:at] if what == b"CUT" else data[:at] + what + data[at:]
    return data


def _holds(error: GuideError, path: Path) -> None:
    """The error is one line naming the file."""
    message = str(error)
    assert str(path) in message, message
    assert "\n" not in message, message


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=damaged("scans"), site=st.sampled_from(sorted(SITES)))
def test_scan_log_reads_or_says_where(scratch, data, site):
    path = scratch / "scans.csv"
    path.write_bytes(data)
    try:
        stats = ScanStats()
        for v, t, b, r in read_scans(path, SITES[site], stats=stats):
            assert isinstance(v, str) and v and isinstance(t, float) and isinstance(r, int)
            assert b in SITES[site].beacons
        stats.check_site(path, SITES[site])
    except GuideError as e:
        _holds(e, path)


@FUZZ
@given(data=damaged("walks"), grouped=st.booleans())
def test_walk_reads_or_says_where(scratch, data, grouped):
    path = scratch / "walks.csv"
    path.write_bytes(data)
    try:
        for v, t, x, y in read_walks(path, grouped=grouped):
            assert isinstance(v, str) and v and all(isinstance(n, float) for n in (t, x, y))
    except GuideError as e:
        _holds(e, path)


@FUZZ
@given(data=damaged("truth"), site=st.sampled_from([None, *sorted(SITES)]))
def test_truth_reads_or_says_where(scratch, data, site):
    path = scratch / "truth.csv"
    path.write_bytes(data)
    try:
        read_truth(path, SITES[site].exhibit_ids if site else None)
    except GuideError as e:
        _holds(e, path)


EVENTS = [
    {"visitor": "v001", "t": 14.2, "event": "start", "exhibit": "dome", "lang": "en", "track": "en/dome.ogg"},
    {"visitor": "v001", "t": 96.0, "event": "end", "exhibit": "dome", "reason": "finished"},
]


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(
    [b"\x00", b"\n", b"{", b"}", b'"', b"\xff", b"[" * 3000, b"9" * 5000, b"CUT", b"\r"])), max_size=3))
def test_event_log_check_says_where(scratch, cuts):
    data = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS * 3)
    for at, what in cuts:
        data = data[:at] if what == b"CUT" else data[:at] + what + data[at:]
    path = scratch / "events.jsonl"
    path.write_bytes(data)
    try:
        check_event_log(path)
    except GuideError as e:
        _holds(e, path)


READ = {
    "scans": lambda p, site: list(read_scans(p, site)),
    "walks": lambda p, site: list(read_walks(p, grouped=False)),
    "truth": lambda p, site: read_truth(p, site.exhibit_ids),
}
DANIS_SOURCE = 1  # SOURCES["scans"][1] and SOURCES["truth"][1] are danis'; the rest the gallery's


@FUZZ
@given(kind=st.sampled_from(["scans", "walks", "truth"]), data=st.data())
def test_what_formats_allows_is_read_as_the_plain_file(scratch, kind, data):
    """Columns in any order, extra columns (any text, quoted commas too),
    padded cells, quoted cells, blank lines, any line end, a BOM: FORMATS.md
    lets a file be written so, and it reads as the plain one."""
    source = data.draw(st.integers(0, len(SOURCES[kind]) - 1))
    site = SITES["danis" if source == DANIS_SOURCE and kind != "walks" else "gallery"]
    rows = [list(r) for r in SOURCES[kind][source]]
    plain = scratch / "plain.csv"
    with open(plain, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    want = READ[kind](plain, site)
    assert want
    order = data.draw(st.permutations(range(len(rows[0]))))
    rows = [[r[i] for i in order] for r in rows]
    for _ in range(data.draw(st.integers(0, 3))):
        at = data.draw(st.integers(0, len(rows[0])))
        name = data.draw(st.sampled_from(["note", "device", "x2", "comment", "rssi2"]))
        cell = st.sampled_from(["", "a,b", 'say "hi"', "é", "1e999"])
        rows = [r[:at] + [name if k == 0 else data.draw(cell)] + r[at:] for k, r in enumerate(rows)]
    if data.draw(st.booleans()):
        rows = [[data.draw(st.sampled_from(["", " ", "  "])) + c + data.draw(st.sampled_from(["", " "]))
                 for c in r] for r in rows]
    if data.draw(st.booleans()):
        at = data.draw(st.integers(1, len(rows)))
        rows.insert(at, [""] * len(rows[0]))  # a spreadsheet's row of empty cells
    rows[0] = [data.draw(st.sampled_from([str, str.upper, str.title]))(c) for c in rows[0]]  # names in any case
    out = io.StringIO()
    csv.writer(out, lineterminator=data.draw(st.sampled_from(["\n", "\r\n", "\r"])),
               quoting=data.draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))).writerows(rows)
    path = scratch / "written.csv"
    text = (data.draw(st.sampled_from(["", "\ufeff"])) + out.getvalue()).encode()
    path.write_bytes(gzip.compress(text) if data.draw(st.booleans()) else text)  # gzip-compressed too
    assert READ[kind](path, site) == want


# ---------------------------------------------------------------- end to end

def _lines(path: Path, n: int) -> bytes:
    """The first `n` lines of a sample file, header included."""
    with open(path, "rb") as f:
        return b"".join(line for _, line in zip(range(n), f))


GOOD_SCANS = _lines(GALLERY / "scans.csv", 400)
GOOD_TRUTH = (GALLERY / "truth.csv").read_bytes()
GOOD_WALKS = _lines(GALLERY / "walks.csv", 200)
NASTY = {  # input -> (its bytes, what stderr says)
    "late stray quote": ("scans", GOOD_SCANS + b'v001,99.0,"b-tapestry,-80\n', ":401: a quote"),
    "late NUL-damaged row": ("scans", GOOD_SCANS + b"v001,9\x009.0,b-tapestry,-80\n", ":401: field t"),
    "cut last line": ("scans", GOOD_SCANS + b"v001,99.0,b-tap", ":401: expected 4 fields"),
    "joined files": ("scans", GOOD_SCANS * 2, ":401: this line repeats the header"),
    "utf-16 scans": ("scans", GOOD_SCANS.decode().encode("utf-16"), ":1: not UTF-8 text but UTF-16"),
    "cr-only latin-1": ("scans", GOOD_SCANS.replace(b"\n", b"\r") + b"v001,99.0,b-t\xe9,-80\r",
                        ":401: not UTF-8 text (the byte 0xE9"),
    "truth time in hex": ("truth", GOOD_TRUTH + b"v009,0x10,20,sculpture,listen\n", ":166: start and end"),
    "walk going back": ("walks", GOOD_WALKS + b"v001,0.5,2.0,2.0\n", ":201: field t: time goes backwards"),
}


@pytest.mark.parametrize("case", NASTY)
def test_simulate_refuses_a_damaged_input_in_one_line_leaving_the_event_log(tmp_path, case):
    """Exit 2, one line naming the file and line, no traceback, and the
    event log --events names left as it was: a replay writes it whole, at
    the end, so an error on the last row of the scans must not cost it."""
    kind, data, said = NASTY[case]
    inputs = {"scans": GALLERY / "scans.csv", "truth": GALLERY / "truth.csv", "walks": None}
    inputs[kind] = tmp_path / f"{kind}.csv"
    inputs[kind].write_bytes(data)
    if kind == "truth":
        (tmp_path / "scans.csv").write_bytes(GOOD_SCANS)
        inputs["scans"] = tmp_path / "scans.csv"
    events = tmp_path / "events.jsonl"
    before = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)
    events.write_bytes(before)
    source = ["--walks", str(inputs["walks"])] if kind == "walks" else ["--scans", str(inputs["scans"])]
    p = subprocess.run([sys.executable, str(REPO / "simulate.py"), "--zones", str(GALLERY / "zones.yaml"),
                        *source, "--lang", "en", "--events", str(events), "--truth", str(inputs["truth"]),
                        "--no-progress"], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and f"{inputs[kind]}{said}" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert events.read_bytes() == before
