"""Distributed training: data parallelism, ZeRO-1, and tensor and pipeline parallelism on paper.

A model too slow to train on one device is trained on many. There are three ways to split the work,
and real runs combine all three ("3D parallelism"):

- **Data parallelism (DDP).** Every process holds the whole model and takes a different slice of the
  batch. After ``loss.backward()`` each process has the gradient of *its* slice; an **all-reduce**
  (every process sends its tensor and gets back the sum of all of them) turns them into the gradient
  of the whole batch, so every process takes the same optimiser step and the weights stay identical
  without ever being sent. :class:`~torch.nn.parallel.DistributedDataParallel` does this in buckets of
  gradients, overlapped with the backward pass; :func:`average_gradients` does it by hand, one
  parameter at a time, to show that it is nothing more. A ring all-reduce sends about
  ``2·(N-1)/N`` times the gradient's bytes per process per step, whatever N is.
- **ZeRO stage 1** (Rajbhandari et al. 2020). Plain data parallelism keeps N copies of AdamW's two
  moments, 8 bytes per parameter, often more memory than the weights. ZeRO-1 gives each process the
  moments of only 1/N of the parameters: each process updates its own share, then broadcasts the new
  values to the others. Same steps, same weights, a fraction of the optimiser memory.
  :class:`~torch.distributed.optim.ZeroRedundancyOptimizer` does it; stages 2 and 3 also split the
  gradients and the weights (:func:`llmcourse.scaling.zero_memory_per_device` counts the bytes).
- **Tensor parallelism** (Megatron-LM, Shoeybi et al. 2019) splits each weight matrix across devices,
  for a layer too big for one device: :func:`tensor_parallel_mlp` splits the first matrix of an MLP by
  output columns and the second by input rows, so the only communication of the forward pass is one
  all-reduce of the output.
- **Pipeline parallelism** (GPipe, Huang et al. 2019) gives each device a run of consecutive layers and
  streams micro-batches through them; devices wait at the start and at the end ("the bubble"):
  :func:`pipeline_schedule` draws the timeline and measures the idle fraction, ``(p-1)/(m+p-1)``.

The data-parallel parts run for real: ``launch(["ddp"])`` starts two processes with ``torchrun`` (the
gloo backend on a CPU, one thread each), each trains the same small character-level Transformer on its
half of every Shakespeare batch, and the function returns what every rank measured. The modes are
``ddp`` (DDP), ``allreduce`` (gradients averaged by hand, checked against a DDP twin) and ``zero1``
(ZeroRedundancyOptimizer, checked against plain AdamW). Tensor and pipeline parallelism are
simulated in one process: the arithmetic is the real one, the "devices" are list entries.

    >>> from llmcourse.distributed import launch
    >>> ranks = launch(["ddp", "--steps", "20"], nproc=2)                       # doctest: +SKIP
    >>> ranks[0]["local_loss"][0] != ranks[1]["local_loss"][0]                 # doctest: +SKIP
    True
    >>> ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]               # doctest: +SKIP
    True

The first comparison is different data (each rank's half of the batch), the second the same weights.

On a real cluster the same file runs unchanged: on each of two machines with 8 GPUs,

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=host:29500 \\
        -m llmcourse.distributed ddp --out results/

(``host`` is the first machine's address). Every process finds its ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` in its environment, uses the NCCL backend and the GPU ``cuda:LOCAL_RANK``; NCCL
moves the all-reduce over NVLink inside a machine and InfiniBand or Ethernet between machines.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from llmcourse.checks import ArgumentError, check_int, check_number

__all__ = [
    "MODES",
    "PipelineSchedule",
    "average_gradients",
    "column_parallel_linear",
    "launch",
    "main",
    "optimizer_state_bytes",
    "pipeline_schedule",
    "row_parallel_linear",
    "tensor_parallel_mlp",
]

#: The run modes of ``python -m llmcourse.distributed MODE`` under torchrun.
MODES = ("ddp", "allreduce", "zero1")
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------
# launching: torchrun in a subprocess, one JSON file per rank back


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:] if len(text) > n else text


def launch(args: Sequence[str], nproc: int = 2, *, timeout: float = 300.0, threads: int = 1) -> list[dict]:
    """Run ``python -m llmcourse.distributed *args`` in ``nproc`` processes and return what each measured.

    The command is ``python -m torch.distributed.run --standalone --nproc_per_node=nproc -m
    llmcourse.distributed *args --out DIR --threads threads``: torchrun starts the processes on this
    machine and gives each its rank; each writes ``DIR/rank{r}.json``, and this returns those dicts in
    rank order (``result[r]`` is rank r's). ``args`` starts with a mode from :data:`MODES`; see
    ``python -m llmcourse.distributed --help`` for the options. ``threads`` torch threads per process
    (on a 2-core laptop, 2 processes of 1 thread). Raises RuntimeError with the end of the processes'
    error output if they fail or take longer than ``timeout`` seconds.

    Every rank's dict holds ``rank``, ``world_size``, ``backend``, ``n_params``, ``grad_bytes`` (the
    gradient's size), ``local_batch_size``, and one entry per step in ``local_loss`` (this rank's half
    of the batch), ``mean_loss`` (averaged over the ranks: the loss of the whole batch) and
    ``step_time`` (seconds: forward, backward, communication, optimiser step), then the final
    weights' ``weights_sha256`` and ``weights_sample`` (six numbers of the token embedding). Modes add:
    ``ddp`` and ``allreduce``: ``allreduce_bytes_per_step`` and ``allreduce_calls_per_step`` (DDP's,
    counted by a communication hook; the hand-made version's, counted as it sends); ``allreduce``:
    ``max_abs_diff_vs_ddp``; ``zero1``: ``optimizer_state_bytes`` (this rank's share),
    ``optimizer_state_bytes_adamw`` (what plain AdamW holds on every rank), ``owned_parameters``,
    ``owned_numel`` and ``max_abs_diff_vs_adamw``.
    """
    if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args):
        raise ArgumentError(f"args must be a list of strings, e.g. ['ddp', '--steps', '20']; got {args!r}")
    nproc = check_int("nproc", nproc)
    threads = check_int("threads", threads)
    timeout = check_number("timeout", timeout, minimum=0.0, strict=True)
    if "--out" in args or "--threads" in args:
        raise ArgumentError("args must not contain --out or --threads: launch sets them")
    with tempfile.TemporaryDirectory(prefix="llmcourse-distributed-") as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "llmcourse.distributed", *args, "--out", out, "--threads", str(threads)]
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "CI": "true", "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads)}
        posix = os.name == "posix"
        # A session of its own, so that a timeout ends torchrun *and* the workers it started.
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=posix)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            if posix:
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                proc.kill()
            stdout, stderr = proc.communicate()
            raise RuntimeError(f"{nproc} processes did not finish in {timeout:g} s; the end of their "
                               f"output:\n{_tail(stdout + stderr)}") from None
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun exited with code {proc.returncode}; the end of its error "
                               f"output:\n{_tail(stderr or stdout)}")
        results = []
        for r in range(nproc):
            f = Path(out) / f"rank{r}.json"
            if not f.is_file():
                raise RuntimeError(f"rank {r} wrote no results ({f.name}); the end of the error "
                                   f"output:\n{_tail(stderr or stdout)}")
            results.append(json.loads(f.read_text(encoding="utf-8")))
        return results


# ----------------------------------------------------------------------------------------------------
# data parallelism: the pieces a worker uses


def average_gradients(model: torch.nn.Module) -> int:
    """All-reduce every gradient of ``model`` and divide by the world size: data parallelism by hand.

    Call it after ``loss.backward()`` and before ``optimizer.step()`` in every process of a process
    group: afterwards every process holds the mean of all processes' gradients, which is the gradient
    of the whole batch when the processes had equal slices of it. Returns the bytes this process gave
    to the all-reduce (the gradients' size). DDP does the same in a few large buckets, started while
    the backward pass is still running; this version sends one message per parameter, after it.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("average_gradients needs torch.distributed: run under torchrun (see launch)")
    world = dist.get_world_size()
    sent = 0
    for p in model.parameters():
        if p.grad is None:
            continue
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)  # every process now has the sum
        p.grad /= world
        sent += p.grad.numel() * p.grad.element_size()
    return sent


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the state tensors ``optimizer`` holds in this process (AdamW: ``exp_avg``, ``exp_avg_sq``
    and a scalar ``step`` per parameter, after the first step).

    A :class:`~torch.distributed.optim.ZeroRedundancyOptimizer` counts its local optimizer
    (``optimizer.optim``): the state of this rank's share of the parameters, the only state it keeps.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ArgumentError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    local = getattr(optimizer, "optim", optimizer)
    return sum(v.numel() * v.element_size() for state in local.state.values()
               for v in state.values() if torch.is_tensor(v))


def _weights_sha256(model: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes, in order: equal hashes mean bit-identical weights."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _max_abs_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


# ----------------------------------------------------------------------------------------------------
# the worker: what every process runs under torchrun


@dataclass
class _World:
    rank: int
    size: int
    device: torch.device
    backend: str


def _init() -> _World:
    """Join the process group torchrun describes in the environment (NCCL on GPUs, gloo on CPUs)."""
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise SystemExit("python -m llmcourse.distributed must run under torchrun (RANK and WORLD_SIZE unset); "
                         "from Python use llmcourse.distributed.launch([...])")
    if torch.cuda.is_available():
        backend, device = "nccl", torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        backend, device = "gloo", torch.device("cpu")
    dist.init_process_group(backend)
    return _World(dist.get_rank(), dist.get_world_size(), device, backend)


def _batch(ids: torch.Tensor, step: int, a: argparse.Namespace, w: _World) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows of step ``step``'s batch: x, y ``(batch_size / world, block_size)``.

    Every rank draws the same ``batch_size`` random windows (same seed, same step) and keeps its own
    contiguous slice of them, so the N slices together are exactly the batch one process would use.
    """
    g = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
    starts = torch.randint(len(ids) - a.block_size - 1, (a.batch_size,), generator=g)
    rows = a.batch_size // w.size
    mine = starts[w.rank * rows:(w.rank + 1) * rows]
    x = torch.stack([ids[s:s + a.block_size] for s in mine])
    y = torch.stack([ids[s + 1:s + 1 + a.block_size] for s in mine])
    return x.to(w.device), y.to(w.device)  # (B/N, T) each


def _loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, _ = net(x)  # (B/N, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))


def _step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, x, y,
          sync: Callable[[], object] | None = None) -> float:
    """Forward, backward, (``sync``: the hand-made all-reduce), optimiser step; returns the local loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = _loss(net, x, y)
    loss.backward()  # under DDP the gradients are all-reduced during this call
    if sync is not None:
        sync()
    optimizer.step()
    return loss.item()


def _mean(value: float, w: _World) -> float:
    """The mean of ``value`` over all ranks (the loss of the whole batch)."""
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=w.device)
    dist.all_reduce(t)
    return float(t) / w.size


def _counting_allreduce(counter: dict, bucket):
    """A DDP communication hook: the default all-reduce, counting the bytes and calls it is given."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    buf = bucket.buffer()
    counter["bytes"] += buf.numel() * buf.element_size()
    counter["calls"] += 1
    return default_hooks.allreduce_hook(None, bucket)


def _adamw(params, a: argparse.Namespace) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=a.lr, weight_decay=a.weight_decay)


def _run(a: argparse.Namespace, w: _World) -> dict:
    """Train ``a.steps`` steps in mode ``a.mode``; return this rank's measurements."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from llmcourse.datasets import load_shakespeare
    from llmcourse.tokenization import CharTokenizer
    from llmcourse.transformer import TransformerConfig, TransformerLM

    if a.batch_size % w.size:
        raise ArgumentError(f"--batch-size = {a.batch_size} must be divisible by the {w.size} processes "
                         f"(each takes batch_size / processes rows)")
    text = load_shakespeare("train")
    vocab = CharTokenizer.from_text(text, unk_token="<unk>")
    ids = torch.from_numpy(np.asarray(vocab.encode(text), dtype=np.int64))
    torch.manual_seed(a.seed)  # the same initial weights in every process (DDP also broadcasts rank 0's)
    config = TransformerConfig.llama(vocab.size, a.block_size, n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd)
    model = TransformerLM(config).to(w.device)
    names = {id(p): n for n, p in model.named_parameters()}
    n_params = sum(p.numel() for p in model.parameters())
    res: dict = {"mode": a.mode, "rank": w.rank, "world_size": w.size, "backend": w.backend,
                 "device": str(w.device), "steps": a.steps, "batch_size": a.batch_size,
                 "local_batch_size": a.batch_size // w.size, "block_size": a.block_size,
                 "n_params": n_params, "grad_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}

    counter = {"bytes": 0, "calls": 0}
    sync = None
    if a.mode == "ddp":
        net = DDP(model)
        net.register_comm_hook(counter, _counting_allreduce)  # measures what DDP really sends
        opt = _adamw(model.parameters(), a)
    elif a.mode == "allreduce":
        import torch.distributed as dist

        net = model  # no wrapper: copy rank 0's weights to everyone, then all-reduce by hand
        for p in model.parameters():
            dist.broadcast(p.data, src=0)

        def sync():
            counter["bytes"] += average_gradients(model)
            counter["calls"] += sum(p.grad is not None for p in model.parameters())

        opt = _adamw(model.parameters(), a)
        twin = copy.deepcopy(model)  # the reference: the same model and data under DDP
        ref, ref_opt = DDP(twin), _adamw(twin.parameters(), a)
    else:  # zero1: DDP for the gradients, ZeRO-1 for the optimiser; the twin uses plain AdamW
        from torch.distributed.optim import ZeroRedundancyOptimizer

        net = DDP(model)
        opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW,
                                      lr=a.lr, weight_decay=a.weight_decay)
        twin = copy.deepcopy(model)
        ref, ref_opt = DDP(twin), _adamw(twin.parameters(), a)

    local, mean, seconds, bytes_per_step, calls_per_step = [], [], [], [], []
    for step in range(a.steps):
        x, y = _batch(ids, step, a, w)
        counter["bytes"] = counter["calls"] = 0
        t0 = time.perf_counter()
        loss = _step(net, opt, x, y, sync)
        seconds.append(time.perf_counter() - t0)
        bytes_per_step.append(counter["bytes"])
        calls_per_step.append(counter["calls"])
        local.append(loss)
        mean.append(_mean(loss, w))
        if a.mode != "ddp":
            _step(ref, ref_opt, x, y)  # the same batch through the reference

    res.update(local_loss=local, mean_loss=mean, step_time=seconds,
               weights_sha256=_weights_sha256(model),
               weights_sample=[float(v) for v in model.embed.tok.weight.detach().flatten()[:6]])
    if a.mode in ("ddp", "allreduce"):
        res.update(allreduce_bytes_per_step=bytes_per_step, allreduce_calls_per_step=calls_per_step)
    if a.mode == "allreduce":
        res["max_abs_diff_vs_ddp"] = _max_abs_diff(model, twin)
    if a.mode == "zero1":
        owned = [p for g in opt.optim.param_groups for p in g["params"]]  # this rank's share
        res.update(optimizer_state_bytes=optimizer_state_bytes(opt),
                   optimizer_state_bytes_adamw=optimizer_state_bytes(ref_opt),
                   owned_parameters=[names[id(p)] for p in owned],
                   owned_numel=sum(p.numel() for p in owned),
                   max_abs_diff_vs_adamw=_max_abs_diff(model, twin))
    return res


def main(argv: list[str] | None = None) -> int:
    """Every process of ``torchrun ... -m llmcourse.distributed MODE`` runs this: train a small LLaMA-style
    character model on Shakespeare, each process on its slice of every batch, and write what it
    measured to OUT/rank{r}.json."""
    p = argparse.ArgumentParser(prog="python -m llmcourse.distributed", description=main.__doc__)
    p.add_argument("mode", choices=MODES, help="ddp: DistributedDataParallel; allreduce: gradients averaged "
                   "by hand (checked against DDP); zero1: ZeroRedundancyOptimizer (checked against AdamW)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16, help="sequences per step over all processes")
    p.add_argument("--block-size", type=int, default=64, help="tokens per sequence")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads per process")
    p.add_argument("--out", required=True, help="folder for rank{r}.json")
    a = p.parse_args(argv)
    for name in ("steps", "batch_size", "block_size", "n_layer", "n_head", "n_embd"):
        check_int(f"--{name.replace('_', '-')}", getattr(a, name))
    check_number("--lr", a.lr, minimum=0.0, strict=True)
    check_number("--weight-decay", a.weight_decay, minimum=0.0)
    check_int("--seed", a.seed, minimum=0)
    if a.threads:
        torch.set_num_threads(check_int("--threads", a.threads))

    import torch.distributed as dist

    from llmcourse.files import write_atomic

    w = _init()
    try:
        res = _run(a, w)
        write_atomic(Path(a.out) / f"rank{w.rank}.json", json.dumps(res).encode("utf-8"))
        if w.rank == 0:
            print(f"{a.mode}: {w.size} processes, {a.steps} steps, loss {res['mean_loss'][0]:.3f} -> "
                  f"{res['mean_loss'][-1]:.3f}", flush=True)
        # Leave together: a process that tears down its connections while another still uses them
        # can make gloo abort the other one.
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


# ----------------------------------------------------------------------------------------------------
# tensor parallelism on paper: Megatron's split MLP, devices simulated as list entries


def _shards(weight: torch.Tensor, n_devices: int, dim: int, what: str) -> list[torch.Tensor]:
    n_devices = check_int("n_devices", n_devices)
    if weight.dim() != 2:
        raise ArgumentError(f"weight must be a matrix (d_out, d_in) as nn.Linear stores it; "
                         f"got shape {tuple(weight.shape)}")
    if weight.shape[dim] % n_devices:
        raise ArgumentError(f"n_devices = {n_devices} must divide {what} = {weight.shape[dim]} "
                         f"(every device holds an equal slice of it)")
    return list(weight.chunk(n_devices, dim=dim))


def column_parallel_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                           n_devices: int) -> list[torch.Tensor]:
    """``F.linear(x, weight, bias)`` with the output features split over ``n_devices`` devices.

    ``weight: (d_out, d_in)`` as :class:`~torch.nn.Linear` stores it (Megatron's "column split" of
    ``A = weight.T``): device i holds rows ``i·d_out/n ... (i+1)·d_out/n`` and sees all of ``x: (..., d_in)``.
    Returns the ``n_devices`` local outputs ``(..., d_out / n_devices)``; ``torch.cat(outs, -1)`` (an
    all-gather) is the full output. No communication is needed before an element-wise activation.
    """
    ws = _shards(weight, n_devices, 0, "d_out")
    bs = [None] * n_devices if bias is None else list(bias.chunk(n_devices))
    return [F.linear(x, w, b) for w, b in zip(ws, bs)]  # each (..., d_out / n)


def row_parallel_linear(xs: Sequence[torch.Tensor], weight: torch.Tensor,
                        bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(torch.cat(xs, -1), weight, bias)`` with the input features split over ``len(xs)`` devices.

    ``weight: (d_out, d_in)``; device i holds columns ``i·d_in/n ... (i+1)·d_in/n`` and its slice
    ``xs[i]: (..., d_in / n)`` of the input (what :func:`column_parallel_linear` left it). Each device
    computes a partial product ``(..., d_out)``; their sum, an **all-reduce**, is the output, and the
    bias is added once after it. Returns ``(..., d_out)``.
    """
    if isinstance(xs, torch.Tensor) or len(xs) < 1:
        raise ArgumentError("xs must be a list of the devices' input slices (..., d_in / n_devices), one per device")
    ws = _shards(weight, len(xs), 1, "d_in")
    for i, (x, w) in enumerate(zip(xs, ws)):
        if x.shape[-1] != w.shape[1]:
            raise ArgumentError(f"xs[{i}] has {x.shape[-1]} features; device {i} holds {w.shape[1]} input columns")
    partial = [F.linear(x, w) for x, w in zip(xs, ws)]  # n × (..., d_out)
    out = torch.stack(partial).sum(0)  # the all-reduce
    return out if bias is None else out + bias


def tensor_parallel_mlp(mlp: torch.nn.Module, x: torch.Tensor, n_devices: int) -> tuple[torch.Tensor, dict]:
    """Run a course MLP split Megatron-style over ``n_devices`` simulated devices.

    ``mlp``: a :class:`~llmcourse.transformer.FeedForward` (``proj(gelu(fc(x)))``) or
    :class:`~llmcourse.transformer.SwiGLU` (``down(silu(gate(x)) * up(x))``); ``x: (batch, seq, d_model)``.
    The first matrices are split by output columns (each device computes ``d_ff / n`` hidden units,
    and the activation acts on them alone), the last by input rows; one all-reduce sums the partial
    outputs. Dropout is not applied (compare with ``mlp.eval()``). Returns ``(y, comm)``: ``y`` equals
    ``mlp(x)`` up to float rounding; ``comm`` counts the forward pass's communication
    (``allreduce_numbers`` = batch·seq·d_model) and the weight-matrix entries each device holds,
    ``weights_per_device`` (1/n of the MLP's; the last bias is kept whole). The backward pass needs one
    more all-reduce of the same size, for the gradient of ``x``.
    """
    from llmcourse.transformer import FeedForward, SwiGLU, gelu_tanh

    if isinstance(mlp, FeedForward):
        pre = column_parallel_linear(x, mlp.fc.weight, mlp.fc.bias, n_devices=n_devices)
        hidden = [gelu_tanh(h) for h in pre]  # each (..., d_ff / n), no communication
        last, d_ff = mlp.proj, mlp.fc.out_features
        first = [mlp.fc]
    elif isinstance(mlp, SwiGLU):
        gates = column_parallel_linear(x, mlp.gate.weight, mlp.gate.bias, n_devices=n_devices)
        ups = column_parallel_linear(x, mlp.up.weight, mlp.up.bias, n_devices=n_devices)
        hidden = [F.silu(g) * u for g, u in zip(gates, ups)]  # each (..., d_ff / n)
        last, d_ff = mlp.down, mlp.gate.out_features
        first = [mlp.gate, mlp.up]
    else:
        raise ArgumentError(f"mlp must be a llmcourse.transformer FeedForward or SwiGLU; got {type(mlp).__name__}")
    y = row_parallel_linear(hidden, last.weight, last.bias)  # (..., d_model)
    per_device = (sum(m.weight.numel() for m in first) + last.weight.numel()) // n_devices
    comm = {"n_devices": n_devices, "d_ff_per_device": d_ff // n_devices,
            "weights_per_device": per_device, "allreduces": 1 if n_devices > 1 else 0,
            "allreduce_numbers": y.numel() if n_devices > 1 else 0,
            "allreduce_bytes": y.numel() * y.element_size() if n_devices > 1 else 0}
    return y, comm


# ----------------------------------------------------------------------------------------------------
# pipeline parallelism on paper: the GPipe timeline


@dataclass
class PipelineSchedule:
    """A GPipe timeline: ``microbatch[s, t]`` is the micro-batch stage s works on at time step t (-1:
    idle), ``backward[s, t]`` whether that work is its backward pass. Both ``(n_stages, n_steps)``;
    a forward and a backward are taken to cost one time step each."""

    n_stages: int
    n_microbatches: int
    microbatch: np.ndarray
    backward: np.ndarray

    @property
    def n_steps(self) -> int:
        return self.microbatch.shape[1]

    @property
    def bubble_fraction(self) -> float:
        """The fraction of stage × time cells in which a stage waits, counted on the grid."""
        return float((self.microbatch < 0).mean())

    def text(self) -> str:
        """The timeline as text, one row per stage: ``F2`` forward of micro-batch 2, ``B2`` backward, ``..`` idle."""
        width = len(str(self.n_microbatches - 1)) + 1
        rows = []
        for s in range(self.n_stages):
            cells = [("B" if b else "F") + str(m) if m >= 0 else "." * width
                     for m, b in zip(self.microbatch[s], self.backward[s])]
            rows.append(f"stage {s} | " + " ".join(c.rjust(width) for c in cells))
        return "\n".join(rows)


def pipeline_schedule(n_stages: int, n_microbatches: int) -> PipelineSchedule:
    """The GPipe schedule of ``n_microbatches`` (m) micro-batches through ``n_stages`` (p) stages.

    All forwards, then all backwards. Stage s runs the forward of micro-batch j at time ``s + j`` (it
    needs stage s-1's output of j); the backward starts at the last stage once every forward is done and
    flows back, stage s running micro-batch j's backward at time ``(m + p - 1) + (p - 1 - s) + j``. The
    run takes ``2(m + p - 1)`` steps in which each stage is busy ``2m``: the bubble is
    ``(p - 1) / (m + p - 1)``, which more micro-batches shrink. (1F1B schedules interleave forwards and
    backwards to hold fewer activations; the bubble is the same.)

        >>> print(pipeline_schedule(2, 3).text())
        stage 0 | F0 F1 F2 .. .. B0 B1 B2
        stage 1 | .. F0 F1 F2 B0 B1 B2 ..
    """
    p = check_int("n_stages", n_stages)
    m = check_int("n_microbatches", n_microbatches)
    half = m + p - 1
    micro = np.full((p, 2 * half), -1, dtype=np.int64)
    backward = np.zeros((p, 2 * half), dtype=bool)
    for s in range(p):
        for j in range(m):
            micro[s, s + j] = j
            t = half + (p - 1 - s) + j
            micro[s, t], backward[s, t] = j, True
    return PipelineSchedule(p, m, micro, backward)


if __name__ == "__main__":
    sys.exit(main())
