"""Repeated random token sequences over a model's whole vocabulary: the induction task.

Unlike the text tasks this one is token-level (random tokens rarely form text that re-tokenizes to
the same ids), so it works directly with ids: ``[BOS, t_1 … t_L, t_1 … t_L]``. Induction accuracy
is top-1 accuracy on the second copy (predicting t_{i+1} at the second t_i).
"""

from __future__ import annotations

from typing import Any

import torch

from .batch import bos_id, get_tokenizer


def vocab_ids(model_or_tokenizer: Any) -> torch.Tensor:
    """Every token id of the tokenizer except its special tokens (BOS/EOS/PAD/UNK)."""
    tok = get_tokenizer(model_or_tokenizer)
    special = set(tok.all_special_ids)
    return torch.tensor([i for i in range(len(tok)) if i not in special], dtype=torch.long)


def generate_tokens(model_or_tokenizer: Any, n: int, seq_len: int = 20, seed: int = 0,
                    vocab: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` rows ``[BOS, seq, seq]`` with ``seq`` drawn uniformly (no repeats within it) from ``vocab``."""
    if seq_len < 2:
        raise ValueError("seq_len must be at least 2")
    tok = get_tokenizer(model_or_tokenizer)
    vocab = vocab_ids(tok) if vocab is None else vocab
    if len(vocab) < seq_len:
        raise ValueError(f"vocabulary of {len(vocab)} tokens is smaller than seq_len={seq_len}")
    g = torch.Generator().manual_seed(seed)
    seqs = torch.stack([vocab[torch.randperm(len(vocab), generator=g)[:seq_len]] for _ in range(n)])
    bos = torch.full((n, 1), bos_id(tok), dtype=torch.long)
    return torch.cat([bos, seqs, seqs], dim=1)


def second_copy_targets(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, target ids) where induction predicts: each position of the second copy but the last."""
    seq_len = (tokens.shape[1] - 1) // 2
    pos = torch.arange(seq_len + 1, 2 * seq_len)
    return pos, tokens[:, pos + 1]
