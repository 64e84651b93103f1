"""Run a chapter over its seeds with papermill and write its measurements, ``book/measured/<name>.json``.

    python scripts/measure.py 02                        # the seeds listed in book/measured/ch02.json
    python scripts/measure.py 04 --seeds 0 1 2 3 4      # SEED (and TEMPLATE, see "per_seed") = each seed
    python scripts/measure.py 02 --model /tmp/candidate --out /tmp/ch02.json
    python scripts/measure.py ch01_wd0                  # a variant: its own JSON, its own fixed parameters
    python scripts/measure.py 02 --rederive             # thresholds again from the stored runs (no execution)

Each run executes the chapter's ``.ipynb`` with papermill: the parameters (``SEED`` and the chapter's
other seed-linked parameters, ``RECORD`` = a temporary file, the JSON's fixed ``parameters``, any
``-p NAME=VALUE``) are injected after its ``parameters`` cell. The kernel runs with ``PYTHONOPTIMIZE=1``,
so the chapter's ``assert`` statements are skipped: they are what is being measured (``--asserts`` keeps
them). The chapter's last cell hands its measured values and table rows to
``helpers.measured.record(RECORD, ...)``. This script then writes
- ``tables``: every run's rows, concatenated (floats to 3 significant digits);
- ``summary``: min / max / mean of every recorded value over the runs;
- ``thresholds``: each re-derived by the rule stored beside it (the worst run, minus or plus a margin,
  rounded outward; or fixed);
- ``runs`` (parameters, seconds, values) and ``provenance`` (date, machine, commit, model checksum).
The JSON's other fields (``notebook``, ``seeds``, ``per_seed``, ``parameters``, the threshold rules) are
its specification: edit them by hand, then re-run.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from helpers.measured import MEASURED_DIR, keys_read

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def json_name(chapter: str) -> str:
    """``"2"``, ``"02"``, ``"ch02"`` -> ``"ch02"``; ``"appendix"``, ``"ch01_wd0"`` unchanged."""
    return f"ch{int(chapter):02d}" if chapter.isdigit() else chapter


def find_notebook(name: str, spec: dict[str, Any]) -> Path:
    """The chapter's notebook: the JSON's ``notebook`` field, else ``book/NN_*.ipynb`` for ``chNN``."""
    if spec.get("notebook"):
        return ROOT / spec["notebook"]
    m = re.fullmatch(r"ch(\d\d)", name)
    hits = sorted(BOOK.glob(f"{m.group(1)}_*.ipynb")) if m else sorted(BOOK.glob(f"{name}*.ipynb"))
    if len(hits) != 1:
        raise SystemExit(f"cannot tell which notebook {name!r} is ({[h.name for h in hits]}): "
                         f"set \"notebook\" in {MEASURED_DIR / name}.json")
    return hits[0]


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """Names assigned in the notebook's ``parameters`` cell, with their literal defaults (None if not literal)."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise SystemExit(f"{notebook.name}: needs exactly one cell tagged `parameters`, found {len(cells)}")
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            values = node.value.elts if isinstance(node.value, ast.Tuple) and len(names) > 1 else [node.value]
            for n, v in zip(names, values if len(values) == len(names) else [None] * len(names)):
                if isinstance(n, ast.Name):
                    try:
                        out[n.id] = ast.literal_eval(v) if v is not None else None
                    except ValueError:
                        out[n.id] = None
    return out


def parse_value(text: str) -> Any:
    """``-p NAME=VALUE``: a Python literal if it parses as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def sig_round(x: float, digits: int, direction: str) -> float:
    """``x`` rounded to ``digits`` significant digits, down (``"down"``) or up (``"up"``)."""
    if x == 0 or not math.isfinite(x):
        return x
    step = 10 ** (math.floor(math.log10(abs(x))) - digits + 1)
    q = (math.floor if direction == "down" else math.ceil)(round(x / step, 9)) * step
    return round(q, max(0, -math.floor(math.log10(step))))


def derive(name: str, rule: dict[str, Any], runs: list[dict[str, Any]]) -> Any:
    """A threshold's value from its rule and the runs' values (see the module docstring)."""
    bound = rule.get("bound", "fixed")
    if bound == "fixed":
        return rule["value"]
    if bound not in ("lower", "upper"):
        raise SystemExit(f"threshold {name}: bound must be lower, upper or fixed, not {bound!r}")
    keys = [rule["of"]] if isinstance(rule["of"], str) else list(rule["of"])
    values = []
    for r in runs:
        for k in keys:
            if r["values"].get(k) is None:
                raise SystemExit(f"threshold {name} needs the value {k!r}, which run {r['parameters']} did not "
                                 f"record (it recorded {sorted(r['values'])})")
            values.append(r["values"][k])
    worst = min(values) if bound == "lower" else max(values)
    pad = max(rule.get("margin", 0) * abs(worst), rule.get("slack", 0))
    raw = worst - pad if bound == "lower" else worst + pad
    if pad == 0:
        print(f"warning: threshold {name} has no margin: it equals the worst run ({worst})", file=sys.stderr)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):  # counts, ranks, positions
        return int(math.floor(raw) if bound == "lower" else math.ceil(raw))
    return sig_round(raw, rule.get("digits", 2), "down" if bound == "lower" else "up")


def round_row(row: dict[str, Any]) -> dict[str, Any]:
    """Floats of a table row to 3 significant digits."""
    return {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in row.items()}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Min / max / mean of every numeric value over the runs; the distinct values of the others."""
    out: dict[str, Any] = {}
    for k in dict.fromkeys(k for r in runs for k in r["values"]):
        vals = [r["values"].get(k) for r in runs]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(nums) == len(vals):
            out[k] = {"min": min(nums), "max": max(nums), "mean": round(sum(nums) / len(nums), 6), "n": len(nums)}
        else:
            out[k] = {"values": list(dict.fromkeys(map(str, vals))), "n": len(vals)}
    return out


def git_commit() -> str:
    """Short commit of the work tree, ``+dirty`` if book/ or helpers/ have uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "book", "helpers") else "")


def machine() -> str:
    """CPU model, cores, OS and the versions that matter."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"python {platform.python_version()}, torch {torch.__version__}")


def model_identity(model: Any) -> dict[str, Any]:
    """The model's name and the sha256 of its model.safetensors (when it is on disk)."""
    if model is None:
        return {"name": "none: the chapter trains its own models", "sha256": None}
    try:
        from helpers.loading import resolve, sha256_file
    except ImportError:  # before helpers/models.py became helpers/loading.py
        from helpers.models import resolve, sha256_file
    kind, where = resolve(str(model))
    if kind != "local":
        return {"name": str(model), "source": f"hub: {where}", "sha256": None}
    weights = Path(where).resolve() / "model.safetensors"
    source = weights.parent.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights.parent
    return {"name": str(model), "source": str(source), "sha256": sha256_file(weights) if weights.is_file() else None}


def run_once(notebook: Path, params: dict[str, Any], keep: Path | None, asserts: bool) -> dict[str, Any]:
    """Execute the notebook once with ``params`` (plus RECORD); return the recorded values and tables."""
    import papermill as pm
    with tempfile.TemporaryDirectory(prefix="measure_") as tmp:
        record = Path(tmp) / "record.json"
        tag = re.sub(r"[^A-Za-z0-9.=-]+", "_", "_".join(f"{k}={v}" for k, v in params.items()))
        out = keep / f"{notebook.stem}__{tag}.ipynb" if keep else Path(tmp) / "executed.ipynb"
        env = {"PYTHONOPTIMIZE": "" if asserts else "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        t0 = time.time()
        try:
            pm.execute_notebook(str(notebook), str(out), parameters={**params, "RECORD": str(record)},
                                kernel_name="python3", cwd=str(notebook.parent), progress_bar=False,
                                request_save_on_cell_execute=False, start_timeout=600)  # a busy machine
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        seconds = time.time() - t0
        if not record.is_file():
            raise SystemExit(f"{notebook.name} ran but recorded nothing: its last cell must call "
                             "helpers.measured.record(RECORD, values, tables)")
        got = json.loads(record.read_text())
    return {"parameters": params, "seconds": round(seconds, 1), "values": got["values"], "tables": got["tables"]}


def aggregate(spec: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON's measured part from the runs: tables, summary, thresholds (rules kept)."""
    tables: dict[str, list] = {}
    for r in runs:
        for name, rows in r.get("tables", {}).items():
            tables.setdefault(name, []).extend(round_row(row) for row in rows)
    thresholds = {name: {**rule, "value": derive(name, rule, runs)}
                  for name, rule in spec.get("thresholds", {}).items()}
    return {"thresholds": thresholds, "tables": tables, "summary": summarise(runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapter", help="02, ch02, appendix, ch01_wd0, ... (the name of book/measured/<name>.json)")
    ap.add_argument("--seeds", type=int, nargs="+", help="default: the JSON's \"seeds\"")
    ap.add_argument("--model", help="the chapter's MODEL parameter (default: the notebook's own)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter for every run (a Python literal, or a string)")
    ap.add_argument("--out", type=Path, help="write here instead of book/measured/<name>.json")
    ap.add_argument("--keep", type=Path, help="keep the executed notebooks in this directory")
    ap.add_argument("--asserts", action="store_true", help="run the chapter's asserts too (a failing one stops)")
    ap.add_argument("--rederive", action="store_true", help="no execution: thresholds from the stored runs")
    args = ap.parse_args()

    name = json_name(args.chapter)
    path = MEASURED_DIR / f"{name}.json"
    spec = json.loads(path.read_text()) if path.is_file() else {}
    notebook = find_notebook(name, spec)
    out = args.out or path
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)

    if args.rederive:
        runs = spec.get("runs") or []
        if not runs:
            raise SystemExit(f"{path} holds no runs to derive from: measure first")
        result = {**spec, **aggregate(spec, runs)}
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {out} (re-derived from {len(runs)} stored runs)")
        return

    declared = declared_parameters(notebook)
    if "RECORD" not in declared:
        raise SystemExit(f"{notebook.name}: its parameters cell has no RECORD parameter")
    seeds = args.seeds if args.seeds is not None else spec.get("seeds", [0])
    per_seed = spec.get("per_seed", ["SEED"])
    fixed = dict(spec.get("parameters", {}))
    for p in args.param:
        key, _, value = p.partition("=")
        fixed[key] = parse_value(value)
    if args.model:
        fixed["MODEL"] = args.model
    unknown = sorted(set(fixed) - set(declared) | set(per_seed) - set(declared))
    if unknown:
        raise SystemExit(f"{notebook.name} has no parameters {unknown} (it has {sorted(declared)})")
    model = fixed.get("MODEL", declared.get("MODEL"))

    runs = []
    for seed in seeds:
        params = {**{k: seed for k in per_seed}, **fixed}
        print(f"{notebook.name} {params} ...", flush=True)
        r = run_once(notebook, params, args.keep, args.asserts)
        print(f"  {r['seconds']:.0f}s: {r['values']}", flush=True)
        runs.append(r)

    keep_spec = {k: v for k, v in spec.items() if k not in ("tables", "summary", "runs", "provenance")}
    result = {"chapter": name, "notebook": str(notebook.relative_to(ROOT)),
              "command": " ".join(["python", "scripts/measure.py", *sys.argv[1:]]),
              "seeds": seeds, "per_seed": per_seed, "parameters": {k: v for k, v in fixed.items() if k != "MODEL"},
              **{k: v for k, v in keep_spec.items() if k not in ("chapter", "notebook", "command", "seeds",
                                                                  "per_seed", "parameters")},
              **aggregate(spec, runs),
              "runs": [{k: r[k] for k in ("parameters", "seconds", "values")} for r in runs],
              "provenance": {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                             "machine": machine(), "commit": git_commit(), "model": model_identity(model),
                             "seeds": seeds, "seconds": round(sum(r["seconds"] for r in runs), 1),
                             "asserts": "run" if args.asserts else "skipped (PYTHONOPTIMIZE=1)"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {len(result['thresholds'])} thresholds, "
          f"{ {k: len(v) for k, v in result['tables'].items()} } table rows, {len(runs)} runs")

    # The chapter must read every key, and find every key it reads.
    source = notebook.with_suffix(".py")
    if source.is_file():
        read = keys_read(source.read_text()).get(name, set())
        have = set(result["thresholds"]) | set(result["tables"])
        if read - have:
            print(f"warning: {source.name} reads {sorted(read - have)}, which {out.name} lacks", file=sys.stderr)
        if have - read:
            print(f"warning: {out.name} holds {sorted(have - read)}, which {source.name} never reads",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
