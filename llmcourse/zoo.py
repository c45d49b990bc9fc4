"""The course's own small pretrained models: load one by name, offline, checksum verified.

Later notebooks start from a trained model instead of training it again (or, like notebook 03, show
what longer training than a notebook can afford achieves). Each model lives in ``zoo/``:

* ``zoo/<name>.safetensors``: the weights (safetensors: no pickle, nothing executes on load);
* ``zoo/<name>.json``: its card: architecture and configuration, tokenizer, the exact command, seed
  and training settings that built it, training time, validation metrics, and the weights' sha256.

``scripts/build_zoo.py NAME`` rebuilds a model deterministically (same machine, same weights), and a
test checks that every card's recorded validation loss reproduces from the committed weights.

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

ZOO_DIR_DEFAULT = Path(__file__).resolve().parents[1] / "zoo"


class ZooError(RuntimeError):
    """A zoo model is missing, unknown or does not match its card."""


def zoo_dir() -> Path:
    """The folder of the zoo: ``$LLMCOURSE_ZOO`` if set, else ``zoo/`` at the top of the repository."""
    return Path(os.environ.get("LLMCOURSE_ZOO", ZOO_DIR_DEFAULT))


def names() -> list[str]:
    """The names of the models in the zoo (one per card; ``<name>.tokenizer.json`` files are not cards)."""
    return sorted(p.stem for p in zoo_dir().glob("*.json") if not p.name.endswith(".tokenizer.json"))


def _architectures() -> dict[str, type]:
    from llmcourse import rnn, transformer

    return {"RecurrentLanguageModel": rnn.RecurrentLanguageModel, "MLPLanguageModel": rnn.MLPLanguageModel,
            "TransformerLM": transformer.TransformerLM}


def card(name: str) -> dict[str, Any]:
    """The card of model ``name`` (a dict read from ``zoo/<name>.json``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    path = zoo_dir() / f"{name}.json"
    if not path.is_file():
        known = ", ".join(names()) or "none"
        raise ZooError(f"no zoo model named {name!r} (no {path}); known models: {known}")
    return json.loads(path.read_text(encoding="utf-8"))


def verify(name: str) -> Path:
    """Check that the weights of ``name`` exist and match the sha256 on its card; return their path."""
    from llmcourse.datasets import sha256_file

    info = card(name)
    path = zoo_dir() / info["file"]
    fix = f"rebuild it with `python scripts/build_zoo.py {name}` or restore it with `git checkout -- zoo/`"
    if not path.is_file():
        raise ZooError(f"zoo model {name!r}: weights file {path} is missing; {fix}")
    actual = sha256_file(path)
    if actual != info["sha256"]:
        raise ZooError(
            f"zoo model {name!r}: {path.name} has sha256 {actual[:12]}…, its card records "
            f"{info['sha256'][:12]}…; {fix}"
        )
    return path


def build_model(info: dict[str, Any]):
    """An untrained model of the architecture and configuration a card describes."""
    archs = _architectures()
    arch = info.get("architecture")
    if arch not in archs:
        raise ZooError(f"card names architecture {arch!r}; known: {sorted(archs)}")
    if arch == "TransformerLM":  # its configuration is a TransformerConfig, stored as a dict
        from llmcourse.transformer import TransformerConfig

        return archs[arch](TransformerConfig.from_dict(info["config"]))
    return archs[arch](**info["config"])


def load(name: str, device: str | None = None):
    """Load zoo model ``name``: ``(model, card)`` with the model in eval mode.

    Verifies the weights' sha256 first and fails with a :class:`ZooError` that says how to rebuild.
    """
    from safetensors.torch import load_file

    path = verify(name)
    info = card(name)
    model = build_model(info)
    state = load_file(str(path), device=device or "cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ZooError(f"zoo model {name!r} does not fit its card's configuration: missing {missing}, unexpected {unexpected}")
    return model.eval(), info


def tokenizer(info: dict[str, Any]):
    """The tokenizer a zoo model was trained with: a :class:`~llmcourse.ngram.CharVocab` for a
    character model, a :class:`~llmcourse.tokenization.BPETokenizer` (its file checked against the
    sha256 on the card) for a BPE model. Both have ``encode(text)`` and ``decode(ids)``."""
    tok = info["tokenizer"]
    if tok.get("kind") == "char":
        return char_vocab(info)
    if tok.get("kind") == "bpe":
        from llmcourse.datasets import sha256_file
        from llmcourse.tokenization import BPETokenizer

        path = zoo_dir() / tok["file"]
        fix = f"rebuild it with `python scripts/build_zoo.py {info['name']}` or `git checkout -- zoo/`"
        if not path.is_file():
            raise ZooError(f"zoo model {info['name']!r}: tokenizer file {path} is missing; {fix}")
        if sha256_file(path) != tok["sha256"]:
            raise ZooError(f"zoo model {info['name']!r}: {path.name} does not match the sha256 on its card; {fix}")
        return BPETokenizer.load(path)
    raise ZooError(f"model {info.get('name')!r} has an unknown tokenizer kind {tok.get('kind')!r}")


def char_vocab(info: dict[str, Any]):
    """The character vocabulary a character-level zoo model was trained with."""
    from llmcourse.ngram import CharVocab

    tok = info["tokenizer"]
    if tok.get("kind") != "char":
        raise ZooError(f"model {info['name']!r} does not use a character tokenizer: {tok.get('kind')!r}")
    return CharVocab(tok["chars"], unk_token=tok.get("unk_token"))
