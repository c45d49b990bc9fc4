#!/usr/bin/env python
"""The pretraining data pipeline on a corpus made messy on purpose: what each stage removes, and how fast.

Builds :func:`llmcourse.data_pipeline.make_messy_corpus` from the Shakespeare train split (all of it
by default), then measures every stage against the injected ground truth:

1. quality filter: junk removed (by kind) and clean Shakespeare kept, with the rules that fired;
2. exact dedup (on the documents that are not junk): injected exact copies found, precision/recall;
3. MinHash + LSH near dedup (same documents): shingling, signatures, LSH and verification timed
   separately; candidates; precision and recall against the injected copies (near and exact);
4. PII scrubbing: recall of the injected e-mails / phones / IPs, and clean documents changed;
5. tokenization with the course BPE (trained on a slice of the clean text), tokens per second;
   packing to a ``.bin`` and reading random windows back;
6. the whole :func:`run_pipeline` report, as a notebook would print it;
7. near-dedup recall as the near copies are edited more heavily (the threshold at work).

Usage::

    python benchmarks/data_pipeline.py
    python benchmarks/data_pipeline.py --n-docs 1000 --seeds 0 1 2 3 4    # figures over several seeds

Timings are wall-clock seconds of one run on one core.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from llmcourse import data_pipeline as dp
from llmcourse.datasets import load_shakespeare
from llmcourse.tokenization import train_bpe

EOT = "<|endoftext|>"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(text: str, n_docs, seed: int, verbose: bool) -> dict:
    """Every figure for one corpus; prints the details when ``verbose``."""
    say = print if verbose else (lambda *a, **k: None)
    t, corpus = timed(lambda: dp.make_messy_corpus(text, n_docs=n_docs, seed=seed))
    say(f"corpus (seed {seed}): {corpus!r}, {sum(map(len, corpus.docs)):,} characters, built in {t:.2f} s\n")
    figures = {}

    # 1. quality filter -------------------------------------------------------------------------------
    t, (keep, reasons) = timed(lambda: dp.quality_filter(corpus.docs))
    clean = corpus.clean
    junk_removed = sum(not keep[i] for i in corpus.junk)
    clean_kept = sum(keep[i] for i in clean)
    copies = list(corpus.exact_of) + list(corpus.near_of)
    figures.update(junk_removed=junk_removed / len(corpus.junk), clean_kept=clean_kept / len(clean),
                   copies_kept=sum(keep[i] for i in copies) / len(copies))
    say(f"1. quality filter: {t:.2f} s ({len(corpus.docs) / t:,.0f} docs/s)")
    say(f"   junk removed        {junk_removed}/{len(corpus.junk)} = {figures['junk_removed']:.1%}")
    say(f"   clean kept          {clean_kept}/{len(clean)} = {figures['clean_kept']:.2%}")
    say(f"   copies kept         {figures['copies_kept']:.2%} (they are Shakespeare too)")
    by_kind = Counter((kind, reasons[i].split(":")[0] if reasons[i] else "KEPT") for i, kind in corpus.junk.items())
    for kind in dp.JUNK_KINDS:
        rules = ", ".join(f"{rule} x{n}" for (k, rule), n in sorted(by_kind.items()) if k == kind)
        say(f"   junk {kind:<14} {rules}")
    gopher = dp.quality_filter([corpus.docs[i] for i in clean], max_dup_line_frac=0.3, max_dup_line_char_frac=0.2)[0]
    figures["clean_kept_gopher_dup_lines"] = sum(gopher) / len(clean)
    say(f"   clean kept with Gopher's duplicate-line thresholds (0.3 / 0.2 instead of 0.5 / 0.3): "
        f"{figures['clean_kept_gopher_dup_lines']:.2%}")
    false = Counter(reasons[i].split(":")[0] for i in clean if not keep[i])
    say(f"   clean removed by    {dict(false) or 'nothing'}")
    for i in [i for i in clean if not keep[i]][:5]:
        say(f"     e.g. doc {i}: {reasons[i]}  {corpus.docs[i][:70]!r}")

    # 2. exact dedup (non-junk documents) -----------------------------------------------------------
    idx = [i for i in range(len(corpus.docs)) if i not in corpus.junk]
    docs = [corpus.docs[i] for i in idx]
    t, (ekeep, dup_of) = timed(lambda: dp.exact_dedup(docs))
    found = {(idx[j], idx[i]) for i, j in enumerate(dup_of) if j is not None}
    p, r = dp.precision_recall(found, corpus.exact_pairs)
    raw = sum(j is not None for j in dp.exact_dedup(docs, normalize=False)[1])
    figures.update(exact_precision=p, exact_recall=r)
    say(f"\n2. exact dedup on {len(docs):,} non-junk docs: {t:.3f} s; found {len(found)} of "
        f"{len(corpus.exact_of)} injected copies, precision {p:.3f}, recall {r:.3f}; "
        f"without whitespace normalisation: {raw}")

    # 3. near dedup, step by step, then as one call --------------------------------------------------
    threshold, num_perm = 0.8, 128
    bands, rows = dp.lsh_params(threshold, num_perm)
    t_sh, sets = timed(lambda: [dp.shingles(d) for d in docs])
    t_mh, sig = timed(lambda: dp.minhash_signatures(sets, num_perm=num_perm))
    t_lsh, cand = timed(lambda: dp.lsh_candidate_pairs(sig, bands, rows))
    t_ver, verified = timed(lambda: {(int(a), int(b)): dp.jaccard(sets[a], sets[b]) for a, b in cand})
    t_all, (nkeep, pairs) = timed(lambda: dp.near_dedup(docs, threshold=threshold, num_perm=num_perm))
    found = {(idx[i], idx[j]) for i, j in pairs}
    truth = corpus.near_pairs | corpus.exact_pairs
    p, r = dp.precision_recall(found, truth)
    near_recall = len(found & corpus.near_pairs) / len(corpus.near_pairs)
    true_j = sorted(dp.jaccard(dp.shingles(corpus.docs[a]), dp.shingles(corpus.docs[b]))
                    for a, b in corpus.near_pairs)
    figures.update(near_precision=p, near_recall=r, near_only_recall=near_recall, candidates=len(cand),
                   near_min_j=true_j[0])
    n_shingles = sum(map(len, sets))
    say(f"\n3. near dedup (word 3-shingles, {num_perm} permutations, {bands} bands x {rows} rows, "
        f"threshold {threshold}; S-curve threshold ~ {(1 / bands) ** (1 / rows):.2f})")
    say(f"   shingling  {t_sh:6.2f} s  ({n_shingles:,} shingles)")
    say(f"   MinHash    {t_mh:6.2f} s  ({n_shingles / t_mh:,.0f} shingles/s)")
    say(f"   LSH        {t_lsh:6.2f} s  ({len(cand):,} candidate pairs of {len(docs) * (len(docs) - 1) // 2:,})")
    say(f"   verify     {t_ver:6.2f} s  ({sum(v >= threshold for v in verified.values())} pairs >= {threshold})")
    say(f"   near_dedup {t_all:6.2f} s in one call; {len(pairs)} pairs, {nkeep.count(False)} docs dropped")
    say(f"   vs injected copies (near + exact, {len(truth)} pairs): precision {p:.3f}, recall {r:.3f}; "
        f"near copies alone: recall {near_recall:.3f}")
    say(f"   true Jaccard of the injected near copies: min {true_j[0]:.3f}, median "
        f"{statistics.median(true_j):.3f}, max {true_j[-1]:.3f}; below {threshold}: "
        f"{sum(j < threshold for j in true_j)}")
    est_err = [abs(float(np.mean(sig[a] == sig[b])) - dp.jaccard(sets[a], sets[b])) for a, b in cand]
    if est_err:
        say(f"   MinHash estimate vs exact Jaccard on the {len(cand)} candidates: mean |error| "
            f"{statistics.mean(est_err):.4f}, max {max(est_err):.4f} (sigma at J=0.9: {(0.9 * 0.1 / num_perm) ** 0.5:.4f})")
    for a, b in sorted(truth - found)[:5]:
        say(f"     missed ({a}, {b}): J = {dp.jaccard(dp.shingles(corpus.docs[a]), dp.shingles(corpus.docs[b])):.3f}")
    for a, b in sorted(found - truth)[:5]:
        say(f"     extra  ({a}, {b}): J = {dp.jaccard(dp.shingles(corpus.docs[a]), dp.shingles(corpus.docs[b])):.3f}")

    # 4. PII ---------------------------------------------------------------------------------------------
    pii_docs = sorted({i for i, _, _ in corpus.pii})
    t, scrubbed = timed(lambda: [dp.scrub_pii(d) for d in corpus.docs])
    hits = 0
    for i, kind, value in corpus.pii:
        hits += value not in scrubbed[i][0]
    exact_ok = 0
    for i in pii_docs:
        expected = corpus.docs[i]
        for j, kind, value in corpus.pii:
            if j == i:
                expected = expected.replace(value, dp.PII_TAGS[kind])
        exact_ok += scrubbed[i][0] == expected
    changed_clean = sum(scrubbed[i][0] != corpus.docs[i] for i in clean if i not in set(pii_docs))
    kinds = Counter(k for _, k, _ in corpus.pii)
    figures.update(pii_recall=hits / len(corpus.pii), clean_changed=changed_clean)
    say(f"\n4. PII scrub of all {len(corpus.docs):,} docs: {t:.2f} s; injected {dict(kinds)}")
    say(f"   recall {hits}/{len(corpus.pii)} = {figures['pii_recall']:.1%}; docs scrubbed exactly as "
        f"expected {exact_ok}/{len(pii_docs)}; clean docs changed {changed_clean}/{len(clean) - len(pii_docs)}")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-docs", type=int, default=None, help="clean documents (default: all of the split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="*", help="also summarise the figures over these seeds")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--bpe-chars", type=int, default=500_000, help="clean characters to train the BPE on")
    args = ap.parse_args()

    text = load_shakespeare("train")
    print(f"Shakespeare train split: {len(text):,} characters; python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__}, {platform.machine()}\n")
    measure(text, args.n_docs, args.seed, verbose=True)

    # 5. + 6. the whole pipeline, with tokenization and packing ---------------------------------------
    corpus = dp.make_messy_corpus(text, n_docs=args.n_docs, seed=args.seed)
    t, tok = timed(lambda: train_bpe(text[: args.bpe_chars], args.vocab_size, special_tokens=[EOT]))
    print(f"\n5. BPE: vocab {tok.vocab_size} trained on {args.bpe_chars:,} clean characters in {t:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "messy.bin"
        result = dp.run_pipeline(corpus.docs, tokenizer=tok, out_path=out)
        t_load, tokens = timed(lambda: dp.load_packed(out))             # checks size and sha256
        t_again, _ = timed(lambda: dp.load_packed(out))                  # the hash check is remembered
        print(f"   load_packed: {t_load * 1e3:.1f} ms with the sha256 check, {t_again * 1e3:.2f} ms the second "
              "time (checked once per process)")
        t_w, (x, y) = timed(lambda: dp.random_windows(tokens, 64, 256, torch.Generator().manual_seed(0)))
        print(f"   packed {len(tokens):,} tokens ({result.packed['n_docs']:,} docs + EOTs, "
              f"{out.stat().st_size:,} bytes, {tokens.dtype}); {result.stages[-2].extra['tokens/s']:,} tokens/s "
              f"tokenizing; a (64, 256) batch of windows in {t_w * 1e3:.2f} ms")
        print(f"   bytes per token: {sum(len(d.encode()) for d in result.docs) / result.stages[-2].extra['tokens']:.2f}")
    junk_left = [i for i in corpus.junk if i not in result.removed]
    pairs = {**corpus.exact_of, **corpus.near_of}
    both_left = sum(c not in result.removed and o not in result.removed for c, o in pairs.items())
    print(f"\n6. run_pipeline on all {len(corpus.docs):,} documents:\n")
    print(result.table())
    partner = {o: c for c, o in pairs.items()}
    lost = [i for i in corpus.clean if i in result.removed and (i not in partner or partner[i] in result.removed)]
    print(f"\n   junk left after the pipeline: {len(junk_left)}; injected pairs with both documents left: "
          f"{both_left} of {len(pairs)}; clean texts lost (the document and any copy of it removed): "
          f"{len(lost)} of {len(corpus.clean)}, by {dict(Counter(result.removed[i].split(':')[0] for i in lost))}")

    # 3b. how recall depends on how heavily the copies were edited ---------------------------------------
    print("\n7. near dedup (threshold 0.8) versus the edit rate of the near copies (1,000 clean docs, 50 copies):")
    print(f"   {'edit rate':>10} {'true J (median)':>16} {'J >= 0.8':>9} {'recall':>7} {'precision':>9}")
    for rate in (0.02, 0.04, 0.06, 0.08, 0.12):
        c = dp.make_messy_corpus(text, n_docs=1000, seed=args.seed, junk_frac=0, exact_frac=0, pii_frac=0,
                                 near_frac=0.05, near_edit_rate=(rate, rate))
        js = [dp.jaccard(dp.shingles(c.docs[a]), dp.shingles(c.docs[b])) for a, b in c.near_pairs]
        _, pairs = dp.near_dedup(c.docs)
        p, r = dp.precision_recall(pairs, c.near_pairs)
        print(f"   {rate:>10.2f} {statistics.median(js):>16.3f} {sum(j >= 0.8 for j in js):>6}/{len(js)} "
              f"{r:>7.3f} {p:>9.3f}")

    if args.seeds:
        print(f"\nover seeds {args.seeds} (n_docs={args.n_docs}):")
        rows = [measure(text, args.n_docs, s, verbose=False) for s in args.seeds]
        for key in rows[0]:
            vals = [r[key] for r in rows]
            print(f"   {key:<18} min {min(vals):8.4f}  mean {statistics.mean(vals):8.4f}  max {max(vals):8.4f}")


if __name__ == "__main__":
    main()
