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


def test_the_glossary_and_syllabus_are_generated_from_the_notebooks_and_up_to_date():
    from llmcourse import course

    root = course.NOTEBOOKS_DIR.parent
    assert (root / "GLOSSARY.md").read_text(encoding="utf-8") == course.glossary_markdown(), \
        "GLOSSARY.md is stale: run `python -m llmcourse docs`"
    assert (root / "SYLLABUS.md").read_text(encoding="utf-8") == course.syllabus_markdown(), \
        "SYLLABUS.md is stale: run `python -m llmcourse docs`"
    for number, file, _, _ in course.COURSE_MAP:
        path = course.NOTEBOOKS_DIR / file
        if path.exists():
            terms = course.key_terms(path)
            assert len(terms) >= 5 and all(en and zh and meaning for en, zh, meaning in terms), file
            assert any("\u4e00" <= ch <= "\u9fff" for _, zh, _ in terms for ch in zh), file
    glossary = course.glossary_markdown()
    assert "| induction head | 归纳头 |" in glossary and "| chain of thought (CoT) | 思维链 |" in glossary


def test_every_notebook_ends_with_a_link_to_the_next_one():
    import json

    from llmcourse import course

    for number, file, _, _ in course.COURSE_MAP:
        path = course.NOTEBOOKS_DIR / file
        link = course.next_link(number)
        if not path.exists() or link is None:
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert "".join(cells[-1]["source"]) == link, f"{file} should end with {link!r}"
    assert course.next_link("14") is None and course.next_link("99") is None


def test_the_docs_command_writes_both_files(tmp_path):
    from llmcourse import course

    paths = course.write_docs(tmp_path)
    assert [p.name for p in paths] == ["GLOSSARY.md", "SYLLABUS.md"]
    assert paths[0].read_text(encoding="utf-8") == course.glossary_markdown()
    assert "### 12 · [Chain of thought]" in paths[1].read_text(encoding="utf-8")
    assert "### 14 · [Capstone](notebooks/14_capstone.ipynb)" in paths[1].read_text(encoding="utf-8")


def test_every_notebook_opens_with_an_up_to_date_contents_cell():
    import json

    from llmcourse import course

    for _, file, _, _ in course.COURSE_MAP:
        path = course.NOTEBOOKS_DIR / file
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert "".join(cells[1]["source"]) == course.contents_markdown(path), \
            f"{file}: the contents cell is missing or stale: run `python -m llmcourse docs`"


def _notebook(tmp_path, cells):
    import json

    path = tmp_path / "nb.ipynb"
    nb = {"cells": [{"cell_type": t, "id": f"c{i}", "metadata": {}, "source": s,
                     **({"execution_count": None, "outputs": []} if t == "code" else {})}
                    for i, (t, s) in enumerate(cells)], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def test_contents_links_every_section_and_counts_the_study_time(tmp_path):
    import json

    from llmcourse import course

    words = " ".join(["word"] * 290)  # with the headings' 3 + 6 + 1 words: 300 words = 2 minutes
    path = _notebook(tmp_path, [
        ("markdown", "# 99 · A title"),
        ("markdown", f"## 1. Why `BPE`? (a first look)\n{words}"),
        ("code", "# a comment is not counted\n" + "x = 1\n" * 20),  # 20 lines = 2 minutes
        ("code", "check('99.1', x)"),  # 1 line, and an exercise: 15 minutes
        ("markdown", "## Summary"),
    ])
    minutes, counts = course.study_minutes(path)
    assert counts == {"words": 300, "code_lines": 21, "exercises": 1}
    assert minutes == 19  # 2 + 2.1 + 15
    text = course.contents_markdown(path)
    assert "about 19 minutes (300 words" in text
    assert "- [1. Why `BPE`? (a first look)](#1.-Why-BPE?-%28a-first-look%29)" in text
    assert text.endswith("- [Summary](#Summary)")
    assert course.write_contents(path) is True
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert [c["id"] for c in cells] == ["c0", "contents", "c1", "c2", "c3", "c4"]
    assert course.write_contents(path) is False  # up to date: the file is not touched
    assert "".join(cells[1]["source"]) == course.contents_markdown(path)  # its own words are not counted


def test_study_time_reads_as_a_person_would_say_it():
    from llmcourse.course import _hours

    assert [_hours(m) for m in (19, 60, 75, 100, 125)] == ["19 minutes", "1 hour", "1¼ hours", "1¾ hours", "2 hours"]
