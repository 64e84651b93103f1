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
from tqdm.auto import tqdm

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
    """A trained toy model, its training curve (loss per step) and, if probed, its diagonal during training.

    ``probes[i]`` is layer 0's previous-token score at query positions 1 .. n_ctx-1 after ``probe_steps[i]``
    steps (see :func:`previous_token_by_position`)."""

    cfg: ToyConfig
    model: Transformer
    losses: list[float] = field(default_factory=list)
    probe_steps: list[int] = field(default_factory=list)
    probes: torch.Tensor | None = None


@torch.no_grad()
def previous_token_by_position(model: Transformer, tokens: torch.Tensor, layer: int = 0,
                               head: int = 0) -> torch.Tensor:
    """Mean attention from query position t to t - 1, for t = 1 .. T-1 (a (T-1,) tensor), on ``tokens``.

    The same score as ``helpers.heads.previous_token_scores_by_position``, on our own model (cheap enough
    to run during training)."""
    model(tokens)
    pattern = model.attention_patterns()[layer][:, head]                  # (B, T, T)
    t = torch.arange(1, tokens.shape[1])
    return pattern[:, t, t - 1].mean(0)


def initial_model(cfg: ToyConfig) -> Transformer:
    """The model ``train_toy(cfg)`` starts from (same seed, same random weights): what training changed."""
    torch.manual_seed(cfg.seed)
    return Transformer(cfg.model_config())


def first_step_reaching(run: ToyRun, level: float = 0.5) -> torch.Tensor:
    """For query positions 1 .. n_ctx-1, the first probed step at which layer 0's previous-token score reached
    ``level`` (``inf`` if it never did): the order in which training builds the diagonal."""
    if run.probes is None:
        raise ValueError("this run was not probed: train it with train_toy(cfg, probe_every=...)")
    reached = run.probes >= level                                        # (n_probes, n_ctx - 1)
    steps = torch.tensor(run.probe_steps, dtype=torch.float)
    return torch.where(reached.any(0), steps[reached.float().argmax(0)], torch.tensor(float("inf")))


def train_toy(cfg: ToyConfig, progress: bool = True, threads: int | None = 1,
              probe_every: int | None = None) -> ToyRun:
    """Train an attention-only transformer on ``cfg``'s periodic sequences (AdamW, constant lr).

    ``threads``: torch CPU threads while training (see :func:`helpers.training.torch_threads`); ``None``
    leaves torch's setting alone. ``probe_every``: every so many steps, score layer 0's diagonal by position
    on 128 sequences of random tokens (``ToyRun.probes``); training is the same, bit for bit, with or without.
    """
    with torch_threads(threads):
        model = initial_model(cfg)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = adamw(model, cfg.lr, cfg.weight_decay)
        desc = f"training ({cfg.distribution}, seed {cfg.seed})" if progress else None

        def steps(n: int, desc: str | None = None) -> list[float]:
            return train_steps(model, opt, lambda: cfg.batch_of(cfg.batch, gen),
                               lambda tokens: next_token_loss(model(tokens[:, :-1]), tokens), n, desc=desc)

        if not probe_every:
            return ToyRun(cfg, model, steps(cfg.steps, desc))
        probe_tokens = torch.randint(0, cfg.vocab_size, (128, cfg.n_ctx),
                                     generator=torch.Generator().manual_seed(cfg.seed + 1))
        losses, probe_steps, probes = [], [], []
        for _ in tqdm(range(0, cfg.steps, probe_every), desc=desc, disable=desc is None, mininterval=1.0):
            losses += steps(min(probe_every, cfg.steps - len(losses)))
            probe_steps.append(len(losses))
            probes.append(previous_token_by_position(model, probe_tokens))
        model.eval()
    return ToyRun(cfg, model, losses, probe_steps, torch.stack(probes))


@dataclass(frozen=True)
class PhaseChange:
    """The steepest fall of a training curve, and the falls just before and after it (nats).

    ``drop`` is the fall of the smoothed loss over ``window`` steps centred on ``step``; ``before`` and
    ``after`` are the falls over the ``window`` steps that precede and follow that window (``before`` is
    scaled to ``window`` steps when training started less than ``window`` steps earlier); ``total`` is the
    fall from the first to the last smoothed value. A sudden phase change has ``drop`` many times
    ``before`` and ``after`` and a large ``share`` of ``total``."""

    step: int
    window: int
    drop: float
    before: float
    after: float
    total: float

    @property
    def share(self) -> float:
        """The fraction of the whole fall of the loss that happens within the window."""
        return self.drop / self.total

    @property
    def sharpness(self) -> float:
        """``drop`` over the larger of ``before`` and ``after``: how much faster the loss falls in the window.

        ``nan`` when the fall starts at step 0 (no plateau before it, so no phase change)."""
        return self.drop / max(self.before, self.after, 1e-9)


def phase_change(losses: list[float], window: int = 50, smooth: int = 10) -> PhaseChange:
    """The ``window`` steps where the loss (averaged over ``smooth`` steps) falls most, and its neighbours.

    An argmax always exists, so the step alone says nothing; ``PhaseChange.share`` and ``.sharpness`` say
    whether the fall is sudden. The fall must start after step 0 and be followed by ``window`` more steps."""
    if len(losses) < smooth + 3 * window:
        raise ValueError(f"need at least {smooth + 3 * window} losses, got {len(losses)}")
    x = torch.tensor(losses, dtype=torch.float64)
    s = F.avg_pool1d(x.view(1, 1, -1), smooth, stride=1).view(-1)   # s[i]: mean of losses[i : i + smooth]
    fall = s[:-window] - s[window:]                                  # fall[i]: from s[i] to s[i + window]
    i = int(fall[: len(fall) - window].argmax())                     # leave room for the window after
    if i == 0:
        before = float("nan")                                        # no steps before: not a phase change
    else:
        a = max(0, i - window)
        before = float(s[a] - s[i]) * window / (i - a)
    return PhaseChange(step=i + (smooth + window) // 2, window=window, drop=float(fall[i]), before=before,
                       after=float(fall[i + window]), total=float(s[0] - s[-1]))


def key_demand(cfg: ToyConfig) -> torch.Tensor:
    """For key positions t = 0 .. n_ctx-1, the fraction of ``"periodic"`` sequences in which an induction head
    copying from the pattern's first showing reads key t.

    Key t holds token t-1 (layer 0's previous-token head puts it there). With period p the first showing is
    at keys 1 .. p, and key t is read by query p + t - 1, which predicts position p + t: so key t is needed
    if t <= p and p + t <= n_ctx - 1. Every period is equally likely."""
    if cfg.distribution != "periodic":
        raise ValueError("key_demand is computed for the 'periodic' distribution only")
    periods = torch.arange(cfg.min_period, cfg.max_period + 1)
    t = torch.arange(cfg.n_ctx).unsqueeze(1)
    read = (t >= 1) & (t <= periods) & (periods + t <= cfg.n_ctx - 1)
    return read.float().mean(1)


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
