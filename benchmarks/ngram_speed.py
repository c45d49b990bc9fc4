"""How fast are the n-gram models of notebook 01, and how good?

Fits character-level n-gram models of orders 1..6 on the Shakespeare train split and scores the
validation split, printing fit time, evaluation time and validation bits per character, for
interpolated modified Kneser-Ney and for add-k (Laplace) smoothing. The target: an order-5
Kneser-Ney model fits and evaluates in under 10 s on a 2-core laptop CPU.

    python benchmarks/ngram_speed.py                 # orders 1..6, add-k with k = 1
    python benchmarks/ngram_speed.py --max-order 8 --k 0.01

Exits with status 1 and a message if the corpus has not been built, and with status 2 if the order-5
model misses the target.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

from llmcourse.ngram import NGramLM
from llmcourse.tokenization import CharTokenizer

TARGET_SECONDS = 10.0  # order 5, fit + evaluate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-order", type=int, default=6, help="fit orders 1..MAX_ORDER (default 6)")
    parser.add_argument("--k", type=float, default=1.0, help="pseudo-count of add-k smoothing (default 1)")
    args = parser.parse_args()
    if args.max_order < 1:
        parser.error(f"--max-order must be >= 1; got {args.max_order}")

    try:
        from llmcourse.datasets import load_shakespeare

        train, valid = load_shakespeare("train"), load_shakespeare("validation")
    except (ImportError, OSError, RuntimeError) as err:  # DataFileError is a RuntimeError
        print(
            f"ngram_speed: the Shakespeare corpus is not available ({type(err).__name__}: {err}).\n"
            "Build it first (see data/README.md), then run this benchmark again.",
            file=sys.stderr,
        )
        return 1

    t0 = time.perf_counter()
    vocab = CharTokenizer.from_text(train, unk_token="<unk>")  # characters seen in training, + one <unk> id
    train_ids, valid_ids = vocab.encode(train), vocab.encode(valid)
    encode_s = time.perf_counter() - t0
    print(f"python {platform.python_version()}, {os.cpu_count()} CPU(s), {platform.machine()}")
    print(
        f"train {len(train_ids):,} chars, validation {len(valid_ids):,} chars, vocabulary {vocab.size} "
        f"(encoded in {encode_s:.2f} s)\n"
    )

    header = "order  smoothing     fit s eval s total s  val bpc  val ppl"
    print(header)
    print("-" * len(header))
    totals = {}
    for order in range(1, args.max_order + 1):
        for smoothing in ("kneser_ney", "add_k"):
            t0 = time.perf_counter()
            lm = NGramLM(order, vocab.size, smoothing=smoothing, k=args.k).fit(train_ids)
            t1 = time.perf_counter()
            result = lm.evaluate(valid_ids)
            t2 = time.perf_counter()
            totals[(order, smoothing)] = t2 - t0
            name = smoothing if smoothing == "kneser_ney" else f"add_k={args.k:g}"
            print(
                f"{order:>5}  {name:<12} {t1 - t0:>6.2f} {t2 - t1:>6.2f} {t2 - t0:>7.2f}  "
                f"{result['bits_per_token']:>7.4f} {result['perplexity']:>8.3f}"
            )

    if args.max_order < 5:
        return 0
    total = totals[(5, "kneser_ney")]
    verdict = "meets" if total < TARGET_SECONDS else "MISSES"
    print(f"\norder-5 Kneser-Ney, fit + evaluate: {total:.2f} s ({verdict} the {TARGET_SECONDS:g} s target)")
    print(f"(uniform over {vocab.size} ids would be {math.log2(vocab.size):.4f} bits per character)")
    return 0 if total < TARGET_SECONDS else 2


if __name__ == "__main__":
    sys.exit(main())
