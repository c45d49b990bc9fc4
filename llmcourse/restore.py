"""Put a notebook back the way the course ships it, without knowing git.

A learner who has edited a notebook into a state they cannot run any more wants it back as it was.
``python -m llmcourse restore 05`` does that, and ``python -m llmcourse restore --list`` says which
notebooks differ from the course's copy. The learner's version is never thrown away: it is kept in
``~/.llmcourse/backups/`` (or ``$LLMCOURSE_HOME/backups/``) first.

Where the clean copy comes from, in this order:

1. **git**, when the course is a git checkout and git is installed: the notebook as of the last commit
   (``git show HEAD:path``), read without touching the working tree or the index;
2. **the setup snapshot**, ``.venv/clean-notebooks/``: ``make lab`` and ``make test`` copy the notebooks
   there when they create the environment, so a course downloaded as a zip can be restored too.

If neither exists the command says so and changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from llmcourse.checks import ArgumentError, check_str
from llmcourse.course import COURSE_MAP, NOTEBOOKS_DIR

__all__ = ["RestoreError", "backup_dir", "changed_notebooks", "clean_copy", "notebook_path", "restore"]

ROOT = NOTEBOOKS_DIR.parent
SNAPSHOT = Path(".venv") / "clean-notebooks"  # relative to the course's folder


class RestoreError(RuntimeError):
    """No clean copy of a notebook could be found."""


@dataclass(frozen=True)
class CleanCopy:
    data: bytes
    source: str  # "git HEAD" or the snapshot folder


def backup_dir() -> Path:
    """Where a learner's version goes before it is replaced: ``$LLMCOURSE_HOME/backups`` if set, else
    ``~/.llmcourse/backups``."""
    home = os.environ.get("LLMCOURSE_HOME")
    return (Path(home) if home else Path.home() / ".llmcourse") / "backups"


def _all_notebooks(notebooks_dir: Path) -> list[Path]:
    files = [notebooks_dir / row[1] for row in COURSE_MAP]
    files += sorted((notebooks_dir / "solutions").glob("*.ipynb"))
    return [f for f in files if f.exists()]


def notebook_path(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    """``"05"``, ``"5"``, ``"05_pretraining"`` or ``"05_pretraining.ipynb"`` -> the notebook's path;
    ``"05s"`` or a ``..._solutions`` name -> its solutions notebook."""
    check_str("notebook", name)
    key = name.strip().removesuffix(".ipynb").replace("\\", "/").split("/")[-1]
    solutions = False
    if key.endswith("_solutions"):
        key, solutions = key.removesuffix("_solutions"), True
    elif key.endswith("s") and key[:-1].isdigit():
        key, solutions = key[:-1], True
    for number, file, _, _ in COURSE_MAP:
        stem = file.removesuffix(".ipynb")
        if key in (number, stem) or (key.isdigit() and int(key) == int(number)):
            path = notebooks_dir / ("solutions/" + stem + "_solutions.ipynb" if solutions else file)
            if path.exists():
                return path
            break
    known = ", ".join(row[0] for row in COURSE_MAP)
    raise ArgumentError(f"notebook must be a notebook of the course ({known}, or e.g. 05s for the solutions "
                        f"of 05), got {name!r}")


def _git_copy(path: Path, root: Path) -> bytes | None:
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    try:
        done = subprocess.run(["git", "-C", str(root), "show", f"HEAD:{rel}"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def clean_copy(path: Path, notebooks_dir: Path = NOTEBOOKS_DIR) -> CleanCopy:
    """The course's own copy of the notebook at ``path`` (see the module docstring for where from)."""
    path, root = Path(path), Path(notebooks_dir).parent
    data = _git_copy(path, root)
    if data is not None:
        return CleanCopy(data, "git HEAD")
    rel = path.resolve().relative_to(Path(notebooks_dir).resolve())
    snapshot = root / SNAPSHOT
    if (snapshot / rel).exists():
        return CleanCopy((snapshot / rel).read_bytes(), str(snapshot))
    raise RestoreError(f"no clean copy of {path.name}: this is not a git checkout and there is no setup snapshot "
                       f"in {snapshot} (make lab or make test creates it). Download the course again and copy "
                       f"notebooks/{rel.as_posix()} from it.")


def changed_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks whose file differs from the clean copy (those with none are skipped)."""
    out = []
    for path in _all_notebooks(notebooks_dir):
        try:
            if clean_copy(path, notebooks_dir).data != path.read_bytes():
                out.append(path)
        except RestoreError:
            continue
    return out


def restore(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> dict:
    """Back up the learner's notebook, then write the clean copy in its place. Returns what was done:
    ``{"notebook", "source", "backup"}`` (``backup`` is None when the notebook was already clean)."""
    from llmcourse.files import write_atomic

    path = notebook_path(name, notebooks_dir)
    clean = clean_copy(path, notebooks_dir)
    current = path.read_bytes()
    if current == clean.data:
        return {"notebook": str(path), "source": clean.source, "backup": None}
    folder = backup_dir()
    folder.mkdir(parents=True, exist_ok=True)
    backup = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
    n = 1
    while backup.exists():
        n += 1
        backup = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.ipynb"
    write_atomic(backup, current)
    write_atomic(path, clean.data)
    return {"notebook": str(path), "source": clean.source, "backup": str(backup)}
