"""Browser test of the built book: every page loads offline and renders in Chromium.

The book in ``_build/html`` (or ``$MULTIAD_BOOK_HTML``) is served from a loopback HTTP
server and opened in Debian's ``chromium`` driven by playwright (never ``playwright
install``). Every request to a non-loopback URL is aborted and reported, which proves the
book is self-contained. Per page: HTTP 200, an ``<h1>``, every image loaded, no console
errors beyond ``CONSOLE_ALLOW``, no "Traceback", internal links and anchors resolve,
equations typeset by MathJax, and every plotly figure rendered, answering hover and, when
it has a frame slider, changing frame when a later step is clicked.

Without a built book, playwright or chromium the tests skip; with
``MULTIAD_BROWSER_TEST=required`` (CI, ``make check-book``) they fail instead.
``MULTIAD_BOOK_EXPECT_PLOTLY=1`` additionally requires at least one plotly figure.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from browser_helpers import chromium, is_loopback

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the `session` fixture (skip, or fail in CI)
    PlaywrightError = Exception  # type: ignore[misc,assignment]
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
BOOK_DIR = Path(os.environ.get("MULTIAD_BOOK_HTML") or REPO / "_build" / "html").resolve()
REQUIRED = os.environ.get("MULTIAD_BROWSER_TEST", "").lower() == "required"
EXPECT_PLOTLY = os.environ.get("MULTIAD_BOOK_EXPECT_PLOTLY", "") == "1"
# Folders of the build that hold assets or sources, not pages (``_static`` has two theme
# template fragments, ``*-macros.html``, that are not standalone pages).
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", ".doctrees"}
SETTLE_MS = 250  # after `load`: let deferred scripts (theme, MathJax start-up) run
WAIT_MS = 8000  # upper bound of the targeted waits (MathJax typesetting, plotly drawing)

# Console errors that are known and harmless. Each entry: (regex on the message, why).
CONSOLE_ALLOW: list[tuple[str, str]] = [
    (r"Identifier 'THEBE_JS_URL' has already been declared",
     "sphinx-thebe 0.3.1 registers its inline config script after the builder is set up, "
     "and Sphinx 7.4 then emits it twice (add_js_file(None) vs ''): the second copy's "
     "`const` redeclaration throws; the first copy is intact and thebe (a live kernel from "
     "a CDN) is not used by this offline book"),
    (r"^Got invalid theme mode: \. Resetting to auto\.$",
     "pydata-sphinx-theme on the first visit (empty localStorage): the empty mode is reset "
     "to 'auto' and stored; later pages are silent"),
]
# Uncaught errors accepted only while a plotly slider step is being clicked: plotly.js
# rejects an internal redraw promise with `undefined` when an animation frame with
# `redraw: true` (plotly express's frames) supersedes the current plot (plotly.js #2643);
# the frame still changes, which the slider check verifies.
SLIDER_ALLOW = r"^undefined$"


def _unavailable(reason: str) -> None:
    """Skip, or fail when ``MULTIAD_BROWSER_TEST=required`` (CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (MULTIAD_BROWSER_TEST=required)", pytrace=False)
    pytest.skip(reason)


def _book_pages(root: Path) -> list[str]:
    """The HTML pages of the build, as paths relative to ``root`` (POSIX style)."""
    if not root.is_dir():
        return []
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if not SKIP_DIRS.intersection(rel.parts[:-1]):
            pages.append(rel.as_posix())
    return pages


PAGES = _book_pages(BOOK_DIR)
_REDIRECT = re.compile(
    r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']?\d+\s*;\s*url=([^"'>\s]+)""", re.I
)


class _IdParser(HTMLParser):
    """Collects the ``id`` and ``name`` attributes of a page (link anchors)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def _anchors(path: Path) -> frozenset[str]:
    """The anchors a target page defines."""
    parser = _IdParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler without the per-request log lines.

    Chromium asks for ``/favicon.ico`` on its own; the book has none, so that request gets
    an empty 204 instead of a 404 console error that no page caused.
    """

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/favicon.ico" and not Path(
            self.directory, "favicon.ico"
        ).is_file():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Session:
    """One browser context over the served book, with the blocked requests it saw."""

    base: str
    context: Any
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def book_dir() -> Path:
    """The built book; skip (or fail in CI) when it is not there."""
    if not (BOOK_DIR / "index.html").is_file() or not PAGES:
        _unavailable(f"book not built: no {BOOK_DIR / 'index.html'} (run `make book`)")
    return BOOK_DIR


@pytest.fixture(scope="module")
def server(book_dir: Path) -> Iterator[str]:
    """Serves the book on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def session(server: str) -> Iterator[Session]:
    """One chromium and one context; every non-loopback request is aborted and recorded."""
    if sync_playwright is None:
        _unavailable("playwright is not installed (pip install -e '.[book]')")
    executable = chromium()
    if executable is None:
        _unavailable("Debian chromium not found (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        state = Session(base=server, context=context)

        def route(route: Any) -> None:
            url = route.request.url
            if is_loopback(url):
                route.continue_()
            else:
                state.blocked.append(url)
                route.abort()

        context.route("**/*", route)
        try:
            yield state
        finally:
            context.close()
            browser.close()


def _allowed(message: str) -> bool:
    """True when a console error matches the allow-list."""
    return any(re.search(pattern, message) for pattern, _why in CONSOLE_ALLOW)


def _local_path(root: Path, base: str, url: str) -> tuple[Path, str] | None:
    """The file a same-origin URL points at and its fragment, or None for other URLs."""
    if not url.startswith(base):
        return None
    parts = urlsplit(url)
    rel = unquote(parts.path)[len(urlsplit(base).path):]
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    return root / rel, unquote(parts.fragment)


def _check_links(root: Path, base: str, hrefs: list[str]) -> list[str]:
    """Problems with the page's same-origin links: missing files or anchors."""
    problems = []
    for href in sorted(set(hrefs)):
        target = _local_path(root, base, href)
        if target is None:
            continue
        path, fragment = target
        if not path.is_file():
            problems.append(f"broken link: {href[len(base):]} (no such file)")
        elif fragment and path.suffix == ".html" and fragment not in _anchors(path):
            problems.append(f"broken anchor: {href[len(base):]} (no id {fragment!r})")
    return problems


# JavaScript run in the page. Each returns plain data for the checks in Python.
_JS_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  for (const img of imgs) if (img.loading === 'lazy') img.loading = 'eager';
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done);
    setTimeout(done, 5000);
  })));
  return imgs.filter(img => !(img.complete && img.naturalWidth > 0))
             .map(img => img.getAttribute('src'));
}"""

_JS_TEXT = """() => {
  // all text, hidden (collapsed outputs) included; scripts and styles excluded
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest('script, style, noscript')) parts.push(n.nodeValue);
  }
  return parts.join(' ');
}"""

_JS_MATH = """async (waitMs) => {
  // waits for MathJax when the page has equations (Sphinx marks them with class "math")
  const maths = Array.from(document.querySelectorAll('.math'));
  const ready = () => !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  const t0 = Date.now();
  while (maths.length && !ready() && Date.now() - t0 < waitMs)
    await new Promise(r => setTimeout(r, 50));
  const loaded = ready();
  if (maths.length && loaded)
    await Promise.race([MathJax.startup.promise, new Promise(r => setTimeout(r, waitMs))]);
  // TeX delimiters left as text: $$ anywhere, \\( and \\[ once MathJax ran
  const pattern = maths.length && loaded ? /\\$\\$|\\\\\\[|\\\\\\(/ : /\\$\\$/;
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('script, style, pre, code, mjx-container')) continue;
    if (pattern.test(n.nodeValue)) raw.push(n.nodeValue.trim().slice(0, 60));
  }
  const untypeset = loaded ? maths.filter(m => !m.querySelector('mjx-container'))
                                  .map(m => m.textContent.trim().slice(0, 60)) : [];
  return {count: maths.length, loaded: loaded, untypeset: untypeset, raw: raw};
}"""

_JS_PLOTS = """() => Array.from(document.querySelectorAll('.plotly-graph-div, .js-plotly-plot'))
  .map((div, i) => ({
    index: i, id: div.id,
    rendered: div.classList.contains('js-plotly-plot') && !!div.querySelector('svg.main-svg'),
    slider: !!div.querySelector('g.slider-container'),
  }))"""

# What a viewer sees of a figure's current frame, hashed: the heatmap images (data URLs),
# the traces' drawn paths and the title.
_JS_FRAME = """(i) => {
  const div = document.querySelectorAll('.plotly-graph-div, .js-plotly-plot')[i];
  const parts = Array.from(div.querySelectorAll('g.imagelayer image, g.hm image, image'))
    .map(im => im.getAttribute('href') || im.getAttribute('xlink:href') || '');
  div.querySelectorAll('g.plot path').forEach(p => parts.push(p.getAttribute('d') || ''));
  div.querySelectorAll('.gtitle').forEach(t => parts.push(t.textContent));
  let h = 0;
  for (const c of parts.join('#')) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return `${parts.length}:${h}`;
}"""

_JS_PLOT_AREA = """(i) => {
  const div = document.querySelectorAll('.plotly-graph-div, .js-plotly-plot')[i];
  div.scrollIntoView({block: 'center', inline: 'center'});
  const drag = div.querySelector('.draglayer .nsewdrag') || div.querySelector('.main-svg');
  const r = drag.getBoundingClientRect();
  return {x: r.x, y: r.y, w: r.width, h: r.height};
}"""

_JS_HOVER = """(i) => {
  const div = document.querySelectorAll('.plotly-graph-div, .js-plotly-plot')[i];
  return Array.from(div.querySelectorAll('.hoverlayer .hovertext, .hoverlayer text'))
    .map(e => e.textContent).join(' ').trim();
}"""

_JS_LAST_STEP = """(i) => {
  const div = document.querySelectorAll('.plotly-graph-div, .js-plotly-plot')[i];
  const slider = div.querySelector('g.slider-container');
  div.scrollIntoView({block: 'center', inline: 'center'});
  const ticks = Array.from(slider.querySelectorAll('rect.slider-tick-rect'));
  const rail = slider.querySelector('rect.slider-rail-rect, rect.slider-rail-touch-rect');
  if (ticks.length < 2 || !rail) return null;
  const t = ticks[ticks.length - 1].getBoundingClientRect();
  const r = rail.getBoundingClientRect();
  return {x: t.x + t.width / 2, y: r.y + r.height / 2, steps: ticks.length};
}"""


def _check_plots(page: Any, phase: dict[str, bool] | None = None) -> tuple[int, list[str]]:
    """Checks every plotly figure of the open page; returns (figures, problems).

    ``phase["slider"]`` is True while a slider step is being clicked (see SLIDER_ALLOW).
    """
    phase = {} if phase is None else phase
    with contextlib.suppress(PlaywrightError):  # let plotly draw; judged per figure below
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
            ".every(d => d.querySelector('svg.main-svg'))", timeout=WAIT_MS)
    plots = page.evaluate(_JS_PLOTS)
    problems = []
    for plot in plots:
        i, name = plot["index"], f"plotly figure #{plot['index']} ({plot['id'] or 'no id'})"
        if not plot["rendered"]:
            problems.append(f"{name}: not rendered (no svg.main-svg; plotly.js not loaded?)")
            continue
        # hover: move over the centre of the plot area, a hover label must appear
        box = page.evaluate(_JS_PLOT_AREA, i)
        if box["w"] < 2 or box["h"] < 2:
            problems.append(f"{name}: plot area not visible (inside a collapsed output?)")
            continue
        page.mouse.move(box["x"] + box["w"] * 0.4, box["y"] + box["h"] * 0.4)
        page.mouse.move(box["x"] + box["w"] * 0.5, box["y"] + box["h"] * 0.5, steps=3)
        try:
            page.wait_for_function(f"() => ({_JS_HOVER})({i}).length > 0", timeout=3000)
        except PlaywrightError:
            problems.append(f"{name}: no hover label over the plot area")
        page.mouse.move(1, 1)
        if not plot["slider"]:
            continue
        # slider: clicking its last step must change the displayed frame
        before = page.evaluate(_JS_FRAME, i)
        step = page.evaluate(_JS_LAST_STEP, i)
        if step is None:
            problems.append(f"{name}: slider without steps")
            continue
        phase["slider"] = True
        page.mouse.click(step["x"], step["y"])
        try:
            page.wait_for_function(
                f"(before) => ({_JS_FRAME})({i}) !== before", arg=before, timeout=5000)
        except PlaywrightError:
            problems.append(
                f"{name}: clicking the last of {step['steps']} slider steps did not change "
                "the displayed frame")
        page.wait_for_timeout(100)  # errors raised by the click arrive before the flag drops
        phase["slider"] = False
    return len(plots), problems


_plot_counts: dict[str, int] = {}


def test_book_is_built(book_dir: Path) -> None:
    """The build has pages (skips, or fails in CI, without a build)."""
    assert PAGES, f"no HTML pages under {book_dir}"


@pytest.mark.parametrize("rel", PAGES or ["<no book>"])
def test_page(session: Session, book_dir: Path, rel: str) -> None:
    """One page: loads offline, renders, and has no broken links, images or equations."""
    problems: list[str] = []
    source = (book_dir / rel).read_text(encoding="utf-8", errors="replace")
    redirect = _REDIRECT.search(source[:2000])
    if redirect and "<h1" not in source:  # a bare redirect page (the book's index.html)
        problems += _check_links(book_dir, session.base, [urljoin(session.base + rel, redirect[1])])
        assert not problems, f"{rel}:\n  " + "\n  ".join(problems)
        return

    session.blocked.clear()
    console: list[str] = []
    bad_responses: list[str] = []
    page = session.context.new_page()

    def on_console(msg: Any) -> None:
        # an error located at a non-loopback URL is one of our aborts, reported as such below
        url = (msg.location or {}).get("url", "")
        if msg.type == "error" and not _allowed(msg.text) and is_loopback(url or "about:"):
            console.append(msg.text)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            bad_responses.append(f"HTTP {response.status}: {response.url[len(session.base):]}")

    page.on("console", on_console)
    phase = {"slider": False}

    def on_pageerror(err: Any) -> None:
        if phase["slider"] and re.search(SLIDER_ALLOW, str(err)):
            return
        if not _allowed(str(err)):
            console.append(f"uncaught: {err}")

    page.on("pageerror", on_pageerror)
    page.on("response", on_response)
    try:
        response = page.goto(session.base + rel, wait_until="load")
        page.wait_for_timeout(SETTLE_MS)
        if response is None or response.status != 200:
            problems.append(f"status {response.status if response else 'none'}")
        if not page.evaluate(
            "() => Array.from(document.querySelectorAll('h1'))"
            ".some(h => h.textContent.trim().length > 0)"
        ):
            problems.append("no <h1> with text")
        problems += [f"image not loaded: {src}" for src in page.evaluate(_JS_IMAGES)]
        text = page.evaluate(_JS_TEXT)
        if "Traceback" in text:
            at = text.index("Traceback")
            snippet = " ".join(text[at:at + 120].split())
            problems.append(f"'Traceback' in page text: {snippet!r}")
        if page.locator(".output.traceback, .output.error").count():
            problems.append("an error output cell (.output.traceback / .output.error)")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        problems += _check_links(book_dir, session.base, hrefs)
        math = page.evaluate(_JS_MATH, WAIT_MS)
        if math["count"] and not math["loaded"]:
            problems.append(f"{math['count']} equations but MathJax did not load")
        problems += [f"equation not typeset: {m!r}" for m in math["untypeset"]]
        problems += [f"raw TeX delimiters left in text: {m!r}" for m in math["raw"]]
        _plot_counts[rel], plot_problems = _check_plots(page, phase)
        problems += plot_problems
        page.wait_for_timeout(50)  # late console errors from the interactions
    finally:
        page.close()
    problems += bad_responses
    problems += [f"console error: {m}" for m in console]
    problems += [f"tried to load a non-loopback URL: {u}" for u in sorted(set(session.blocked))]
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)


def test_book_has_plotly(session: Session, book_dir: Path) -> None:
    """With MULTIAD_BOOK_EXPECT_PLOTLY=1: at least one plotly figure in the book."""
    if not EXPECT_PLOTLY:
        pytest.skip("MULTIAD_BOOK_EXPECT_PLOTLY is not 1")
    pages = [rel for rel in PAGES if "plotly-graph-div" in (book_dir / rel).read_text(
        encoding="utf-8", errors="replace")]
    assert pages, "no page of the book contains a plotly figure (.plotly-graph-div)"
    checked = {rel: n for rel, n in _plot_counts.items() if n}
    missing = [rel for rel in pages if rel not in _plot_counts]
    if missing:  # test_page did not run for them (e.g. -k selection): check them here
        page = session.context.new_page()
        try:
            for rel in missing:
                page.goto(session.base + rel, wait_until="load")
                page.wait_for_timeout(SETTLE_MS)
                n, problems = _check_plots(page)
                assert not problems, f"{rel}:\n  " + "\n  ".join(problems)
                checked[rel] = n
        finally:
            page.close()
    assert sum(checked.values()) > 0, f"plotly divs in {pages} but none found in the browser"


def test_the_teaching_page_shows_its_figures(session: Session, book_dir: Path) -> None:
    """Multi-AD step by step, executed: its figures (architecture, training, features,
    receptive fields, SE, MFF, scores) are in the page and render in the browser."""
    rel = "book/executed/walkthrough.html"
    if rel not in PAGES:
        pytest.fail(f"{rel} is not in the build: run make reproduce first")
    page = session.context.new_page()
    try:
        page.goto(session.base + rel, wait_until="load")
        assert page.evaluate(_JS_IMAGES) == []  # every image loaded
        sizes = page.evaluate("() => Array.from(document.images)"
                              ".filter(i => i.src.startsWith('data:') || i.src.includes('.png'))"
                              ".map(i => i.naturalWidth)")
        assert len([w for w in sizes if w > 300]) >= 7, sizes
        assert "Exercises" in page.inner_text("body")
    finally:
        page.close()
