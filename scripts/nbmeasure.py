"""Shared by scripts/measure_ch04.py and measure_ch05.py: run a chapter with its parameters overridden.

The chapter's asserts are switched off (``IS_ORGANISM = False``), a last cell prints the measured values
as JSON after the marker ``MEASURED``, and the values come back as a dict (plus ``seconds``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(nb_path: Path, params: Mapping[str, object], collect: str, model: str | None = None,
        replace: Mapping[str, str] | None = None, save: str | None = None) -> dict:
    """Execute ``nb_path`` once with ``params`` appended to its parameters cell; return the measured dict."""
    nb = nbformat.read(nb_path, as_version=4)
    edits = {'IS_ORGANISM = MODEL.startswith("organism")': "IS_ORGANISM = False", **(replace or {})}
    if model:
        edits["helpers.load_model(MODEL)"] = f"helpers.load_model({model!r})"
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items()) + "\n"
        if cell.cell_type == "code":  # measure, do not assert
            for old, new in edits.items():
                cell.source = cell.source.replace(old, new)
    nb.cells.append(nbformat.v4.new_code_cell(collect))
    t0 = time.time()
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    measured = json.loads(out.split("MEASURED", 1)[1])
    measured["seconds"] = time.time() - t0
    if save:
        nbformat.write(nb, save)
    return measured


def main(nb_path: Path, collect: str, keys: list[str], extra: Callable[[dict], str],
         replace: Mapping[str, str] | None = None, save_first: str | None = None) -> None:
    """Command line shared by the measure scripts: ``--runs SEED:TEMPLATE … [--model DIR]``; prints a table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", default=["0:0", "1:1", "2:2", "3:3", "4:4"])
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    rows = []
    for i, r in enumerate(args.runs):
        seed, template = (int(x) for x in r.split(":"))
        m = run(nb_path, {"SEED": seed, "TEMPLATE": template}, collect, args.model, replace,
                save_first if i == 0 else None)
        rows.append((seed, template, m))
        print(json.dumps({"seed": seed, "template": template, **m}), flush=True)
    print("| seed | template | " + " | ".join(keys) + " | " + extra({}) + " |")
    print("|---" * (len(keys) + 2 + extra({}).count("|") + 1) + "|")
    for seed, template, m in rows:
        print(f"| {seed} | {template} | " + " | ".join(f"{m[k]:.3g}" for k in keys) + f" | {extra(m)} |")
