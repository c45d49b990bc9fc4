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
