"""Exercises with checkers that explain what is wrong, not just that it is wrong.

In a notebook::

    from llmcourse.exercises import check, hint

    answer = None          # replace None with your answer
    check("00.1", answer)  # prints feedback; never raises, so the notebook always runs
    hint("00.1")           # the next hint, one more each call

``check`` returns a :class:`Feedback` that is truthy only when the answer is right, so the worked
solutions (``notebooks/solutions/``) can ``assert check(...)`` and CI proves every solution passes.

A notebook's checkers live in ``llmcourse/exercises/nbNN.py`` and register themselves with
:func:`exercise`; they are imported on first use of an id that starts with ``"NN."``.

**Progress.** Every ``check`` a learner runs (not a ``quiet`` one, and not under CI) is recorded in a small
JSON file, ``~/.llmcourse/progress.json`` (or ``$LLMCOURSE_PROGRESS``): an exercise once solved stays
solved. :func:`progress` reads it back notebook by notebook, and ``python -m llmcourse progress`` prints it.
"""

from __future__ import annotations

import importlib
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "Exercise",
    "Feedback",
    "Incorrect",
    "check",
    "check_function",
    "exercise",
    "expect_choice",
    "expect_number",
    "expect_sequence",
    "hint",
    "list_exercises",
]


class Incorrect(Exception):
    """Raised by a checker to say what is wrong with an answer; the message is shown to the learner."""


@dataclass(frozen=True)
class Feedback:
    """The result of :func:`check`. ``bool(feedback)`` is True only for a correct answer."""

    exercise: str
    status: str  # "correct" | "incorrect" | "not attempted"
    message: str

    def __bool__(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"correct": "✅ correct", "incorrect": "❌ not yet", "not attempted": "✏️  not attempted"}
        return f"[{self.exercise}] {mark[self.status]}: {self.message}"

    __repr__ = __str__

    def _ipython_display_(self) -> None:
        # check() has printed the feedback already; as the last line of a cell it must not show twice.
        pass


@dataclass
class Exercise:
    """One exercise: an id like ``"00.1"``, a title, a checker and hints shown one at a time."""

    id: str
    title: str
    checker: Callable[[Any], str | None]
    hints: Sequence[str] = ()
    _hints_shown: int = field(default=0, repr=False)


_REGISTRY: dict[str, Exercise] = {}


def exercise(id: str, title: str, hints: Iterable[str] = ()) -> Callable:
    """Decorator that registers ``checker(answer) -> str | None`` under ``id``.

    The checker returns None (or an encouraging string) when the answer is right and raises
    :class:`Incorrect` with a helpful message when it is not.
    """

    def register(checker: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
        if id in _REGISTRY and _REGISTRY[id].checker.__qualname__ != checker.__qualname__:
            raise ValueError(f"exercise id {id!r} is registered twice")
        _REGISTRY[id] = Exercise(id=id, title=title, checker=checker, hints=tuple(hints))
        return checker

    return register


def _lookup(exercise_id: str) -> Exercise:
    if not isinstance(exercise_id, str) or "." not in exercise_id:
        raise ValueError(f"exercise must be an id like '00.1', got {exercise_id!r}")
    if exercise_id not in _REGISTRY:
        notebook = exercise_id.split(".", 1)[0]
        try:
            importlib.import_module(f"llmcourse.exercises.nb{notebook}")
        except ModuleNotFoundError:
            pass
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none loaded"
        raise ValueError(f"exercise {exercise_id!r} does not exist; known exercises: {known}")
    return _REGISTRY[exercise_id]


def list_exercises(notebook: str) -> list[Exercise]:
    """All exercises of a notebook (e.g. ``"00"``), in id order."""
    importlib.import_module(f"llmcourse.exercises.nb{notebook}")
    return sorted((e for e in _REGISTRY.values() if e.id.startswith(f"{notebook}.")), key=lambda e: e.id)


def check(exercise: str, answer: Any, *, quiet: bool = False) -> Feedback:
    """Check ``answer`` for ``exercise`` and print the feedback (unless ``quiet``).

    ``None`` or ``...`` means "not attempted yet". Never raises for a wrong answer, so notebooks
    handed out with blanks still run top to bottom; errors in the learner's own code (when the answer
    is a function) are reported as feedback too.
    """
    ex = _lookup(exercise)
    if answer is None or answer is Ellipsis:
        fb = Feedback(ex.id, "not attempted", f"{ex.title} Replace None with your answer and run the cell again.")
    else:
        try:
            note = ex.checker(answer)
            fb = Feedback(ex.id, "correct", note or ex.title)
        except Incorrect as wrong:
            more = " Stuck? hint(%r) gives a hint." % ex.id if ex.hints else ""
            fb = Feedback(ex.id, "incorrect", f"{wrong}{more}")
    if not quiet:
        print(fb)
        _record(fb)
    return fb


def progress_path():
    """Where progress is kept: ``$LLMCOURSE_PROGRESS`` if set, else ``~/.llmcourse/progress.json``."""
    import os
    from pathlib import Path

    return Path(os.environ.get("LLMCOURSE_PROGRESS") or Path.home() / ".llmcourse" / "progress.json")


def _read_progress() -> dict:
    import json

    path = progress_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}                       # a damaged file is started over, never an error in a notebook
    return data if isinstance(data, dict) else {}


def _record(fb: Feedback) -> None:
    """Remember a learner's check: the best status so far (correct > incorrect > not attempted)."""
    import json
    import os
    import time

    if os.environ.get("CI"):
        return
    rank = {"not attempted": 0, "incorrect": 1, "correct": 2}
    data = _read_progress()
    old = data.get(fb.exercise, {})
    if rank.get(old.get("status"), -1) > rank[fb.status]:
        return
    data[fb.exercise] = {"status": fb.status, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        from llmcourse.files import write_atomic_text

        path = progress_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass                            # a read-only home must not break the notebook


def progress() -> dict[str, dict[str, int]]:
    """Per notebook (``"00"``, ``"01"``, ...): how many exercises it has, and how many the learner has solved
    or tried (from the progress file)."""
    import pkgutil

    import llmcourse.exercises as package

    data = _read_progress()
    out = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("nb")):
        ids = [e.id for e in list_exercises(module[2:])]
        statuses = [data.get(i, {}).get("status") for i in ids]
        out[module[2:]] = {"exercises": len(ids), "solved": statuses.count("correct"),
                           "tried": sum(s in ("correct", "incorrect") for s in statuses)}
    return out


def progress_text() -> str:
    """:func:`progress` as a table, with a total."""
    rows = progress()
    lines = [f"{'notebook':<10}{'solved':>8}{'tried':>7}{'of':>5}", "-" * 30]
    for nb, r in rows.items():
        lines.append(f"{nb:<10}{r['solved']:>8}{r['tried']:>7}{r['exercises']:>5}")
    total = {k: sum(r[k] for r in rows.values()) for k in ("solved", "tried", "exercises")}
    lines += ["-" * 30, f"{'all':<10}{total['solved']:>8}{total['tried']:>7}{total['exercises']:>5}",
              f"(kept in {progress_path()})"]
    return "\n".join(lines)


def hint(exercise: str) -> str:
    """Print (and return) the next hint for ``exercise``; after the last one, repeat it."""
    ex = _lookup(exercise)
    if not ex.hints:
        text = "No hints for this one: reread the section above the exercise."
    else:
        i = min(ex._hints_shown, len(ex.hints) - 1)
        ex._hints_shown += 1
        text = f"Hint {i + 1}/{len(ex.hints)}: {ex.hints[i]}"
    print(f"[{ex.id}] {text}")
    return text


# ----------------------------------------------------------------------------------------------------
# Building blocks for checkers. Each raises Incorrect with a message that points at the likely mistake.


def _as_number(answer: Any, what: str) -> float:
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        try:  # a 0-d numpy array or torch tensor is fine
            if getattr(answer, "ndim", None) == 0 or getattr(answer, "shape", None) == ():
                return float(answer)
        except (TypeError, ValueError):
            pass
        raise Incorrect(f"{what} should be a number (int or float), got {type(answer).__name__} {answer!r}.")
    value = float(answer)
    if math.isnan(value):
        raise Incorrect(f"{what} is NaN: check for a division by zero or a log of a negative number.")
    return value


def expect_number(
    answer: Any,
    expected: float,
    *,
    rel_tol: float = 0.01,
    what: str = "Your answer",
    mistakes: Mapping[float, str] | None = None,
) -> None:
    """Accept ``answer`` within ``rel_tol`` of ``expected``; otherwise explain the likely mistake.

    ``mistakes`` maps values that a typical slip produces to what the slip was; a power-of-ten ratio
    is reported as a unit mistake; otherwise the learner is told whether they are too high or too low.
    """
    value = _as_number(answer, what)
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=0.0 if expected else 1e-12):
        return
    for wrong, why in (mistakes or {}).items():
        if math.isclose(value, wrong, rel_tol=rel_tol):
            raise Incorrect(f"{what} is {value:.4g}: {why}")
    if expected != 0 and value != 0 and (value > 0) == (expected > 0):
        ratio = value / expected
        power = round(math.log10(abs(ratio)))
        if power != 0 and math.isclose(abs(ratio), 10.0**power, rel_tol=rel_tol * 2):
            direction = "large" if power > 0 else "small"
            raise Incorrect(
                f"{what} is {value:.4g}, a factor of 10^{abs(power)} too {direction}: the digits are right, "
                "so check the units (thousand / million / billion, bytes / GB)."
            )
    if (value > 0) != (expected > 0) and expected != 0:
        raise Incorrect(f"{what} is {value:.4g}, which has the wrong sign.")
    direction = "high" if value > expected else "low"
    raise Incorrect(f"{what} is {value:.4g}, which is too {direction} (tolerance {rel_tol:.0%}).")


def expect_choice(answer: Any, expected: str, options: Sequence[str], *, explain: Mapping[str, str] | None = None) -> None:
    """Accept one of ``options`` (case-insensitive); explain why a wrong option is wrong."""
    if not isinstance(answer, str):
        raise Incorrect(f"Answer with one of {list(options)} as a string, got {type(answer).__name__} {answer!r}.")
    norm = {o.lower(): o for o in options}
    picked = norm.get(answer.strip().lower())
    if picked is None:
        raise Incorrect(f"{answer!r} is not one of the options {list(options)}.")
    if picked != expected:
        raise Incorrect((explain or {}).get(picked, f"{picked!r} is not it.")) from None


def expect_sequence(answer: Any, expected: Sequence[Any], *, what: str = "Your sequence") -> None:
    """Accept a list/tuple equal to ``expected``; point at the first position that differs."""
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Sequence):
        raise Incorrect(f"{what} should be a list, got {type(answer).__name__} {answer!r}.")
    answer = list(answer)
    if sorted(map(repr, answer)) != sorted(map(repr, expected)):
        missing = [x for x in expected if x not in answer]
        extra = [x for x in answer if x not in expected]
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise Incorrect(f"{what} has the wrong items: {', '.join(parts) or 'check for duplicates'}.")
    for i, (got, want) in enumerate(zip(answer, expected)):
        if got != want:
            raise Incorrect(f"{what} has the right items in the wrong order: position {i} is {got!r}, expected {want!r}.")


def check_function(
    fn: Any,
    cases: Sequence[tuple[tuple, Any]],
    *,
    name: str = "your function",
    close: Callable[[Any, Any], bool] | None = None,
) -> None:
    """Call the learner's ``fn`` on each ``(args, expected)`` case; report the first case that fails,
    with its inputs, what was expected and what came back (or the exception it raised)."""
    if not callable(fn):
        raise Incorrect(f"Pass the function itself (e.g. check('..', my_fn)), got {type(fn).__name__} {fn!r}.")
    same = close or (lambda a, b: a == b)
    for args, expected in cases:
        call = f"{name}({', '.join(map(repr, args))})"
        try:
            got = fn(*args)
        except Exception as exc:  # the learner's code failing is feedback, not a crash
            raise Incorrect(f"{call} raised {type(exc).__name__}: {exc}") from None
        if not same(got, expected):
            raise Incorrect(f"{call} returned {got!r}, expected {expected!r}.")
