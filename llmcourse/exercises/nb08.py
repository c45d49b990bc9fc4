"""Checkers for notebook 08 (instruction tuning and chat)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice


@exercise(
    "08.1",
    "Write sft_targets(ids, mask): the targets for the inputs ids[:-1]: the next token where that next "
    "token's mask is 1, else -100.",
    hints=[
        "The target at position t is ids[t + 1], and whether it counts is decided by mask[t + 1], not mask[t].",
        "[t if m else -100 for t, m in zip(ids[1:], mask[1:])]",
    ],
)
def _sft_targets(fn):
    cases = [
        (([5, 6, 7, 8], [0, 0, 1, 1]), [-100, 7, 8]),
        (([1, 2, 3, 4, 5, 6], [0, 1, 1, 0, 1, 1]), [2, 3, -100, 5, 6]),
        (([9, 9], [1, 1]), [9]),
        (([3, 1, 4, 1, 5], [0, 0, 0, 0, 1]), [-100, -100, -100, 5]),
    ]

    def same(got, want):
        try:
            got = [int(t) for t in got]
        except TypeError:
            raise Incorrect(f"sft_targets should return a list of ints, got {type(got).__name__}.") from None
        if len(got) == len(want) + 1:
            raise Incorrect("One target too many: the inputs are ids[:-1], so there is one target fewer than ids.")
        return got == want

    check_function(fn, cases, name="sft_targets", close=same)
    return "That is chat.sft_example's target rule: the mask travels with the token being predicted."


@exercise(
    "08.2",
    "A rendered conversation is 60 tokens long; the assistant writes 12 of them, none of them the first "
    "token. How many targets does the loss average over with the assistant-only mask, and with every token? "
    "Answer a pair (masked, every).",
    hints=[
        "Next-token prediction on 60 tokens has 59 (input, target) pairs: the first token is never a target.",
        "The mask keeps the targets the assistant wrote.",
    ],
)
def _target_counts(answer):
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__len__") or len(answer) != 2:
        raise Incorrect(f"Answer a pair (masked, every), got {answer!r}.")
    masked, every = answer
    if (masked, every) == (12, 60) or every == 60:
        raise Incorrect("60 tokens give 59 targets: the first token has nothing before it to be predicted from.")
    if masked == 48 or masked == 47:
        raise Incorrect("The mask keeps what the assistant writes, not what the others write.")
    if (masked, every) != (12, 59):
        raise Incorrect(f"Not ({masked}, {every}): count the assistant's tokens for the first, and all targets "
                        f"for the second.")
    return "12 and 59: masked SFT puts every gradient on a fifth of the targets."


@exercise(
    "08.3",
    "Write chatml(messages, add_generation_prompt=False) that renders messages as ChatML text, exactly as "
    "chat.render_text does (without its checks).",
    hints=[
        "Each message is '<|im_start|>' + role + newline + content + '<|im_end|>' + newline.",
        "With add_generation_prompt, end with the header of the assistant's turn: '<|im_start|>assistant' and "
        "a newline.",
    ],
)
def _chatml(fn):
    from llmcourse import chat

    convs = [
        [{"role": "user", "content": "Give the first word.\nSo full of frost"}],
        [{"role": "system", "content": "Menu: ale 2."}, {"role": "user", "content": "One ale."},
         {"role": "assistant", "content": "1 ale."}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
         {"role": "user", "content": "Count the words.\nTo be or not"}],
    ]
    cases = [((c, g), chat.render_text(c, add_generation_prompt=g))
             for c in convs for g in (False, True) if not (g and c[-1]["role"] != "user")]
    check_function(fn, cases, name="chatml")
    return "That is the ChatML template, and HF_CHAT_TEMPLATE writes the same in Jinja."


@exercise(
    "08.4",
    "Why give the chat tokens the new ids 1024 and 1025 instead of two ids the base rarely uses? "
    "Answer 'a', 'b' or 'c'.",
    hints=["What would an old text containing those two ids mean to the model afterwards?"],
)
def _new_ids(answer):
    expect_choice(
        answer, "b", ["a", "b", "c"],
        explain={"a": "Nothing requires ids to be sorted by frequency; BPE ids follow merge order, and new "
                      "special tokens can go anywhere that is free.",
                 "c": "The softmax does not care which ids are large; every id is one row of the output layer."},
    )
    return "Reusing ids would silently change old texts and throw away trained rows; appending keeps both."
