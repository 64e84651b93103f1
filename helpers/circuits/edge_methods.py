"""Circuit discovery on the edge graph (:mod:`.graph`): ACDC, edge activation patching, EAP, EAP-IG, information flow routes.

Every method returns an :class:`EdgeScores`: one score per edge of the same :class:`~.graph.Graph`, the edges it
keeps at its usual threshold, and what it cost (batched passes, prompt rows run forward and backward, seconds).

* :func:`edge_patching`: the exact effect of removing each edge alone from the full model (one batched sweep);
* :func:`acdc`: Conmy et al. (2023), greedy pruning from the logits backwards; all the edges into one
  receiver are tried against the current graph in one batched pass (resumed at the receiver's layer);
* :func:`eap` (``steps=1``): Syed et al., edge attribution patching, the first-order Taylor estimate
  (clean - corrupted sender output) . d metric / d receiver input, every edge from 2 forwards and 1 backward;
  ``steps > 1``: EAP-IG (Hanna et al., 2024), the gradient averaged along the straight line from the
  corrupted to the clean input embeddings;
* :func:`information_flow_routes`: Ferrando & Voita (2024), no corrupted prompts: how close each sender's
  output is to the receiver's whole input (L1 proximity), normalised per receiver, from one forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .graph import EdgeModel


@dataclass
class EdgeScores:
    """One method's result on a graph: ``scores`` [E] (larger = more important), ``keep`` [E] at its threshold."""

    method: str
    scores: torch.Tensor
    keep: torch.Tensor
    threshold: float
    passes: int = 0          # batched forward passes (a backward counts as one more pass)
    rows_forward: int = 0    # prompt rows run forward (variants x prompts)
    rows_backward: int = 0   # prompt rows run backward
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())


#: Token rows per batched pass at most (variants x prompts x positions); fewer when free memory is short.
TOKENS_PER_PASS = 16384


def pass_tokens(em: EdgeModel, tokens_per_pass: int | None = None) -> int:
    """Token rows per batched pass: ``tokens_per_pass`` if given, else as many as fit 30% of free memory.

    A resumed run of K variants keeps every node's output and its running sum, [K, B, T, d_model] each:
    2 x n_nodes x d_model values per token row (GPT-2 small: ~1 MB in float32, so 16,384 rows would take
    16 GB; the organism: 38 KB). Capped at :data:`TOKENS_PER_PASS`.
    """
    if tokens_per_pass is not None:
        if tokens_per_pass < 1:
            raise ValueError(f"tokens_per_pass must be >= 1, got {tokens_per_pass}")
        return int(tokens_per_pass)
    from ..runtime import auto_batch_size

    W = em.w.W_E
    per_token = 2 * len(em.graph.nodes) * W.shape[-1] * W.element_size()
    return auto_batch_size(per_token, W.device, cap=TOKENS_PER_PASS)


def _metric_gap(em: EdgeModel, tokens, corrupt_tokens, metric, pos) -> tuple[float, float]:
    with torch.no_grad():
        return (metric(em.run(tokens, pos=pos)).item(), metric(em.run(corrupt_tokens, pos=pos)).item())


@torch.no_grad()
def edge_patching(em: EdgeModel, tokens: torch.Tensor, corrupt: torch.Tensor, metric: Callable,
                  pos: torch.Tensor | None, threshold: float, tokens_per_pass: int | None = None) -> EdgeScores:
    """|metric(full model without edge e) - metric(full model)| for every edge e: the exact single-edge effects.

    ``corrupt``: node outputs of the corrupted prompts (:meth:`EdgeModel.outputs`). Edges into layer l are
    run resumed at layer l from the full model's cached node outputs, and only from the first position where
    clean and corrupted prompts differ (:meth:`EdgeModel.prefix`).
    """
    t0 = time.perf_counter()
    g = em.graph
    E, (B, T) = len(g.edges), tokens.shape
    full_logits, outs = em.run(tokens, pos=pos, return_outputs=True)
    full = metric(full_logits)[0]
    pre = em.prefix(tokens, outs[:, 0], corrupt) if pos is not None else None
    step = max(1, pass_tokens(em, tokens_per_pass) // (B * (T - (pre.q if pre else 0))))
    scores = torch.zeros(E)
    passes, rows = 1, B
    for layer in range(g.n_layers + 1):
        idx = [i for i, (_, r) in enumerate(g.edges) if g.layer_of[r] == layer]
        for c in range(0, len(idx), step):
            chunk = idx[c:c + step]
            keep = torch.ones(len(chunk), E)
            keep[torch.arange(len(chunk)), chunk] = 0
            vals = metric(em.run(tokens, keep, corrupt, pos, start_layer=layer, cached=outs, prefix=pre))
            scores[chunk] = (vals - full).abs()
            passes, rows = passes + 1, rows + len(chunk) * B
    return EdgeScores("edge patching", scores, scores >= threshold, threshold, passes, rows, 0,
                      time.perf_counter() - t0)


@torch.no_grad()
def acdc(em: EdgeModel, tokens: torch.Tensor, corrupt: torch.Tensor, metric: Callable, pos: torch.Tensor | None,
         threshold: float, tokens_per_pass: int | None = None) -> EdgeScores:
    """ACDC: from the logits backwards, remove each edge whose removal moves the metric by less than ``threshold``.

    Receivers are visited in reverse topological order. A receiver whose outputs are all removed is cut off
    (its incoming edges cannot matter any more). The edges still kept into a receiver are each removed in
    turn from the *current* graph, all in one batched pass resumed at the receiver's layer; those whose
    removal changes the metric by less than ``threshold`` go together. (Conmy et al. remove them one at a
    time; batching differs only in how the edges into one receiver interact.) ``scores``: the change each
    edge's removal made when it was tried (0 for edges cut off unseen).
    """
    t0 = time.perf_counter()
    g = em.graph
    E, (B, T) = len(g.edges), tokens.shape
    keep = torch.ones(E)
    scores = torch.zeros(E)
    passes = rows = 0
    pre = em.prefix(tokens, em.outputs(tokens), corrupt) if pos is not None else None
    step = max(1, pass_tokens(em, tokens_per_pass) // (B * (T - (pre.q if pre else 0))))
    for r in reversed(g.nodes[1:]):
        inc = torch.tensor(g.incoming(r))
        if r != "logits" and not keep[g.outgoing(r)].any():
            keep[inc] = 0
            continue
        cand = inc[keep[inc] > 0]
        if not len(cand):
            continue
        logits, outs = em.run(tokens, keep[None], corrupt, pos, return_outputs=True, prefix=pre)
        cur = metric(logits)[0]
        passes, rows = passes + 1, rows + B
        layer = g.layer_of[r]
        deltas = []
        for c in range(0, len(cand), step):
            chunk = cand[c:c + step]
            variants = keep.repeat(len(chunk), 1)
            variants[torch.arange(len(chunk)), chunk] = 0
            deltas.append((metric(em.run(tokens, variants, corrupt, pos, start_layer=layer, cached=outs,
                                         prefix=pre)) - cur).abs())
            passes, rows = passes + 1, rows + len(chunk) * B
        delta = torch.cat(deltas)
        scores[cand] = delta
        keep[cand[delta < threshold]] = 0
    keep = _prune_dangling(em, keep.bool())
    return EdgeScores("ACDC", scores, keep, threshold, passes, rows, 0, time.perf_counter() - t0)


def _prune_dangling(em: EdgeModel, keep: torch.Tensor) -> torch.Tensor:
    """Drop kept edges that do not lie on a kept path from the embeddings to the logits."""
    g = em.graph
    keep = keep.clone()
    changed = True
    while changed:
        changed = False
        for n in g.nodes[1:-1]:
            inc, out = g.incoming(n), g.outgoing(n)
            if keep[out].any() and not keep[inc].any():
                keep[out], changed = False, True
            elif keep[inc].any() and not keep[out].any():
                keep[inc], changed = False, True
    return keep


def eap(em: EdgeModel, tokens: torch.Tensor, corrupt_tokens: torch.Tensor, metric: Callable,
        pos: torch.Tensor | None, threshold: float, steps: int = 1) -> EdgeScores:
    """EAP (``steps=1``) or EAP-IG (``steps`` points on the line from corrupted to clean embeddings).

    Score of edge (u, r): |(out_u(clean) - out_u(corrupted)) . mean_alpha d metric / d input_r|, summed over
    prompts' positions and averaged as the metric averages prompts: the estimated change of the metric when
    the edge carries the corrupted value. Cost: the clean and corrupted runs, then ``steps`` rows per prompt
    forward and backward in one pass (2 forward passes and 1 backward in all).
    """
    t0 = time.perf_counter()
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    g = em.graph
    corr = em.outputs(corrupt_tokens)
    clean_emb = em.w.W_E[tokens] + em.w.W_pos[:tokens.shape[1]]
    alphas = torch.arange(1, steps + 1, dtype=corr.dtype) / steps  # the last row (alpha = 1) is the clean run
    mix = corr[0][None] + alphas.view(-1, 1, 1, 1) * (clean_emb - corr[0])[None]
    grads: dict = {}
    logits, outs = em.run(tokens, embed_mix=mix, pos=pos, grad_inputs=grads, return_outputs=True)
    metric(logits).sum().backward()
    diff = outs[:, -1].detach() - corr  # [n_nodes, B, T, d]: clean minus corrupted output of every node
    scores = torch.zeros(len(g.edges))
    for r, gr in grads.items():
        gbar = gr.grad.mean(0)  # [B, T, d], averaged over the alphas
        senders = em._senders[r]
        scores[em._edges[r]] = torch.einsum("ubtd,btd->u", diff[senders], gbar).abs()
    B = tokens.shape[0]
    name = "EAP" if steps == 1 else f"EAP-IG ({steps} steps)"
    return EdgeScores(name, scores, scores >= threshold, threshold, passes=3,
                      rows_forward=B + steps * B, rows_backward=steps * B, seconds=time.perf_counter() - t0)


@torch.no_grad()
def information_flow_routes(em: EdgeModel, tokens: torch.Tensor, pos: torch.Tensor, threshold: float = 0.04) -> EdgeScores:
    """Ferrando & Voita's proximity importance, node level: one forward pass on the clean prompts only.

    For receiver r with input y = sum of its senders' outputs z_u (at each position), the importance of u is
    max(0, |y|_1 - |y - z_u|_1), normalised to sum to 1 over r's senders; averaged over the prompts at the
    answer position for the logits and over every position up to it for the other receivers (the positions
    a head reads through its keys and values are pooled: this is the node-level graph, not the paper's
    token-level one). Kept: edges with importance >= ``threshold`` on a kept path to the logits.
    """
    t0 = time.perf_counter()
    g = em.graph
    _, outs = em.run(tokens, pos=pos, return_outputs=True)
    outs = outs[:, 0]  # [n_nodes, B, T, d]
    B, T = tokens.shape
    upto = (torch.arange(T)[None] <= pos[:, None]).float()  # [B, T] positions up to the answer
    scores = torch.zeros(len(g.edges))
    for r in g.nodes[1:]:
        senders = em._senders[r]
        z = outs[senders]  # [U, B, T, d]
        y = z.sum(0)
        prox = (y.abs().sum(-1)[None] - (y[None] - z).abs().sum(-1)).clamp(min=0)  # [U, B, T]
        prox = prox / prox.sum(0, keepdim=True).clamp(min=1e-12)
        if r == "logits":
            imp = prox[:, torch.arange(B), pos].mean(-1)
        else:
            imp = (prox * upto).sum((1, 2)) / upto.sum()
        scores[em._edges[r]] = imp
    keep = scores >= threshold
    # Routes: keep only edges reachable backwards from the logits through kept edges (then dangling ones go).
    reach = {"logits"}
    for r in reversed(g.nodes[1:]):
        if r not in reach:
            keep[g.incoming(r)] = False
            continue
        for i in g.incoming(r):
            if keep[i]:
                reach.add(g.edges[i][0])
    return EdgeScores("information flow routes", scores, _prune_dangling(em, keep), threshold, 1, B, 0,
                      time.perf_counter() - t0)
