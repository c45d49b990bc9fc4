"""What a learner sees: the course's notebooks run in a real JupyterLab in a real browser, and their
widgets show and answer a learner's keyboard.

tests/test_lab.py proves the server serves notebook 00; nothing there runs JavaScript, so a mismatch
between ipywidgets (the kernel side) and its JupyterLab extension (the browser side), a classic breakage
after an upgrade, would pass it. Here JupyterLab starts from this environment, headless Chromium (the
system's ``chromium`` and ``chromedriver``, driven by selenium) opens a few fast notebooks, runs every
cell, types into a widget's controls and checks that the widget's output changes, and fails on any
widget error in the page or the browser console:

* 00: the size explorer's two dropdowns, picked as with the mouse; the output names the new model and
  precision.
* 01: the n-gram writer's prompt (a TextArea) retyped with a line break (Enter), committed with Tab; its
  value keeps the line break and the generated text starts with it. Then its order slider, one arrow key.
* 02: the BPE token viewer's text retyped with a line break; the output counts its bytes and shows the
  line break as a token; then its merges slider, one arrow key.

Two negative controls prove the detector can fail: widgets the front end cannot load (a model version it
does not have, a model class that does not exist), and a JupyterLab without the widget manager
extension, where a widget silently shows as text.

The browser works on copies: the notebooks are copied into a temporary folder that the server serves
(the package finds its data and zoo by its own location, not the notebook's), and the test fails if any
file under notebooks/ changed while it ran.

Without chromium, chromedriver or selenium the test is skipped (``apt-get install chromium
chromium-driver``; ``pip install -e '.[test]'``); under CI (``CI=true``), where .ci/run installs them,
it fails instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llmcourse.notebook import in_ci

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "llmcourse-browser-test"
# One notebook's Run All: the three used here take 5-30 s on a quiet 2-core CPU, a few minutes on a busy one.
RUN_TIMEOUT_S = 480

# What JupyterLab and its widget manager write when a widget cannot be shown: in the page, where the
# widget should be, and in the browser console.
PAGE_ERRORS = ("Error displaying widget", "Failed to load model class", "Could not create a view",
               "Could not create model", "Could not instantiate widget")
CONSOLE_WIDGET = re.compile(r"widget|jupyter-widgets|Class \S+ not found|model class|Could not create", re.I)


def find_browser() -> tuple[str | None, str | None]:
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    return chromium, shutil.which("chromedriver")


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]' (or pip install -r requirements.lock)"
    chromium, driver = find_browser()
    if chromium is None or driver is None:
        return (f"no headless browser (chromium: {chromium}, chromedriver: {driver}): install chromium and "
                "chromium-driver (apt-get install chromium chromium-driver)")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebooks_state() -> dict[str, str]:
    """A fingerprint of everything under notebooks/: each file's sha256, and git's view when there is git."""
    state = {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((ROOT / "notebooks").rglob("*")) if p.is_file()}
    if (ROOT / ".git").exists() and shutil.which("git"):
        status = subprocess.run(["git", "status", "--porcelain", "--", "notebooks"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        state["git status --porcelain notebooks"] = status
    return state


def widget_errors(driver, console: list[dict]) -> list[str]:
    """Every widget error the learner would see in the page, and every SEVERE console message about widgets."""
    page = driver.execute_script("return document.body.innerText") or ""
    # ipywidgets 8 shows a widget it cannot create as an error icon ("Click to show javascript error.");
    # a click on it reveals the message.
    shown = driver.execute_script("""
        return [...document.querySelectorAll('.jupyter-widgets-error-widget')].map(el => {
            el.click();
            return el.innerText.replace(/\\s+/g, ' ').trim();
        });""")
    found = [f"page: error widget: {text[:500]}" for text in shown]
    found += [f"page: {line.strip()}" for line in page.splitlines()
              if any(e in line for e in PAGE_ERRORS) and not any(" ".join(line.split()) in t for t in shown)]
    # Without the widget manager (the extension missing or not loaded) JupyterLab has no renderer for a
    # widget and quietly shows its text form, e.g. "VBox(children=(...))", and nothing above appears.
    as_text = driver.execute_script("""
        const mime = 'application/vnd.jupyter.widget-view+json';
        const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const notebook = panel && panel.content;
        if (!notebook || !notebook.rendermime || !notebook.widgets) return [];
        if (notebook.rendermime.preferredMimeType({[mime]: {}}, 'any') === mime) return [];
        const shown = [];
        for (const cell of notebook.widgets) {
            if (cell.model.type !== 'code') continue;
            for (const o of cell.model.outputs.toJSON())
                if (o.data && o.data[mime]) shown.push(String(o.data['text/plain'] || '').slice(0, 200));
        }
        return shown;""")
    found += [f"page: no widget renderer (is the @jupyter-widgets/jupyterlab-manager extension loaded?); "
              f"a widget shows as text: {text}" for text in as_text]
    for entry in console:
        message = entry.get("message", "")
        if any(e in message for e in PAGE_ERRORS) or (
                entry.get("level") == "SEVERE" and CONSOLE_WIDGET.search(message)):
            found.append(f"console {entry.get('level')}: {message[:600]}")
    return found


class Lab:
    """A JupyterLab server on a temporary folder and a headless Chromium on it."""

    def __init__(self, tmp: Path, disabled_extensions: tuple[str, ...] = ()):
        self.tmp = tmp
        self.disabled_extensions = disabled_extensions
        self.course = tmp / "course"
        self.console: list[dict] = []  # browser console entries not yet checked
        self.proc = None
        self.driver = None

    # -- setup ---------------------------------------------------------------------------------------
    def start(self) -> None:
        (self.course / "notebooks").mkdir(parents=True)
        config = self.tmp / "config"
        settings = config / "lab" / "user-settings" / "@jupyterlab"
        # Every cell stays in the page (no virtual scrolling) and records how long it ran; no news or
        # update toasts.
        self._write(settings / "notebook-extension" / "tracker.jupyterlab-settings",
                    {"windowingMode": "none", "recordTiming": True})
        self._write(settings / "apputils-extension" / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})
        if self.disabled_extensions:  # for the negative control: as if an extension were missing
            self._write(config / "labconfig" / "page_config.json",
                        {"disabledExtensions": {name: True for name in self.disabled_extensions}})
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(self.tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(config),
               "LLMCOURSE_PROGRESS": str(self.tmp / "progress.json")}
        env.pop("LLMCOURSE_WIDGETS", None)  # the widgets must be live
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.course}", "--allow-root",
               "--LabApp.expose_app_in_browser=True"]
        self.log = self.tmp / "jupyterlab.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.course, env=env)
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={TOKEN}", timeout=5) as r:
                    assert r.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert self.proc.poll() is None, f"JupyterLab exited:\n{self.server_log()}"
                assert time.time() < deadline, f"JupyterLab did not start within 90 s:\n{self.server_log()}"
                time.sleep(0.5)

        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, chromedriver = find_browser()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1400,1000", "--lang=en-US"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        self.driver.set_script_timeout(100)  # each call is short (Run All is polled), and selenium waits 120 s

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))

    def stop(self) -> None:
        try:
            if self.driver is not None:
                self.driver.quit()
        finally:
            if self.proc is not None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=30)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    # -- the browser -----------------------------------------------------------------------------------
    def drain_console(self) -> list[dict]:
        self.console.extend(self.driver.get_log("browser"))
        return self.console

    def call(self, body: str, *args):
        """Run ``body`` (the inside of an async function with ``app`` and ``args`` in scope) in the page."""
        script = ("const done = arguments[arguments.length - 1]; const args = [...arguments].slice(0, -1);"
                  "(async () => { const app = window.jupyterapp; " + body + " })()"
                  ".then(r => done({ok: r === undefined ? null : r}), e => done({error: String(e && e.stack || e)}));")
        result = self.driver.execute_async_script(script, *args)
        assert "error" not in result, f"in the page: {result['error']}\n{self.server_log()}"
        return result["ok"]

    def open_lab(self) -> None:
        """A fresh page (the last notebook's workspace reset), its console drained."""
        self.driver.get(f"{self.base}/lab?reset&token={TOKEN}")
        deadline = time.time() + 120
        while not self.driver.execute_script("return !!window.jupyterapp"):
            assert time.time() < deadline, "JupyterLab's page did not load within 120 s"
            time.sleep(0.25)
        self.call("await app.started; await app.restored;")
        self.driver.get_log("browser")  # the previous page's messages were checked by the previous test
        self.console = []

    def run_notebook(self, relpath: str) -> dict:
        """Open a notebook and Run All; wait until the kernel is idle. Returns what happened.

        Run All is started in the page and polled from here, so no single browser call lasts long.
        """
        self.call("""
            const panel = await app.commands.execute('docmanager:open', {path: args[0], factory: 'Notebook'});
            await panel.context.ready;
            await panel.sessionContext.ready;
            app.shell.activateById(panel.id);
            window.llmcourseRun = null;
            app.commands.execute('notebook:run-all-cells').then(
                ran => { window.llmcourseRun = {ran}; }, e => { window.llmcourseRun = {error: String(e)}; });
        """, relpath)
        deadline = time.time() + RUN_TIMEOUT_S
        while not (done := self.driver.execute_script("return window.llmcourseRun")):
            assert time.time() < deadline, f"{relpath}: Run All did not finish within {RUN_TIMEOUT_S} s"
            time.sleep(0.5)
        assert "error" not in done, f"{relpath}: Run All failed in the page: {done['error']}"
        return self.call("""
            const panel = app.shell.currentWidget;
            const kernel = panel.sessionContext.session.kernel;
            for (let i = 0; i < 600 && kernel.status !== 'idle'; i++) await new Promise(r => setTimeout(r, 100));
            const cells = [];
            for (const cell of panel.content.widgets) {
                if (cell.model.type !== 'code') continue;
                const outputs = cell.model.outputs.toJSON();
                const timing = cell.model.getMetadata('execution') || {};
                const seconds = (Date.parse(timing['shell.execute_reply'])
                                 - Date.parse(timing['iopub.execute_input'])) / 1000;
                cells.push({count: cell.model.executionCount, seconds: isNaN(seconds) ? null : seconds,
                            errors: outputs.filter(o => o.output_type === 'error')
                                           .map(o => o.ename + ': ' + o.evalue)});
            }
            return {ran: args[0], status: kernel.status, cells};
        """, done["ran"])

    def close_notebook(self) -> None:
        """Shut the current notebook's kernel down and close it without saving. Best effort: it runs in
        ``finally`` and must not hide the failure before it (stopping the server ends any kernel left)."""
        try:
            self.call("""
                const panel = app.shell.currentWidget;
                if (panel && panel.sessionContext) { await panel.sessionContext.shutdown(); panel.dispose(); }
            """)
        except Exception as e:  # noqa: BLE001
            print(f"closing the notebook failed: {e}")

    def widget(self, title: str, timeout: float = 60):
        """The live widget box whose title (``interact(..., title=...)``) is ``title``."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        xpath = (f"//div[contains(@class, 'widget-vbox')][./div[contains(@class, 'widget-html')]"
                 f"//b[normalize-space() = '{title}']]")
        try:
            return WebDriverWait(self.driver, timeout).until(lambda d: d.find_element(By.XPATH, xpath))
        except Exception:
            raise AssertionError(
                f"the widget {title!r} did not render in the browser; widget errors: "
                f"{widget_errors(self.driver, self.drain_console())}") from None

    def control(self, box, kind: str, label: str):
        """A control of the widget box: ``kind`` is 'textarea', 'slider', 'dropdown', 'text' or 'checkbox'."""
        from selenium.webdriver.common.by import By

        inner = {"textarea": "//textarea", "slider": "//div[contains(@class, 'noUi-handle')]",
                 "dropdown": "//select", "text": "//input", "checkbox": "//input"}[kind]
        return box.find_element(By.XPATH, f"./div[contains(@class, 'widget-{kind}')]"
                                          f"[./label[normalize-space() = '{label}']]{inner}")

    def readout(self, box, label: str) -> str:
        """What a slider shows as its value."""
        from selenium.webdriver.common.by import By

        return box.find_element(By.XPATH, f"./div[contains(@class, 'widget-slider')][./label[normalize-space() = "
                                          f"'{label}']]//div[contains(@class, 'widget-readout')]").text.strip()

    def output_text(self, box) -> str:
        from selenium.webdriver.common.by import By

        return box.find_element(By.CSS_SELECTOR, ".widget-output").get_attribute("innerText")

    def wait_output_change(self, box, before: str, timeout: float = 60) -> str:
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            WebDriverWait(self.driver, timeout).until(
                lambda d: self.output_text(box).strip() not in ("", before.strip()))
        except Exception:
            raise AssertionError(f"the widget's output did not change within {timeout} s; it still shows:\n"
                                 f"{self.output_text(box)[:1000]}\nwidget errors: "
                                 f"{widget_errors(self.driver, self.drain_console())}") from None
        return self.output_text(box)

    def assert_no_widget_errors(self) -> None:
        errors = widget_errors(self.driver, self.drain_console())
        assert not errors, "widget errors in the browser:\n" + "\n".join(errors)


def require_browser() -> None:
    problem = browser_missing()
    if problem:
        if in_ci():
            pytest.fail(f"the browser test must run in CI (.ci/run installs the browser): {problem}")
        pytest.skip(problem)


@contextlib.contextmanager
def running(lab: Lab):
    """Start the server and the browser; whatever happens, quit the browser and stop the server."""
    assert not lab.course.resolve().is_relative_to(ROOT), "the server must serve copies, outside the repository"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager never downloads a browser or a driver
        try:
            lab.start()
            yield lab
        finally:
            lab.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_browser()
    before = notebooks_state()
    with running(Lab(tmp_path_factory.mktemp("browser"))) as lab:
        yield lab
    after = notebooks_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, "the browser test changed files under notebooks/:\n" + "\n".join(
        f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed)


def run(lab: Lab, name: str) -> None:
    """Copy notebooks/<name> to the served folder, open it in a fresh page and Run All."""
    shutil.copy(ROOT / "notebooks" / name, lab.course / "notebooks" / name)
    lab.open_lab()
    start = time.perf_counter()
    result = lab.run_notebook(f"notebooks/{name}")
    slowest = sorted(((c["seconds"] or 0, i) for i, c in enumerate(result["cells"])), reverse=True)[:3]
    print(f"{name}: Run All took {time.perf_counter() - start:.1f} s in the browser; slowest code cells: "
          + ", ".join(f"#{i} {t:.1f} s" for t, i in slowest))
    errors = [(i, c["errors"]) for i, c in enumerate(result["cells"]) if c["errors"]]
    assert not errors, f"{name}: cells raised in the browser: {errors}"
    assert result["ran"] is True, f"{name}: Run All did not finish: {result}"
    unrun = [i for i, c in enumerate(result["cells"]) if c["count"] is None]
    assert not unrun, f"{name}: code cells {unrun} did not run"
    assert result["status"] == "idle", f"{name}: the kernel is {result['status']!r} after Run All"
    lab.assert_no_widget_errors()


def type_keys(element, *keys) -> None:
    """Type as a learner would: click into the control, then the keys."""
    element.click()
    element.send_keys(*keys)


def test_00_size_explorer_answers_its_dropdowns(lab):
    from selenium.webdriver.support.ui import Select

    try:
        run(lab, "00_welcome.ipynb")
        box = lab.widget("Size explorer")
        before = lab.output_text(box)
        assert before.startswith("GPT-3 (2020"), before
        # A learner opens the dropdown and clicks another model, then another precision.
        Select(lab.control(box, "dropdown", "model")).select_by_visible_text("Chinchilla")
        after = lab.wait_output_change(box, before)
        assert after.startswith("Chinchilla (2022"), after
        Select(lab.control(box, "dropdown", "precision")).select_by_visible_text("int8")
        after_precision = lab.wait_output_change(box, after)
        assert after_precision.startswith("Chinchilla") and "weights in int8" in after_precision, after_precision
        lab.assert_no_widget_errors()
    finally:
        lab.close_notebook()


def test_01_ngram_writer_takes_a_typed_prompt_with_a_line_break(lab):
    from selenium.webdriver.common.keys import Keys

    try:
        run(lab, "01_ngrams.ipynb")
        box = lab.widget("n-gram writer")
        before = lab.output_text(box)
        assert before.startswith("JULIET:\n"), before
        prompt = lab.control(box, "textarea", "prompt")
        # Replace the prompt: a name, Enter (a line break, which the TextArea keeps), a word; Tab commits it.
        type_keys(prompt, Keys.CONTROL, "a")
        prompt.send_keys(Keys.DELETE, "ROMEO:", Keys.ENTER, "O", Keys.TAB)
        assert prompt.get_attribute("value") == "ROMEO:\nO"
        after = lab.wait_output_change(box, before)
        assert after.startswith("ROMEO:\nO"), after
        assert lab.readout(box, "order") == "5"
        type_keys(lab.control(box, "slider", "order"), Keys.ARROW_LEFT)  # the slider's handle, one step left
        after_order = lab.wait_output_change(box, after)
        assert lab.readout(box, "order") == "4"
        assert after_order.startswith("ROMEO:\nO"), after_order
        lab.assert_no_widget_errors()
    finally:
        lab.close_notebook()


def test_02_token_viewer_takes_typed_text_and_a_slider(lab):
    from selenium.webdriver.common.keys import Keys

    try:
        run(lab, "02_tokenization.ipynb")
        box = lab.widget("BPE token viewer")
        before = lab.output_text(box)
        assert "after 767 of 767 merges" in before, before
        text = lab.control(box, "textarea", "text")
        type_keys(text, Keys.CONTROL, "a")
        text.send_keys(Keys.DELETE, "to be", Keys.ENTER, "or not", Keys.TAB)
        assert text.get_attribute("value") == "to be\nor not"
        after = lab.wait_output_change(box, before)
        assert "for 12 bytes" in after and "↵" in after, after  # the line break reached the kernel
        type_keys(lab.control(box, "slider", "merges"), Keys.ARROW_LEFT)  # the slider's handle, one step left
        assert lab.readout(box, "merges") == "766"
        after_merges = lab.wait_output_change(box, after)
        assert "after 766 of 767 merges" in after_merges and "for 12 bytes" in after_merges, after_merges
        lab.assert_no_widget_errors()
    finally:
        lab.close_notebook()


BROKEN_WIDGETS = '''\
import ipywidgets as w
import traitlets


class FromTheFuture(w.IntSlider):
    """A slider whose model asks for a version of the controls that this JupyterLab does not have."""
    _model_module_version = traitlets.Unicode("99.0.0").tag(sync=True)


class Unknown(w.IntSlider):
    """A slider whose model class does not exist at all."""
    _model_name = traitlets.Unicode("NoSuchModel").tag(sync=True)


display(FromTheFuture(description="future"), Unknown(description="unknown"))
'''


def test_negative_control_a_broken_widget_is_reported(lab):
    """The detector is not blind: widgets the browser cannot show make widget_errors report them."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BROKEN_WIDGETS)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.course / "broken_widgets.ipynb")
    lab.open_lab()
    try:
        result = lab.run_notebook("broken_widgets.ipynb")
        assert result["ran"] is True and not result["cells"][0]["errors"], result
        deadline = time.time() + 30  # until the page shows both widgets' errors, or 30 s
        while True:
            errors = widget_errors(lab.driver, lab.drain_console())
            if sum(e.startswith("page: ") for e in errors) >= 2 or time.time() > deadline:
                break
            time.sleep(0.5)
        print("what the detector reports for the broken widgets:", *errors, sep="\n  ")
        assert errors, "a widget that cannot be shown went unnoticed"
        page = [e for e in errors if e.startswith("page: ")]  # the learner sees it where the widget is
        assert any("IntSliderModel" in e and "99.0.0" in e for e in page), errors
        assert any("NoSuchModel" in e for e in page), errors
        assert any(e.startswith("console SEVERE") for e in errors), errors
        with pytest.raises(AssertionError, match="widget errors in the browser") as failed:
            lab.assert_no_widget_errors()  # what the notebook tests above would do on such a page
        print("the notebook tests would fail with:", str(failed.value).splitlines()[0])
    finally:
        lab.close_notebook()


def test_negative_control_without_the_widget_manager_widgets_are_reported(tmp_path):
    """The classic breakage: JupyterLab without a working widget extension shows a widget as text
    ("VBox(children=...)") and says nothing; widget_errors must still report it."""
    import nbformat

    require_browser()
    lab = Lab(tmp_path, disabled_extensions=("@jupyter-widgets/jupyterlab-manager",))
    with running(lab):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import ipywidgets as w\nw.VBox([w.IntSlider(description='n'), w.Output()])")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nbformat.write(nb, lab.course / "no_manager.ipynb")
        lab.open_lab()
        result = lab.run_notebook("no_manager.ipynb")
        assert result["ran"] is True and not result["cells"][0]["errors"], result
        errors = widget_errors(lab.driver, lab.drain_console())
        print("what the detector reports without the widget manager:", *errors, sep="\n  ")
        assert any("no widget renderer" in e and "VBox(children=" in e for e in errors), errors
