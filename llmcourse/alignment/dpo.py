"""DPO: the same preferences without a reward model or sampling, and the closed form it stands on (see
:mod:`llmcourse.alignment`)."""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.alignment.preferences import _check_preferences
from llmcourse.alignment.sequences import _pair_batches, sequence_logprobs
from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, fail


# ----------------------------------------------------------------------------------------------------
# DPO: the same preferences without a reward model or sampling


def _check_loss_settings(beta, kind, label_smoothing) -> tuple[float, str, float]:
    beta = check_number("beta", beta, minimum=0.0, strict=True)
    kind = check_choice("kind", kind, ("dpo", "ipo"))
    label_smoothing = check_number("label_smoothing", label_smoothing, minimum=0.0, maximum=0.5)
    if kind == "ipo" and label_smoothing:
        raise ArgumentError("label_smoothing is for kind='dpo' (conservative DPO); IPO has no labels to smooth")
    return beta, kind, label_smoothing


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1, kind: str = "dpo",
             label_smoothing: float = 0.0) -> torch.Tensor:
    """The mean preference loss over pairs, from sequence log-probabilities ``(B,)`` of the chosen and the
    rejected reply under the policy and the reference. With ``z = (log pi_c - log ref_c) - (log pi_r -
    log ref_r)``, the margin of the log-ratios:

    - ``"dpo"`` (Rafailov et al. 2023): ``-log sigmoid(beta * z)``; with ``label_smoothing = eps > 0``,
      conservative DPO: ``-(1 - eps) log sigmoid(beta z) - eps log sigmoid(-beta z)`` (labels flipped with
      probability eps);
    - ``"ipo"`` (Azar et al. 2023): ``(z - 1 / (2 beta))^2``, which stops pushing once the margin reaches
      ``1 / (2 beta)``.

    When the policy is the reference, z = 0 and the DPO loss is ln 2."""
    beta, kind, label_smoothing = _check_loss_settings(beta, kind, label_smoothing)
    parts = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if not all(isinstance(t, torch.Tensor) for t in parts) or len({tuple(t.shape) for t in parts}) != 1:
        raise ArgumentError("policy_chosen, policy_rejected, ref_chosen and ref_rejected must be tensors of one "
                            f"shape; got {[tuple(getattr(t, 'shape', ())) for t in parts]}")
    z = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    if kind == "ipo":
        return ((z - 1 / (2 * beta)) ** 2).mean()
    return (-(1 - label_smoothing) * F.logsigmoid(beta * z) - label_smoothing * F.logsigmoid(-beta * z)).mean()


def implicit_reward(policy_logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward of a reply, ``beta * (log pi(y|x) - log pi_ref(y|x))``: the reward for which the
    policy would be the optimum of the KL-regularised objective (up to a constant per prompt)."""
    beta = check_number("beta", beta, minimum=0.0, strict=True)
    return beta * (policy_logp - ref_logp)


@torch.no_grad()
def preference_logprobs(model, tokenizer, preferences, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(chosen, rejected)``: the sequence log-probabilities ``(n,)`` of every pair's two replies under
    ``model`` (for the reference: computed once, before training)."""
    prefs = _check_preferences(preferences)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    chosen, rejected = [], []
    for s in range(0, len(prefs), batch_size):
        c, r = _pair_batches(tokenizer, prefs[s:s + batch_size], device)
        chosen.append(sequence_logprobs(model, c).float().cpu())
        rejected.append(sequence_logprobs(model, r).float().cpu())
    model.train(was)
    return torch.cat(chosen), torch.cat(rejected)


def train_dpo(reference: nn.Module, tokenizer, preferences, *, beta: float = 0.1, kind: str = "dpo",
              label_smoothing: float = 0.0, epochs: int = 1, batch_size: int = 32, lr: float = 1e-4, seed: int = 0,
              callback: Callable[[dict], None] | None = None,
              on_epoch_end: Callable[[int, nn.Module], None] | None = None) -> tuple[nn.Module, list[dict]]:
    """DPO (or IPO, conservative DPO) from ``reference`` (the SFT model, not changed) on ``preferences``:
    a copy of the reference trained with :func:`dpo_loss` by AdamW (clipped at 1), ``epochs`` passes in
    seeded random order. The reference's log-probabilities are computed once, before training, so the
    reference need not stay in memory while the policy trains. Returns ``(policy, history)``: one dict per
    step with the ``loss``, the batch ``accuracy`` (share of pairs with a positive margin), the mean
    ``margin`` z, the policy's mean ``chosen_logp`` and ``rejected_logp`` and their changes from the
    reference (``chosen_shift``, ``rejected_shift``), and ``epoch``; ``callback(row)`` after each step and
    ``on_epoch_end(epoch, policy)`` after each epoch (to measure the policy; it is put back in training mode
    afterwards)."""
    if not isinstance(reference, nn.Module) or not hasattr(reference, "vocab_size"):
        raise fail("reference", "a course language model (the SFT model)", reference)
    prefs = _check_preferences(preferences)
    beta, kind, label_smoothing = _check_loss_settings(beta, kind, label_smoothing)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    seed = check_int("seed", seed, minimum=0)
    ref_c, ref_r = preference_logprobs(reference, tokenizer, prefs)
    torch.manual_seed(seed)
    policy = copy.deepcopy(reference).requires_grad_(True)
    device = next(policy.parameters()).device
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    history = []
    policy.train()
    for epoch in range(epochs):
        order = rng.permutation(len(prefs))
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            c, r = _pair_batches(tokenizer, [prefs[i] for i in idx], device)
            pc, pr = sequence_logprobs(policy, c), sequence_logprobs(policy, r)
            rc, rr = ref_c[idx].to(device), ref_r[idx].to(device)
            loss = dpo_loss(pc, pr, rc, rr, beta, kind, label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                z = (pc - rc) - (pr - rr)
                row = {"step": len(history) + 1, "epoch": epoch + 1, "loss": float(loss.detach()),
                       "accuracy": float((z > 0).float().mean()), "margin": float(z.mean()),
                       "chosen_logp": float(pc.mean()), "rejected_logp": float(pr.mean()),
                       "chosen_shift": float((pc - rc).mean()), "rejected_shift": float((pr - rr).mean())}
            history.append(row)
            if callback is not None:
                callback(row)
        if on_epoch_end is not None:
            policy.eval()
            on_epoch_end(epoch + 1, policy)
            policy.train()
    policy.eval()
    return policy, history


def rlhf_optimum(ref_probs, rewards, beta: float) -> torch.Tensor:
    """The policy that maximises ``E_pi[r] - beta * KL(pi || pi_ref)`` over a finite set of replies:
    ``pi*(y) = pi_ref(y) exp(r(y) / beta) / Z`` with ``Z = sum_y pi_ref(y) exp(r(y) / beta)`` (the
    partition function). ``ref_probs`` and ``rewards``: ``(K,)``; returns ``(K,)`` probabilities."""
    beta = check_number("beta", beta, minimum=0.0, strict=True)
    ref = torch.as_tensor(ref_probs, dtype=torch.float64)
    r = torch.as_tensor(rewards, dtype=torch.float64)
    if ref.dim() != 1 or ref.shape != r.shape or not bool((ref > 0).all()) or abs(float(ref.sum()) - 1) > 1e-6:
        raise ArgumentError("ref_probs must be a (K,) vector of probabilities > 0 summing to 1 and rewards (K,) "
                            f"numbers; got shapes {tuple(ref.shape)} and {tuple(r.shape)}")
    return torch.softmax(ref.log() + r / beta, dim=0)
