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
