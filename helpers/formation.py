"""Circuits forming over training: the organism's training log read as curves, and when each one rises.

The organism's training (:mod:`helpers.organism.train`) logs the loss every 25 steps, each task's
held-out accuracy and every head's role scores (previous-token, induction, duplicate-token; on IOI
prompts END -> IO / S1 / S2 and S2 -> S1) at every evaluation. :func:`rise_step` dates a curve's rise,
:func:`loss_drop` the sharpest fall of the loss and whether it is sudden (a phase change), so chapter 7
can say which head formed when, and with which jump in the loss and the accuracies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .toy import PhaseChange, phase_change

#: The logged attention score that shows each role of :func:`helpers.circuits.behaviour_roles`.
ROLE_SCORE = {"mover": "end_to_io", "inhibition": "end_to_s2", "duplicate-token": "s2_to_s1",
              "induction": "induction", "previous-token": "prev_token"}


@dataclass
class TrainingLog:
    """The curves of one training run: ``loss`` (step, loss), ``eval`` (accuracy per task, indexed by
    step), ``scores`` {name: [n_evals, n_layers, n_heads]} at ``score_steps``, and ``phase1`` (the last
    step of the first phase)."""

    loss: pd.DataFrame
    eval: pd.DataFrame
    scores: dict[str, np.ndarray]
    score_steps: np.ndarray
    phase1: int

    @classmethod
    def load(cls, model_dir: str | Path) -> TrainingLog:
        """Read ``train_log.json`` of a trained organism directory."""
        path = Path(model_dir) / "train_log.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: only the organism's training writes a log")
        log = json.loads(path.read_text())
        heads = log["heads"]
        names = [k for k in heads[0] if k != "step"]
        return cls(pd.DataFrame(log["loss"]), pd.DataFrame(log["eval"]).set_index("step"),
                   {k: np.array([h[k] for h in heads], dtype=float) for k in names},
                   np.array([h["step"] for h in heads]), int(log["train"]["steps"]))

    def head_curve(self, score: str, head: tuple[int, int]) -> pd.Series:
        """One head's logged ``score`` over training, indexed by step."""
        if score not in self.scores:
            raise KeyError(f"no score {score!r} in the log; it has {sorted(self.scores)}")
        return pd.Series(self.scores[score][:, head[0], head[1]], index=self.score_steps, name=score)


def rise_step(curve: pd.Series, frac: float = 0.5, until: int | None = None) -> int | None:
    """First step at which ``curve`` has covered ``frac`` of its rise from its first value to its value at
    step ``until`` (the last step if None); None if it did not rise (a final value at or below the first).
    """
    if not 0 < frac <= 1:
        raise ValueError(f"frac must lie in (0, 1], got {frac}")
    c = curve if until is None else curve[curve.index <= until]
    if len(c) < 2:
        raise ValueError("need at least two points to date a rise")
    lo, hi = float(c.iloc[0]), float(c.iloc[-1])
    if hi <= lo:
        return None
    hit = c.index[c.to_numpy() >= lo + frac * (hi - lo)]
    return int(hit[0])


def loss_drop(loss: pd.DataFrame, until: int, after: int = 0, window: int = 100,
              smooth: int = 50) -> tuple[int, int, PhaseChange]:
    """The ``window`` steps of the logged loss (steps ``after`` .. ``until``) where it falls the most:
    (first step, last step, :class:`helpers.toy.PhaseChange`), with :func:`helpers.toy.phase_change` on
    the log's evenly spaced entries (its ``window`` and ``step`` count log entries, its falls are in nats).
    Such a window always exists: the PhaseChange's ``share`` and ``sharpness`` say whether the fall is
    sudden. ``after`` skips the first fall from the initial loss (log of the vocabulary) to a plateau."""
    part = loss[(loss.step > after) & (loss.step <= until)]
    every = int(part.step.diff().dropna().mode().iloc[0])
    w, s = max(1, window // every), max(1, smooth // every)
    pc = phase_change(part.loss.tolist(), window=w, smooth=s)
    start = int(part.step.iloc[0]) + (pc.step - (s + w) // 2) * every
    return start, start + window, pc


def first_reaching(values: pd.Series, level: float) -> int | None:
    """First index (step) whose value is at least ``level``, or None."""
    hit = values.index[values.to_numpy() >= level]
    return int(hit[0]) if len(hit) else None
