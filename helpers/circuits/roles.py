"""Roles of a circuit's heads: attention and copy scores, and the rules that name each head's class.

:func:`classify_roles` is the one rule every task's circuit is named by (chapters 4 and 5);
:func:`classify_heads` names heads by the IOI paper's classes (chapter 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..hooks import as_positions, capture, check_tokens, final_ln, layer_norm
from .head_sets import Head, head_name, parse_head

if TYPE_CHECKING:
    import pandas as pd

    from .discovery import TaskCircuit


@torch.no_grad()
def attention_scores(model, tokens: torch.Tensor, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
    """Mean attention from ``query_pos`` to ``key_pos`` (one of each per prompt) -> [L, H]."""
    check_tokens(tokens)
    B, T = tokens.shape
    q, k = as_positions(query_pos, B, T), as_positions(key_pos, B, T)
    if (k > q).any():
        raise ValueError("key positions must not come after query positions (attention is causal)")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    pats = capture(model, tokens, names)
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
    x = capture(model, tokens, ["blocks.0.hook_resid_post"])["blocks.0.hook_resid_post"][:, 1]
    x = layer_norm(x, model.cfg.eps)  # the layer-1 LayerNorm (its weights are folded into W_V)
    ov = torch.einsum("nd,lhde,lhem->lhnm", x, model.W_V, model.W_O)
    logits = final_ln(ov, model) @ model.W_U
    if within:
        logits = logits[..., token_ids.to(dev)]
        token_ids = torch.arange(len(token_ids))
    if negative:
        logits = -logits
    top = logits.topk(top_k, dim=-1).indices  # [L, H, n, k]
    return (top == token_ids.to(dev)[:, None]).any(-1).float().mean(-1)


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
    acts = capture(model, tokens, names)
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


def classify_heads(table: pd.DataFrame, direct: Sequence[Head], feeders, carriers: Sequence[Head] = ()) -> dict[Head, tuple[str, str]]:
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
        layer, head = parse_head(row.sender)
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


ROLE_COLUMNS = ("END→answer", "END→rival", "repeat→first", "repeat→first+1")


def classify_roles(tc: TaskCircuit, table: pd.DataFrame) -> dict[Head, tuple[str, str]]:
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


def behaviour_roles(heads: Sequence[Head], table: pd.DataFrame, effect: torch.Tensor, copy: torch.Tensor,
                    att_min: float, copy_min: float) -> dict[Head, tuple[str, str]]:
    """Name each head's role from what it measurably does, by one rule for every task -> {head: (role, why)}.

    ``table``: :func:`attention_table` (``how="sum"``) with the columns of :data:`ROLE_COLUMNS`;
    ``effect`` [L, H]: change of the task metric (fraction of the clean one) when the head's output is
    patched from the corrupted run (:func:`helpers.circuits.knockout_effects` with the corrupted cache);
    ``copy`` [L, H]: :func:`copy_scores` of the task's answer tokens (names; colors). In this order:
    *mover* if END→answer >= ``att_min`` and copy >= ``copy_min`` (it attends the answer and its OV
    circuit writes the attended token's own logit); *inhibition* if END→rival >= ``att_min`` and
    patching its output lowers the metric (it looks at the rival(s) and helps the right answer);
    *duplicate-token* / *induction* if repeat→first / repeat→first+1 (the larger) >= ``att_min``;
    otherwise *other*. No sign of a knockout decides a role on its own.
    """
    missing = [c for c in ROLE_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"attention table lacks the columns {missing}")
    out: dict[Head, tuple[str, str]] = {}
    for h in heads:
        h = tuple(h)
        r, e, c = table.loc[head_name(h)], float(effect[h]), float(copy[h])
        why = (f"END→answer {r['END→answer']:.2f}, END→rival {r['END→rival']:.2f}, copy {c:.2f}, "
               f"patched {e:+.0%}")
        if r["END→answer"] >= att_min and c >= copy_min:
            role = "mover"
        elif r["END→rival"] >= att_min and e < 0:
            role = "inhibition"
        elif max(r["repeat→first"], r["repeat→first+1"]) >= att_min:
            role = "duplicate-token" if r["repeat→first"] >= r["repeat→first+1"] else "induction"
            why = f"repeat→first {r['repeat→first']:.2f}, →first+1 {r['repeat→first+1']:.2f}; " + why
        else:
            role = "other"
        out[h] = (role, why)
    return out
