"""Run notebook 11's seeds and write the results it reads: data/icl_sweep.json.

    python scripts/icl_sweep.py            # everything, about 3 minutes on 2 CPU cores
    python scripts/icl_sweep.py --quick    # 2 seeds of a few steps, a smoke test (writes nothing)

Notebook 11 trains one small model live; one seed can mislead (when the phase change comes, how strong a
demonstration effect is), so this script trains :data:`SEEDS` of each kind the notebook shows, with the
notebook's settings (``llmcourse.icl``: periods 4-16 repeated to 64 tokens, AdamW at 1e-3, batch 32):

- a two-layer model (:func:`llmcourse.icl.icl_model`) for :data:`STEPS` steps, measured every
  :data:`EVAL_EVERY`: the training history, then the final head scores, the demonstration effects on the
  few-shot lookup task (:data:`llmcourse.icl.DEMONSTRATION_EFFECTS`) and ablations (the repeat loss and
  4-shot lookup accuracy with layer 2's heads, the previous-token heads, the other layer-1 heads, or the
  strongest induction head alone zeroed);
- a one-layer model, the same way.

The result is written atomically with its sha256 in data/SHA256SUMS and data/README.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from llmcourse import icl
from llmcourse.datasets import write_results

FILE = "icl_sweep.json"
SEEDS = (0, 1, 2, 3, 4)
STEPS, EVAL_EVERY, N_EVAL = 600, 25, 512


def log(*args) -> None:
    print(*args, flush=True)


def rounded(x):
    if isinstance(x, float):
        return round(x, 5)
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def ablations(model) -> dict:
    groups = icl.ablation_groups(icl.head_scores(model, icl.VOCAB))
    out = {}
    for name, heads in groups.items():
        with icl.ablate_heads(model, heads):
            out[name] = {"heads": [list(h) for h in heads], "repeat_loss": icl.repeat_loss(model, icl.VOCAB),
                         "lookup_4_shots": icl.lookup_accuracy(model, icl.VOCAB, n=N_EVAL, shots=4)["right"]}
    return out


def run(n_layer: int, seed: int, steps: int) -> dict:
    model = icl.icl_model(n_layer, seed=seed)
    t0 = time.time()
    history = icl.train_icl(model, icl.VOCAB, steps=steps, eval_every=EVAL_EVERY, seed=seed)
    seconds = time.time() - t0
    scores = icl.head_scores(model, icl.VOCAB)
    result = {"seconds": seconds, "history": history, "phase_change_step": icl.phase_change_step(history),
              "head_scores": {k: v.tolist() for k, v in scores.items()},
              "demonstrations": icl.demonstration_effects(model, icl.VOCAB, n=N_EVAL)}
    if n_layer == 2:
        result["ablations"] = ablations(model)
    last = history[-1]
    log(f"{n_layer} layer(s), seed {seed}: {seconds:.0f} s, phase change at {result['phase_change_step']}, "
        f"repeat loss {last['repeat_loss']:.2f}, period 20 {last['repeat_loss_20']:.2f}, prefix matching "
        f"{last['prefix_matching']:.2f}, 4 shots {result['demonstrations']['4 shots']['right']:.3f}")
    return rounded(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 seeds of 50 steps, writes nothing")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t_start = time.time()
    seeds, steps = (SEEDS[:2], 50) if args.quick else (SEEDS, STEPS)
    runs = {f"{n} layer{'s' if n > 1 else ''}": [run(n, s, steps) for s in seeds] for n in (2, 1)}
    if args.quick:
        log(f"done ({time.time() - t_start:.0f} s); nothing written")
        return
    out = {"vocab_size": icl.VOCAB, "seeds": list(SEEDS), "steps": STEPS, "eval_every": EVAL_EVERY,
           "n_eval": N_EVAL, "previous_token_threshold": icl.PREVIOUS_TOKEN,
           "settings": "icl.icl_model(n_layer, seed=seed); icl.train_icl(model, 64, steps=600, seed=seed) "
                       "(periods 4-16, batch 32, lr 1e-3)",
           "runs": runs, "seconds": time.time() - t_start}
    log(f"wrote {write_results(FILE, out)}")


if __name__ == "__main__":
    main()
