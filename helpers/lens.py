"""The logit lens: reading the residual stream after each sub-layer in vocabulary space (chapter 3).

All functions take a TransformerBridge in compatibility mode (LayerNorm folded into the weights, so
the final LayerNorm is a pure centre-and-scale) and work for any model size. Direct logit attribution
and congruence live in :mod:`helpers.attribution`, the token lookup in :mod:`helpers.tasks`; both are
importable from here too, as the chapters first used them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .attribution import direct_logit_attribution, head_outputs, logit_diff_direction, neuron_congruence
from .hooks import final_ln
from .runtime import auto_batch_size
from .tasks import single_token_id as token_id

__all__ = ["direct_logit_attribution", "first_stage", "head_outputs", "lens_accuracy", "logit_diff_direction",
           "logit_lens", "neuron_congruence", "next_token_targets", "number_values", "residual_stages",
           "stage_layer", "token_id"]


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


def logit_lens(model, stack: torch.Tensor, token_ids_: torch.Tensor | None = None) -> torch.Tensor:
    """Logits read off each stage of ``stack`` [..., d_model] through ln_final and the unembedding.

    With ``token_ids_`` only those columns are computed (cheap for a 50k vocabulary).
    """
    x = final_ln(stack, model)
    W_U, b_U = model.W_U, model.b_U
    if token_ids_ is not None:
        W_U, b_U = W_U[:, token_ids_], b_U[token_ids_]
    return x @ W_U + b_U


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
    # Only the masked positions are read, in chunks that fit free memory: a full [B, P, vocabulary] read per
    # stage is 2.4 GB for 200 prompts of 60 tokens on GPT-2 (any size), the rehearsal's peak in chapter 3.
    rows = mask.nonzero(as_tuple=True)
    want = targets[rows]
    step = auto_batch_size(4 * 3 * model.cfg.d_vocab, stack.device, cap=8192)
    right = []
    for s in stack:  # one stage at a time
        x = s[rows]
        right.append(sum(int((logit_lens(model, x[i:i + step]).argmax(-1) == want[i:i + step]).sum())
                         for i in range(0, len(x), step)))
    return torch.tensor(right, dtype=torch.float32, device=mask.device) / mask.sum()


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
