import pytest
import torch

from llmcourse.exercises import (
    Feedback,
    Incorrect,
    check,
    check_function,
    expect_choice,
    expect_number,
    expect_sequence,
    hint,
    list_exercises,
)


def test_not_attempted_is_not_correct_and_never_raises(capsys):
    fb = check("00.1", None)
    assert isinstance(fb, Feedback)
    assert fb.status == "not attempted" and not fb
    assert "not attempted" in capsys.readouterr().out


def test_correct_answer_is_truthy():
    assert check("00.1", 350, quiet=True)
    assert check("00.2", 6 * 70e9 * 1.4e12, quiet=True)
    assert check("00.3", ["ai", "ML", "DL", "LLM"], quiet=True)
    assert check("00.4", "Instruction Tuning", quiet=True)


@pytest.mark.parametrize(
    "answer, expected_words",
    [
        (700, "4 bytes per parameter"),
        (350e9, "divide by 10^9"),
        (3500, "factor of 10^1 too large"),
        (100, "too low"),
        ("350 GB", "should be a number"),
        (True, "should be a number"),
    ],
)
def test_wrong_answers_explain_the_likely_mistake(answer, expected_words):
    fb = check("00.1", answer, quiet=True)
    assert fb.status == "incorrect" and not fb
    assert expected_words in fb.message


def test_wrong_choice_is_explained_per_option():
    fb = check("00.4", "pretraining", quiet=True)
    assert not fb and "next-token prediction" in fb.message
    fb = check("00.4", "fine dining", quiet=True)
    assert not fb and "not one of the options" in fb.message


def test_sequence_feedback_points_at_the_problem():
    with pytest.raises(Incorrect, match="wrong order: position 1"):
        expect_sequence(["AI", "DL", "ML", "LLM"], ["AI", "ML", "DL", "LLM"])
    with pytest.raises(Incorrect, match="missing"):
        expect_sequence(["AI", "ML"], ["AI", "ML", "DL"])
    with pytest.raises(Incorrect, match="should be a list"):
        expect_sequence("AI ML", ["AI", "ML"])


def test_expect_number_tolerance_and_sign():
    expect_number(1.004, 1.0, rel_tol=0.01)
    with pytest.raises(Incorrect, match="too high"):
        expect_number(1.02, 1.0, rel_tol=0.01)
    with pytest.raises(Incorrect, match="wrong sign"):
        expect_number(-1.0, 1.0)
    with pytest.raises(Incorrect, match="NaN"):
        expect_number(float("nan"), 1.0)


def test_expect_choice_rejects_non_strings():
    with pytest.raises(Incorrect, match="as a string"):
        expect_choice(3, "a", ["a", "b"])


def test_check_function_reports_failing_case_and_exceptions():
    cases = [((2, 3), 5), ((0, 0), 0)]
    check_function(lambda a, b: a + b, cases, name="add")
    with pytest.raises(Incorrect, match=r"add\(2, 3\) returned 6, expected 5"):
        check_function(lambda a, b: a * b, cases, name="add")
    with pytest.raises(Incorrect, match="raised ZeroDivisionError"):
        check_function(lambda a, b: a / 0, cases, name="add")
    with pytest.raises(Incorrect, match="Pass the function itself"):
        check_function(42, cases)


def test_hints_advance_and_then_repeat(capsys):
    ex = list_exercises("00")[0]
    ex._hints_shown = 0
    first, second, third = hint("00.1"), hint("00.1"), hint("00.1")
    assert first.startswith("Hint 1/2") and second.startswith("Hint 2/2") and third == second


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(ValueError, match="does not exist"):
        check("00.99", 1)
    with pytest.raises(ValueError, match="id like '00.1'"):
        check("welcome", 1)


def test_every_exercise_has_a_title_and_checker():
    exercises = list_exercises("00")
    assert [e.id for e in exercises] == ["00.1", "00.2", "00.3", "00.4"]
    for e in exercises:
        assert e.title and callable(e.checker)


def test_notebook_04_checkers_accept_right_answers_and_name_the_mistakes():
    import math

    import torch

    assert check("04.1", 7_087_872, quiet=True)
    assert "LayerNorms" in check("04.1", 4 * 768 * 768 + 4 * 768 + 8 * 768 * 768 + 5 * 768, quiet=True).message
    assert "biases" in check("04.1", 12 * 768 * 768 + 4 * 768, quiet=True).message
    assert check("04.3", 4, quiet=True) and "32 / 8" in check("04.3", 8, quiet=True).message
    assert check("04.4", "yes", quiet=True) and not check("04.4", "no", quiet=True)

    def right(q, k, v):
        T, d = q.shape
        s = (q @ k.T / math.sqrt(d)).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        return torch.softmax(s, -1) @ v

    def unmasked(q, k, v):
        return torch.softmax(q @ k.T / math.sqrt(q.shape[1]), -1) @ v

    def mask_after_softmax(q, k, v):
        T = q.shape[0]
        w = torch.softmax(q @ k.T / math.sqrt(q.shape[1]), -1)
        return w.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("nan")) @ v

    assert check("04.2", right, quiet=True)
    assert not check("04.2", unmasked, quiet=True)
    assert "before" in check("04.2", mask_after_softmax, quiet=True).message


def test_notebook_05_checkers_accept_right_answers_and_name_the_mistakes():
    import torch

    assert check("05.1", 1 - (1 - 0.8**6) ** 21, quiet=True)
    assert "one band" in check("05.1", 0.8**6, quiet=True).message
    assert "swapped" in check("05.1", 1 - (1 - 0.8**21) ** 6, quiet=True).message
    assert check("05.3", 5.5e-4, quiet=True) and "floor" in check("05.3", 5e-4, quiet=True).message
    assert check("05.4", 75_497_472, quiet=True)
    assert "4 bytes" in check("05.4", 75_497_472 // 4, quiet=True).message

    def right(probs, p):
        order = torch.argsort(probs, descending=True)
        before = torch.cumsum(probs[order], 0) - probs[order]
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[order] = before < p
        out = torch.where(keep, probs, torch.zeros_like(probs))
        return out / out.sum()

    def one_too_few(probs, p):  # stops before the token that reaches p
        order = torch.argsort(probs, descending=True)
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[order] = torch.cumsum(probs[order], 0) < p
        keep[order[0]] = True
        out = torch.where(keep, probs, torch.zeros_like(probs))
        return out / out.sum()

    def unnormalised(probs, p):
        r = right(probs, p)
        return r * probs[r > 0].sum()

    assert check("05.2", right, quiet=True)
    assert "too few" in check("05.2", one_too_few, quiet=True).message
    assert "renormalise" in check("05.2", unnormalised, quiet=True).message


def test_notebook_06_checkers_accept_right_answers_and_name_the_mistakes():
    from llmcourse import distributed, scaling

    assert check("06.1", scaling.training_flops(1e9, 20e9), quiet=True)
    assert "forward pass only" in check("06.1", 2 * 1e9 * 20e9, quiet=True).message
    assert check("06.2", scaling.chinchilla_rule_of_thumb(1e21)[0], quiet=True)
    assert "number of tokens" in check("06.2", scaling.chinchilla_rule_of_thumb(1e21)[1], quiet=True).message
    assert check("06.3", scaling.zero_memory_per_device(7.5e9, 64, 2), quiet=True)
    assert "stage 1" in check("06.3", scaling.zero_memory_per_device(7.5e9, 64, 1), quiet=True).message
    assert "stage 3" in check("06.3", scaling.zero_memory_per_device(7.5e9, 64, 3), quiet=True).message
    assert check("06.4", distributed.pipeline_schedule(4, 12).bubble_fraction, quiet=True)
    assert not check("06.4", 0.25, quiet=True)


def test_notebook_07_checkers_accept_right_answers_and_name_the_mistakes():
    from llmcourse import peft, zoo
    from llmcourse.transformer import TransformerConfig

    assert check("07.1", 8 * (4096 + 4096), quiet=True)
    assert "freezes" in check("07.1", 4096 * 4096, quiet=True).message
    assert "both" in check("07.1", 8 * 4096, quiet=True).message
    assert check("07.2", lambda x, W, A, B, alpha: x @ W.T + (alpha / A.shape[0]) * (x @ A.T) @ B.T, quiet=True)
    unscaled = check("07.2", lambda x, W, A, B, alpha: x @ W.T + (x @ A.T) @ B.T, quiet=True)
    assert not unscaled and "alpha / r" in unscaled.message
    assert "shape" in check("07.2", lambda x, W, A, B, alpha: x @ A.T, quiet=True).message
    config = TransformerConfig.from_dict(zoo.card("bpe-transformer-shakespeare")["config"])
    assert check("07.3", peft.prefix_parameter_count(config, 10), quiet=True)
    assert "one layer" in check("07.3", peft.prefix_parameter_count(config, 10) // 4, quiet=True).message
    assert "prompt tuning" in check("07.3", peft.prompt_parameter_count(config, 10), quiet=True).message
    assert check("07.4", "LoRA", quiet=True)
    assert "nonlinearity" in check("07.4", "adapters", quiet=True).message
    assert not check("07.4", "prompt", quiet=True)


def test_notebook_08_checkers_accept_right_answers_and_name_the_mistakes():
    from llmcourse import chat

    right = lambda ids, mask: [t if m else -100 for t, m in zip(ids[1:], mask[1:])]  # noqa: E731
    assert check("08.1", right, quiet=True)
    assert not check("08.1", lambda ids, mask: [t if m else -100 for t, m in zip(ids[1:], mask[:-1])], quiet=True)
    assert "one target too many" in check("08.1", lambda ids, mask: [t if m else -100 for t, m in zip(ids, mask)],
                                          quiet=True).message.lower()
    assert check("08.2", (12, 59), quiet=True)
    assert "59 targets" in check("08.2", (12, 60), quiet=True).message
    assert "not what the others" in check("08.2", (47, 59), quiet=True).message
    assert check("08.3", lambda m, add_generation_prompt=False: chat.render_text(m, add_generation_prompt=add_generation_prompt),
                 quiet=True)
    assert not check("08.3", lambda m, add_generation_prompt=False: chat.render_text(m), quiet=True)
    assert check("08.4", "b", quiet=True)
    assert "softmax" in check("08.4", "c", quiet=True).message


def test_notebook_09_checkers_accept_right_answers_and_name_the_mistakes():
    import math

    assert check("09.1", lambda a, b, n: 1 / (1 + math.exp(-(a - b) / n)), quiet=True)
    assert "swap the sign" in check("09.1", lambda a, b, n: 1 / (1 + math.exp((a - b) / n)), quiet=True).message
    assert not check("09.1", lambda a, b, n: 1 / (1 + math.exp(-(a - b))), quiet=True)   # the noise left out

    def gae(rewards, values, gamma, lam):
        out, a, nxt = [0.0] * len(rewards), 0.0, 0.0
        for t in reversed(range(len(rewards))):
            a = rewards[t] + gamma * nxt - values[t] + gamma * lam * a
            out[t], nxt = a, values[t]
        return out

    assert check("09.2", gae, quiet=True)
    td_only = lambda r, v, g, lam: [r[t] + g * (v[t + 1] if t + 1 < len(v) else 0) - v[t] for t in range(len(r))]  # noqa: E731
    assert not check("09.2", td_only, quiet=True)
    right = lambda r, a, c=0.2: max(-a * r, -a * min(max(r, 1 - c), 1 + c))  # noqa: E731
    assert check("09.3", right, quiet=True)
    always_clipped = lambda r, a, c=0.2: -a * min(max(r, 1 - c), 1 + c)  # noqa: E731
    assert "negative advantage" in check("09.3", always_clipped, quiet=True).message
    assert check("09.4", "b", quiet=True)
    assert "beta = 0" in check("09.4", "a", quiet=True).message


def test_notebook_10_checkers_accept_right_answers_and_name_the_mistakes():
    import math

    def right(pw, pl, rw, rl, b):
        return -math.log(1 / (1 + math.exp(-b * ((pw - rw) - (pl - rl)))))

    assert check("10.1", right, quiet=True)
    assert "ln 2" in check("10.1", lambda *a: 1 / (1 + math.exp(-a[4] * ((a[0] - a[2]) - (a[1] - a[3])))),
                           quiet=True).message
    assert not check("10.1", lambda pw, pl, rw, rl, b: -math.log(1 / (1 + math.exp(-((pw - rw) - (pl - rl))))),
                     quiet=True)                                         # beta left out
    assert check("10.2", 0.1 * math.log(4), quiet=True)
    assert "base 10" in check("10.2", 0.1 * math.log10(4), quiet=True).message
    assert check("10.3", "b", quiet=True)
    assert not check("10.3", "a", quiet=True)

    def optimum(ref, r, b):
        w = [p * math.exp(x / b) for p, x in zip(ref, r)]
        return [x / sum(w) for x in w]

    assert check("10.4", optimum, quiet=True)
    unnormalised = lambda ref, r, b: [p * math.exp(x / b) for p, x in zip(ref, r)]  # noqa: E731
    assert "partition function" in check("10.4", unnormalised, quiet=True).message


def test_notebook_11_checkers_accept_right_answers_and_name_the_mistakes():
    def induction_guess(tokens):
        for i in range(len(tokens) - 2, -1, -1):
            if tokens[i] == tokens[-1]:
                return tokens[i + 1]
        return None

    def first_occurrence(tokens):
        for i in range(len(tokens) - 1):
            if tokens[i] == tokens[-1]:
                return tokens[i + 1]
        return None

    assert check("11.1", induction_guess, quiet=True)
    assert "most recent" in check("11.1", first_occurrence, quiet=True).message

    def prefix_matching(attn, length):
        q = torch.arange(length, 2 * length - 1)
        return float(attn[q, q - length + 1].mean())

    def to_the_token_itself(attn, length):
        q = torch.arange(length, 2 * length - 1)
        return float(attn[q, q - length].mean())

    assert check("11.2", prefix_matching, quiet=True)
    assert "after" in check("11.2", to_the_token_itself, quiet=True).message
    assert check("11.3", "a", quiet=True)
    assert not check("11.3", "b", quiet=True)
    assert check("11.4", 2, quiet=True)
    assert "label" in check("11.4", 1, quiet=True).message


def test_notebook_12_checkers_accept_right_answers_and_name_the_mistakes():
    from collections import Counter

    def scratchpad(a, b):
        xs, ys = str(a)[::-1], str(b)[::-1]
        carry, steps = 0, []
        for i, x in enumerate(xs):
            y = int(ys[i]) if i < len(ys) else 0
            total = int(x) + y + carry
            steps.append(f"{x}+{y}+{carry}={total:02d}")
            carry = total // 10
        return ",".join(steps) + f">{a + b}."

    assert check("12.1", scratchpad, quiet=True)
    assert "two digits" in check("12.1", lambda a, b: scratchpad(a, b).replace("=08", "=8"), quiet=True).message

    def vote(answers):
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return None
        best = max(counts.values())
        return next(a for a in answers if a is not None and counts[a] == best)

    assert check("12.2", vote, quiet=True)
    assert "must not vote" in check("12.2", lambda a: Counter(a).most_common(1)[0][0], quiet=True).message
    assert check("12.3", 31, quiet=True)
    assert "'.'" in check("12.3", 30, quiet=True).message
    assert check("12.4", "b", quiet=True)
    assert not check("12.4", "a", quiet=True)


CALCULATE_SOLUTION = '''
def calculate(expression):
    pos = 0

    def peek():
        nonlocal pos
        while pos < len(expression) and expression[pos] == " ":
            pos += 1
        return expression[pos] if pos < len(expression) else ""

    def number():
        nonlocal pos
        start = pos
        while pos < len(expression) and (expression[pos].isdigit() or expression[pos] == "."):
            pos += 1
        text = expression[start:pos]
        if not text or text.count(".") > 1 or text == ".":
            raise ValueError(f"expected a number at position {start}")
        return float(text)

    def factor():
        nonlocal pos
        c = peek()
        if c == "-":
            pos += 1
            return -factor()
        if c == "(":
            pos += 1
            value = expr()
            if peek() != ")":
                raise ValueError("expected ')'")
            pos += 1
            return value
        return number()

    def term():
        nonlocal pos
        value = factor()
        while peek() in ("*", "/") and peek():
            op = peek()
            pos += 1
            right = factor()
            if op == "/" and right == 0:
                raise ValueError("division by zero")
            value = value * right if op == "*" else value / right
        return value

    def expr():
        nonlocal pos
        value = term()
        while peek() in ("+", "-") and peek():
            op = peek()
            pos += 1
            value = value + term() if op == "+" else value - term()
        return value

    if not peek():
        raise ValueError("empty")
    value = expr()
    if peek():
        raise ValueError(f"unexpected {peek()!r}")
    return value
'''


def test_notebook_13_checkers_accept_right_answers_and_name_the_mistakes():
    import math

    scope = {}
    exec(CALCULATE_SOLUTION, scope)                # the solutions notebook's code, checked here too
    calculate = scope["calculate"]
    assert check("13.1", calculate, quiet=True)
    assert "eval" in check("13.1", lambda e: eval(e), quiet=True).message          # noqa: S307 -- the mistake shown
    assert "ZeroDivisionError" in check("13.1", lambda e: 1 / 0 if "/0" in e else calculate(e), quiet=True).message

    def ece(confidences, correct, n_bins=10):
        bins = {}
        for c, r in zip(confidences, correct):
            bins.setdefault(max(math.ceil(c * n_bins) - 1, 0), []).append((c, r))
        n = len(confidences)
        return sum(len(b) / n * abs(sum(r for _, r in b) / len(b) - sum(c for c, _ in b) / len(b)) for b in bins.values())

    assert check("13.2", ece, quiet=True)
    assert not check("13.2", lambda conf, correct, n_bins=10: abs(sum(correct) / len(correct) - sum(conf) / len(conf)),
                     quiet=True)
    assert check("13.3", 0.5333, quiet=True)
    assert "replacement" in check("13.3", 0.51, quiet=True).message
    assert check("13.4", "b", quiet=True)
    assert not check("13.4", "c", quiet=True)


def test_notebook_14_checkers_accept_right_answers_and_name_the_mistakes():
    from llmcourse import zoo

    pre = zoo.card("bpe-capstone-shakespeare")["stages"]["pretrain"]
    s = pre["settings"]
    tokens = s["steps"] * s["batch_size"] * s["block_size"]
    assert check("14.1", 6 * pre["parameters"] * tokens, quiet=True)
    assert "backward" in check("14.1", 2 * pre["parameters"] * tokens, quiet=True).message
    assert "batch size" in check("14.1", 6 * pre["parameters"] * tokens / 32, quiet=True).message
    for number in ("14.2", "14.3", "14.4"):
        assert check(number, "b", quiet=True)
        assert not check(number, "a", quiet=True)


def test_progress_keeps_the_best_status_per_exercise_and_counts_by_notebook(tmp_path, monkeypatch, capsys):
    from llmcourse import exercises

    monkeypatch.setenv("LLMCOURSE_PROGRESS", str(tmp_path / "p.json"))
    monkeypatch.delenv("CI", raising=False)
    check("13.3", 0.5333)                              # solved
    check("13.3", 0.1)                                 # a later wrong try does not unsolve it
    check("13.4", "a")                                 # tried
    check("13.1", None)                                # not attempted: not counted as tried
    check("13.2", lambda c, r, n_bins=10: 0.0, quiet=True)   # quiet checks (tests) are not recorded
    report = exercises.progress()
    assert report["13"] == {"exercises": 4, "solved": 1, "tried": 2} and report["12"]["solved"] == 0
    assert "all" in exercises.progress_text() and str(tmp_path / "p.json") in exercises.progress_text()
    (tmp_path / "p.json").write_text("{ not json")      # a damaged file is started over
    assert exercises.progress()["13"]["solved"] == 0
    check("13.3", 0.5333)
    assert exercises.progress()["13"]["solved"] == 1
    monkeypatch.setenv("CI", "true")                   # CI runs the solutions: not a learner's progress
    check("13.4", "b")
    assert exercises.progress()["13"]["solved"] == 1
