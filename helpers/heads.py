"""Head scores for any TransformerLens model: what each attention head attends to, as one number.

Every score is an average attention probability, so it lies in [0, 1], and every function returns a
``[n_layers, n_heads]`` tensor (or ``[n_layers, n_heads, positions]``). Nothing here depends on a
particular model: sizes come from ``model.cfg``, patterns from the ``blocks.{l}.attn.hook_pattern``
hooks that TransformerBridge (compatibility mode) and HookedTransformer both expose.

* previous-token score: attention from position t to t-1, on random tokens;
* induction score: on a random sequence repeated twice, attention from the second copy's token at t
  to the token *after* its first occurrence (t - L + 1);
* duplicate-token score: same input, attention to the first occurrence itself (t - L).

``bos``: a token id to put first (GPT-2 style models expect one: pass ``model.tokenizer.bos_token_id``);
``None`` puts nothing, which suits the book's toy models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .hooks import layer_norm


def _cfg(model):
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "n_layers") or not hasattr(cfg, "d_vocab"):
        raise TypeError(f"expected a TransformerLens model with .cfg (n_layers, d_vocab), got {type(model)}")
    return cfg


@torch.no_grad()
def attention_patterns(model, tokens: torch.Tensor) -> torch.Tensor:
    """All attention patterns of ``model`` on ``tokens``: (n_layers, batch, n_heads, T, T)."""
    cfg = _cfg(model)
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be (batch, seq), got shape {tuple(tokens.shape)}")
    if tokens.shape[1] > cfg.n_ctx:
        raise ValueError(f"sequence length {tokens.shape[1]} exceeds the model's n_ctx={cfg.n_ctx}")
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(cfg.n_layers)]
    _, cache = model.run_with_cache(tokens.to(cfg.device), names_filter=lambda n: n in names)
    return torch.stack([cache[n].float().cpu() for n in names])


def random_tokens(model, batch: int, seq_len: int, seed: int = 0, bos: int | None = None) -> torch.Tensor:
    """(batch, seq_len) uniform random token ids of the model's vocabulary (+1 column if ``bos``)."""
    cfg = _cfg(model)
    if batch < 1 or seq_len < 2:
        raise ValueError(f"need batch >= 1 and seq_len >= 2, got {batch}, {seq_len}")
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, cfg.d_vocab, (batch, seq_len), generator=g)
    return _with_bos(tokens, bos)


def repeated_random_tokens(model, batch: int, half: int, seed: int = 0, bos: int | None = None) -> torch.Tensor:
    """(batch, 2*half) random tokens whose second half repeats the first (+1 column if ``bos``)."""
    first = random_tokens(model, batch, half, seed)
    return _with_bos(torch.cat([first, first], dim=1), bos)


def _with_bos(tokens: torch.Tensor, bos: int | None) -> torch.Tensor:
    if bos is None:
        return tokens
    return torch.cat([torch.full((tokens.shape[0], 1), int(bos)), tokens], dim=1)


def _default_len(model, bos: int | None, cap: int) -> int:
    return min(cap, _cfg(model).n_ctx - (bos is not None))


def previous_token_scores_by_position(model, tokens: torch.Tensor | None = None, batch: int = 64,
                                      seed: int = 0, bos: int | None = None) -> torch.Tensor:
    """Attention to the previous token at each query position t >= 1: (n_layers, n_heads, T - 1).

    On ``tokens`` if given, else on random tokens filling the context. With ``bos``, the BOS
    column is dropped from the positions reported (entry 0 is the first real token's query)."""
    if tokens is None:
        tokens = random_tokens(model, batch, _default_len(model, bos, 256), seed, bos)
    pat = attention_patterns(model, tokens)                   # (L, B, H, T, T)
    t = torch.arange(1, tokens.shape[1])
    score = pat[..., t, t - 1].mean(1)                        # (L, H, T-1)
    return score[..., 1:] if bos is not None else score


def previous_token_scores(model, tokens: torch.Tensor | None = None, batch: int = 64, seed: int = 0,
                          bos: int | None = None) -> torch.Tensor:
    """Mean attention from each token to the one before it: (n_layers, n_heads)."""
    return previous_token_scores_by_position(model, tokens, batch, seed, bos).mean(-1)


def _repeat_scores(model, offset: int, half: int | None, batch: int, seed: int, bos: int | None) -> torch.Tensor:
    half = half or _default_len(model, bos, 100) // 2
    if 2 * half + (bos is not None) > _cfg(model).n_ctx:
        raise ValueError(f"2 * half = {2 * half} does not fit in n_ctx={_cfg(model).n_ctx}")
    tokens = repeated_random_tokens(model, batch, half, seed, bos)
    pat = attention_patterns(model, tokens)                   # (L, B, H, T, T)
    b = int(bos is not None)
    q = torch.arange(b + half, b + 2 * half)                  # queries in the second copy
    return pat[..., q, q - half + offset].mean(dim=(1, -1))   # (L, H)


def induction_scores(model, half: int | None = None, batch: int = 64, seed: int = 0,
                     bos: int | None = None) -> torch.Tensor:
    """Attention from the second copy's token to the token after its first occurrence: (n_layers, n_heads)."""
    return _repeat_scores(model, +1, half, batch, seed, bos)


def duplicate_token_scores(model, half: int | None = None, batch: int = 64, seed: int = 0,
                           bos: int | None = None) -> torch.Tensor:
    """Attention from the second copy's token to its own first occurrence: (n_layers, n_heads)."""
    return _repeat_scores(model, 0, half, batch, seed, bos)


def top_head(scores: torch.Tensor, layer: int | None = None) -> tuple[int, int, float]:
    """(layer, head, score) of the highest-scoring head, optionally within one layer."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be (n_layers, n_heads), got shape {tuple(scores.shape)}")
    if layer is not None:
        h = int(scores[layer].argmax())
        return layer, h, float(scores[layer, h])
    idx = int(scores.argmax())
    layer_, h = divmod(idx, scores.shape[1])
    return layer_, h, float(scores[layer_, h])


def cutoff_position(by_position: torch.Tensor, level: float = 0.5) -> int:
    """Where a diagonal ends for good: 1 + the last query position whose score is >= ``level``.

    ``by_position[i]`` is the score of query position ``i + 1`` (as ``previous_token_scores_by_position``
    returns it). 1 if no position reaches ``level``; ``len(by_position) + 1`` if the last one does."""
    if by_position.dim() != 1:
        raise ValueError(f"expected one score per position, got shape {tuple(by_position.shape)}")
    above = (by_position >= level).nonzero()
    return int(above[-1]) + 2 if len(above) else 1


@torch.no_grad()
def positional_pattern(model, layer: int, head: int, n_pos: int | None = None) -> torch.Tensor:
    """The (n_pos, n_pos) attention pattern a head would have from position embeddings alone.

    Every token is replaced by the average token embedding, so only ``W_pos`` tells positions apart;
    the residual stream is layer-normed (LN weights are folded into W_Q/W_K in compatibility mode) and
    read through the head's query and key. Meaningful for the first layer, which reads embeddings only.
    """
    cfg = _cfg(model)
    n_pos = n_pos or cfg.n_ctx
    resid = layer_norm(model.W_pos[:n_pos] + model.W_E.mean(0), cfg.eps)   # (P, D); LN weights are folded
    q = resid @ model.W_Q[layer, head] + model.b_Q[layer, head]              # (P, d_head)
    k = resid @ model.W_K[layer, head] + model.b_K[layer, head]
    scores = q @ k.T / cfg.d_head ** 0.5
    causal = torch.tril(torch.ones(n_pos, n_pos, dtype=torch.bool, device=scores.device))
    return scores.masked_fill(~causal, float("-inf")).softmax(-1).float().cpu()


@torch.no_grad()
def loss_by_position(model, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss at each position, (T - 1,), for any model mapping tokens to logits."""
    device = getattr(getattr(model, "cfg", None), "device", None)
    tokens = tokens.to(device) if device is not None else tokens
    logits = model(tokens)[:, :-1].float()
    loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:].to(logits.device), reduction="none")
    return loss.mean(0).cpu()


@torch.no_grad()
def attention_spread(model, tokens: torch.Tensor, lengths: torch.Tensor | None = None,
                     query_pos: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """How spread out each head's attention rows are: ``bos`` (weight on position 0), ``max`` (the largest
    weight of a row) and ``entropy`` (of a row, divided by its largest possible value, log of the number
    of keys: 0 = one key, 1 = uniform), each averaged over rows -> {name: [n_layers, n_heads]}.

    Rows: every query position from 1 up to each prompt's length (``lengths``; all positions if None),
    or one position per prompt (``query_pos`` [B], e.g. the answer position). A "gradient" diagram
    (seed 000's "dégradé") is a high entropy and a low max; a sharp role a max near 1.
    """
    pat = attention_patterns(model, tokens)                  # (L, B, H, T, T)
    B, T = tokens.shape
    q = torch.arange(T)
    if query_pos is not None:
        qp = torch.as_tensor(query_pos).cpu().view(-1)
        if qp.numel() != B or (qp < 1).any() or (qp >= T).any():
            raise ValueError(f"query_pos must hold one position in [1, {T}) per prompt, got {qp.tolist()}")
        rows = (q[None, :] == qp[:, None])
    else:
        n = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths).cpu().view(-1)
        if n.numel() != B:
            raise ValueError(f"lengths must hold one length per prompt ({B}), got {n.numel()}")
        rows = (q[None, :] >= 1) & (q[None, :] < n[:, None])
    w = rows[None, :, None, :].float()                       # (1, B, 1, T)
    logp = torch.where(pat > 0, pat.clamp_min(1e-30).log(), torch.zeros_like(pat))
    ent = -(pat * logp).sum(-1) / torch.log((q + 1).float()).clamp_min(1e-9)  # (L, B, H, T); q = 0 unused

    def avg(x: torch.Tensor) -> torch.Tensor:
        return (x * w).sum((1, 3)) / w.sum((1, 3))

    return {"bos": avg(pat[..., 0]), "max": avg(pat.max(-1).values), "entropy": avg(ent)}
