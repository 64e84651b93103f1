"""The suffix engine: patched runs that recompute only what a patch can change (GPT-2-like models).

A variant whose sites all lie in layer L or later and at positions >= q leaves every position < q as
in the base run, in every layer (attention is causal). It runs from the base run's cached states in
plain torch (:class:`~helpers.patching.gpt2_blocks.GPT2Blocks`): positions q.. only, attending to the
base run's cached keys/values for the prefix; a head or neuron patched at one position recomputes only
that position in its own block, and in the next block only that position's queries/keys/values; the
last block runs at the answer positions only. Patches that write what the base run already has are
no-ops and are not run at all. :func:`plan_suffix` checks the engine once per sweep against the bridge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from ..hooks import LN_FINAL, capture, logits_at, unembed_at
from .bridge import resume_logits_at
from .gpt2_blocks import GPT2Blocks
from .sites import Variant, patch_hook, variant_masks

SUFFIX_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|attn\.hook_z|hook_attn_out|"
                         r"mlp\.hook_pre|mlp\.hook_post|hook_mlp_out|hook_resid_post)$")
# Where each hook sits inside a block, and from which cached base state a variant starting there
# resumes: 0 = resid_pre (whole block), 1 = z (attention output projection on), 2 = resid_mid (MLP on).
STAGE = {"hook_resid_pre": 0, "attn.hook_z": 1, "hook_attn_out": 1,
         "mlp.hook_pre": 2, "mlp.hook_post": 2, "hook_mlp_out": 2, "hook_resid_post": 2}
Start = tuple[int, int, int]  # (layer, stage, first patched position)


def suffix_start(variant: Variant, T: int, differs: dict[str, torch.Tensor] | None = None) -> Start | None:
    """(layer, stage, first patched position) of a variant the suffix engine can run, else None.

    With ``differs`` ({hook: [T, ...] bool}, where the source differs from the base run) only the sites
    and positions that really change count, and None means the variant writes only what is already
    there: clean and corrupted prompts usually share a prefix, so patching before their first
    difference is a no-op.
    """
    best: tuple[int, int] | None = None
    q = T - 1 if differs is None else T
    for site in variant:
        m = SUFFIX_HOOK.match(site.hook)
        if m is None:
            return None
        index = tuple(site.index)
        try:
            where = (torch.arange(T)[index[0]] if index else torch.arange(T)).reshape(-1)
        except (IndexError, TypeError, ValueError):
            return None
        if differs is not None:
            hit = differs[site.hook][(slice(None),) + index[1:]].reshape(T, -1).any(1)
            where = where[hit[where]]
            if not where.numel():
                continue
        here = (int(m.group(1)), STAGE[m.group(2)])
        best = here if best is None else min(best, here)
        if where.numel():
            q = min(q, int(where.min()))
    return None if best is None else (best[0], best[1], q)


def suffix_starts(model, variants: Sequence[Variant], shapes: dict[str, torch.Size], T: int) -> dict[int, Start]:
    """{variant index: start} of the variants the suffix engine can run (known hooks, sources of the expected shape)."""
    cfg = model.cfg
    want = {"attn.hook_z": (T, cfg.n_heads, cfg.d_head), "mlp.hook_pre": (T, cfg.d_mlp),
            "mlp.hook_post": (T, cfg.d_mlp)}
    out = {}
    for i, variant in enumerate(variants):
        start = suffix_start(variant, T)
        if start is not None and all(
                s.hook in shapes and tuple(shapes[s.hook][1:]) == want.get(SUFFIX_HOOK.match(s.hook).group(2),
                                                                           (T, cfg.d_model))
                for s in variant):
            out[i] = start
    return out


def suffix_chunks(run_at: dict[int, Start], B: int, T: int, n_layers: int, cap: int,
                   tokens_per_pass: int, overhead: float) -> list[list[int]]:
    """Chunks of the suffix path: variants of one (layer, stage), contiguous in first position q.

    A chunk recomputes positions q.. of its earliest variant for all of its variants, so mixing
    positions wastes work while splitting costs passes. Within each (layer, stage) a small dynamic
    programme over the distinct q picks the split with the least estimated cost (tokens computed
    plus ``overhead`` tokens a pass); each piece is then cut to ``cap`` variants and
    ``tokens_per_pass`` tokens a pass. A chunk that starts inside the last block costs one token a
    prompt whatever its q (only the answer positions are computed there).
    """
    groups: dict[tuple[int, int], dict[int, list[int]]] = {}
    for i in sorted(run_at, key=lambda i: run_at[i]):
        L, stage, q = run_at[i]
        groups.setdefault((L, stage), {}).setdefault(q, []).append(i)
    chunks: list[list[int]] = []
    for (L, stage), by_q in groups.items():
        qs = sorted(by_q)
        width = [1 if L == n_layers - 1 and stage else T - q for q in qs]  # tokens a prompt

        def passes(count: int, w: int) -> int:
            return max(-(-count // cap), -(-count * B * w // tokens_per_pass))

        best = [0.0] + [float("inf")] * len(qs)  # best[j]: cost of qs[:j]
        cut = [0] * (len(qs) + 1)
        for j in range(1, len(qs) + 1):
            count = 0
            for i in range(j - 1, -1, -1):
                count += len(by_q[qs[i]])
                cost = best[i] + passes(count, width[i]) * overhead + count * B * width[i]
                if cost < best[j]:
                    best[j], cut[j] = cost, i
        j = len(qs)
        while j > 0:
            i = cut[j]
            members = [k for q in qs[i:j] for k in by_q[q]]
            n = passes(len(members), width[i])
            size = -(-len(members) // n)
            chunks.extend(members[s:s + size] for s in range(0, len(members), size))
            j = i
    return chunks


class SuffixEngine:
    """The base run's states, computed once, and the patched suffix runs that resume from them."""

    def __init__(self, model, g: GPT2Blocks, tokens: torch.Tensor, pos: torch.Tensor,
                 hooks: Sequence[str] = (), first: int = 0):
        self.g = g
        self.B, self.T = tokens.shape
        self.pos = pos.to(tokens.device)
        self.rows = torch.arange(self.B, device=tokens.device)
        n = self.g.n
        # One bridge forward gives the residual stream to check against, the reference logits and the
        # base activations at the sweep's hooks (to find patches that write what is already there).
        pre = [f"blocks.{i}.hook_resid_pre" for i in range(n)]
        acts = capture(model, tokens, sorted(set(hooks) | set(pre)) + [LN_FINAL], clone=False)
        self.reference = unembed_at(model, acts[LN_FINAL], self.pos)
        self.base_acts = {h: acts[h] for h in hooks}
        self.bridge_pre = {i: acts[name] for i, name in enumerate(pre)}
        # The base run's states in plain torch, from the first block a variant patches on.
        self.pre, self.qkv, self.z, self.mid = ([None] * first for _ in range(4))  # type: ignore[misc]
        x = acts[f"blocks.{first}.hook_resid_pre"]
        causal = torch.ones(self.T, self.T, dtype=torch.bool, device=x.device).tril()[None]
        for layer in range(first, n):
            if not torch.allclose(x, acts[f"blocks.{layer}.hook_resid_pre"], atol=1e-4, rtol=1e-4):
                raise ValueError(f"plain-torch block {layer - 1} differs from the bridge's")
            self.pre.append(x)
            qkv = self.g.qkv(layer, x)
            self.qkv.append(qkv)
            z = self.g.attend(*qkv, causal)
            self.z.append(z)
            x = x + self.g.attn_out(layer, z)
            self.mid.append(x)
            x = self.g.mlp(layer, x, lambda name, a: a)
        self.logits = self.g.unembed(x[self.rows, self.pos])

    def run(self, start: Start, K: int, masks: dict[str, torch.Tensor],
            source: dict[str, torch.Tensor], tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [K*B, V] at the answer positions of K variants that all start at ``start``.

        ``start`` = (layer, stage, q): every patched site lies at that layer and stage or later, and at
        positions >= q. Positions < q are the base run's in every layer (attention is causal), so layers
        before the last run on positions q.. only, attending to the cached prefix keys/values; the last
        layer runs at the answer positions only (queries there, keys/values from every position).
        With ``tokens`` only those columns of the logits are computed (the others are 0).
        """
        g, B, T, n = self.g, self.B, self.T, self.g.n
        L, stage, q = start
        S, N = T - q, K * B
        p = self.pos
        suffix = slice(q, None)

        def rep(t: torch.Tensor) -> torch.Tensor:  # [B, ...] -> [K*B, ...]
            return t.repeat((K,) + (1,) * (t.ndim - 1))

        def patcher(layer: int, cols: slice | torch.Tensor | None) -> Callable:
            """Patches on activations [N, len(cols), ...] at positions ``cols``, or [N, 1, ...] at the
            answer positions when ``cols`` is None."""
            def patch(name: str, act: torch.Tensor) -> torch.Tensor:
                full = f"blocks.{layer}.{name}"
                if full not in masks:
                    return act
                mask, src = masks[full], source[full]
                if cols is None:
                    m = mask[:, p][:, :, None]
                    s = (src[self.rows, p] if src.shape[0] == B else src[0, p])[:, None]
                else:
                    m, s = mask[:, None, cols], src[:, cols]
                a = act.view((K, B) + tuple(act.shape[1:]))
                return torch.where(m, s[None].to(act.dtype), a).view(act.shape)
            return patch

        def after_attention(layer: int, x: torch.Tensor, z: torch.Tensor, cols) -> torch.Tensor:
            """The position-wise rest of a block: z -> resid_post."""
            patch = patcher(layer, cols)
            z = patch("attn.hook_z", z)
            x = x + patch("hook_attn_out", g.attn_out(layer, z))
            return g.mlp(layer, x, patch)

        x: torch.Tensor | None = None   # residual: [N, S, d] on the suffix, [N, 1, d] at the answers
        dirty: torch.Tensor | None = None  # positions where x differs from the base run, if only a few
        for layer in range(L, n):
            last = layer == n - 1
            if layer > L or stage == 0:
                x = patcher(layer, suffix)("hook_resid_pre", rep(self.pre[layer][:, q:]) if x is None else x)
                which = (1, 2) if last else (0, 1, 2)  # the last block's queries: at the answers only
                if dirty is not None and f"blocks.{layer}.hook_resid_pre" not in masks:
                    # Only the dirty positions' queries, keys and values differ from the base run's.
                    fresh = g.qkv(layer, x[:, dirty - q], which)
                    qkv = []
                    for i, f in zip(which, fresh, strict=True):
                        t = rep(self.qkv[layer][i][:, q:])
                        t[:, dirty - q] = f
                        qkv.append(t)
                else:
                    qkv = g.qkv(layer, x, which)
                dirty = None
                k = torch.cat([rep(self.qkv[layer][1][:, :q]), qkv[-2]], 1)
                v = torch.cat([rep(self.qkv[layer][2][:, :q]), qkv[-1]], 1)
                if last:  # queries at the answers only; a prompt answering before q reads the base
                    at = (p - q).clamp(min=0)
                    x = torch.where((p >= q)[:, None], x.view(K, B, S, -1)[:, self.rows, at],
                                    self.pre[layer][self.rows, p]).view(N, 1, -1)
                    mask = rep(torch.arange(T, device=p.device)[None, :] <= p[:, None])[:, None]
                    x = after_attention(layer, x, g.attend(g.qkv(layer, x, (0,))[0], k, v, mask), None)
                else:
                    mask = torch.ones(S, T, dtype=torch.bool, device=p.device).tril(q)[None]
                    x = after_attention(layer, x, g.attend(qkv[0], k, v, mask), suffix)
                continue
            # Starting after this block's attention: the rest of the block acts position by position,
            # so only the positions patched in this block change here (the answers', in the last).
            cols = None if last else self._touched(layer, masks, q)
            if cols is not None and len(cols) == 0:  # nothing patched in this block
                x, dirty = rep(self.pre[layer + 1][:, q:]), cols
                continue

            def take(t: torch.Tensor, cols=cols) -> torch.Tensor:  # base states at the computed positions
                return rep(t[self.rows, p][:, None] if cols is None else t[:, cols])
            if stage == 1:
                out = after_attention(layer, take(self.pre[layer]), take(self.z[layer]), cols)
            else:
                out = g.mlp(layer, take(self.mid[layer]), patcher(layer, cols))
            if cols is None or len(cols) == S:
                x = out
            else:
                x, dirty = rep(self.pre[layer + 1][:, q:]), cols
                x[:, cols - q] = out
        return g.unembed(x[:, 0], tokens)

    def _touched(self, layer: int, masks: dict[str, torch.Tensor], q: int) -> torch.Tensor:
        """Positions >= q that some variant patches in ``layer`` (masks are [K, T, ...])."""
        touched = torch.zeros(self.T, dtype=torch.bool, device=self.pos.device)
        for name, m in masks.items():
            if name.startswith(f"blocks.{layer}."):
                touched |= m.reshape(m.shape[0], self.T, -1).any(-1).any(0)
        touched[:q] = False
        return touched.nonzero().flatten()


def plan_suffix(model, tokens: torch.Tensor, p: torch.Tensor, source: dict[str, torch.Tensor],
                variants: Sequence[Variant], runnable: dict[int, Start],
                shapes: dict) -> tuple[SuffixEngine, dict[int, Start], list[int]] | None:
    """The suffix engine for this sweep, or None if it is not exact here.

    Returns the engine, each ``runnable`` variant's start counting only sites where the source
    differs from the base run, and the variants that are no-ops. Checked once per sweep: the
    plain-torch blocks must reproduce the bridge's residual stream and logits, and a few of the sweep's
    own variants (the first, middle and last in run order, so different layers, stages and positions)
    must give the bridge's patched logits.
    """
    B, T = tokens.shape
    try:
        hooks = sorted({s.hook for i in runnable for s in variants[i]})
        first = min(runnable[i][0] for i in runnable)
        engine = SuffixEngine(model, GPT2Blocks(model), tokens, p, hooks, first)
        if not torch.allclose(engine.logits, engine.reference, atol=1e-4, rtol=1e-4):
            return None
        differs = {h: (source[h] != engine.base_acts[h]).any(0).cpu() for h in hooks}
        starts = {i: suffix_start(variants[i], T, differs) for i in runnable}
        noops = [i for i, s in starts.items() if s is None]
        run_at = {i: s for i, s in starts.items() if s is not None}
        if run_at:
            order = sorted(run_at, key=lambda i: run_at[i])
            sample = sorted({order[0], order[len(order) // 2], order[-1]})
            masks = variant_masks([variants[i] for i in sample], shapes, tokens.device)
            fwd = [(name, patch_hook(masks[name], source[name], len(sample), B)) for name in masks]
            # The reference: the bridge's blocks with the loop's hooks, from its own residual stream
            # before the first patched block (the full forward when that is block 0).
            start = min(run_at[i][0] for i in sample)
            if start == 0:
                want = logits_at(model, tokens.repeat(len(sample), 1), p, fwd)
            else:
                want = resume_logits_at(model, engine.bridge_pre[start], (start, 0), len(sample), p, fwd)
            # One run for the sample, from a start at or before each of its variants' starts.
            at = min(run_at[i][:2] for i in sample)
            got = engine.run((*at, min(run_at[i][2] for i in sample)), len(sample), masks, source)
            if not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
                return None
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError, KeyError):
        return None
    return engine, run_at, noops
