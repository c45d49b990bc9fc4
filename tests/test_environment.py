"""The three descriptions of the environment agree: pyproject.toml (ranges), environment.yml (conda)
and requirements.lock (the exact versions CI tested)."""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def pyproject_requirements() -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier) for r in reqs}


def conda_requirements() -> dict[str, str]:
    deps = {}
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)(.*)$", line)
        if in_deps and m and m.group(1) not in {"python", "pip"}:
            name = CONDA_TO_PIP.get(m.group(1), m.group(1))
            deps[canonicalize_name(name)] = str(Requirement(f"{name}{m.group(2).strip()}").specifier)
    return deps


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_conda_file_and_pip_metadata_agree():
    assert conda_requirements() == pyproject_requirements()


def test_pyproject_uses_ranges_not_pins():
    for name, spec in pyproject_requirements().items():
        assert "==" not in spec, f"{name} is pinned in pyproject.toml ({spec}); pins belong in requirements.lock"
        assert ">=" in spec, f"{name} needs a lower bound"


def test_lock_satisfies_every_range():
    pins = locked_versions()
    for name, spec in pyproject_requirements().items():
        assert name in pins, f"{name} is missing from requirements.lock"
        assert Requirement(f"{name}{spec}").specifier.contains(pins[name], prereleases=True), (name, pins[name], spec)


def test_lock_pins_the_cpu_torch_and_nothing_from_cuda():
    pins = locked_versions()
    assert pins["torch"] == "2.13.0"
    cuda = [n for n in pins if n.startswith("nvidia-") or n in {"triton", "cuda-python"}]
    assert not cuda, f"requirements.lock would pull CUDA packages: {cuda}"
