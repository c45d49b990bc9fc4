"""What every tokenizer of the package shares: special tokens, id checks, and reading and writing files.

- **Special tokens** (``<|endoftext|>``) are cut out of the text before anything else happens:
  :func:`_special_regex` matches any of them, longest first, and :func:`_split_special` cuts a text
  into ``[text, special, text, ..., text]``.
- **Ids** given to ``decode`` are checked by :func:`_check_ids`, fast for a whole corpus.
- **Files**: :class:`TokenizerFileError` is the one error for a tokenizer file that cannot be read
  (truncated, edited, not JSON, a key missing); its message names the file, says what is wrong and how
  to get a good file back. :func:`_read_json` reads a JSON file that way.

The argument checks themselves are :mod:`llmcourse.checks`, atomic writes :mod:`llmcourse.files`. This
module imports nothing else from ``llmcourse.tokenization``: the other modules of the package import
it, never the other way round.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmcourse.checks import check_strings, check_token_ids, fail
from llmcourse.files import write_atomic_text

__all__ = ["TokenizerFileError"]


class TokenizerFileError(ValueError):
    """A tokenizer file cannot be read: it is not valid JSON, lacks a key, or holds values that do not
    make a tokenizer. The message names the file, says what is wrong and how to get a good file back:
    ``"tokenizer file <path> <problem>; <fix>"``; the three parts are also attributes."""

    def __init__(self, path: str | os.PathLike, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"tokenizer file {path} {problem}; {fix}")

    def __reduce__(self):  # so that it pickles (multiprocessing) with its three arguments
        return (type(self), (self.path, self.problem, self.fix))


# ----------------------------------------------------------------------------------------------------
# special tokens


def _check_special_tokens(special_tokens: Any, name: str = "special_tokens") -> list[str]:
    """``special_tokens`` as a list of distinct non-empty strings, or an :class:`ArgumentError`."""
    specials = check_strings(name, special_tokens)
    for i, s in enumerate(specials):
        if s == "":
            raise fail(f"{name}[{i}]", "a non-empty str", s)
    dupes = sorted({s for s in specials if specials.count(s) > 1})
    if dupes:
        raise fail(name, f"a list of distinct strings ({dupes!r} occur more than once)", specials)
    return specials


def _special_regex(specials: Sequence[str]) -> re.Pattern | None:
    """A pattern matching any special token, longest first, so that of two specials starting at the
    same place the longer wins (HF matches added tokens leftmost-longest too)."""
    if not specials:
        return None
    return re.compile("(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")")


def _split_special(text: str, special_re: re.Pattern | None) -> list[str]:
    """``[text, special, text, special, ..., text]``: ordinary pieces at even indices, specials at odd."""
    return [text] if special_re is None else special_re.split(text)


# ----------------------------------------------------------------------------------------------------
# ids


def _check_ids(ids: Any, vocab_size: int, name: str = "ids") -> list[int]:
    """``ids`` as a list of ints in ``[0, vocab_size)``, or an :class:`ArgumentError` naming the first
    bad one (``ids[3] must be a token id in [0, 600); got 600``).

    A NumPy array or a torch tensor goes through :func:`llmcourse.checks.check_token_ids`.
    """
    if isinstance(ids, np.ndarray) or type(ids).__module__.startswith("torch"):
        return check_token_ids(name, ids, vocab_size).tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise fail(name, "a sequence of int token ids", ids)
    ids = list(ids)
    # Fast path (decode of a whole corpus): plain ints, checked with C-speed min/max.
    if all(type(i) is int for i in ids) and (not ids or (min(ids) >= 0 and max(ids) < vocab_size)):
        return ids
    for k, i in enumerate(ids):
        # numpy integers are fine; bools and floats are not
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise fail(f"{name}[{k}]", "an int token id", i)
        if not 0 <= i < vocab_size:
            raise fail(f"{name}[{k}]", f"a token id in [0, {vocab_size})", int(i))
    return [int(i) for i in ids]


# ----------------------------------------------------------------------------------------------------
# files


def _check_path(path: Any, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)) or path == "":
        raise fail(name, "a file path (a str or pathlib.Path)", path)
    return Path(path)


def _read_json(path: Path, fix: str) -> Any:
    """The JSON value in ``path``, or a :class:`TokenizerFileError` that names the file, says what is
    wrong (not UTF-8, not valid JSON at line N) and how to ``fix`` it. A missing file stays a
    ``FileNotFoundError``."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TokenizerFileError(path, f"is not UTF-8 text (byte {e.start})", fix) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        truncated = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated")
        cut = " (the file looks truncated)" if truncated else ""
        raise TokenizerFileError(
            path, f"is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}{cut}", fix) from None


def _atomic_write_text(path: str | os.PathLike, text: str) -> None:
    write_atomic_text(path, text)

