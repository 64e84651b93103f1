"""The computational graph every discovery method shares: nodes, edges, and a forward pass with edges switched off.

Nodes are the token+position embeddings (``embed``), every attention head (``L1H6``), every MLP (``MLP1``)
and the ``logits``. An edge (sender, receiver) is one term of the receiver's input: each head, MLP and the
unembedding reads the residual stream, which is the sum of every earlier node's output, so each earlier node
is one edge into it (one input per head: queries, keys and values are not split). :class:`EdgeModel` runs a
GPT-2-like model with a *keep* value per edge: kept (1) edges carry the sender's output of this run, removed
(0) edges carry the sender's output on the *corrupted* prompts (or its mean: mean ablation) instead, as in
ACDC (Conmy et al., 2023). ``K`` keep vectors run at once, stacked on the batch axis, like the patching
engine's variants (:mod:`helpers.patching`): a sweep over edges is a handful of passes, not one per edge.

The same forward serves every method: ACDC and edge activation patching set keeps to 0; EAP and EAP-IG
differentiate through it (:meth:`EdgeModel.receiver_grads`); information flow routes read its node outputs.
Weights come from a TransformerBridge (:func:`EdgeModel.from_bridge`, checked against the bridge's logits)
or are set by hand (:class:`Weights`: the models of :mod:`helpers.circuits.planted`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..hooks import layer_norm

Edge = tuple[str, str]  # (sender, receiver)


@dataclass
class Weights:
    """A GPT-2-like model's weights in TransformerLens's layout; ``ln*`` None = no LayerNorm, ``W_in`` None = no MLP.

    Per layer: ``W_Q/W_K/W_V`` [H, d, dh], ``b_Q/b_K/b_V`` [H, dh], ``W_O`` [H, dh, d], ``b_O`` [d],
    ``W_in`` [d, m], ``b_in`` [m], ``W_out`` [m, d], ``b_out`` [d], ``ln1``/``ln2`` (weight, bias).
    """

    W_E: torch.Tensor
    W_pos: torch.Tensor
    W_Q: list[torch.Tensor]
    W_K: list[torch.Tensor]
    W_V: list[torch.Tensor]
    W_O: list[torch.Tensor]
    W_U: torch.Tensor
    b_Q: list[torch.Tensor] | None = None
    b_K: list[torch.Tensor] | None = None
    b_V: list[torch.Tensor] | None = None
    b_O: list[torch.Tensor] | None = None
    W_in: list[torch.Tensor | None] | None = None
    b_in: list[torch.Tensor | None] | None = None
    W_out: list[torch.Tensor | None] | None = None
    b_out: list[torch.Tensor | None] | None = None
    ln1: list[tuple | None] | None = None
    ln2: list[tuple | None] | None = None
    ln_final: tuple | None = None
    b_U: torch.Tensor | None = None
    act: Callable[[torch.Tensor], torch.Tensor] = torch.relu
    eps: float = 1e-5
    attn_scale: float | None = None  # None: 1/sqrt(d_head)
    names: dict = field(default_factory=dict)  # optional: what the hand-set subspaces mean

    @property
    def n_layers(self) -> int:
        return len(self.W_Q)

    @property
    def n_heads(self) -> int:
        return self.W_Q[0].shape[0]

    def has_mlp(self, layer: int) -> bool:
        return self.W_in is not None and self.W_in[layer] is not None


class Graph:
    """Nodes in topological order and the edges between them; ``edges[i]`` is (sender, receiver)."""

    def __init__(self, n_layers: int, n_heads: int, mlps: Sequence[bool]):
        self.n_layers, self.n_heads = n_layers, n_heads
        self.nodes: list[str] = ["embed"]
        self.layer_of: dict[str, int] = {"embed": -1}
        for layer in range(n_layers):
            for h in range(n_heads):
                self.nodes.append(f"L{layer}H{h}")
                self.layer_of[f"L{layer}H{h}"] = layer
            if mlps[layer]:
                self.nodes.append(f"MLP{layer}")
                self.layer_of[f"MLP{layer}"] = layer
        self.nodes.append("logits")
        self.layer_of["logits"] = n_layers
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.edges: list[Edge] = [(s, r) for r in self.nodes[1:] for s in self.senders(r)]
        self.edge_index = {e: i for i, e in enumerate(self.edges)}

    def senders(self, receiver: str) -> list[str]:
        """The nodes whose outputs the receiver reads: every node before it (an MLP reads its own layer's heads)."""
        r = self.layer_of[receiver]
        if receiver.startswith("L"):
            return [n for n in self.nodes if self.layer_of[n] < r]
        return [n for n in self.nodes if self.layer_of[n] < r or (self.layer_of[n] == r and n.startswith("L"))]

    def __len__(self) -> int:
        return len(self.edges)

    def mask(self, edges: Sequence[Edge]) -> torch.Tensor:
        """A boolean [E] vector, True on the given edges (a circuit, a ground truth)."""
        m = torch.zeros(len(self.edges), dtype=torch.bool)
        for e in edges:
            if tuple(e) not in self.edge_index:
                raise ValueError(f"{e!r} is not an edge of this graph (senders must come before receivers)")
            m[self.edge_index[tuple(e)]] = True
        return m

    def incoming(self, receiver: str) -> list[int]:
        """Indices of the edges into ``receiver``."""
        return [self.edge_index[(s, receiver)] for s in self.senders(receiver)]

    def outgoing(self, sender: str) -> list[int]:
        """Indices of the edges out of ``sender``."""
        return [i for i, (s, _) in enumerate(self.edges) if s == sender]

    def heads_of(self, keep: torch.Tensor) -> list[tuple[int, int]]:
        """The heads (layer, head) with at least one kept edge into and one out of them."""
        out = []
        for n in self.nodes:
            if n.startswith("L") and keep[self.incoming(n)].any() and keep[self.outgoing(n)].any():
                layer, h = (int(x) for x in n[1:].split("H"))
                out.append((layer, h))
        return out


@dataclass
class Prefix:
    """Positions 0 .. q-1, where every run of a sweep is the same, and each layer's keys and values there."""

    q: int
    kv: list[tuple[torch.Tensor, torch.Tensor]]


def _ln(x: torch.Tensor, wb: tuple | None, eps: float) -> torch.Tensor:
    return x if wb is None else layer_norm(x, eps, *wb)


class EdgeModel:
    """A GPT-2-like model run node by node, so that any set of edges can carry corrupted values instead."""

    def __init__(self, w: Weights):
        self.w = w
        self.graph = Graph(w.n_layers, w.n_heads, [w.has_mlp(i) for i in range(w.n_layers)])
        self.d_head = w.W_Q[0].shape[-1]
        self.scale = w.attn_scale if w.attn_scale is not None else self.d_head ** -0.5
        g = self.graph
        # For each receiver: the positions of its senders in the node list, and of its edges in the edge list.
        self._senders = {r: torch.tensor([g.index[s] for s in g.senders(r)]) for r in g.nodes[1:]}
        self._edges = {r: torch.tensor(g.incoming(r)) for r in g.nodes[1:]}
        self._edges_into_layer = [torch.cat([self._edges[f"L{i}H{h}"] for h in range(w.n_heads)])
                                  for i in range(w.n_layers)]

    @classmethod
    def from_bridge(cls, model) -> EdgeModel:
        """The TransformerBridge's own weights (compatibility mode: LayerNorm folded), GPT-2-like models only."""
        from ..patching.gpt2_blocks import GPT2Blocks
        b = GPT2Blocks(model)  # checks the architecture; gives the LayerNorms and the activation
        blocks = model.blocks
        d = lambda t: t.detach()
        w = Weights(W_E=d(model.W_E), W_pos=d(model.W_pos), W_U=d(model.W_U), b_U=d(model.b_U),
                    W_Q=[d(x.attn.W_Q) for x in blocks], W_K=[d(x.attn.W_K) for x in blocks],
                    W_V=[d(x.attn.W_V) for x in blocks], W_O=[d(x.attn.W_O) for x in blocks],
                    b_Q=[d(x.attn.b_Q) for x in blocks], b_K=[d(x.attn.b_K) for x in blocks],
                    b_V=[d(x.attn.b_V) for x in blocks], b_O=[d(x.attn.b_O) for x in blocks],
                    W_in=[d(x.mlp.W_in) for x in blocks], b_in=[d(x.mlp.b_in) for x in blocks],
                    W_out=[d(x.mlp.W_out) for x in blocks], b_out=[d(x.mlp.b_out) for x in blocks],
                    ln1=list(b.ln1), ln2=list(b.ln2), ln_final=b.lnf, act=b.act, eps=b.eps)
        return cls(w)

    # ------------------------------------------------------------------ the forward pass

    def run(self, tokens: torch.Tensor, keep: torch.Tensor | None = None, corrupt: torch.Tensor | None = None,
            pos: torch.Tensor | None = None, embed_mix: torch.Tensor | None = None,
            grad_inputs: dict | None = None, return_outputs: bool = False, start_layer: int = 0,
            cached: torch.Tensor | None = None, prefix: Prefix | None = None, record_kv: list | None = None):
        """Logits [K, B, V] at ``pos`` [B] (None: every position, [K, B, T, V]) of K edge-keep vectors.

        ``keep`` [K, E] (1 kept, 0 removed; None: everything kept, K = 1); ``corrupt`` [n_nodes, B or 1, T, d]:
        the node outputs a removed edge carries (:meth:`outputs` of the corrupted prompts, or their mean).
        ``embed_mix`` [K, B, T, d] replaces the embedding node's output (EAP-IG's interpolated inputs).
        ``grad_inputs``: a dict filled with a zero tensor per receiver added to its input (require grad: the
        gradient of a metric with respect to each receiver's input). ``return_outputs``: also return the node
        outputs [n_nodes, K, B, T, d]. ``start_layer`` with ``cached`` [n_nodes, 1, B, T, d] (the node outputs of a
        run whose edges into layers below ``start_layer`` are the same as every row of ``keep``'s): those
        layers are not recomputed, as in the patching engine's resumed runs. ``prefix`` (:meth:`prefix`):
        positions before ``prefix.q`` are the same in every row and are not recomputed; the returned outputs then
        cover positions ``q`` .. only (``corrupt`` and ``cached`` may cover all positions or those). ``record_kv``: filled with each layer's
        keys and values [K, B, H, T, dh].
        """
        w, g = self.w, self.graph
        B, T_all = tokens.shape
        q0 = 0 if prefix is None else prefix.q
        T = T_all - q0
        if prefix is not None:
            if embed_mix is not None or grad_inputs is not None:
                raise ValueError("a prefix run takes no embed_mix or gradients")
            if pos is not None and bool((pos < q0).any()):
                raise ValueError(f"answer positions {pos.tolist()} lie in the shared prefix (< {q0})")
            if corrupt is not None and corrupt.shape[2] == T_all:
                corrupt = corrupt[:, :, q0:]
            if cached is not None and cached.shape[3] == T_all:
                cached = cached[:, :, :, q0:]
        if keep is None:
            keep = torch.ones(1, len(g.edges))
        if keep.ndim != 2 or keep.shape[1] != len(g.edges):
            raise ValueError(f"keep must be [K, {len(g.edges)}], got {tuple(keep.shape)}")
        K = keep.shape[0]
        if corrupt is None and bool((keep != 1).any()):
            raise ValueError("removed edges need the corrupted node outputs (corrupt=...)")
        keep = keep.to(w.W_E.dtype)
        emb = w.W_E[tokens[:, q0:]] + w.W_pos[q0:T_all]
        emb = emb.expand(K, B, T, emb.shape[-1]) if embed_mix is None else embed_mix
        outs: list[torch.Tensor] = [emb]
        csum = [corrupt[0]] if corrupt is not None else None  # prefix sums of the corrupted outputs
        osum = [emb]  # prefix sums of this run's outputs: osum[i] = outs[0] + ... + outs[i]
        if start_layer > 0:
            if cached is None or embed_mix is not None:
                raise ValueError("start_layer needs the cached node outputs of a run (and no embed_mix)")
            n0 = min(i for i, n in enumerate(g.nodes) if g.layer_of[n] >= start_layer)
            c_osum = cached[:n0].cumsum(0)
            outs = [cached[i].expand(K, B, T, -1) for i in range(n0)]
            osum = [c_osum[i].expand(K, B, T, -1) for i in range(n0)]
            if corrupt is not None:
                csum = list(corrupt[:n0].cumsum(0).unbind(0))

        def receiver_input(r: str) -> torch.Tensor:
            """[K, B, T, d]: the sum over senders of their output (kept edge) or corrupted output (removed).

            Written as the all-kept sum minus the removed edges' differences, or the all-removed sum plus the
            kept ones, whichever touches fewer senders: a sweep removes few edges, ACDC late in its run many.
            """
            n = len(self._senders[r])  # the senders are nodes 0 .. n-1
            x = osum[n - 1]
            if corrupt is not None:
                kr = keep[:, self._edges[r]]  # [K, n]
                removed = (kr != 1).any(0).nonzero().flatten().tolist()
                if removed:
                    kept = (kr != 0).any(0).nonzero().flatten().tolist()
                    if len(removed) <= len(kept):
                        x = x.clone()
                        for u in removed:
                            rows = (kr[:, u] != 1).nonzero().flatten()
                            if len(rows) == K:
                                x -= (1 - kr[:, u]).view(-1, 1, 1, 1) * (outs[u] - corrupt[u])
                            else:  # a sweep: few rows remove this edge
                                x[rows] -= (1 - kr[rows, u]).view(-1, 1, 1, 1) * (outs[u][rows] - corrupt[u])
                    else:
                        x = csum[n - 1].expand_as(x).clone()
                        for u in kept:
                            x = x + kr[:, u].view(-1, 1, 1, 1) * (outs[u] - corrupt[u])
            if grad_inputs is not None:
                g_r = torch.zeros_like(x, requires_grad=True)
                grad_inputs[r] = g_r
                x = x + g_r
            return x

        def add(out: torch.Tensor) -> None:
            if corrupt is not None:
                csum.append(csum[-1] + corrupt[len(outs)])
            outs.append(out)
            osum.append(osum[-1] + out)

        # query position q0 + i may attend to key positions 0 .. q0 + i (the prefix's keys are cached)
        causal = torch.arange(T_all, device=tokens.device)[None] <= (q0 + torch.arange(T, device=tokens.device))[:, None]
        for layer in range(start_layer, w.n_layers):
            heads = [f"L{layer}H{h}" for h in range(w.n_heads)]
            into = self._edges_into_layer[layer]
            if grad_inputs is None and (corrupt is None or bool((keep[:, into] == 1).all())):
                # Every head of this layer reads the same full residual: one LayerNorm, one product.
                x = _ln(osum[len(self._senders[heads[0]]) - 1], w.ln1[layer] if w.ln1 else None, w.eps)
                q, k_, v = (torch.einsum("kbtd,hde->kbhte", x, W[layer]) for W in (w.W_Q, w.W_K, w.W_V))
            else:
                x = torch.stack([receiver_input(r) for r in heads], 2)  # [K, B, H, T, d]
                x = _ln(x, w.ln1[layer] if w.ln1 else None, w.eps)
                q, k_, v = (torch.einsum("kbhtd,hde->kbhte", x, W[layer]) for W in (w.W_Q, w.W_K, w.W_V))
            if w.b_Q is not None:
                q, k_, v = q + w.b_Q[layer][:, None], k_ + w.b_K[layer][:, None], v + w.b_V[layer][:, None]
            if prefix is not None:
                pk, pv = prefix.kv[layer]
                k_ = torch.cat([pk.expand(K, -1, -1, -1, -1), k_], 3)
                v = torch.cat([pv.expand(K, -1, -1, -1, -1), v], 3)
            if record_kv is not None:
                record_kv.append((k_, v))
            scores = (q @ k_.transpose(-1, -2)) * self.scale
            pattern = scores.masked_fill(~causal, float("-inf")).softmax(-1)
            z = pattern @ v  # [K, B, H, T, dh]
            out = torch.einsum("kbhte,hed->kbhtd", z, w.W_O[layer])
            if w.b_O is not None:  # the output bias is shared: each head carries 1/H of it (same in every run)
                out = out + w.b_O[layer] / w.n_heads
            for o in out.unbind(2):
                add(o)
            if w.has_mlp(layer):
                x = _ln(receiver_input(f"MLP{layer}"), w.ln2[layer] if w.ln2 else None, w.eps)
                pre = x @ w.W_in[layer] + (w.b_in[layer] if w.b_in else 0)
                add(w.act(pre) @ w.W_out[layer] + (w.b_out[layer] if w.b_out else 0))
        x = receiver_input("logits")
        if pos is not None:
            x = x[:, torch.arange(B), pos - q0]  # [K, B, d]
        x = _ln(x, w.ln_final, w.eps)
        logits = x @ w.W_U + (w.b_U if w.b_U is not None else 0)
        return (logits, torch.stack(outs)) if return_outputs else logits

    @torch.no_grad()
    def prefix(self, tokens: torch.Tensor, outputs: torch.Tensor, corrupt: torch.Tensor) -> Prefix | None:
        """The shared prefix of a sweep: positions before the first where ``corrupt`` differs from ``outputs``.

        ``outputs`` [n_nodes, B, T, d] of the clean run, ``corrupt`` of the corrupted one. Before the first token
        where clean and corrupted prompts differ, every node's output is the same in both runs (attention is
        causal), so no edge removal changes anything there. None if there is no such prefix (e.g. a mean).
        """
        if corrupt.shape != outputs.shape:
            return None
        scale = outputs.abs().amax().clamp(min=1e-12)
        differs = ((outputs - corrupt).abs().amax((0, 1, 3)) > 1e-5 * scale).nonzero()
        q = int(differs[0]) if len(differs) else outputs.shape[2] - 1
        if q == 0:
            return None
        kv: list = []
        self.run(tokens, record_kv=kv)
        return Prefix(q, [(k[:, :, :, :q], v[:, :, :, :q]) for k, v in kv])

    @torch.no_grad()
    def outputs(self, tokens: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Every node's output [n_nodes, B, T, d] on ``tokens`` (nothing removed); ``mean``: averaged over prompts."""
        _, outs = self.run(tokens, return_outputs=True)
        outs = outs[:, 0]
        return outs.mean(1, keepdim=True) if mean else outs
