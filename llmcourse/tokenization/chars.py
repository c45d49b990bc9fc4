"""The character tokenizer: one id per character, the simplest tokenizer and the baseline BPE beats.

:class:`CharTokenizer` is the tokenizer of every character-level model of the course: the n-gram models
of notebook 01 (where it was called ``CharVocab``), the RNNs of notebook 03, the Transformers of
notebook 04 and the character models of the zoo.

Imports only :mod:`llmcourse.checks` and :mod:`.common`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from llmcourse.checks import ArgumentError, check_bool, check_int, check_optional, check_str, fail
from llmcourse.tokenization.common import _check_ids, _check_special_tokens, _special_regex, _split_special

__all__ = ["CharTokenizer"]


class CharTokenizer:
    """Characters <-> integer ids: one id per character of the training text.

        >>> tok = CharTokenizer.train("hello")
        >>> tok.encode("hole").tolist(), tok.vocab_size
        ([1, 3, 2, 0], 4)
        >>> tok.decode([1, 0, 2, 2, 3])
        'hello'

    Ids, in this order:

    1. the special tokens (``special_tokens``, e.g. ``["<|endoftext|>"]``), ``0 .. S-1``, in the order given;
    2. the characters, in code-point order (``'e' < 'h' < 'l' < 'o'``), so the ids do not depend on
       the order of the text: ``CharTokenizer("ba")`` maps ``'a' -> 0, 'b' -> 1``;
    3. ``unk_token``, if there is one: the last id.

    Without special tokens the ids are exactly those of the old ``ngram.CharVocab``, which the zoo's
    character models and the committed results were built with.

    Unknown characters: a character model can only predict characters it has an id for, so ``encode``
    must decide what to do with a character that is not in the vocabulary -- the weakness byte-level
    BPE removes.

    - ``unk_token=None`` (default): ``encode`` raises an error naming every unknown character. Nothing
      is silently changed, which is what you want when train and validation come from one corpus.
    - ``unk_token="<unk>"`` (any string): one extra id, the last one, is reserved; every unknown
      character encodes to it, and ``decode`` writes it back as ``unk_token``.

    Args:
        chars: the characters of the vocabulary (a string or an iterable of 1-character strings);
            duplicates are ignored.
        special_tokens: strings that always encode to one id each (``allow_special=True``).
        unk_token: see above.

    Attributes:
        itos: ``list[str]`` id -> string (special tokens, characters, then ``unk_token``).
        stoi: ``dict[str, int]`` character -> id (characters only: no special tokens, no ``unk_token``).
        special_tokens: ``dict[str, int]`` special token -> id.
        unk_token, unk_id: the unknown token and its id, or ``None``.
    """

    def __init__(self, chars: str | Iterable[str], special_tokens: Sequence[str] = (),
                 unk_token: str | None = None):
        specials = _check_special_tokens(special_tokens)
        unk_token = check_optional(check_str, "unk_token", unk_token, allow_empty=False)
        if unk_token in specials:
            raise fail("unk_token", "a str that is not also one of special_tokens", unk_token)
        if isinstance(chars, bytes) or not isinstance(chars, Iterable):
            raise fail("chars", "a str or an iterable of 1-character strings", chars)
        chars = list(chars)
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise fail(f"chars[{i}]", "a single character (a str of length 1)", c)
        chars = sorted(set(chars))
        n = len(specials)
        self.special_tokens: dict[str, int] = {s: i for i, s in enumerate(specials)}
        self.itos: list[str] = specials + chars + ([unk_token] if unk_token is not None else [])
        self.stoi: dict[str, int] = {c: n + i for i, c in enumerate(chars)}
        self.unk_token: str | None = unk_token
        self.unk_id: int | None = n + len(chars) if unk_token is not None else None
        self._special_re = _special_regex(specials)
        # Sorted code points, so encode is one np.searchsorted over the whole text instead of a Python
        # loop of dict look-ups (4 MB of text: ~0.05 s instead of ~0.5 s).
        self._codes = np.array([ord(c) for c in chars], dtype=np.uint32)
        self._first = n  # the id of the first character

    @classmethod
    def train(cls, text: str, special_tokens: Sequence[str] = (),
              unk_token: str | None = None) -> CharTokenizer:
        """The vocabulary of the characters in ``text`` (special-token strings in it are not counted)."""
        check_str("text", text)
        specials = _check_special_tokens(special_tokens)
        pieces = _split_special(text, _special_regex(specials))
        return cls("".join(pieces[::2]), specials, unk_token)

    @classmethod
    def from_text(cls, text: str, special_tokens: Sequence[str] = (),
                  unk_token: str | None = None) -> CharTokenizer:
        """The same as :meth:`train` (the name ``CharVocab`` used)."""
        return cls.train(text, special_tokens, unk_token)

    @property
    def vocab_size(self) -> int:
        """The number of ids, special tokens and ``unk_token`` included."""
        return len(self.itos)

    @property
    def size(self) -> int:
        """The same as :attr:`vocab_size`: the ``vocab_size`` to give :class:`~llmcourse.ngram.NGramLM`."""
        return len(self.itos)

    def __len__(self) -> int:
        return len(self.itos)

    def _encode_chars(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text`` (no special tokens): ``(len(text),)`` int64."""
        # surrogatepass: a lone surrogate is a character like any other here (unknown, unless trained on)
        codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        if len(self._codes) == 0:
            ids, known = np.zeros(len(codes), dtype=np.int64), np.zeros(len(codes), dtype=bool)
        else:
            ids = np.searchsorted(self._codes, codes).astype(np.int64)
            known = self._codes[np.minimum(ids, len(self._codes) - 1)] == codes
            ids += self._first
        if not known.all():
            if self.unk_id is None:
                unknown = sorted({chr(c) for c in codes[~known]})
                shown = ", ".join(repr(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
                raise ArgumentError(
                    f"text contains {len(unknown)} character(s) not in the vocabulary: {shown}; a character "
                    "tokenizer has no id for characters its training text did not contain (train it on text "
                    "that contains them, or pass unk_token='<unk>' to map unknown characters to one id)"
                )
            ids[~known] = self.unk_id
        return ids

    def encode(self, text: str, *, allow_special: bool = True) -> np.ndarray:
        """Text -> ids: ``(T,)`` int64, one per character (and one per special token).

        ``allow_special=True``: special-token strings in the text become their single id.
        ``allow_special=False``: they are encoded character by character, like any text (for text you
        did not write). Unknown characters follow the policy in the class doc.
        """
        check_str("text", text)
        allow_special = check_bool("allow_special", allow_special)
        if not allow_special or self._special_re is None or self._special_re.search(text) is None:
            return self._encode_chars(text)  # the fast path: one searchsorted over the whole text
        parts = []
        for k, piece in enumerate(_split_special(text, self._special_re)):
            if k % 2:
                parts.append(np.array([self.special_tokens[piece]], dtype=np.int64))
            elif piece:
                parts.append(self._encode_chars(piece))
        return np.concatenate(parts)

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Ids -> text. ``ids``: ``(T,)`` integers in ``[0, vocab_size)`` (a list, array or tensor)."""
        itos = self.itos
        return "".join([itos[i] for i in _check_ids(ids, len(itos))])

    def token_text(self, i: int) -> str:
        """The string of id ``i``: a character, a special token or ``unk_token``."""
        return self.itos[check_int("i", i, minimum=0, maximum=len(self.itos) - 1)]

    def with_special_tokens(self, tokens: Sequence[str]) -> CharTokenizer:
        """A copy with ``tokens`` as more special tokens, given the next ids after every existing one
        (``vocab_size``, ``vocab_size + 1``, ...), so the ids this tokenizer had keep their meaning (a
        pretrained model's embedding rows stay valid; it only needs rows for the new ids)."""
        import copy

        tokens = _check_special_tokens(tokens, "tokens")
        clash = [t for t in tokens if t in self.special_tokens or t == self.unk_token]
        if clash:
            raise fail("tokens", f"strings that are not already special tokens ({clash!r} are)", tokens)
        new = copy.copy(self)
        new.special_tokens = {**self.special_tokens, **{t: len(self.itos) + k for k, t in enumerate(tokens)}}
        new.itos = self.itos + list(tokens)
        new._special_re = _special_regex(list(new.special_tokens))
        return new

    def __repr__(self) -> str:
        return (f"CharTokenizer(vocab_size={self.vocab_size}, special_tokens={list(self.special_tokens)!r}, "
                f"unk_token={self.unk_token!r})")
