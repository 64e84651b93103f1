"""Activation patching, batched: one engine for every sweep in the book.

A *site* is a slice of one hooked activation (``blocks.3.attn.hook_z[:, pos, head]``); a *variant*
is a set of sites patched together in one run (one head, one neuron, a whole layer, a circuit).
The engine runs the *base* prompts (usually the corrupted ones) with the *source* activations
(usually the clean cache, or a mean for ablations) written into each variant's sites.

Speed comes from doing less arithmetic, not only from batching (see ``tests/test_bench_patching.py``):
1. variants are stacked on the batch axis, K at a time, each batch slice with its own patch mask,
   so a sweep over N components costs about N/K forward passes instead of N;
2. suffix-only resume (GPT-2-like models): a variant whose sites all lie in layer L or later and at
   positions >= q leaves every position < q as in the base run, in every layer (attention is
   causal). It runs from the base run's cached states in plain torch (the bridge's own weights):
   positions q.. only, attending to the base run's cached keys/values for the prefix; a head or
   neuron patched at one position recomputes only that position in its own block, and in the next
   block only that position's queries/keys/values; the last block runs at the answer positions
   only (queries there, keys/values from the suffix). Chunks are grouped by (layer, stage, q), split
   where the wasted positions would cost more than another pass;
3. patches that write what the base run already has (positions before the first token where clean
   and corrupted prompts differ) are no-ops: those variants get the base metric without a run, and
   the others resume from their first position that really changes;
4. other sites (embeddings, ``hook_resid_mid``, which on the bridge feeds only ``ln2``, anything
   unknown) and other architectures use the bridge: each chunk resumes from the base run's cached
   residual just before its first patched site, and a chunk that patches only the last MLP runs it
   at the answer positions alone;
5. the forward stops at ``ln_final`` and only the metric's positions are unembedded; the clean and
   corrupted caches are computed once and reused.
The plain-torch path is checked once per sweep against the bridge (the unpatched residual stream
and logits, and the patched logits of three of the sweep's variants, to 1e-4); if it differs, or
the model is not GPT-2-like (LayerNorm, standard positions, a known activation), the sweep falls back
to the bridge path. Results equal the loop's to float rounding (max |diff| ~1e-6).
:func:`patch_one_by_one` is the straightforward loop, kept as the reference the tests compare to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .device import auto_batch_size

TOKENS_PER_PASS_CPU = 4096  # default cap on variants x prompts x positions in one patched forward
TOKENS_PER_PASS_GPU = 65536
PASS_OVERHEAD_TOKENS = 32  # one more pass costs about this many tokens at d_model 128 (CPU, measured)
Index = tuple  # index into an activation after its batch axis: ints and slices


@dataclass(frozen=True)
class Site:
    """``hook`` is a hook name, ``index`` indexes the activation after the batch axis."""

    hook: str
    index: Index


Variant = Sequence[Site]
# logits [K, B, V] at the answer position -> [K] or [K, B]. A metric may carry ``metric.tokens``, the
# vocabulary ids it reads (as :func:`logit_diff_metric` does): the engine then unembeds only those
# columns (the others are left 0), which on GPT-2 saves a d_model x 50257 product per patched row.
Metric = Callable[[torch.Tensor], torch.Tensor]


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


# --------------------------------------------------------------------------- suffix-only fast path
# A GPT-2 block in plain torch, built from the bridge's (processed) weights, that can run on a suffix
# of the positions while attending to the base run's cached keys/values for the prefix, and can run
# the last block at the answer positions only. Used for every variant whose sites it understands;
# checked once per sweep against the bridge (unpatched and patched); the bridge path covers the rest.
_FAST_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|attn\.hook_z|hook_attn_out|"
                        r"mlp\.hook_pre|mlp\.hook_post|hook_mlp_out|hook_resid_post)$")
# Where each hook sits inside a block, and from which cached base state a variant starting there
# resumes: 0 = resid_pre (whole block), 1 = z (attention output projection on), 2 = resid_mid (MLP on).
_STAGE = {"hook_resid_pre": 0, "attn.hook_z": 1, "hook_attn_out": 1,
          "mlp.hook_pre": 2, "mlp.hook_post": 2, "hook_mlp_out": 2, "hook_resid_post": 2}
_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": torch.relu,
    "silu": F.silu,
}


def _fast_start(variant: Variant, T: int) -> tuple[int, int, int] | None:
    """(layer, stage, first patched position) of a variant the fast path can run, else None."""
    best: tuple[int, int] | None = None
    q = T - 1
    for site in variant:
        m = _FAST_HOOK.match(site.hook)
        if m is None:
            return None
        here = (int(m.group(1)), _STAGE[m.group(2)])
        best = here if best is None else min(best, here)
        index = tuple(site.index)
        try:
            where = torch.arange(T)[index[0]] if index else torch.arange(T)
        except (IndexError, TypeError, ValueError):
            return None
        if where.numel():
            q = min(q, int(where.min()))
    return None if best is None else (best[0], best[1], q)


def _effective_start(variant: Variant, differs: dict[str, torch.Tensor], T: int) -> tuple[int, int, int] | None:
    """Like :func:`_fast_start`, counting only the sites and positions where the source differs from
    the base run (``differs[hook]`` [T, ...]); None if the variant writes only what is already there.

    Clean and corrupted prompts usually share a prefix, so patching a position before their first
    difference is a no-op: such a variant's result is the base run's, and the others resume later.
    """
    best: tuple[int, int] | None = None
    q = T
    for site in variant:
        m = _FAST_HOOK.match(site.hook)
        index = tuple(site.index)
        hit = differs[site.hook][(slice(None),) + index[1:]].reshape(T, -1).any(1)
        where = torch.arange(T)[index[0]] if index else torch.arange(T)
        where = where.reshape(-1)[hit[where.reshape(-1)]]
        if where.numel():
            here = (int(m.group(1)), _STAGE[m.group(2)])  # type: ignore[union-attr]
            best = here if best is None else min(best, here)
            q = min(q, int(where.min()))
    return None if best is None else (best[0], best[1], q)


class _FastGPT2:
    """GPT-2 blocks in plain torch from a TransformerBridge's weights (compatibility mode)."""

    def __init__(self, model):
        cfg = model.cfg
        unsupported = [getattr(cfg, "normalization_type", None) != "LN",
                       getattr(cfg, "positional_embedding_type", "standard") != "standard",
                       bool(getattr(cfg, "parallel_attn_mlp", False)), bool(getattr(cfg, "gated_mlp", False)),
                       bool(getattr(cfg, "attn_only", False)), bool(getattr(cfg, "use_local_attn", False)),
                       bool(getattr(cfg, "scale_attn_by_inverse_layer_idx", False)),
                       getattr(cfg, "n_key_value_heads", None) not in (None, cfg.n_heads),
                       cfg.act_fn not in _ACTS]
        if any(unsupported):
            raise ValueError("not a GPT-2-like model")
        self.n, self.H, self.dh, self.d = cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_model
        self.eps = float(cfg.eps)
        act = getattr(getattr(model.blocks[0].mlp, "original_component", None), "act", None)
        self.act = act if isinstance(act, torch.nn.Module) else _ACTS[cfg.act_fn]  # the model's own, if it has one
        self.scale = self.dh ** -0.5
        H, dh, d = self.H, self.dh, self.d
        # Per-block weights as [out, in] views of the parameters the bridge runs on: nothing is copied.
        self.W_qkv, self.b_qkv, self.W_O, self.b_O = [], [], [], []
        self.W_in, self.b_in, self.W_out, self.b_out, self.ln1, self.ln2 = [], [], [], [], [], []
        for block in model.blocks:
            attn, mlp = block.attn, block.mlp
            self.W_qkv.append([w.detach().permute(1, 0, 2).reshape(d, H * dh).T
                               for w in (attn.W_Q, attn.W_K, attn.W_V)])
            self.b_qkv.append([b.detach().reshape(H * dh) for b in (attn.b_Q, attn.b_K, attn.b_V)])
            self.W_O.append(attn.W_O.detach().reshape(H * dh, d).T)
            self.b_O.append(attn.b_O.detach())
            self.W_in.append(mlp.W_in.detach().T)
            self.b_in.append(mlp.b_in.detach())
            self.W_out.append(mlp.W_out.detach().T)
            self.b_out.append(mlp.b_out.detach())
            self.ln1.append(self._ln(block.ln1))
            self.ln2.append(self._ln(block.ln2))
        self.lnf = self._ln(model.ln_final)
        self.W_U, self.b_U = model.W_U.detach(), model.b_U.detach()

    @staticmethod
    def _ln(bridge) -> tuple[torch.Tensor, torch.Tensor]:
        c = bridge.original_component
        return c.weight.detach(), c.bias.detach()

    def norm(self, x: torch.Tensor, wb: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        # The bridge's own formula (not F.layer_norm), so that results agree to float rounding.
        x = x - x.mean(-1, keepdim=True)
        return x / (x.pow(2).mean(-1, keepdim=True) + self.eps).sqrt() * wb[0] + wb[1]

    def qkv(self, layer: int, x: torch.Tensor, which: Sequence[int] = (0, 1, 2)) -> list[torch.Tensor]:
        """[N, S, d] -> the queries, keys, values (``which`` of them), each [N, S, H, dh]"""
        h = self.norm(x, self.ln1[layer])
        return [F.linear(h, self.W_qkv[layer][i], self.b_qkv[layer][i]).view(x.shape[:-1] + (self.H, self.dh))
                for i in which]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """q [N, S, H, dh], k/v [N, T, H, dh], mask [N or 1, S, T] (True = may attend) -> z [N, S, H, dh]"""
        scores = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) * self.scale
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        return (scores.softmax(-1) @ v.transpose(1, 2)).transpose(1, 2)

    def attn_out(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z.flatten(2), self.W_O[layer], self.b_O[layer])

    def mlp(self, layer: int, x: torch.Tensor, patch: Callable) -> torch.Tensor:
        """x is resid_mid; returns resid_post (patched)."""
        pre = patch("mlp.hook_pre", F.linear(self.norm(x, self.ln2[layer]), self.W_in[layer], self.b_in[layer]))
        post = patch("mlp.hook_post", self.act(pre))
        out = patch("hook_mlp_out", F.linear(post, self.W_out[layer], self.b_out[layer]))
        return patch("hook_resid_post", x + out)

    def unembed(self, x: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, V]; with ``tokens`` only those columns are computed (the rest are 0)."""
        x = self.norm(x, self.lnf)
        if tokens is None:
            return x @ self.W_U + self.b_U  # as _unembed_at computes it
        out = x.new_zeros(x.shape[0], self.W_U.shape[1])
        out[:, tokens] = x @ self.W_U[:, tokens] + self.b_U[tokens]
        return out


class _FastSweep:
    """The base run's states, computed once, and the patched suffix runs that resume from them."""

    def __init__(self, model, g: _FastGPT2, tokens: torch.Tensor, pos: torch.Tensor,
                 hooks: Sequence[str] = (), first: int = 0):
        self.g = g
        self.B, self.T = tokens.shape
        self.pos = pos.to(tokens.device)
        self.rows = torch.arange(self.B, device=tokens.device)
        n = self.g.n
        # One bridge forward gives the residual stream to check against, the reference logits and the
        # base activations at the sweep's hooks (to find patches that write what is already there).
        acts: dict[str, torch.Tensor] = {}

        def keeper(name: str) -> Callable:
            def keep(act, hook):  # hook.name may be the canonical name of an alias: key by ours
                acts[name] = act
            return keep

        def stop(act, hook):
            acts["final"] = act
            raise _StopForward
        names = sorted(set(hooks) | {f"blocks.{i}.hook_resid_pre" for i in range(n)})
        try:
            model.run_with_hooks(tokens, fwd_hooks=[(nm, keeper(nm)) for nm in names] + [("ln_final.hook_normalized", stop)])
        except _StopForward:
            pass
        self.reference = _unembed_at(model, acts["final"], self.pos, self.B)
        self.base_acts = {h: acts[h] for h in hooks}
        self.bridge_pre = {i: acts[f"blocks.{i}.hook_resid_pre"] for i in range(n)}
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

    def run(self, start: tuple[int, int, int], K: int, masks: dict[str, torch.Tensor],
            source: dict[str, torch.Tensor], tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [K*B, V] at the answer positions of K variants that all start at ``start``.

        ``start`` = (layer, stage, q): every patched site lies at that layer and stage or later, and at
        positions >= q. Positions < q are the base run's in every layer (attention is causal), so layers
        before the last run on positions q.. only, attending to the cached prefix keys/values; the last
        layer runs at the answer positions only (queries there, keys/values from every position).
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


def _bridge_chunk(model, tokens: torch.Tensor, source: dict[str, torch.Tensor], chunk: list[Variant],
                  start: tuple[int, int], resume: dict, p: torch.Tensor, shapes: dict) -> torch.Tensor:
    """Logits [K*B, V] of one chunk by the bridge: resumed mid-model where possible, else in full."""
    B, K = tokens.shape[0], len(chunk)
    masks = _masks_for(chunk, shapes, tokens.device)
    if start == (model.cfg.n_layers - 1, 1) and start in resume:
        # Only the last MLP is left, and it acts position by position: run it at the answers only.
        rows = torch.arange(B)
        hooks = [(name, _masked_hook(masks[name][:, p][:, :, None],
                                     source[name][rows if source[name].shape[0] == B else 0, p][:, None],
                                     K, B, per_prompt=True)) for name in masks]
        resid = resume[start][rows, p][:, None]
        return _resume_logits_at(model, resid, start, K, torch.zeros_like(p), B, hooks)
    hooks = [(name, _masked_hook(masks[name], source[name], K, B)) for name in masks]
    if start in resume:
        return _resume_logits_at(model, resume[start], start, K, p, B, hooks)
    return _forward_logits_at(model, tokens.repeat(K, 1), p, B, hooks)


def _suffix_chunks(fast_at: dict[int, tuple[int, int, int]], B: int, T: int, n_layers: int, cap: int,
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
    for i in sorted(fast_at, key=lambda i: fast_at[i]):
        L, stage, q = fast_at[i]
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


def _fast_starts(model, variants: Sequence[Variant], shapes: dict[str, torch.Size],
                 T: int) -> dict[int, tuple[int, int, int]]:
    """Variants the plain-torch suffix path can run (known hooks, sources of the expected shape)."""
    cfg = model.cfg
    want = {"attn.hook_z": (T, cfg.n_heads, cfg.d_head), "mlp.hook_pre": (T, cfg.d_mlp),
            "mlp.hook_post": (T, cfg.d_mlp)}
    out = {}
    for i, variant in enumerate(variants):
        start = _fast_start(variant, T)
        if start is not None and all(
                s.hook in shapes and tuple(shapes[s.hook][1:]) == want.get(_FAST_HOOK.match(s.hook).group(2),
                                                                           (T, cfg.d_model))
                for s in variant):
            out[i] = start
    return out


def _fast_sweep(model, tokens: torch.Tensor, p: torch.Tensor, source: dict[str, torch.Tensor],
                variants: Sequence[Variant], fast_at: dict[int, tuple[int, int, int]],
                shapes: dict) -> tuple[_FastSweep, dict[int, tuple[int, int, int]], list[int]] | None:
    """The suffix path for this sweep, or None if it is not exact here.

    Returns the base run's states, each runnable variant's (layer, stage, first position) counting
    only sites where the source differs from the base run, and the variants that are no-ops.
    Checked once per sweep: the plain-torch blocks must reproduce the bridge's residual stream and
    logits, and a few of the sweep's own variants (the first, middle and last in run order, so
    different layers, stages and positions) must give the bridge's patched logits.
    """
    B, T = tokens.shape
    try:
        hooks = sorted({s.hook for i in fast_at for s in variants[i]})
        first = min(fast_at[i][0] for i in fast_at)
        fast = _FastSweep(model, _FastGPT2(model), tokens, p, hooks, first)
        if not torch.allclose(fast.logits, fast.reference, atol=1e-4, rtol=1e-4):
            return None
        differs = {h: (source[h] != fast.base_acts[h]).any(0).cpu() for h in hooks}
        starts = {i: _effective_start(variants[i], differs, T) for i in fast_at}
        noops = [i for i, s in starts.items() if s is None]
        run_at = {i: s for i, s in starts.items() if s is not None}
        if run_at:
            order = sorted(run_at, key=lambda i: run_at[i])
            sample = sorted({order[0], order[len(order) // 2], order[-1]})
            masks = _masks_for([variants[i] for i in sample], shapes, tokens.device)
            fwd = [(name, _masked_hook(masks[name], source[name], len(sample), B)) for name in masks]
            # The reference: the bridge's blocks with the loop's hooks, from its own residual stream
            # before the first patched block (the full forward when that is block 0).
            start = min(run_at[i][0] for i in sample)
            if start == 0:
                want = _forward_logits_at(model, tokens.repeat(len(sample), 1), p, B, fwd)
            else:
                want = _resume_logits_at(model, fast.bridge_pre[start], (start, 0), len(sample), p, B, fwd)
            # One run for the sample, from a start at or before each of its variants' starts.
            at = min(run_at[i][:2] for i in sample)
            got = fast.run((*at, min(run_at[i][2] for i in sample)), len(sample), masks, source)
            if not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
                return None
    except (RuntimeError, TypeError, ValueError, AttributeError, IndexError, KeyError):
        return None
    return fast, run_at, noops


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
    With ``skip_unpatched`` (the default) nothing the variants cannot change is recomputed: on
    GPT-2-like models the plain-torch suffix path (module docstring) runs every variant whose sites
    it knows, from its first patched block and position; the rest resume from the base run's
    residual stream just before their first patched site. Both are checked once per sweep against
    the bridge and fall back to full forwards if they differ. ``skip_unpatched=False`` runs every
    chunk as a full forward pass.
    """
    check_tokens(base_tokens)
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    for name, act in source.items():
        if act.shape[0] not in (1, B):
            raise ValueError(f"source[{name!r}] has batch {act.shape[0]}, expected 1 or {B}")
    if len(variants) == 0:
        raise ValueError("no variants to patch")
    user_chunk = chunk_size
    tokens_per_pass = TOKENS_PER_PASS_GPU if base_tokens.device.type == "cuda" else TOKENS_PER_PASS_CPU
    if chunk_size is None:
        per_item = 4 * T * model.cfg.d_model * (model.cfg.n_layers + 1) * 24
        chunk_size = max(1, auto_batch_size(per_item * B, base_tokens.device))
        # Past a few thousand tokens a pass is compute-bound on a CPU and bigger batches only cost
        # memory traffic (measured in chapter 2: 256 variants x 32 prompts per pass was slower than 16).
        chunk_size = min(chunk_size, 256, max(1, tokens_per_pass // (B * T)))
    shapes = {k: v.shape for k, v in source.items()}
    jobs: list[tuple[Callable[[list[int]], torch.Tensor], list[int]]] = []
    fast_at = _fast_starts(model, variants, shapes, T) if skip_unpatched else {}
    found = _fast_sweep(model, base_tokens, p, source, variants, fast_at, shapes) if fast_at else None
    noop_value = None
    if found is None:
        fast_at = {}
    else:
        fast, run_at, noops = found
        if noops:  # variants that only write what the base run already has: the base run's metric
            noop_value = metric(fast.reference[None])[0]
        tokens = getattr(metric, "tokens", None)
        if not (isinstance(tokens, torch.Tensor) and tokens.ndim == 1 and not tokens.is_floating_point()):
            tokens = None
        cap = user_chunk or 256
        if user_chunk is None:
            cap = min(cap, max(1, auto_batch_size(4 * T * model.cfg.d_model * 24 * B, base_tokens.device)))
        # A pass costs a fixed time (Python, reading the weights) worth fewer tokens the wider the model.
        overhead = PASS_OVERHEAD_TOKENS * (128 / model.cfg.d_model) ** 2
        if base_tokens.device.type != "cpu":
            overhead = max(overhead, tokens_per_pass / 4)
        for idx in _suffix_chunks(run_at, B, T, fast.g.n, cap, tokens_per_pass, overhead):
            jobs.append((lambda idx, start=run_at[idx[0]]: fast.run(
                start, len(idx), _masks_for([variants[k] for k in idx], shapes, base_tokens.device), source,
                tokens), idx))
    # The rest: group variants by where they first touch the model, so each chunk resumes from the
    # base run's cached residual there instead of recomputing the layers below.
    rest = [i for i in range(len(variants)) if i not in fast_at]
    starts_at = {i: _start_of(variants[i]) for i in rest}
    order = sorted(rest, key=lambda i: starts_at[i])
    resume = _resume_states(model, base_tokens, set(starts_at.values())) if skip_unpatched and rest else {}
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and j - i < chunk_size and starts_at[order[j]] == starts_at[order[i]]:
            j += 1
        jobs.append((lambda idx: _bridge_chunk(model, base_tokens, source, [variants[k] for k in idx],
                                               starts_at[idx[0]], resume, p, shapes), order[i:j]))
        i = j
    results: list[torch.Tensor | None] = [None] * len(variants)
    if noop_value is not None:
        for i in noops:
            results[i] = noop_value
    for run, idx in tqdm(jobs, desc="patching", disable=not progress or len(jobs) == 1):
        logits = run(idx)
        for i, value in zip(idx, metric(logits.view(len(idx), B, -1)), strict=True):
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
    """logit(answer) − logit(distractor) per prompt; averaged over prompts when ``reduce``.

    ``distractor`` is [B] (one per prompt) or [B, k]: then the mean logit of the k rivals is subtracted
    (e.g. the two other listed colors of a Colored Objects prompt).
    """
    answer, distractor = torch.as_tensor(answer), torch.as_tensor(distractor)
    if distractor.dim() not in (1, 2) or distractor.shape[0] != answer.reshape(-1).shape[0]:
        raise ValueError(f"distractor must be [B] or [B, k] with B = {answer.reshape(-1).shape[0]}, "
                         f"got shape {tuple(distractor.shape)}")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(logits.shape[1])
        if distractor.dim() == 2:
            rival = logits[:, idx[:, None], distractor].mean(-1)
        else:
            rival = logits[:, idx, distractor]
        diff = logits[:, idx, answer] - rival
        return diff.mean(-1) if reduce else diff
    metric.tokens = torch.unique(torch.cat([answer.reshape(-1), distractor.reshape(-1)]))  # type: ignore[attr-defined]
    return metric


def answer_logit_metric(answer: torch.Tensor, reduce: bool = True) -> Metric:
    """The answer's logit above the mean logit of the vocabulary, per prompt (averaged when ``reduce``).

    Used for knockouts (:func:`helpers.circuits.knockout_effects`): how much a head helps the answer
    itself, whatever happens to its rivals.
    """
    answer = torch.as_tensor(answer).reshape(-1)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(logits.shape[1])
        diff = logits[:, idx, answer] - logits.mean(-1)
        return diff.mean(-1) if reduce else diff
    return metric  # reads every column (the mean): no ``tokens`` shortcut


def candidates_metric(candidates: torch.Tensor, pool: torch.Tensor, reduce: bool = True) -> Metric:
    """Mean logit of each prompt's in-context candidates minus the mean logit of the rest of ``pool``.

    ``candidates`` [B, k]: e.g. the two names of an IOI prompt, or the three listed colors of a Colored
    Objects prompt; ``pool`` [N]: all tokens of that kind (every name, every color). It measures whether
    the model answers *from the context* (any listed color) rather than which candidate it picks.
    """
    candidates, pool = torch.as_tensor(candidates), torch.as_tensor(pool).reshape(-1)
    if candidates.dim() != 2:
        raise ValueError(f"candidates must be [B, k], got shape {tuple(candidates.shape)}")
    others = ~(pool[None, :, None] == candidates[:, None, :]).any(-1)  # [B, N]: pool tokens not in the prompt
    if not others.any(-1).all():
        raise ValueError("every prompt needs at least one pool token that is not among its candidates")

    def metric(logits: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(logits.shape[1])
        cand = logits[:, idx[:, None], candidates].mean(-1)
        m = others.to(logits.device)
        rest = (logits[:, :, pool] * m).sum(-1) / m.sum(-1)
        diff = cand - rest
        return diff.mean(-1) if reduce else diff
    metric.tokens = torch.unique(torch.cat([candidates.reshape(-1), pool]))  # type: ignore[attr-defined]
    return metric


def recovery(patched: torch.Tensor, base: float | torch.Tensor, target: float | torch.Tensor,
             min_gap: float = 1e-6) -> torch.Tensor:
    """Fraction of the way from the base metric to the target metric: 0 = unchanged, 1 = fully restored."""
    gap = torch.as_tensor(target) - torch.as_tensor(base)
    if torch.as_tensor(gap).abs().min() < min_gap:
        raise ValueError("clean and corrupted metrics are equal: nothing to recover")
    return (patched - base) / gap
