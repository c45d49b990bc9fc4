"""Tests for llmcourse.ngram: counting, smoothing, evaluation and sampling of n-gram language models.

Exact values are worked out by hand in comments on the corpus "abracadabra"; tolerances are stated at
each assert (1e-12 for closed-form values, 1e-9 for loop-versus-vectorised agreement).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from llmcourse.checks import ArgumentError
from llmcourse.ngram import (
    FALLBACK_DISCOUNTS,
    CharVocab,
    NGramLM,
    bits_per_character,
    count_ngrams,
    cross_entropy,
    modified_kneser_ney_discounts,
    perplexity,
)
from llmcourse.tokenization import CharTokenizer

SMOOTHINGS = ("kneser_ney", "add_k", "mle")

# Some plain English to train and test on (written for these tests).
ENGLISH = """\
A language model is a machine for guessing what comes next. Give it the start of a sentence and it
returns a probability for every word or letter that could follow. The simplest way to build one is to
count. Read a long text, write down how often each short run of letters appears, and then, when asked
about a new text, look up how often the same run appeared before. If the letters "th" were followed by
"e" in most of the places where they appeared, the model will say that "e" is likely after "th".

The trouble begins when the model meets something it has never seen. A run of letters that never
appeared in the training text gets a count of zero, and a count of zero becomes a probability of zero.
One zero is enough to make the probability of a whole page zero, and the perplexity of the page
infinite. Real text is full of rare names and odd spellings, so a model that only counts will fail on
almost every page it did not read.

Smoothing is the name for the ways we take a little probability away from the things we have seen and
give it to the things we have not. The oldest way is to pretend that every run was seen once more than
it really was. It is easy to explain and easy to code, but it gives far too much to the unseen when the
alphabet is large, and the model becomes timid. A better way is to subtract a small discount from every
count and to share the saved probability according to a shorter context. If we have never seen the
three letters before the gap, we ask what usually follows the last two, and if we have never seen
those, what follows the last one.

Kneser and Ney added a clever twist. When the short context is consulted, it is because the long one
was rare, so the short context should not ask how often a letter appears, but in how many different
places it appears. A name that occurs a hundred times after the same word is common, yet it is a poor
guess in a new place; a small word that follows many different words is a good guess almost anywhere.
Counting the number of different left neighbours, instead of the raw number of times, captures this.

With these ideas in hand we can measure how well a model predicts a text it has not read. We take the
average of the negative logarithm of the probability it gave to each letter that really came next. In
bits, this number tells us how many yes or no questions the model needs, on average, to pin down the
next letter. A model that knows nothing about English needs about six, one for each doubling of the
alphabet; a good counting model needs about two; the best neural models need a little more than one.
Lower is better, and the gap between the training text and the held out text tells us how much the
model has memorised rather than learned.
"""


def abracadabra():
    vocab = CharTokenizer.from_text("abracadabra")  # a=0 b=1 c=2 d=3 r=4 (sorted)
    return vocab, vocab.encode("abracadabra")


def skewed_ids(n: int, vocab_size: int, seed: int) -> np.ndarray:
    """A Markov chain with a peaked transition matrix: enough structure for smoothing to matter."""
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(vocab_size, 0.3), size=vocab_size)
    ids = [0]
    for _ in range(n - 1):
        ids.append(rng.choice(vocab_size, p=trans[ids[-1]]))
    return np.array(ids, dtype=np.int64)


# ---------------------------------------------------------------------------------------------------
# text <-> ids


def test_char_vocab_is_the_char_tokenizer():
    assert CharVocab is CharTokenizer  # kept for one release
    assert CharVocab.from_text("ba").stoi == {"a": 0, "b": 1}


def test_char_vocab_round_trip_and_sorted_ids():
    vocab = CharTokenizer.from_text("hello, world")
    assert vocab.itos == sorted(set("hello, world"))
    assert vocab.size == len(vocab) == 9
    ids = vocab.encode("world, hello")
    assert ids.dtype == np.int64 and ids.shape == (12,)
    assert vocab.decode(ids) == "world, hello"
    assert vocab.encode("").shape == (0,)


def test_char_vocab_unknown_policy():
    strict = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"^text contains 2 character\(s\).*'x', 'z'.*unk_token"):
        strict.encode("abxcz")
    lenient = CharTokenizer.from_text("abc", unk_token="<unk>")
    assert lenient.unk_id == 3 and lenient.size == 4
    assert lenient.encode("axc").tolist() == [0, 3, 2]
    assert lenient.decode(lenient.encode("axc")) == "a<unk>c"


def test_count_ngrams_docstring_example():
    grams, counts = count_ngrams([0, 1, 0, 1], 2, 2)
    assert grams.tolist() == [[0, 1], [1, 0]] and counts.tolist() == [2, 1]
    vocab, ids = abracadabra()
    grams, counts = count_ngrams(ids, 2, vocab.size)
    got = {vocab.decode(g): int(c) for g, c in zip(grams, counts)}
    assert got == {"ab": 2, "br": 2, "ra": 2, "ac": 1, "ca": 1, "ad": 1, "da": 1}


# ---------------------------------------------------------------------------------------------------
# probabilities are distributions


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distribution_sums_to_one(smoothing, order):
    V = 7
    ids = skewed_ids(400, V, seed=1)
    lm = NGramLM(order, V, smoothing=smoothing, k=0.5).fit(ids)
    rng = np.random.default_rng(0)
    contexts = [ids[s : s + L] for s, L in zip(rng.integers(0, 390, 20), rng.integers(0, 6, 20))]
    if smoothing != "mle":  # random, mostly unseen, contexts as well: smoothing covers them
        contexts += [rng.integers(0, V, L) for L in range(6)]
    for ctx in contexts:  # under MLE only contexts seen in training have a distribution
        p = lm.distribution(ctx)
        assert p.shape == (V,)
        assert (p >= 0).all()
        assert abs(p.sum() - 1.0) < 1e-12
        if smoothing != "mle":
            assert (p > 0).all()


def test_mle_unseen_context_gives_all_zeros_and_cannot_be_sampled():
    vocab, ids = abracadabra()
    lm = NGramLM(3, vocab.size, "mle").fit(ids)
    rr = vocab.encode("rr")  # never seen: 0/0, documented as probability 0 for every token
    assert lm.distribution(rr).tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="MLE has no estimate"):
        lm.sample(rr, n=1)


# ---------------------------------------------------------------------------------------------------
# values worked out by hand on "abracadabra"
#
# Bigram counts c(x y): ab 2, br 2, ra 2, ac 1, ca 1, ad 1, da 1 (10 bigrams).
# Followers of "a": b 2, c 1, d 1, so c(a .) = 4 (the final "a" has no follower);
# followers of "b": r 2, so c(b .) = 2. Unigram counts: a 5, b 2, r 2, c 1, d 1 (11).


def test_mle_by_hand():
    vocab, ids = abracadabra()
    s = vocab.stoi
    lm = NGramLM(2, vocab.size, "mle").fit(ids)
    assert lm.prob([s["a"]], s["b"]) == pytest.approx(2 / 4, abs=1e-12)  # c(ab) / c(a .)
    assert lm.prob([s["r"]], s["a"]) == pytest.approx(2 / 2, abs=1e-12)
    assert lm.prob([s["a"]], s["r"]) == 0.0  # "ar" never occurs
    assert lm.prob([], s["a"]) == pytest.approx(5 / 11, abs=1e-12)  # empty context: the unigram MLE
    assert lm.count([s["a"], s["b"]]) == 2 and lm.count([s["a"]]) == 5 and lm.count([s["r"], s["r"]]) == 0


def test_add_k_by_hand():
    vocab, ids = abracadabra()
    s = vocab.stoi
    laplace = NGramLM(2, vocab.size, "add_k", k=1.0).fit(ids)
    # (c(h w) + k) / (c(h .) + k V) with V = 5
    assert laplace.prob([s["a"]], s["b"]) == pytest.approx((2 + 1) / (4 + 5), abs=1e-12)  # 1/3
    assert laplace.prob([s["a"]], s["r"]) == pytest.approx((0 + 1) / (4 + 5), abs=1e-12)  # 1/9
    assert laplace.prob([s["b"]], s["r"]) == pytest.approx((2 + 1) / (2 + 5), abs=1e-12)  # 3/7
    half = NGramLM(2, vocab.size, "add_k", k=0.5).fit(ids)
    assert half.prob([s["a"]], s["b"]) == pytest.approx((2 + 0.5) / (4 + 2.5), abs=1e-12)  # 5/13
    # unseen history: (0 + k) / (0 + k V) = uniform
    trigram = NGramLM(3, vocab.size, "add_k", k=1.0).fit(ids)
    np.testing.assert_allclose(trigram.distribution(vocab.encode("rr")), np.full(5, 0.2), atol=1e-12)


def test_modified_kneser_ney_discounts_by_hand():
    # n1 = 4, n2 = 2, n3 = 1, n4 = 1 -> Y = 4 / (4 + 2*2) = 0.5
    # D1 = 1 - 2(0.5)(2/4) = 0.5, D2 = 2 - 3(0.5)(1/2) = 1.25, D3+ = 3 - 4(0.5)(1/1) = 1.0
    d = modified_kneser_ney_discounts([1, 1, 1, 1, 2, 2, 3, 4, 9, 17])
    np.testing.assert_allclose(d, (0.5, 1.25, 1.0), atol=1e-12)
    # n1 = 10, n2 = 5, n3 = 3, n4 = 2 -> Y = 0.5, D1 = 0.5, D2 = 2 - 1.5(3/5) = 1.1, D3+ = 3 - 2(2/3) = 5/3
    d = modified_kneser_ney_discounts([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2)
    np.testing.assert_allclose(d, (0.5, 1.1, 5 / 3), atol=1e-12)
    # tiny corpora: a zero count-of-counts (here n3 = n4 = 0) -> KenLM's fallback
    assert modified_kneser_ney_discounts([1, 1, 2]) == FALLBACK_DISCOUNTS == (0.5, 1.0, 1.5)
    # n1 = n2 = n4 = 1, n3 = 10: D2 = 2 - 3(1/3)(10/1) = -8 < 0 would add mass -> fallback
    assert modified_kneser_ney_discounts([1, 2] + [3] * 10 + [4]) == FALLBACK_DISCOUNTS


def test_kneser_ney_bigram_by_hand():
    vocab, ids = abracadabra()
    s = vocab.stoi
    lm = NGramLM(2, vocab.size, "kneser_ney").fit(ids)
    # Top order (bigrams), raw counts: counts-of-counts n1 = 4, n2 = 3, n3 = n4 = 0 -> fallback
    # discounts D1 = 0.5, D2 = 1, D3+ = 1.5.
    # Lower order (unigrams), continuation counts N1+(. w) = number of distinct letters before w:
    #   a: {r, c, d} -> 3;  b: {a} -> 1;  c: {a} -> 1;  d: {a} -> 1;  r: {b} -> 1;  total 7.
    #   n1 = 4, n2 = 0 -> fallback discounts again. N1 = 4 (b c d r), N3+ = 1 (a).
    #   gamma() = (0.5*4 + 1.5*1) / 7 = 0.5
    #   P1(a) = (3 - 1.5)/7 + 0.5 * 1/5 = 11/35;   P1(b) = (1 - 0.5)/7 + 0.5 * 1/5 = 6/35 (= c = d = r)
    # Bigram, history "a": c(a .) = 4, N1(a .) = 2 (c, d), N2(a .) = 1 (b)
    #   gamma(a) = (0.5*2 + 1.0*1) / 4 = 0.5
    #   P(b | a) = (2 - 1.0)/4 + 0.5 * 6/35 = 1/4 + 3/35 = 47/140
    #   P(c | a) = (1 - 0.5)/4 + 0.5 * 6/35 = 59/280;   P(r | a) = 0 + 0.5 * 6/35 = 3/35 (unseen "ar")
    #   P(a | a) = 0.5 * 11/35 = 11/70
    assert lm.discounts == {1: FALLBACK_DISCOUNTS, 2: FALLBACK_DISCOUNTS}
    a = [s["a"]]
    assert lm.prob(a, s["b"]) == pytest.approx(47 / 140, abs=1e-12)
    assert lm.prob(a, s["c"]) == pytest.approx(59 / 280, abs=1e-12)
    assert lm.prob(a, s["r"]) == pytest.approx(3 / 35, abs=1e-12)
    assert lm.prob(a, s["a"]) == pytest.approx(11 / 70, abs=1e-12)
    # Empty context (start of a text): scored by the order-1 model, whose top order uses raw counts
    #   a 5, b 2, r 2, c 1, d 1 (total 11): n1 = 2, n2 = 2, n3 = 0 -> fallback; N1 = 2, N2 = 2, N3+ = 1
    #   gamma = (0.5*2 + 1*2 + 1.5*1) / 11 = 4.5/11
    #   P(a) = (5 - 1.5)/11 + (4.5/11)(1/5) = 0.4;   P(b) = (2 - 1)/11 + 0.9/11 = 1.9/11;   P(c) = 1.4/11
    np.testing.assert_allclose(
        lm.distribution([]), [0.4, 1.9 / 11, 1.4 / 11, 1.4 / 11, 1.9 / 11], atol=1e-12
    )


def test_kneser_ney_trigram_by_hand():
    vocab, ids = abracadabra()
    s = vocab.stoi
    lm = NGramLM(3, vocab.size, "kneser_ney").fit(ids)
    # Trigrams: abr 2, bra 2, rac 1, aca 1, cad 1, ada 1, dab 1 -> n1 = 5, n2 = 2, n3 = 0 -> fallback.
    #   History "br": only "bra" (count 2): c(br .) = 2, N2(br .) = 1, gamma(br) = 1.0*1/2 = 0.5
    # Bigram level, continuation counts N1+(. x y) from the distinct trigrams:
    #   br, ra, ac, ca, ad, da, ab each 1 -> n1 = 7, n2 = 0 -> fallback.
    #   History "r": only "ra" (1): total 1, N1 = 1, gamma(r) = 0.5
    #   P2(a | r) = (1 - 0.5)/1 + 0.5 * P1(a) = 1/2 + 0.5 * 11/35 = 23/35  (P1 as in the bigram test)
    # P3(a | br) = (2 - 1.0)/2 + 0.5 * 23/35 = 29/35
    assert lm.prob(vocab.encode("br"), s["a"]) == pytest.approx(29 / 35, abs=1e-12)
    # An unseen history backs off fully: P3(a | rr) = P2(a | r) = 23/35
    assert lm.prob(vocab.encode("rr"), s["a"]) == pytest.approx(23 / 35, abs=1e-12)
    # Only the last order-1 = 2 tokens of a longer context are used
    assert lm.prob(vocab.encode("abracadabr"), s["a"]) == pytest.approx(29 / 35, abs=1e-12)


def _reference_kneser_ney(train: list[int], order: int, V: int):
    """Interpolated modified Kneser-Ney written with dicts and recursion, independently of the module."""
    ngrams = lambda m: (tuple(train[i : i + m]) for i in range(len(train) - m + 1))  # noqa: E731
    raw = {m: Counter(ngrams(m)) for m in range(1, order + 1)}
    cont = {m: Counter(g[1:] for g in raw[m + 1]) for m in range(1, order)}

    def discounts(counts: Counter):
        n = Counter(counts.values())
        if min(n[1], n[2], n[3], n[4]) == 0:
            return (0.5, 1.0, 1.5)
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
        return d if all(0 < x <= r for r, x in zip((1, 2, 3), d)) else (0.5, 1.0, 1.5)

    disc = {("raw", m): discounts(raw[m]) for m in raw} | {("cont", m): discounts(cont[m]) for m in cont}

    def p(context: list[int], w: int) -> float:
        ctx = tuple(context[-(order - 1) :]) if order > 1 else ()
        top = len(ctx) + 1

        def level(m: int) -> float:
            if m == 0:
                return 1.0 / V
            kind = "raw" if m == top else "cont"
            table = raw[m] if kind == "raw" else cont[m]
            h = ctx[len(ctx) - (m - 1) :]
            followers = [table.get(h + (x,), 0) for x in range(V)]
            total = sum(followers)
            if total == 0:
                return level(m - 1)
            d1, d2, d3 = disc[(kind, m)]
            D = lambda c: 0.0 if c == 0 else (d1, d2, d3)[min(c, 3) - 1]  # noqa: E731
            gamma = sum(D(c) for c in followers)
            c = followers[w]
            return (max(c - D(c), 0.0) + gamma * level(m - 1)) / total

        return level(top)

    return p, disc


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_matches_plain_python_reference(order):
    V = 6
    train = skewed_ids(600, V, seed=3).tolist()
    test = skewed_ids(60, V, seed=4).tolist()
    lm = NGramLM(order, V).fit(train)
    ref, disc = _reference_kneser_ney(train, order, V)
    assert lm.discounts[order] == pytest.approx(disc[("raw", order)], abs=1e-12)
    if order >= 3:  # enough rare trigrams that Chen & Goodman's formula applies, not the fallback
        assert lm.discounts[order] != FALLBACK_DISCOUNTS and lm.discounts[2] != FALLBACK_DISCOUNTS
    for m in range(1, order):
        assert lm.discounts[m] == pytest.approx(disc[("cont", m)], abs=1e-12)
    for t in range(len(test)):
        assert lm.prob(test[:t], test[t]) == pytest.approx(ref(test[:t], test[t]), abs=1e-12)


# ---------------------------------------------------------------------------------------------------
# evaluation


def test_uniform_model_has_perplexity_vocab_size():
    V = 11
    assert perplexity(np.full(50, -math.log(V))) == pytest.approx(V, rel=1e-12)
    held_out = np.random.default_rng(0).integers(0, V, 200)
    # A model fitted on nothing knows nothing: add-k and Kneser-Ney are then exactly uniform.
    for smoothing in ("add_k", "kneser_ney"):
        result = NGramLM(3, V, smoothing).fit([]).evaluate(held_out)
        assert result["perplexity"] == pytest.approx(V, rel=1e-12)
        assert result["bits_per_token"] == pytest.approx(math.log2(V), rel=1e-12)
    # A unigram MLE fitted on text where every token is equally common is uniform too.
    balanced = np.tile(np.arange(V), 4)
    assert NGramLM(1, V, "mle").fit(balanced).evaluate(held_out)["perplexity"] == pytest.approx(V, rel=1e-12)


def test_metric_conversions():
    lp = np.log([0.5, 0.25, 0.125, 1.0])  # 1 + 2 + 3 + 0 = 6 bits over 4 tokens
    assert cross_entropy(lp) == pytest.approx(6 * math.log(2) / 4, abs=1e-12)
    assert bits_per_character(lp) == pytest.approx(1.5, abs=1e-12)
    assert perplexity(lp) == pytest.approx(2**1.5, abs=1e-12)
    assert bits_per_character(lp, n_characters=12) == pytest.approx(0.5, abs=1e-12)  # 4 tokens, 12 chars
    assert perplexity([0.0, -math.inf]) == math.inf


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_vectorised_evaluation_matches_a_loop_over_prob(smoothing, order):
    V = 6
    lm = NGramLM(order, V, smoothing=smoothing, k=0.3).fit(skewed_ids(500, V, seed=5))
    test = skewed_ids(80, V, seed=6)
    slow = np.array([lm.prob(test[max(0, t - order + 1) : t], int(test[t])) for t in range(len(test))])
    with np.errstate(divide="ignore"):
        slow = np.log(slow)
    fast = lm.log_prob_sequence(test)
    assert fast.shape == (80,)
    finite = np.isfinite(slow)
    assert (np.isfinite(fast) == finite).all()
    np.testing.assert_allclose(fast[finite], slow[finite], rtol=0, atol=1e-9)
    if smoothing != "mle":
        assert finite.all()
    result = lm.evaluate(test)
    assert result["n_tokens"] == 80
    assert result["cross_entropy_nats"] == pytest.approx(-slow.mean(), abs=1e-9)
    assert result["perplexity"] == pytest.approx(math.exp(-slow.mean()), rel=1e-9)


def test_mle_is_infinitely_perplexed_by_an_unseen_ngram_kneser_ney_is_not():
    vocab = CharTokenizer.from_text("abcd")
    train, held_out = vocab.encode("abcabcabcabd"), vocab.encode("abcab" + "da")  # "da" never seen
    mle = NGramLM(2, vocab.size, "mle").fit(train).evaluate(held_out)
    kn = NGramLM(2, vocab.size, "kneser_ney").fit(train).evaluate(held_out)
    assert mle["perplexity"] == math.inf and mle["cross_entropy_nats"] == math.inf
    assert math.isfinite(kn["perplexity"]) and 1 < kn["perplexity"] < vocab.size
    # without the unseen bigram, MLE is finite (and sharper than smoothing on text it has seen)
    seen = vocab.encode("abcabc")
    assert NGramLM(2, vocab.size, "mle").fit(train).evaluate(seen)["perplexity"] < kn["perplexity"]


def test_kneser_ney_beats_laplace_on_held_out_english():
    vocab = CharTokenizer.from_text(ENGLISH)
    ids = vocab.encode(ENGLISH)
    cut = int(0.8 * len(ids))
    train, held_out = ids[:cut], ids[cut:]
    kn = NGramLM(3, vocab.size, "kneser_ney").fit(train).evaluate(held_out)["bits_per_token"]
    laplace = NGramLM(3, vocab.size, "add_k", k=1.0).fit(train).evaluate(held_out)["bits_per_token"]
    unigram = NGramLM(1, vocab.size, "kneser_ney").fit(train).evaluate(held_out)["bits_per_token"]
    # Measured: KN 3-gram 3.05 bits/char, add-1 3-gram 4.09, unigram 4.25, log2 V = 5.46. (Add-1 is
    # even worse at order 3 than at order 2, 3.80: it gives every history 44 pseudo-counts, more than
    # most two-letter histories have real ones in 2.2 KB of training text.)
    assert kn < laplace - 0.5
    assert kn < unigram < math.log2(vocab.size)


# ---------------------------------------------------------------------------------------------------
# sampling


def test_sampling_is_seeded_and_temperature_zero_is_argmax():
    vocab = CharTokenizer.from_text(ENGLISH)
    lm = NGramLM(4, vocab.size).fit(vocab.encode(ENGLISH))
    start = vocab.encode("The ")
    a = lm.sample(start, n=60, temperature=1.0, rng=123)
    assert a.shape == (60,) and a.dtype == np.int64
    assert np.array_equal(a, lm.sample(start, n=60, temperature=1.0, rng=123))
    assert np.array_equal(a, lm.sample(start, n=60, temperature=1.0, rng=np.random.default_rng(123)))
    assert not np.array_equal(a, lm.sample(start, n=60, temperature=1.0, rng=124))
    greedy = lm.sample(start, n=30, temperature=0.0, rng=1)
    assert np.array_equal(greedy, lm.sample(start, n=30, temperature=0.0, rng=2))  # no randomness
    context = list(start)
    for token in greedy:  # every greedy step is the argmax of the model's distribution
        assert token == int(np.argmax(lm.distribution(context)))
        context.append(int(token))
    # a very low temperature is greedy in all but name
    assert np.array_equal(lm.sample(start, n=30, temperature=1e-6, rng=5), greedy)
    assert lm.sample(start, n=0).shape == (0,)


# ---------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: NGramLM(0, 5), "order"),
        (lambda: NGramLM(2.5, 5), "order"),
        (lambda: NGramLM(2, 0), "vocab_size"),
        (lambda: NGramLM(2, 5, smoothing="witten_bell"), "smoothing"),
        (lambda: NGramLM(2, 5, smoothing="add_k", k=0), "k"),
        (lambda: NGramLM(2, 5, smoothing="add_k", k=-1.0), "k"),
        (lambda: NGramLM(5, 50_000), "order"),  # 50000**5 does not fit in an int64 key
        (lambda: NGramLM(2, 5).fit([0, 1, 5]), "ids"),
        (lambda: NGramLM(2, 5).fit([0, -1]), "ids"),
        (lambda: NGramLM(2, 5).fit([[0, 1]]), "ids"),
        (lambda: NGramLM(2, 5).fit([0.0, 1.0]), "ids"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).prob([0], 7), "token"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).prob([9], 0), "context"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).distribution([5]), "context"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).evaluate([0, 6]), "ids"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).sample([0], n=3, temperature=-0.5), "temperature"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).sample([0], n=-1), "n"),
        (lambda: bits_per_character([-1.0], n_characters=0), "n_characters"),
        (lambda: perplexity([0.5]), "log_probs"),
        (lambda: CharTokenizer.from_text("ab").decode([2]), "ids"),
        (lambda: NGramLM(2, 5, smoothing="kneser_ney", k="one"), "k"),
        (lambda: NGramLM(True, 5), "order"),
        (lambda: NGramLM(2, 5).fit("abc"), "ids"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).sample([0], n=3, rng=-1), "rng"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).sample([0], n=3, rng="seed"), "rng"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).sample([0], n=3, temperature=float("inf")), "temperature"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).count([]), "ngram"),
        (lambda: NGramLM(2, 5).fit([0, 1, 2]).evaluate([]), "ids"),
        (lambda: count_ngrams([0, 1], 0, 2), "m"),
        (lambda: count_ngrams([0, 1], 2, 0), "vocab_size"),
        (lambda: count_ngrams([0, 1], 5, 50_000), "m"),
        (lambda: modified_kneser_ney_discounts([[1, 2]]), "counts"),
        (lambda: modified_kneser_ney_discounts([1.5, 2.0]), "counts"),
        (lambda: cross_entropy(["a"]), "log_probs"),
        (lambda: cross_entropy([]), "log_probs"),
        (lambda: bits_per_character([-1.0], n_characters=2.0), "n_characters"),
    ],
)
def test_bad_input_names_the_argument(make, name):
    with pytest.raises(ArgumentError, match=rf"^{name}\b"):  # the message starts with the argument's name
        make()


def test_bad_input_messages():
    with pytest.raises(ArgumentError, match=r"^order must be at most 4 with vocab_size=50000"):
        NGramLM(5, 50_000)
    with pytest.raises(ArgumentError, match=r"^ids holds token id 5, outside the vocabulary \[0, 5\)"):
        NGramLM(2, 5).fit([0, 1, 5])
    with pytest.raises(ArgumentError, match=r"^context must have shape \(time,\); got shape \(1, 1\)"):
        NGramLM(2, 5).fit([0, 1]).distribution([[0]])
    with pytest.raises(ArgumentError, match=r"^smoothing must be one of \('kneser_ney', 'add_k', 'mle'\)"):
        NGramLM(2, 5, smoothing="witten_bell")
    lm = NGramLM(2, 5).fit(np.arange(5)[::-1])  # a reversed view is fine (torch cannot share it)
    assert lm.count([4, 3]) == 1


@pytest.mark.parametrize("method", ["evaluate", "log_prob_sequence", "distribution", "sample"])
def test_using_an_unfitted_model_says_to_call_fit(method):
    lm = NGramLM(2, 5)
    with pytest.raises(RuntimeError, match=rf"fit\(ids\) before {method}"):
        getattr(lm, method)([0, 1])


# ---------------------------------------------------------------------------------------------------
# the real corpus (optional)

SHAKESPEARE = Path(__file__).resolve().parents[1] / "data" / "shakespeare" / "shakespeare.txt"


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} not built (see data/README.md)")
def test_on_shakespeare_a_longer_context_helps_and_kneser_ney_wins():
    from llmcourse.datasets import load_shakespeare

    train, valid = load_shakespeare("train")[:400_000], load_shakespeare("validation")[:50_000]
    vocab = CharTokenizer.from_text(train, unk_token="<unk>")
    tr, va = vocab.encode(train), vocab.encode(valid)
    bpc = {
        (order, smoothing): NGramLM(order, vocab.size, smoothing).fit(tr).evaluate(va)["bits_per_token"]
        for order in (1, 3, 5)
        for smoothing in ("kneser_ney", "add_k")
    }
    # Measured: KN 4.82 / 2.83 / 2.23 bits per character at orders 1 / 3 / 5; add-1 at order 5: 3.39.
    assert bpc[(5, "kneser_ney")] < bpc[(3, "kneser_ney")] < bpc[(1, "kneser_ney")]
    assert bpc[(5, "kneser_ney")] < bpc[(5, "add_k")] - 0.3
    assert bpc[(5, "kneser_ney")] < 2.5


def test_num_counts_is_the_number_of_distinct_ngrams_of_every_order():
    ids = np.array([0, 1, 0, 1, 2])  # unigrams {0,1,2}; bigrams {01,10,12}; trigrams {010,101,012}
    lm = NGramLM(order=3, vocab_size=3).fit(ids)
    assert lm.num_counts() == 3 + 3 + 3
    with pytest.raises(RuntimeError, match="fit"):
        NGramLM(order=2, vocab_size=3).num_counts()
