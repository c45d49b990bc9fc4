import random

import numpy as np
import pytest
import torch

import llmcourse
from llmcourse import device, in_ci, seed_everything, setup_notebook


def test_seed_everything_makes_all_generators_repeatable():
    seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_device_never_assumes_cuda(monkeypatch):
    monkeypatch.delenv("LLMCOURSE_DEVICE", raising=False)
    dev = device()
    assert dev.type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert dev.type != "cuda"
        with pytest.raises(RuntimeError, match="cuda"):
            device("cuda")
    assert device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer"):
        device("tpu")


def test_setup_notebook_reports_and_quiets_bars_in_ci(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    info = setup_notebook(seed=7)
    line = capsys.readouterr().out
    assert f"llmcourse {llmcourse.__version__}" in line and "seed 7" in line and "CI mode" in line
    assert info.ci and in_ci()
    import os

    assert os.environ["TQDM_DISABLE"] == "1"
    # the package's progress bars write nothing in CI, and something otherwise
    import io

    from llmcourse import progress

    buf = io.StringIO()
    assert list(progress(range(3), file=buf)) == [0, 1, 2]
    assert buf.getvalue() == ""
    monkeypatch.setenv("CI", "false")
    list(progress(range(3), file=buf))
    assert "3/3" in buf.getvalue()


def test_setup_notebook_without_ci(monkeypatch):
    monkeypatch.setenv("CI", "")
    info = setup_notebook(seed=1, quiet=True)
    assert not info.ci and info.seed == 1 and info.threads >= 1


def test_progress_is_silent_when_widgets_are_static(monkeypatch):
    import io

    from llmcourse import progress

    monkeypatch.setenv("CI", "")
    monkeypatch.setenv("LLMCOURSE_WIDGETS", "static")
    buf = io.StringIO()
    list(progress(range(3), file=buf))
    assert buf.getvalue() == ""
