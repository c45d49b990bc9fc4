"""Stages 2 and 3, de-duplication: exact copies by hashing, near copies by MinHash and LSH.

- **Exact** (:func:`exact_dedup`): hash every document after :func:`normalize_whitespace` and keep the
  first document with each hash: one pass, one dictionary.
- **Near** (:func:`near_dedup`): copies with a few words changed have different hashes. Compare
  documents as *sets of shingles* (:func:`shingles`) by their Jaccard similarity (:func:`jaccard`).
  Comparing every pair is quadratic, so MinHash (:func:`minhash_signatures`) squeezes each set into
  ``num_perm`` numbers whose agreement rate estimates the Jaccard similarity, and LSH banding
  (:func:`lsh_candidate_pairs`) finds the pairs that agree on at least one whole band of ``rows``
  numbers, without looking at the others. A pair with similarity ``s`` becomes a candidate with
  probability ``1 - (1 - s**rows)**bands`` (:func:`lsh_probability`), an S-shaped curve;
  :func:`lsh_params` picks the bands and rows for a threshold, and :func:`precision_recall` scores the
  pairs found against the true ones.

Imports from :mod:`llmcourse.data_pipeline.quality` (its definition of a word).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence

import numpy as np

from llmcourse.checks import ArgumentError, check_bool, check_choice, check_fraction, check_int, check_str, \
    check_strings, fail
from llmcourse.data_pipeline.quality import _WORD_RE

__all__ = [
    "MERSENNE_PRIME",
    "exact_dedup",
    "jaccard",
    "lsh_candidate_pairs",
    "lsh_params",
    "lsh_probability",
    "minhash_signatures",
    "near_dedup",
    "normalize_whitespace",
    "precision_recall",
    "shingles",
]


# ----------------------------------------------------------------------------------------------------
# exact de-duplication


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (spaces, tabs, newlines, ``\\r``) to one space and strip the ends.

    This is the only normalisation :func:`exact_dedup` applies: case, punctuation and Unicode forms
    are kept, so a copy that differs in those is a near duplicate, not an exact one.

        >>> normalize_whitespace("  To be,\\r\\n  or not\\tto be ")
        'To be, or not to be'
    """
    return " ".join(check_str("text", text).split())


def exact_dedup(docs: Sequence[str], normalize: bool = True) -> tuple[list[bool], list[int | None]]:
    """Drop every document whose text (after :func:`normalize_whitespace`) occurred before.

    Each document is hashed with SHA-256 (of the UTF-8 bytes of the normalised text), and a dict maps
    hash -> first index. Memory is 32 bytes per distinct document, whatever the documents' length;
    a collision between different texts is, for SHA-256, not a practical concern.

    Args:
        docs: the documents.
        normalize: if False, hash the raw text (then a copy with one extra space is not a duplicate).

    Returns:
        ``(keep, duplicate_of)``: ``keep[i]`` is True for the first occurrence of each text;
        ``duplicate_of[i]`` is the index of that first occurrence for a dropped document, else None.

        >>> exact_dedup(["a b", "c", "a  b\\n", "c"])
        ([True, True, False, False], [None, None, 0, 1])
    """
    docs = check_strings("docs", docs)
    normalize = check_bool("normalize", normalize)
    first: dict[bytes, int] = {}
    keep: list[bool] = []
    duplicate_of: list[int | None] = []
    for i, doc in enumerate(docs):
        text = normalize_whitespace(doc) if normalize else doc
        digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()
        j = first.setdefault(digest, i)
        keep.append(j == i)
        duplicate_of.append(None if j == i else j)
    return keep, duplicate_of


# ----------------------------------------------------------------------------------------------------
# near duplicates: shingles, MinHash, LSH

#: The prime of the universal hash family, 2**61 - 1 (a Mersenne prime): reducing modulo it is a
#: shift and an add, and it is larger than any set we will hash, so hash values rarely collide.
MERSENNE_PRIME = (1 << 61) - 1
_P = np.uint64(MERSENNE_PRIME)
_MASK31 = np.uint64((1 << 31) - 1)
_MASK30 = np.uint64((1 << 30) - 1)


def shingles(doc: str, k: int = 3, unit: str = "word") -> set[str]:
    """The set of k-shingles of a document: every run of ``k`` consecutive units.

    - ``unit="word"`` (default): the units are the lower-cased runs of letters and digits (``\\w+``),
      and a shingle is ``k`` of them joined by one space. Case, punctuation and whitespace are
      ignored, so re-spacing or re-punctuating a copy does not hide it; each changed word changes at
      most ``k`` shingles.
    - ``unit="char"``: the units are characters of the lower-cased text with whitespace collapsed
      (:func:`normalize_whitespace`).

    A document with fewer than ``k`` units has one shingle, all of it (none if it is empty).

        >>> sorted(shingles("To be, or not to be!", k=3))
        ['be or not', 'not to be', 'or not to', 'to be or']
        >>> sorted(shingles("abcd", k=3, unit="char"))
        ['abc', 'bcd']
    """
    doc = check_str("doc", doc)
    k = check_int("k", k, minimum=1)
    unit = check_choice("unit", unit, ("word", "char"))
    if unit == "word":
        units = _WORD_RE.findall(doc.lower())
        join = " ".join
    else:
        units = normalize_whitespace(doc.lower())
        join = "".join
    if len(units) == 0:
        return set()
    if len(units) <= k:
        return {join(units)}
    if unit == "char":
        return {units[i:i + k] for i in range(len(units) - k + 1)}
    return {join(units[i:i + k]) for i in range(len(units) - k + 1)}


def jaccard(a: Iterable, b: Iterable) -> float:
    """``|a ∩ b| / |a ∪ b|``, the Jaccard similarity of two sets; 1.0 for two empty sets.

        >>> jaccard({1, 2, 3}, {2, 3, 4})
        0.5
    """
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise fail(name, "a set (e.g. from shingles()), not a string", value)
    a, b = set(a), set(b)
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def _hash64(items: Iterable) -> np.ndarray:
    """A 64-bit hash of each item (str, bytes or int): the first 8 bytes of BLAKE2b, little-endian.
    Deterministic across runs and machines, unlike Python's ``hash`` of a str."""
    digests = []
    for x in items:
        if isinstance(x, str):
            x = x.encode("utf-8", errors="surrogatepass")
        elif isinstance(x, (int, np.integer)) and not isinstance(x, bool):
            x = int(x).to_bytes(16, "little", signed=True)
        elif not isinstance(x, bytes):
            raise fail("shingle_sets", "sets of str, bytes or int shingles", x)
        digests.append(hashlib.blake2b(x, digest_size=8).digest())
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64)


def _mod_p(x: np.ndarray) -> np.ndarray:
    """x mod (2**61 - 1) for uint64 x: since 2**61 = 1 (mod p), x = (x & p) + (x >> 61) (mod p)."""
    x = (x & _P) + (x >> np.uint64(61))
    return np.where(x >= _P, x - _P, x)


def _mulmod_p(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(a * x) mod (2**61 - 1)``, exactly, for uint64 arrays with ``a, x < 2**61`` (broadcast).

    The product has up to 122 bits, so it is cut into 31- and 30-bit halves whose products fit in 64
    bits: with ``a = a1 2^31 + a0`` and ``x = x1 2^31 + x0``,
    ``a x = a1 x1 2^62 + (a1 x0 + a0 x1) 2^31 + a0 x0``, and modulo p, ``2^61 = 1`` so ``2^62 = 2``.
    The middle term ``m 2^31`` with ``m = mh 2^30 + ml`` is ``mh 2^61 + ml 2^31 = mh + ml 2^31``.
    """
    a1, a0 = a >> np.uint64(31), a & _MASK31
    x1, x0 = x >> np.uint64(31), x & _MASK31
    # In place, into three (len(a), len(x)) buffers: twice as fast as the same expression written
    # plainly, which allocates a fresh array for every operation.
    s = np.multiply(a1, x1)                    # a1 x1 < 2^60 ...
    s <<= np.uint64(1)                         # ... times 2^62 = 2 (mod p): < 2^61
    mid = np.multiply(a1, x0)
    tmp = np.multiply(a0, x1)
    mid += tmp                                 # m < 2^62
    np.right_shift(mid, np.uint64(30), out=tmp)
    s += tmp                                   # + mh (< 2^32)
    mid &= _MASK30
    mid <<= np.uint64(31)
    s += mid                                   # + ml 2^31 (< 2^61)
    np.multiply(a0, x0, out=tmp)
    s += tmp                                   # + a0 x0 (< 2^62): s < 2^63 + 2^32, no overflow
    np.right_shift(s, np.uint64(61), out=tmp)  # reduce: s = (s & p) + (s >> 61) < 2^61 + 8
    s &= _P
    s += tmp
    np.subtract(s, _P, out=s, where=s >= _P)
    return s


def minhash_signatures(shingle_sets: Sequence[Iterable], num_perm: int = 128, seed: int = 0,
                       chunk: int = 1 << 12) -> np.ndarray:
    """MinHash signatures: ``(n_sets, num_perm)`` uint64.

    Each shingle is hashed to 64 bits (BLAKE2b), reduced mod ``p = 2**61 - 1``, and passed through
    ``num_perm`` random universal hash functions ``h_j(x) = (a_j x + b_j) mod p`` with ``a_j`` in
    ``[1, p)`` and ``b_j`` in ``[0, p)`` drawn from ``np.random.default_rng(seed)``. Entry ``j`` of a
    signature is the minimum of ``h_j`` over the set. For two sets, ``P(min h_j(A) = min h_j(B)) =
    J(A, B)``: the element of ``A ∪ B`` with the smallest hash is equally likely to be any of them, and
    the minima agree exactly when it is in ``A ∩ B``. So the fraction of equal entries estimates the
    Jaccard similarity, with standard deviation ``sqrt(J (1 - J) / num_perm)``.

    An empty set's signature is all ``p`` (larger than any hash value); two empty sets look identical.

    The work is vectorised: the shingle hashes of many documents are laid side by side, the
    ``(num_perm, n_shingles)`` hash values are computed at once (``chunk`` shingles at a time, which
    bounds memory at ~``num_perm * chunk * 8 * 3`` bytes and keeps the buffers in cache), and
    ``np.minimum.reduceat`` takes each document's minima.

        >>> sig = minhash_signatures([{"a", "b"}, {"a", "b"}, {"c"}], num_perm=16)
        >>> sig.shape, bool((sig[0] == sig[1]).all()), bool((sig[0] == sig[2]).any())
        ((3, 16), True, False)
    """
    if isinstance(shingle_sets, (str, bytes)) or not isinstance(shingle_sets, Iterable):
        raise fail("shingle_sets", "a list of sets of shingles (e.g. from shingles())", shingle_sets)
    shingle_sets = list(shingle_sets)
    for i, s in enumerate(shingle_sets):
        if isinstance(s, (str, bytes)) or not isinstance(s, Iterable):
            raise fail(f"shingle_sets[{i}]", "a set of shingles (e.g. from shingles())", s)
    shingle_sets = [list(s) for s in shingle_sets]
    num_perm = check_int("num_perm", num_perm, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    chunk = check_int("chunk", chunk, minimum=1)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE_PRIME, size=(num_perm, 1), dtype=np.uint64)
    b = rng.integers(0, MERSENNE_PRIME, size=(num_perm, 1), dtype=np.uint64)

    n = len(shingle_sets)
    sig = np.full((n, num_perm), _P, dtype=np.uint64)
    nonempty = [i for i, s in enumerate(shingle_sets) if len(s)]
    start = 0
    while start < len(nonempty):
        # a group of whole documents with about `chunk` shingles in all
        stop, total = start, 0
        while stop < len(nonempty) and (stop == start or total + len(shingle_sets[nonempty[stop]]) <= chunk):
            total += len(shingle_sets[nonempty[stop]])
            stop += 1
        group = nonempty[start:stop]
        x = _mod_p(_hash64(itertools.chain.from_iterable(shingle_sets[i] for i in group)))
        h = _mulmod_p(a, x[None, :])                          # (num_perm, total)
        h += b                                                # < 2p
        np.subtract(h, _P, out=h, where=h >= _P)
        offsets = np.cumsum([0] + [len(shingle_sets[i]) for i in group[:-1]])
        sig[group] = np.minimum.reduceat(h, offsets, axis=1).T
        start = stop
    return sig


def lsh_probability(s, bands: int, rows: int):
    """The probability that LSH banding makes a pair with Jaccard similarity ``s`` a candidate:
    ``1 - (1 - s**rows)**bands``. A band matches with probability ``s**rows`` (all its rows agree);
    the pair is a candidate unless all ``bands`` bands fail. ``s`` may be a float or an array.

    The curve is an S: steep around ``(1 / bands) ** (1 / rows)``.

        >>> round(lsh_probability(0.8, bands=21, rows=6), 4)
        0.9983
    """
    bands = check_int("bands", bands, minimum=1)
    rows = check_int("rows", rows, minimum=1)
    try:
        arr = None if isinstance(s, (str, bytes)) else np.asarray(s, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or np.any((arr < 0) | (arr > 1)) or np.any(np.isnan(arr)):
        raise fail("s", "a number or an array of numbers in [0, 1]", s)
    out = 1.0 - (1.0 - arr ** rows) ** bands
    return float(out) if out.ndim == 0 else out


def lsh_params(threshold: float = 0.8, num_perm: int = 128, min_prob: float = 0.99) -> tuple[int, int]:
    """``(bands, rows)`` for LSH: the largest ``rows`` such that, with ``bands = num_perm // rows``,
    a pair at the ``threshold`` becomes a candidate with probability at least ``min_prob``.

    More rows make the S-curve steeper (fewer dissimilar candidates to verify); the probability
    constraint keeps recall at the threshold. For 128 permutations and 0.8: ``(21, 6)``.

        >>> lsh_params(0.8, 128)
        (21, 6)
    """
    threshold = check_fraction("threshold", threshold, open_low=True)
    num_perm = check_int("num_perm", num_perm, minimum=1)
    min_prob = check_fraction("min_prob", min_prob, open_low=True)
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if lsh_probability(threshold, bands, rows) >= min_prob:
            best = (bands, rows)
    return best


def lsh_candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Pairs of rows of ``signatures`` that agree on every entry of at least one band.

    The first ``bands * rows`` columns are cut into ``bands`` bands of ``rows`` columns. In each band,
    rows with identical values fall into one bucket (``np.unique`` over the band's rows), and every
    two members of a bucket are a candidate pair. Nothing is compared across buckets, which is what
    makes LSH sub-quadratic: cost ~ n * bands plus the pairs found. (Except for a bucket of ``m``
    identical signatures, which gives ``m (m - 1) / 2`` pairs: remove exact duplicates first.)

    Args:
        signatures: ``(n, num_perm)`` integers, e.g. from :func:`minhash_signatures`.
        bands, rows: with ``bands * rows <= num_perm``.

    Returns:
        ``(n_pairs, 2)`` int64, each pair ``(i, j)`` with ``i < j``, sorted, no repeats.

        >>> sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [0, 2, 3, 4]])
        >>> lsh_candidate_pairs(sig, bands=2, rows=2).tolist()
        [[0, 1], [0, 2]]
    """
    if not isinstance(signatures, np.ndarray):
        raise fail("signatures", "a numpy array", signatures)
    if signatures.ndim != 2:
        raise ArgumentError(f"signatures must be 2-D (n, num_perm); got shape {signatures.shape}")
    if signatures.size and not np.issubdtype(signatures.dtype, np.integer):
        raise ArgumentError(f"signatures must hold integers (hash values); got dtype {signatures.dtype}")
    bands = check_int("bands", bands, minimum=1)
    rows = check_int("rows", rows, minimum=1)
    if bands * rows > signatures.shape[1]:
        raise ArgumentError(f"bands * rows = {bands * rows} is more than the {signatures.shape[1]} columns "
                            f"of signatures")
    pairs: set[tuple[int, int]] = set()
    n = signatures.shape[0]
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
        _, bucket = np.unique(block, axis=0, return_inverse=True)
        bucket = bucket.reshape(-1)
        order = np.argsort(bucket, kind="stable")
        sorted_bucket = bucket[order]
        # boundaries of runs of equal bucket ids; only runs of 2 or more make pairs
        starts = np.flatnonzero(np.r_[True, sorted_bucket[1:] != sorted_bucket[:-1]])
        ends = np.r_[starts[1:], n]
        for s, e in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            members = sorted(order[s:e].tolist())
            pairs.update(itertools.combinations(members, 2))
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    return np.array(sorted(pairs), dtype=np.int64)


def near_dedup(docs: Sequence[str], threshold: float = 0.8, num_perm: int = 128, bands: int | None = None,
               rows: int | None = None, *, k: int = 3, unit: str = "word", seed: int = 0,
               verify: str = "exact") -> tuple[list[bool], dict[tuple[int, int], float]]:
    """Find pairs of near-duplicate documents with MinHash + LSH and drop the later of each.

    1. :func:`shingles` of every document (``k``, ``unit``);
    2. :func:`minhash_signatures` (``num_perm``, ``seed``);
    3. :func:`lsh_candidate_pairs` (``bands`` x ``rows``; both None: :func:`lsh_params` for the
       threshold, i.e. ``(21, 6)`` for 0.8 and 128 permutations);
    4. verify each candidate: ``verify="exact"`` computes the true :func:`jaccard` of the two shingle
       sets (exact, cheap because candidates are few); ``verify="minhash"`` uses the fraction of equal
       signature entries (no sets needed; error ~ ``sqrt(J(1-J)/num_perm)``). A pair is a near
       duplicate if the similarity is ``>= threshold``.
    5. keep: go through the pairs in order of their later document; drop the later document if the
       earlier one is still kept. So of a group of copies the first is kept, and a document is never
       dropped for resembling a document that was itself dropped.

    Documents with no shingles (no letters or digits) are never paired.

    Returns:
        ``(keep, pairs)``: ``keep[i]`` as in :func:`exact_dedup`; ``pairs`` maps every verified pair
        ``(i, j)``, ``i < j``, to its similarity, in sorted order.
    """
    docs = check_strings("docs", docs)
    threshold = check_fraction("threshold", threshold, open_low=True)
    num_perm = check_int("num_perm", num_perm, minimum=1)
    verify = check_choice("verify", verify, ("exact", "minhash"))
    if (bands is None) != (rows is None):
        raise ArgumentError(f"give both bands and rows, or neither; got bands={bands!r}, rows={rows!r}")
    k = check_int("k", k, minimum=1)
    unit = check_choice("unit", unit, ("word", "char"))
    seed = check_int("seed", seed, minimum=0)
    if bands is None:
        bands, rows = lsh_params(threshold, num_perm)
    else:
        bands, rows = check_int("bands", bands, minimum=1), check_int("rows", rows, minimum=1)
        if bands * rows > num_perm:
            raise ArgumentError(f"bands * rows = {bands * rows} is more than num_perm={num_perm}")
    sets = [shingles(d, k, unit) for d in docs]
    nonempty = [i for i, s in enumerate(sets) if s]
    sig = minhash_signatures([sets[i] for i in nonempty], num_perm=num_perm, seed=seed)
    candidates = lsh_candidate_pairs(sig, bands, rows)
    pairs: dict[tuple[int, int], float] = {}
    for a, b in candidates.tolist():
        i, j = nonempty[a], nonempty[b]
        sim = jaccard(sets[i], sets[j]) if verify == "exact" else float(np.mean(sig[a] == sig[b]))
        if sim >= threshold:
            pairs[(i, j)] = sim
    keep = [True] * len(docs)
    for i, j in sorted(pairs, key=lambda p: (p[1], p[0])):
        if keep[i] and keep[j]:
            keep[j] = False
    return keep, pairs


def precision_recall(found_pairs: Iterable, true_pairs: Iterable) -> tuple[float, float]:
    """Precision and recall of a set of found pairs against the true pairs; order within a pair does
    not matter. Precision is 1.0 when nothing was found, recall 1.0 when there was nothing to find.

        >>> precision_recall({(0, 1), (2, 3)}, [(1, 0), (4, 5)])
        (0.5, 0.5)
    """
    def as_set(pairs, name):
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Iterable):
            raise fail(name, "a collection of pairs (i, j)", pairs)
        out = set()
        for k, p in enumerate(pairs):
            try:
                i, j = p
                i, j = int(i), int(j)
            except (TypeError, ValueError):
                raise fail(f"{name}[{k}]", "a pair (i, j) of ints", p) from None
            out.add((min(i, j), max(i, j)))
        return out

    found, true = as_set(found_pairs, "found_pairs"), as_set(true_pairs, "true_pairs")
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    return precision, recall

