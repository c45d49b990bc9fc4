"""The course's own small pretrained models: load one by name, offline, checksum verified.

Later notebooks start from a trained model instead of training it again (or, like notebook 03, show
what longer training than a notebook can afford achieves). Each model lives in ``zoo/``:

* ``zoo/<name>.safetensors``: the weights (safetensors: no pickle, nothing executes on load);
* ``zoo/<name>.json``: its card: architecture and configuration, tokenizer, the exact command, seed
  and training settings that built it, training time, validation metrics, and the weights' sha256.

``scripts/build_zoo.py NAME`` rebuilds a model deterministically (same machine, same weights), and a
test checks that every card's recorded validation loss reproduces from the committed weights.

A zoo file that is missing, truncated or edited raises :class:`ZooError`, whose message names the
file, says what is wrong (not valid JSON at line N, a key missing, a checksum mismatch, the first
tensor whose shape does not fit the card's configuration) and how to get a good one back. The folder
is ``zoo/`` at the top of the repository, or ``$LLMCOURSE_ZOO`` if set (the tests point it at copies).

    >>> from llmcourse import zoo
    >>> model, card = zoo.load("char-lstm-shakespeare")            # doctest: +SKIP
    >>> card["metrics"]["val_bits_per_char"]                        # doctest: +SKIP
    >>> tok = zoo.tokenizer(card)                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from llmcourse.checks import ArgumentError, check_str, fail
from llmcourse.files import sha256_file

__all__ = ["ZOO_DIR_DEFAULT", "ZooError", "build_model", "card", "char_vocab", "load", "names", "tokenizer",
           "verify", "zoo_dir"]

ZOO_DIR_DEFAULT = Path(__file__).resolve().parents[1] / "zoo"


class ZooError(ValueError, RuntimeError):
    """A zoo model is missing, unknown, damaged or does not match its card.

    The message names the file, says what is wrong and how to fix it. (A ``ValueError``, and a
    ``RuntimeError`` as it was before, so code catching either keeps working.)
    """


def zoo_dir() -> Path:
    """The folder of the zoo: ``$LLMCOURSE_ZOO`` if set, else ``zoo/`` at the top of the repository."""
    return Path(os.environ.get("LLMCOURSE_ZOO", ZOO_DIR_DEFAULT))


def names() -> list[str]:
    """The names of the models in the zoo (one per card; ``<name>.tokenizer.json`` files are not cards)."""
    return sorted(p.stem for p in zoo_dir().glob("*.json") if not p.name.endswith(".tokenizer.json"))


def _fix(name: Any) -> str:
    """How to get a good copy of model ``name``'s files back (``doctor`` cuts messages at "; rebuild")."""
    build = f"python scripts/build_zoo.py {name}" if isinstance(name, str) else "python scripts/build_zoo.py"
    return f"rebuild it with `{build}` or restore it with `git checkout -- zoo/`"


def _card_path(info: dict[str, Any]) -> str:
    name = info.get("name")
    return str(zoo_dir() / f"{name}.json") if isinstance(name, str) else "the card"


def _need(info: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str | None = None) -> Any:
    """``info[key]``, or a :class:`ZooError` saying that the card lacks it or holds the wrong type."""
    what = {dict: "an object", str: "a string", list: "a list"}.get(kind, kind.__name__) \
        if isinstance(kind, type) else "a value"
    where = where or f"zoo card {_card_path(info)}"
    if key not in info:
        raise ZooError(f"{where} lacks the key {key!r}; {_fix(info.get('name'))}")
    if not isinstance(info[key], kind):
        raise ZooError(f"{where} has {key!r} = {info[key]!r:.60}, not {what}; {_fix(info.get('name'))}")
    return info[key]


def _check_info(info: Any) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise fail("info", "a zoo card (the dict zoo.card(name) returns)", info)
    return info


def card(name: str) -> dict[str, Any]:
    """The card of model ``name`` (a dict read from ``zoo/<name>.json``)."""
    check_str("name", name, allow_empty=False)
    path = zoo_dir() / f"{name}.json"
    if not path.is_file():
        known = ", ".join(names()) or "none"
        raise ZooError(f"no zoo model named {name!r} (no {path}); known models: {known}")
    try:
        text = path.read_bytes().decode("utf-8")
        info = json.loads(text)
    except UnicodeDecodeError as e:
        raise ZooError(f"zoo card {path} is not UTF-8 text (byte {e.start}); {_fix(name)}") from None
    except json.JSONDecodeError as e:
        truncated = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated")
        cut = " (the file looks truncated)" if truncated else ""
        raise ZooError(f"zoo card {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
                       f"{cut}; {_fix(name)}") from None
    if not isinstance(info, dict):
        raise ZooError(f"zoo card {path} holds a JSON {type(info).__name__}, not an object; {_fix(name)}")
    return info


def verify(name: str) -> Path:
    """Check that the weights of ``name`` exist and match the sha256 on its card; return their path."""
    info = card(name)
    path = zoo_dir() / _need(info, "file", str, f"zoo card {zoo_dir() / f'{name}.json'}")
    expected = _need(info, "sha256", str, f"zoo card {zoo_dir() / f'{name}.json'}")
    fix = _fix(name)
    if not path.is_file():
        raise ZooError(f"zoo model {name!r}: weights file {path} is missing; {fix}")
    actual = sha256_file(path)
    if actual != expected:
        raise ZooError(
            f"zoo model {name!r}: {path} has sha256 {actual[:12]}…, its card records "
            f"{expected[:12]}… (checksum mismatch: the file is damaged or from another build); {fix}"
        )
    return path


def _architectures() -> dict[str, type]:
    from llmcourse import rnn, transformer

    return {"RecurrentLanguageModel": rnn.RecurrentLanguageModel, "MLPLanguageModel": rnn.MLPLanguageModel,
            "TransformerLM": transformer.TransformerLM}


def build_model(info: dict[str, Any]):
    """An untrained model of the architecture and configuration a card describes."""
    info = _check_info(info)
    archs = _architectures()
    arch = info.get("architecture")
    if arch not in archs:
        raise ZooError(f"zoo card {_card_path(info)} names architecture {arch!r}; known: {sorted(archs)}; "
                       f"{_fix(info.get('name'))}")
    config = _need(info, "config", dict)
    try:
        if arch == "TransformerLM":  # its configuration is a TransformerConfig, stored as a dict
            from llmcourse.transformer import TransformerConfig

            return archs[arch](TransformerConfig.from_dict(config))
        return archs[arch](**config)
    except (TypeError, ValueError) as e:  # unknown or bad configuration keys
        raise ZooError(f"zoo card {_card_path(info)}: its config does not build a {arch} ({e}); "
                       f"{_fix(info.get('name'))}") from None


def _check_fits(model, state: dict, name: str, path: Path, arch: str) -> None:
    """A :class:`ZooError` naming the first tensor whose name or shape does not fit ``model``."""
    expected = model.state_dict()
    problem = None
    for key, tensor in expected.items():
        if key not in state:
            problem = f"the model's tensor {key!r} {tuple(tensor.shape)} is not in the file"
        elif tuple(state[key].shape) != tuple(tensor.shape):
            problem = (f"tensor {key!r} is {tuple(state[key].shape)} in the file but {tuple(tensor.shape)} "
                       f"in a {arch} built from the card's config")
        if problem:
            break
    if problem is None:
        extra = [k for k in state if k not in expected]
        if extra:
            problem = f"the file has a tensor {extra[0]!r} that a {arch} built from the card's config does not"
    if problem:
        raise ZooError(f"zoo model {name!r}: the weights in {path} do not fit the configuration on its card "
                       f"({zoo_dir() / f'{name}.json'}): {problem}; {_fix(name)}")


def load(name: str, device: str | None = None):
    """Load zoo model ``name``: ``(model, card)`` with the model in eval mode.

    Verifies the weights' sha256 first, then that every tensor fits the card's configuration, and fails
    with a :class:`ZooError` that names the file, what is wrong and how to rebuild.

    Args:
        name: one of :func:`names`.
        device: where to put the weights (``"cpu"``, ``"cuda"``, ...; default ``"cpu"``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if device is not None and not isinstance(device, str) and type(device).__name__ != "device":
        raise fail("device", 'None, a str such as "cpu" or a torch.device', device)
    path = verify(name)
    info = card(name)
    model = build_model(info)
    try:
        state = load_file(str(path), device=str(device or "cpu"))
    except (SafetensorError, OSError, ValueError) as e:
        raise ZooError(f"zoo model {name!r}: weights file {path} is not a readable safetensors file ({e}); "
                       f"{_fix(name)}") from None
    _check_fits(model, state, name, path, info["architecture"])
    model.load_state_dict(state, strict=True)
    return model.eval(), info


def tokenizer(info: dict[str, Any]):
    """The tokenizer a zoo model was trained with: a :class:`~llmcourse.tokenization.CharTokenizer` for
    a character model, a :class:`~llmcourse.tokenization.BPETokenizer` (its file checked against the
    sha256 on the card) for a BPE model. Both have ``encode(text)`` and ``decode(ids)``."""
    info = _check_info(info)
    tok = _need(info, "tokenizer", dict)
    name = info.get("name")
    if tok.get("kind") == "char":
        result = char_vocab(info)
    elif tok.get("kind") == "bpe":
        from llmcourse.tokenization import BPETokenizer, TokenizerFileError

        where = f"the tokenizer entry of zoo card {_card_path(info)}"
        path = zoo_dir() / _need(tok, "file", str, where)
        expected = _need(tok, "sha256", str, where)
        if not path.is_file():
            raise ZooError(f"zoo model {name!r}: tokenizer file {path} is missing; {_fix(name)}")
        if sha256_file(path) != expected:
            raise ZooError(f"zoo model {name!r}: {path} does not match the sha256 on its card "
                           f"(checksum mismatch); {_fix(name)}")
        try:
            result = BPETokenizer.load(path)
        except TokenizerFileError as e:
            raise ZooError(f"zoo model {name!r}: tokenizer file {e.path} {e.problem}; {_fix(name)}") from None
    else:
        raise ZooError(f"zoo card {_card_path(info)} has an unknown tokenizer kind {tok.get('kind')!r} "
                       f"(known: 'char', 'bpe'); {_fix(name)}")
    size = info.get("config", {}).get("vocab_size") if isinstance(info.get("config"), dict) else None
    if isinstance(size, int) and size != result.vocab_size:
        raise ZooError(f"zoo card {_card_path(info)}: its tokenizer has {result.vocab_size} ids but the "
                       f"model's config has vocab_size {size}; {_fix(name)}")
    return result


def char_vocab(info: dict[str, Any]):
    """The :class:`~llmcourse.tokenization.CharTokenizer` a character-level zoo model was trained with
    (no special tokens, so its ids are exactly those the model was trained on)."""
    from llmcourse.tokenization import CharTokenizer

    info = _check_info(info)
    tok = _need(info, "tokenizer", dict)
    if tok.get("kind") != "char":
        raise ZooError(f"model {info.get('name')!r} does not use a character tokenizer: {tok.get('kind')!r}")
    where = f"the tokenizer entry of zoo card {_card_path(info)}"
    chars = _need(tok, "chars", str, where)
    try:
        return CharTokenizer(chars, unk_token=tok.get("unk_token"))
    except ArgumentError as e:
        raise ZooError(f"{where} does not make a character tokenizer ({e}); {_fix(info.get('name'))}") from None
