"""The book's Sphinx extension (book/_ext/book_html.py) on real outputs of circuitsvis and plotly, and the
kernel set-up of helpers.notebook (inline figures with a description, text progress bars)."""

import importlib.util
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("book_html", ROOT / "book" / "_ext" / "book_html.py")
book_html = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_html)


def test_circuitsvis_output_loses_its_bundle_and_keeps_its_call():
    import torch
    from circuitsvis.utils.render import render_cdn, render_local

    from helpers import plots

    vis = plots.attention_heads(torch.eye(3).expand(2, 3, 3), ["a", "b", ")"], ["h0", "h1"])
    local = vis.local_src
    assert len(local) > 1_000_000  # the whole bundle, inlined
    slim = book_html.slim_circuitsvis(local)
    assert len(slim) < 5_000
    assert slim.count("CircuitsVis.render(") == 1 and "CircuitsVis.AttentionHeads," in slim
    assert '"tokens": ["a", "b", ")"]' in slim.replace("\n", " ") or '["a","b",")"]' in slim.replace(" ", "")
    assert slim.rstrip().endswith("</script>") and 'aria-label="attention patterns' in slim
    for src in (render_local("ColoredTokens", tokens=["x", "y"], values=[0.1, 0.9]),
                render_cdn("ColoredTokens", tokens=["x", "y"], values=[0.1, 0.9])):
        out = book_html.slim_circuitsvis(src)
        assert "CircuitsVis.render(" in out and "CircuitsVis.ColoredTokens," in out and "unpkg" not in out
    assert book_html.slim_circuitsvis("<table><tr><td>1</td></tr></table>") is None


def test_plotly_output_loses_its_cdn_scripts():
    import plotly.graph_objects as go
    import plotly.io as pio

    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    src = pio.renderers["notebook_connected"].to_mimebundle(fig.to_plotly_json())["text/html"]
    assert "cdn.plot.ly" in src
    slim = book_html.slim_plotly(src)
    assert "cdn.plot.ly" not in slim and "cdnjs" not in slim and "Plotly.newPlot(" in slim
    assert book_html.slim_plotly("<table></table>") is None


def test_one_repository():
    repo, branch = "owner/book", "main"
    ok = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
          "(https://colab.research.google.com/github/owner/book/blob/main/book/01_induction_heads.ipynb)\n"
          "    !git clone -q --depth 1 https://github.com/owner/book\n")
    assert book_html.foreign_repository(ok, repo, branch, ROOT) == []
    wrong = ok.replace("owner/book", "someone/else")
    assert len(book_html.foreign_repository(wrong, repo, branch, ROOT)) == 2
    missing = ok.replace("01_induction_heads", "99_missing")
    assert "not in the repository" in book_html.foreign_repository(missing, repo, branch, ROOT)[0]
    assert book_html.foreign_repository(ok.replace("/main/", "/dev/"), repo, branch) == ["Colab link to owner/book@dev"]


def test_every_chapter_names_the_configured_repository():
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    repo = cfg["url"].removeprefix("https://github.com/").rstrip("/")
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        text = book_html.source_text(nb)
        assert book_html.foreign_repository(text, repo, cfg.get("branch", "main"), ROOT) == [], nb.name


def test_figure_description():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers import notebook

    fig, (a, b) = plt.subplots(1, 2)
    a.plot([0, 1], label="train")
    a.plot([1, 0], label="test")
    a.legend()
    a.set(title="loss", xlabel="step", ylabel="nats")
    b.imshow([[0, 1], [1, 0]])
    b.set_title("attention")
    text = notebook.describe_figure(fig)
    plt.close(fig)
    assert text == "Figure, 2 panels: plot 'loss'; x: step; y: nats; legend: train, test | heat map 'attention'"


def test_kernel_setup_inline_figures_and_text_bars(tmp_path, monkeypatch):
    """In a kernel run by nbclient with MPLBACKEND=Agg (as `make book` once did), importing helpers
    makes plt.show() output a PNG with a description, and tqdm.auto bars plain text."""
    import nbformat
    from nbclient import NotebookClient
    from PIL import Image

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("CIRCUITS_PROGRESS", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (
        "import helpers",
        "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.title('a line')\nplt.show()",
        "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='steps'):\n    pass",
    )]
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    images = [o for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, nb.cells[1].outputs
    import base64

    png = Image.open(io.BytesIO(base64.b64decode(images[0]["data"]["image/png"])))
    assert png.text["Description"] == "Figure: plot 'a line'"
    bars = nb.cells[2].outputs
    assert bars and all(o["output_type"] == "stream" for o in bars), json.dumps(bars)[:300]
    text = "".join(o["text"] for o in bars)
    assert text.startswith("steps: 100%") and text.count("\n") == 1 and "\r" not in text, repr(text)


def test_set_repository_rewrites_badges_and_clones():
    spec = importlib.util.spec_from_file_location("set_repository", ROOT / "scripts" / "set_repository.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = ("(https://colab.research.google.com/github/a/b/blob/main/book/01_induction_heads.ipynb)\n"
            "    # !git clone -q --depth 1 https://github.com/a/b.git\n")
    new = mod.rewrite(text, "owner/book", "dev")
    assert book_html.foreign_repository(new, "owner/book", "dev", ROOT) == []
    assert "github/owner/book/blob/dev/book/01_induction_heads.ipynb" in new and "github.com/owner/book\n" in new
    repo, branch = mod.configured()
    for path in (ROOT / "book").glob("*.py"):  # the chapters agree with _config.yml already
        assert mod.rewrite(path.read_text(), repo, branch) == path.read_text(), path.name
