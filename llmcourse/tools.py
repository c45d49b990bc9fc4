"""Tool use: a calculator the model calls from its own output, with a safe evaluator.

A language model is bad at exact arithmetic (notebook 12 measured why) and good at writing down what to
compute. So let it write the expression and let a program compute it. The protocol, after nanochat's:

    user: What do 3 pies at 4.50 cost?
    assistant: <|calc|>3*4.50<|/calc|><|result|>13.5<|/result|> 13.50 in all.

The model generates ``<|calc|>3*4.50<|/calc|>``; generation **pauses** when the call closes; the
expression is evaluated by :func:`evaluate`; the result block is **inserted** into the text (the model
does not write it, and is not trained to: :func:`result_spans` marks it for the loss mask); generation
resumes after it. :func:`run_with_tool` is that loop, for any function that continues a text.

The evaluator is a small recursive-descent parser for numbers, ``+ - * /`` (and ``×``, ``÷``), unary
minus and parentheses, computing exactly with fractions. It never calls Python's ``eval``: anything else
(names, attribute access, ``**``, calls, strings) is a syntax error. Hostile input is bounded: the text's
length, the nesting depth, the digits of every number and of every intermediate result are all limited,
so no input can make it hang or exhaust memory. Every failure is a :class:`ToolError` whose message
:func:`calculator` returns to the model as the result (``error: division by zero``), never a crash.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable

from llmcourse.checks import check_int, check_str, fail

__all__ = ["CALL_END", "CALL_START", "RESULT_END", "RESULT_START", "TOOL_TOKENS", "ToolError", "calculator",
           "calls_in", "evaluate", "format_number", "result_spans", "run_with_tool", "visible"]

CALL_START, CALL_END = "<|calc|>", "<|/calc|>"
RESULT_START, RESULT_END = "<|result|>", "<|/result|>"
#: The four markers, special tokens of a tool-using model's tokenizer (:func:`add_tool_tokens`).
TOOL_TOKENS: tuple[str, ...] = (CALL_START, CALL_END, RESULT_START, RESULT_END)

MAX_LENGTH = 200       # characters of an expression
MAX_DEPTH = 20         # nesting of parentheses and unary signs
MAX_DIGITS = 40        # digits of any number, given or computed (numerator and denominator)


class ToolError(ValueError):
    """The calculator could not compute the expression; the message says why, for the model to read."""


class _Parser:
    def __init__(self, text: str):
        self.text, self.i, self.depth = text, 0, 0

    def peek(self) -> str:
        while self.i < len(self.text) and self.text[self.i] == " ":
            self.i += 1
        return self.text[self.i] if self.i < len(self.text) else ""

    def take(self) -> str:
        c = self.peek()
        self.i += 1
        return c

    def nest(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ToolError(f"nested more than {MAX_DEPTH} deep")

    def expression(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = _bounded(value + self.term() if op == "+" else value - self.term())
        return value

    def term(self) -> Fraction:
        value = self.factor()
        while self.peek() in ("*", "/", "×", "÷"):
            op = self.take()
            right = self.factor()
            if op in ("/", "÷"):
                if right == 0:
                    raise ToolError("division by zero")
                value = _bounded(value / right)
            else:
                value = _bounded(value * right)
        return value

    def factor(self) -> Fraction:
        c = self.peek()
        if c in ("+", "-"):
            self.take()
            self.nest()
            value = self.factor()
            self.depth -= 1
            return -value if c == "-" else value
        if c == "(":
            self.take()
            self.nest()
            value = self.expression()
            if self.take() != ")":
                raise ToolError(f"expected ')' at position {self.i}")
            self.depth -= 1
            return value
        return self.number()

    def number(self) -> Fraction:
        start = self.i
        while self.i < len(self.text) and (self.text[self.i].isdigit() or self.text[self.i] == "."):
            self.i += 1
        token = self.text[start:self.i]
        if not token:
            found = self.text[start] if start < len(self.text) else "the end"
            raise ToolError(f"expected a number at position {start}, found {found!r}")
        if token.count(".") > 1 or token == "." or not token.replace(".", "").isascii():
            raise ToolError(f"{token!r} is not a number")
        if len(token.replace(".", "")) > MAX_DIGITS:
            raise ToolError(f"a number longer than {MAX_DIGITS} digits")
        return Fraction(token)


def _bounded(value: Fraction) -> Fraction:
    if len(str(abs(value.numerator))) > MAX_DIGITS or len(str(value.denominator)) > MAX_DIGITS:
        raise ToolError(f"a result longer than {MAX_DIGITS} digits")
    return value


def evaluate(expression: str) -> Fraction:
    """The exact value of an arithmetic ``expression``: numbers (``12``, ``4.50``), ``+ - * /`` (``×`` and
    ``÷`` too), unary signs and parentheses, with the usual precedence. Raises :class:`ToolError` for
    anything else, and for input over the limits (length, nesting, digits)."""
    if not isinstance(expression, str):
        raise ToolError(f"the expression must be text, not {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"the expression is longer than {MAX_LENGTH} characters")
    parser = _Parser(expression)
    if not parser.peek():
        raise ToolError("the expression is empty")
    value = parser.expression()
    if parser.peek():
        raise ToolError(f"unexpected {parser.peek()!r} at position {parser.i}")
    return value


def format_number(value: Fraction, places: int = 6) -> str:
    """An exact integer as it is; anything else as a decimal rounded to ``places`` places, trailing zeros
    dropped (``13.5``, ``0.333333``)."""
    if value.denominator == 1:
        return str(value.numerator)
    scaled = round(value * 10**places)
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)
    text = f"{sign}{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def calculator(expression: str) -> str:
    """What the model reads back: the result of :func:`evaluate` as text, or ``"error: ..."``. Never raises."""
    try:
        return format_number(evaluate(expression))
    except ToolError as e:
        return f"error: {e}"


def run_with_tool(continue_text: Callable[[str], str], prompt: str, *, max_calls: int = 4,
                  tool: Callable[[str], str] = calculator) -> tuple[str, list[tuple[str, str]]]:
    """Generate with the tool: ``continue_text(text)`` returns the model's continuation of ``text``, which
    must stop right after :data:`CALL_END` when the model closes a call (or wherever it ends its turn).
    After each call the expression goes to ``tool``, the result block is appended, and generation resumes;
    at most ``max_calls`` calls. Returns ``(what followed the prompt, [(expression, result), ...])``."""
    if not callable(continue_text):
        raise fail("continue_text", "a function from the text so far to its continuation", continue_text)
    prompt = check_str("prompt", prompt)
    max_calls = check_int("max_calls", max_calls, minimum=0)
    text, calls = prompt, []
    while True:
        piece = continue_text(text)
        if not isinstance(piece, str):
            raise fail("continue_text", "a function that returns str", piece)
        text += piece
        start = text.rfind(CALL_START, len(prompt))
        if not text.endswith(CALL_END) or start < 0 or len(calls) >= max_calls:
            return text[len(prompt):], calls
        expression = text[start + len(CALL_START):-len(CALL_END)]
        result = tool(expression)
        calls.append((expression, result))
        text += f"{RESULT_START}{result}{RESULT_END}"


def result_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of every result block (markers included) in ``text``: what the
    program inserted, which a loss mask must leave out so the model never learns to write results itself."""
    text = check_str("text", text)
    spans, i = [], 0
    while (start := text.find(RESULT_START, i)) >= 0:
        end = text.find(RESULT_END, start)
        end = len(text) if end < 0 else end + len(RESULT_END)
        spans.append((start, end))
        i = end
    return spans


_CALL = re.compile(re.escape(CALL_START) + "(.*?)" + re.escape(CALL_END), re.S)
_RESULT = re.compile(re.escape(RESULT_START) + "(.*?)" + re.escape(RESULT_END), re.S)


def visible(text: str) -> str:
    """``text`` as its reader sees it: every call's expression dropped and every result block replaced by
    the result ("Total <|calc|>6+4<|/calc|><|result|>10<|/result|>." reads "Total 10.")."""
    return _RESULT.sub(lambda m: m.group(1), _CALL.sub("", check_str("text", text)))


def calls_in(text: str) -> list[str]:
    """The expressions of the closed calls in ``text``, in order."""
    return _CALL.findall(check_str("text", text))
