"""PPO with a per-token KL penalty: the pieces and the loop (see :mod:`llmcourse.alignment`)."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from llmcourse.alignment.preferences import OrderPrompt, true_reward
from llmcourse.alignment.sequences import (Batch, attention_mask, check_same_model, kl_estimate, sample_replies,
                                           token_logprobs)
from llmcourse.checks import ArgumentError, check_int, check_number, check_optional, fail


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
        mean over replies), ``beta`` (the coefficient this step used), ``length`` (reply tokens),
        ``clip_fraction``, ``value_loss`` and ``approx_kl`` (means over the updates), ``seconds``, and one
        ``sample`` reply."""
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
        clip_fractions, value_losses, approx_kls = [], [], []
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
                clip_fractions.append(losses["clip_fraction"])
                value_losses.append(float(losses["value"].detach()))
                approx_kls.append(losses["approx_kl"])
        self.model.eval()
        kl = float(kl_seq.mean())
        beta_used = self.beta
        if self.kl is not None:
            self.beta = self.kl.update(kl, c.batch_size)
        true = [self.true_reward_fn(p, t) for p, t in zip(prompts, batch.texts)] if self.true_reward_fn else [math.nan]
        out = {"step": len(self.history) + 1, "score": float(scores.mean()), "true_reward": float(np.mean(true)),
               "kl": kl, "beta": beta_used, "length": float(mask.sum(1).float().mean()),
               "clip_fraction": float(np.mean(clip_fractions)), "value_loss": float(np.mean(value_losses)),
               "approx_kl": float(np.mean(approx_kls)), "seconds": time.perf_counter() - t0,
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
