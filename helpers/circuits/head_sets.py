"""Heads and sets of heads: names, checks, and the patching variants that write a set of heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..patching import Site

Head = tuple[int, int]  # (layer, head)


def check_heads(model, heads: Sequence[Head], what: str) -> None:
    """A clear ValueError if a head is not a (layer, head) of ``model``; ``what`` names the argument."""
    L, H = model.cfg.n_layers, model.cfg.n_heads
    for hd in heads:
        if len(hd) != 2 or not (0 <= hd[0] < L and 0 <= hd[1] < H):
            raise ValueError(f"{what}: head {hd!r} is not a (layer, head) of this model "
                             f"({L} layers x {H} heads)")


def head_name(head: Head) -> str:
    """``L1H6``."""
    return f"L{head[0]}H{head[1]}"


def parse_head(name: str) -> Head:
    """``"L1H6"`` -> (1, 6), the inverse of :func:`head_name`."""
    layer, head = (int(x) for x in name[1:].split("H"))
    return layer, head


def z_hooks(model) -> list[str]:
    """Names of every layer's ``hook_z`` (the per-head outputs before W_O)."""
    return [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]


def heads_variant(model, heads: Sequence[Head]) -> list[Site]:
    """Sites of the given heads (all positions): one variant."""
    check_heads(model, heads, "heads")
    return [Site(f"blocks.{layer}.attn.hook_z", (slice(None), h)) for layer, h in heads]


def complement_variant(model, keep: Sequence[Head]) -> list[Site]:
    """Sites of every head *not* in ``keep`` (all positions): one variant that ablates the rest."""
    check_heads(model, keep, "circuit")
    keep_set = {tuple(h) for h in keep}
    return [Site(f"blocks.{layer}.attn.hook_z", (slice(None), h))
            for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)
            if (layer, h) not in keep_set]


def top_heads(scores: torch.Tensor, n: int) -> list[Head]:
    """The ``n`` heads with the largest score ([L, H]), best first."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be [n_layers, n_heads], got shape {tuple(scores.shape)}")
    if not 1 <= n <= scores.numel():
        raise ValueError(f"n must lie in [1, {scores.numel()}], got {n}")
    idx = scores.flatten().topk(n).indices.tolist()
    return [divmod(i, scores.shape[1]) for i in idx]


def overlap(a: Sequence[Head], b: Sequence[Head]) -> dict[str, float]:
    """How much two head sets share: |a ∩ b| / |b| (share of b's heads also in a), / |a|, and Jaccard."""
    sa, sb = {tuple(h) for h in a}, {tuple(h) for h in b}
    if not sa or not sb:
        raise ValueError("both circuits need at least one head to compare them")
    inter = len(sa & sb)
    return {"shared": inter, "of_b": inter / len(sb), "of_a": inter / len(sa), "jaccard": inter / len(sa | sb)}


def _spread(stats: dict[str, torch.Tensor]) -> dict[str, tuple]:
    """Each statistic over the draws: (expected value, 2.5% and 97.5% quantiles)."""
    return {k: (v.mean().item(), v.quantile(0.025).item(), v.quantile(0.975).item()) for k, v in stats.items()}


def random_overlap(n_a: int, n_b: int, n_heads: int, draws: int = 10000, seed: int = 0) -> dict[str, tuple]:
    """The overlap of two random head sets of sizes ``n_a`` and ``n_b`` out of ``n_heads``: the baseline.

    Returns, for ``of_a`` (|a ∩ b| / |a|) and ``jaccard``, (expected value, 2.5% and 97.5% quantiles)
    over ``draws`` pairs of sets drawn uniformly without replacement.
    """
    if not (1 <= n_a <= n_heads and 1 <= n_b <= n_heads):
        raise ValueError(f"set sizes must lie in [1, {n_heads}], got {n_a} and {n_b}")
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(draws, n_heads, generator=g).argsort(-1) < n_a  # [draws, n_heads] membership
    b = torch.rand(draws, n_heads, generator=g).argsort(-1) < n_b
    inter = (a & b).sum(-1).float()
    stats = {"of_a": inter / n_a, "jaccard": inter / (a | b).sum(-1).float()}
    return _spread(stats)


def random_overlap_by_layer(a: Sequence[Head], b: Sequence[Head], n_layers: int, n_heads: int,
                            draws: int = 10000, seed: int = 0) -> dict[str, tuple]:
    """The overlap of random head sets with as many heads *in each layer* as ``a`` and ``b``: the baseline
    for two circuits that both sit in the same layers (which random sets over the whole model would miss).

    ``n_heads`` is the number of heads per layer. Returns what :func:`random_overlap` returns: for ``of_a``
    (|a ∩ b| / |a|) and ``jaccard``, (expected value, 2.5% and 97.5% quantiles) over ``draws`` pairs.
    """
    sa, sb = {tuple(h) for h in a}, {tuple(h) for h in b}
    if not sa or not sb:
        raise ValueError("both head sets need at least one head")
    bad = [h for h in sa | sb if len(h) != 2 or not (0 <= h[0] < n_layers and 0 <= h[1] < n_heads)]
    if bad:
        raise ValueError(f"heads {sorted(bad)} are not (layer, head) of {n_layers} layers x {n_heads} heads")
    g = torch.Generator().manual_seed(seed)
    inter = torch.zeros(draws)
    union = torch.zeros(draws)
    for layer in range(n_layers):
        ka, kb = sum(h[0] == layer for h in sa), sum(h[0] == layer for h in sb)
        ra = torch.rand(draws, n_heads, generator=g).argsort(-1) < ka  # [draws, n_heads] membership in this layer
        rb = torch.rand(draws, n_heads, generator=g).argsort(-1) < kb
        inter += (ra & rb).sum(-1)
        union += (ra | rb).sum(-1)
    stats = {"of_a": inter / len(sa), "jaccard": inter / union}
    return _spread(stats)
