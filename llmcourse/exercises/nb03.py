"""Checkers for notebook 03 (neural language models)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


@exercise(
    "03.1",
    "The number of parameters of nn.Embedding(72, 64).",
    hints=["An embedding is a matrix with one row per token.", "rows × columns."],
)
def _embedding_params(answer):
    expect_number(
        answer,
        72 * 64,
        rel_tol=0,
        what="Your count",
        mistakes={72 + 64: "that is rows + columns; the matrix has rows × columns entries.",
                  72 * 64 + 64: "an embedding has no bias: it is only a lookup table."},
    )
    return "4,608: one 64-number vector per token."


@exercise(
    "03.2",
    "The number of parameters of torch.nn.LSTM(input_size=64, hidden_size=256), one layer.",
    hints=[
        "Each of the 4 gates has W_ih (hidden × input), W_hh (hidden × hidden) and two bias vectors (hidden).",
        "4 × (256·64 + 256·256 + 2·256).",
    ],
)
def _lstm_params(answer):
    expect_number(
        answer,
        4 * (256 * 64 + 256 * 256 + 2 * 256),
        rel_tol=0,
        what="Your count",
        mistakes={
            4 * (256 * 64 + 256 * 256 + 256): "PyTorch keeps two bias vectors per gate (b_ih and b_hh).",
            256 * 64 + 256 * 256 + 2 * 256: "that is one gate; an LSTM has four (input, forget, cell, output).",
            3 * (256 * 64 + 256 * 256 + 2 * 256): "that is a GRU's three gates; an LSTM has four.",
            4 * (256 * 64 + 256 * 256): "you left out the biases: two vectors of 256 per gate.",
        },
    )
    return f"{4 * (256 * 64 + 256 * 256 + 2 * 256):,}: four times a plain RNN of the same size."


@exercise(
    "03.3",
    "Write rnn_step(x, h, W_ih, W_hh, b) = tanh(W_ih x + W_hh h + b).",
    hints=["Use @ for matrix-vector products and torch.tanh.", "torch.tanh(W_ih @ x + W_hh @ h + b)"],
)
def _rnn_step(fn):
    import torch

    g = torch.Generator().manual_seed(0)
    cases = []
    for n_in, n_h in [(3, 4), (5, 2)]:
        x, h = torch.randn(n_in, generator=g), torch.randn(n_h, generator=g)
        W_ih, W_hh, b = torch.randn(n_h, n_in, generator=g), torch.randn(n_h, n_h, generator=g), torch.randn(n_h, generator=g)
        cases.append(((x, h, W_ih, W_hh, b), torch.tanh(W_ih @ x + W_hh @ h + b)))

    def close(got, want):
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"rnn_step should return a tensor, got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"rnn_step returned shape {tuple(got.shape)}, expected {tuple(want.shape)}: "
                            "check the order of the matrix products (W @ x, not x @ W).")
        return torch.allclose(got, want, atol=1e-5)

    check_function(fn, cases, name="rnn_step", close=close)
    return "That is all an Elman RNN step is; the LSTM adds gates around it."


@exercise(
    "03.4",
    "Spectral radius 3 and a loss that jumps to nan: 'vanishing' or 'exploding' gradients?",
    hints=["Going back in time, the gradient is multiplied by about W_hh once per step."],
)
def _which(answer):
    expect_choice(
        answer,
        "exploding",
        ["vanishing", "exploding"],
        explain={"vanishing": "Vanishing gradients make learning long-range patterns slow; they do not "
                 "make the loss nan. A radius above 1 multiplies the gradient up at every step."},
    )
    return "Exploding: clip the gradient norm (and lower the learning rate)."
