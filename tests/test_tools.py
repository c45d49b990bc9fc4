"""The calculator tool (llmcourse.tools): exact arithmetic by hand-checked cases, hostile input refused with
a message and never executed or allowed to hang, the generate-pause-insert-resume loop with a scripted
model, and the spans a loss mask leaves out."""

import re
import time
from fractions import Fraction

import pytest

from llmcourse import tools
from llmcourse.checks import ArgumentError


@pytest.mark.parametrize("expression, value", [
    ("2+3*4", 14), ("(2+3)*4", 20), ("10/4", Fraction(5, 2)), ("3 × 4.50", Fraction(27, 2)), ("7 ÷ 2", Fraction(7, 2)),
    ("-3 + 5", 2), ("--3", 3), ("2*-3", -6), ("1/3", Fraction(1, 3)), ("0.1+0.2", Fraction(3, 10)),
    (" 12 ", 12), ("8-3-2", 3), ("64/4/2", 8), ("((1))", 1), ("+4", 4),
])
def test_evaluate_computes_exactly_with_the_usual_precedence(expression, value):
    assert tools.evaluate(expression) == value


def test_results_read_back_as_the_model_sees_them():
    assert [tools.calculator(e) for e in ("3*4.50", "1/3", "2/3", "-1/8", "100", "1-1", "-0.0000001")] == \
        ["13.5", "0.333333", "0.666667", "-0.125", "100", "0", "0"]


@pytest.mark.parametrize("hostile, why", [
    ("1/0", "division by zero"), ("(2-2)/(3-3)", "division by zero"), ("", "empty"), ("   ", "empty"),
    ("__import__('os').system('echo hi')", "expected a number"), ("().__class__", "expected a number"),
    ("abs(-3)", "expected a number"), ("2**10", "expected a number"), ("1e308", "unexpected 'e'"),
    ("3 4", "unexpected '4'"), ("(1+2", "expected ')'"), ("1..2", "not a number"), ("²", "not a number"),
    ("9" * 300, "longer than 200"), ("(" * 150 + "1" + ")" * 60, "longer than 200"),
    ("(" * 30 + "1" + ")" * 30, "nested more than 20"), ("-" * 100 + "1", "nested more than 20"),
    ("9" * 41, "longer than 40 digits"), ("9" * 30 + "*" + "9" * 30, "result longer than 40 digits"),
    ("1/" + "7" * 39 + "/" + "7" * 39, "result longer than 40 digits"), ("'1'+'1'", "expected a number"),
])
def test_hostile_input_is_an_error_result_never_a_crash(hostile, why):
    with pytest.raises(tools.ToolError, match=re.escape(why)):
        tools.evaluate(hostile)
    assert tools.calculator(hostile).startswith("error: ")


def test_every_input_within_the_limits_is_fast():
    t0 = time.perf_counter()
    worst = ["*".join(["9" * 20] * 2) + "".join(["*9"] * 40), "+".join(["1"] * 100), "(" * 20 + "1" + ")" * 20,
             "1/7" * 66]
    for e in worst:
        tools.calculator(e)
    assert time.perf_counter() - t0 < 0.5
    assert tools.calculator(None) == "error: the expression must be text, not NoneType"


def _scripted(replies):
    """A 'model' that continues a text with the next of its replies and records what it was given."""
    seen = []

    def continue_text(text):
        seen.append(text)
        return replies[len(seen) - 1]
    return continue_text, seen


def test_generation_pauses_at_a_call_inserts_the_result_and_resumes():
    model, seen = _scripted([f"{tools.CALL_START}3*4.50{tools.CALL_END}",
                             " 13.50 in all." "<|im_end|>"])
    out, calls = tools.run_with_tool(model, "Q: 3 pies at 4.50?\nA:")
    assert calls == [("3*4.50", "13.5")]
    assert out == f"{tools.CALL_START}3*4.50{tools.CALL_END}{tools.RESULT_START}13.5{tools.RESULT_END} 13.50 in all.<|im_end|>"
    assert seen[1].endswith(f"{tools.RESULT_START}13.5{tools.RESULT_END}")     # the model resumed after it
    model, _ = _scripted([f"{tools.CALL_START}1/0{tools.CALL_END}", "Sorry."])
    out, calls = tools.run_with_tool(model, "Q:")
    assert calls == [("1/0", "error: division by zero")] and out.endswith("Sorry.")


def test_no_call_no_tool_and_at_most_max_calls():
    model, seen = _scripted(["Four."])
    assert tools.run_with_tool(model, "2+2?") == ("Four.", []) and len(seen) == 1
    call = f"{tools.CALL_START}1+1{tools.CALL_END}"
    model, seen = _scripted([call] * 10)
    out, calls = tools.run_with_tool(model, "loop:", max_calls=3)
    assert len(calls) == 3 and len(seen) == 4 and out.endswith(call)          # the fourth call is not run
    model, _ = _scripted([f"{tools.CALL_START} in the prompt? no{tools.CALL_END}"])
    assert tools.run_with_tool(model, "x", max_calls=0)[1] == []


def test_result_spans_cover_what_the_program_inserted():
    text = f"a{tools.CALL_START}1+1{tools.CALL_END}{tools.RESULT_START}2{tools.RESULT_END}b{tools.RESULT_START}3"
    spans = tools.result_spans(text)
    assert [text[s:e] for s, e in spans] == [f"{tools.RESULT_START}2{tools.RESULT_END}", f"{tools.RESULT_START}3"]
    assert tools.result_spans("no tool here") == []


def test_bad_arguments_to_the_loop_are_refused():
    with pytest.raises(ArgumentError, match="continue_text"):
        tools.run_with_tool("not a function", "x")
    with pytest.raises(ArgumentError, match="continue_text"):
        tools.run_with_tool(lambda text: 3, "x")
    with pytest.raises(ArgumentError, match="max_calls"):
        tools.run_with_tool(lambda text: "", "x", max_calls=-1)
