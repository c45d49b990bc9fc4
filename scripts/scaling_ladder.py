"""Train the course's ladder of small models and write the results notebook 06 plots: data/scaling_ladder.json.

    python scripts/scaling_ladder.py            # the full ladder, about 30 minutes on 2 CPU cores
    python scripts/scaling_ladder.py --quick    # two tiny budgets, a smoke test (writes nothing)

Two sweeps of LLaMA-style character models (:data:`llmcourse.scaling.LADDER`) on the Shakespeare train
split, each scored on the first 65,536 characters of the validation split:

1. **L(N)**: every size trained on the same 1,048,576 tokens (warm-up 5%, cosine decay), so the loss
   falls with size until the data runs short;
2. **IsoFLOP**: at each of three compute budgets C (FLOPs, C = 6·N·D with N the non-embedding
   parameters), five sizes, each trained on D = C / (6N) tokens; the loss is U-shaped in N and its
   minimum is the compute-optimal size for that budget (Hoffmann et al. 2022, approach 2).

Every run also answers the word-completion probe of :func:`llmcourse.scaling.word_completion` (500
words of 7 to 12 letters from the validation split; the model is shown a word's first 3 letters and
must write the rest), for the emergence section of notebook 06.

Runs are deterministic (seeded initialisation and data order): the losses do not depend on the
machine's load, only the recorded seconds do. Each finished run is appended to a cache
(``~/.cache/llmcourse/scaling_ladder.jsonl``), so an interrupted build resumes where it stopped;
``--fresh`` ignores it. The script writes the JSON atomically and records its
sha256 in data/SHA256SUMS and in the file table of data/README.md, so `llmcourse.datasets.verify_file`
checks it on every load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

from llmcourse import scaling
from llmcourse.datasets import data_dir, load_shakespeare, sha256_file, write_atomic
from llmcourse.ngram import CharVocab

FILE = "scaling_ladder.json"
FIXED_TOKENS = 2**20
VAL_CHARS = 2**16
GIVEN = 3  # the probe shows the model each word's first 3 letters; it must write the rest
ISOFLOP = {  # budget (FLOPs) -> the ladder sizes tried at it, bracketing the optimum
    1e12: ["L1-16", "L2-32", "L2-48", "L3-64", "L3-96"],
    3e12: ["L2-32", "L2-48", "L3-64", "L3-96", "L4-128"],
    1e13: ["L2-48", "L3-64", "L3-96", "L4-128", "L5-160"],
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmcourse" / "scaling_ladder.jsonl"


def non_embedding(name: str, vocab_size: int) -> int:
    n_layer, n_embd = scaling.LADDER[name]
    return scaling.ladder_model(n_layer, n_embd, vocab_size).num_parameters(exclude_embeddings=True)


def update_checksums(digest: str) -> None:
    root = data_dir()
    sums = root / "SHA256SUMS"
    lines = [line for line in sums.read_text().splitlines() if not line.endswith(f"  {FILE}")]
    lines.append(f"{digest}  {FILE}")
    lines.sort(key=lambda line: line.split("  ", 1)[1])
    write_atomic(sums, ("\n".join(lines) + "\n").encode())
    readme = root / "README.md"
    text = readme.read_text()
    row = f"| `{FILE}` | {(root / FILE).stat().st_size:,} | `{digest}` |"
    text = re.sub(rf"^\| `{re.escape(FILE)}` \|.*$\n", "", text, flags=re.M)
    rows = re.findall(r"^\| `[^`]+` \| [\d,]+ \| `[0-9a-f]{64}` \|$", text, flags=re.M)
    table = sorted(rows + [row], key=lambda r: r.split("`")[1])
    text = text.replace("\n".join(rows), "\n".join(table), 1)
    write_atomic(readme, text.encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, print only, write nothing")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    args = parser.parse_args()

    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharVocab.from_text(train_text, unk_token="<unk>")
    train_ids = torch.from_numpy(vocab.encode(train_text))
    val_ids = torch.from_numpy(vocab.encode(valid_text[:VAL_CHARS]))
    starts, lengths = scaling.long_words(valid_text, n=500)
    probe = {"ids": vocab.encode(valid_text), "starts": starts, "lengths": lengths, "context": 96, "given": GIVEN}
    fixed_tokens = 2**15 if args.quick else FIXED_TOKENS
    budgets = {1e10: ISOFLOP[1e12][:3]} if args.quick else ISOFLOP

    done = {}
    if CACHE.is_file() and not args.quick and not args.fresh:
        for line in CACHE.read_text().splitlines():
            r = json.loads(line)
            done[(r["name"], r["tokens"], r["sweep"])] = r

    def run(name: str, tokens: int, sweep: str, budget: float | None = None) -> dict:
        n_layer, n_embd = scaling.LADDER[name]
        steps = max(1, round(tokens / (32 * 128)))
        cached = done.get((name, steps * 32 * 128, sweep))
        if cached is not None:  # runs are deterministic: a finished one need not run again
            print(f"{sweep:<8} {name:<7} from {CACHE}", flush=True)
            return cached
        t0 = time.perf_counter()
        r = scaling.train_ladder_point(n_layer, n_embd, vocab.size, train_ids, val_ids, tokens=tokens, probe=probe)
        r.update(name=name, sweep=sweep, budget=budget)
        if not args.quick:
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            with CACHE.open("a") as f:
                f.write(json.dumps(r) + "\n")
        print(f"{sweep:<8} {name:<7} N={r['non_embedding']:>9,} D={r['tokens']:>11,} C={r['flops']:.2e} "
              f"val {r['val_loss']:.4f}  char acc {r['char_accuracy']:.3f}  exact {r['exact_match']:.3f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        return r

    runs = [run(name, fixed_tokens, "fixed-D") for name in scaling.LADDER]
    for budget, names in budgets.items():
        for name in names:
            tokens = int(budget / (6 * non_embedding(name, vocab.size)))
            runs.append(run(name, tokens, "isoflop", budget))
    if args.quick:
        return 0
    result = {
        "description": "Scaling ladder of LLaMA-style character models on Shakespeare (notebook 06)",
        "command": "python scripts/scaling_ladder.py",
        "data": f"train split; val_loss on the first {VAL_CHARS} characters of the validation split (nats/char)",
        "fixed_tokens": FIXED_TOKENS,
        "budgets": list(ISOFLOP),
        "probe": {"words": len(starts), "letters": "7-12", "context": 96, "given": GIVEN},
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
        "runs": runs,
    }
    path = data_dir() / FILE
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())
    update_checksums(sha256_file(path))
    print(f"wrote {path} ({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
