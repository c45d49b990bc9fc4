"""Prompts and replies in batches: sampling, log-probabilities, KL estimates, and measuring a policy
(see :mod:`llmcourse.alignment`).

Sequences are batched **left-padded** (padding, then the prompt, then the reply, then padding after the
reply ends): every prompt ends at the same column, so one forward pass samples the next token of all of
them. Padding is masked out of attention (:func:`attention_mask`); with RoPE only relative positions
matter, so a padded row gives the same log-probabilities as the row alone (tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from llmcourse.alignment.preferences import OrderPrompt, true_reward_parts
from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, fail
from llmcourse.generation import attention_mask, generate_batch


# ----------------------------------------------------------------------------------------------------
# batches of prompt + reply, sampling and log-probabilities


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
    end = _end_id(tokenizer)
    ids, real, P = generate_batch(model, [_prompt_ids(tokenizer, p) for p in prompts], max_new_tokens,
                                  temperature=temperature, stop_id=end, generator=generator)
    reply = real.clone()
    reply[:, :P] = False
    texts = []
    for i in range(len(prompts)):
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


def sequence_logprobs(model, batch: Batch) -> torch.Tensor:
    """``(B,)``: ``log pi(reply | prompt)`` under ``model``, the sum of the log-probabilities of the reply's
    tokens (its ``<|im_end|>`` included); the prompt and the padding are masked out (gradients flow)."""
    if not isinstance(batch, Batch):
        raise fail("batch", "a Batch (from alignment.encode_replies or sample_replies)", batch)
    lp = token_logprobs(model, batch)
    return (lp * batch.reply[:, 1:]).sum(dim=1)


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


def _pair_batches(tokenizer, preferences, device):
    prompts = [p.prompt for p in preferences]
    return (encode_replies(tokenizer, prompts, [p.chosen for p in preferences], device),
            encode_replies(tokenizer, prompts, [p.rejected for p in preferences], device))


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
