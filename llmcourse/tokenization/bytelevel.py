"""Byte level: text as UTF-8 bytes, GPT-2's pre-tokenization regex, and GPT-2's printable byte alphabet.

Steps 1 and 2 of byte-level BPE (see the package docstring):

- :func:`_utf8` turns text into its UTF-8 bytes, with a clear error for the one kind of Python str that
  has none (a lone surrogate);
- :func:`pretokenize` cuts text into GPT-2 chunks with :data:`GPT2_SPLIT_PATTERN`, written out for
  Python's ``re`` so that it splits exactly as HF's ByteLevel pre-tokenizer does;
- :func:`bytes_to_unicode` is GPT-2's table from the 256 bytes to 256 printable characters (``'Ġ'`` is
  the space byte), used to show byte tokens, in the save format and by HF.

Imports only :mod:`llmcourse.checks`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from llmcourse.checks import ArgumentError, check_str, fail

__all__ = ["GPT2_SPLIT_PATTERN", "bytes_to_unicode", "pretokenize"]


def _utf8(text: str, name: str = "text") -> bytes:
    """UTF-8 bytes of ``text``, with a clear error for lone surrogates (the one kind of Python str that is
    not valid Unicode text and so has no UTF-8 encoding)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ArgumentError(
            f"{name} must be valid Unicode text; it contains a lone surrogate {text[e.start]!r} at index "
            f"{e.start}, which is not a character and has no UTF-8 bytes (was the text decoded with "
            "errors='surrogateescape'?)"
        ) from None


# ----------------------------------------------------------------------------------------------------
# pre-tokenization: GPT-2's regular expression, in Python's `re`

# GPT-2's pattern, as OpenAI wrote it for the third-party `regex` module (and as HF's ByteLevel
# pre-tokenizer runs it). In order, it matches: an English contraction suffix; an optional space and a
# run of letters; an optional space and a run of numbers; an optional space and a run of anything else
# except whitespace; whitespace not followed by non-whitespace (so the last space before a word stays
# with the word); any remaining whitespace.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Python's `re` has no \p{L} (letter) or \p{N} (number) classes, and its \s differs from the one of
# Oniguruma, the engine HF runs this pattern with: Python counts U+001C..U+001F as whitespace, Oniguruma
# does not. Rather than depend on the `regex` package we write the three classes out as explicit ranges
# of code points, built once from `unicodedata`:
#   \p{L} = general category L*   (Lu Ll Lt Lm Lo)
#   \p{N} = general category N*   (Nd Nl No; so '²', '½' and 'Ⅻ' are numbers, '一' is a letter)
#   \s    = U+0009..U+000D, U+0085 and categories Zs Zl Zp (Oniguruma's Unicode \s)
# The result splits exactly like HF's pre-tokenizer (a test checks it on thousands of random strings)
# for every character that Python's Unicode database knows. Characters assigned in a later Unicode
# version than `unicodedata.unidata_version` are unassigned here and may be split differently.
_WHITESPACE_CC = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.lru_cache(maxsize=None)
def _unicode_ranges() -> dict[str, list[tuple[int, int]]]:
    """``{'L': [(lo, hi), ...], 'N': [...], 'S': [...]}``: the code-point ranges of the three classes."""
    kind_of = {"Lu": "L", "Ll": "L", "Lt": "L", "Lm": "L", "Lo": "L", "Nd": "N", "Nl": "N", "No": "N",
               "Zs": "S", "Zl": "S", "Zp": "S"}
    # One character per code point ('L', 'N', 'S' or '.'), then the runs of each letter are the ranges.
    kinds = [kind_of.get(unicodedata.category(chr(cp)), ".") for cp in range(0x110000)]
    for cp in _WHITESPACE_CC:
        kinds[cp] = "S"
    kinds = "".join(kinds)
    return {k: [(m.start(), m.end() - 1) for m in re.finditer(f"{k}+", kinds)] for k in "LNS"}


@functools.lru_cache(maxsize=None)
def _gpt2_regex(astral: bool) -> re.Pattern:
    """GPT-2's pattern compiled for `re`. With ``astral=False`` the ranges above U+FFFF are left out:
    `re` tests such ranges one by one for every character that misses the fast table of the first
    65536, which makes the full pattern ~4x slower. Text without astral characters (no emoji, no rare
    CJK) is split identically by both, so :func:`pretokenize` uses the short one when it can."""

    def cls(name: str) -> str:
        ranges = [(lo, hi if astral else min(hi, 0xFFFF)) for lo, hi in _unicode_ranges()[name]
                  if astral or lo <= 0xFFFF]
        return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)

    L, N, S = cls("L"), cls("N"), cls("S")
    return re.compile(
        r"'s|'t|'re|'ve|'m|'ll|'d"
        rf"| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+"
        rf"|[{S}]+(?![^{S}])|[{S}]+"  # \s+(?!\S)|\s+
    )


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into GPT-2 chunks; BPE merges never cross a chunk boundary.

        >>> pretokenize("Hello world's  end!!\\n")
        ['Hello', ' world', "'s", ' ', ' end', '!!', '\\n']

    Note the two spaces before "end": the first becomes its own chunk, the second goes with the word.
    ``"".join(pretokenize(text)) == text`` always.
    """
    check_str("text", text)
    return _gpt2_regex(_ASTRAL.search(text) is not None).findall(text)


# ----------------------------------------------------------------------------------------------------
# bytes <-> printable characters (GPT-2's trick, used for display, for the save format and by HF)


@functools.lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from the 256 byte values to 256 printable characters.

    Bytes that are already printable and not a space stand for themselves (``b'a' -> 'a'``); the others
    (control bytes, space, 127-160, 173) are shifted to ``chr(256 + n)`` in order, so the space byte is
    ``'Ġ'`` and the newline byte is ``'Ċ'``: a token such as ``b' the'`` is written ``'Ġthe'``. HF's
    ByteLevel tokenizers store tokens as these strings, and so does :meth:`BPETokenizer.save`.

        >>> table = bytes_to_unicode()
        >>> table[ord("a")], table[ord(" ")], table[ord("\\n")]
        ('a', 'Ġ', 'Ċ')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


@functools.lru_cache(maxsize=None)
def _unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def _byte_order() -> list[int]:
    """The 256 byte values in the order HF numbers them: sorted by their printable character, which puts
    the printable bytes 33..126, 161..172, 174..255 first and then 0..32, 127..160, 173."""
    table = bytes_to_unicode()
    return sorted(range(256), key=lambda b: ord(table[b]))


def _to_printable(bts: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in bts)


def _from_printable(s: str, name: str = "token") -> bytes:
    inverse = _unicode_to_bytes()
    try:
        return bytes(inverse[c] for c in s)
    except (KeyError, TypeError):
        raise fail(name, "a string of GPT-2's byte alphabet (see bytes_to_unicode)", s) from None
