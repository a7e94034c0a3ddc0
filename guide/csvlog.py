"""Opening the CSV files of FORMATS.md (scan logs, walks): one place for what
they share, so every reader takes the same liberties and names the same
problems.

    with open_csv(path, "scan log", ("visitor", "t", "beacon", "rssi")) as (f, reader, cols):
        iv, it, ib, ir = cols
        for row in reader: ...

Accepted (FORMATS.md: accept more, never less): a BOM (or two,
`header_cells`), columns in any order with padding and extra columns, column
names in any case (`Visitor,T`: `header_keys`), CRLF, and a file compressed
with gzip (`open_text`: `scans.csv.gz`, read as it streams). A missing file,
a folder, a pipe or a device (`open_input`), a binary file, one compressed or
archived otherwise (zip, an .xlsx, xz, bzip2...), an empty one, a header
lacking a column or naming one it reads twice (`check_header`, which says
when that is because the file is UTF-16 or its columns are separated by
semicolons or tabs), raises ScanLogError naming the file. Cells and lines
echoed in messages go through `short`, a header through `shown`; ids
(visitor, exhibit) are checked by `id_problem`.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import math
import os
import re
import shlex
import stat
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from guide.errors import ScanLogError

MAX_T = 7 * 24 * 3600.0  # s: no walk lasts a week; a larger t is an epoch or a millisecond time
MAX_COORDINATE = 100_000.0  # m from the site's origin: no museum is larger
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # NUL, tab, escape...: invisible or garbling in a message


def short(text: str, most: int = 24) -> str:
    """A cell (or, with a larger `most`, a line) as written, cut short if it
    is long (a run of 5000 digits), for a message (zones.py cuts scalars so too)."""
    return text if len(text) <= most else f"{text[:most - 4]}... ({len(text)} characters)"


def looped(path: str | os.PathLike, what: str) -> str:
    """The end of a message on a path that leads through a loop of symbolic
    links (ELOOP), saying how to mend it; `what` the file should be ("scan log")."""
    return (f"leads through a loop of symbolic links ({short(os.fspath(path), 200)} leads back to "
            f"itself): replace the link with the {what} itself, or a link to it")


def control_char(text: str) -> str | None:
    """The first control character in `text` (NUL, tab, line break, escape,
    DEL, C1...), which prints raw or garbles a terminal; None when it has none."""
    c = _CONTROL.search(text)
    return c.group() if c else None


def visible(text: str) -> str:
    """`text` with each control character written as an escape, as repr()
    writes it ('dome\\x00x'): for a message that echoes what was written."""
    return _CONTROL.sub(lambda c: repr(c.group())[1:-1], text)


def id_problem(text: str, name: str) -> str | None:
    """Why `text` (stripped) is not an id for column `name` ("visitor",
    "exhibit"): empty, or holding a control character, which would print raw
    (a NUL, an escape) wherever the id is named; None when it is one."""
    if not text:
        return f"the {name} is empty; give the {name}'s id"
    c = control_char(text)
    if c:
        return (f"the {name} {short(text)!r} holds the control character {c!r}; "
                f"ids are printable text: delete it")
    return None


def header_cells(header: list[str]) -> list[str]:
    """A header row's column names as the readers match them: each cell
    stripped of its padding, and the first of the BOMs before it (a file
    saved by two tools that each add one: `open_text` skips only the
    first, and the second is invisible in every editor)."""
    cols = [h.strip() for h in header]
    if cols:
        cols[0] = cols[0].lstrip("\ufeff").strip()
    return cols


def header_keys(cells: Iterable[str]) -> list[str]:
    """A header's cells (`header_cells`) as the readers match them against
    the FORMATS.md names: case aside, as a spreadsheet user capitalises
    them (`Visitor,T,Beacon,RSSI` names visitor,t,beacon,rssi)."""
    return [c.casefold() for c in cells]


def other_separator(path: str | os.PathLike, what: str, cols: list[str], columns: Iterable[str]
                    ) -> ScanLogError | None:
    """The error for a header `cols` (`header_cells`) lacking some of
    `columns` because its columns are separated by semicolons or tabs (a
    spreadsheet set to decimal commas exports `;`), when split so it names
    them all; None when it does not. Such a file is not read: its numbers
    would have decimal commas, and guessing from the rows is unreliable."""
    line = ",".join(cols)
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
        if sep in line and set(columns) <= set(header_keys(c.strip() for c in line.split(sep))):
            return ScanLogError(
                f"{path}:1: the columns are separated by {name} (found {shown(cols)}); a {what} "
                f"separates them with commas, and writes decimals with a point: save it again "
                f"as comma-separated CSV (in a spreadsheet: CSV UTF-8, comma-delimited)")
    return None


def shown(cells: Iterable[str]) -> str:
    """A header (its cells) as a message quotes it: control characters and
    BOMs written as escapes (`visible`), cut short; "a blank line" for no
    text at all (a first line of spaces)."""
    return short(visible(",".join(cells)).replace("\ufeff", "\\ufeff"), 80) or "a blank line"


def check_header(path: str | os.PathLike, what: str, cols: list[str], columns: Iterable[str]) -> None:
    """ScanLogError when the header `cols` (stripped) lacks one of `columns`,
    those the reader uses, or names one twice (case aside: `header_keys`):
    which of the two is meant is anyone's guess. A header lacking them
    because the file is UTF-16 without a byte-order mark (ASCII then reads
    as letters with NULs between) or separated by semicolons or tabs
    (`other_separator`) is said to be so."""
    columns = tuple(columns)
    keys = header_keys(cols)
    missing = [c for c in columns if c not in keys]
    if missing:
        if utf16(",".join(cols).encode("utf-8")):
            raise not_utf8(path, what)
        raise other_separator(path, what, cols, columns) or ScanLogError(
            f"{path}:1: the header lacks {', '.join(missing)}; "
            f"a {what} starts with the line {','.join(columns)} (found {shown(cols)})")
    for c in columns:
        at = [i for i, h in enumerate(keys) if h == c]
        if len(at) > 1:
            spelt = {cols[i] for i in at}
            spelt_as = "" if spelt == {c} else ": " + ", ".join(short(visible(cols[i])) for i in at)
            raise ScanLogError(f"{path}:1: the header names the column {c} twice (columns "
                               f"{', '.join(str(i + 1) for i in at)}{spelt_as}); a {what} names "
                               f"each column once: rename or delete all but one")


def header_again(row: list[str], index: Iterable[int], columns: Iterable[str]) -> str | None:
    """Why a row the reader cannot read is the header again (a file joined
    to another with `cat`, each with its header): its cells at `index` name
    `columns`; None when it is not. Only read on error paths."""
    cells = header_keys(header_cells([row[i] if i < len(row) else "" for i in index]))
    if cells != list(columns):
        return None
    return ("this line repeats the header (two files joined into one?); a header is the first "
            "line only: delete this one")


def plain_float(text: str) -> float:
    """float(text) for a number as FORMATS.md writes them, in plain ASCII:
    digits, a sign, a decimal point, an exponent (padding allowed; inf and
    nan too, for the caller to word). ValueError for what else float() would
    read: '1_0' (10) and the digits of other scripts ('١٠', '１０'), surely
    not what was meant. The scan-log reader inlines the same test."""
    if "_" in text or not text.isascii():
        raise ValueError(f"not a plain ASCII number: {text!r}")
    return float(text)


def number_hint(text: str) -> str:
    """For a message about a cell: how to write it when float() reads it and
    `plain_float` does not, else "" (not a number at all, or a plain one)."""
    try:
        float(text)
    except ValueError:
        return ""
    if "_" in text:
        return " (write it without the '_')"
    odd = next((c for c in text if not c.isascii()), None)
    return "" if odd is None else f" (write it with the digits 0-9; it holds {odd!r}, U+{ord(odd):04X})"


def time_problem(t: float, text: str, name: str = "t") -> str | None:
    """Why `t` (read from `text`) is not a FORMATS.md time, seconds since the
    visitor's walk began; None when it is one."""
    if not math.isfinite(t):
        return f"{name}={short(text.strip())} is not a number of seconds"
    if t < 0:
        return (f"{name}={short(text.strip())} is negative: times count the seconds since the "
                f"visitor's walk began")
    if t > MAX_T:
        return (f"{name}={short(text.strip())} is more than a week after the walk began: times count "
                f"the seconds since the visitor's walk began (convert epoch or millisecond times)")
    return None


def stray_quote(path: str | os.PathLike, upto: int) -> str | None:
    """"LINE: why" for the first line of `path`, up to line `upto` (where the
    reader stopped), with a quote it does not close, or None. FORMATS.md
    rows are one line each, but the csv module reads a stray quote on to the
    next quote or the end of the file, and reports the error there; this
    names the line to fix. Only read on error paths."""
    try:
        with io.TextIOWrapper(open_bytes(path, "file"), newline="", encoding="utf-8-sig",
                              errors="replace") as f:
            for n, text in enumerate(f, 1):
                if n > upto:
                    break
                if text.count('"') % 2:
                    return (f"{n}: a quote (\") opened on this line is not closed on it; each row "
                            "is one line: remove the stray quote, or close it")
    except (OSError, ScanLogError):
        pass
    return None


def unreadable(path: str | os.PathLike, line: int, error: Exception) -> ScanLogError:
    """The error for a csv.Error (or a row over several lines) at `line`: the
    stray quote above it, when that is the cause, or a cell longer than the
    csv module reads (a damaged file: a run of bytes with no comma)."""
    why = stray_quote(path, line)
    if why is None and "field larger than field limit" in str(error):
        why = (f"{line}: a cell is longer than {csv.field_size_limit()} characters, which no id or "
               "number is: the file is damaged or not the one meant; mend the line or give "
               "another file")
    why = why or f"{line}: not valid CSV text ({short(str(error), 120)})"
    return ScanLogError(f"{path}:{why}")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def utf16(raw: bytes) -> bool:
    """Whether `raw` looks like Notepad's "Unicode" (UTF-16): a byte-order
    mark, or a NUL beside most characters of its start, always on the same
    side (ASCII text in UTF-16), which UTF-8 would read as NULs or stop at
    the first accent with a byte that means nothing to staff."""
    if raw[:2] in _UTF16_BOMS:
        return True
    head = raw[:200]
    return any(head[i::2].count(0) > len(head) // 4 and 0 not in head[1 - i::2] for i in (0, 1))


def not_utf8(path: str | os.PathLike, what: str) -> ScanLogError:
    """The error for a file that is not UTF-8 text, naming the line and the
    byte: a decoder reads ahead, so where it stopped is not where the byte
    is. Lines end as the csv readers end them (LF, CRLF or a lone CR, as old
    Mac tools write), so the line is the one their other errors would name;
    a file in UTF-16 (`utf16`) is said to be UTF-16.
    A gzip-compressed file is read decompressed. Only read on error paths."""
    try:
        # Latin-1 maps each byte to one character: the raw bytes of each line,
        # split at LF, CRLF or CR (bytes a UTF-8 character never holds)
        with io.TextIOWrapper(open_bytes(path, what), encoding="latin-1", newline="") as f:
            for n, text in enumerate(f, 1):
                raw = text.encode("latin-1")
                if n == 1 and utf16(raw):
                    sign = ("it opens with a UTF-16 byte-order mark" if raw[:2] in _UTF16_BOMS
                            else "a NUL byte beside each letter")
                    return ScanLogError(
                        f"{path}:1: not UTF-8 text but UTF-16 ({sign}); save the {what} as UTF-8 "
                        "(in a spreadsheet: CSV UTF-8)")
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return ScanLogError(
                        f"{path}:{n}: not UTF-8 text (the byte 0x{raw[e.start]:02X}, character "
                        f"{len(raw[:e.start].decode('utf-8', 'replace')) + 1} of the line); save "
                        f"the {what} as UTF-8 (in a spreadsheet: CSV UTF-8)")
    except (OSError, ScanLogError):
        pass
    return ScanLogError(f"{path}: not UTF-8 text; save the {what} as UTF-8")


class NotRegular(OSError):
    """What `open_input` raises for a pipe, a device or a socket; `kind` says
    which ("a pipe (FIFO)"), for the message."""

    def __init__(self, path: str | os.PathLike, kind: str):
        super().__init__(errno.EINVAL, f"is {kind}, not a regular file", os.fspath(path))
        self.kind = kind


def open_input(path: str | os.PathLike, mode: str = "r", **kwargs: Any) -> IO[Any]:
    """open(path, mode, **kwargs) for reading a file a user named as an input
    (zone map, scan log, walk, truth), refusing what is not a regular file
    once a symbolic link is followed: IsADirectoryError for a folder (as
    open() says it), NotRegular for a pipe, a device or a socket, which a
    reader would wait on for ever (a FIFO with no writer) or read without end
    (/dev/zero), never opened. Other OSErrors as open() raises them."""
    mode_bits = os.stat(path).st_mode
    if not stat.S_ISREG(mode_bits):
        if stat.S_ISDIR(mode_bits):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        raise NotRegular(path, _kind(mode_bits))
    # O_NONBLOCK: should a pipe replace the file since the stat, opening it
    # does not wait for a writer, and fstat says what it is
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode_bits = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode_bits):
            raise NotRegular(path, _kind(mode_bits))
        os.set_blocking(fd, True)
        return open(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def _kind(mode_bits: int) -> str:
    """What a file that is not a regular one is, for a message."""
    if stat.S_ISFIFO(mode_bits):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode_bits) or stat.S_ISBLK(mode_bits):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode_bits) else "a special file"


# What a file opens with when it is compressed or archived rather than text,
# what that is, and how to get the text out of it (gzip is read: `open_bytes`)
_PACKED = (
    (re.compile(rb"PK\x03\x04|PK\x05\x06"), "a zip archive (an .xlsx or .ods workbook is one too)",
     "unzip it, or export the sheet from the spreadsheet as CSV UTF-8"),
    (re.compile(rb"\xfd7zXZ\x00"), "xz-compressed", "decompress it first: xz -dc FILE > OUT"),
    (re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)"), "bzip2-compressed", "decompress it first: bzip2 -dc FILE > OUT"),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd-compressed", "decompress it first: zstd -dc FILE > OUT"),
    (re.compile(rb"7z\xbc\xaf\x27\x1c"), "a 7-Zip archive", "extract it first: 7z x FILE"),
    (re.compile(rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), "an Excel workbook (.xls)",
     "export the sheet from the spreadsheet as CSV UTF-8"),
)
_GZIP = b"\x1f\x8b"


class _Gunzip(gzip.GzipFile):
    """A gzip-compressed input read decompressed, closing the file under it
    when closed, and raising ScanLogError naming the file when the data is
    damaged (truncated, a bad checksum) wherever the reader has got to."""

    def __init__(self, raw: IO[bytes], path: str | os.PathLike, what: str):
        super().__init__(fileobj=raw, mode="rb")
        self._raw, self._path, self._what = raw, path, what

    def raw_tell(self) -> int:
        """How far into the compressed bytes on disk the reading is."""
        return self._raw.tell()

    def _damaged(self, e: Exception) -> ScanLogError:
        return ScanLogError(f"{self._path}: the gzip-compressed {self._what} is damaged "
                            f"({short(str(e), 80)}); compress the {self._what} again, or give "
                            f"it uncompressed")

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _naming_damage(name: str):
    """GzipFile's reading method `name`, raising `_Gunzip._damaged` for damaged data."""
    read = getattr(gzip.GzipFile, name)

    def method(self: _Gunzip, *args: Any) -> bytes:
        try:
            return read(self, *args)
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise self._damaged(e) from None
    return method


for _name in ("read", "read1", "peek", "readline"):  # all a TextIOWrapper or open_bytes calls
    setattr(_Gunzip, _name, _naming_damage(_name))
del _name


def _packed(head: bytes, path: str | os.PathLike) -> tuple[str, str] | None:
    """What a file `path` opening with `head` is and how to get its text,
    when it is compressed or archived other than with gzip; None otherwise."""
    for magic, kind, how in _PACKED:
        if magic.match(head):
            return kind, _command(how, path)
    return None


def _command(how: str, path: str | os.PathLike) -> str:
    """`how` with FILE the file's name, OUT the name to decompress it to
    (without its .xz or such, or with .csv added), quoted for a shell."""
    p = Path(path)
    out = p.stem if p.suffix.lower() in (".gz", ".xz", ".bz2", ".zst") and p.stem else p.name + ".csv"
    return how.replace("FILE", shlex.quote(short(p.name, 80))).replace("OUT", shlex.quote(short(out, 80)))


def open_bytes(path: str | os.PathLike, what: str) -> IO[bytes]:
    """`path` opened for reading as bytes, decompressed if it is gzip-
    compressed (by its first bytes, whatever its name): the bytes a reader
    takes for the text. ScanLogError naming the file when it is compressed
    or archived otherwise (zip, xz, bzip2...: saying how to get the text),
    or damaged gzip; OSError (NotRegular...) as `open_input` raises it."""
    raw = open_input(path, "rb")
    try:
        head = raw.peek(16)[:16]
        if head.startswith(_GZIP):
            f: IO[bytes] = _Gunzip(raw, path, what)
            try:
                inner = f.peek(16)[:16]  # a truncated or bad header shows here
                packed = _packed(inner, path) or (
                    ("gzip-compressed", _command("decompress it once first: gzip -dc FILE > OUT", path))
                    if inner.startswith(_GZIP) else None)
                if packed:
                    raise ScanLogError(f"{path}: is gzip-compressed, and decompressed it is "
                                       f"{packed[0]}, not a {what} (CSV text): {packed[1]}")
            except BaseException:
                f.close()
                raise
            return f
        packed = _packed(head, path)
        if packed:
            raise ScanLogError(f"{path}: is {packed[0]}, not a {what} (CSV text): {packed[1]}")
    except BaseException:
        raw.close()
        raise
    return raw


def bytes_read(f: IO[str]) -> int:
    """How far into its file on disk `f` (from `open_text`) has read, for a
    progress bar against the file's size: into the compressed bytes, when
    it is gzip-compressed."""
    b = f.buffer  # type: ignore[attr-defined]
    return b.raw_tell() if isinstance(b, _Gunzip) else b.tell()


def open_text(path: str | os.PathLike, what: str) -> IO[str]:
    """`path` opened as UTF-8 text for the csv module (a BOM skipped:
    spreadsheets write one; decompressed as it is read when gzip-compressed,
    `open_bytes`); ScanLogError naming the file and `what` it is ("ground
    truth") when it cannot be: missing, a folder, unreadable, a pipe or a
    device (see `open_input`), compressed or archived otherwise."""
    try:
        return io.TextIOWrapper(open_bytes(path, what), newline="", encoding="utf-8-sig")
    except NotRegular as e:
        raise ScanLogError(f"{path}: is {e.kind}, not a regular file: the {what} is read from "
                           f"a file; save it to one and give that file's path") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ScanLogError(f"{path}: {looped(e.filename or path, what)}") from None
        raise ScanLogError(f"{path}: cannot open the {what} ({e.strerror})") from None


@contextmanager
def open_csv(path: str | os.PathLike, what: str, columns: tuple[str, ...]
             ) -> Iterator[tuple[IO[str], Any, tuple[int, ...]]]:
    """The open file (`open_text`), a csv.reader past the header, and the
    index of each of `columns` in it (named in any case: `header_keys`).
    `what` names the file in errors ("scan log", "walk")."""
    path = Path(path)
    header_line = ",".join(columns)
    f = open_text(path, what)
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except UnicodeDecodeError:
            raise not_utf8(path, what) from None
        except csv.Error as e:
            raise unreadable(path, max(reader.line_num, 1), e) from None
        if header is None:
            raise ScanLogError(f"{path}: the {what} is empty; it needs the header {header_line}")
        cols = header_cells(header)
        keys = header_keys(cols)
        check_header(path, what, cols, columns)
        yield f, reader, tuple(keys.index(c) for c in columns)
