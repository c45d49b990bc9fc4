"""``python -m llmcourse doctor``: is this machine ready for the course?

One line per check, ``OK`` or ``FAIL``, and for every FAIL the command that fixes it. Exit status 1
if anything failed, so scripts and CI can rely on it. Notebook 00 runs it.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Callable

MIN_PYTHON = (3, 10)
FIX_ENV = "run `make lab` (or `make test`) to recreate the project environment .venv from requirements.lock"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{'OK  ' if self.ok else 'FAIL'}  {self.name:<30} {self.detail}"
        if not self.ok and self.fix:
            line += f"\n      fix: {self.fix}"
        return line


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"2.13.0+cpu"`` -> ``(2, 13, 0)``; pre-release and local tags do not count."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release[:3]
    except InvalidVersion:
        return (0,)


def check_python() -> Check:
    v = sys.version_info
    ok = (v.major, v.minor) >= MIN_PYTHON
    return Check("python", ok, f"{sys.version.split()[0]} at {sys.executable}",
                 f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer, then {FIX_ENV}")


def check_package(module: str, minimum: str, label: str | None = None) -> Check:
    label = label or module
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install raising something else
        return Check(label, False, f"cannot import {module}: {type(exc).__name__}: {exc}", FIX_ENV)
    version = getattr(mod, "__version__", "unknown")
    ok = version == "unknown" or _version_tuple(version) >= _version_tuple(minimum)
    return Check(label, ok, f"{version} (need >= {minimum})", FIX_ENV)


def check_device() -> Check:
    try:
        import torch

        from llmcourse.notebook import device

        dev = device()
        x = torch.ones(64, 64, device=dev)
        ok = float((x @ x).sum()) == 64.0**3
        detail = f"{dev.type}" + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else "")
        detail += "; the course runs on the CPU, a GPU or Apple MPS is used when present"
        return Check("device", ok, detail, "reinstall PyTorch for your accelerator, or set LLMCOURSE_DEVICE=cpu")
    except Exception as exc:
        return Check("device", False, f"{type(exc).__name__}: {exc}",
                     "set LLMCOURSE_DEVICE=cpu to use the CPU, or fix the PyTorch install: " + FIX_ENV)


def check_threads() -> Check:
    try:
        import torch
    except ImportError:
        return Check("threads", False, "PyTorch missing", FIX_ENV)
    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    ok = 1 <= threads <= cores
    return Check("threads", ok, f"torch uses {threads} of {cores} logical cores",
                 f"set OMP_NUM_THREADS={cores} (more threads than cores slows everything down)")


def check_compiler() -> Check:
    """A C++ compiler for ``torch.compile`` (``TrainConfig(compile=True)``, notebook 05). Optional: without
    one the trainer says so and trains uncompiled, so a missing compiler is not a FAIL."""
    try:
        from llmcourse.optim import cpp_compiler  # imports torch
    except ImportError:
        return Check("C++ compiler", False, "PyTorch missing", FIX_ENV)
    found = cpp_compiler()
    if found:
        return Check("C++ compiler", True, f"{found}: compile=True can compile models")
    return Check("C++ compiler", True, "none found: compile=True will train uncompiled (slower, same results); "
                 "optional, install g++ or clang to use it")


def check_lab_widgets() -> Check:
    """ipywidgets needs its JupyterLab extension (jupyterlab_widgets) to draw anything in the lab."""
    try:
        import ipywidgets
        import jupyterlab_widgets
    except ImportError as exc:
        return Check("widgets extension", False, f"cannot import {exc.name}", FIX_ENV)
    return Check("widgets extension", True,
                 f"ipywidgets {ipywidgets.__version__} with jupyterlab_widgets {jupyterlab_widgets.__version__}")


def check_data() -> list[Check]:
    """Every file listed in data/SHA256SUMS exists and has the recorded sha256."""
    from llmcourse import datasets

    rebuild = "python scripts/build_shakespeare.py  (or restore the committed files: git checkout -- data/)"
    try:
        sums = datasets.read_checksums()
    except Exception as exc:
        return [Check("data", False, f"cannot read the checksum list: {exc}", "git checkout -- data/SHA256SUMS")]
    if not sums:
        return [Check("data", False, "data/SHA256SUMS lists no files", "git checkout -- data/")]
    root = datasets.data_dir()
    checks = []
    for rel, expected in sorted(sums.items()):
        path = root / rel
        if not path.is_file():
            checks.append(Check(f"data {rel}", False, f"missing: {path}", rebuild))
            continue
        digest = datasets.sha256_file(path)
        if digest == expected:
            checks.append(Check(f"data {rel}", True, f"sha256 {digest[:12]}… matches"))
        else:
            checks.append(Check(f"data {rel}", False,
                                f"sha256 {digest[:12]}… does not match the recorded {expected[:12]}…", rebuild))
    return checks


def check_zoo() -> list[Check]:
    """Every model in zoo/ has its weights, matching the sha256 on its card."""
    from llmcourse import zoo

    checks = []
    for name in zoo.names():
        try:
            zoo.verify(name)
            checks.append(Check(f"zoo {name}", True, f"sha256 {zoo.card(name)['sha256'][:12]}… matches its card"))
        except zoo.ZooError as exc:
            checks.append(Check(f"zoo {name}", False, str(exc).split("; rebuild")[0],
                                f"python scripts/build_zoo.py {name}  (or git checkout -- zoo/)"))
    return checks


CHECKS: list[Callable[[], Check | list[Check]]] = [
    check_python,
    lambda: check_package("torch", "2.2", "pytorch"),
    check_device,
    check_threads,
    check_compiler,
    lambda: check_package("jupyterlab", "4.0"),
    lambda: check_package("ipywidgets", "8.1"),
    check_lab_widgets,
    lambda: check_package("numpy", "1.24"),
    lambda: check_package("matplotlib", "3.7"),
    lambda: check_package("tokenizers", "0.15"),
    lambda: check_package("safetensors", "0.4"),
    check_data,
    check_zoo,
]


def run_checks() -> list[Check]:
    results: list[Check] = []
    for fn in CHECKS:
        out = fn()
        results.extend(out if isinstance(out, list) else [out])
    return results


def main() -> int:
    results = run_checks()
    for check in results:
        print(check)
    failed = [c for c in results if not c.ok]
    print(f"\n{len(results) - len(failed)} OK, {len(failed)} FAIL" + ("" if failed else ": ready for the course."))
    return 1 if failed else 0
