"""The book's Sphinx extension: pages that work offline, say what their figures show, and name one repository.

- **Offline.** MathJax is served from ``_static/mathjax`` (the files of the ``sphinx-mathjax-offline``
  package). A circuitsvis output carries its whole 1.3 MB JavaScript bundle; here each one is cut down
  to its ``<div>`` and one ``CircuitsVis.render(...)`` call, and the bundle of the installed circuitsvis
  is loaded once, only by the pages that show one. Plotly outputs lose their CDN ``<script>`` tags and
  the page loads ``plotly.min.js`` of the installed plotly package instead.
- **Alt text.** An image output with no alt text gets the ``Description`` its PNG carries (written by
  ``helpers.notebook`` from the figure's titles, axes and legend).
- **One repository.** ``repository.url`` / ``branch`` of ``_config.yml`` are the only place the
  repository is named: a Colab link or ``git clone`` in a chapter that names another one is a build
  warning (an error under ``-W``).
- Scripts added twice to a page (sphinx-thebe's ``const THEBE_JS_URL``) are kept once.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

CV_DIR = "circuitsvis"
PLOTLY_DIR = "plotly"
MATHJAX_DIR = "mathjax"
MATHJAX_ENTRY = "tex-mml-chtml.js"  # the component Sphinx loads from its CDN by default
# What an offline page can use of the MathJax tree (its other combined components and SVG output are left out).
MATHJAX_KEEP = (MATHJAX_ENTRY, "core.js", "loader.js", "startup.js", "input", "output/chtml", "ui", "a11y",
                "sre", "adaptors")

_CV_LOCAL = re.compile(
    r'<div id="(?P<id>circuits-vis-[\w-]+)"[^>]*?/?>\s*<script[^>]*>.*?CircuitsVis\.render\(\s*"(?P=id)"'
    r',\s*CircuitsVis\.(?P<name>\w+),(?P<props>.*)\)\s*</script>', re.DOTALL)
_CV_CDN = re.compile(
    r'<div id="(?P<id>circuits-vis-[\w-]+)"[^>]*?/?>\s*<script[^>]*>\s*import \{ render, (?P<name>\w+) \} '
    r'from "[^"]*circuitsvis[^"]*";\s*render\(\s*"(?P=id)",\s*(?P=name),(?P<props>.*)\)\s*</script>', re.DOTALL)
_CDN_SCRIPT = re.compile(r'<script[^>]*\ssrc="https://(?:cdn\.plot\.ly/plotly|cdnjs\.cloudflare\.com/ajax/libs/'
                         r'mathjax)[^"]*"[^>]*>\s*</script>')
CV_LABELS = {"AttentionHeads": "attention patterns of several heads (interactive)",
             "AttentionPattern": "an attention pattern (interactive)",
             "ColoredTokens": "tokens coloured by a value each (interactive)",
             "ColoredTokensMulti": "tokens coloured by one of several values (interactive)"}
_COLAB = re.compile(r"colab\.research\.google\.com/github/(?P<repo>[\w.-]+/[\w.-]+)/blob/(?P<branch>[\w./-]+?)"
                    r"/(?P<path>[\w./-]+\.ipynb)")
_CLONE = re.compile(r"git clone [^\n]*?https://github\.com/(?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?(?![\w.-])")


def slim_circuitsvis(src: str) -> str | None:
    """A circuitsvis output without its bundle (None if ``src`` is not one): a div and one render call."""
    m = _CV_LOCAL.search(src) or _CV_CDN.search(src)
    if m is None:
        return None
    label = html.escape(CV_LABELS.get(m["name"], f"circuitsvis {m['name']} (interactive)"))
    return (f'<div id="{m["id"]}" class="circuitsvis" role="figure" aria-label="{label}" '
            f'style="margin: 15px 0;"></div>\n<script type="module">\nCircuitsVis.render("{m["id"]}", '
            f'CircuitsVis.{m["name"]},{m["props"].rstrip()}\n);\n{_CV_A11Y % (m["id"], label)}\n</script>')


# circuitsvis draws charts on <canvas role="img"> and number fields with no label: name them once drawn.
_CV_A11Y = ("""((id, label) => { const root = document.getElementById(id); const name = () => {
  root.querySelectorAll('canvas[role="img"]:not([aria-label])').forEach(c => c.setAttribute('aria-label', label));
  root.querySelectorAll('input:not([aria-label]), select:not([aria-label])').forEach(i => i.setAttribute(
    'aria-label', ((i.previousElementSibling || {}).textContent || i.id || 'value').trim()));
}; new MutationObserver(name).observe(root, {childList: true, subtree: true}); name(); })("%s", "%s");""")


def slim_plotly(src: str) -> str | None:
    """A plotly output without the CDN scripts it loads (None if ``src`` draws no plotly figure)."""
    if "Plotly.newPlot" not in src and "cdn.plot.ly" not in src:
        return None
    return _CDN_SCRIPT.sub("", src)


def repository(config) -> tuple[str, str]:
    """``(owner/name, branch)`` from ``_config.yml``'s ``repository`` (as jupyter-book passes it to the theme)."""
    options = config.html_theme_options or {}
    url = options.get("repository_url", "").rstrip("/").removesuffix(".git")
    m = re.match(r"https://github\.com/([\w.-]+/[\w.-]+)$", url)
    return (m[1] if m else ""), options.get("repository_branch", "main")


def foreign_repository(text: str, repo: str, branch: str, srcdir: Path | None = None) -> list[str]:
    """Colab links and ``git clone``s in ``text`` that name another repository or branch (or a missing notebook)."""
    found = []
    for m in _COLAB.finditer(text):
        if m["repo"] != repo or m["branch"] != branch:
            found.append(f"Colab link to {m['repo']}@{m['branch']}")
        elif srcdir is not None and not (srcdir / m["path"]).is_file():
            found.append(f"Colab link to {m['path']}, which is not in the repository")
    for m in _CLONE.finditer(text):
        if m["repo"] != repo:
            found.append(f"git clone of {m['repo']}")
    return found


def source_text(path: Path) -> str:
    """The text a reader sees of a source file (a notebook's cell sources, or the file itself)."""
    if path.suffix != ".ipynb":
        return path.read_text()
    return "\n".join("".join(c.get("source", "")) for c in json.loads(path.read_text()).get("cells", []))


def description_of(png: Path) -> str | None:
    """The ``Description`` text chunk of a PNG file (written by ``helpers.notebook``), if any."""
    try:
        from PIL import Image

        with Image.open(png) as im:
            return (getattr(im, "text", None) or {}).get("Description")
    except (OSError, ImportError):
        return None


def _resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    repo, branch = repository(app.config)
    src = Path(app.env.doc2path(docname))
    if repo and src.is_file():
        for problem in foreign_repository(source_text(src), repo, branch, Path(app.srcdir)):
            logger.warning(f"{problem}: _config.yml names {repo}@{branch} (edit the chapter's badge or "
                           "set-up cell to match: python scripts/set_repository.py && make sync)", location=docname)
    for node in doctree.findall(nodes.image):
        if node.get("alt"):
            continue
        uri = Path(node["uri"])
        path = uri if uri.is_absolute() else Path(app.srcdir) / uri
        if path.suffix == ".png" and (text := description_of(path)):
            node["alt"] = text
    for node in doctree.findall(nodes.raw):
        if "html" not in node.get("format", "").split():
            continue
        src_html = node.astext()
        new = slim_circuitsvis(src_html) if "circuits-vis-" in src_html else slim_plotly(src_html)
        if new is not None and new != src_html:
            node.children[:] = [nodes.Text(new)]
            node["book_html"] = "circuitsvis" if "CircuitsVis.render(" in new else "plotly"


def _page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    # jupyter-book gives the theme no default colour mode, and its script then logs an error on every page.
    context["default_mode"] = context.get("default_mode") or "auto"
    scripts = context.get("script_files")
    if scripts:  # one copy of each script (sphinx-thebe's inline config is added twice by jupyter-book)
        seen, unique = set(), []
        for s in scripts:
            key = (getattr(s, "filename", s) or "", json.dumps(getattr(s, "attributes", {}), sort_keys=True))
            if key not in seen:
                seen.add(key)
                unique.append(s)
        scripts[:] = unique
    if "body" in context:  # docutils' deprecated DPUB role breaks its own role="list" (axe: critical)
        context["body"] = context["body"].replace('role="doc-biblioentry"', 'role="listitem"')
    if doctree is None:
        return
    needs = {n.get("book_html") for n in doctree.findall(nodes.raw)}
    if "circuitsvis" in needs:
        app.add_js_file(f"{CV_DIR}/iife.js")
    if "plotly" in needs:
        app.add_js_file(f"{PLOTLY_DIR}/plotly.min.js")


def _copy_assets(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    import circuitsvis
    import plotly

    for src, dst in [(Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js", static / CV_DIR / "iife.js"),
                     (Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                      static / PLOTLY_DIR / "plotly.min.js")]:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    mathjax = _mathjax_source()
    for keep in MATHJAX_KEEP:
        src, dst = mathjax / keep, static / MATHJAX_DIR / keep
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


def _mathjax_source() -> Path:
    """MathJax 3's ``es5`` tree as shipped by the ``sphinx-mathjax-offline`` package."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the book needs the sphinx-mathjax-offline package (requirements.txt)")
    return Path(spec.origin).parent / "static" / "mathjax"


def _config(app: Sphinx, config) -> None:
    config.mathjax_path = f"{MATHJAX_DIR}/{MATHJAX_ENTRY}"
    _mathjax_source()  # fail early, not after executing every notebook


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _config)
    app.connect("doctree-resolved", _resolved)
    app.connect("html-page-context", _page)
    app.connect("build-finished", _copy_assets)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
