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
