"""Shared by the scripts/build_chNN.py files: collect cells, write a notebook with stable ids, no outputs.

A chapter script calls ``md(id, text)`` / ``code(id, source[, "params"])`` in order, then
``write(path, substitutions)``; placeholders (measured tables, thresholds) are filled in at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nbformat

CELLS: list[tuple[str, str, str]] = []  # (id, "md" | "code" | "params", source)


def md(cid: str, src: str) -> None:
    """A markdown cell."""
    CELLS.append((cid, "md", src.strip("\n")))


def code(cid: str, src: str, kind: str = "code") -> None:
    """A code cell; ``kind="params"`` tags it ``parameters``."""
    CELLS.append((cid, kind, src.strip("\n")))


COLAB_SETUP = """
# On Colab: fetch the book and install what Colab lacks (Colab's own torch is kept). Elsewhere: nothing.
import os, sys
if "google.colab" in sys.modules and not os.path.isdir("circuits-executable"):
    !git clone -q --depth 1 https://github.com/circuits-executable/circuits-executable
    %pip install -q -r circuits-executable/requirements.txt
    %pip install -q --no-deps -e circuits-executable
    sys.path.insert(0, os.path.abspath("circuits-executable"))
"""


def colab_setup() -> None:
    """The setup cell every chapter starts with (DESIGN.md: Colab only, nothing elsewhere)."""
    code("setup", COLAB_SETUP)


def build() -> nbformat.NotebookNode:
    """The notebook, with metadata, tags and stable ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    for cid, kind, src in CELLS:
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(src)
        else:
            cell = nbformat.v4.new_code_cell(src)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
        cell.id = cid
        nb.cells.append(cell)
    return nb


def write(out: Path, substitutions: Mapping[str, str], replace: Mapping[str, str] | None = None) -> None:
    """Fill the placeholders, validate and write ``out`` (plus optional raw source replacements)."""
    nb = build()
    for cell in nb.cells:
        for key, value in {**substitutions, **(replace or {})}.items():
            cell.source = cell.source.replace(key, value)
    nbformat.validate(nb)
    out.write_text(nbformat.writes(nb) + "\n")
    print(f"wrote {out} ({len(nb.cells)} cells)")
