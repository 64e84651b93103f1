"""Knockouts: heads ablated (usually to their mean over a reference distribution) and what changes."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..hooks import capture, check_tokens, logits_at
from ..patching import MetricFn, Site, patch_hooks, patch_sweep
from .head_sets import heads_variant


@torch.no_grad()
def cache_with_patch(model, tokens: torch.Tensor, hooks: Sequence[str], variant: Sequence[Site],
                     source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The named activations of a run of ``tokens`` with ``variant`` patched from ``source`` (e.g. a knockout)."""
    check_tokens(tokens)
    return capture(model, tokens, hooks, patch_hooks([variant], source, tokens.shape[0], tokens.device))


@torch.no_grad()
def knockout_effects(model, tokens: torch.Tensor, mean_source: dict[str, torch.Tensor], metric: MetricFn,
                     pos) -> torch.Tensor:
    """Relative change of ``metric`` when each head is mean-ablated (all positions) -> [L, H].

    ``mean_source``: per-hook means (``patching.mean_activations`` of a reference distribution's
    ``hook_z`` cache). With a metric such as :func:`helpers.patching.candidates_metric`, negative values
    mark the heads that bring the answer candidates to the answer position ("carriers").
    """
    base = metric(logits_at(model, tokens, pos)[None]).item()
    if abs(base) < 1e-6:
        raise ValueError("the metric is zero on the unablated model: no relative change to report")
    L, H = model.cfg.n_layers, model.cfg.n_heads
    out = patch_sweep(model, tokens, mean_source,
                      [heads_variant(model, [(i, j)]) for i in range(L) for j in range(H)], metric, pos,
                      progress=False)
    return ((out - base) / base).view(L, H)


@torch.no_grad()
def circuit_criteria(model, tokens: torch.Tensor, mean_source: dict[str, torch.Tensor], heads: Sequence,
                     metric: MetricFn, pos) -> dict[str, float]:
    """Chapter 4's three checks of a head circuit C, every other head mean-ablated, in one batched sweep.

    ``faithfulness`` F(C)/F(M); ``incompleteness``: the largest |F(C minus v) - F(M minus v)| / F(M) over the
    circuit's heads v (0: removing a head hurts circuit and model alike); ``minimality``: the smallest
    |F(C minus v) - F(C)| / |F(C)| (a head the circuit could do without scores near 0).
    """
    from .head_sets import complement_variant
    heads = [tuple(h) for h in heads]
    variants = [[], complement_variant(model, heads)]
    for v in heads:
        variants += [complement_variant(model, [h for h in heads if h != v]), heads_variant(model, [v])]
    out = patch_sweep(model, tokens, mean_source, variants, metric, pos, progress=False).tolist()
    F_M, F_C = out[0], out[1]
    rows = [(out[2 + 2 * i], out[3 + 2 * i]) for i in range(len(heads))]
    return {"faithfulness": F_C / F_M,
            "incompleteness": max((abs(c - m) / abs(F_M) for c, m in rows), default=float("nan")),
            "minimality": min((abs(c - F_C) / abs(F_C) for c, _ in rows), default=float("nan"))}
