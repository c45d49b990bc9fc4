"""In-context learning (llmcourse.icl): repeated sequences with a period drawn per sequence, a two-layer
model that forms previous-token and induction heads and copies at a period it never trained on, a
one-layer model that cannot, ablation that removes the gain only where the circuit is, and bad input."""

import math

import pytest
import torch

from llmcourse import icl
from llmcourse.checks import ArgumentError
from llmcourse.transformer import TransformerConfig, TransformerLM

pytestmark = pytest.mark.usefixtures("one_thread")
V = 64


def _model(n_layer):
    torch.manual_seed(0)
    return TransformerLM(TransformerConfig.llama(V, 64, n_layer=n_layer, n_head=4, n_embd=64, d_ff=256))


@pytest.fixture(scope="module")
def two_layers():
    model = _model(2)
    history = icl.train_icl(model, V, steps=600, eval_every=300, seed=0)
    return model, history


def test_repeated_sequences_repeat_with_their_own_period():
    g = torch.Generator().manual_seed(0)
    ids, predictable = icl.repeated_sequences(200, 64, V, min_period=4, max_period=16, generator=g)
    assert ids.shape == predictable.shape == (200, 64) and int(ids.max()) < V
    periods = set()
    for row, mask in zip(ids, predictable):
        period = int((~mask).sum()) - 1                    # tokens 0..period are not predictable
        periods.add(period)
        assert torch.equal(row[period:], row[:64 - period])  # the sequence repeats with that period
    assert periods == set(range(4, 17))                      # every period drawn
    again, _ = icl.repeated_sequences(200, 64, V, min_period=4, max_period=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids, again)


def test_two_layers_form_induction_heads_and_copy_at_an_unseen_period(two_layers):
    model, history = two_layers
    first, last = history[0], history[-1]
    # measured: repeated-token loss 1.78 at step 300 and 0.32 at 600; 1.63 at period 20 (chance ln 64 = 4.16)
    assert last["repeat_loss"] < 1.0 < first["repeat_loss"] + 0.5
    assert last["repeat_loss_20"] < math.log(V) - 1.5
    scores = icl.head_scores(model, V)
    assert scores["prefix_matching"].shape == scores["previous_token"].shape == (2, 4)
    assert float(scores["prefix_matching"][1].max()) > 0.25    # measured 0.50: induction heads in layer 2
    assert float(scores["prefix_matching"][0].max()) < 0.1     # and not in layer 1
    assert float(scores["previous_token"][0].max()) > 0.25     # measured 0.48: previous-token heads in layer 1


def test_ablating_the_circuit_removes_the_gain_and_other_heads_do_not(two_layers):
    model, _ = two_layers
    base = icl.repeat_loss(model, V)
    scores = icl.head_scores(model, V)
    prev = [(0, h) for h in range(4) if scores["previous_token"][0, h] > 0.25]
    other = [(0, h) for h in range(4) if scores["previous_token"][0, h] <= 0.25]
    assert prev and other
    with icl.ablate_heads(model, [(1, h) for h in range(4)]):
        assert icl.repeat_loss(model, V) > math.log(V) - 0.5       # measured 4.5: no better than chance
    with icl.ablate_heads(model, prev):
        assert icl.repeat_loss(model, V) > math.log(V) - 0.5       # measured 4.8
    with icl.ablate_heads(model, other):
        assert icl.repeat_loss(model, V) < base + 0.5              # measured 0.44 against 0.32
    assert icl.repeat_loss(model, V) == base                       # the hooks are gone


def test_one_layer_cannot_form_induction_heads():
    model = _model(1)
    history = icl.train_icl(model, V, steps=400, eval_every=400, seed=0)
    scores = icl.head_scores(model, V)
    assert float(scores["prefix_matching"].max()) < 0.1             # measured 0.01
    assert history[-1]["repeat_loss_20"] > math.log(V) - 0.5        # measured 4.7: it has learnt no copying


def test_bad_input_is_refused():
    model = _model(2)
    with pytest.raises(ArgumentError, match="max_period"):
        icl.repeated_sequences(2, 16, V, min_period=4, max_period=15)
    with pytest.raises(ArgumentError, match="head"):
        with icl.ablate_heads(model, [(1, 4)]):
            pass
    with pytest.raises(ArgumentError, match="layer"):
        with icl.ablate_heads(model, [(2, 0)]):
            pass
    with pytest.raises(ArgumentError, match="length"):
        icl.head_scores(model, V, length=40)
    with pytest.raises(ArgumentError, match="model"):
        icl.head_scores(torch.nn.Linear(2, 2), V)
