"""Tests for llmcourse.data_pipeline: the messy corpus and its ground truth, quality filters, exact and
MinHash near-duplicate removal, PII scrubbing, tokenization, packing and the whole pipeline.

The corpus tests use 300 documents cut from the Shakespeare train split (skipped, with the reason,
when ``data/shakespeare`` is not built). The thresholds asserted on it were measured with
``benchmarks/data_pipeline.py`` over several seeds and are set below the worst seed, with margin.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from llmcourse import data_pipeline as dp
from llmcourse.data_pipeline import (
    JUNK_KINDS,
    MERSENNE_PRIME,
    QUALITY_DEFAULTS,
    exact_dedup,
    jaccard,
    load_packed,
    lsh_candidate_pairs,
    lsh_params,
    lsh_probability,
    make_messy_corpus,
    minhash_signatures,
    near_dedup,
    normalize_whitespace,
    pack_tokens,
    precision_recall,
    quality_filter,
    quality_signals,
    random_windows,
    run_pipeline,
    scrub_pii,
    shingles,
    split_documents,
    tokenize_documents,
)
from llmcourse.tokenization import train_bpe

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def shakespeare():
    from llmcourse.datasets import DataFileError, load_shakespeare

    try:
        return load_shakespeare("train")
    except DataFileError as e:
        pytest.skip(f"Shakespeare corpus not built: {e}")


@pytest.fixture(scope="module")
def corpus(shakespeare):
    return make_messy_corpus(shakespeare, n_docs=300, seed=0)


@pytest.fixture(scope="module")
def tokenizer(shakespeare):
    return train_bpe(shakespeare[:30_000], vocab_size=400, special_tokens=[EOT])


def _non_junk(corpus):
    """(docs without the junk, map from their index to the corpus index)."""
    idx = [i for i in range(len(corpus.docs)) if i not in corpus.junk]
    return [corpus.docs[i] for i in idx], idx


# ----------------------------------------------------------------------------------------------------
# the messy corpus


def test_split_documents_keeps_every_paragraph_in_order():
    text = "\n\n".join(f"P{i}:\n" + "word " * (i % 7 + 1) for i in range(200))
    docs = split_documents(text, min_chars=30, max_chars=80, seed=3)
    assert "\n\n".join(docs) == "\n\n".join(p.strip("\n") for p in text.split("\n\n"))
    assert all(len(d) >= 30 for d in docs)
    assert docs == split_documents(text, min_chars=30, max_chars=80, seed=3)
    assert docs != split_documents(text, min_chars=30, max_chars=80, seed=4)


def test_messy_corpus_counts_and_determinism(corpus, shakespeare):
    n = 300
    assert corpus.n_clean == n
    assert len(corpus.docs) == n + 30 + 15 + 15
    assert len(corpus.junk) == 30 and len(corpus.exact_of) == 15 and len(corpus.near_of) == 15
    assert sorted(set(corpus.junk.values())) == sorted(JUNK_KINDS)
    assert len(corpus.clean) == n
    # every original is copied at most once, and never both ways
    originals = list(corpus.exact_of.values()) + list(corpus.near_of.values())
    assert len(set(originals)) == len(originals) and set(originals) <= set(corpus.clean)
    again = make_messy_corpus(shakespeare, n_docs=300, seed=0)
    assert again.docs == corpus.docs and again.near_of == corpus.near_of and again.pii == corpus.pii
    other = make_messy_corpus(shakespeare, n_docs=300, seed=1)
    assert other.docs != corpus.docs


def test_messy_corpus_ground_truth_is_true(corpus, shakespeare):
    pii_docs = {i for i, _, _ in corpus.pii}
    for i in corpus.clean:
        if i not in pii_docs:
            assert corpus.docs[i] in shakespeare  # cut from the text, untouched
    for c, o in corpus.exact_of.items():
        assert normalize_whitespace(corpus.docs[c]) == normalize_whitespace(corpus.docs[o])
    raw_identical = sum(corpus.docs[c] == corpus.docs[o] for c, o in corpus.exact_of.items())
    assert 0 < raw_identical < len(corpus.exact_of)  # some copies differ in whitespace only
    for c, o in corpus.near_of.items():
        assert normalize_whitespace(corpus.docs[c]) != normalize_whitespace(corpus.docs[o])
        assert jaccard(shingles(corpus.docs[c]), shingles(corpus.docs[o])) > 0.6
    assert len(pii_docs) == 15
    for i, kind, value in corpus.pii:
        assert kind in ("email", "phone", "ip") and value in corpus.docs[i]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"text": 5}, TypeError, "text must be a str"),
    ({"n_docs": 0}, ValueError, "n_docs must be an integer >= 1; got 0"),
    ({"n_docs": 10**6}, ValueError, "n_docs=1000000 is more than"),
    ({"junk_frac": 1.5}, ValueError, r"junk_frac must be a number in \[0, 1\]; got 1.5"),
    ({"near_edit_rate": (0.05, 0.01)}, ValueError, "near_edit_rate"),
    ({"seed": -1}, ValueError, "seed must be an integer >= 0; got -1"),
    ({"exact_frac": 0.5, "near_frac": 0.5, "pii_frac": 0.5}, ValueError, "exact_frac \\+ near_frac"),
])
def test_messy_corpus_bad_arguments(kwargs, exc, match):
    text = "\n\n".join(f"A{i}:\nthe quick brown fox jumps over the lazy dog" for i in range(100))
    args = {"text": text, "n_docs": 5, "min_chars": 40, "max_chars": 60, **kwargs}
    with pytest.raises(exc, match=match):
        make_messy_corpus(**args)


# ----------------------------------------------------------------------------------------------------
# quality filtering


def test_quality_signals_exact_values():
    doc = "the cat sat\nthe cat sat\n### ok ...\n"
    s = quality_signals(doc)
    assert s["n_words"] == 9 and s["n_lines"] == 3 and s["n_chars"] == len(doc)
    assert s["mean_word_length"] == pytest.approx((18 + 3 + 2 + 3) / 9)
    assert s["symbol_word_ratio"] == pytest.approx((3 + 1) / 9)  # three '#' and one '...'
    assert s["alpha_word_frac"] == pytest.approx(7 / 9)
    assert s["alpha_char_frac"] == pytest.approx(20 / 26)
    assert s["dup_line_frac"] == pytest.approx(1 / 3)
    assert s["dup_line_char_frac"] == pytest.approx(11 / (11 + 11 + 10))
    # word runs: the cat sat the cat sat ok -> "the cat" twice = 12 of 20 word characters
    assert s["top_2gram_frac"] == pytest.approx(2 * 6 / 20)
    assert s["top_3gram_frac"] == pytest.approx(2 * 9 / 20)
    assert s["top_4gram_frac"] == 0.0
    assert s["stop_words"] == 1 and s["boilerplate_line_frac"] == 0.0
    assert quality_signals("")["n_words"] == 0 and quality_signals("")["mean_word_length"] == 0.0
    assert quality_signals("Accept all cookies\nfine words")["boilerplate_line_frac"] == 0.5


def test_quality_filter_rules_and_overrides():
    prose = ("Now is the winter of our discontent made glorious summer by this sun of York, and all the "
             "clouds that lour'd upon our house in the deep bosom of the ocean buried. Now are our brows "
             "bound with victorious wreaths, our bruised arms hung up for monuments, our stern alarums "
             "changed to merry meetings, our dreadful marches to delightful measures.")
    keep, reasons = quality_filter([prose])
    assert keep == [True] and reasons == [None]
    keep, reasons = quality_filter(["Home | About | Contact", prose + "\nWe use cookies."])
    assert keep == [False, False]
    assert reasons[0] == "min_words: n_words=5"
    assert reasons[1].startswith("max_boilerplate_line_frac:")
    # a real line repeated: every word-level signal looks like prose, the duplicate lines give it away
    line = "Now is the winter of our discontent made glorious summer by this sun of York"
    assert quality_filter(["\n".join([line] * 20)])[1] == ["max_dup_line_frac: dup_line_frac=0.95"]
    # dialogue repeats its speakers' names: a third of the lines here, over Gopher's 0.3, under our 0.5
    speeches = ["Angels and ministers of grace defend us from the night.",
                "Look, my lord, it comes upon the platform where we watched.",
                "Be thou a spirit of health or goblin damn'd, speak to me.",
                "It beckons you to go away with it, as if it some impartment did desire.",
                "Why, what should be the fear? I do not set my life at a pin's fee.",
                "What if it tempt you toward the flood, my lord, or to the dreadful summit of the cliff?"]
    dialogue = "\n\n".join(f"{'HAMLET' if k % 2 == 0 else 'HORATIO'}:\n{t}" for k, t in enumerate(speeches))
    assert quality_signals(dialogue)["dup_line_frac"] == pytest.approx(4 / 12)
    assert quality_filter([dialogue]) == ([True], [None])
    assert quality_filter([dialogue], max_dup_line_frac=0.3)[1] == ["max_dup_line_frac: dup_line_frac=0.333"]
    # each rule can be relaxed or switched off
    assert quality_filter([prose + "\nWe use cookies."], max_boilerplate_line_frac=None)[0] == [True]
    assert quality_filter(["Home | About | Contact"], min_words=1)[1][0] == "max_symbol_word_ratio: symbol_word_ratio=0.4"
    with pytest.raises(TypeError, match="unknown threshold 'min_wrods'"):
        quality_filter([prose], min_wrods=3)
    with pytest.raises(TypeError, match="min_words must be a finite number"):
        quality_filter([prose], min_words="50")
    with pytest.raises(TypeError, match=r"docs\[1\] must be a str"):
        quality_filter([prose, 3])
    with pytest.raises(TypeError, match="not one str"):
        quality_filter(prose)


def test_quality_filter_removes_junk_and_keeps_shakespeare(corpus):
    keep, reasons = quality_filter(corpus.docs)
    junk_removed = sum(not keep[i] for i in corpus.junk) / len(corpus.junk)
    clean_kept = sum(keep[i] for i in corpus.clean) / len(corpus.clean)
    near_kept = sum(keep[i] for i in corpus.near_of) / len(corpus.near_of)
    assert junk_removed == 1.0
    assert clean_kept >= 0.98, [reasons[i] for i in corpus.clean if not keep[i]]
    assert near_kept >= 0.9
    for i in corpus.junk:
        assert reasons[i].split(":")[0] in QUALITY_DEFAULTS


# ----------------------------------------------------------------------------------------------------
# exact de-duplication


def test_exact_dedup_small():
    docs = ["a b", "c", "a  b\n", "c", "A b", "a b"]
    assert exact_dedup(docs) == ([True, True, False, False, True, False], [None, None, 0, 1, None, 0])
    assert exact_dedup(docs, normalize=False) == ([True, True, True, False, True, False],
                                                  [None, None, None, 1, None, 0])
    assert exact_dedup([]) == ([], [])
    with pytest.raises(TypeError, match="normalize must be True or False"):
        exact_dedup(docs, normalize="yes")


def test_exact_dedup_finds_exactly_the_injected_copies(corpus):
    docs, idx = _non_junk(corpus)
    keep, dup_of = exact_dedup(docs)
    found = {(idx[j], idx[i]) for i, j in enumerate(dup_of) if j is not None}
    assert precision_recall(found, corpus.exact_pairs) == (1.0, 1.0)
    assert sum(not k for k in keep) == len(corpus.exact_of)
    # without whitespace normalisation only the byte-identical copies are found
    raw = exact_dedup(docs, normalize=False)[1]
    identical = sum(corpus.docs[c] == corpus.docs[o] for c, o in corpus.exact_of.items())
    assert sum(j is not None for j in raw) == identical


# ----------------------------------------------------------------------------------------------------
# MinHash and LSH


def test_shingles():
    assert shingles("To be, or not TO BE!", k=3) == {"to be or", "be or not", "or not to", "not to be"}
    assert shingles("To  be,\n\nor not to be", k=3) == shingles("to be or not to be.", k=3)
    assert shingles("Hi there", k=3) == {"hi there"}
    assert shingles("... !!", k=3) == set()
    assert shingles("ab  CD", k=2, unit="char") == {"ab", "b ", " c", "cd"}
    with pytest.raises(ValueError, match=r"unit must be one of \('word', 'char'\); got 'byte'"):
        shingles("x", unit="byte")
    with pytest.raises(ValueError, match="k must be an integer >= 1; got 0"):
        shingles("x", k=0)


def test_jaccard_exact():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5
    assert jaccard(set(), set()) == 1.0 and jaccard({1}, set()) == 0.0
    with pytest.raises(TypeError, match="a must be a set .*not a string"):
        jaccard("abc", {"abd"})
    with pytest.raises(TypeError, match="b must be a set"):
        jaccard({"abc"}, 3)


def test_mulmod_mersenne_is_exact():
    rng = random.Random(0)
    p = MERSENNE_PRIME
    edge = [0, 1, 2, p - 1, p - 2, 2**31 - 1, 2**31, 2**60, 2**61 - 2]
    a = edge + [rng.randrange(p) for _ in range(500)]
    x = edge[::-1] + [rng.randrange(p) for _ in range(500)]
    got = dp._mulmod_p(np.array(a, dtype=np.uint64), np.array(x, dtype=np.uint64))
    assert got.tolist() == [(ai * xi) % p for ai, xi in zip(a, x)]
    big = [rng.randrange(2**64) for _ in range(200)] + [2**64 - 1, p, p + 1]
    assert dp._mod_p(np.array(big, dtype=np.uint64)).tolist() == [v % p for v in big]


def test_minhash_matches_the_definition():
    sets = [{"a", "b", "c"}, {"d"}]
    sig = minhash_signatures(sets, num_perm=8, seed=5)
    rng = np.random.default_rng(5)
    a = rng.integers(1, MERSENNE_PRIME, size=8, dtype=np.uint64).tolist()
    b = rng.integers(0, MERSENNE_PRIME, size=8, dtype=np.uint64).tolist()
    for row, s in zip(sig, sets):
        hashes = [int(h) % MERSENNE_PRIME for h in dp._hash64(sorted(s))]
        expected = [min((aj * h + bj) % MERSENNE_PRIME for h in hashes) for aj, bj in zip(a, b)]
        assert row.tolist() == expected
    # the chunking does not change the result
    many = [set(map(str, range(i, i + 40))) for i in range(30)]
    assert np.array_equal(minhash_signatures(many, chunk=7), minhash_signatures(many, chunk=1 << 12))


def test_minhash_estimates_jaccard_within_four_sigma():
    # Sets with a known Jaccard similarity J; the estimate's standard deviation is sqrt(J(1-J)/num_perm).
    num_perm = 256
    for target in (0.1, 0.3, 0.5, 0.8, 0.9):
        union = 1000
        inter = round(target * union)
        only = (union - inter) // 2
        A = {f"s{i}" for i in range(inter + only)}
        B = {f"s{i}" for i in range(only, union)}
        J = jaccard(A, B)
        sigma = (J * (1 - J) / num_perm) ** 0.5
        estimates = []
        for seed in range(8):
            sig = minhash_signatures([A, B], num_perm=num_perm, seed=seed)
            estimates.append(float(np.mean(sig[0] == sig[1])))
        assert all(abs(e - J) <= 4 * sigma for e in estimates), (J, estimates)
        # unbiased: the mean of 8 independent estimates is within 4 sigma / sqrt(8)
        assert abs(np.mean(estimates) - J) <= 4 * sigma / 8**0.5, (J, estimates)
    identical = minhash_signatures([A, set(A)], num_perm=64)
    assert np.array_equal(identical[0], identical[1])


def test_minhash_edge_cases():
    sig = minhash_signatures([set(), {"x"}, []], num_perm=4)
    assert sig.dtype == np.uint64 and sig.shape == (3, 4)
    assert (sig[0] == MERSENNE_PRIME).all() and (sig[1] < MERSENNE_PRIME).all()
    assert minhash_signatures([], num_perm=4).shape == (0, 4)
    assert not np.array_equal(minhash_signatures([{"x", "y"}], seed=0), minhash_signatures([{"x", "y"}], seed=1))
    with pytest.raises(TypeError, match=r"shingle_sets\[1\] must be a set of shingles"):
        minhash_signatures([{"a"}, "abc"])
    with pytest.raises(TypeError, match="shingle_sets must be sets of str, bytes or int shingles; got 1.5"):
        minhash_signatures([{1.5}])
    with pytest.raises(ValueError, match="num_perm must be an integer >= 1"):
        minhash_signatures([{"a"}], num_perm=0)


def test_lsh_candidate_pairs_by_hand():
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [0, 2, 3, 4], [7, 7, 7, 7], [5, 5, 3, 4]])
    assert lsh_candidate_pairs(sig, bands=2, rows=2).tolist() == [[0, 1], [0, 2], [0, 4], [2, 4]]
    assert lsh_candidate_pairs(sig, bands=1, rows=2).tolist() == [[0, 1]]
    assert lsh_candidate_pairs(sig, bands=4, rows=1).tolist() == [
        [0, 1], [0, 2], [0, 4], [1, 2], [2, 4]]
    assert lsh_candidate_pairs(sig[:1], 2, 2).shape == (0, 2)
    with pytest.raises(ValueError, match="bands \\* rows = 6 is more than the 4 columns"):
        lsh_candidate_pairs(sig, bands=3, rows=2)
    with pytest.raises(ValueError, match="must be 2-D"):
        lsh_candidate_pairs(sig[0], 1, 1)


def test_lsh_probability_and_params():
    assert lsh_probability(0.5, bands=2, rows=2) == 1 - 0.75**2
    assert lsh_probability(0.0, 20, 5) == 0.0 and lsh_probability(1.0, 20, 5) == 1.0
    curve = lsh_probability(np.linspace(0, 1, 11), 21, 6)
    assert curve.shape == (11,) and np.all(np.diff(curve) >= 0)
    assert lsh_params(0.8, 128) == (21, 6)
    bands, rows = lsh_params(0.5, 128)
    assert lsh_probability(0.5, bands, rows) >= 0.99 > lsh_probability(0.5, 128 // (rows + 1), rows + 1)
    with pytest.raises(ValueError, match=r"s must be a number or an array of numbers in \[0, 1\]; got 1.5"):
        lsh_probability(1.5, 2, 2)
    with pytest.raises(TypeError, match="s must be a number"):
        lsh_probability("0.5", 2, 2)


def test_lsh_follows_the_s_curve():
    # 300 pairs of sets with Jaccard exactly 0.75: the fraction that becomes candidates should match
    # 1 - (1 - 0.75^r)^b (0.54 here, the steep part of the S) within 4 binomial standard deviations.
    bands, rows, n = 4, 6, 300
    sets = []
    for k in range(n):
        base = [f"{k}-{i}" for i in range(80)]
        sets += [set(base[:70]), set(base[10:])]  # |A ∩ B| = 60, |A ∪ B| = 80 -> J = 0.75
    J = 60 / 80
    sig = minhash_signatures(sets, num_perm=bands * rows, seed=1)
    cand = {tuple(p) for p in lsh_candidate_pairs(sig, bands, rows).tolist()}
    hit = sum((2 * k, 2 * k + 1) in cand for k in range(n)) / n
    p = lsh_probability(J, bands, rows)
    assert abs(hit - p) <= 4 * (p * (1 - p) / n) ** 0.5, (hit, p)
    # pairs from different k share nothing, so no other pair is a candidate
    assert all(b == a + 1 and a % 2 == 0 for a, b in cand)


def test_near_dedup_small():
    base = " ".join(f"w{i}" for i in range(200))
    near = base.replace("w50 ", "x50 ").replace("w150 ", "")
    other = " ".join(f"v{i}" for i in range(200))
    keep, pairs = near_dedup([base, other, near, "", "...", base])
    assert keep == [True, True, False, True, True, False]
    assert set(pairs) == {(0, 2), (0, 5), (2, 5)}
    assert pairs[(0, 5)] == 1.0 and pairs[(0, 2)] == pytest.approx(jaccard(shingles(base), shingles(near)))
    keep_m, pairs_m = near_dedup([base, other, near], verify="minhash")
    assert keep_m == [True, True, False] and set(pairs_m) == {(0, 2)}
    # a chain a~b, b~c with a !~ c: b goes (it resembles a), c stays unless it resembles a kept document
    words = [f"t{i}" for i in range(100)]
    a = " ".join(words)
    b = " ".join(words[:92] + [f"u{i}" for i in range(8)])
    c = " ".join(words[:84] + [f"u{i}" for i in range(16)])
    keep, pairs = near_dedup([a, b, c], threshold=0.8)
    assert (0, 1) in pairs and (1, 2) in pairs and (0, 2) not in pairs
    assert keep == [True, False, True]
    with pytest.raises(ValueError, match="give both bands and rows"):
        near_dedup([a], bands=4)
    with pytest.raises(ValueError, match="verify must be one of"):
        near_dedup([a], verify="approx")
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\]"):
        near_dedup([a], threshold=0)
    with pytest.raises(ValueError, match="bands \\* rows = 200 is more than num_perm=128"):
        near_dedup([a], bands=20, rows=10)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        near_dedup([], k=0)


def test_near_dedup_on_the_messy_corpus(corpus):
    # Measured on the non-junk documents, where every injected copy (near or exact: an exact copy is
    # a near duplicate with J = 1) should be found and nothing else.
    docs, idx = _non_junk(corpus)
    keep, pairs = near_dedup(docs, threshold=0.8)
    found = {(idx[i], idx[j]) for i, j in pairs}
    truth = corpus.near_pairs | corpus.exact_pairs
    precision, recall = precision_recall(found, truth)
    # Measured: precision and recall 1.0 on 12 seeds (the copies' true J is >= 0.83, where LSH with
    # 21 x 6 bands misses a pair with probability < 1e-4). The bounds allow one miss or one extra pair.
    assert precision >= 0.95, sorted(found - truth)
    assert recall >= 0.95, sorted(truth - found)
    near_recall = len(found & corpus.near_pairs) / len(corpus.near_pairs)
    assert near_recall >= 0.9


def test_precision_recall():
    assert precision_recall({(0, 1), (2, 3)}, [(1, 0), (4, 5)]) == (0.5, 0.5)
    assert precision_recall([], [(0, 1)]) == (1.0, 0.0)
    assert precision_recall([(0, 1)], []) == (0.0, 1.0)
    assert precision_recall({(0, 1): 0.9}, {(0, 1)}) == (1.0, 1.0)  # near_dedup's dict works as is
    with pytest.raises(TypeError, match=r"found_pairs\[0\] must be a pair \(i, j\)"):
        precision_recall([(0, 1, 2)], [])
    with pytest.raises(TypeError, match=r"true_pairs\[1\] must be a pair"):
        precision_recall([], [(0, 1), ("a", 2)])


# ----------------------------------------------------------------------------------------------------
# PII


@pytest.mark.parametrize("text, expected", [
    ("write to anne.hathaway+plays@mail.stratford.co.uk today", "write to <EMAIL> today"),
    ("j_smith99@example.org, k.marlowe@globe-theatre.com.", "<EMAIL>, <EMAIL>."),
    ("e.g. at 10 a.m. we met; i.e. early", "e.g. at 10 a.m. we met; i.e. early"),
    ("user@localhost and @handle and a@b", "user@localhost and @handle and a@b"),
    ("ping 192.168.0.1 or 8.8.8.8.", "ping <IP> or <IP>."),
    ("0.0.0.0 and 255.255.255.255", "<IP> and <IP>"),
    ("version 1.2.3.4.5 and 256.1.1.1 and 1.2.3 and 01.2.3.4", "version 1.2.3.4.5 and 256.1.1.1 and 1.2.3 and 01.2.3.4"),
    ("call (555) 123-4567 now", "call <PHONE> now"),
    ("call 555-123-4567 or 555.123.4567 or 555 123 4567", "call <PHONE> or <PHONE> or <PHONE>"),
    ("London: +44 20 7946 0958; Paris +33 1 23 45 67 89", "London: <PHONE>; Paris <PHONE>"),
    ("US +1 555 123 4567, +1-555-123-4567", "US <PHONE>, <PHONE>"),
    ("In 1599, on 2024-01-05 or 05/01/2024, Act 3.1.45, 5551234567 ducats", "In 1599, on 2024-01-05 or 05/01/2024, Act 3.1.45, 5551234567 ducats"),
    ("2s. 6d. Item, 4d. at 12:30, room 555-1234, +12 3", "2s. 6d. Item, 4d. at 12:30, room 555-1234, +12 3"),
    ("mixed 555-123.4567 separators", "mixed 555-123.4567 separators"),
])
def test_scrub_pii_tricky_cases(text, expected):
    assert scrub_pii(text)[0] == expected


def test_scrub_pii_counts():
    text = "a@b.co 10.0.0.1 (555) 123-4567 x.y@z.org 555.123.4567 +44 20 7946 0958"
    assert scrub_pii(text) == ("<EMAIL> <IP> <PHONE> <EMAIL> <PHONE> <PHONE>",
                               {"email": 2, "phone": 3, "ip": 1})
    with pytest.raises(TypeError, match="text must be a str"):
        scrub_pii(b"bytes")


def test_scrub_pii_on_the_messy_corpus(corpus, shakespeare):
    by_doc: dict[int, list[tuple[str, str]]] = {}
    for i, kind, value in corpus.pii:
        by_doc.setdefault(i, []).append((kind, value))
    found = 0
    for i, items in by_doc.items():
        scrubbed, counts = scrub_pii(corpus.docs[i])
        expected = corpus.docs[i]
        for kind, value in items:
            expected = expected.replace(value, dp.PII_TAGS[kind])
        assert scrubbed == expected  # every inserted string replaced, with the right tag, nothing else
        found += sum(counts.values())
    assert found == len(corpus.pii)  # recall 100%
    changed = [i for i in corpus.clean if i not in by_doc and scrub_pii(corpus.docs[i])[0] != corpus.docs[i]]
    assert changed == []  # no false positive in clean Shakespeare


# ----------------------------------------------------------------------------------------------------
# tokenization, packing, windows


def test_tokenize_documents(tokenizer):
    docs = ["To be, or not to be", "", f"a document that mentions {EOT} as text"]
    arrays = tokenize_documents(docs, tokenizer)
    eot = tokenizer.special_tokens[EOT]
    assert [a.dtype for a in arrays] == [np.uint16] * 3
    assert [tokenizer.decode(a.tolist()) for a in arrays] == docs
    assert len(arrays[1]) == 0 and eot not in arrays[2]
    with pytest.raises(ValueError, match="eot_id must be an integer >= 0 and <= 399; got 400"):
        tokenize_documents(docs, tokenizer, eot_id=400)
    with pytest.raises(TypeError, match=r"tokenizer must be an object with encode\(\)"):
        tokenize_documents(docs, "gpt2")


def test_pack_load_round_trip(tmp_path, tokenizer):
    docs = ["First document.", "Second, longer document here.", "Third"]
    arrays = tokenize_documents(docs, tokenizer)
    eot = tokenizer.special_tokens[EOT]
    path = tmp_path / "train.bin"
    meta = pack_tokens(arrays, path, eot, vocab_size=tokenizer.vocab_size)
    expected = np.concatenate([np.r_[a, eot] for a in arrays]).astype(np.uint16)
    assert meta["length"] == len(expected) == sum(map(len, arrays)) + 3
    assert meta["n_docs"] == 3 and meta["dtype"] == "uint16" and meta["vocab_size"] == 400
    assert json.loads((tmp_path / "train.bin.json").read_text()) == meta
    assert path.stat().st_size == 2 * len(expected)
    tokens = load_packed(path, check_hash=True)
    assert isinstance(tokens, np.memmap) and not tokens.flags.writeable
    assert np.array_equal(tokens, expected)
    # the documents come back by cutting after each EOT
    flat = np.asarray(tokens)
    parts = np.split(flat, np.flatnonzero(flat == eot) + 1)
    assert parts[-1].size == 0 and all(p[-1] == eot for p in parts[:-1])
    assert [tokenizer.decode(p[:-1].tolist()) for p in parts[:-1]] == docs
    meta32 = pack_tokens(arrays, tmp_path / "t32.bin", eot, dtype=np.uint32)
    assert meta32["dtype"] == "uint32" and meta32["vocab_size"] == max(eot, *(int(a.max()) for a in arrays)) + 1
    assert np.array_equal(load_packed(tmp_path / "t32.bin"), expected.astype(np.uint32))


def test_pack_errors(tmp_path):
    arrays = [np.array([1, 2, 3]), np.array([4])]
    with pytest.raises(ValueError, match="use dtype=np.uint32"):
        pack_tokens(arrays, tmp_path / "a.bin", 0, vocab_size=70_000)
    with pytest.raises(ValueError, match="use dtype=np.uint32"):
        pack_tokens([np.array([65_536])], tmp_path / "a.bin", 0)
    meta = pack_tokens([np.array([65_536])], tmp_path / "big.bin", 0, dtype=np.uint32)
    assert meta["vocab_size"] == 65_537 and load_packed(tmp_path / "big.bin").tolist() == [65_536, 0]
    with pytest.raises(ValueError, match="dtype must be np.uint16 or np.uint32"):
        pack_tokens(arrays, tmp_path / "a.bin", 0, dtype=np.int64)
    with pytest.raises(ValueError, match="at least one document"):
        pack_tokens([], tmp_path / "a.bin", 0)
    with pytest.raises(ValueError, match="must be >= 0"):
        pack_tokens([np.array([-1])], tmp_path / "a.bin", 0)
    with pytest.raises(TypeError, match="one per document"):
        pack_tokens(np.array([1, 2]), tmp_path / "a.bin", 0)
    with pytest.raises(TypeError, match="vocab_size must be an integer >= 1"):
        pack_tokens(arrays, tmp_path / "a.bin", 0, vocab_size="400")
    assert not (tmp_path / "a.bin").exists()
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_packed(tmp_path / "missing.bin")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        load_packed(3)
    with pytest.raises(TypeError, match="check_hash must be True or False"):
        load_packed(tmp_path / "big.bin", check_hash=1)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        pack_tokens(arrays, None, 0)


# ----------------------------------------------------------------------------------------------------
# a packed file and its sidecar: every damaged or mismatched pair is refused, naming the file

FIX = "re-run the packing"


def _packed(tmp_path, ids=(1, 2, 3, 4, 5), name="ok.bin"):
    path = tmp_path / name
    meta = pack_tokens([np.array(ids)], path, 0)
    return path, tmp_path / f"{name}.json", meta


def test_the_sidecar_records_size_and_sha256(tmp_path):
    path, side, meta = _packed(tmp_path)
    assert meta["version"] == 2 and json.loads(side.read_text()) == meta
    assert meta["bytes"] == path.stat().st_size == 2 * meta["length"] == 12
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("check_hash", [True, False])
@pytest.mark.parametrize("damage", ["grown", "truncated", "odd", "empty"])
def test_load_packed_refuses_a_bin_of_the_wrong_size(tmp_path, damage, check_hash):
    path, _, _ = _packed(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"grown": data + b"\x00\x00", "truncated": data[:-2], "odd": data[:-1], "empty": b""}[damage])
    with pytest.raises(dp.PackedFileError, match="do not match") as err:
        load_packed(path, check_hash=check_hash)
    assert str(path) in str(err.value) and FIX in str(err.value)


def test_load_packed_refuses_changed_bytes(tmp_path):
    path, _, _ = _packed(tmp_path)
    data = bytearray(path.read_bytes())
    data[0] ^= 1                                       # same size, changed content: only the hash sees it
    path.write_bytes(bytes(data))
    with pytest.raises(dp.PackedFileError, match="sha256 does not match") as err:
        load_packed(path)                              # hashing is the default
    assert str(path) in str(err.value) and FIX in str(err.value)
    assert isinstance(err.value, ValueError)
    assert load_packed(path, check_hash=False).tolist() == [0, 2, 3, 4, 5, 0]  # opting out reads it as is


def _write_sidecar(side, meta):
    side.write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, match", [
    ("truncated", "not valid JSON"),
    ("empty", "not valid JSON"),
    ("binary", "not valid JSON"),
    ("a list", "not an llmcourse-packed-tokens sidecar"),
    ("other format", "not an llmcourse-packed-tokens sidecar"),
    ("version 1", "version 1"),
    ("no length", "length must be an int >= 1; got None"),
    ("negative bytes", "bytes must be an int >= 1; got -12"),
    ("float length", "length must be an int >= 1; got 6.0"),
    ("bad dtype", "dtype must be 'uint16' or 'uint32'"),
    ("short sha", "sha256 must be 64 hex digits"),
    ("wrong dtype", "says 6 uint32 ids but 12 bytes"),
    ("wrong length", "says 7 uint16 ids but 12 bytes"),
    ("wrong size and length", "do not match"),
    ("wrong sha", "sha256 does not match"),
])
def test_load_packed_refuses_a_damaged_sidecar(tmp_path, damage, match):
    path, side, meta = _packed(tmp_path)
    text = side.read_text()
    if damage == "truncated":
        side.write_text(text[: len(text) // 2])
    elif damage == "empty":
        side.write_text("")
    elif damage == "binary":
        side.write_bytes(b"\xff\xfe\x00garbage")
    elif damage == "a list":
        _write_sidecar(side, [meta])
    else:
        changes = {"other format": {"format": "something-else"}, "version 1": {"version": 1},
                   "no length": {"length": None}, "negative bytes": {"bytes": -12},
                   "float length": {"length": 6.0}, "bad dtype": {"dtype": "int64"},
                   "short sha": {"sha256": "abc"}, "wrong dtype": {"dtype": "uint32"},
                   "wrong length": {"length": 7}, "wrong size and length": {"length": 7, "bytes": 14},
                   "wrong sha": {"sha256": "0" * 64}}[damage]
        _write_sidecar(side, {**meta, **changes})
    with pytest.raises(dp.PackedFileError, match=match) as err:
        load_packed(path)
    message = str(err.value)
    assert (str(side) in message or str(path) in message) and FIX in message, message


def test_load_packed_refuses_a_missing_sidecar(tmp_path):
    path, side, _ = _packed(tmp_path)
    side.unlink()
    with pytest.raises(FileNotFoundError, match="sidecar") as err:
        load_packed(path)
    assert str(side) in str(err.value) and FIX in str(err.value)


@pytest.mark.parametrize("new_ids", [(7, 7, 7, 7, 7), (7, 7, 7)], ids=["same length", "other length"])
def test_a_crash_between_the_two_renames_is_detected(tmp_path, monkeypatch, new_ids):
    # pack_tokens renames the new .bin into place, then the new sidecar; a crash in between leaves a new
    # .bin beside the old sidecar. Of the same length, only the sha256 tells them apart.
    path, side, _ = _packed(tmp_path)
    assert load_packed(path).tolist() == [1, 2, 3, 4, 5, 0]   # checked (and remembered) before the crash
    old_side = side.read_text()
    real = dp.packing.write_atomic

    def crash_on_sidecar(target, data):
        if str(target).endswith(".json"):
            raise OSError("killed between the two renames")
        real(target, data)

    monkeypatch.setattr(dp.packing, "write_atomic", crash_on_sidecar)
    with pytest.raises(OSError, match="killed"):
        pack_tokens([np.array(new_ids)], path, 0)
    monkeypatch.undo()
    assert side.read_text() == old_side and np.fromfile(path, dtype="<u2").tolist() == [*new_ids, 0]
    with pytest.raises(dp.PackedFileError, match="do not match") as err:
        load_packed(path)
    assert str(path) in str(err.value) and FIX in str(err.value)
    pack_tokens([np.array(new_ids)], path, 0)          # the fix the message gives
    assert load_packed(path).tolist() == [*new_ids, 0]


def test_the_hash_check_is_remembered_per_file(tmp_path, monkeypatch):
    path, _, _ = _packed(tmp_path)
    calls = []
    real = dp.packing.sha256_file
    monkeypatch.setattr(dp.packing, "sha256_file", lambda p: calls.append(p) or real(p))
    load_packed(path)
    load_packed(path)
    load_packed(str(path))
    assert len(calls) == 1                             # hashed once for this process
    load_packed(path, check_hash=False)
    assert len(calls) == 1
    data = bytearray(path.read_bytes())                # changed in place, same size: a new mtime ...
    data[2] ^= 1
    path.write_bytes(bytes(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(dp.PackedFileError, match="sha256 does not match"):
        load_packed(path)                              # ... so it is hashed again, and refused
    assert len(calls) == 2


def test_pack_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "train.bin"
    pack_tokens([np.array([1, 2, 3])], path, 0)
    before = path.read_bytes(), (tmp_path / "train.bin.json").read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        pack_tokens([np.array([7, 7, 7, 7, 7])], path, 0)
    monkeypatch.undo()
    assert (path.read_bytes(), (tmp_path / "train.bin.json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.bin", "train.bin.json"]  # no temp files
    assert load_packed(path).tolist() == [1, 2, 3, 0]


def test_random_windows(tmp_path):
    tokens = np.arange(1000, dtype=np.uint16)
    g = torch.Generator().manual_seed(0)
    x, y = random_windows(tokens, batch_size=4, seq_len=16, generator=g)
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1)  # tokens are 0, 1, 2, ...: the target is the next id
    assert int(x.min()) >= 0 and int(y.max()) <= 999
    x2, _ = random_windows(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    # every start is reachable, including the last one (len - seq_len - 1)
    x, y = random_windows(np.arange(6, dtype=np.uint16), batch_size=200, seq_len=5)
    assert x[:, 0].unique().tolist() == [0] and int(y[0, -1]) == 5
    starts = set(random_windows(np.arange(10), 500, 3, torch.Generator().manual_seed(1))[0][:, 0].tolist())
    assert starts == set(range(7))
    pack_tokens([np.arange(50)], tmp_path / "w.bin", 50)
    x, y = random_windows(load_packed(tmp_path / "w.bin"), 2, 8)
    assert x.dtype == torch.int64 and torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(random_windows(torch.arange(20), 3, 4, torch.Generator().manual_seed(2))[0],
                       random_windows(np.arange(20), 3, 4, torch.Generator().manual_seed(2))[0])
    with pytest.raises(ValueError, match="too few for seq_len=10"):
        random_windows(np.arange(10), 2, 10)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        random_windows(tokens, 0, 4)
    with pytest.raises(ValueError, match="must be 1-D"):
        random_windows(tokens.reshape(10, 100), 2, 4)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        random_windows(tokens, 2, 4, generator=0)
    with pytest.raises(TypeError, match="integer ids"):
        random_windows(np.zeros(20), 2, 4)


# ----------------------------------------------------------------------------------------------------
# the whole pipeline


def test_run_pipeline(corpus, tokenizer, tmp_path):
    out = tmp_path / "messy.bin"
    result = run_pipeline(corpus.docs, tokenizer=tokenizer, out_path=out)
    names = [s.stage for s in result.stages]
    assert names == ["quality filter", "exact dedup", "near dedup", "PII scrub", "tokenize", "pack"]
    for prev, nxt in zip(result.stages, result.stages[1:]):
        assert prev.docs_out == nxt.docs_in
    assert result.stages[0].docs_in == len(corpus.docs)
    assert len(result.docs) == len(result.source_index) == len(corpus.docs) - len(result.removed)
    assert set(result.source_index).isdisjoint(result.removed)
    assert set(corpus.junk) <= set(result.removed)
    # of every injected pair, exactly one document survives (unless the filter took the other)
    for c, o in {**corpus.exact_of, **corpus.near_of}.items():
        assert (c in result.removed) or (o in result.removed)
    assert sum(result.stages[3].extra.values()) == len(corpus.pii) - sum(
        1 for i, _, _ in corpus.pii if i in result.removed)
    assert all("@" not in d or "<EMAIL>" in d for d in result.docs)
    tokens = load_packed(out)
    assert len(tokens) == result.packed["length"] == sum(map(len, result.tokens)) + len(result.docs)
    table = result.table()
    assert all(name in table for name in names) and len(table.splitlines()) == 2 + len(names)
    assert result.rows()[0]["docs in"] == len(corpus.docs)
    with pytest.raises(ValueError, match="out_path needs a tokenizer"):
        run_pipeline(corpus.docs[:3], out_path=out)
    small = run_pipeline(corpus.docs[:20], near=False, scrub=False)
    assert [s.stage for s in small.stages] == ["quality filter", "exact dedup"]


# ----------------------------------------------------------------------------------------------------
# one argument-checking convention: every public function names the bad argument


@pytest.mark.parametrize("call, name", [
    (lambda: split_documents(b"text"), "text"),
    (lambda: split_documents("a", min_chars=10, max_chars=5), "max_chars"),
    (lambda: make_messy_corpus("a", n_docs=1.5), "n_docs"),
    (lambda: make_messy_corpus("a", pii_frac=float("nan")), "pii_frac"),
    (lambda: make_messy_corpus("a", near_edit_rate=0.1), "near_edit_rate"),
    (lambda: quality_signals(None), "doc"),
    (lambda: quality_filter(["x"], max_words=float("inf")), "max_words"),
    (lambda: normalize_whitespace(3), "text"),
    (lambda: exact_dedup([b"bytes"]), r"docs\[0\]"),
    (lambda: shingles("a b", k=True), "k"),
    (lambda: jaccard([1], "ab"), "b"),
    (lambda: minhash_signatures(5), "shingle_sets"),
    (lambda: minhash_signatures([{"a"}], seed=-1), "seed"),
    (lambda: minhash_signatures([{"a"}], chunk=0), "chunk"),
    (lambda: lsh_probability(0.5, bands=0, rows=2), "bands"),
    (lambda: lsh_params(0.8, min_prob=0), "min_prob"),
    (lambda: lsh_candidate_pairs([[1, 2]], 1, 1), "signatures"),
    (lambda: lsh_candidate_pairs(np.ones((2, 2), dtype=int), 1, rows=2.0), "rows"),
    (lambda: near_dedup(["a"], unit="byte"), "unit"),
    (lambda: near_dedup(["a"], seed="0"), "seed"),
    (lambda: near_dedup(["a"], bands=2, rows=0), "rows"),
    (lambda: precision_recall(3, []), "found_pairs"),
    (lambda: scrub_pii(None), "text"),
    (lambda: tokenize_documents("one doc", None), "docs"),
    (lambda: pack_tokens([np.array([1])], "x.bin", eot_id=-1), "eot_id"),
    (lambda: pack_tokens(5, "x.bin", 0), "token_arrays"),
    (lambda: random_windows(np.arange(10), 2, seq_len=0), "seq_len"),
    (lambda: random_windows([1, 2, 3], 1, 1), "tokens"),
    (lambda: run_pipeline(["a"], quality=[("min_words", 5)]), "quality"),
    (lambda: run_pipeline(["a"], near=True), "near"),
    (lambda: run_pipeline(["a"], scrub=1), "scrub"),
    (lambda: run_pipeline(["a"], tokenizer="gpt2"), "tokenizer"),
])
def test_bad_arguments_are_named(call, name, tmp_path, monkeypatch):
    from llmcourse.checks import ArgumentError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArgumentError, match=rf"^{name} must be"):
        call()
    assert not list(tmp_path.iterdir())  # nothing written


def test_run_pipeline_checks_its_packing_arguments_before_the_work(corpus, tokenizer, tmp_path, monkeypatch):
    from llmcourse.checks import ArgumentError

    def no_work(*args, **kwargs):
        raise AssertionError("a stage ran before the arguments were checked")

    monkeypatch.setattr(dp.pipeline, "quality_filter", no_work)
    with pytest.raises(ArgumentError, match="dtype must be np.uint16 or np.uint32"):
        run_pipeline(corpus.docs, tokenizer=tokenizer, out_path=tmp_path / "x.bin", dtype=np.int32)
    with pytest.raises(ArgumentError, match="out_path must be a str or os.PathLike"):
        run_pipeline(corpus.docs, tokenizer=tokenizer, out_path=3)
    with pytest.raises(ArgumentError, match="eot_id must be an integer >= 0 and <= 399"):
        run_pipeline(corpus.docs, tokenizer=tokenizer, eot_id=1000)
