"""Run notebook 07's experiments and write the results it reads: data/finetuning_sweep.json.

    python scripts/finetuning_sweep.py            # everything, about 45 minutes on 2 CPU cores
    python scripts/finetuning_sweep.py --quick    # a few steps of every kind of run, a smoke test (writes nothing)

The genre task of :mod:`llmcourse.finetuning` (comedy / history / tragedy passages) on the zoo's
``bpe-transformer-shakespeare`` (4 layers, width 128, 1.3M parameters). Every classifier run trains
:data:`STEPS` steps of :data:`BATCH` passages with AdamW at a constant learning rate and is scored on a
fixed balanced sample of :data:`EVAL_N` passages of the **validation** split (later parts of the
training plays: names can give the genre away) and of the **held-out plays** (whole plays no label was
trained on: style must). In order:

1. **baselines**: majority class and bag-of-words logistic regression at every training size;
2. **learning rates**: for each method, two learning rates on :data:`N_TRAIN` passages; the one with
   the better *validation* accuracy is used from then on (the held-out plays never choose anything);
3. **learning curve**: the pretrained base against the same architecture at random initialisation,
   full fine-tuning and a frozen base with a trained head, on 16 ... 1024 labelled passages, 2 seeds;
4. **pooling and what to train**: last token against mean pooling; head only, last block, all;
5. **PEFT**: LoRA ranks 1-16 on the attention projections and on every linear layer, adapters,
   prefix tuning and prompt tuning at three sizes each, with trainable parameters and seconds per step;
6. **a smaller base** (2 layers, width 64, pretrained here on the same text for :data:`SMALL_STEPS` steps)
   with the same methods, for the question of whether prompt and prefix tuning close the gap with scale;
7. **forgetting**: the base adapted as a language model to one play (*Hamlet*) with full fine-tuning
   and with LoRA, three learning rates each; the loss on that play's validation text and on every other
   play's, along the way.

Runs are seeded (the training sample, the initialisation of new parameters, the batch order): the
accuracies do not depend on the machine's load, only the seconds do. Each finished run is kept in a
cache (``~/.cache/llmcourse/finetuning_sweep.json``, rewritten atomically after every run), so an
interrupted sweep resumes; ``--fresh`` starts it anew. The result is written atomically and its sha256
recorded in data/SHA256SUMS and data/README.md, so `llmcourse.datasets.verify_file` checks it on load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from llmcourse import finetuning as ft
from llmcourse import peft, zoo
from llmcourse.datasets import data_dir, record_checksum
from llmcourse.files import write_atomic
from llmcourse.lm import evaluate
from llmcourse.notebook import seed_everything
from llmcourse.training import Trainer, TrainConfig
from llmcourse.transformer import TransformerConfig, TransformerLM

FILE = "finetuning_sweep.json"
MODEL = "bpe-transformer-shakespeare"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmcourse" / FILE
N_TRAIN = 1024                 # labelled passages for the method comparisons
SIZES = (16, 64, 256, 1024)    # the learning curve
SEEDS = (0, 1)
STEPS, BATCH = 80, 32          # every classifier run (a head on cached features: HEAD_STEPS)
HEAD_STEPS = 300
EVAL_N = 450                   # passages per evaluation split, 150 per class
POOLING = "mean"               # for every run but the pooling comparison
#: Two learning rates per method; the better on validation is kept (section 2).
LRS = {
    "head": (3e-3, 1e-2), "last_block": (3e-4, 1e-3), "full": (1e-4, 3e-4), "full-random": (3e-4, 1e-3),
    "lora": (1e-3, 3e-3), "adapter": (1e-3, 3e-3), "prefix": (3e-3, 1e-2), "prompt": (1e-2, 3e-2),
}
#: The PEFT sizes of section 5 (the middle one of each is the one whose learning rate is chosen).
LORA_RANKS = (1, 2, 4, 8, 16)
ADAPTER_SIZES, PREFIX_SIZES, PROMPT_SIZES = (4, 16, 64), (4, 16, 64), (4, 16, 64)
LORA_TARGETS = {"attention": ("q", "kv"), "all": ("q", "kv", "proj", "gate", "up", "down")}
#: The smaller base of section 6: same tokenizer and recipe as the zoo model, a quarter of the width.
SMALL = dict(n_layer=2, n_head=4, n_embd=64, d_ff=256)
SMALL_STEPS = 1200
#: Section 7.
FORGET_PLAY, FORGET_STEPS, FORGET_EVERY, FORGET_BATCH = "hamlet", 120, 20, 16
#: Three learning rates each: the trade-off between learning and forgetting moves with the rate.
FORGET_LRS = {"full": (1e-4, 3e-4, 1e-3), "lora": (1e-3, 3e-3, 1e-2)}
FORGET_REST_TOKENS = 32_768


def spec_name(spec: dict) -> str:
    """A short readable name: ``lora-attention-r8``, ``prefix-16``, ``full``."""
    m = spec["method"]
    if m == "lora":
        return f"lora-{spec['targets']}-r{spec['r']}"
    if m in ("adapter", "prefix", "prompt"):
        return f"{m}-{spec['size']}"
    return m


def attach(clf: ft.SequenceClassifier, spec: dict, seed: int) -> int:
    """Make ``clf`` trainable the way ``spec`` says; returns its trainable parameters (head included)."""
    m = spec["method"]
    if m in ft.TRAINABLE:
        return ft.set_trainable(clf, m)
    ft.set_trainable(clf, "head")
    if m == "lora":
        torch.manual_seed(seed)  # A's random start
        peft.apply_lora(clf.base, spec["r"], alpha=2 * spec["r"], targets=LORA_TARGETS[spec["targets"]])
    elif m == "adapter":
        torch.manual_seed(seed)  # the down-projections' random start
        peft.add_adapters(clf.base, spec["size"])
    elif m == "prefix":
        peft.add_prefix(clf.base, spec["size"], seed=seed)
    elif m == "prompt":
        peft.add_prompt(clf.base, spec["size"], seed=seed)
    else:
        raise ValueError(f"unknown method {m!r}")
    return peft.trainable_parameters(clf)


def fit_context(ids: torch.Tensor, lengths: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut right-padded sequences to a shorter context (prompt tuning takes the first positions)."""
    return ids[:, :context], lengths.clamp(max=context)


class Task:
    """The splits, encoded once, and the base models."""

    def __init__(self, quick: bool):
        self.card = zoo.card(MODEL)
        self.tokenizer = zoo.tokenizer(self.card)
        self.train = ft.genre_passages("train")
        eval_n = 30 if quick else EVAL_N
        self.evals = {s: ft.genre_passages(s).sample(eval_n) for s in ("validation", "heldout")}
        self.encoded = {s: ft.encode_passages(self.tokenizer, d.texts, 128) for s, d in self.evals.items()}
        self.bases = {"zoo": lambda: zoo.load(MODEL)[0]}

    def base(self, init: str, which: str, seed: int) -> TransformerLM:
        if init == "pretrained":
            return self.bases[which]()
        torch.manual_seed(seed)
        config = self.card["config"] if which == "zoo" else self.small_config.as_dict()
        return TransformerLM(TransformerConfig.from_dict(config))

    def run(self, spec: dict, *, n: int, lr: float, seed: int = 0, init: str = "pretrained", which: str = "zoo",
            pooling: str = POOLING, steps: int = STEPS) -> dict:
        data = self.train.sample(n, seed=seed)
        ids, lengths = ft.encode_passages(self.tokenizer, data.texts, 128)
        clf = ft.SequenceClassifier(self.base(init, which, seed), len(ft.CLASSES), pooling)
        params = attach(clf, spec, seed)
        context = clf.base.context_size
        ids, lengths = fit_context(ids, lengths, context)
        if spec["method"] == "head":
            steps = HEAD_STEPS if steps == STEPS else steps
        history = ft.train_classifier(clf, ids, lengths, data.labels, steps=steps, batch_size=BATCH, lr=lr,
                                      seed=seed, show_progress=False)
        row = {"name": spec_name(spec), **spec, "n": n, "seed": seed, "init": init, "base": which,
               "pooling": pooling, "lr": lr, "steps": steps, "params": params,
               "final_loss": float(np.mean(history.loss[-10:])),
               "s_per_step": round(history.seconds_per_step, 4)}
        for split, (e_ids, e_len) in self.encoded.items():
            e_ids, e_len = fit_context(e_ids, e_len, context)
            row[split] = ft.accuracy(clf, e_ids, e_len, self.evals[split].labels)
        return row


def pretrain_small(task: Task, steps: int) -> dict:
    """Pretrain the smaller base on the training text with the zoo's recipe; returns its record."""
    from llmcourse.datasets import load_shakespeare

    big = task.card["config"]
    config = TransformerConfig.from_dict({**big, **SMALL})
    train_ids = torch.tensor(task.tokenizer.encode(load_shakespeare("train")))
    val_ids = torch.tensor(task.tokenizer.encode(load_shakespeare("validation")))
    seed_everything(0)
    model = TransformerLM(config)
    recipe = {k: v for k, v in task.card["training"].items() if k in TrainConfig.__dataclass_fields__}
    recipe.update(steps=steps, eval_every=max(1, steps // 4))
    start = time.perf_counter()
    Trainer(model, train_ids, val_ids, TrainConfig(**recipe), show_progress=False).fit()
    seconds = time.perf_counter() - start
    zoo_model = zoo.load(MODEL)[0]
    return {"config": config.as_dict(), "parameters": model.num_parameters(), "steps": steps,
            "train_seconds": round(seconds, 1), "state": {k: v.clone() for k, v in model.state_dict().items()},
            "val_loss": evaluate(model, val_ids)["loss_nats"], "zoo_val_loss": evaluate(zoo_model, val_ids)["loss_nats"],
            "zoo_parameters": zoo_model.num_parameters()}


def forgetting(task: Task, method: str, lr: float, quick: bool) -> dict:
    """Adapt the zoo model as a language model to one play; the losses on it and on the rest, along the way."""
    texts = ft.adaptation_texts(task.tokenizer, FORGET_PLAY, FORGET_REST_TOKENS)
    train_ids, own_val, rest_val = texts["train"], texts["play"], texts["rest"]
    model = zoo.load(MODEL)[0]
    if method == "lora":
        torch.manual_seed(0)
        peft.apply_lora(model, 8, alpha=16, targets=LORA_TARGETS["all"])
    steps = 8 if quick else FORGET_STEPS
    every = 4 if quick else FORGET_EVERY
    config = TrainConfig(steps=steps, batch_size=FORGET_BATCH, seq_len=128, lr=lr,
                         schedule="constant", weight_decay=0.0, eval_every=steps, eval_tokens=4096, seed=0)
    trainer = Trainer(model, train_ids, own_val, config, show_progress=False)
    curve = {"step": [], "play": [], "rest": []}

    def record():
        curve["step"].append(trainer.step)
        curve["play"].append(evaluate(model, own_val, batch_size=8)["loss_nats"])
        curve["rest"].append(evaluate(model, rest_val)["loss_nats"])

    record()
    while not trainer.done:
        trainer.fit(until_step=trainer.step + every)
        record()
    return {"method": method, "lr": lr, "params": peft.trainable_parameters(model),
            "s_per_step": round(trainer.train_time / max(trainer.step, 1), 4), **curve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps of every kind of run; writes nothing")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = args.quick
    steps = 3 if quick else STEPS
    done: dict[str, dict] = {}
    if not quick and not args.fresh and CACHE.is_file():
        done = json.loads(CACHE.read_text())
    task = Task(quick)
    t_start = time.perf_counter()

    def cached(key: str, make):
        if key in done:
            return done[key]
        t0 = time.perf_counter()
        row = make()
        if not quick:
            done[key] = row
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(CACHE, json.dumps(done).encode())
        shown = {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()
                 if not isinstance(v, (list, dict))}
        print(f"[{time.perf_counter() - t_start:6.0f} s] {key} ({time.perf_counter() - t0:.0f} s): {shown}",
              flush=True)
        return row

    def run(spec: dict, **kw) -> dict:
        kw = {"seed": 0, "init": "pretrained", "which": "zoo", "pooling": POOLING, "steps": steps, **kw}
        key = json.dumps([spec, sorted(kw.items())])  # every setting spelled out: one run, one key
        return cached(key, lambda: task.run(spec, **kw))

    # 1. baselines
    baselines = []
    for n in SIZES + (len(task.train),):
        train = task.train.sample(n)
        row = {"n": n}
        for split, data in task.evals.items():
            row[f"majority_{split}"] = ft.majority_baseline(train.labels, data.labels)
            row[f"bow_{split}"] = ft.bag_of_words_baseline(train, data)
        baselines.append(row)
        print("baseline", row, flush=True)

    # 2. learning rates, chosen on validation
    middle = {"lora": {"method": "lora", "targets": "attention", "r": 8},
              "adapter": {"method": "adapter", "size": 16}, "prefix": {"method": "prefix", "size": 16},
              "prompt": {"method": "prompt", "size": 16}}
    specs = {m: {"method": m} for m in ("head", "last_block", "full")} | middle
    lr_rows, best = [], {}
    for key, lrs in LRS.items():
        method = key.removesuffix("-random")
        init = "random" if key.endswith("-random") else "pretrained"
        rows = [run(specs[method], n=N_TRAIN, lr=lr, init=init) for lr in lrs]
        lr_rows += rows
        best[key] = max(rows, key=lambda r: (r["validation"], -r["lr"]))["lr"]
    print("chosen learning rates", best, flush=True)

    # 3. the learning curve: pretrained against random, full fine-tuning and a head on a frozen base
    curve = [run(specs[method], n=n, lr=best[method if init == "pretrained" else f"{method}-random"]
                 if method == "full" else best["head"], seed=seed, init=init)
             for method in ("full", "head") for init in ("pretrained", "random") for n in SIZES for seed in SEEDS]

    # 4. pooling and what to train
    pooling = [run(specs[m], n=N_TRAIN, lr=best[m], pooling=p) for m in ("head", "last_block", "full")
               for p in ft.POOLINGS]

    # 5. PEFT
    methods = [run(specs[m], n=N_TRAIN, lr=best[m]) for m in ("head", "last_block", "full")]
    methods += [run({"method": "lora", "targets": t, "r": r}, n=N_TRAIN, lr=best["lora"])
                for t in LORA_TARGETS for r in LORA_RANKS]
    for m, sizes in (("adapter", ADAPTER_SIZES), ("prefix", PREFIX_SIZES), ("prompt", PROMPT_SIZES)):
        methods += [run({"method": m, "size": s}, n=N_TRAIN, lr=best[m]) for s in sizes]

    # 6. the smaller base
    small_state: dict = {}

    def make_small() -> dict:
        record = pretrain_small(task, 20 if quick else SMALL_STEPS)
        small_state.update(record.pop("state"))
        return record

    small = cached("small-base", make_small)

    def small_base() -> TransformerLM:
        if not small_state:  # a resumed sweep: pretraining is seeded, so train it again the same way
            small_state.update(pretrain_small(task, 20 if quick else SMALL_STEPS)["state"])
        model = TransformerLM(TransformerConfig.from_dict(small["config"]))
        model.load_state_dict(small_state)
        return model

    task.small_config = TransformerConfig.from_dict(small["config"])
    task.bases["small"] = small_base
    small_specs = [specs["head"], specs["full"], middle["lora"], middle["adapter"], middle["prefix"], middle["prompt"]]
    small_runs = [run(s, n=N_TRAIN, lr=best[s["method"]], which="small") for s in small_specs]
    small_runs += [run(specs["full"], n=N_TRAIN, lr=best["full-random"], which="small", init="random")]

    # 7. forgetting
    forget = [cached(f"forgetting-{m}-{lr:g}", lambda m=m, lr=lr: forgetting(task, m, lr, quick))
              for m, lrs in FORGET_LRS.items() for lr in lrs]

    if quick:
        print(f"quick sweep done in {time.perf_counter() - t_start:.0f} s; nothing written")
        return 0
    result = {
        "description": "Notebook 07's experiments: genre classification with the zoo's BPE Transformer, "
                       "fine-tuned in full and with PEFT; forgetting when adapted to one play",
        "command": "python scripts/finetuning_sweep.py",
        "model": MODEL,
        "settings": {"n_train": N_TRAIN, "sizes": list(SIZES), "seeds": list(SEEDS), "steps": STEPS,
                     "head_steps": HEAD_STEPS, "batch_size": BATCH, "eval_n": EVAL_N, "pooling": POOLING,
                     "lora_alpha": "2 * r", "learning_rates_tried": {k: list(v) for k, v in LRS.items()},
                     "learning_rates": best, "lora_targets": {k: list(v) for k, v in LORA_TARGETS.items()}},
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
        "baselines": baselines,
        "learning_rates": lr_rows,
        "learning_curve": curve,
        "pooling": pooling,
        "methods": methods,
        "small_base": {**small, "runs": small_runs},
        "forgetting": {"play": FORGET_PLAY, "steps": FORGET_STEPS, "batch_size": FORGET_BATCH, "seq_len": 128,
                       "rest_tokens": FORGET_REST_TOKENS, "runs": forget},
    }
    path = data_dir() / FILE
    write_atomic(path, (json.dumps(result, indent=1) + "\n").encode())
    record_checksum(FILE)
    print(f"wrote {path} in {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
