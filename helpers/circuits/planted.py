"""Models whose circuit is known by construction: hand-set weights, distractors beside the circuit, and noise.

Each builder returns a :class:`Planted`: the :class:`~.graph.Weights`, the edges of the circuit (the edges the
clean-vs-corrupted difference must travel along, by construction) and a prompt generator. The residual
stream is split into named subspaces (one-hot tokens, one-hot positions, flags, scratch); a circuit head
reads and writes only its subspaces, distractor heads and MLP units read the circuit's subspaces (so they
react to the task) but write only to scratch subspaces nobody reads, or write the same vector on every
prompt. Then ``noise`` x N(0, 1) is added to every weight, so that no edge is exactly irrelevant.

* :func:`induction_model`: two layers x 4 heads, attention only. A previous-token head (L0H0) and an
  induction head (L1H0) complete a pattern's second showing: truth = embed->L0H0, embed->L1H0,
  L0H0->L1H0, L1H0->logits.
* :func:`ioi_model`: a planted IOI-like circuit in three steps with an MLP, three layers x 4 heads, MLPs:
  a duplicate-token head (L0H0) marks a repeated name, MLP0 thresholds the mark, an S-inhibition-like head
  (L1H0) moves the repeated name to the end, and a name mover (L2H0) copies the name that is not inhibited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .graph import Edge, Weights


@dataclass
class Planted:
    """A hand-set model, its circuit's edges, and ``batch(n, seed)`` -> (clean, corrupted, pos, metric)."""

    weights: Weights
    truth: list[Edge]
    batch: Callable
    description: str


class _Space:
    """Named blocks of residual dimensions, allocated in order."""

    def __init__(self):
        self.d = 0
        self.blocks: dict[str, slice] = {}

    def add(self, name: str, n: int) -> slice:
        self.blocks[name] = slice(self.d, self.d + n)
        self.d += n
        return self.blocks[name]


def _empty(d: int, n_layers: int, n_heads: int, d_head: int, vocab: int, n_ctx: int, d_mlp: int | None) -> Weights:
    z = lambda *s: torch.zeros(*s)
    return Weights(W_E=z(vocab, d), W_pos=z(n_ctx, d), W_U=z(d, vocab),
                   W_Q=[z(n_heads, d, d_head) for _ in range(n_layers)],
                   W_K=[z(n_heads, d, d_head) for _ in range(n_layers)],
                   W_V=[z(n_heads, d, d_head) for _ in range(n_layers)],
                   W_O=[z(n_heads, d_head, d) for _ in range(n_layers)],
                   W_in=None if d_mlp is None else [z(d, d_mlp) for _ in range(n_layers)],
                   b_in=None if d_mlp is None else [z(d_mlp) for _ in range(n_layers)],
                   W_out=None if d_mlp is None else [z(d_mlp, d) for _ in range(n_layers)],
                   b_out=None if d_mlp is None else [z(d) for _ in range(n_layers)],
                   attn_scale=1.0)


def _distractor_head(w: Weights, layer: int, h: int, reads: list[slice], writes: slice, g: torch.Generator,
                     scale: float = 2.0) -> None:
    """Random queries, keys and values from ``reads``; the output goes to ``writes`` only."""
    for W, sc in ((w.W_Q, scale), (w.W_K, scale), (w.W_V, 1.0)):
        for s in reads:
            W[layer][h, s] = sc * torch.randn(W[layer][h, s].shape, generator=g) / (s.stop - s.start) ** 0.5
    w.W_O[layer][h, :, writes] = torch.randn(w.W_O[layer].shape[1], writes.stop - writes.start,
                                              generator=g) / w.W_O[layer].shape[1] ** 0.5


def _add_noise(w: Weights, noise: float, g: torch.Generator) -> None:
    mats = [w.W_E, w.W_pos, w.W_U] + w.W_Q + w.W_K + w.W_V + w.W_O + (w.W_in or []) + (w.W_out or [])
    for m in mats:
        m.add_(noise * torch.randn(m.shape, generator=g))


def induction_model(vocab: int = 16, half: int = 8, noise: float = 0.02, beta: float = 12.0,
                    seed: int = 0) -> Planted:
    """Previous-token head L0H0 + induction head L1H0 among 3 + 3 distractor heads; sequences = a pattern twice.

    Clean: ``half`` distinct random tokens, repeated. Corrupted: the first showing replaced by other random
    tokens (the second showing kept). Metric: the next token's logit minus the mean logit, over the second
    showing's positions (except the last).
    """
    T, H = 2 * half, 4
    sp = _Space()
    tok, pos, prev, out = sp.add("tok", vocab), sp.add("pos", T), sp.add("prev", vocab), sp.add("out", vocab)
    const = sp.add("const", 1)
    scratch = [sp.add(f"scratch{i}", 8) for i in range(4)]
    dh = max(vocab, T)
    w = _empty(sp.d, 2, H, dh, vocab, T, None)
    w.names = dict(sp.blocks)
    w.W_E[:, tok] = torch.eye(vocab)
    w.W_E[:, const] = 1.0
    w.W_pos[:, pos] = torch.eye(T)
    # L0H0, previous token: query at t (position t) matches key at s = t - 1 (position s + 1); copies the token.
    for t in range(T):
        w.W_Q[0][0, pos.start + t, t] = beta
        if t + 1 < T:
            w.W_K[0][0, pos.start + t, t + 1] = 1.0
    w.W_V[0][0, tok, :vocab] = torch.eye(vocab)
    w.W_O[0][0, :vocab, prev] = torch.eye(vocab)
    # L1H0, induction: query = current token, key = the previous token written by L0H0; copies the token there.
    w.W_Q[1][0, tok, :vocab] = beta * torch.eye(vocab)
    w.W_K[1][0, prev, :vocab] = torch.eye(vocab)
    w.W_V[1][0, tok, :vocab] = torch.eye(vocab)
    w.W_O[1][0, :vocab, out] = torch.eye(vocab)
    w.W_U[out] = 10.0 * torch.eye(vocab)
    g = torch.Generator().manual_seed(seed)
    for h in range(1, H):  # layer 0: read tokens and positions, write scratch
        _distractor_head(w, 0, h, [tok, pos], scratch[h - 1], g)
    for h in range(1, H - 1):  # layer 1: read tokens, previous tokens and scratch, write scratch
        _distractor_head(w, 1, h, [tok, prev, scratch[h - 1]], scratch[3], g)
    # L1H3 attends position 0 and writes one fixed vector into the output subspace: the same on every prompt.
    w.W_Q[1][H - 1, const, 0] = beta
    w.W_K[1][H - 1, pos.start, 0] = 1.0
    w.W_V[1][H - 1, const, 0] = 1.0
    w.W_O[1][H - 1, 0, out] = torch.randn(vocab, generator=g)
    _add_noise(w, noise, g)
    truth = [("embed", "L0H0"), ("embed", "L1H0"), ("L0H0", "L1H0"), ("L1H0", "logits")]

    def batch(n: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        both = torch.rand(n, vocab, generator=gen).argsort(-1)  # 2 x half distinct tokens per row
        pattern, other = both[:, :half], both[:, half:2 * half] if 2 * half <= vocab else both[:, :half].roll(1, -1)
        clean = torch.cat([pattern, pattern], 1)
        corrupt = torch.cat([other, pattern], 1)
        targets = clean[:, half + 1:]  # the token to predict at positions half .. T-2
        rows = torch.arange(n)

        def metric(logits: torch.Tensor) -> torch.Tensor:  # [K, B, T, V] -> [K]
            lg = logits[:, :, half:T - 1]
            ans = lg[:, rows[:, None], torch.arange(T - 1 - half)[None], targets]
            return (ans - lg.mean(-1)).mean((-1, -2))
        return clean, corrupt, None, metric

    return Planted(w, truth, batch, "toy induction: previous-token head L0H0 -> induction head L1H0, "
                   "3 + 3 distractor heads")


def ioi_model(n_names: int = 8, n_fillers: int = 7, noise: float = 0.01, beta: float = 16.0,
              seed: int = 0) -> Planted:
    """A planted three-step IOI-like circuit with an MLP, among distractor heads and MLP units.

    Prompts: BOS f N1 f N2 f S2 f END, with S2 one of N1, N2 (the other is the answer IO); fillers f are
    drawn from their own tokens. Corrupted (ABC): S2 is a third name. Metric: logit(IO) - logit(S) at END.
    """
    V = 1 + n_names + n_fillers + 1
    BOS, END = 0, V - 1
    names = torch.arange(1, 1 + n_names)
    fillers = torch.arange(1 + n_names, 1 + n_names + n_fillers)
    T, H = 9, 4
    sp = _Space()
    tok, pos = sp.add("tok", V), sp.add("pos", T)
    const, bos, name, dup_raw, dup = (sp.add(k, 1) for k in ("const", "bos", "name", "dup_raw", "dup"))
    inhibit, out = sp.add("inhibit", n_names), sp.add("out", V)
    scratch = [sp.add(f"scratch{i}", 6) for i in range(5)]
    dh = max(V, n_names + 1 + T)
    d_mlp = 8
    w = _empty(sp.d, 3, H, dh, V, T, d_mlp)
    w.names = dict(sp.blocks)
    w.W_E[:, tok] = torch.eye(V)
    w.W_E[:, const] = 1.0
    w.W_E[BOS, bos] = 1.0
    w.W_E[names, name] = 1.0
    w.W_pos[:, pos] = torch.eye(T)
    nm = slice(tok.start + 1, tok.start + 1 + n_names)  # the names' one-hot dimensions
    # L0H0, duplicate token: a name attends to an earlier copy of itself (not itself), else to BOS.
    w.W_Q[0][0, nm, :n_names] = beta * torch.eye(n_names)
    w.W_K[0][0, nm, :n_names] = torch.eye(n_names)
    w.W_Q[0][0, const, n_names] = beta / 2
    w.W_K[0][0, bos, n_names] = 1.0
    w.W_Q[0][0, pos, n_names + 1:] = beta * torch.eye(T)
    w.W_K[0][0, pos, n_names + 1:] = -torch.eye(T)
    w.W_V[0][0, name, 0] = 1.0
    w.W_O[0][0, 0, dup_raw] = 1.0
    # MLP0 unit 0: dup = relu(2 dup_raw - 1), a clean "this name is repeated" flag.
    w.W_in[0][dup_raw, 0] = 2.0
    w.b_in[0][0] = -1.0
    w.W_out[0][0, dup] = 1.0
    # L1H0, S-inhibition: attends the repeated name (else BOS), writes which name it is into "inhibit".
    w.W_Q[1][0, const, 0] = beta
    w.W_K[1][0, dup, 0] = 1.0
    w.W_Q[1][0, const, 1] = beta / 2
    w.W_K[1][0, bos, 1] = 1.0
    w.W_V[1][0, nm, 2:2 + n_names] = torch.eye(n_names)
    w.W_O[1][0, 2:2 + n_names, inhibit] = torch.eye(n_names)
    # L2H0, name mover: attends names, minus the inhibited one; copies the token into the output subspace.
    w.W_Q[2][0, const, 0] = beta
    w.W_K[2][0, name, 0] = 1.0
    w.W_Q[2][0, inhibit, 1:1 + n_names] = -2 * beta * torch.eye(n_names)
    w.W_K[2][0, nm, 1:1 + n_names] = torch.eye(n_names)
    w.W_V[2][0, tok, :V] = torch.eye(V)
    w.W_O[2][0, :V, out] = torch.eye(V)
    w.W_U[out] = 10.0 * torch.eye(V)
    g = torch.Generator().manual_seed(seed)
    # Distractors: heads that read the circuit's subspaces and write scratch; MLP units likewise.
    for h in range(1, H):
        _distractor_head(w, 0, h, [tok, pos], scratch[0], g)
        _distractor_head(w, 1, h, [tok, dup, dup_raw, scratch[0]], scratch[1 + (h % 2)], g)
    _distractor_head(w, 2, 1, [inhibit, tok, scratch[1]], scratch[3], g)
    _distractor_head(w, 2, 2, [name, pos, scratch[2]], scratch[4], g)
    # L2H3 attends BOS and writes one fixed vector into the output subspace: the same on every prompt.
    w.W_Q[2][3, const, 0] = beta
    w.W_K[2][3, bos, 0] = 1.0
    w.W_V[2][3, const, 0] = 1.0
    w.W_O[2][3, 0, out] = 0.3 * torch.randn(V, generator=g)
    for layer in range(3):
        units = range(1, d_mlp) if layer == 0 else range(d_mlp)
        reads = [tok, dup_raw, inhibit][layer]
        for u in units:
            w.W_in[layer][reads, u] = torch.randn(reads.stop - reads.start, generator=g)
            w.W_out[layer][u, scratch[(layer + u) % 5]] = 0.3 * torch.randn(6, generator=g)
    _add_noise(w, noise, g)
    truth = [("embed", "L0H0"), ("L0H0", "MLP0"), ("MLP0", "L1H0"), ("embed", "L1H0"), ("L1H0", "L2H0"),
             ("embed", "L2H0"), ("L2H0", "logits")]

    def batch(n: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        pick = torch.rand(n, n_names, generator=gen).argsort(-1)
        io, s, d = names[pick[:, 0]], names[pick[:, 1]], names[pick[:, 2]]
        f = fillers[torch.randint(0, n_fillers, (n, 4), generator=gen)]
        abba = torch.arange(n) % 2 == 0
        n1, n2 = torch.where(abba, io, s), torch.where(abba, s, io)
        col = lambda x: x[:, None]
        clean = torch.cat([torch.full((n, 1), BOS), col(f[:, 0]), col(n1), col(f[:, 1]), col(n2), col(f[:, 2]),
                           col(s), col(f[:, 3]), torch.full((n, 1), END)], 1)
        corrupt = clean.clone()
        corrupt[:, 6] = d
        end = torch.full((n,), T - 1)
        rows = torch.arange(n)

        def metric(logits: torch.Tensor) -> torch.Tensor:  # [K, B, V] -> [K]
            return (logits[:, rows, io] - logits[:, rows, s]).mean(-1)
        return clean, corrupt, end, metric

    return Planted(w, truth, batch, "planted IOI-like: duplicate-token head L0H0 -> MLP0 -> S-inhibition head "
                   "L1H0 -> name mover L2H0, 5 + 2 distractor heads (one writes a constant), 22 distractor MLP units")
