"""The batched sweep: the metric of every variant, by the suffix engine where it is exact, else the bridge.

:func:`patch_sweep` is the one entry point; :func:`patch_one_by_one` is the straightforward loop, kept
as the reference the tests compare to (equal to float rounding, max |diff| ~1e-6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..checks import check_batch, check_not_padding, check_sources, check_token_ids, check_variants
from ..hooks import as_positions, check_tokens
from ..runtime import auto_batch_size
from .bridge import bridge_chunk, bridge_start, resume_states
from .metrics import MetricFn, metric_tokens
from .sites import Site, Variant, variant_masks
from .suffix import plan_suffix, suffix_chunks, suffix_starts

TOKENS_PER_PASS_CPU = 4096  # default cap on variants x prompts x positions in one patched forward
TOKENS_PER_PASS_GPU = 65536
PASS_OVERHEAD_TOKENS = 32  # one more pass costs about this many tokens at d_model 128 (CPU, measured)
Job = tuple[Callable[[list[int]], torch.Tensor], list[int]]


@torch.no_grad()
def patch_sweep(model, base_tokens: torch.Tensor, source: dict[str, torch.Tensor],
                variants: Sequence[Variant], metric: MetricFn, pos=-1,
                chunk_size: int | None = None, progress: bool = True,
                skip_unpatched: bool = True) -> torch.Tensor:
    """Metric of every variant: base prompts run with ``source`` activations in the variant's sites.

    ``source[hook]`` is [B, ...] (e.g. the clean cache) or [1, ...] (a mean for ablation).
    ``metric`` maps logits [K, B, V] at ``pos`` to [K] (or [K, B]). Returns [len(variants), ...].
    With ``skip_unpatched`` (the default) nothing the variants cannot change is recomputed: on
    GPT-2-like models the plain-torch suffix engine runs every variant whose sites it knows, from its
    first patched block and position; the rest resume from the base run's residual stream just before
    their first patched site. Both are checked once per sweep against the bridge and fall back to full
    forwards if they differ. ``skip_unpatched=False`` runs every chunk as a full forward pass.
    """
    check_tokens(base_tokens)
    check_batch(model, base_tokens)
    check_not_padding(model, base_tokens, pos)
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    check_sources(model, source, B, T)
    if len(variants) == 0:
        raise ValueError("no variants to patch")
    check_variants(model, variants, {k: v.shape for k, v in source.items()})
    if metric_tokens(metric) is not None:
        check_token_ids(metric_tokens(metric), model.cfg.d_vocab, "the metric's token ids")
    dev = base_tokens.device
    tokens_per_pass = TOKENS_PER_PASS_GPU if dev.type == "cuda" else TOKENS_PER_PASS_CPU
    shapes = {k: v.shape for k, v in source.items()}
    results: list[torch.Tensor | None] = [None] * len(variants)
    jobs: list[Job] = []
    runnable = suffix_starts(model, variants, shapes, T) if skip_unpatched else {}
    plan = plan_suffix(model, base_tokens, p, source, variants, runnable, shapes) if runnable else None
    if plan is None:
        runnable = {}
    else:
        engine, run_at, noops = plan
        if noops:  # variants that only write what the base run already has: the base run's metric
            noop_value = metric(engine.reference[None])[0]
            for i in noops:
                results[i] = noop_value
        cap = chunk_size or 256
        if chunk_size is None:
            cap = min(cap, max(1, auto_batch_size(4 * T * model.cfg.d_model * 24 * B, dev)))
        # A pass costs a fixed time (Python, reading the weights) worth fewer tokens the wider the model.
        overhead = PASS_OVERHEAD_TOKENS * (128 / model.cfg.d_model) ** 2
        if dev.type != "cpu":
            overhead = max(overhead, tokens_per_pass / 4)
        columns = metric_tokens(metric)
        for idx in suffix_chunks(run_at, B, T, engine.g.n, cap, tokens_per_pass, overhead):
            jobs.append((lambda idx, start=run_at[idx[0]]: engine.run(
                start, len(idx), variant_masks([variants[k] for k in idx], shapes, dev), source, columns), idx))
    jobs += _bridge_jobs(model, base_tokens, source, variants, [i for i in range(len(variants)) if i not in runnable],
                         p, shapes, _bridge_chunk_size(model, B, T, dev, chunk_size, tokens_per_pass),
                         skip_unpatched)
    for run, idx in tqdm(jobs, desc="patching", disable=not progress or len(jobs) == 1):
        logits = run(idx)
        for i, value in zip(idx, metric(logits.view(len(idx), B, -1)), strict=True):
            results[i] = value
    return torch.stack(results)  # type: ignore[arg-type]


def _bridge_chunk_size(model, B: int, T: int, dev: torch.device, chunk_size: int | None,
                       tokens_per_pass: int) -> int:
    if chunk_size is not None:
        return chunk_size
    per_item = 4 * T * model.cfg.d_model * (model.cfg.n_layers + 1) * 24
    # Past a few thousand tokens a pass is compute-bound on a CPU and bigger batches only cost
    # memory traffic (measured in chapter 2: 256 variants x 32 prompts per pass was slower than 16).
    return min(max(1, auto_batch_size(per_item * B, dev)), 256, max(1, tokens_per_pass // (B * T)))


def _bridge_jobs(model, tokens: torch.Tensor, source: dict[str, torch.Tensor], variants: Sequence[Variant],
                 rest: list[int], p: torch.Tensor, shapes: dict, chunk_size: int, resume: bool) -> list[Job]:
    """Chunks of the variants left to the bridge, grouped by where they first touch the model, so each
    chunk resumes from the base run's cached residual there instead of recomputing the layers below."""
    starts_at = {i: bridge_start(variants[i]) for i in rest}
    order = sorted(rest, key=lambda i: starts_at[i])
    states = resume_states(model, tokens, set(starts_at.values())) if resume and rest else {}
    jobs: list[Job] = []
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and j - i < chunk_size and starts_at[order[j]] == starts_at[order[i]]:
            j += 1
        jobs.append((lambda idx: bridge_chunk(model, tokens, source, [variants[k] for k in idx],
                                              starts_at[idx[0]], states, p, shapes), order[i:j]))
        i = j
    return jobs


@torch.no_grad()
def patch_one_by_one(model, base_tokens: torch.Tensor, source: dict[str, torch.Tensor],
                     variants: Sequence[Variant], metric: MetricFn, pos=-1,
                     progress: bool = False) -> torch.Tensor:
    """The straightforward reference: one full forward pass per variant, standard hooks."""
    check_tokens(base_tokens)
    check_batch(model, base_tokens)
    check_not_padding(model, base_tokens, pos)
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
