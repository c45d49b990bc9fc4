"""The capstone's chat model, rebuilt from raw text by the pipeline (notebook 14): tokenizer, pretraining,
SFT with the calculator, DPO, then the report card of every stage.

    python scripts/build_zoo.py bpe-capstone-shakespeare

Called by ``build_zoo.py`` for a recipe with ``"pipeline"``. Each stage runs in a work folder
(``$TMPDIR/llmcourse-capstone/<stage>``; a finished stage is kept and an interrupted one resumes, so the
build can be stopped and started again); the final (DPO) model goes into the zoo with a card that records
every stage's settings, time and sha256 and the report card measured on all three models. The stages are
exactly what ``python -m llmcourse tokenizer|pretrain|sft|prefer`` run with the same settings.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from pathlib import Path

import torch

from llmcourse import pipeline, report, zoo
from llmcourse.datasets import sha256_file, write_atomic


def build_capstone(name: str, spec: dict) -> dict:
    work = Path(tempfile.gettempdir()) / "llmcourse-capstone"
    s = spec["stages"]
    cards = {"tokenizer": pipeline.tokenizer(work / "tokenizer", **s["tokenizer"])}
    cards["pretrain"] = pipeline.pretrain(work / "pretrain", work / "tokenizer", **s["pretrain"])
    cards["sft"] = pipeline.sft(work / "sft", work / "pretrain", **s["sft"])
    cards["prefer"] = pipeline.prefer(work / "prefer", work / "sft", **s["prefer"])
    print(f"{name}: stages done in {work}; measuring the report card", flush=True)
    card_report = report.report_card([work / "pretrain", work / "sft", work / "prefer"], **spec["report"])
    print(report.format_report(card_report), flush=True)
    out = zoo.zoo_dir()
    weights, tok_path = out / f"{name}.safetensors", out / f"{name}.tokenizer.json"
    shutil.copyfile(work / "prefer" / pipeline.WEIGHTS, weights)
    shutil.copyfile(work / "prefer" / pipeline.TOKENIZER, tok_path)
    model, tok, _ = pipeline.load(work / "prefer")
    from build_chat_model import _shakespeare_loss

    final = cards["prefer"]
    card = {
        "name": name,
        "description": spec["description"],
        "architecture": "TransformerLM",
        "config": final["config"],
        "tokenizer": {"kind": "bpe", "file": tok_path.name, "sha256": sha256_file(tok_path),
                      "vocab_size": tok.vocab_size, "trained_on": "the pipeline's tokenizer stage (train_bpe on the "
                                                                   "plays' train split) with the chat and tool tokens"},
        "stages": {k: {kk: v for kk, v in c.items() if kk not in ("config",)} for k, c in cards.items()},
        "training": {"steps": s["pretrain"]["steps"] + s["sft"]["steps"], "seed": 0,
                     "note": "pretrain + sft steps; then DPO for the epochs in stages.prefer.settings"},
        "command": f"python scripts/build_zoo.py {name}",
        "file": weights.name,
        "sha256": sha256_file(weights),
        "parameters": model.num_parameters(),
        "train_seconds": round(sum(c.get("seconds", 0) for c in cards.values()), 1),
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
        "metrics": _shakespeare_loss(model, tok),
        "report_card": {**card_report, "stages": [{k: v for k, v in row.items() if k != "folder"}
                                                  for row in card_report["stages"]]},
    }
    write_atomic(out / f"{name}.json", (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return card
