"""Notebook 04's comparisons over several seeds: data/architecture_sweep.json.

    python scripts/architecture_sweep.py            # everything, about 10 minutes on 2 CPU cores
    python scripts/architecture_sweep.py --quick    # 2 seeds of a few steps, a smoke test (writes nothing)

Notebook 04 trains each model once, live. One seed can mislead when two models are close, so this script
trains :data:`SEEDS` of each, with the notebook's settings exactly (the notebook's live run is seed 0):

- **characters**: an LSTM (notebook 03's cell and recipe, its hidden width chosen so that it has about as
  many parameters as the Transformers), the GPT-2-style and the LLaMA-style Transformers of notebook 04,
  each trained the same way (800 steps of 32 × 64 characters, AdamW, peak learning rate 1e-2, 5% warm-up,
  cosine decay) and scored on the whole validation split;
- **copying from the context**: notebook 11's task (a random block of 4-16 tokens from 64, repeated to fill
  64 positions; the loss on the tokens the context gives away) for its two-layer Transformer and an LSTM of
  about the same size, trained by the same ``icl.train_icl`` (AdamW, batch 32, :data:`COPY_STEPS` steps); the LSTM at
  two learning rates, the Transformers' 1e-3 and notebook 03's 1e-2, so that its result is not an artefact
  of a rate chosen for the other model. Scored at the trained periods and at longer ones.

The result is written atomically with its sha256 in data/SHA256SUMS and data/README.md.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from llmcourse import icl, transformer
from llmcourse.datasets import load_shakespeare, write_results
from llmcourse.lm import evaluate
from llmcourse.rnn import RecurrentLanguageModel
from llmcourse.tokenization import CharTokenizer
from llmcourse.training import train_language_model

FILE = "architecture_sweep.json"
SEEDS = (0, 1, 2, 3, 4)
STEPS = 800
RECIPE = dict(batch_size=32, seq_len=64, lr=1e-2, warmup=0.05)  # notebook 04's, for every model
LSTM_HIDDEN = 174  # 158,976 parameters, beside the Transformers' 158,784 and 157,888
COPY_STEPS, COPY_SEEDS, COPY_HIDDEN = 600, (0, 1, 2), 162  # 138,840 parameters beside icl_model(2)'s
COPY_PERIODS = (4, 8, 12, 16, 20, 24, 28)


def log(*args) -> None:
    print(*args, flush=True)


def char_models(V: int) -> dict:
    """The three models of the character comparison, as notebook 04 builds them (call after seeding)."""
    return {
        "LSTM": lambda: RecurrentLanguageModel(V, d_embed=32, d_hidden=LSTM_HIDDEN, cell="lstm"),
        "GPT-2 style": lambda: transformer.TransformerLM(
            transformer.TransformerConfig.gpt(V, 64, n_layer=3, n_head=4, n_embd=64)),
        "LLaMA style": lambda: transformer.TransformerLM(
            transformer.TransformerConfig.llama(V, 64, n_layer=3, n_head=4, n_embd=64, d_ff=172)),
    }


def char_run(name: str, build, seed: int, steps: int, train_ids, valid_ids) -> dict:
    torch.manual_seed(seed)
    model = build()
    h = train_language_model(model, train_ids, valid_ids, steps=steps, eval_every=steps, seed=seed,
                             show_progress=False, **RECIPE)
    bits = evaluate(model, valid_ids)["bits_per_char"]
    log(f"{name:12s} seed {seed}: {model.num_parameters():,} parameters, {h.train_seconds:.1f} s, "
        f"{h.tokens_seen / h.train_seconds:,.0f} tokens/s, {bits:.4f} bits/char")
    return {"seed": seed, "parameters": model.num_parameters(), "train_seconds": round(h.train_seconds, 2),
            "tokens_per_second": round(h.tokens_seen / h.train_seconds), "bits_per_char": round(bits, 5)}


def copy_run(name: str, model, lr: float, seed: int, steps: int) -> dict:
    t0 = time.perf_counter()
    icl.train_icl(model, icl.VOCAB, steps=steps, lr=lr, seed=seed, eval_every=steps, seq_len=64)
    seconds = time.perf_counter() - t0
    losses = {str(p): round(icl.repeat_loss(model, icl.VOCAB, period=p, seq_len=64), 4) for p in COPY_PERIODS}
    trained = round(icl.repeat_loss(model, icl.VOCAB, seq_len=64), 4)
    log(f"{name:28s} seed {seed}: {seconds:.1f} s, repeat loss {trained:.3f} (chance {math.log(icl.VOCAB):.2f}), "
        f"by period {losses}")
    return {"seed": seed, "parameters": sum(p.numel() for p in model.parameters()), "lr": lr,
            "train_seconds": round(seconds, 2), "repeat_loss": trained, "repeat_loss_by_period": losses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 2 seeds of a few steps, writes nothing")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t_start = time.time()
    seeds, steps, copy_seeds, copy_steps = (SEEDS[:2], 20, COPY_SEEDS[:2], 20) if args.quick else \
        (SEEDS, STEPS, COPY_SEEDS, COPY_STEPS)

    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train_text, unk_token="<unk>")
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    chars = {name: [] for name in char_models(vocab.size)}
    for seed in seeds:  # seeds outermost: a slow spell of the machine touches every model alike
        for name, build in char_models(vocab.size).items():
            chars[name].append(char_run(name, build, seed, steps, train_ids, valid_ids))

    copying = {"Transformer, 2 layers": [], "LSTM, lr 1e-3": [], "LSTM, lr 1e-2": []}
    for seed in copy_seeds:
        copying["Transformer, 2 layers"].append(
            copy_run("Transformer, 2 layers", icl.icl_model(2, seed=seed), 1e-3, seed, copy_steps))
        for lr in (1e-3, 1e-2):
            torch.manual_seed(seed)
            lstm = RecurrentLanguageModel(icl.VOCAB, d_embed=32, d_hidden=COPY_HIDDEN, cell="lstm")
            copying[f"LSTM, lr {lr:.0e}".replace("e-0", "e-")].append(copy_run(f"LSTM, lr {lr:g}", lstm, lr, seed, copy_steps))
    if args.quick:
        log(f"done ({time.time() - t_start:.0f} s); nothing written")
        return
    out = {"seeds": list(SEEDS), "steps": STEPS, "recipe": RECIPE, "lstm_hidden": LSTM_HIDDEN,
           "settings": "torch.manual_seed(seed); model = build(); train_language_model(model, train_ids, valid_ids, "
                       "steps=800, batch_size=32, seq_len=64, lr=1e-2, warmup=0.05, seed=seed); "
                       "evaluate(model, valid_ids)['bits_per_char'] on the whole validation split",
           "characters": chars,
           "copying": {"vocab_size": icl.VOCAB, "steps": COPY_STEPS, "seeds": list(COPY_SEEDS), "lstm_hidden": COPY_HIDDEN,
                       "periods": list(COPY_PERIODS), "trained_periods": [4, 16], "runs": copying},
           "seconds": round(time.time() - t_start)}
    log(f"wrote {write_results(FILE, out)}")


if __name__ == "__main__":
    main()
