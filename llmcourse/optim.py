"""The optimiser's pieces: the learning-rate schedule, AdamW's parameter groups, and the precision.

Small, separate and at the bottom of the package (above :mod:`llmcourse.checks` only), because more
than one training loop uses them: the course :class:`~llmcourse.training.Trainer`, the sequence-to-
sequence loop of notebook 04 (:func:`llmcourse.transformer.train_seq2seq`), and the loops the learner
writes by hand in notebook 05.

- :func:`lr_factor`: linear warm-up, then constant, cosine or linear decay.
- :func:`parameter_groups`: weight decay on weight matrices only.
- :func:`bf16_supported` and :func:`bf16_pays`: whether a device has bfloat16 units, and whether
  ``precision="auto"`` uses them.
- :func:`compile_loss`: a Transformer's training loss through ``torch.compile`` (``TrainConfig(compile=True)``);
  :func:`cpp_compiler`: the C++ compiler it needs on a CPU, if there is one.
"""

from __future__ import annotations

import math
import shutil

import torch
import torch.nn.functional as F

from llmcourse.checks import check_choice, check_fraction, check_number
from llmcourse.checks import fail as check_fail

__all__ = ["SCHEDULES", "bf16_pays", "bf16_supported", "compile_loss", "cpp_compiler", "lr_factor",
           "parameter_groups"]

#: Learning-rate schedules after the warm-up.
SCHEDULES = ("constant", "cosine", "linear")


def lr_factor(schedule: str, progress_frac: float, warmup_frac: float, min_lr_ratio: float) -> float:
    """The learning-rate multiplier at a point ``progress_frac`` in [0, 1] of the run.

    Linear warm-up from ~0 to 1 over the first ``warmup_frac`` (in [0, 1)) of the run, then
    ``"constant"`` (1), ``"cosine"`` or ``"linear"`` decay from 1 to ``min_lr_ratio`` (in [0, 1]) at the
    end. A ``progress_frac`` past 1 stays at the end value.
    """
    check_choice("schedule", schedule, SCHEDULES)
    progress_frac = check_number("progress_frac", progress_frac, minimum=0.0)
    warmup_frac = check_fraction("warmup_frac", warmup_frac, open_high=True)
    min_lr_ratio = check_fraction("min_lr_ratio", min_lr_ratio)
    if progress_frac < warmup_frac:
        return (progress_frac + 1e-9) / warmup_frac
    if schedule == "constant":
        return 1.0
    p = min(1.0, (progress_frac - warmup_frac) / max(1e-9, 1 - warmup_frac))
    decay = 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1 - p
    return min_lr_ratio + (1 - min_lr_ratio) * decay


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two groups: ``weight_decay`` on weight matrices, 0 on biases, norm gains and embeddings.

    A matrix (``dim >= 2``) whose name contains ``embed`` is an embedding table. A tied head shares the
    embedding's tensor and is listed once (``named_parameters`` skips duplicates).
    """
    if not isinstance(model, torch.nn.Module):
        raise check_fail("model", "a torch.nn.Module", model)
    weight_decay = check_number("weight_decay", weight_decay, minimum=0.0)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def bf16_supported(device: torch.device | str) -> bool:
    """Whether ``device`` has hardware bfloat16 (a CUDA GPU from Ampere on; a CPU with AVX512-BF16 or AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        mkldnn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(mkldnn()) if mkldnn is not None else False
    return False


def bf16_pays(device: torch.device | str) -> bool:
    """Whether ``precision="auto"`` picks bfloat16 on ``device``: on a CUDA GPU with bf16 units, never on
    a CPU.

    On a CPU, bf16 changes the numbers a run gives (its products round to 8 significant bits), and the
    course wants a notebook's numbers to be the same on every laptop; whether it is faster depends on the
    CPU and the model. Measured (``benchmarks/pretraining.py``): on an Intel Xeon with AMX tiles, once
    attention stays in float32, bf16 autocast steps are 1.2x as fast as float32's on nanoGPT's
    configuration and 1.06x on notebook 05's recipe; compiled, bf16 is 1.4-1.5x compiled float32 on the one
    and 1.27x on the other. Before that fix bf16 was 10% slower than float32 on an AMD EPYC with
    AVX512-BF16 and 15-18% slower on the Xeon. A run that wants bf16 on a CPU asks for
    ``precision="bfloat16"``.
    """
    device = torch.device(device)
    return device.type == "cuda" and bf16_supported(device)


def cpp_compiler() -> str | None:
    """The path of a C++ compiler on PATH (what ``torch.compile`` builds its CPU kernels with), or None."""
    found = next((c for c in ("g++", "c++", "clang++", "cl") if shutil.which(c)), None)
    return shutil.which(found) if found else None


def compile_loss(model: torch.nn.Module, *, cpp_wrapper: bool = True):
    """``torch.compile`` of a Transformer's training loss: ``(ids (B, T), targets (B, T), reduction) -> loss``.

    The cross-entropy of the model's causal logits against ``targets`` (-100 = ignored), ``reduction``
    ``"mean"`` or ``"sum"``: what ``TrainConfig(compile=True)`` trains through. The loss is inside the
    compiled graph because its softmax over the vocabulary and that softmax's gradient are element-wise
    work on the largest tensor of a step, which the compiler fuses too. The model's ``forward`` checks its
    arguments (token ids in range, lengths), which reads values back to Python and would cut the graph in
    pieces; the trainer checks its data once, up front, so this takes the model's unchecked path
    (``_logits``). Compiling happens at the first call (tens of seconds on a CPU the first time, a few
    seconds from the compiler's cache after that): the caller must be ready for it to fail there -- no
    C++ compiler, an unsupported platform -- and fall back to the model itself.

    ``cpp_wrapper``: the compiled graph calls its kernels and matrix products from generated C++ rather
    than generated Python, which saves a few percent of a small model's step (``benchmarks/pretraining.py
    --candidates`` measures it against the Python wrapper).
    """
    logits = getattr(model, "_logits", None)
    if logits is None or getattr(getattr(model, "config", None), "n_experts", 0):
        raise check_fail("model", "a TransformerLM without experts (compile=True needs its unchecked logits "
                         "path; a mixture of experts keeps a balance loss outside it)", model)
    def loss(ids: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
        out = logits(ids, None)
        return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), targets.reshape(-1), reduction=reduction)

    return torch.compile(loss, options={"cpp_wrapper": bool(cpp_wrapper)})
