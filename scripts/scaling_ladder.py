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
machine's load, only the recorded seconds do. Each finished run is added to a cache
(``~/.cache/llmcourse/scaling_ladder.jsonl``, one JSON line per run, the whole file rewritten atomically
after every run), so an interrupted build resumes where it stopped; ``--fresh`` ignores the cache and
starts it anew. A damaged last line (left by a run killed while an older version of this script appended
to the cache) is dropped with a warning and that point trained again; a damaged line before it is an error
that names the file and line (:func:`read_cache`). The script writes the JSON atomically and records its
sha256 in data/SHA256SUMS and in the file table of data/README.md, so `llmcourse.datasets.verify_file`
checks it on every load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from llmcourse import scaling
from llmcourse.datasets import data_dir, record_checksum
from llmcourse.files import write_atomic

FILE = "scaling_ladder.json"
FIXED_TOKENS = 2**20
ISOFLOP = {  # budget (FLOPs) -> the ladder sizes tried at it, bracketing the optimum
    1e12: ["L1-16", "L2-32", "L2-48", "L3-64", "L3-96"],
    3e12: ["L2-32", "L2-48", "L3-64", "L3-96", "L4-128"],
    1e13: ["L2-48", "L3-64", "L3-96", "L4-128", "L5-160"],
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmcourse" / "scaling_ladder.jsonl"


class CacheFileError(ValueError):
    """The cache of finished runs is damaged before its last line; the message names the file and line."""


def _entry(line: bytes) -> tuple[tuple, dict] | str:
    """``(key, run)`` from one line of the cache, or why the line is damaged."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"not valid JSON: {e}"
    if (not isinstance(entry, dict) or not isinstance(entry.get("key"), list) or len(entry["key"]) != 3
            or not isinstance(entry.get("run"), dict)):
        return 'not an object {"key": [name, sweep, tokens or budget], "run": {...}}'
    return tuple(entry["key"]), entry["run"]


def read_cache(path: Path) -> dict[tuple, dict]:
    """The finished runs in the cache file ``path``: ``{(name, sweep, tokens or budget): run}``.

    A missing file is an empty cache; blank lines are skipped. A damaged *last* line is what a run
    killed while writing leaves behind: it is dropped with a warning naming the file, and that point
    is trained again. A damaged line before the last is not a crash's doing and raises
    :class:`CacheFileError` naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    lines = [(n, line) for n, line in enumerate(path.read_bytes().split(b"\n"), start=1) if line.strip()]
    done: dict[tuple, dict] = {}
    for k, (n, line) in enumerate(lines):
        parsed = _entry(line)
        if isinstance(parsed, str):
            if k < len(lines) - 1:
                raise CacheFileError(f"{path}, line {n}: damaged entry ({parsed}). Only the last line can be "
                                     "half-written by a killed run; delete this line or the file, or run with "
                                     "--fresh, to train those points again")
            print(f"warning: {path}, line {n}: damaged last entry ({parsed}), probably a run killed while "
                  "writing it; dropping it, that point will be trained again", file=sys.stderr, flush=True)
            break
        done[parsed[0]] = parsed[1]
    return done


def write_cache(path: Path, done: dict[tuple, dict]) -> None:
    """Write every run of ``done`` to the cache file ``path``, atomically: a reader (or a later run) sees
    the old cache or the new one, never half a line."""
    lines = [json.dumps({"key": list(key), "run": run}) + "\n" for key, run in done.items()]
    write_atomic(Path(path), "".join(lines).encode("utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, print only, write nothing")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    args = parser.parse_args()

    vocab, train_ids, val_ids, probe = scaling.ladder_data()
    fixed_tokens = 2**15 if args.quick else FIXED_TOKENS
    budgets = {1e10: ISOFLOP[1e12][:3]} if args.quick else ISOFLOP

    # (name, sweep, tokens or budget) -> the run; --fresh starts the cache anew
    done = {} if args.quick or args.fresh else read_cache(CACHE)

    def run(name: str, sweep: str, *, tokens: int | None = None, budget: float | None = None) -> dict:
        n_layer, n_embd = scaling.LADDER[name]
        key = (name, sweep, tokens if budget is None else budget)
        if key in done:  # runs are deterministic: a finished one need not run again
            print(f"{sweep:<8} {name:<7} from {CACHE}", flush=True)
            return done[key]
        t0 = time.perf_counter()
        r = scaling.train_ladder_point(n_layer, n_embd, vocab.size, train_ids, val_ids, tokens=tokens,
                                       budget=budget, probe=probe)
        r.update(name=name, sweep=sweep, budget=budget)
        if not args.quick:
            done[key] = r
            write_cache(CACHE, done)
        print(f"{sweep:<8} {name:<7} N={r['non_embedding']:>9,} D={r['tokens']:>11,} C={r['flops']:.2e} "
              f"val {r['val_loss']:.4f}  char acc {r['char_accuracy']:.3f}  exact {r['exact_match']:.3f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        return r

    runs = [run(name, "fixed-D", tokens=fixed_tokens) for name in scaling.LADDER]
    runs += [run(name, "isoflop", budget=budget) for budget, names in budgets.items() for name in names]
    if args.quick:
        return 0
    result = {
        "description": "Scaling ladder of LLaMA-style character models on Shakespeare (notebook 06)",
        "command": "python scripts/scaling_ladder.py",
        "data": f"train split; val_loss on the first {scaling.LADDER_VAL_CHARS} characters of the validation "
                "split (nats/char)",
        "fixed_tokens": FIXED_TOKENS,
        "budgets": list(ISOFLOP),
        "probe": {"words": len(probe["starts"]), "letters": "7-12", "context": probe["context"],
                  "given": probe["given"]},
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
        "runs": runs,
    }
    path = data_dir() / FILE
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())
    record_checksum(FILE)
    print(f"wrote {path} ({len(runs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
