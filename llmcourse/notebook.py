"""What every notebook does first: seeds, plotting defaults, the device, quiet progress bars in CI.

    >>> import llmcourse
    >>> info = llmcourse.setup_notebook(seed=0)   # doctest: +SKIP
    llmcourse 0.1.0 | torch 2.13.0+cpu | device cpu | 2 threads | seed 0

The function is cheap and idempotent, so a learner can re-run the first cell at any time.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from llmcourse.checks import ArgumentError

_TRUTHY = {"1", "true", "yes", "on"}


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to a true value (GitHub Actions sets ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in _TRUTHY


def device(prefer: str | None = None) -> torch.device:
    """The best available accelerator: CUDA, then Apple MPS, then the CPU. Never assumes CUDA.

    ``prefer`` (or the ``LLMCOURSE_DEVICE`` environment variable) forces one, e.g. ``"cpu"`` to make a
    run on a GPU machine match the committed CPU outputs.
    """
    choice = prefer if prefer is not None else os.environ.get("LLMCOURSE_DEVICE")
    if choice is not None:
        if choice not in {"cpu", "cuda", "mps"}:
            raise ArgumentError(f"device: prefer must be 'cpu', 'cuda' or 'mps', got {choice!r}")
        if choice == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: 'cuda' was requested but torch.cuda.is_available() is False")
        if choice == "mps" and not _mps_available():
            raise RuntimeError("device: 'mps' was requested but torch.backends.mps.is_available() is False")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ArgumentError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def progress(iterable=None, **kwargs):
    """A ``tqdm.auto`` progress bar (a widget in JupyterLab, text elsewhere); silent in CI and when
    widgets are static.

    Every long loop in the package uses this, so CI logs stay readable and nbval never compares a bar.
    """
    from tqdm.auto import tqdm

    # LLMCOURSE_WIDGETS=static: no live front end (scripts/run_notebooks.py writing the committed
    # outputs), where a bar would be saved as a frozen "0%" line.
    quiet = in_ci() or os.environ.get("LLMCOURSE_WIDGETS", "").strip().lower() == "static"
    kwargs["disable"] = kwargs.get("disable", False) or quiet
    return tqdm(iterable, **kwargs)


@dataclass(frozen=True)
class NotebookInfo:
    """What :func:`setup_notebook` chose; printed as one line at the top of every notebook."""

    version: str
    torch_version: str
    device: torch.device
    threads: int
    seed: int
    ci: bool

    def __str__(self) -> str:
        ci = " | CI mode (quiet progress bars)" if self.ci else ""
        return (
            f"llmcourse {self.version} | Python {platform.python_version()} | torch {self.torch_version} | "
            f"device {self.device.type} | {self.threads} threads | seed {self.seed}{ci}"
        )


def setup_notebook(seed: int = 0, *, quiet: bool = False) -> NotebookInfo:
    """Prepare a notebook: seed everything, set plotting defaults, pick the device, quiet bars in CI.

    Returns a :class:`NotebookInfo` and prints it (unless ``quiet``), so every notebook records the
    versions and device its outputs came from.
    """
    from llmcourse import __version__
    from llmcourse.plotting import use_course_style

    seed_everything(seed)
    use_course_style()
    ci = in_ci()
    if ci:
        # For child processes (torchrun workers, scripts): tqdm reads TQDM_DISABLE when it is imported.
        os.environ["TQDM_DISABLE"] = "1"
    info = NotebookInfo(
        version=__version__,
        torch_version=torch.__version__,
        device=device(),
        threads=torch.get_num_threads(),
        seed=seed,
        ci=ci,
    )
    if not quiet:
        print(info)
    return info
