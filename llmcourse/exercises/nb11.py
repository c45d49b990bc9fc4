"""Checkers for notebook 11 (prompting and in-context learning)."""

import torch

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


def _induction(tokens):
    last = tokens[-1]
    for i in range(len(tokens) - 2, -1, -1):
        if tokens[i] == last:
            return tokens[i + 1]
    return None


@exercise(
    "11.1",
    "Write induction_guess(tokens): what an ideal induction head predicts next -- the token that followed the "
    "most recent earlier occurrence of the last token, or None if the last token has not occurred before.",
    hints=[
        "Walk backwards from the second-to-last position; at the first position holding the same token as the "
        "last one, return the token after it.",
        "for i in range(len(tokens) - 2, -1, -1): if tokens[i] == tokens[-1]: return tokens[i + 1]",
    ],
)
def _induction_guess(fn):
    cases = [(([5, 9, 2, 5],), 9), (([1, 2, 3],), None), (([7, 3, 7, 4, 7],), 4), (([3, 3],), 3),
             (([8, 1, 6, 2, 1, 9, 6],), 2), (([4],), None)]
    try:
        got = fn([7, 3, 7, 4, 7])
    except Exception:
        got = None
    if got == 3:
        raise Incorrect("For [7, 3, 7, 4, 7] you returned 3, what followed the *first* 7; an induction head's "
                        "strongest match here is the most recent earlier occurrence, which was followed by 4.")
    check_function(fn, [(args, want) for args, want in cases], name="induction_guess")
    return "Find the token's last occurrence, copy what came next: the whole induction algorithm, in three lines."


@exercise(
    "11.2",
    "Write prefix_matching(attn, length): a head's prefix-matching score from its attention matrix (T x T, "
    "rows are queries) on a probe [r, r] with len(r) == length.",
    hints=[
        "The second copy's tokens are at positions length .. 2*length - 1; the token at position q occurred "
        "first at q - length, and the token after that occurrence is at q - length + 1.",
        "Average attn[q, q - length + 1] over q = length .. 2*length - 2 (the last token is left out: the "
        "token after its first occurrence is the start of the second copy itself).",
    ],
)
def _prefix_matching(fn):
    g = torch.Generator().manual_seed(0)
    cases = []
    for length in (3, 5, 8):
        attn = torch.rand(2 * length, 2 * length, generator=g).tril()
        attn = attn / attn.sum(-1, keepdim=True)
        q = torch.arange(length, 2 * length - 1)
        cases.append(((attn, length), float(attn[q, q - length + 1].mean())))

    def same(got, want):
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Incorrect(f"prefix_matching should return a number, got {type(got).__name__}.") from None
        return abs(got - want) < 1e-5

    attn, length = cases[0][0]
    q = torch.arange(length, 2 * length - 1)
    try:
        off = float(fn(attn, length))
    except Exception:
        off = None
    if off is not None and abs(off - float(attn[q, q - length].mean())) < 1e-6:
        raise Incorrect("You averaged the attention to the token's earlier occurrence itself (q - length); an "
                        "induction head attends to the token *after* it (q - length + 1), the one to copy.")
    check_function(fn, cases, name="prefix_matching", close=same)
    return "The same number llmcourse.icl.head_scores reports, for one head and one probe."


@exercise(
    "11.3",
    "Zeroing layer 1's previous-token heads removes the in-context gain, although those heads only ever look "
    "one token back. Why? Answer 'a', 'b' or 'c'.",
    hints=["What does the induction head in layer 2 match its query against, at each earlier position?"],
)
def _why_previous(answer):
    expect_choice(
        answer, "a", ["a", "b", "c"],
        explain={"b": "The embeddings and output layer hold the vocabulary; ablation zeroes only the heads' "
                      "outputs, and the model's loss on other heads' ablation barely moved.",
                 "c": "The layer-2 heads still attend; they just attend to the wrong places, because the "
                      "information they match on is gone."},
    )
    return ("The induction head finds 'the position whose previous token was the current token': that fact is "
            "written there by the previous-token head. Two heads in two layers make one circuit.")


@exercise(
    "11.4",
    "The model trained on sequences whose period was drawn from 4 to 16. In a one-shot lookup prompt with the "
    "demonstration just before the query ('k v k'), how many tokens back is the earlier copy of the query key? "
    "(An int.)",
    hints=["Count positions: the demonstration's key at position t, its label at t + 1, the query key at t + 2."],
)
def _distance(answer):
    expect_number(answer, 2, rel_tol=0, what="The distance",
                  mistakes={1: "that is the distance to the label; the copy the induction head needs is of the "
                               "key, two tokens back."})
    return ("2 tokens: shorter than any period the model trained on (at least 4), which is why that row of the "
            "table is so much weaker than a demonstration 16 tokens back.")
