"""The course's chat model: supervised fine-tuning (SFT) of the zoo's BPE base, for notebook 08.

    python scripts/build_zoo.py bpe-chat-shakespeare

Called by ``build_zoo.py`` for a recipe with a ``base``. The steps:

1. the base (``bpe-transformer-shakespeare``) and its tokenizer; the tokenizer gets ``<|im_start|>`` and
   ``<|im_end|>`` as two new ids (every old id unchanged) and is saved beside the weights; the model gets
   two new embedding and output rows (:func:`llmcourse.chat.extend_vocab`) and a 256-token context
   (RoPE has no position table, so the same weights read longer text; the fine-tuning teaches it the
   longer distances an ordering dialogue needs);
2. the SFT data: instruction conversations and ordering-bot dialogues on menus of training dishes and of
   made-up ones (:func:`llmcourse.instructions.sft_mixture`), rendered with the loss on the assistant's turns
   only. Optionally (``"n_text"`` in the recipe's data) **replay**: plain 128-token windows of the plays
   with every token a target. Measured both ways at 2,000 steps: without replay (the committed model) the
   chat model forgets how to write a play (7.07 nats per token on the Shakespeare validation text, worse
   than a uniform guess; the base has 2.89) but confirms orders of unseen dishes 54% of the time; with
   8,000 windows of replay it keeps the plays (3.54 nats) but confirms unseen dishes 1% of the time (it
   falls back on dish names it knows). A model this small trades one for the other; notebook 08 uses the
   one that reads its menu, and the card's metrics show what that cost;
3. the course trainer (:class:`llmcourse.training.Trainer`) on those masked examples, fixed steps and seed;
4. optionally (``compare_train_on_all``) the same run with the loss on every token (``train_on="all"``),
   same seed, data and budget, evaluated the same way and not saved;
5. evaluation written on the card: Shakespeare validation loss (what SFT cost the language model), the
   instruction generalisation table for the base (prompted with a worked example) and both SFT runs, and
   the ordering bot on fresh menus of training items and on menus of items never seen in training.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llmcourse import chat, instructions, ordering, seed_everything, zoo
from llmcourse.datasets import load_shakespeare, sha256_file, write_atomic
from llmcourse.lm import MaskedExamples, evaluate, masked_loss
from llmcourse.training import TrainConfig, Trainer

#: How many examples each evaluation uses (the standard error of a rate near 0.5 is about 0.5 / sqrt(n)).
N_INSTRUCTIONS_EVAL = int(os.environ.get("LLMCOURSE_N_INSTRUCTIONS_EVAL", 150))
N_ORDERS_EVAL = int(os.environ.get("LLMCOURSE_N_ORDERS_EVAL", 100))


def chat_start(spec: dict):
    """The model SFT starts from: the base with chat-token rows and a longer context, and its tokenizer."""
    base, info = zoo.load(spec["base"])
    tokenizer = chat.add_chat_tokens(zoo.tokenizer(info))
    model = chat.grow_for_chat(base, tokenizer.vocab_size, spec["block_size"])
    return model, tokenizer, base, zoo.tokenizer(info)


def evaluate_chat(model, tokenizer) -> dict:
    """The generalisation table and the ordering bot's figures for a chat model."""
    answer = functools.partial(chat.respond, model, tokenizer, max_new_tokens=32)
    table = instructions.generalisation(lambda e: answer(instructions.conversation(e)[:-1]),
                                        N_INSTRUCTIONS_EVAL, seed=1000)
    bot = ordering.chat_bot(model, tokenizer, max_new_tokens=48)
    orders = {}
    for pool in ("train", "heldout"):
        dialogues = ordering.dialogues(N_ORDERS_EVAL, pool=pool, seed=10_000)
        result = ordering.evaluate(bot, dialogues, history="model")
        orders[pool] = {k: round(v, 4) for k, v in result.items() if isinstance(v, float)}
        orders[pool]["turn_accuracy"] = {k: None if v is None else round(v, 4) for k, v in result["turn_accuracy"].items()}
    return {"instructions": _rounded(table), "ordering": orders}


def evaluate_base(base, tokenizer) -> dict:
    """The base model asked the way a base model can be: one worked example of the task, then the question."""
    demos = instructions.instruction_examples(40, seed=999, tasks=list(instructions.TASKS))
    by_task = {t: [d for d in demos if d.task == t][:1] for t in instructions.TASKS}
    table = instructions.generalisation(
        lambda e: instructions.few_shot_answer(base, tokenizer, e, by_task[e.task]), N_INSTRUCTIONS_EVAL, seed=1000)
    return {"instructions": _rounded(table), "prompt": "one worked example of the same task (few_shot_prompt)"}


def _rounded(table: dict) -> dict:
    return {row: {k: round(v, 4) for k, v in scores.items()} for row, scores in table.items()}


def _shakespeare_loss(model, tokenizer) -> dict:
    text = load_shakespeare("validation")
    ids = tokenizer.encode(text)
    metrics = evaluate(model, ids)
    chars = len(text) - len(tokenizer.decode(list(ids[:1])))
    return {"val_loss_nats": round(metrics["loss_nats"], 6), "val_tokens": metrics["n_tokens"],
            "val_bits_per_char": round(metrics["loss_nats"] * metrics["n_tokens"] / chars / math.log(2), 6)}


def _cache(spec: dict, train_on: str) -> Path:
    """Where a finished run's weights wait while it is evaluated (a failed evaluation does not cost the training)."""
    key = hashlib.sha256(json.dumps([spec, train_on], sort_keys=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "llmcourse-build-chat" / f"{train_on}-{key}"


def _train(spec: dict, train_on: str):
    """One SFT run from the start point (or its cached result); returns the model, its tokenizer, its
    training history, the seconds it took, and the training and validation examples."""
    model, tokenizer, _, _ = chat_start(spec)
    d = spec["data"]
    conversations = instructions.sft_mixture(d["n_instructions"], d["n_orders"], order_pools=d["order_pools"],
                                             seed=d["seed"])
    train = chat.sft_examples(tokenizer, conversations, train_on=train_on)
    if d.get("n_text"):  # replay: plain windows of the plays among the conversations, every token a target
        text = torch.as_tensor(tokenizer.encode(load_shakespeare("train")))
        window = spec["block_size"] // 2 + 1
        starts = np.random.default_rng(d["seed"]).integers(0, len(text) - window, size=d["n_text"])
        pairs = list(zip(train.inputs, train.targets)) + [(text[i:i + window - 1], text[i + 1:i + window]) for i in starts]
        order = np.random.default_rng(d["seed"] + 1).permutation(len(pairs))
        train = MaskedExamples([pairs[i] for i in order], pad_id=train.pad_id)
    # validation: assistant-only loss on conversations from the validation split and other menus, for both runs
    val_conversations = ([instructions.conversation(e) for e in
                          instructions.instruction_examples(200, split="validation", seed=d["seed"] + 1)]
                         + [x.messages for x in ordering.dialogues(100, pool="train", seed=d["seed"] + 1)])
    val = chat.sft_examples(tokenizer, val_conversations)
    model, history, seconds = train_cached(model, train, val, spec["training"], _cache(spec, train_on), train_on)
    return model, tokenizer, history, seconds, train, val


def train_cached(model, train, val, training: dict, cache: Path, label: str):
    """Fine-tune ``model`` with the course trainer (seeded), or load the finished run from ``cache``; the
    weights wait there while the run is evaluated, so a failed evaluation does not cost the training.
    Returns ``(model in eval mode, history without the step losses, seconds)``."""
    if (cache / "run.json").is_file():
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(cache / "model.safetensors")))
        run = json.loads((cache / "run.json").read_text())
        print(f"  {label}: the finished run cached in {cache}", flush=True)
        return model.eval(), run["history"], run["seconds"]
    seed_everything(training["seed"])
    trainer = Trainer(model, train, val, TrainConfig(**training))
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    history = {k: v for k, v in trainer.history.as_dict().items() if k != "step_losses"}
    history["tokens_per_second"] = round(trainer.history.tokens_per_second)
    from safetensors.torch import save

    cache.mkdir(parents=True, exist_ok=True)
    write_atomic(cache / "model.safetensors", save({k: v.detach().contiguous() for k, v in model.state_dict().items()}))
    write_atomic(cache / "run.json", json.dumps({"history": history, "seconds": seconds}).encode())
    return model.eval(), history, seconds


def build_chat(name: str, spec: dict) -> dict:
    out = zoo.zoo_dir()
    model, tokenizer, history, seconds, train, val = _train(spec, "assistant")
    d_text = spec["data"].get("n_text", 0)
    twin = _train(spec, "all") if spec.get("compare_train_on_all") else None
    tok_path = out / f"{name}.tokenizer.json"
    tokenizer.save(tok_path)
    _, _, base, base_tokenizer = chat_start(spec)
    base_info = zoo.card(spec["base"])
    print(f"{name}: SFT {spec['training']['steps']} steps in {seconds:.0f} s; evaluating", flush=True)
    runs = {"assistant_only": {"train_seconds": round(seconds, 1),
                               "val_loss_assistant_nats": round(masked_loss(model, val)["loss_nats"], 6),
                               **evaluate_chat(model, tokenizer)}}
    if twin is not None:
        twin_model, _, twin_history, twin_seconds, _, _ = twin
        runs["all_tokens"] = {"train_seconds": round(twin_seconds, 1),
                              "val_loss_assistant_nats": round(masked_loss(twin_model, val)["loss_nats"], 6),
                              "history": twin_history, **evaluate_chat(twin_model, tokenizer)}
    weights = out / f"{name}.safetensors"
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    write_atomic(weights, save(state, metadata={"name": name}))
    data = {**spec["data"], "made_by": "llmcourse.instructions.sft_mixture" + (" and n_text windows of the plays (replay)" if d_text else ""),
            "train_examples": len(train), "train_tokens": train.n_tokens, "train_targets": train.n_targets,
            "validation": "200 instruction conversations (validation split) + 100 ordering dialogues, "
                          "assistant-only loss"}
    evaluation = {"base_prompted": evaluate_base(base, base_tokenizer), **runs,
                  "n_instructions_eval": N_INSTRUCTIONS_EVAL, "n_orders_eval": N_ORDERS_EVAL}
    card = finetuned_card(name, spec, model, tokenizer, tok_path,
                          f"{spec['base']}'s tokenizer with llmcourse.chat.add_chat_tokens", base_info, data, weights,
                          seconds, history, evaluation)
    write_atomic(out / f"{name}.json", (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return card


def finetuned_card(name: str, spec: dict, model, tokenizer, tok_path: Path, trained_on: str, base_info: dict,
                   data: dict, weights: Path, seconds: float, history: dict, evaluation: dict) -> dict:
    """The zoo card of a model fine-tuned from another zoo model (the chat and the tool models)."""
    return {
        "name": name,
        "description": spec["description"],
        "architecture": "TransformerLM",
        "config": model.config.as_dict(),
        "tokenizer": {"kind": "bpe", "file": tok_path.name, "sha256": sha256_file(tok_path),
                      "vocab_size": tokenizer.vocab_size, "trained_on": trained_on},
        "base": {"name": spec["base"], "sha256": base_info["sha256"]},
        "data": data,
        "training": TrainConfig(**spec["training"]).as_dict(),
        "command": f"python scripts/build_zoo.py {name}",
        "file": weights.name,
        "sha256": sha256_file(weights),
        "parameters": model.num_parameters(),
        "train_seconds": round(seconds, 1),
        "tokens_per_second": history.pop("tokens_per_second"),
        "built_with": {"torch": torch.__version__, "python": platform.python_version(),
                       "threads": torch.get_num_threads(), "machine": platform.machine()},
        # Shakespeare validation, as for the other zoo models (SFT costs some of it: compare the base's card)
        "metrics": _shakespeare_loss(model, tokenizer),
        "evaluation": evaluation,
        "history": history,
    }
