"""The model zoo: cards are complete, checksums verified on load, recorded metrics reproduce."""

import json
import re
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


# ---------------------------------------------------------------------------------------------------
# damaged files: a ZooError naming the file, what is wrong and how to fix it (always on copies)


def _copy_model(tmp_path, monkeypatch, name: str):
    """Copy one model's card, weights and tokenizer file to tmp_path/zoo and point the zoo at it."""
    folder = tmp_path / "zoo"
    folder.mkdir()
    info = zoo.card(name)
    for file in [f"{name}.json", info["file"], info["tokenizer"].get("file")]:
        if file:
            shutil.copy(zoo.zoo_dir() / file, folder / file)
    monkeypatch.setenv("LLMCOURSE_ZOO", str(folder))
    return folder, info


def _write_card(folder, info):
    (folder / f"{info['name']}.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


def test_truncated_or_edited_card_fails_clearly(tmp_path, monkeypatch):
    name = "char-lstm-shakespeare"
    folder, info = _copy_model(tmp_path, monkeypatch, name)
    path = folder / f"{name}.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 3], encoding="utf-8")
    with pytest.raises(zoo.ZooError) as caught:
        zoo.load(name)
    message = str(caught.value)
    assert str(path) in message and re.search(r"not valid JSON: .* at line \d+, column \d+", message)
    assert f"python scripts/build_zoo.py {name}" in message and "git checkout -- zoo/" in message
    assert isinstance(caught.value, ValueError)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(zoo.ZooError, match="holds a JSON list, not an object"):
        zoo.card(name)
    for key in ["sha256", "file", "config"]:
        edited = {k: v for k, v in info.items() if k != key}
        _write_card(folder, edited)
        with pytest.raises(zoo.ZooError, match=rf"zoo card {re.escape(str(path))} lacks the key '{key}'; rebuild"):
            zoo.load(name)
    _write_card(folder, {**info, "config": {**info["config"], "n_heads": 4}})
    with pytest.raises(zoo.ZooError, match=r"its config does not build a RecurrentLanguageModel.*n_heads"):
        zoo.load(name)
    _write_card(folder, {**info, "tokenizer": {"kind": "char", "unk_token": "<unk>"}})
    with pytest.raises(zoo.ZooError, match=r"the tokenizer entry of zoo card .* lacks the key 'chars'"):
        zoo.tokenizer(zoo.card(name))
    _write_card(folder, {**info, "tokenizer": {**info["tokenizer"], "chars": info["tokenizer"]["chars"][:-1]}})
    with pytest.raises(zoo.ZooError, match=r"its tokenizer has 71 ids but the model's config has vocab_size 72"):
        zoo.tokenizer(zoo.card(name))


def test_weights_that_do_not_fit_the_card_name_the_first_tensor(tmp_path, monkeypatch):
    name = "char-lstm-shakespeare"
    folder, info = _copy_model(tmp_path, monkeypatch, name)
    _write_card(folder, {**info, "config": {**info["config"], "d_hidden": 256}})  # the weights have 512
    with pytest.raises(zoo.ZooError) as caught:
        zoo.load(name)
    message = str(caught.value)
    assert "do not fit the configuration on its card" in message and str(folder / info["file"]) in message
    assert re.search(r"tensor 'rnn\.weight_ih_l0' is \(2048, 64\) in the file but \(1024, 64\)", message), message
    assert f"python scripts/build_zoo.py {name}" in message


def test_flipped_bytes_in_weights_fail_clearly(tmp_path, monkeypatch):
    from llmcourse.files import sha256_file

    name = "char-transformer-shakespeare"
    folder, info = _copy_model(tmp_path, monkeypatch, name)
    weights = folder / info["file"]
    data = bytearray(weights.read_bytes())
    data[1000:1004] = bytes(b ^ 0xFF for b in data[1000:1004])  # inside a tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match=rf"{re.escape(str(weights))} has sha256 .*checksum mismatch.*build_zoo"):
        zoo.load(name)
    # a header damaged *and* a card edited to match: the safetensors reader refuses it, clearly
    data = bytearray((zoo.ZOO_DIR_DEFAULT / info["file"]).read_bytes())
    data[:8] = (10**9).to_bytes(8, "little")  # the header's length: past the end of the file
    weights.write_bytes(bytes(data))
    _write_card(folder, {**info, "sha256": sha256_file(weights)})
    with pytest.raises(zoo.ZooError, match=r"is not a readable safetensors file.*build_zoo"):
        zoo.load(name)


def test_damaged_bpe_tokenizer_file_fails_clearly(tmp_path, monkeypatch):
    from llmcourse.files import sha256_file

    name = "bpe-transformer-shakespeare"
    folder, info = _copy_model(tmp_path, monkeypatch, name)
    path = folder / info["tokenizer"]["file"]
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(zoo.ZooError, match="does not match the sha256 on its card"):
        zoo.tokenizer(info)
    # the checksum re-recorded too: the tokenizer's own reader says what is wrong
    info = {**info, "tokenizer": {**info["tokenizer"], "sha256": sha256_file(path)}}
    with pytest.raises(zoo.ZooError) as caught:
        zoo.tokenizer(info)
    message = str(caught.value)
    assert str(path) in message and "not valid JSON" in message and "truncated" in message
    assert f"python scripts/build_zoo.py {name}" in message


@pytest.mark.parametrize("name", [n for n in NAMES if zoo.card(n)["tokenizer"]["kind"] == "char"])
def test_char_models_keep_their_ids(name):
    """The zoo's character models were trained with ngram.CharVocab ids: characters in code-point order,
    unk_token last. The one CharTokenizer gives exactly those."""
    from llmcourse.tokenization import CharTokenizer

    info = zoo.card(name)
    tok = zoo.tokenizer(info)
    chars = info["tokenizer"]["chars"]
    assert isinstance(tok, CharTokenizer) and list(chars) == sorted(chars)
    assert tok.itos == list(chars) + [info["tokenizer"]["unk_token"]]
    assert tok.vocab_size == info["config"]["vocab_size"]
    text = "ROMEO:\nBut, soft! what light through yonder window breaks? 🙂"
    ids = tok.encode(text)
    assert ids.tolist() == [chars.index(c) if c in chars else len(chars) for c in text]


def test_arguments_are_checked():
    for bad in [None, 7, ""]:
        with pytest.raises(ValueError, match="^name must be a"):
            zoo.card(bad)
    for call in (zoo.tokenizer, zoo.build_model, zoo.char_vocab):
        with pytest.raises(TypeError, match="^info must be a zoo card"):
            call("char-lstm-shakespeare")
    with pytest.raises(TypeError, match="^device must be"):
        zoo.load("char-lstm-shakespeare", device=0.5)
