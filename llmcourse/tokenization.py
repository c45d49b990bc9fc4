"""Tokenization: text -> integer ids -> text, from characters to byte-level BPE.

A language model reads integers, so text must be cut into pieces from a fixed vocabulary. Three
choices of piece, from the simplest:

- **characters** (:class:`CharTokenizer`): a tiny vocabulary, but long sequences, and a character that
  training never saw has no id;
- **words**: short sequences, but an enormous vocabulary that still misses rare words;
- **subwords**: frequent words stay whole and rare ones are spelled from pieces. Byte-pair encoding
  (BPE, Sennrich et al. 2016, on bytes as in GPT-2) is the one built here from scratch.

Byte-level BPE, the way GPT-2 does it, in four steps:

1. **Bytes.** Text becomes its UTF-8 bytes, so every string -- emoji, Chinese, combining accents --
   is covered by 256 base tokens and nothing is ever unknown.
2. **Pre-tokenization.** A regular expression (:data:`GPT2_SPLIT_PATTERN`) cuts the text into chunks
   (words with their leading space, numbers, punctuation runs, whitespace). Merges never cross a chunk,
   so "dog." and "dog!" share the token " dog".
3. **Training.** Count every adjacent pair of tokens, give the most frequent pair a new id, replace it
   everywhere, repeat until the vocabulary is ``vocab_size`` big. The ordered list of merges *is*
   the tokenizer.
4. **Encoding.** Cut the text the same way, then inside each chunk apply the learned merges, earliest
   learned first. Decoding concatenates the bytes of the ids and decodes UTF-8.

Special tokens such as ``<|endoftext|>`` are cut out of the text before all of this: they are never
learned from, never merged with their neighbours, and always encode to one id.

    >>> tok = train_bpe("low lower lowest " * 50, vocab_size=262)
    >>> [tok.token_text(i) for i in tok.encode(" lower lowest")]
    [' lower', ' lowe', 'st']
    >>> tok.decode(tok.encode("lower 低 🙂")) == "lower 低 🙂"
    True

Two trainers give identical merges: :func:`train_bpe_naive` recounts every pair at every merge, as in
Karpathy's minbpe, and is kept for reading; :func:`train_bpe` updates counts only where a merge
happened and is fast enough for the whole Shakespeare corpus. Both break ties exactly as Hugging Face
``tokenizers`` does (see :func:`train_bpe`), so the merges equal those of HF's trainer on the same
text (:func:`train_bpe_hf`), and :meth:`BPETokenizer.to_hf_tokenizer` exports a ``tokenizer.json`` that
HF loads and that encodes to the same ids.

WordPiece (BERT) and Unigram (SentencePiece, T5) are trained with HF ``tokenizers``
(:func:`train_wordpiece`, :func:`train_unigram`) and compared with :func:`compression`, in bytes per
token, on English and on Chinese (:data:`CHINESE_SAMPLE`).
"""

from __future__ import annotations

import codecs
import functools
import heapq
import json
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "CHINESE_SAMPLE",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "bytes_to_unicode",
    "compression",
    "get_stats",
    "merge",
    "merge_steps",
    "pretokenize",
    "token_spans",
    "train_bpe",
    "train_bpe_hf",
    "train_bpe_naive",
    "train_unigram",
    "train_wordpiece",
]

# ----------------------------------------------------------------------------------------------------
# input checks shared by everything below


def _check_text(text, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str; got {type(text).__name__}")
    return text


def _check_special_tokens(special_tokens) -> list[str]:
    if isinstance(special_tokens, str):
        raise TypeError(
            f"special_tokens must be a list of strings, not one string; got {special_tokens!r}. "
            f"Did you mean [{special_tokens!r}]?"
        )
    try:
        specials = list(special_tokens)
    except TypeError:
        raise TypeError(
            f"special_tokens must be a list of strings; got {type(special_tokens).__name__}"
        ) from None
    for s in specials:
        if not isinstance(s, str):
            raise TypeError(f"special_tokens must contain only strings; got {s!r} ({type(s).__name__})")
        if s == "":
            raise ValueError("special_tokens must not contain the empty string")
    dupes = sorted({s for s in specials if specials.count(s) > 1})
    if dupes:
        raise ValueError(f"special_tokens contains duplicates: {dupes!r}")
    return specials


def _check_vocab_size(vocab_size, n_special: int) -> int:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int; got {type(vocab_size).__name__}")
    if vocab_size < 256 + n_special:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: byte-level BPE needs 256 byte tokens + {n_special} "
            f"special token(s) = {256 + n_special} before the first merge"
        )
    return vocab_size


def _check_min_frequency(min_frequency) -> int:
    if not isinstance(min_frequency, int) or isinstance(min_frequency, bool) or min_frequency < 0:
        raise ValueError(f"min_frequency must be a non-negative int; got {min_frequency!r}")
    return min_frequency


def _utf8(text: str) -> bytes:
    """UTF-8 bytes of ``text``, with a clear error for lone surrogates (the one kind of Python str that is
    not valid Unicode text and so has no UTF-8 encoding)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"text contains a lone surrogate {text[e.start]!r} at index {e.start}; it is not a Unicode "
            "character and has no UTF-8 bytes (was the text decoded with errors='surrogateescape'?)"
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
    _check_text(text)
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


def _from_printable(s: str) -> bytes:
    inverse = _unicode_to_bytes()
    try:
        return bytes(inverse[c] for c in s)
    except KeyError as e:
        raise ValueError(f"{s!r} is not a byte-level token string (character {e.args[0]!r})") from None


# ----------------------------------------------------------------------------------------------------
# the two operations of BPE (minbpe's base)


def get_stats(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict[tuple[int, int], int]:
    """Count adjacent pairs of ids, adding ``weight`` per occurrence into ``counts`` (a new dict if None).

        >>> get_stats([1, 2, 3, 1, 2])
        {(1, 2): 2, (2, 3): 1, (3, 1): 1}

    Overlapping pairs all count: ``[5, 5, 5]`` has the pair ``(5, 5)`` twice, though only one of them
    can be merged. HF counts the same way, which matters for the tie-breaking to agree.
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right.

        >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
        [4, 3, 4]
        >>> merge([5, 5, 5], (5, 5), 6)      # overlapping: the leftmost wins
        [6, 5]
    """
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ----------------------------------------------------------------------------------------------------
# the character tokenizer: the simplest baseline


class CharTokenizer:
    """One id per character of the training text: the simplest tokenizer, and the baseline BPE beats.

        >>> tok = CharTokenizer.train("hello")
        >>> tok.encode("hole"), tok.vocab_size
        ([1, 3, 2, 0], 4)

    Ids follow the characters' code points (``'e' < 'h' < 'l' < 'o'``), after the special tokens, so
    they do not depend on the order of the text. A character that training never saw has no id:
    ``encode`` raises ``ValueError`` naming it -- the weakness byte-level BPE removes.
    """

    def __init__(self, chars: Iterable[str], special_tokens: Sequence[str] = ()):
        specials = _check_special_tokens(special_tokens)
        chars = sorted(set(chars))
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"chars must be single characters; got {bad[:5]!r}")
        self.special_tokens: dict[str, int] = {s: i for i, s in enumerate(specials)}
        self.itos: list[str] = specials + chars
        self.stoi: dict[str, int] = {c: i + len(specials) for i, c in enumerate(chars)}
        self._special_re = _special_regex(specials)

    @classmethod
    def train(cls, text: str, special_tokens: Sequence[str] = ()) -> CharTokenizer:
        """The vocabulary of the characters in ``text`` (special-token strings in it are not counted)."""
        specials = _check_special_tokens(special_tokens)
        pieces = _split_special(_check_text(text), _special_regex(specials))
        return cls("".join(p for p in pieces[::2]), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        _check_text(text)
        pieces = _split_special(text, self._special_re if allow_special else None)
        ids = []
        for k, piece in enumerate(pieces):
            if k % 2:
                ids.append(self.special_tokens[piece])
                continue
            try:
                ids.extend([self.stoi[c] for c in piece])
            except KeyError:
                unknown = sorted({c for c in piece if c not in self.stoi})
                raise ValueError(
                    f"text contains character(s) not in the vocabulary: {unknown[:20]!r}; a character "
                    "tokenizer has no id for characters its training text did not contain"
                ) from None
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos[i] for i in _check_ids(ids, self.vocab_size))

    def token_text(self, i: int) -> str:
        return self.itos[_check_ids([i], self.vocab_size)[0]]

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, special_tokens={list(self.special_tokens)!r})"


def _check_ids(ids, vocab_size: int, name: str = "ids") -> list[int]:
    """``ids`` as a list of ints in ``[0, vocab_size)``, or an error naming the first bad one."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints; got {type(ids).__name__}")
    try:
        ids = list(ids)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints; got {type(ids).__name__}") from None
    # Fast path (decode of a whole corpus): plain ints, checked with C-speed min/max.
    if all(type(i) is int for i in ids) and (not ids or (min(ids) >= 0 and max(ids) < vocab_size)):
        return ids
    for k, i in enumerate(ids):
        # numpy integers are fine; bools and floats are not
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"{name}[{k}] = {i!r} is not an int")
        if not 0 <= i < vocab_size:
            raise ValueError(f"{name}[{k}] = {int(i)} is outside the vocabulary [0, {vocab_size})")
    return [int(i) for i in ids]


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
# byte-level BPE


class BPETokenizer:
    """A byte-level BPE tokenizer: a vocabulary of byte strings, an ordered list of merges and special
    tokens. Make one with :func:`train_bpe` (or :func:`train_bpe_naive`), :meth:`load` or :meth:`from_hf`.

    Args:
        vocab: ``{id: bytes}`` for every non-special id; must contain each of the 256 single bytes.
        merges: ``[((left_id, right_id), new_id), ...]`` in the order they were learned (rank 0 first);
            ``vocab[new_id] == vocab[left_id] + vocab[right_id]``.
        special_tokens: ``{text: id}``; ids disjoint from ``vocab``. Together the ids must be exactly
            ``0 .. vocab_size - 1``.

    Attributes:
        vocab, merges, special_tokens: as above.
        vocab_size: the number of ids, special tokens included.

    Ids as numbered by :func:`train_bpe`: special tokens first (in the order given), then the 256 bytes
    in GPT-2's printable-character order (``'!'`` is the first byte token, the space byte ``'Ġ'`` comes
    after all the printable ones), then one id per merge. That is HF's numbering; it matters because
    ties between equally frequent pairs are broken by these ids.
    """

    def __init__(self, vocab: dict[int, bytes], merges: Sequence[tuple[tuple[int, int], int]],
                 special_tokens: dict[str, int] | None = None):
        special_tokens = dict(special_tokens or {})
        _check_special_tokens(list(special_tokens))
        self.vocab: dict[int, bytes] = {int(i): bytes(b) for i, b in vocab.items()}
        self.special_tokens: dict[str, int] = {s: int(i) for s, i in special_tokens.items()}
        self.merges: list[tuple[tuple[int, int], int]] = [((int(a), int(b)), int(n)) for (a, b), n in merges]
        ids = sorted([*self.vocab, *self.special_tokens.values()])
        if ids != list(range(len(ids))):
            raise ValueError("vocab and special_tokens ids must together be exactly 0 .. vocab_size - 1, "
                             "each used once")
        self._byte_id: dict[int, int] = {}  # byte value -> id
        for i, b in self.vocab.items():
            if len(b) == 1:
                self._byte_id[b[0]] = i
        if len(self._byte_id) != 256:
            raise ValueError(f"vocab must contain all 256 single bytes; it has {len(self._byte_id)}")
        for rank, ((a, b), n) in enumerate(self.merges):
            if a not in self.vocab or b not in self.vocab or n not in self.vocab \
                    or self.vocab[n] != self.vocab[a] + self.vocab[b]:
                raise ValueError(f"merges[{rank}] = (({a}, {b}), {n}) does not join vocab[{a}] and "
                                 f"vocab[{b}] into vocab[{n}]")
        # pair -> (rank, new id). A later duplicate of a pair cannot be reached when encoding, so keep
        # the first.
        self._ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (pair, n) in enumerate(self.merges):
            self._ranks.setdefault(pair, (rank, n))
        # id -> bytes for decoding, special tokens included
        self._id_bytes: list[bytes] = [b""] * len(ids)
        for i, b in self.vocab.items():
            self._id_bytes[i] = b
        for s, i in self.special_tokens.items():
            self._id_bytes[i] = s.encode("utf-8")
        self._special_re = _special_regex(list(self.special_tokens))
        # chunk -> ids. Text repeats its words, so most chunks of a long text are looked up, not merged.
        self._cache: dict[str, list[int]] = {}

    # -- encoding / decoding --------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._id_bytes)

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        """Merge inside one chunk: repeatedly apply the earliest-learned merge that applies (minbpe)."""
        ids = [self._byte_id[b] for b in chunk]
        ranks = self._ranks
        never = (len(self.merges), -1)
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, never))
            rank, new_id = ranks.get(pair, never)
            if new_id < 0:
                break  # no pair in the chunk was ever merged
            ids = merge(ids, pair, new_id)
        return ids

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Text -> ids.

        ``allow_special=True``: special-token strings in the text become their single id (as HF does).
        ``allow_special=False``: they are encoded as ordinary text; use this for text you did not write,
        so that a user typing ``<|endoftext|>`` cannot end a document.
        """
        _check_text(text)
        _utf8(text)  # fail early and clearly on lone surrogates
        ids: list[int] = []
        cache = self._cache
        if len(cache) > 200_000:
            cache.clear()
        for k, piece in enumerate(_split_special(text, self._special_re if allow_special else None)):
            if k % 2:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in pretokenize(piece):
                chunk_ids = cache.get(chunk)
                if chunk_ids is None:
                    chunk_ids = cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
                ids.extend(chunk_ids)
        return ids

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """Ids -> the concatenated bytes of their tokens (special tokens as their UTF-8 text)."""
        return b"".join([self._id_bytes[i] for i in _check_ids(ids, self.vocab_size)])

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text. ``decode(encode(s)) == s`` for every str ``s`` without lone surrogates.

        A slice of ids can cut a multi-byte character in two; those bytes decode to U+FFFD (the
        replacement character, as HF does) instead of raising.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        """The bytes of token ``i``."""
        return self._id_bytes[_check_ids([i], self.vocab_size, "i")[0]]

    def token_text(self, i: int) -> str:
        """Token ``i`` as text (U+FFFD where it holds part of a multi-byte character)."""
        return self.token_bytes(i).decode("utf-8", errors="replace")

    def token_str(self, i: int) -> str:
        """Token ``i`` in GPT-2's printable byte alphabet (``'Ġthe'``), the way HF's vocab shows it."""
        i = _check_ids([i], self.vocab_size, "i")[0]
        if i in self.vocab:
            return _to_printable(self.vocab[i])
        return self._id_bytes[i].decode("utf-8")

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={list(self.special_tokens)!r})")

    # -- save / load: a readable JSON file of our own ---------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as readable JSON (atomically: a crash never leaves half a file).

        The format, one entry per line::

            {"format": "llmcourse-bpe", "version": 1, "pre_tokenizer": "gpt2",
             "special_tokens": {"<|endoftext|>": 0},
             "tokens": ["<|endoftext|>", "!", ..., "Ġt", ...],      # index = id, GPT-2 byte alphabet
             "merges": [[188, 84, 257], ...]}                     # [left, right, new], by rank
        """
        tokens = [self.token_str(i) for i in range(self.vocab_size)]
        d = json.dumps
        lines = [
            "{",
            f'  "format": "llmcourse-bpe",',
            f'  "version": 1,',
            f'  "pre_tokenizer": "gpt2",',
            f'  "special_tokens": {d(self.special_tokens, ensure_ascii=False)},',
            '  "tokens": [',
            ",\n".join(f"    {d(t, ensure_ascii=False)}" for t in tokens),
            "  ],",
            '  "merges": [',
            ",\n".join(f"    [{a}, {b}, {n}]" for (a, b), n in self.merges),
            "  ]",
            "}",
        ]
        _atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a file written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("format") != "llmcourse-bpe" or d.get("version") != 1:
            raise ValueError(f"path {str(path)!r} is not an llmcourse-bpe version 1 file")
        specials = d["special_tokens"]
        special_ids = set(specials.values())
        vocab = {i: _from_printable(t) for i, t in enumerate(d["tokens"]) if i not in special_ids}
        return cls(vocab, [((a, b), n) for a, b, n in d["merges"]], specials)

    # -- Hugging Face tokenizers -------------------------------------------------------------------------

    def to_hf_tokenizer(self):
        """The same tokenizer as a ``tokenizers.Tokenizer`` (BPE model + ByteLevel pre-tokenizer and
        decoder, special tokens as added tokens with our ids). ``hf.encode(s).ids == self.encode(s)``."""
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        vocab = {_to_printable(b): i for i, b in self.vocab.items()}
        # HF looks special tokens up in the model's vocabulary to find their ids, so they go in it too.
        vocab.update(self.special_tokens)
        merges = [(_to_printable(self.vocab[a]), _to_printable(self.vocab[b])) for (a, b), _ in self.merges]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        specials = sorted(self.special_tokens, key=self.special_tokens.get)
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
        return tok

    def save_hf(self, path: str | os.PathLike) -> None:
        """Write a ``tokenizer.json`` that ``tokenizers.Tokenizer.from_file(path)`` loads."""
        _atomic_write_text(path, self.to_hf_tokenizer().to_str(pretty=True))

    @classmethod
    def from_hf(cls, tokenizer) -> BPETokenizer:
        """Import a byte-level BPE from HF: a ``tokenizers.Tokenizer`` or a path to its ``tokenizer.json``
        (for example GPT-2's). Raises ``ValueError`` for anything our encoder would not reproduce
        exactly: another model or pre-tokenizer, a normalizer, dropout, subword prefixes, ..."""
        if isinstance(tokenizer, (str, os.PathLike)):
            d = json.loads(Path(tokenizer).read_text(encoding="utf-8"))
        elif hasattr(tokenizer, "to_str"):
            d = json.loads(tokenizer.to_str())
        else:
            raise TypeError(
                f"tokenizer must be a tokenizers.Tokenizer or a path; got {type(tokenizer).__name__}")
        model, pre = d.get("model") or {}, d.get("pre_tokenizer") or {}
        problems = []
        if model.get("type") != "BPE":
            problems.append(f"model is {model.get('type')!r}, not BPE")
        if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
            problems.append("pre_tokenizer is not ByteLevel(add_prefix_space=False, use_regex=True)")
        if d.get("normalizer") is not None:
            problems.append("it has a normalizer")
        for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(key):
                problems.append(f"model.{key} is set")
        if model.get("byte_fallback") or model.get("ignore_merges"):
            problems.append("model.byte_fallback or model.ignore_merges is set")
        for t in d.get("added_tokens") or []:  # ("normalized" is moot: there is no normalizer)
            if t.get("lstrip") or t.get("rstrip") or t.get("single_word"):
                problems.append(f"added token {t['content']!r} uses lstrip/rstrip/single_word")
        if problems:
            raise ValueError("tokenizer is not a plain byte-level BPE: " + "; ".join(problems))
        specials = {t["content"]: t["id"] for t in d.get("added_tokens") or []}
        hf_vocab: dict[str, int] = model["vocab"]
        vocab = {i: _from_printable(s) for s, i in hf_vocab.items() if s not in specials or specials[s] != i}
        merges = []
        for m in model["merges"]:
            a, b = m.split(" ") if isinstance(m, str) else m  # old files: "a b"; new: ["a", "b"]
            merges.append(((hf_vocab[a], hf_vocab[b]), hf_vocab[a + b]))
        return cls(vocab, merges, specials)


def _atomic_write_text(path: str | os.PathLike, text: str) -> None:
    from llmcourse.datasets import write_atomic

    write_atomic(Path(path), text.encode("utf-8"))


# ----------------------------------------------------------------------------------------------------
# training


def _initial_vocab(specials: list[str]) -> tuple[list[bytes | None], list[int]]:
    """HF's numbering: special tokens first, then the 256 bytes in printable-character order.
    Returns (id -> bytes, with None for specials; byte value -> id)."""
    id_bytes: list[bytes | None] = [None] * len(specials)
    byte_id = [0] * 256
    for b in _byte_order():
        byte_id[b] = len(id_bytes)
        id_bytes.append(bytes([b]))
    return id_bytes, byte_id


def _training_chunks(text: str, specials: list[str]) -> Iterable[str]:
    """The chunks training counts: special tokens are cut out first, so nothing is learned from them and
    no merge spans one."""
    for piece in _split_special(text, _special_regex(specials))[::2]:
        yield from pretokenize(piece)


def _check_train_args(text, vocab_size, special_tokens, min_frequency) -> list[str]:
    _check_text(text)
    _utf8(text)
    specials = _check_special_tokens(special_tokens)
    _check_vocab_size(vocab_size, len(specials))
    _check_min_frequency(min_frequency)
    return specials


def _finish(id_bytes: list[bytes | None], merges, specials: list[str]) -> BPETokenizer:
    vocab = {i: b for i, b in enumerate(id_bytes) if b is not None}
    return BPETokenizer(vocab, merges, {s: i for i, s in enumerate(specials)})


def train_bpe_naive(text: str, vocab_size: int, *, special_tokens: Sequence[str] = (),
                    min_frequency: int = 0, verbose: bool = False) -> BPETokenizer:
    """Train byte-level BPE the plain way (minbpe's RegexTokenizer): at every merge, recount every pair
    in every chunk of the text. Easy to follow, and slow: time ~ (number of merges) x (length of text).

    Same arguments, same rules and same result as :func:`train_bpe`; see there.
    """
    specials = _check_train_args(text, vocab_size, special_tokens, min_frequency)
    id_bytes, byte_id = _initial_vocab(specials)
    token_id = {b: i for i, b in enumerate(id_bytes) if b is not None}
    chunks = [[byte_id[b] for b in c.encode("utf-8")] for c in _training_chunks(text, specials)]
    merges = []
    while len(id_bytes) < vocab_size:
        stats: dict[tuple[int, int], int] = {}
        for ids in chunks:
            get_stats(ids, stats)
        if not stats:
            break
        # The most frequent pair; among equals the smallest (left id, right id), as HF does.
        pair = max(stats, key=lambda p: (stats[p], -p[0], -p[1]))
        if stats[pair] < max(1, min_frequency):
            break
        new_bytes = id_bytes[pair[0]] + id_bytes[pair[1]]
        new_id = token_id.get(new_bytes)
        if new_id is None:  # (a different pair can spell a token we already have; HF reuses its id)
            new_id = token_id[new_bytes] = len(id_bytes)
            id_bytes.append(new_bytes)
        merges.append((pair, new_id))
        chunks = [merge(ids, pair, new_id) for ids in chunks]
        if verbose:
            print(f"merge {len(merges)}: {pair} -> {new_id} {_to_printable(new_bytes)!r} "
                  f"({stats[pair]} times)")
    return _finish(id_bytes, merges, specials)


def train_bpe(text: str, vocab_size: int, *, special_tokens: Sequence[str] = (),
              min_frequency: int = 0) -> BPETokenizer:
    """Train byte-level BPE on ``text`` until the vocabulary has ``vocab_size`` ids (or no pair occurs
    at least ``max(1, min_frequency)`` times).

    Args:
        text: the training text (a str). Special-token strings in it are cut out first.
        vocab_size: 256 bytes + ``len(special_tokens)`` + the number of new tokens wanted.
        special_tokens: e.g. ``["<|endoftext|>"]``; ids 0, 1, ... in this order.
        min_frequency: stop when the best pair occurs fewer times than this.

    The rules (HF's ``BpeTrainer``, so that :func:`train_bpe_hf` learns the same merges):

    - a pair's count is the number of its adjacent occurrences, overlaps included (:func:`get_stats`),
      summed over the chunks of :func:`pretokenize`;
    - the pair with the highest count is merged next; **ties go to the smallest pair of ids**, compared
      as ``(left id, right id)``, with ids numbered as in :class:`BPETokenizer` (specials, bytes in
      printable-character order, then merges in order of creation);
    - if the merged bytes already are a token (two pairs can spell the same bytes), its id is reused and
      the vocabulary does not grow (HF does the same; it has not happened on our corpora).

    How it is fast, compared with :func:`train_bpe_naive`:

    1. Chunks are deduplicated: " the" occurs 21,219 times in the Shakespeare train split but is merged
       once, its pair counts weighted by 21,219 (1,155,272 chunks, 32,753 of them distinct).
    2. An index ``pair -> chunks containing it`` says which chunks a merge touches; only their pair
       counts are updated (remove the chunk's old pairs, add its new ones). Nothing else is recounted.
    3. A heap keyed on ``(-count, pair)`` gives the best pair. Counts that went down since an entry was
       pushed are fixed lazily: a popped entry whose count is out of date is pushed back with the
       right count (HF does exactly this). New pairs are pushed when a merge creates them.
    """
    specials = _check_train_args(text, vocab_size, special_tokens, min_frequency)
    id_bytes, byte_id = _initial_vocab(specials)
    token_id = {b: i for i, b in enumerate(id_bytes) if b is not None}

    # 1. distinct chunks, as lists of byte ids, with how often each occurs
    chunk_counts = Counter(_training_chunks(text, specials))
    words = [[byte_id[b] for b in c.encode("utf-8")] for c in chunk_counts]
    freq = list(chunk_counts.values())

    # 2. pair counts and the index pair -> {word index}
    pair_count: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, w in enumerate(words):
        f = freq[i]
        for pair in zip(w, w[1:]):
            pair_count[pair] += f
            where[pair].add(i)

    # 3. a max-heap by count (heapq is a min-heap, so -count), ties -> smallest pair
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)

    merges = []
    min_count = max(1, min_frequency)
    while len(id_bytes) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        count = pair_count.get(pair, 0)
        if count != -neg:  # stale entry: the count changed since it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        if count < min_count:
            break
        a, b = pair
        new_bytes = id_bytes[a] + id_bytes[b]
        new_id = token_id.get(new_bytes)
        if new_id is None:
            new_id = token_id[new_bytes] = len(id_bytes)
            id_bytes.append(new_bytes)
        merges.append((pair, new_id))

        created = set()  # pairs that contain new_id: they did not exist before this merge
        for i in where.pop(pair):
            w = words[i]
            new_w = merge(w, pair, new_id)
            if len(new_w) == len(w):
                continue  # the index is allowed to be stale: this chunk lost the pair to an earlier merge
            f = freq[i]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
            for p in zip(new_w, new_w[1:]):
                pair_count[p] += f
                if new_id in p:
                    where[p].add(i)
                    created.add(p)
            words[i] = new_w
        for p in created:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
    return _finish(id_bytes, merges, specials)


def train_bpe_hf(text: str, vocab_size: int, *, special_tokens: Sequence[str] = (), min_frequency: int = 0):
    """The same training with Hugging Face ``tokenizers`` (Rust): returns a ``tokenizers.Tokenizer``.

    BPE model, ``ByteLevel(add_prefix_space=False)`` pre-tokenizer and decoder, and a ``BpeTrainer`` with
    the full 256-byte initial alphabet. One adjustment makes it see what :func:`train_bpe` sees: HF's
    trainer does not cut special tokens out of the training text (it would learn merges inside
    ``<|endoftext|>``), so the text is fed to it as the pieces between special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = _check_train_args(text, vocab_size, special_tokens, min_frequency)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(_split_special(text, _special_regex(specials))[::2], trainer)
    return tok


# ----------------------------------------------------------------------------------------------------
# looking inside: for the notebook's widgets


def merge_steps(tokenizer: BPETokenizer, text: str, upto: int | None = None) -> list[list[int]]:
    """The ids of ``text`` after 0, 1, ..., ``upto`` merges (default: all), applied in the order they
    were learned: ``steps[0]`` is the raw bytes, ``steps[k]`` adds ``tokenizer.merges[k - 1]``, and
    ``steps[-1] == tokenizer.encode(text)`` when all merges are used. Special tokens are one id from the
    start. Returns ``upto + 1`` lists; for step-through widgets, so meant for short texts.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"tokenizer must be a BPETokenizer; got {type(tokenizer).__name__}")
    _check_text(text)
    _utf8(text)
    n = len(tokenizer.merges)
    if upto is None:
        upto = n
    if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto <= n:
        raise ValueError(f"upto must be an int in [0, {n}] (the number of merges) or None; got {upto!r}")
    # Each chunk is a list of ids; a special token is a chunk that no merge can touch.
    chunks: list[list[int]] = []
    for k, piece in enumerate(_split_special(text, tokenizer._special_re)):
        if k % 2:
            chunks.append([tokenizer.special_tokens[piece]])
        else:
            chunks += [[tokenizer._byte_id[b] for b in c.encode("utf-8")] for c in pretokenize(piece)]
    steps = [[i for c in chunks for i in c]]
    for pair, new_id in tokenizer.merges[:upto]:
        chunks = [merge(c, pair, new_id) if len(c) > 1 else c for c in chunks]
        steps.append([i for c in chunks for i in c])
    return steps


def token_spans(tokenizer, text: str) -> list[tuple[str, int]]:
    """``[(token_text, id), ...]`` for colouring ``text`` token by token.

    For :class:`BPETokenizer` and :class:`CharTokenizer` the texts join back to exactly ``text``. A
    byte-level token can hold part of a character (a Chinese character is 3 bytes, often 2 or 3
    tokens); such a character is shown with the token that completes it, and the tokens before it get
    ``''``. For a HF ``tokenizers.Tokenizer`` the token strings are HF's own (``'##ing'``, ``'▁the'``).

        >>> tok = train_bpe("hello hello hello", vocab_size=260)
        >>> [s for s, _ in token_spans(tok, "hello!")]
        ['hello', '!']
    """
    _check_text(text)
    if isinstance(tokenizer, BPETokenizer):
        ids = tokenizer.encode(text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        spans = [(decoder.decode(tokenizer._id_bytes[i]), i) for i in ids]
        return spans
    if isinstance(tokenizer, CharTokenizer):
        return [(tokenizer.itos[i], i) for i in tokenizer.encode(text)]
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "id_to_token"):  # HF
        enc = tokenizer.encode(text, add_special_tokens=False)
        return list(zip(enc.tokens, enc.ids))
    raise TypeError(f"tokenizer must be a BPETokenizer, CharTokenizer or tokenizers.Tokenizer; "
                    f"got {type(tokenizer).__name__}")


# ----------------------------------------------------------------------------------------------------
# WordPiece, Unigram (with HF tokenizers) and compression


def train_wordpiece(text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("[UNK]",),
                    lowercase: bool = False):
    """Train a WordPiece tokenizer (BERT's) with HF ``tokenizers``; returns a ``tokenizers.Tokenizer``.

    WordPiece merges the pair that most raises the likelihood, ``count(ab) / (count(a) count(b))``,
    rather than the most frequent; pieces inside a word carry a ``##`` prefix. The pipeline is BERT's:
    ``BertNormalizer`` (``handle_chinese_chars`` puts spaces around every CJK character, so each Chinese
    character is a word of its own; no lower-casing or accent stripping unless ``lowercase``), then
    ``BertPreTokenizer`` (split on whitespace and punctuation).

    What does not round-trip: the decoder joins words with single spaces, so newlines and runs of spaces
    are lost; it re-attaches ``. , ! ?`` but not apostrophes or hyphens ("Don't stop-here" -> "Don ' t
    stop - here"); Chinese comes back with spaces between characters; a word with a character not seen
    in training, or longer than 100 characters, becomes ``[UNK]`` (the first special token), which
    ``decode`` drops; with ``lowercase=True`` case and accents are lost too.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    _check_text(text)
    specials = _check_special_tokens(special_tokens)
    if not specials:
        raise ValueError("special_tokens must contain at least the unknown token, e.g. ['[UNK]']")
    _check_vocab_size_hf(vocab_size)
    tok = Tokenizer(models.WordPiece(unk_token=specials[0]))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=lowercase, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([text], trainer)
    return tok


def train_unigram(text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("<unk>",)):
    """Train a Unigram tokenizer (SentencePiece's default, used by T5) with HF ``tokenizers``.

    Unigram works the other way round from BPE: start from a large vocabulary of candidate pieces, fit
    a probability to each with EM, and repeatedly drop the pieces whose removal costs the likelihood
    least. Encoding picks the most probable segmentation (Viterbi). Spaces become ``'▁'`` and belong to
    the following piece (``Metaspace``), so Chinese, which has no spaces, is segmented freely.

    What does not round-trip: a run of characters not seen in training becomes one ``<unk>`` (the first
    special token; no byte fallback), which ``decode`` drops; a leading space on the text is dropped.

    The trainer is much slower than BPE's: ~5 s for 300 KB of text, ~25 s for 1 MB on a 2-core laptop,
    so train it on a slice.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    _check_text(text)
    specials = _check_special_tokens(special_tokens)
    if not specials:
        raise ValueError("special_tokens must contain at least the unknown token, e.g. ['<unk>']")
    _check_vocab_size_hf(vocab_size)
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=specials[0],
                                      show_progress=False)
    tok.train_from_iterator([text], trainer)
    return tok


def _check_vocab_size_hf(vocab_size) -> None:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2; got {vocab_size!r}")


def compression(tokenizer_or_encode_fn, text: str) -> float:
    """Bytes of UTF-8 text per token: higher means shorter sequences for the model to read.

    ``tokenizer_or_encode_fn``: a :class:`BPETokenizer` or :class:`CharTokenizer`, a HF
    ``tokenizers.Tokenizer`` (encoded without added special tokens), or any function ``str -> ids``.
    Raw bytes score exactly 1.0; GPT-2's tokenizer gets about 4 on English prose.
    """
    _check_text(text)
    if not text:
        raise ValueError("text must not be empty: the compression of nothing is undefined")
    t = tokenizer_or_encode_fn
    if hasattr(t, "encode") and hasattr(t, "id_to_token"):  # HF tokenizers.Tokenizer
        ids = t.encode(text, add_special_tokens=False).ids
    elif hasattr(t, "encode"):
        ids = t.encode(text)
    elif callable(t):
        ids = t(text)
    else:
        raise TypeError(f"tokenizer_or_encode_fn must be a tokenizer or a function; got {type(t).__name__}")
    if len(ids) == 0:
        raise ValueError("the tokenizer returned no tokens for a non-empty text")
    return len(_utf8(text)) / len(ids)


# ----------------------------------------------------------------------------------------------------
# a Chinese text for measuring compression (written for this course; free to use with it)

CHINESE_SAMPLE = """\
深夜的机房里，一个小小的语言模型正在读书。它读的不是一页一页的纸，而是一长串数字：每一句话都先被切成小块，再换成编号。起初，它连“的”字后面该接什么都猜不准，常常把“春天”写成“春的天的”，把句号放在一句话的正中间。可是它不着急。每读完一段，它就对照原文，数一数自己猜错了多少，然后把成千上万个参数轻轻地拧动一点点。这一点点的调整，就是它学习的全部秘密。

它看到的世界有些奇怪。在它眼里，一个汉字往往不是一个整体，而是三个字节拼成的碎片；常见的词被粘成一块，少见的词被拆成好几块。英文里的“the”是一个记号，中文里的一个“龘”字却可能要用三个记号才能写完。它并不抱怨，只是默默记住：哪些碎片总是挨在一起，哪些碎片一出现，后面就几乎一定跟着某个字。

日子一天天过去，错误慢慢变少了。它发现“因为”后面常常跟着“所以”，发现引号总是成对出现，发现诗歌喜欢在行尾押韵。没有人告诉它什么是语法，它只是在无数次“猜下一个字”的练习里，自己摸索出了语言的纹理。有时它也会犯傻，把两个毫不相干的故事缝在一起，写出一位在月亮上卖豆腐的将军；可即使是这样的胡话，读起来也像模像样，标点和语气都挑不出毛病。

研究者喜欢用一个数字来衡量它的进步，叫作困惑度。困惑度越低，说明模型对下一个字越有把握。可是数字并不能说明一切。更让人惊讶的，是它学会了在不同的场合换用不同的口吻：写信时客气周到，讲笑话时轻快俏皮，解释一道数学题时一步一步、不慌不忙。它未必理解自己写下的每一个字，却把人类写作的习惯学得惟妙惟肖。有人说这只是高明的鹦鹉学舌，也有人说这正是理解的开端，争论至今没有结果。

也许有一天，它会写出一首让人读了想哭的诗。到那时，我们或许会想起它最初的样子：一个连标点都放不对的学徒，在黑暗里一遍又一遍地练习，只为了把下一个字猜得更准一点。学写作这件事，对人和对机器来说，大概是相通的：读得足够多，错得足够多，再一点一点地改过来。模型是这样，正在读这门课的你，大概也是这样。
"""
