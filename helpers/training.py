"""Training: AdamW with weight decay on matrices only, and the loop that trains chapter 1's models.

The decay split follows GPT-2 and nanoGPT: weights and embeddings (>= 2-D) decay; biases and
LayerNorm gains (1-D) do not, as decaying them only pulls the normalisation towards zero. The toy
transformer, the encoder-decoder and the organism all train with :func:`adamw`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` torch CPU threads, restoring the setting after (None: leave it alone).

    One thread is fastest for chapter 1's small models, and on a shared machine extra threads spin:
    200 toy steps took 4 s on 1 thread, 13-250 s on 2.
    """
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def adamw(model: torch.nn.Module, lr: float, weight_decay: float,
          betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW with ``weight_decay`` on the >= 2-D parameters only (not on biases or LayerNorm gains)."""
    params = list(model.parameters())
    return torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                             lr=lr, betas=betas)


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` [B, T-1, V] (the predictions at positions 0..T-2) on ``tokens[:, 1:]``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def train_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: Callable[[], torch.Tensor],
                loss: Callable[[torch.Tensor], torch.Tensor], steps: int, desc: str | None = None) -> list[float]:
    """``steps`` optimiser steps on ``loss(batch())``; returns the loss of every step (model left in eval mode).

    With ``desc`` a progress bar shows the loss every 100 steps.
    """
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, disable=desc is None, mininterval=1.0)
    for step in bar:
        value = loss(batch())
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        losses.append(value.item())
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses
