"""The task, its hidden true reward and preference pairs (see :mod:`llmcourse.alignment`).

The ordering bot's first reply (:func:`order_prompts`), the true reward that stands in for raters
(:func:`true_reward`), noisy Bradley–Terry labels (:func:`label_pairs`) and their ceiling
(:func:`noise_ceiling`), and the committed results of ``scripts/rlhf_sweep.py`` and ``scripts/dpo_sweep.py``.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from llmcourse.checks import ArgumentError, check_bool, check_choice, check_int, check_number, fail


# ----------------------------------------------------------------------------------------------------
# the task and its true reward


@dataclass(frozen=True)
class OrderPrompt:
    """One prompt of the task: the conversation so far (system menu, the customer's order) and the reply
    the menu calls for. ``menu`` is a :class:`llmcourse.ordering.Menu`; ``line`` the
    :class:`llmcourse.ordering.OrderLine` ordered."""

    messages: tuple
    gold: str
    menu: object
    line: object


def order_prompts(n: int, pool: str = "words", seed: int = 0) -> list[OrderPrompt]:
    """``n`` prompts whose right reply is a confirmation: the first turns of seeded ordering
    conversations (:func:`llmcourse.ordering.dialogues`) in which the customer orders a dish on the menu
    and names its size where it has two. ``pool`` is where menus' dishes come from (``"train"``,
    ``"words"`` or ``"heldout"``, never seen in training)."""
    from llmcourse import ordering

    n = check_int("n", n, minimum=1)
    pool = check_choice("pool", pool, tuple(ordering.POOLS))
    seed = check_int("seed", seed, minimum=0)
    return list(_order_prompts(n, pool, seed))


@functools.lru_cache(maxsize=8)
def _order_prompts(n: int, pool: str, seed: int) -> tuple[OrderPrompt, ...]:
    # kept: the 6,000 prompts of the preference data take seconds to draw, and notebooks ask for them twice
    from llmcourse import ordering

    out: list[OrderPrompt] = []
    k = 0
    while len(out) < n:
        for d in ordering.dialogues(4 * n, pool=pool, seed=seed * 1000 + k):
            if d.turns[0] == "confirm" and len(out) < n:
                line = d.lines[0]
                out.append(OrderPrompt(tuple(dict(m) for m in d.messages[:2]), d.messages[2]["content"], d.menu, line))
        k += 1
    return tuple(out)


_CONFIRM = re.compile(r"(\d+) (?:(little|great) )?([a-z]+)")


def true_reward_parts(prompt: OrderPrompt, reply: str) -> dict:
    """The true reward of ``reply`` to ``prompt`` and its three parts (see :func:`true_reward`)."""
    if not isinstance(prompt, OrderPrompt):
        raise fail("prompt", "an OrderPrompt (from alignment.order_prompts)", prompt)
    if not isinstance(reply, str):
        raise fail("reply", "a str", reply)
    line, menu = prompt.line, prompt.menu
    text = reply.strip().lower()
    helpful, honest = 0.0, 0.0
    match = _CONFIRM.match(text)
    if match:                                  # a confirmation: one point per slot right, shared three ways
        quantity, size, dish = match.groups()
        helpful = ((quantity == str(line.quantity)) + (size == line.size) + (dish == line.item)) / 3
        if dish not in menu.names:
            honest -= 0.5                      # names a dish the menu does not have
    if text.startswith("sorry, we have no"):
        honest -= 0.5                          # denies a dish the customer read off the menu
    extra = max(0, len(text.split()) - len(prompt.gold.split()))
    concise = -0.1 * extra
    return {"helpful": helpful, "honest": honest, "concise": concise, "total": helpful + honest + concise}


def true_reward(prompt: OrderPrompt, reply: str) -> float:
    """The hidden reward the preferences stand for, in [-1.5, 1] for short replies::

        helpful  (0 to 1)   a third for each of quantity, size and dish of a confirmation that are right
        honest   (0, -0.5)  -0.5 for confirming a dish not on the menu, -0.5 for "Sorry, we have no ..."
                            (the customer ordered from the menu: every dish ordered is on it)
        concise  (<= 0)     -0.1 for every word beyond the right reply's

    "2 great ale." to "Give me two great ales." scores 1; "Little or great?" 0; "2 great crab." on a menu
    without crab 2/3 - 0.5."""
    return true_reward_parts(prompt, reply)["total"]


# ----------------------------------------------------------------------------------------------------
# preferences


@dataclass(frozen=True)
class Preference:
    """One comparison: ``chosen`` was preferred to ``rejected`` as a reply to ``prompt``. ``p_chosen`` is
    the probability the labeller had of choosing it (from the true reward), kept to measure the noise."""

    prompt: OrderPrompt
    chosen: str
    rejected: str
    p_chosen: float = float("nan")


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def label_pairs(prompts: Sequence[OrderPrompt], replies_a: Sequence[str], replies_b: Sequence[str], *,
                reward: Callable[[OrderPrompt, str], float] = None, noise: float = 0.1, seed: int = 0,
                keep_ties: bool = False) -> list[Preference]:
    """Label pairs of replies by a noisy Bradley–Terry draw from ``reward`` (default :func:`true_reward`):
    ``a`` is chosen with probability ``sigmoid((reward(a) - reward(b)) / noise)``. ``noise > 0``: the
    larger, the more often the worse reply wins. Identical replies are dropped; pairs of equal reward
    (a coin flip to the labeller, nothing to learn) are dropped unless ``keep_ties``."""
    reward = true_reward if reward is None else reward
    if not callable(reward):
        raise fail("reward", "a function reward(prompt, reply) -> float", reward)
    noise = check_number("noise", noise, minimum=0.0, strict=True)
    seed = check_int("seed", seed, minimum=0)
    keep_ties = check_bool("keep_ties", keep_ties)
    for name, value in (("prompts", prompts), ("replies_a", replies_a), ("replies_b", replies_b)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise fail(name, "a list", value)
    if not prompts:
        raise fail("prompts", "a non-empty list of OrderPrompt", prompts)
    if not len(prompts) == len(replies_a) == len(replies_b):
        raise ArgumentError(f"prompts, replies_a and replies_b must have one entry each per pair; got lengths "
                            f"{len(prompts)}, {len(replies_a)} and {len(replies_b)}")
    rng = np.random.default_rng(seed)
    out = []
    for i, (p, a, b) in enumerate(zip(prompts, replies_a, replies_b)):
        ra, rb = float(reward(p, a)), float(reward(p, b))
        if not (math.isfinite(ra) and math.isfinite(rb)):
            raise ArgumentError(f"reward gave {ra} and {rb} for pair {i}: rewards must be finite numbers")
        u = rng.random()                     # drawn for every pair, so a dropped pair does not shift the rest
        if a.strip() == b.strip() or (ra == rb and not keep_ties):
            continue
        p_a = _sigmoid((ra - rb) / noise)
        out.append(Preference(p, a, b, p_a) if u < p_a else Preference(p, b, a, 1 - p_a))
    return out


def noise_ceiling(preferences: Sequence[Preference]) -> float:
    """The expected accuracy of the *true* reward on these noisy labels: the mean of ``max(p, 1 - p)``
    over pairs. No reward model can expect to beat it on held-out labels drawn the same way."""
    prefs = _check_preferences(preferences)
    ps = [p.p_chosen for p in prefs]
    if any(not math.isfinite(p) for p in ps):
        raise ArgumentError("preferences: every Preference needs p_chosen (labels from label_pairs) for the ceiling")
    return float(np.mean([max(p, 1 - p) for p in ps]))


def _check_preferences(preferences) -> list[Preference]:
    if isinstance(preferences, (str, bytes)) or not isinstance(preferences, Sequence) or not preferences:
        raise fail("preferences", "a non-empty list of Preference", preferences)
    for i, p in enumerate(preferences):
        if not isinstance(p, Preference):
            raise fail(f"preferences[{i}]", "a Preference", p)
    return list(preferences)


# ----------------------------------------------------------------------------------------------------
# the committed results of scripts/rlhf_sweep.py


def _preference_file() -> dict:
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("rlhf_preferences.json").read_text(encoding="utf-8"))


def preference_prompts() -> list[OrderPrompt]:
    """The prompts ``scripts/rlhf_sweep.py`` drew its preference pairs from, which are also the prompts its
    PPO runs train on (regenerated from the pool, seed and number ``data/rlhf_preferences.json`` records)."""
    data = _preference_file()
    return order_prompts(data["n_prompts"], pool=data["pool"], seed=data["seed"])


def load_preferences() -> tuple[list[Preference], list[Preference]]:
    """The preference data of ``scripts/rlhf_sweep.py`` (``data/rlhf_preferences.json``, checked against
    ``data/SHA256SUMS``): ``(train, held_out)`` lists of :class:`Preference`, their prompts regenerated
    from the seed the file records (:func:`preference_prompts`)."""
    data = _preference_file()
    prompts = order_prompts(data["n_prompts"], pool=data["pool"], seed=data["seed"])
    prefs = [Preference(prompts[p["prompt"]], p["chosen"], p["rejected"], p["p_chosen"]) for p in data["pairs"]]
    return prefs[:data["n_train"]], prefs[data["n_train"]:]


def load_sweep() -> dict:
    """The committed results of ``scripts/rlhf_sweep.py`` (``data/rlhf_sweep.json``, checked against
    ``data/SHA256SUMS``): the reward models' accuracies, the AI judge's agreement, and every PPO run's
    ``history`` (one dict per step) and ``evals`` (held-out measurements every few steps)."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("rlhf_sweep.json").read_text(encoding="utf-8"))


def load_dpo_sweep() -> dict:
    """The committed results of ``scripts/dpo_sweep.py`` (``data/dpo_sweep.json``, checked against
    ``data/SHA256SUMS``): every DPO, IPO and conservative-DPO run's ``history`` (one dict per step) and
    ``evals`` (after every epoch: true reward and KL on held-out prompts, the implicit reward's accuracy on
    held-out pairs, the shifts of the chosen and rejected replies' log-probabilities)."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("dpo_sweep.json").read_text(encoding="utf-8"))
