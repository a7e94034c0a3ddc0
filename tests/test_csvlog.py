"""What the CSV readers of FORMATS.md share (guide.csvlog), on the scan log:
headers (in any case, separated by commas), the cells echoed in errors, ids,
gzip-compressed files; and what every input reader shares: only a regular
file is read."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import threading
import zipfile

import pytest

from guide.csvlog import bytes_read, open_text, short
from guide.errors import GuideError, ScanLogError
from guide.metrics import read_truth
from guide.radio import read_walks
from guide.replay import ScanStats, read_scans
from guide.zones import load_zones

DIGITS = "9" * 5000


@pytest.fixture(scope="module")
def site(shared_dir):
    return load_zones(shared_dir / "data" / "gallery-sample" / "zones.yaml")


def scans(tmp_path, text: str):
    p = tmp_path / "scans.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_short_keeps_a_short_cell_and_cuts_a_long_one_saying_how_long():
    assert short("b-tapestry") == "b-tapestry"
    assert short(DIGITS) == "9" * 20 + "... (5000 characters)"
    assert short("x" * 100, 80) == "x" * 76 + "... (100 characters)"


@pytest.mark.parametrize("text, column, at", [
    ("visitor,t,t,beacon,rssi\nv001,0.0,734.5,b-tapestry,-70\n", "t", "2, 3"),
    ("visitor,t,beacon,rssi, visitor\nv001,0.0,b-tapestry,-70,v002\n", "visitor", "1, 5"),
])
def test_a_scan_log_header_naming_a_column_twice_is_refused(site, tmp_path, text, column, at):
    """Which of the two is meant is a guess: the first was taken, silently."""
    p = scans(tmp_path, text)
    with pytest.raises(ScanLogError, match=rf"scans.csv:1: the header names the column {column} "
                                           rf"twice \(columns {at}\); a scan log names each column "
                                           r"once: rename or delete all but one"):
        list(read_scans(p, site))


def test_a_column_the_scan_log_does_not_read_may_be_named_twice(site, tmp_path):
    p = scans(tmp_path, "visitor,t,beacon,rssi,note,note\nv001,0.0,b-tapestry,-70,a,b\n")
    assert list(read_scans(p, site)) == [("v001", 0.0, "b-tapestry", -70)]


@pytest.mark.parametrize("row, message", [
    (f"v001,1.0,b-tapestry,{DIGITS}", r":3: field rssi = '9{20}\.\.\. \(5000 characters\)' is not "
                                      r"a number of dBm$"),
    (f"v001,1.0,b-tapestry,-{DIGITS[:4000]}", r":3: rssi=-9{19}\.\.\. \(4001 characters\) is not "
                                              r"a plausible signal strength"),
    (f"v001,{DIGITS},b-tapestry,-70", r":3: t=9{20}\.\.\. \(5000 characters\) is not a number"),
    (f"v001,0.{'0' * 3000},b-tapestry,-70", r":3: t=0\.0{18}\.\.\. \(3002 characters\) is earlier"),
    (f"v001,1.0,b-tapestry,-70\nv002,1{'0' * 300},b-tapestry,-70",
     r":4: t=10{19}\.\.\. \(301 characters\) is more than a week"),
])
def test_a_long_cell_is_echoed_cut_short(site, tmp_path, row, message):
    p = scans(tmp_path, f"visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-70\n{row}\n")
    with pytest.raises(ScanLogError, match=message) as e:
        list(read_scans(p, site))
    assert len(str(e.value)) < len(str(p)) + 200


def test_a_long_header_and_long_unknown_beacons_are_echoed_cut_short(site, tmp_path):
    p = scans(tmp_path, f"visitor,t,beacon,{DIGITS}\n")
    with pytest.raises(ScanLogError, match=r":1: the header lacks rssi; .* \(found visitor,t,beacon,"
                                           r"9{59}\.\.\. \(5017 characters\)\)$"):
        list(read_scans(p, site))
    p = scans(tmp_path, f"visitor,t,beacon,rssi\nv001,0.5,b-{DIGITS},-70\n")
    stats = ScanStats()
    assert list(read_scans(p, site, stats=stats)) == []
    with pytest.raises(ScanLogError, match=r"\(it names b-9{18}\.\.\. \(5002 characters\)\)") as e:
        stats.check_site(p, site)
    assert len(str(e.value)) < len(str(p)) + 200


@pytest.mark.parametrize("visitor, char", [("v0\x0001", r"\\x00"), ("v\x1b[2J1", r"\\x1b")])
def test_a_visitor_id_holding_a_control_character_is_refused(site, tmp_path, visitor, char):
    """It would print raw (a NUL, a terminal escape) wherever the visitor is named."""
    p = scans(tmp_path, f"visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-70\n{visitor},0.5,b-tapestry,-70\n")
    with pytest.raises(ScanLogError, match=rf"scans.csv:3: the visitor '.*' holds the control "
                                           rf"character '{char}'; ids are printable text: delete it"):
        list(read_scans(p, site))


# Every reader of a file a user names: the file's content, a way to read it,
# and what the file is called in messages.
READERS = {
    "scan log": ("visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-70\n",
                 lambda path, site: list(read_scans(path, site))),
    "walk": ("visitor,t,x,y\nv001,0.0,1.5,2.0\n", lambda path, site: list(read_walks(path))),
    "ground truth": ("visitor,start,end,exhibit,intent\nv001,1,20,tapestry,listen\n",
                     lambda path, site: read_truth(path, site.exhibit_ids)),
    "zone map": (None, lambda path, site: load_zones(path)),
}


@contextlib.contextmanager
def fed_pipe(path, data: bytes):
    """A FIFO at `path` that a thread fills with `data` should a reader open
    it, so that a reader that does never waits; left with no thread waiting."""
    os.mkfifo(path)
    writer = threading.Thread(target=lambda: path.write_bytes(data), daemon=True)
    writer.start()  # waits in open() for a reader
    try:
        yield path
    finally:
        # let the writer through if no reader came: open the other end
        # without waiting, hold it until the writer is done
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            writer.join()
        finally:
            os.close(fd)


@pytest.mark.parametrize("what", READERS)
def test_a_pipe_given_as_an_input_is_refused_unread(site, tmp_path, what):
    """Reading a FIFO waits for a writer for ever; this one has a writer
    ready, so a reader that opened it would get a valid file and no error."""
    text, read = READERS[what]
    text = text if text is not None else site.path.read_text()
    with fed_pipe(tmp_path / "input", text.encode()) as pipe:
        with pytest.raises(GuideError, match=rf"{pipe}: is a pipe \(FIFO\), not a regular file: "
                                             rf"the {what} is read from a file"):
            read(pipe, site)
    with fed_pipe(tmp_path / "input2", text.encode()) as pipe:
        link = tmp_path / "link"  # followed: what it leads to is judged
        link.symlink_to(pipe)
        with pytest.raises(GuideError, match=rf"{link}: is a pipe \(FIFO\), not a regular file"):
            read(link, site)


@pytest.mark.parametrize("what", READERS)
def test_a_device_given_as_an_input_is_refused_unread(site, tmp_path, what):
    """/dev/zero would be read without end (gigabytes in seconds); /dev/null,
    its quiet twin, shows the check holds before any byte is read."""
    _, read = READERS[what]
    for device in ("/dev/null", "/dev/zero"):
        with pytest.raises(GuideError, match=rf"{device}: is a device, not a regular file: "
                                             rf"the {what} is read from a file"):
            read(device, site)


@pytest.mark.parametrize("what", READERS)
def test_a_folder_a_missing_file_and_a_link_to_a_file_as_an_input(site, tmp_path, what):
    text, read = READERS[what]
    with pytest.raises(GuideError, match=rf"{tmp_path}: (cannot open the {what} \(Is a directory\)"
                                         rf"|is a directory, not a zone map)"):
        read(tmp_path, site)
    with pytest.raises(GuideError, match=rf"{tmp_path / 'none'}: (cannot open the {what} \(No such "
                                         rf"file or directory\)|no such file)"):
        read(tmp_path / "none", site)
    if text is not None:
        (tmp_path / "input.csv").write_text(text)
        (tmp_path / "link.csv").symlink_to(tmp_path / "input.csv")
        assert read(tmp_path / "link.csv", site)


UNDERSCORE = " (write it without the '_')"


@pytest.mark.parametrize("what, text, message", [
    # taken as t=10, the next row was blamed for going back in time
    ("scan log", "visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-70\nv001,1_0,b-tapestry,-70\n"
                 "v001,2.0,b-tapestry,-70\n",
     r":3: field t = '1_0' is not a number of seconds" + re.escape(UNDERSCORE) + "$"),
    ("scan log", "visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-7_0\n",
     r":2: field rssi = '-7_0' is not a number of dBm" + re.escape(UNDERSCORE) + "$"),
    ("scan log", "visitor,t,beacon,rssi\nv001,\u0661\u0660,b-tapestry,-\uff17\uff10\n",
     r":2: field t = '\u0661\u0660' is not a number of seconds \(write it with the digits 0-9; it "
     r"holds '\u0661', U\+0661\); field rssi = '-\uff17\uff10' is not a number of dBm \(write it "
     r"with the digits 0-9; it holds '\uff17', U\+FF17\)$"),
    ("walk", "visitor,t,x,y\nv001,0.0,1_5,2.0\n",
     r":2: field x = '1_5' is not a number" + re.escape(UNDERSCORE) + "$"),
    ("walk", "visitor,t,x,y\nv001,\uff10,1.5,2.0\n", r":2: field t = '\uff10' is not a number \(write it "
                                                    r"with the digits 0-9; it holds '\uff10', U\+FF10\)$"),
    ("ground truth", "visitor,start,end,exhibit,intent\nv001,1,2_0,tapestry,listen\n",
     r":2: start and end must be seconds \(found '1', '2_0'\)" + re.escape(UNDERSCORE) + "$"),
    ("ground truth", "visitor,start,end,exhibit,intent\nv001,\u0661,20,tapestry,listen\n",
     r":2: start and end must be seconds \(found '\u0661', '20'\) \(write it with the digits 0-9"),
])
def test_only_plain_ascii_numbers_are_numbers(site, tmp_path, what, text, message):
    """Python's float() and int() read 1_0 as 10, and the digits of every
    script (Arabic-Indic, full-width): nobody writing a CSV by hand meant that."""
    p = tmp_path / "input.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ScanLogError, match=re.escape(str(p)) + message):
        READERS[what][1](p, site)


def test_plain_numbers_in_every_form_float_reads_are_still_numbers(site, tmp_path):
    p = scans(tmp_path, "visitor,t,beacon,rssi\nv001, 1e-3 ,b-tapestry,-71.0\nv001,+.5,b-tapestry, -70 \n"
                        "v001,5.,b-tapestry,-6.9e1\n")
    assert list(read_scans(p, site)) == [("v001", 0.001, "b-tapestry", -71), ("v001", 0.5, "b-tapestry", -70),
                                         ("v001", 5.0, "b-tapestry", -69)]


def test_an_unknown_beacon_is_named_as_written_its_control_characters_escaped(site, tmp_path):
    """A NUL or an escape in a beacon cell printed raw: the terminal showed
    'domex' for 'dome\\0x', a name not in the log."""
    p = scans(tmp_path, "visitor,t,beacon,rssi\nv001,0.5,dome\0x,-70\nv001,0.6,b-\x1b[2J,-70\n")
    stats = ScanStats()
    assert list(read_scans(p, site, stats=stats)) == []
    assert stats.unknown_names() == r"b-\x1b[2J, dome\x00x"
    with pytest.raises(ScanLogError, match=re.escape(r"(it names b-\x1b[2J, dome\x00x)")):
        stats.check_site(p, site)


@pytest.mark.parametrize("what", ["scans", "walks", "truth"])
def test_a_header_is_echoed_with_its_control_characters_escaped(site, tmp_path, what):
    """An escape in a header printed raw: the terminal turned red (or a NUL
    hid a character), and the message did not show what was written."""
    header = {"scans": "visitor,t,beacon,rs\x1b[31msi", "walks": "visitor,t,x,\0y",
              "truth": "visitor,start,end,exhibit,in\x1b[31mtent"}[what]
    p = scans(tmp_path, header + "\n")
    read = {"scans": lambda: list(read_scans(p, site)), "walks": lambda: list(read_walks(p)),
            "truth": lambda: read_truth(p)}[what]
    with pytest.raises(ScanLogError) as info:
        read()
    message = str(info.value)
    assert not re.search(r"[\x00-\x1f]", message)
    assert (r"rs\x1b[31msi" if what == "scans" else r"\x00y" if what == "walks"
            else r"in\x1b[31mtent") in message


@pytest.mark.parametrize("what", ["scans", "walks", "truth"])
def test_a_second_bom_before_the_header_is_skipped_like_the_first(site, tmp_path, what):
    """A file through two tools that each add a BOM: the second one, invisible,
    made the first column unknown ('lacks visitor (found visitor,...)')."""
    text = {"scans": "visitor,t,beacon,rssi\nv001,0.5,b-tapestry,-70\n",
            "walks": "visitor,t,x,y\nv001,0.5,1,2\n",
            "truth": "visitor,start,end,exhibit,intent\nv001,1,20,tapestry,listen\n"}[what]
    p = tmp_path / "in.csv"
    p.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode())
    if what == "scans":
        assert list(read_scans(p, site)) == [("v001", 0.5, "b-tapestry", -70)]
    elif what == "walks":
        assert list(read_walks(p)) == [("v001", 0.5, 1.0, 2.0)]
    else:
        assert [r.visitor for r in read_truth(p)] == ["v001"]
    # a BOM elsewhere in the header is shown, not left invisible
    p.write_text("visitor,\ufefft,x,y\n", encoding="utf-8")
    with pytest.raises(ScanLogError, match=re.escape(r"(found visitor,\ufefft,x,y)")):
        list(read_walks(p))


CSV_READERS = [what for what in READERS if what != "zone map"]


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_byte_not_utf8_is_named_on_its_line_whatever_ends_the_lines(site, tmp_path, what):
    """A file whose lines end with a lone CR (old Mac tools) is read line by
    line; the byte that is not UTF-8 was placed on line 1, counted at LF only."""
    text, read = READERS[what]
    lines = text.splitlines()
    for end in ("\r", "\r\n", "\n"):
        p = tmp_path / "in"
        p.write_bytes(end.join(lines[:2] + ["x\u00e9"] + lines[2:]).encode("latin-1") + end.encode())
        with pytest.raises(GuideError, match=rf"{p}:3: not UTF-8 text \(the byte 0xE9, character 2 "):
            read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_utf16_file_is_said_to_be_utf16(site, tmp_path, what):
    text, read = READERS[what]
    p = tmp_path / "in"
    p.write_bytes(text.encode("utf-16"))
    with pytest.raises(GuideError, match=rf"{p}:1: not UTF-8 text but UTF-16 \(it opens with a "
                                         rf"UTF-16 byte-order mark\); save the {what} as UTF-8"):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("accent", ["", "\u00e9"])
def test_a_utf16_file_without_a_byte_order_mark_is_said_to_be_utf16(site, tmp_path, what, encoding, accent):
    """Without a BOM, ASCII-only UTF-16 is valid UTF-8 (a NUL after each
    letter): it was 'the header lacks visitor, t, ...' with the NULs shown;
    with an accent, 'not UTF-8 (the byte 0xE9)'."""
    text, read = READERS[what]
    lines = text.splitlines()
    p = tmp_path / "in"
    p.write_bytes("\n".join(lines[:2] + [lines[1] + accent]).encode(encoding))
    with pytest.raises(GuideError, match=rf"{p}:1: not UTF-8 text but UTF-16 \(a NUL byte beside each "
                                         rf"letter\); save the {what} as UTF-8"):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
@pytest.mark.parametrize("line", [1, 3])
def test_a_cell_longer_than_csv_reads_is_called_damaged_on_its_line(site, tmp_path, what, line):
    """A run of 200 000 bytes without a comma, in the header or a row, was
    'not valid CSV text (field larger than field limit (131072))'."""
    text, read = READERS[what]
    lines = text.splitlines()
    lines = lines[:1] + lines[1:] * 3
    lines[line - 1] += "x" * 200_000
    p = tmp_path / "in"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(GuideError, match=rf"^{p}:{line}: a cell is longer than 131072 characters, "
                                         r"which no id or number is: the file is damaged"):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_header_repeated_below_is_called_a_repeated_header(site, tmp_path, what):
    """Two files joined with cat, the second with a BOM: its header was 'field
    t = 't' is not a number' (or start and end must be seconds)."""
    text, read = READERS[what]
    p = tmp_path / "in"
    p.write_bytes(text.encode() + "\ufeff".encode() + text.replace(",", " , ").encode())
    with pytest.raises(GuideError, match=rf"^{p}:3: this line repeats the header \(two files joined "
                                         r"into one\?\); a header is the first line only: delete this one$"):
        read(p, site)


def _spreadsheet(text: str) -> bytes:
    """`text` as a spreadsheet saves it: a BOM, CRLF line ends."""
    return ("\ufeff" + text.replace("\n", "\r\n")).encode()


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_gzip_compressed_input_is_read_as_the_plain_one(site, tmp_path, what):
    """`gzip -c scans.csv > s.csv.gz` was refused as 'not UTF-8 text (the
    byte 0x8B...)': it is read decompressed, BOM and CRLF included, whatever
    the file is called."""
    text, read = READERS[what]
    plain = tmp_path / "plain.csv"
    plain.write_text(text)
    for name in ("in.csv.gz", "in.csv"):
        p = tmp_path / name
        p.write_bytes(gzip.compress(_spreadsheet(text)))
        assert read(p, site) == read(plain, site)
    with open_text(p, what) as f:  # the progress bar counts the bytes on disk
        f.read()
        assert bytes_read(f) == p.stat().st_size


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_gzip_compressed_input_names_its_lines_as_the_plain_one(site, tmp_path, what):
    """The messages that read the file again (a byte not UTF-8, a stray
    quote) read it decompressed, and count its lines as the reader did."""
    text, read = READERS[what]
    lines = text.splitlines()
    p = tmp_path / "in.csv.gz"
    p.write_bytes(gzip.compress("\r\n".join(lines + ["x\u00e9"]).encode("latin-1")))
    with pytest.raises(GuideError, match=rf"^{p}:3: not UTF-8 text \(the byte 0xE9, character 2 "):
        read(p, site)
    p.write_bytes(gzip.compress("\r\n".join(lines + ['"' + lines[1]] + lines[1:] * 3).encode()))
    with pytest.raises(GuideError, match=rf"^{p}:3: a quote \(\"\) opened on this line is not closed"):
        read(p, site)
    p.write_bytes(gzip.compress(_spreadsheet("\n".join(lines + [lines[1].replace(",", ",,", 1)]))))
    with pytest.raises(GuideError, match=rf"^{p}:3: "):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
def test_a_damaged_gzip_input_is_called_damaged(site, tmp_path, what):
    """A truncated download or copy: EOFError and zlib errors escaped the
    readers, or (a bad header) were taken for text."""
    text, read = READERS[what]
    data = gzip.compress((text + "\n" * 50_000).encode())  # blank lines: the rows are all valid
    p = tmp_path / "in.csv.gz"
    for cut in (data[:len(data) // 2], data[:5], data[:-4] + b"\0\0\0\0"):
        p.write_bytes(cut)
        with pytest.raises(GuideError, match=rf"^{p}: the gzip-compressed {what} is damaged \(.+\); "
                                             rf"compress the {what} again, or give it uncompressed$"):
            read(p, site)


def _zip(text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("scans.csv", text)
    return out.getvalue()


@pytest.mark.parametrize("what", CSV_READERS)
@pytest.mark.parametrize("pack, kind", [
    (lambda t: lzma.compress(t.encode()), r"xz-compressed, not a {what} \(CSV text\): decompress it first: "
     r"xz -dc in > in\.csv"),
    (lambda t: bz2.compress(t.encode()), r"bzip2-compressed, not a {what} \(CSV text\): decompress it first: "
                                         r"bzip2 -dc in > in\.csv"),
    (_zip, r"a zip archive \(an \.xlsx or \.ods workbook is one too\), not a {what} \(CSV text\): unzip it, or "
           r"export the sheet from the spreadsheet as CSV UTF-8"),
    (lambda t: gzip.compress(gzip.compress(t.encode())),
     r"gzip-compressed, and decompressed it is gzip-compressed, not a {what} \(CSV text\): decompress it "
     r"once first: gzip -dc in > in\.csv"),
])
def test_an_input_compressed_otherwise_is_refused_naming_the_format(site, tmp_path, what, pack, kind):
    """An xz, bzip2 or zip file (an .xlsx) was 'not UTF-8 text', or (bzip2's
    'BZh91AY&SY') a header lacking every column."""
    text, read = READERS[what]
    p = tmp_path / "in"
    p.write_bytes(pack(text))
    with pytest.raises(GuideError, match=rf"^{p}: is " + kind.format(what=what) + "$"):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
def test_column_names_are_matched_in_any_case(site, tmp_path, what):
    """`Visitor,T,Beacon,RSSI`, as a spreadsheet user writes a header, was
    'the header lacks visitor, t, beacon, rssi'."""
    text, read = READERS[what]
    header, rest = text.split("\n", 1)
    p = tmp_path / "in.csv"
    p.write_text(text)
    want = read(p, site)
    for written in (header.upper(), header.title(), " " + header.replace(",", " , ").title() + " "):
        p.write_text(written + "\n" + rest)
        assert read(p, site) == want
    # so the header again below, capitalised, is still the header again
    p.write_text(text + header.upper() + "\n" + rest)
    with pytest.raises(GuideError, match=rf"^{p}:3: this line repeats the header"):
        read(p, site)
    # and a column named twice in two spellings is named twice
    second = header.split(",")[1]
    p.write_text(header + "," + second.upper() + "\n" + rest.replace("\n", ",1\n"))
    with pytest.raises(GuideError, match=rf"^{p}:1: the header names the column {second} twice \(columns "
                                         rf"2, {header.count(',') + 2}: {second}, {second.upper()}\)"):
        read(p, site)


@pytest.mark.parametrize("what", CSV_READERS)
@pytest.mark.parametrize("sep, name, shown", [(";", "semicolons", ";"), ("\t", "tabs", r"\t")])
def test_a_file_separated_by_semicolons_or_tabs_is_told_to_use_commas(site, tmp_path, what, sep, name, shown):
    """A spreadsheet set to decimal commas exports `visitor;t;beacon;rssi`
    and `0,5`: it was 'the header lacks t, beacon, rssi'."""
    text, read = READERS[what]
    p = tmp_path / "in.csv"
    p.write_bytes(_spreadsheet(text.replace(",", sep).replace(".", ",").title()))
    header = text.split("\n")[0].title().replace(",", shown)
    with pytest.raises(GuideError, match=rf"^{p}:1: the columns are separated by {name} \(found "
                                         rf"{re.escape(header)}\); a {what} separates them with commas, "
                                         r"and writes decimals with a point: save it again as "
                                         r"comma-separated CSV \(in a spreadsheet: CSV UTF-8, comma-delimited\)$"):
        read(p, site)
