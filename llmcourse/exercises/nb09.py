"""Checkers for notebook 09 (RLHF: preferences, a reward model, PPO with a KL penalty)."""

import math

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice


def _close(tol=1e-6):
    def same(got, want):
        try:
            got_list = [float(x) for x in got] if isinstance(want, list) else float(got)
        except (TypeError, ValueError):
            raise Incorrect(f"Expected {'a list of numbers' if isinstance(want, list) else 'a number'}, "
                            f"got {type(got).__name__}.") from None
        if isinstance(want, list):
            return len(got_list) == len(want) and all(abs(a - b) <= tol for a, b in zip(got_list, want))
        return abs(got_list - want) <= tol
    return same


@exercise(
    "09.1",
    "Write bt_probability(r_a, r_b, noise): the probability that a labeller who follows the Bradley-Terry "
    "model with this noise prefers reply a, whose true reward is r_a, to reply b.",
    hints=[
        "The probability depends only on the difference r_a - r_b, scaled by the noise: larger noise, closer "
        "to a coin flip.",
        "1 / (1 + math.exp(-(r_a - r_b) / noise))",
    ],
)
def _bt(fn):
    cases = [((r_a, r_b, n), 1 / (1 + math.exp(-(r_a - r_b) / n)))
             for r_a, r_b, n in ((1.0, 0.0, 0.2), (0.0, 1.0, 0.2), (0.5, 0.5, 0.3), (2 / 3, 1.0, 1.0), (1.0, -0.5, 2.0))]

    def same(got, want):
        if isinstance(got, (int, float)) and abs(float(got) - (1 - want)) < 1e-9 and abs(want - 0.5) > 1e-6:
            raise Incorrect("That is the probability of preferring b: swap the sign of the difference.")
        return _close()(got, want)

    check_function(fn, cases, name="bt_probability", close=same)
    return "That is how alignment.label_pairs draws each label, and the model the reward model is fit to."


@exercise(
    "09.2",
    "Write advantages(rewards, values, gamma, lam) for one reply: lists of per-token rewards and values of "
    "equal length; return the GAE advantages (the value after the last token is 0).",
    hints=[
        "Go backwards: delta_t = rewards[t] + gamma * V[t+1] - V[t], with V after the last token 0.",
        "A_t = delta_t + gamma * lam * A_{t+1}, and A after the last token is 0.",
    ],
)
def _gae(fn):
    import torch

    from llmcourse.alignment import gae

    cases = []
    for rewards, values, g, lam in (([0.0, 0.0, 1.0], [0.1, 0.2, 0.3], 1.0, 0.95),
                                    ([0.5, -0.2, 0.0, 2.0], [0.0, 0.4, -0.1, 0.9], 1.0, 0.5),
                                    ([1.0, 1.0], [0.5, 0.5], 0.9, 1.0),
                                    ([0.3], [0.7], 1.0, 0.95)):
        r, v = torch.tensor([rewards]), torch.tensor([values])
        adv, _ = gae(r, v, torch.ones_like(r, dtype=torch.bool), g, lam)
        cases.append(((rewards, values, g, lam), [float(x) for x in adv[0]]))
    check_function(fn, cases, name="advantages", close=_close(1e-5))
    return "Those are alignment.gae's advantages; with lam = 1 they are the return still to come minus the value."


@exercise(
    "09.3",
    "Write clipped_loss(ratio, advantage, clip=0.2): PPO's loss for one token, where ratio = pi_new / pi_old "
    "of the token and advantage its advantage.",
    hints=[
        "The unclipped term is -advantage * ratio; the clipped one uses the ratio clamped to [1 - clip, 1 + clip].",
        "Take the larger of the two losses (the pessimistic one): max(-A * r, -A * clamp(r)).",
    ],
)
def _clipped(fn):
    cases = [((r, a, c), max(-a * r, -a * min(max(r, 1 - c), 1 + c)))
             for r, a, c in ((1.0, 2.0, 0.2), (1.5, 1.0, 0.2), (1.5, -1.0, 0.2), (0.5, 1.0, 0.2), (0.5, -1.0, 0.2),
                             (1.1, 3.0, 0.2), (1.3, 1.0, 0.1))]

    def same(got, want):
        return _close()(got, want)

    try:
        optimistic = float(fn(1.5, -1.0, 0.2))
    except Exception:  # check_function reports errors with the call
        optimistic = None
    if optimistic is not None and abs(optimistic - 1.2) < 1e-9:
        raise Incorrect("clipped_loss(1.5, -1.0, 0.2) gave 1.2: with a negative advantage the clip must not cap "
                        "the penalty. Take the larger loss, max(-A * r, -A * clamp(r)), not the clipped one always.")
    check_function(fn, cases, name="clipped_loss", close=same)
    return "That is alignment.ppo_losses' policy term: gains are capped once the ratio leaves [0.8, 1.2], losses never."


@exercise(
    "09.4",
    "A PPO run's reward-model score keeps rising while the true reward falls and the replies grow strange. "
    "What do you try first? Answer 'a', 'b' or 'c'.",
    hints=["Which knob keeps the policy near the model the reward model was trained on?"],
)
def _hacking(answer):
    expect_choice(
        answer, "b", ["a", "b", "c"],
        explain={"a": "With beta = 0 nothing holds the policy near the SFT model: it moves further into replies "
                      "the reward model never saw, which is where its errors are.",
                 "c": "More epochs per batch move the policy further per batch: the same drift, sooner."},
    )
    return ("The KL penalty (or stopping early) keeps the policy where the reward model is right; fresh labels on "
            "the policy's own replies fix the reward model where it is wrong (InstructGPT retrained it).")
