"""pytest configuration shared by the package tests (tests/) and the notebooks (notebooks/, via nbval).

The options themselves are in pyproject.toml ([tool.pytest.ini_options]): --nbval-lax (only cells
marked ``# NBVAL_CHECK_OUTPUT`` compare their output; every cell must run), the kernel of the current
environment, a 240 s cell timeout. Here: stderr is never compared (progress bars, warnings), kernels
inherit a fixed hash seed, and the run ends with how long each notebook took against its budget.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

# Kernels are child processes: they inherit these. A fixed hash seed makes set/dict-of-str orders
# repeatable in notebooks.
os.environ.setdefault("PYTHONHASHSEED", "0")
# Running the notebooks and their solutions checks every exercise; that is not the learner's progress.
os.environ["LLMCOURSE_PROGRESS"] = os.path.join(__import__("tempfile").gettempdir(),
                                                f"llmcourse-test-progress-{os.getpid()}.json")

NOTEBOOK_BUDGET_S = 240.0  # the promise: every notebook within 4 minutes on a 2-core CPU
COURSE_BUDGET_S = 25 * 60.0
_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        parent = getattr(item, "parent", None)
        skip = getattr(parent, "skip_compare", None)
        if skip is not None and "stderr" not in skip:
            parent.skip_compare = tuple(skip) + ("stderr",)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _notebook_seconds:
        return
    tr = terminalreporter
    tr.section("notebook run times (budget 240 s each, 25 min for the course)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else "ok"
        tr.write_line(f"{seconds:8.1f} s  {flag:<11}  {Path(path).as_posix()}")
    total = sum(_notebook_seconds.values())
    flag = "OVER BUDGET" if total > COURSE_BUDGET_S else "ok"
    tr.write_line(f"{total:8.1f} s  {flag:<11}  all {len(_notebook_seconds)} notebooks")
