"""The course's tool-using chat model, for notebook 13: the chat model taught to call the calculator.

    python scripts/build_zoo.py bpe-tool-chat-shakespeare

Called by ``build_zoo.py`` for a recipe with ``"tool": true``. The steps:

1. the start: ``bpe-chat-shakespeare`` (notebook 08's SFT model) with the four tool markers
   (:data:`llmcourse.tools.TOOL_TOKENS`) added to its tokenizer as ids 1026-1029 and to the model as four
   new embedding and output rows (:func:`llmcourse.chat.extend_vocab`);
2. the data (:func:`llmcourse.tool_use.tool_mixture`): arithmetic questions of 1 to 3 digits answered with a
   call, ordering dialogues whose summary's total is a call, notebook 08's instruction conversations (so
   the model keeps them, and learns when not to call), and questions about which play a character speaks
   in (:mod:`llmcourse.facts`: taught characters, and made-up names answered "No play has that
   character."). The loss mask leaves out every result block: the program writes those;
3. the course trainer on those masked examples, fixed steps and seed;
4. the **twin**: the same run on the same mixture with ``tool=False`` (every answer and total written
   out), same seed and budget, evaluated the same way and not saved: the "without the tool" of notebook
   13's table;
5. evaluation written on the card: arithmetic exact match by number of digits (4 digits were never
   trained), with a held-out phrasing; the ordering bot's summaries on menus of dishes never seen in
   training; how often each model calls when it should and when it should not; the play questions
   (taught, unseen and made-up: the hallucination figures); the Shakespeare loss.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from build_chat_model import finetuned_card, train_cached
from llmcourse import chat, facts, instructions, ordering, tool_use, tools, zoo
from llmcourse.datasets import write_atomic
from llmcourse.lm import masked_loss

N_EVAL = 100          # questions per row of the arithmetic table, dialogues per pool
N_FACTS = 200         # play questions per kind


def tool_start(spec: dict):
    """The chat model with rows for the tool tokens, and its tokenizer with them."""
    model, info = zoo.load(spec["base"])
    tokenizer = tool_use.add_tool_tokens(zoo.tokenizer(info))
    return chat.extend_vocab(model, tokenizer.vocab_size), tokenizer


def _cache(spec: dict, tool: bool) -> Path:
    key = hashlib.sha256(json.dumps([spec, tool], sort_keys=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "llmcourse-build-tool" / f"{'tool' if tool else 'direct'}-{key}"


def _train(spec: dict, tool: bool):
    model, tokenizer = tool_start(spec)
    d = spec["data"]
    conversations = tool_use.tool_mixture(d["n_arithmetic"], d["n_orders"], d["n_instructions"], d["n_facts"],
                                          tool=tool, seed=d["seed"])
    train = chat.sft_examples(tokenizer, conversations)
    val = chat.sft_examples(tokenizer, tool_use.tool_mixture(100, 100, 100, 100, tool=tool, seed=d["seed"] + 1))
    model, history, seconds = train_cached(model, train, val, spec["training"], _cache(spec, tool),
                                           "tool" if tool else "direct")
    return model, tokenizer, history, seconds, train, val


#: The rows of the arithmetic table: (name, digits, phrasings).
ARITHMETIC_ROWS = (("1-2 digits", (1, 2), "seen"), ("3 digits", (3, 3), "seen"),
                   ("3 digits, new phrasing", (3, 3), "heldout"), ("4 digits (never trained)", (4, 4), "seen"))


def evaluate_tool_model(model, tokenizer, tool: bool) -> dict:
    """The card's figures for one model (``tool``: the calculator answers its calls)."""
    r = lambda x: None if x is None else round(x, 4)  # noqa: E731
    arithmetic = {}
    for name, digits, phrasings in ARITHMETIC_ROWS:
        qs = tool_use.arithmetic_questions(N_EVAL, digits=digits, phrasings=phrasings, seed=5000)
        arithmetic[name] = {k: r(v) for k, v in tool_use.rates(tool_use.arithmetic_rows(model, tokenizer, qs, tool=tool)).items()}
    orders = {}
    for pool in ("heldout", "train"):
        rows = tool_use.summary_rows(model, tokenizer, ordering.dialogues(N_EVAL, pool=pool, seed=5000), tool=tool)
        orders[pool] = {k: r(v) for k, v in tool_use.rates(rows, ("total_correct", "sum_correct", "slots_correct",
                                                                  "well_formed", "called")).items()}
    # calls where none is needed: instructions and play questions
    plain = [instructions.conversation(e)[:-1] for e in instructions.instruction_examples(N_EVAL, split="validation", seed=5000)]
    plain += [[{"role": "user", "content": q.question}] for q in facts.fact_questions(N_EVAL, "taught", seed=5000)]
    false_calls = sum(tools.CALL_START in tool_use.answer(model, tokenizer, m, tool=tool, max_new_tokens=24)[0]
                      for m in plain) / len(plain)
    questions = [q for kind in facts.KINDS for q in facts.fact_questions(N_FACTS, kind, split="test", seed=5000)]
    fact_rows = facts.answer_questions(model, tokenizer, questions)
    return {"arithmetic": arithmetic, "orders": orders, "false_call_rate": r(false_calls),
            "facts": {k: {kk: r(vv) for kk, vv in v.items()} for k, v in facts.report(fact_rows).items()}}


def build_tool(name: str, spec: dict) -> dict:
    out = zoo.zoo_dir()
    model, tokenizer, history, seconds, train, val = _train(spec, True)
    twin = _train(spec, False)
    tok_path = out / f"{name}.tokenizer.json"
    tokenizer.save(tok_path)
    print(f"{name}: {spec['training']['steps']} steps in {seconds:.0f} s; evaluating", flush=True)
    base_info = zoo.card(spec["base"])
    base, base_info_loaded = zoo.load(spec["base"])
    evaluation = {
        "tool": {"train_seconds": round(seconds, 1), "val_loss_assistant_nats": round(masked_loss(model, val)["loss_nats"], 6),
                 **evaluate_tool_model(model, tokenizer, True)},
        "direct": {"train_seconds": round(twin[3], 1), "val_loss_assistant_nats": round(masked_loss(twin[0], twin[5])["loss_nats"], 6),
                   "history": twin[2], **evaluate_tool_model(twin[0], tokenizer, False)},
        "chat_model": evaluate_tool_model(base, zoo.tokenizer(base_info_loaded), False),
        "n_eval": N_EVAL, "n_facts": N_FACTS,
    }
    weights = out / f"{name}.safetensors"
    from safetensors.torch import save

    write_atomic(weights, save({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                               metadata={"name": name}))
    data = {**spec["data"], "made_by": "llmcourse.tool_use.tool_mixture", "train_examples": len(train),
            "train_tokens": train.n_tokens, "train_targets": train.n_targets,
            "validation": "tool_mixture(100, 100, 100, 100, seed=seed + 1), assistant-only loss"}
    card = finetuned_card(name, spec, model, tokenizer, tok_path,
                          f"{spec['base']}'s tokenizer with llmcourse.tool_use.add_tool_tokens", base_info, data,
                          weights, seconds, history, evaluation)
    write_atomic(out / f"{name}.json", (json.dumps(card, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return card
