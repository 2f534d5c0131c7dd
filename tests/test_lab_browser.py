"""The live heatmap explorer in a real JupyterLab, driven in Debian's chromium (``make check-lab``).

The browser test builds a demo-sized results folder (two synthetic datasets of 46 and 36
test images at 256×256, ``save_explorer_data``), starts ``python -m multiad.pipeline.lab`` (what
``make lab`` runs) on 127.0.0.1 with a free port, a token and its own Jupyter config,
data, runtime and IPython folders (the widget front end stays visible: it lives in the
venv's ``share/jupyter/labextensions``), opens the notebook in chromium (playwright,
``executable_path`` = Debian's chromium, never ``playwright install``; every non-loopback
request aborted and reported), runs every cell live with Run ▸ Run All Cells, waits for the
widget, then changes the image (dropdown and ▶), the threshold, the map and the dataset and
checks that each change redraws the picture (screenshots of the widget's image differ) and
the score line. No "Traceback", "Error displaying widget" or "Model class … not found" may
appear in the page, in the kernel's messages (the websocket frames) or in the server log;
no console error either. At the end the server is shut down (``/api/shutdown``): its
process and its kernel must be gone and its port closed.

Without chromium, playwright, jupyterlab or ipywidgets the test skips; with
``MULTIAD_BROWSER_TEST=required`` (``make check-lab``, CI) it fails instead.
``MULTIAD_LAB_SCREENSHOTS=DIR`` keeps the screenshots (and the timings) in DIR.
The other tests here check ``multiad.pipeline.lab`` without a browser.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser_helpers import chromium, is_loopback

from multiad.pipeline import lab

REPO = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("MULTIAD_BROWSER_TEST", "").lower() == "required"
SHOTS = os.environ.get("MULTIAD_LAB_SCREENSHOTS")
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
# What a broken widget or kernel shows: a raised cell or callback, a missing front end
ERRORS = re.compile(r"Traceback|Error displaying widget|Model class '?[\w.@/-]+'? .*not found|"
                    r"Failed to load model class|Could not create a model")
KERNEL_ERROR = re.compile(rb'"msg_type":\s*"error"')
START_S = 90  # server up; kernel start + `import multiad` (torch) on 2 cores
CHANGE_S = 30  # one control change → kernel redraw → new picture in the page


# ---------------------------------------------------------------------------------------
# multiad.pipeline.lab without a browser
# ---------------------------------------------------------------------------------------

def _tiny_results(root: Path) -> Path:
    """A results folder with one 16-px run (enough for the notebook and the CLI)."""
    from multiad.explorer_data import save_explorer_data

    rng = np.random.default_rng(0)
    kinds = ["good"] * 3 + ["crack"] * 2
    masks = np.zeros((5, 16, 16), bool)
    masks[3:, 4:9, 4:9] = True
    fused = rng.random((5, 16, 16)).astype(np.float32)
    save_explorer_data(root / "runs" / "set-a" / "seed0" / "explorer.npz",
                       rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8), masks,
                       [rng.random((5, s, s)).astype(np.float32) for s in (8, 4, 2, 1)], fused,
                       fused.reshape(5, -1).max(1), np.array([k != "good" for k in kinds]),
                       kinds, [f"{k}/{i}.png" for i, k in enumerate(kinds)])
    return root


def test_lab_notebook_is_the_template_pointed_at_the_results(tmp_path: Path) -> None:
    results = _tiny_results(tmp_path / "res")
    path, written = lab.write_notebook(results)
    assert written and path == results / lab.NOTEBOOK
    nb = json.loads(path.read_text())
    template = json.loads(lab.TEMPLATE.read_text())
    assert [c["cell_type"] for c in nb["cells"]] == [c["cell_type"] for c in template["cells"]]
    params = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    assert json.dumps(str(results.resolve())) in "".join(params["source"])
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "widget_explorer(results_dir)" in code
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    path.write_text("{}")  # a notebook that is there is kept, unless fresh
    assert lab.write_notebook(results) == (path, False) and path.read_text() == "{}"
    assert lab.write_notebook(results, fresh=True)[1] and "cells" in json.loads(path.read_text())
    # the template is not one papermill runs, nor a page of the book
    assert lab.TEMPLATE.parent.name == "lab" and "book/lab" not in (REPO / "_toc.yml").read_text()


def test_lab_command_line(tmp_path: Path) -> None:
    results = _tiny_results(tmp_path / "res")
    nb = results / lab.NOTEBOOK
    assert lab.server_root(nb, tmp_path) == tmp_path.resolve()
    assert lab.server_root(nb, tmp_path / "elsewhere") == results.resolve()
    argv = lab.lab_argv(nb, tmp_path, 9999, "tok", open_browser=False, extra=["--x=1"])
    assert "--ServerApp.ip=127.0.0.1" in argv and "--ServerApp.port=9999" in argv
    assert "--LabApp.default_url=/lab/tree/res/explore.ipynb" in argv
    assert "--IdentityProvider.token=tok" in argv and "--ServerApp.open_browser=False" in argv
    assert "--LabApp.news_url=None" in argv and argv[-1] == "--x=1"
    assert lab.main([str(results), "--write-only"]) == 0 and nb.is_file()
    assert lab.main([str(tmp_path / "empty"), "--write-only"]) == 2  # no runs: says so
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^lab:.*\n\t.*-m multiad\.pipeline\.lab", makefile, re.M)


# ---------------------------------------------------------------------------------------
# The browser test
# ---------------------------------------------------------------------------------------

def _unavailable(reason: str) -> None:
    """Skip, or fail when ``MULTIAD_BROWSER_TEST=required`` (CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (MULTIAD_BROWSER_TEST=required)", pytrace=False)
    pytest.skip(reason)


def _demo_results(root: Path) -> Path:
    """The largest results folder the demo profile makes: two synthetic datasets at 256×256
    (texture: 16 good + 3 defect types × 10 = 46 test images; medical: 16 + 2 × 10 = 36)
    with maps that light up on the defects, through ``save_explorer_data``."""
    from scipy import ndimage

    from multiad.data.synthetic_medical import MEDICAL_DEFECTS, render_medical
    from multiad.data.synthetic_texture import TEXTURE_DEFECTS, render_texture
    from multiad.explorer_data import save_explorer_data

    size = 256
    for ds, render, defects in (("synthetic-texture", render_texture, TEXTURE_DEFECTS),
                                ("synthetic-medical", render_medical, MEDICAL_DEFECTS)):
        kinds = ["good"] * 16 + [d for d in defects for _ in range(10)]
        images, masks = [], []
        for i, kind in enumerate(kinds):
            _, img, mask = render(np.random.default_rng([7, i]), size,
                                  None if kind == "good" else kind)
            img = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=-1)
            images.append(np.rint(img * 255).clip(0, 255).astype(np.uint8))
            masks.append(mask)
        n, masks_a = len(kinds), np.stack(masks)
        rng = np.random.default_rng(1)
        fused = np.stack([ndimage.gaussian_filter(m.astype(np.float32) * 2, 6) for m in masks_a])
        fused += ndimage.gaussian_filter(rng.random(fused.shape, np.float32), (0, 4, 4)) + 0.3
        layers = []
        for grid in (size // 4, size // 8, size // 16, size // 32):
            f = size // grid
            m = fused.reshape(n, grid, f, grid, f).mean(axis=(2, 4))
            layers.append((m + rng.random(m.shape) * 0.2).astype(np.float32))
        run = root / "runs" / ds / "seed0"
        save_explorer_data(run / "explorer.npz", np.stack(images), masks_a, layers, fused,
                           fused.reshape(n, -1).max(axis=1), np.array([k != "good" for k in kinds]),
                           kinds, [f"test/{k}/{i:03d}.png" for i, k in enumerate(kinds)])
        (run / "metrics.json").write_text(json.dumps({"config": {}, "teacher": {
            "kind": "imagenet", "backbone": "efficientnet_lite0"}}))
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _api(base: str, token: str, path: str, method: str = "GET") -> Any:
    """A JSON request to the Jupyter server with the token."""
    req = urllib.request.Request(base + path, method=method, data=b"" if method == "POST"
                                 else None, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is no zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _jupyter_env(home: Path) -> dict[str, str]:
    """The server's environment: its own Jupyter/IPython folders, the repository importable.

    Only the *user* folders move: the venv's share/jupyter (lab extensions, the python3
    kernel) stays on the Jupyter path. JupyterLab's news question is answered "never" so
    that no toast covers the widget in the screenshots.
    """
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env.pop("JUPYTER_PATH", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


class Server:
    """``python -m multiad.pipeline.lab`` in its own session, its log in a file."""

    def __init__(self, work: Path, results: Path) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "multiad.pipeline.lab", str(results), "--port", str(self.port),
             "--token", self.token, "--no-browser", "--fresh", "--ServerApp.port_retries=0"],
            cwd=work, env=_jupyter_env(work / "jupyter"), stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.kernels: list[int] = []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            with contextlib.suppress(OSError, ValueError):
                if "started" in _api(self.base, self.token, "/api/status"):
                    return
            time.sleep(0.3)
        pytest.fail(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log()[-3000:]}")

    def wait_kernel_idle(self, page: Any, timeout: float) -> None:
        """Until the notebook's kernel runs and is idle (Run All before that is lost)."""
        end = time.monotonic() + timeout
        kernels = None
        while time.monotonic() < end:
            # not before the server says the kernel started: listing kernels while one is
            # being created can fail inside jupyter_server ("'last_activity' trait … not
            # the NoneType None", HTTP 500), a race of the server's, not of the explorer's
            if "Kernel started:" in self.log():
                kernels = _api(self.base, self.token, "/api/kernels")
                if kernels and all(k.get("execution_state") == "idle" for k in kernels):
                    return
            page.wait_for_timeout(250)
        pytest.fail(f"no idle kernel within {timeout:.0f} s: {kernels}\n{self.log()[-3000:]}")

    def shutdown(self, timeout: float = 30) -> None:
        """``POST /api/shutdown``, then wait for the process to end."""
        self.kernels = [p for p in _children(self.proc.pid) if _alive(p)]
        with contextlib.suppress(OSError):
            _api(self.base, self.token, "/api/shutdown", "POST")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)

    def kill(self) -> None:
        """Whatever is left of the process group this test started."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in self.kernels:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()


@contextlib.contextmanager
def _browser(executable: str) -> Iterator[tuple[Any, dict[str, list[Any]]]]:
    """A chromium page with every non-loopback request aborted; what it saw in ``seen``."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, list[Any]] = {"blocked": [], "console": [], "frames": [], "ws": []}

    def route(route: Any) -> None:
        if is_loopback(route.request.url):
            route.continue_()
        else:
            seen["blocked"].append(route.request.url)
            route.abort()

    def on_console(msg: Any) -> None:
        url = (msg.location or {}).get("url", "")
        if msg.type == "error" and is_loopback(url or "about:"):
            seen["console"].append(msg.text)

    def on_websocket(ws: Any) -> None:
        seen["ws"].append(ws.url)
        if not is_loopback(ws.url):
            seen["blocked"].append(ws.url)
        ws.on("framereceived", lambda f: seen["frames"].append(
            f.encode("utf-8", "replace") if isinstance(f, str) else bytes(f)))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda err: seen["console"].append(f"uncaught: {err}"))
        page.on("websocket", on_websocket)
        try:
            yield page, seen
        finally:
            context.close()
            browser.close()


_JS_SRC = "() => { const i = document.querySelector('img.multiad-view'); return i ? i.src : ''; }"
_JS_LOADED = ("(before) => { const i = document.querySelector('img.multiad-view');"
              " return !!i && i.src !== before && i.complete && i.naturalWidth > 0; }")


def _png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def _changed(a: bytes, b: bytes) -> float:
    """Fraction of pixels that differ visibly between two screenshots (1 if sizes differ)."""
    x, y = _png(a), _png(b)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y).max(axis=-1) > 12).mean())


class Explorer:
    """The widget in the page: acting on its controls and waiting for the redraw."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots, self.k = page, shots, 0
        self.timings: dict[str, float] = {}

    def text(self, name: str) -> str:
        return self.page.locator(f".multiad-{name}").first.inner_text()

    def shot(self, name: str) -> bytes:
        """Screenshot of the picture (kept with one of the whole widget)."""
        self.k += 1
        box = self.page.locator(".multiad-explorer")
        box.scroll_into_view_if_needed()
        box.screenshot(path=str(self.shots / f"{self.k:02d}-{name}-widget.png"))
        return self.page.locator("img.multiad-view").screenshot(
            path=str(self.shots / f"{self.k:02d}-{name}.png"))

    def change(self, name: str, act: Callable[[], None]) -> bytes:
        """Do ``act``, wait until the kernel's new picture is shown, screenshot it."""
        before = self.page.evaluate(_JS_SRC)
        t0 = time.perf_counter()
        act()
        try:
            self.page.wait_for_function(_JS_LOADED, arg=before, timeout=CHANGE_S * 1000)
        except Exception:  # playwright's TimeoutError: say what the widget showed
            pytest.fail(f"{name}: the picture did not change within {CHANGE_S} s; error box: "
                        f"{self.text('error')!r}; stats: {self.text('stats')!r}")
        self.page.wait_for_timeout(300)  # the stats line arrives in the same update
        self.timings[name] = round(time.perf_counter() - t0, 3)
        return self.shot(name)

    def readout(self, name: str, value: str) -> None:
        """Type ``value`` into slider ``name``'s readout (what a person does for exact values)."""
        box = self.page.locator(f".multiad-{name} .widget-readout")
        box.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(value)
        self.page.keyboard.press("Enter")


def _page_problems(page: Any) -> list[str]:
    """Error text anywhere in the notebook (outputs included)."""
    text = page.evaluate("() => document.body.innerText")
    problems = [f"page shows {m.group(0)!r}: ...{text[max(m.start() - 80, 0):m.end() + 200]!r}"
                for m in ERRORS.finditer(text)]
    if page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                    ).count():
        stderr = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr']").all_inner_texts()
        problems += [f"stderr output: {s[:300]!r}" for s in stderr if ERRORS.search(s)]
    return problems


def _frame_problems(frames: list[bytes]) -> list[str]:
    """Kernel messages (iopub, shell) that carry an error or a traceback."""
    out = []
    for f in frames:
        m = KERNEL_ERROR.search(f) or re.search(rb"Traceback", f)
        if m:
            out.append(f[max(m.start() - 100, 0):m.end() + 400].decode("utf-8", "replace"))
    return out


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_explorer_live_in_jupyterlab(tmp_path: Path) -> None:
    """Run All in a real JupyterLab; the widget renders and redraws; the server stops."""
    for module, why in (("playwright", "playwright is not installed (pip install -e '.[book]')"),
                        ("jupyterlab", "jupyterlab is not installed (pip install -e '.[book]')"),
                        ("ipywidgets", "ipywidgets is not installed (pip install -e '.[book]')"),
                        ("jupyterlab_widgets", "jupyterlab_widgets (ipywidgets 8) is missing")):
        if importlib.util.find_spec(module) is None:
            _unavailable(why)
    executable = chromium()
    if executable is None:
        _unavailable("Debian chromium not found (apt-get install -y chromium)")
    shots = Path(SHOTS) if SHOTS else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    results = _demo_results(tmp_path / "results")
    timings["results_s"] = time.perf_counter() - t_start

    server = Server(tmp_path, results)
    try:
        server.wait_ready(START_S)
        timings["server_s"] = time.perf_counter() - t_start
        notebook = results / lab.NOTEBOOK
        cells = json.loads(notebook.read_text())["cells"]
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code"), (
            "the notebook must arrive unexecuted: the test runs it live")
        names = [e["name"] for e in _api(server.base, server.token, "/lab/api/extensions")]
        assert WIDGET_EXTENSION in names, (
            f"the widget front end ({WIDGET_EXTENSION}) is not visible to JupyterLab: {names}")

        with _browser(executable) as (page, seen):
            rel = notebook.relative_to(tmp_path).as_posix()
            page.goto(f"{server.base}/lab/tree/{rel}?token={server.token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=START_S * 1000)
            server.wait_kernel_idle(page, START_S)
            timings["kernel_s"] = time.perf_counter() - t_start
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            try:
                page.wait_for_function(_JS_LOADED, arg="", timeout=START_S * 1000)
            except Exception:
                page.screenshot(path=str(shots / "not-rendered.png"))
                outputs = page.locator(".jp-OutputArea").all_inner_texts()
                pytest.fail("the explorer did not render after Run All Cells: "
                            f"{_page_problems(page) or outputs}"
                            f"\nkernel: {_frame_problems(seen['frames'])[:3]}")
            timings["rendered_s"] = time.perf_counter() - t_start
            ui = Explorer(page, shots)
            page.wait_for_timeout(300)
            assert page.locator(".jp-Cell .jp-InputArea-prompt").filter(
                has_text=re.compile(r"\[\d+\]")).count() >= 2, "cells not executed by the kernel"
            first = ui.shot("start")
            stats0 = ui.text("stats")
            assert re.search(r"score \d", stats0) and "label" in stats0, stats0
            n_images = page.locator(".multiad-image select option").count()
            dataset0 = page.locator(".multiad-dataset select").input_value()
            assert n_images in (6, 8), f"{n_images} images in the picker"

            # the image: the last one (a normal image) from the dropdown, then ▶ (wraps)
            last = ui.change("image-dropdown", lambda: page.locator(
                ".multiad-image select").select_option(index=n_images - 1))
            assert _changed(first, last) > 0.01 and "normal" in ui.text("stats")
            nxt = ui.change("image-next", lambda: page.locator(".multiad-next").click())
            assert _changed(last, nxt) > 0.01 and "image 1/" in ui.text("stats")
            # the threshold: typed below the map's minimum, clamped to it → every pixel above
            low = ui.change("threshold", lambda: ui.readout("threshold", "0"))
            assert _changed(nxt, low) > 0.01 and "recall 1.000" in ui.text("stats")
            # the map: M3 (the threshold moves to M3's scale)
            m3 = ui.change("map-M3", lambda: page.locator(".multiad-map button",
                                                          has_text=re.compile(r"^M3$")).click())
            assert _changed(low, m3) > 0.01 and "M3:" in ui.text("stats")
            # the opacity
            opaque = ui.change("opacity", lambda: ui.readout("opacity", "1"))
            assert _changed(m3, opaque) > 0.001
            # the dataset: the other one, with its own images
            other = next(o for o in page.locator(".multiad-dataset select option"
                                                 ).all_inner_texts() if o != dataset0)
            swapped = ui.change("dataset", lambda: page.locator(
                ".multiad-dataset select").select_option(label=other))
            assert _changed(opaque, swapped) > 0.01
            assert page.locator(".multiad-image select option").count() != n_images
            assert other in page.locator(".multiad-run select").input_value()
            timings.update({f"change_{k}_s": v for k, v in ui.timings.items()})

            page.wait_for_timeout(500)  # late messages
            problems = _page_problems(page)
            problems += [f"kernel: {p}" for p in _frame_problems(seen["frames"])]
            problems += [f"console error: {m}" for m in seen["console"]]
            problems += [f"non-loopback request: {u}" for u in sorted(set(seen["blocked"]))]
            if ui.text("error").strip():
                problems.append(f"error box: {ui.text('error')}")
            assert any("/api/kernels/" in u for u in seen["ws"]), "no kernel websocket"
            page.screenshot(path=str(shots / "page.png"), full_page=False)

        problems += [f"server log: {m.group(0)}" for m in ERRORS.finditer(server.log())]
        assert not problems, "\n  ".join(["problems:", *problems])

        server.shutdown()
        timings["total_s"] = time.perf_counter() - t_start
        assert server.proc.returncode is not None, "the server did not stop on /api/shutdown"
        assert server.proc.returncode == 0, f"server exit code {server.proc.returncode}"
        assert not _port_open(server.port), f"port {server.port} still open"
        assert server.kernels, "no kernel process was seen under the server"
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in server.kernels) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in server.kernels), "the kernel outlived the server"
    finally:
        server.kill()
        (shots / "timings.json").write_text(json.dumps(
            {k: round(v, 2) for k, v in timings.items()}, indent=1))
