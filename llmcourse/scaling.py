"""Accounting for model size: parameters, training compute and memory.

The rules of thumb the whole field uses, as plain functions (notebook 00 meets them, notebook 06
derives and measures them):

* training compute C ≈ 6·N·D FLOPs for N parameters and D tokens: per token and parameter, 2 FLOPs
  in the forward pass (a multiply and an add) and about 4 in the backward pass;
* weights take N × (bytes per parameter) of memory; training with mixed-precision Adam keeps
  16 bytes per parameter (fp16 weights 2 + fp16 gradients 2 + fp32 master weights 4 + Adam's two
  fp32 moments 8), before activations.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
ADAM_MIXED_PRECISION_BYTES = 16.0


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def training_flops(n_params: float, n_tokens: float) -> float:
    """C ≈ 6·N·D: FLOPs to train ``n_params`` parameters on ``n_tokens`` tokens.

    >>> f"{training_flops(175e9, 300e9):.3g}"   # GPT-3; the paper reports 3.14e23
    '3.15e+23'
    """
    return 6.0 * _positive(n_params, "n_params") * _positive(n_tokens, "n_tokens")


def flops_per_token(n_params: float, n_layer: int, seq_len: int, d_model: int) -> float:
    """Training FLOPs per token of a decoder-only Transformer: ``6·N + 12·L·T·d`` (PaLM, appendix B).

    ``6·N``: every weight matrix costs 2 FLOPs per parameter per token forward, twice that backward.
    ``12·L·T·d``: attention's two products (queries × keys, weights × values) cost ``2·T·d`` FLOPs each
    per token and layer forward, times 3 for the backward pass; a causal mask needs only half of that,
    but the kernels compute it all, so MFU counts it all (as nanoGPT and PaLM do). N counts the weights
    a token's computation multiplies: every parameter except the position-embedding table (a tied
    token embedding counts once, as the output layer).
    """
    for name, v in (("n_layer", n_layer), ("seq_len", seq_len), ("d_model", d_model)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    return 6.0 * _positive(n_params, "n_params") + 12.0 * n_layer * seq_len * d_model


def mfu(tokens_per_second: float, flops_per_token_: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: the FLOP/s the model's arithmetic needs at this throughput, as a
    fraction of ``peak_flops`` (measure it with :func:`measure_matmul_flops`; never a quoted figure
    for hardware you are not running on)."""
    return (_positive(tokens_per_second, "tokens_per_second") * _positive(flops_per_token_, "flops_per_token")
            / _positive(peak_flops, "peak_flops"))


def weight_memory_bytes(n_params: float, precision: str = "fp16") -> float:
    """Bytes to hold the weights alone at ``precision`` (one of ``BYTES_PER_PARAM``)."""
    if precision not in BYTES_PER_PARAM:
        raise ValueError(f"precision must be one of {sorted(BYTES_PER_PARAM)}, got {precision!r}")
    return _positive(n_params, "n_params") * BYTES_PER_PARAM[precision]


def training_memory_bytes(n_params: float) -> float:
    """Bytes of model state for mixed-precision Adam training (16 per parameter), activations excluded."""
    return _positive(n_params, "n_params") * ADAM_MIXED_PRECISION_BYTES


def measure_matmul_flops(size: int = 1024, repeats: int = 5, dtype=None) -> float:
    """Measured FLOP/s of a dense ``size × size`` float32 matrix multiply on the CPU, best of ``repeats``.

    A matmul of two n×n matrices costs 2·n³ FLOPs. This is the peak the course compares its training
    throughput against (model FLOPs utilisation), measured on the machine at hand rather than quoted.
    """
    import torch

    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    dtype = dtype or torch.float32
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up: thread pool start, first-touch of memory
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


@dataclass(frozen=True)
class PublishedModel:
    """A model's published size. ``tokens`` is None where the paper gives no token count;
    ``active_params`` is the parameters used per token (smaller than ``params`` for mixtures of experts)."""

    name: str
    year: int
    params: float
    active_params: float
    tokens: float | None
    kind: str
    source: str

    @property
    def training_flops(self) -> float | None:
        """6·N·D with N the active parameters: what one token's forward and backward pass costs."""
        return None if self.tokens is None else training_flops(self.active_params, self.tokens)


def published_models() -> list[PublishedModel]:
    """Published sizes of well-known language models, from ``data/published_models.csv`` (checksummed;
    every row cites its paper)."""
    import csv

    from llmcourse.datasets import verify_file

    path = verify_file("published_models.csv")
    models = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            params = float(row["params"])
            models.append(
                PublishedModel(
                    name=row["name"],
                    year=int(row["year"]),
                    params=params,
                    active_params=float(row["active_params"]) if row["active_params"] else params,
                    tokens=float(row["tokens"]) if row["tokens"] else None,
                    kind=row["kind"],
                    source=row["source"],
                )
            )
    return models


H100_BF16_DENSE_FLOPS = 989e12  # NVIDIA H100 SXM datasheet, dense bf16 tensor-core peak
SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY


def _duration(seconds: float) -> str:
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{seconds / 3600:,.1f} hours"
    if seconds < 2 * SECONDS_PER_YEAR:
        return f"{seconds / SECONDS_PER_DAY:,.1f} days"
    return f"{seconds / SECONDS_PER_YEAR:,.0f} years"


def size_report(model: str, precision: str, flops_per_second: float, *, gpus: int = 1000, mfu: float = 0.4) -> str:
    """What a published model's size means in memory and time (the logic of notebook 00's widget).

    ``flops_per_second`` is this computer's measured rate (:func:`measure_matmul_flops`); the cluster
    line assumes ``gpus`` H100s running at ``mfu`` of their datasheet peak.
    """
    by_name = {m.name: m for m in published_models()}
    if model not in by_name:
        raise ValueError(f"model must be one of {sorted(by_name)}, got {model!r}")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must lie in (0, 1], got {mfu!r}")
    if not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"gpus must be a positive int, got {gpus!r}")
    rate = _positive(flops_per_second, "flops_per_second")
    m = by_name[model]
    weights = weight_memory_bytes(m.params, precision)
    lines = [f"{m.name} ({m.year}, {m.kind}): {m.params / 1e9:,.3g} billion parameters"]
    if m.active_params != m.params:
        lines[0] += f", {m.active_params / 1e9:,.3g} billion active per token"
    lines.append(f"  weights in {precision}: {weights / 1e9:,.1f} GB"
                 f" = {max(1, -(-weights // 80e9)):,.0f} GPUs of 80 GB just to hold them")
    lines.append(f"  training state (mixed-precision Adam, 16 bytes/parameter): {training_memory_bytes(m.params) / 1e12:,.2f} TB")
    if m.tokens is None:
        lines.append("  training tokens: not published, so no compute estimate")
    else:
        c = m.training_flops
        lines.append(f"  training tokens: {m.tokens / 1e9:,.0f} billion ({m.tokens / m.params:,.1f} per parameter)")
        lines.append(f"  training compute 6·N·D: {c:.3g} FLOPs")
        lines.append(f"  on this computer ({rate:.2g} FLOP/s measured): {_duration(c / rate)}")
        cluster = gpus * mfu * H100_BF16_DENSE_FLOPS
        lines.append(f"  on {gpus:,} H100 GPUs at {mfu:.0%} of their bf16 peak: {_duration(c / cluster)}")
    lines.append(f"  source: {m.source}")
    return "\n".join(lines)
