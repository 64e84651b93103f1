"""The bridge path of the sweep: patched runs on the TransformerBridge's own blocks, resumed mid-model.

For any site and any architecture. A chunk of variants that all first touch the model at the same
point resumes from the base run's cached residual stream there instead of recomputing the layers
below; a chunk that patches only the last MLP runs it at the answer positions alone. Resuming is
checked once per sweep against the full forward and dropped if it differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from ..hooks import capture, logits_at, unembed_at
from .sites import Variant, patch_hook, variant_masks

_BLOCK_SITE = re.compile(r"^blocks\.(\d+)\.(mlp\.)?")
Start = tuple[int, int]  # (layer, 0) before the block, (layer, 1) before its MLP; (-1, 0) a full forward


def bridge_start(variant: Variant) -> Start:
    """Where a variant first touches the model: (layer, 0) before the block, (layer, 1) before its MLP.

    A variant with a site outside the blocks (embeddings) or no site at all starts at (-1, 0): a full
    forward pass.
    """
    first: Start | None = None
    for site in variant:
        m = _BLOCK_SITE.match(site.hook)
        if m is None:
            return (-1, 0)
        here = (int(m.group(1)), 1 if m.group(2) else 0)
        first = here if first is None else min(first, here)
    return first if first is not None else (-1, 0)


@torch.no_grad()
def resume_logits_at(model, resid: torch.Tensor, start: Start, K: int, pos: torch.Tensor,
                     fwd_hooks: Sequence[tuple[str, Callable]] = ()) -> torch.Tensor:
    """Run the bridge's blocks from the cached residual at ``start`` (repeated K times) to the logits at ``pos``."""
    layer, at_mlp = start
    x = resid.repeat(K, *([1] * (resid.ndim - 1)))
    with model.hooks(fwd_hooks=list(fwd_hooks)):
        if at_mlp:
            block = model.blocks[layer]
            x = x + block.mlp(block.ln2(x))
            layer += 1
        for block in model.blocks[layer:]:
            out = block(x)
            x = out[0] if isinstance(out, tuple) else out
        x = model.ln_final(x)
    return unembed_at(model, x, pos)


def resume_states(model, tokens: torch.Tensor, starts: set[Start]) -> dict[Start, torch.Tensor]:
    """Residual stream of the base run before each start point; empty if resuming is not exact here."""
    starts = {s for s in starts if s[0] >= 0}
    if not starts:
        return {}
    names = {s: f"blocks.{s[0]}.hook_resid_{'mid' if s[1] else 'pre'}" for s in starts}
    acts = capture(model, tokens, sorted(set(names.values())))
    states = {s: acts[n] for s, n in names.items()}
    # Self-check on the deepest and the shallowest start: resuming must reproduce the full forward.
    p = torch.full((tokens.shape[0],), tokens.shape[1] - 1, dtype=torch.long)
    full = logits_at(model, tokens, p)
    try:
        for s in (min(states), max(states)):
            if not torch.allclose(resume_logits_at(model, states[s], s, 1, p), full, atol=1e-4):
                return {}
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError):  # blocks not callable alone
        return {}
    return states


def bridge_chunk(model, tokens: torch.Tensor, source: dict[str, torch.Tensor], chunk: list[Variant],
                 start: Start, resume: dict, p: torch.Tensor, shapes: dict) -> torch.Tensor:
    """Logits [K*B, V] of one chunk by the bridge: resumed mid-model where possible, else in full."""
    B, K = tokens.shape[0], len(chunk)
    masks = variant_masks(chunk, shapes, tokens.device)
    if start == (model.cfg.n_layers - 1, 1) and start in resume:
        # Only the last MLP is left, and it acts position by position: run it at the answers only.
        rows = torch.arange(B)
        hooks = [(name, patch_hook(masks[name][:, p][:, :, None],
                                   source[name][rows if source[name].shape[0] == B else 0, p][:, None],
                                   K, B, per_prompt=True)) for name in masks]
        resid = resume[start][rows, p][:, None]
        return resume_logits_at(model, resid, start, K, torch.zeros_like(p), hooks)
    hooks = [(name, patch_hook(masks[name], source[name], K, B)) for name in masks]
    if start in resume:
        return resume_logits_at(model, resume[start], start, K, p, hooks)
    return logits_at(model, tokens.repeat(K, 1), p, hooks)
