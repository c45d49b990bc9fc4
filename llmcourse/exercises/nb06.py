"""Checkers for notebook 06 (scaling and distributed training)."""

from llmcourse.exercises import exercise, expect_number


@exercise(
    "06.1",
    "How many FLOPs does it take to train a model of 1 billion parameters on 20 billion tokens "
    "(use C ≈ 6·N·D)?",
    hints=[
        "Per token and parameter: 2 FLOPs forward (a multiply and an add), about 4 backward.",
        "6 × 1e9 × 20e9.",
    ],
)
def _six_n_d(answer):
    expect_number(
        answer, 6 * 1e9 * 20e9, rel_tol=1e-3, what="Your compute",
        mistakes={2 * 1e9 * 20e9: "that is the forward pass only; the backward pass costs about twice as much again.",
                  1e9 * 20e9: "that counts one operation per parameter and token; training costs about 6."},
    )
    from llmcourse.scaling import H100_BF16_DENSE_FLOPS

    hours = 6 * 1e9 * 20e9 / (8 * 0.4 * H100_BF16_DENSE_FLOPS) / 3600
    return f"1.2e20 FLOPs: about {hours:.1f} hours on 8 H100s at 40% of their bf16 peak."


@exercise(
    "06.2",
    "By the rule of thumb 'train on 20 tokens per parameter', how many parameters should a model trained "
    "with a budget of 1e21 FLOPs have?",
    hints=[
        "Put D = 20·N into C = 6·N·D: C = 120·N².",
        "N = sqrt(1e21 / 120).",
    ],
)
def _rule_of_thumb(answer):
    n = (1e21 / 120) ** 0.5
    expect_number(
        answer, n, rel_tol=0.01, what="Your parameter count",
        mistakes={20 * n: "that is the number of tokens, D = 20·N.",
                  (1e21 / 6) ** 0.5: "the 20 tokens per parameter are missing: C = 6·N·(20·N)."},
    )
    return "About 2.9 billion parameters on 58 billion tokens."


@exercise(
    "06.3",
    "A model of 7.5 billion parameters is trained with mixed-precision Adam (2 + 2 + 12 bytes per "
    "parameter) on 64 GPUs with ZeRO stage 2 (optimizer states and gradients split, weights not). How "
    "many bytes of model states does each GPU hold?",
    hints=[
        "Every GPU keeps all the fp16 weights: 2 bytes per parameter.",
        "The gradients (2 bytes) and the optimizer states (12 bytes) are split 64 ways: "
        "2·Ψ + (2 + 12)·Ψ / 64.",
    ],
)
def _zero2(answer):
    psi, nd = 7.5e9, 64
    expect_number(
        answer, 2 * psi + 14 * psi / nd, rel_tol=0.01, what="Your memory",
        mistakes={16 * psi: "that is plain data parallelism: nothing is split.",
                  4 * psi + 12 * psi / nd: "that is stage 1: in stage 2 the gradients are split too.",
                  16 * psi / nd: "that is stage 3: in stage 2 every GPU still holds all the weights."},
    )
    return "About 16.6 GB, down from 120 GB without ZeRO: the paper's Figure 1."


@exercise(
    "06.4",
    "A GPipe pipeline has 4 stages and splits each batch into 12 micro-batches. What fraction of the "
    "time is a device idle (the bubble)?",
    hints=[
        "Each device works m of the m + p - 1 time slots of the forward pass, and the same in the backward.",
        "(p - 1) / (m + p - 1) with p = 4, m = 12.",
    ],
)
def _bubble(answer):
    p, m = 4, 12
    expect_number(
        answer, (p - 1) / (m + p - 1), rel_tol=1e-3, what="Your fraction",
        mistakes={(p - 1) / m: "close: that is idle time over busy time; the fraction is over all m + p - 1 slots.",
                  1 / p: "that is one stage's share of the model, not the idle time."},
    )
    return "0.2: more micro-batches shrink the bubble (48 give 0.06), at the cost of smaller matrix products."
