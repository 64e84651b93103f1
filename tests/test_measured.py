"""The chapters' measured numbers (book/measured/*.json) against the chapters that read them, and the
pieces of the measuring: helpers.measured (load, record, the static key scan) and scripts/measure.py
(thresholds derived from runs with stated margins)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from helpers import measured

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
FILES = sorted((BOOK / "measured").glob("*.json"))
READS = {p.name: measured.keys_read(p.read_text()) for p in sorted(BOOK.glob("*.py"))}


def _measure_script():
    spec = importlib.util.spec_from_file_location("measure", ROOT / "scripts" / "measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readers(name: str) -> dict[str, set[str]]:
    return {chapter: reads[name] for chapter, reads in READS.items() if name in reads}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_key_read_exists_and_every_key_is_read(path: Path):
    data = measured.load(path.stem)
    readers = _readers(path.stem)
    assert readers, f"{path.name} is read by no chapter (X = measured.load({path.stem!r}) then X[\"key\"])"
    read = set().union(*readers.values())
    assert read - set(data) == set(), f"{sorted(readers)} read {sorted(read - set(data))}, missing from {path.name}"
    assert set(data) - read == set(), f"{path.name} holds {sorted(set(data) - read)}, which no chapter reads"


def test_every_chapter_file_exists():
    for chapter, reads in READS.items():
        for name in reads:
            assert (BOOK / "measured" / f"{name}.json").is_file(), f"{chapter} loads {name!r}: no such file"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_thresholds_state_their_rule(path: Path):
    data = json.loads(path.read_text())
    assert data.get("notebook") and (ROOT / data["notebook"]).is_file(), f"{path.name}: \"notebook\" must name it"
    for name, t in data.get("thresholds", {}).items():
        assert isinstance(t.get("value"), (int, float)), f"{path.name}: {name} has no numeric value"
        assert t.get("bound", "fixed") in ("lower", "upper", "fixed"), f"{path.name}: {name}: bad bound"
        if t.get("bound", "fixed") != "fixed":
            assert t.get("of"), f"{path.name}: {name} must say which measured value it bounds (\"of\")"
            assert t.get("margin", 0) > 0 or t.get("slack", 0) > 0, f"{path.name}: {name} has no margin"


def test_chapters_that_measure_take_a_record_parameter():
    import jupytext
    for chapter, reads in READS.items():
        if not reads:
            continue
        params = next(c.source for c in jupytext.read(BOOK / chapter).cells
                      if "parameters" in c.metadata.get("tags", []))
        assert "RECORD = " in params, f"{chapter}: its parameters cell needs RECORD (scripts/measure.py sets it)"
        assert "measured.record(RECORD" in (BOOK / chapter).read_text(), f"{chapter} never records"


def test_papermill_reads_every_parameter():
    """papermill (scripts/measure.py) must see each parameter: a second "=" on a line (">=" in a comment)
    makes it skip the line with a warning."""
    import re

    import jupytext
    from papermill.translators import PythonTranslator

    for path in sorted(BOOK.glob("*.py")):
        for cell in jupytext.read(path).cells:
            if "parameters" not in cell.metadata.get("tags", []):
                continue
            assigned = re.findall(r"^([A-Za-z_]\w*)\s*=", cell.source, flags=re.MULTILINE)
            seen = [p.name for p in PythonTranslator.inspect(cell)]
            assert seen == assigned, f"{path.name}: papermill cannot read {sorted(set(assigned) - set(seen))}"


def test_load_names_the_file_for_a_missing_key(tmp_path: Path):
    (tmp_path / "chX.json").write_text(json.dumps({"thresholds": {"A_MIN": {"value": 0.5}},
                                                   "tables": {"runs": [{"x": 1}]}}))
    m = measured.load("chX", tmp_path)
    assert m["A_MIN"] == 0.5 and m["runs"] == [{"x": 1}]
    assert m.read == {"A_MIN", "runs"}
    with pytest.raises(KeyError, match="chX.json"):
        m["B_MAX"]
    with pytest.raises(FileNotFoundError, match="measure.py"):
        measured.load("nope", tmp_path)


def test_span_ranges_a_value_over_the_runs(tmp_path: Path):
    (tmp_path / "chX.json").write_text(json.dumps({"tables": {"runs": [
        {"x": 0.84, "k": 3, "s": "L3H6", "n": None}, {"x": 1.0, "k": 3, "s": "L3H6"}, {"x": 0.9, "k": 3, "s": "L2H0"}]}}))
    m = measured.load("chX", tmp_path)
    assert m.span("x") == "0.84–1.00" and m.span("x", "{:.0%}") == "84%–100%"
    assert m.span("k", "{:.0f}") == "3"                   # every run agrees: one value
    assert m.span("s") == "L3H6 / L2H0"                   # text: each value once, in order
    assert m.span("n") == m.span("absent") == "(not measured)"
    with pytest.raises(KeyError, match="chX.json"):
        m.span("x", table="nope")
    assert measured.keys_read('M = measured.load("a")\nM.span("x")\nM.span("y", table="t")') == {"a": {"runs", "t"}}


def test_a_name_cannot_be_threshold_and_table(tmp_path: Path):
    (tmp_path / "chX.json").write_text(json.dumps({"thresholds": {"runs": {"value": 1}}, "tables": {"runs": []}}))
    with pytest.raises(ValueError, match="both"):
        measured.load("chX", tmp_path)


def test_record(tmp_path: Path):
    import torch
    assert measured.record("", {"a": 1}) is False
    out = tmp_path / "r.json"
    assert measured.record(out, {"a": torch.tensor(0.5), "b": 3, "s": "L1.N71"}, {"runs": [{"x": torch.tensor(2)}]})
    assert json.loads(out.read_text()) == {"values": {"a": 0.5, "b": 3, "s": "L1.N71"}, "tables": {"runs": [{"x": 2}]}}
    with pytest.raises(TypeError, match="scalars"):
        measured.record(out, {"a": [1, 2]})
    with pytest.raises(TypeError, match="cannot record"):
        measured.record(out, {"a": object()})


def test_keys_read_scans_loads_and_subscripts():
    src = 'M = measured.load("ch09")\nW = helpers.measured.load("ch09_wd0")\nassert x > M["A_MIN"]\n' \
          'pd.DataFrame(W["runs"]); M.thresholds(); M["runs"]\n'
    assert measured.keys_read(src) == {"ch09": {"A_MIN", "runs"}, "ch09_wd0": {"runs"}}


def test_derive_thresholds_with_margins():
    m = _measure_script()
    runs = [{"parameters": {"SEED": s}, "values": {"rec": r, "rank": k}} for s, r, k in [(0, 0.602, 11), (1, 0.561, 9)]]
    assert m.derive("A", {"bound": "lower", "of": "rec", "margin": 0.45}, runs) == 0.3       # 0.3086 rounded down
    assert m.derive("B", {"bound": "upper", "of": "rank", "margin": 1.2}, runs) == 25        # 24.2 rounded up
    assert m.derive("C", {"bound": "upper", "of": "rank", "slack": 3}, runs) == 14
    assert m.derive("D", {"bound": "upper", "of": ["rec", "rank"], "slack": 0.5}, runs) == 12  # ints and floats
    assert m.derive("E", {"bound": "fixed", "value": 0.1}, runs) == 0.1
    with pytest.raises(SystemExit, match="did not record"):
        m.derive("F", {"bound": "lower", "of": "missing", "margin": 0.1}, runs)
    assert m.sig_round(0.30855, 2, "down") == 0.3 and m.sig_round(-9.23, 2, "up") == -9.2
    assert m.sig_round(123.4, 2, "up") == 130


def test_aggregate_concatenates_tables_and_summarises():
    m = _measure_script()
    runs = [{"parameters": {"SEED": s}, "values": {"rec": r, "best": "L1.N71"},
             "tables": {"runs": [{"seed": s, "rec": r}]}} for s, r in [(0, 0.60234), (1, 0.5612)]]
    out = m.aggregate({"thresholds": {"REC_MIN": {"bound": "lower", "of": "rec", "margin": 0.5, "value": 0}}}, runs)
    assert out["tables"] == {"runs": [{"seed": 0, "rec": 0.602}, {"seed": 1, "rec": 0.561}]}
    assert out["summary"]["rec"]["min"] == 0.5612 and out["summary"]["best"] == {"values": ["L1.N71"], "n": 2}
    assert out["thresholds"]["REC_MIN"]["value"] == 0.28
