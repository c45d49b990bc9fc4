"""Chain of thought in a model small enough to train live: multi-digit arithmetic answered directly, with
reversed digits, or after a scratchpad of intermediate steps; and self-consistency.

A Transformer computes each token with a fixed amount of work (its layers). Adding two 3-digit numbers
left to right, as we write the answer, needs the carry from the *last* column before the *first* digit
can be written: all of it in one token's computation. Three ways to ask for the answer (:data:`FORMATS`):

- ``direct``: ``357+468=825.``
- ``reversed``: the answer's digits least significant first, ``357+468=528.``: each digit then needs
  only the columns already written (Lee et al. 2023);
- ``scratchpad``: the column sums written out, right to left, each with its carry, then the answer:
  ``357+468=7+8+0=15,5+6+1=12,3+4+1=08>825.``. Every step is a small local computation whose inputs are
  in the context: a **chain of thought**.

Multiplication of a number by one digit (``op="*"``) has the same scratchpad shape (``7*6+0=42,…``) with
harder steps. Text is one token per character (:data:`VOCAB`); ``.`` ends an answer.

:func:`solve` answers many problems in one batch (greedy or sampled, :func:`llmcourse.generation.generate_batch`);
:func:`parse` reads the number out of a completion in any format and returns None for anything malformed;
:func:`majority_vote` and :func:`self_consistency` vote over sampled chains (Wang et al. 2022). For
few-shot prompting, :func:`mixture_examples` trains one model on sequences of problems that share one
format, some led by a trigger (``S``: step by step, ``D``: directly), so that the format can be asked for
by demonstrations or by the trigger (:func:`prompt`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, check_str, fail

__all__ = [
    "FORMATS", "PROMPTS", "STOP", "TRIGGERS", "VOCAB", "Problem", "accuracy", "accuracy_by", "arithmetic_model",
    "arithmetic_trainer", "decode", "encode", "load_sweep", "majority_vote", "mixture_examples", "parse",
    "problems", "prompt", "prompt_texts", "prompted", "render", "scratchpad_steps", "self_consistency", "solve",
    "training_examples",
]

#: The characters, one token each; id 0 (``_``) is padding.
VOCAB = "_0123456789+*=,>.|SD"
#: The token that ends an answer.
STOP = "."
#: The answer formats.
FORMATS = ("direct", "reversed", "scratchpad")
#: Triggers that ask for a format without demonstrations (the course's "Let's think step by step").
TRIGGERS = {"scratchpad": "S", "direct": "D"}
_ID = {c: i for i, c in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (one per character of :data:`VOCAB`)."""
    text = check_str("text", text)
    bad = sorted(set(text) - set(VOCAB))
    if bad:
        raise ArgumentError(f"text may hold only the characters {VOCAB[1:]!r}; got {''.join(bad)!r} in {text!r}")
    return [_ID[c] for c in text]


def decode(ids) -> str:
    """The text of token ids (padding dropped)."""
    return "".join(VOCAB[int(i)] for i in ids if int(i) != 0)


@dataclass(frozen=True)
class Problem:
    """``a op b``: addition of two numbers of the same number of digits, or a number times one digit."""

    a: int
    b: int
    op: str = "+"

    @property
    def answer(self) -> int:
        return self.a + self.b if self.op == "+" else self.a * self.b

    @property
    def digits(self) -> int:
        """The number of digits of ``a``."""
        return len(str(self.a))

    @property
    def carries(self) -> int:
        """How many columns pass a non-zero carry to the next."""
        return sum(1 for *_, total in scratchpad_steps(self) if total >= 10)

    def __str__(self) -> str:
        return f"{self.a}{self.op}{self.b}"


def problems(n: int, digits, *, op: str = "+", seed: int = 0) -> list[Problem]:
    """``n`` seeded problems. ``digits``: the number of digits of each operand (an int) or a
    ``(lowest, highest)`` range drawn uniformly per problem. For ``op="+"`` both operands have that many
    digits; for ``op="*"`` the second is one digit from 2 to 9; ``op="both"`` draws one of the two per
    problem."""
    n = check_int("n", n, minimum=1)
    ops = check_choice("op", op, ("+", "*", "both"))
    if isinstance(digits, int) and not isinstance(digits, bool):
        lo = hi = check_int("digits", digits, minimum=1, maximum=18)
    elif isinstance(digits, (tuple, list)) and len(digits) == 2:
        lo = check_int("digits[0]", digits[0], minimum=1, maximum=18)
        hi = check_int("digits[1]", digits[1], minimum=lo, maximum=18)
    else:
        raise fail("digits", "a number of digits (an int) or a (lowest, highest) pair", digits)
    rng = random.Random(check_int("seed", seed, minimum=0))
    out = []
    for _ in range(n):
        op = rng.choice("+*") if ops == "both" else ops
        d = rng.randint(lo, hi)
        a = rng.randint(10 ** (d - 1), 10 ** d - 1)
        b = rng.randint(10 ** (d - 1), 10 ** d - 1) if op == "+" else rng.randint(2, 9)
        out.append(Problem(a, b, op))
    return out


def scratchpad_steps(problem: Problem) -> list[tuple[int, int, int, int]]:
    """The columns right to left: ``(digit of a, digit of b or the multiplier, carry in, column total)``."""
    if not isinstance(problem, Problem):
        raise fail("problem", "a Problem", problem)
    a = [int(c) for c in reversed(str(problem.a))]
    b = [int(c) for c in reversed(str(problem.b))] if problem.op == "+" else None
    carry, steps = 0, []
    for i, da in enumerate(a):
        db = (b[i] if i < len(b) else 0) if b is not None else problem.b
        total = da + db + carry if problem.op == "+" else da * db + carry
        steps.append((da, db, carry, total))
        carry = total // 10
    return steps


def render(problem: Problem, fmt: str) -> tuple[str, str]:
    """``(prompt, completion)`` of ``problem`` in format ``fmt``: the prompt ends with ``=``, the
    completion with :data:`STOP`."""
    fmt = check_choice("fmt", fmt, FORMATS)
    if not isinstance(problem, Problem):
        raise fail("problem", "a Problem", problem)
    answer = str(problem.answer)
    if fmt == "direct":
        body = answer
    elif fmt == "reversed":
        body = answer[::-1]
    else:
        body = ",".join(f"{da}{problem.op}{db}+{c}={t:02d}" for da, db, c, t in scratchpad_steps(problem))
        body += ">" + answer
    return f"{problem}=", body + STOP


def parse(completion: str, fmt: str) -> int | None:
    """The number a completion in format ``fmt`` answers, or None if it is malformed (no :data:`STOP`, no
    digits where the answer should be, a scratchpad without ``>``). Only the answer is read: a scratchpad
    with a wrong step and the right answer counts as right. ``fmt="auto"``: a scratchpad if the completion
    has a ``>``, else direct (for a model left to choose)."""
    completion = check_str("completion", completion)
    fmt = check_choice("fmt", fmt, FORMATS + ("auto",))
    if fmt == "auto":
        fmt = "scratchpad" if ">" in completion else "direct"
    if STOP not in completion:
        return None
    body = completion[:completion.index(STOP)]
    if fmt == "scratchpad":
        if ">" not in body:
            return None
        body = body[body.rindex(">") + 1:]
    if not body.isdigit() or not body.isascii():
        return None
    return int(body[::-1] if fmt == "reversed" else body)


def _pair(prompt_text: str, completion: str, context: str = "") -> tuple[list[int], list[int]]:
    from llmcourse.lm import IGNORE_INDEX

    shown = encode(context + prompt_text)
    said = encode(completion)
    ids = shown + said
    targets = [IGNORE_INDEX] * (len(shown) - 1) + said + [IGNORE_INDEX]
    return ids, targets


def training_examples(items: Sequence[Problem], fmt: str):
    """:class:`~llmcourse.lm.MaskedExamples` of each problem in ``fmt``: the loss on the completion only."""
    from llmcourse.lm import MaskedExamples

    if isinstance(items, Problem) or not items:
        raise fail("items", "a non-empty list of Problem", items)
    return MaskedExamples([_pair(*render(p, fmt)) for p in items])


def prompt(problem: Problem, *, demonstrations: Sequence[Problem] = (), fmt: str = "scratchpad",
           trigger: str | None = None) -> str:
    """The text to continue: an optional trigger (``"scratchpad"`` or ``"direct"``: :data:`TRIGGERS`), worked
    ``demonstrations`` in ``fmt`` separated by ``|``, then the problem's prompt."""
    fmt = check_choice("fmt", fmt, FORMATS)
    lead = ""
    if trigger is not None:
        lead = TRIGGERS[check_choice("trigger", trigger, tuple(TRIGGERS))]
    shots = "".join("".join(render(d, fmt)) + "|" for d in demonstrations)
    return lead + shots + render(problem, fmt)[0]


def mixture_examples(n: int, digits, *, formats: Sequence[str] = ("direct", "scratchpad"), max_shots: int = 2,
                     trigger_rate: float = 0.5, op: str = "+", seed: int = 0):
    """``n`` training sequences for few-shot prompting: each holds 1 to ``max_shots + 1`` problems in one
    format (drawn from ``formats``) separated by ``|``, led with probability ``trigger_rate`` by that
    format's trigger; the loss is on every completion. A model trained on them answers a prompt in the
    format its demonstrations or trigger show."""
    from llmcourse.lm import IGNORE_INDEX, MaskedExamples

    n = check_int("n", n, minimum=1)
    max_shots = check_int("max_shots", max_shots, minimum=0)
    trigger_rate = check_number("trigger_rate", trigger_rate, minimum=0.0, maximum=1.0)
    formats = [check_choice("formats", f, tuple(TRIGGERS)) for f in formats]
    if not formats:
        raise fail("formats", f"a non-empty list from {tuple(TRIGGERS)}", formats)
    rng = random.Random(check_int("seed", seed, minimum=0))
    pool = problems(n * (max_shots + 1), digits, op=op, seed=seed)
    examples, k = [], 0
    for _ in range(n):
        fmt = rng.choice(formats)
        ids = encode(TRIGGERS[fmt]) if rng.random() < trigger_rate else []
        targets = [IGNORE_INDEX] * len(ids)
        for j in range(rng.randint(1, max_shots + 1)):
            shown, said = render(pool[k], fmt)
            k += 1
            lead = encode(("|" if j else "") + shown)
            ids += lead + encode(said)
            targets += [IGNORE_INDEX] * len(lead) + encode(said)
        # targets[t] is the token after ids[t]: shift left by one
        examples.append((ids, targets[1:] + [IGNORE_INDEX]))
    return MaskedExamples(examples)


def arithmetic_model(*, n_layer: int = 3, n_embd: int = 128, context: int = 96, seed: int = 0):
    """A seeded Transformer for :data:`VOCAB` (the course's Llama-style block, 4 heads)."""
    from llmcourse.transformer import TransformerConfig, TransformerLM

    torch.manual_seed(check_int("seed", seed, minimum=0))
    return TransformerLM(TransformerConfig.llama(len(VOCAB), check_int("context", context, minimum=8),
                                                 n_layer=check_int("n_layer", n_layer, minimum=1), n_head=4,
                                                 n_embd=check_int("n_embd", n_embd, minimum=4)))


def arithmetic_trainer(model, train, val, *, steps: int, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                       eval_every: int | None = None, callback=None):
    """The course :class:`~llmcourse.training.Trainer` set up for these tasks (AdamW at ``lr``, 5% warm-up,
    cosine schedule, clipping at 1, no weight decay; ``train`` and ``val``: MaskedExamples). Call
    ``.fit()`` (or ``.fit(until_step=k)`` to stop part-way and look)."""
    from llmcourse.training import Trainer, TrainConfig

    steps = check_int("steps", steps, minimum=1)
    config = TrainConfig(steps=steps, batch_size=batch_size, seq_len=model.context_size, lr=lr, warmup=0.05,
                         eval_every=eval_every or steps, eval_tokens=8192, seed=seed)
    return Trainer(model, train, val, config, show_progress=False, callback=callback)


def solve(model, texts: Sequence[str], *, max_new_tokens: int = 64, temperature: float = 0.0,
          generator: torch.Generator | None = None, batch_size: int = 512) -> list[str]:
    """The model's completion of each prompt text (up to and including :data:`STOP`, or cut at
    ``max_new_tokens``), in batches of ``batch_size``; greedy at ``temperature=0``."""
    from llmcourse.generation import generate_batch

    if isinstance(texts, str) or not texts:
        raise fail("texts", "a non-empty list of prompt texts", texts)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    context = getattr(model, "context_size", None) or 10**9
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = [encode(t) for t in texts[start:start + batch_size]]
        room = min(max_new_tokens, context - max(map(len, chunk)))
        if room < 1:
            raise ArgumentError(f"texts: a prompt of {max(map(len, chunk))} tokens leaves no room in the "
                                f"model's context ({context})")
        ids, real, P = generate_batch(model, chunk, room, temperature=temperature, stop_id=_ID[STOP],
                                      generator=generator)
        out += [decode(ids[i, P:][real[i, P:]]) for i in range(len(chunk))]
    return out


#: Five ways to ask one model (trained by :func:`mixture_examples`) for the answers, as :func:`prompted`
#: takes them: a trigger for either format, one worked demonstration in either format, or the bare problem.
PROMPTS = {"step-by-step trigger": dict(fmt="scratchpad", trigger="scratchpad"),
           "direct trigger": dict(fmt="direct", trigger="direct"),
           "one scratchpad demonstration": dict(fmt="scratchpad", shots=1),
           "one direct demonstration": dict(fmt="direct", shots=1),
           "no prompt": dict(fmt="auto")}


def prompt_texts(items: Sequence[Problem], demos: Sequence[Problem], *, fmt: str, shots: int = 0,
                 trigger: str | None = None) -> list[str]:
    """The texts for ``items`` asked one way of :data:`PROMPTS`: with ``trigger``, with one of ``demos``
    (paired with the items) as a worked demonstration in ``fmt`` when ``shots``, or, for ``fmt="auto"``, as
    the bare problem, the same text in every format (the model chooses; parse with ``"auto"``)."""
    if fmt == "auto":
        return [render(p, "direct")[0] for p in items]
    shots = check_int("shots", shots, minimum=0, maximum=1)
    if shots and len(demos) != len(items):
        raise ArgumentError(f"demos must pair with items; got {len(demos)} and {len(items)}")
    return [prompt(p, demonstrations=[demos[i]] if shots else [], fmt=fmt, trigger=trigger)
            for i, p in enumerate(items)]


def prompted(model, items: Sequence[Problem], demos: Sequence[Problem], **how) -> list[str]:
    """Greedy completions of :func:`prompt_texts` (``how``: one entry of :data:`PROMPTS`)."""
    return solve(model, prompt_texts(items, demos, **how))


def accuracy(model, items: Sequence[Problem], fmt: str, **prompt_args) -> list[bool]:
    """Greedy exact match of each problem's answer in ``fmt`` (``prompt_args``: :func:`prompt`'s
    ``demonstrations`` and ``trigger``; the answer is parsed in ``fmt``)."""
    texts = [prompt(p, fmt=fmt, **prompt_args) for p in items]
    return [parse(c, fmt) == p.answer for c, p in zip(solve(model, texts), items)]


def accuracy_by(items: Sequence[Problem], right: Sequence[bool], key: str = "digits") -> dict[int, float]:
    """The share right for each value of ``key`` (``"digits"`` or ``"carries"``), in increasing order."""
    key = check_choice("key", key, ("digits", "carries"))
    if len(items) != len(right):
        raise ArgumentError(f"items and right must be equally long; got {len(items)} and {len(right)}")
    groups: dict[int, list[bool]] = {}
    for p, r in zip(items, right):
        groups.setdefault(getattr(p, key), []).append(bool(r))
    return {k: sum(v) / len(v) for k, v in sorted(groups.items())}


def majority_vote(answers: Sequence[int | None]) -> int | None:
    """The most common answer that is not None (a malformed chain does not vote); a tie goes to the answer
    that appeared first; None if no chain gave an answer."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def self_consistency(model, items: Sequence[Problem], *, samples: int, temperature: float = 1.0,
                     fmt: str = "scratchpad", seed: int = 0, **prompt_args) -> list[list[int | None]]:
    """Sample ``samples`` chains per problem at ``temperature`` (seeded) and parse each in ``fmt``: one list
    of answers per problem, in the order sampled (vote with :func:`majority_vote` over any prefix).
    ``prompt_args``: :func:`prompt`'s ``trigger`` or ``demonstrations`` (a model trained on a mixture of
    formats needs one, or it may choose another format)."""
    samples = check_int("samples", samples, minimum=1)
    temperature = check_number("temperature", temperature, minimum=0.0, strict=True)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    texts = [prompt(p, fmt=fmt, **prompt_args) for p in items for _ in range(samples)]
    completions = solve(model, texts, temperature=temperature, generator=g)
    answers = [parse(c, fmt) for c in completions]
    return [answers[i * samples:(i + 1) * samples] for i in range(len(items))]


def load_sweep() -> dict:
    """The committed results of ``scripts/cot_sweep.py`` (``data/cot_sweep.json``, checked against
    ``data/SHA256SUMS``): the format runs (accuracy by digits and carries at checkpoints, with the examples,
    tokens and seconds of training), and each seed of the mixture model's prompt table and
    self-consistency."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("cot_sweep.json").read_text(encoding="utf-8"))
