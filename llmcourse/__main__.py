"""Command line: ``python -m llmcourse COMMAND``. ``--help`` on any command says what it takes.

* ``doctor``: is this machine ready for the course; ``docs``: write GLOSSARY.md and SYLLABUS.md;
  ``progress``: the exercises you have solved; ``restore``: put a notebook back as the course ships it;
* the pipeline of :mod:`llmcourse.pipeline`, raw text to a chat model: ``tokenizer``, ``pretrain``,
  ``sft``, ``prefer`` (DPO), each writing a stage folder (resumable: run it again to continue);
* ``chat MODEL``: a terminal chat with a stage folder or a zoo chat model, with the calculator;
* ``eval FOLDER...``: the report card of stages (:mod:`llmcourse.report`).

Bad arguments give a message naming the argument and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmcourse", description="The llmcourse command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("doctor", help="check that this machine is ready for the course")
    sub.add_parser("docs", help="write GLOSSARY.md and SYLLABUS.md from the notebooks")
    sub.add_parser("progress", help="which exercises you have solved, notebook by notebook")
    p = sub.add_parser("restore", help="put notebooks back as the course ships them (your version is backed up)")
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="e.g. 05, 05_pretraining.ipynb, or 05s for its solutions")
    p.add_argument("--list", action="store_true", help="only list the notebooks that differ from the course's copy")

    p = sub.add_parser("tokenizer", help="stage 1: train a byte-level BPE tokenizer on the plays")
    p.add_argument("out", help="the stage folder to write")
    p.add_argument("--vocab-size", type=int, default=1024, help="ids in all, <|endoftext|> included (default 1024)")
    p.add_argument("--text-chars", type=int, help="train on the first N characters only (default: all)")

    def training(p, steps, lr, batch_size=32):
        p.add_argument("--steps", type=int, default=steps, help=f"optimiser steps (default {steps})")
        p.add_argument("--batch-size", type=int, default=batch_size, help=f"sequences per step (default {batch_size})")
        p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: a tenth of the run)")
        p.add_argument("--until-step", type=int, help="stop at this step (run the command again to resume)")

    p = sub.add_parser("pretrain", help="stage 2: pretrain a LLaMA-style Transformer on the plays")
    p.add_argument("out", help="the stage folder to write")
    p.add_argument("--tokenizer", required=True, help="the tokenizer stage's folder")
    training(p, 2400, 5e-3)
    for flag, default in (("--n-layer", 4), ("--n-head", 4), ("--n-embd", 128), ("--block-size", 128)):
        p.add_argument(flag, type=int, default=default, help=f"(default {default})")

    p = sub.add_parser("sft", help="stage 3: supervised fine-tuning into a chat model with the calculator")
    p.add_argument("out", help="the stage folder to write")
    p.add_argument("--base", required=True, help="the pretrain stage's folder")
    training(p, 2000, 3e-3)
    for flag, default in (("--block-size", 256), ("--n-arithmetic", 6000), ("--n-orders", 12000),
                          ("--n-instructions", 12000), ("--n-facts", 6000)):
        p.add_argument(flag, type=int, default=default, help=f"(default {default})")

    p = sub.add_parser("prefer", help="stage 4: DPO on notebook 09's preference pairs")
    p.add_argument("out", help="the stage folder to write")
    p.add_argument("--sft", required=True, help="the sft stage's folder (the reference)")
    p.add_argument("--beta", type=float, default=0.1, help="DPO's beta (default 0.1)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--n-pairs", type=int, help="use the first N preference pairs (default: all)")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("chat", help="chat in the terminal with a chat model (the calculator on)")
    p.add_argument("model", help="an sft or prefer stage folder, or a zoo chat model (e.g. bpe-capstone-shakespeare)")
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    p.add_argument("--no-tool", action="store_true", help="answer without the calculator")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seeds sampling when the temperature is above 0")

    p = sub.add_parser("eval", help="the report card of one or more stage folders")
    p.add_argument("folders", nargs="+", help="pretrain, sft or prefer stage folders, in order")
    p.add_argument("--n", type=int, default=100, help="questions, dialogues or prompts per column (default 100)")
    p.add_argument("--n-chars", type=int, default=50_000, help="characters of validation text (default 50000)")
    p.add_argument("--out", help="also write the report as JSON to this file")
    return parser


def _run(args) -> int:
    if args.command == "doctor":
        from llmcourse.doctor import main as doctor

        return doctor()
    if args.command == "progress":
        from llmcourse.exercises import progress_text

        print(progress_text())
        return 0
    if args.command == "restore":
        return _restore(args)
    if args.command == "docs":
        from llmcourse.course import write_docs

        for path in write_docs():
            print(f"wrote {path}")
        return 0
    from llmcourse import pipeline  # torch and the models: only the commands below need them

    common = {}
    if args.command in ("pretrain", "sft"):
        common = dict(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, until_step=args.until_step)
    if args.command == "tokenizer":
        card = pipeline.tokenizer(args.out, vocab_size=args.vocab_size, text_chars=args.text_chars)
    elif args.command == "pretrain":
        card = pipeline.pretrain(args.out, args.tokenizer, n_layer=args.n_layer, n_head=args.n_head,
                                 n_embd=args.n_embd, block_size=args.block_size, **common)
    elif args.command == "sft":
        card = pipeline.sft(args.out, args.base, block_size=args.block_size, n_arithmetic=args.n_arithmetic,
                            n_orders=args.n_orders, n_instructions=args.n_instructions, n_facts=args.n_facts, **common)
    elif args.command == "prefer":
        card = pipeline.prefer(args.out, args.sft, beta=args.beta, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, n_pairs=args.n_pairs, seed=args.seed)
    elif args.command == "chat":
        pipeline.chat_session(args.model, system=args.system, temperature=args.temperature, tool=not args.no_tool,
                              max_new_tokens=args.max_new_tokens, seed=args.seed)
        return 0
    else:
        from llmcourse import report

        result = report.report_card(args.folders, n=args.n, n_chars=args.n_chars)
        print(report.format_report(result))
        if args.out:
            from llmcourse.files import write_atomic_text

            write_atomic_text(args.out, json.dumps(result, indent=1) + "\n")
            print(f"wrote {args.out}")
        return 0
    if card.get("status") == "stopped":
        print(f"{args.command}: stopped at step {card['step']} of {card['settings']['steps']}; run the same "
              f"command again to resume")
    else:
        shown = {k: card[k] for k in ("metrics", "seconds", "sha256") if k in card}
        print(f"{args.command}: done in {args.out}: {json.dumps(shown)}")
    return 0


def _restore(args) -> int:
    from llmcourse import restore

    if args.list or not args.notebooks:
        changed = restore.changed_notebooks()
        for path in changed:
            print(f"changed: {path.relative_to(restore.ROOT).as_posix()}")
        if not changed:
            print("every notebook is as the course ships it")
        if not args.list:
            print("restore one with: python -m llmcourse restore 05  (your version is backed up first)")
        return 0
    for name in args.notebooks:
        try:
            done = restore.restore(name)
        except restore.RestoreError as e:
            print(f"python -m llmcourse restore: {e}", file=sys.stderr)
            return 1
        where = Path(done["notebook"]).relative_to(restore.ROOT).as_posix()
        if done["backup"] is None:
            print(f"{where}: already as the course ships it ({done['source']})")
        else:
            print(f"{where}: restored from {done['source']}; your version is in {done['backup']}")
    return 0


#: The pipeline's argument names that the command line spells differently.
_FLAGS = {"notebook": "NOTEBOOK", "tokenizer_dir": "--tokenizer", "base_dir": "--base", "sft_dir": "--sft", "out": "OUT", "model": "MODEL",
          "folders": "FOLDER", "folder": "FOLDER"}


def _as_flag(message: str, args) -> str:
    """An error message that names the pipeline's argument (``steps must be ...``), naming the command-line
    flag instead (``--steps must be ...``)."""
    name = message.split(" ", 1)[0].rstrip(":")
    flag = _FLAGS.get(name) or (f"--{name.replace('_', '-')}" if name in vars(args) else None)
    return flag + message[len(name):] if flag else message


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from llmcourse.checks import ArgumentError

    try:
        return _run(args)
    except ArgumentError as e:                      # a bad argument: say which, as argparse does
        parser.exit(2, f"python -m llmcourse {args.command}: error: {_as_flag(str(e), args)}\n")
    except KeyboardInterrupt:
        print(f"\n{args.command}: interrupted; a training stage resumes from its last checkpoint when run again",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
