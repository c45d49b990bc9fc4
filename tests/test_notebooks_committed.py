"""Every notebook is committed with the outputs of a real top-to-bottom run, and follows the template."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
LESSONS = [p for p in NOTEBOOKS if "solutions" not in p.parts]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert LESSONS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_committed_with_a_clean_top_to_bottom_run(path):
    nb = load(path)
    cells = code_cells(nb)
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"execution counts {counts}: rerun with `make notebooks`"
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{len(errors)} error outputs committed"
    assert "setup_notebook(" in "".join(cells[0]["source"]), "the first code cell must call llmcourse.setup_notebook()"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_follows_the_template(path):
    nb = load(path)
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    for heading in ["Learning goals", "Prerequisites", "Estimated run time", "Exercises", "Summary", "Key terms"]:
        assert re.search(rf"^#+ .*{heading}", text, re.M | re.I), f"missing a '{heading}' heading"
    assert "llmcourse.widgets" in text or "from llmcourse.widgets" in text, "needs an interactive widget"
    assert "check(" in text, "exercises need checkers"
    assert re.search(r"[\u4e00-\u9fff]", text), "the key terms need their Chinese names"
    solutions = path.parent / "solutions"
    if solutions.is_dir():  # `make handout` leaves the solutions out on purpose
        solution = solutions / path.name.replace(".ipynb", "_solutions.ipynb")
        assert solution.exists(), f"missing worked solutions: {solution.relative_to(ROOT)}"


def test_readme_course_map_links_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in LESSONS:
        assert f"notebooks/{path.name}" in readme, f"README does not link {path.name}"
