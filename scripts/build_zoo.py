"""Build the course's model zoo: train each model deterministically and write weights and card.

    python scripts/build_zoo.py                        # every model
    python scripts/build_zoo.py char-lstm-shakespeare  # one model

Each model is trained with a fixed number of steps and a fixed seed, so on one machine the weights
come out the same every time; the card records the command, the settings, the training time, the
validation metrics and the sha256 of the weights (see ``llmcourse/zoo.py``). Training runs on the CPU
with the threads torch picks; the numbers on the committed cards come from a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

import numpy as np
import torch

from llmcourse import seed_everything
from llmcourse.datasets import load_shakespeare, sha256_file, write_atomic
from llmcourse.rnn import evaluate
from llmcourse.tokenization import CharTokenizer
from llmcourse.training import Trainer, TrainConfig
from llmcourse.zoo import build_model, zoo_dir

ZOO: dict[str, dict] = {
    "char-lstm-shakespeare": {
        "description": (
            "A one-layer character-level LSTM trained on the Shakespeare train split for longer than a "
            "notebook can afford. Notebook 03 loads it to show where an LSTM overtakes the best n-gram."
        ),
        "architecture": "RecurrentLanguageModel",
        "tokenizer": {"kind": "char"},
        "config": {"d_embed": 64, "d_hidden": 512, "n_layers": 1, "cell": "lstm", "dropout": 0.0},
        # built before the trainer used fused AdamW; these settings rebuild it exactly
        "training": {"steps": 12000, "batch_size": 16, "seq_len": 64, "lr": 0.005, "clip": 1.0,
                     "schedule": "cosine", "seed": 0, "eval_every": 500, "fused": False},
    },
    "char-transformer-shakespeare": {
        "description": (
            "A LLaMA-style character-level Transformer (4 layers, width 128, context 128) pretrained on the "
            "Shakespeare train split with the course trainer. Notebook 05 loads it as the pretrained base "
            "that later notebooks fine-tune."
        ),
        "architecture": "TransformerLM",
        "tokenizer": {"kind": "char"},
        "config": {"style": "llama", "block_size": 128, "n_layer": 4, "n_head": 4, "n_embd": 128},
        "training": {"steps": 3600, "batch_size": 32, "seq_len": 128, "lr": 0.005, "warmup": 0.03,
                     "weight_decay": 0.1, "clip": 1.0, "schedule": "cosine", "seed": 0},
    },
    "bpe-transformer-shakespeare": {
        "description": (
            "The same LLaMA-style Transformer over byte-level BPE tokens (the notebook-02 trainer, 1,024 ids "
            "learned on the train split): each position sees about 2.4 characters, so its 128-token context "
            "covers some 300 characters of a play."
        ),
        "architecture": "TransformerLM",
        "tokenizer": {"kind": "bpe", "vocab_size": 1024, "special_tokens": ["<|endoftext|>"]},
        "config": {"style": "llama", "block_size": 128, "n_layer": 4, "n_head": 4, "n_embd": 128},
        "training": {"steps": 2400, "batch_size": 32, "seq_len": 128, "lr": 0.005, "warmup": 0.03,
                     "weight_decay": 0.1, "clip": 1.0, "schedule": "cosine", "seed": 0},
    },
    "bpe-chat-shakespeare": {
        "description": (
            "The course's chat model: bpe-transformer-shakespeare fine-tuned (SFT, loss on the assistant's "
            "turns only) on instruction conversations and ordering-bot dialogues in the ChatML format, with "
            "<|im_start|> and <|im_end|> added as ids 1024 and 1025 and the context grown to 256 tokens "
            "(RoPE has no position table to grow). Notebook 08 builds it; notebooks 09, 10, 13 and 14 start from it."
        ),
        "architecture": "TransformerLM",
        "base": "bpe-transformer-shakespeare",
        "block_size": 256,
        "data": {"n_instructions": 20000, "n_orders": 16000, "order_pools": ["train", "words"], "seed": 0},
        # replay ("n_text": 8000 windows of the plays) was measured and left off: see build_chat_model.py
        "training": {"steps": 2000, "batch_size": 32, "seq_len": 256, "lr": 0.003, "warmup": 0.05,
                     "weight_decay": 0.0, "clip": 1.0, "schedule": "cosine", "seed": 0, "eval_every": 100,
                     "eval_tokens": 8192},
        # the same run with the loss on every token (system, user and headers too), same seed, data and budget,
        # evaluated on the card (twice the build time); notebook 08 makes this comparison live at a smaller budget
        "compare_train_on_all": False,
    },
    "bpe-tool-chat-shakespeare": {
        "description": (
            "The chat model taught to use a calculator: bpe-chat-shakespeare fine-tuned further (loss on the "
            "assistant's turns, never on the calculator's results) on arithmetic questions answered with a "
            "call, ordering dialogues whose total is a call, notebook 08's instruction conversations, and "
            "questions about which play a character speaks in (some names made up, answered 'No play has "
            "that character.'). The tool markers <|calc|>, <|/calc|>, <|result|>, <|/result|> are ids "
            "1026-1029. Notebook 13 loads it; its card holds the with/without-tool table (against a twin "
            "trained on the same data with every answer written out) and the hallucination figures."
        ),
        "architecture": "TransformerLM",
        "base": "bpe-chat-shakespeare",
        "tool": True,
        "data": {"n_arithmetic": 6000, "n_orders": 6000, "n_instructions": 5000, "n_facts": 6000, "seed": 0},
        "training": {"steps": 1200, "batch_size": 32, "seq_len": 256, "lr": 0.002, "warmup": 0.05,
                     "weight_decay": 0.0, "clip": 1.0, "schedule": "cosine", "seed": 0, "eval_every": 100,
                     "eval_tokens": 8192},
    },
    "bpe-capstone-shakespeare": {
        "description": (
            "The capstone's chat model, made from raw text by llmcourse.pipeline in one go: a BPE tokenizer "
            "trained on the plays, a LLaMA-style Transformer pretrained on them, SFT on the tool-use mixture "
            "(the calculator, ordering-bot dialogues, instructions, play questions) with the chat and tool "
            "tokens added, and one epoch of DPO on notebook 09's preferences. The card holds every stage's "
            "settings and the report card of the base, SFT and DPO models. Notebook 14 loads it."
        ),
        "architecture": "TransformerLM",
        "pipeline": True,
        "stages": {"tokenizer": {"vocab_size": 1024},
                   "pretrain": {"steps": 2400, "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128,
                                "batch_size": 32, "lr": 0.005, "seed": 0},
                   "sft": {"steps": 2000, "batch_size": 32, "lr": 0.003, "block_size": 256, "n_arithmetic": 6000,
                           "n_orders": 12000, "n_instructions": 12000, "n_facts": 6000, "seed": 0},
                   "prefer": {"beta": 0.1, "epochs": 1, "batch_size": 32, "lr": 3e-5, "seed": 0}},
        "report": {"n": 100, "n_chars": 50000, "seed": 5000},
    },
}


def _tokenizer(name: str, spec: dict, train_text: str, out):
    """The tokenizer and its card entry (a BPE tokenizer is saved next to the weights)."""
    if spec["kind"] == "char":
        vocab = CharTokenizer.from_text(train_text, unk_token="<unk>")
        entry = {"kind": "char", "chars": "".join(vocab.itos[: len(vocab.stoi)]), "unk_token": "<unk>"}
        return vocab, entry
    from llmcourse.tokenization import train_bpe

    tok = train_bpe(train_text, spec["vocab_size"], special_tokens=spec["special_tokens"])
    path = out / f"{name}.tokenizer.json"
    tok.save(path)
    entry = {"kind": "bpe", "file": path.name, "sha256": sha256_file(path), "vocab_size": tok.vocab_size,
             "trained_on": "llmcourse.datasets.load_shakespeare('train') with llmcourse.tokenization.train_bpe"}
    return tok, entry


def _model_config(spec: dict, vocab_size: int) -> dict:
    config = dict(spec["config"])
    if spec["architecture"] != "TransformerLM":
        return {"vocab_size": vocab_size, **config}
    from llmcourse.transformer import TransformerConfig

    style, block = config.pop("style"), config.pop("block_size")
    make = TransformerConfig.llama if style == "llama" else TransformerConfig.gpt
    return make(vocab_size, block, **config).as_dict()


def build(name: str) -> dict:
    spec = ZOO[name]
    if spec.get("pipeline"):
        from build_capstone import build_capstone

        return build_capstone(name, spec)
    if spec.get("tool"):
        from build_tool_model import build_tool

        return build_tool(name, spec)
    if "base" in spec:
        from build_chat_model import build_chat

        return build_chat(name, spec)
    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    out = zoo_dir()
    out.mkdir(parents=True, exist_ok=True)
    tok, tok_entry = _tokenizer(name, spec["tokenizer"], train_text, out)
    train_ids = np.asarray(tok.encode(train_text), dtype=np.int64)
    valid_ids = np.asarray(tok.encode(valid_text), dtype=np.int64)
    vocab_size = tok.size if hasattr(tok, "size") else tok.vocab_size
    training = dict(spec["training"])
    card = {
        "name": name,
        "description": spec["description"],
        "architecture": spec["architecture"],
        "config": _model_config(spec, vocab_size),
        "tokenizer": tok_entry,
        "data": "llmcourse.datasets.load_shakespeare('train'); metrics on 'validation'",
        "training": TrainConfig(**training).as_dict(),
        "command": f"python scripts/build_zoo.py {name}",
    }
    seed_everything(training["seed"])
    model = build_model(card)
    training.setdefault("eval_every", max(1, training["steps"] // 24))
    trainer = Trainer(model, train_ids, valid_ids, TrainConfig(**training))
    start = time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - start
    metrics = evaluate(model, valid_ids)
    weights = out / f"{name}.safetensors"
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_atomic(weights, save(state, metadata={"name": name}))
    total_nats = metrics["loss_nats"] * metrics["n_tokens"]
    chars = len(valid_text) - len(tok.decode(valid_ids[:1].tolist()))  # characters predicted
    curve = {k: v for k, v in history.as_dict().items() if k != "step_losses"}
    card.update(
        {
            "file": weights.name,
            "sha256": sha256_file(weights),
            "parameters": model.num_parameters(),
            "train_seconds": round(seconds, 1),
            "tokens_per_second": round(history.tokens_per_second),
            "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads(), "machine": platform.machine()},
            "metrics": {
                "val_loss_nats": round(metrics["loss_nats"], 6),
                "val_perplexity": round(metrics["perplexity"], 6),
                "val_tokens": metrics["n_tokens"],
                # per character of text, comparable across tokenizers
                "val_bits_per_char": round(total_nats / chars / math.log(2), 6),
            },
            "history": curve,
        }
    )
    write_atomic(out / f"{name}.json", (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"models to build (default: all of {sorted(ZOO)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(ZOO))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {sorted(ZOO)}")
    for name in args.names or list(ZOO):  # bases before the models fine-tuned from them
        card = build(name)
        m = card["metrics"]
        print(f"{name}: {card['parameters']:,} parameters, {card['train_seconds']:.0f} s, "
              f"Shakespeare validation {m['val_loss_nats']:.4f} nats = {m['val_bits_per_char']:.4f} bits/char")
    return 0


if __name__ == "__main__":
    sys.exit(main())
