"""The model card's figures: each task on training structures and on held-out structures, rule by rule.

A held-out *rule* never occurs in training (the "met" join of IOI, a Colored Objects question
phrasing, a counting frame …), so its accuracy measures generalisation to a structure the model has
never seen, not only to new compositions of seen parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..tasks import articles, colored_objects, counting, ioi, make
from ..tasks.evaluate import evaluate_batch, evaluate_induction

#: IOI rules measured one at a time (the others drawn from the training rules).
IOI_RULES = [{"join": "met"}, {"gap": 2}, {"distractor": "in_gap"}, {"ending": "sent"}, {"ending": "showed"},
             {"opening": "sub:As soon as"}, {"opening": "adv:That evening"}, {"opening": "scene:morning"}]


def rule_of(structure: str) -> dict[str, Any]:
    """The :data:`IOI_RULES` entry a card row names, e.g. ``"join=met"`` -> ``{"join": "met"}``."""
    for rule in IOI_RULES:
        (k, v), = rule.items()
        if f"{k}={v}" == structure:
            return rule
    raise ValueError(f"{structure!r} is not one of the card's held-out IOI rules "
                     f"({', '.join(f'{k}={v}' for r in IOI_RULES for k, v in r.items())})")


def by_order(model: Any, rule: dict[str, Any], n: int = 200, seed: int = 0) -> dict[str, float]:
    """IOI accuracy on one held-out rule, split by the order of the names: ``ABBA`` (S is the second name
    introduced, "A and B …, B gave … to") and ``BABA`` (S is the first)."""
    b = ioi.generate(n, split="test", seed=seed, rules=rule)
    out = {}
    for order in ("ABBA", "BABA"):
        keep = [i for i, m in enumerate(b.meta) if m["order"] == order]
        if not keep:
            raise ValueError(f"no {order} prompt among {n}: raise n")
        out[order] = evaluate_batch(model, b[keep])["accuracy"]
    return out


def _row(task: str, structure: str, split: str, res: dict[str, float]) -> dict[str, Any]:
    return {"task": task, "structure": structure, "split": split, "n": res["n"],
            "accuracy": res["accuracy"], "top1": res["top1"], "logit_diff": res["logit_diff"]}


def _co_heldout(n: int, seed: int, which: str) -> Any:
    """Colored Objects prompts whose one held-out element is ``which`` (list, question or frame)."""
    b = colored_objects.generate(4 * n, split="test", seed=seed)
    want = {"list": (colored_objects.LISTS.index(colored_objects.HELDOUT_LISTS[0]), 0),
            "question": (colored_objects.QUESTIONS.index(colored_objects.HELDOUT_QUESTIONS[0]), 1),
            "frame": (colored_objects.FRAMES.index(colored_objects.HELDOUT_FRAMES[0]), 2)}[which]
    keep = [i for i, m in enumerate(b.meta) if m["phrasing"][want[1]] == want[0]][:n]
    return b[keep]


def generalisation(model: Any, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Accuracy per task on training structures and on held-out structures (overall and rule by rule)."""
    rows = []
    for task in ("ioi", "colored_objects", "articles", "counting"):
        rows.append(_row(task, "training structures", "train", evaluate_batch(model, make(task, n, "train", seed))))
        rows.append(_row(task, "held-out structures (all)", "test", evaluate_batch(model, make(task, n, "test", seed))))
    for rule in IOI_RULES:
        (k, v), = rule.items()
        b = ioi.generate(n, split="test", seed=seed, rules=rule)
        rows.append(_row("ioi", f"{k}={v}", "test", evaluate_batch(model, b)))
    rows.append(_row("ioi", "unseen names", "test_names", evaluate_batch(model, ioi.generate(n, "test_names", seed))))
    for which in ("list", "question", "frame"):
        rows.append(_row("colored_objects", f"held-out {which}", "test", evaluate_batch(model, _co_heldout(n, seed, which))))
    for k in (2, 4):
        rows.append(_row("colored_objects", f"{k} objects", "test",
                         evaluate_batch(model, colored_objects.generate(n, "test", seed, n_items=k))))
    rows.append(_row("colored_objects", "classic BIG-bench phrasing", "test",
                     evaluate_batch(model, colored_objects.generate(n, "test", seed, phrasing="classic"))))
    b = articles.generate(2 * n, "test", seed)
    keep = [i for i, m in enumerate(b.meta) if m["template"].startswith(articles.HELDOUT_CUES[m["category"]].format(n="{x}"))]
    rows.append(_row("articles", "held-out cue", "test", evaluate_batch(model, b[keep[:n]])))
    b = counting.generate(4 * n, "test", seed)
    keep = [i for i, t in enumerate(b.texts) if t.startswith(counting.HELDOUT_FRAMES[0].split("{")[0])]
    rows.append(_row("counting", "held-out frame", "test", evaluate_batch(model, b[keep[:n]])))
    ind = evaluate_induction(model, n=max(10, n // 4), seed=seed)
    rows.append({"task": "induction", "structure": "random repeated tokens", "split": "test", "n": ind["n"],
                 "accuracy": ind["top1"], "top1": ind["top1"], "logit_diff": ind["logit_diff"]})
    return pd.DataFrame(rows)


#: The model card's headline figures, read from a :func:`generalisation` table: name -> (task, structure, column).
FIGURES = {
    "ioi_heldout": ("ioi", "held-out structures (all)", "accuracy"),
    "ioi_train": ("ioi", "training structures", "accuracy"),
    "co_heldout_top1": ("colored_objects", "held-out structures (all)", "top1"),
    "co_classic_top1": ("colored_objects", "classic BIG-bench phrasing", "top1"),
    "co_train_top1": ("colored_objects", "training structures", "top1"),
    "articles_heldout": ("articles", "held-out structures (all)", "accuracy"),
    "counting_heldout": ("counting", "held-out structures (all)", "top1"),
    "induction_top1": ("induction", "random repeated tokens", "top1"),
}
#: The issue's bars for the headline figures on held-out structures (organism-v3).
BARS = {"ioi_heldout": 0.95, "ioi_worst_rule": 0.90, "co_heldout_top1": 0.85, "articles_heldout": 0.95,
        "counting_heldout": 0.95, "induction_top1": 0.95}
#: How far a retrain's figure (mean over :data:`PROMPT_SETS`) may lie from the shipped model's and still
#: count as reproducing it. Stated before the retrains were measured: 3 binomial standard errors of 600
#: prompts at the worst case p = 0.5 (0.061), rounded up to 0.07; IOI's worst held-out rule and Colored
#: Objects, the figures that moved most between recipes, get 0.10.
TOLERANCE = {"ioi_heldout": 0.07, "ioi_worst_rule": 0.10, "ioi_train": 0.07, "co_heldout_top1": 0.10,
             "co_classic_top1": 0.10, "co_train_top1": 0.07, "articles_heldout": 0.07,
             "counting_heldout": 0.07, "induction_top1": 0.07}
#: The prompt sets the appendix measures on (its ``SEED`` values in ``book/measured/appendix.json``).
PROMPT_SETS = (12345, 1, 2)


def figures(card: pd.DataFrame) -> dict[str, float]:
    """The headline figures of one :func:`generalisation` table (plus the worst single held-out IOI rule)."""
    out = {}
    for name, (task, structure, col) in FIGURES.items():
        hit = card[(card["task"] == task) & (card["structure"] == structure)]
        if len(hit) != 1:
            raise ValueError(f"the card has no single row for {task!r} / {structure!r}")
        out[name] = float(hit[col].iloc[0])
    rules = card[(card["task"] == "ioi") & card["structure"].str.contains("=")]
    out["ioi_worst_rule"] = float(rules["accuracy"].min())
    return out


def mean_figures(model: Any, n: int = 200, prompt_sets: tuple[int, ...] = PROMPT_SETS) -> dict[str, float]:
    """:func:`figures` averaged over several prompt sets (the appendix's seeds)."""
    runs = [figures(generalisation(model, n=n, seed=s)) for s in prompt_sets]
    return {k: round(sum(r[k] for r in runs) / len(runs), 4) for k in runs[0]}


def compare(found: dict[str, float], reference: dict[str, float],
            tolerance: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per figure: the retrain's value, the reference's, their difference and whether it is within tolerance."""
    tolerance = TOLERANCE if tolerance is None else tolerance
    missing = sorted(set(tolerance) - set(found)) + sorted(set(tolerance) - set(reference))
    if missing:
        raise ValueError(f"figures missing: {missing}")
    rows = [{"figure": k, "retrain": found[k], "reference": reference[k], "difference": found[k] - reference[k],
             "tolerance": tol, "within": abs(found[k] - reference[k]) <= tol} for k, tol in tolerance.items()]
    return pd.DataFrame(rows)


def shipped_reference(path: str | None = None) -> dict[str, float]:
    """The shipped organism's figures: the means in ``book/measured/appendix.json`` (its three prompt sets)."""
    import json

    p = Path(path) if path else Path(__file__).resolve().parents[2] / "book" / "measured" / "appendix.json"
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: the reference figures come from the appendix's measurements")
    summary = json.loads(p.read_text())["summary"]
    return {k: summary[k]["mean"] for k in TOLERANCE}


def plot_spread(spread: pd.DataFrame, bars: dict[str, float] | None = None, ax: Any = None) -> Any:
    """The headline figures of several runs (one column per run, one row per figure) as dots, with each bar.

    The shipped run (the first column) is drawn larger; a figure's bar is a grey tick. Returns the axes.
    """
    import matplotlib.pyplot as plt

    bars = BARS if bars is None else bars
    runs = [c for c in spread.columns if c != "tolerance"]
    if not runs:
        raise ValueError("no runs to plot: the table needs one column per run")
    figs = list(spread.index)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(figs) + 1.2))
    for j, run in enumerate(runs):
        y = [i + (j - (len(runs) - 1) / 2) * 0.12 for i in range(len(figs))]
        ax.scatter(spread[run], y, s=60 if j == 0 else 25, label=run, zorder=3,
                   marker="D" if j == 0 else "o")
    for i, f in enumerate(figs):
        if f in bars:
            ax.plot([bars[f]] * 2, [i - 0.35, i + 0.35], color="grey", lw=2, zorder=2)
    ax.set_yticks(range(len(figs)), figs)
    ax.invert_yaxis()
    lo = max(0.0, min(float(spread[runs].min().min()), *(bars[f] for f in figs if f in bars)) - 0.05)
    ax.set(xlabel="accuracy (mean of the three prompt sets); grey tick: the bar", xlim=(lo, 1.01),
           title="The shipped organism and its retrains, figure by figure")
    ax.legend(fontsize=8, loc="lower left")
    return ax


#: Where the retrains' figures are kept (the appendix shows them beside the shipped organism's).
RETRAINS_JSON = Path(__file__).resolve().parent / "retrains.json"


def record_retrain(name: str, model_dir: str, found: dict[str, float], path: Path = RETRAINS_JSON) -> None:
    """Add (or replace) one retrain's figures, with its training log's seed, time and machine."""
    import json
    import platform

    log_path = Path(model_dir) / "train_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}
    data = json.loads(path.read_text()) if path.exists() else {"tolerance": TOLERANCE, "retrains": []}
    data["tolerance"] = TOLERANCE
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    entry = {"name": name, "seed": log.get("seed"), "dropout": log.get("config", {}).get("attn_pdrop", 0) > 0,
             "train_seconds": log.get("train_seconds"), "torch": log.get("torch"), "cpu": cpu,
             "cpu_capability": log.get("cpu_capability"),
             "prompt_sets": list(PROMPT_SETS), "figures": found}
    data["retrains"] = [r for r in data["retrains"] if r["name"] != name] + [entry]
    path.write_text(json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.organism.card DIR``: does the retrained organism in DIR reproduce the model card?"""
    import argparse

    from ..loading import load_model

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("model", help="a retrained organism's directory (python -m helpers.organism --out DIR)")
    ap.add_argument("--n", type=int, default=200, help="prompts per task and structure")
    ap.add_argument("--record", metavar="NAME", default=None,
                    help="also record the figures under NAME in helpers/organism/retrains.json")
    args = ap.parse_args(argv)
    found = mean_figures(load_model(args.model), n=args.n)
    table = compare(found, shipped_reference())
    print(table.round(4).to_string(index=False))
    if args.record:
        record_retrain(args.record, args.model, found)
    ok = bool(table["within"].all())
    print("reproduces the model card within tolerance" if ok else "OUTSIDE the stated tolerance: "
          + ", ".join(table.loc[~table["within"], "figure"]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
