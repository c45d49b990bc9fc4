"""The cache of finished runs of ``scripts/scaling_ladder.py``: written atomically, and read so that a run
killed while writing costs one point, not the next build.

Only the cache functions are exercised; the ladder itself (half an hour of training) is not run.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "scaling_ladder.py"


@pytest.fixture(scope="module")
def ladder():
    spec = importlib.util.spec_from_file_location("scaling_ladder_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: main() runs under __main__
    return module


RUNS = {
    ("L1-16", "fixed-D", 1048576): {"name": "L1-16", "val_loss": 2.5, "budget": None},
    ("L2-32", "isoflop", 1e12): {"name": "L2-32", "val_loss": 2.25, "budget": 1e12},
    ("L3-64", "isoflop", 3e12): {"name": "L3-64", "val_loss": 2.0, "budget": 3e12},
}


def test_write_then_read_round_trips(ladder, tmp_path):
    path = tmp_path / "sub" / "cache.jsonl"
    assert ladder.read_cache(path) == {}  # no file yet: an empty cache
    ladder.write_cache(path, RUNS)
    assert ladder.read_cache(path) == RUNS
    assert path.read_text().count("\n") == 3 and path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["cache.jsonl"]  # no temporary file left


def test_a_damaged_last_line_is_dropped_with_a_warning(ladder, tmp_path, capsys):
    path = tmp_path / "cache.jsonl"
    ladder.write_cache(path, RUNS)
    whole = path.read_bytes()
    for cut in (len(whole) - 2, len(whole) - 10, len(whole) - 40):  # killed part-way through the last line
        path.write_bytes(whole[:cut])
        got = ladder.read_cache(path)
        assert got == dict(list(RUNS.items())[:2])  # the third point will be trained again
        err = capsys.readouterr().err
        assert str(path) in err and "line 3" in err and "warning" in err
    path.write_bytes(whole[:-1])  # only the final newline missing: the line is whole, nothing to warn about
    assert ladder.read_cache(path) == RUNS and capsys.readouterr().err == ""
    path.write_bytes(whole + b'{"key": ["L4-128", "isoflop", 1e13], "run": {"val_lo')  # an old-style append
    assert ladder.read_cache(path) == RUNS
    assert "line 4" in capsys.readouterr().err
    path.write_bytes(whole + "{\"key\": [\"é".encode()[:-1])  # cut inside a UTF-8 character
    assert ladder.read_cache(path) == RUNS
    assert str(path) in capsys.readouterr().err


def test_a_damaged_line_in_the_middle_is_an_error(ladder, tmp_path):
    path = tmp_path / "cache.jsonl"
    ladder.write_cache(path, RUNS)
    lines = path.read_text().splitlines(keepends=True)
    for damaged in (lines[1][: len(lines[1]) // 2] + "\n", "[1, 2, 3]\n", '{"key": ["a"], "run": {}}\n'):
        path.write_text(lines[0] + damaged + lines[2])
        with pytest.raises(ladder.CacheFileError, match="line 2") as err:
            ladder.read_cache(path)
        assert str(path) in str(err.value) and "--fresh" in str(err.value)


def test_blank_lines_are_skipped(ladder, tmp_path):
    path = tmp_path / "cache.jsonl"
    ladder.write_cache(path, RUNS)
    path.write_text("\n" + path.read_text().replace("\n", "\n\n"))
    assert ladder.read_cache(path) == RUNS


def test_the_cache_write_is_atomic(ladder, tmp_path, monkeypatch):
    path = tmp_path / "cache.jsonl"
    first = dict(list(RUNS.items())[:1])
    ladder.write_cache(path, first)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        ladder.write_cache(path, RUNS)
    monkeypatch.undo()
    assert path.read_bytes() == before and ladder.read_cache(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["cache.jsonl"]


def test_keys_survive_json(ladder, tmp_path):
    # main() looks a run up by (name, sweep, tokens or budget) with budget a float such as 1e12: the
    # key read back must be equal to (and hash like) the one the script builds.
    path = tmp_path / "cache.jsonl"
    ladder.write_cache(path, RUNS)
    done = ladder.read_cache(path)
    budget = next(iter(ladder.ISOFLOP))
    assert budget == 1e12 and ("L2-32", "isoflop", budget) in done
    assert ("L1-16", "fixed-D", ladder.FIXED_TOKENS) in done
    assert json.loads(path.read_text().splitlines()[1])["key"] == ["L2-32", "isoflop", 1e12]


def test_a_killed_build_resumes_from_the_cache(ladder, tmp_path, monkeypatch, capsys):
    # main() with the training replaced by a stub: killed after three runs, and with an old-style
    # half-written line after them, the next build trains only what is missing.
    from types import SimpleNamespace

    calls = []

    def train(n_layer, n_embd, vocab_size, train_ids, val_ids, *, tokens=None, budget=None, probe=None):
        if len(calls) == kill_after:
            raise KeyboardInterrupt
        calls.append((n_layer, n_embd, tokens, budget))
        return {"non_embedding": n_layer * n_embd, "tokens": tokens or 1, "flops": 1.0, "val_loss": 2.0,
                "char_accuracy": 0.5, "exact_match": 0.1}

    probe = {"starts": [0], "context": 8, "given": 3}
    monkeypatch.setattr(ladder.scaling, "ladder_data", lambda: (SimpleNamespace(size=10), [], [], probe))
    monkeypatch.setattr(ladder.scaling, "train_ladder_point", train)
    monkeypatch.setattr(ladder, "data_dir", lambda: tmp_path)
    monkeypatch.setattr(ladder, "record_checksum", lambda name: None)
    cache = tmp_path / "cache" / "scaling_ladder.jsonl"
    monkeypatch.setattr(ladder, "CACHE", cache)
    monkeypatch.setattr("sys.argv", ["scaling_ladder.py"])
    total = len(ladder.scaling.LADDER) + sum(len(names) for names in ladder.ISOFLOP.values())

    kill_after = 3
    with pytest.raises(KeyboardInterrupt):
        ladder.main()
    assert len(ladder.read_cache(cache)) == 3 and not (tmp_path / ladder.FILE).exists()
    with cache.open("a") as f:
        f.write('{"key": ["L9-999", "fixed-D", 1048576], "run": {"val_')
    kill_after = None
    assert ladder.main() == 0
    assert len(calls) == total  # 3 before the kill, the rest after it: none trained twice
    assert str(cache) in capsys.readouterr().err
    assert len(json.loads((tmp_path / ladder.FILE).read_text())["runs"]) == total
    assert len(ladder.read_cache(cache)) == total
