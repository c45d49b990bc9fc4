"""Trainers from Hugging Face ``tokenizers`` (Rust): byte-level BPE, WordPiece and Unigram.

- :func:`train_bpe_hf` trains the same byte-level BPE as
  :func:`~llmcourse.tokenization.bpe_training.train_bpe` (the tests check that the merges are equal),
  to compare speed and to check ours;
- :func:`train_wordpiece` (BERT's) and :func:`train_unigram` (SentencePiece's, T5's) are the two other
  subword algorithms, compared with BPE by :func:`~llmcourse.tokenization.compare.compression`.

Each returns a ``tokenizers.Tokenizer``. Converting between our
:class:`~llmcourse.tokenization.bpe.BPETokenizer` and HF's is :meth:`BPETokenizer.to_hf_tokenizer` and
:meth:`BPETokenizer.from_hf`. ``tokenizers`` is imported only when one of these runs. Imports :mod:`.common` and :mod:`.bpe_training`.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmcourse.checks import check_bool, check_int, check_str, fail
from llmcourse.tokenization.bpe_training import _check_train_args
from llmcourse.tokenization.common import _check_special_tokens, _special_regex, _split_special

__all__ = ["train_bpe_hf", "train_unigram", "train_wordpiece"]


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


def train_wordpiece(text: str, vocab_size: int, *, special_tokens: Sequence[str] = ("[UNK]",),
                    lowercase: bool = False):
    """Train a WordPiece tokenizer (BERT's format) with HF ``tokenizers``; returns a ``tokenizers.Tokenizer``.

    What is WordPiece here is the format and the encoding: pieces inside a word carry a ``##`` prefix,
    and a word is encoded greedily, longest match first. The training rule is BPE's. The original
    WordPiece trainer (Schuster & Nakajima 2012; used for BERT's vocabulary, never released) merges the
    pair that most raises the likelihood of the training text, usually written as the score
    ``count(ab) / (count(a) count(b))``. HF's ``WordPieceTrainer`` does not: it runs HF's BPE trainer
    (most frequent pair first) with ``continuing_subword_prefix="##"`` and converts the resulting BPE
    model into a WordPiece vocabulary (``tokenizers/src/models/wordpiece/trainer.rs``). Pairs tied in
    count are taken in an order that can change from run to run, so a few tokens at the end of the
    vocabulary can differ between two runs on the same text. Notebook 02, section 7.2, checks all this.

    The pipeline is BERT's: ``BertNormalizer`` (``handle_chinese_chars`` puts spaces around every CJK
    character, so each Chinese character is a word of its own; no lower-casing or accent stripping unless
    ``lowercase``), then ``BertPreTokenizer`` (split on whitespace and punctuation).

    What does not round-trip: the decoder joins words with single spaces, so newlines and runs of spaces
    are lost; it re-attaches ``. , ! ?`` but not apostrophes or hyphens ("Don't stop-here" -> "Don ' t
    stop - here"); Chinese comes back with spaces between characters; a word with a character not seen
    in training, or longer than 100 characters, becomes ``[UNK]`` (the first special token), which
    ``decode`` drops; with ``lowercase=True`` case and accents are lost too.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    check_str("text", text)
    specials = _check_special_tokens(special_tokens)
    if not specials:
        raise fail("special_tokens", "a non-empty list, the unknown token first, e.g. ['[UNK]']", specials)
    check_int("vocab_size", vocab_size, minimum=2)
    lowercase = check_bool("lowercase", lowercase)
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

    check_str("text", text)
    specials = _check_special_tokens(special_tokens)
    if not specials:
        raise fail("special_tokens", "a non-empty list, the unknown token first, e.g. ['<unk>']", specials)
    check_int("vocab_size", vocab_size, minimum=2)
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token=specials[0],
                                      show_progress=False)
    tok.train_from_iterator([text], trainer)
    return tok
