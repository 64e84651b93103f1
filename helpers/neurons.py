"""Single neurons: activations over a token stream, max-activating examples, activation bins, congruence search.

Chapter 2 (Neo & Miller's "an" neuron) uses all of it; every function takes any TransformerBridge
(organism or GPT-2) and never assumes a layer count, width or vocabulary. A neuron is named by a
``(layer, index)`` pair and read at ``blocks.{layer}.mlp.hook_post`` (its activation after the GELU,
the coefficient of its row of ``W_out``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from .attribution import neuron_congruence
from .hooks import run_with_capture
from .tasks import PromptBatch, bos_id, get_tokenizer

Neuron = tuple[int, int]


def _check_neurons(model, neurons: Sequence[Neuron]) -> None:
    if len(neurons) == 0:
        raise ValueError("no neurons given")
    for layer, idx in neurons:
        if not 0 <= layer < model.cfg.n_layers:
            raise ValueError(f"layer {layer} out of range: this model has {model.cfg.n_layers} layers")
        if not 0 <= idx < model.cfg.d_mlp:
            raise ValueError(f"neuron {idx} out of range: layer {layer} has {model.cfg.d_mlp} neurons")


# --------------------------------------------------------------------------- a token stream

def encode_texts(model, texts: Sequence[str], max_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts as right-padded rows of token ids, BOS first, and a mask of real tokens -> ([N, T], [N, T])."""
    if len(texts) == 0:
        raise ValueError("no texts given")
    tok = get_tokenizer(model)
    bos = bos_id(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    max_len = max_len or model.cfg.n_ctx
    rows = [([bos] + list(tok(t, add_special_tokens=False)["input_ids"]))[:max_len] for t in texts]
    T = max(len(r) for r in rows)
    tokens = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, r in enumerate(rows):
        tokens[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = True
    return tokens, mask


@dataclass
class StreamRecord:
    """Neuron activations and the model's top prediction at every position of a token stream."""

    tokens: torch.Tensor       # [N, T]
    mask: torch.Tensor         # [N, T] real tokens (False on padding)
    neurons: list[Neuron]
    acts: torch.Tensor         # [n_neurons, N, T] activation after the nonlinearity
    top: torch.Tensor          # [N, T] argmax of the logits (the prediction of the *next* token)

    def act(self, neuron: Neuron) -> torch.Tensor:
        """Activations [N, T] of one recorded neuron."""
        return self.acts[self.neurons.index(tuple(neuron))]


@torch.no_grad()
def record_stream(model, tokens: torch.Tensor, mask: torch.Tensor, neurons: Sequence[Neuron],
                  batch_size: int = 64, progress: bool = True) -> StreamRecord:
    """Run the stream once, keeping the given neurons' activations and the top prediction everywhere."""
    neurons = [tuple(n) for n in neurons]
    _check_neurons(model, neurons)
    if tokens.ndim != 2 or tokens.shape != mask.shape:
        raise ValueError(f"tokens and mask must have the same shape [N, T]; got {tuple(tokens.shape)} and {tuple(mask.shape)}")
    layers = sorted({layer for layer, _ in neurons})
    acts, tops = [], []
    dev = getattr(model.cfg, "device", None) or "cpu"
    starts = range(0, tokens.shape[0], batch_size)
    for s in tqdm(starts, desc="token stream", disable=not progress or len(starts) == 1):
        logits, store = run_with_capture(model, tokens[s:s + batch_size].to(dev),
                                         [f"blocks.{i}.mlp.hook_post" for i in layers], clone=False)
        tops.append(logits.argmax(-1).cpu())
        acts.append(torch.stack([store[f"blocks.{layer}.mlp.hook_post"][..., idx].float().cpu()
                                 for layer, idx in neurons]))
    return StreamRecord(tokens, mask, neurons, torch.cat(acts, 1), torch.cat(tops))


def max_activating(acts: torch.Tensor, mask: torch.Tensor, k: int = 10) -> list[tuple[int, int, float]]:
    """The ``k`` highest activations over real tokens, as (row, position, value), highest first."""
    if acts.shape != mask.shape:
        raise ValueError(f"acts {tuple(acts.shape)} and mask {tuple(mask.shape)} must have the same shape")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    flat = acts.masked_fill(~mask, float("-inf")).flatten()
    k = min(k, int(mask.sum()))
    vals, idx = flat.topk(k)
    T = acts.shape[1]
    return [(int(i) // T, int(i) % T, float(v)) for v, i in zip(vals, idx)]


def activation_bins(acts: torch.Tensor, hit: torch.Tensor, mask: torch.Tensor, n_bins: int = 20,
                    min_count: int = 1) -> pd.DataFrame:
    """Proportion of ``hit`` (e.g. "the top prediction is ' an'") per equal-width bin of activation.

    Returns one row per bin holding at least ``min_count`` tokens: ``lo``, ``hi``, ``mid``, ``count``,
    ``hits``, ``proportion``.
    """
    if not (acts.shape == hit.shape == mask.shape):
        raise ValueError(f"acts, hit and mask must have the same shape; got {tuple(acts.shape)}, "
                         f"{tuple(hit.shape)}, {tuple(mask.shape)}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    a, h = acts[mask].float(), hit[mask].bool()
    if a.numel() == 0:
        raise ValueError("the mask selects no tokens")
    lo, hi = a.min().item(), a.max().item()
    edges = torch.linspace(lo, hi if hi > lo else lo + 1.0, n_bins + 1)
    b = torch.bucketize(a, edges[1:-1], right=True)
    rows = []
    for i in range(n_bins):
        sel = b == i
        n = int(sel.sum())
        if n >= min_count:
            hits = int(h[sel].sum())
            rows.append({"lo": edges[i].item(), "hi": edges[i + 1].item(),
                         "mid": (edges[i] + edges[i + 1]).item() / 2, "count": n, "hits": hits,
                         "proportion": hits / n})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- congruence search

@dataclass
class CongruenceSearch:
    """Per token its two most congruent neurons; per neuron its two most congruent tokens (all layers)."""

    token_best: torch.Tensor          # [V] congruence of the token's most congruent neuron
    token_second: torch.Tensor        # [V] ... of its second
    token_best_neuron: torch.Tensor   # [V, 2] (layer, index) of that neuron
    neuron_best: torch.Tensor         # [L, d_mlp] congruence of the neuron's most congruent token
    neuron_second: torch.Tensor       # [L, d_mlp] ... of its second
    neuron_best_token: torch.Tensor   # [L, d_mlp] id of that token

    @property
    def token_margin(self) -> torch.Tensor:
        """How far each token's best neuron stands above its next best [V]."""
        return self.token_best - self.token_second

    @property
    def neuron_margin(self) -> torch.Tensor:
        """How far each neuron's best token stands above its next best [L, d_mlp]."""
        return self.neuron_best - self.neuron_second


@torch.no_grad()
def congruence_search(model, chunk: int = 2048, exclude: Sequence[int] = (),
                      progress: bool = True) -> CongruenceSearch:
    """Scan W_out @ W_U of every layer in neuron chunks (GPT-2 large's 36 x 5120 x 50257 never fits at once).

    ``exclude`` lists token ids left out of the search (e.g. special tokens the model never predicts).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    L, D, V = model.cfg.n_layers, model.cfg.d_mlp, model.cfg.d_vocab
    keep = torch.ones(V, dtype=torch.bool)
    if len(exclude):
        ex = torch.as_tensor(list(exclude), dtype=torch.long)
        if (ex < 0).any() or (ex >= V).any():
            raise ValueError(f"excluded token ids must lie in [0, {V})")
        keep[ex] = False
    neg = torch.tensor(float("-inf"))
    tb, ts = torch.full((V,), -torch.inf), torch.full((V,), -torch.inf)
    tbn = torch.zeros((V, 2), dtype=torch.long)
    nb, ns = torch.empty(L, D), torch.empty(L, D)
    nbt = torch.empty(L, D, dtype=torch.long)
    jobs = [(layer, s) for layer in range(L) for s in range(0, D, chunk)]
    for layer, s in tqdm(jobs, desc="congruence", disable=not progress or len(jobs) < 8):
        c = neuron_congruence(model, layer, neurons=slice(s, s + chunk)).float().cpu()  # [n, V]
        c = torch.where(keep, c, neg)
        top2 = c.topk(2, dim=1)
        nb[layer, s:s + c.shape[0]], ns[layer, s:s + c.shape[0]] = top2.values[:, 0], top2.values[:, 1]
        nbt[layer, s:s + c.shape[0]] = top2.indices[:, 0]
        # merge this chunk's two best neurons per token with the running two best
        k = min(2, c.shape[0])
        ctop = c.topk(k, dim=0)
        vals = torch.cat([torch.stack([tb, ts]), ctop.values])            # [2 + k, V]
        where = torch.cat([torch.stack([tbn, tbn]), torch.stack(
            [torch.stack([torch.full_like(i, layer), i + s], -1) for i in ctop.indices])])  # [2 + k, V, 2]
        # (the second's identity is not needed: only its value, for the margin)
        order = vals.topk(2, dim=0).indices
        cols = torch.arange(V)
        tb, ts = vals[order[0], cols], vals[order[1], cols]
        tbn = where[order[0], cols]
    tb, ts = torch.where(keep, tb, torch.nan), torch.where(keep, ts, torch.nan)
    return CongruenceSearch(tb, ts, tbn, nb, ns, nbt)


def top_token_neurons(search: CongruenceSearch, model, k: int = 10) -> pd.DataFrame:
    """Tokens whose most congruent neuron stands out most above the next (the seed's first search)."""
    m = search.token_margin.nan_to_num(float("-inf"))
    idx = m.topk(min(k, int(torch.isfinite(m).sum()))).indices
    return pd.DataFrame([{"token": repr(model.to_single_str_token(int(t))), "neuron":
                          f"L{int(search.token_best_neuron[t, 0])}.N{int(search.token_best_neuron[t, 1])}",
                          "congruence": search.token_best[t].item(), "margin": search.token_margin[t].item()}
                         for t in idx])


def exclusive_pairs(search: CongruenceSearch, model, k: int = 10) -> pd.DataFrame:
    """Mutually exclusive (token, neuron) pairs, ranked by token margin x neuron margin (the seed's second search).

    A pair qualifies when the neuron is the token's most congruent neuron *and* the token is the
    neuron's most congruent token.
    """
    rows = []
    for t in range(search.token_best.shape[0]):
        if torch.isnan(search.token_best[t]):
            continue
        layer, n = (int(x) for x in search.token_best_neuron[t])
        if int(search.neuron_best_token[layer, n]) == t:
            tm, nm = search.token_margin[t].item(), search.neuron_margin[layer, n].item()
            rows.append({"token": repr(model.to_single_str_token(t)), "token_id": t, "layer": layer,
                         "neuron": n, "congruence": search.token_best[t].item(), "token_margin": tm,
                         "neuron_margin": nm, "score": tm * nm})
    df = pd.DataFrame(rows, columns=["token", "token_id", "layer", "neuron", "congruence", "token_margin",
                                     "neuron_margin", "score"])
    return df.sort_values("score", ascending=False).head(k).reset_index(drop=True)


def congruence_rank(model, token: int, neuron: Neuron) -> int:
    """Rank (0 = first) of ``neuron`` among all neurons of all layers by congruence with ``token``."""
    _check_neurons(model, [neuron])
    ids = torch.tensor([token])
    allc = torch.cat([neuron_congruence(model, layer, ids)[:, 0] for layer in range(model.cfg.n_layers)])
    mine = allc[neuron[0] * model.cfg.d_mlp + neuron[1]]
    return int((allc > mine).sum())


def equal_length_prompts(batch: PromptBatch, model, n: int) -> PromptBatch:
    """Up to ``n`` prompts of the most common token length whose words are single tokens for ``model``.

    Patching by position needs one length; prompts that do not encode for this model (a key word or
    answer split into several tokens, as some nouns are for GPT-2) are left out.
    """
    if len(batch) == 0:
        raise ValueError("empty prompt batch")
    ok, ends = [], []
    for i in range(len(batch)):
        try:
            ends.append(int(batch[[i]].encode(model, device="cpu").end[0]))
            ok.append(i)
        except ValueError:
            continue
    if not ok:
        raise ValueError("no prompt of the batch encodes for this model (every one has a multi-token word)")
    e = torch.tensor(ends)
    common = int(e.mode().values)
    return batch[[i for i, end in zip(ok, ends) if end == common][:n]]
