"""Accounting for model size: parameters, training compute and memory.

The rules of thumb the whole field uses, as plain functions (notebook 00 meets them, notebook 06
derives and measures them):

* training compute C ≈ 6·N·D FLOPs for N parameters and D tokens: per token and parameter, 2 FLOPs
  in the forward pass (a multiply and an add) and about 4 in the backward pass;
* weights take N × (bytes per parameter) of memory; training with mixed-precision Adam keeps
  16 bytes per parameter (fp16 weights 2 + fp16 gradients 2 + fp32 master weights 4 + Adam's two
  fp32 moments 8), before activations.

Further down, the accounting a course on large models needs beyond those two rules:

* how to split a compute budget between parameters and tokens (Chinchilla, Hoffmann et al. 2022):
  :func:`chinchilla_loss`, :func:`chinchilla_optimal`, :func:`chinchilla_rule_of_thumb`;
* how much of the 16 bytes per parameter each GPU holds when data-parallel training shards them
  (ZeRO, Rajbhandari et al. 2020): :func:`zero_memory_per_device`;
* the memory the activations take, which the 16 bytes leave out (Korthikanti et al. 2022):
  :func:`activation_memory_bytes`;
* how long a compute budget takes on given hardware: :func:`training_time_seconds`.

Then the measurements of notebook 06: power-law and IsoFLOP fits, the ladder of small models those fits
are made on, and the word-completion probe of the emergence experiment. This module is longer than the
others because its parts are one argument -- the accounting predicts, the ladder
measures, the fits compare the two -- and notebook 06 walks through them in that order; distributed
training, the other half of notebook 06, is in :mod:`llmcourse.distributed`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, fail

BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
ADAM_MIXED_PRECISION_BYTES = 16.0


def training_flops(n_params: float, n_tokens: float) -> float:
    """C ≈ 6·N·D: FLOPs to train ``n_params`` parameters on ``n_tokens`` tokens.

    >>> f"{training_flops(175e9, 300e9):.3g}"   # GPT-3; the paper reports 3.14e23
    '3.15e+23'
    """
    return 6.0 * check_number("n_params", n_params, minimum=0.0, strict=True) * check_number("n_tokens", n_tokens, minimum=0.0, strict=True)


def flops_per_token(n_params: float, n_layer: int, seq_len: int, d_model: int) -> float:
    """Training FLOPs per token of a decoder-only Transformer: ``6·N + 12·L·T·d`` (PaLM, appendix B).

    ``6·N``: every weight matrix costs 2 FLOPs per parameter per token forward, twice that backward.
    ``12·L·T·d``: attention's two products (queries × keys, weights × values) cost ``2·T·d`` FLOPs each
    per token and layer forward, times 3 for the backward pass; a causal mask needs only half of that,
    but the kernels compute it all, so MFU counts it all (as nanoGPT and PaLM do). N counts the weights
    a token's computation multiplies: every parameter except the position-embedding table (a tied
    token embedding counts once, as the output layer).
    """
    n_layer, seq_len = check_int("n_layer", n_layer), check_int("seq_len", seq_len)
    d_model = check_int("d_model", d_model)
    return 6.0 * check_number("n_params", n_params, minimum=0.0, strict=True) + 12.0 * n_layer * seq_len * d_model


def mfu(tokens_per_second: float, flops_per_token_: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: the FLOP/s the model's arithmetic needs at this throughput, as a
    fraction of ``peak_flops`` (measure it with :func:`measure_matmul_flops`; never a quoted figure
    for hardware you are not running on)."""
    return (check_number("tokens_per_second", tokens_per_second, minimum=0.0, strict=True) * check_number("flops_per_token", flops_per_token_, minimum=0.0, strict=True)
            / check_number("peak_flops", peak_flops, minimum=0.0, strict=True))


def weight_memory_bytes(n_params: float, precision: str = "fp16") -> float:
    """Bytes to hold the weights alone at ``precision`` (one of ``BYTES_PER_PARAM``)."""
    check_choice("precision", precision, sorted(BYTES_PER_PARAM))
    return check_number("n_params", n_params, minimum=0.0, strict=True) * BYTES_PER_PARAM[precision]


def training_memory_bytes(n_params: float) -> float:
    """Bytes of model state for mixed-precision Adam training (16 per parameter), activations excluded."""
    return check_number("n_params", n_params, minimum=0.0, strict=True) * ADAM_MIXED_PRECISION_BYTES


def measure_matmul_flops(size: int = 1024, repeats: int = 5, dtype=None) -> float:
    """Measured FLOP/s of a dense ``size × size`` float32 matrix multiply on the CPU, best of ``repeats``.

    A matmul of two n×n matrices costs 2·n³ FLOPs. This is the peak the course compares its training
    throughput against (model FLOPs utilisation), measured on the machine at hand rather than quoted.
    """
    import torch

    size, repeats = check_int("size", size, minimum=16), check_int("repeats", repeats)
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
    check_choice("model", model, sorted(by_name))
    check_choice("precision", precision, sorted(BYTES_PER_PARAM))
    mfu = check_number("mfu", mfu, minimum=0.0, maximum=1.0, strict=True)
    gpus = check_int("gpus", gpus)
    rate = check_number("flops_per_second", flops_per_second, minimum=0.0, strict=True)
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


@dataclass(frozen=True)
class ChinchillaFit:
    """The parametric loss model ``L(N, D) = E + A / N**alpha + B / D**beta`` (loss in nats per token).

    ``E`` is the loss of an ideal model on infinite data (the entropy of text itself, which no model
    removes); ``A / N**alpha`` is what a model with only N parameters loses by being too small;
    ``B / D**beta`` is what training on only D tokens loses by not having seen enough.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("E", "A", "B", "alpha", "beta"):
            check_number(name, getattr(self, name), minimum=0.0, strict=True)


CHINCHILLA_FIT = ChinchillaFit(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
    source="Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', section 3.3 "
           "(approach 3, the parametric fit), equation (10)",
)


def chinchilla_loss(n_params: float, n_tokens: float, fit: ChinchillaFit = CHINCHILLA_FIT) -> float:
    """Predicted final training loss (nats per token) of a model with ``n_params`` parameters
    trained on ``n_tokens`` tokens: ``L(N, D) = E + A / N**alpha + B / D**beta``.

    With the published constants, Chinchilla itself (70B parameters, 1.4T tokens) comes out at
    about 1.94 nats; no amount of parameters or data gets below ``E = 1.69``. The fit describes
    the paper's models on the paper's data (MassiveText); another data set has other constants.
    """
    if not isinstance(fit, ChinchillaFit):
        raise ArgumentError(f"fit must be a ChinchillaFit, got {fit!r}")
    n = check_number("n_params", n_params, minimum=0.0, strict=True)
    d = check_number("n_tokens", n_tokens, minimum=0.0, strict=True)
    return fit.E + fit.A / n**fit.alpha + fit.B / d**fit.beta


def chinchilla_optimal(compute_flops: float, fit: ChinchillaFit = CHINCHILLA_FIT) -> tuple[float, float]:
    """The model size and token count ``(N_opt, D_opt)`` that minimise :func:`chinchilla_loss` for a
    compute budget of ``compute_flops`` FLOPs, spent as ``C = 6·N·D``.

    Put ``D = C / (6N)`` into the loss and set its derivative in N to zero:
    ``alpha·A / N**alpha = beta·B / D**beta``, that is, at the optimum the last parameter and the
    last token buy the same loss. Solving gives the closed form of the paper's section 3.3::

        N_opt = G · (C/6)**a,   D_opt = (C/6)**b / G,
        a = beta / (alpha + beta),  b = alpha / (alpha + beta),
        G = (alpha·A / (beta·B)) ** (1 / (alpha + beta)).

    With the published constants a ≈ 0.45 and b ≈ 0.55: ten times the compute buys a model about
    2.8 times larger trained on about 3.5 times more tokens. This fit (the paper's approach 3)
    recommends smaller models than its approaches 1 and 2 (Table 3 lists approach 1): about half
    the size at Gopher's budget of 5.76e23 FLOPs.
    """
    if not isinstance(fit, ChinchillaFit):
        raise ArgumentError(f"fit must be a ChinchillaFit, got {fit!r}")
    c6 = check_number("compute_flops", compute_flops, minimum=0.0, strict=True) / 6.0
    s = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / s)
    return g * c6 ** (fit.beta / s), c6 ** (fit.alpha / s) / g


def chinchilla_rule_of_thumb(compute_flops: float, tokens_per_param: float = 20.0) -> tuple[float, float]:
    """``(N, D)`` for a compute budget under the rule "train on about 20 tokens per parameter".

    With ``D = r·N`` and ``C = 6·N·D = 6·r·N²``: ``N = sqrt(C / (6·r))`` and ``D = r·N``. Chinchilla
    (70B parameters, 1.4T tokens) is exactly 20 tokens per parameter; the paper's Table 3 ranges from
    20 to about 22. The rule is for the cheapest *training*: a model that will serve many requests is
    often trained far longer (Llama 3 8B saw about 1,900 tokens per parameter), since a smaller model
    is cheaper to run.
    """
    c = check_number("compute_flops", compute_flops, minimum=0.0, strict=True)
    r = check_number("tokens_per_param", tokens_per_param, minimum=0.0, strict=True)
    n = math.sqrt(c / (6.0 * r))
    return n, r * n


# --- ZeRO: sharding the model states across data-parallel devices (Rajbhandari et al. 2020) ------


def zero_memory_per_device(n_params: float, n_devices: int, stage: int, optimizer_bytes: float = 12.0) -> float:
    """Bytes of model states each device holds when ``n_devices`` data-parallel devices train
    ``n_params`` parameters (Ψ) with mixed-precision Adam, under ZeRO stage ``stage``.

    Per parameter, mixed-precision Adam keeps fp16 weights (2 bytes), fp16 gradients (2 bytes) and
    optimizer states of K bytes, ``optimizer_bytes`` (K = 12: an fp32 master copy of the weights and
    Adam's two fp32 moments, 4 bytes each). Plain data parallelism copies all of it onto every device;
    ZeRO splits ("partitions") more of it across the Nd devices at each stage (the paper's Figure 1):

    * stage 0, plain data parallel:                 ``(2 + 2 + K)·Ψ``
    * stage 1, optimizer states split (P_os):       ``2Ψ + 2Ψ + K·Ψ/Nd``
    * stage 2, + gradients split (P_os+g):          ``2Ψ + (2 + K)·Ψ/Nd``
    * stage 3, + parameters split (P_os+g+p):       ``(2 + 2 + K)·Ψ/Nd``

    Stage 3 divides everything by Nd, at the price of gathering each layer's weights from the other
    devices when it is needed. Activations, temporary buffers and fragmentation come on top (see
    :func:`activation_memory_bytes`). A 7.5B-parameter model on 64 devices: 120 GB per device
    without ZeRO, 31.4 GB, 16.6 GB and 1.9 GB with stages 1, 2 and 3.
    """
    psi = check_number("n_params", n_params, minimum=0.0, strict=True)
    nd = check_int("n_devices", n_devices)
    k = check_number("optimizer_bytes", optimizer_bytes, minimum=0.0, strict=True)
    stage = check_int("stage", stage, minimum=0, maximum=3)
    if stage == 0:
        return (2.0 + 2.0 + k) * psi
    if stage == 1:
        return 2.0 * psi + 2.0 * psi + k * psi / nd
    if stage == 2:
        return 2.0 * psi + (2.0 + k) * psi / nd
    return (2.0 + 2.0 + k) * psi / nd


# --- Activation memory (Korthikanti et al. 2022) ----------------------------------------------


def activation_memory_bytes(seq_len: int, batch_size: int, d_model: int, n_layer: int, n_head: int,
                            bytes_per_value: float = 2.0) -> float:
    """Bytes of activations a GPT-style Transformer keeps for the backward pass, with no
    recomputation, no tensor or sequence parallelism: ``n_layer · s·b·h·(34 + 5·a·s/h)`` for 16-bit
    values (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
    Models", section 4.1), with s = ``seq_len``, b = ``batch_size``,
    h = ``d_model``, a = ``n_head``.

    Where the numbers come from, per layer, counting what the backward pass needs stored:

    * ``34·s·b·h``: 16 tensors of s·b·h values at 2 bytes = 32 (the attention block's input, Q, K, V
      and the output projection's input; the MLP's input and its two 4h-wide tensors around the GeLU;
      the two LayerNorms' inputs), plus two dropout masks at 1 byte each;
    * ``5·a·s²·b``: the attention matrices, one s×s per head: the softmax output and the dropout
      output (2 bytes each) and the dropout mask (1 byte). This term grows with the *square* of the
      sequence length, and is why long contexts run out of memory (FlashAttention never stores it).

    ``bytes_per_value`` changes the size of the stored values (4 for fp32 activations); dropout masks
    stay at 1 byte, so in general a layer keeps ``s·b·h·(16·p + 2) + a·s²·b·(2·p + 1)`` bytes, which is
    the paper's formula at p = 2. Activations of the embedding and the output layer are left out, as
    in the paper.
    """
    s = check_int("seq_len", seq_len)
    b = check_int("batch_size", batch_size)
    h = check_int("d_model", d_model)
    n_layer = check_int("n_layer", n_layer)
    a = check_int("n_head", n_head)
    if h % a:
        raise ArgumentError(f"n_head must divide d_model, got n_head={n_head!r} for d_model={d_model!r}")
    p = check_number("bytes_per_value", bytes_per_value, minimum=0.0, strict=True)
    per_layer = s * b * h * (16.0 * p + 2.0) + a * s * s * b * (2.0 * p + 1.0)
    return n_layer * per_layer


# --- Wall-clock time -------------------------------------------------------------------------


def training_time_seconds(compute_flops: float, peak_flops_per_device: float, n_devices: int = 1,
                          mfu: float = 0.4) -> float:
    """Seconds to spend ``compute_flops`` FLOPs on ``n_devices`` devices, each with a peak rate of
    ``peak_flops_per_device`` FLOP/s, of which the training run achieves the fraction ``mfu``
    (model FLOPs utilisation): ``C / (n_devices · peak · mfu)``.

    Large runs typically reach 0.3 to 0.5 of the datasheet peak (PaLM reported 0.46); the rest goes to
    memory traffic, communication and pipeline bubbles. Example: GPT-3's 3.15e23 FLOPs on 1,000 H100s
    (989e12 FLOP/s bf16 each) at 0.4 take about 8e5 s, 9.2 days.
    """
    c = check_number("compute_flops", compute_flops, minimum=0.0, strict=True)
    peak = check_number("peak_flops_per_device", peak_flops_per_device, minimum=0.0, strict=True)
    n = check_int("n_devices", n_devices)
    mfu = check_number("mfu", mfu, minimum=0.0, maximum=1.0, strict=True)
    return c / (n * peak * mfu)


# --- Scaling laws, measured: power-law fits, IsoFLOP minima, a ladder of small models ----------


@dataclass(frozen=True)
class PowerLaw:
    """``y = E + A · x**(-alpha)``. With ``E = 0`` a pure power law, a straight line on log-log axes
    of slope ``-alpha``; ``E > 0`` is the floor no amount of ``x`` gets below (the entropy of the text,
    for a loss)."""

    A: float
    alpha: float
    E: float = 0.0

    def __call__(self, x):
        import numpy as np

        return self.E + self.A * np.asarray(x, dtype=float) ** (-self.alpha)

    def __str__(self) -> str:
        floor = f"{self.E:.3f} + " if self.E else ""
        return f"{floor}{self.A:.4g} · x^(-{self.alpha:.3f})"


def _check_xy(x, y, min_points: int):
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ArgumentError(f"x and y must be 1-D and of the same length, got shapes {x.shape} and {y.shape}")
    if len(x) < min_points:
        raise ArgumentError(f"need at least {min_points} points, got {len(x)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ArgumentError("x and y must be finite and positive (they are fitted on log scales)")
    return x, y


def fit_power_law(x, y, *, offset: bool = False) -> PowerLaw:
    """Fit ``y = E + A · x**(-alpha)`` by least squares on ``log y``.

    ``offset=False`` fits a pure power law (``E = 0``): a straight line through ``(log x, log y)``.
    ``offset=True`` also fits the floor ``E`` in ``[0, min(y))``: for each candidate ``E`` the line
    through ``(log x, log(y - E))`` is exact least squares, and ``E`` is chosen by a grid search
    refined twice (no optimiser needed, and no starting point to get wrong). Needs 2 points, 3 with
    the offset; more make the fit meaningful.

        >>> law = fit_power_law([1, 10, 100], [2.0, 1.0, 0.5])
        >>> round(law.alpha, 4), round(law.A, 4)
        (0.301, 2.0)
    """
    import numpy as np

    if not isinstance(offset, bool):
        raise fail("offset", "True or False", offset)
    x, y = _check_xy(x, y, 3 if offset else 2)
    if np.ptp(x) == 0:
        raise ArgumentError("x must hold at least two different values")
    lx, ly = np.log(x), np.log(y)

    def fit(E: float) -> tuple[float, PowerLaw]:
        slope, intercept = np.polyfit(lx, np.log(y - E), 1)
        law = PowerLaw(float(np.exp(intercept)), float(-slope), float(E))
        return float(np.sum((ly - np.log(np.maximum(law(x), 1e-300))) ** 2)), law

    if not offset:
        return fit(0.0)[1]
    lo, hi = 0.0, float(y.min())
    best = (float("inf"), None)
    for _ in range(3):  # grid, then twice a finer grid around the best cell
        grid = np.linspace(lo, hi, 201)[:-1]
        scores = [fit(E) for E in grid]
        k = int(np.argmin([s for s, _ in scores]))
        if scores[k][0] < best[0]:
            best = scores[k]
        step = grid[1] - grid[0]
        lo, hi = max(0.0, grid[k] - step), min(float(y.min()), grid[k] + step)
    return best[1]


def isoflop_minimum(n_params, losses) -> tuple[float, float]:
    """The compute-optimal size at one compute budget: fit a parabola to ``loss`` against
    ``log10(n_params)`` (Hoffmann et al. 2022, approach 2) and return its vertex ``(N_opt, L_min)``.

    The sizes must bracket the optimum: if the parabola opens downwards, or its vertex lies outside
    the sizes tried, the sweep has not found a minimum and a ``ValueError`` says so.
    """
    import numpy as np

    n, loss = _check_xy(n_params, losses, 3)
    a, b, c = np.polyfit(np.log10(n), loss, 2)
    if a <= 0:
        raise ArgumentError("the losses do not curve upwards around a minimum: try a wider range of sizes")
    v = -b / (2 * a)
    lo, hi = np.log10(n).min(), np.log10(n).max()
    if not lo <= v <= hi:
        raise ArgumentError(f"the fitted minimum (N = {10**v:,.0f}) lies outside the sizes tried "
                         f"({10**lo:,.0f} to {10**hi:,.0f}): add {'smaller' if v < lo else 'larger'} models")
    return float(10**v), float(c - b * b / (4 * a))


#: The course's ladder of LLaMA-style character models: name -> (layers, width). Heads of 16 numbers.
LADDER: dict[str, tuple[int, int]] = {
    "L1-16": (1, 16), "L2-32": (2, 32), "L2-48": (2, 48), "L3-64": (3, 64), "L3-96": (3, 96),
    "L4-128": (4, 128), "L5-160": (5, 160), "L6-192": (6, 192),
}


def ladder_lr(n_embd: int) -> float:
    """The peak learning rate of a ladder model: 0.64 / width, at most 0.02 (0.01 at width 64 and
    0.005 at width 128, the rates notebooks 04 and 05 found good). Wider models need smaller steps
    (the idea behind muP); one rate for all would favour one size and bend the fitted law."""
    return min(0.02, 0.64 / check_int("n_embd", n_embd))


def ladder_model(n_layer: int, n_embd: int, vocab_size: int, block_size: int = 128, seed: int = 0):
    """An untrained LLaMA-style :class:`~llmcourse.transformer.TransformerLM` of the ladder
    (``n_embd // 16`` heads; SwiGLU width about 8/3 · ``n_embd``, a multiple of 16, where LLaMA's own
    rule rounds up to a multiple of 256 and would give a width-16 model a 256-wide MLP), initialised
    from ``seed``."""
    import torch

    from llmcourse.transformer import TransformerConfig, TransformerLM

    n_layer, n_embd = check_int("n_layer", n_layer), check_int("n_embd", n_embd)
    if n_embd % 16:
        raise ArgumentError(f"n_embd must be a multiple of 16 (the head size), got {n_embd}")
    torch.manual_seed(seed)
    return TransformerLM(TransformerConfig.llama(vocab_size, block_size, n_layer=n_layer,
                                                 n_head=n_embd // 16, n_embd=n_embd,
                                                 d_ff=16 * math.ceil(8 * n_embd / 3 / 16)))


def word_completion(model, ids, starts, lengths, context: int = 96, given: int = 0) -> dict[str, float]:
    """How often a character model completes a word, given the ``context`` characters before it and
    the word's first ``given`` letters.

    For each word (it starts at ``ids[starts[i]]`` and has ``lengths[i]`` characters) the model reads
    the context and the word's own earlier characters (teacher forcing), and we ask whether its most
    likely next character is right at every position after the first ``given``. ``char_accuracy`` is
    the fraction of those characters it gets right; ``exact_match`` the fraction of words whose rest
    it gets entirely right, which is what greedy decoding would write out. One forward pass for all
    words.

    Two metrics of the same predictions: ``exact_match`` is roughly ``char_accuracy ** length``, so it
    stays near zero until per-character accuracy is high and then shoots up (Schaeffer et al. 2023,
    "Are Emergent Abilities of Large Language Models a Mirage?").
    """
    import numpy as np
    import torch

    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    if starts.shape != lengths.shape or starts.ndim != 1 or len(starts) == 0:
        raise ArgumentError("starts and lengths must be non-empty 1-D sequences of the same length")
    given = check_int("given", given, minimum=0)
    if (lengths <= given).any():
        raise ArgumentError(f"every word must be longer than given = {given} letters")
    context = check_int("context", context)
    width = context + int(lengths.max()) - 1
    if model.context_size is not None and width > model.context_size:
        raise ArgumentError(f"context + longest word - 1 = {width} exceeds the model's context of {model.context_size}")
    if (starts < context).any() or (starts - context + width + 1 > len(ids)).any():
        raise ArgumentError(f"every start needs {context} characters before it and room for the word after it")
    rows = torch.stack([ids[s - context:s - context + width + 1] for s in starts])  # (n, width + 1)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits, _ = model(rows[:, :-1])
    model.train(was_training)
    guess = logits[:, context - 1:].argmax(-1)            # (n, max_len): predictions for the word
    truth = rows[:, context:]
    j = torch.arange(guess.shape[1])[None, :]
    inside = (j >= given) & (j < torch.as_tensor(lengths)[:, None])
    right = (guess == truth) & inside
    return {"char_accuracy": float(right.sum() / inside.sum()),
            "exact_match": float((right.sum(1) == inside.sum(1)).float().mean()),
            "words": int(len(starts))}


def long_words(text: str, min_len: int = 7, max_len: int = 12, context: int = 96, n: int = 500,
               seed: int = 0) -> tuple[list[int], list[int]]:
    """``(starts, lengths)`` of ``n`` random lower-case words of ``min_len`` to ``max_len`` letters in
    ``text`` (each preceded by at least ``context`` characters): the probe of :func:`word_completion`."""
    import re

    import numpy as np

    found = [(m.start(), len(m.group())) for m in re.finditer(rf"(?<![A-Za-z'])[a-z]{{{min_len},{max_len}}}(?![A-Za-z'])", text)
             if m.start() >= context and m.end() < len(text)]
    if len(found) < n:
        raise ArgumentError(f"text has only {len(found)} such words, fewer than n = {n}")
    pick = np.random.default_rng(seed).choice(len(found), size=n, replace=False)
    pick.sort()
    return [found[i][0] for i in pick], [found[i][1] for i in pick]


#: The ladder's validation sample (characters from the start of the split) and its probe settings.
LADDER_VAL_CHARS = 2**16
LADDER_PROBE = {"words": 500, "letters": (7, 12), "context": 96, "given": 3}


def ladder_data() -> tuple:
    """What every ladder run reads, so that the script, notebook 06 and the tests measure alike:
    ``(vocab, train_ids, val_ids, probe)``: the character vocabulary of the Shakespeare train split,
    the train split's ids, the first :data:`LADDER_VAL_CHARS` characters of the validation split, and
    the :func:`word_completion` probe (:data:`LADDER_PROBE`: 500 words of 7 to 12 letters of the
    validation split, each after 96 characters of context, its first 3 letters given), as keyword
    arguments for :func:`train_ladder_point`'s ``probe``."""
    import torch

    from llmcourse.datasets import load_shakespeare
    from llmcourse.tokenization import CharTokenizer

    train_text, valid_text = load_shakespeare("train"), load_shakespeare("validation")
    vocab = CharTokenizer.from_text(train_text, unk_token="<unk>")
    p = LADDER_PROBE
    starts, lengths = long_words(valid_text, *p["letters"], context=p["context"], n=p["words"])
    probe = {"ids": vocab.encode(valid_text), "starts": starts, "lengths": lengths, "context": p["context"],
             "given": p["given"]}
    return (vocab, torch.from_numpy(vocab.encode(train_text)),
            torch.from_numpy(vocab.encode(valid_text[:LADDER_VAL_CHARS])), probe)


def train_ladder_point(n_layer: int, n_embd: int, vocab_size: int, train_ids, val_ids, *, tokens: int | None = None,
                       budget: float | None = None, batch_size: int = 32, seq_len: int = 128,
                       lr: float | None = None, seed: int = 0, probe=None, show_progress: bool = False) -> dict:
    """Train one ladder model on ``tokens`` tokens, or on ``budget / (6 N)`` tokens for a compute
    budget (give one of the two), with warm-up 5% and cosine decay to 10%, and measure it.

    Compute is counted as Kaplan et al. (2020) do: ``C = 6·N·D`` with N the non-embedding parameters
    (the output layer included, its products are real work) and D the tokens trained on. Returns a
    dict: ``n_layer, n_embd, params, non_embedding, tokens, flops, steps, lr, seconds, val_loss``
    (nats per character on ``val_ids``) and, with ``probe`` (a dict of :func:`word_completion`'s
    arguments after the model), its metrics.
    """
    from llmcourse.lm import evaluate
    from llmcourse.training import TrainConfig, Trainer

    if (tokens is None) == (budget is None):
        raise ArgumentError(f"give tokens or budget, not both or neither; got tokens={tokens!r}, budget={budget!r}")
    model = ladder_model(n_layer, n_embd, check_int("vocab_size", vocab_size), block_size=seq_len, seed=seed)
    n = model.num_parameters(exclude_embeddings=True)
    tokens = check_int("tokens", tokens) if budget is None else int(check_number("budget", budget, minimum=0.0, strict=True) / (6 * n))
    lr = ladder_lr(n_embd) if lr is None else check_number("lr", lr, minimum=0.0, strict=True)
    steps = max(1, round(tokens / (batch_size * seq_len)))
    config = TrainConfig(steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, warmup=0.05,
                         min_lr_ratio=0.1, weight_decay=0.1, clip=1.0, eval_every=max(steps, 1), seed=seed)
    history = Trainer(model, train_ids, val_ids, config, show_progress=show_progress).fit()
    d = steps * batch_size * seq_len
    out = {"n_layer": n_layer, "n_embd": n_embd, "params": model.num_parameters(), "non_embedding": n,
           "tokens": d, "flops": training_flops(n, d), "steps": steps, "lr": lr,
           "seconds": round(history.train_seconds, 2),
           "val_loss": evaluate(model, val_ids)["loss_nats"]}
    if probe is not None:
        out.update(word_completion(model, **probe))
    return out


def load_ladder() -> dict:
    """The committed results of ``scripts/scaling_ladder.py`` (``data/scaling_ladder.json``), checked
    against ``data/SHA256SUMS``: a dict with the settings and ``runs``, one dict per trained model (the
    fields of :func:`train_ladder_point` plus ``name``, ``sweep`` = ``"fixed-D"`` or ``"isoflop"`` and
    ``budget``)."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("scaling_ladder.json").read_text(encoding="utf-8"))


# --- A compute plan: what a budget buys (the logic of notebook 06's explorer) ----------------------

#: Dense (no sparsity) bf16 peak FLOP/s and memory of some accelerators, from their datasheets.
ACCELERATORS: dict[str, tuple[float, float]] = {
    "NVIDIA A100 80GB": (312e12, 80e9),
    "NVIDIA H100 SXM": (989e12, 80e9),
    "NVIDIA H200": (989e12, 141e9),
}


def compute_plan(compute_flops: float, *, n_devices: int = 1024, accelerator: str = "NVIDIA H100 SXM",
                 mfu: float = 0.4, fit: ChinchillaFit = CHINCHILLA_FIT) -> dict:
    """What a training budget of ``compute_flops`` FLOPs buys, by the Chinchilla fit and ZeRO.

    Returns a dict: ``n_params`` and ``n_tokens`` (compute-optimal, :func:`chinchilla_optimal`),
    ``rule_of_thumb`` (``(N, D)`` at 20 tokens per parameter), ``loss`` (predicted, nats per token, on
    the paper's data), ``zero_bytes`` (model-state bytes per device for ZeRO stages 0 to 3 on
    ``n_devices`` devices), ``device_memory`` (bytes), ``fits`` (the stages whose model states fit
    in it, activations not counted), ``seconds`` (training time at ``mfu`` of the accelerator's peak).
    """
    check_choice("accelerator", accelerator, sorted(ACCELERATORS))
    c = check_number("compute_flops", compute_flops, minimum=0.0, strict=True)
    nd = check_int("n_devices", n_devices)
    peak, memory = ACCELERATORS[accelerator]
    n, d = chinchilla_optimal(c, fit)
    zero = {stage: zero_memory_per_device(n, nd, stage) for stage in range(4)}
    return {"compute_flops": c, "n_params": n, "n_tokens": d, "rule_of_thumb": chinchilla_rule_of_thumb(c),
            "loss": chinchilla_loss(n, d, fit), "zero_bytes": zero, "device_memory": memory,
            "fits": [s for s, b in zero.items() if b <= memory], "n_devices": nd, "accelerator": accelerator,
            "seconds": training_time_seconds(c, peak, nd, mfu), "mfu": mfu}


def _count(x: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= size:
            return f"{x / size:,.3g}{suffix}"
    return f"{x:,.3g}"


def compute_plan_text(plan: dict) -> str:
    """:func:`compute_plan` as a few lines of text."""
    n20, d20 = plan["rule_of_thumb"]
    fits = ", ".join(str(s) for s in plan["fits"]) or "none (use tensor/pipeline parallelism too)"
    lines = [
        f"budget {plan['compute_flops']:.2e} FLOPs",
        f"  compute-optimal (Chinchilla fit): {_count(plan['n_params'])} parameters on "
        f"{_count(plan['n_tokens'])} tokens ({plan['n_tokens'] / plan['n_params']:.0f} tokens per parameter)",
        f"  20 tokens per parameter:          {_count(n20)} parameters on {_count(d20)} tokens",
        f"  predicted loss {plan['loss']:.3f} nats per token (the fit's floor is {CHINCHILLA_FIT.E})",
        f"  model states per device on {plan['n_devices']:,} x {plan['accelerator']} "
        f"({plan['device_memory'] / 1e9:.0f} GB): "
        + ", ".join(f"ZeRO-{s} {b / 1e9:,.1f} GB" for s, b in plan["zero_bytes"].items()),
        f"  stages that fit (before activations): {fits}",
        f"  training time at {plan['mfu']:.0%} of peak: {_duration(plan['seconds'])}",
    ]
    return "\n".join(lines)
