"""Each chapter is a pair: ``book/X.py`` (jupytext percent format, the file a writer edits) and
``book/X.ipynb`` (what Colab opens and nbval runs, committed without outputs). They must not drift:
after editing the ``.py``, ``make sync`` (``jupytext --sync book/*.py``) rewrites the ``.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
SOURCES = sorted(BOOK.glob("*.py"))
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
FIX = "run `make sync` (jupytext --sync book/*.py) and commit both files"


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What a pair must agree on: each cell's type, source and tags."""
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_chapter_is_a_pair():
    assert SOURCES, "no chapters found in book/"
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS}, \
        f"a book/*.py without its .ipynb, or the reverse: {FIX}"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_pair_agrees(source: Path):
    text = jupytext.read(source)
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert text.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name") == "percent", \
        f"{source.name} is not in jupytext's percent format"
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
        f"{source.with_suffix('.ipynb').name} is not paired with its .py (jupytext formats: ipynb,py:percent)"
    a, b = cells(text), cells(nb)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"{source.stem}: cell {i} differs between .py and .ipynb ({x[1][:60]!r} vs {y[1][:60]!r}); {FIX}"
    assert len(a) == len(b), f"{source.stem}: {len(a)} cells in the .py, {len(b)} in the .ipynb; {FIX}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_no_outputs(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, \
                f"{notebook.name}: cell {i} has outputs; notebooks are committed without them ({FIX})"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_one_parameters_cell(source: Path):
    tagged = [c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source.name}: exactly one cell tagged `parameters` (papermill injects after it)"


def test_drift_is_caught(tmp_path: Path):
    """The comparison sees an edited .py whose .ipynb was not synced."""
    src = SOURCES[0]
    edited = tmp_path / src.name
    edited.write_text(src.read_text().replace("# %% [markdown]\n", "# %% [markdown]\n# An unsynced edit.\n#\n", 1))
    assert cells(jupytext.read(edited)) != cells(nbformat.read(src.with_suffix(".ipynb"), as_version=4))
