"""The course trainer against nanoGPT's CPU configuration, side by side; what each speed-up buys; the ceiling.

1. **Throughput, side by side.** nanoGPT's documented CPU run of ``train_shakespeare_char`` (4 layers,
   4 heads, width 128, context 64, batch 12, lr 1e-3, no dropout, no biases; warm-up 100, cosine to
   lr/10, AdamW betas (0.9, 0.99), weight decay 0.1, clipping 1.0) is trained on the same data in the
   same process by a nanoGPT-shaped reference in plain PyTorch (``benchmarks/nanogpt_reference.py``,
   which says which of nanoGPT's choices it copies; float32, as nanoGPT runs on a CPU), by the course's
   :class:`llmcourse.training.Trainer`, and by the Trainer with ``precision="bfloat16"`` (where the CPU
   has bf16 instructions), with ``compile=True`` (where a C++ compiler is present; its first step,
   compiling included, is printed), and with both. Their steps are interleaved (rounds of
   ``--block`` steps of each in turn, after a warm-up), so a slow spell of the machine touches all; the
   script prints each one's median milliseconds per step with its range, its speed against the
   reference with the range of the per-round ratios, and its model FLOPs utilisation
   (:func:`llmcourse.scaling.flops_per_token`) against the matrix-multiply peak measured in the same run
   (:func:`llmcourse.scaling.measure_matmul_flops`; float32's, and bf16's for the bf16 loops).
2. ``--profile``: where a course step's time goes, by kind of operation, from ``torch.profiler``, for
   the Trainer as it is, compiled, and compiled in bf16 (the compiled kernels by name); and what the
   matrix products, attention and the optimiser alone take inside each step, against 1.5x the
   reference.
3. ``--candidates``: each candidate speed-up against the Trainer as it is, interleaved, on nanoGPT's
   configuration and on notebook 05's LLaMA-style recipe: AdamW's per-tensor loop instead of its fused
   kernel, two micro-batches instead of one, one thread instead of two, bf16 autocast, float32 matrix
   products computed in bf16 (matmul precision "medium"), ``torch.compile``, and compiling with bf16.
4. ``--ceiling``: a course step's matrix products (the shapes a profiled step ran), its attention and
   its optimiser step, each timed alone with hot caches: how fast a float32 step could be if everything
   else were free, against the 1.5x target, and the same products in bf16; and two small candidates
   timed the same way (``is_causal`` instead of a mask tensor; one fused query/key/value product
   instead of two).
5. Without ``--side-by-side-only``: the same configuration trained again with bf16 autocast (compiled
   where a compiler is present) where the CPU has bf16 instructions, and its validation loss against
   float32's (bf16 is not exact; the stated tolerance is ``BF16_TOLERANCE``); the course's pretraining
   recipe (LLaMA style, narrower and shallower, a 10x higher peak learning rate, batch 32) for as many
   seconds as the nanoGPT configuration took, both scored on the whole validation split; and
   ``benchmarks/kv_cache.py``'s measurement.

The corpus is the course's Shakespeare (the complete plays, 4.3M training characters, 72 symbols), not
nanoGPT's tinyshakespeare (1.0M characters, 65 symbols), so validation losses compare between the two
runs here, not with nanoGPT's 1.88.

    python benchmarks/pretraining.py --side-by-side-only --candidates --ceiling   # about 3 minutes
    python benchmarks/pretraining.py            # the side-by-side and the full runs, about 5 minutes
    python benchmarks/pretraining.py --quick    # 300 steps each, a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from llmcourse import training
from llmcourse.datasets import load_shakespeare
from llmcourse.optim import cpp_compiler
from llmcourse.rnn import evaluate
from llmcourse.scaling import flops_per_token, measure_matmul_flops, mfu
from llmcourse.tokenization import CharTokenizer
from llmcourse.training import TrainConfig, Trainer, bf16_supported
from llmcourse.transformer import TransformerConfig, TransformerLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nanogpt_reference import GPT, ReferenceTrainer  # noqa: E402



#: How far bf16 autocast may move the validation loss of the full nanoGPT-configuration run from float32's
#: (nats per character; measured 0.0001 apart after 2,000 steps, at about 1.85 nats).
BF16_TOLERANCE = 0.02


def nanogpt_model(vocab_size: int) -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(TransformerConfig.gpt(vocab_size, 64, n_layer=4, n_head=4, n_embd=128, bias=False,
                                               dropout=0.0))


def nanogpt_reference(vocab_size: int, train_ids, bf16: bool = False) -> ReferenceTrainer:
    torch.manual_seed(0)
    return ReferenceTrainer(GPT(vocab_size, 64, 4, 4, 128), torch.as_tensor(train_ids, dtype=torch.long), bf16=bf16)


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


def interleave(loops: dict, *, rounds: int, block: int, warmup: int = 10) -> dict[str, list[float]]:
    """Seconds per step of each ``name -> step()`` loop: rounds of ``block`` steps of each in turn, after
    ``warmup`` steps of each (first-call costs, the allocator, caches, a compile)."""
    for step in loops.values():
        for _ in range(warmup):
            step()
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, step in loops.items():
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            times[name].append((time.perf_counter() - t0) / block)
    return times


def first_step(label: str, step):
    """Run a compiled loop's first step (where compiling happens), say how long it took, return ``step``."""
    t0 = time.perf_counter()
    step()
    print(f"({label}: first step {time.perf_counter() - t0:.1f} s, compiling included)")
    return step


def report(times: dict[str, list[float]], tokens: int, flops_per_step: float | None = None,
           peak: float | dict[str, float] = 1.0, width: int = 52) -> None:
    """Median ms/step of each loop with its range, and each one's speed against the first, with the
    spread of the per-round ratios; MFU against ``peak`` (or ``peak[name]``, each loop its own)."""
    names = list(times)
    base = times[names[0]]
    print(f"{'loop':<{width}}{'ms/step median':>15}{'min-max':>16}{'tokens/s':>10}"
          + (f"{'MFU':>7}" if flops_per_step else "") + f"{'speed':>8}  per-round")
    for name, t in times.items():
        med = statistics.median(t)
        ratios = sorted(b / o for b, o in zip(base, t))
        print(f"{name:<{width}}{med * 1e3:>15.2f}{f'{min(t) * 1e3:.2f}-{max(t) * 1e3:.2f}':>16}{tokens / med:>10,.0f}"
              + (f"{flops_per_step / med / (peak[name] if isinstance(peak, dict) else peak):>7.1%}"
                 if flops_per_step else "")
              + f"{statistics.median(base) / med:>7.2f}x  {ratios[0]:.2f}-{ratios[-1]:.2f}", flush=True)


def side_by_side(vocab_size, train_ids, valid_ids, peak, bf16_peak, *, rounds: int, block: int,
                 warmup: int = 10) -> float:
    """Interleaved rounds of the reference and the course Trainer's variants: ms per step of each; returns
    the reference's median ms per step."""
    reference = nanogpt_reference(vocab_size, train_ids)
    steps = warmup + rounds * block + 1
    course = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids, nanogpt_config(steps), show_progress=False)
    loops = {"reference (nanoGPT-shaped, plain PyTorch)": reference.train_step, "course Trainer": course.train_step}
    variants = {}
    if bf16_supported("cpu"):
        loops["reference with bf16 autocast (nanoGPT's GPU setting)"] = nanogpt_reference(vocab_size, train_ids,
                                                                                          bf16=True).train_step
        variants["course Trainer, precision='bfloat16'"] = {"precision": "bfloat16"}
    if cpp_compiler():
        variants["course Trainer, compile=True"] = {"compile": True}
        if bf16_supported("cpu"):
            variants["course Trainer, compile=True, precision='bfloat16'"] = {"compile": True, "precision": "bfloat16"}
    for name, changes in variants.items():
        trainer = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids,
                          dataclasses.replace(nanogpt_config(steps), **changes), show_progress=False)
        loops[name] = first_step(name, trainer.train_step) if trainer.config.compile else trainer.train_step
    times = interleave(loops, rounds=rounds, block=block, warmup=warmup)
    peaks = {name: bf16_peak if "bf16" in name or "bfloat16" in name else peak for name in loops}
    report(times, 12 * 64, model_flops(course.model, 64) * 12 * 64, peaks, width=56)
    if bf16_supported("cpu"):
        print(f"(MFU of the bf16 loops is against the bf16 matmul peak measured now, {bf16_peak / 1e9:.0f} GFLOP/s; "
              f"the others against float32's, {peak / 1e9:.0f} GFLOP/s)")
    print(f"speed = the reference's median step time / this loop's; per-round = the range of that ratio over "
          f"{rounds} interleaved rounds of {block} steps. The reference runs in float32, as nanoGPT does on a "
          f"CPU; bf16 is not exact: the full run below trains both precisions and compares their validation "
          f"losses.", flush=True)
    return statistics.median(times["reference (nanoGPT-shaped, plain PyTorch)"]) * 1e3


def candidates(vocab_size, train_ids, valid_ids, *, rounds: int, block: int) -> None:
    """What each candidate buys: the course Trainer changed in one way, against itself unchanged,
    interleaved, on nanoGPT's configuration and on notebook 05's LLaMA recipe."""
    def under(get, put, value, step):
        """``step`` run with a global setting (``get()`` / ``put(value)``) changed, and put back after."""
        def run():
            old = get()
            put(value)
            try:
                return step()
            finally:
                put(old)
        return run

    setups = {"nanoGPT configuration (GPT-2 style, 4 x 128, batch 12 x 64)": (nanogpt_model, nanogpt_config(10_000)),
              "notebook 05's recipe (LLaMA style, 3 x 64, batch 32 x 64)": (course_model, course_config(1e9))}
    for title, (make_model, config) in setups.items():
        print(f"\n{title}:")
        def trainer(**changes):
            return Trainer(make_model(vocab_size), train_ids, valid_ids, dataclasses.replace(config, **changes),
                           show_progress=False).train_step
        base = trainer()
        cands = {"AdamW foreach (per-tensor loop) instead of fused": trainer(fused=False),
                 "2 micro-batches of half the rows (the same maths)": trainer(grad_accum=2),
                 "one thread instead of two": under(torch.get_num_threads, torch.set_num_threads, 1, trainer())}
        if bf16_supported("cpu"):
            cands["bf16 autocast (precision='bfloat16')"] = trainer(precision="bfloat16")
            cands["float32 matmuls in bf16 (matmul precision 'medium')"] = under(
                torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, "medium", trainer())
        if cpp_compiler():
            compiled = {"torch.compile (compile=True)": {"compile": True}}
            if bf16_supported("cpu"):
                compiled["torch.compile and bf16 autocast"] = {"compile": True, "precision": "bfloat16"}
            for name, changes in compiled.items():
                cands[name] = first_step(name, trainer(**changes))
            # the last of them with the compiled graph's kernels called from generated Python instead of C++
            # (compile_loss's default); Trainer binds compile_loss when it is built and compiles at step one
            last = list(compiled)[-1]
            saved = training.compile_loss
            training.compile_loss = functools.partial(saved, cpp_wrapper=False)
            try:
                python_wrapper = first_step(f"{last}, Python wrapper", trainer(**compiled[last]))
            finally:
                training.compile_loss = saved
            wrappers = {f"  {last} (C++ wrapper, as it is)": cands[last],
                        "  the same with the Python wrapper instead": python_wrapper}
        tokens = config.batch_size * config.seq_len
        for name, step in cands.items():
            times = interleave({"  course Trainer as it is": base, f"  {name}": step}, rounds=rounds, block=block)
            report(times, tokens, width=58)
        if cpp_compiler():
            report(interleave(wrappers, rounds=rounds, block=block), tokens, width=58)


def matmul_floor(vocab_size, train_ids, valid_ids, reference_ms: float) -> None:
    """The ceiling: a course step's matrix products alone, each shape timed in isolation (hot caches, no
    other work), plus its attention and optimiser kernels alone; against the 1.5x target. The same
    products in bf16 too, where the CPU has it."""
    from torch.profiler import ProfilerActivity, profile

    course = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids, nanogpt_config(100), show_progress=False)
    for _ in range(5):
        course.train_step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        course.train_step()
    def timed(f):  # seconds per call: the median of 5 blocks of 10 calls, after 5 calls
        return statistics.median(interleave({"f": f}, rounds=5, block=10, warmup=5)["f"])
    mm_s, bf16_mm_s, flops, attention_s = 0.0, 0.0, 0.0, 0.0
    for e in prof.key_averages(group_by_input_shape=True):
        shapes = e.input_shapes
        if e.key == "aten::mm":
            (m, k), (_, n) = shapes[0], shapes[1]
        elif e.key == "aten::addmm":
            (m, k), (_, n) = shapes[1], shapes[2]
        else:
            continue
        a, b = torch.randn(m, k) * 0.1, torch.randn(k, n) * 0.1
        mm_s += e.count * timed(lambda: a @ b)
        if bf16_supported("cpu"):
            a16, b16 = a.bfloat16(), b.bfloat16()
            bf16_mm_s += e.count * timed(lambda: a16 @ b16)
        flops += e.count * 2 * m * k * n
    heads, hd = 4, 32
    q, k, v = (torch.randn(12, heads, 64, hd, requires_grad=True) for _ in range(3))
    g = torch.randn(12, heads, 64, hd)
    attention_s = 4 * timed(lambda: torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, is_causal=True), (q, k, v), g))
    mask = torch.ones(64, 64, dtype=torch.bool).tril()
    masked_s = 4 * timed(lambda: torch.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask), (q, k, v), g))
    x = torch.randn(768, 128, requires_grad=True)
    wq, wkv, wqkv = (torch.randn(n, 128, requires_grad=True) for n in (128, 256, 384))
    gq, gkv, gqkv = (torch.randn(768, n) for n in (128, 256, 384))
    separate_s = 4 * timed(lambda: torch.autograd.grad((F.linear(x, wq), F.linear(x, wkv)), (x, wq, wkv), (gq, gkv)))
    fused_s = 4 * timed(lambda: torch.autograd.grad(F.linear(x, wqkv), (x, wqkv), gqkv))
    for p in course.model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimiser_s = timed(course.optimizer.step)
    floor = mm_s + attention_s + optimiser_s
    target = reference_ms / 1e3 / 1.5
    print("\nthe float32 ceiling (a course step's kernels timed alone, hot caches, nothing else):")
    print(f"  matrix products: {flops / 1e9:.2f} GFLOP per step in {mm_s * 1e3:.2f} ms "
          f"({flops / mm_s / 1e9:.0f} GFLOP/s)")
    print(f"  + attention (4 layers, forward and backward): {attention_s * 1e3:.2f} ms")
    print(f"  + fused AdamW step: {optimiser_s * 1e3:.2f} ms")
    print(f"  = {floor * 1e3:.2f} ms per step with every other operation free: at most "
          f"{reference_ms / 1e3 / floor:.2f}x the reference's {reference_ms:.2f} ms; 1.5x needs {target * 1e3:.2f} ms")
    if bf16_mm_s:
        print(f"  the same products in bf16 take {bf16_mm_s * 1e3:.2f} ms ({flops / bf16_mm_s / 1e9:.0f} GFLOP/s): "
              f"with them, every other operation free, a step could take "
              f"{(bf16_mm_s + attention_s + optimiser_s) * 1e3:.2f} ms (bf16 is what gets past the float32 ceiling)")
    print("two smaller candidates, timed alone in the same way (4 layers, forward and backward):")
    print(f"  attention with the causal mask as a tensor (the course's default path) {masked_s * 1e3:.2f} ms, "
          f"with is_causal=True {attention_s * 1e3:.2f} ms")
    print(f"  queries, keys and values from two matrix products (the course's q and kv) {separate_s * 1e3:.2f} ms, "
          f"from one fused product (nanoGPT's c_attn) {fused_s * 1e3:.2f} ms")


#: Self time of the profiled ops, by kind: the compiled graphs' own kernels and wrappers first (their
#: names hold hashes), then ATen ops by name.
_WRAPPERS = ("compiledfxgraph", "compiledfunction", "torch-compiled region", "torchdynamo cache lookup")
_OP_KINDS = {"matmul": lambda op: op in {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear"},
             "loss": lambda op: "cross_entropy" in op or "nll_loss" in op or "log_softmax" in op,
             "attention": lambda op: any(k in op for k in ("scaled_dot_product", "flash_attention", "softmax")),
             "normalisation": lambda op: "layer_norm" in op or "rms_norm" in op,
             "optimiser and clipping": lambda op: any(k in op for k in ("_foreach", "adam", "clip_grad", "vector_norm"))}


def _kind(name: str) -> str:
    name = name.lower()
    if name.startswith("graph_") and "cpp_fused" in name:
        return "fused kernels (compiled)"
    if any(w in name for w in _WRAPPERS):
        return "compiled graphs' Python wrappers"
    if name.startswith("optimizer."):
        return "optimiser and clipping"
    op = name.removeprefix("aten::")
    return next((k for k, test in _OP_KINDS.items() if test(op)), "element-wise and other ops")


def profile_course_step(vocab_size, train_ids, valid_ids, reference_ms: float, steps: int = 20) -> None:
    """Where a course step's time goes (self CPU time of each profiled op, by kind), for the Trainer as
    it is, compiled, and compiled in bf16; and what the matrix products, attention and the optimiser
    alone take *inside* the step, against 1.5x the reference's ``reference_ms``."""
    import torch._inductor.config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    variants = {"course Trainer": {}}
    if cpp_compiler():
        variants["course Trainer, compile=True"] = {"compile": True}
        if bf16_supported("cpu"):
            variants["course Trainer, compile=True, precision='bfloat16'"] = {"compile": True, "precision": "bfloat16"}
    for title, changes in variants.items():
        old = inductor_config.cpp.enable_kernel_profile, inductor_config.force_disable_caches
        # the compiled kernels by name in the profile: generated afresh (a cached graph has no such names)
        inductor_config.cpp.enable_kernel_profile, inductor_config.force_disable_caches = True, True
        torch._dynamo.reset()  # forget the graphs compiled above, which the new Trainer would reuse
        warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")  # as asked, caches off
        try:
            course = Trainer(nanogpt_model(vocab_size), train_ids, valid_ids,
                             dataclasses.replace(nanogpt_config(2 * steps + 10), **changes), show_progress=False)
            unprofiled = statistics.median(interleave({"step": course.train_step}, rounds=5, block=steps // 5)["step"])
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                for _ in range(steps):
                    course.train_step()
                wall = time.perf_counter() - t0
        finally:
            inductor_config.cpp.enable_kernel_profile, inductor_config.force_disable_caches = old
        totals: dict[str, float] = {}
        for event in prof.key_averages():
            kind = _kind(event.key)
            totals[kind] = totals.get(kind, 0.0) + event.self_cpu_time_total / 1e6
        ops = sum(totals.values())
        print(f"\nwhere a step goes, {title} ({steps} steps profiled, {wall / steps * 1e3:.1f} ms each with the "
              f"profiler on, {unprofiled * 1e3:.1f} ms without):")
        for kind, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:<34}{seconds / steps * 1e3:>8.2f} ms  {seconds / wall:>6.1%}")
        print(f"  {'Python, dispatch, profiler':<34}{(wall - ops) / steps * 1e3:>8.2f} ms  {(wall - ops) / wall:>6.1%} "
              "(wall time not inside any op)")
        floor = sum(totals.get(k, 0.0) for k in ("matmul", "attention", "optimiser and clipping")) / steps
        print(f"  matrix products, attention and the optimiser alone, inside the step: {floor * 1e3:.2f} ms; "
              f"1.5x the reference ({reference_ms:.2f} ms, measured above) needs {reference_ms / 1.5:.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 steps instead of 2000")
    parser.add_argument("--skip-kv", action="store_true", help="leave out the KV-cache measurement")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the side-by-side (default 10)")
    parser.add_argument("--block", type=int, default=20, help="steps of each loop per round (default 20)")
    parser.add_argument("--profile", action="store_true", help="also break a course step down by kind of op")
    parser.add_argument("--candidates", action="store_true",
                        help="also measure each candidate speed-up against the course Trainer as it is")
    parser.add_argument("--ceiling", action="store_true",
                        help="also time a step's matrix products, attention and optimiser alone (the ceiling)")
    parser.add_argument("--side-by-side-only", action="store_true",
                        help="stop after the side-by-side (and the profile, candidates, ceiling)")
    args = parser.parse_args()
    steps = 300 if args.quick else 2000

    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train_text, unk_token="<unk>")
    train_ids, valid_ids = vocab.encode(train_text), vocab.encode(valid_text)
    peak = measure_matmul_flops(1024, repeats=10)
    bf16_peak = measure_matmul_flops(1024, repeats=10, dtype=torch.bfloat16) if bf16_supported("cpu") else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.2f}; "
          f"measured float32 matmul peak {peak / 1e9:.1f} GFLOP/s; bf16 on this CPU: {bf16_supported('cpu')}"
          + (f", bf16 matmul peak {bf16_peak / 1e9:.1f} GFLOP/s" if bf16_peak else ""))
    rounds, block = (3, 5) if args.quick else (args.rounds, args.block)
    reference_ms = side_by_side(vocab.size, train_ids, valid_ids, peak, bf16_peak, rounds=rounds, block=block)
    if args.profile:
        profile_course_step(vocab.size, train_ids, valid_ids, reference_ms)
    if args.candidates:
        candidates(vocab.size, train_ids, valid_ids, rounds=max(3, rounds // 2), block=block // 2)
    if args.ceiling:
        matmul_floor(vocab.size, train_ids, valid_ids, reference_ms)
    if args.side_by_side_only:
        return 0
    print()
    print(f"{'run':<34}{'params':>10}{'steps':>7}{'train s':>9}{'wall s':>8}{'tok/s':>10}{'MFU':>8}{'val loss':>9}")

    nano_hist, nano_val, nano_tps = run("nanoGPT CPU config, float32", nanogpt_model(vocab.size), nanogpt_config(steps),
                                train_ids, valid_ids, peak)
    bf16_off = 0.0
    if bf16_supported("cpu"):
        compiled = bool(cpp_compiler())
        bf16_config = dataclasses.replace(nanogpt_config(steps, "bfloat16"), compile=compiled)
        _, bf16_val, _ = run(f"nanoGPT CPU config, bf16{', compiled' if compiled else ''}", nanogpt_model(vocab.size),
                             bf16_config, train_ids, valid_ids, bf16_peak)
        bf16_off = abs(bf16_val - nano_val)
        print(f"bf16 against float32, same steps and data: validation losses {bf16_off:.4f} nats apart "
              f"({'within' if bf16_off <= BF16_TOLERANCE else 'NOT within'} the stated {BF16_TOLERANCE} nats)")
    budget = nano_hist.train_seconds
    _, course_val, _ = run(f"course recipe, {budget:.0f} s budget", course_model(vocab.size), course_config(budget),
                           train_ids, valid_ids, peak)

    print(f"same {budget:.0f} s of training: nanoGPT configuration {nano_val:.4f} nats "
          f"({nano_val / 0.693147:.3f} bits/char), course recipe {course_val:.4f} nats "
          f"({course_val / 0.693147:.3f} bits/char): {'course recipe lower' if course_val < nano_val else 'NOT lower'}")

    status = 0 if course_val < nano_val and bf16_off <= BF16_TOLERANCE else 1
    if not args.skip_kv:
        print("\nKV cache (benchmarks/kv_cache.py):", flush=True)
        here = Path(__file__).resolve().parent
        status |= subprocess.run([sys.executable, str(here / "kv_cache.py")]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
