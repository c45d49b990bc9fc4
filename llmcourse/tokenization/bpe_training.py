"""Training byte-level BPE: two trainers that learn identical merges, the plain one and the fast one.

:func:`train_bpe_naive` recounts every pair at every merge, as in Karpathy's minbpe, and is kept for
reading; :func:`train_bpe` updates counts only where a merge happened and is fast enough for the whole
Shakespeare corpus. Both break ties exactly as Hugging Face ``tokenizers`` does, so their merges equal
those of HF's trainer (:func:`~llmcourse.tokenization.hf.train_bpe_hf`) on the same text.

Imports :mod:`.common`, :mod:`.bytelevel` and :mod:`.bpe`.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from llmcourse.checks import check_bool, check_int, check_str, fail
from llmcourse.tokenization.bpe import BPETokenizer, _get_stats, _merge
from llmcourse.tokenization.bytelevel import _byte_order, _to_printable, _utf8, pretokenize
from llmcourse.tokenization.common import _check_special_tokens, _special_regex, _split_special

__all__ = ["train_bpe", "train_bpe_naive"]


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
    """The checks every BPE trainer makes (HF's too): returns the special tokens as a list."""
    _utf8(check_str("text", text))
    specials = _check_special_tokens(special_tokens)
    n = len(specials)
    if check_int("vocab_size", vocab_size, minimum=None) < 256 + n:
        raise fail("vocab_size", f"an integer >= {256 + n} (byte-level BPE needs 256 byte tokens + {n} "
                   "special token(s) before the first merge)", vocab_size)
    check_int("min_frequency", min_frequency, minimum=0)
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
    verbose = check_bool("verbose", verbose)
    id_bytes, byte_id = _initial_vocab(specials)
    token_id = {b: i for i, b in enumerate(id_bytes) if b is not None}
    chunks = [[byte_id[b] for b in c.encode("utf-8")] for c in _training_chunks(text, specials)]
    merges = []
    while len(id_bytes) < vocab_size:
        stats: dict[tuple[int, int], int] = {}
        for ids in chunks:
            _get_stats(ids, stats)
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
        chunks = [_merge(ids, pair, new_id) for ids in chunks]
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
            new_w = _merge(w, pair, new_id)
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
