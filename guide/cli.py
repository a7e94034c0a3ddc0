"""The `guide` command line: one parser, subcommands found in guide.commands.

    $ guide settings --markdown          # or: python -m guide settings --markdown

`main(argv)` returns the exit status instead of exiting, so tests and other
programs can call it:

    >>> from guide.cli import main
    >>> main(["settings", "--json"])  # doctest: +SKIP
    0

Exit statuses: 0 success; 2 a user's mistake (a `GuideError`: bad zones.yaml,
a missing track, no Bluetooth adapter... printed as one message, never a
traceback), bad usage, or a named file the system would not let us read or
write (a full disk, a read-only folder); 130 interrupted with Ctrl-C. Anything
else that escapes is a bug in the guide, and its traceback is left visible
on purpose.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import math
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NoReturn

import guide
import guide.commands
from guide.csvlog import looped
from guide.errors import GuideError
from guide.files import temporary
from guide.site import Site

EPILOG = """\
examples:
  guide settings                      every trigger setting, its unit and default
  guide settings --zones zones.yaml   the values a site uses, and its per-exhibit overrides

Run 'guide COMMAND --help' for the options of a command and an example.
"""


def build_parser() -> argparse.ArgumentParser:
    """The parser, with one subparser per module of guide.commands."""
    parser = argparse.ArgumentParser(
        prog="guide",
        description="A proximity-triggered audio guide: BLE beacons start each "
                    "exhibit's narration in the visitor's language.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"guide {guide.__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(guide.commands.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"guide.commands.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    return guarded("guide", lambda: run(args))


def guarded(prog: str, run: Callable[[], int | None]) -> int:
    """`run()`'s exit status, with the statuses of the module docstring: a
    GuideError is one line on stderr, prefixed with `prog` (also simulate.py).
    Text the terminal's encoding lacks (a site named in Chinese under a
    Latin-1 locale) is printed escaped (\\u535a), not a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        status = run()
        return 0 if status is None else int(status)
    except GuideError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (guide settings | head): stop quietly
        return 141
    except OSError as e:
        if e.filename is None:
            raise  # not about a file the user named: a bug, keep its traceback
        target = f" -> {e.filename2}" if e.filename2 else ""
        print(f"{prog}: error: {e.filename}{target}: {e.strerror or e}", file=sys.stderr)
        return 2


def number(accepted: str, *, whole: bool = False, low: float | None = None,
           high: float | None = None) -> Callable[[str], float]:
    """The argparse type of a numeric option: a number as FORMATS.md writes
    them (csvlog.plain_float: ASCII digits, a sign, a point, an exponent; no
    '_', no other script's digits, no spaces), finite, a whole number (digits
    alone) when `whole`, from `low` to `high` where given. Anything else is a
    usage error (exit 2) that argparse prefixes with the option's name and
    that ends with `accepted`, the form wanted ("a whole number, 0 or more")."""
    from guide.csvlog import number_hint, plain_float

    def parse(text: str) -> float:
        shown = repr(text) if text != text.strip() or not text else text
        try:
            if text != text.strip():
                raise ValueError("padded")
            value = plain_float(text)
            if whole and not text.lstrip("+-").isdigit():
                raise ValueError("not whole")
        except ValueError:
            hint = number_hint(text) or (" (without the spaces)" if text.strip() and text != text.strip()
                                         else "")
            raise argparse.ArgumentTypeError(f"{shown} is not {'a whole number' if whole else 'a number'}"
                                             f"{hint}; give {accepted}") from None
        if not math.isfinite(value) or (low is not None and value < low) \
                or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{shown} is out of range; give {accepted}")
        return int(text) if whole else value
    return parse


seed = number("a seed: a whole number, 0 or more", whole=True, low=0)
"""argparse type of a random seed: a whole number, 0 or more."""


def rate(text: str) -> float:
    """argparse type of --rate: advertisements per second per beacon, in the
    radio model's range."""
    from guide.radio import RadioModel

    meta = RadioModel.__dataclass_fields__["rate_hz"].metadata
    return number(f"advertisements per second per beacon, from {meta['min']:g} to {meta['max']:g} "
                  "(10 on a scanner, 1 on a phone)", low=meta["min"], high=meta["max"])(text)


def guess(given: str, known: Iterable[str], names: Mapping[str, str] | None = None) -> str | None:
    """The one of `known` a user probably meant by `given`, or None: the same
    in other case, one whose name in `names` (e.g. 'French' for fr) it is,
    else the closest spelling."""
    known = list(known)
    folded = given.strip().casefold()
    for k in known:
        if folded in (k.casefold(), (names or {}).get(k, k).casefold()):
            return k
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    return close[0] if close else None


def not_one_of(option: str, given: str, known: Iterable[str], what: str,
               names: Mapping[str, str] | None = None) -> GuideError:
    """The error for an `option` naming none of `known` (`what` they are,
    e.g. "the visitors of scans.csv"): with 'did you mean' when one is close,
    and the first of them."""
    from guide.errors import listed

    known = sorted(known) if names is None else list(known)
    near = guess(given, known, names)
    hint = f"did you mean {near}? " if near is not None else ""
    shown = given if given.strip() and given == given.strip() else repr(given)
    return GuideError(f"{option} {shown}: not one of {what}; {hint}give one of "
                      f"{listed(known) or 'none'}")


def language(site: Site, given: str | None, option: str = "--lang") -> str:
    """The language `option` names (None: the site's first), one the site
    offers, else a GuideError saying which are (with 'did you mean')."""
    if given is None:
        return site.languages[0]
    if given not in site.languages:
        from guide.coverage import language_name

        raise not_one_of(option, given, site.languages, f"the languages {site.path} offers",
                         names={lang: language_name(lang) for lang in site.languages})
    return given


def output_file(path: str | os.PathLike[str], option: str, *,
                inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
                replaces: tuple[str, Callable[[Path], bool]] | None = None) -> Path:
    """The file an option names for a command to write, checked before any
    long work: GuideError naming `option` when it is empty, a folder (or
    ends in a slash), not a regular file (a device, a pipe), one of the
    command's `inputs` (what names it, e.g. "--zones" -> its path; None
    values are skipped), read-only, in a folder that cannot be created or
    written to, or behind a loop of symbolic links; with `replaces` = (what
    it writes, test), also when it exists, is not empty, and `test(path)`
    says it is not such a file (a command never writes over a file of
    another kind). Missing folders are
    created. A symbolic link is followed: the path returned is where the data
    goes, so replacing that file whole (write beside it, then rename) keeps
    the link."""
    text = os.fspath(path)
    if not text.strip():
        raise GuideError(f"{option}: give a file name")
    try:
        os.path.realpath(text, strict=True)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise GuideError(f"{option} {text}: {looped(e.filename or text, 'file')}") from None
    real = Path(os.path.realpath(text))
    if real.is_dir() or text.endswith(("/", os.sep)):
        raise GuideError(f"{option} {text}: is a folder; give a file name")
    if real.exists() and not real.is_file():
        raise GuideError(f"{option} {text}: is not a regular file (a device or a pipe); "
                         f"give a file name")
    for name, given in (inputs or {}).items():
        if given is not None and same_file(real, given):
            raise GuideError(f"{option} {text} is the file of {name}: writing it would destroy "
                             f"that; give another {option} path")
    above = real.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise GuideError(f"{option} {text}: {above} is a file, not a folder; give a path in a folder")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        with temporary(real):  # made and removed: the folder takes new files
            pass
    except OSError as e:
        raise GuideError(f"{option} {text}: cannot write in the folder {real.parent} "
                         f"({e.strerror or e}); make that folder writable, or write somewhere else") from None
    if real.exists():
        try:
            open(real, "rb+").close()  # opened for writing, not changed
        except OSError as e:
            raise GuideError(f"{option} {text}: cannot write to {real} ({e.strerror or e}); "
                             f"make it writable (chmod u+w {real})") from None
        if replaces is not None and real.stat().st_size > 0 and not replaces[1](real):
            raise GuideError(f"{option} {text}: the file exists and is not {replaces[0]}; give a "
                             "new file name, or move that file away first (it is left as it was)")
    return real


def starts_with(*magic: bytes) -> Callable[[Path], bool]:
    """For `output_file(replaces=...)`: a file whose first bytes are one of `magic`."""
    def test(path: Path) -> bool:
        with open(path, "rb") as f:
            head = f.read(max(len(m) for m in magic))
        return head.startswith(magic)
    return test


def site_inputs(site: Site, **logs: str | os.PathLike[str] | None) -> dict:
    """What a command reads, for `output_file(inputs=...)`: the zone map
    (`--zones`), every track it names, and `logs` (option name without the
    dashes -> path, e.g. scans=...)."""
    inputs: dict = {"--zones": site.path, **{f"--{k}": v for k, v in logs.items()}}
    for ex in site.exhibits:
        for rel in ex.tracks.values():
            inputs[f"the track {rel} of {ex.id}"] = site.track_path(rel)
    return inputs


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (a link, another spelling)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one is missing: compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def exit_with(status: int) -> NoReturn:
    """End the process with `status`. Only here, in a process of its own, is
    stdout pointed at /dev/null after a broken pipe (so flushing it at exit
    does not complain again); `main` itself never touches file descriptors,
    as it also runs inside tests."""
    if status == 141:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(status)


def entry() -> None:
    """The `guide` console script and `python -m guide`: `main`, then exit."""
    exit_with(main())
