"""The whole pipeline: :func:`run_pipeline` runs the stages in order and reports on each.

Quality filter -> exact dedup -> near dedup -> PII scrub -> tokenize -> pack; one
:class:`StageReport` per stage (documents and characters in and out, seconds, stage figures), all
in a :class:`PipelineResult`.

The top of the package: imports from every other module of :mod:`llmcourse.data_pipeline`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from llmcourse.checks import ArgumentError, check_bool, check_strings, fail
from llmcourse.data_pipeline.dedup import exact_dedup, near_dedup
from llmcourse.data_pipeline.packing import _check_dtype, _eot_of, pack_tokens, tokenize_documents
from llmcourse.data_pipeline.pii import PII_TAGS, scrub_pii
from llmcourse.data_pipeline.quality import quality_filter

__all__ = ["PipelineResult", "StageReport", "run_pipeline"]


@dataclass
class StageReport:
    """What one stage did: documents and characters in and out, seconds, and stage-specific figures."""

    stage: str
    docs_in: int
    docs_out: int
    chars_in: int
    chars_out: int
    seconds: float
    extra: dict = field(default_factory=dict)


@dataclass
class PipelineResult:
    """The output of :func:`run_pipeline`.

    Attributes:
        docs: the documents that survived, scrubbed.
        source_index: for each of them, its index in the input.
        removed: ``{input index: why}`` for every dropped document (the quality rule, or
            ``"exact duplicate of i"`` / ``"near duplicate of i (J=0.93)"``).
        stages: one :class:`StageReport` per stage, in order.
        tokens: per-document token arrays (None without a tokenizer).
        packed: the sidecar of the packed file (None without ``out_path``).
    """

    docs: list[str]
    source_index: list[int]
    removed: dict[int, str]
    stages: list[StageReport]
    tokens: list[np.ndarray] | None = None
    packed: dict | None = None

    def rows(self) -> list[dict]:
        """The stage reports as a list of flat dicts (for ``pandas.DataFrame(result.rows())``)."""
        return [{"stage": s.stage, "docs in": s.docs_in, "docs out": s.docs_out, "chars in": s.chars_in,
                 "chars out": s.chars_out, "seconds": round(s.seconds, 3), **s.extra} for s in self.stages]

    def table(self) -> str:
        """A plain-text table of the stages (docs and characters in/out, seconds)."""
        head = f"{'stage':<16}{'docs in':>9}{'docs out':>10}{'chars in':>12}{'chars out':>12}{'seconds':>9}  notes"
        lines = [head, "-" * len(head)]
        for s in self.stages:
            notes = ", ".join(f"{k}={v}" for k, v in s.extra.items())
            lines.append(f"{s.stage:<16}{s.docs_in:>9,}{s.docs_out:>10,}{s.chars_in:>12,}{s.chars_out:>12,}"
                         f"{s.seconds:>9.2f}  {notes}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"PipelineResult(docs={len(self.docs)}, stages={[s.stage for s in self.stages]})"


def run_pipeline(docs: Sequence[str], *, quality: dict | None = None, near: dict | None = None,
                 scrub: bool = True, tokenizer=None, eot_id: int | None = None,
                 out_path: str | os.PathLike | None = None, dtype=np.uint16) -> PipelineResult:
    """Run the stages in order: quality filter -> exact dedup -> near dedup -> PII scrub ->
    tokenize -> pack.

    Cheap stages run first so the expensive ones see fewer documents: the quality filter also
    removes junk that repeats itself across the crawl, and exact dedup removes the copies that MinHash
    would otherwise find at a higher cost.

    Args:
        docs: the raw documents.
        quality: thresholds for :func:`quality_filter` (None: the defaults).
        near: keyword arguments for :func:`near_dedup`, e.g. ``{"threshold": 0.8}``; ``False`` skips it.
        scrub: run :func:`scrub_pii`.
        tokenizer, eot_id: tokenize with :func:`tokenize_documents` (skipped when tokenizer is None).
        out_path: pack to this ``.bin`` with :func:`pack_tokens` (needs a tokenizer).

    Returns:
        a :class:`PipelineResult`; ``print(result.table())`` shows the report.
    """
    docs = check_strings("docs", docs)
    if quality is not None and not isinstance(quality, dict):
        raise fail("quality", "a dict of thresholds or None", quality)
    if near is not None and near is not False and not isinstance(near, dict):
        raise fail("near", "a dict of near_dedup arguments, None or False", near)
    scrub = check_bool("scrub", scrub)
    if out_path is not None and tokenizer is None:
        raise ArgumentError("out_path needs a tokenizer: pass tokenizer=... to tokenize before packing")
    # Checked here, not only by the stages that use them, so that a bad value fails before the work.
    if tokenizer is not None:
        _eot_of(tokenizer, eot_id)
    if out_path is not None:
        if not isinstance(out_path, (str, os.PathLike)):
            raise fail("out_path", "a str or os.PathLike, or None", out_path)
        _check_dtype(dtype)
    stages: list[StageReport] = []
    removed: dict[int, str] = {}
    index = list(range(len(docs)))
    current = list(docs)

    def chars(ds):
        return sum(len(d) for d in ds)

    def apply(name, keep, why, seconds, **extra):
        nonlocal current, index
        before, c_before = len(current), chars(current)
        for k, ok in enumerate(keep):
            if not ok:
                removed[index[k]] = why(k)
        current = [d for d, ok in zip(current, keep) if ok]
        index = [i for i, ok in zip(index, keep) if ok]
        stages.append(StageReport(name, before, len(current), c_before, chars(current), seconds, extra))

    t = time.perf_counter()
    keep, reasons = quality_filter(current, **(quality or {}))
    apply("quality filter", keep, lambda k: reasons[k], time.perf_counter() - t)

    t = time.perf_counter()
    keep, dup_of = exact_dedup(current)
    apply("exact dedup", keep, lambda k: f"exact duplicate of {index[dup_of[k]]}", time.perf_counter() - t)

    if near is not False:
        t = time.perf_counter()
        keep, pairs = near_dedup(current, **(near or {}))
        partner: dict[int, tuple[int, float]] = {}
        for (i, j), sim in pairs.items():
            if not keep[j] and keep[i] and j not in partner:
                partner[j] = (i, sim)
        apply("near dedup", keep,
              lambda k: f"near duplicate of {index[partner[k][0]]} (J={partner[k][1]:.2f})",
              time.perf_counter() - t, pairs=len(pairs))

    if scrub:
        t = time.perf_counter()
        c_before = chars(current)
        totals = {kind: 0 for kind in PII_TAGS}
        scrubbed = []
        for d in current:
            s, counts = scrub_pii(d)
            scrubbed.append(s)
            for kind, n in counts.items():
                totals[kind] += n
        current = scrubbed
        stages.append(StageReport("PII scrub", len(current), len(current), c_before, chars(current),
                                  time.perf_counter() - t, dict(totals)))

    tokens = packed = None
    if tokenizer is not None:
        t = time.perf_counter()
        tokens = tokenize_documents(current, tokenizer, eot_id)
        seconds = time.perf_counter() - t
        n_tokens = int(sum(len(a) for a in tokens))
        stages.append(StageReport("tokenize", len(current), len(current), chars(current), chars(current), seconds,
                                  {"tokens": n_tokens, "tokens/s": round(n_tokens / max(seconds, 1e-9))}))
        if out_path is not None:
            t = time.perf_counter()
            eot, vocab_size = _eot_of(tokenizer, eot_id)
            packed = pack_tokens(tokens, out_path, eot, dtype, vocab_size=vocab_size)
            stages.append(StageReport("pack", len(current), len(current), chars(current), chars(current),
                                      time.perf_counter() - t, {"length": packed["length"],
                                                                "bytes": packed["length"] * np.dtype(dtype).itemsize}))
    return PipelineResult(current, index, removed, stages, tokens, packed)
