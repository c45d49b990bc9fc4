"""python -m llmcourse restore: a learner's broken notebook back as the course ships it, from git or from
the setup snapshot, with the learner's version kept."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmcourse import restore
from llmcourse.checks import ArgumentError
from llmcourse.course import NOTEBOOKS_DIR

NB = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# 05 clean"]}],
      "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def course(tmp_path: Path) -> Path:
    """A course folder with notebooks 05 and its solutions."""
    nbs = tmp_path / "course" / "notebooks"
    (nbs / "solutions").mkdir(parents=True)
    (nbs / "05_pretraining.ipynb").write_text(json.dumps(NB, indent=1) + "\n")
    (nbs / "solutions" / "05_pretraining_solutions.ipynb").write_text(json.dumps(NB) + "\n")
    return nbs


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMCOURSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_names_a_learner_may_type():
    assert restore.notebook_path("05").name == "05_pretraining.ipynb"
    assert restore.notebook_path("5") == restore.notebook_path("05_pretraining.ipynb")
    assert restore.notebook_path("notebooks/05_pretraining") == NOTEBOOKS_DIR / "05_pretraining.ipynb"
    assert restore.notebook_path("05s") == NOTEBOOKS_DIR / "solutions" / "05_pretraining_solutions.ipynb"
    assert restore.notebook_path("05_pretraining_solutions.ipynb") == restore.notebook_path("05s")
    for bad in ("99", "pretraining", "", "05x"):
        with pytest.raises(ArgumentError, match="notebook must be a notebook of the course"):
            restore.notebook_path(bad)
    with pytest.raises(ArgumentError, match="notebook must be a str"):
        restore.notebook_path(5)


def test_restores_from_git_and_keeps_the_learners_version(tmp_path, home):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    nbs = course(tmp_path)
    root = nbs.parent
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "clean"], check=True)
    clean = (nbs / "05_pretraining.ipynb").read_bytes()
    assert restore.changed_notebooks(nbs) == []
    (nbs / "05_pretraining.ipynb").write_text("{ broken by a learner")
    assert restore.changed_notebooks(nbs) == [nbs / "05_pretraining.ipynb"]
    done = restore.restore("05", nbs)
    assert done["source"] == "git HEAD"
    assert (nbs / "05_pretraining.ipynb").read_bytes() == clean
    assert Path(done["backup"]).read_text() == "{ broken by a learner"
    assert Path(done["backup"]).parent == home / "backups"
    assert restore.restore("05", nbs)["backup"] is None  # already clean: nothing written
    assert len(list((home / "backups").iterdir())) == 1


def test_restores_from_the_setup_snapshot_without_git(tmp_path, home):
    nbs = course(tmp_path)
    with pytest.raises(restore.RestoreError, match="no clean copy of 05_pretraining.ipynb.*make lab or make test"):
        restore.restore("05", nbs)
    shutil.copytree(nbs, nbs.parent / ".venv" / "clean-notebooks")  # what the Makefile does at set-up
    sol = nbs / "solutions" / "05_pretraining_solutions.ipynb"
    clean = sol.read_bytes()
    sol.write_text("{}")
    assert restore.changed_notebooks(nbs) == [sol]
    done = restore.restore("05s", nbs)
    assert done["source"].endswith("clean-notebooks") and sol.read_bytes() == clean
    assert restore.changed_notebooks(nbs) == []


def test_the_command_line(tmp_path):
    env = {"LLMCOURSE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "llmcourse", "restore"]
    out = subprocess.run(run + ["--list"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    bad = subprocess.run(run + ["99"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "NOTEBOOK must be a notebook of the course" in bad.stderr


def test_the_makefile_takes_the_snapshot():
    makefile = (NOTEBOOKS_DIR.parent / "Makefile").read_text()
    assert "cp -R notebooks $(VENV)/clean-notebooks" in makefile
