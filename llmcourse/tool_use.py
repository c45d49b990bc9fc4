"""Teaching a chat model to use the calculator (:mod:`llmcourse.tools`), and measuring what it bought.

The data are conversations in which the assistant's answer is a **call** (:func:`arithmetic_conversation`:
"What is 47 + 385?" answered ``<|calc|>47+385<|/calc|><|result|>432<|/result|>``) or holds one (the
ordering bot's summary, :func:`tool_summary`, whose total the tool adds up). The result block is written
by the program, so the loss mask leaves it out (:func:`llmcourse.chat.render`). :func:`tool_mixture` puts
them beside the instruction conversations of notebook 08 (so the model keeps those skills, and learns
when *not* to call) and the play questions of :mod:`llmcourse.facts`; ``tool=False`` writes the same
mixture with every answer written out directly, the twin that shows what the tool is worth.

:func:`add_tool_tokens` gives a chat tokenizer the four markers as special tokens, and
:func:`respond_with_tool` is the chat model's turn with the calculator: generation on token ids that
pauses at each call, through :func:`llmcourse.tools.run_with_tool`.

Measuring: :func:`answer` is one reply with or without the tool; :func:`arithmetic_rows` and
:func:`summary_rows` score replies question by question (exact match of what the user reads, whether the
model called, whether the call was well-formed); :func:`rates` averages rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from llmcourse import chat
from llmcourse.checks import ArgumentError, check_bool, check_choice, check_int, check_str, fail
from llmcourse.tools import (CALL_END, CALL_START, RESULT_END, RESULT_START, TOOL_TOKENS, calculator, calls_in,
                             run_with_tool, visible)

__all__ = ["ARITHMETIC_PHRASINGS", "OPS", "ArithmeticQuestion", "add_tool_tokens", "answer", "arithmetic_conversation",
           "arithmetic_questions", "arithmetic_rows", "order_conversation", "rates", "respond_with_tool", "summary_rows",
           "tool_mixture", "tool_summary"]

#: The operations the arithmetic questions use, with the word for each.
OPS = {"+": "plus", "-": "minus", "*": "times"}
#: How an arithmetic question is asked; the last phrasing is held out of training.
ARITHMETIC_PHRASINGS: tuple[str, ...] = ("What is {a} {op} {b}?", "Compute {a} {op} {b}.",
                                         "How much is {a} {word} {b}?", "Work out {a} {word} {b}.")


@dataclass(frozen=True)
class ArithmeticQuestion:
    """``a op b``, asked with phrasing number ``phrasing``; ``answer`` is the exact result as text."""

    a: int
    op: str
    b: int
    phrasing: int

    @property
    def question(self) -> str:
        return ARITHMETIC_PHRASINGS[self.phrasing].format(a=self.a, op=self.op, b=self.b, word=OPS[self.op])

    @property
    def expression(self) -> str:
        return f"{self.a}{self.op}{self.b}"

    @property
    def answer(self) -> str:
        return calculator(self.expression)


def arithmetic_questions(n: int, *, digits: tuple[int, int] = (1, 3), ops: str = "+-*", phrasings: str = "seen",
                         seed: int = 0) -> list[ArithmeticQuestion]:
    """``n`` questions ``a op b``, each number's digit count drawn from ``digits`` (inclusive), ``a >= b``
    for ``-`` (no negative answers); ``phrasings="seen"`` uses the first three phrasings, ``"heldout"`` the
    last one."""
    n = check_int("n", n, minimum=1)
    if (not isinstance(digits, tuple) or len(digits) != 2 or not all(isinstance(d, int) for d in digits)
            or not 1 <= digits[0] <= digits[1] <= 12):
        raise fail("digits", "a pair (low, high) of digit counts with 1 <= low <= high <= 12", digits)
    ops = check_str("ops", ops)
    if not ops or any(o not in OPS for o in ops):
        raise fail("ops", f"a non-empty string of the operations {''.join(OPS)}", ops)
    phrasings = check_choice("phrasings", phrasings, ("seen", "heldout"))
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    last = len(ARITHMETIC_PHRASINGS) - 1
    out = []
    for _ in range(n):
        a, b = (int(rng.integers(10 ** (d - 1) if d > 1 else 0, 10**d))
                for d in rng.integers(digits[0], digits[1] + 1, size=2))
        op = ops[int(rng.integers(len(ops)))]
        if op == "-" and a < b:
            a, b = b, a
        out.append(ArithmeticQuestion(a, op, b, last if phrasings == "heldout" else int(rng.integers(last))))
    return out


def arithmetic_conversation(question: ArithmeticQuestion, tool: bool = True) -> list[dict[str, str]]:
    """The question and its answer as chat messages: with ``tool`` the answer is the call and its result
    (``<|calc|>47+385<|/calc|><|result|>432<|/result|>``), without it the number alone."""
    if not isinstance(question, ArithmeticQuestion):
        raise fail("question", "an ArithmeticQuestion (from arithmetic_questions)", question)
    reply = (f"{CALL_START}{question.expression}{CALL_END}{RESULT_START}{question.answer}{RESULT_END}"
             if check_bool("tool", tool) else question.answer)
    return [{"role": "user", "content": question.question}, {"role": "assistant", "content": reply}]


def tool_summary(summary: str) -> str:
    """An ordering-bot summary with its total computed by the tool: "2 great ale 6, 1 pie 4. Total 10.
    Delivery." becomes "2 great ale 6, 1 pie 4. Total <|calc|>6+4<|/calc|><|result|>10<|/result|>.
    Delivery." (the model still writes each line's price; the tool adds them up)."""
    from llmcourse import ordering

    parsed = ordering.parse_summary(check_str("summary", summary))
    if parsed is None:
        raise fail("summary", 'a summary in the ordering format ("2 great ale 6, 1 pie 4. Total 10. Delivery.")',
                   summary)
    head = summary.strip().rsplit(" Total ", 1)[0]
    call = "+".join(str(p) for p in parsed.prices)
    return (f"{head} Total {CALL_START}{call}{CALL_END}{RESULT_START}{calculator(call)}{RESULT_END}. "
            f"{parsed.mode.capitalize()}.")


def order_conversation(dialogue, tool: bool = True) -> list[dict[str, str]]:
    """An ordering dialogue's messages, the summary written with the tool (:func:`tool_summary`) if ``tool``."""
    from llmcourse import ordering

    if not isinstance(dialogue, ordering.Dialogue):
        raise fail("dialogue", "an ordering.Dialogue", dialogue)
    messages = [dict(m) for m in dialogue.messages]
    if check_bool("tool", tool):
        messages[-1]["content"] = tool_summary(messages[-1]["content"])
    return messages


def tool_mixture(n_arithmetic: int, n_orders: int, n_instructions: int, n_facts: int, *, tool: bool = True,
                 made_up_share: float = 0.2, seed: int = 0) -> list[list[dict[str, str]]]:
    """The fine-tuning conversations of a tool-using chat model, shuffled (seeded): arithmetic questions of 1
    to 3 digits, ordering dialogues (half on training dishes, half on made-up ones), instruction
    conversations (notebook 08's tasks) and play questions (:mod:`llmcourse.facts`: taught characters and,
    a share ``made_up_share``, made-up names answered :data:`~llmcourse.facts.ABSTAIN`). ``tool=False``:
    the same conversations with arithmetic answers and totals written directly."""
    from llmcourse import facts, instructions, ordering

    n_arithmetic, n_orders, n_instructions, n_facts = (check_int(k, v, minimum=0) for k, v in (
        ("n_arithmetic", n_arithmetic), ("n_orders", n_orders), ("n_instructions", n_instructions),
        ("n_facts", n_facts)))
    tool = check_bool("tool", tool)
    seed = check_int("seed", seed, minimum=0)
    if not 0 <= made_up_share <= 1:
        raise fail("made_up_share", "a share in [0, 1]", made_up_share)
    out = [arithmetic_conversation(q, tool) for q in arithmetic_questions(n_arithmetic, seed=seed)] if n_arithmetic else []
    for pool, n in (("train", n_orders - n_orders // 2), ("words", n_orders // 2)):
        if n:
            out += [order_conversation(d, tool) for d in ordering.dialogues(n, pool=pool, seed=seed)]
    if n_instructions:
        out += instructions.sft_mixture(n_instructions, 0, seed=seed)
    n_made_up = round(n_facts * made_up_share)
    for kind, n in (("taught", n_facts - n_made_up), ("made-up", n_made_up)):
        if n:
            out += [facts.fact_conversation(q) for q in facts.fact_questions(n, kind, split="train", seed=seed)]
    if not out:
        raise ArgumentError("tool_mixture: every count is 0; ask for some conversations")
    order = np.random.default_rng((seed, 7)).permutation(len(out))
    return [out[i] for i in order]


# ----------------------------------------------------------------------------------------------------
# the tool tokens and the loop on token ids


def add_tool_tokens(tokenizer):
    """A copy of a chat tokenizer with :data:`~llmcourse.tools.TOOL_TOKENS` as four more special tokens (the
    next free ids, so every id it had keeps its meaning; :func:`llmcourse.chat.extend_vocab` gives a model
    their rows). A tokenizer that already has them is returned as it is."""
    chat._chat_ids(tokenizer)                     # the tool tokens come after the chat tokens
    return chat.add_special_tokens(tokenizer, TOOL_TOKENS, "tool tokens")


def _tool_ids(tokenizer) -> dict[str, int]:
    return chat.special_ids(tokenizer, TOOL_TOKENS, "tool tokens", "tool_use.add_tool_tokens(tokenizer)")


def respond_with_tool(model, tokenizer, messages, *, max_new_tokens: int = 48, max_calls: int = 2,
                      tool: Callable[[str], str] = calculator, temperature: float = 0.0,
                      generator=None) -> tuple[str, list[tuple[str, str]]]:
    """The assistant's next turn with the calculator: generation that stops when the model writes
    ``<|im_end|>`` or closes a call; after a call :func:`run_with_tool` hands the expression to ``tool``
    and appends the result block, whose ids are put after the model's own, and generation resumes.
    ``max_new_tokens`` counts the model's tokens, not the inserted ones. ``max_calls=0`` is the model
    without its tool: generation stops where it closes its first call. ``temperature`` and ``generator``
    are :func:`llmcourse.generation.generate`'s (0, the default, is greedy). Returns ``(reply, calls)``: the
    reply's text with its markup (:func:`visible` for what a user reads) and the ``(expression, result)``
    pairs."""
    import torch

    from llmcourse.generation import generate

    end = chat._chat_ids(tokenizer)[chat.IM_END]
    call_end = _tool_ids(tokenizer)[CALL_END]
    if getattr(model, "vocab_size", 0) <= max(end, call_end):
        raise fail("model", f"a model with rows for the chat and tool tokens (vocab_size > {call_end})", model)
    budget = [check_int("max_new_tokens", max_new_tokens, minimum=1)]
    ids = chat.render(tokenizer, messages, add_generation_prompt=True)[0]
    prompt = chat.render_text(messages, add_generation_prompt=True)
    known = [prompt]                               # the text that ``ids`` stand for
    context = getattr(model, "context_size", None)

    def continue_text(text: str) -> str:
        if len(text) > len(known[0]):              # the result block the loop appended: its own ids
            ids.extend(int(i) for i in tokenizer.encode(text[len(known[0]):]))
        room = budget[0] if context is None else min(budget[0], context - len(ids))
        if room <= 0:
            known[0] = text
            return ""
        out = generate(model, torch.tensor(ids), room, temperature=temperature, stop_ids=[end, call_end],
                       generator=generator).tolist()
        budget[0] -= len(out)
        ids.extend(out)
        piece = tokenizer.decode(out[:-1] if out and out[-1] == end else out)
        known[0] = text + piece
        return piece

    return run_with_tool(continue_text, prompt, max_calls=check_int("max_calls", max_calls, minimum=0), tool=tool)


# ----------------------------------------------------------------------------------------------------
# measuring


def answer(model, tokenizer, messages, *, tool: bool = True, max_new_tokens: int = 48, temperature: float = 0.0,
           generator=None) -> tuple[str, list]:
    """One reply: ``(reply text with its markup, calls)``. With ``tool`` the calculator answers the
    model's calls (:func:`respond_with_tool`); without it generation stops where the model
    closes its first call (nothing answers it). A tokenizer without the tool tokens (a chat model never
    taught the tool) is simply asked (:func:`llmcourse.chat.respond`). ``temperature`` and ``generator`` are
    :func:`llmcourse.generation.generate`'s (0, the default, is greedy)."""
    tool = check_bool("tool", tool)
    if not all(t in getattr(tokenizer, "special_tokens", {}) for t in TOOL_TOKENS):
        return chat.respond(model, tokenizer, messages, max_new_tokens=max_new_tokens, temperature=temperature,
                            generator=generator), []
    return respond_with_tool(model, tokenizer, messages, max_new_tokens=max_new_tokens, max_calls=2 if tool else 0,
                             temperature=temperature, generator=generator)


def _call_fields(reply: str, calls: list) -> dict:
    return {"called": CALL_START in reply, "well_formed": bool(calls_in(reply))
            and all(not r.startswith("error") for _, r in calls) and len(calls) == len(calls_in(reply))}


def arithmetic_rows(model, tokenizer, questions, *, tool: bool = True) -> list[dict]:
    """Each question asked alone: ``{"question", "reply", "answer" (what the user reads), "correct",
    "called", "well_formed"}`` (``well_formed``: the model closed its calls and the calculator computed
    each one)."""
    if isinstance(questions, ArithmeticQuestion) or not questions:
        raise fail("questions", "a non-empty list of ArithmeticQuestion", questions)
    rows = []
    for q in questions:
        if not isinstance(q, ArithmeticQuestion):
            raise fail("questions", "a list of ArithmeticQuestion", q)
        reply, calls = answer(model, tokenizer, [{"role": "user", "content": q.question}], tool=tool, max_new_tokens=24)
        said = visible(reply).strip()
        rows.append({"question": q.question, "reply": reply, "answer": said, "correct": said == q.answer,
                     **_call_fields(reply, calls)})
    return rows


def summary_rows(model, tokenizer, dialogues, *, tool: bool = True) -> list[dict]:
    """The ordering bot's last turn on each dialogue's true history (every earlier turn as it should have
    been): :func:`llmcourse.ordering.score`'s fields of what the user reads, ``sum_correct`` (the total is
    the sum of the line prices the summary itself states: the addition alone), ``called`` and
    ``well_formed``."""
    from llmcourse import ordering

    if isinstance(dialogues, ordering.Dialogue) or not dialogues:
        raise fail("dialogues", "a non-empty list of ordering.Dialogue", dialogues)
    rows = []
    for d in dialogues:
        if not isinstance(d, ordering.Dialogue):
            raise fail("dialogues", "a list of ordering.Dialogue", d)
        reply, calls = answer(model, tokenizer, d.messages[:-1], tool=tool, max_new_tokens=64)
        said = visible(reply).strip()
        parsed = ordering.parse_summary(said)
        rows.append({"reply": reply, "summary": said, **ordering.score(d, said),
                     "sum_correct": parsed is not None and parsed.total == sum(parsed.prices),
                     **_call_fields(reply, calls)})
    return rows


def rates(rows, keys=("correct", "called", "well_formed")) -> dict[str, float]:
    """The mean of each of ``keys`` over ``rows`` (``well_formed`` over the rows that called)."""
    if not rows:
        raise fail("rows", "a non-empty list of rows", rows)
    out = {}
    for k in keys:
        pool = [r for r in rows if r.get("called")] if k == "well_formed" else rows
        out[k] = float(np.mean([bool(r[k]) for r in pool])) if pool else None
    return out
