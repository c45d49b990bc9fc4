"""Run notebook 12's longer experiments and write the results it reads: data/cot_sweep.json.

    python scripts/cot_sweep.py            # everything, about 12 minutes on 2 CPU cores
    python scripts/cot_sweep.py --quick    # a few steps of each kind of run, a smoke test (writes nothing)

Three experiments (``llmcourse.reasoning``), every model the same small Transformer
(:func:`~llmcourse.reasoning.arithmetic_model`: 3 layers, width 128) trained by the course trainer:

- **formats**: one model per answer format (direct, reversed, scratchpad) on addition of 1- to 3-digit
  numbers, and direct and scratchpad on multiplication by one digit, :data:`FORMAT_STEPS` steps each;
  measured at :data:`CHECKPOINTS` steps (greedy exact match on :data:`N_TEST` problems of each number of
  digits from 1 to 5, so 4 and 5 are longer than any in training; by number of carries for 3 digits), with
  the examples, tokens and seconds of training so far;
- **mixture**: notebook 12's live model, :data:`MIX` (one model on sequences of problems in the direct or the
  scratchpad format, some led by a trigger), for :data:`MIX_SEEDS`: accuracy with each prompt (the
  trigger for either format, one demonstration in either format, nothing), by digits, and the first three
  3-digit prompts of each with the model's completions;
- **self-consistency**: on each mixture model, :data:`SC_SAMPLES` sampled chains per 3-digit problem at each
  temperature of :data:`SC_TEMPERATURES`, and the majority vote's accuracy over the first n of them.

The result is written atomically with its sha256 in data/SHA256SUMS and data/README.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from llmcourse import reasoning as rs
from llmcourse.datasets import write_results

FILE = "cot_sweep.json"
DIGITS, TEST_DIGITS, N_TEST, N_TRAIN = (1, 3), (1, 2, 3, 4, 5), 300, 40_000
FORMAT_STEPS, FORMAT_BATCH = 1200, 64
CHECKPOINTS = (100, 200, 400, 600, 800, 1000, 1200)
FORMAT_RUNS = {"+ direct": ("+", "direct"), "+ reversed": ("+", "reversed"), "+ scratchpad": ("+", "scratchpad"),
               "* direct": ("*", "direct"), "* scratchpad": ("*", "scratchpad")}
#: The notebook's live model: its data, size and training.
MIX = dict(n=N_TRAIN, digits=(2, 3), max_shots=1, steps=800, batch_size=32, lr=3e-3)
MIX_DIGITS = (2, 3, 4)
MIX_SEEDS = (0, 1, 2)
SC_SAMPLES, SC_TEMPERATURES, SC_VOTES = 20, (0.5, 1.0), (1, 3, 5, 10, 20)


def log(*args) -> None:
    print(*args, flush=True)


def mixture_model(seed: int, steps: int | None = None):
    """The notebook's live model for ``seed``: data, model and trainer as notebook 12 builds them."""
    train = rs.mixture_examples(MIX["n"], MIX["digits"], max_shots=MIX["max_shots"], seed=100 + seed)
    val = rs.mixture_examples(200, MIX["digits"], max_shots=MIX["max_shots"], seed=200 + seed)
    model = rs.arithmetic_model(seed=seed)
    trainer = rs.arithmetic_trainer(model, train, val, steps=steps or MIX["steps"], batch_size=MIX["batch_size"],
                                    lr=MIX["lr"], seed=seed)
    return model, trainer


def prompted(model, items, demos, how: dict, shown: list | None = None) -> list[bool]:
    """Right or wrong for each item asked one way of ``rs.PROMPTS``; ``shown`` collects the first three
    (prompt, completion) pairs."""
    texts = rs.prompt_texts(items, demos, **how)
    completions = rs.solve(model, texts)
    if shown is not None:
        shown += [[t, c] for t, c in zip(texts[:3], completions[:3])]
    return [rs.parse(c, how["fmt"]) == p.answer for c, p in zip(completions, items)]


def measure_formats(model, op: str, fmt: str) -> dict:
    out = {}
    for d in TEST_DIGITS:
        items = rs.problems(N_TEST, d, op=op, seed=3)
        out[str(d)] = sum(rs.accuracy(model, items, fmt)) / N_TEST
    items = rs.problems(N_TEST, 3, op=op, seed=3)
    by_carry = rs.accuracy_by(items, rs.accuracy(model, items, fmt), "carries")
    return {"by_digits": out, "by_carries_3_digits": {str(k): v for k, v in by_carry.items()}}


def run_format(name: str, steps: int) -> dict:
    op, fmt = FORMAT_RUNS[name]
    train = rs.training_examples(rs.problems(N_TRAIN, DIGITS, op=op, seed=1), fmt)
    val = rs.training_examples(rs.problems(200, DIGITS, op=op, seed=2), fmt)
    model = rs.arithmetic_model(seed=0)
    trainer = rs.arithmetic_trainer(model, train, val, steps=steps, batch_size=FORMAT_BATCH, eval_every=100)
    rows = []
    for k in [c for c in CHECKPOINTS if c <= steps] or [steps]:
        trainer.fit(until_step=k)
        row = {"step": k, "examples": k * FORMAT_BATCH, "tokens": trainer.history.tokens_seen,
               "seconds": trainer.history.train_seconds, **measure_formats(model, op, fmt)}
        rows.append(row)
        log(f"  {name} step {k}: {row['seconds']:.0f} s, by digits {row['by_digits']}")
    tokens_per_example = sum(len(x) for x in train.inputs) / len(train)
    return {"op": op, "format": fmt, "tokens_per_example": tokens_per_example, "checkpoints": rows}


def run_mixture(seed: int, steps: int | None) -> dict:
    model, trainer = mixture_model(seed, steps)
    trainer.fit()
    table, examples = {}, {}
    for name, how in rs.PROMPTS.items():
        table[name], examples[name] = {}, []
        for d in MIX_DIGITS:
            items, demos = rs.problems(N_TEST, d, seed=3), rs.problems(N_TEST, d, seed=4)
            shown = examples[name] if d == 3 else None
            table[name][str(d)] = sum(prompted(model, items, demos, how, shown)) / N_TEST
    items = rs.problems(N_TEST, 3, seed=5)
    greedy = sum(rs.accuracy(model, items, "scratchpad", trigger="scratchpad")) / N_TEST
    sc = {}
    for t in SC_TEMPERATURES:
        answers = rs.self_consistency(model, items, samples=SC_SAMPLES, temperature=t, seed=seed, trigger="scratchpad")
        sc[str(t)] = {str(n): sum(rs.majority_vote(a[:n]) == p.answer for a, p in zip(answers, items)) / N_TEST
                      for n in SC_VOTES}
        sc[str(t)]["malformed"] = sum(x is None for a in answers for x in a) / (N_TEST * SC_SAMPLES)
        sc[str(t)]["right_per_problem"] = [sum(x == p.answer for x in a) for a, p in zip(answers, items)]
    log(f"  mixture seed {seed}: {trainer.history.train_seconds:.0f} s; step-by-step {table['step-by-step trigger']}, "
        f"direct {table['direct trigger']}; greedy {greedy:.3f}; self-consistency {sc}")
    return {"seed": seed, "seconds": trainer.history.train_seconds, "val_loss": trainer.history.val_loss[-1],
            "prompts": table, "examples_3_digits": examples, "greedy_3_digits": greedy, "self_consistency": sc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few steps, writes nothing")
    parser.add_argument("--mixture-only", action="store_true",
                        help="rerun the mixture seeds only, keeping the committed format runs")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t_start = time.time()
    steps = 20 if args.quick else FORMAT_STEPS
    formats = {}
    if args.mixture_only:
        formats = rs.load_sweep()["formats"]
    for name in [] if args.mixture_only else FORMAT_RUNS:
        log(name)
        formats[name] = run_format(name, steps)
    mixture = [run_mixture(s, 20 if args.quick else None) for s in (MIX_SEEDS[:1] if args.quick else MIX_SEEDS)]
    if args.quick:
        log(f"done ({time.time() - t_start:.0f} s); nothing written")
        return
    out = {"digits_trained": list(DIGITS), "test_digits": list(TEST_DIGITS), "n_test": N_TEST, "n_train": N_TRAIN,
           "format_steps": FORMAT_STEPS, "format_batch": FORMAT_BATCH, "formats": formats, "mix": MIX,
           "prompts": list(rs.PROMPTS), "mix_digits": list(MIX_DIGITS), "mixture": mixture, "sc_samples": SC_SAMPLES,
           "sc_temperatures": list(SC_TEMPERATURES), "sc_votes": list(SC_VOTES), "seconds": time.time() - t_start}
    log(f"wrote {write_results(FILE, out)}")


if __name__ == "__main__":
    main()
