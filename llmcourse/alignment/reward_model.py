"""The reward model: a scalar head on the Transformer, trained with the Bradley–Terry loss (see
:mod:`llmcourse.alignment`)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.alignment.preferences import _check_preferences
from llmcourse.alignment.sequences import Batch, _pair_batches, attention_mask, encode_replies
from llmcourse.checks import ArgumentError, check_int, check_number, fail


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
