"""The base for the course's interactive pieces.

A widget is a plain function plus a description of its controls::

    from llmcourse.widgets import Dropdown, Slider, interact

    def sample(order: int, temperature: float) -> str:
        ...

    interact(sample, order=Slider(1, 6, value=3), temperature=Slider(0.0, 2.0, 0.1, value=1.0))

* Tests call ``sample(...)`` (or ``widget.render(...)``) directly: the logic never depends on a UI.
* In a live JupyterLab the call shows an ipywidgets UI that re-renders on every change.
* With no front end (a script, or ``LLMCOURSE_WIDGETS=static``, which ``scripts/run_notebooks.py`` sets
  when it writes the committed outputs) it prints a static result for the default values, so the
  notebook still reads well on GitHub.

The function may return a string (printed), a matplotlib figure (shown, then closed) or anything
IPython can display.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from llmcourse.checks import ArgumentError

__all__ = ["Checkbox", "Dropdown", "Interactive", "Slider", "Text", "TextArea", "interact", "widget_mode"]


@dataclass(frozen=True)
class Slider:
    """A numeric slider; integer if ``min``, ``max``, ``step`` and ``value`` are all ints."""

    min: float
    max: float
    step: float = 1
    value: float | None = None

    def __post_init__(self) -> None:
        for name in ("min", "max", "step"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ArgumentError(f"Slider: {name} must be a number, got {v!r}")
        if not self.min < self.max:
            raise ArgumentError(f"Slider: min must be < max, got min={self.min!r}, max={self.max!r}")
        if self.step <= 0:
            raise ArgumentError(f"Slider: step must be > 0, got {self.step!r}")
        if self.value is not None and not self.min <= self.value <= self.max:
            raise ArgumentError(f"Slider: value must lie in [{self.min}, {self.max}], got {self.value!r}")

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.min, self.max, self.step, self.default))

    @property
    def default(self) -> float:
        return self.min if self.value is None else self.value

    def build(self, label: str):
        import ipywidgets as w

        cls = w.IntSlider if self.is_int else w.FloatSlider
        return cls(
            value=self.default, min=self.min, max=self.max, step=self.step, description=label,
            continuous_update=False, style={"description_width": "initial"},
        )


@dataclass(frozen=True)
class Dropdown:
    """A choice among ``options`` (strings, numbers, or ``(label, value)`` pairs)."""

    options: Sequence[Any]
    value: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or len(self.options) == 0:
            raise ArgumentError(f"Dropdown: options must be a non-empty list, got {self.options!r}")
        if self.value is not None and self.value not in self._values():
            raise ArgumentError(f"Dropdown: value {self.value!r} is not one of the options {self._values()!r}")

    def _values(self) -> list:
        return [o[1] if isinstance(o, tuple) else o for o in self.options]

    @property
    def default(self) -> Any:
        return self._values()[0] if self.value is None else self.value

    def build(self, label: str):
        import ipywidgets as w

        return w.Dropdown(options=list(self.options), value=self.default, description=label,
                          style={"description_width": "initial"})


@dataclass(frozen=True)
class Text:
    """A line of text; ``value`` is the default."""

    value: str = ""
    placeholder: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise ArgumentError(f"Text: value must be a str, got {self.value!r}")

    @property
    def default(self) -> str:
        return self.value

    def build(self, label: str):
        import ipywidgets as w

        return w.Text(value=self.value, placeholder=self.placeholder, description=label,
                      continuous_update=False, layout=w.Layout(width="80%"),
                      style={"description_width": "initial"})


@dataclass(frozen=True)
class TextArea:
    """Several lines of text (a prompt, a passage): Enter types a line break, which a :class:`Text` box
    cannot hold. ``value`` is the default; ``rows`` the visible height."""

    value: str = ""
    placeholder: str = ""
    rows: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise ArgumentError(f"TextArea: value must be a str, got {self.value!r}")
        if isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 1:
            raise ArgumentError(f"TextArea: rows must be an int >= 1, got {self.rows!r}")

    @property
    def default(self) -> str:
        return self.value

    def build(self, label: str):
        import ipywidgets as w

        return w.Textarea(value=self.value, placeholder=self.placeholder, description=label, rows=self.rows,
                          continuous_update=False, layout=w.Layout(width="80%"),
                          style={"description_width": "initial"})


@dataclass(frozen=True)
class Checkbox:
    value: bool = False

    @property
    def default(self) -> bool:
        return bool(self.value)

    def build(self, label: str):
        import ipywidgets as w

        return w.Checkbox(value=self.default, description=label, indent=False)


Control = Slider | Dropdown | Text | TextArea | Checkbox


def widget_mode() -> str:
    """``"live"`` inside a Jupyter kernel with ipywidgets, else ``"static"``.

    ``LLMCOURSE_WIDGETS=live`` or ``=static`` overrides the detection.
    """
    forced = os.environ.get("LLMCOURSE_WIDGETS", "").strip().lower()
    if forced in {"live", "static"}:
        return forced
    if forced:
        raise ArgumentError(f"LLMCOURSE_WIDGETS must be 'live' or 'static', got {forced!r}")
    try:
        from IPython import get_ipython

        shell = get_ipython()
        import ipywidgets  # noqa: F401
    except ImportError:
        return "static"
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return "static"
    return "live"


def _show(result: Any) -> None:
    """Display what a widget function returned."""
    if result is None:
        return
    if isinstance(result, str):
        print(result)
        return
    try:
        import matplotlib.figure
        import matplotlib.pyplot as plt

        is_fig = isinstance(result, matplotlib.figure.Figure)
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        is_fig = False
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with jupyterlab
        print(result)
        return
    display(result)
    if is_fig:
        plt.close(result)


class Interactive:
    """A function and its controls. ``render(**values)`` calls the function; ``ui()`` builds the
    ipywidgets UI; ``show()`` displays whichever the mode calls for."""

    def __init__(self, fn: Callable[..., Any], controls: dict[str, Control], title: str | None = None):
        if not callable(fn):
            raise ArgumentError(f"interact: fn must be callable, got {fn!r}")
        if not controls:
            raise ArgumentError("interact: give at least one control, e.g. order=Slider(1, 6)")
        for name, control in controls.items():
            if not isinstance(control, (Slider, Dropdown, Text, TextArea, Checkbox)):
                raise ArgumentError(
                    f"interact: control {name!r} must be a Slider, Dropdown, Text, TextArea or Checkbox, got {control!r}"
                )
        self.fn = fn
        self.controls = dict(controls)
        self.title = title
        self.values = self.defaults()

    def defaults(self) -> dict[str, Any]:
        return {name: c.default for name, c in self.controls.items()}

    def render(self, **values: Any) -> Any:
        """Call the function with the defaults updated by ``values``; unknown names are an error."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ArgumentError(f"render: unknown control(s) {sorted(unknown)}; known: {sorted(self.controls)}")
        self.values = {**self.values, **values}
        return self.fn(**self.values)

    def ui(self):
        """The live UI: a title, the controls and an output area that re-renders on every change."""
        import ipywidgets as w

        # Render once outside the Output widget, so an error in the function surfaces in the cell
        # (and fails nbval) instead of hiding inside the widget.
        first = self.render()
        out = w.Output()
        with out:
            _show(first)
        widgets = {name: c.build(name) for name, c in self.controls.items()}

        def update(_change: Any = None) -> None:
            with out:
                out.clear_output(wait=True)
                _show(self.render(**{n: wd.value for n, wd in widgets.items()}))

        for wd in widgets.values():
            wd.observe(update, names="value")
        head = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
        box = w.VBox([*head, *widgets.values(), out])
        box.controls = widgets  # for tests and for learners who want to drive it from code
        box.output = out
        return box

    def show(self) -> "Interactive":
        if widget_mode() == "live":
            from IPython.display import display

            display(self.ui())
        else:
            settings = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
            title = f"{self.title}: " if self.title else ""
            print(f"[static view] {title}{settings}  (run in JupyterLab to change the settings)")
            _show(self.render())
        return self

    def _ipython_display_(self) -> None:
        # interact(...) already showed itself; as the last line of a cell its return value must not
        # be shown a second time. Call .show() to show it again.
        pass


def interact(fn: Callable[..., Any], *, title: str | None = None, **controls: Control) -> Interactive:
    """Show ``fn`` with one control per keyword argument (see module docstring) and return it."""
    return Interactive(fn, controls, title).show()
