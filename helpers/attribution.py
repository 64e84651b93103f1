"""Direct attribution through the unembedding: how much each head or neuron writes towards a token.

Direct logit attribution splits a logit difference among the heads that write it (chapter 4);
congruence, W_out @ W_U, says which tokens a neuron's output raises (chapter 2). All functions take a
TransformerBridge in compatibility mode (LayerNorm weights folded into the next layer).
"""

from __future__ import annotations

import torch

from .hooks import ln_scale


def logit_diff_direction(model, answer: torch.Tensor, distractor: torch.Tensor) -> torch.Tensor:
    """Unembedding direction(s) W_U[:, answer] − W_U[:, distractor] -> [..., d_model]."""
    return (model.W_U[:, answer] - model.W_U[:, distractor]).T


def head_outputs(model, cache, pos: torch.Tensor) -> torch.Tensor:
    """Each head's write to the residual stream at one position per prompt -> [L, H, batch, d_model]."""
    rows = torch.arange(pos.shape[0])
    outs = []
    for layer in range(model.cfg.n_layers):
        z = cache[f"blocks.{layer}.attn.hook_z"][rows, pos]  # [batch, H, d_head]
        outs.append(torch.einsum("bhd,hdm->hbm", z, model.W_O[layer]))
    return torch.stack(outs)


def direct_logit_attribution(model, cache, pos: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Each head's direct effect on ``direction`` (per prompt, [batch, d]) -> [L, H, batch].

    The head's output is divided by the final LayerNorm scale of the full residual (as the logits
    see it), so the heads' terms add up with the other components to the logit difference.
    """
    rows = torch.arange(pos.shape[0])
    resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"][rows, pos]
    scale = ln_scale(resid, model.cfg.eps)  # [batch, 1]
    outs = head_outputs(model, cache, pos)  # [L, H, batch, d]
    outs = outs - outs.mean(-1, keepdim=True)
    return (outs / scale * direction).sum(-1)


def neuron_congruence(model, layer: int, tokens: torch.Tensor | None = None,
                      neurons: slice | torch.Tensor | None = None) -> torch.Tensor:
    """W_out[layer] @ W_U: how much each neuron's output raises each token's logit -> [d_mlp, n_tokens].

    ``neurons`` selects rows (a slice or ids), so a search over a large model can go chunk by chunk.
    Reads the one layer's weight (the bridge's ``model.W_out`` stacks every layer: 0.9 GB at GPT-2
    large) without autograd: with it, chapter 2's 36 per-layer calls kept 36 stacked copies alive and
    the GPT-2 large rehearsal was killed at 19 GB.
    """
    with torch.no_grad():
        W_U = model.W_U if tokens is None else model.W_U[:, tokens]
        W_out = _mlp_out_weight(model, layer)
        return (W_out if neurons is None else W_out[neurons]) @ W_U


def _mlp_out_weight(model, layer: int) -> torch.Tensor:
    """``W_out`` of one layer, [d_mlp, d_model], without stacking every layer's."""
    if not 0 <= layer < model.cfg.n_layers:
        raise ValueError(f"layer must lie in [0, {model.cfg.n_layers}), got {layer}")
    w = getattr(getattr(model.blocks[layer], "mlp", None), "W_out", None)
    return w if isinstance(w, torch.Tensor) else model.W_out[layer]
