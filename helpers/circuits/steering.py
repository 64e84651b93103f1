"""Steering: set some heads' attention where another task's heads attend, and see what the model says."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..hooks import as_positions, check_tokens, run_with_capture
from .head_sets import Head, check_heads


@torch.no_grad()
def run_with_attention(model, tokens: torch.Tensor, heads: Sequence[Head], query_pos, key_pos: torch.Tensor,
                       pos=None, record: Sequence[str] = (), extra_hooks: Sequence[tuple[str, Callable]] = (),
                       strength: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run with the given heads' attention at ``query_pos`` set uniformly on ``key_pos`` [B, k] (per prompt).

    ``strength`` α in [0, 1] mixes: the row becomes (1 − α)·its own pattern + α·uniform on ``key_pos``.

    Merullo et al.'s intervention: make some heads attend where they do in another task. Returns the
    logits at ``pos`` (default: ``query_pos``) [B, V] and the ``record``-ed activations of the run.
    ``extra_hooks``: more (name, hook) pairs for the same run, e.g. to freeze the MLPs.
    """
    check_heads(model, heads, "heads")
    check_tokens(tokens)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}")
    B, T = tokens.shape
    q = as_positions(query_pos, B, T)
    key_pos = torch.as_tensor(key_pos, device=tokens.device)
    if key_pos.dim() == 1:
        key_pos = key_pos[:, None]
    if key_pos.shape[0] != B or (key_pos > q[:, None]).any() or (key_pos < 0).any():
        raise ValueError("key_pos must be [batch, k] positions at or before each query position")
    rows = torch.arange(B, device=tokens.device)
    row = torch.zeros(B, T, device=tokens.device)
    row[rows[:, None], key_pos] = 1.0 / key_pos.shape[1]  # repeated positions would add up: dedupe first
    row = row / row.sum(-1, keepdim=True)

    def setter(layer_heads: list[int]):
        def hook(pattern, hook):
            pattern = pattern.clone()
            for h in layer_heads:
                pattern[rows, h, q] = (1 - strength) * pattern[rows, h, q] + strength * row.to(pattern.dtype)
            return pattern
        return hook

    by_layer: dict[int, list[int]] = {}
    for layer, h in heads:
        by_layer.setdefault(layer, []).append(h)
    hooks = [(f"blocks.{layer}.attn.hook_pattern", setter(hs)) for layer, hs in by_layer.items()]
    p = q if pos is None else as_positions(pos, B, T)
    logits, store = run_with_capture(model, tokens, record, hooks + list(extra_hooks))
    return logits[rows, p], store
