"""The model zoo: cards are complete, checksums verified on load, recorded metrics reproduce."""

import json
import shutil

import pytest

from llmcourse import zoo

NAMES = zoo.names()


def test_the_zoo_has_models():
    assert {"char-lstm-shakespeare", "char-transformer-shakespeare", "bpe-transformer-shakespeare"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(name):
    card = zoo.card(name)
    for key in ["name", "architecture", "config", "tokenizer", "training", "command", "sha256",
                "file", "train_seconds", "metrics", "parameters", "built_with"]:
        assert key in card, f"card of {name} lacks {key!r}"
    assert card["name"] == name and card["command"].startswith("python scripts/build_zoo.py")
    assert "seed" in card["training"] and "steps" in card["training"]


@pytest.mark.parametrize("name", NAMES)
def test_recorded_validation_loss_reproduces(name):
    from llmcourse.datasets import load_shakespeare
    from llmcourse.rnn import evaluate

    model, card = zoo.load(name)
    assert model.num_parameters() == card["parameters"]
    tokenizer = zoo.tokenizer(card)
    metrics = evaluate(model, tokenizer.encode(load_shakespeare("validation")))
    assert metrics["loss_nats"] == pytest.approx(card["metrics"]["val_loss_nats"], abs=1e-4)


def test_bpe_tokenizer_is_checked_and_round_trips(tmp_path, monkeypatch):
    card = zoo.card("bpe-transformer-shakespeare")
    tok = zoo.tokenizer(card)
    text = "ROMEO:\nBut, soft! what light through yonder window breaks?"
    assert tok.decode(tok.encode(text)) == text and tok.vocab_size == card["config"]["vocab_size"]
    shutil.copytree(zoo.zoo_dir(), tmp_path / "zoo")
    monkeypatch.setenv("LLMCOURSE_ZOO", str(tmp_path / "zoo"))
    path = tmp_path / "zoo" / card["tokenizer"]["file"]
    path.write_text(path.read_text().replace('"merges"', '"merges" ', 1))
    with pytest.raises(zoo.ZooError, match="does not match the sha256"):
        zoo.tokenizer(card)


def test_tampered_or_missing_weights_fail_clearly(tmp_path, monkeypatch):
    shutil.copytree(zoo.zoo_dir(), tmp_path / "zoo")
    monkeypatch.setenv("LLMCOURSE_ZOO", str(tmp_path / "zoo"))
    name = NAMES[0]
    weights = tmp_path / "zoo" / zoo.card(name)["file"]
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(zoo.ZooError, match="sha256.*build_zoo.py"):
        zoo.load(name)
    weights.unlink()
    with pytest.raises(zoo.ZooError, match="missing"):
        zoo.load(name)


def test_unknown_model_and_bad_card(tmp_path, monkeypatch):
    with pytest.raises(zoo.ZooError, match="known models"):
        zoo.load("gpt-5")
    with pytest.raises(ValueError, match="name"):
        zoo.card("")
    monkeypatch.setenv("LLMCOURSE_ZOO", str(tmp_path))
    (tmp_path / "odd.json").write_text(json.dumps({"architecture": "Perceptron9000", "config": {}}))
    with pytest.raises(zoo.ZooError, match="architecture"):
        zoo.build_model(zoo.card("odd"))
