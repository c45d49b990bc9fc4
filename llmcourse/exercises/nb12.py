"""Checkers for notebook 12 (chain of thought)."""

import re

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


@exercise(
    "12.1",
    "Write scratchpad(a, b): the scratchpad completion of a + b, e.g. scratchpad(357, 468) == "
    "'7+8+0=15,5+6+1=12,3+4+1=08>825.'",
    hints=[
        "Walk the columns right to left; in each write 'x+y+c=tt' with the column's digits, the carry in and "
        "the total as two digits (f'{total:02d}'); the next carry is total // 10. Where b has run out of "
        "digits, its digit is 0.",
        "Join the steps with ',' and finish with '>' + str(a + b) + '.'.",
    ],
)
def _scratchpad(fn):
    from llmcourse.reasoning import Problem, render

    cases = [((a, b), render(Problem(a, b), "scratchpad")[1])
             for a, b in ((357, 468), (5, 6), (12, 34), (999, 1), (4096, 5904), (70, 30))]
    try:
        got = fn(357, 468)
    except Exception:
        got = None
    if isinstance(got, str) and got.startswith("3+4"):
        raise Incorrect("Your steps start from the left column; a carry moves right to left, so the scratchpad "
                        "starts with the ones column (7+8).")
    if isinstance(got, str) and re.search(r"=\d[,>]", got):
        raise Incorrect("Write every column total as two digits ('08', not '8'), so each step has one shape.")
    check_function(fn, cases, name="scratchpad")
    return "Each step needs only two digits and a carry already on the page: that is what makes it learnable."


@exercise(
    "12.2",
    "Write majority_vote(answers): the most common answer that is not None; a tie goes to the answer that "
    "appeared first; None if every answer is None.",
    hints=["collections.Counter counts; then walk the answers in order and return the first whose count is "
           "the highest."],
)
def _vote(fn):
    cases = [(([3, 4, 4, None, 3, 4],), 4), (([None, 7, 3, 3, 7],), 7), (([None, None],), None), (([5],), 5),
             (([2, 9, 9, 2],), 2), (([None, 1],), 1)]
    try:
        got = fn([None, None, None, 4])
    except Exception:
        got = "error"
    if got is None:
        raise Incorrect("majority_vote([None, None, None, 4]) returned None: a malformed chain (None) gives no "
                        "answer and must not vote.")
    check_function(fn, cases, name="majority_vote")
    return "Wang et al.'s self-consistency is exactly this vote over sampled chains."


@exercise(
    "12.3",
    "How many tokens (one per character, the final '.' included) does the scratchpad completion of 357+468 "
    "take? The direct answer '825.' takes 4.",
    hints=["Each column step such as 7+8+0=15 is 8 characters; three of them, two commas, then '>825.'."],
)
def _tokens(answer):
    expect_number(answer, 31, rel_tol=0, what="Your count",
                  mistakes={30: "count the final '.' too: the model has to write it to stop.",
                            29: "count the two commas between the three steps.",
                            26: "add the answer itself, '>825.', after the steps."})
    return "31 tokens against 4: the scratchpad costs about 8 times the tokens, to generate and to train on."


@exercise(
    "12.4",
    "Why does the scratchpad help this model so much? Answer 'a', 'b' or 'c'.",
    hints=["What has to happen inside one forward pass to write the first digit of 825 directly?"],
)
def _why(answer):
    expect_choice(
        answer, "b", ["a", "b", "c"],
        explain={"a": "The model is the same size in every format: the same weights even, in the mixture model.",
                 "c": "Every format trains on the same problems; the scratchpad's extra tokens are the steps, "
                      "not more problems."},
    )
    return ("Each written step is a small computation on tokens already in the context, so the carry never has "
            "to be worked out within the single forward pass that writes the first digit.")
