"""Argument checks: one convention for every public function of the package.

A learner who passes a bad value should read *which* argument is wrong, what was expected and what they
gave, at the call they wrote, not a traceback from deep inside torch or numpy. Every public function and
class of ``llmcourse`` checks what it is given with the helpers here, all called the same way::

    n = check_int("n", n, minimum=0)                      # name first, then the value
    lr = check_number("lr", lr, minimum=0, strict=True)   # finite, > 0
    schedule = check_choice("schedule", schedule, ("cosine", "linear", "constant"))

Each helper returns the value converted to its plain Python type (``numpy.int64`` -> ``int``), so a
caller writes ``x = check_...("x", x, ...)`` once at the top and uses ``x`` afterwards.

Errors are :class:`ArgumentError`, which is both a ``ValueError`` and a ``TypeError``: code that already
catches either keeps working, and the message always reads ``"<name> must be <what>; got <value>"``.

This module sits at the bottom of the package: it imports nothing from ``llmcourse``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "ArgumentError",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_number",
    "check_optional",
    "check_str",
    "check_strings",
    "check_token_ids",
    "fail",
]


class ArgumentError(ValueError, TypeError):
    """A public function was given an argument it cannot use. The message names the argument."""


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    if isinstance(value, (str, bytes, bool, numbers.Number)) or value is None:
        return text
    return f"{text} ({type(value).__name__})"


def fail(name: str, expected: str, value: Any) -> ArgumentError:
    """The error for argument ``name``: ``raise fail("lr", "a finite number > 0", lr)``."""
    return ArgumentError(f"{name} must be {expected}; got {_show(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(minimum, maximum, strict: bool, strict_max: bool = False) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if strict else '>='} {minimum:g}" if isinstance(minimum, float) else
                     f"{'>' if strict else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if strict_max else '<='} {maximum:g}" if isinstance(maximum, float) else
                     f"{'<' if strict_max else '<='} {maximum}")
    return " and ".join(parts)


def check_int(name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound may be None). Bools are refused."""
    if not _is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = _bounds(minimum, maximum, strict=False)
        raise fail(name, "an integer" + (f" {bounds}" if bounds else ""), value)
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False, strict_max: bool = False) -> float:
    """``value`` as a finite ``float`` within the bounds (``strict``: the bound itself is refused).

    NaN and infinity are always refused: no course computation means anything with them.
    """
    ok = _is_real(value) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if strict_max else value <= maximum
    if not ok:
        bounds = _bounds(minimum, maximum, strict, strict_max)
        raise fail(name, "a finite number" + (f" {bounds}" if bounds else ""), value)
    return float(value)


def check_fraction(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float in [0, 1] (``open_low``: 0 refused; ``open_high``: 1 refused)."""
    ok = _is_real(value) and math.isfinite(value)
    ok = ok and (value > 0 if open_low else value >= 0) and (value < 1 if open_high else value <= 1)
    if not ok:
        interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
        raise fail(name, f"a number in {interval}", value)
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (True/False or numpy's bool; not 0/1, which usually means a slip)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise fail(name, "True or False", value)


def check_str(name: str, value: Any, *, allow_empty: bool = True) -> str:
    """``value`` as a ``str`` (``allow_empty=False`` refuses ``""``)."""
    if not isinstance(value, str) or (not allow_empty and value == ""):
        raise fail(name, "a str" if allow_empty else "a non-empty str", value)
    return value


def check_strings(name: str, value: Any, *, allow_empty: bool = True) -> list[str]:
    """``value`` as a list of str; one str on its own is refused (it is almost always a missing ``[...]``)."""
    if isinstance(value, (str, bytes)):
        raise ArgumentError(f"{name} must be a list of str, not one {type(value).__name__}; did you mean [{name}]?")
    if not isinstance(value, Iterable):
        raise fail(name, "a list of str", value)
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise fail(f"{name}[{i}]", "a str", item)
    if not allow_empty and not items:
        raise fail(name, "a non-empty list of str", items)
    return items


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else an error listing them."""
    try:
        if value in choices:
            return value
    except TypeError:  # an unhashable value against a dict/set of choices
        pass
    raise fail(name, f"one of {tuple(choices)!r}", value)


def check_optional(check, name: str, value: Any, **kwargs) -> Any:
    """``None`` stays ``None``; anything else goes through ``check(name, value, **kwargs)``."""
    return None if value is None else check(name, value, **kwargs)


def check_token_ids(name: str, ids: Any, vocab_size: int, *, ndim: int = 1, min_length: int = 0):
    """Token ids as an int64 ``torch.Tensor`` of ``ndim`` dimensions, every id in ``[0, vocab_size)``.

    Accepts a tensor, a NumPy array or a (nested) list of ints. A string is refused with a hint to encode
    it first; floats, bools, the wrong number of dimensions and out-of-range ids each get their own message.
    ``min_length``: the least length of the last (time) dimension.
    """
    import numpy as np
    import torch

    if isinstance(ids, (str, bytes)):
        raise ArgumentError(f"{name} must be integer token ids, not {type(ids).__name__} (encode the text first)")
    if isinstance(ids, torch.Tensor):
        t = ids
    else:
        try:
            arr = np.asarray(ids)
        except (ValueError, TypeError):
            raise fail(name, "a rectangular array of integer token ids", ids) from None
        if arr.dtype == object:
            raise fail(name, "a rectangular array of integer token ids", ids)
        if arr.size == 0 and arr.dtype.kind == "f":  # [] and [[]] come out as float64: an empty id list
            arr = arr.astype(np.int64)
        elif arr.dtype.kind in "ui" and arr.dtype != np.int64:  # uint16 packed data, int32, ...
            arr = arr.astype(np.int64)
        t = torch.as_tensor(arr)
    if t.dim() != ndim:
        want = {1: "(time,)", 2: "(batch, time)"}.get(ndim, f"{ndim} dimensions")
        raise ArgumentError(f"{name} must have shape {want}; got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ArgumentError(f"{name} must hold integer token ids; got dtype {t.dtype}")
    t = t.long()
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ArgumentError(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size})")
    if t.shape[-1] < min_length:
        raise ArgumentError(f"{name} must hold at least {min_length} token(s) along time; got shape {tuple(t.shape)}")
    return t
