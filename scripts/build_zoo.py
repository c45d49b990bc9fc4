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
import platform
import sys
import time

import torch

from llmcourse import seed_everything
from llmcourse.datasets import load_shakespeare, sha256_file, write_atomic
from llmcourse.ngram import CharVocab
from llmcourse.rnn import evaluate
from llmcourse.training import train_language_model
from llmcourse.zoo import build_model, zoo_dir

ZOO: dict[str, dict] = {
    "char-lstm-shakespeare": {
        "description": (
            "A one-layer character-level LSTM trained on the Shakespeare train split for longer than a "
            "notebook can afford. Notebook 03 loads it to show where an LSTM overtakes the best n-gram."
        ),
        "architecture": "RecurrentLanguageModel",
        "config": {"d_embed": 64, "d_hidden": 512, "n_layers": 1, "cell": "lstm", "dropout": 0.0},
        "training": {"steps": 12000, "batch_size": 16, "seq_len": 64, "lr": 0.005, "clip": 1.0,
                     "schedule": "cosine", "seed": 0},
    },
}


def build(name: str) -> dict:
    spec = ZOO[name]
    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharVocab.from_text(train_text, unk_token="<unk>")
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    training = dict(spec["training"])
    seed = training.pop("seed")
    card = {
        "name": name,
        "description": spec["description"],
        "architecture": spec["architecture"],
        "config": {"vocab_size": vocab.size, **spec["config"]},
        "tokenizer": {"kind": "char", "chars": "".join(vocab.itos[: len(vocab.stoi)]), "unk_token": "<unk>"},
        "data": "llmcourse.datasets.load_shakespeare('train'); metrics on 'validation'",
        "training": {**spec["training"]},
        "command": f"python scripts/build_zoo.py {name}",
    }
    seed_everything(seed)
    model = build_model(card)
    start = time.perf_counter()
    history = train_language_model(model, train_ids, valid_ids, seed=seed, eval_every=500, **training)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, valid_ids)
    out = zoo_dir()
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.safetensors"
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_atomic(weights, save(state, metadata={"name": name}))
    card.update(
        {
            "file": weights.name,
            "sha256": sha256_file(weights),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(seconds, 1),
            "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads(), "machine": platform.machine()},
            "metrics": {
                "val_loss_nats": round(metrics["loss_nats"], 6),
                "val_bits_per_char": round(metrics["bits_per_char"], 6),
                "val_perplexity": round(metrics["perplexity"], 6),
            },
            "history": history.as_dict(),
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
    for name in args.names or sorted(ZOO):
        card = build(name)
        m = card["metrics"]
        print(f"{name}: {card['parameters']:,} parameters, {card['train_seconds']:.0f} s, "
              f"validation {m['val_loss_nats']:.4f} nats = {m['val_bits_per_char']:.4f} bits/char")
    return 0


if __name__ == "__main__":
    sys.exit(main())
