"""Checkers for notebook 10 (DPO)."""

import math

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


def _dpo(pi_w, pi_l, ref_w, ref_l, beta):
    z = beta * ((pi_w - ref_w) - (pi_l - ref_l))
    return math.log1p(math.exp(-z)) if z > -30 else -z   # -log sigmoid(z)


@exercise(
    "10.1",
    "Write dpo_loss(pi_w, pi_l, ref_w, ref_l, beta) for one pair of sequence log-probabilities (numbers).",
    hints=[
        "The margin is (pi_w - ref_w) - (pi_l - ref_l): how much more the policy raised the chosen reply's "
        "log-probability than the rejected one's, relative to the reference.",
        "-math.log(1 / (1 + math.exp(-beta * margin)))",
    ],
)
def _dpo_loss(fn):
    cases = [((pw, pl, rw, rl, b), _dpo(pw, pl, rw, rl, b))
             for pw, pl, rw, rl, b in ((-1.0, -2.0, -1.5, -1.5, 0.5), (-3.0, -3.0, -3.0, -3.0, 0.1),
                                       (-2.0, -1.0, -2.0, -2.0, 0.1), (-5.0, -9.0, -6.0, -6.0, 1.0))]

    def same(got, want):
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Incorrect(f"dpo_loss should return a number, got {type(got).__name__}.") from None
        return abs(got - want) < 1e-6

    try:
        start = float(fn(-3.0, -3.0, -3.0, -3.0, 0.1))
    except Exception:
        start = None
    if start is not None and abs(start - 0.5) < 1e-9:
        raise Incorrect("With the policy equal to the reference you returned 0.5, the probability; the loss is "
                        "its negative log: ln 2.")
    check_function(fn, cases, name="dpo_loss", close=same)
    return "ln 2 when the policy is the reference, falling as the chosen reply's log-ratio pulls ahead."


@exercise(
    "10.2",
    "A reference gives a reply probability 0.01 and the DPO policy 0.04, with beta = 0.1. What is the "
    "reply's implicit reward beta * log(pi / pi_ref), in nats?",
    hints=["log(0.04 / 0.01) = log 4.", "0.1 * math.log(4)"],
)
def _implicit(answer):
    expect_number(answer, 0.1 * math.log(4), rel_tol=1e-3, what="Your implicit reward",
                  mistakes={0.1 * math.log10(4): "that is log base 10; the log here is natural (nats).",
                            0.1 * (0.04 - 0.01): "the reward is beta times the log of the ratio, not the difference "
                                                 "of the probabilities.",
                            math.log(4): "multiply by beta."})
    return "About 0.139 nats: the policy made the reply four times likelier than the reference did."


@exercise(
    "10.3",
    "Why can DPO train on pairs without ever computing the partition function Z(x)? Answer 'a', 'b' or 'c'.",
    hints=["Write both replies' implicit rewards with their beta log Z(x) term and subtract."],
)
def _partition(answer):
    expect_choice(
        answer, "b", ["a", "b", "c"],
        explain={"a": "Z(x) sums pi_ref(y) exp(r / beta) over all replies: it is not 1 unless every reward is 0.",
                 "c": "Z(x) sums over every possible reply: no model can compute it for a language model, once "
                      "or ever."},
    )
    return "Both replies answer one prompt, so beta log Z(x) is in both rewards and cancels in the comparison."


@exercise(
    "10.4",
    "Write optimum(ref_probs, rewards, beta): the policy over a finite list of replies that maximises expected "
    "reward minus beta times the KL from the reference (a list of probabilities).",
    hints=[
        "pi*(y) is proportional to pi_ref(y) * exp(r(y) / beta).",
        "Compute the weights pi_ref * exp(r / beta), then divide by their sum (the partition function).",
    ],
)
def _optimum(fn):
    from llmcourse.alignment import rlhf_optimum

    cases = [((ref, r, b), [float(x) for x in rlhf_optimum(ref, r, b)])
             for ref, r, b in (([0.5, 0.5], [0.0, 1.0], 1.0), ([0.3, 0.2, 0.5], [1.0, 0.0, -1.0], 0.5),
                               ([0.1, 0.2, 0.3, 0.4], [2.0, 2.0, 0.0, -1.0], 2.0), ([0.25] * 4, [0.0] * 4, 0.1))]

    def same(got, want):
        try:
            got = [float(x) for x in got]
        except (TypeError, ValueError):
            raise Incorrect(f"optimum should return a list of probabilities, got {type(got).__name__}.") from None
        if len(got) == len(want) and abs(sum(got) - 1) > 1e-6:
            raise Incorrect(f"Your probabilities sum to {sum(got):.4f}: divide by the partition function.")
        return len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want))

    check_function(fn, cases, name="optimum", close=same)
    return "That is pi* = pi_ref exp(r / beta) / Z: the policy DPO reaches without computing Z."
