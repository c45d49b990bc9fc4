"""GPT-2's recipe against LLaMA's, at equal size, on Shakespeare characters, over several seeds.

Notebook 04 trains two small Transformers (3 layers, width 64, context 64, about 158,000 parameters
each) for 800 steps of 32 windows and asserts that the LLaMA-style one (RMSNorm, rotary positions,
SwiGLU, no biases, untied head) ends at least 0.05 bits per character ahead of the GPT-2-style one
(LayerNorm, learned positions, GELU, biases, tied head). This script repeats that comparison with
other seeds, so the claim rests on more than one run, and prints the training throughput.

    python benchmarks/transformer_recipes.py                  # seeds 0 and 1, 800 steps
    python benchmarks/transformer_recipes.py --seeds 0 1 2 --steps 1500

Each row: parameters, training seconds, tokens per second, validation bits per character on the whole
split (llmcourse.rnn.evaluate), and the 1-minute load average (timings taken while something else uses
the CPU are not the machine's speed).
"""

from __future__ import annotations

import argparse
import os

import torch

from llmcourse.datasets import load_shakespeare
from llmcourse.rnn import evaluate, train_language_model
from llmcourse.tokenization import CharTokenizer
from llmcourse.transformer import TransformerConfig, TransformerLM

RECIPES = {
    "GPT-2 style": lambda V: TransformerConfig.gpt(V, 64, n_layer=3, n_head=4, n_embd=64),
    "LLaMA style": lambda V: TransformerConfig.llama(V, 64, n_layer=3, n_head=4, n_embd=64, d_ff=172),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=800)
    args = parser.parse_args()

    train, valid = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train, unk_token="<unk>")
    train_ids, valid_ids = vocab.encode(train), vocab.encode(valid)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps of 32 x 64 tokens")
    print(f"{'seed':>4s}  {'recipe':12s} {'parameters':>10s} {'seconds':>8s} {'tokens/s':>9s} {'bits/char':>9s} {'load':>5s}")
    gaps = []
    for seed in args.seeds:
        bpc = {}
        for name, make in RECIPES.items():
            torch.manual_seed(seed)
            model = TransformerLM(make(vocab.size))
            h = train_language_model(model, train_ids, valid_ids, steps=args.steps, batch_size=32, seq_len=64,
                                     lr=1e-2, warmup=0.05, eval_every=args.steps, seed=seed, show_progress=False)
            bpc[name] = evaluate(model, valid_ids)["bits_per_char"]
            print(f"{seed:4d}  {name:12s} {model.num_parameters():10,d} {h.train_seconds:8.1f} "
                  f"{h.tokens_seen / h.train_seconds:9,.0f} {bpc[name]:9.3f} {os.getloadavg()[0]:5.2f}", flush=True)
        gaps.append(bpc["GPT-2 style"] - bpc["LLaMA style"])
    print("LLaMA style ahead by (bits/char):", ", ".join(f"{g:.3f}" for g in gaps))


if __name__ == "__main__":
    main()
