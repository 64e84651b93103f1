"""The model card's figures: each task on training structures and on held-out structures, rule by rule.

A held-out *rule* never occurs in training (the "met" join of IOI, a Colored Objects question
phrasing, a counting frame …), so its accuracy measures generalisation to a structure the model has
never seen, not only to new compositions of seen parts.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..tasks import articles, colored_objects, counting, ioi, make
from ..tasks.evaluate import evaluate_batch, evaluate_induction

#: IOI rules measured one at a time (the others drawn from the training rules).
IOI_RULES = [{"join": "met"}, {"gap": 2}, {"distractor": "in_gap"}, {"ending": "sent"}, {"ending": "showed"},
             {"opening": "sub:As soon as"}, {"opening": "adv:That evening"}, {"opening": "scene:morning"}]


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
