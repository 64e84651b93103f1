"""Activation patching, batched: one engine for every sweep in the book.

A *site* is a slice of one hooked activation (``blocks.3.attn.hook_z[:, pos, head]``); a *variant*
is a set of sites patched together in one run (one head, one neuron, a whole layer, a circuit).
The engine runs the *base* prompts (usually the corrupted ones) with the *source* activations
(usually the clean cache, or a mean for ablations) written into each variant's sites.

Speed comes from four things (see ``tests/test_bench_patching.py``):
1. variants are stacked on the batch axis, K at a time, each batch slice with its own patch mask,
   so a sweep over N components costs about N/K forward passes instead of N;
2. each chunk resumes from the base run's cached residual stream just before its first patched
   site (the layers below are identical in every variant), e.g. a sweep over one MLP's neurons
   only recomputes that MLP and what follows it;
3. the forward stops at ``ln_final`` and only the metric's position is unembedded;
4. the clean/corrupted caches are computed once and reused.
:func:`patch_one_by_one` is the straightforward loop, kept as the reference the tests compare to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .device import auto_batch_size

TOKENS_PER_PASS_CPU = 4096  # default cap on variants x prompts x positions in one patched forward
TOKENS_PER_PASS_GPU = 65536
Index = tuple  # index into an activation after its batch axis: ints and slices


@dataclass(frozen=True)
class Site:
    """``hook`` is a hook name, ``index`` indexes the activation after the batch axis."""

    hook: str
    index: Index


Variant = Sequence[Site]
Metric = Callable[[torch.Tensor], torch.Tensor]  # logits [K, B, V] at the answer position -> [K] or [K, B]


class _StopForward(Exception):
    pass


# --------------------------------------------------------------------------- inputs

def check_tokens(base: torch.Tensor, source: torch.Tensor | None = None) -> None:
    """Clear errors for the usual mistakes: wrong rank, clean/corrupted prompts of different lengths."""
    if base.ndim != 2:
        raise ValueError(f"tokens must be [batch, pos], got shape {tuple(base.shape)}")
    if source is not None and source.shape != base.shape:
        raise ValueError(
            f"clean and corrupted prompts must tokenize to the same shape to be patched position by "
            f"position; got {tuple(source.shape)} and {tuple(base.shape)}. Use prompt pairs whose "
            "words are single tokens in the same places (the task generators ensure this)."
        )


def as_positions(pos: int | Sequence[int] | torch.Tensor, batch: int, n_pos: int) -> torch.Tensor:
    """Per-prompt answer positions as a long tensor [batch]; -1 means the last position."""
    p = torch.as_tensor(pos, dtype=torch.long)
    if p.ndim == 0:
        p = p.repeat(batch)
    if p.shape != (batch,):
        raise ValueError(f"need one answer position per prompt ({batch}), got shape {tuple(p.shape)}")
    p = torch.where(p < 0, p + n_pos, p)
    if (p < 0).any() or (p >= n_pos).any():
        raise ValueError(f"answer positions must lie in [0, {n_pos}), got {p.tolist()}")
    return p


@torch.no_grad()
def cache_activations(model, tokens: torch.Tensor, hooks: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run once and keep only the named activations (the clean cache of a sweep)."""
    names = set(hooks)
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(act, hook):  # hook.name may be the canonical name of an alias: key by ours
            store[name] = act.detach().clone()
        return keep

    model.run_with_hooks(tokens, fwd_hooks=[(n, keeper(n)) for n in names])
    missing = names - set(store)
    if missing:
        raise KeyError(f"hooks not found on this model: {sorted(missing)}")
    return store


def mean_activations(acts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean over the batch (for mean-ablation): each value keeps a batch axis of size 1."""
    return {k: v.mean(0, keepdim=True) for k, v in acts.items()}


# --------------------------------------------------------------------------- variants

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


# --------------------------------------------------------------------------- running

def _unembed_at(model, resid: torch.Tensor, pos: torch.Tensor, batch: int) -> torch.Tensor:
    """Logits at one position per prompt from the final normalised residual ([K*B, T, d])."""
    rows = torch.arange(resid.shape[0], device=resid.device)
    x = resid[rows, pos.to(resid.device).repeat(resid.shape[0] // batch)]
    return x @ model.W_U + model.b_U


def _forward_logits_at(model, tokens: torch.Tensor, pos: torch.Tensor, batch: int,
                       hooks: list[tuple[str, Callable]]) -> torch.Tensor:
    """Forward with ``hooks``, stopping at ln_final; logits only at ``pos`` -> [N, V]."""
    captured: dict[str, torch.Tensor] = {}

    def stop(act, hook):
        captured["x"] = act
        raise _StopForward

    try:
        model.run_with_hooks(tokens, fwd_hooks=hooks + [("ln_final.hook_normalized", stop)])
    except _StopForward:
        return _unembed_at(model, captured["x"], pos, batch)
    raise RuntimeError("ln_final.hook_normalized did not fire: this model cannot stop early")


def _masks_for(chunk: Sequence[Variant], shapes: dict[str, torch.Size],
               device: torch.device) -> dict[str, torch.Tensor]:
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


def _masked_hook(mask: torch.Tensor, src: torch.Tensor, K: int, B: int,
                 per_prompt: bool = False) -> Callable:
    """A hook writing ``src`` where ``mask`` [K, ...] is set, in each of the K batch slices.

    With ``per_prompt`` the mask is already [K, B, ...] (one slice per prompt, e.g. gathered at
    each prompt's answer position) instead of being shared by the B prompts.
    """
    m = mask if per_prompt else mask[:, None]

    def hook(act, hook):
        a = act.reshape((K, B) + tuple(act.shape[1:]))
        a = torch.where(m, src[None].to(act.dtype), a)
        return a.reshape(act.shape)
    return hook


# --------------------------------------------------------------------------- resuming mid-model
_BLOCK_SITE = re.compile(r"^blocks\.(\d+)\.(mlp\.)?")


def _start_of(variant: Variant) -> tuple[int, int]:
    """Where a variant first touches the model: (layer, 0) before the block, (layer, 1) before its MLP.

    A variant with a site outside the blocks (embeddings) or no site at all starts at (-1, 0): a full
    forward pass.
    """
    first: tuple[int, int] | None = None
    for site in variant:
        m = _BLOCK_SITE.match(site.hook)
        if m is None:
            return (-1, 0)
        here = (int(m.group(1)), 1 if m.group(2) else 0)
        first = here if first is None else min(first, here)
    return first if first is not None else (-1, 0)


def _resume_states(model, tokens: torch.Tensor, starts: set[tuple[int, int]]) -> dict:
    """Residual stream of the base run before each start point; empty if resuming is not exact here."""
    starts = {s for s in starts if s[0] >= 0}
    if not starts:
        return {}
    names = {s: f"blocks.{s[0]}.hook_resid_{'mid' if s[1] else 'pre'}" for s in starts}
    acts = cache_activations(model, tokens, sorted(set(names.values())))
    states = {s: acts[n] for s, n in names.items()}
    # Self-check on the deepest and the shallowest start: resuming must reproduce the full forward.
    B = tokens.shape[0]
    p = torch.full((B,), tokens.shape[1] - 1, dtype=torch.long)
    full = _forward_logits_at(model, tokens, p, B, [])
    try:
        for s in (min(states), max(states)):
            if not torch.allclose(_resume_logits_at(model, states[s], s, 1, p, B, []), full, atol=1e-4):
                return {}
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError):  # blocks not callable alone
        return {}
    return states


def _resume_logits_at(model, resid: torch.Tensor, start: tuple[int, int], K: int, pos: torch.Tensor,
                      batch: int, hooks: list[tuple[str, Callable]]) -> torch.Tensor:
    """Run from the cached residual at ``start`` (repeated K times) to the logits at ``pos``."""
    layer, at_mlp = start
    x = resid.repeat(K, *([1] * (resid.ndim - 1)))
    with model.hooks(fwd_hooks=hooks):
        if at_mlp:
            block = model.blocks[layer]
            x = x + block.mlp(block.ln2(x))
            layer += 1
        for block in model.blocks[layer:]:
            out = block(x)
            x = out[0] if isinstance(out, tuple) else out
        x = model.ln_final(x)
    return _unembed_at(model, x, pos, batch)


@torch.no_grad()
def logits_at(model, tokens: torch.Tensor, pos) -> torch.Tensor:
    """Unpatched logits at one position per prompt, by the same path as the sweep -> [B, V]."""
    check_tokens(tokens)
    p = as_positions(pos, tokens.shape[0], tokens.shape[1])
    return _forward_logits_at(model, tokens, p, tokens.shape[0], [])


@torch.no_grad()
def patch_sweep(model, base_tokens: torch.Tensor, source: dict[str, torch.Tensor],
                variants: Sequence[Variant], metric: Metric, pos=-1,
                chunk_size: int | None = None, progress: bool = True,
                skip_unpatched: bool = True) -> torch.Tensor:
    """Metric of every variant: base prompts run with ``source`` activations in the variant's sites.

    ``source[hook]`` is [B, ...] (e.g. the clean cache) or [1, ...] (a mean for ablation).
    ``metric`` maps logits [K, B, V] at ``pos`` to [K] (or [K, B]). Returns [len(variants), ...].
    With ``skip_unpatched`` each chunk resumes from the base run's residual stream just before its
    first patched site (checked once against a full forward; if they differ, full forwards are used).
    """
    check_tokens(base_tokens)
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    for name, act in source.items():
        if act.shape[0] not in (1, B):
            raise ValueError(f"source[{name!r}] has batch {act.shape[0]}, expected 1 or {B}")
    if len(variants) == 0:
        raise ValueError("no variants to patch")
    if chunk_size is None:
        per_item = 4 * T * model.cfg.d_model * (model.cfg.n_layers + 1) * 24
        chunk_size = max(1, auto_batch_size(per_item * B, base_tokens.device))
        # Past a few thousand tokens a pass is compute-bound on a CPU and bigger batches only cost
        # memory traffic (measured in chapter 2: 256 variants x 32 prompts per pass was slower than 16).
        tokens_per_pass = TOKENS_PER_PASS_GPU if base_tokens.device.type == "cuda" else TOKENS_PER_PASS_CPU
        chunk_size = min(chunk_size, 256, max(1, tokens_per_pass // (B * T)))
    shapes = {k: v.shape for k, v in source.items()}
    # Group variants by where they first touch the model, so each chunk resumes from the base run's
    # cached residual there instead of recomputing the layers below (they are the same in every slice).
    starts_at = [_start_of(v) for v in variants]
    order = sorted(range(len(variants)), key=lambda i: starts_at[i])
    resume = _resume_states(model, base_tokens, {starts_at[i] for i in order}) if skip_unpatched else {}
    chunks, i = [], 0
    while i < len(order):
        j = i
        while j < len(order) and j - i < chunk_size and starts_at[order[j]] == starts_at[order[i]]:
            j += 1
        chunks.append(order[i:j])
        i = j
    results: list[torch.Tensor | None] = [None] * len(variants)
    for idx in tqdm(chunks, desc="patching", disable=not progress or len(chunks) == 1):
        chunk = [variants[i] for i in idx]
        K = len(chunk)
        masks = _masks_for(chunk, shapes, base_tokens.device)
        start = starts_at[idx[0]]
        if start == (model.cfg.n_layers - 1, 1) and start in resume:
            # Only the last MLP is left, and it acts position by position: run it at the answers only.
            rows = torch.arange(B)
            hooks = [(name, _masked_hook(masks[name][:, p][:, :, None],
                                         source[name][rows if source[name].shape[0] == B else 0, p][:, None],
                                         K, B, per_prompt=True)) for name in masks]
            resid = resume[start][rows, p][:, None]
            logits = _resume_logits_at(model, resid, start, K, torch.zeros_like(p), B, hooks)
        elif start in resume:
            hooks = [(name, _masked_hook(masks[name], source[name], K, B)) for name in masks]
            logits = _resume_logits_at(model, resume[start], start, K, p, B, hooks)
        else:
            hooks = [(name, _masked_hook(masks[name], source[name], K, B)) for name in masks]
            logits = _forward_logits_at(model, base_tokens.repeat(K, 1), p, B, hooks)
        for i, value in zip(idx, metric(logits.view(K, B, -1)), strict=True):
            results[i] = value
    return torch.stack(results)  # type: ignore[arg-type]


@torch.no_grad()
def patch_one_by_one(model, base_tokens: torch.Tensor, source: dict[str, torch.Tensor],
                     variants: Sequence[Variant], metric: Metric, pos=-1,
                     progress: bool = False) -> torch.Tensor:
    """The straightforward reference: one full forward pass per variant, standard hooks."""
    check_tokens(base_tokens)
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    rows = torch.arange(B)
    out = []
    for variant in tqdm(variants, desc="patching (loop)", disable=not progress):
        def make_hook(site: Site):
            def hook(act, hook):
                act = act.clone()
                src = source[site.hook].expand_as(act)
                act[(slice(None),) + tuple(site.index)] = src[(slice(None),) + tuple(site.index)]
                return act
            return hook
        logits = model.run_with_hooks(base_tokens, fwd_hooks=[(s.hook, make_hook(s)) for s in variant])
        out.append(metric(logits[rows, p][None]))
    return torch.cat(out)


# --------------------------------------------------------------------------- metrics

def logit_diff_metric(answer: torch.Tensor, distractor: torch.Tensor, reduce: bool = True) -> Metric:
    """logit(answer) − logit(distractor) per prompt; averaged over prompts when ``reduce``."""
    answer, distractor = torch.as_tensor(answer), torch.as_tensor(distractor)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(logits.shape[1])
        diff = logits[:, idx, answer] - logits[:, idx, distractor]
        return diff.mean(-1) if reduce else diff
    return metric


def recovery(patched: torch.Tensor, base: float | torch.Tensor, target: float | torch.Tensor,
             min_gap: float = 1e-6) -> torch.Tensor:
    """Fraction of the way from the base metric to the target metric: 0 = unchanged, 1 = fully restored."""
    gap = torch.as_tensor(target) - torch.as_tensor(base)
    if torch.as_tensor(gap).abs().min() < min_gap:
        raise ValueError("clean and corrupted metrics are equal: nothing to recover")
    return (patched - base) / gap
