"""Everything that can be checked about a site before visitors arrive.

`guide check` runs this: the zone map's own checks (`guide.zones.load_zones`,
every problem with its line), then every track decoded in full (the same
ffmpeg conversion the device plays with, streamed a chunk at a time by
`guide.audio.stream`, so a long track costs no more memory than a short one),
its length (at most `guide.tracks.MAX_SECONDS`) and whether it holds any
sound, then the things that load but are probably mistakes:

    report = check_site("zones.yaml")
    print(format_report(report))
    sys.exit(0 if report.ok else 1)     # warnings alone are fine

Severities: an *error* means visitors would miss something (the zone map does
not load, a track cannot be played); a *warning* is very likely a mistake
(a silent track, a beacon no exhibit uses, an exhibit some visitors get no
narration at); a *note* is for information (what falls back to which
language, audio files no exhibit uses).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from guide import tracks
from guide.errors import GuideError, ZoneMapError, counted
from guide.site import Site

SEVERITIES = ("error", "warning", "note")
SILENT_DBFS = -60.0  # a track whose loudest sample is below this holds no sound
SOUND_DBFS = -45.0  # a 50 ms window louder than this is sound (speech is -30..-10)
WINDOW = 0.05  # s
LEADING_SILENCE = 3.0  # s of silence at the start before visitors think it is broken
TRAILING_SILENCE = 8.0  # s of silence at the end that keeps a visitor waiting
HEADER_DRIFT = 1.0  # s between the length in the header and the decoded length
AUDIO_SUFFIXES = frozenset({".opus", ".ogg", ".oga", ".mp3", ".wav", ".flac", ".m4a", ".aac", ".webm"})


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One thing to tell staff: how bad, about what, and what to do."""

    severity: str  # one of SEVERITIES
    subject: str  # what it is about: a file:line, a track path, an exhibit or beacon id
    message: str  # what is wrong and how to fix it

    def as_dict(self) -> dict:
        return {"severity": self.severity, "subject": self.subject, "message": self.message}


@dataclass(frozen=True, kw_only=True)
class TrackInfo:
    """One audio file of the zone map, as decoded."""

    path: str  # relative to tracks_dir, as in zones.yaml
    used_by: tuple[tuple[str, str], ...]  # (exhibit id, language)
    seconds: float | None = None  # decoded length; None when it cannot be decoded
    header_seconds: float | None = None  # the length its header gives, if any
    peak_dbfs: float | None = None  # loudest sample (-inf for digital silence)
    leading_silence: float | None = None  # s before the first sound
    trailing_silence: float | None = None  # s after the last sound
    error: str | None = None  # why it cannot be played (undecodable, or too long: seconds says how long)

    def as_dict(self) -> dict:
        def num(x: float | None, nd: int) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, nd)
        return {"path": self.path, "used_by": [{"exhibit": e, "lang": lang} for e, lang in self.used_by],
                "seconds": num(self.seconds, 2), "header_seconds": num(self.header_seconds, 2),
                "peak_dbfs": num(self.peak_dbfs, 1),
                "leading_silence_s": num(self.leading_silence, 2),
                "trailing_silence_s": num(self.trailing_silence, 2), "error": self.error}


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    zones: str
    site: Site | None  # None when the zone map does not load
    findings: tuple[Finding, ...]
    tracks: tuple[TrackInfo, ...] = ()

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        """No errors (warnings and notes do not count)."""
        return self.count("error") == 0

    def as_dict(self) -> dict:
        site = self.site
        return {
            "zones": self.zones, "site": site.name if site else None, "ok": self.ok,
            "errors": self.count("error"), "warnings": self.count("warning"),
            "exhibits": len(site.exhibits) if site else None,
            "beacons": len(site.beacons) if site else None,
            "findings": [f.as_dict() for f in self.findings],
            "tracks": [t.as_dict() for t in self.tracks],
        }


def check_site(path: str | os.PathLike[str], *, progress: bool = False, jobs: int = 4) -> CheckReport:
    """Check the zone map at `path` and everything it refers to; tracks are
    decoded `jobs` at a time."""
    from guide.zones import load_zones

    zones = str(path)
    try:
        site = load_zones(path)
    except ZoneMapError as e:
        # nothing else can be trusted until the file loads: report its problems only
        return CheckReport(zones=zones, site=None, findings=tuple(
            Finding(severity="error", subject=_where(p.file, p.line, p.column), message=p.message)
            for p in e.problems))
    findings: list[Finding] = []
    infos = _check_tracks(site, progress, jobs, findings)
    _check_languages(site, findings)
    _check_beacons(site, findings)
    _check_shared_tracks(site, findings)
    _check_stray_files(site, findings)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])  # stable: within a severity, as found
    return CheckReport(zones=zones, site=site, findings=tuple(findings), tracks=infos)


def _where(file: str, line: int | None, column: int | None) -> str:
    out = file
    if line is not None:
        out += f":{line}"
        if column is not None:
            out += f":{column}"
    return out


# --------------------------------------------------------------------- tracks

def _check_tracks(site: Site, progress: bool, jobs: int, findings: list[Finding]) -> tuple[TrackInfo, ...]:
    users: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in site.exhibits:
        for lang, rel in e.tracks.items():
            users[rel].append((e.id, lang))
    for lang, rel in site.intro.items():  # the spoken welcome must decode too
        users[rel].append(("intro", lang))
    paths = sorted(users)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(paths), desc="decoding tracks", unit="track", leave=False, disable=None)

    def one(rel: str) -> TrackInfo:
        path = site.track_path(rel)
        try:
            info = replace(_measure(rel, tuple(users[rel]), path), header_seconds=_header(path))
        except GuideError as e:
            return TrackInfo(path=rel, used_by=tuple(users[rel]), error=str(e))
        finally:
            if bar is not None:
                bar.update()
        if info.seconds is not None and info.seconds > tracks.MAX_SECONDS:
            info = replace(info, error=str(tracks.TrackTooLong(path, info.seconds)))
        return info

    # each decode is an ffmpeg process: run a few at once
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        infos = tuple(pool.map(one, paths))
    if bar is not None:
        bar.close()
    silent: list[TrackInfo] = []
    failed = {info.path for info in infos if info.error is not None}
    for info in infos:
        if info.error is not None:
            findings.append(Finding(severity="error", subject=f"track {info.path}", message=(
                f"cannot be played: {tracks.reason(info.error, site.track_path(info.path))}; "
                f"{_instead(site, info, failed)}")))
            continue
        if info.peak_dbfs is not None and info.peak_dbfs < SILENT_DBFS:
            silent.append(info)
            continue
        if (info.seconds is not None and info.seconds >= WINDOW
                and info.leading_silence is not None and info.leading_silence >= info.seconds):
            # no 50 ms of it reaches SOUND_DBFS: not a silence at its start, all of it too quiet
            used = ", ".join(f"{e} ({lang})" for e, lang in info.used_by)
            findings.append(Finding(severity="warning", subject=f"track {info.path}", message=(
                f"is too quiet to hear: none of its {_seconds(info.seconds)} reaches "
                f"{SOUND_DBFS:.0f} dBFS ({_dbfs(info.peak_dbfs)}; speech is -30 to -10 dBFS); "
                f"visitors at {used} would hear next to nothing: export the narration again "
                "at a normal level")))
            _check_header(site, info, findings)
            continue
        if info.leading_silence is not None and info.leading_silence >= LEADING_SILENCE:
            findings.append(Finding(severity="warning", subject=f"track {info.path}", message=(
                f"starts with {info.leading_silence:.1f} s of silence; visitors may think the "
                "guide is broken and walk on: trim the start")))
        if info.trailing_silence is not None and info.trailing_silence >= TRAILING_SILENCE:
            findings.append(Finding(severity="note", subject=f"track {info.path}", message=(
                f"ends with {info.trailing_silence:.1f} s of silence, during which nothing "
                "else can start: trim the end")))
        _check_header(site, info, findings)
    if 0 < len(silent) <= 3:
        for info in silent:
            used = ", ".join(f"{e} ({lang})" for e, lang in info.used_by)
            findings.append(Finding(severity="warning", subject=f"track {info.path}", message=(
                f"is silent ({_seconds(info.seconds)}, {_dbfs(info.peak_dbfs)}); visitors at "
                f"{used} would hear nothing: export the narration again")))
    elif silent:
        # one line for many: a folder of placeholders, not many separate mistakes
        findings.append(Finding(severity="warning", subject="tracks", message=(
            f"{len(silent)} are silent: {_listing([t.path for t in silent])}; visitors would hear "
            "nothing at those exhibits: export the narrations again")))
    return infos


def _instead(site: Site, info: TrackInfo, failed: set[str]) -> str:
    """What the visitors meeting the broken track `info` hear instead, as the
    device plays it: at an exhibit, each language whose chain reaches this
    track passes over it (and any other of `failed`) to the next language
    of the chain with a track that plays, else nothing; an intro is not
    replaced. E.g. "at dome (en): visitors choosing English hear it in
    French instead; at v2 (de): visitors choosing German hear nothing"."""
    from guide.coverage import language_name

    parts = []
    for exhibit_id, lang in info.used_by:
        if exhibit_id == "intro":
            parts.append(f"visitors choosing {language_name(lang)} hear no welcome")
            continue
        exhibit_tracks = site.exhibit(exhibit_id).tracks
        heard: dict[str | None, list[str]] = defaultdict(list)  # language played -> visitors' languages
        for chosen in dict.fromkeys((*site.languages, lang)):
            met = False
            for candidate in site.chain(chosen):
                rel = exhibit_tracks.get(candidate)
                if rel is None:
                    continue
                if rel not in failed:
                    break
                met = met or candidate == lang
            else:
                candidate = None
            if met:
                heard[candidate].append(language_name(chosen))
        told = [f"visitors choosing {' or '.join(who)} hear nothing" if played is None else
                f"visitors choosing {' or '.join(who)} hear it in {language_name(played)} instead"
                for played, who in heard.items()]
        parts.append(f"at {exhibit_id} ({lang}): {', '.join(told)}")
    return "; ".join(parts)


def _measure(rel: str, used_by: tuple[tuple[str, str], ...], path: Path) -> TrackInfo:
    """Length, peak and silences of the track at `path`, decoded a chunk at a
    time (the 50 ms windows run on across chunks)."""
    import numpy as np

    from guide.audio import RATE, stream

    n = int(RATE * WINDOW)
    loudness = 32768 * 10 ** (SOUND_DBFS / 20)
    frames = peak = windows = 0
    first = last = None  # the first and last window with sound
    carry = np.zeros(0, dtype="<i2")  # the start of a window the next chunk completes
    for chunk in stream(path):
        frames += len(chunk)
        if not len(chunk):
            continue
        peak = max(peak, int(np.abs(chunk.astype(np.int32)).max()))
        a = np.concatenate((carry, chunk)) if len(carry) else chunk
        k = len(a) // n
        if k:
            x = a[:k * n].astype(np.float64).reshape(k, n)
            loud = np.nonzero(np.sqrt((x * x).mean(axis=1)) >= loudness)[0]
            if loud.size:
                first = windows + int(loud[0]) if first is None else first
                last = windows + int(loud[-1])
            windows += k
        carry = a[k * n:]
    seconds = frames / RATE
    peak_dbfs = 20 * math.log10(peak / 32768) if peak else -math.inf
    lead = trail = seconds
    if first is not None and last is not None:
        lead = first * WINDOW
        trail = max(0.0, seconds - (last + 1) * WINDOW)
    return TrackInfo(path=rel, used_by=used_by, seconds=seconds, peak_dbfs=peak_dbfs,
                     leading_silence=lead, trailing_silence=trail)


def _header(path: Path) -> float | None:
    """The length the file's header gives (`guide.tracks.length`), or None."""
    try:
        return tracks.length(path)
    except GuideError:
        return None  # decodes but has no length in its header: ffmpeg coped, so may the device


def _check_header(site: Site, info: TrackInfo, findings: list[Finding]) -> None:
    """The simulator and coverage figures read lengths from file headers
    (`guide.tracks.duration`); a header that disagrees with the audio gives
    wrong figures and, for some players, a track cut short."""
    header = info.header_seconds
    if header is None:
        return
    if info.seconds is not None and abs(header - info.seconds) > HEADER_DRIFT:
        findings.append(Finding(severity="warning", subject=f"track {info.path}", message=(
            f"its header says {_seconds(header)} but the audio lasts {_seconds(info.seconds)}; "
            "export it again (lengths shown by guide coverage and used by the simulator "
            "come from the header)")))


def _seconds(s: float | None) -> str:
    if s is None:
        return "?"
    m, sec = divmod(int(round(s)), 60)
    return f"{m}:{sec:02d}" if m else f"{s:.1f} s"


def _dbfs(x: float | None) -> str:
    return "every sample is zero" if x is None or not math.isfinite(x) else f"loudest sample {x:.0f} dBFS"


# --------------------------------------------------------------------- the map

def _check_languages(site: Site, findings: list[Finding]) -> None:
    from guide.coverage import WORDED, language_name, worded_in

    unworded = [lang for lang in site.languages if not worded_in(lang)]
    if unworded:
        # the device tells each visitor at the start how much exists in their language
        names = ", ".join(lang if language_name(lang) == lang else f"{language_name(lang)} ({lang})"
                          for lang in unworded)
        findings.append(Finding(severity="warning", subject="languages", message=(
            f"the coverage told to visitors as their visit begins is worded in "
            f"{', '.join(language_name(w) for w in WORDED)} only: visitors choosing {names} "
            "will be told it in English; "
            "add a wording for their language to guide/coverage.py")))
    for e in site.exhibits:
        if not e.tracks:  # tracks: {}, its narrations not recorded yet: no fallback helps
            findings.append(Finding(severity="warning", subject=f"exhibit {e.id}", message=(
                "has no track in any language (tracks: {}): visitors there hear nothing, "
                "whatever their language; add its tracks to zones.yaml once recorded")))
    for lang in site.languages:
        none = [e.id for e in site.exhibits
                if e.tracks and site.track_for(e.id, lang) is None]
        chain = site.chain(lang)[1:]
        if none:
            tried = f" nor in {', '.join(chain)}" if chain else " and it has no fallback"
            # a fallback that helps: the languages with a track at those exhibits (each
            # has one: those with none are reported above), in the site's order
            helps = [other for other in site.languages if other != lang
                     and any(other in site.exhibit(e).tracks for e in none)]
            findings.append(Finding(severity="warning", subject=f"language {lang}", message=(
                f"visitors choosing {language_name(lang)} hear nothing at {_listing(none)}: "
                f"no track in {lang}{tried}; add a track, or a fallback for {lang} in zones.yaml "
                f"(fallback: {{{lang}: [{', '.join(helps)}]}})")))
        by_lang: dict[str, list[str]] = defaultdict(list)
        for e in site.exhibits:
            found = site.track_for(e.id, lang)
            if found is not None and found[0] != lang:
                by_lang[found[0]].append(e.id)
        for played, ids in by_lang.items():
            findings.append(Finding(severity="note", subject=f"language {lang}", message=(
                f"{counted(len(ids), 'exhibit')} {'plays' if len(ids) == 1 else 'play'} in {language_name(played)} "
                f"for visitors choosing {language_name(lang)}: {_listing(ids)}")))


def _check_beacons(site: Site, findings: list[Finding]) -> None:
    used = {e.beacon for e in site.exhibits}
    for beacon_id in site.beacons:
        if beacon_id not in used:
            findings.append(Finding(severity="warning", subject=f"beacon {beacon_id}", message=(
                "is defined but no exhibit uses it: give it an exhibit (beacon: "
                f"{beacon_id}) or remove it from beacons:")))


def _check_shared_tracks(site: Site, findings: list[Finding]) -> None:
    users: dict[str, list[str]] = defaultdict(list)
    for e in site.exhibits:
        for rel in set(e.tracks.values()):
            users[rel].append(e.id)
    for rel, ids in users.items():
        if len(ids) > 1:
            findings.append(Finding(severity="warning", subject=f"track {rel}", message=(
                f"plays at {len(ids)} exhibits ({', '.join(ids)}); a visitor who has heard it at "
                "one hears it again at the others: check the paths in zones.yaml")))


def _check_stray_files(site: Site, findings: list[Finding]) -> None:
    """Audio files in tracks_dir that no exhibit (nor the intro) uses: often a
    track recorded for an exhibit and never added to zones.yaml. A file an
    exhibit reaches through a symbolic link is used (and so is a link that
    leads to a used file: deleting it might break the chain)."""
    root = site.tracks_dir
    if not root.is_dir():
        return
    used = {os.path.normpath(rel) for e in site.exhibits for rel in e.tracks.values()}
    used |= {os.path.normpath(rel) for rel in site.intro.values()}
    reached = {_real(site.track_path(rel)) for rel in used} - {None}
    exhibits = {e.id: e for e in site.exhibits}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if p.suffix.lower() not in AUDIO_SUFFIXES or name.startswith("."):
                continue
            rel = os.path.normpath(p.relative_to(root))
            if rel in used or _real(p) in reached:
                continue
            hint = "delete it, or add it to an exhibit's tracks"
            parts = Path(rel).parts
            if len(parts) == 2 and Path(parts[1]).stem in exhibits:
                lang, ex = parts[0], exhibits[Path(parts[1]).stem]
                if lang in site.languages and lang not in ex.tracks:
                    hint = f"did you mean to add it to {ex.id}'s tracks ({lang}: {Path(rel).as_posix()})?"
            findings.append(Finding(severity="note", subject=f"file {Path(rel).as_posix()}",
                                    message=f"is in tracks_dir but no exhibit uses it: {hint}"))


def _real(path: Path) -> Path | None:
    """Where `path` leads, symbolic links followed; None for a loop of links."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a loop, before Python 3.13
        return None


def _listing(ids: list[str], most: int = 8) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


# --------------------------------------------------------------------- output

def format_report(report: CheckReport, *, tracks: bool = False) -> str:
    """The report as staff read it; `tracks` lists every track and its length."""
    site = report.site
    lines = [f"guide check: {report.zones}" + (f" ({site.name})" if site else "")]
    if site is None:
        lines.append("The zone map does not load; nothing else was checked. Fix these first:")
    labels = {"error": "Errors (visitors would miss something)",
              "warning": "Warnings (probably mistakes)", "note": "Notes"}
    for severity in SEVERITIES:
        items = [f for f in report.findings if f.severity == severity]
        if not items:
            continue
        lines += ["", f"{labels[severity]}:"]
        lines += [f"  {f.subject}: {f.message}" for f in items]
    if site is not None and report.tracks:
        lines += ["", "Tracks:"]
        per_lang: dict[str, list[TrackInfo]] = defaultdict(list)
        for t in report.tracks:
            for lang in sorted({lang for _, lang in t.used_by}):
                per_lang[lang].append(t)
        for lang in site.languages:
            ts = per_lang.get(lang, [])
            good = [t.seconds for t in ts if t.error is None and t.seconds is not None]
            long = sum(1 for t in ts if t.error is not None and t.seconds is not None)
            bad = len(ts) - len(good) - long
            lines.append(f"  {lang}: {counted(len(ts), 'track')}, {_duration(sum(good))}"
                         + (f", {bad} unreadable" if bad else "") + (f", {long} too long" if long else ""))
        if tracks:
            width = max(len(t.path) for t in report.tracks)
            for t in report.tracks:
                state = (_seconds(t.seconds) if t.error is None else "UNREADABLE" if t.seconds is None
                         else f"{_seconds(t.seconds)} TOO LONG")
                lines.append(f"    {t.path.ljust(width)}  {state}")
    e, w = report.count("error"), report.count("warning")
    lines.append("")
    if site is not None:
        lines.append(f"{counted(len(site.exhibits), 'exhibit')}, {counted(len(site.beacons), 'beacon')}, "
                     f"{counted(len(report.tracks), 'track')}: {counted(e, 'error')}, {counted(w, 'warning')}.")
    else:
        lines.append(f"{counted(e, 'error')}.")
    lines.append("All is well." if e == 0 and w == 0 else
                 "Fix the errors before visitors use this site." if e else
                 "No errors; read the warnings.")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    """'2 h 05 min', '3 min', '59 s': as guide coverage gives a language's
    narration (`coverage.length`)."""
    from guide.coverage import length

    n, unit = length(seconds)
    if unit == "seconds":
        return f"{n} s"
    h, m = divmod(n, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"
