"""Count-based n-gram language models: counting, smoothing, perplexity and sampling.

A language model gives a probability to every sequence of tokens. The chain rule splits it into one
prediction per token,

    P(w_1 ... w_T) = P(w_1) P(w_2 | w_1) ... P(w_T | w_1 ... w_{T-1}),

and an n-gram model makes the Markov assumption: only the last n-1 tokens matter,
P(w_t | w_1 ... w_{t-1}) ~= P(w_t | w_{t-n+1} ... w_{t-1}). Estimating those conditionals is counting:
the maximum-likelihood estimate (MLE) is c(h w) / c(h). Any n-gram that training never saw gets
probability 0 under MLE, so one such n-gram in held-out text makes its perplexity infinite. Smoothing
moves some probability to the unseen: add-k (Laplace when k = 1) pretends every n-gram was seen k more
times; interpolated modified Kneser-Ney (Chen & Goodman 1998) subtracts a discount from every seen count
and hands the freed mass to a lower-order model built from *continuation* counts.

The models work on sequences of integer token ids in ``[0, vocab_size)``, so the same class serves a
character-level model (ids from :class:`~llmcourse.tokenization.CharTokenizer`) and a model over BPE
tokens.

    >>> from llmcourse.tokenization import CharTokenizer
    >>> vocab = CharTokenizer.from_text("abracadabra")
    >>> lm = NGramLM(order=2, vocab_size=len(vocab)).fit(vocab.encode("abracadabra"))
    >>> round(lm.prob(vocab.encode("a"), vocab.stoi["b"]), 6)   # 47/140, worked out in the tests
    0.335714

How it is fast: an m-gram (w_1 ... w_m) is written as one int64 key, the base-V number
w_1 V^(m-1) + ... + w_m. Counting is then ``np.unique`` over the keys of every position, a look-up is
``np.searchsorted`` into the sorted keys, and the history of a key is ``key // V`` and its last token
``key % V``. Scoring a whole text is one vectorised pass per order, with no Python loop over positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmcourse.checks import (
    ArgumentError,
    check_choice,
    check_int,
    check_number,
    check_optional,
    check_token_ids,
    fail,
)
from llmcourse.tokenization import CharTokenizer

__all__ = [
    "CharVocab",
    "FALLBACK_DISCOUNTS",
    "NGramLM",
    "SMOOTHINGS",
    "bits_per_character",
    "count_ngrams",
    "cross_entropy",
    "modified_kneser_ney_discounts",
    "perplexity",
]

SMOOTHINGS = ("kneser_ney", "add_k", "mle")

# The discounts KenLM falls back to (its --discount_fallback) when a corpus is too small to estimate
# them: D1 = 0.5, D2 = 1.0, D3+ = 1.5.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


# ----------------------------------------------------------------------------------------------------
# text <-> ids


CharVocab = CharTokenizer
"""Another name for :class:`llmcourse.tokenization.CharTokenizer`, kept for one release.

``CharVocab`` was the n-gram module's own character vocabulary; it is now the one character tokenizer
of the package, with the same ids (characters in code-point order, ``unk_token`` last), ``from_text``,
``size``, ``len()``, the int64 NumPy ``encode``, ``itos``, ``stoi`` and ``unk_id``. Write
``from llmcourse.tokenization import CharTokenizer`` in new code: this name will be removed in the
next release.
"""


# ----------------------------------------------------------------------------------------------------
# metrics


def _as_log_probs(log_probs) -> np.ndarray:
    """``log_probs`` as ``(T,)`` float64, T >= 1, every entry a natural-log probability (<= 0, no NaN)."""
    what = "a non-empty 1-D array of natural-log probabilities (<= 0, no NaN)"
    try:
        lp = np.asarray(log_probs, dtype=np.float64)  # (T,)
    except (TypeError, ValueError):
        raise fail("log_probs", what, log_probs) from None
    if lp.ndim != 1 or lp.size == 0 or np.any(lp > 1e-9) or np.isnan(lp).any():
        raise fail("log_probs", what, log_probs)
    return lp


def cross_entropy(log_probs) -> float:
    """Mean negative log-likelihood in nats per token. ``log_probs``: ``(T,)`` natural-log probabilities
    of the tokens that occurred. ``inf`` if any of them is ``-inf`` (a token the model ruled out)."""
    return float(-_as_log_probs(log_probs).mean())


def perplexity(log_probs) -> float:
    """``exp(cross entropy)``: the size of a uniform choice that would be as surprised as the model.

    A model that is uniform over V tokens has perplexity exactly V. ``log_probs``: ``(T,)`` natural-log
    probabilities of the tokens that occurred. The formula is :func:`llmcourse.evaluation.perplexity`'s.
    """
    from llmcourse import evaluation

    lp = _as_log_probs(log_probs)
    total = float(-lp.sum())
    return math.inf if math.isinf(total) else evaluation.perplexity(total, len(lp))


def bits_per_character(log_probs, n_characters: int | None = None) -> float:
    """Total information in bits divided by the number of characters of the text.

    ``log_probs``: ``(T,)`` natural-log probabilities of the tokens. For a character model each token is
    one character and this is ``cross_entropy / ln 2``. For a model over multi-character tokens (BPE),
    pass the length of the text in characters as ``n_characters``: bits per character is then comparable
    across tokenisers, while perplexity per token is not.
    """
    from llmcourse import evaluation

    lp = _as_log_probs(log_probs)
    n_characters = check_optional(check_int, "n_characters", n_characters, minimum=1)
    total = float(-lp.sum())
    n = len(lp) if n_characters is None else n_characters
    return math.inf if math.isinf(total) else evaluation.bits_per_character(total, n)


# ----------------------------------------------------------------------------------------------------
# counting


def _token_ids(name: str, ids, vocab_size: int) -> np.ndarray:
    """:func:`llmcourse.checks.check_token_ids` for NumPy: ``(T,)`` int64 ids in ``[0, vocab_size)``."""
    if isinstance(ids, np.ndarray) and not ids.flags.c_contiguous:
        ids = ids.copy()  # torch cannot share memory with a reversed or strided view
    return check_token_ids(name, ids, vocab_size).numpy()


def _check_key_range(order: int, vocab_size: int, name: str = "order") -> None:
    """An m-gram key is a base-V number of ``order`` digits: it must fit in int64."""
    if vocab_size**order > 2**63:
        most = max(m for m in range(1, order) if vocab_size**m <= 2**63) if vocab_size <= 2**63 else 0
        raise fail(name, f"at most {most} with vocab_size={vocab_size} (an n-gram's key, up to "
                   f"vocab_size**{name}, must fit in int64; a 50k-token vocabulary allows 4)", order)


def _ngram_keys(ids: np.ndarray, m: int, vocab_size: int) -> np.ndarray:
    """The key of the m-gram starting at every position: ``(T - m + 1,)`` int64, key = sum w_j V^(m-1-j).

    m = 0 gives ``T + 1`` zeros: the empty history of every position, so unigrams need no special case.
    """
    n = len(ids) - m + 1
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.zeros(n, dtype=np.int64)
    for j in range(m):  # Horner's rule, one vectorised step per token of the m-gram
        keys = keys * vocab_size + ids[j : j + n]
    return keys


def count_ngrams(ids, m: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Count every m-gram in ``ids``.

    Args:
        ids: ``(T,)`` token ids in ``[0, vocab_size)``.
        m: the n-gram length, >= 1.
        vocab_size: V.

    Returns:
        ``(grams, counts)``: ``grams`` ``(U, m)`` int64, the U distinct m-grams in lexicographic order;
        ``counts`` ``(U,)`` int64, how often each occurs. For example
        ``count_ngrams([0, 1, 0, 1], 2, 2) -> ([[0, 1], [1, 0]], [2, 1])``.
    """
    m = check_int("m", m, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=1)
    _check_key_range(m, vocab_size, "m")
    ids = _token_ids("ids", ids, vocab_size)
    keys, counts = np.unique(_ngram_keys(ids, m, vocab_size), return_counts=True)
    # Undo the base-V encoding: the j-th token is (key // V^(m-1-j)) % V.
    powers = vocab_size ** np.arange(m - 1, -1, -1, dtype=np.int64)
    grams = (keys[:, None] // powers[None, :]) % vocab_size
    return grams, counts.astype(np.int64)


def modified_kneser_ney_discounts(counts) -> tuple[float, float, float]:
    """Chen & Goodman's (1998) discounts (D1, D2, D3+) from the counts of one order's n-grams.

    With n_r the number of distinct n-grams seen exactly r times and Y = n1 / (n1 + 2 n2):
    D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3. (Algebra: D1 = Y.)

    Small corpora: if any of n1..n4 is 0 the formula divides by zero, and on odd count distributions it
    can give a discount outside (0, r] (a negative one would *add* mass to seen n-grams; one above r
    would make a probability negative). In either case this returns :data:`FALLBACK_DISCOUNTS`
    ``(0.5, 1.0, 1.5)``, KenLM's fallback, instead.

    Args:
        counts: ``(U,)`` positive integer counts (raw counts, or continuation counts for lower orders).
    """
    given = counts
    try:
        counts = np.asarray(counts)
        ok = counts.ndim == 1 and (counts.size == 0 or counts.dtype.kind in "iu")
    except (TypeError, ValueError):  # ragged lists
        ok = False
    if not ok:
        raise fail("counts", "a 1-D array of integer counts", given)
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == r)) for r in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < dr <= r for r, dr in zip((1, 2, 3), d)):
        return FALLBACK_DISCOUNTS
    return d


@dataclass
class _Table:
    """The distinct m-grams of one level (sorted int64 keys) with their counts, grouped by history.

    ``counts`` are raw counts c(h w) at the top level, continuation counts N1+(. h w) below it.
    Per history h: ``hist_total`` = sum_w counts(h w), and ``hist_gamma`` =
    D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .), the mass freed by discounting (Kneser-Ney only).
    """

    vocab_size: int
    keys: np.ndarray  # (U,) int64, sorted, so the m-grams of one history are one contiguous run
    counts: np.ndarray  # (U,) int64
    row: np.ndarray  # (U,) int64: the history (row of hist_total / hist_gamma) of every m-gram
    hist_total: np.ndarray  # (H,) float64
    hist_gamma: np.ndarray  # (H,) float64
    discounts: tuple[float, float, float]

    @classmethod
    def build(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int, discounted: bool) -> _Table:
        discounts = modified_kneser_ney_discounts(counts) if discounted else (0.0, 0.0, 0.0)
        hist = keys // vocab_size
        new_hist = np.r_[len(keys) > 0, hist[1:] != hist[:-1]]  # True where a history's run starts
        starts = np.flatnonzero(new_hist)
        freed = np.array((0.0,) + tuple(discounts))[np.minimum(counts, 3)]  # D(c) for every m-gram
        empty = len(keys) == 0  # np.add.reduceat cannot take an empty array
        return cls(
            vocab_size=vocab_size,
            keys=keys,
            counts=counts,
            row=np.cumsum(new_hist) - 1,
            hist_total=np.zeros(0) if empty else np.add.reduceat(counts, starts).astype(np.float64),
            hist_gamma=np.zeros(0) if empty else np.add.reduceat(freed, starts),
            discounts=discounts,
        )

    def lookup(self, hist: np.ndarray, tokens: np.ndarray):
        """Counts of B m-grams (history key, token), and their histories' statistics.

        Args:
            hist: ``(B,)`` history keys; tokens: ``(B,)`` token ids.
        Returns:
            ``(count, seen, total, gamma)``, each ``(B,)``: count c(h w) (0 if unseen), whether h was
            seen, c(h) and the freed mass of h (1 and 0 where h is unseen, so callers can divide
            without a warning; they use ``seen`` to choose the back-off branch).
        """
        B, U, V = len(tokens), len(self.keys), self.vocab_size
        if U == 0:
            return np.zeros(B, np.int64), np.zeros(B, bool), np.ones(B), np.zeros(B)
        # One binary search answers both questions. h's m-grams occupy a run of keys in
        # [h V, h V + V), so the insertion point of h V + w is inside that run or just past its end:
        # h was seen iff the key at i or at i - 1 has history h. (This halves the searches, which
        # are what evaluation spends its time on.)
        i = np.searchsorted(self.keys, hist * V + tokens)
        at = np.minimum(i, U - 1)
        count = np.where(self.keys[at] == hist * V + tokens, self.counts[at], 0)
        j = np.where(self.keys[at] // V == hist, at, np.maximum(i - 1, 0))
        seen = self.keys[j] // V == hist
        r = self.row[j]
        return count, seen, np.where(seen, self.hist_total[r], 1.0), np.where(seen, self.hist_gamma[r], 0.0)

    def count(self, keys: np.ndarray) -> np.ndarray:
        """``(B,)`` m-gram keys -> ``(B,)`` counts, 0 for keys never seen."""
        V = self.vocab_size
        return self.lookup(keys // V, keys % V)[0]


# ----------------------------------------------------------------------------------------------------
# the model


class NGramLM:
    """An n-gram language model over token ids ``0 .. vocab_size-1``.

    ``P(w_t | w_{t-order+1} ... w_{t-1})`` is estimated from counts by one of three rules:

    Here c(h w) counts the n-gram h w in the training ids and c(h) = sum_w c(h w) counts h followed by
    anything.

    - ``"mle"``: c(h w) / c(h), no smoothing. Unseen n-grams get probability 0, so held-out text usually
      has infinite perplexity. A history never seen in training has no estimate at all (0/0); this
      model then gives probability 0 to every token (:meth:`distribution` is all zeros, not a
      distribution) and :meth:`sample` raises.
    - ``"add_k"``: (c(h w) + k) / (c(h) + k V). Laplace smoothing when k = 1. An unseen history gives the
      uniform distribution.
    - ``"kneser_ney"`` (default): interpolated modified Kneser-Ney (Chen & Goodman 1998),

          P_m(w | h) = max(c(h w) - D(c(h w)), 0) / c(h)  +  gamma(h) P_{m-1}(w | h'),
          gamma(h)   = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / c(h),

      where h' is h without its first token, N_r(h .) is the number of distinct tokens seen exactly r
      times after h, and D(c) is D1, D2 or D3+ for c = 1, 2, >= 3 (see
      :func:`modified_kneser_ney_discounts`; one triple per order). The top order uses raw counts c;
      the lower orders use continuation counts N1+(. h w), the number of distinct tokens seen before
      h w, because a lower order is only consulted when the longer context was not enough, and then
      what matters is in how many contexts a word appears, not how often ("Francisco" is frequent but
      nearly always follows "San", so it is a poor guess after an unseen context; "the" follows
      almost anything). If h was never seen, P_m(w | h) = P_{m-1}(w | h') (full back-off). The recursion
      ends in the uniform distribution 1/V, so every token has a probability > 0.

    Short contexts: only the last ``order-1`` tokens of a context are used. A context with fewer tokens
    (the start of a text) is scored by the model of order ``len(context) + 1`` with the same smoothing,
    built from the same training text, so every token of a text gets a probability.

    Args:
        order: n, the number of tokens in an n-gram (1 = unigram); >= 1. ``vocab_size ** order`` must
            fit in int64 (72 characters allow order <= 10; a 50k-token vocabulary, order <= 4).
        vocab_size: V, the number of token ids; ids must lie in ``[0, vocab_size)``.
        smoothing: ``"kneser_ney"``, ``"add_k"`` or ``"mle"``.
        k: the pseudo-count for ``"add_k"``; > 0.

    Attributes (after :meth:`fit`):
        discounts: ``{m: (D1, D2, D3+)}`` for m = 1 .. order, the Kneser-Ney discounts of each order
            (from raw counts at the top order, continuation counts below); empty for other smoothings.
        n_train_tokens: the number of tokens the model was fitted on.

    Example::

        vocab = CharTokenizer.from_text(train_text)
        lm = NGramLM(order=5, vocab_size=vocab.size).fit(vocab.encode(train_text))
        lm.evaluate(vocab.encode(valid_text))["bits_per_token"]   # bits per character
        vocab.decode(lm.sample(vocab.encode("ROMEO:"), n=200, temperature=0.8, rng=0))
    """

    def __init__(self, order: int, vocab_size: int, smoothing: str = "kneser_ney", k: float = 1.0):
        order = check_int("order", order, minimum=1)
        vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        smoothing = check_choice("smoothing", smoothing, SMOOTHINGS)
        # k is used by add_k only, where it must be > 0; for the others it only has to be a number
        k = check_number("k", k, minimum=0, strict=True) if smoothing == "add_k" else check_number("k", k)
        _check_key_range(order, vocab_size)
        self.order, self.vocab_size, self.smoothing, self.k = order, vocab_size, smoothing, k
        self._raw: dict[int, _Table] | None = None  # m -> raw counts of m-grams, m = 1 .. order
        self._cont: dict[int, _Table] = {}  # m -> continuation counts, m = 1 .. order-1 (Kneser-Ney)
        self.discounts: dict[int, tuple[float, float, float]] = {}
        self.n_train_tokens = 0

    def __repr__(self) -> str:
        k = f", k={self.k:g}" if self.smoothing == "add_k" else ""
        fitted = f", fitted on {self.n_train_tokens:,} tokens" if self._raw is not None else ", not fitted"
        args = f"order={self.order}, vocab_size={self.vocab_size}, smoothing={self.smoothing!r}{k}"
        return f"NGramLM({args}{fitted})"

    # --- training -----------------------------------------------------------------------------------

    def fit(self, ids: Sequence[int] | np.ndarray) -> NGramLM:
        """Count the n-grams of ``ids`` (``(T,)`` ints in ``[0, vocab_size)``); returns ``self``.

        A text shorter than ``order`` is allowed: the missing orders simply have no counts (an empty
        text gives the uniform model under add-k and Kneser-Ney).
        """
        ids = _token_ids("ids", ids, self.vocab_size)
        V, kn = self.vocab_size, self.smoothing == "kneser_ney"
        self._raw, self._cont, self.discounts = {}, {}, {}
        for m in range(1, self.order + 1):
            # Raw counts of every order: the top order is the model, the lower ones score short contexts.
            keys, counts = np.unique(_ngram_keys(ids, m, V), return_counts=True)
            self._raw[m] = _Table.build(keys, counts.astype(np.int64), V, discounted=kn)
            if kn and m >= 2:
                # Continuation counts of the (m-1)-grams: N1+(. g) = how many distinct m-grams end in g,
                # i.e. how many distinct tokens g was seen after. Dropping the first token of every
                # *distinct* m-gram (key % V^(m-1)) and counting the results gives exactly that.
                suffix, cont = np.unique(keys % V ** (m - 1), return_counts=True)
                self._cont[m - 1] = _Table.build(suffix, cont.astype(np.int64), V, discounted=True)
        if kn:
            self.discounts = {m: (self._raw if m == self.order else self._cont)[m].discounts
                              for m in range(1, self.order + 1)}
        self.n_train_tokens = len(ids)
        return self

    def num_counts(self) -> int:
        """How many numbers the model stores: one count per distinct m-gram of every order 1..order
        (continuation counts, for Kneser-Ney, are derived from these). The n-gram analogue of a neural
        model's parameter count."""
        self._require_fit("num_counts")
        return int(sum(len(t.keys) for t in self._raw.values()))

    def _require_fit(self, what: str) -> None:
        if self._raw is None:
            raise RuntimeError(f"call fit(ids) before {what}(): this NGramLM has not been fitted")

    def count(self, ngram: Sequence[int]) -> int:
        """How often the m-gram ``ngram`` (``(m,)`` ids, 1 <= m <= order) occurred in the training ids."""
        self._require_fit("count")
        g = _token_ids("ngram", ngram, self.vocab_size)
        if not 1 <= len(g) <= self.order:
            raise ArgumentError(f"ngram must have between 1 and order={self.order} tokens; got {len(g)}")
        key = _ngram_keys(g, len(g), self.vocab_size)
        return int(self._raw[len(g)].count(key)[0])

    # --- probabilities ------------------------------------------------------------------------------

    def _probs(self, hists: list[np.ndarray], tokens: np.ndarray) -> np.ndarray:
        """P(token | context) for B queries whose contexts all have ``top - 1`` tokens.

        Args:
            hists: ``top`` arrays, ``hists[m-1]`` ``(B,)`` = key of the last m-1 context tokens (the
                history at order m; all zeros for m = 1). ``top = len(hists)`` is the order used.
            tokens: ``(B,)`` token ids.
        Returns:
            ``(B,)`` float64 probabilities.
        """
        V, top = self.vocab_size, len(hists)
        if self.smoothing != "kneser_ney":
            c, seen, total, _ = self._raw[top].lookup(hists[-1], tokens)
            if self.smoothing == "mle":
                return np.where(seen, c / total, 0.0)  # unseen history: 0/0, taken as 0 (see class doc)
            return (c + self.k) / (np.where(seen, total, 0.0) + self.k * V)
        p = np.full(len(tokens), 1.0 / V)  # order 0: uniform, the end of the recursion
        for m in range(1, top + 1):
            table = self._raw[m] if m == top else self._cont[m]
            c, seen, total, gamma = table.lookup(hists[m - 1], tokens)
            d = np.array((0.0,) + table.discounts)[np.minimum(c, 3)]  # D(c): D1, D2, D3+, or 0 if unseen
            p = np.where(seen, (np.maximum(c - d, 0.0) + gamma * p) / total, p)
        return p

    def _context_hists(self, context, n_queries: int) -> list[np.ndarray]:
        ctx = _token_ids("context", context, self.vocab_size)
        ctx = ctx[len(ctx) - min(len(ctx), self.order - 1) :]  # the Markov assumption: keep order-1 tokens
        top = len(ctx) + 1
        # hists[m-1] = key of the last m-1 context tokens, repeated for every query
        keys = [_ngram_keys(ctx[top - m :], m - 1, self.vocab_size)[0] for m in range(1, top + 1)]
        return [np.full(n_queries, key) for key in keys]

    def distribution(self, context: Sequence[int] | np.ndarray = ()) -> np.ndarray:
        """P(. | context): ``(vocab_size,)`` float64 over the next token.

        ``context``: ``(T,)`` ids; only the last ``order-1`` are used. Sums to 1, except under MLE after a
        context never seen in training, where it is all zeros (see the class doc).
        """
        self._require_fit("distribution")
        V = self.vocab_size
        return self._probs(self._context_hists(context, V), np.arange(V, dtype=np.int64))

    def prob(self, context: Sequence[int] | np.ndarray, token: int) -> float:
        """P(token | context) as a float. ``context``: ``(T,)`` ids (the last ``order-1`` are used)."""
        self._require_fit("prob")
        token = check_int("token", token, minimum=0, maximum=self.vocab_size - 1)
        return float(self._probs(self._context_hists(context, 1), np.array([token], dtype=np.int64))[0])

    def log_prob_sequence(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Natural-log probability of every token of ``ids`` given the tokens before it: ``(T,)`` float64.

        Token t is conditioned on ``ids[max(0, t-order+1) : t]``; the sum is log P(ids) by the chain rule.
        Entries are ``-inf`` where MLE gives probability 0. Vectorised: one pass per order over all
        positions at once.
        """
        self._require_fit("log_prob_sequence")
        ids = _token_ids("ids", ids, self.vocab_size)
        T, n, V = len(ids), self.order, self.vocab_size
        p = np.empty(T)
        # The first order-1 tokens have shorter contexts: at most order-1 small queries.
        for t in range(min(n - 1, T)):
            p[t] = self._probs(self._context_hists(ids[:t], 1), ids[t : t + 1])[0]
        if T >= n:
            # Every later token has a full context. Its history at order m is the (m-1)-gram that
            # starts m-1 positions back: for t = n-1 .. T-1 that is keys_{m-1}[t-m+1], i.e. the slice
            # [n-m : T-m+1] of the (m-1)-gram keys of the whole text.
            hists = [_ngram_keys(ids, m - 1, V)[n - m : T - m + 1] for m in range(1, n + 1)]
            p[n - 1 :] = self._probs(hists, ids[n - 1 :])
        with np.errstate(divide="ignore"):
            return np.log(p)

    def evaluate(self, ids: Sequence[int] | np.ndarray) -> dict[str, float]:
        """Score held-out ``ids`` (``(T,)``, T >= 1).

        Returns a dict with ``cross_entropy_nats`` (mean -log P per token), ``bits_per_token``
        (= bits per character for a character model), ``perplexity`` (= exp(cross entropy); ``inf`` if
        any token got probability 0) and ``n_tokens``.
        """
        self._require_fit("evaluate")
        lp = self.log_prob_sequence(ids)
        if len(lp) == 0:
            raise ArgumentError("ids must hold at least one token to evaluate; got none")
        ce = cross_entropy(lp)
        return {
            "cross_entropy_nats": ce,
            "bits_per_token": ce / math.log(2),
            "perplexity": float(np.exp(ce)),
            "n_tokens": len(lp),
        }

    # --- generation ---------------------------------------------------------------------------------

    def sample(
        self,
        context: Sequence[int] | np.ndarray = (),
        n: int = 100,
        temperature: float = 1.0,
        rng: int | np.random.Generator = 0,
    ) -> np.ndarray:
        """Generate ``n`` new token ids after ``context``: ``(n,)`` int64 (the context is not included).

        Each step draws from P(. | last order-1 tokens) ** (1 / temperature), renormalised: temperature 1
        samples the model as it is, below 1 sharpens it, above 1 flattens it, and ``temperature=0`` is
        greedy (the most probable token; ties go to the lowest id).

        Args:
            context: ``(T,)`` ids to start from (may be empty).
            n: how many tokens to generate, >= 0.
            temperature: >= 0.
            rng: a seed or a ``np.random.Generator``; the same seed gives the same sample.
        """
        self._require_fit("sample")
        n = check_int("n", n, minimum=0)
        temperature = check_number("temperature", temperature, minimum=0)  # 0 = greedy
        if not isinstance(rng, np.random.Generator):
            try:
                rng = np.random.default_rng(check_int("rng", rng, minimum=0))
            except ArgumentError:
                raise fail("rng", "an integer seed >= 0 or a numpy.random.Generator", rng) from None
        keep = self.order - 1  # the Markov assumption: only this many tokens of history matter
        history = _token_ids("context", context, self.vocab_size).tolist()
        out = np.empty(n, dtype=np.int64)
        for i in range(n):
            history = history[len(history) - min(len(history), keep) :]
            p = self.distribution(history)
            if p.sum() <= 0:
                raise ValueError(
                    f"MLE has no estimate after the context {history} (never seen in training); "
                    "use smoothing='add_k' or 'kneser_ney' to sample from unseen contexts"
                )
            if temperature == 0:
                nxt = int(np.argmax(p))
            else:
                with np.errstate(divide="ignore"):
                    logits = np.log(p) / temperature  # p ** (1/T) in log space: no underflow for small T
                q = np.exp(logits - logits.max())
                nxt = int(rng.choice(self.vocab_size, p=q / q.sum()))
            out[i] = nxt
            history.append(nxt)
        return out
