"""Fixtures for the package tests: every test starts from the same seeds and a non-interactive
matplotlib backend (set in this process only, so notebook kernels keep their inline backend)."""

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _seeded():
    from llmcourse import seed_everything

    seed_everything(0)
    yield


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine threads that wait for each
    other at every small operation made training tests many times slower. A module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cpp_compiler():
    """torch.compile needs a C++ compiler on a CPU: skip without one, but fail under CI, whose ``.ci/run``
    installs g++."""
    import os

    from llmcourse.optim import cpp_compiler

    found = cpp_compiler()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no C++ compiler: torch.compile cannot be tested (.ci/run installs g++)")
        pytest.skip("no C++ compiler for torch.compile")
    return found
