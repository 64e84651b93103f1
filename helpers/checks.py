"""Checks at the API's edge: a bad input is a clear error here, never a silent wrong answer later.

Each check names what is wrong and what to do. They are cheap (shapes, a max over token ids), so every
entry point that takes tokens, positions, cached activations, variants or token ids calls them before
any forward pass: an empty batch, a prompt longer than the model's context, a right-padded batch read
at ``pos=-1``, a source cache of other prompts, a head the model does not have, a token id past the
vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch

_BLOCK_HOOK = re.compile(r"^blocks\.(\d+)\.(.+)$")


def check_batch(model, tokens: torch.Tensor) -> None:
    """Tokens [batch, pos]: not empty, no longer than the model's context, ids inside its vocabulary."""
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise ValueError(f"tokens must be a [batch, pos] tensor, got {getattr(tokens, 'shape', type(tokens))}")
    B, T = tokens.shape
    if B == 0 or T == 0:
        raise ValueError(f"empty batch of tokens (shape {tuple(tokens.shape)}): no prompt to run")
    cfg = getattr(model, "cfg", None)
    n_ctx = getattr(cfg, "n_ctx", None)
    if isinstance(n_ctx, int) and T > n_ctx:
        raise ValueError(f"the prompts are {T} tokens long but the model's context is {n_ctx} tokens: "
                         "shorten them (the model would truncate or fail deep inside)")
    n_vocab = getattr(cfg, "d_vocab", None)
    if isinstance(n_vocab, int):
        check_token_ids(tokens, n_vocab, "tokens")


def check_token_ids(ids: torch.Tensor, n_vocab: int, what: str = "token ids") -> None:
    """Every id in ``[0, n_vocab)``: an id past the vocabulary would index garbage or fail in torch."""
    ids = torch.as_tensor(ids)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_vocab):
        bad = ids[(ids < 0) | (ids >= n_vocab)].unique()[:5].tolist()
        raise ValueError(f"{what} must lie in [0, {n_vocab}) (the model's vocabulary), got {bad}")


def pad_id(model) -> int | None:
    """The id that pads a right-padded batch (``PromptBatch.encode``): the tokenizer's pad, else BOS."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        return None
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        value = getattr(tok, name, None)
        if value is not None:
            return int(value)
    return None


def check_not_padding(model, tokens: torch.Tensor, pos) -> None:
    """Refuse ``pos=-1`` (any negative position) on a right-padded batch: some rows would be read at padding.

    A batch is right-padded when some rows end in the pad token and others do not. Pass each prompt's
    own last position instead (``Encoded.end``, or ``lengths - 1``).
    """
    p = torch.as_tensor(pos)
    if not bool((p < 0).any()) or tokens.shape[0] < 2:
        return
    pad = pad_id(model)
    if pad is None:
        return
    ends_in_pad = tokens[:, -1] == pad
    if bool(ends_in_pad.any()) and not bool(ends_in_pad.all()):
        rows = ends_in_pad.nonzero().flatten()[:8].tolist()
        raise ValueError(f"pos={pos if p.ndim == 0 else p.tolist()} counts from the end of a right-padded batch: "
                         f"rows {rows} end in the pad token {pad}, so their answer would be read at padding. "
                         "Pass each prompt's last position (pos=enc.end from PromptBatch.encode), or use "
                         "prompts of one length.")


def check_sources(model, source: Mapping[str, torch.Tensor], batch: int, n_pos: int) -> None:
    """Cached activations fit the base prompts: batch 1 or B, and the position axis (or axes) of length T."""
    for name, act in source.items():
        if act.shape[0] not in (1, batch):
            raise ValueError(f"source[{name!r}] has batch {act.shape[0]}, expected 1 (a mean) or {batch}")
        want = expected_shape(model, name, n_pos)
        if want is not None and tuple(act.shape[1:]) != want:
            raise ValueError(f"source[{name!r}] has shape {tuple(act.shape[1:])} after the batch axis but the base "
                             f"prompts need {want}: was it cached on other prompts (position axis {n_pos})?")


def expected_shape(model, hook: str, n_pos: int) -> tuple[int, ...] | None:
    """The shape after the batch axis of a block's hook on prompts of ``n_pos`` tokens (None if unknown)."""
    m = _BLOCK_HOOK.match(hook)
    cfg = getattr(model, "cfg", None)
    if m is None or cfg is None:
        return None
    H, d_head, d_model = cfg.n_heads, cfg.d_head, cfg.d_model
    d_mlp = getattr(cfg, "d_mlp", None)
    name = m.group(2)
    if name in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out"):
        return (n_pos, d_model)
    if name in ("attn.hook_z", "attn.hook_q", "attn.hook_k", "attn.hook_v"):
        return (n_pos, H, d_head)
    if name in ("attn.hook_pattern", "attn.hook_attn_scores"):
        return (H, n_pos, n_pos)
    if name in ("mlp.hook_pre", "mlp.hook_post") and d_mlp:
        return (n_pos, d_mlp)
    return None


def check_variants(model, variants: Sequence[Sequence], shapes: Mapping[str, torch.Size]) -> None:
    """Each site names a cached hook of a layer the model has, and indexes inside the activation."""
    n_layers = getattr(getattr(model, "cfg", None), "n_layers", None)
    for k, variant in enumerate(variants):
        for site in variant:
            m = _BLOCK_HOOK.match(site.hook)
            if m and isinstance(n_layers, int) and int(m.group(1)) >= n_layers:
                raise ValueError(f"variant {k} patches {site.hook!r} but the model has {n_layers} layers "
                                 f"(blocks 0..{n_layers - 1})")
            if site.hook not in shapes:
                raise KeyError(f"no source activation for hook {site.hook!r} (variant {k} patches it); "
                               "cache it first")
            shape = tuple(shapes[site.hook][1:])
            try:
                torch.empty(shape, device="meta")[tuple(site.index)]
            except IndexError as err:
                extra = ""
                if site.hook.endswith("attn.hook_z") and len(shape) == 3:
                    extra = f" (the model has {shape[1]} heads, {shape[0]} positions)"
                raise ValueError(f"variant {k}: site {site.hook}[{_fmt(site.index)}] is outside the activation's "
                                 f"shape {list(shape)}{extra}: {err}") from None


def _fmt(index: tuple) -> str:
    return ", ".join(":" if isinstance(i, slice) and i == slice(None) else str(i) for i in index)
