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

The package, one idea per module; each imports only the ones above it (and :mod:`llmcourse.checks`),
and everything public is importable from ``llmcourse.tokenization`` itself:

============================  ======================================================================
``common``                    special tokens (cut out of the text first), id checks, reading files:
                              :class:`TokenizerFileError`
``bytelevel``                 UTF-8 bytes, :func:`pretokenize` with :data:`GPT2_SPLIT_PATTERN`,
                              :func:`bytes_to_unicode` (GPT-2's printable byte alphabet)
``chars``                     :class:`CharTokenizer` (``ngram.CharVocab`` is another name for it)
``bpe``                       :func:`get_stats`, :func:`merge`, :class:`BPETokenizer` (encode, decode,
                              save / load, to and from HF), :func:`merge_steps`
``bpe_training``              :func:`train_bpe_naive`, :func:`train_bpe`
``hf``                        HF ``tokenizers`` trainers: :func:`train_bpe_hf`, :func:`train_wordpiece`,
                              :func:`train_unigram`
``compare``                   :func:`compression`, :func:`token_spans`, :data:`CHINESE_SAMPLE`
============================  ======================================================================
"""

from __future__ import annotations

from llmcourse.tokenization.common import (  # noqa: F401  (private names: kept importable from here)
    TokenizerFileError,
    _atomic_write_text,
    _check_ids,
    _check_special_tokens,
    _special_regex,
    _split_special,
)
from llmcourse.tokenization.bytelevel import (  # noqa: F401
    _ASTRAL,
    _WHITESPACE_CC,
    GPT2_SPLIT_PATTERN,
    _byte_order,
    _from_printable,
    _gpt2_regex,
    _to_printable,
    _unicode_ranges,
    _unicode_to_bytes,
    _utf8,
    bytes_to_unicode,
    pretokenize,
)
from llmcourse.tokenization.chars import CharTokenizer
from llmcourse.tokenization.bpe import BPETokenizer, get_stats, merge, merge_steps
from llmcourse.tokenization.bpe_training import (  # noqa: F401
    _check_train_args,
    _finish,
    _initial_vocab,
    _training_chunks,
    train_bpe,
    train_bpe_naive,
)
from llmcourse.tokenization.hf import train_bpe_hf, train_unigram, train_wordpiece
from llmcourse.tokenization.compare import CHINESE_SAMPLE, compression, token_spans

__all__ = [
    "CHINESE_SAMPLE",
    "GPT2_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "TokenizerFileError",
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
