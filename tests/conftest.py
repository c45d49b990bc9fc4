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
