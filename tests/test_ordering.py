"""The ordering-bot generator: well-formed conversations whose orders add up, held-out dishes kept apart,
seeded, the summary format read back, scoring field by field, evaluation with an oracle and a bad bot, the
length budget, and bad arguments refused."""

import re

import numpy as np
import pytest

from llmcourse import chat, ordering as o
from llmcourse.checks import ArgumentError

TRAIN = o.dialogues(300, seed=0)
HELDOUT = o.dialogues(300, pool="heldout", seed=0)


@pytest.fixture(scope="module")
def tok():
    from llmcourse import zoo

    return chat.add_chat_tokens(zoo.tokenizer(zoo.card("bpe-transformer-shakespeare")))


def _words(d):
    return set(re.findall(r"[a-z]+", " ".join(m["content"].lower() for m in d.messages)))


def test_conversations_are_well_formed_and_their_orders_add_up():
    for d in TRAIN + HELDOUT:
        assert chat.check_messages(d.messages) == d.messages
        assert d.messages[0] == {"role": "system", "content": d.menu.text()}
        assert [m["role"] for m in d.messages[1:]] == ["user", "assistant"] * len(d.turns)
        assert d.turns[-2:] == ("ask_mode", "summary") and set(d.turns) <= set(o.TURN_KINDS)
        assert 1 <= len(d.lines) <= 3 and len(d.lines) + len(d.refused) + d.turns.count("ask_size") <= o.BUSY
        assert d.turns.count("confirm") == len(d.lines) and d.turns.count("refuse") == len(d.refused)
        names = [line.item for line in d.lines]
        assert len(set(names)) == len(names) and set(names) <= set(d.menu.names)  # each dish once, all on the menu
        assert not set(d.refused) & set(d.menu.names)                              # refused: not on the menu
        assert all(1 <= line.quantity <= 4 and line.size in d.menu.item(line.item).sizes for line in d.lines)
        summary = o.parse_summary(d.summary)
        prices = [line.quantity * d.menu.price(line.item, line.size) for line in d.lines]
        assert summary.prices == tuple(prices) and summary.total == d.total == sum(prices)
        assert summary.mode == d.mode and d.summary.endswith(f"{d.mode.capitalize()}.")
        for kind, m in zip(d.turns, d.messages[2::2]):  # the assistant's turns say what their kind says
            text = m["content"]
            assert {"ask_size": text == o.ASK_SIZE, "ask_mode": text == o.ASK_MODE,
                    "refuse": text.startswith("Sorry, we have no "), "summary": text == d.summary,
                    "confirm": re.fullmatch(r"\d [a-z ]+\.", text) is not None}[kind], (kind, text)
    # every menu item is well formed: one size, or little and great with the great dearer
    for d in TRAIN:
        for item in d.menu.items:
            assert item.sizes in ((None,), o.SIZES) and all(1 <= p <= 9 for _, p in item.prices)
            assert len(item.prices) == 1 or item.prices[0][1] < item.prices[1][1]


def test_every_kind_of_turn_happens_often_enough_to_learn():
    turns = [k for d in TRAIN for k in d.turns]
    refused = np.mean([bool(d.refused) for d in TRAIN])
    assert 0.1 < refused < 0.35 and turns.count("ask_size") > 20
    assert {len(d.lines) for d in TRAIN} == {1, 2, 3} and {d.mode for d in TRAIN} == {"pickup", "delivery"}


def test_held_out_dishes_never_appear_in_training():
    assert not set(o.TRAIN_ITEMS) & set(o.HELDOUT_ITEMS)
    assert len(set(o.TRAIN_ITEMS)) >= 16 and len(set(o.HELDOUT_ITEMS)) >= 8
    train_words = set().union(*map(_words, TRAIN))
    assert set(o.TRAIN_ITEMS) <= train_words and not set(o.HELDOUT_ITEMS) & train_words
    for d in HELDOUT:
        assert set(d.menu.names) | set(d.refused) <= set(o.HELDOUT_ITEMS)
        assert not _words(d) & set(o.TRAIN_ITEMS) and not {w[:-1] for w in _words(d)} & set(o.TRAIN_ITEMS)


def test_seeded():
    assert o.dialogues(20, seed=1) == o.dialogues(20, seed=1) != o.dialogues(20, seed=2)
    assert o.dialogue(5) == o.dialogue(5) == o.dialogues(3, seed=5)[0] != o.dialogue(6)
    assert o.dialogue(5, pool="heldout") == o.dialogues(1, pool="heldout", seed=5)[0]


def test_the_summary_format_reads_back_and_junk_does_not():
    for d in TRAIN + HELDOUT:
        s = o.parse_summary(d.summary)
        assert s.lines == d.lines and s.total == d.total and s.mode == d.mode
        assert o.summary_text(s.lines, s.prices, s.total, s.mode) == d.summary
    assert o.parse_summary("  2 great ale 6, 1 pie 4. Total 10. Delivery.\n").lines == (
        o.OrderLine("ale", "great", 2), o.OrderLine("pie", None, 1))
    for junk in ("", "Pickup or delivery?", "2 great ale.", "2 great ale 6. Total 10.",
                 "2 great ale 6 Total 6. Pickup.", "two great ale 6. Total 6. Pickup.",
                 "2 great ale 6, . Total 6. Pickup.", "2 great ale 6. Total 6. Pickup. Hi"):
        assert o.parse_summary(junk) is None, junk


def test_score_marks_exactly_the_wrong_field():
    d = next(d for d in TRAIN if len(d.lines) == 2)
    perfect = o.score(d, d.summary)
    assert perfect == {"well_formed": True, "items_correct": True, "slots_correct": True, "slot_accuracy": 1.0,
                       "invented": 0, "total_correct": True, "mode_correct": True}
    s = o.parse_summary(d.summary)

    def changed(lines=s.lines, prices=s.prices, total=s.total, mode=s.mode):
        got = o.score(d, o.summary_text(lines, prices, total, mode))
        return {k: v for k, v in got.items() if v != perfect[k]}

    first = s.lines[0]
    wrong_quantity = (o.OrderLine(first.item, first.size, first.quantity % 4 + 1),) + s.lines[1:]
    assert changed(lines=wrong_quantity) == {"slots_correct": False, "slot_accuracy": 0.5}
    absent = next(n for n in o.TRAIN_ITEMS if n not in d.menu.names)
    invented = s.lines + (o.OrderLine(absent, None, 1),)
    assert changed(lines=invented, prices=s.prices + (3,)) == {"items_correct": False, "slots_correct": False,
                                                                "invented": 1}
    assert changed(total=s.total + 1) == {"total_correct": False}
    assert changed(mode="pickup" if d.mode == "delivery" else "delivery") == {"mode_correct": False}
    assert changed(lines=s.lines[::-1], prices=s.prices[::-1]) == {}  # the order of the lines does not matter
    assert o.score(d, "I know not.") == {"well_formed": False, "items_correct": False, "slots_correct": False,
                                         "slot_accuracy": 0.0, "invented": 0, "total_correct": False,
                                         "mode_correct": False}


def _oracle(pool):
    """A reply that knows every conversation: the gold turn that follows this history."""
    table = {}
    for d in pool:
        for i in range(2, len(d.messages), 2):
            table[repr(d.messages[:i])] = d.messages[i]["content"]
    return lambda messages: table[repr(messages)]


@pytest.mark.parametrize("history", ["gold", "model"])
def test_evaluate_an_oracle_scores_perfect_and_a_parrot_does_not(history):
    ds = TRAIN[:60]
    result = o.evaluate(_oracle(ds), ds, history=history)
    rates = {k: v for k, v in result.items() if k not in ("rows", "turn_accuracy", "n", "invented")}
    assert rates == dict.fromkeys(rates, 1.0) and result["invented"] == 0 and result["n"] == 60
    assert set(result["turn_accuracy"].values()) == {1.0}
    row = result["rows"][0]
    assert row["summary"] == ds[0].summary and [k for k, _, _ in row["turns"]] == list(ds[0].turns)
    parrot = o.evaluate(lambda messages: o.ASK_MODE, ds, history=history)
    assert parrot["well_formed"] == parrot["total_correct"] == parrot["confirm_accuracy"] == 0.0
    assert parrot["turn_accuracy"]["ask_mode"] == 1.0


def test_evaluate_keeps_the_bots_own_replies_only_with_model_history():
    d = next(d for d in TRAIN if len(d.turns) >= 4)
    seen = []

    def bot(messages):
        seen.append(messages)
        return "<|im_end|>" if len(seen) == 1 else "2 great ale."

    o.evaluate(bot, [d], history="model")
    assert seen[1][2] == {"role": "assistant", "content": "..."}  # nothing left: kept as "..." (never empty)
    assert seen[2][4] == {"role": "assistant", "content": "2 great ale."}
    assert all(m[-1] == d.messages[len(m) - 1] for m in seen)  # the customer's lines are the script's
    seen.clear()
    o.evaluate(bot, [d], history="gold")
    assert all(m == d.messages[:len(m)] for m in seen)


def test_every_conversation_fits_the_length_budget(tok):
    lengths = [len(chat.render(tok, d.messages)[0]) for d in TRAIN + HELDOUT]
    assert max(lengths) <= 230 and np.mean(lengths) > 120  # the budget is used, not wasted


def test_the_menu_and_bad_arguments():
    menu = o.Menu((o.MenuItem("ale", (("little", 2), ("great", 3))), o.MenuItem("pie", ((None, 4),))))
    assert menu.text() == "Menu: ale little 2 great 3; pie 4."
    assert menu.price("ale", "great") == 3 and menu.price("pie") == 4
    assert len(o.random_menu(np.random.default_rng(0), "heldout", 4).items) == 4
    bad = [(lambda: o.dialogues(3, pool="test"), "pool"), (lambda: o.dialogue(1, pool=None), "pool"),
           (lambda: o.dialogues(0), "n"), (lambda: o.dialogues(2.5), "n"), (lambda: o.dialogue(-1), "seed"),
           (lambda: o.dialogues(2, seed="0"), "seed"), (lambda: o.evaluate("bot", TRAIN[:2]), "reply"),
           (lambda: o.evaluate(lambda m: 3, TRAIN[:2]), "reply"),
           (lambda: o.evaluate(lambda m: "", TRAIN[:2], history="teacher"), "history"),
           (lambda: o.evaluate(lambda m: "", []), "dialogues"),
           (lambda: o.evaluate(lambda m: "", TRAIN[0]), "dialogues"),
           (lambda: o.score(TRAIN[0].messages, "x"), "dialogue"), (lambda: o.score(TRAIN[0], None), "summary"),
           (lambda: o.parse_summary(3), "text"), (lambda: menu.price("stew"), "item"),
           (lambda: menu.price("ale"), "size"), (lambda: o.random_menu(0), "rng"),
           (lambda: o.random_menu(np.random.default_rng(0), n_items=9), "n_items"),
           (lambda: o.summary_text([], [], 0, "pickup"), "lines"),
           (lambda: o.summary_text(TRAIN[0].lines, [1] * len(TRAIN[0].lines), 1, "by cart"), "mode")]
    for call, name in bad:
        with pytest.raises(ArgumentError, match=rf"\b{name}\b"):
            call()


def test_chat_bot_answers_and_scores_an_overfull_conversation_as_wrong(tok):
    """A chat model's reply function: it answers through chat.respond, and a conversation grown past the
    context (here by a bot that keeps writing) gets an empty reply instead of stopping the evaluation."""
    from llmcourse import zoo

    base, _ = zoo.load("bpe-transformer-shakespeare")
    model = chat.extend_vocab(base, tok.vocab_size)  # context 128: the ordering dialogues do not fit
    bot = o.chat_bot(model, tok, max_new_tokens=4)
    d = TRAIN[0]
    assert isinstance(bot(d.messages[:2]), str)
    assert bot(d.messages[:-1]) == ""  # the whole dialogue is longer than 128 tokens
    result = o.evaluate(bot, TRAIN[:3], history="model")
    assert result["n"] == 3 and result["slots_correct"] == 0.0
    with pytest.raises(ArgumentError, match="max_new_tokens"):
        o.chat_bot(model, tok, max_new_tokens=0)


def test_the_words_pool_stands_in_for_dishes_and_keeps_the_held_out_ones_out(tok):
    words = o.pool_items("words")
    assert len(words) > 1000 and len(set(words)) == len(words)
    assert not set(words) & (set(o.TRAIN_ITEMS) | set(o.HELDOUT_ITEMS) | set(o.SIZES))
    dialogues = o.dialogues(300, pool="words", seed=0)
    for d in dialogues:
        assert set(d.menu.names) | set(d.refused) <= set(words)
        assert not _words(d) & set(o.HELDOUT_ITEMS) and not {w[:-1] for w in _words(d)} & set(o.HELDOUT_ITEMS)
        assert len(chat.render(tok, d.messages)[0]) <= 240  # the chat model's context is 256
    assert o.pool_items("train") == o.TRAIN_ITEMS
    with pytest.raises(ArgumentError, match="pool"):
        o.pool_items("menu")
