"""Pretraining: one trainer for every course model, with checkpoints, exact resume and data parallelism.

Everything a real pretraining loop does, small enough to read in one sitting:

- **AdamW** with two parameter groups: weight decay on the weight matrices, none on biases, norms and
  embeddings (decaying a norm's gain or an embedding row pulls it towards zero for no reason).
- **Linear warm-up, then cosine decay** to ``min_lr_ratio * lr`` (:func:`lr_factor`).
- **Gradient clipping** by global norm, and **gradient accumulation**: ``batch_size`` is always the
  batch of one optimiser step; with ``grad_accum = k`` it is computed as k micro-batches whose
  gradients add up, so memory falls k-fold and the maths does not change.
- **bf16 autocast** (``precision="bfloat16"``, or ``"auto"``: bfloat16 on a CUDA GPU that has it, float32
  on a CPU, so that a run gives the same numbers on every laptop; :func:`llmcourse.optim.bf16_pays`):
  matrix products run in bfloat16; attention (float32 on a CPU, see
  :class:`llmcourse.attention.MultiHeadAttention`), weights, optimiser state and the loss stay float32.
  With ``compile=True`` on a CPU with bf16 units it is the fastest setting measured: 1.5-1.6x the
  plain-PyTorch nanoGPT reference (``benchmarks/pretraining.py``).
- **Periodic evaluation** on a fixed sample of the validation split, a :class:`TrainingHistory` to plot,
  a progress bar with the live loss (silent in CI) and an optional ``callback`` after each evaluation.
- **Checkpoints** in safetensors (:meth:`Trainer.save_checkpoint`): model, AdamW moments, step, clock,
  the position in the data, every random generator's state, the model and training configurations and
  the history, written atomically (a crash mid-write leaves the previous checkpoint intact) with a sha256
  of its contents that is checked on load (:mod:`llmcourse.checkpoints`). A run
  stopped at any point and resumed from its last checkpoint (:meth:`Trainer.load_checkpoint`) produces
  exactly the losses of a run that was never stopped. A checkpoint of another model or another training
  configuration is refused with the fields that differ.
- **Data parallelism**: under ``torchrun --nproc_per_node=N`` (``torch.distributed`` with the gloo
  backend on a CPU, NCCL on GPUs) the same trainer wraps the model in
  :class:`~torch.nn.parallel.DistributedDataParallel`. Each process computes the gradient of its share
  of the batch and an all-reduce averages them, so N processes take the same steps as one process with
  the whole batch. ``python -m llmcourse.training --help`` is the command-line front end.

Batches. The training text is cut into ``batch_size`` contiguous streams; step k reads chunk k
(``seq_len`` tokens) of every stream. A recurrent model carries its state from one chunk to the next
(truncated back-propagation through time); a Transformer reads each chunk as an independent window. One
epoch visits every token once; the next starts at a random offset so chunk boundaries move.
Supervised fine-tuning gives the same trainer :class:`~llmcourse.lm.MaskedExamples` instead: separate
examples (a conversation each), shuffled every epoch, right-padded per batch, with the loss averaged
over the targets the mask keeps (the assistant's words), not over every token.

    >>> from llmcourse.training import TrainConfig, Trainer               # doctest: +SKIP
    >>> trainer = Trainer(model, train_ids, val_ids, TrainConfig(steps=1000, lr=1e-2, warmup=0.05))
    >>> history = trainer.fit()                                            # doctest: +SKIP

Where the pieces live: the schedule, parameter groups and precision in :mod:`llmcourse.optim`, the
checkpoint file in :mod:`llmcourse.checkpoints`, batching and scoring in :mod:`llmcourse.lm`. This module
is longer than most because the :class:`Trainer` is one loop -- its data position, step,
evaluation and the state a checkpoint must capture belong together, and splitting them would make a
reader follow one training step across files; the command line at the end is the loop's front end.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from llmcourse.notebook import progress
from llmcourse.checkpoints import (CHECKPOINT_FORMAT, CheckpointError, describe_difference, model_config,
                                   read_checkpoint, write_checkpoint)
from llmcourse.checks import (ArgumentError, check_bool, check_choice, check_int, check_number, check_optional,
                              check_token_ids)
from llmcourse.lm import IGNORE_INDEX, LanguageModel, MaskedExamples, detach_state, evaluate, masked_loss, token_streams
from llmcourse.optim import SCHEDULES, bf16_pays, bf16_supported, compile_loss, lr_factor, parameter_groups

__all__ = [
    "PRECISIONS",
    "SCHEDULES",
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainingHistory",
    "bf16_pays",
    "bf16_supported",
    "lr_factor",
    "model_config",
    "parameter_groups",
    "train_language_model",
]

#: ``TrainConfig.precision`` values.
PRECISIONS = ("float32", "bfloat16", "auto")

_lr_factor = lr_factor  # the name notebooks 03-04 used


# ----------------------------------------------------------------------------------------------------
# configuration and history


@dataclass
class TrainConfig:
    """How to train (the model's own configuration lives with the model).

    Args:
        steps: optimiser steps (the schedule follows them). seconds: a training-time budget instead
            (evaluation not counted); with both, whichever ends first. At least one.
        batch_size: sequences per optimiser step, over all processes and micro-batches together.
        seq_len: tokens per sequence (at most a Transformer's context).
        lr: peak learning rate. schedule, warmup, min_lr_ratio: see :func:`lr_factor`.
        weight_decay: AdamW's decoupled decay on weight matrices (:func:`parameter_groups`).
        betas, eps: AdamW's moment decay rates and epsilon.
        clip: maximum global gradient norm (None: no clipping).
        grad_accum: micro-batches per step; ``batch_size`` must divide into ``grad_accum * processes``.
        eval_every: steps between evaluations on ``eval_tokens`` validation tokens (and at the end).
        seed: the data order (the model's initialisation is seeded where it is built).
        precision: ``"float32"``, ``"bfloat16"`` (autocast) or ``"auto"`` (bfloat16 where it is faster:
            :func:`~llmcourse.optim.bf16_pays`, a CUDA GPU; float32 on a CPU).
        carry_state: carry the state between chunks (truncated BPTT); None = ``model.carries_state``.
        fused: AdamW's fused kernel (one kernel updates every parameter; about 3x faster than the
            per-tensor loop on a CPU, the same maths rounded differently in the last bits); None = on a
            CPU or CUDA device.
        compile: train a :class:`~llmcourse.transformer.TransformerLM` through ``torch.compile``
            (:func:`~llmcourse.optim.compile_loss`): the same maths with element-wise operations
            fused, rounded differently in the last bits. It pays only on long runs: compiling takes tens
            of seconds the first time, and ``benchmarks/pretraining.py --candidates`` measures what it
            buys on this machine. A compiled run reproduces itself bit for bit (it runs with
            deterministic algorithms on) and resumes exactly; resuming may also switch compiling on or
            off. Where compiling fails (no C++ compiler) the trainer warns once and trains the model as
            it is. One process only; not for a mixture of experts.
    """

    steps: int | None = None
    seconds: float | None = None
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 5e-3
    schedule: str = "cosine"
    warmup: float = 0.0
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip: float | None = 1.0
    grad_accum: int = 1
    eval_every: int = 100
    eval_tokens: int = 65_536
    seed: int = 0
    precision: str = "float32"
    carry_state: bool | None = None
    fused: bool | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise ArgumentError("give seconds (a training-time budget) or steps (a step count), or both")
        self.seconds = check_optional(check_number, "seconds", self.seconds, minimum=0.0, strict=True)
        self.steps = check_optional(check_int, "steps", self.steps)
        for name in ("batch_size", "seq_len", "grad_accum", "eval_every", "eval_tokens"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.lr = check_number("lr", self.lr, minimum=0.0, strict=True)
        self.clip = check_optional(check_number, "clip", self.clip, minimum=0.0, strict=True)
        self.weight_decay = check_number("weight_decay", self.weight_decay, minimum=0.0)
        self.eps = check_number("eps", self.eps, minimum=0.0, strict=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        self.warmup = check_number("warmup", self.warmup, minimum=0.0, maximum=1.0, strict_max=True)
        self.min_lr_ratio = check_number("min_lr_ratio", self.min_lr_ratio, minimum=0.0, maximum=1.0)
        try:
            betas = tuple(self.betas)
        except TypeError:
            betas = ()
        if len(betas) != 2:
            raise ArgumentError(f"betas must be two numbers in [0, 1); got {self.betas!r}")
        self.betas = tuple(check_number(f"betas[{i}]", b, minimum=0.0, maximum=1.0, strict_max=True)
                           for i, b in enumerate(betas))
        self.seed = check_int("seed", self.seed, minimum=0)
        check_choice("precision", self.precision, PRECISIONS)
        self.carry_state = check_optional(check_bool, "carry_state", self.carry_state)
        self.fused = check_optional(check_bool, "fused", self.fused)
        self.compile = check_bool("compile", self.compile)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ArgumentError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class TrainingHistory:
    """What a run measured, one entry per evaluation.

    ``steps``: optimiser steps done; ``train_loss``: mean training loss (nats) since the previous entry;
    ``val_loss``: loss (nats) on the validation sample; ``seconds``: training time so far (evaluation
    excluded); ``grad_norm``: mean gradient norm *before* clipping since the previous entry; ``lr``: the
    learning rate at that step. ``total_steps``, ``train_seconds`` and ``tokens_seen`` sum up the run;
    ``step_losses`` is the training loss of every step.
    """

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    total_steps: int = 0
    train_seconds: float = 0.0
    tokens_seen: int = 0
    step_losses: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainingHistory:
        return cls(**d)

    @property
    def tokens_per_second(self) -> float:
        """Training throughput: tokens seen per second of training (evaluation excluded)."""
        return self.tokens_seen / self.train_seconds if self.train_seconds > 0 else float("nan")


def _fingerprint(ids) -> str:
    """sha256 of a token array or of :class:`MaskedExamples` (a checkpoint must be resumed on the data it
    was trained on)."""
    if isinstance(ids, MaskedExamples):
        return ids.fingerprint()
    return hashlib.sha256(ids.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def _size(ids) -> int:
    return ids.n_tokens if isinstance(ids, MaskedExamples) else len(ids)


def _check_examples(name: str, examples: MaskedExamples, vocab_size: int, seq_len: int) -> MaskedExamples:
    if examples.max_id() >= vocab_size:
        raise ArgumentError(f"{name}: an id is outside the vocabulary [0, {vocab_size}): got {examples.max_id()}")
    if examples.pad_id >= vocab_size:
        raise ArgumentError(f"{name}: pad_id = {examples.pad_id} is outside the vocabulary [0, {vocab_size})")
    long = [i for i, n in enumerate(examples.lengths) if n > seq_len]
    if long:
        raise ArgumentError(f"{name}: {len(long)} examples are longer than seq_len = {seq_len} (the first, "
                            f"examples[{long[0]}], has {examples.lengths[long[0]]} tokens); raise seq_len or "
                            f"shorten them")
    return examples


# ----------------------------------------------------------------------------------------------------
# the trainer


def _validation_sample(val_ids: torch.Tensor, n: int) -> torch.Tensor:
    """A fixed, evenly spread part of the validation split for the evaluations during training.

    Scoring all of it at every evaluation would cost more than the training in a short budget; 8 pieces
    spread over the split give a stable estimate. :func:`llmcourse.rnn.evaluate` on the whole split is
    the real figure.
    """
    if isinstance(val_ids, MaskedExamples):  # the first examples, about n tokens of them
        k = int(np.searchsorted(np.cumsum(val_ids.lengths), n)) + 1
        return val_ids if k >= len(val_ids) else MaskedExamples(
            list(zip(val_ids.inputs[:k], val_ids.targets[:k])), pad_id=val_ids.pad_id)
    if n >= len(val_ids):
        return val_ids
    pieces, size = 8, n // 8
    starts = np.linspace(0, len(val_ids) - size, pieces).astype(int)
    return torch.cat([val_ids[s : s + size] for s in starts])


def _dist():
    """``(rank, world_size)`` of this process (``(0, 1)`` without ``torch.distributed``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Train a course language model (any model of :mod:`llmcourse.rnn` or :mod:`llmcourse.transformer`).

    Args:
        model: the model; its parameters are updated in place. Under ``torch.distributed`` it is
            wrapped in DistributedDataParallel (which first copies rank 0's weights to every process).
        train_ids, val_ids: ``(T,)`` token ids: tensors, NumPy arrays or memory-mapped arrays; or
            :class:`~llmcourse.lm.MaskedExamples` (supervised fine-tuning): separate examples with partly
            masked targets. Then a step takes ``batch_size`` examples in a shuffled order, right-padded
            to the longest (at most ``seq_len``); the loss is the mean over the batch's unmasked targets,
            however they fall into micro-batches; no state is carried between examples. (In one process
            for now: data parallelism over examples is refused.)
        config: a :class:`TrainConfig`.
        show_progress: a progress bar with the live loss (silent in CI; only on rank 0).
        callback: called as ``callback(trainer)`` after every evaluation (a notebook redraws its plot).

    ``fit()`` trains to the end (or to ``until_step``); ``save_checkpoint`` / ``load_checkpoint``
    stop and resume exactly.
    """

    def __init__(self, model: LanguageModel, train_ids, val_ids, config: TrainConfig, *,
                 show_progress: bool = True, callback: Callable[[Trainer], None] | None = None):
        if not isinstance(model, LanguageModel):
            raise ArgumentError(f"model must be a course language model (llmcourse.lm.LanguageModel); "
                                f"got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise ArgumentError(f"config must be a TrainConfig; got {type(config).__name__}")
        self.model, self.config = model, config
        c = config
        self.masked = isinstance(train_ids, MaskedExamples)
        if self.masked:
            self.train_ids = _check_examples("train_ids", train_ids, model.vocab_size, c.seq_len)
        else:
            self.train_ids = check_token_ids("train_ids", _as_tensor(train_ids), model.vocab_size)
        if isinstance(val_ids, MaskedExamples):
            self.val_ids = _check_examples("val_ids", val_ids, model.vocab_size, max(c.seq_len, model.context_size or 0))
        else:
            self.val_ids = check_token_ids("val_ids", _as_tensor(val_ids), model.vocab_size)
        self.rank, self.world_size = _dist()
        if c.batch_size % (self.world_size * c.grad_accum):
            raise ArgumentError(
                f"batch_size = {c.batch_size} must be divisible by grad_accum * processes = "
                f"{c.grad_accum} * {self.world_size}: each micro-batch takes an equal share of the rows"
            )
        if self.masked and len(self.train_ids) < c.batch_size:
            raise ArgumentError(f"train_ids has {len(self.train_ids)} examples, fewer than batch_size = {c.batch_size}")
        if self.masked and self.world_size > 1:
            raise ArgumentError("data-parallel training on MaskedExamples is not supported yet (the loss would "
                                "need the target count of every process); train them in one process")
        if self.masked and c.carry_state:
            raise ArgumentError("carry_state must be off (None or False) for MaskedExamples: each example is read "
                                "on its own")
        if not self.masked and len(self.train_ids) < c.batch_size * (c.seq_len + 1):
            raise ArgumentError(
                f"train_ids has {len(self.train_ids)} tokens, fewer than batch_size * (seq_len + 1) = "
                f"{c.batch_size * (c.seq_len + 1)}: lower batch_size or seq_len"
            )
        if not isinstance(self.val_ids, MaskedExamples) and len(self.val_ids) < 2:
            raise ArgumentError(f"val_ids must hold at least 2 tokens; got {len(self.val_ids)}")
        if model.context_size is not None and c.seq_len > model.context_size:
            raise ArgumentError(f"seq_len = {c.seq_len} is longer than the model's context "
                             f"({model.context_size} tokens)")
        self.carry_state = False if self.masked else model.carries_state if c.carry_state is None else c.carry_state
        self.device = model._device()
        use_bf16 = c.precision == "bfloat16" or (c.precision == "auto" and bf16_pays(self.device))
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        self.show_progress = show_progress and self.rank == 0
        self.callback = callback

        fused = self.device.type in ("cpu", "cuda") if c.fused is None else c.fused
        self.optimizer = torch.optim.AdamW(parameter_groups(model, c.weight_decay), lr=c.lr,
                                           betas=c.betas, eps=c.eps, fused=fused)
        self._compiled = None  # compile=True: the compiled loss, until (if ever) compiling fails
        if c.compile:
            if self.world_size > 1:
                raise ArgumentError("compile=True is for one process for now; leave it off under torchrun")
            self._compiled = compile_loss(model)
        self._compile_tried = False
        self.ddp = None
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # MoE models leave some experts without gradient in a step: DDP must then look for them.
            sparse = bool(getattr(getattr(model, "config", None), "n_experts", 0))
            self.ddp = DistributedDataParallel(model, find_unused_parameters=sparse)
        self.val_sample = _validation_sample(self.val_ids, c.eval_tokens)
        self._tokens_seen = 0  # MaskedExamples: the real (unpadded) tokens read so far
        self.history = TrainingHistory()
        self.step, self.train_time = 0, 0.0
        self._rng = np.random.default_rng(c.seed)
        self._offset, self._chunk, self._state = 0, 0, None
        self._new_epoch()
        self._since = [0.0, 0.0, 0]  # loss sum, grad-norm sum, steps since the last evaluation

    # --- data -----------------------------------------------------------------------------------

    def _new_epoch(self) -> None:
        """Cut the text into ``batch_size`` streams from a fresh random offset (chunk boundaries move);
        for :class:`MaskedExamples`, draw the seed of a fresh shuffle of the examples."""
        self._offset = int(self._rng.integers(0, 2**31 if self.masked else self.config.seq_len))
        self._load_epoch()
        self._chunk, self._state = 0, None

    def _load_epoch(self) -> None:
        c = self.config
        if self.masked:  # the epoch's order of the examples, from its seed; whole batches only
            self._order = np.random.default_rng(self._offset).permutation(len(self.train_ids))
            self._n_chunks = len(self.train_ids) // c.batch_size
            return
        inputs, targets = token_streams(self.train_ids[self._offset:], c.batch_size)
        rows = c.batch_size // self.world_size  # this process's share of the streams
        sl = slice(self.rank * rows, (self.rank + 1) * rows)
        self._inputs, self._targets = inputs[sl], targets[sl]
        self._n_chunks = inputs.shape[1] // c.seq_len  # whole chunks only (padding targets are -100)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._chunk == self._n_chunks:
            self._new_epoch()
        if self.masked:
            c = self.config
            index = self._order[self._chunk * c.batch_size: (self._chunk + 1) * c.batch_size]
            self._chunk += 1
            self._batch_tokens = sum(self.train_ids.lengths[i] for i in index)
            x, y = self.train_ids.batch(index)
            return x.to(self.device), y.to(self.device)
        sl = slice(self._chunk * self.config.seq_len, (self._chunk + 1) * self.config.seq_len)
        self._chunk += 1
        return self._inputs[:, sl].to(self.device), self._targets[:, sl].to(self.device)

    # --- one step ---------------------------------------------------------------------------------

    def _lr(self, step: int) -> float:
        c = self.config
        frac = step / c.steps if c.steps is not None else self.train_time / c.seconds
        return c.lr * lr_factor(c.schedule, frac, c.warmup, c.min_lr_ratio)

    def train_step(self) -> tuple[float, float]:
        """One optimiser step; returns ``(loss, gradient norm before clipping)``."""
        c = self.config
        lr = self._lr(self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        x, y = self._next_batch()
        scale = None  # a stream: every micro-batch holds as many targets as the next, so a mean per micro-batch
        if self.masked:  # the mean over every unmasked target of the whole batch, however it is split
            self._tokens_seen += self._batch_tokens
            scale = 1.0 / float((y != IGNORE_INDEX).sum())  # of each micro-batch's summed loss
        states = _split_state(self._state, c.grad_accum) if self.carry_state else [None] * c.grad_accum
        if self._compiled is None:
            loss_sum, new_states = self._forward_backward(x, y, states, scale)
        else:
            loss_sum, new_states = self._compiled_forward_backward(x, y, states, scale)
        self._state = _join_state(new_states) if self.carry_state else None
        params = [p for p in self.model.parameters() if p.grad is not None]
        if c.clip is not None:
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, c.clip))
        else:
            gnorm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        self.optimizer.step()
        self.step += 1
        loss_value = loss_sum * scale if self.masked else loss_sum / c.grad_accum
        if self.world_size > 1:  # the loss of the whole batch, as one process would report it
            import torch.distributed as dist

            t = torch.tensor([loss_value], dtype=torch.float64)
            dist.all_reduce(t)
            loss_value = float(t) / self.world_size
        return loss_value, gnorm

    def _compiled_forward_backward(self, x, y, states, scale) -> tuple[float, list]:
        """:meth:`_forward_backward` through the compiled loss; at the first step, fall back to the model
        itself if compiling fails.

        Compiled and run with deterministic algorithms on, so that the generated backward adds the
        embedding's gradient in a fixed order, not with atomic adds in whatever order the threads finish:
        a compiled run then reproduces itself bit for bit, as an eager one does. (The setting is part of
        what the compiled code was made for: it must be the same at every call.)
        """
        deterministic = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return self._forward_backward(x, y, states, scale)
        except Exception as error:  # noqa: BLE001 -- any failure to compile: train the model as it is
            if self._compile_tried:  # it compiled before: a failure now is not about compiling
                raise
            import warnings

            reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
            warnings.warn(f"compile=True: torch.compile failed ({type(error).__name__}: {reason}); "
                          f"training the model uncompiled", RuntimeWarning, stacklevel=3)
            self._compiled = None
            return self._forward_backward(x, y, states, scale)
        finally:
            self._compile_tried = True
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)

    def _forward_backward(self, x, y, states, scale) -> tuple[float, list]:
        """The gradients of one step, micro-batch by micro-batch: ``(summed loss, new states)``."""
        c = self.config
        net = self.ddp if self.ddp is not None else self.model
        micro = x.shape[0] // c.grad_accum
        new_states, loss_sum = [], 0.0
        self.optimizer.zero_grad(set_to_none=True)
        for m in range(c.grad_accum):
            rows = slice(m * micro, (m + 1) * micro)
            last = m == c.grad_accum - 1
            # DDP all-reduces the gradients in the backward pass; skip that on all but the last micro-batch
            sync = self.ddp.no_sync() if (self.ddp is not None and not last) else _nullcontext()
            with sync:
                with _autocast(self.device, self.autocast_dtype):
                    reduction = "sum" if self.masked else "mean"
                    if self._compiled is not None:  # the data were checked up front; no state to carry
                        loss, state = self._compiled(x[rows], y[rows], reduction), None
                    else:
                        logits, state = net(x[rows], states[m])
                        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y[rows].reshape(-1),
                                               reduction=reduction)
                    aux = self.model.auxiliary_loss()
                    if self.masked:
                        total = loss * scale if aux is None else loss * scale + aux / c.grad_accum
                    else:
                        total = (loss if aux is None else loss + aux) / c.grad_accum
                total.backward()
            new_states.append(detach_state(state))
            loss_sum += loss.item()
        return loss_sum, new_states

    # --- evaluation and the loop ------------------------------------------------------------------

    def evaluate_sample(self) -> float:
        """Loss (nats) on the fixed validation sample (rank 0 computes it; the others receive it)."""
        val = float("nan")
        if self.rank == 0:
            with _autocast(self.device, self.autocast_dtype):
                if isinstance(self.val_sample, MaskedExamples):
                    val = masked_loss(self.model, self.val_sample)["loss_nats"]
                else:
                    val = evaluate(self.model, self.val_sample, seq_len=max(self.config.seq_len, 256),
                                   batch_size=16)["loss_nats"]
            self.model.train()
        if self.world_size > 1:
            import torch.distributed as dist

            t = torch.tensor([val], dtype=torch.float64)
            dist.broadcast(t, 0)
            val = float(t)
        return val

    @property
    def compiled(self) -> bool:
        """Whether steps run through ``torch.compile`` (``compile=True``, and compiling has not failed)."""
        return self._compiled is not None

    @property
    def done(self) -> bool:
        c = self.config
        return (c.steps is not None and self.step >= c.steps) or (
            c.seconds is not None and self.train_time >= c.seconds)

    def fit(self, until_step: int | None = None, *, checkpoint: str | os.PathLike | None = None,
            checkpoint_every: int | None = None) -> TrainingHistory:
        """Train until the run is done (``config.steps`` / ``config.seconds``) or ``until_step``.

        With ``checkpoint`` (a file path) the trainer saves there every ``checkpoint_every`` steps and at
        the end; ``until_step`` lets a notebook or a test stop a run part-way, as an interruption would.
        Calling ``fit`` again continues where it stopped.
        """
        c = self.config
        if until_step is not None:
            until_step = check_int("until_step", until_step, minimum=0)
        if checkpoint_every is not None:
            checkpoint_every = check_int("checkpoint_every", checkpoint_every)
            if checkpoint is None:
                raise ArgumentError("checkpoint_every needs checkpoint (the path to save to)")
        total = c.steps if c.steps is not None else c.seconds
        bar = progress(total=total, initial=self.step if c.steps is not None else 0,
                       disable=not self.show_progress, unit="step" if c.steps is not None else "s", leave=False)
        self.model.train()
        try:
            while not self.done and (until_step is None or self.step < until_step):
                t0 = time.perf_counter()
                loss, gnorm = self.train_step()
                dt = time.perf_counter() - t0
                self.train_time += dt
                self.history.step_losses.append(loss)
                s = self._since
                s[0], s[1], s[2] = s[0] + loss, s[1] + gnorm, s[2] + 1
                bar.update(1 if c.steps is not None else min(dt, max(0.0, c.seconds - bar.n)))
                if self.step % c.eval_every == 0 or self.done:
                    self._record()
                    bar.set_postfix(train=f"{self.history.train_loss[-1]:.3f}",
                                    val=f"{self.history.val_loss[-1]:.3f}")
                    if self.callback is not None:
                        self.callback(self)
                if checkpoint is not None and checkpoint_every is not None and self.step % checkpoint_every == 0:
                    self.save_checkpoint(checkpoint)
        finally:
            bar.close()
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)
        return self.history

    def _record(self) -> None:
        val = self.evaluate_sample()
        s, h = self._since, self.history
        h.steps.append(self.step)
        h.train_loss.append(s[0] / s[2])
        h.val_loss.append(val)
        h.seconds.append(self.train_time)
        h.grad_norm.append(s[1] / s[2])
        h.lr.append(self.optimizer.param_groups[0]["lr"])
        self._since = [0.0, 0.0, 0]
        self._sync_totals()

    def _sync_totals(self) -> None:
        h = self.history
        h.total_steps, h.train_seconds = self.step, self.train_time
        h.tokens_seen = self._tokens_seen if self.masked else self.step * self.config.batch_size * self.config.seq_len

    # --- checkpoints ------------------------------------------------------------------------------

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write everything a resumed run needs to ``path`` (one safetensors file), atomically.

        Tensors: ``model.*`` (the weights), ``optim.<i>.exp_avg / exp_avg_sq / step`` (AdamW's state per
        parameter), ``rng.torch`` (torch's generator) and ``carry.*`` (a recurrent model's carried
        state). Metadata (strings): the format, the model and training configurations, the step, the
        clock, the data position, NumPy's generator state, the data fingerprint and the history.
        Under ``torch.distributed`` only rank 0 writes (every rank holds the same weights).
        """
        path = Path(path)
        self._sync_totals()
        if self.rank != 0:
            return path
        if self.carry_state and self.world_size > 1:
            raise CheckpointError("a carried recurrent state differs per process; checkpoints of "
                                  "data-parallel recurrent runs are not supported (train it in one process)")
        tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}
        opt_state = self.optimizer.state_dict()
        for i, st in opt_state["state"].items():
            for k, v in st.items():
                tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous().clone()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        carry_kind = "none"
        if self._state is not None:
            parts = self._state if isinstance(self._state, tuple) else (self._state,)
            carry_kind = "tuple" if isinstance(self._state, tuple) else "tensor"
            for i, t in enumerate(parts):
                tensors[f"carry.{i}"] = t.detach().cpu().contiguous().clone()
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
                  for g in opt_state["param_groups"]]
        meta = {
            "model_config": json.dumps(model_config(self.model)),
            "train_config": json.dumps(self.config.as_dict()),
            "step": str(self.step),
            "train_time": repr(self.train_time),
            "data": json.dumps({"offset": self._offset, "chunk": self._chunk, "carry": carry_kind,
                                "train_tokens": _size(self.train_ids), "tokens_seen": self._tokens_seen,
                                "train_sha256": _fingerprint(self.train_ids)}),
            "numpy_rng": json.dumps(self._rng.bit_generator.state),
            "optimizer_groups": json.dumps(groups),
            "since": json.dumps(self._since),
            "history": json.dumps(self.history.as_dict()),
            "world_size": str(self.world_size),
        }
        return write_checkpoint(path, tensors, meta)

    def load_checkpoint(self, path: str | os.PathLike) -> Trainer:
        """Restore the state :meth:`save_checkpoint` wrote, so that :meth:`fit` continues exactly.

        Raises :class:`CheckpointError` when the file is missing, damaged (its contents no longer match the
        sha256 recorded when it was written) or not a course checkpoint, when it
        was written for another model (the differing configuration fields or tensor shapes are named),
        for another training configuration (``steps`` and ``seconds`` may change: a run can be
        extended) or for other training data.
        """
        path = Path(path)
        tensors, meta = read_checkpoint(path)
        saved_model, here = json.loads(meta["model_config"]), model_config(self.model)
        if saved_model != here:
            if saved_model["class"] != here["class"]:
                detail = f"it holds a {saved_model['class']}, this is a {here['class']}"
            elif saved_model["config"] is not None and saved_model["config"] != here["config"]:
                detail = describe_difference(saved_model["config"], here["config"], "configuration differs: ")
            else:
                detail = describe_difference(saved_model["shapes"], here["shapes"], "tensor shapes differ: ")
            raise CheckpointError(f"checkpoint {path.name} was written for another model: {detail}")
        saved_train = json.loads(meta["train_config"])
        mine = self.config.as_dict()
        diff = {k for k in set(saved_train) | set(mine) if saved_train.get(k) != mine.get(k)}
        diff -= {"steps", "seconds", "compile"}  # a longer run, or the same maths compiled or not
        if diff:
            shown = {k: saved_train.get(k) for k in diff}
            raise CheckpointError(
                f"checkpoint {path.name} was written with another training configuration: "
                + describe_difference(shown, {k: mine.get(k) for k in diff}, "")
                + " (only steps and seconds may change when resuming)")
        data = json.loads(meta["data"])
        if data["train_tokens"] != _size(self.train_ids) or data["train_sha256"] != _fingerprint(self.train_ids):
            raise CheckpointError(
                f"checkpoint {path.name} was trained on other data ({data['train_tokens']} tokens, sha256 "
                f"{data['train_sha256'][:12]}…); these train_ids have {_size(self.train_ids)} tokens")
        if int(meta.get("world_size", "1")) != self.world_size:
            raise CheckpointError(f"checkpoint {path.name} was written by {meta['world_size']} processes; "
                                  f"this run has {self.world_size}: the data split would differ")

        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v.to(self.device) if name != "step" else v
        groups = json.loads(meta["optimizer_groups"])
        for g in groups:
            g["betas"] = tuple(g["betas"])
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self._rng.bit_generator.state = json.loads(meta["numpy_rng"])
        self._offset = data["offset"]
        self._load_epoch()
        self._chunk = data["chunk"]
        self._tokens_seen = data.get("tokens_seen", 0)
        carry = [tensors[f"carry.{i}"].to(self.device) for i in range(2) if f"carry.{i}" in tensors]
        self._state = None if data["carry"] == "none" else (tuple(carry) if data["carry"] == "tuple" else carry[0])
        self.step, self.train_time = int(meta["step"]), float(meta["train_time"])
        self._since = json.loads(meta["since"])
        self.history = TrainingHistory.from_dict(json.loads(meta["history"]))
        return self


def _as_tensor(ids):
    """Tensors pass through; NumPy arrays (memory-mapped ones included) become int64 tensors."""
    if isinstance(ids, np.ndarray):
        return torch.from_numpy(np.asarray(ids, dtype=np.int64))
    return ids


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _autocast(device: torch.device, dtype):
    if dtype is None:
        return _nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split_state(state, k: int) -> list:
    """A carried state split into ``k`` equal row groups (batch is dim 1 for torch RNN states)."""
    if state is None or k == 1:
        return [state] * k if state is None else [state]
    if isinstance(state, tuple):
        parts = [_split_state(s, k) for s in state]
        return [tuple(p[i] for p in parts) for i in range(k)]
    dim = 1 if state.dim() == 3 else 0
    return list(state.chunk(k, dim=dim))


def _join_state(states: list):
    if len(states) == 1 or states[0] is None:
        return states[0]
    if isinstance(states[0], tuple):
        return tuple(_join_state([s[i] for s in states]) for i in range(len(states[0])))
    dim = 1 if states[0].dim() == 3 else 0
    return torch.cat(states, dim=dim)


# ----------------------------------------------------------------------------------------------------
# the one-call form notebooks 03 and 04 use


def train_language_model(
    model: LanguageModel,
    train_ids,
    val_ids,
    *,
    seconds: float | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    seq_len: int = 64,
    lr: float = 5e-3,
    clip: float | None = 1.0,
    eval_every: int = 100,
    seed: int = 0,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    warmup: float = 0.0,
    min_lr_ratio: float = 0.1,
    carry_state: bool | None = None,
    eval_tokens: int = 65_536,
    grad_accum: int = 1,
    precision: str = "float32",
    show_progress: bool = True,
    callback: Callable[[Trainer], None] | None = None,
) -> TrainingHistory:
    """Train ``model`` with AdamW for ``steps`` steps or ``seconds`` of training: ``Trainer(...).fit()``.

    Each step: cross-entropy loss (plus the model's auxiliary loss, if any), backward, gradient norm
    clipped to ``clip`` (a step can never be longer than ``lr * clip`` in SGD terms), AdamW step. With
    ``steps`` the run is the same every time on one machine; with only ``seconds`` the number of steps
    depends on the machine's speed (use it to explore, then fix ``steps``). On Shakespeare characters
    lr 1e-2 was best for the MLP, GRU and LSTM and 5e-3 for the tanh RNN. The arguments are
    :class:`TrainConfig`'s.
    """
    config = TrainConfig(
        steps=steps, seconds=seconds, batch_size=batch_size, seq_len=seq_len, lr=lr, clip=clip,
        eval_every=eval_every, seed=seed, weight_decay=weight_decay, schedule=schedule, warmup=warmup,
        min_lr_ratio=min_lr_ratio, carry_state=carry_state, eval_tokens=eval_tokens, grad_accum=grad_accum,
        precision=precision,
    )
    trainer = Trainer(model, train_ids, val_ids, config, show_progress=show_progress, callback=callback)
    return trainer.fit()


# ----------------------------------------------------------------------------------------------------
# command line: python -m llmcourse.training, or torchrun --nproc_per_node=2 -m llmcourse.training


def _load_data(spec: str) -> tuple[Any, Any, int]:
    """``shakespeare-char`` or a packed ``.bin`` from :func:`llmcourse.data_pipeline.pack_tokens`."""
    if spec == "shakespeare-char":
        from llmcourse.datasets import load_shakespeare
        from llmcourse.tokenization import CharTokenizer

        train, val = load_shakespeare("train"), load_shakespeare("validation")
        vocab = CharTokenizer.from_text(train, unk_token="<unk>")
        return vocab.encode(train), vocab.encode(val), vocab.size
    path = Path(spec)
    if path.suffix == ".bin" and path.is_file():
        from llmcourse.data_pipeline import _sidecar, load_packed

        tokens = load_packed(path)
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        n_val = max(2, len(tokens) // 20)  # the last 5% of the tokens validate
        vocab = int(meta["vocab_size"])
        return tokens[:-n_val], tokens[-n_val:], vocab
    raise ValueError(f"--data must be 'shakespeare-char' or a packed .bin file; got {spec!r}")


def main(argv: list[str] | None = None) -> int:
    """Train a Transformer from the command line; under ``torchrun`` every process runs this."""
    from llmcourse.transformer import TransformerConfig, TransformerLM

    p = argparse.ArgumentParser(prog="python -m llmcourse.training", description=main.__doc__)
    p.add_argument("--data", default="shakespeare-char", help="'shakespeare-char' or a packed .bin file")
    p.add_argument("--style", choices=("gpt", "llama"), default="llama")
    p.add_argument("--model", default="{}", help='TransformerConfig overrides as JSON, e.g. \'{"n_layer": 2}\'')
    p.add_argument("--train", default="{}", help='TrainConfig fields as JSON, e.g. \'{"steps": 100, "lr": 0.01}\'')
    p.add_argument("--init-seed", type=int, default=0, help="seeds the model's initialisation")
    p.add_argument("--checkpoint", help="checkpoint file: resumed from if it exists, saved to during training")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--out", help="folder for the final weights (model.safetensors) and history.json")
    p.add_argument("--threads", type=int, help="torch threads per process")
    args = p.parse_args(argv)

    import torch.distributed as dist

    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        train_ids, val_ids, vocab_size = _load_data(args.data)
        overrides = json.loads(args.model)
        block = overrides.pop("block_size", 64)
        make = TransformerConfig.llama if args.style == "llama" else TransformerConfig.gpt
        torch.manual_seed(args.init_seed)
        model = TransformerLM(make(vocab_size, block, **overrides))
        config = TrainConfig.from_dict(json.loads(args.train))
        trainer = Trainer(model, train_ids, val_ids, config)
        if args.checkpoint and Path(args.checkpoint).is_file():
            trainer.load_checkpoint(args.checkpoint)
            print(f"resumed from {args.checkpoint} at step {trainer.step}", flush=True)
        history = trainer.fit(checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every)
        if trainer.rank == 0:
            print(f"rank 0 of {trainer.world_size}: {history.total_steps} steps, "
                  f"{history.tokens_per_second:,.0f} tokens/s, val loss {history.val_loss[-1]:.4f}", flush=True)
            if args.out:
                from safetensors.torch import save

                from llmcourse.files import write_atomic

                out = Path(args.out)
                state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
                write_atomic(out / "model.safetensors", save(state))
                write_atomic(out / "history.json", json.dumps(history.as_dict()).encode("utf-8"))
        if dist.is_initialized():
            dist.barrier()  # leave together: gloo may abort a process whose peer has already gone
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
