"""The course trainer against nanoGPT's CPU configuration, then the course recipe in the same budget.

1. **Throughput, side by side.** nanoGPT's documented CPU run of ``train_shakespeare_char`` (4 layers,
   4 heads, width 128, context 64, batch 12, lr 1e-3, no dropout, no biases; warm-up 100, cosine to
   lr/10, AdamW betas (0.9, 0.99), weight decay 0.1, clipping 1.0) is trained by two loops on the same
   data in the same process: a nanoGPT-shaped reference in plain PyTorch
   (``benchmarks/nanogpt_reference.py``, which says which of nanoGPT's choices it copies) and the course's
   :class:`llmcourse.training.Trainer` on the same configuration. Their steps are interleaved (rounds of
   ``--block`` steps of one, then of the other, after a warm-up), so a slow spell of the machine touches
   both; the script prints the median milliseconds per step of each with its spread, the ratio of the
   medians and the spread of the per-round ratios, and each one's model FLOPs utilisation
   (:func:`llmcourse.scaling.flops_per_token`) against the float32 matrix-multiply peak measured in the
   same run (:func:`llmcourse.scaling.measure_matmul_flops`). ``--profile`` adds where a course step's
   time goes, from ``torch.profiler``.
2. **Precision.** The same configuration with bf16 autocast, where the CPU has bf16 instructions.
3. **Same wall-clock budget.** The course's pretraining recipe (LLaMA style: RMSNorm, SwiGLU, rotary
   positions; narrower and shallower; a 10x higher peak learning rate; batch 32; warm-up 5%, cosine)
   trains for as many seconds as the nanoGPT configuration took, and both are scored on the whole
   validation split.
4. **KV cache**: ``benchmarks/kv_cache.py``'s measurement (500 greedy tokens with and without).

The corpus is the course's Shakespeare (the complete plays, 4.3M training characters, 72 symbols), not
nanoGPT's tinyshakespeare (1.0M characters, 65 symbols), so validation losses compare between the two
runs here, not with nanoGPT's 1.88.

    python benchmarks/pretraining.py            # about 5 minutes on 2 cores
    python benchmarks/pretraining.py --quick    # 300 steps each, a smoke test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from llmcourse.datasets import load_shakespeare
from llmcourse.rnn import evaluate
from llmcourse.scaling import flops_per_token, measure_matmul_flops, mfu
from llmcourse.tokenization import CharTokenizer
from llmcourse.training import TrainConfig, Trainer, bf16_supported
from llmcourse.transformer import TransformerConfig, TransformerLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nanogpt_reference import GPT, ReferenceTrainer  # noqa: E402



def nanogpt_model(vocab_size: int) -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(TransformerConfig.gpt(vocab_size, 64, n_layer=4, n_head=4, n_embd=128, bias=False,
                                               dropout=0.0))


def nanogpt_config(steps: int, precision: str = "float32") -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=12, seq_len=64, lr=1e-3, warmup=100 / 2000, min_lr_ratio=0.1,
                       betas=(0.9, 0.99), weight_decay=0.1, clip=1.0, eval_every=250, precision=precision)


def course_model(vocab_size: int) -> TransformerLM:
    """The course's default pretraining recipe for a CPU minute (also notebook 05's)."""
    torch.manual_seed(0)
    return TransformerLM(TransformerConfig.llama(vocab_size, 64, n_layer=3, n_head=4, n_embd=64))


def course_config(seconds: float) -> TrainConfig:
    return TrainConfig(seconds=seconds, batch_size=32, seq_len=64, lr=1e-2, warmup=0.05, min_lr_ratio=0.1,
                       weight_decay=0.1, clip=1.0, eval_every=250)


def model_flops(model: TransformerLM, seq_len: int) -> float:
    c = model.config
    n = model.num_parameters() - (model.embed.pos.weight.numel() if model.embed.pos is not None else 0)
    return flops_per_token(n, c.n_layer, seq_len, c.n_embd)


def run(name, model, config, train_ids, valid_ids, peak):
    trainer = Trainer(model, train_ids, valid_ids, config, show_progress=False)
    start = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - start
    val = evaluate(model, valid_ids)["loss_nats"]
    tps = history.tokens_per_second
    util = mfu(tps, model_flops(model, config.seq_len), peak)
    print(f"{name:<34}{model.num_parameters():>10,}{history.total_steps:>7}{history.train_seconds:>9.1f}"
          f"{wall:>8.1f}{tps:>10,.0f}{util:>8.1%}{val:>9.4f}", flush=True)
    return history, val, tps


def side_by_side(vocab_size, train_ids, valid_ids, peak, *, rounds: int, block: int, warmup: int = 10) -> None:
    """Interleaved rounds of ``block`` steps of the reference, then of the course trainer: ms per step."""
    import statistics

    torch.manual_seed(0)
    reference = ReferenceTrainer(GPT(vocab_size, 64, 4, 4, 128), torch.as_tensor(train_ids, dtype=torch.long))
    course = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids, nanogpt_config(warmup + rounds * block + 1),
                     show_progress=False)
    loops = {"reference (nanoGPT-shaped, plain PyTorch)": reference.train_step, "course Trainer": course.train_step}
    for step in loops.values():  # warm-up: first-call costs, allocator, caches
        for _ in range(warmup):
            step()
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, step in loops.items():
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            times[name].append((time.perf_counter() - t0) / block)
    tokens = 12 * 64
    flops = model_flops(course.model, 64) * tokens
    print(f"{'loop':<44}{'ms/step median':>15}{'min-max':>16}{'tokens/s':>10}{'MFU':>7}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:<44}{med * 1e3:>15.2f}{f'{min(t) * 1e3:.2f}-{max(t) * 1e3:.2f}':>16}{tokens / med:>10,.0f}"
              f"{flops / med / peak:>7.1%}")
    ref, ours = times.values()
    ratios = sorted(r / o for r, o in zip(ref, ours))
    print(f"course Trainer speed / reference: {statistics.median(ref) / statistics.median(ours):.2f}x "
          f"(per-round ratios {ratios[0]:.2f}-{ratios[-1]:.2f}, median {statistics.median(ratios):.2f}; "
          f"{rounds} rounds of {block} steps each, interleaved)", flush=True)


def profile_course_step(vocab_size, train_ids, valid_ids, steps: int = 20) -> None:
    """Where a course step's time goes: self CPU time of each profiled op, grouped by kind."""
    from torch.profiler import ProfilerActivity, profile

    course = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids, nanogpt_config(steps + 10), show_progress=False)
    for _ in range(10):
        course.train_step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            course.train_step()
        wall = time.perf_counter() - t0
    kinds = {"matmul": ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm"),
             "attention": ("scaled_dot_product", "_flash_attention", "_efficient_attention", "softmax"),
             "normalisation": ("layer_norm", "rms_norm", "native_layer_norm"),
             "optimiser": ("_foreach", "adamw", "_fused_adam", "clip_grad"),
             "loss": ("cross_entropy", "nll_loss", "log_softmax")}
    totals = {k: 0.0 for k in [*kinds, "element-wise and other ops"]}
    for event in prof.key_averages():
        name = event.key.lower()
        kind = next((k for k, keys in kinds.items() if any(key in name for key in keys)), "element-wise and other ops")
        totals[kind] += event.self_cpu_time_total / 1e6
    ops = sum(totals.values())
    print(f"\nwhere a course step goes ({steps} steps profiled, {wall / steps * 1e3:.1f} ms each with the profiler on):")
    for kind, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<28}{seconds / steps * 1e3:>8.2f} ms  {seconds / wall:>6.1%}")
    print(f"  {'Python, dispatch, profiler':<28}{(wall - ops) / steps * 1e3:>8.2f} ms  {(wall - ops) / wall:>6.1%} "
          "(wall time not inside any op)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 steps instead of 2000")
    parser.add_argument("--skip-kv", action="store_true", help="leave out the KV-cache measurement")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the side-by-side (default 10)")
    parser.add_argument("--block", type=int, default=20, help="steps of each loop per round (default 20)")
    parser.add_argument("--profile", action="store_true", help="also break a course step down by kind of op")
    parser.add_argument("--side-by-side-only", action="store_true", help="stop after the side-by-side (and profile)")
    args = parser.parse_args()
    steps = 300 if args.quick else 2000

    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train_text, unk_token="<unk>")
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    peak = measure_matmul_flops(1024, repeats=10)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}; "
          f"measured float32 matmul peak {peak / 1e9:.1f} GFLOP/s; bf16 on this CPU: {bf16_supported('cpu')}")
    side_by_side(vocab.size, train_ids, valid_ids, peak, rounds=3 if args.quick else args.rounds,
                 block=5 if args.quick else args.block)
    if args.profile:
        profile_course_step(vocab.size, train_ids, valid_ids)
    if args.side_by_side_only:
        return 0
    print()
    print(f"{'run':<34}{'params':>10}{'steps':>7}{'train s':>9}{'wall s':>8}{'tok/s':>10}{'MFU':>8}{'val loss':>9}")

    nano_hist, nano_val, nano_tps = run("nanoGPT CPU config, float32", nanogpt_model(vocab.size), nanogpt_config(steps),
                                train_ids, valid_ids, peak)
    if bf16_supported("cpu"):
        run("nanoGPT CPU config, bf16 autocast", nanogpt_model(vocab.size), nanogpt_config(min(steps, 300), "bfloat16"),
            train_ids, valid_ids, peak)
    budget = nano_hist.train_seconds
    _, course_val, _ = run(f"course recipe, {budget:.0f} s budget", course_model(vocab.size), course_config(budget),
                           train_ids, valid_ids, peak)

    print(f"same {budget:.0f} s of training: nanoGPT configuration {nano_val:.4f} nats "
          f"({nano_val / 0.693147:.3f} bits/char), course recipe {course_val:.4f} nats "
          f"({course_val / 0.693147:.3f} bits/char): {'course recipe lower' if course_val < nano_val else 'NOT lower'}")

    status = 0 if course_val < nano_val else 1
    if not args.skip_kv:
        print("\nKV cache (benchmarks/kv_cache.py):", flush=True)
        here = Path(__file__).resolve().parent
        status |= subprocess.run([sys.executable, str(here / "kv_cache.py")]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
