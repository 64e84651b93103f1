"""Scoring found circuits against a known one, and methods against each other (edge level).

AUROC over a whole threshold sweep (from scores, or from the (FPR, TPR) points of a method run at several
thresholds, as ACDC is), precision and recall at one threshold, rank correlation and top-k overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _check(scores: torch.Tensor, truth: torch.Tensor) -> None:
    if scores.shape != truth.shape or scores.ndim != 1:
        raise ValueError(f"scores and truth must be 1-D and of one shape, got {tuple(scores.shape)} and "
                         f"{tuple(truth.shape)}")
    n_pos = int(truth.sum())
    if n_pos == 0 or n_pos == truth.numel():
        raise ValueError("the truth needs both edges in the circuit and edges outside it")


def auroc(scores: torch.Tensor, truth: torch.Tensor) -> float:
    """Area under the ROC curve of ranking edges by ``scores`` against the boolean ``truth``; ties count 1/2.

    The chance that a true edge scores above a false one (Mann-Whitney).
    """
    _check(scores, truth)
    s = scores.double()
    pos, neg = s[truth.bool()], s[~truth.bool()]
    greater = (pos[:, None] > neg[None]).double().sum()
    ties = (pos[:, None] == neg[None]).double().sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def roc_points(kept: Sequence[torch.Tensor], truth: torch.Tensor) -> list[tuple[float, float]]:
    """(false-positive rate, true-positive rate) of each kept-edge mask (one per threshold), with (0,0) and (1,1)."""
    t = truth.bool()
    pts = [(0.0, 0.0), (1.0, 1.0)]
    for k in kept:
        k = k.bool()
        pts.append((float((k & ~t).sum() / (~t).sum()), float((k & t).sum() / t.sum())))
    return sorted(set(pts))


def auroc_from_points(points: list[tuple[float, float]]) -> float:
    """Area under the ROC curve through ``points`` (trapezoids; the running maximum TPR at each FPR)."""
    pts = sorted(points)
    area, best, x0, y0 = 0.0, 0.0, 0.0, 0.0
    for x, y in pts:
        best = max(best, y)
        area += (x - x0) * (y0 + best) / 2
        x0, y0 = x, best
    return area


def precision_recall(kept: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """Precision and recall of the kept edges against the truth (precision 0 when nothing is kept)."""
    k, t = kept.bool(), truth.bool()
    tp = int((k & t).sum())
    return (tp / int(k.sum()) if k.any() else 0.0), tp / int(t.sum())


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two score vectors (average ranks for ties)."""
    if a.shape != b.shape or a.numel() < 3:
        raise ValueError("need two score vectors of one shape with at least 3 entries")

    def ranks(x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        r = torch.empty_like(x)
        order = x.argsort()
        r[order] = torch.arange(len(x), dtype=torch.double)
        for v in x.unique():  # average ranks of ties
            m = x == v
            if m.sum() > 1:
                r[m] = r[m].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp(min=1e-12))


def topk_overlap(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Share of the ``k`` highest-scoring edges of ``a`` that are among the ``k`` highest of ``b``."""
    if not 1 <= k <= a.numel():
        raise ValueError(f"k must lie in [1, {a.numel()}], got {k}")
    ta, tb = set(a.topk(k).indices.tolist()), set(b.topk(k).indices.tolist())
    return len(ta & tb) / k
