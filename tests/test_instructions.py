"""The instruction generator: right answers, held-out phrasings and task kept apart, seeded, splits
kept apart, exact match, and bad arguments refused."""

import pytest

from llmcourse import chat, instructions as ins
from llmcourse.checks import ArgumentError


def test_every_answer_is_right_for_its_input():
    for ex in ins.instruction_examples(240, seed=3) + ins.instruction_examples(60, tasks=[ins.HELDOUT_TASK]):
        words = ex.input.split()
        expected = {"first_word": words[0], "last_word": words[-1], "reverse": " ".join(words[::-1]),
                    "upper": ex.input.upper(), "count": str(len(words))}.get(ex.task)
        if ex.task == "speaker":
            assert ex.answer.isupper() and ex.answer and ":" not in ex.answer
        else:
            assert 3 <= len(words) <= 8 and ex.answer == expected, ex
        assert ex.prompt == f"{ex.instruction}\n{ex.input}"
        assert ex.instruction == ins.TASKS[ex.task].phrasings[ex.phrasing]


def test_held_out_phrasings_and_the_held_out_task_never_appear_in_training():
    train = ins.instruction_examples(500, seed=0)
    assert {e.task for e in train} == set(ins.TASKS) - {ins.HELDOUT_TASK}
    assert all(e.phrasing < ins.SEEN_PHRASINGS for e in train)
    held = ins.instruction_examples(100, phrasings="heldout", split="validation")
    assert all(e.phrasing >= ins.SEEN_PHRASINGS for e in held)
    assert not {e.instruction for e in train} & {e.instruction for e in held}
    counts = {t: sum(e.task == t for e in train) for t in ins.TASKS if t != ins.HELDOUT_TASK}
    assert max(counts.values()) - min(counts.values()) <= 1  # the tasks take turns


def test_seeded_and_the_splits_draw_different_inputs():
    a, b = ins.instruction_examples(50, seed=1), ins.instruction_examples(50, seed=1)
    assert a == b and a != ins.instruction_examples(50, seed=2)
    train = {e.input for e in ins.instruction_examples(300, tasks=["first_word"])}
    val = {e.input for e in ins.instruction_examples(300, tasks=["first_word"], split="validation")}
    assert len(train & val) < 0.1 * len(val)  # a few short lines recur in Shakespeare; most do not


def test_conversations_render_with_the_answer_as_the_only_target():
    from llmcourse import zoo

    tok = chat.add_chat_tokens(zoo.tokenizer(zoo.card("bpe-transformer-shakespeare")))
    ex = ins.instruction_examples(1, tasks=["reverse"])[0]
    messages = ins.conversation(ex, system="Answer briefly.")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    ids, mask = chat.render(tok, messages)
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == ex.answer + chat.IM_END


def test_exact_match_and_bad_arguments():
    assert ins.exact_match([" To be  or", "NOT"], ["To be or", "not"]) == 0.5
    with pytest.raises(ArgumentError, match="equally long"):
        ins.exact_match(["a"], [])
    with pytest.raises(ArgumentError, match="'spell' is not a task"):
        ins.instruction_examples(3, tasks=["spell"])
    with pytest.raises(ArgumentError, match="phrasings must be one of"):
        ins.instruction_examples(3, phrasings="new")
    with pytest.raises(ArgumentError, match="n must be"):
        ins.instruction_examples(0)
    with pytest.raises(ArgumentError, match="example must be an Instruction"):
        ins.conversation({"prompt": "x"})


def test_few_shot_prompt_and_evaluate():
    q, d = ins.instruction_examples(2, tasks=["first_word"], seed=4)
    text = ins.few_shot_prompt(q, [d])
    assert text == f"{d.instruction}\n{d.input}\nAnswer: {d.answer}\n\n{q.instruction}\n{q.input}\nAnswer:"
    assert ins.few_shot_prompt(q) == f"{q.prompt}\nAnswer:"
    examples = ins.instruction_examples(40, seed=5)
    perfect = ins.evaluate(lambda e: f"  {e.answer} ", examples)  # white space around is forgiven
    assert perfect["all"] == 1.0 and set(perfect) == {e.task for e in examples} | {"all"}
    first_only = ins.evaluate(lambda e: e.input.split()[0], examples)
    assert first_only["first_word"] == 1.0 and first_only["reverse"] < 0.2 and 0 < first_only["all"] < 0.5
    with pytest.raises(ArgumentError, match="answer must return a str"):
        ins.evaluate(lambda e: None, examples)
    with pytest.raises(ArgumentError, match="answer must be a function"):
        ins.evaluate("first", examples)
    with pytest.raises(ArgumentError, match="examples"):
        ins.evaluate(lambda e: "", [])
    with pytest.raises(ArgumentError, match="demonstrations\\[0\\]"):
        ins.few_shot_prompt(q, ["not an example"])


def test_generalisation_rows_draw_what_they_say():
    seen = []
    table = ins.generalisation(lambda e: seen.append(e) or e.answer, 12, seed=3)
    assert list(table) == list(ins.GENERALISATION) and all(row["all"] == 1.0 for row in table.values())
    rows = [seen[:12], seen[12:24], seen[24:]]
    assert all(e.phrasing < ins.SEEN_PHRASINGS and e.task != ins.HELDOUT_TASK for e in rows[0])
    assert all(e.phrasing >= ins.SEEN_PHRASINGS and e.task != ins.HELDOUT_TASK for e in rows[1])
    assert all(e.task == ins.HELDOUT_TASK for e in rows[2])
    train_inputs = {e.input for e in ins.instruction_examples(300, seed=0)}
    assert sum(e.input in train_inputs for e in seen) <= 3  # validation inputs, not training ones


def test_sft_mixture_is_seeded_and_holds_both_kinds():
    mix = ins.sft_mixture(30, 10, seed=2)
    assert mix == ins.sft_mixture(30, 10, seed=2) and mix != ins.sft_mixture(30, 10, seed=3)
    orders = [c for c in mix if c[0]["role"] == "system"]
    assert len(mix) == 40 and len(orders) == 10 and all(c[0]["content"].startswith("Menu:") for c in orders)
    assert [i for i, c in enumerate(mix) if c[0]["role"] == "system"] != list(range(30, 40))  # shuffled together
    for c in mix:
        chat.check_messages(c)
    with pytest.raises(ArgumentError, match="n_instructions"):
        ins.sft_mixture(-1)
    with pytest.raises(ArgumentError, match="at least 1"):
        ins.sft_mixture(0, 0)


def test_few_shot_answer_drops_demonstrations_to_fit_the_context():
    from llmcourse import zoo

    model, card = zoo.load("bpe-transformer-shakespeare")
    tok = zoo.tokenizer(card)
    q = ins.instruction_examples(1, split="validation", tasks=["speaker"], seed=1)[0]
    demos = ins.instruction_examples(12, tasks=["speaker"], seed=2)  # far more than 128 tokens together
    out = ins.few_shot_answer(model, tok, q, demos, max_new_tokens=8)
    assert isinstance(out, str) and "\n" not in out


def test_sft_mixture_shares_the_orders_between_pools():
    mix = ins.sft_mixture(0, 9, order_pools=("train", "words"), seed=1)
    from llmcourse import ordering

    train_menus = sum(all(w in ordering.TRAIN_ITEMS for w in
                          [i.split()[0] for i in c[0]["content"][len("Menu: "):-1].split("; ")]) for c in mix)
    assert len(mix) == 9 and train_menus == 5
    with pytest.raises(ArgumentError, match="order_pools"):
        ins.sft_mixture(1, 1, order_pools=("heldout",))
