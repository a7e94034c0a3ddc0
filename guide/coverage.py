"""How much of the visit exists in each language: the honest figures a
visitor is told before the first exhibit, and staff see with `guide coverage`.

A visitor who chose a language hears, at each exhibit, its track in that
language if there is one, else the first language of the fallback chain that
has one (`Site.track_for`), else nothing. Coverage counts both sides:

    >>> sentence(coverage(site, "en"))  # doctest: +SKIP
    'English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French'

"Minutes of the visit" are the minutes that visitor would hear in all: their
own language's tracks plus the fallback tracks played instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError

from guide import tracks
from guide.site import Site


@dataclass(frozen=True, kw_only=True)
class Coverage:
    lang: str
    exhibits: int  # exhibits narrated in `lang` itself
    total_exhibits: int  # every exhibit of the site
    seconds: float  # narration in `lang` itself
    total_seconds: float  # narration heard in all: `lang` plus fallbacks
    fallback: Mapping[str, tuple[str, ...]]  # language played instead -> exhibit ids, chain order
    silent: tuple[str, ...]  # exhibits with no track in `lang` nor in any fallback

    @property
    def complete(self) -> bool:
        return self.exhibits == self.total_exhibits

    def as_dict(self) -> dict:
        """JSON-able, for `guide coverage --json`."""
        return {"lang": self.lang, "name": language_name(self.lang),
                "exhibits": self.exhibits, "total_exhibits": self.total_exhibits,
                "seconds": round(self.seconds, 1), "total_seconds": round(self.total_seconds, 1),
                "fallback": {k: list(v) for k, v in self.fallback.items()},
                "silent": list(self.silent), "sentence": sentence(self)}


def coverage(site: Site, lang: str, *,
             duration: Callable[[Path], float] = tracks.duration) -> Coverage:
    """The coverage of the visit for a visitor who chose `lang`.

    Raises TrackError (naming the file) if a track cannot be read: coverage
    that skipped it would not be honest."""
    chosen = {e.id: site.track_for(e.id, lang) for e in site.exhibits}
    paths = sorted({site.track_path(found[1]) for found in chosen.values() if found})
    # ffprobe takes ~0.1 s a file: ask in parallel (a site has dozens of tracks)
    with ThreadPoolExecutor(max_workers=8) as pool:
        lengths = dict(zip(paths, pool.map(duration, paths)))
    own = 0
    seconds = total = 0.0
    fallback: dict[str, list[str]] = {}
    silent: list[str] = []
    for exhibit in site.exhibits:
        found = chosen[exhibit.id]
        if found is None:
            silent.append(exhibit.id)
            continue
        played, relpath = found
        length = lengths[site.track_path(relpath)]
        total += length
        if played == lang:
            own += 1
            seconds += length
        else:
            fallback.setdefault(played, []).append(exhibit.id)
    order = {code: i for i, code in enumerate(site.chain(lang))}
    return Coverage(
        lang=lang, exhibits=own, total_exhibits=len(site.exhibits),
        seconds=seconds, total_seconds=total,
        fallback={k: tuple(v) for k, v in sorted(fallback.items(), key=lambda kv: order.get(kv[0], len(order)))},
        silent=tuple(silent))


def site_coverage(site: Site, *, duration: Callable[[Path], float] = tracks.duration) -> tuple[Coverage, ...]:
    """Coverage for each language the site offers, in the zone map's order."""
    return tuple(coverage(site, lang, duration=duration) for lang in site.languages)


def language_name(code: str) -> str:
    """'English' for 'en', 'Portuguese (Brazil)' for 'pt-BR'; the code itself
    for a tag nobody knows."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name("en")
    except (ValueError, TypeError, UnknownLocaleError):
        name = Locale("en").languages.get(code)
    return name or code


def sentence(c: Coverage) -> str:
    """The sentence told to the visitor (and logged) at the start of a visit.

    >>> sentence(Coverage(lang="en", exhibits=14, total_exhibits=16, seconds=2280,
    ...     total_seconds=2700, fallback={"fr": ("a", "b")}, silent=()))
    'English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French'
    """
    name = language_name(c.lang)
    if c.complete:
        return f"{name}: all {c.total_exhibits} exhibits, {_amount(c.total_seconds)}"
    part, whole, unit = figures(c)
    text = f"{name}: {c.exhibits} of {c.total_exhibits} exhibits, {part} of {whole} {unit}"
    if c.fallback:
        langs = [language_name(code) for code in c.fallback]
        if len(langs) > 1:
            langs = [f"{language_name(code)} ({len(ids)})" for code, ids in c.fallback.items()]
        n = sum(map(len, c.fallback.values()))
        others = "the others" if not c.silent else f"{n} other{'s' if n != 1 else ''}"
        text += f"; {others} play{'s' if others == '1 other' else ''} in {_join(langs)}"
    if c.silent:
        n = len(c.silent)
        text += f"; {n} {'has' if n == 1 else 'have'} no narration"
    return text


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _amount(seconds: float) -> str:
    if seconds >= 90:
        m = _round(seconds / 60)
        return f"{m} minute{'s' if m != 1 else ''}"
    s = _round(seconds)
    return f"{s} second{'s' if s != 1 else ''}"


def figures(c: Coverage) -> tuple[int, int, str]:
    """(narration in the language, narration in all, unit): both in minutes,
    or seconds for a short visit, rounded so that a part short of the whole
    never reads as the whole ('45 of 45 minutes' when some are missing)."""
    part, whole = c.seconds, c.total_seconds
    scale, unit = (60.0, "minutes") if whole >= 90 else (1.0, "seconds")
    w = _round(whole / scale)
    p = _round(part / scale)
    if part < whole and p >= w:
        p = max(0, w - 1)
    return p, w, unit


def _round(x: float) -> int:
    """Halves up, as people round (Python's round() sends 6.5 to 6)."""
    return math.floor(x + 0.5)
