"""Counting prompts: "1, 2, 3, 4," -> " 5" (numbers up to 30, so two-digit numbers occur).

The sequence stands alone or after a short frame ("Count: 4, 5, 6,"); one frame is held out.

A fixed fifth of the (start, stop) sequences is held out of training (every start and every
number occurs in training, but not these sequences); the seed's canonical "1, 2, 3," prompts are
the ``"canonical"`` split. The distractor
is the last number written (the "repeat yourself" error).
"""

from __future__ import annotations

import random

from .batch import PromptBatch, rng_of

MAX_NUMBER = 30
#: Frames around the sequence; the last occurs only in the test split (a phrasing never trained on).
FRAMES = ["{seq}", "{seq}", "Count: {seq}", "The numbers are {seq}", "Let us count: {seq}"]
HELDOUT_FRAMES = FRAMES[-1:]


def sequence(start: int, stop: int) -> str:
    """``"start, start+1, ..., stop,"`` as written text."""
    return ", ".join(str(k) for k in range(start, stop + 1)) + ","


def heldout(start: int, stop: int) -> bool:
    """Whether the sequence ``start … stop`` is held out of training (a fixed fifth of all of them)."""
    return (start * 7 + stop * 3) % 5 == 0


def generate(n: int, split: str = "train", seed: int | random.Random = 0, min_len: int = 3) -> PromptBatch:
    """``n`` counting prompts whose answer is the next number (at most ``MAX_NUMBER``)."""
    if split not in ("train", "test", "canonical", "all"):
        raise ValueError(f"split must be 'train', 'test', 'canonical' or 'all', got {split!r}")
    rng = rng_of(seed)
    pairs = [(a, b) for a in range(1, MAX_NUMBER - min_len + 1) for b in range(a + min_len - 1, MAX_NUMBER)]
    if split == "train":
        pairs = [p for p in pairs if not heldout(*p)]
    elif split == "test":
        pairs = [p for p in pairs if heldout(*p)]
    elif split == "canonical":
        pairs = [p for p in pairs if p[0] == 1]
    texts, answers, distr, spans, meta = [], [], [], [], []
    frames = {"train": FRAMES[:-1], "test": FRAMES, "canonical": FRAMES[:1], "all": FRAMES}[split]
    for _ in range(n):
        start, stop = rng.choice(pairs)
        text = rng.choice(frames).format(seq=sequence(start, stop))
        last = text.rindex(str(stop))
        texts.append(text)
        answers.append(f" {stop + 1}")
        distr.append(f" {stop}")
        spans.append({"LAST": (last, last + len(str(stop)))})
        meta.append({"start": start, "stop": stop})
    return PromptBatch("counting", texts, answers, distr, spans, None, meta)
