"""Metrics: what a patched run is scored by, read off the logits at the answer positions.

A metric maps logits [K, B, V] (K variants of B prompts) to [K] (or [K, B] when not reduced). A
:class:`Metric` also says which vocabulary ids it reads: the sweep then unembeds only those columns
(the others are left 0), which on GPT-2 saves a d_model x 50257 product per patched row. Any plain
function of the logits works as a metric too; it gets every column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..checks import check_token_ids

MetricFn = Callable[[torch.Tensor], torch.Tensor]  # a Metric, or any function of the logits [K, B, V]


@dataclass(frozen=True)
class Metric:
    """A function of the logits [K, B, V] -> [K] or [K, B], and the token ids it reads (None: all)."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    tokens: torch.Tensor | None = None

    def __post_init__(self) -> None:
        t = self.tokens
        if t is not None and not (isinstance(t, torch.Tensor) and t.ndim == 1 and not t.is_floating_point()):
            raise ValueError(f"Metric.tokens must be a 1-D tensor of token ids, got {t!r}")

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return self.fn(logits)


def metric_tokens(metric: MetricFn) -> torch.Tensor | None:
    """The token ids a metric reads, or None when it may read every column (a plain function)."""
    return metric.tokens if isinstance(metric, Metric) else None


def logit_diff_metric(answer: torch.Tensor, distractor: torch.Tensor, reduce: bool = True) -> Metric:
    """logit(answer) − logit(distractor) per prompt; averaged over prompts when ``reduce``.

    ``distractor`` is [B] (one per prompt) or [B, k]: then the mean logit of the k rivals is subtracted
    (e.g. the two other listed colors of a Colored Objects prompt).
    """
    answer, distractor = torch.as_tensor(answer), torch.as_tensor(distractor)
    _not_empty(answer)
    if distractor.dim() not in (1, 2) or distractor.shape[0] != answer.reshape(-1).shape[0]:
        raise ValueError(f"distractor must be [B] or [B, k] with B = {answer.reshape(-1).shape[0]}, "
                         f"got shape {tuple(distractor.shape)}")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        _in_vocab(logits, answer, distractor)
        idx = torch.arange(logits.shape[1])
        if distractor.dim() == 2:
            rival = logits[:, idx[:, None], distractor].mean(-1)
        else:
            rival = logits[:, idx, distractor]
        diff = logits[:, idx, answer] - rival
        return diff.mean(-1) if reduce else diff
    return Metric(metric, torch.unique(torch.cat([answer.reshape(-1), distractor.reshape(-1)])))


def answer_logit_metric(answer: torch.Tensor, reduce: bool = True) -> Metric:
    """The answer's logit above the mean logit of the vocabulary, per prompt (averaged when ``reduce``).

    Used for knockouts (:func:`helpers.circuits.knockout_effects`): how much a head helps the answer
    itself, whatever happens to its rivals. It reads every column (the mean), so ``tokens`` is None.
    """
    answer = torch.as_tensor(answer).reshape(-1)
    _not_empty(answer)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        _in_vocab(logits, answer)
        idx = torch.arange(logits.shape[1])
        diff = logits[:, idx, answer] - logits.mean(-1)
        return diff.mean(-1) if reduce else diff
    return Metric(metric)


def candidates_metric(candidates: torch.Tensor, pool: torch.Tensor, reduce: bool = True) -> Metric:
    """Mean logit of each prompt's in-context candidates minus the mean logit of the rest of ``pool``.

    ``candidates`` [B, k]: e.g. the two names of an IOI prompt, or the three listed colors of a Colored
    Objects prompt; ``pool`` [N]: all tokens of that kind (every name, every color). It measures whether
    the model answers *from the context* (any listed color) rather than which candidate it picks.
    """
    candidates, pool = torch.as_tensor(candidates), torch.as_tensor(pool).reshape(-1)
    _not_empty(candidates)
    if candidates.dim() != 2:
        raise ValueError(f"candidates must be [B, k], got shape {tuple(candidates.shape)}")
    others = ~(pool[None, :, None] == candidates[:, None, :]).any(-1)  # [B, N]: pool tokens not in the prompt
    if not others.any(-1).all():
        raise ValueError("every prompt needs at least one pool token that is not among its candidates")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        _in_vocab(logits, candidates, pool)
        idx = torch.arange(logits.shape[1])
        cand = logits[:, idx[:, None], candidates].mean(-1)
        m = others.to(logits.device)
        rest = (logits[:, :, pool] * m).sum(-1) / m.sum(-1)
        diff = cand - rest
        return diff.mean(-1) if reduce else diff
    return Metric(metric, torch.unique(torch.cat([candidates.reshape(-1), pool])))


def _not_empty(ids: torch.Tensor) -> None:
    if ids.numel() == 0:
        raise ValueError("empty batch: a metric needs at least one prompt's answer")


def _in_vocab(logits: torch.Tensor, *ids: torch.Tensor) -> None:
    """Token ids inside the logits' vocabulary (an id past it would fail in torch, or read garbage)."""
    for t in ids:
        check_token_ids(t, logits.shape[-1], "the metric's token ids")


def recovery(patched: torch.Tensor, base: float | torch.Tensor, target: float | torch.Tensor,
             min_gap: float = 1e-6) -> torch.Tensor:
    """Fraction of the way from the base metric to the target metric: 0 = unchanged, 1 = fully restored."""
    gap = torch.as_tensor(target) - torch.as_tensor(base)
    if torch.as_tensor(gap).abs().min() < min_gap:
        raise ValueError("clean and corrupted metrics are equal: nothing to recover")
    return (patched - base) / gap
