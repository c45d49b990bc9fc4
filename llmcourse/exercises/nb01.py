"""Checkers for notebook 01 (n-gram language models)."""

import math

from llmcourse.exercises import check_function, exercise, expect_number


@exercise(
    "01.1",
    "Bits per character of a model that gives every one of 72 characters the same probability.",
    hints=["Each character has probability 1/72.", "Bits per character is -log2 of that probability."],
)
def _uniform_bpc(answer):
    expect_number(
        answer,
        math.log2(72),
        rel_tol=0.002,
        what="Your bits per character",
        mistakes={
            math.log(72): "that is in nats (natural log); bits use log base 2: divide by ln 2.",
            72.0: "that is the perplexity; bits per character is log2 of the perplexity.",
            1 / 72: "that is the probability of one character; take -log2 of it.",
        },
    )
    return "log2(72) ≈ 6.17 bits: the most a character model can cost without being worse than guessing."


def _close(a, b):
    try:
        return math.isclose(float(a), b, rel_tol=1e-9)
    except (TypeError, ValueError):
        return False


@exercise(
    "01.2",
    "Write add_k_prob(count_hw, count_h, vocab_size, k): P(w | h) with add-k smoothing.",
    hints=[
        "Add k to the count of the n-gram, and add k once for every word in the vocabulary to the history count.",
        "(count_hw + k) / (count_h + k * vocab_size)",
    ],
)
def _add_k(fn):
    check_function(
        fn,
        [((3, 10, 5, 1.0), 4 / 15), ((0, 10, 5, 1.0), 1 / 15), ((0, 0, 4, 0.5), 0.25), ((2, 4, 3, 0.1), 2.1 / 4.3)],
        name="add_k_prob",
        close=_close,
    )
    return "Add-k gives every unseen n-gram k/(c(h) + kV): never zero, but the same for every unseen word."


@exercise(
    "01.3",
    "Counts of counts of one order: n1 = 1000, n2 = 400, n3 = 200, n4 = 120. What is the modified "
    "Kneser–Ney discount D2 (for n-grams seen exactly twice)?",
    hints=["Y = n1 / (n1 + 2 n2).", "D2 = 2 - 3 Y n3 / n2."],
)
def _d2(answer):
    y = 1000 / (1000 + 2 * 400)
    expect_number(
        answer,
        2 - 3 * y * 200 / 400,
        rel_tol=0.002,
        what="Your D2",
        mistakes={
            1 - 2 * y * 400 / 1000: "that is D1, the discount for n-grams seen once.",
            3 - 4 * y * 120 / 200: "that is D3+, the discount for n-grams seen three or more times.",
            y: "that is Y (which happens to equal D1); D2 = 2 - 3 Y n3 / n2.",
        },
    )
    return "D2 ≈ 1.17: an n-gram seen twice keeps 0.83 of its two counts; the rest goes to the lower order."


@exercise(
    "01.4",
    "Write perplexity(log_probs): the perplexity of a text from the natural-log probabilities of its tokens.",
    hints=["Cross-entropy is the mean of -log p over tokens.", "Perplexity is exp(cross-entropy)."],
)
def _perplexity(fn):
    check_function(
        fn,
        [
            (([math.log(0.5)] * 4,), 2.0),
            (([math.log(1 / 72)] * 3,), 72.0),
            (([math.log(0.5), math.log(0.125)],), 4.0),
        ],
        name="perplexity",
        close=_close,
    )
    return "Perplexity is the size of a uniform choice that would be just as surprising."
