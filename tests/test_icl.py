"""In-context learning (llmcourse.icl): repeated sequences with a period drawn per sequence, a two-layer
model that forms previous-token and induction heads and copies at a period it never trained on, a
one-layer model that cannot, ablation that removes the gain only where the circuit is, and bad input."""

import math

import pytest
import torch

from llmcourse import icl
from llmcourse.checks import ArgumentError

pytestmark = pytest.mark.usefixtures("one_thread")
V = 64


def _model(n_layer):
    return icl.icl_model(n_layer, seed=0)


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
    assert icl.phase_change_step(history) is None
    # it answers a lookup only from how often each label appears: measured 0.26 with 4 shots of 20
    assert icl.lookup_accuracy(model, V, shots=4)["right"] < 0.4


def test_few_shot_lookup_prompts_hold_what_they_promise():
    g = torch.Generator().manual_seed(0)
    for kwargs in (dict(shots=3), dict(shots=4, deviant="first"), dict(shots=4, deviant="last", place=5),
                   dict(shots=1, place=19), dict(shots=0), dict(shots=2, separator=True)):
        ids, answer, other = icl.few_shot_lookup(50, V, n_pairs=20, n_keys=8, n_labels=16, generator=g, **kwargs)
        step = 3 if kwargs.get("separator") else 2
        assert ids.shape == (50, 20 * step + step - 1)
        for row, a, o in zip(ids.tolist(), answer.tolist(), other.tolist()):
            keys, labels = row[0:20 * step:step], row[step - 1:20 * step:step]
            query = row[20 * step]
            assert all(k < V - 17 for k in keys) and all(V - 17 <= x < V - 1 for x in labels)
            if step == 3:
                assert row[1::3] == [V - 1] * 21 and row[-1] == V - 1     # after every key and the query
            shown = [lab for k, lab in zip(keys, labels) if k == query]
            slots = [i for i, k in enumerate(keys) if k == query]
            assert len(shown) == kwargs["shots"]
            if "place" in kwargs:
                assert slots == list(range(kwargs["place"], kwargs["place"] + kwargs["shots"]))
            if kwargs.get("deviant"):
                odd = 0 if kwargs["deviant"] == "first" else -1
                assert o != a and shown[odd] == o and all(x == a for i, x in enumerate(shown) if i != odd % len(shown))
            else:
                assert o == a and all(x == a for x in shown)
            for k in set(keys) - {query}:                                  # other keys keep one label each
                assert len({lab for kk, lab in zip(keys, labels) if kk == k}) == 1
    first = icl.few_shot_lookup(8, V, generator=torch.Generator().manual_seed(3))
    again = icl.few_shot_lookup(8, V, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_the_copying_model_answers_few_shot_lookups_it_never_trained_on(two_layers):
    model, history = two_layers
    effects = icl.demonstration_effects(model, V, n=256)
    assert list(effects) == list(icl.DEMONSTRATION_EFFECTS)
    # measured (512 prompts): 0 shots 0.02, 1: 0.59, 4: 0.95; chance is 1/16
    assert effects["0 shots"]["right"] < 0.1 < 0.4 < effects["1 shots"]["right"] < effects["4 shots"]["right"]
    assert effects["4 shots"]["right"] > 0.8
    assert effects["4 shots, the last one wrong"]["deviant"] > 0.0                  # measured 0.13
    with icl.ablate_heads(model, [(1, h) for h in range(4)]):
        assert icl.lookup_accuracy(model, V, shots=4)["right"] < 0.1                # measured 0.004


def test_phase_change_step():
    rows = [{"step": 25 * k, "repeat_loss": x} for k, x in enumerate([4.1, 3.0, 1.2, 0.9, 0.4], start=1)]
    assert icl.phase_change_step(rows) == 100
    assert icl.phase_change_step(rows, below=0.5) == 125
    assert icl.phase_change_step(rows, below=0.1) is None
    with pytest.raises(ArgumentError, match="history"):
        icl.phase_change_step([{"step": 1}])


def test_the_committed_sweep_is_what_it_says():
    sweep = icl.load_sweep()
    assert sweep["seeds"] == [0, 1, 2, 3, 4] and sweep["vocab_size"] == V
    for run in sweep["runs"]["2 layers"]:
        assert run["phase_change_step"] == icl.phase_change_step(run["history"]) is not None
        assert run["ablations"]["layer 2, all heads"]["lookup_4_shots"] < 0.1
        assert list(run["demonstrations"]) == list(icl.DEMONSTRATION_EFFECTS)
    for run in sweep["runs"]["1 layer"]:
        assert run["phase_change_step"] is None
        assert max(map(max, run["head_scores"]["prefix_matching"])) < 0.1


def test_a_model_without_attention_trains_on_the_same_task_given_its_length():
    from llmcourse.rnn import RecurrentLanguageModel

    torch.manual_seed(0)
    lstm = RecurrentLanguageModel(V, d_embed=16, d_hidden=32, cell="lstm")
    with pytest.raises(ArgumentError, match="give seq_len"):
        icl.train_icl(lstm, V, steps=1)
    history = icl.train_icl(lstm, V, steps=40, eval_every=20, seed=0, lr=1e-2, seq_len=64)
    assert [row["step"] for row in history] == [20, 40]
    assert "prefix_matching" not in history[-1]  # no attention, no head scores
    assert history[-1]["repeat_loss"] == icl.repeat_loss(lstm, V, seq_len=64)  # the same measurement
    assert history[-1]["loss"] < history[0]["loss"] < math.log(V) + 0.5


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
    with pytest.raises(ArgumentError, match="deviant"):
        icl.few_shot_lookup(2, V, shots=2, deviant="first")
    with pytest.raises(ArgumentError, match="deviant"):
        icl.few_shot_lookup(2, V, shots=4, deviant="middle")
    with pytest.raises(ArgumentError, match="place"):
        icl.few_shot_lookup(2, V, shots=2, place=19)
    with pytest.raises(ArgumentError, match="place"):
        icl.few_shot_lookup(2, V, shots=2, place="early")
    with pytest.raises(ArgumentError, match="n_labels"):
        icl.few_shot_lookup(2, 16, n_keys=8, n_labels=8)


def test_ablation_groups_split_the_heads_by_their_scores():
    scores = {"previous_token": torch.tensor([[0.5, 0.1, 0.3, 0.2], [0.0, 0.0, 0.0, 0.0]]),
              "prefix_matching": torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.2, 0.6, 0.4, 0.1]])}
    groups = icl.ablation_groups(scores)
    assert groups == {"none": [], "layer 2, all heads": [(1, 0), (1, 1), (1, 2), (1, 3)],
                      "previous-token heads": [(0, 0), (0, 2)], "other layer-1 heads": [(0, 1), (0, 3)],
                      "strongest induction head": [(1, 1)]}
    assert icl.ablation_groups(scores, threshold=0.4)["previous-token heads"] == [(0, 0)]
    with pytest.raises(ArgumentError, match="scores"):
        icl.ablation_groups({"previous_token": torch.zeros(3, 4)})
