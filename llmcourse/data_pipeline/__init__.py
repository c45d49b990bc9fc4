"""The pretraining data pipeline: from a pile of raw documents to a packed file of token ids.

A web crawl is mostly not text a model should learn from. Before pretraining, every large model's
data goes through the same stages (C4, Gopher, RefinedWeb, FineWeb all follow this outline):

1. **Quality filtering** (:func:`quality_filter`). Cheap, per-document heuristics in the style of
   Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020): too few words, strange word lengths, too many
   symbols, too few alphabetic words, repeated lines, one n-gram covering much of the text, no common
   English words, cookie banners. Each rule is one number (:func:`quality_signals`) and a threshold.
2. **Exact de-duplication** (:func:`exact_dedup`). Hash every document (after collapsing whitespace)
   and keep the first document with each hash: one pass, one dictionary.
3. **Near-duplicate removal** (:func:`near_dedup`). Copies with a few words changed have different
   hashes. Compare documents as *sets of shingles* (:func:`shingles`) by their Jaccard similarity
   (:func:`jaccard`). Comparing every pair is quadratic, so MinHash (:func:`minhash_signatures`)
   squeezes each set into ``num_perm`` numbers whose agreement rate estimates the Jaccard similarity,
   and LSH banding (:func:`lsh_candidate_pairs`) finds the pairs that agree on at least one whole band
   of ``rows`` numbers, without looking at the others. A pair with similarity ``s`` becomes a candidate
   with probability ``1 - (1 - s**rows)**bands`` (:func:`lsh_probability`), an S-shaped curve.
4. **PII scrubbing** (:func:`scrub_pii`). E-mail addresses, phone numbers and IPv4 addresses are
   replaced by ``<EMAIL>``, ``<PHONE>`` and ``<IP>``.
5. **Tokenization and packing** (:func:`tokenize_documents`, :func:`pack_tokens`). Every document is
   encoded, followed by the end-of-text id, and all of them are written as one flat array of
   ``uint16`` to a ``.bin`` file, with a JSON sidecar recording its dtype, length, size and sha256.
   Training memory-maps it (:func:`load_packed`, which refuses a damaged or mismatched pair) and
   samples random windows from it (:func:`random_windows`).

:func:`run_pipeline` runs the stages in order and reports what each one removed and how long it took.

To measure each stage we need to know the right answers, so :func:`make_messy_corpus` makes a
corpus messy *on purpose*: it cuts clean Shakespeare into documents and injects junk, exact copies,
near copies and PII, recording exactly what it injected where.

    >>> from llmcourse.datasets import load_shakespeare
    >>> corpus = make_messy_corpus(load_shakespeare("train"), n_docs=300, seed=0)   # doctest: +SKIP
    >>> result = run_pipeline(corpus.docs)                                           # doctest: +SKIP
    >>> print(result.table())                                                        # doctest: +SKIP

The package has one module per idea; they import from each other downward only (``messy``,
``quality``, ``pii`` and ``packing`` import nothing from the package, ``dedup`` imports ``quality``'s
definition of a word, ``pipeline`` imports them all):

======================  =======================================================================
module                  holds
======================  =======================================================================
:mod:`~.messy`          :func:`make_messy_corpus`, :func:`split_documents`, :class:`MessyCorpus`,
                        :data:`JUNK_KINDS`: the corpus with known ground truth
:mod:`~.quality`        :func:`quality_signals`, :func:`quality_filter`, :data:`QUALITY_DEFAULTS`,
                        :data:`STOP_WORDS`, :data:`BOILERPLATE_PATTERN` (stage 1)
:mod:`~.dedup`          :func:`normalize_whitespace`, :func:`exact_dedup` (stage 2); :func:`shingles`,
                        :func:`jaccard`, :func:`minhash_signatures`, :func:`lsh_probability`,
                        :func:`lsh_params`, :func:`lsh_candidate_pairs`, :func:`near_dedup`,
                        :func:`precision_recall`, :data:`MERSENNE_PRIME` (stage 3)
:mod:`~.pii`            :func:`scrub_pii`, :data:`PII_TAGS` (stage 4)
:mod:`~.packing`        :func:`tokenize_documents`, :func:`pack_tokens`, :func:`load_packed`,
                        :func:`random_windows`, :class:`PackedFileError` (stage 5)
:mod:`~.pipeline`       :func:`run_pipeline`, :class:`PipelineResult`, :class:`StageReport`
======================  =======================================================================

Everything is importable from ``llmcourse.data_pipeline`` itself, as before the split.
"""

# The private names re-exported here are imported by other code (tests, llmcourse.training).
from llmcourse.data_pipeline.dedup import (
    MERSENNE_PRIME,
    _hash64,
    _mod_p,
    _mulmod_p,
    exact_dedup,
    jaccard,
    lsh_candidate_pairs,
    lsh_params,
    lsh_probability,
    minhash_signatures,
    near_dedup,
    normalize_whitespace,
    precision_recall,
    shingles,
)
from llmcourse.data_pipeline.messy import JUNK_KINDS, MessyCorpus, make_messy_corpus, split_documents
from llmcourse.data_pipeline.packing import (
    PackedFileError,
    _sidecar,
    load_packed,
    pack_tokens,
    random_windows,
    tokenize_documents,
)
from llmcourse.data_pipeline.pii import PII_TAGS, scrub_pii
from llmcourse.data_pipeline.pipeline import PipelineResult, StageReport, run_pipeline
from llmcourse.data_pipeline.quality import (
    BOILERPLATE_PATTERN,
    QUALITY_DEFAULTS,
    STOP_WORDS,
    quality_filter,
    quality_signals,
)

__all__ = [
    "BOILERPLATE_PATTERN",
    "JUNK_KINDS",
    "MERSENNE_PRIME",
    "PII_TAGS",
    "QUALITY_DEFAULTS",
    "STOP_WORDS",
    "MessyCorpus",
    "PackedFileError",
    "PipelineResult",
    "StageReport",
    "exact_dedup",
    "jaccard",
    "load_packed",
    "lsh_candidate_pairs",
    "lsh_params",
    "lsh_probability",
    "make_messy_corpus",
    "minhash_signatures",
    "near_dedup",
    "normalize_whitespace",
    "pack_tokens",
    "precision_recall",
    "quality_filter",
    "quality_signals",
    "random_windows",
    "run_pipeline",
    "scrub_pii",
    "shingles",
    "split_documents",
    "tokenize_documents",
]
