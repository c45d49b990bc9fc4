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

**DPO** (:func:`train_dpo`): the same KL-regularised objective without a reward model or sampling. Its
optimum has a closed form (:func:`rlhf_optimum`, with the partition function that a language model cannot
compute), which cancels in a comparison of two replies, so the policy is fitted to the pairs directly
(:func:`dpo_loss`, with IPO and conservative DPO; :func:`sequence_logprobs`, :func:`implicit_reward`).

The package, one idea per module; each imports only the ones above it, and everything public is importable
from ``llmcourse.alignment`` itself:

====================  ============================================================================
``preferences``       the task and its true reward, noisy Bradley–Terry labels, the committed results
``sequences``         left-padded batches, sampling, log-probabilities, KL estimates, measuring a policy
``reward_model``      :class:`RewardModel`, the Bradley–Terry loss and its training
``ppo``               per-token rewards, GAE, whitening, the clipped losses, :class:`PPOTrainer`
``dpo``               the closed-form optimum, the DPO / IPO loss, :func:`train_dpo`
====================  ============================================================================
"""

from __future__ import annotations

from llmcourse.alignment.preferences import (OrderPrompt, Preference, label_pairs, load_dpo_sweep,
                                             load_preferences, load_sweep, noise_ceiling, order_prompts,
                                             preference_prompts, true_reward, true_reward_parts)
from llmcourse.alignment.sequences import (Batch, attention_mask, check_same_model, distinct_n, encode_replies,
                                           evaluate_policy, kl_estimate, repeats, sample_replies, sequence_logprobs,
                                           token_logprobs)
from llmcourse.alignment.reward_model import (RewardModel, bradley_terry_loss, pair_accuracy, reward_scores,
                                              train_reward_model)
from llmcourse.alignment.ppo import (AdaptiveKL, PolicyWithValue, PPOConfig, PPOTrainer, gae, per_token_rewards,
                                     ppo_losses, whiten)
from llmcourse.alignment.dpo import dpo_loss, implicit_reward, preference_logprobs, rlhf_optimum, train_dpo

__all__ = [
    "AdaptiveKL", "Batch", "OrderPrompt", "PPOConfig", "PPOTrainer", "PolicyWithValue", "Preference", "RewardModel",
    "attention_mask", "bradley_terry_loss", "check_same_model", "distinct_n", "dpo_loss", "encode_replies",
    "evaluate_policy", "gae", "implicit_reward", "kl_estimate", "label_pairs", "load_dpo_sweep", "load_preferences",
    "load_sweep", "noise_ceiling", "order_prompts", "pair_accuracy", "per_token_rewards", "ppo_losses",
    "preference_logprobs", "preference_prompts", "repeats", "reward_scores", "rlhf_optimum", "sample_replies",
    "sequence_logprobs", "token_logprobs", "train_dpo", "train_reward_model", "true_reward", "true_reward_parts",
    "whiten",
]
