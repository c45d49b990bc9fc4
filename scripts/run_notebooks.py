"""Run notebooks top to bottom in a fresh kernel, time them, and (with --write) save their outputs.

    python scripts/run_notebooks.py --write                 # every notebook, outputs saved in place
    python scripts/run_notebooks.py notebooks/00_welcome.ipynb

This is how the committed outputs are made (``make notebooks``): a real run, execution counts 1..n.
Widgets render in their static form (LLMCOURSE_WIDGETS=static) so the saved notebook reads well on
GitHub; JupyterLab shows the live widgets as soon as a learner runs a cell.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 240.0


def all_notebooks() -> list[Path]:
    nbs = (ROOT / "notebooks").rglob("*.ipynb")
    return sorted(p for p in nbs if ".ipynb_checkpoints" not in p.parts)


def run(path: Path, write: bool, timeout: int = 600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ["LLMCOURSE_WIDGETS"] = "static"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # the outputs' checks are not a learner's progress (llmcourse.exercises.progress)
    os.environ["LLMCOURSE_PROGRESS"] = os.path.join(tempfile.gettempdir(), f"llmcourse-run-progress-{os.getpid()}.json")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False, store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if write:
        nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
        nbformat.write(nb, path)
        if path.parent.name == "notebooks":  # keep its contents cell (sections, study time) up to date
            from llmcourse.course import write_contents

            write_contents(path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook under notebooks/")
    parser.add_argument("--write", action="store_true", help="save the outputs into the notebooks")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or all_notebooks()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"notebooks not found: {', '.join(missing)}")
    total = 0.0
    failed = False
    for path in paths:
        try:
            seconds = run(path, args.write)
        except Exception as exc:  # report and go on, so one broken notebook does not hide the others
            print(f"   FAILED  {path.relative_to(ROOT)}: {type(exc).__name__}: {str(exc)[-2000:]}", flush=True)
            failed = True
            continue
        total += seconds
        flag = "OVER BUDGET" if seconds > BUDGET_S else "ok"
        print(f"{seconds:7.1f} s  {flag:<11} {path.relative_to(ROOT)}", flush=True)
    print(f"{total:7.1f} s  total ({len(paths)} notebooks; budget {BUDGET_S:.0f} s each, 1500 s in all)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
