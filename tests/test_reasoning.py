"""Chain of thought (llmcourse.reasoning): the answer formats and their parser, problems and carries, the
masked training examples and the few-shot mixture, majority voting, and a small model for which the
scratchpad makes the difference."""

import pytest
import torch

from llmcourse import reasoning as rs
from llmcourse.checks import ArgumentError
from llmcourse.lm import IGNORE_INDEX

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_three_formats_of_one_sum_and_one_product():
    p = rs.Problem(357, 468)
    assert rs.render(p, "direct") == ("357+468=", "825.")
    assert rs.render(p, "reversed") == ("357+468=", "528.")
    assert rs.render(p, "scratchpad") == ("357+468=", "7+8+0=15,5+6+1=12,3+4+1=08>825.")
    assert (p.digits, p.carries) == (3, 2)
    q = rs.Problem(357, 6, "*")
    assert rs.render(q, "scratchpad") == ("357*6=", "7*6+0=42,5*6+4=34,3*6+3=21>2142.")
    assert (q.answer, q.carries) == (2142, 3)
    assert rs.render(rs.Problem(999, 1), "scratchpad")[1] == "9+1+0=10,9+0+1=10,9+0+1=10>1000."  # b shorter


def test_parse_reads_every_format_and_refuses_what_is_malformed():
    for p in rs.problems(300, (1, 6), op="both", seed=0):
        for fmt in rs.FORMATS:
            assert rs.parse(rs.render(p, fmt)[1], fmt) == p.answer
        assert rs.parse(rs.render(p, "scratchpad")[1], "auto") == p.answer
        assert rs.parse(rs.render(p, "direct")[1], "auto") == p.answer
    assert rs.parse("825.|12+3=", "direct") == 825                  # read up to the stop
    assert rs.parse("7+8+0=15,5+6+1=12,3+4+1=08>826.", "scratchpad") == 826   # only the answer counts
    for bad, fmt in [("825", "direct"), ("8+5.", "direct"), ("", "direct"), (".", "direct"),
                     ("7+8+0=15.", "scratchpad"), ("7+8+0=15>.", "scratchpad"), ("82>5.", "reversed")]:
        assert rs.parse(bad, fmt) is None, (bad, fmt)


def test_problems_are_seeded_and_have_the_digits_asked_for():
    a = rs.problems(500, (2, 4), seed=1)
    assert a == rs.problems(500, (2, 4), seed=1) != rs.problems(500, (2, 4), seed=2)
    assert {p.digits for p in a} == {2, 3, 4} and all(len(str(p.b)) == p.digits for p in a)
    m = rs.problems(200, 3, op="*", seed=0)
    assert all(p.op == "*" and 2 <= p.b <= 9 and p.digits == 3 for p in m)
    assert {p.op for p in rs.problems(100, 2, op="both")} == {"+", "*"}
    carries = rs.accuracy_by(a, [True] * len(a), "carries")
    assert set(carries) <= {0, 1, 2, 3, 4} and all(v == 1.0 for v in carries.values())
    assert rs.accuracy_by(a[:4], [True, False, True, True], "digits") == {
        d: sum(r for p, r in zip(a[:4], [True, False, True, True]) if p.digits == d) /
        sum(1 for p in a[:4] if p.digits == d) for d in sorted({p.digits for p in a[:4]})}


def test_training_examples_learn_the_completion_only():
    items = rs.problems(20, (1, 3), seed=0)
    for fmt in rs.FORMATS:
        ex = rs.training_examples(items, fmt)
        for p, x, y in zip(items, ex.inputs, ex.targets):
            shown, said = rs.render(p, fmt)
            assert rs.decode(x) == shown + said
            kept = y[y != IGNORE_INDEX]
            assert rs.decode(kept) == said
            assert int((y != IGNORE_INDEX).nonzero()[0]) == len(shown) - 1   # the first target follows '='
            assert torch.equal(x[1:][y[:-1] != IGNORE_INDEX], y[:-1][y[:-1] != IGNORE_INDEX])


def test_mixture_sequences_keep_one_format_and_their_trigger():
    ex = rs.mixture_examples(300, (1, 3), max_shots=2, trigger_rate=0.5, seed=0)
    seen = {"S": 0, "D": 0, "": 0}
    for x, y in zip(ex.inputs, ex.targets):
        text = rs.decode(x)
        lead = text[0] if text[0] in "SD" else ""
        seen[lead] += 1
        parts = text[len(lead):].split("|")
        assert 1 <= len(parts) <= 3
        scratch = [">" in part for part in parts]
        assert all(scratch) or not any(scratch)                       # one format per sequence
        if lead:
            assert all(scratch) == (lead == "S")
        targets = rs.decode(y[y != IGNORE_INDEX])
        assert targets == "".join(part.split("=", 1)[1] for part in parts)   # every completion, nothing else
    assert min(seen.values()) > 50


def test_prompts_and_majority_votes():
    p, d = rs.Problem(12, 34), rs.Problem(5, 6)
    assert rs.prompt(p) == "12+34="
    assert rs.prompt(p, trigger="scratchpad") == "S12+34="
    assert rs.prompt(p, demonstrations=[d], fmt="direct") == "5+6=11.|12+34="
    assert rs.prompt(p, demonstrations=[d]) == "5+6=5+6+0=11>11.|12+34="
    assert rs.majority_vote([3, 4, 4, None, 3, 4]) == 4
    assert rs.majority_vote([None, 7, 3, 3, 7]) == 7                  # a tie goes to the first to appear
    assert rs.majority_vote([None, None]) is None
    assert rs.majority_vote([5]) == 5


@pytest.fixture(scope="module")
def scratchpad_and_direct():
    """Two models trained alike on 1- and 2-digit addition, one with the scratchpad, one answering directly."""
    models = {}
    for fmt in ("scratchpad", "direct"):
        model = rs.arithmetic_model(n_layer=2, n_embd=64, context=48, seed=0)
        train = rs.training_examples(rs.problems(8000, (1, 2), seed=1), fmt)
        val = rs.training_examples(rs.problems(64, (1, 2), seed=2), fmt)
        rs.arithmetic_trainer(model, train, val, steps=300, batch_size=32).fit()
        models[fmt] = model
    return models


def test_the_scratchpad_makes_the_difference(scratchpad_and_direct):
    items = rs.problems(300, 2, seed=3)
    acc = {fmt: sum(rs.accuracy(m, items, fmt)) / len(items) for fmt, m in scratchpad_and_direct.items()}
    # measured: scratchpad 0.71, direct 0.06 after the same 300 steps (by 500 steps direct reaches 0.71 too)
    assert acc["scratchpad"] > 0.5 and acc["direct"] < acc["scratchpad"] - 0.4


def test_self_consistency_samples_are_seeded_and_vote(scratchpad_and_direct):
    model = scratchpad_and_direct["scratchpad"]
    items = rs.problems(40, 2, seed=4)
    a = rs.self_consistency(model, items, samples=5, temperature=1.0, seed=0)
    assert a == rs.self_consistency(model, items, samples=5, temperature=1.0, seed=0)
    assert len(a) == 40 and all(len(x) == 5 for x in a)
    votes = [rs.majority_vote(x) for x in a]
    assert sum(v == p.answer for v, p in zip(votes, items)) >= 0.35 * len(items)   # measured 23 of 40
    many = rs.solve(model, [rs.prompt(p) for p in items], temperature=1.0, generator=torch.Generator().manual_seed(0),
                    batch_size=7)                                     # batches of 7: the same as one batch
    one = rs.solve(model, [rs.prompt(p) for p in items], temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(many) == len(one) == 40


def test_bad_input_is_refused():
    with pytest.raises(ArgumentError, match="digits"):
        rs.problems(3, 0)
    with pytest.raises(ArgumentError, match="digits"):
        rs.problems(3, (3, 2))
    with pytest.raises(ArgumentError, match="op"):
        rs.problems(3, 2, op="-")
    with pytest.raises(ArgumentError, match="fmt"):
        rs.render(rs.Problem(1, 2), "words")
    with pytest.raises(ArgumentError, match="fmt"):
        rs.parse("3.", "words")
    with pytest.raises(ArgumentError, match="trigger"):
        rs.prompt(rs.Problem(1, 2), trigger="think")
    with pytest.raises(ArgumentError, match="text"):
        rs.encode("12 + 3")
    with pytest.raises(ArgumentError, match="texts"):
        rs.solve(rs.arithmetic_model(n_layer=1, n_embd=16, context=8), [])
    with pytest.raises(ArgumentError, match="texts"):
        rs.solve(rs.arithmetic_model(n_layer=1, n_embd=16, context=8), ["12345+67890="])
    with pytest.raises(ArgumentError, match="key"):
        rs.accuracy_by([rs.Problem(1, 2)], [True], "size")
    with pytest.raises(ArgumentError, match="samples"):
        rs.self_consistency(rs.arithmetic_model(n_layer=1, n_embd=16, context=8), [rs.Problem(1, 2)], samples=0)


def test_the_five_prompts_as_text():
    items, demos = [rs.Problem(12, 34), rs.Problem(5, 6)], [rs.Problem(1, 2), rs.Problem(3, 4)]
    texts = {name: rs.prompt_texts(items, demos, **how) for name, how in rs.PROMPTS.items()}
    assert texts["step-by-step trigger"] == ["S12+34=", "S5+6="]
    assert texts["direct trigger"] == ["D12+34=", "D5+6="]
    assert texts["one direct demonstration"] == ["1+2=3.|12+34=", "3+4=7.|5+6="]
    assert texts["one scratchpad demonstration"][0] == "1+2=1+2+0=03>3.|12+34="
    assert texts["no prompt"] == ["12+34=", "5+6="]
    with pytest.raises(ArgumentError, match="demos"):
        rs.prompt_texts(items, demos[:1], fmt="direct", shots=1)
