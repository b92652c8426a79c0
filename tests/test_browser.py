"""The notebooks as a learner sees them: JupyterLab in a real headless Chromium, every cell run from
the page's Run menu, then what the page shows is checked (no error, figures as images, training's
progress bar as a widget, other pictures at each rerun of predict_and_compare).

nbval runs the notebooks' code but never a browser: this catches what only the page shows (a
widget that renders as text, a figure that does not render). It needs Debian's `chromium` and
`chromium-driver` and selenium (it is skipped without them, and never downloads a browser).
Everything it writes stays in pytest's temporary folders, the screenshots in the test's tmp_path.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser  # deselect with -m "not browser"

ROOT = Path(__file__).resolve().parents[1]
NO_BROWSER = "no Chromium: apt-get install chromium chromium-driver (and pip install selenium)"
NOTEBOOK_TIMEOUT = 8 * 60  # seconds for one notebook's Run All; notebook 04 trains the quick profile (about 1 min)
IN_THE_BROWSER = ["04_predict_and_compare.ipynb"]  # figures, training's progress widgets, reruns: all in one
TRAINS = "04_predict_and_compare.ipynb"  # finds no checkpoint in the new course folder: trains, with progress bars
RERUN = re.compile(r"^predict_and_compare\(test_loader, n_images=5\)", re.M)  # the cell to rerun for new pictures
# Errors render as stderr, as warnings do: a traceback, or a line starting with an exception's name, tells them apart.
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception|Interrupt)\b", re.M)
TEXT_PROGRESS_BAR = re.compile(r"\d+%\|")  # tqdm's text fallback: "epoch: 100%|█████| 20/20"
LAB_SETTINGS = {
    # every cell in the page, not only those in view, so that outputs can be counted
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},  # the test saves, once, when all has run
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
CHROMIUM_FLAGS = [  # headless, and offline: no sign-in, updates or field trials that wait for the network
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]


@dataclass
class Lab:
    """A running `jupyter lab` serving `root`, reached at `url` with `token`."""

    url: str
    token: str
    root: Path

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stripped_copy(notebook: Path, dest: Path) -> None:
    """The notebook without its stored outputs: whatever the page shows afterwards comes from this run."""
    content = json.loads(notebook.read_text())
    for cell in content["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    dest.write_text(json.dumps(content, indent=1))


@pytest.fixture(scope="module")
def chromium():
    """Paths of Chromium and its driver, and selenium's webdriver module; skips when one is missing."""
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    if not (browser and driver and webdriver):
        pytest.skip(NO_BROWSER)
    return browser, driver, webdriver


@pytest.fixture(scope="module")
def lab(chromium, tmp_path_factory, sample_root, link_course):
    """`jupyter lab` on a free local port, serving copies of the notebooks (the repository is never
    written), its kernels the current Python with the quick profile, one thread and a temporary
    course folder (the sample made already, as a learner's second visit would find it);
    every Jupyter and IPython folder temporary too. Stopped with its kernels at the end."""
    base = tmp_path_factory.mktemp("jupyterlab")
    shutil.copytree(sample_root, base / "course" / "data" / "sample")
    link_course(base / "course")  # the repository's real photographs, linked
    root, settings, jupyter = base / "lab", base / "settings", base / "jupyter"
    (root / "notebooks").mkdir(parents=True)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        _stripped_copy(notebook, root / "notebooks" / notebook.name)
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    (jupyter / "config").mkdir(parents=True)  # jupyter-lsp would look for language servers with npm (logs in ~/.npm)
    server_config = {"LanguageServerManager": {"autodetect": False}}
    (jupyter / "config" / "jupyter_server_config.json").write_text(json.dumps(server_config))
    kernel = jupyter / "data" / "kernels" / "python3"  # the user's folder wins: the kernel is this Python
    kernel.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernel / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    env = dict(
        os.environ,
        BGREMOVE_PROFILE="quick",
        BGREMOVE_HOME=str(base / "course"),
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        # One thread for torch in the kernels: beside the browser and the server, two threads on two cores
        # wait for each other (on a busy machine an epoch of the quick profile took 158 s instead of 14).
        OMP_NUM_THREADS="1",
    )
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    command += [f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={base / 'workspaces'}"]
    with open(base / "jupyter.log", "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root)
    try:
        _wait(lambda: server.poll() is not None or _answers(lab), 60, "jupyter lab to start")
        assert server.poll() is None, f"jupyter lab stopped: {(base / 'jupyter.log').read_text()[-3000:]}"
        yield lab
    finally:
        _stop(server, lab)


def _answers(lab: Lab) -> bool:
    try:
        return bool(lab.api("status"))
    except OSError:
        return False


def _stop(server: subprocess.Popen, lab: Lab) -> None:
    """Shut the server down through its API (it stops its kernels), then make sure its process group is gone."""
    try:
        lab.api("shutdown", method="POST")
        server.wait(30)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # the server's session: itself and any kernel left behind
    except ProcessLookupError:
        pass
    server.wait(10)


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    """Headless Chromium driven by Debian's chromedriver, with a new empty profile and home; quit at the end."""
    binary, driver_path, webdriver = chromium
    from selenium.webdriver.chrome.service import Service

    home = tmp_path_factory.mktemp("chromium")  # its profile, and its home: it keeps crash reports and dconf there
    (home / "run").mkdir(mode=0o700)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    env["XDG_RUNTIME_DIR"] = str(home / "run")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={home / 'profile'}"]:
        options.add_argument(flag)
    service = Service(driver_path, env=env)  # a driver's path: Selenium Manager downloads nothing
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(condition, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)
    return result


# What the page shows, cell by cell (code cells only, in order).
CELLS_JS = """
const text = (cell, selector) => [...cell.querySelectorAll(selector)].map(e => e.innerText);
return [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')].map(cell => ({
    prompt: cell.querySelector('.jp-InputPrompt').textContent.trim(),
    source: text(cell, '.jp-InputArea-editor .cm-content').join('\\n'),
    stderr: text(cell, '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
    images: [...cell.querySelectorAll('.jp-OutputArea .jp-RenderedImage img')].map(e => e.src),
    progress_widgets: cell.querySelectorAll('.jp-OutputArea .jupyter-widgets.widget-hprogress').length,
}));
"""


KERNEL_JS = """
const name = document.querySelector('.jp-NotebookPanel .jp-KernelName')?.innerText.trim();
const status = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')?.dataset.status;
return name && name !== 'No Kernel' ? status : null;
"""


class NotebookPage:
    """One notebook open in JupyterLab, used as a learner uses it: the menus, a click on a cell, Shift+Enter."""

    def __init__(self, driver, lab: Lab, name: str):
        self.driver, self.lab, self.path = driver, lab, f"notebooks/{name}"
        driver.get(f"{lab.url}/lab/tree/{self.path}?reset&token={lab.token}")
        n_code = sum(cell["cell_type"] == "code" for cell in self.saved()["cells"])
        _wait(lambda: len(self.cells()) == n_code and self.kernel() == "idle", 120, f"{name} to open, its kernel ready")
        for session in lab.api("sessions"):  # the kernels of notebooks run before: no more memory or CPU for them
            if session["path"] != self.path:
                lab.api(f"sessions/{session['id']}", method="DELETE")

    def cells(self) -> list[dict]:
        return self.driver.execute_script(CELLS_JS)

    def kernel(self) -> str | None:
        """The kernel's status in the notebook's toolbar; None while there is no kernel yet (the indicator
        says "idle" then too, and Run All would start a kernel and run nothing)."""
        return self.driver.execute_script(KERNEL_JS)

    def menu(self, menu: str, item: str) -> None:
        """Click `menu` in the menu bar, then its `item`, once the item is enabled (JupyterLab enables
        a notebook's commands once the notebook is the current widget, a moment after it shows)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def enabled_item():
            bar = self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
            next(e for e in bar if e.text == menu).click()
            items = self.driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
            found = next(e for e in items if e.find_element(By.CSS_SELECTOR, ".lm-Menu-itemLabel").text == item)
            if "lm-mod-disabled" in found.get_attribute("class"):
                self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # close it, look again
                return None
            return found

        _wait(enabled_item, 30, f"{menu} > {item} to be enabled", every=1).click()

    def run_all(self, timeout: float = NOTEBOOK_TIMEOUT) -> None:
        self.menu("Run", "Run All Cells")
        self._wait_until_run(lambda prompts: any(p != "[ ]:" for p in prompts), timeout)

    def rerun(self, index: int, timeout: float = 120) -> list[str]:
        """Select code cell `index` by its prompt, press Shift+Enter, wait; the images it shows then."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        before = self.cells()[index]["prompt"]
        cell = self.driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell")[index]
        cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").click()  # selects the cell, in command mode
        ActionChains(self.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        self._wait_until_run(lambda prompts: prompts[index] not in (before, "[*]:"), timeout)
        return self.cells()[index]["images"]

    def _wait_until_run(self, started, timeout: float) -> None:
        """Until the run has `started` (within a minute) and then, three looks in a row, no cell waits
        and the kernel is idle."""
        state, quiet, begin = {}, 0, time.monotonic()
        while quiet < 3:
            prompts = [cell["prompt"] for cell in self.cells()]
            state = {"started": state.get("started") or started(prompts), "kernel": self.kernel(), "prompts": prompts}
            done = state["started"] and state["kernel"] == "idle" and "[*]:" not in prompts
            quiet = quiet + 1 if done else 0
            waited = time.monotonic() - begin
            assert state["started"] or waited < 60, f"{self.path}: nothing started running: {state}"
            assert waited < timeout, f"{self.path} still running after {timeout:.0f} s: {state}"
            time.sleep(1)

    def save(self) -> dict:
        """File > Save Notebook, then the notebook as the server stored it."""
        self.menu("File", "Save Notebook")
        dirty = "return document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty') !== null"
        _wait(lambda: not self.driver.execute_script(dirty), 60, f"{self.path} to be saved")
        return self.saved()

    def saved(self) -> dict:
        return self.lab.api(f"contents/{self.path}?content=1")["content"]

    def errors(self) -> list[str]:
        """Every error the page shows: error outputs (told from warnings by their text) and open dialogs."""
        shown = [text for cell in self.cells() for text in cell["stderr"] if ERROR_TEXT.search(text)]
        dialogs = self.driver.execute_script(
            "return [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText)"
        )
        return shown + [f"dialog: {text}" for text in dialogs]

    def screenshot(self, path: Path) -> None:
        """The whole notebook in one picture: the window made as tall as the notebook for a moment."""
        scroller = "document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer')"
        height = self.driver.execute_script(f"return {scroller}.scrollHeight")
        self.driver.set_window_size(1280, min(height + 200, 16000))
        time.sleep(1)  # JupyterLab lays the page out again
        self.driver.execute_script(f"{scroller}.scrollTop = 0")
        time.sleep(0.5)
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 1000)


def _error_outputs(notebook: dict) -> list[str]:
    return [
        f"cell {i}: {out['ename']}: {out['evalue']}"
        for i, cell in enumerate(c for c in notebook["cells"] if c["cell_type"] == "code")
        for out in cell["outputs"]
        if out["output_type"] == "error"
    ]


def test_an_error_in_a_cell_is_caught_in_the_page_and_in_the_saved_notebook(lab, browser):
    """The detector the notebooks' test relies on, on a tiny notebook that warns, then raises."""
    sources = ['print("before")', 'import warnings\nwarnings.warn("only a warning")', 'raise ValueError("boom")', "1"]
    cells = [
        dict(id=f"c{i}", cell_type="code", metadata={}, source=s, outputs=[], execution_count=None)
        for i, s in enumerate(sources)
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = dict(cells=cells, metadata={"kernelspec": kernelspec}, nbformat=4, nbformat_minor=5)
    (lab.root / "notebooks" / "raises.ipynb").write_text(json.dumps(notebook))
    page = NotebookPage(browser, lab, "raises.ipynb")
    page.run_all(timeout=60)
    saved = page.save()
    shown = page.errors()
    assert len(shown) == 1 and "ValueError: boom" in shown[0], shown  # the warning is not taken for an error
    assert _error_outputs(saved) == ["cell 2: ValueError: boom"]
    assert [cell["prompt"] for cell in page.cells()][3] == "[ ]:"  # Run All stops at the error


def test_notebooks_run_in_jupyterlab_in_a_real_browser(lab, browser, tmp_path):
    """Notebook 04, which trains first (the course folder has no checkpoint yet), runs from the Run
    menu without an error, shows its figures as images and its progress bars as widgets;
    predict_and_compare, rerun twice, shows other pictures. Screenshots in tmp_path."""
    for name in IN_THE_BROWSER:
        page = NotebookPage(browser, lab, name)
        try:
            page.run_all()
            assert not (shown := page.errors()), f"{name} shows an error: {shown}"
            reruns = [i for i, cell in enumerate(page.cells()) if RERUN.search(cell["source"])]
            for index in reruns:
                first, second = page.rerun(index), page.rerun(index)
                assert not (shown := page.errors()), f"{name}: predict_and_compare, rerun, shows an error: {shown}"
                assert first and second and first != second, f"{name}: predict_and_compare showed the same pictures"
            saved, cells = page.save(), page.cells()
        finally:
            page.screenshot(tmp_path / f"{Path(name).stem}.png")
        assert not _error_outputs(saved), f"{name} saved an error: {_error_outputs(saved)}"
        not_run = [i for i, cell in enumerate(cells) if not re.fullmatch(r"\[\d+\]:", cell["prompt"])]
        assert not not_run, f"{name}: code cells {not_run} did not run"
        assert any(cell["images"] for cell in cells), f"{name} shows no figure as an image"
        text_bars = [text for cell in cells for text in cell["stderr"] if TEXT_PROGRESS_BAR.search(text)]
        assert not text_bars, f"{name} shows progress bars as text, not widgets: {text_bars}"
        if name == TRAINS:
            assert reruns, f"{name}: no cell starts with predict_and_compare(test_loader, n_images=5)"
            assert any(cell["progress_widgets"] for cell in cells), f"{name} shows no training progress widget"
