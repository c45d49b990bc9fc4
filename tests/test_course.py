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
