"""The seed's toy task: next-token prediction on random periodic sequences (chapter 1).

A sequence is a pattern of ``p`` distinct random tokens repeated until the context is full. The
only thing worth learning is "what followed this token last time?" — an induction head's job.

Two data distributions:

* ``"periodic"`` (the seed's): every sequence starts with its pattern, and periods are at most
  ``max_period``, so every pattern is fully shown within the first ``max_period`` positions.
* ``"shifted"`` (the control): a random-length prefix of random tokens comes first, so the
  first full showing of the pattern can end anywhere in the sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .training import adamw, next_token_loss, torch_threads, train_steps
from .transformer import Transformer, TransformerConfig

DISTRIBUTIONS = ("periodic", "shifted")


def periodic_batch(batch: int, n_ctx: int, vocab_size: int, min_period: int, max_period: int,
                   distribution: str = "periodic", generator: torch.Generator | None = None) -> torch.Tensor:
    """A (batch, n_ctx) tensor of random periodic sequences (see the module docstring)."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    if not 1 <= min_period <= max_period <= vocab_size:
        raise ValueError(f"need 1 <= min_period <= max_period <= vocab_size, got "
                         f"{min_period}, {max_period}, {vocab_size}")
    if 2 * max_period > n_ctx:
        raise ValueError(f"max_period={max_period} must be at most n_ctx/2={n_ctx // 2} to repeat at all")
    g = generator
    patterns = torch.rand(batch, vocab_size, generator=g).argsort(-1)[:, :max_period]  # distinct tokens
    period = torch.randint(min_period, max_period + 1, (batch, 1), generator=g)
    t = torch.arange(n_ctx).unsqueeze(0)                                   # (1, n_ctx)
    if distribution == "periodic":
        start = torch.zeros(batch, 1, dtype=torch.long)
    else:  # the pattern starts anywhere that leaves room for at least two full showings
        start = (torch.rand(batch, 1, generator=g) * (n_ctx - 2 * period + 1)).long()
    seq = patterns.gather(1, ((t - start) % period))                        # (batch, n_ctx)
    noise = torch.randint(0, vocab_size, (batch, n_ctx), generator=g)
    return torch.where(t < start, noise, seq)


@dataclass
class ToyConfig:
    """Everything that defines one toy run: task, model size, optimiser."""

    vocab_size: int = 32
    n_ctx: int = 48
    min_period: int = 2
    max_period: int = 16
    distribution: str = "periodic"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    steps: int = 2000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    seed: int = 0

    def model_config(self) -> TransformerConfig:
        """The attention-only transformer trained on this task."""
        return TransformerConfig(vocab_size=self.vocab_size, n_ctx=self.n_ctx, d_model=self.d_model,
                                 n_layers=self.n_layers, n_heads=self.n_heads, attn_only=True,
                                 tie_weights=False)

    def batch_of(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch of this run's training distribution."""
        return periodic_batch(batch, self.n_ctx, self.vocab_size, self.min_period, self.max_period,
                              self.distribution, generator)


@dataclass
class ToyRun:
    """A trained toy model and its training curve (loss per step)."""

    cfg: ToyConfig
    model: Transformer
    losses: list[float] = field(default_factory=list)


def train_toy(cfg: ToyConfig, progress: bool = True, threads: int | None = 1) -> ToyRun:
    """Train an attention-only transformer on ``cfg``'s periodic sequences (AdamW, constant lr).

    ``threads``: torch CPU threads while training (see :func:`helpers.training.torch_threads`); ``None``
    leaves torch's setting alone.
    """
    with torch_threads(threads):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = Transformer(cfg.model_config())
        losses = train_steps(model, adamw(model, cfg.lr, cfg.weight_decay), lambda: cfg.batch_of(cfg.batch, gen),
                             lambda tokens: next_token_loss(model(tokens[:, :-1]), tokens), cfg.steps,
                             desc=f"training ({cfg.distribution}, seed {cfg.seed})" if progress else None)
    return ToyRun(cfg, model, losses)


def phase_change_step(losses: list[float], window: int = 50) -> int:
    """The step where the smoothed loss falls fastest: the induction-head phase change."""
    if len(losses) < 3 * window:
        raise ValueError(f"need at least {3 * window} losses, got {len(losses)}")
    x = torch.tensor(losses)
    smooth = F.avg_pool1d(x.view(1, 1, -1), window, stride=1).view(-1)   # moving average
    drop = smooth[:-window] - smooth[window:]                             # fall over the next `window` steps
    return int(drop.argmax()) + window


def loss_floor(cfg: ToyConfig) -> float:
    """The lowest mean next-token loss any model can reach on the ``"periodic"`` task (nats a token).

    Before the pattern repeats, token i is either a new token (uniform over the V - i unseen ones) or, if
    the period is exactly i, the first token again; once it has repeated, everything is determined."""
    if cfg.distribution != "periodic":
        raise ValueError("loss_floor is computed for the 'periodic' distribution only")
    periods = range(cfg.min_period, cfg.max_period + 1)
    total = 0.0
    for p in periods:
        nats = 0.0
        for i in range(1, p + 1):                      # predicting the token at position i
            alive = sum(1 for q in periods if q >= i)  # periods still possible after i distinct tokens
            p_repeat = (1.0 if i in periods else 0.0) / alive
            nats -= math.log(p_repeat) if i == p else math.log((1 - p_repeat) / (cfg.vocab_size - i))
        total += nats / (cfg.n_ctx - 1)
    return total / len(periods)
