#!/usr/bin/env python3
"""Regenerate the La Coupole narrations from their texts.

Every track is made from one plain UTF-8 file, ``text/<lang>/<id>.txt``:
espeak-ng speaks it to a WAV file, ffmpeg encodes that to Opus in Ogg
(``<lang>/<id>.opus``: mono, 24 kHz, about 24 kb/s, tuned for speech), and the
track's duration is checked against the 30-90 s a visitor will stand still for.

Then, for each language, the intro the guide plays before the first exhibit:
``text/<lang>/_intro.txt`` is *written* here, from ``../zones.yaml`` (a welcome
line, then how much of the visit exists in that language, with the figures of
``guide coverage``, which depend on the exhibit tracks' lengths), and spoken
into ``<lang>/_intro.opus`` the same way, a few seconds long. Reading
zones.yaml takes the guide package, so the intros need the repository's venv;
the exhibit tracks need only the standard library.

``manifest.json`` records, for each track, a hash of everything that shapes the
sound (the spoken text, the voice, the rate, the encoder settings); a track
whose hash has not changed and whose audio file is intact is not made again,
so a second run costs a few milliseconds a track.

Use (with the repository's venv; any Python >= 3.11 makes the exhibit tracks)::

    .venv/bin/python tracks/make_tracks.py              # every language under text/
    .venv/bin/python tracks/make_tracks.py --lang de nl # only these
    .venv/bin/python tracks/make_tracks.py --check      # verify, synthesise nothing
    .venv/bin/python tracks/make_tracks.py --force      # remake everything

Exit status: 0 all good; 1 a track failed or --check found a problem (each is
printed on stderr, naming the file); 2 a usage error or a missing program.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import typing
import wave
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT_DIR = HERE / "text"
MANIFEST = HERE / "manifest.json"

# Bump when the pipeline changes in a way the settings below do not capture
# (a new filter, a different container): every track is then remade.
PIPELINE_VERSION = 1

MIN_SECONDS = 30.0  # shorter, and a visitor hardly settles before it is over
MAX_SECONDS = 90.0  # longer, and most visitors walk off before the end

# The intro: "Welcome to La Coupole. English: all 19 exhibits, 20 minutes."
ZONES = HERE.parent / "zones.yaml"
INTRO = "_intro"  # text/<lang>/_intro.txt, <lang>/_intro.opus; no exhibit id starts with "_"
INTRO_MIN_SECONDS = 2.0  # a welcome and one sentence
INTRO_MAX_SECONDS = 30.0  # longer keeps a visitor waiting at the door
WELCOME = {  # the first line of each intro; {site} is zones.yaml's site name
    "fr": "Bienvenue à {site}.",
    "en": "Welcome to {site}.",
    "de": "Willkommen in {site}.",
    "nl": "Welkom in {site}.",
}


@dataclass(frozen=True, kw_only=True)
class Voice:
    """How one language is spoken. `rate` is espeak-ng's -s, roughly words a
    minute; 150 is an unhurried museum pace (espeak's default, 175, rushes)."""

    espeak: str  # espeak-ng voice name
    rate: int
    pitch: int = 50  # espeak-ng -p, 0-99
    gap: int = 1  # espeak-ng -g, extra pause between words in 10 ms units


VOICES: dict[str, Voice] = {
    "fr": Voice(espeak="fr-fr", rate=150),
    "en": Voice(espeak="en-gb", rate=160),
    "de": Voice(espeak="de", rate=155),
    "nl": Voice(espeak="nl", rate=155),
}

# Encoder settings. Opus at 24 kb/s in VOIP mode is transparent enough for a
# synthetic voice in an earpiece and keeps a minute of speech near 180 KB.
ENCODE = {
    "codec": "libopus",
    "sample_rate": 24000,
    "channels": 1,
    "bitrate": "24k",
    "application": "voip",
    "compression_level": 10,
    # A quarter second of silence before the voice, so the first syllable is
    # not lost while the player opens the device; half a second after it.
    "lead_in_ms": 250,
    "tail_s": 0.5,
    # espeak-ng peaks within 1 dB of full scale, and Opus can overshoot a
    # little on decoding: 2 dB of headroom keeps every track clear of clipping.
    "gain_db": -2.0,
}

# Words espeak-ng gets wrong, respelled (or given as espeak phonemes in
# [[...]]) only for the synthesiser: the texts stay correct for anyone who
# reads them. Whole words, case-sensitive, applied in order.
LEXICON: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("Saint-Omer", "San Tomair"),
        ("617 Squadron", "six-seventeen Squadron"),
        ("Saturn V", "Saturn Five"),
        ("V-1s", "V-ones"),
        ("V-2s", "V-twos"),
        ("Michel Hollard", "Meeshell Ollar"),
        ("Agir", "Ah-zheer"),
        ("Mechelen", "Mekkelen"),
        ("Loos", "Lohss"),
        ("Lille", "Leel"),
        ("Helfaut-Wizernes", "Elfo Veezairn"),
    ],
    "fr": [
        ("Tallboy", "Tâlboï"),
        ("Saturn V", "Saturne cinq"),
        ("Loos", "Losse"),
        ("Nordhausen", "Nordhaousenne"),
        ("Mittelbau-Dora", "Mittelbaou-Dora"),
        ("Peenemünde", "[[pen@m'ynd]]"),
        ("Vergeltungswaffe", "[[fERg'EltuNsvaf@]]"),
        ("bunker", "[[bunk'Wr]]"),
        ("bunkers", "[[bunk'Wr]]"),
        ("d'aujourd'hui", "d'aujourdhui"),  # read as English otherwise
    ],
    "de": [
        ("La Coupole", "La Kupoll"),
        ("Helfaut-Wizernes", "Elfo-Wisärn"),
        ("Helfaut", "Elfo"),
        ("Wizernes", "Wisärn"),
        ("Saint-Omer", "Sänt-Omär"),
        ("Pas-de-Calais", "Pa-de-Kalä"),
        ("Tallboy", "Tollbeu"),
        ("Crossbow", "Krossbo"),
        ("Michel Hollard", "Mischell Ollar"),
        ("Agir", "Aschier"),
        ("Lille", "Lill"),
        ("Loos", "Loss"),
    ],
    "nl": [
        ("La Coupole", "La Koepol"),
        ("Helfaut-Wizernes", "Elfo-Wiezern"),
        ("Helfaut", "Elfo"),
        ("Wizernes", "Wiezern"),
        ("Saint-Omer", "Sint-Omaars"),
        ("Pas-de-Calais", "Padekalee"),
        ("Tallboy", "Tolbooi"),
        ("Crossbow", "Krosbo"),
        ("Michel Hollard", "Miesjel Ollaar"),
        ("Agir", "Azjier"),
        ("Lille", "Liel"),
        ("Loos", "Los"),
        ("V-2's", "V-twees"),
        ("V-1's", "V-enen"),
    ],
}


class TrackFailure(Exception):
    """One track could not be made; the message names its file."""


@dataclass(frozen=True, kw_only=True)
class Job:
    lang: str
    exhibit: str
    text_path: Path
    spoken: str  # the text after the lexicon, exactly what espeak-ng reads
    voice: Voice
    digest: str  # hash of everything that shapes the sound

    @property
    def rel(self) -> str:
        """The track's path relative to tracks/, as zones.yaml names it."""
        return f"{self.lang}/{self.exhibit}.opus"

    @property
    def out_path(self) -> Path:
        return HERE / self.rel

    @property
    def seconds(self) -> tuple[float, float]:
        """The length allowed, shortest and longest."""
        if self.exhibit == INTRO:
            return INTRO_MIN_SECONDS, INTRO_MAX_SECONDS
        return MIN_SECONDS, MAX_SECONDS


def rel_to_here(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def speakable(lang: str, text: str) -> str:
    for word, respelled in LEXICON.get(lang, []):
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", respelled, text)
    return text


def read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TrackFailure(f"{rel_to_here(path)}: not UTF-8 (byte {e.start}); "
                           "save it as UTF-8") from None
    except OSError as e:
        raise TrackFailure(f"{rel_to_here(path)}: cannot read it ({e.strerror})") from None
    if not text.strip():
        raise TrackFailure(f"{rel_to_here(path)}: the text is empty; write the "
                           "narration or delete the file")
    return text.strip() + "\n"


def make_job(lang: str, text_path: Path) -> Job:
    voice = VOICES[lang]
    spoken = speakable(lang, read_text(text_path))
    recipe = json.dumps({
        "pipeline": PIPELINE_VERSION, "text": spoken, "voice": dataclasses.asdict(voice),
        "encode": ENCODE}, sort_keys=True, ensure_ascii=False)
    return Job(lang=lang, exhibit=text_path.stem, text_path=text_path, spoken=spoken,
               voice=voice, digest=hashlib.sha256(recipe.encode()).hexdigest())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str], what: str, *, stdin: bytes | None = None) -> None:
    done = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise TrackFailure(f"{what}: {cmd[0]} failed (exit {done.returncode}): "
                           + " / ".join(tail))


def probe_duration(path: Path) -> float:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
         str(path)], capture_output=True, text=True, check=False)
    try:
        return float(json.loads(done.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        raise TrackFailure(f"{rel_to_here(path)}: ffprobe cannot read the encoded "
                           f"track ({done.stderr.strip()})") from None


def synthesise(job: Job) -> dict:
    """Speak, check the length, encode; the new file replaces the old one only
    when every step succeeded, so a failure never leaves a half-written track."""
    source = rel_to_here(job.text_path)
    with tempfile.TemporaryDirectory(prefix="make_tracks.") as tmp:
        wav = Path(tmp) / "speech.wav"
        v = job.voice
        run(["espeak-ng", "-v", v.espeak, "-s", str(v.rate), "-p", str(v.pitch),
             "-g", str(v.gap), "-b", "1", "-w", str(wav), "--stdin"],
            source, stdin=job.spoken.encode("utf-8"))
        try:
            with wave.open(str(wav), "rb") as w:
                speech = w.getnframes() / float(w.getframerate())
        except (wave.Error, EOFError, OSError) as err:
            raise TrackFailure(f"{source}: espeak-ng wrote no usable audio ({err})") from None
        spoken_total = speech + ENCODE["lead_in_ms"] / 1000 + ENCODE["tail_s"]
        shortest, longest = job.seconds
        if not shortest <= spoken_total <= longest:
            advice = "shorten it" if spoken_total > longest else "lengthen it"
            if job.exhibit == INTRO:
                advice = f"{advice.split()[0]} its welcome line (WELCOME in make_tracks.py)"
            raise TrackFailure(
                f"{source}: spoken, it lasts {spoken_total:.1f} s, outside "
                f"{shortest:.0f}-{longest:.0f} s; {advice} "
                f"({len(job.spoken.split())} words at {v.rate} wpm)")
        job.out_path.parent.mkdir(parents=True, exist_ok=True)
        partial = job.out_path.with_name(f".{job.out_path.name}.partial")
        e = ENCODE
        run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
             "-af", f"volume={e['gain_db']}dB,adelay={e['lead_in_ms']}:all=1,"
             f"apad=pad_dur={e['tail_s']}",
             "-ac", str(e["channels"]), "-ar", str(e["sample_rate"]),
             "-c:a", e["codec"], "-b:a", e["bitrate"], "-vbr", "on",
             "-application", e["application"],
             "-compression_level", str(e["compression_level"]),
             # bit-exact: the same text gives the same bytes on every run, so
             # the audio hash in the manifest means something
             "-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
             "-metadata", f"title={job.exhibit}", "-metadata", f"language={job.lang}",
             "-f", "ogg", str(partial)], source)
        try:
            seconds = probe_duration(partial)
            if not shortest <= seconds <= longest:
                raise TrackFailure(f"{rel_to_here(job.out_path)}: encoded, it lasts "
                                   f"{seconds:.1f} s, outside {shortest:.0f}-"
                                   f"{longest:.0f} s")
            os.replace(partial, job.out_path)
        finally:
            partial.unlink(missing_ok=True)
    return entry_for(job, seconds)


def entry_for(job: Job, seconds: float) -> dict:
    return {
        "source": rel_to_here(job.text_path),
        "hash": job.digest,
        "audio_sha256": file_sha256(job.out_path),
        "bytes": job.out_path.stat().st_size,
        "duration": round(seconds, 2),
        "words": len(job.spoken.split()),
        "voice": job.voice.espeak,
        "rate": job.voice.rate,
    }


def load_manifest() -> dict:
    if not MANIFEST.exists():
        return {}
    try:
        data = json.loads(MANIFEST.read_text(encoding="utf-8"))
        return dict(data["tracks"])
    except (ValueError, KeyError, TypeError):
        print(f"warning: {rel_to_here(MANIFEST)} is unreadable; remaking every "
              "track", file=sys.stderr)
        return {}


def save_manifest(tracks: dict) -> None:
    data = {
        "about": "written by make_tracks.py: what each track was made from; do not edit",
        "pipeline": PIPELINE_VERSION,
        "espeak_ng": espeak_version(),
        "tracks": dict(sorted(tracks.items())),
    }
    partial = MANIFEST.with_name(".manifest.json.partial")
    partial.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    os.replace(partial, MANIFEST)


def espeak_version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True,
                             text=True, check=False).stdout
    except FileNotFoundError:
        return "unknown"
    found = re.search(r"text-to-speech:\s*(\S+)", out)
    return found.group(1) if found else "unknown"


def usage_error(message: str) -> typing.NoReturn:
    print(f"make_tracks.py: {message}", file=sys.stderr)
    sys.exit(2)


def languages(wanted: list[str] | None) -> list[str]:
    present = sorted(p.name for p in TEXT_DIR.iterdir() if p.is_dir()) \
        if TEXT_DIR.is_dir() else []
    langs = wanted or present
    unknown = [lang for lang in langs if lang not in VOICES]
    if unknown:
        usage_error(f"no voice for {', '.join(unknown)}; known: {', '.join(VOICES)} "
                    "(add one to VOICES)")
    missing = [lang for lang in langs if not (TEXT_DIR / lang).is_dir()]
    if missing:
        usage_error(f"no texts for {', '.join(missing)} "
                    f"(expected {rel_to_here(TEXT_DIR)}/<lang>/<id>.txt)")
    return langs


def texts(lang: str) -> list[Path]:
    """The exhibit narrations of `lang` (not the intro, which is written here)."""
    return sorted(p for p in (TEXT_DIR / lang).glob("*.txt") if not p.name.startswith("_"))


def intro_rel(lang: str) -> str:
    return f"{lang}/{INTRO}.opus"


def intro_texts(langs: list[str]) -> dict[str, str]:
    """Each language's intro, from zones.yaml and the exhibit tracks as they
    are now: the welcome line, then the coverage sentence in that language.
    Only for the languages of `langs` that the site offers."""
    sys.path.insert(0, str(HERE.parent))  # this repository's guide package
    try:
        from guide.coverage import coverage, sentence
        from guide.errors import GuideError
        from guide.zones import load_zones
    except ImportError as e:
        raise TrackFailure(f"the intros need the guide package ({e}): run make_tracks.py with "
                           "the repository's venv, .venv/bin/python tracks/make_tracks.py") from None
    finally:
        sys.path.pop(0)
    try:
        # without its intro: key, whose files may be the ones missing
        site = load_zones(ZONES, intro=False)
        if site.tracks_dir != HERE:
            raise TrackFailure(f"{rel_to_here(ZONES)}: tracks_dir is {site.tracks_dir}, not "
                               f"{HERE}: the intros describe the tracks made here")
        result = {}
        for lang in langs:
            if lang not in site.languages:
                continue
            if lang not in WELCOME:
                raise TrackFailure(f"no welcome line for {lang}: add one to WELCOME in make_tracks.py")
            result[lang] = (WELCOME[lang].format(site=site.name) + "\n"
                            + sentence(coverage(site, lang), lang) + ".\n")
        return result
    except GuideError as e:
        raise TrackFailure(f"the intros read {rel_to_here(ZONES)}: {e}") from None


def write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` if it differs (a crash leaves the old or the new)."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def stale(job: Job, entry: dict | None) -> str | None:
    """What is wrong with `job`'s track against its manifest entry, or None."""
    where = rel_to_here(job.out_path)
    shortest, longest = job.seconds
    if entry is None:
        return f"{where}: never made from {rel_to_here(job.text_path)}; run make_tracks.py"
    if entry.get("hash") != job.digest:
        return (f"{where}: {rel_to_here(job.text_path)} or the voice settings changed "
                "since it was made; run make_tracks.py")
    if not job.out_path.exists():
        return f"{where}: missing; run make_tracks.py"
    if file_sha256(job.out_path) != entry.get("audio_sha256"):
        return (f"{where}: the audio differs from what make_tracks.py wrote (edited by "
                "hand?); run make_tracks.py --force")
    if not shortest <= float(entry.get("duration", 0)) <= longest:
        return f"{where}: lasts {entry.get('duration')} s, outside {shortest:.0f}-{longest:.0f} s"
    return None


def check(langs: list[str]) -> int:
    """Verify manifest, texts and audio agree, without synthesising anything;
    the intro texts must say what zones.yaml and the tracks say now."""
    manifest = load_manifest()
    problems: list[str] = []
    seen: set[str] = set()
    fine = 0
    try:
        intros = intro_texts(langs)
    except TrackFailure as e:
        problems.append(str(e))
        intros = {}
        seen |= {intro_rel(lang) for lang in langs}  # not also "no text" below
    for lang in langs:
        paths = texts(lang)
        if lang in intros:
            intro = TEXT_DIR / lang / f"{INTRO}.txt"
            if not intro.exists() or intro.read_text(encoding="utf-8") != intros[lang]:
                problems.append(f"{rel_to_here(intro)}: does not say what {rel_to_here(ZONES)} "
                                "and the tracks' lengths say now; run make_tracks.py")
                seen.add(intro_rel(lang))
            else:
                paths.append(intro)
        for text_path in paths:
            seen.add(f"{lang}/{text_path.stem}.opus")  # even if its text is bad
            try:
                job = make_job(lang, text_path)
            except TrackFailure as e:
                problems.append(str(e))
                continue
            problem = stale(job, manifest.get(job.rel))
            if problem:
                problems.append(problem)
            else:
                fine += 1
        for audio in sorted((HERE / lang).glob("*.opus")):
            rel = f"{lang}/{audio.name}"
            if rel not in seen:
                problems.append(f"{rel_to_here(audio)}: no text "
                                f"text/{lang}/{audio.stem}.txt; delete the track or "
                                "restore its text (make_tracks.py --prune deletes it)")
    for rel in sorted(manifest):
        if rel.split("/")[0] in langs and rel not in seen and not (HERE / rel).exists():
            problems.append(f"{rel_to_here(MANIFEST)}: lists {rel}, which has no text "
                            "and no audio; run make_tracks.py to tidy it")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(f"{fine} track(s) up to date, {len(problems)} problem(s)")
    return 1 if problems else 0


def build(langs: list[str], *, force: bool, jobs: int, prune: bool) -> int:
    for program in ("espeak-ng", "ffmpeg", "ffprobe"):
        if shutil.which(program) is None:
            print(f"make_tracks.py: {program} not found; install it "
                  "(apt-get install espeak-ng ffmpeg)", file=sys.stderr)
            return 2
    manifest = load_manifest()
    failures: list[str] = []
    current: set[str] = set()
    started = time.monotonic()
    todo: list[Job] = []
    for lang in langs:
        for text_path in texts(lang):
            current.add(f"{lang}/{text_path.stem}.opus")  # even if it fails below
            try:
                todo.append(make_job(lang, text_path))
            except TrackFailure as e:
                failures.append(str(e))
    made, unchanged = make(todo, manifest, failures, force=force, jobs=jobs)

    # The intros tell the exhibit tracks' lengths: made once those are final
    current |= {intro_rel(lang) for lang in langs}  # kept, even if not remade now
    if failures:
        failures.append("intros not made: fix the exhibit tracks above first")
    else:
        try:
            intros = intro_texts(langs)
        except TrackFailure as e:
            failures.append(str(e))
            intros = {}
        todo = []
        for lang, text in intros.items():
            path = TEXT_DIR / lang / f"{INTRO}.txt"
            write_text(path, text)
            todo.append(make_job(lang, path))
        more, same = make(todo, manifest, failures, force=force, jobs=jobs)
        made, unchanged = made + more, unchanged + same

    for lang in langs:
        for rel in [r for r in manifest if r.startswith(f"{lang}/") and r not in current]:
            audio = HERE / rel
            if prune and audio.exists():
                audio.unlink()
                print(f"  {rel:<28}  deleted (its text is gone)")
            elif audio.exists():
                print(f"warning: {rel_to_here(audio)} has no text any more; "
                      "--prune deletes it", file=sys.stderr)
            del manifest[rel]
    save_manifest(manifest)

    total = sum(e["bytes"] for e in manifest.values())
    durations = [e["duration"] for rel, e in manifest.items() if Path(rel).stem != INTRO]
    print(f"{made} made, {unchanged} unchanged, "
          f"{len(failures)} failed in {time.monotonic() - started:.1f} s; "
          f"{len(manifest)} tracks, {total / 1024:.0f} KB, "
          + (f"exhibits {min(durations):.1f}-{max(durations):.1f} s each" if durations else ""))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def make(todo: list[Job], manifest: dict, failures: list[str], *, force: bool,
         jobs: int) -> tuple[int, int]:
    """Synthesise the jobs whose track is missing or out of date, in
    parallel; record each in `manifest`. Returns (made, unchanged)."""
    fresh = [] if force else [job for job in todo if stale(job, manifest.get(job.rel)) is None]
    for job in fresh:
        print(f"  {job.rel:<28} {manifest[job.rel]['duration']:6.1f} s  unchanged")
    made = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(synthesise, job): job for job in todo if job not in fresh}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                manifest[job.rel] = future.result()
            except TrackFailure as e:
                failures.append(str(e))
                print(f"  {job.rel:<28}  FAILED", flush=True)
                continue
            made += 1
            entry = manifest[job.rel]
            print(f"  {job.rel:<28} {entry['duration']:6.1f} s  made "
                  f"({entry['bytes'] / 1024:.0f} KB, {entry['words']} words)", flush=True)
    return made, len(fresh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make tracks/<lang>/<id>.opus from tracks/text/<lang>/<id>.txt "
                    "with espeak-ng and ffmpeg.")
    parser.add_argument("--lang", nargs="+", metavar="LANG",
                        help="languages to make (default: every folder under text/)")
    parser.add_argument("--check", action="store_true",
                        help="verify the manifest against texts and audio; make nothing")
    parser.add_argument("--force", action="store_true",
                        help="remake every track even if unchanged")
    parser.add_argument("--prune", action="store_true",
                        help="delete tracks whose text was removed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="tracks made in parallel (default: CPU count)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    langs = languages(args.lang)
    if args.check:
        return check(langs)
    return build(langs, force=args.force, jobs=args.jobs, prune=args.prune)


if __name__ == "__main__":
    sys.exit(main())
