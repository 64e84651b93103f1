"""The built book as a reader sees it: every page of the table of contents in headless Chromium.

Run after ``make book`` (``make browser``; ``.ci/run`` does both). The pages are served from
``_build/html`` on 127.0.0.1 and every other request is aborted, so the test sees what a reader
offline sees: only the Colab badge may be lost. For each page it checks that no script fails, that
every figure the executed notebook outputs (image, circuitsvis, plotly, table) is on the page and has
drawn, that the notebook itself dropped no figure (``plt.show()`` with no image, ``<Figure size …>``
text, widget outputs that cannot draw in HTML), that internal links and anchors resolve, and the
accessibility basics (alt text, heading order). A full-page screenshot per page goes to
``_build/screenshots/`` and a table of page weights to ``_build/screenshots/page_weights.md``.

Without a built book (or Playwright, or Chromium) the test is skipped, unless
``BOOK_BROWSER_REQUIRED=1`` (set by ``make browser`` and CI), which makes any of them a failure.
"""

from __future__ import annotations

import contextlib
import functools
import html.parser
import http.server
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
HTML = BUILD / "html"
EXECUTED = BUILD / "jupyter_execute"
SHOTS = BUILD / "screenshots"
CHROMIUM = os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("BOOK_BROWSER_REQUIRED") == "1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The only thing a reader offline may lose: the badge image of the "Open in Colab" link.
MAY_BE_LOST = re.compile(r"^https://colab\.research\.google\.com/assets/colab-badge\.svg$")
FIGURES = ("image", "circuitsvis", "plotly", "table")
# myst-nb's order of preference among the mime types of one output (HTML builder).
MIME_PRIORITY = ("application/vnd.jupyter.widget-view+json", "application/javascript", "text/html",
                 "image/svg+xml", "image/png", "image/jpeg", "text/markdown", "text/latex", "text/plain")
MAX_HTML_BYTES = 1_000_000
RENDER_TIMEOUT_S = 20.0


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (BOOK_BROWSER_REQUIRED=1)")
    pytest.skip(reason)


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml`` (root first), as a path without suffix: ``book/intro``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            for key in ("sections", "chapters"):
                walk(entry.get(key, []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [str(Path(p).with_suffix("")) for p in pages]


# --- what the executed notebook says should be on the page ------------------------------------------

def output_kind(output: dict) -> str:
    """What one notebook output shows on the page: a figure kind, or text, stream, widget, error."""
    kind = output["output_type"]
    if kind in ("stream", "error"):
        return kind
    data = output.get("data", {})
    mime = next((m for m in MIME_PRIORITY if m in data), None)
    if mime is None:
        return "other"
    if mime.endswith("widget-view+json"):
        return "widget"
    if mime.startswith("image/"):
        return "image"
    if mime == "text/html":
        src = "".join(data[mime])
        if "circuits-vis-" in src:
            return "circuitsvis"
        if "plotly-graph-div" in src or "Plotly.newPlot" in src:
            return "plotly"
        if "<table" in src:
            return "table"
        return "html"
    return "text"


def _text(output: dict) -> str:
    if output["output_type"] == "stream":
        return "".join(output.get("text", ""))
    return "".join(output.get("data", {}).get("text/plain", ""))


def _calls_show(source: str) -> bool:
    """The cell calls plt.show() unconditionally (at top level, not in a block that may not run)."""
    return any(line.startswith("plt.show()") for line in source.splitlines())


@dataclass
class NotebookCell:
    index: int
    source: str
    kinds: list[str]
    outputs: list[dict]

    @property
    def figures(self) -> list[str]:
        return [k for k in self.kinds if k in FIGURES]

    @property
    def label(self) -> str:
        first = next((line for line in self.source.splitlines() if line.strip()), "")
        return f"code cell {self.index} ({first[:60]!r})"


def notebook_cells(page: str) -> list[NotebookCell] | None:
    """The code cells of the executed notebook behind ``page``, in order (None for a Markdown page)."""
    path = EXECUTED / f"{page}.ipynb"
    if not path.exists():
        return None
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if "remove-cell" in tags:
            continue
        outputs = [] if "remove-output" in tags else cell.get("outputs", [])
        source = "".join(cell["source"])
        cells.append(NotebookCell(len(cells), source, [output_kind(o) for o in outputs], outputs))
    return cells


def notebook_problems(cells: list[NotebookCell]) -> list[str]:
    """Figures the notebook dropped or cannot draw in HTML, read from its executed outputs."""
    problems = []
    for cell in cells:
        if "widget" in cell.kinds:
            problems.append(f"{cell.label}: a widget output (application/vnd.jupyter.widget-view+json), "
                            "which the HTML page cannot draw offline")
        for output, kind in zip(cell.outputs, cell.kinds):
            if kind not in ("text", "stream"):
                continue  # e.g. the text/plain fallback of an image, which the page does not show
            text = _text(output)
            if "<Figure size" in text:
                problems.append(f"{cell.label}: '<Figure size …>' text instead of a figure")
            if "is non-interactive, and thus cannot be shown" in text:
                problems.append(f"{cell.label}: matplotlib has no inline backend ({text.strip()[:120]!r})")
        updates = sum(len(re.findall(r"\d+%\|", _text(o))) for o in cell.outputs if o["output_type"] == "stream")
        if updates > 10:
            problems.append(f"{cell.label}: text progress bars wrote {updates} updates (the page shows them all)")
        if _calls_show(cell.source) and "image" not in cell.kinds:
            problems.append(f"{cell.label}: calls plt.show() but outputs no image (figure dropped)")
        if "error" in cell.kinds:
            problems.append(f"{cell.label}: an error output")
    return problems


# --- the page --------------------------------------------------------------------------------------

class _Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def anchors_of(path: Path) -> frozenset[str]:
    """The ids (and names) of the elements of a built HTML file."""
    parser = _Ids()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


# Collected in the page: per notebook cell, its figures in order and whether each has drawn.
COLLECT_JS = """() => {
  const size = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const article = document.querySelector('main article') || document.querySelector('main') || document.body;
  const cells = [...article.querySelectorAll('div.cell')].map(cell => {
    const out = cell.querySelector(':scope > div.cell_output');
    if (!out) return [];
    const found = [];
    for (const e of out.querySelectorAll('img, div[id^="circuits-vis-"], .plotly-graph-div, table')) {
      if (e.closest('div[id^="circuits-vis-"]') && !e.id.startsWith('circuits-vis-')) continue;
      if (e.tagName === 'TABLE' && e.closest('.plotly-graph-div')) continue;
      if (e.tagName === 'IMG') {
        found.push({kind: 'image', drawn: e.complete && e.naturalWidth > 0 && size(e),
                    what: e.getAttribute('src'), alt: e.getAttribute('alt') || ''});
      } else if (e.id && e.id.startsWith('circuits-vis-')) {
        found.push({kind: 'circuitsvis', drawn: e.childElementCount > 0 && size(e), what: e.id});
      } else if (e.classList.contains('plotly-graph-div')) {
        found.push({kind: 'plotly', drawn: !!e.querySelector('.main-svg') && size(e), what: e.id});
      } else {
        found.push({kind: 'table', drawn: e.rows.length > 0 && size(e), what: 'table'});
      }
    }
    return found;
  });
  const headings = [...article.querySelectorAll('h1, h2, h3, h4, h5, h6')]
    .filter(h => !h.closest('div.cell_output'))
    .map(h => ({level: +h.tagName[1], text: h.textContent.trim().replace(/[¶#]$/, '').slice(0, 80)}));
  const images = [...article.querySelectorAll('img')].map(i => ({
    src: i.getAttribute('src'), alt: i.getAttribute('alt'), figure: !!i.closest('figure'),
    caption: !!(i.closest('figure') && i.closest('figure').querySelector('figcaption'))}));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const text = [...article.querySelectorAll('div.cell_output')].map(o => o.innerText).join('\\n');
  return {cells, headings, images, links, text};
}"""


@dataclass
class Visit:
    page: str
    url: str
    data: dict
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[tuple[str, str]] = field(default_factory=list)   # (text, url)
    blocked: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)
    bytes_by_url: dict[str, int] = field(default_factory=dict)
    axe: list[dict] | None = None   # axe-core violations (None: axe-playwright-python not installed)
    seconds: float = 0.0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    """``_build/html`` served on 127.0.0.1 (an ephemeral port) for the duration of the module."""
    if not (HTML / "index.html").exists():
        _skip_or_fail(f"no built book at {HTML}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (Playwright's own browser builds are not used)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        _skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set BOOK_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def visits(server, browser):
    """Each page visited once (lazily), network blocked; the tests below read the same visit."""
    cache: dict[str, Visit] = {}

    def visit(page: str) -> Visit:
        if page not in cache:
            cache[page] = _visit(browser, server, page)
        return cache[page]

    yield visit
    _write_weights(list(cache.values()))


def _visit(browser, base: str, page: str) -> Visit:
    from playwright.sync_api import Error as PlaywrightError

    start = time.perf_counter()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    v = Visit(page, f"{base}/{page}.html", {})

    def route(r) -> None:
        if r.request.url.startswith(base + "/") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            v.blocked.append(r.request.url)
            r.abort("blockedbyclient")

    recording = [True]  # off while axe runs: it fetches the @import-ed stylesheets itself (one at a wrong URL)

    def on_response(response) -> None:
        if response.url.startswith(base) and recording[0]:
            if response.status >= 400:
                v.failed_local.append(f"{response.status} {response.url}")
            with contextlib.suppress(PlaywrightError):  # a redirect, or a body already gone
                v.bytes_by_url[response.url] = len(response.body())

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("pageerror", lambda e: v.page_errors.append(str(e)))
    pg.on("console", lambda m: v.console_errors.append((m.text, m.location.get("url", "")))
          if m.type == "error" and recording[0] else None)
    pg.on("response", on_response)
    pg.on("requestfailed", lambda r: v.failed_local.append(f"failed {r.url}")
          if r.url.startswith(base) and recording[0] else None)
    pg.goto(v.url, wait_until="load")
    with contextlib.suppress(PlaywrightError):  # a page that keeps polling: the checks below report it
        pg.wait_for_load_state("networkidle", timeout=10_000)
    expected = notebook_cells(page) or []
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while True:  # give scripts (circuitsvis, plotly, MathJax) time to draw
        v.data = pg.evaluate(COLLECT_JS)
        drawn = all(f["drawn"] for c in v.data["cells"] for f in c)
        enough = sum(len(c) for c in v.data["cells"]) >= sum(len(c.figures) for c in expected)
        if (drawn and enough) or time.monotonic() > deadline:
            break
        pg.wait_for_timeout(250)
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        Axe = None
    if Axe is not None:
        recording[0] = False
        v.axe = [{"id": x["id"], "impact": x["impact"], "help": x["help"],
                  "nodes": [", ".join(n["target"]) for n in x["nodes"]][:5]}
                 for x in Axe().run(pg).response["violations"]]
    # circuitsvis's charts paint when first scrolled into view: show each once so the screenshot has them
    for el in pg.query_selector_all('div[id^="circuits-vis-"], .plotly-graph-div'):
        el.scroll_into_view_if_needed()
        pg.wait_for_timeout(300)
    pg.evaluate("() => window.scrollTo(0, 0)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{page.replace('/', '__')}.png"), full_page=True)
    context.close()
    v.seconds = time.perf_counter() - start
    return v


def _write_weights(visited: list[Visit]) -> None:
    """A table of what each page costs a first-time reader (and what it shares with other pages)."""
    if not visited:
        return
    rows = ["| page | HTML (kB) | images (kB) | shared _static (kB) | total (kB) | requests |",
            "|---|---:|---:|---:|---:|---:|"]
    for v in visited:
        own = sum(n for u, n in v.bytes_by_url.items() if u.split("?")[0].endswith(f"/{v.page}.html"))
        static = sum(n for u, n in v.bytes_by_url.items() if "/_static/" in u)
        images = sum(n for u, n in v.bytes_by_url.items() if "/_images/" in u)
        total = sum(v.bytes_by_url.values())
        rows.append(f"| {v.page} | {own / 1e3:.0f} | {images / 1e3:.0f} | {static / 1e3:.0f} | "
                    f"{total / 1e3:.0f} | {len(v.bytes_by_url)} |")
    rows += ["", "axe-core violations by impact (none critical is the bar):", ""]
    rows += [f"- {v.page}: " + (", ".join(f"{x['id']} ({x['impact']}, {len(x['nodes'])}+ nodes)" for x in v.axe)
                                or "none") for v in visited if v.axe is not None]
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "page_weights.md").write_text("\n".join(rows) + "\n")


PAGES = toc_pages()


@pytest.mark.parametrize("page", PAGES)
def test_no_script_errors(visits, page):
    """No uncaught error, no console error except the badge lost offline, no missing local file."""
    v = visits(page)
    console = [f"{text} [{url}]" for text, url in v.console_errors
               if not (MAY_BE_LOST.match(url) or url.endswith("/favicon.ico"))]  # the browser asks for one
    assert not v.page_errors, f"{page}: uncaught page errors: {v.page_errors}"
    assert not console, f"{page}: console errors: {console}"
    assert not v.failed_local, f"{page}: local files that failed to load: {v.failed_local}"


@pytest.mark.parametrize("page", PAGES)
def test_offline_loses_only_the_badge(visits, page):
    """With the network blocked a page needs nothing from outside but the Colab badge image."""
    v = visits(page)
    needed = sorted({u for u in v.blocked if not MAY_BE_LOST.match(u)})
    assert not needed, f"{page} fetches from outside 127.0.0.1 (offline, these are lost): {needed}"


@pytest.mark.parametrize("page", PAGES)
def test_notebook_dropped_no_figure(visits, page):
    """The executed notebook kept every figure, as a figure (no widget, no '<Figure size …>' text)."""
    cells = notebook_cells(page)
    if cells is None:
        pytest.skip(f"{page} is not a notebook")
    problems = notebook_problems(cells)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_drawn(visits, page):
    """Each figure the notebook outputs is on the page, in its cell, and has drawn (offline)."""
    v = visits(page)
    cells = notebook_cells(page)
    on_page = v.data["cells"]
    if cells is None:
        assert not any(on_page), f"{page}: cell outputs on a Markdown page?"
        return
    problems = []
    if len(cells) != len(on_page):
        problems.append(f"{len(cells)} code cells in the notebook, {len(on_page)} on the page")
    for cell, found in zip(cells, on_page):
        kinds = [f["kind"] for f in found]
        if sorted(kinds) != sorted(cell.figures):
            problems.append(f"{cell.label}: notebook outputs {cell.figures}, page shows {kinds}")
        for f in found:
            if not f["drawn"]:
                problems.append(f"{cell.label}: {f['kind']} {f['what']} has not drawn")
    if "<Figure size" in v.data["text"]:
        problems.append("'<Figure size …>' text on the page")
    expected = sum(len(c.figures) for c in cells)
    drawn = sum(f["drawn"] for c in on_page for f in c)
    assert not problems, f"{page}: {drawn} of {expected} figures drawn:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_resolve(visits, page, server):
    """Every link to the book itself names a built file, and its #anchor exists there."""
    v = visits(page)
    broken = []
    for href in sorted(set(v.data["links"])):
        if not href.startswith(server + "/"):
            continue
        parts = urlsplit(href)
        rel = unquote(parts.path).lstrip("/")
        target = HTML / rel
        if rel == "" or rel.endswith("/"):
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href}: no file {target.relative_to(HTML)}")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors_of(target):
            broken.append(f"{href}: no anchor #{parts.fragment} in {target.relative_to(HTML)}")
    assert not broken, f"{page}: broken internal links:\n  " + "\n  ".join(broken)


@pytest.mark.parametrize("page", PAGES)
def test_accessibility_basics(visits, page):
    """Images say what they show (alt text, not a file name, or a caption); headings go down one at a time."""
    v = visits(page)
    problems = []
    for img in v.data["images"]:
        alt = (img["alt"] or "").strip()
        if not img["caption"] and (not alt or re.search(r"\.(png|jpe?g|svg|gif)$", alt)):
            problems.append(f"image {img['src']}: alt text {alt!r} says nothing of what it shows")
    levels = [h["level"] for h in v.data["headings"]]
    if levels[:1] != [1] or levels.count(1) != 1:
        problems.append(f"one h1 first, got levels {levels[:6]}…")
    for prev, h in zip(v.data["headings"], v.data["headings"][1:]):
        if h["level"] > prev["level"] + 1:
            problems.append(f"heading h{h['level']} {h['text']!r} follows h{prev['level']} {prev['text']!r}")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_axe_no_critical_violation(visits, page):
    """axe-core (axe-playwright-python) finds no critical accessibility violation."""
    v = visits(page)
    if v.axe is None:
        pytest.skip("axe-playwright-python is not installed")
    critical = [x for x in v.axe if x["impact"] == "critical"]
    assert not critical, f"{page}: critical axe violations: {critical}"


@pytest.mark.parametrize("page", PAGES)
def test_page_weight(visits, page):
    """A page's own HTML stays under 1 MB (shared scripts are cached once for the whole book)."""
    size = (HTML / f"{page}.html").stat().st_size
    assert size <= MAX_HTML_BYTES, f"{page}.html weighs {size / 1e6:.2f} MB"
