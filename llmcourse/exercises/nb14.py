"""Checkers for notebook 14 (the capstone)."""

from llmcourse.exercises import exercise, expect_choice, expect_number


def _pretrain_flops() -> tuple[float, int, int, float]:
    from llmcourse import zoo

    pre = zoo.card("bpe-capstone-shakespeare")["stages"]["pretrain"]
    s = pre["settings"]
    tokens = s["steps"] * s["batch_size"] * s["block_size"]
    return 6 * pre["parameters"] * tokens, pre["parameters"], tokens, pre["seconds"]


@exercise(
    "14.1",
    "From the zoo card, how many floating-point operations did the capstone's pretraining take by the 6ND "
    "rule (N: the pretrained model's parameters; D: steps x batch size x block size)?",
    hints=["card = zoo.card('bpe-capstone-shakespeare'); pre = card['stages']['pretrain']: N is "
           "pre['parameters'], and the steps, batch size and block size are in pre['settings']."],
)
def _flops(answer):
    flops, n, tokens, seconds = _pretrain_flops()
    expect_number(answer, flops, rel_tol=0.01, what="Your FLOP count",
                  mistakes={2 * n * tokens: "2ND counts the forward pass only; training adds the backward pass, "
                                            "about twice the forward: 6ND.",
                            6 * n * tokens / 32: "D is every token of every step: multiply by the batch size too.",
                            6 * n * tokens / 128: "D is every token of every step: multiply by the block size too."})
    gpt3 = 3.14e23   # GPT-3's training compute as its paper reports it (notebook 06)
    return (f"{flops:.2e} FLOPs in {seconds:.0f} s of pretraining ({flops / seconds / 1e9:.0f} GFLOP/s on this CPU); "
            f"GPT-3 took {gpt3:.2e}, {gpt3 / flops:.1e} times as much.")


@exercise(
    "14.2",
    "Had the SFT mixture held no arithmetic conversations, which report-card column would fall the most? "
    "Answer 'a', 'b' or 'c'.",
    hints=["Which conversations teach the model to answer a question with a call?"],
)
def _column(answer):
    expect_choice(answer, "b", ["a", "b", "c"],
                  explain={"a": "Bits per byte is measured on the plays, which SFT does not train on either way.",
                           "c": "Hallucination is measured on the play questions, which stay in the mixture."})
    return "Only the arithmetic conversations teach a question answered with a call: the column would go to about 0."


@exercise(
    "14.3",
    "When a stopped stage resumes, what must the checkpoint restore for the finished weights to be exactly "
    "those of an uninterrupted run? Answer 'a', 'b' or 'c'.",
    hints=["What does the next AdamW step read besides the weights? Where does the next batch come from?"],
)
def _resume(answer):
    expect_choice(answer, "b", ["a", "b", "c"],
                  explain={"a": "AdamW's next step reads its moment estimates; without them the update differs.",
                           "c": "The next batch comes from the data position and the shuffling generator, and "
                                "AdamW's moments shape the update."})
    return "The course trainer's checkpoint holds all of it, and a test checks the resumed weights bit for bit."


@exercise(
    "14.4",
    "With DPO's beta at 1.0 instead of 0.1, the report card's KL to the reference would be larger, smaller or "
    "the same? Answer 'a', 'b' or 'c'.",
    hints=["beta weighs the KL penalty in the objective whose optimum DPO fits (notebook 10)."],
)
def _beta(answer):
    expect_choice(answer, "b", ["a", "b", "c"],
                  explain={"a": "A larger beta makes moving away from the reference cost more, not less.",
                           "c": "beta enters the loss directly: the optimum it fits depends on it."})
    return "A larger beta keeps the policy closer to its reference: a smaller KL (notebook 10 measured it)."
