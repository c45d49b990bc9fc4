"""Checkers for notebook 13 (tools, evaluation and limits)."""

import math

from llmcourse.exercises import Incorrect, check_function, exercise, expect_choice, expect_number


@exercise(
    "13.1",
    "Write calculate(expression): the value of an arithmetic expression with numbers, + - * /, unary minus "
    "and parentheses, with the usual precedence, as a float; raise ValueError for anything else (names, **, "
    "calls, empty input) and for division by zero. Never use Python's eval.",
    hints=[
        "Recursive descent: expression = term (('+' | '-') term)*; term = factor (('*' | '/') factor)*; "
        "factor = '-' factor | '(' expression ')' | number. One small function per rule, sharing a position.",
        "Skip spaces before you look at the next character; a number is a run of digits and at most one '.'. "
        "After the top-level expression, anything left over is an error.",
    ],
)
def _calculate(fn):
    cases = [(("2+3*4",), 14.0), (("(2+3)*4",), 20.0), (("10/4",), 2.5), (("-3 + 5",), 2.0), (("8-3-2",), 3.0),
             (("64/4/2",), 8.0), ((" 2 * (3 + 4.5) ",), 15.0), (("--3",), 3.0), (("2*-3",), -6.0)]
    check_function(fn, cases, name="calculate", close=lambda a, b: isinstance(a, (int, float)) and math.isclose(a, b))
    for hostile in ("2**10", "__import__('os').getcwd()", "abs(-3)", "1 if 1 else 2", "", "3 4", "(1+2", "1/0"):
        try:
            got = fn(hostile)
        except ValueError:
            continue
        except ZeroDivisionError:
            raise Incorrect("calculate('1/0') raised ZeroDivisionError: turn it into a ValueError with a message, "
                            "which the model can read back as the tool's answer.") from None
        except Exception as exc:   # the learner's code failing is feedback
            raise Incorrect(f"calculate({hostile!r}) raised {type(exc).__name__}: {exc}; expected a ValueError.") from None
        hint_ = (" That is what Python's eval gives: the model could run any code through it."
                 if got is not None and hostile in ("2**10", "__import__('os').getcwd()", "abs(-3)", "1 if 1 else 2")
                 else "")
        raise Incorrect(f"calculate({hostile!r}) returned {got!r}; it must raise ValueError.{hint_}")
    return ("A parser that knows only numbers and four operators cannot be talked into anything else: that, not a "
            "blacklist of dangerous words, is what makes a tool safe to hand a model's text to.")


@exercise(
    "13.2",
    "Write ece(confidences, correct, n_bins=10): the expected calibration error over n_bins equal-width bins "
    "(low, high], a confidence of exactly 0 going to the first bin.",
    hints=[
        "A prediction with confidence c goes to bin max(ceil(c * n_bins) - 1, 0). In each non-empty bin take "
        "the mean confidence and the share correct.",
        "ECE = sum over bins of (count in bin / n) * |share correct - mean confidence|.",
    ],
)
def _ece(fn):
    from llmcourse.evaluation import expected_calibration_error

    cases = []
    for conf, correct in (([0.9, 0.9, 0.9, 0.9], [1, 1, 1, 0]), ([0.8, 0.75, 0.3, 1.0, 0.0], [1, 0, 0, 1, 0]),
                          ([0.55, 0.65, 0.95, 0.15, 0.85, 0.45], [1, 1, 0, 0, 1, 0]), ([0.6], [1])):
        cases.append(((conf, correct), round(expected_calibration_error(conf, correct), 12)))
    check_function(fn, cases, name="ece", close=lambda a, b: isinstance(a, (int, float)) and math.isclose(a, b, abs_tol=1e-9))
    return "The same number as llmcourse.evaluation.expected_calibration_error, bin for bin."


@exercise(
    "13.3",
    "A model wrote 10 programs for a task and 3 passed the tests. What is the unbiased pass@2 estimate (the "
    "chance that at least one of 2 programs drawn from the 10 passes)?",
    hints=["pass@k = 1 - C(n - c, k) / C(n, k): one minus the chance that both draws are among the 7 failures."],
)
def _pass_at_2(answer):
    expect_number(answer, 1 - math.comb(7, 2) / math.comb(10, 2), rel_tol=0.01, what="Your pass@2",
                  mistakes={0.3: "that is pass@1 (3 of 10); with two tries the chance is higher.",
                            0.51: "that is 1 - 0.7**2: drawing with replacement. The 2 programs are different "
                                  "ones, drawn without replacement from the 10."})
    return "1 - 21/45 = 0.533: Chen et al.'s estimator, llmcourse.evaluation.pass_at_k(10, 3, 2)."


@exercise(
    "13.4",
    "Why are the calculator's result tokens left out of the loss when the model is fine-tuned to use it? "
    "Answer 'a', 'b' or 'c'.",
    hints=["Who writes the result at run time: the model or the program?"],
)
def _mask(answer):
    expect_choice(
        answer, "b", ["a", "b", "c"],
        explain={"a": "A result is a few tokens, fewer than the call; its length is not the reason.",
                 "c": "The forward and backward passes cost the same whichever targets count."},
    )
    return ("The program writes the result. Trained on it, the model would learn to guess results itself, and "
            "a model that guesses can skip the call and state a wrong number with confidence.")
