"""Circuits: path patching on top of the batched engine, head-class scores, circuit ablation.

Path patching (Wang et al., 2022) asks how much of a sender head's effect travels along one path: to
the logits directly, or into a receiver head's query, key or value. It runs in two batched passes:

1. the *base* prompts (the clean ones) with each variant's senders given their *source* activations
   (the ABC-corrupted ones) and every other head frozen to its base value; the receivers' q/k/v
   inputs are recorded (for the logits as receiver, this pass is the answer);
2. the base prompts again, with each receiver's q, k or v replaced by the value recorded for that
   variant; everything downstream recomputes; the metric is read off the logits.

Variants are stacked on the batch axis as in :func:`helpers.patching.patch_sweep` (K at a time, each
slice with its own patch), and the forward stops at ``ln_final`` with logits only at the answer position.
A head is ``(layer, head)``; a variant is a list of sender heads patched together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .lens import final_ln
from .patching import (
    Metric,
    Site,
    _forward_logits_at,
    _StopForward,
    as_positions,
    cache_activations,
    check_tokens,
)

Head = tuple[int, int]

if TYPE_CHECKING:
    import pandas as pd


def _check_heads(model, heads: Sequence[Head], what: str) -> None:
    L, H = model.cfg.n_layers, model.cfg.n_heads
    for hd in heads:
        if len(hd) != 2 or not (0 <= hd[0] < L and 0 <= hd[1] < H):
            raise ValueError(f"{what}: head {hd!r} is not a (layer, head) of this model "
                             f"({L} layers x {H} heads)")


def z_hooks(model) -> list[str]:
    """Names of every layer's ``hook_z`` (the per-head outputs before W_O)."""
    return [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]


@torch.no_grad()
def path_patch(model, base_tokens: torch.Tensor, source_tokens: torch.Tensor,
               senders: Sequence[Sequence[Head]], metric: Metric, pos=-1,
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
        _check_heads(model, variant, "senders")
    if receiver_input not in ("q", "k", "v"):
        raise ValueError(f"receiver_input must be 'q', 'k' or 'v', got {receiver_input!r}")
    if receivers is not None:
        if len(receivers) == 0:
            raise ValueError("receivers is empty: pass None to path-patch to the logits")
        _check_heads(model, receivers, "receivers")
        first_receiver = min(r[0] for r in receivers)
        late = [s for v in senders for s in v if s[0] >= first_receiver]
        if late:
            raise ValueError(f"senders {late} are not upstream of the earliest receiver layer {first_receiver}")
    B, T = base_tokens.shape
    p = as_positions(pos, B, T)
    L, H = model.cfg.n_layers, model.cfg.n_heads
    names = z_hooks(model) + ([f"blocks.{i}.hook_mlp_out" for i in range(L)] if freeze_mlps else [])
    base = cache_activations(model, base_tokens, names)
    source = cache_activations(model, source_tokens, z_hooks(model))
    results = []
    starts = range(0, len(senders), chunk_size)
    for start in tqdm(starts, desc="path patching", disable=not progress or len(starts) == 1):
        chunk = senders[start:start + chunk_size]
        K = len(chunk)
        mask = torch.zeros(K, L, H, dtype=torch.bool, device=base_tokens.device)
        for k, variant in enumerate(chunk):
            for layer, head in variant:
                mask[k, layer, head] = True
        hooks = [(f"blocks.{i}.attn.hook_z", _freeze_hook(mask[:, i], source[f"blocks.{i}.attn.hook_z"],
                                                          base[f"blocks.{i}.attn.hook_z"], K, B))
                 for i in range(L)]
        if freeze_mlps:
            hooks += [(f"blocks.{i}.hook_mlp_out", _freeze_hook(None, None, base[f"blocks.{i}.hook_mlp_out"], K, B))
                      for i in range(L)]
        tokens = base_tokens.repeat(K, 1)
        if receivers is None:
            logits = _forward_logits_at(model, tokens, p, B, hooks)
        else:
            recorded = _record_receivers(model, tokens, hooks, receivers, receiver_input)
            rhooks = [(name, _replace_hook(act, receivers, name, receiver_pos)) for name, act in recorded.items()]
            logits = _forward_logits_at(model, tokens, p, B, rhooks)
        results.append(metric(logits.view(K, B, -1)))
    return torch.cat(results)


def _freeze_hook(mask: torch.Tensor | None, src: torch.Tensor | None, frozen: torch.Tensor,
                 K: int, B: int) -> Callable:
    """Write ``src`` into the heads set in ``mask`` [K, H] and the frozen base value everywhere else."""
    def hook(act, hook):
        shape = act.shape
        out = frozen[None].expand((K,) + tuple(frozen.shape)).to(act.dtype)
        if mask is not None:
            out = torch.where(mask[:, None, None, :, None], src[None].to(act.dtype), out)
        return out.reshape(shape).clone()
    return hook


def _record_receivers(model, tokens: torch.Tensor, hooks: list, receivers: Sequence[Head],
                      receiver_input: str) -> dict[str, torch.Tensor]:
    """Pass 1 of path patching: the receivers' q/k/v activations, stopping after the last one."""
    names = sorted({f"blocks.{layer}.attn.hook_{receiver_input}" for layer, _ in receivers})
    last = f"blocks.{max(r[0] for r in receivers)}.attn.hook_{receiver_input}"
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(act, hook):
            store[name] = act.detach().clone()
            if name == last:
                raise _StopForward
        return keep

    try:
        model.run_with_hooks(tokens, fwd_hooks=hooks + [(n, keeper(n)) for n in names])
    except _StopForward:
        pass
    return store


def _replace_hook(recorded: torch.Tensor, receivers: Sequence[Head], name: str, pos: int | None) -> Callable:
    layer = int(name.split(".")[1])
    heads = [h for lay, h in receivers if lay == layer]
    p = slice(None) if pos is None else pos

    def hook(act, hook):
        act = act.clone()
        act[:, p, heads] = recorded[:, p, heads].to(act.dtype)
        return act
    return hook


# --------------------------------------------------------------------------- head-class scores

@torch.no_grad()
def attention_scores(model, tokens: torch.Tensor, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
    """Mean attention from ``query_pos`` to ``key_pos`` (one of each per prompt) -> [L, H]."""
    check_tokens(tokens)
    B, T = tokens.shape
    q, k = as_positions(query_pos, B, T), as_positions(key_pos, B, T)
    if (k > q).any():
        raise ValueError("key positions must not come after query positions (attention is causal)")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    pats = cache_activations(model, tokens, names)
    rows = torch.arange(B)
    return torch.stack([pats[n][rows, :, q, k].mean(0) for n in names])  # [B, H] -> mean


@torch.no_grad()
def copy_scores(model, token_ids: torch.Tensor, top_k: int = 5, negative: bool = False,
                within: bool = False) -> torch.Tensor:
    """Fraction of ``token_ids`` each head's OV circuit copies (``negative``: suppresses) -> [L, H].

    As in Wang et al.: a token's representation after layer 0 (BOS, token), through the head's
    W_V W_O, the final LayerNorm and the unembedding; the token counts if it is among the ``top_k``
    logits (of -OV when ``negative``) — of the whole vocabulary, or of ``token_ids`` only (``within``).
    """
    token_ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    if token_ids.numel() == 0:
        raise ValueError("need at least one token id")
    if (token_ids < 0).any() or (token_ids >= model.cfg.d_vocab).any():
        raise ValueError(f"token ids must lie in [0, {model.cfg.d_vocab})")
    bos = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else model.tokenizer.eos_token_id
    dev = model.W_U.device
    tokens = torch.stack([torch.full_like(token_ids, int(bos)), token_ids], 1).to(dev)
    x = cache_activations(model, tokens, ["blocks.0.hook_resid_post"])["blocks.0.hook_resid_post"][:, 1]
    x = final_ln(x, model=model)  # the layer-1 LayerNorm, folded into W_V in compatibility mode
    ov = torch.einsum("nd,lhde,lhem->lhnm", x, model.W_V, model.W_O)
    logits = final_ln(ov, model=model) @ model.W_U
    if within:
        logits = logits[..., token_ids.to(dev)]
        token_ids = torch.arange(len(token_ids))
    if negative:
        logits = -logits
    top = logits.topk(top_k, dim=-1).indices  # [L, H, n, k]
    return (top == token_ids.to(dev)[:, None]).any(-1).float().mean(-1)


# --------------------------------------------------------------------------- circuits as ablations

def complement_variant(model, keep: Sequence[Head]) -> list[Site]:
    """Sites of every head *not* in ``keep`` (all positions): one variant that ablates the rest."""
    _check_heads(model, keep, "circuit")
    keep_set = {tuple(h) for h in keep}
    return [Site(f"blocks.{layer}.attn.hook_z", (slice(None), h))
            for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)
            if (layer, h) not in keep_set]


def heads_variant(model, heads: Sequence[Head]) -> list[Site]:
    """Sites of the given heads (all positions): one variant."""
    _check_heads(model, heads, "heads")
    return [Site(f"blocks.{layer}.attn.hook_z", (slice(None), h)) for layer, h in heads]


def head_name(head: Head) -> str:
    """``L1H6``."""
    return f"L{head[0]}H{head[1]}"


@torch.no_grad()
def cache_with_patch(model, tokens: torch.Tensor, hooks: Sequence[str], variant: Sequence[Site],
                     source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The named activations of a run of ``tokens`` with ``variant`` patched from ``source`` (e.g. a knockout)."""
    from .patching import _masked_hook, _masks_for

    check_tokens(tokens)
    B = tokens.shape[0]
    masks = _masks_for([variant], {k: v.shape for k, v in source.items()}, tokens.device)
    store: dict[str, torch.Tensor] = {}

    def keeper(name: str):
        def keep(act, hook):
            store[name] = act.detach().clone()
        return keep

    fwd = [(n, _masked_hook(masks[n], source[n], 1, B)) for n in masks] + [(n, keeper(n)) for n in set(hooks)]
    model.run_with_hooks(tokens, fwd_hooks=fwd)
    missing = set(hooks) - set(store)
    if missing:
        raise KeyError(f"hooks not found on this model: {sorted(missing)}")
    return store


def top_heads(scores: torch.Tensor, n: int) -> list[Head]:
    """The ``n`` heads with the largest score ([L, H]), best first."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be [n_layers, n_heads], got shape {tuple(scores.shape)}")
    if not 1 <= n <= scores.numel():
        raise ValueError(f"n must lie in [1, {scores.numel()}], got {n}")
    idx = scores.flatten().topk(n).indices.tolist()
    return [divmod(i, scores.shape[1]) for i in idx]


def classify_heads(table, direct: Sequence[Head], feeders, carriers: Sequence[Head] = ()) -> dict[Head, tuple[str, str]]:
    """Name the circuit's heads by the paper's classes from their scores -> {head: (class, why)}.

    ``table``: one row per head (index ``L{l}H{h}``) with columns DLA, END→IO, END→S2, S2→S1, S2→S1+1,
    prev-token (random); ``direct``: heads found by path patching to the logits; ``feeders``: rows
    (sender, receivers, input, change) of heads feeding them; ``carriers``: heads whose knockout lowers
    the IO logit. Direct heads: negative DLA -> negative name mover; attends END→IO more than END→S2 ->
    name mover; otherwise S-suppression (attends S2, raises IO − S). Feeders: the largest of S2→S1
    (duplicate-token), S2→S1+1 (induction), END→S2 (S-inhibition) and the previous-token score.
    Carriers: name mover if they attend END→IO more than END→S2, else "other".
    """
    out: dict[Head, tuple[str, str]] = {}
    for h in direct:
        r = table.loc[head_name(h)]
        if r["DLA"] < 0:
            out[h] = ("negative name mover", f"DLA {r['DLA']:+.2f}, END→IO {r['END→IO']:.2f}")
        elif r["END→IO"] >= r["END→S2"]:
            out[h] = ("name mover", f"DLA {r['DLA']:+.2f}, END→IO {r['END→IO']:.2f}")
        else:
            out[h] = ("S-suppression", f"DLA {r['DLA']:+.2f}, END→S2 {r['END→S2']:.2f} > END→IO {r['END→IO']:.2f}")
    kinds = {"S2→S1": "duplicate-token", "S2→S1+1": "induction", "END→S2": "S-inhibition",
             "prev-token (random)": "previous-token"}
    for row in feeders.itertuples():
        layer, head = (int(x) for x in row.sender[1:].split("H"))
        if (layer, head) in out:
            continue
        r = table.loc[row.sender]
        best = max(kinds, key=lambda k: r[k])
        why = f"{best} {r[best]:.2f}; path to {row.receivers} ({row.input}) {row.change:+.2f}"
        out[(layer, head)] = (kinds[best], why)
    for h in carriers:
        if h in out:
            continue
        r = table.loc[head_name(h)]
        cls = "name mover" if r["END→IO"] >= r["END→S2"] else "other"
        out[h] = (cls, f"knockout lowers the IO logit; END→IO {r['END→IO']:.2f}, END→S2 {r['END→S2']:.2f}")
    return out


# --------------------------------------------------------------------------- finding a circuit

class FoundCircuit:
    """What :func:`find_circuit` found: direct heads (path patching to the logits) and their feeders.

    ``direct_effect`` [L, H]: change of the metric when the head's path to the logits is patched, as a
    fraction of the clean metric; ``direct_heads``: heads with |effect| >= the threshold;
    ``feeds``: {(sender, receivers, input): (level, change fraction)} for every sender of an earlier
    layer into each receiver layer's heads through their query, key or value (level 2 feeds the direct
    heads, level 3 the level-2 feeders, ...); ``feeders``: the rows of ``feed_table`` with |change| >=
    the feeder threshold.
    """

    def __init__(self, direct_effect, direct_heads, feeds, feeder_min):
        import pandas as pd

        self.direct_effect = direct_effect
        self.direct_heads = direct_heads
        self.feeds = feeds
        self.feed_table = pd.DataFrame(
            [(lvl, head_name(s), "+".join(map(head_name, rs)), inp, r) for (s, rs, inp), (lvl, r) in feeds.items()],
            columns=["level", "sender", "receivers", "input", "change"])
        self.feeders = self.feed_table[self.feed_table.change.abs() >= feeder_min].sort_values(["level", "change"])

    @property
    def feeder_heads(self) -> list[Head]:
        """The feeders as (layer, head), in the order of ``feeders``, without repeats."""
        out: list[Head] = []
        for name in self.feeders.sender:
            layer, head = (int(x) for x in name[1:].split("H"))
            if (layer, head) not in out:
                out.append((layer, head))
        return out

    @property
    def heads(self) -> list[Head]:
        """Direct heads, then feeders that are not direct heads."""
        return list(self.direct_heads) + [h for h in self.feeder_heads if h not in self.direct_heads]


def find_circuit(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, metric: Metric, pos,
                 direct_min: float = 0.10, feeder_min: float = 0.10, depth: int = 3,
                 progress: bool = False) -> FoundCircuit:
    """Wang et al.'s backwards search: heads -> logits, then earlier heads -> their q/k/v, recursively.

    Level 1: every head's path to the logits is patched from the corrupted run (MLPs recompute); heads
    moving the clean metric by >= ``direct_min`` of it are *direct*. Level 2: for each layer holding
    direct heads, every head of an earlier layer is patched into those heads' queries (at ``pos``),
    keys or values (all positions); senders moving the metric by >= ``feeder_min`` are feeders. Level
    3 and on (up to ``depth``) repeat this with the previous level's new feeders as receivers (queries
    at every position, as their position is not the answer's), as the paper went from name movers to
    S-inhibition to induction and duplicate-token heads to previous-token heads.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    B, T = clean_tokens.shape
    p = as_positions(pos, B, T)
    clean = metric(_forward_logits_at(model, clean_tokens, p, B, []).view(1, B, -1)).item()
    if abs(clean) < 1e-6:
        raise ValueError("the clean metric is zero: effects cannot be expressed as a fraction of it")
    L, H = model.cfg.n_layers, model.cfg.n_heads
    all_heads = [(i, j) for i in range(L) for j in range(H)]
    to_logits = path_patch(model, clean_tokens, corrupt_tokens, [[h] for h in all_heads], metric, p,
                           progress=progress)
    direct_effect = ((to_logits - clean) / clean).view(L, H)
    direct = [h for h in all_heads if abs(direct_effect[h]) >= direct_min]
    feeds: dict = {}
    query_pos = int(p[0]) if bool((p == p[0]).all()) else None
    frontier, seen = list(direct), set(direct)
    for level in range(2, depth + 1):
        new: list[Head] = []
        for layer in sorted({h[0] for h in frontier}):
            receivers = [h for h in frontier if h[0] == layer]
            senders = [h for h in all_heads if h[0] < layer]
            if not senders:
                continue
            for inp in ("q", "k", "v"):
                out = path_patch(model, clean_tokens, corrupt_tokens, [[s] for s in senders], metric, p,
                                 receivers=receivers, receiver_input=inp,
                                 receiver_pos=query_pos if inp == "q" and level == 2 else None)
                for s, r in zip(senders, ((out - clean) / clean).tolist()):
                    feeds[(s, tuple(receivers), inp)] = (level, r)
                    if abs(r) >= feeder_min and s not in seen:
                        seen.add(s)
                        new.append(s)
        frontier = new
        if not frontier:
            break
    return FoundCircuit(direct_effect, direct, feeds, feeder_min)


def overlap(a: Sequence[Head], b: Sequence[Head]) -> dict[str, float]:
    """How much two head sets share: |a ∩ b| / |b| (share of b's heads also in a), / |a|, and Jaccard."""
    sa, sb = {tuple(h) for h in a}, {tuple(h) for h in b}
    if not sa or not sb:
        raise ValueError("both circuits need at least one head to compare them")
    inter = len(sa & sb)
    return {"shared": inter, "of_b": inter / len(sb), "of_a": inter / len(sa), "jaccard": inter / len(sa | sb)}


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
    _check_heads(model, heads, "heads")
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
    store: dict[str, torch.Tensor] = {}

    def setter(layer_heads: list[int]):
        def hook(pattern, hook):
            pattern = pattern.clone()
            for h in layer_heads:
                pattern[rows, h, q] = (1 - strength) * pattern[rows, h, q] + strength * row.to(pattern.dtype)
            return pattern
        return hook

    def keeper(name: str):
        def keep(act, hook):
            store[name] = act.detach().clone()
        return keep

    by_layer: dict[int, list[int]] = {}
    for layer, h in heads:
        by_layer.setdefault(layer, []).append(h)
    hooks = [(f"blocks.{layer}.attn.hook_pattern", setter(hs)) for layer, hs in by_layer.items()]
    hooks += list(extra_hooks) + [(n, keeper(n)) for n in record]
    p = q if pos is None else as_positions(pos, B, T)
    logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
    return logits[rows, p], store


@torch.no_grad()
def attention_table(model, tokens: torch.Tensor, pairs: dict[str, tuple], how: str = "sum") -> pd.DataFrame:
    """Mean attention of every head for named (query, key) position pairs -> DataFrame [head x pair].

    A key may be [B, k] (several positions per prompt): the attention to them is summed (``how="sum"``)
    or averaged per position (``how="mean"``), then averaged over prompts (e.g. END -> the two other
    listed colors).
    """
    if how not in ("sum", "mean"):
        raise ValueError(f"how must be 'sum' or 'mean', got {how!r}")
    import pandas as pd

    check_tokens(tokens)
    B, T = tokens.shape
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    acts = cache_activations(model, tokens, names)
    pats = torch.stack([acts[n] for n in names], 1)  # [B, L, H, T, T]
    rows = torch.arange(B)
    cols = {}
    for label, (q, k) in pairs.items():
        q = as_positions(q, B, T)
        k = torch.as_tensor(k).view(B, -1) if torch.as_tensor(k).dim() else as_positions(k, B, T)[:, None]
        if (k > q[:, None]).any():
            raise ValueError(f"{label}: key positions must not come after query positions")
        at_q = pats[rows, :, :, q]  # [B, L, H, T]
        k = k.to(at_q.device)[:, None, None, :].expand(B, at_q.shape[1], at_q.shape[2], k.shape[1])
        got = at_q.gather(-1, k)
        got = got.sum(-1) if how == "sum" else got.mean(-1)
        cols[label] = got.mean(0).flatten().tolist()  # [L, H] -> L*H
    L, H = model.cfg.n_layers, model.cfg.n_heads
    return pd.DataFrame(cols, index=[head_name((i, j)) for i in range(L) for j in range(H)])


@torch.no_grad()
def knockout_effects(model, tokens: torch.Tensor, mean_source: dict[str, torch.Tensor], metric: Metric,
                     pos) -> torch.Tensor:
    """Relative change of ``metric`` when each head is mean-ablated (all positions) -> [L, H].

    ``mean_source``: per-hook means (``patching.mean_activations`` of a reference distribution's
    ``hook_z`` cache). With a metric such as :func:`helpers.patching.candidates_metric`, negative values
    mark the heads that bring the answer candidates to the answer position ("carriers").
    """
    from .patching import logits_at, patch_sweep

    base = metric(logits_at(model, tokens, pos)[None]).item()
    if abs(base) < 1e-6:
        raise ValueError("the metric is zero on the unablated model: no relative change to report")
    L, H = model.cfg.n_layers, model.cfg.n_heads
    out = patch_sweep(model, tokens, mean_source,
                      [heads_variant(model, [(i, j)]) for i in range(L) for j in range(H)], metric, pos,
                      progress=False)
    return ((out - base) / base).view(L, H)


def freeze_hooks(cache: dict[str, torch.Tensor]) -> list[tuple[str, Callable]]:
    """Hooks that replace each cached activation by its cached value (e.g. freeze the MLPs of a base run)."""
    def setter(value: torch.Tensor) -> Callable:
        def hook(act, hook):
            return value.to(act.dtype)
        return hook
    return [(name, setter(value)) for name, value in cache.items()]


# --------------------------------------------------------------------------- one task's circuit

class TaskCircuit:
    """A task's circuit found by :func:`task_circuit`: path-patching heads plus knockout carriers."""

    def __init__(self, found: FoundCircuit, knockout: torch.Tensor, carrier_min: float):
        self.found = found
        self.knockout = knockout
        L, H = knockout.shape
        self.carriers = [(i, j) for i in range(L) for j in range(H) if abs(knockout[i, j]) >= carrier_min]
        self.heads = found.heads + [h for h in self.carriers if h not in found.heads]

    def membership(self) -> torch.Tensor:
        """[L, H] boolean map of the circuit's heads."""
        m = torch.zeros(self.knockout.shape, dtype=torch.bool)
        for h in self.heads:
            m[h] = True
        return m


def task_circuit(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, metric: Metric,
                 candidates: Metric, pos, direct_min: float = 0.10, feeder_min: float = 0.10,
                 carrier_min: float = 0.05, depth: int = 3) -> TaskCircuit:
    """One task's circuit, the same way for every task (chapters 4 and 5).

    1. :func:`find_circuit`: heads whose path to the logits, or into such a head's q/k/v (recursively,
       ``depth`` levels), moves the task ``metric`` by >= the thresholds when given the corrupted input;
    2. *carriers*: heads whose mean-ablation (mean over the corrupted prompts) changes the
       ``candidates`` metric (e.g. :func:`helpers.patching.candidates_metric`: in-context candidates
       vs the rest of their kind) by >= ``carrier_min`` of it. Corruption-based patching cannot see
       heads that act the same on clean and corrupted prompts (e.g. heads that move every name);
       ablation can.
    """
    from .patching import cache_activations as _cache
    from .patching import mean_activations

    found = find_circuit(model, clean_tokens, corrupt_tokens, metric, pos, direct_min, feeder_min, depth)
    mean_src = mean_activations(_cache(model, corrupt_tokens, z_hooks(model)))
    ko = knockout_effects(model, clean_tokens, mean_src, candidates, pos)
    return TaskCircuit(found, ko, carrier_min)


ROLE_COLUMNS = ("END→answer", "END→rival", "repeat→first", "repeat→first+1")


def classify_roles(tc: TaskCircuit, table) -> dict[Head, tuple[str, str]]:
    """Name each circuit head's role by one rule for every task -> {head: (role, why)}.

    ``table``: :func:`attention_table` with the generic columns of :data:`ROLE_COLUMNS` (the answer and
    its rival(s) seen from the answer position; the repeated token back to its first occurrence and the
    token after it). A direct head attending the rival more than the answer is an *inhibition* head
    (it pushes the rival down: S-inhibition in IOI), otherwise a *mover*; a feeder is a
    *duplicate-token* or *induction* head by the larger of the two repeat columns; a carrier whose
    ablation lowers the candidates is a *mover*, one whose ablation raises them an *inhibition* head.
    """
    missing = [c for c in ROLE_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"attention table lacks the columns {missing}")
    out: dict[Head, tuple[str, str]] = {}
    feeders = set(tc.found.feeder_heads)
    for h in tc.heads:
        r = table.loc[head_name(h)]
        if h in tc.found.direct_heads:
            role = "inhibition" if r["END→rival"] > r["END→answer"] else "mover"
            why = (f"path to logits {tc.found.direct_effect[h].item():+.2f}; END→answer {r['END→answer']:.2f}, "
                   f"END→rival {r['END→rival']:.2f}")
        elif h in feeders:
            role = "duplicate-token" if r["repeat→first"] >= r["repeat→first+1"] else "induction"
            why = f"feeds a direct head; repeat→first {r['repeat→first']:.2f}, →first+1 {r['repeat→first+1']:.2f}"
        else:
            ko = tc.knockout[h].item()
            role = "mover" if ko < 0 else "inhibition"
            why = (f"ablation changes the candidates by {ko:+.0%}; END→answer {r['END→answer']:.2f}, "
                   f"END→rival {r['END→rival']:.2f}")
        out[tuple(h)] = (role, why)
    return out
