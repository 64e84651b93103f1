"""Counting prompts: "1, 2, 3, 4," -> " 5" (numbers up to 30, so two-digit numbers occur).

Training sequences start anywhere except at multiples of 3; the held-out split starts at multiples
of 3 (and the seed's canonical "1, 2, 3," prompts are in the ``"canonical"`` split). The distractor
is the last number written (the "repeat yourself" error).
"""

from __future__ import annotations

import random

from . import PromptBatch, rng_of

MAX_NUMBER = 30


def sequence(start: int, stop: int) -> str:
    """``"start, start+1, ..., stop,"`` as written text."""
    return ", ".join(str(k) for k in range(start, stop + 1)) + ","


def generate(n: int, split: str = "train", seed: int | random.Random = 0, min_len: int = 3) -> PromptBatch:
    """``n`` counting prompts whose answer is the next number (at most ``MAX_NUMBER``)."""
    rng = rng_of(seed)
    if split == "train":
        starts = [s for s in range(1, MAX_NUMBER - min_len) if s % 3 != 0]
    elif split == "test":
        starts = [s for s in range(1, MAX_NUMBER - min_len) if s % 3 == 0]
    elif split == "canonical":
        starts = [1]
    elif split == "all":
        starts = list(range(1, MAX_NUMBER - min_len))
    else:
        raise ValueError(f"split must be 'train', 'test', 'canonical' or 'all', got {split!r}")
    texts, answers, distr, spans, meta = [], [], [], [], []
    for _ in range(n):
        start = rng.choice(starts)
        stop = rng.randint(start + min_len - 1, MAX_NUMBER - 1)
        text = sequence(start, stop)
        last = text.rindex(str(stop))
        texts.append(text)
        answers.append(f" {stop + 1}")
        distr.append(f" {stop}")
        spans.append({"LAST": (last, last + len(str(stop)))})
        meta.append({"start": start, "stop": stop})
    return PromptBatch("counting", texts, answers, distr, spans, None, meta)
