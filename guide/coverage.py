"""How much of the visit exists in each language: the honest figures a
visitor is told before the first exhibit, and staff see with `guide coverage`.

A visitor who chose a language hears, at each exhibit, its track in that
language if there is one, else the first language of the fallback chain that
has one (`Site.track_for`), else nothing. Coverage counts both sides:

    >>> sentence(coverage(site, "en"))  # doctest: +SKIP
    'English: 14 of 16 exhibits, 38 of 45 minutes; the others play in French'
    >>> sentence(coverage(site, "fr"), "fr")  # told to the visitor, in their language  # doctest: +SKIP
    'Français : les 16 étapes de la visite, 42 minutes'

"Minutes of the visit" are the minutes that visitor would hear in all: their
own language's tracks plus the fallback tracks played instead.

A track that cannot be played (unreadable, or longer than the guide plays)
counts as the device plays it: not at all, the next language of the chain
with a track instead (or nothing). Coverage lists every such track the
visitor would meet in `broken`, so that the figures are honest and staff
learn of all of them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from babel import Locale, UnknownLocaleError

from guide import tracks
from guide.errors import half_up
from guide.site import Site
from guide.tracks import Unplayable


@dataclass(frozen=True, kw_only=True)
class Coverage:
    lang: str
    exhibits: int  # exhibits narrated in `lang` itself
    total_exhibits: int  # every exhibit of the site
    seconds: float  # narration in `lang` itself
    total_seconds: float  # narration heard in all: `lang` plus fallbacks
    fallback: Mapping[str, tuple[str, ...]]  # language played instead -> exhibit ids, chain order
    silent: tuple[str, ...]  # exhibits with no playable track in `lang` nor in any fallback
    broken: tuple[Unplayable, ...] = ()  # tracks of the chain that cannot be played, passed over

    @property
    def complete(self) -> bool:
        return self.exhibits == self.total_exhibits

    def as_dict(self) -> dict:
        """JSON-able, for `guide coverage --json`."""
        return {"lang": self.lang, "name": language_name(self.lang),
                "exhibits": self.exhibits, "total_exhibits": self.total_exhibits,
                "seconds": round(self.seconds, 1), "total_seconds": round(self.total_seconds, 1),
                "fallback": {k: list(v) for k, v in self.fallback.items()},
                "silent": list(self.silent), "broken": [b.as_dict() for b in self.broken],
                "sentence": sentence(self)}


def coverage(site: Site, lang: str, *,
             duration: Callable[[Path], float] = tracks.duration) -> Coverage:
    """The coverage of the visit for a visitor who chose `lang`.

    A track that cannot be read is passed over as the device passes over it,
    for the next language of the chain that has a track, and listed in
    `broken` (with why): a coverage that stopped at it would tell the visitor
    nothing, one that counted it would not be honest."""
    chain = site.chain(lang)
    left = {e.id: [(c, e.tracks[c]) for c in chain if c in e.tracks] for e in site.exhibits}
    chosen: dict[str, tuple[str, float]] = {}  # exhibit -> (language played, seconds)
    broken: list[Unplayable] = []
    lengths: dict[Path, float] = {}
    errors: dict[Path, Exception] = {}
    while any(left.values()):
        # the next candidate of each exhibit not settled yet, read in parallel
        wanted = [site.track_path(options[0][1]) for options in left.values() if options]
        found, failed = tracks.durations([p for p in wanted if p not in lengths and p not in errors],
                                         measure=duration)
        lengths |= found
        errors |= failed
        for exhibit_id, options in left.items():
            if not options:
                continue
            played, relpath = options.pop(0)
            path = site.track_path(relpath)
            if path in lengths:
                chosen[exhibit_id] = played, lengths[path]
                options.clear()
            else:
                broken.append(Unplayable(track=relpath, exhibit=exhibit_id, lang=played,
                                         reason=tracks.reason(errors[path], path)))
    own = 0
    seconds = total = 0.0
    fallback: dict[str, list[str]] = {}
    silent: list[str] = []
    for exhibit in site.exhibits:
        if exhibit.id not in chosen:
            silent.append(exhibit.id)
            continue
        played, length = chosen[exhibit.id]
        total += length
        if played == lang:
            own += 1
            seconds += length
        else:
            fallback.setdefault(played, []).append(exhibit.id)
    order = {code: i for i, code in enumerate(chain)}
    return Coverage(
        lang=lang, exhibits=own, total_exhibits=len(site.exhibits),
        seconds=seconds, total_seconds=total,
        fallback={k: tuple(v) for k, v in sorted(fallback.items(), key=lambda kv: order.get(kv[0], len(order)))},
        silent=tuple(silent), broken=tuple(sorted(broken, key=lambda b: (b.track, b.exhibit))))


def site_coverage(site: Site, *, duration: Callable[[Path], float] = tracks.duration) -> tuple[Coverage, ...]:
    """Coverage for each language the site offers, in the zone map's order."""
    return tuple(coverage(site, lang, duration=duration) for lang in site.languages)


def language_name(code: str, in_language: str = "en") -> str:
    """'English' for 'en', 'Portuguese (Brazil)' for 'pt-BR'; 'anglais' for
    'en' in French; the code itself for a tag nobody knows."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(in_language.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        name = None
    if not name:
        try:
            name = Locale.parse(in_language.replace("-", "_")).languages.get(code)
        except (ValueError, TypeError, UnknownLocaleError):
            name = None
    return name or code


def sentence(c: Coverage, lang: str | None = None) -> str:
    """The sentence told to the visitor (and logged) at the start of a visit,
    worded in `lang` when it is French, English, German or Dutch, else in
    English (the default: staff read `guide coverage` in English). The device
    words it in the language it describes.

    >>> c = Coverage(lang="de", exhibits=17, total_exhibits=19, seconds=1140,
    ...     total_seconds=1260, fallback={"en": ("a", "b")}, silent=())
    >>> sentence(c)
    'German: 17 of 19 exhibits, 19 of 21 minutes; the others play in English'
    >>> sentence(c, "de")
    'Deutsch: 17 von 19 Stationen, 19 von 21 Minuten; die anderen auf Englisch'
    """
    base = (lang or "en").split("-")[0]
    return _WORDINGS.get(base, _english)(c)


# One function a language, so that a translator reads and changes one place.
# Each says: the language's name; the exhibits and minutes narrated in it (or
# "all"); what plays in which other language; what has no narration at all.

def _english(c: Coverage) -> str:
    name = language_name(c.lang)
    if c.complete:
        exhibits = "the only exhibit" if c.total_exhibits == 1 else f"all {c.total_exhibits} exhibits"
        n, unit = length(c.total_seconds)
        return f"{name}: {exhibits}, {n} {_plural(n, unit[:-1], unit)}"
    part, whole, unit = figures(c)
    text = f"{name}: {c.exhibits} of {c.total_exhibits} exhibits, {part} of {whole} {_plural(whole, unit[:-1], unit)}"
    if c.fallback:
        langs = _named(c, "en", "{name}", "{name} ({n})", " and ")
        n = _fallen_back(c)
        text += (f"; the others play in {langs}" if not c.silent
                 else f"; {n} {_plural(n, 'other plays', 'others play')} in {langs}")
    if c.silent:
        n = len(c.silent)
        text += f"; {n} {_plural(n, 'has', 'have')} no narration"
    return text


def _french(c: Coverage) -> str:
    # a no-break space before ':' and ';', as French typography wants (and so
    # that a narrow screen never starts a line with one)
    name = _capital(language_name(c.lang, "fr"))
    units = {"minutes": ("minute", "minutes"), "seconds": ("seconde", "secondes")}
    if c.complete:
        exhibits = ("la seule étape de la visite" if c.total_exhibits == 1
                    else f"les {c.total_exhibits} étapes de la visite")
        n, unit = length(c.total_seconds)
        return f"{name}\u00a0: {exhibits}, {n} {_plural_fr(n, *units[unit])}"
    part, whole, unit = figures(c)
    text = (f"{name}\u00a0: {c.exhibits} {_plural_fr(c.exhibits, 'étape', 'étapes')} sur "
            f"{c.total_exhibits}, {part} {_plural_fr(part, *units[unit])} sur {whole}")
    if c.fallback:
        langs = _named(c, "fr", "en {name}", "en {name} ({n})", " et ")
        n = _fallen_back(c)
        text += (f"\u00a0; les autres sont {langs}" if not c.silent
                 else f"\u00a0; {n} {_plural_fr(n, 'autre est', 'autres sont')} {langs}")
    if c.silent:
        n = len(c.silent)
        has = _plural_fr(n, "étape n'a", "étapes n'ont")
        text += f"\u00a0; {n} {has} pas de commentaire"
    return text


def _german(c: Coverage) -> str:
    name = language_name(c.lang, "de")
    units = {"minutes": ("Minute", "Minuten"), "seconds": ("Sekunde", "Sekunden")}
    if c.complete:
        exhibits = ("die einzige Station" if c.total_exhibits == 1
                    else f"alle {c.total_exhibits} Stationen")
        n, unit = length(c.total_seconds)
        return f"{name}: {exhibits}, {n} {_plural(n, *units[unit])}"
    part, whole, unit = figures(c)
    text = (f"{name}: {c.exhibits} von {c.total_exhibits} "
            f"{_plural(c.total_exhibits, 'Station', 'Stationen')}, "
            f"{part} von {whole} {_plural(whole, *units[unit])}")
    if c.fallback:
        langs = _named(c, "de", "{name}", "{name} ({n})", " und ")
        n = _fallen_back(c)
        text += (f"; die anderen auf {langs}" if not c.silent
                 else f"; {n} weitere auf {langs}")
    if c.silent:
        n = len(c.silent)
        text += f"; {n} {_plural(n, 'Station', 'Stationen')} ohne Erläuterung"
    return text


def _dutch(c: Coverage) -> str:
    name = _capital(language_name(c.lang, "nl"))
    units = {"minutes": ("minuut", "minuten"), "seconds": ("seconde", "seconden")}
    if c.complete:
        exhibits = "de enige stop" if c.total_exhibits == 1 else f"alle {c.total_exhibits} stops"
        n, unit = length(c.total_seconds)
        return f"{name}: {exhibits}, {n} {_plural(n, *units[unit])}"
    part, whole, unit = figures(c)
    text = (f"{name}: {c.exhibits} van de {c.total_exhibits} "
            f"{_plural(c.total_exhibits, 'stop', 'stops')}, "
            f"{part} van de {whole} {_plural(whole, *units[unit])}")
    if c.fallback:
        langs = _named(c, "nl", "het {name}", "het {name} ({n})", " en ")
        n = _fallen_back(c)
        text += (f"; de andere in {langs}" if not c.silent else f"; {n} andere in {langs}")
    if c.silent:
        n = len(c.silent)
        text += f"; {n} {_plural(n, 'stop', 'stops')} zonder toelichting"
    return text


_WORDINGS: dict[str, Callable[[Coverage], str]] = {
    "en": _english, "fr": _french, "de": _german, "nl": _dutch}

WORDED = tuple(_WORDINGS)  # the languages `sentence` is worded in; any other is told in English


def worded_in(lang: str) -> bool:
    """Whether `sentence` has a wording of its own for `lang` (else English)."""
    return lang.split("-")[0] in _WORDINGS


def _named(c: Coverage, lang: str, one: str, each: str, and_: str) -> str:
    """The languages played instead, in `lang`: 'French', or with several,
    how many exhibits each: 'English (1) and French (2)'."""
    if len(c.fallback) == 1:
        return one.format(name=language_name(next(iter(c.fallback)), lang))
    return _join([each.format(name=language_name(code, lang), n=len(ids))
                  for code, ids in c.fallback.items()], and_)


def _fallen_back(c: Coverage) -> int:
    return sum(map(len, c.fallback.values()))


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _plural_fr(n: int, one: str, many: str) -> str:
    return one if n < 2 else many  # French says "0 minute"


def _capital(name: str) -> str:
    return name[:1].upper() + name[1:]


def _join(words: list[str], and_: str = " and ") -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + and_ + words[-1]


MINUTES_FROM = 90.0  # s: a length of narration from here on is said in minutes


def length(seconds: float) -> tuple[int, str]:
    """A length of narration as people say it, rounded halves up: (minutes,
    "minutes") from MINUTES_FROM, else (seconds, "seconds") (`guide check`
    says its lengths so too)."""
    if seconds >= MINUTES_FROM:
        return half_up(seconds / 60), "minutes"
    return half_up(seconds), "seconds"


def figures(c: Coverage) -> tuple[int, int, str]:
    """(narration in the language, narration in all, unit): both in minutes,
    or seconds for a short visit, rounded so that a part short of the whole
    never reads as the whole ('45 of 45 minutes' when some are missing)."""
    part, whole = c.seconds, c.total_seconds
    scale, unit = (60.0, "minutes") if whole >= MINUTES_FROM else (1.0, "seconds")
    w = half_up(whole / scale)
    p = half_up(part / scale)
    if part < whole and p >= w:
        p = max(0, w - 1)
    return p, w, unit
