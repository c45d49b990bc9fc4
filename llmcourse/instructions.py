"""Instruction data: a seeded generator of instructions and their answers, for supervised fine-tuning.

A pretrained model continues text; an instruction-tuned one does what it is asked. To teach that to a
small model, the tasks must be ones it can really learn, and to *measure* what it learnt they must
have one right answer (exact match). The tasks here are simple string work on lines of the course's own
Shakespeare (:data:`TASKS`): give the first word, reverse the words, write in capitals, count the words,
name the speaker of a speech, give the last word. Each has several **phrasings** of its instruction.

Generalisation is measured, not assumed (:func:`instruction_examples`):

- ``phrasings="seen"``: the phrasings used in training (the first :data:`SEEN_PHRASINGS` of each task);
- ``phrasings="heldout"``: the last phrasing of each task, never trained on: does the model follow an
  instruction worded in a new way?
- :data:`HELDOUT_TASK` (``"last_word"``) is never trained on at all: can the model do a task it was
  only told about? (A small model is not expected to: that is what the measurement is for.)

Inputs come from the Shakespeare train split for training (``split="train"``) and from the validation
split for evaluation, so an answer cannot be remembered from training either. :func:`conversation`
wraps an example as chat messages (:mod:`llmcourse.chat`). :func:`few_shot_prompt` writes the same
example as plain text with worked examples before it, which is how a *base* model (one that only
continues text) is asked; :func:`evaluate` scores any answering function task by task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from llmcourse.checks import ArgumentError, check_choice, check_int, check_optional, check_str
from llmcourse.evaluation import exact_match, normalise_answer  # noqa: F401  (their home is llmcourse.evaluation)

__all__ = [
    "GENERALISATION",
    "HELDOUT_TASK",
    "SEEN_PHRASINGS",
    "TASKS",
    "Instruction",
    "conversation",
    "evaluate",
    "exact_match",
    "few_shot_answer",
    "few_shot_prompt",
    "generalisation",
    "instruction_examples",
    "normalise_answer",
    "sft_mixture",
]

_WORD = re.compile(r"[A-Za-z']+")
_SPEAKER = re.compile(r"^([A-Z][A-Z .'-]*[A-Z]):\n((?:[^\n]+\n?)+)", re.M)


def _words(line: str) -> list[str]:
    return _WORD.findall(line)


def _phrase(line: str) -> str:
    return " ".join(_words(line))


@dataclass(frozen=True)
class _Task:
    phrasings: tuple[str, ...]
    source: str                      # "line" (a phrase of 3-8 words) or "speech" (a speech and its speaker)
    answer: Callable[[str], str]     # from the input (a phrase) or the speaker's name


#: The tasks: their instruction phrasings (the last one of each is held out) and how the answer is made.
TASKS: dict[str, _Task] = {
    "first_word": _Task(("What is the first word of this line?", "Give the first word.",
                         "Write only the word this line starts with.", "Which word opens the line below?"),
                        "line", lambda p: p.split()[0]),
    "reverse": _Task(("Reverse the order of the words.", "Write these words backwards, last word first.",
                      "Say the line with its words in reverse order.", "Turn the word order around."),
                     "line", lambda p: " ".join(reversed(p.split()))),
    "upper": _Task(("Write this line in capital letters.", "Upper-case the line.",
                    "Repeat the line, all in capitals.", "Make every letter a capital."),
                   "line", lambda p: p.upper()),
    "count": _Task(("How many words are in this line?", "Count the words.",
                    "Give the number of words in the line.", "Tell me how many words follow."),
                   "line", lambda p: str(len(p.split()))),
    "speaker": _Task(("Who speaks these lines?", "Name the speaker.", "Which character says this?",
                      "Whose words are these?"),
                     "speech", lambda name: name),
    "last_word": _Task(("What is the last word of this line?", "Give the last word.",
                        "Write only the word this line ends with.", "Which word closes the line below?"),
                       "line", lambda p: p.split()[-1]),
}
#: The task never trained on.
HELDOUT_TASK = "last_word"
#: How many phrasings of each task training uses (the rest are held out).
SEEN_PHRASINGS = 3


@dataclass(frozen=True)
class Instruction:
    """One example: ``prompt`` (the instruction, a newline, the input) and its one right ``answer``."""

    task: str
    phrasing: int
    instruction: str
    input: str
    answer: str

    @property
    def prompt(self) -> str:
        return f"{self.instruction}\n{self.input}"


def _sources(split: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Phrases of 3 to 8 words (one per line of verse or prose) and (speech, speaker) pairs of ``split``."""
    from llmcourse.datasets import load_shakespeare

    text = load_shakespeare(split)
    lines = []
    for line in text.splitlines():
        if line.endswith(":") or not line.strip():
            continue  # a speaker's name or a blank line
        words = _words(line)
        if 3 <= len(words) <= 8:
            lines.append(" ".join(words))
    speeches = []
    for name, speech in _SPEAKER.findall(text):
        first = speech.strip().splitlines()[:2]
        if first and len(" ".join(first)) <= 120:
            speeches.append(("\n".join(first), name))
    return lines, speeches


_CACHE: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}


def instruction_examples(n: int, *, split: str = "train", phrasings: str = "seen", tasks=None,
                         seed: int = 0) -> list[Instruction]:
    """``n`` examples, the tasks taking turns, inputs and phrasings drawn with ``seed``.

    Args:
        split: where the inputs come from: ``"train"`` or ``"validation"`` (the Shakespeare splits).
        phrasings: ``"seen"`` (the first :data:`SEEN_PHRASINGS` of each task) or ``"heldout"`` (the rest).
        tasks: task names (default: every task but :data:`HELDOUT_TASK`).
    """
    n = check_int("n", n, minimum=1)
    split = check_choice("split", split, ("train", "validation"))
    phrasings = check_choice("phrasings", phrasings, ("seen", "heldout"))
    seed = check_int("seed", seed, minimum=0)
    names = [t for t in TASKS if t != HELDOUT_TASK] if tasks is None else list(tasks)
    if not names or isinstance(tasks, str):
        raise ArgumentError(f"tasks must be a non-empty list of task names from {list(TASKS)}; got {tasks!r}")
    for t in names:
        if t not in TASKS:
            raise ArgumentError(f"tasks: {t!r} is not a task; the tasks are {list(TASKS)}")
    if split not in _CACHE:
        _CACHE[split] = _sources(split)
    lines, speeches = _CACHE[split]
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        name = names[k % len(names)]
        task = TASKS[name]
        allowed = range(SEEN_PHRASINGS) if phrasings == "seen" else range(SEEN_PHRASINGS, len(task.phrasings))
        p = int(rng.choice(list(allowed)))
        if task.source == "line":
            given = lines[int(rng.integers(len(lines)))]
            answer = task.answer(given)
        else:
            given, speaker = speeches[int(rng.integers(len(speeches)))]
            answer = task.answer(speaker)
        out.append(Instruction(name, p, task.phrasings[p], given, answer))
    return out


def conversation(example: Instruction, system: str | None = None) -> list[dict[str, str]]:
    """The example as chat messages: an optional system message, the user's prompt, the assistant's answer."""
    if not isinstance(example, Instruction):
        raise ArgumentError(f"example must be an Instruction; got {type(example).__name__}")
    system = check_optional(check_str, "system", system)
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": "user", "content": example.prompt}, {"role": "assistant", "content": example.answer}]


def few_shot_prompt(example: Instruction, demonstrations=()) -> str:
    """``example`` as plain text for a base model, after worked ``demonstrations`` (other examples)::

        Give the first word.
        So full of frost
        Answer: So

        Give the first word.
        Beat amongst you
        Answer:

    The text ends with ``"Answer:"``; a model that has caught the pattern continues with a space, the
    answer and a blank line (cut the continuation at the first newline).
    """
    if not isinstance(example, Instruction):
        raise ArgumentError(f"example must be an Instruction; got {type(example).__name__}")
    demonstrations = list(demonstrations)
    for i, d in enumerate(demonstrations):
        if not isinstance(d, Instruction):
            raise ArgumentError(f"demonstrations[{i}] must be an Instruction; got {type(d).__name__}")
    shots = "".join(f"{d.prompt}\nAnswer: {d.answer}\n\n" for d in demonstrations)
    return f"{shots}{example.prompt}\nAnswer:"


def evaluate(answer: Callable[[Instruction], str], examples) -> dict[str, float]:
    """Exact match of ``answer(example)`` against each example's answer, per task and ``"all"``.

    ``answer`` is any function from an :class:`Instruction` to the model's answer text (a chat model's
    reply, or a base model's continuation of :func:`few_shot_prompt`). Returns ``{task: share right}``
    for every task present, and ``"all"`` over every example.
    """
    if not callable(answer):
        raise ArgumentError(f"answer must be a function from an Instruction to a str; got {type(answer).__name__}")
    examples = list(examples)
    if not examples or not all(isinstance(e, Instruction) for e in examples):
        raise ArgumentError("examples must be a non-empty list of Instruction")
    right: dict[str, list[bool]] = {}
    for e in examples:
        got = answer(e)
        if not isinstance(got, str):
            raise ArgumentError(f"answer must return a str; it returned {type(got).__name__} for {e.prompt!r}")
        right.setdefault(e.task, []).append(normalise_answer(got) == normalise_answer(e.answer))
    scores = {task: sum(r) / len(r) for task, r in right.items()}
    scores["all"] = sum(sum(r) for r in right.values()) / len(examples)
    return scores


def sft_mixture(n_instructions: int, n_orders: int = 0, *, order_pools=("train",), seed: int = 0) -> list[list[dict[str, str]]]:
    """The course's SFT data: ``n_instructions`` instruction conversations (seen tasks and phrasings, train
    split) and ``n_orders`` ordering-bot dialogues (:mod:`llmcourse.ordering`) shared equally between the
    dish pools ``order_pools`` (never ``"heldout"``), shuffled together with ``seed``. What
    ``scripts/build_zoo.py bpe-chat-shakespeare`` fine-tunes the chat model on."""
    n_instructions = check_int("n_instructions", n_instructions, minimum=0)
    n_orders = check_int("n_orders", n_orders, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if n_instructions + n_orders == 0:
        raise ArgumentError("n_instructions + n_orders must be at least 1")
    conversations = [conversation(e) for e in instruction_examples(n_instructions, seed=seed)] if n_instructions else []
    if isinstance(order_pools, str) or not list(order_pools) or "heldout" in order_pools:
        raise ArgumentError(f"order_pools must be a non-empty list of dish pools other than 'heldout' (which is "
                            f"kept for evaluation); got {order_pools!r}")
    if n_orders:
        from llmcourse import ordering

        pools = list(order_pools)
        for k, pool in enumerate(pools):
            count = n_orders // len(pools) + (k < n_orders % len(pools))
            if count:
                conversations += [d.messages for d in ordering.dialogues(count, pool=pool, seed=seed)]
    order = np.random.default_rng(seed).permutation(len(conversations))
    return [conversations[i] for i in order]


#: The three rows of the generalisation table: what each measures, and how its examples are drawn.
GENERALISATION = {
    "seen tasks": dict(phrasings="seen"),
    "held-out phrasings": dict(phrasings="heldout"),
    "held-out task": dict(phrasings="seen", tasks=[HELDOUT_TASK]),
}


def generalisation(answer: Callable[[Instruction], str], n: int = 100, *, seed: int = 0) -> dict[str, dict[str, float]]:
    """The generalisation table: :func:`evaluate` on ``n`` validation examples of each row of
    :data:`GENERALISATION` -- the trained tasks as trained, the trained tasks worded in the held-out way,
    and the task never trained on (its seen phrasings) -- all on inputs from the validation split."""
    n = check_int("n", n, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    return {row: evaluate(answer, instruction_examples(n, split="validation", seed=seed + k, **draw))
            for k, (row, draw) in enumerate(GENERALISATION.items())}


def few_shot_answer(model, tokenizer, example: Instruction, demonstrations=(), *, max_new_tokens: int = 24) -> str:
    """A base model's answer: greedy continuation of :func:`few_shot_prompt`, cut at the first newline.
    Demonstrations are dropped from the front until the prompt fits the model's context."""
    from llmcourse.generation import generate_text

    demonstrations = list(demonstrations)
    context = getattr(model, "context_size", None) or 10**9
    while True:
        prompt = few_shot_prompt(example, demonstrations)
        if len(tokenizer.encode(prompt)) + max_new_tokens <= context or not demonstrations:
            break
        demonstrations = demonstrations[1:]
    prompt_len = len(tokenizer.encode(prompt))
    max_new_tokens = max(1, min(max_new_tokens, context - prompt_len))
    return generate_text(model, tokenizer, prompt, max_new_tokens, temperature=0.0, stop_strings=["\n"]).strip()
