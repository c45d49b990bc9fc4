"""Checkers for notebook 07 (fine-tuning and parameter-efficient fine-tuning)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


@exercise(
    "07.1",
    "LoRA of rank r = 8 on one 4096 × 4096 weight matrix (a query projection of a 7B LLaMA): how many "
    "trainable parameters does it add?",
    hints=[
        "ΔW = B·A with A of shape (r, d_in) and B of shape (d_out, r).",
        "8 · 4096 + 4096 · 8.",
    ],
)
def _lora_count(answer):
    r, d = 8, 4096
    expect_number(
        answer, r * (d + d), rel_tol=0, what="Your count",
        mistakes={d * d: "that is the full matrix W, which LoRA freezes.",
                  r * d: "that is one of the two factors; LoRA trains both A (r × d_in) and B (d_out × r).",
                  r * r: "A and B are r × d_in and d_out × r, not r × r."},
    )
    return "65,536: 0.4% of the matrix's 16.8 million weights."


@exercise(
    "07.2",
    "Write lora_forward(x, W, A, B, alpha) for a frozen linear layer without bias: x (N, d_in), W (d_out, "
    "d_in), A (r, d_in), B (d_out, r). Return x·Wᵀ plus the low-rank update scaled by alpha / r.",
    hints=[
        "The frozen layer gives x @ W.T. The update's path goes through the rank-r bottleneck: x @ A.T is (N, r).",
        "x @ W.T + (alpha / r) * (x @ A.T) @ B.T, with r = A.shape[0].",
    ],
)
def _lora_forward(fn):
    import torch

    g = torch.Generator().manual_seed(7)
    cases = []
    for n, d_in, d_out, r, alpha in [(3, 5, 4, 2, 4.0), (1, 8, 8, 1, 1.0), (6, 4, 7, 3, 12.0)]:
        x, W = torch.randn(n, d_in, generator=g), torch.randn(d_out, d_in, generator=g)
        A, B = torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g)
        cases.append(((x, W, A, B, alpha), x @ W.T + (alpha / r) * (x @ A.T) @ B.T))

    def close(got, want):
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"lora_forward should return a tensor, got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"lora_forward returned shape {tuple(got.shape)}, expected {tuple(want.shape)}: "
                            "x (N, d_in) times Wᵀ (d_in, d_out) is (N, d_out).")
        if not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
            raise Incorrect("The shape is right, the numbers are not: is the update scaled by alpha / r, with r "
                            "the rank (A.shape[0]), and does it go x → A → B?")
        return True

    check_function(fn, cases, name="lora_forward", close=close)
    return "That is LoRALinear.forward: the frozen path plus a rank-r detour, which merge() folds into W."


@exercise(
    "07.3",
    "Prefix tuning with 10 prefix positions on the zoo's BPE model (4 layers, 4 heads of 32 dimensions, "
    "no grouped-query attention): how many trainable parameters, not counting a classification head?",
    hints=[
        "Every layer gets its own prefix keys and its own prefix values: n_kv_head · head_dim numbers per "
        "position for each.",
        "2 (keys and values) · 4 layers · 10 positions · 4 heads · 32 dimensions.",
    ],
)
def _prefix_count(answer):
    expect_number(
        answer, 2 * 4 * 10 * 4 * 32, rel_tol=0, what="Your count",
        mistakes={4 * 10 * 4 * 32: "that is the keys alone (or the values alone): a prefix has both.",
                  2 * 10 * 4 * 32: "that is one layer: every layer has its own prefix.",
                  10 * 128: "that is prompt tuning: input vectors at the first layer only."},
    )
    return "10,240: eight times the 1,280 of a 10-vector soft prompt, which only the first layer sees."


@exercise(
    "07.4",
    "After training, which method can be folded into the base weights so that the adapted model costs "
    "exactly what the base model costs at inference? Answer 'lora', 'adapters', 'prefix' or 'prompt'.",
    hints=["Which method's change is a matrix of the same shape as a weight the model already has?"],
)
def _free_at_inference(answer):
    expect_choice(
        answer, "lora", ["lora", "adapters", "prefix", "prompt"],
        explain={"adapters": "Adapters are extra layers with a nonlinearity (GELU) between their two "
                             "matrices: they stay in the forward pass and add their cost to every token.",
                 "prefix": "The prefix adds keys and values that every query attends to: attention "
                           "over n_prefix more positions in every layer, at every step.",
                 "prompt": "The soft prompt takes n_prompt positions of the context: every forward pass "
                           "processes those positions too, and the text gets less room."},
    )
    return "LoRA: W + (α/r)·B·A is one matrix of W's shape, so merge_lora leaves a plain model behind."
