"""Public primitives over a model's hooks: capture activations, logits at positions, the final LayerNorm.

Every analysis module runs the model through these, so that a patch, a capture and an early stop mean
the same thing everywhere. A *hook* is a ``(name, fn)`` pair as ``model.run_with_hooks`` takes it.

Checked on the TransformerBridge (TransformerLens 4.3, compatibility mode; tiny random GPT-2 and the
organism): ``run_with_cache(names_filter=[...])`` returns the same tensors as :func:`capture`, but it
takes no extra hooks (a capture under a patch needs ``model.hooks``), stops early only at the start of
a block (``stop_at_layer``: never after ``ln_final``, so it always pays the unembedding) and keys the
cache by both our names and the bridge's canonical ones. Modules that only read a clean run
(``heads``, ``clustering``) call it directly; everything that patches, or stops early, uses
:func:`capture`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .checks import check_batch, check_not_padding

LN_FINAL = "ln_final.hook_normalized"  # the normalised residual stream the unembedding reads
Hook = tuple[str, Callable]


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once everything needed is captured."""


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


# --------------------------------------------------------------------------- capturing

def _keepers(names: Sequence[str], store: dict[str, torch.Tensor], stop: bool, clone: bool) -> list[Hook]:
    wanted = list(dict.fromkeys(names))

    def keeper(name: str) -> Callable:
        def keep(act, hook):  # hook.name may be the canonical name of an alias: key by ours
            store[name] = act.detach().clone() if clone else act.detach()
            if stop and len(store) == len(wanted):
                raise _Stop
        return keep
    return [(n, keeper(n)) for n in wanted]


def _check_found(names: Sequence[str], store: dict[str, torch.Tensor]) -> None:
    missing = set(names) - set(store)
    if missing:
        raise KeyError(f"hooks not found on this model: {sorted(missing)}")


@torch.no_grad()
def capture(model, tokens: torch.Tensor, names: Sequence[str], fwd_hooks: Sequence[Hook] = (),
            clone: bool = True) -> dict[str, torch.Tensor]:
    """The named activations of a run of ``tokens`` with ``fwd_hooks`` (e.g. patches) in place.

    The forward stops as soon as the last of them is kept, so nothing after it is computed.
    ``clone=False`` keeps the tensors the model produced (no copy: for large captures of a plain run).
    """
    check_batch(model, tokens)
    store: dict[str, torch.Tensor] = {}
    try:
        model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + _keepers(names, store, True, clone))
    except _Stop:
        pass
    _check_found(names, store)
    return store


@torch.no_grad()
def run_with_capture(model, tokens: torch.Tensor, names: Sequence[str], fwd_hooks: Sequence[Hook] = (),
                     clone: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A full forward with ``fwd_hooks``: the logits [B, T, V] and the named activations (as :func:`capture`)."""
    check_batch(model, tokens)
    store: dict[str, torch.Tensor] = {}
    logits = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks) + _keepers(names, store, False, clone))
    _check_found(names, store)
    return logits, store


# --------------------------------------------------------------------------- the final LayerNorm and logits

def ln_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    """What a LayerNorm divides by: the root mean square of the centred ``x`` (last axis kept, size 1).

    Computed in float32 for half-precision inputs (as the bridge's LayerNorm does: GPT-2's residual
    stream squares past float16's range), returned in ``x``'s dtype.
    """
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    c = xf - xf.mean(-1, keepdim=True)
    return (c.pow(2).mean(-1, keepdim=True) + eps).sqrt().to(x.dtype)


def layer_norm(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None) -> torch.Tensor:
    """Centre, divide by :func:`ln_scale`, then scale and shift: the bridge's own formula, to float rounding."""
    if x.dtype in (torch.float16, torch.bfloat16):  # normalise in float32, as the bridge does
        return layer_norm(x.float(), eps, weight, bias).to(x.dtype)
    x = (x - x.mean(-1, keepdim=True)) / ln_scale(x, eps)
    if weight is not None:
        x = x * weight
    return x + bias if bias is not None else x


def final_ln(x: torch.Tensor, model) -> torch.Tensor:
    """``model``'s final LayerNorm as compatibility mode leaves it (weights folded): centre and scale."""
    return layer_norm(x, model.cfg.eps)


def unembed_at(model, resid: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Logits [N, V] at one position per row of the normalised residual [N, T, d].

    ``pos`` [B] holds one position per prompt; the N = K*B rows stack K copies of the B prompts.
    """
    rows = torch.arange(resid.shape[0], device=resid.device)
    x = resid[rows, pos.to(resid.device).repeat(resid.shape[0] // pos.shape[0])]
    return x.to(model.W_U.dtype) @ model.W_U + model.b_U  # the bridge's ln_final hook is float32 in half runs


@torch.no_grad()
def logits_at(model, tokens: torch.Tensor, pos, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
    """Logits [N, V] at one position per prompt, with ``fwd_hooks`` in place; the forward stops at ln_final.

    ``pos`` is an int (-1: the last position) or one position per prompt [B]; ``tokens`` [N, T] may
    stack K variants of the B prompts on the batch axis (N = K*B).
    """
    check_tokens(tokens)
    check_batch(model, tokens)
    check_not_padding(model, tokens, pos)
    N, T = tokens.shape
    p = torch.as_tensor(pos)
    B = N if p.ndim == 0 else p.shape[0]
    if B == 0 or N % B:
        raise ValueError(f"{N} rows of tokens do not stack copies of {B} prompts")
    p = as_positions(pos, B, T)
    return unembed_at(model, capture(model, tokens, [LN_FINAL], fwd_hooks, clone=False)[LN_FINAL], p)
