"""Reading the residual stream in vocabulary space: logit lens, direct logit attribution, congruence.

All functions take a TransformerBridge in compatibility mode (LayerNorm folded into the weights, so
the final LayerNorm is a pure centre-and-scale) and work for any model size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def token_id(model, word: str) -> int:
    """The id of ``word`` if it is exactly one token for this model, else a clear ValueError."""
    toks = model.to_tokens(word, prepend_bos=False)[0]
    if toks.numel() != 1:
        pieces = model.to_str_tokens(word, prepend_bos=False)
        raise ValueError(f"{word!r} is not a single token for this model: it splits into {pieces}")
    return int(toks[0])


def token_ids(model, words: Sequence[str]) -> torch.Tensor:
    """Ids of several single-token words (each checked)."""
    return torch.tensor([token_id(model, w) for w in words], dtype=torch.long)


def residual_stages(model, cache, mlp: bool = True) -> tuple[torch.Tensor, list[str]]:
    """The residual stream after the embedding and after every attention (and MLP) sub-layer.

    Returns a stack [n_stages, batch, pos, d_model] and the stage labels (``emb``, ``L0.attn``,
    ``L0.mlp``, …). Reading the logit lens off each stage shows where a prediction appears.
    """
    stages, labels = [cache["blocks.0.hook_resid_pre"]], ["emb"]
    for layer in range(model.cfg.n_layers):
        stages.append(cache[f"blocks.{layer}.hook_resid_mid"])
        labels.append(f"L{layer}.attn")
        if mlp:
            stages.append(cache[f"blocks.{layer}.hook_resid_post"])
            labels.append(f"L{layer}.mlp")
    return torch.stack(stages), labels


def final_ln(x: torch.Tensor, eps: float | None = None, model=None) -> torch.Tensor:
    """The final LayerNorm as compatibility mode leaves it: centre, then divide by the RMS."""
    eps = eps if eps is not None else (model.cfg.eps if model is not None else 1e-5)
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def logit_lens(model, stack: torch.Tensor, token_ids_: torch.Tensor | None = None) -> torch.Tensor:
    """Logits read off each stage of ``stack`` [..., d_model] through ln_final and the unembedding.

    With ``token_ids_`` only those columns are computed (cheap for a 50k vocabulary).
    """
    x = final_ln(stack, model=model)
    W_U, b_U = model.W_U, model.b_U
    if token_ids_ is not None:
        W_U, b_U = W_U[:, token_ids_], b_U[token_ids_]
    return x @ W_U + b_U


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
    centred = resid - resid.mean(-1, keepdim=True)
    scale = (centred.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()  # [batch, 1]
    outs = head_outputs(model, cache, pos)  # [L, H, batch, d]
    outs = outs - outs.mean(-1, keepdim=True)
    return (outs / scale * direction).sum(-1)


def neuron_congruence(model, layer: int, tokens: torch.Tensor | None = None,
                      neurons: slice | torch.Tensor | None = None) -> torch.Tensor:
    """W_out[layer] @ W_U: how much each neuron's output raises each token's logit -> [d_mlp, n_tokens].

    ``neurons`` selects rows (a slice or ids), so a search over a large model can go chunk by chunk.
    """
    W_U = model.W_U if tokens is None else model.W_U[:, tokens]
    W_out = model.W_out[layer] if neurons is None else model.W_out[layer][neurons]
    return W_out @ W_U


def next_token_targets(tokens: torch.Tensor, lengths: torch.Tensor, answers: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """The token each position must predict [batch, pos]: the next one, the answer at the last, -1 past it."""
    if tokens.ndim != 2 or lengths.shape != (tokens.shape[0],):
        raise ValueError("tokens must be [batch, pos] and lengths [batch]")
    B, P = tokens.shape
    out = torch.full_like(tokens, -1)
    out[:, :-1] = tokens[:, 1:]
    rows = torch.arange(B, device=tokens.device)
    out[rows, lengths - 1] = answers if answers is not None else -1
    out[torch.arange(P, device=tokens.device)[None] >= lengths[:, None]] = -1
    return out


def lens_accuracy(model, stack: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of the logit lens at each stage of ``stack`` [S, B, P, d] on ``targets`` where ``mask``."""
    if stack.ndim != 4 or targets.shape != stack.shape[1:3] or mask.shape != targets.shape:
        raise ValueError(f"need stack [S, B, P, d] and targets/mask [B, P]; got {tuple(stack.shape)}, "
                         f"{tuple(targets.shape)}, {tuple(mask.shape)}")
    if not mask.any():
        raise ValueError("mask selects no position")
    top = torch.stack([logit_lens(model, s).argmax(-1) for s in stack])  # one stage at a time: memory
    return ((top == targets[None]) & mask[None]).sum((1, 2)).float() / mask.sum()


def first_stage(accuracy: torch.Tensor, labels: Sequence[str], level: float = 0.5) -> tuple[int, str] | None:
    """The first stage whose accuracy reaches ``level``, as (index, label); None if none does."""
    if len(accuracy) != len(labels):
        raise ValueError(f"{len(accuracy)} accuracies for {len(labels)} labels")
    hits = (torch.as_tensor(accuracy) >= level).nonzero()
    return (int(hits[0]), labels[int(hits[0])]) if len(hits) else None


def stage_layer(label: str) -> int:
    """The layer of a stage label of :func:`residual_stages` (``"L2.mlp"`` -> 2, ``"emb"`` -> -1)."""
    return -1 if label == "emb" else int(label[1:].split(".")[0])


def number_values(model, ids: torch.Tensor) -> torch.Tensor:
    """The integer each token id spells (GPT-2's leading space ignored), -1 for non-numbers and ids < 0."""
    pieces = model.tokenizer.convert_ids_to_tokens(ids.clamp_min(0).flatten().tolist())
    vals = [int(w) if (w := (p or "").replace("Ġ", " ").strip()).isdigit() else -1 for p in pieces]
    out = torch.tensor(vals, dtype=torch.long, device=ids.device).view(ids.shape)
    return torch.where(ids >= 0, out, torch.full_like(out, -1))
