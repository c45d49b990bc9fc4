"""Byte-level BPE: the two operations of BPE and the tokenizer, with save / load and HF conversion.

- :func:`get_stats` counts adjacent pairs of ids and :func:`merge` replaces one pair by a new id: the
  whole of BPE is these two, repeated (Karpathy's minbpe);
- :class:`BPETokenizer` holds a vocabulary of byte strings, the ordered merges and special tokens, and
  encodes (steps 3 and 4 of the package docstring), decodes, saves to and loads from a readable JSON
  file, and converts to and from a Hugging Face ``tokenizers.Tokenizer``;
- :func:`merge_steps` replays the merges one by one, for the notebook's widgets.

Training lives in :mod:`.training`. Imports :mod:`.common` and :mod:`.bytelevel`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from llmcourse.checks import ArgumentError, check_bool, check_int, check_optional, check_str, fail
from llmcourse.tokenization.bytelevel import _from_printable, _to_printable, _utf8, pretokenize
from llmcourse.tokenization.common import (
    TokenizerFileError,
    _atomic_write_text,
    _check_ids,
    _check_path,
    _check_special_tokens,
    _read_json,
    _special_regex,
    _split_special,
)

__all__ = ["BPETokenizer", "get_stats", "merge", "merge_steps"]


# ----------------------------------------------------------------------------------------------------
# the two operations of BPE (minbpe's base)


def _int_list(name: str, ids) -> list[int]:
    """``ids`` (a list, tuple, bytes or 1-D array of ints) as a list of ints, or an error naming it."""
    if hasattr(ids, "tolist") and not isinstance(ids, (list, tuple)):  # a NumPy array or a tensor
        ids = ids.tolist()
    if isinstance(ids, str) or not isinstance(ids, (Sequence, bytearray)):
        raise fail(name, "a sequence of int ids", ids)
    ids = list(ids)
    for k, i in enumerate(ids):
        if type(i) is not int and (isinstance(i, bool) or not hasattr(i, "__index__")):
            raise fail(f"{name}[{k}]", "an int", i)
    return [int(i) for i in ids]


def get_stats(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict[tuple[int, int], int]:
    """Count adjacent pairs of ids, adding ``weight`` per occurrence into ``counts`` (a new dict if None).

        >>> get_stats([1, 2, 3, 1, 2])
        {(1, 2): 2, (2, 3): 1, (3, 1): 1}

    Overlapping pairs all count: ``[5, 5, 5]`` has the pair ``(5, 5)`` twice, though only one of them
    can be merged. HF counts the same way, which matters for the tie-breaking to agree.
    """
    ids = _int_list("ids", ids)
    if counts is not None and not isinstance(counts, dict):
        raise fail("counts", "a dict {pair: count} or None", counts)
    return _get_stats(ids, counts, check_int("weight", weight, minimum=None))


def _get_stats(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict[tuple[int, int], int]:
    """:func:`get_stats` without the argument checks, for the trainers' inner loops."""
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
    ids = _int_list("ids", ids)
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise fail("pair", "a pair of int ids (left, right)", pair)
    pair = tuple(_int_list("pair", pair))
    return _merge(ids, pair, check_int("new_id", new_id, minimum=0))


def _merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """:func:`merge` without the argument checks, for the trainers' and the encoder's inner loops."""
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
# byte-level BPE


def _id_gaps(ids: list[int]) -> str:
    """What is wrong with a sorted list of ids that should be ``0 .. len(ids) - 1``."""
    for i, j in zip(ids, ids[1:]):
        if i == j:
            return f"id {i} twice"
    for k, i in enumerate(ids):
        if i != k:
            return f"no id {k} (ids go up to {ids[-1]})"
    return "ids out of order"


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
        if special_tokens is None:
            special_tokens = {}
        if not isinstance(special_tokens, Mapping):
            raise fail("special_tokens", "a dict {text: id} or None", special_tokens)
        _check_special_tokens(list(special_tokens))
        self.special_tokens: dict[str, int] = {
            s: check_int(f"special_tokens[{s!r}]", i, minimum=0) for s, i in special_tokens.items()}
        if not isinstance(vocab, Mapping):
            raise fail("vocab", "a dict {id: bytes}", vocab)
        self.vocab: dict[int, bytes] = {}
        for i, b in vocab.items():
            if not isinstance(b, (bytes, bytearray)):
                raise fail(f"vocab[{i!r}]", "bytes", b)
            self.vocab[check_int("vocab id", i, minimum=0)] = bytes(b)
        if isinstance(merges, (str, bytes)) or not isinstance(merges, Sequence):
            raise fail("merges", "a list of ((left_id, right_id), new_id)", merges)
        self.merges: list[tuple[tuple[int, int], int]] = []
        for rank, m in enumerate(merges):
            try:
                (a, b), n = m
                self.merges.append(((check_int("a", a, minimum=0), check_int("b", b, minimum=0)),
                                    check_int("n", n, minimum=0)))
            except (TypeError, ValueError):
                raise fail(f"merges[{rank}]", "((left_id, right_id), new_id), three int ids", m) from None
        ids = sorted([*self.vocab, *self.special_tokens.values()])
        if ids != list(range(len(ids))):
            raise ArgumentError("vocab and special_tokens must together number their ids exactly "
                                f"0 .. vocab_size - 1, each used once; got {_id_gaps(ids)}")
        self._byte_id: dict[int, int] = {}  # byte value -> id
        for i, b in self.vocab.items():
            if len(b) == 1:
                self._byte_id[b[0]] = i
        if len(self._byte_id) != 256:
            raise ArgumentError(f"vocab must hold all 256 single bytes; it has {len(self._byte_id)}")
        for rank, ((a, b), n) in enumerate(self.merges):
            if a not in self.vocab or b not in self.vocab or n not in self.vocab \
                    or self.vocab[n] != self.vocab[a] + self.vocab[b]:
                raise ArgumentError(f"merges[{rank}] = (({a}, {b}), {n}) must join vocab[{a}] and "
                                    f"vocab[{b}] into vocab[{n}], and does not")
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
            ids = _merge(ids, pair, new_id)
        return ids

    def encode(self, text: str, *, allow_special: bool = True) -> list[int]:
        """Text -> ids.

        ``allow_special=True``: special-token strings in the text become their single id (as HF does).
        ``allow_special=False``: they are encoded as ordinary text; use this for text you did not write,
        so that a user typing ``<|endoftext|>`` cannot end a document.
        """
        check_str("text", text)
        allow_special = check_bool("allow_special", allow_special)
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
        return self._id_bytes[check_int("i", i, minimum=0, maximum=self.vocab_size - 1)]

    def token_text(self, i: int) -> str:
        """Token ``i`` as text (U+FFFD where it holds part of a multi-byte character)."""
        return self.token_bytes(i).decode("utf-8", errors="replace")

    def token_str(self, i: int) -> str:
        """Token ``i`` in GPT-2's printable byte alphabet (``'Ġthe'``), the way HF's vocab shows it."""
        i = check_int("i", i, minimum=0, maximum=self.vocab_size - 1)
        if i in self.vocab:
            return _to_printable(self.vocab[i])
        return self._id_bytes[i].decode("utf-8")

    def with_special_tokens(self, tokens: Sequence[str]) -> BPETokenizer:
        """A copy with ``tokens`` as more special tokens, given the next ids after every existing one
        (``vocab_size``, ``vocab_size + 1``, ...): the vocabulary, the merges and every old id keep their
        meaning, so a pretrained model only needs embedding rows for the new ids."""
        tokens = _check_special_tokens(tokens, "tokens")
        clash = [t for t in tokens if t in self.special_tokens]
        if clash:
            raise fail("tokens", f"strings that are not already special tokens ({clash!r} are)", tokens)
        added = {t: self.vocab_size + k for k, t in enumerate(tokens)}
        return BPETokenizer(dict(self.vocab), self.merges, {**self.special_tokens, **added})

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
        path = _check_path(path)
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
        """Read a file written by :meth:`save`.

        A damaged file (truncated, edited by hand, another format) raises :class:`TokenizerFileError`
        naming the file, what is wrong and how to get a good one back; a missing file,
        ``FileNotFoundError``. A Hugging Face ``tokenizer.json`` is read by :meth:`from_hf`.
        """
        path = _check_path(path)
        fix = f"save the tokenizer again with BPETokenizer.save, or restore the file (`git checkout -- {path}`)"
        d = _read_json(path, fix)

        def bad(what: str) -> TokenizerFileError:
            return TokenizerFileError(path, what, fix)

        if not isinstance(d, dict):
            raise bad(f"holds a JSON {type(d).__name__}, not the object BPETokenizer.save writes")
        if d.get("format") != "llmcourse-bpe" or d.get("version") != 1:
            hint = " (it looks like a Hugging Face tokenizer.json: read it with BPETokenizer.from_hf)" \
                if "model" in d else ""
            raise bad(f"is not an llmcourse-bpe version 1 file: its format is {d.get('format')!r}, "
                      f"version {d.get('version')!r}{hint}")
        for key, kind in (("special_tokens", dict), ("tokens", list), ("merges", list)):
            if key not in d:
                raise bad(f"lacks the key {key!r}")
            if not isinstance(d[key], kind):
                raise bad(f"has {key!r} of type {type(d[key]).__name__}, not a JSON "
                          f"{'object' if kind is dict else 'array'}")
        specials, tokens = d["special_tokens"], d["tokens"]
        for s, i in specials.items():
            if type(i) is not int or not 0 <= i < len(tokens) or tokens[i] != s:
                raise bad(f"has special_tokens[{s!r}] = {i!r}, which is not the index of {s!r} in 'tokens'")
        special_ids = set(specials.values())
        vocab = {}
        for i, t in enumerate(tokens):
            if i not in special_ids:
                try:
                    vocab[i] = _from_printable(t, f"tokens[{i}]")
                except ArgumentError as e:
                    raise bad(f"is damaged: {e}") from None
        merges = []
        for rank, m in enumerate(d["merges"]):
            if not (isinstance(m, list) and len(m) == 3 and all(type(x) is int for x in m)):
                raise bad(f"is damaged: merges[{rank}] must be [left, right, new], three ints; got {m!r}")
            merges.append(((m[0], m[1]), m[2]))
        try:
            return cls(vocab, merges, specials)
        except ArgumentError as e:
            raise bad(f"is damaged: {e}") from None

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
        _atomic_write_text(_check_path(path), self.to_hf_tokenizer().to_str(pretty=True))

    @classmethod
    def from_hf(cls, tokenizer) -> BPETokenizer:
        """Import a byte-level BPE from HF: a ``tokenizers.Tokenizer`` or a path to its ``tokenizer.json``
        (for example GPT-2's). Raises ``ValueError`` for anything our encoder would not reproduce
        exactly: another model or pre-tokenizer, a normalizer, dropout, subword prefixes, ...; for a
        file, that error is a :class:`TokenizerFileError` naming it, as it is for a damaged file."""
        if isinstance(tokenizer, (str, os.PathLike)):
            path = _check_path(tokenizer, "tokenizer")
            fix = (f"export it again (BPETokenizer.save_hf or tokenizers.Tokenizer.save), or restore the file "
                   f"(e.g. `git checkout -- {path}`)")
            d = _read_json(path, fix)

            def bad(what: str) -> ValueError:
                return TokenizerFileError(path, what, fix)
        elif hasattr(tokenizer, "to_str"):
            d = json.loads(tokenizer.to_str())

            def bad(what: str) -> ValueError:
                return ArgumentError(f"tokenizer {what}")
        else:
            raise fail("tokenizer", "a tokenizers.Tokenizer or a path to a tokenizer.json", tokenizer)
        if not isinstance(d, dict) or not isinstance(d.get("model"), dict):
            raise bad("is not a Hugging Face tokenizer.json: it has no 'model' object")
        model, pre = d["model"], d.get("pre_tokenizer") or {}
        problems = []
        if model.get("type") != "BPE":
            problems.append(f"model is {model.get('type')!r}, not BPE")
        if not isinstance(pre, dict) or pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") \
                or not pre.get("use_regex", True):
            problems.append("pre_tokenizer is not ByteLevel(add_prefix_space=False, use_regex=True)")
        if d.get("normalizer") is not None:
            problems.append("it has a normalizer")
        for key in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(key):
                problems.append(f"model.{key} is set")
        if model.get("byte_fallback") or model.get("ignore_merges"):
            problems.append("model.byte_fallback or model.ignore_merges is set")
        added = d.get("added_tokens") or []
        if not isinstance(added, list) or not all(isinstance(t, dict) and isinstance(t.get("content"), str)
                                                   and type(t.get("id")) is int for t in added):
            raise bad("has an 'added_tokens' entry without a str 'content' and an int 'id'")
        for t in added:  # ("normalized" is moot: there is no normalizer)
            if t.get("lstrip") or t.get("rstrip") or t.get("single_word"):
                problems.append(f"added token {t['content']!r} uses lstrip/rstrip/single_word")
        if problems:
            raise bad("is not a plain byte-level BPE: " + "; ".join(problems))
        for key in ("vocab", "merges"):
            if key not in model:
                raise bad(f"lacks the key 'model.{key}'")
        hf_vocab: dict[str, int] = model["vocab"]
        if not isinstance(hf_vocab, dict) or not all(type(i) is int for i in hf_vocab.values()):
            raise bad("has a 'model.vocab' that is not an object {token: int id}")
        if not isinstance(model["merges"], list):
            raise bad("has a 'model.merges' that is not a list")
        specials = {t["content"]: t["id"] for t in added}
        vocab = {}
        for s, i in hf_vocab.items():
            if s not in specials or specials[s] != i:
                try:
                    vocab[i] = _from_printable(s, f"model.vocab token {i}")
                except ArgumentError as e:
                    raise bad(f"is damaged: {e}") from None
        merges = []
        for rank, m in enumerate(model["merges"]):
            pair = m.split(" ") if isinstance(m, str) else m  # old files: "a b"; new: ["a", "b"]
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise bad(f"is damaged: model.merges[{rank}] must be two token strings; got {m!r}")
            a, b = pair
            missing = [t for t in (a, b, a + b) if t not in hf_vocab]
            if missing:
                raise bad(f"is damaged: model.merges[{rank}] = {m!r} needs the token {missing[0]!r}, "
                          "which is not in model.vocab")
            merges.append(((hf_vocab[a], hf_vocab[b]), hf_vocab[a + b]))
        try:
            return cls(vocab, merges, specials)
        except ArgumentError as e:
            raise bad(f"is damaged: {e}") from None


# ----------------------------------------------------------------------------------------------------
# looking inside: for the notebook's widgets


def merge_steps(tokenizer: BPETokenizer, text: str, upto: int | None = None) -> list[list[int]]:
    """The ids of ``text`` after 0, 1, ..., ``upto`` merges (default: all), applied in the order they
    were learned: ``steps[0]`` is the raw bytes, ``steps[k]`` adds ``tokenizer.merges[k - 1]``, and
    ``steps[-1] == tokenizer.encode(text)`` when all merges are used. Special tokens are one id from the
    start. Returns ``upto + 1`` lists; for step-through widgets, so meant for short texts.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise fail("tokenizer", "a BPETokenizer", tokenizer)
    _utf8(check_str("text", text))
    n = len(tokenizer.merges)
    upto = check_optional(check_int, "upto", upto, minimum=0, maximum=n)  # at most the number of merges
    if upto is None:
        upto = n
    # Each chunk is a list of ids; a special token is a chunk that no merge can touch.
    chunks: list[list[int]] = []
    for k, piece in enumerate(_split_special(text, tokenizer._special_re)):
        if k % 2:
            chunks.append([tokenizer.special_tokens[piece]])
        else:
            chunks += [[tokenizer._byte_id[b] for b in c.encode("utf-8")] for c in pretokenize(piece)]
    steps = [[i for c in chunks for i in c]]
    for pair, new_id in tokenizer.merges[:upto]:
        chunks = [_merge(c, pair, new_id) if len(c) > 1 else c for c in chunks]
        steps.append([i for c in chunks for i in c])
    return steps


