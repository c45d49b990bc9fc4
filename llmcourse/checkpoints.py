"""Training checkpoints on disk: one safetensors file, written atomically, verified on read.

A checkpoint is tensors (weights, optimiser moments, generator states) plus string metadata (the
configurations, the step, the data position, the history). This module knows the file, not the
training: :class:`~llmcourse.training.Trainer` decides what goes in and what comes out.

- :func:`write_checkpoint` records a sha256 of every tensor's bytes and of the metadata in the file
  itself, and writes it with :func:`llmcourse.files.write_atomic` (a crash mid-write leaves the previous
  checkpoint intact).
- :func:`read_checkpoint` refuses a file that is missing, not safetensors, not a course checkpoint, or
  whose contents no longer match the recorded sha256 (flipped bytes on a disk, an edited file), with
  :class:`CheckpointError` naming the file.
- :func:`model_config` is what identifies a model's architecture; :func:`describe_difference` names the
  fields in which two configurations differ, so a mismatch reads as "n_layer = 4 in the checkpoint, 2
  here" rather than a size-mismatch traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from llmcourse.files import write_atomic

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "describe_difference", "model_config", "read_checkpoint",
           "write_checkpoint"]

CHECKPOINT_FORMAT = "llmcourse-checkpoint-1"
_HASH_KEY = "content_sha256"


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or belongs to another model or training configuration."""


def model_config(model: torch.nn.Module) -> dict:
    """What identifies a model's architecture: its class, its configuration (when it has one) and the
    name and shape of every tensor in its state dict. Checkpoints record it and compare it on load."""
    config = getattr(model, "config", None)
    as_dict = getattr(config, "as_dict", None)
    return {
        "class": type(model).__name__,
        "config": as_dict() if callable(as_dict) else None,
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }


def describe_difference(saved: dict, current: dict, what: str = "") -> str:
    """A readable list of the fields in which two configuration dicts differ."""
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                diffs.append(f"{key}: {describe_difference(a, b)}")
            else:
                diffs.append(f"{key} = {a!r} in the checkpoint, {b!r} here")
    text = "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")
    return f"{what}{text}" if what else text


def _content_sha256(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """sha256 over every tensor (name, dtype, shape, bytes, in name order) and the metadata."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    h.update(json.dumps({k: v for k, v in meta.items() if k != _HASH_KEY}, sort_keys=True).encode())
    return h.hexdigest()


def write_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    """Write ``tensors`` and string ``meta`` to ``path`` atomically, with their sha256 recorded inside."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": CHECKPOINT_FORMAT, **meta}
    meta[_HASH_KEY] = _content_sha256(tensors, meta)
    write_atomic(path, save(tensors, metadata=meta))
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, meta)`` of a checkpoint :func:`write_checkpoint` wrote, after checking that it is one and
    that its contents match the sha256 recorded when it was written."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); it is damaged or was cut "
                              "short: delete it and train again from the start or an earlier checkpoint") from e
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a llmcourse training checkpoint "
                              f"(format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    recorded = meta.get(_HASH_KEY)
    if recorded is None:
        raise CheckpointError(f"{path} records no {_HASH_KEY}: it was not written by llmcourse.checkpoints "
                              "(or an older version); train again to make a verifiable checkpoint")
    if _content_sha256(tensors, meta) != recorded:
        raise CheckpointError(f"{path} is damaged: its contents no longer match the sha256 recorded when it was "
                              "written (bytes changed on disk or the file was edited); delete it and resume "
                              "from an earlier checkpoint or train again")
    return tensors, meta
