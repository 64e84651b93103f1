"""Path patching (Wang et al., 2022): how much of a sender head's effect travels along one path.

The path ends at the logits directly, or at a receiver head's query, key or value. Two batched passes,
with K sender variants stacked on the batch axis (the patching engine's hooks):

1. the *base* prompts (the clean ones) with each variant's senders given their *source* activations
   (the ABC-corrupted ones) and every other head frozen to its base value; the receivers' q/k/v
   inputs are recorded, and the forward stops there (for the logits as receiver, this pass is the
   answer);
2. the base prompts again, with each receiver's q, k or v replaced by the value recorded for that
   variant; everything downstream recomputes; the metric is read off the logits at the answer position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..hooks import as_positions, capture, check_tokens, logits_at
from ..patching import MetricFn, Site, freeze_hooks, patch_hooks
from .head_sets import Head, check_heads, heads_variant, z_hooks


@torch.no_grad()
def path_patch(model, base_tokens: torch.Tensor, source_tokens: torch.Tensor,
               senders: Sequence[Sequence[Head]], metric: MetricFn, pos=-1,
               receivers: Sequence[Head] | None = None, receiver_input: str = "q",
               receiver_pos: int | None = None, freeze_mlps: bool = False,
               chunk_size: int = 32, progress: bool = False) -> torch.Tensor:
    """Metric after path patching each sender variant -> receivers (None: the logits) -> [len(senders)].

    ``receiver_input`` is ``"q"``, ``"k"`` or ``"v"``; ``receiver_pos`` an int position (None: all).
    With ``freeze_mlps`` the MLPs are frozen too in pass 1 (the paper lets them recompute).
    """
    check_tokens(base_tokens, source_tokens)
    if len(senders) == 0:
        raise ValueError("no sender variants to patch")
    for variant in senders:
        check_heads(model, variant, "senders")
    if receiver_input not in ("q", "k", "v"):
        raise ValueError(f"receiver_input must be 'q', 'k' or 'v', got {receiver_input!r}")
    if receivers is not None:
        if len(receivers) == 0:
            raise ValueError("receivers is empty: pass None to path-patch to the logits")
        check_heads(model, receivers, "receivers")
        first_receiver = min(r[0] for r in receivers)
        late = [s for v in senders for s in v if s[0] >= first_receiver]
        if late:
            raise ValueError(f"senders {late} are not upstream of the earliest receiver layer {first_receiver}")
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    mlps = [f"blocks.{i}.hook_mlp_out" for i in range(model.cfg.n_layers)] if freeze_mlps else []
    base = capture(model, base_tokens, z_hooks(model) + mlps)
    source = capture(model, source_tokens, z_hooks(model))
    results = []
    starts = range(0, len(senders), chunk_size)
    for start in tqdm(starts, desc="path patching", disable=not progress or len(starts) == 1):
        chunk = senders[start:start + chunk_size]
        K = len(chunk)
        # Pass 1: every head (and MLP) frozen to its base value, then the senders written from the source.
        hooks = freeze_hooks(base, K) + patch_hooks([heads_variant(model, v) for v in chunk], source, B,
                                                    base_tokens.device)
        tokens = base_tokens.repeat(K, 1)
        if receivers is not None:
            names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
            recorded = capture(model, tokens, names, hooks)  # stops after the last receiver
            rp = slice(None) if receiver_pos is None else receiver_pos
            sites = [Site(f"blocks.{layer}.attn.hook_{receiver_input}", (rp, h)) for layer, h in receivers]
            hooks = patch_hooks([sites], recorded, K * B, base_tokens.device)  # pass 2: K*B rows, one variant
        results.append(metric(logits_at(model, tokens, p, hooks).view(K, B, -1)))
    return torch.cat(results)

