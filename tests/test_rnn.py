"""Tests for llmcourse.rnn: shapes, parity of the from-scratch RNN/GRU/LSTM with torch, causality,
the MLP's fixed window, carried state, training, gradient norms through time, sampling, bad input.

All on tiny synthetic data (no corpus needed); the whole file runs in a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmcourse.rnn import (
    CELLS,
    GRUCell,
    LSTMCell,
    MLPLanguageModel,
    RecurrentLanguageModel,
    RNNCell,
    ScratchRNN,
    detach_state,
    evaluate,
    hidden_state_gradient_norms,
    set_spectral_radius,
    spectral_radius,
    train_language_model,
)

V = 11


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These models are tiny: with one thread there is no synchronisation overhead, which is most of the
    # time on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _models():
    torch.manual_seed(0)
    return {
        "mlp": MLPLanguageModel(V, context=3, d_embed=4, d_hidden=16),
        "rnn": RecurrentLanguageModel(V, 6, 12, cell="rnn"),
        "gru": RecurrentLanguageModel(V, 6, 12, cell="gru"),
        "lstm": RecurrentLanguageModel(V, 6, 12, cell="lstm"),
        "lstm-2-layers": RecurrentLanguageModel(V, 6, 12, n_layers=2, cell="lstm"),
    }


ALL_MODELS = list(_models())


# ----------------------------------------------------------------------------------------------------
# shapes


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_shapes_and_state(name):
    model = _models()[name]
    ids = torch.randint(0, V, (3, 7))
    logits, state = model(ids)
    assert logits.shape == (3, 7, V)
    if name == "mlp":
        assert state.shape == (3, 3)  # the last `context` ids
        assert state.tolist() == ids[:, -3:].tolist()
    elif "lstm" in name:
        h, c = state
        assert h.shape == c.shape == (model.n_layers, 3, 12)
    else:
        assert state.shape == (1, 3, 12)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_parameter_counts_follow_the_formulas():
    E, H, C = 4, 16, 3
    mlp = MLPLanguageModel(V, context=C, d_embed=E, d_hidden=H)
    assert mlp.num_parameters() == (V + 1) * E + (C * E + 1) * H + (H + 1) * V  # +1 row: the padding id
    for cell, gates in (("rnn", 1), ("gru", 3), ("lstm", 4)):
        m = RecurrentLanguageModel(V, E, H, cell=cell)
        assert m.num_parameters() == V * E + gates * H * (E + H + 2) + (H + 1) * V


# ----------------------------------------------------------------------------------------------------
# the from-scratch cells equal torch's fused modules


@pytest.mark.parametrize("cell", CELLS)
def test_scratch_rnn_matches_torch_forward_and_gradients(cell):
    torch.manual_seed(1)
    ref = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](5, 7, batch_first=True)
    mine = ScratchRNN.from_torch(ref)
    x = torch.randn(3, 9, 5)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ref, state_ref = ref(x1)
    out_mine, state_mine = mine(x2)
    torch.testing.assert_close(out_mine, out_ref, atol=1e-6, rtol=0)
    for a, b in zip(*(s if isinstance(s, tuple) else (s,) for s in (state_mine, state_ref))):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)

    # The same loss back-propagated through time gives the same gradients everywhere.
    w = torch.randn(7)
    (out_ref @ w).square().mean().backward()
    (out_mine @ w).square().mean().backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-6, rtol=1e-5)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        torch.testing.assert_close(
            getattr(mine.cell, name).grad, getattr(ref, f"{name}_l0").grad, atol=1e-6, rtol=1e-5
        )


@pytest.mark.parametrize("cell", CELLS)
def test_scratch_rnn_to_torch_round_trip_with_initial_state(cell):
    torch.manual_seed(2)
    mine = ScratchRNN(4, 6, cell=cell)
    ref = mine.to_torch()
    x = torch.randn(2, 5, 4)
    h0 = torch.randn(1, 2, 6)
    state = (h0, torch.randn(1, 2, 6)) if cell == "lstm" else h0
    torch.testing.assert_close(mine(x, state)[0], ref(x, state)[0], atol=1e-6, rtol=0)


def test_rnn_cell_is_the_formula():
    torch.manual_seed(3)
    cell = RNNCell(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    expected = torch.tanh(cell.weight_ih @ x[0] + cell.bias_ih + cell.weight_hh @ h[0] + cell.bias_hh)
    torch.testing.assert_close(cell(x, h)[0], expected)


# ----------------------------------------------------------------------------------------------------
# what each model may look at


def test_mlp_sees_exactly_the_last_context_tokens():
    model = _models()["mlp"]  # context = 3
    ids = torch.randint(0, V, (1, 10))
    base, _ = model(ids)
    t = 8
    outside = ids.clone()
    outside[0, t - 3] = (outside[0, t - 3] + 1) % V  # 4 tokens back: outside the window of output t
    torch.testing.assert_close(model(outside)[0][0, t], base[0, t], atol=0, rtol=0)
    for k in (t - 2, t - 1, t):  # inside the window: the prediction must change
        inside = ids.clone()
        inside[0, k] = (inside[0, k] + 1) % V
        assert not torch.allclose(model(inside)[0][0, t], base[0, t])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_models_are_causal(name):
    model = _models()[name]
    ids = torch.randint(0, V, (2, 12))
    base, _ = model(ids)
    for k in (0, 5, 11):
        changed = ids.clone()
        changed[:, k] = (changed[:, k] + 3) % V
        out, _ = model(changed)
        torch.testing.assert_close(out[:, :k], base[:, :k], atol=0, rtol=0)  # the past never sees k
        assert not torch.allclose(out[:, k], base[:, k])  # output k has read token k


@pytest.mark.parametrize("name", ALL_MODELS)
def test_carried_state_continues_the_text(name):
    model = _models()[name]
    ids = torch.randint(0, V, (2, 13))
    whole, _ = model(ids)
    first, state = model(ids[:, :6])
    second, _ = model(ids[:, 6:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-6, rtol=1e-5)


def test_detach_state_cuts_the_graph():
    h = torch.ones(2, requires_grad=True) * 2
    assert detach_state(None) is None
    assert not detach_state(h).requires_grad
    assert not any(s.requires_grad for s in detach_state((h, h)))


# ----------------------------------------------------------------------------------------------------
# evaluation and training


@pytest.mark.parametrize("name", ["mlp", "lstm-2-layers"])
def test_evaluate_equals_one_pass_over_the_text_for_any_chunking(name):
    model = _models()[name]
    ids = torch.randint(0, V, (200,))
    logits, _ = model(ids[None, :-1])
    expected = F.cross_entropy(logits[0], ids[1:]).item()
    for seq_len in (7, 64, 1000):  # one stream: chunk boundaries must not matter, the state carries
        result = evaluate(model, ids, seq_len=seq_len, batch_size=1)
        assert result["loss_nats"] == pytest.approx(expected, rel=1e-5)
    assert result["n_tokens"] == 199
    assert result["bits_per_char"] == pytest.approx(expected / math.log(2), rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)
    # Several streams: every token is still scored once; only stream starts lose context.
    many = evaluate(model, ids.numpy(), seq_len=16, batch_size=7)
    assert many["n_tokens"] == 199 and abs(many["loss_nats"] - expected) < 0.2


def _tiny_text_ids(n: int = 3000) -> np.ndarray:
    pattern = [0, 1, 2, 2, 3, 4, 5, 3, 6, 2, 7, 8]  # "hello world " as ids: every step is predictable
    return np.array((pattern * (n // len(pattern) + 1))[:n], dtype=np.int64)


@pytest.mark.parametrize("name", ["mlp", "lstm"])
def test_a_model_overfits_a_tiny_repetitive_text(name):
    torch.manual_seed(0)
    model = {
        "mlp": MLPLanguageModel(V, context=3, d_embed=8, d_hidden=32),
        "lstm": RecurrentLanguageModel(V, 8, 32, cell="lstm"),
    }[name]
    ids = _tiny_text_ids()
    before = evaluate(model, ids, batch_size=4)["loss_nats"]
    history = train_language_model(model, ids, ids, steps=200, batch_size=8, seq_len=24, lr=1e-2,
                                   eval_every=100, seed=0, show_progress=False)
    after = evaluate(model, ids, batch_size=4)["loss_nats"]
    assert before > 2.0  # about ln(11) = 2.4 at initialisation
    assert after < 0.1, f"{name} did not overfit: {before:.3f} -> {after:.3f}"
    assert history.steps == [100, 200] and history.total_steps == 200
    assert history.val_loss[-1] < 0.1 and history.train_loss[-1] < history.train_loss[0] + 1e-9
    assert history.tokens_seen == 200 * 8 * 24 and history.train_seconds > 0


def test_training_is_deterministic_given_the_seed():
    ids = _tiny_text_ids(1000)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = RecurrentLanguageModel(V, 4, 8, cell="gru")
        h = train_language_model(model, ids, ids, steps=15, batch_size=4, seq_len=10, lr=3e-3, eval_every=5,
                                 seed=7, show_progress=False)
        runs.append((h.train_loss, h.val_loss, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][2], runs[1][2]):
        assert torch.equal(a, b)


def test_training_stops_at_the_time_budget():
    ids = _tiny_text_ids(2000)
    model = RecurrentLanguageModel(V, 4, 8, cell="rnn")
    h = train_language_model(model, ids, ids, seconds=0.3, batch_size=4, seq_len=8, eval_every=10_000,
                             show_progress=False)
    assert 0.3 <= h.train_seconds < 3.0
    assert h.steps == [h.total_steps]  # one evaluation, at the end


def test_history_records_the_gradient_norm_before_clipping():
    ids = _tiny_text_ids(1000)
    torch.manual_seed(0)
    model = RecurrentLanguageModel(V, 4, 16, cell="rnn")
    set_spectral_radius(model, 4.0)  # a large recurrent matrix: big gradients
    before = [p.detach().clone() for p in model.parameters()]
    h = train_language_model(model, ids, ids, steps=1, batch_size=4, seq_len=50, lr=0.1, clip=1e-3,
                             schedule="constant", eval_every=1, show_progress=False)
    assert h.grad_norm[0] > 1e-3  # recorded before clipping
    # Adam's first step moves every parameter by at most about lr, whatever the gradient's size (so the
    # exploding gradient does not blow the weights up).
    step = max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before))
    assert step <= 0.1 * 1.01


# ----------------------------------------------------------------------------------------------------
# vanishing and exploding gradients


def test_set_spectral_radius_scales_each_block():
    torch.manual_seed(0)
    cell = RNNCell(3, 20)
    set_spectral_radius(cell, 0.7)
    assert spectral_radius(cell.weight_hh) == pytest.approx(0.7, rel=1e-5)
    lstm = RecurrentLanguageModel(V, 4, 10, n_layers=2, cell="lstm")
    set_spectral_radius(lstm, 1.3)
    for w in (lstm.rnn.weight_hh_l0, lstm.rnn.weight_hh_l1):
        for block in w.split(10):
            assert spectral_radius(block) == pytest.approx(1.3, rel=1e-5)


def test_gradients_vanish_with_small_and_explode_with_large_recurrent_weights():
    torch.manual_seed(0)
    cell = RNNCell(4, 32)
    x = 0.1 * torch.randn(8, 40, 4)
    small = hidden_state_gradient_norms(set_spectral_radius(cell, 0.5), x)
    large = hidden_state_gradient_norms(set_spectral_radius(cell, 3.0), x)
    assert small.shape == large.shape == (40,)
    # The last state gets d(sum h_T)/d h_T = 1 per unit: norm sqrt(32), whatever the weights.
    assert small[-1].item() == pytest.approx(math.sqrt(32))
    assert large[-1].item() == pytest.approx(math.sqrt(32))
    assert small[0] < 1e-6 * small[-1]  # vanished
    assert large[0] > 1e3 * large[-1]  # exploded
    assert (small[1:] >= small[:-1]).all()  # monotone: one more Jacobian per step back


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_norms_of_a_language_model(cell):
    torch.manual_seed(0)
    model = RecurrentLanguageModel(V, 4, 8, n_layers=2, cell=cell, dropout=0.5)
    ids = torch.randint(0, V, (3, 21))
    norms = hidden_state_gradient_norms(model, ids)
    assert norms.shape == (20,) and torch.isfinite(norms).all() and (norms > 0).all()
    assert all(p.grad is None for p in model.parameters())  # no side effect on the parameters
    assert model.training  # mode restored
    # Same answer from the scratch cell with the same weights (one layer).
    m1 = RecurrentLanguageModel(V, 4, 8, cell=cell)
    scratch = ScratchRNN.from_torch(m1.rnn)
    x = torch.randn(2, 9, 4)
    a = hidden_state_gradient_norms(scratch, x)
    b = hidden_state_gradient_norms(scratch.cell, x)
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------------------------------
# sampling


@pytest.mark.parametrize("name", ["mlp", "lstm-2-layers"])
def test_sampling_is_repeatable_and_temperature_zero_is_argmax(name):
    model = _models()[name]
    prefix = [1, 2, 3]
    a = model.sample(prefix, 30, temperature=1.0, generator=torch.Generator().manual_seed(5))
    b = model.sample(prefix, 30, temperature=1.0, generator=torch.Generator().manual_seed(5))
    c = model.sample(prefix, 30, temperature=1.0, generator=torch.Generator().manual_seed(6))
    assert a.shape == (30,) and a.dtype == torch.long and torch.equal(a, b) and not torch.equal(a, c)
    greedy = model.sample(prefix, 12, temperature=0)
    # Re-read the whole text each time: the argmax of the last logits must be the next sampled token.
    text = list(prefix)
    for tok in greedy.tolist():
        logits, _ = model(torch.tensor([text]))
        assert tok == int(logits[0, -1].argmax())
        text.append(tok)
    assert model.sample(prefix, 0).shape == (0,)


def test_low_temperature_approaches_greedy():
    model = _models()["gru"]
    greedy = model.sample([4], 20, temperature=0)
    cold = model.sample([4], 20, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(greedy, cold)


# ----------------------------------------------------------------------------------------------------
# bad input fails with a message naming the argument


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: RecurrentLanguageModel(0, 4, 4), "vocab_size"),
        (lambda: MLPLanguageModel(0), "vocab_size"),
        (lambda: MLPLanguageModel(5, context=0), "context"),
        (lambda: RecurrentLanguageModel(5, 4, 4, cell="transformer"), "cell"),
        (lambda: ScratchRNN(3, 4, cell="tanh"), "cell"),
        (lambda: RecurrentLanguageModel(5, 4, 0), "d_hidden"),
        (lambda: RecurrentLanguageModel(5, 4, 4, n_layers=0), "n_layers"),
        (lambda: RecurrentLanguageModel(5, 4, 4, dropout=1.0), "dropout"),
        (lambda: ScratchRNN.from_torch(torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)), "num_layers"),
        (lambda: ScratchRNN.from_torch(torch.nn.Linear(3, 4)), "module"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_call_arguments():
    model = _models()["lstm"]
    mlp = _models()["mlp"]
    ids = torch.randint(0, V, (2, 5))
    with pytest.raises(ValueError, match=r"ids.*\(batch, time\)"):
        model(torch.arange(5))  # 1-D
    with pytest.raises(ValueError, match="ids holds token id 11"):
        model(torch.tensor([[1, 11]]))
    with pytest.raises(ValueError, match="ids holds token id -1"):
        mlp(torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match="ids must hold integer"):
        model(torch.ones(2, 3))
    with pytest.raises(ValueError, match="state"):
        mlp(ids, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        model.sample([1], 5, temperature=-0.5)
    with pytest.raises(ValueError, match="prefix_ids"):
        model.sample([], 5)
    with pytest.raises(ValueError, match="prefix_ids holds token id 99"):
        model.sample([99], 5)
    with pytest.raises(ValueError, match="n must"):
        model.sample([1], -1)
    with pytest.raises(ValueError, match="x must have shape"):
        ScratchRNN(3, 4)(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="radius"):
        set_spectral_radius(model, -1)
    with pytest.raises(ValueError, match="inputs"):
        hidden_state_gradient_norms(model, torch.randint(0, V, (2, 1)))
    with pytest.raises(ValueError, match="inputs"):
        hidden_state_gradient_norms(RNNCell(3, 4), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="model must be"):
        hidden_state_gradient_norms(torch.nn.Linear(2, 2), torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="ids must hold at least 2"):
        evaluate(model, [1])
    with pytest.raises(ValueError, match="ids must have shape"):
        evaluate(model, ids)


def test_bad_training_arguments():
    model = _models()["rnn"]
    ids = _tiny_text_ids(500)

    def train(**kw):
        args = dict(steps=1, batch_size=2, seq_len=4, show_progress=False) | kw
        return train_language_model(model, args.pop("train_ids", ids), args.pop("val_ids", ids), **args)

    with pytest.raises(ValueError, match="seconds.*steps"):
        train(steps=None)
    for name, value in [("steps", 0), ("seconds", -1.0), ("lr", 0.0), ("batch_size", 0), ("seq_len", 0),
                        ("clip", 0.0), ("eval_every", 0), ("schedule", "step")]:
        with pytest.raises(ValueError, match=name):
            train(**{name: value})
    with pytest.raises(ValueError, match="train_ids holds token id 11"):
        train(train_ids=np.full(100, 11))
    with pytest.raises(ValueError, match="train_ids has 5 tokens"):
        train(train_ids=ids[:5])
    with pytest.raises(ValueError, match="val_ids"):
        train(val_ids=ids[:1])
    with pytest.raises(TypeError, match="train_ids"):
        train(train_ids="hello")


def test_cells_keep_torch_parameter_names():
    for cls, gates in ((RNNCell, 1), (GRUCell, 3), (LSTMCell, 4)):
        names = dict(cls(3, 5).named_parameters())
        assert {k: tuple(v.shape) for k, v in names.items()} == {
            "weight_ih": (gates * 5, 3),
            "weight_hh": (gates * 5, 5),
            "bias_ih": (gates * 5,),
            "bias_hh": (gates * 5,),
        }
