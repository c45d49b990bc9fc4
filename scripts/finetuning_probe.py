"""Measure the genre task of notebook 07: baselines, pretrained against random, pooling, what to train.

    python scripts/finetuning_probe.py tokens       # passage sizes in characters and BPE tokens, class counts
    python scripts/finetuning_probe.py baselines    # majority and bag of words, every training size
    python scripts/finetuning_probe.py sizes        # zoo BPE model against the same architecture at random
    python scripts/finetuning_probe.py pooling      # last-token against mean pooling
    python scripts/finetuning_probe.py trainable    # head only, last block, full
    python scripts/finetuning_probe.py timing       # seconds per training step and per evaluated passage

Every experiment prints a table; nothing is written (the committed results come later). Accuracies are
on a fixed balanced sample (``--eval-n``) of the validation split (later parts of the training plays)
and of the held-out plays, and on "unseen": every passage of the held-out plays' own validation part
(not balanced), the only text of the task the zoo model did not read in pretraining. Runs are seeded
(``--seed``, or ``--seeds 0 1 2`` to repeat each run: the seed picks the training sample, the random
initialisation and the batch order): the accuracies do not depend on the machine's load, only the
seconds do. ``--threads`` sets torch's threads (2 by default, the course's laptop).
"""

from __future__ import annotations

import argparse
import time

import torch

from llmcourse import finetuning as ft
from llmcourse import zoo
from llmcourse.datasets import shakespeare_plays
from llmcourse.transformer import TransformerConfig, TransformerLM

MODEL = "bpe-transformer-shakespeare"


def base_model(init: str, seed: int) -> TransformerLM:
    """The zoo's pretrained model, or the same architecture freshly initialised with ``seed``."""
    if init == "pretrained":
        return zoo.load(MODEL)[0]
    torch.manual_seed(seed)
    return TransformerLM(TransformerConfig.from_dict(zoo.card(MODEL)["config"]))


class Task:
    """The splits, encoded once."""

    def __init__(self, args):
        self.tokenizer = zoo.tokenizer(zoo.card(MODEL))
        kw = dict(max_chars=args.max_chars, speakers=not args.no_speakers)
        self.train = ft.genre_passages("train", **kw)
        self.evals = {s: ft.genre_passages(s, **kw).sample(min(args.eval_n, len(ft.genre_passages(s, **kw))))
                      for s in ("validation", "heldout")}
        # The zoo model was pretrained on the train part of every play, held-out ones included (no labels):
        # "unseen" is every passage of the held-out plays' validation part, text it never read.
        plays = {p.slug: p for p in shakespeare_plays()}
        held = ft.genre_passages("heldout", balanced=False, **kw)
        keep = [i for i, (t, slug) in enumerate(zip(held.texts, held.plays)) if t in plays[slug].validation_text]
        self.evals["unseen"] = ft.LabelledPassages(tuple(held.texts[i] for i in keep),
                                                   tuple(held.labels[i] for i in keep),
                                                   tuple(held.plays[i] for i in keep), held.class_names)
        self.encoded = {s: ft.encode_passages(self.tokenizer, d.texts, args.max_len) for s, d in self.evals.items()}

    def run(self, n: int, *, init: str, pooling: str, trainable: str, args) -> dict:
        data = self.train.sample(n, seed=args.seed)
        ids, lengths = ft.encode_passages(self.tokenizer, data.texts, args.max_len)
        clf = ft.SequenceClassifier(base_model(init, args.seed), len(ft.CLASSES), pooling)
        n_trainable = ft.set_trainable(clf, trainable)
        history = ft.train_classifier(clf, ids, lengths, data.labels, steps=args.steps, batch_size=args.batch_size,
                                      lr=args.lr, seed=args.seed, weight_decay=args.weight_decay,
                                      show_progress=False)
        start = time.perf_counter()
        row = {"n": n, "seed": args.seed, "init": init, "pooling": pooling, "trainable": trainable,
               "params": n_trainable,
               "train_acc": ft.accuracy(clf, ids, lengths, data.labels),
               "final_loss": sum(history.loss[-10:]) / len(history.loss[-10:]),
               "s_per_step": history.seconds_per_step}
        for split, (e_ids, e_len) in self.encoded.items():
            row[split] = ft.accuracy(clf, e_ids, e_len, self.evals[split].labels)
        row["eval_s"] = time.perf_counter() - start
        return row


def print_table(rows: list[dict], columns: list[str]) -> None:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(cell(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(cell(r[c]).rjust(w) for c, w in zip(columns, widths)), flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["tokens", "baselines", "sizes", "pooling", "trainable", "timing"])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    p.add_argument("--inits", nargs="+", default=["pretrained", "random"], choices=["pretrained", "random"])
    p.add_argument("--n", type=int, default=256, help="training passages (pooling, trainable)")
    p.add_argument("--pooling", default="last", choices=ft.POOLINGS, help="in sizes and trainable")
    p.add_argument("--trainable", default="full", choices=ft.TRAINABLE, help="in sizes and pooling")
    p.add_argument("--poolings", nargs="+", default=list(ft.POOLINGS), choices=ft.POOLINGS, help="in pooling")
    p.add_argument("--trainables", nargs="+", default=list(ft.TRAINABLE), choices=ft.TRAINABLE,
                   help="in trainable")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="repeat every run with these seeds")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-chars", type=int, default=256)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--no-speakers", action="store_true", help="drop the speaker lines from the passages")
    p.add_argument("--eval-n", type=int, default=450, help="passages per evaluation split (balanced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{args.experiment}: steps={args.steps} batch={args.batch_size} lr={args.lr} wd={args.weight_decay} "
          f"max_chars={args.max_chars} speakers={not args.no_speakers} seed={args.seed} threads={args.threads}")

    if args.experiment == "tokens":
        tok = zoo.tokenizer(zoo.card(MODEL))
        rows = []
        for split in ft.SPLITS:
            for balanced in (False, True):
                d = ft.genre_passages(split, max_chars=args.max_chars, balanced=balanced,
                                      speakers=not args.no_speakers)
                n_tok = [len(tok.encode(t)) for t in d.texts]
                rows.append({"split": split, "balanced": balanced, "passages": len(d), "plays": len(set(d.plays)),
                             **d.class_counts(), "chars": sum(map(len, d.texts)) / len(d),
                             "tokens": sum(n_tok) / len(d), "max_tokens": max(n_tok),
                             f">{args.max_len}": sum(n > args.max_len for n in n_tok)})
        print_table(rows, list(rows[0]))
        return

    if args.experiment == "timing":
        tok = zoo.tokenizer(zoo.card(MODEL))
        data = ft.genre_passages("train").sample(256)
        ids, lengths = ft.encode_passages(tok, data.texts, args.max_len)
        rows = []
        for trainable in ft.TRAINABLE:
            for pooling in ft.POOLINGS:
                clf = ft.SequenceClassifier(base_model("pretrained", 0), len(ft.CLASSES), pooling)
                ft.set_trainable(clf, trainable)
                ft.train_classifier(clf, ids, lengths, data.labels, steps=2, batch_size=args.batch_size,
                                    lr=args.lr, seed=0, show_progress=False)  # warm-up
                h = ft.train_classifier(clf, ids, lengths, data.labels, steps=args.steps,
                                        batch_size=args.batch_size, lr=args.lr, seed=0, show_progress=False)
                start = time.perf_counter()
                ft.accuracy(clf, ids, lengths, data.labels)
                rows.append({"trainable": trainable, "pooling": pooling, "s_per_step": h.seconds_per_step,
                             "eval_s_per_100": (time.perf_counter() - start) / len(ids) * 100})
        print_table(rows, list(rows[0]))
        return

    task = Task(args)
    if args.experiment == "baselines":
        rows = []
        for n in [*args.sizes, len(task.train)]:
            data = task.train.sample(n, seed=args.seed)
            row = {"n": n}
            for split, d in task.evals.items():
                row[f"majority_{split}"] = ft.majority_baseline(data.labels, d.labels)
            for split, d in task.evals.items():
                row[f"bow_{split}"] = ft.bag_of_words_baseline(data, d)
            rows.append(row)
        print_table(rows, list(rows[0]))
        return

    if args.experiment == "sizes":
        settings = [dict(n=n, init=i, pooling=args.pooling, trainable=args.trainable) for n in args.sizes
                    for i in args.inits]
    elif args.experiment == "pooling":
        settings = [dict(n=args.n, init=i, pooling=pl, trainable=args.trainable) for pl in args.poolings
                    for i in args.inits]
    else:
        settings = [dict(n=args.n, init=i, pooling=args.pooling, trainable=t) for t in args.trainables
                    for i in args.inits]
    rows = []
    for s in settings:
        for seed in args.seeds or [args.seed]:
            rows.append(task.run(**s, args=argparse.Namespace(**{**vars(args), "seed": seed})))
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  flush=True)
    print()
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
