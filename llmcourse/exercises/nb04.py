"""Checkers for notebook 04 (attention and the Transformer)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


@exercise(
    "04.1",
    "The number of parameters in one GPT-2 small block (n_embd = 768, 12 heads, d_ff = 4 · 768, biases).",
    hints=[
        "A block has two LayerNorms (weight and bias each), attention (q, k, v and an output projection, "
        "each a d × d matrix plus a bias) and an MLP (d → 4d → d, with biases).",
        "LayerNorms 2·2·768; attention 4·768² + 4·768; MLP 2·4·768² + 4·768 + 768.",
    ],
)
def _block_params(answer):
    d = 768
    attn, mlp, norms = 4 * d * d + 4 * d, 8 * d * d + 5 * d, 4 * d
    expect_number(
        answer,
        attn + mlp + norms,
        rel_tol=0,
        what="Your count",
        mistakes={
            12 * d * d: "that is the matrices only (the 12·d² rule of thumb); add the biases and the LayerNorms.",
            attn + mlp: "you left out the two LayerNorms (a weight and a bias of 768 each).",
            12 * d * d + norms: "you left out the biases of the linear layers.",
            (attn + mlp + norms) * 12: "that is all 12 blocks; the question asks for one.",
        },
    )
    return "7,087,872: 12 of them are 85M of GPT-2 small's 124M; the embeddings are most of the rest."


@exercise(
    "04.2",
    "Write causal_attention(q, k, v) for q, k, v of shape (T, d): softmax(q kᵀ / √d) v with no attention "
    "to later positions.",
    hints=[
        "scores = q @ k.T / d ** 0.5; then set scores above the diagonal to -inf before the softmax.",
        "mask = torch.ones(T, T, dtype=torch.bool).tril(); scores.masked_fill(~mask, float('-inf')); "
        "torch.softmax(..., dim=-1) @ v",
    ],
)
def _causal_attention(fn):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(4)
    cases = []
    for T, d in [(1, 4), (5, 8), (7, 3)]:
        q, k, v = (torch.randn(T, d, generator=g) for _ in range(3))
        cases.append(((q, k, v), F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]))

    def close(got, want):
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"causal_attention should return a tensor, got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"causal_attention returned shape {tuple(got.shape)}, expected {tuple(want.shape)}.")
        if torch.isnan(got).any():
            raise Incorrect("The result holds nan: mask with -inf *before* the softmax, not after it.")
        if not torch.allclose(got, want, atol=1e-5):
            first = got[0]
            if torch.allclose(first, want[0], atol=1e-5):
                raise Incorrect("The first row is right but later ones are not: did you scale by √d?")
            raise Incorrect("Row 0 should equal v[0] exactly (it can only see itself): check the mask "
                            "(tril keeps the lower triangle) and the scaling by √d.")
        return True

    check_function(fn, cases, name="causal_attention", close=close)
    return "That is the whole of a decoder's attention; multi-head runs it per head on slices of d."


@exercise(
    "04.3",
    "A model has n_head = 32 and n_kv_head = 8 (grouped-query attention). By what factor is its KV cache "
    "smaller than with n_kv_head = 32?",
    hints=["The cache holds one key and one value vector per key/value head, per token, per layer."],
)
def _gqa_factor(answer):
    expect_number(
        answer,
        4,
        rel_tol=0,
        what="Your factor",
        mistakes={8: "8 is the number of key/value heads; the factor is 32 / 8.",
                  0.25: "that is the fraction of the cache that remains; the question asks for the factor."},
    )
    return "4×: LLaMA-2 70B uses n_kv_head = 8 with 64 heads, an 8× smaller cache."


@exercise(
    "04.4",
    "In a prefix decoder with prefix_len = 5, may position 2 attend to position 4? ('yes' or 'no')",
    hints=["prefix_mask(T, 5): inside the first 5 positions attention goes both ways."],
)
def _prefix(answer):
    expect_choice(
        answer,
        "yes",
        ["yes", "no"],
        explain={"no": "Both positions are inside the prefix (0-4), which is read bidirectionally like an "
                 "encoder. Only positions from 5 on are causal."},
    )
    return "Yes: the prefix is read like an encoder; the rest is generated like a decoder."
