"""Learning from preferences: a task with a known true reward, a reward model, and PPO with a KL penalty.

InstructGPT's recipe has three steps: supervised fine-tuning (notebook 08), a **reward model** trained on
human comparisons of the SFT model's answers, and **reinforcement learning** (PPO) that makes the SFT
model write answers the reward model scores highly while a **KL penalty** keeps it near where it started.
Notebook 09 builds steps two and three on the course's chat model; notebook 10 replaces them with DPO.

**A known truth.** Real raters' taste cannot be written down, so nobody can say how much of a reward
model's score is the raters' wish and how much is its own error. Here the raters are replaced by a
hidden **true reward**, plain Python a learner can read (:func:`true_reward`), so every stage can be
scored against the thing the preferences stood for. The task is the ordering bot's first reply: the
customer orders a dish that is on the menu, with its size where it has two, and the bot confirms::

    Menu: ale little 2 great 3; lute 4; bread 1.      (system)
    Give me two great ales.                            (user)
    2 great ale.                                       (the right reply)

Sampled at temperature 1, the chat model often gets this wrong: it asks "Little or great?" when it was
told, says "Sorry, we have no lute." of a dish on the menu, or misspells a name it has never seen
("herr." for herring). The true reward scores a reply as *helpful* (quantity, size and dish right),
*honest* (it neither denies a dish the menu has nor names one it lacks) and *concise* (no more words than
the right reply).

**Preferences** (:func:`label_pairs`): two sampled replies to one prompt are compared by a noisy
Bradley–Terry draw from the true reward, ``P(a preferred) = sigmoid((R(a) - R(b)) / noise)``, like raters
who usually, not always, pick the better one. :func:`noise_ceiling` is the accuracy even a perfect
reward model cannot beat on such labels.

**The reward model** (:class:`RewardModel`): the chat model's Transformer with a scalar head reading the
last token of prompt + reply, trained with the Bradley–Terry loss (:func:`bradley_terry_loss`,
:func:`train_reward_model`).

**PPO** (:class:`PPOTrainer`), with the choices of the "N implementation details of RLHF with PPO":
replies sampled from the policy (:func:`sample_replies`), log-probabilities under the policy and the frozen
reference (:func:`token_logprobs`), a per-token reward ``-beta * (log pi - log pi_ref)`` with the reward
model's (normalised) score added at the last token (:func:`per_token_rewards`), a value head that starts
at zero (:class:`PolicyWithValue`), GAE with gamma = 1 (:func:`gae`), whitened advantages
(:func:`whiten`), the clipped surrogate and clipped value loss (:func:`ppo_losses`), several epochs over
each batch, and an adaptive KL coefficient as an option (:class:`AdaptiveKL`).

Sequences are batched **left-padded** (padding, then the prompt, then the reply, then padding after the
reply ends): every prompt ends at the same column, so one forward pass samples the next token of all of
them. Padding is masked out of attention (:func:`attention_mask`); with RoPE only relative positions
matter, so a padded row gives the same log-probabilities as the row alone (tested).
"""

from __future__ import annotations

import copy
import functools
import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.checks import (ArgumentError, check_bool, check_choice, check_int, check_number, check_optional,
                              fail)

__all__ = [
    "AdaptiveKL",
    "Batch",
    "OrderPrompt",
    "PPOConfig",
    "PPOTrainer",
    "PolicyWithValue",
    "Preference",
    "RewardModel",
    "attention_mask",
    "bradley_terry_loss",
    "check_same_model",
    "distinct_n",
    "gae",
    "kl_estimate",
    "encode_replies",
    "evaluate_policy",
    "label_pairs",
    "load_preferences",
    "load_sweep",
    "noise_ceiling",
    "order_prompts",
    "pair_accuracy",
    "per_token_rewards",
    "preference_prompts",
    "ppo_losses",
    "repeats",
    "reward_scores",
    "sample_replies",
    "token_logprobs",
    "train_reward_model",
    "true_reward",
    "true_reward_parts",
    "whiten",
]


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
# batches of prompt + reply, sampling and log-probabilities


def attention_mask(real: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool from ``real: (B, T)`` (True at a real token, False at padding): causal, and no
    query reads a padding key. A padding query reads only itself, so no row of the softmax is empty."""
    if not isinstance(real, torch.Tensor) or real.dtype != torch.bool or real.dim() != 2:
        raise fail("real", "a (batch, time) bool tensor", real)
    T = real.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=real.device).tril()
    eye = torch.eye(T, dtype=torch.bool, device=real.device)
    return (causal & real[:, None, :]) | eye


@dataclass
class Batch:
    """Prompts and replies, left-padded: ``ids (B, T)``; ``real (B, T)`` True at every real token;
    ``reply (B, T)`` True at the reply's tokens (its ``<|im_end|>`` included when written); every prompt
    ends at column ``prompt_len - 1``. ``texts`` are the decoded replies (without ``<|im_end|>``)."""

    ids: torch.Tensor
    real: torch.Tensor
    reply: torch.Tensor
    prompt_len: int
    texts: list = field(default_factory=list)
    prompts: list = field(default_factory=list)

    def last_index(self) -> torch.Tensor:
        """``(B,)`` the column of each row's last real token (where the reward model reads the score)."""
        cols = torch.arange(self.ids.shape[1], device=self.ids.device)
        return torch.where(self.real, cols, torch.full_like(cols, -1)).max(dim=1).values


def _prompt_ids(tokenizer, prompt) -> list[int]:
    from llmcourse import chat

    messages = prompt.messages if isinstance(prompt, OrderPrompt) else prompt
    return chat.render(tokenizer, list(messages), add_generation_prompt=True)[0]


def _end_id(tokenizer) -> int:
    from llmcourse import chat

    return chat._chat_ids(tokenizer)[chat.IM_END]


def _logits(model, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return model(ids, mask=attention_mask(real))[0]


@torch.no_grad()
def sample_replies(model, tokenizer, prompts, *, max_new_tokens: int = 12, temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> Batch:
    """Sample one reply per prompt from ``model`` in one batch: each step reads every row in one forward
    pass and draws the next token from ``softmax(logits / temperature)`` (``temperature = 0``: greedy)
    until the row writes ``<|im_end|>`` or ``max_new_tokens`` are written. ``prompts``: OrderPrompts or
    message lists. Returns a left-padded :class:`Batch`."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise fail("prompts", "a non-empty list of OrderPrompt (or message lists)", prompts)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=1)
    temperature = check_number("temperature", temperature, minimum=0.0)
    end = _end_id(tokenizer)
    encoded = [_prompt_ids(tokenizer, p) for p in prompts]
    P = max(map(len, encoded))
    context = getattr(model, "context_size", None)
    if context is not None and P + max_new_tokens > context:
        raise ArgumentError(f"prompts: the longest prompt ({P} tokens) plus max_new_tokens ({max_new_tokens}) "
                            f"is more than the model's context ({context})")
    device = next(model.parameters()).device
    B = len(encoded)
    ids = torch.zeros(B, P, dtype=torch.long, device=device)
    real = torch.zeros(B, P, dtype=torch.bool, device=device)
    for i, e in enumerate(encoded):
        ids[i, P - len(e):] = torch.tensor(e)
        real[i, P - len(e):] = True
    done = torch.zeros(B, dtype=torch.bool, device=device)
    cached = hasattr(model, "forward_cached")
    was_training = model.training
    model.eval()
    try:
        if cached:  # the prompts once, then one token per row a step, reading the kept keys and values
            cache = model.new_cache()
            logits = model.forward_cached(ids, cache, real)[:, -1]
        else:
            logits = _logits(model, ids, real)[:, -1]
        for _ in range(max_new_tokens):
            logits = logits.float()
            if temperature == 0:
                tok = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
            tok = torch.where(done, torch.zeros_like(tok), tok)
            ids = torch.cat([ids, tok[:, None]], dim=1)
            real = torch.cat([real, ~done[:, None]], dim=1)
            done = done | (tok == end)
            if bool(done.all()) or ids.shape[1] - P == max_new_tokens:
                break
            logits = model.forward_cached(tok[:, None], cache, real)[:, -1] if cached else _logits(model, ids, real)[:, -1]
    finally:
        model.train(was_training)
    reply = real.clone()
    reply[:, :P] = False
    texts = []
    for i in range(B):
        out = ids[i, P:][real[i, P:]].tolist()
        texts.append(tokenizer.decode(out[:-1] if out and out[-1] == end else out))
    return Batch(ids, real, reply, P, texts, list(prompts))


def encode_replies(tokenizer, prompts, replies: Sequence[str], device=None) -> Batch:
    """Given replies as a left-padded :class:`Batch` (prompt, the reply's tokens, ``<|im_end|>``), as the
    reward model and the log-probabilities read them."""
    from llmcourse import chat

    if isinstance(replies, (str, bytes)) or not isinstance(replies, Sequence) or len(replies) != len(prompts):
        raise ArgumentError(f"replies must be a list with one reply per prompt ({len(prompts)}); got {replies!r:.80}")
    end = _end_id(tokenizer)
    rows = []
    for p, r in zip(prompts, replies):
        if not isinstance(r, str):
            raise fail("replies", "a list of str", r)
        for special in chat.CHAT_TOKENS:          # a reply is text: markup in it is not the model's markup
            r = r.replace(special, " ")
        rows.append((_prompt_ids(tokenizer, p), [int(i) for i in tokenizer.encode(r.strip())] + [end]))
    P = max(len(p) for p, _ in rows)
    R = max(len(r) for _, r in rows)
    B = len(rows)
    ids = torch.zeros(B, P + R, dtype=torch.long)
    real = torch.zeros(B, P + R, dtype=torch.bool)
    for i, (p, r) in enumerate(rows):
        ids[i, P - len(p):P] = torch.tensor(p)
        ids[i, P:P + len(r)] = torch.tensor(r)
        real[i, P - len(p):P + len(r)] = True
    reply = real.clone()
    reply[:, :P] = False
    if device is not None:
        ids, real, reply = ids.to(device), real.to(device), reply.to(device)
    return Batch(ids, real, reply, P, list(replies), list(prompts))


def token_logprobs(model, batch: Batch, temperature: float = 1.0) -> torch.Tensor:
    """``(B, T - 1)``: entry ``t`` is ``log p(ids[t + 1] | ids[:t + 1])`` under ``model`` with its logits
    divided by ``temperature`` (gradients flow). Only entries where ``batch.reply[:, 1:]`` is True are used:
    the reply's tokens."""
    temperature = check_number("temperature", temperature, minimum=0.0, strict=True)
    logits = _logits(model, batch.ids, batch.real)[:, :-1].float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, batch.ids[:, 1:, None])[..., 0]


def kl_estimate(logp: torch.Tensor, logp_ref: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimates of KL(pi || pi_ref) from samples of pi (Schulman's note): ``"k1"`` is
    ``log pi - log pi_ref`` (unbiased, can be negative); ``"k3"`` is ``exp(d) - d - 1`` with
    ``d = log pi_ref - log pi`` (unbiased and never negative)."""
    kind = check_choice("kind", kind, ("k1", "k3"))
    if not isinstance(logp, torch.Tensor) or not isinstance(logp_ref, torch.Tensor) or logp.shape != logp_ref.shape:
        raise ArgumentError("logp and logp_ref must be tensors of one shape; got "
                            f"{getattr(logp, 'shape', type(logp))} and {getattr(logp_ref, 'shape', type(logp_ref))}")
    if kind == "k1":
        return logp - logp_ref
    d = logp_ref - logp
    return torch.expm1(d) - d


def check_same_model(policy, reference) -> None:
    """Refuse a reference that cannot be compared token by token with the policy: a different vocabulary
    or a different configuration."""
    for name, m in (("policy", policy), ("reference", reference)):
        if not isinstance(m, nn.Module) or not hasattr(m, "vocab_size"):
            raise fail(name, "a course language model", m)
    if policy.vocab_size != reference.vocab_size:
        raise ArgumentError(f"policy and reference must share a vocabulary; got vocab_size {policy.vocab_size} "
                            f"and {reference.vocab_size}")
    a, b = getattr(policy, "config", None), getattr(reference, "config", None)
    if a != b:
        raise ArgumentError(f"policy and reference must have the same configuration (the reference is the policy's "
                            f"starting point); got {a} and {b}")


# ----------------------------------------------------------------------------------------------------
# the reward model


class RewardModel(nn.Module):
    """A scalar score for prompt + reply: a Transformer's last hidden state at the last real token,
    through a linear head. ``forward(batch) -> (B,)``."""

    def __init__(self, base: nn.Module):
        super().__init__()
        if not hasattr(base, "hidden_states") or not hasattr(base, "config"):
            raise fail("base", "a TransformerLM (it reads the last hidden state)", base)
        self.body = copy.deepcopy(base)
        self.body.requires_grad_(True)           # trained whole, even if the model it copies was frozen
        self.body.head = nn.Identity()           # the LM head is not used; its weights are not trained
        self.score = nn.Linear(base.config.n_embd, 1)
        nn.init.normal_(self.score.weight, std=1 / math.sqrt(base.config.n_embd + 1))
        nn.init.zeros_(self.score.bias)

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.body.hidden_states(batch.ids, attention_mask(batch.real))
        last = batch.last_index()
        return self.score(h[torch.arange(len(last)), last])[:, 0]


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The mean of ``-log sigmoid(r_chosen - r_rejected)``: the negative log-likelihood of the labels
    under the Bradley–Terry model ``P(chosen preferred) = sigmoid(r_chosen - r_rejected)``."""
    if not isinstance(r_chosen, torch.Tensor) or not isinstance(r_rejected, torch.Tensor) \
            or r_chosen.shape != r_rejected.shape:
        raise ArgumentError("r_chosen and r_rejected must be tensors of one shape")
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def _pair_batches(tokenizer, preferences, device):
    prompts = [p.prompt for p in preferences]
    return (encode_replies(tokenizer, prompts, [p.chosen for p in preferences], device),
            encode_replies(tokenizer, prompts, [p.rejected for p in preferences], device))


def train_reward_model(reward_model: RewardModel, tokenizer, preferences, *, epochs: int = 2, batch_size: int = 32,
                       lr: float = 3e-4, seed: int = 0) -> list[float]:
    """Train with the Bradley–Terry loss (AdamW, clipped at 1): ``epochs`` passes over ``preferences`` in
    seeded random order. Returns the loss of every step."""
    if not isinstance(reward_model, RewardModel):
        raise fail("reward_model", "a RewardModel", reward_model)
    prefs = _check_preferences(preferences)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    seed = check_int("seed", seed, minimum=0)
    torch.manual_seed(seed)
    device = next(reward_model.parameters()).device
    opt = torch.optim.AdamW([p for p in reward_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    losses = []
    reward_model.train()
    for _ in range(epochs):
        order = rng.permutation(len(prefs))
        for start in range(0, len(order), batch_size):
            chosen, rejected = _pair_batches(tokenizer, [prefs[i] for i in order[start:start + batch_size]], device)
            loss = bradley_terry_loss(reward_model(chosen), reward_model(rejected))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reward_model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
    reward_model.eval()
    return losses


@torch.no_grad()
def reward_scores(reward_model: RewardModel, tokenizer, prompts, replies, batch_size: int = 64) -> np.ndarray:
    """The reward model's score of each reply to its prompt: ``(n,)`` float."""
    if not isinstance(reward_model, RewardModel):
        raise fail("reward_model", "a RewardModel", reward_model)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    device = next(reward_model.parameters()).device
    was = reward_model.training
    reward_model.eval()
    out = []
    for s in range(0, len(prompts), batch_size):
        out.append(reward_model(encode_replies(tokenizer, prompts[s:s + batch_size], replies[s:s + batch_size],
                                               device)).float().cpu())
    reward_model.train(was)
    return torch.cat(out).numpy()


def pair_accuracy(reward_model: RewardModel, tokenizer, preferences) -> float:
    """The share of pairs in which the reward model scores the chosen reply above the rejected one."""
    prefs = _check_preferences(preferences)
    prompts = [p.prompt for p in prefs]
    chosen = reward_scores(reward_model, tokenizer, prompts, [p.chosen for p in prefs])
    rejected = reward_scores(reward_model, tokenizer, prompts, [p.rejected for p in prefs])
    return float(np.mean(chosen > rejected))


# ----------------------------------------------------------------------------------------------------
# PPO: the pieces


def per_token_rewards(logp: torch.Tensor, logp_ref: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor,
                      beta: float) -> torch.Tensor:
    """``(B, R)``: ``-beta * (logp - logp_ref)`` at every reply token, plus ``scores (B,)`` at each row's
    last reply token (``mask (B, R)`` True at reply tokens; every row has at least one). Zero elsewhere."""
    beta = check_number("beta", beta, minimum=0.0)
    if not (logp.shape == logp_ref.shape == mask.shape) or scores.shape != logp.shape[:1]:
        raise ArgumentError(f"logp, logp_ref and mask must be (B, R) and scores (B,); got {tuple(logp.shape)}, "
                            f"{tuple(logp_ref.shape)}, {tuple(mask.shape)} and {tuple(scores.shape)}")
    if not bool(torch.isfinite(scores).all()):
        raise ArgumentError("scores must be finite; got NaN or infinity (check the reward model)")
    if not bool(mask.any(dim=1).all()):
        raise ArgumentError("mask: every row needs at least one reply token")
    rewards = torch.where(mask, -beta * (logp - logp_ref), torch.zeros_like(logp))
    last = torch.arange(mask.shape[1], device=mask.device).masked_fill(~mask, -1).max(dim=1).values
    rewards[torch.arange(len(last)), last] += scores
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each row's reply tokens: ``(advantages, returns)``, each
    ``(B, R)``, zero where ``mask`` is False.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (``V`` after the last token is 0), ``A_t = delta_t +
    gamma * lam * A_{t+1}``; ``returns = A + V``. The reply's tokens must come first in each row (the
    mask is a prefix), as they do after the prompt."""
    gamma = check_number("gamma", gamma, minimum=0.0, maximum=1.0)
    lam = check_number("lam", lam, minimum=0.0, maximum=1.0)
    if not (rewards.shape == values.shape == mask.shape) or rewards.dim() != 2:
        raise ArgumentError(f"rewards, values and mask must be one (B, R) shape; got {tuple(rewards.shape)}, "
                            f"{tuple(values.shape)} and {tuple(mask.shape)}")
    m = mask.to(rewards.dtype)
    R = rewards.shape[1]
    adv = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_adv = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(R)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv[:, t] = (delta + gamma * lam * next_adv) * m[:, t]
        next_value = values[:, t] * m[:, t]
        next_adv = adv[:, t]
    return adv, (adv + values) * m


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``x`` scaled to unit variance over the entries where ``mask`` is True (and moved to mean 0 unless
    ``shift_mean`` is False); entries outside the mask are 0."""
    m = mask.to(x.dtype)
    n = m.sum()
    if n < 2:
        raise ArgumentError("mask must select at least two entries to whiten")
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / (n - 1)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * m


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1)


def ppo_losses(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
               old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float = 0.2,
               value_clip: float = 0.2) -> dict:
    """PPO's losses, averaged over the reply tokens (``mask``):

    - policy: ``max(-A * ratio, -A * clip(ratio, 1 - clip, 1 + clip))`` with ``ratio = exp(logp - old_logp)``;
    - value: ``0.5 * max((V - G)^2, (V_clipped - G)^2)``, ``V_clipped = old_V + clip(V - old_V, ±value_clip)``.

    Returns ``policy``, ``value`` (tensors with gradients), ``clip_fraction`` and ``approx_kl`` (floats)."""
    clip = check_number("clip", clip, minimum=0.0, strict=True)
    value_clip = check_number("value_clip", value_clip, minimum=0.0, strict=True)
    ratio = torch.exp(logp - old_logp)
    pg = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip))
    v_clipped = old_values + (values - old_values).clamp(-value_clip, value_clip)
    vf = 0.5 * torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2)
    with torch.no_grad():
        clipped = ((ratio - 1).abs() > clip).float()
        approx_kl = 0.5 * (logp - old_logp) ** 2
    return {"policy": _masked_mean(pg, mask), "value": _masked_mean(vf, mask),
            "clip_fraction": float(_masked_mean(clipped, mask)), "approx_kl": float(_masked_mean(approx_kl, mask))}


class AdaptiveKL:
    """The KL coefficient of Ziegler et al. (2019): after each batch, ``err = clip(KL / target - 1,
    -0.2, 0.2)`` and ``beta <- beta * (1 + err * n / horizon)``: beta grows while the policy is further
    from the reference than ``target`` nats and shrinks while it is nearer."""

    def __init__(self, beta: float, target: float, horizon: int = 10_000):
        self.beta = check_number("beta", beta, minimum=0.0, strict=True)
        self.target = check_number("target", target, minimum=0.0, strict=True)
        self.horizon = check_int("horizon", horizon, minimum=1)

    def update(self, kl: float, n: int) -> float:
        if not math.isfinite(kl):
            raise fail("kl", "a finite number", kl)
        err = min(max(kl / self.target - 1, -0.2), 0.2)
        self.beta *= 1 + err * check_int("n", n, minimum=1) / self.horizon
        return self.beta


class PolicyWithValue(nn.Module):
    """The policy (a copy of the language model) and a value head on the same hidden states, started at
    zero so that it first predicts 0 everywhere. ``forward(batch) -> (logp (B, T-1), values (B, T-1))``:
    ``values[:, t]`` is the value of the state before token ``t + 1`` is written (aligned with ``logp``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not hasattr(model, "hidden_states") or not hasattr(model, "config"):
            raise fail("model", "a TransformerLM", model)
        self.lm = copy.deepcopy(model)
        self.lm.requires_grad_(True)             # trained whole, even if the model it copies was frozen
        self.value_head = nn.Linear(model.config.n_embd, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, batch: Batch, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.lm.hidden_states(batch.ids, attention_mask(batch.real))[:, :-1]
        logits = self.lm.head(h).float() / temperature
        logp = torch.log_softmax(logits, dim=-1).gather(-1, batch.ids[:, 1:, None])[..., 0]
        return logp, self.value_head(h)[..., 0].float()


# ----------------------------------------------------------------------------------------------------
# PPO: the loop


@dataclass
class PPOConfig:
    """PPO's settings (defaults after TRL's, scaled to the tiny model): ``beta`` the KL coefficient
    (``kl_target`` set: adaptive, starting at ``beta``), ``batch_size`` prompts sampled per iteration,
    ``epochs`` passes over each batch in ``minibatch_size`` pieces, the clip ranges, ``vf_coef`` the weight
    of the value loss, ``lr`` AdamW's, ``temperature`` and ``max_new_tokens`` for sampling."""

    beta: float = 0.1
    kl_target: float | None = None
    kl_horizon: int = 10_000
    batch_size: int = 64
    minibatch_size: int = 32
    epochs: int = 4
    clip: float = 0.2
    value_clip: float = 0.2
    vf_coef: float = 0.1
    gamma: float = 1.0
    lam: float = 0.95
    lr: float = 3e-5
    temperature: float = 1.0
    max_new_tokens: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        self.beta = check_number("beta", self.beta, minimum=0.0)
        self.kl_target = check_optional(check_number, "kl_target", self.kl_target, minimum=0.0, strict=True)
        if self.kl_target is not None and self.beta == 0:
            raise ArgumentError("beta must be > 0 when kl_target is set (an adaptive coefficient scales beta)")
        self.kl_horizon = check_int("kl_horizon", self.kl_horizon, minimum=1)
        self.batch_size = check_int("batch_size", self.batch_size, minimum=2)
        self.minibatch_size = check_int("minibatch_size", self.minibatch_size, minimum=1, maximum=self.batch_size)
        self.epochs = check_int("epochs", self.epochs, minimum=1)
        self.clip = check_number("clip", self.clip, minimum=0.0, strict=True)
        self.value_clip = check_number("value_clip", self.value_clip, minimum=0.0, strict=True)
        self.vf_coef = check_number("vf_coef", self.vf_coef, minimum=0.0)
        self.gamma = check_number("gamma", self.gamma, minimum=0.0, maximum=1.0)
        self.lam = check_number("lam", self.lam, minimum=0.0, maximum=1.0)
        self.lr = check_number("lr", self.lr, minimum=0.0, strict=True)
        self.temperature = check_number("temperature", self.temperature, minimum=0.0, strict=True)
        self.max_new_tokens = check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        self.seed = check_int("seed", self.seed, minimum=0)


def _rows(batch: Batch, index) -> Batch:
    return Batch(batch.ids[index], batch.real[index], batch.reply[index], batch.prompt_len,
                 [batch.texts[i] for i in index.tolist()], [batch.prompts[i] for i in index.tolist()])


class PPOTrainer:
    """PPO with a per-token KL penalty, one :meth:`step` per batch of prompts.

    ``policy`` starts as a copy of ``reference`` (the SFT model, frozen); ``reward`` scores a
    :class:`Batch` (a :class:`RewardModel`, or any function returning ``(B,)`` scores), normalised with
    ``reward_mean`` and ``reward_std`` (measure them on the reference's samples: the reward of an SFT
    reply is then 0 on average, in units of its spread). ``prompts`` is the pool each batch is drawn from.
    Every step is seeded: two trainers made alike give identical runs on one machine.
    """

    def __init__(self, reference: nn.Module, tokenizer, reward, prompts: Sequence[OrderPrompt],
                 config: PPOConfig | None = None, *, reward_mean: float = 0.0, reward_std: float = 1.0,
                 true_reward_fn: Callable[[OrderPrompt, str], float] | None = true_reward):
        self.config = PPOConfig() if config is None else config
        if not isinstance(self.config, PPOConfig):
            raise fail("config", "a PPOConfig", config)
        if not callable(reward):
            raise fail("reward", "a RewardModel or a function from a Batch to (B,) scores", reward)
        if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
            raise fail("prompts", "a non-empty list of OrderPrompt", prompts)
        self.reward_mean = check_number("reward_mean", reward_mean)
        self.reward_std = check_number("reward_std", reward_std, minimum=0.0, strict=True)
        torch.manual_seed(self.config.seed)
        self.model = PolicyWithValue(reference)
        self.reference = reference.eval()        # read under no_grad only: never trained, never changed
        check_same_model(self.model.lm, self.reference)
        self.tokenizer, self.reward, self.prompts = tokenizer, reward, list(prompts)
        self.true_reward_fn = true_reward_fn
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr, weight_decay=0.0, eps=1e-5)
        self.kl = AdaptiveKL(self.config.beta, self.config.kl_target, self.config.kl_horizon) \
            if self.config.kl_target is not None else None
        self.beta = self.config.beta
        self.rng = np.random.default_rng(self.config.seed)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.history: list[dict] = []

    @property
    def policy(self) -> nn.Module:
        """The language model being trained."""
        return self.model.lm

    @torch.no_grad()
    def _score(self, batch: Batch) -> torch.Tensor:
        raw = self.reward(batch)
        raw = torch.as_tensor(raw, dtype=torch.float32).reshape(-1)
        if raw.shape[0] != batch.ids.shape[0] or not bool(torch.isfinite(raw).all()):
            raise ArgumentError(f"reward must give one finite score per reply ({batch.ids.shape[0]}); got {raw}")
        return (raw - self.reward_mean) / self.reward_std

    def step(self) -> dict:
        """Sample a batch, score it, and take ``epochs`` of PPO updates on it. Returns the step's figures:
        ``score`` (the normalised reward-model score), ``true_reward``, ``kl`` (summed over a reply's tokens,
        mean over replies), ``beta``, ``length`` (reply tokens), ``entropy`` (nats per token, of the
        sampling distribution), ``clip_fraction``, ``value_loss``, ``seconds``, and one ``sample`` reply."""
        c = self.config
        t0 = time.perf_counter()
        index = self.rng.choice(len(self.prompts), size=c.batch_size, replace=False)
        prompts = [self.prompts[i] for i in index]
        self.model.eval()
        batch = sample_replies(self.policy, self.tokenizer, prompts, max_new_tokens=c.max_new_tokens,
                               temperature=c.temperature, generator=self.generator)
        mask = batch.reply[:, 1:]
        with torch.no_grad():
            scores = self._score(batch)
            # log-probabilities of the distribution the replies were drawn from (logits / temperature)
            old_logp, old_values = self.model(batch, c.temperature)
            ref_logp = token_logprobs(self.reference, batch, c.temperature)
            rewards = per_token_rewards(old_logp, ref_logp, scores, mask, self.beta)
            adv, returns = gae(rewards, old_values * mask, mask, c.gamma, c.lam)
            adv = whiten(adv, mask)
            kl_seq = (kl_estimate(old_logp, ref_logp) * mask).sum(1)
        stats = {"clip_fraction": [], "value_loss": [], "approx_kl": []}
        self.model.train()
        for _ in range(c.epochs):
            order = torch.as_tensor(self.rng.permutation(c.batch_size))
            for s in range(0, c.batch_size, c.minibatch_size):
                idx = order[s:s + c.minibatch_size]
                mb = _rows(batch, idx)
                logp, values = self.model(mb, c.temperature)
                losses = ppo_losses(logp, old_logp[idx], adv[idx], values, old_values[idx], returns[idx], mask[idx],
                                    c.clip, c.value_clip)
                loss = losses["policy"] + c.vf_coef * losses["value"]
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                for k in stats:
                    stats[k].append(float(losses["value"].detach()) if k == "value_loss" else losses[k])
        self.model.eval()
        kl = float(kl_seq.mean())
        beta_used = self.beta
        if self.kl is not None:
            self.beta = self.kl.update(kl, c.batch_size)
        true = [self.true_reward_fn(p, t) for p, t in zip(prompts, batch.texts)] if self.true_reward_fn else [math.nan]
        out = {"step": len(self.history) + 1, "score": float(scores.mean()), "true_reward": float(np.mean(true)),
               "kl": kl, "beta": beta_used, "length": float(mask.sum(1).float().mean()),
               "clip_fraction": float(np.mean(stats["clip_fraction"])), "value_loss": float(np.mean(stats["value_loss"])),
               "approx_kl": float(np.mean(stats["approx_kl"])), "seconds": time.perf_counter() - t0,
               "sample": batch.texts[0]}
        self.history.append(out)
        return out

    def train(self, steps: int, callback: Callable[[dict], None] | None = None) -> list[dict]:
        """Take ``steps`` PPO steps; ``callback(figures)`` after each (a live plot, a progress bar)."""
        steps = check_int("steps", steps, minimum=1)
        for _ in range(steps):
            out = self.step()
            if callback is not None:
                callback(out)
        return self.history


# ----------------------------------------------------------------------------------------------------
# measuring a policy


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct word n-grams over all n-grams in ``texts`` (1 = no n-gram repeats; low = repetitive)."""
    n = check_int("n", n, minimum=1)
    grams = [tuple(w[i:i + n]) for t in texts for w in [t.split()] for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeats(text: str) -> bool:
    """Whether ``text`` says some word twice (a right confirmation never does: "2 great ale.")."""
    words = re.findall(r"[a-z]+|\d+", text.lower())
    return len(set(words)) < len(words)


@torch.no_grad()
def evaluate_policy(policy, reference, tokenizer, prompts, *, reward_model=None, reward_mean: float = 0.0,
                    reward_std: float = 1.0, samples: int = 1, temperature: float = 1.0, max_new_tokens: int = 12,
                    seed: int = 0, batch_size: int = 128) -> dict:
    """Sample ``samples`` replies per prompt and measure: ``true_reward`` (mean) and its parts,
    ``exact`` (the share equal to the right reply), ``kl`` (KL(policy || reference) per reply, the mean
    of the summed k1 estimate), ``score`` (the reward model's normalised score, if given), ``length`` in
    words, ``distinct_1``/``distinct_2`` across replies, ``repeated`` (the share of replies that say a word
    twice: :func:`repeats`), and ``replies``."""
    check_same_model(policy, reference)
    samples = check_int("samples", samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    ps = [p for p in prompts for _ in range(samples)]
    texts, kls, scores = [], [], []
    for s in range(0, len(ps), batch_size):
        chunk = ps[s:s + batch_size]
        batch = sample_replies(policy, tokenizer, chunk, max_new_tokens=max_new_tokens, temperature=temperature,
                               generator=gen)
        mask = batch.reply[:, 1:]
        kls.append((kl_estimate(token_logprobs(policy, batch), token_logprobs(reference, batch)) * mask).sum(1))
        texts += batch.texts
        if reward_model is not None:
            scores.append((reward_model(batch) - reward_mean) / reward_std)
    parts = [true_reward_parts(p, t) for p, t in zip(ps, texts)]
    out = {k: float(np.mean([q[k] for q in parts])) for k in ("total", "helpful", "honest", "concise")}
    out = {"true_reward": out.pop("total"), **out,
           "exact": float(np.mean([t.strip() == p.gold for p, t in zip(ps, texts)])),
           "kl": float(torch.cat(kls).mean()),
           "score": float(torch.cat(scores).mean()) if scores else None,
           "length": float(np.mean([len(t.split()) for t in texts])),
           "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
           "repeated": float(np.mean([repeats(t) for t in texts])), "replies": texts}
    return out


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
