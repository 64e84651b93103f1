"""Sites and variants: what a patch writes, and the hooks that write it for K variants at once.

A *site* is a slice of one hooked activation (``blocks.3.attn.hook_z[:, pos, head]``); a *variant*
is a set of sites patched together in one run (one head, one neuron, a whole layer, a circuit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Index = tuple  # index into an activation after its batch axis: ints and slices


@dataclass(frozen=True)
class Site:
    """``hook`` is a hook name, ``index`` indexes the activation after the batch axis."""

    hook: str
    index: Index


Variant = Sequence[Site]


def head_variants(n_layers: int, n_heads: int, n_pos: int | None = None,
                  layers: Sequence[int] | None = None) -> tuple[list[list[Site]], tuple[int, ...]]:
    """One variant per head (all positions), or per (head, position) when ``n_pos`` is given.

    Returns the variants and the grid shape ``(n_layers, n_heads[, n_pos])`` to reshape results to.
    """
    layers = list(range(n_layers)) if layers is None else list(layers)
    out: list[list[Site]] = []
    for layer in layers:
        for h in range(n_heads):
            name = f"blocks.{layer}.attn.hook_z"
            if n_pos is None:
                out.append([Site(name, (slice(None), h))])
            else:
                out.extend([Site(name, (p, h))] for p in range(n_pos))
    return out, (len(layers), n_heads) + (() if n_pos is None else (n_pos,))


def layer_variants(n_layers: int, kinds: Sequence[str] = ("attn_out", "mlp_out"),
                   n_pos: int | None = None) -> tuple[list[list[Site]], tuple[int, ...]]:
    """One variant per (kind, layer[, position]); kinds are ``resid_pre``, ``attn_out``, ``mlp_out``…"""
    out: list[list[Site]] = []
    for kind in kinds:
        for layer in range(n_layers):
            name = f"blocks.{layer}.hook_{kind}"
            if n_pos is None:
                out.append([Site(name, (slice(None),))])
            else:
                out.extend([Site(name, (p,))] for p in range(n_pos))
    return out, (len(kinds), n_layers) + (() if n_pos is None else (n_pos,))


def neuron_variants(layer: int, d_mlp: int, pos: int | None = None) -> tuple[list[list[Site]], tuple[int]]:
    """One variant per MLP neuron of ``layer`` (at all positions, or at ``pos``)."""
    p = slice(None) if pos is None else pos
    name = f"blocks.{layer}.mlp.hook_post"
    return [[Site(name, (p, n))] for n in range(d_mlp)], (d_mlp,)


def mean_activations(acts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean over the batch (for mean-ablation): each value keeps a batch axis of size 1."""
    return {k: v.mean(0, keepdim=True) for k, v in acts.items()}


def variant_masks(chunk: Sequence[Variant], shapes: dict[str, torch.Size],
                  device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Per hook, a boolean mask [K, ...] (the activation's shape after its batch axis) of each variant's sites."""
    masks: dict[str, torch.Tensor] = {}
    for k, variant in enumerate(chunk):
        for site in variant:
            if site.hook not in shapes:
                raise KeyError(f"no source activation for hook {site.hook!r}; cache it first")
            if site.hook not in masks:
                masks[site.hook] = torch.zeros((len(chunk),) + tuple(shapes[site.hook][1:]),
                                               dtype=torch.bool, device=device)
            masks[site.hook][(k,) + tuple(site.index)] = True
    return masks


def patch_hook(mask: torch.Tensor, src: torch.Tensor, K: int, B: int, per_prompt: bool = False) -> Callable:
    """A hook writing ``src`` where ``mask`` [K, ...] is set, in each of the K batch slices of B prompts.

    ``src`` is [B, ...] or [1, ...] (a mean). With ``per_prompt`` the mask is already [K, B, ...] (one
    slice per prompt, e.g. gathered at each prompt's answer position) instead of shared by the B prompts.
    """
    m = mask if per_prompt else mask[:, None]

    def hook(act, hook):
        a = act.reshape((K, B) + tuple(act.shape[1:]))
        a = torch.where(m, src[None].to(act.dtype), a)
        return a.reshape(act.shape)
    return hook


def patch_hooks(chunk: Sequence[Variant], source: dict[str, torch.Tensor], B: int,
                device: torch.device | str | None = None) -> list[tuple[str, Callable]]:
    """The hooks that run K = len(chunk) variants stacked on the batch axis, each with its own sites."""
    masks = variant_masks(chunk, {k: v.shape for k, v in source.items()}, device)
    return [(name, patch_hook(masks[name], source[name], len(chunk), B)) for name in masks]


def freeze_hooks(cache: dict[str, torch.Tensor], K: int = 1) -> list[tuple[str, Callable]]:
    """Hooks that replace each cached activation [B, ...] by its cached value, in each of K stacked copies.

    E.g. freeze the MLPs of a base run while a head is steered, or every head but the senders in
    path patching.
    """
    return [(name, patch_hook(torch.ones((1,) + tuple(value.shape[1:]), dtype=torch.bool, device=value.device),
                              value, K, value.shape[0])) for name, value in cache.items()]
