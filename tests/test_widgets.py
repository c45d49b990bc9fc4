import matplotlib.pyplot as plt
import pytest

from llmcourse.widgets import Checkbox, Dropdown, Interactive, Slider, Text, TextArea, interact, widget_mode


def shout(text: str, times: int, loud: bool) -> str:
    s = " ".join([text] * times)
    return s.upper() if loud else s


def make():
    return Interactive(shout, {"text": Text("hi"), "times": Slider(1, 5, value=2), "loud": Checkbox(False)},
                       title="Echo")


def test_logic_is_a_plain_function_with_defaults():
    w = make()
    assert w.defaults() == {"text": "hi", "times": 2, "loud": False}
    assert w.render() == "hi hi"
    assert w.render(loud=True, times=3) == "HI HI HI"
    with pytest.raises(TypeError, match="unknown control"):
        w.render(volume=11)


def test_static_mode_prints_the_default_result(monkeypatch, capsys):
    monkeypatch.setenv("LLMCOURSE_WIDGETS", "static")
    assert widget_mode() == "static"
    interact(shout, text=Text("yo"), times=Slider(1, 3, value=3), loud=Checkbox(True))
    out = capsys.readouterr().out
    assert "[static view]" in out and "YO YO YO" in out


def test_auto_mode_outside_a_kernel_is_static(monkeypatch):
    monkeypatch.delenv("LLMCOURSE_WIDGETS", raising=False)
    assert widget_mode() == "static"
    monkeypatch.setenv("LLMCOURSE_WIDGETS", "sparkly")
    with pytest.raises(ValueError, match="LLMCOURSE_WIDGETS"):
        widget_mode()


def test_live_ui_rerenders_when_a_control_changes():
    import ipywidgets

    calls = []

    def spy(n: int, word: str) -> str:
        calls.append((n, word))
        return word * n

    w = Interactive(spy, {"n": Slider(1, 4, value=1), "word": Dropdown(["a", "b"])})
    box = w.ui()
    assert isinstance(box, ipywidgets.VBox)
    assert isinstance(box.controls["n"], ipywidgets.IntSlider)
    assert isinstance(box.controls["word"], ipywidgets.Dropdown)
    assert calls == [(1, "a")]
    box.controls["n"].value = 3
    box.controls["word"].value = "b"
    assert calls[-1] == (3, "b") and w.values == {"n": 3, "word": "b"}


def test_a_text_area_keeps_line_breaks():
    """A prompt such as "JULIET:\nO Romeo" must reach the function with its line break, as typed."""
    import ipywidgets

    seen = []
    w = Interactive(lambda prompt: seen.append(prompt) or prompt, {"prompt": TextArea("JULIET:\nO Romeo,", rows=3)})
    box = w.ui()
    assert isinstance(box.controls["prompt"], ipywidgets.Textarea) and box.controls["prompt"].rows == 3
    assert seen == ["JULIET:\nO Romeo,"]
    box.controls["prompt"].value = "ROMEO:\nBut, soft!\nWhat light"
    assert seen[-1] == "ROMEO:\nBut, soft!\nWhat light"


def test_errors_in_the_function_surface_when_the_ui_is_built():
    def broken(x: int) -> str:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Interactive(broken, {"x": Slider(0, 1)}).ui()


def test_float_slider_and_figures(monkeypatch):
    import ipywidgets

    def plot(scale: float):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, scale])
        return fig

    w = Interactive(plot, {"scale": Slider(0.0, 2.0, 0.1, value=1.0)})
    assert isinstance(w.ui().controls["scale"], ipywidgets.FloatSlider)
    monkeypatch.setenv("LLMCOURSE_WIDGETS", "static")
    w.show()
    assert plt.get_fignums() == []  # shown figures are closed, so they are not drawn twice


@pytest.mark.parametrize(
    "make_control, message",
    [
        (lambda: Slider(5, 1), "min must be < max"),
        (lambda: Slider(0, 1, step=0), "step must be > 0"),
        (lambda: Slider(0, 1, value=3), "value must lie in"),
        (lambda: Slider("0", 1), "min must be a number"),
        (lambda: Dropdown([]), "non-empty list"),
        (lambda: Dropdown(["a"], value="b"), "not one of the options"),
        (lambda: Text(3), "value must be a str"),
        (lambda: TextArea(None), "value must be a str"),
        (lambda: TextArea("x", rows=0), "rows must be an int >= 1"),
    ],
)
def test_bad_controls_name_the_argument(make_control, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_control()


def test_bad_interactive_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        Interactive(3, {"x": Slider(0, 1)})
    with pytest.raises(ValueError, match="at least one control"):
        Interactive(shout, {})
    with pytest.raises(TypeError, match="control 'x'"):
        Interactive(shout, {"x": 5})


def test_no_notebook_gives_a_one_line_box_a_default_with_a_line_break():
    """A Text box cannot hold a line break: a default with one loses it as soon as the learner edits it, so
    every multi-line default must be a TextArea."""
    import ast
    import json
    from pathlib import Path

    offenders = []
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").rglob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            if "Text(" not in source:
                continue
            for node in ast.walk(ast.parse(source)):
                if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Text" and node.args
                        and isinstance(node.args[0], ast.Constant) and "\n" in str(node.args[0].value)):
                    offenders.append(f"{path.name}: Text({node.args[0].value!r})")
    assert not offenders, f"use TextArea for defaults with line breaks: {offenders}"
