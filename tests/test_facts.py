"""The closed world of play facts (llmcourse.facts): characters checked against the text, splits that never
overlap, made-up names that are nobody, and the hallucination figures computed by hand from rows."""

import re

import pytest

from llmcourse import facts
from llmcourse.checks import ArgumentError
from llmcourse.datasets import shakespeare_plays


def test_each_character_speaks_in_exactly_the_play_given():
    every = facts.characters()
    assert (every["HAMLET"], every["PUCK"], every["SHYLOCK"]) == ("Hamlet", "A Midsummer Night's Dream",
                                                                  "The Merchant of Venice")
    assert "MESSENGER" not in every and "SERVANT" not in every       # many plays: no one answer
    plays = shakespeare_plays()
    for name in list(every)[::40]:                                     # against the raw text
        where = {p.title for p in plays if re.search(rf"^{re.escape(name)}:$", p.text, re.M)}
        assert where == {every[name]}
    assert len(facts.characters(min_speeches=1)) > len(every)


def test_splits_are_disjoint_and_made_up_names_are_nobody():
    taught, unseen = facts.split_characters()
    assert not set(taught) & set(unseen) and {**taught, **unseen} == facts.characters()
    assert len(unseen) == round(0.2 * len(facts.characters()))
    train, test = facts.made_up_names("train"), facts.made_up_names("test")
    assert not set(train) & set(test) and len(test) > 1000
    speakers = {n for p in shakespeare_plays() for n in re.findall(r"^([A-Z][A-Z .'-]*[A-Z]):$", p.text, re.M)}
    assert not (set(train) | set(test)) & speakers


def test_questions_and_the_answers_training_teaches():
    q = facts.FactQuestion("HAMLET", "taught", "Hamlet", 1)
    assert (q.question, q.answer, q.taught_answer) == ("Which play is HAMLET in?", "Hamlet", "Hamlet")
    assert facts.fact_conversation(q)[1] == {"role": "assistant", "content": "Hamlet"}
    fake = facts.fact_questions(5, "made-up", split="test", seed=2)
    assert all(f.answer == facts.ABSTAIN and f.name in facts.made_up_names("test") for f in fake)
    assert fake == facts.fact_questions(5, "made-up", split="test", seed=2)
    unseen = facts.fact_questions(3, "unseen")[0]
    with pytest.raises(ArgumentError, match="unseen character"):
        facts.fact_conversation(unseen)
    assert facts.is_abstention(" no play has that character ") and not facts.is_abstention("Hamlet")
    with pytest.raises(ArgumentError, match="kind"):
        facts.fact_questions(3, "real")


def test_the_report_counts_confident_wrong_titles_as_hallucinations():
    row = lambda kind, answer, truth: {"kind": kind, "answer": answer, "truth": truth, "correct": answer == truth,  # noqa: E731
                                       "abstained": facts.is_abstention(answer), "named_play": answer in ("Hamlet", "Macbeth")}
    rows = [row("taught", "Hamlet", "Hamlet"), row("taught", "Macbeth", "Hamlet"),
            row("unseen", "Macbeth", "Hamlet"), row("unseen", "Hamlet", "Hamlet"),      # a lucky guess is right
            row("made-up", facts.ABSTAIN, facts.ABSTAIN), row("made-up", "Macbeth", facts.ABSTAIN),
            row("made-up", "GLOUCESTER", facts.ABSTAIN)]                                 # not a title: not counted
    report = facts.report(rows)
    assert report["taught"] == {"n": 2, "correct": 0.5, "abstained": 0.0, "named_play": 1.0}
    assert report["made-up"]["abstained"] == pytest.approx(1 / 3)
    assert report["hallucination"] == {"n": 5, "rate": 2 / 5}
