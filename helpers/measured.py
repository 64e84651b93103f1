"""The book's measured numbers as data: ``book/measured/<name>.json``, written by ``scripts/measure.py``.

A chapter reads its assert thresholds and its tables of measurements with :func:`load` (no number is
pasted into a chapter), and its last cell hands one run's measurements to :func:`record`, which
``scripts/measure.py`` collects over seeds and turns into thresholds with stated margins.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: Where the measurement files live: ``book/measured`` of the repository (``$CIRCUITS_MEASURED`` overrides).
MEASURED_DIR = Path(__file__).resolve().parents[1] / "book" / "measured"


def measured_dir() -> Path:
    """The directory of the measurement files (``$CIRCUITS_MEASURED`` if set)."""
    return Path(os.environ.get("CIRCUITS_MEASURED") or MEASURED_DIR)


class Measured(Mapping[str, Any]):
    """One chapter's thresholds (name -> number) and tables (name -> list of row dicts), read-only.

    A missing key raises a ``KeyError`` that names the file; every key read is kept in :attr:`read`.
    """

    def __init__(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.data = data
        thresholds = {k: v["value"] for k, v in data.get("thresholds", {}).items()}
        tables = dict(data.get("tables", {}))
        both = sorted(set(thresholds) & set(tables))
        if both:
            raise ValueError(f"{self.path}: {both} is both a threshold and a table name")
        self._values: dict[str, Any] = {**thresholds, **tables}
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._values[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in {self.path} (it has {sorted(self._values)}); "
                           "add it there or re-run scripts/measure.py") from None
        self.read.add(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Measured({self.path.name}: {sorted(self._values)})"

    def span(self, col: str, fmt: str = "{:.2f}", table: str = "runs") -> str:
        """The range of a measured value over the rows of a table (one row per measured prompt set).

        ``"0.84–1.00"``, or one value where every run agrees; text values are listed once each
        (``"a / b"``); ``"(not measured)"`` when no row has ``col``.
        """
        values = [row[col] for row in self[table] if row.get(col) is not None]
        if not values:
            return "(not measured)"
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return " / ".join(dict.fromkeys(map(str, values)))
        lo, hi = fmt.format(min(values)), fmt.format(max(values))
        return lo if lo == hi else f"{lo}–{hi}"

    def thresholds(self) -> list[dict[str, Any]]:
        """Every threshold with its value and the rule it was derived by (rows for a table)."""
        return [{"threshold": k, "value": v["value"], "rule": describe_rule(v)}
                for k, v in self.data.get("thresholds", {}).items()]

    def provenance(self) -> str:
        """One line: when, where, on which model and commit, over which runs the numbers were measured."""
        p = self.data.get("provenance", {})
        if "note" in p and "date" not in p:
            return p["note"]
        model = p.get("model", {})
        runs = "; ".join(", ".join(f"{k}={v}" for k, v in r.get("parameters", {}).items())
                         for r in self.data.get("runs", []))
        sha = model.get("sha256") or "n/a"
        return (f"measured {p.get('date', '?')} on {p.get('machine', '?')}, commit {p.get('commit', '?')}, "
                f"model {model.get('name', '?')} (model.safetensors sha256 {sha[:12]}), runs: {runs} "
                f"(`{self.data.get('command', 'scripts/measure.py')}`)")


def describe_rule(t: Mapping[str, Any]) -> str:
    """A threshold's rule in words, e.g. ``"lowest layer_rec over the runs, minus 50% of it"``."""
    if t.get("bound", "fixed") == "fixed":
        return "fixed" + (f": {t['why']}" if t.get("why") else "")
    of = t["of"] if isinstance(t["of"], str) else " and ".join(t["of"])
    worst = "lowest" if t["bound"] == "lower" else "highest"
    sign = "minus" if t["bound"] == "lower" else "plus"
    parts = [f"{t['margin']:.0%} of it"] if t.get("margin") else []
    parts += [f"{t['slack']}"] if t.get("slack") else []
    margin = f", {sign} {' or '.join(parts)}" + (" (whichever is more)" if len(parts) > 1 else "") if parts else ""
    return f"{worst} {of} over the runs{margin}, rounded outward"


def load(name: str, directory: str | Path | None = None) -> Measured:
    """The measurements of one chapter, e.g. ``load("ch04")`` reads ``book/measured/ch04.json``."""
    path = Path(directory or measured_dir()) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no measurements {path}: run `python scripts/measure.py {name}`")
    return Measured(path, json.loads(path.read_text()))


def _plain(x: Any) -> Any:
    """JSON-ready: tensors, numpy and pandas scalars become Python numbers; NaN becomes None."""
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        x = x.tolist()
    elif hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    raise TypeError(f"cannot record {type(x).__name__} {x!r}: record numbers, strings, lists or dicts")


def record(path: str | Path | None, values: Mapping[str, Any],
           tables: Mapping[str, list[Mapping[str, Any]]] | None = None) -> bool:
    """Write one run's measured ``values`` (scalars) and table rows to ``path`` as JSON; nothing if no path.

    ``scripts/measure.py`` sets the chapter's ``RECORD`` parameter to a path and reads the file back.
    """
    if not path:
        return False
    out = {"values": _plain(dict(values)), "tables": _plain({k: list(v) for k, v in (tables or {}).items()})}
    bad = [k for k, v in out["values"].items() if not isinstance(v, (int, float, str, bool, type(None)))]
    if bad:
        raise TypeError(f"values must be scalars (numbers or strings); not {bad}: put lists in a table")
    Path(path).write_text(json.dumps(out, indent=1) + "\n")
    print(f"recorded {len(out['values'])} values and {sum(map(len, out['tables'].values()))} table rows "
          f"to {path}")
    return True


_LOAD = re.compile(r"""\b(\w+)\s*=\s*(?:helpers\.)?measured\.load\(\s*["']([^"']+)["']""")


def keys_read(source: str) -> dict[str, set[str]]:
    """Static scan of a chapter's source: for each ``X = measured.load("name")``, the keys read as ``X["key"]``
    (and the table ``X.span(...)`` reads)."""
    out: dict[str, set[str]] = {}
    for var, name in _LOAD.findall(source):
        keys = set(re.findall(rf"""\b{re.escape(var)}\[\s*["']([^"']+)["']\s*\]""", source))
        for call in re.findall(rf"""\b{re.escape(var)}\.span\(([^)]*)\)""", source):  # reads a table, "runs" by default
            table = re.search(r"""table\s*=\s*["']([^"']+)["']""", call)
            keys.add(table.group(1) if table else "runs")
        out.setdefault(name, set()).update(keys)
    return out
