from pathlib import Path

from llmcourse.course import COURSE_MAP, NOTEBOOKS_DIR, course_map_markdown


def test_course_map_covers_every_notebook_file():
    files = {p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")}
    assert files <= {f for _, f, _, _ in COURSE_MAP}, "a notebook is missing from llmcourse.course.COURSE_MAP"
    assert [n for n, *_ in COURSE_MAP] == [f"{i:02d}" for i in range(15)]


def test_course_map_links_what_exists_and_marks_the_rest(tmp_path: Path):
    (tmp_path / "01_ngrams.ipynb").write_text("{}")
    table = course_map_markdown(tmp_path)
    assert "| 01 | [n-gram language models](01_ngrams.ipynb) |" in table and "| ready |" in table
    assert "| 00 | Welcome |" in table and table.count("coming") == 14
