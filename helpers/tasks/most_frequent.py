"""Which name appeared most often? The task seed 000 fine-tuned GPT-2 on (its section 3), over names.

"Count : Mary John Kate John Anna Mary John . Which ?" -> " John". A prompt lists ``length`` names: the answer
(the *winner*) ``top`` times, a runner-up ``top - 1`` times, other names once each, in random order. The
distractor is the runner-up. The corrupted twin swaps one of the winner's mentions for the runner-up, so
the runner-up wins by one: same length, same positions, the answer flips (as IOI's ABC twin removes
its answer). Names are IOI's pool, so the task leans on what the IOI circuit's first phase computes
(which names are repeated). No structure is held out: all splits draw alike, so use other seeds for the test prompts (holding
some names out of winning taught a short fine-tune to never name them, a prior, not the task).
Spans: ``W1`` … ``W{top}`` (the winner's mentions, in order), ``R1`` … (the runner-up's), ``SWAP`` (the
mention the corrupted twin changes).
"""

from __future__ import annotations

import random
from typing import Any

import torch

from .batch import PromptBatch, rng_of, span_of
from .ioi import NAMES

PREFIX = "Count :"  # every name then follows a space (one GPT-2 token, as in the other tasks)
CUE = " . Which ?"

def _spans(words: list[str], name: str, label: str) -> dict[str, tuple[int, int]]:
    out, start = {}, len(PREFIX) + 1
    text = PREFIX + " " + " ".join(words)
    k = 0
    for i, w in enumerate(words):
        if w == name:
            k += 1
            out[f"{label}{k}"] = span_of(text, w, start)
        start += len(w) + 1
    return out


def generate(n: int, split: str = "train", seed: int | random.Random = 0, length: int = 8, top: int = 3,
             pool: list[str] | None = None, tokenizer: Any = None) -> PromptBatch:
    """``n`` prompts of ``length`` names whose most frequent one (``top`` mentions) is the answer.

    ``tokenizer`` is accepted as the other generators accept it; nothing needs redrawing here (every name
    follows a space).
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if top < 2 or length < 2 * top - 1:
        raise ValueError(f"need top >= 2 and length >= 2 * top - 1 (winner + runner-up), got top={top}, "
                         f"length={length}")
    pool = list(pool or NAMES)
    others = length - top - (top - 1)
    if len(pool) < others + 2:
        raise ValueError(f"a pool of {len(pool)} names is too small for {others + 2} distinct names")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for _ in range(n):
        w = rng.choice(pool)
        r, *rest = rng.sample([x for x in pool if x != w], 1 + others)
        words = [w] * top + [r] * (top - 1) + rest
        rng.shuffle(words)
        swap = rng.choice([i for i, x in enumerate(words) if x == w])
        cwords = list(words)
        cwords[swap] = r
        text = f"{PREFIX} {' '.join(words)}{CUE}"
        sp = {**_spans(words, w, "W"), **_spans(words, r, "R")}
        sp["SWAP"] = span_of(text, w, len(PREFIX) + 1 + sum(len(x) + 1 for x in words[:swap]))
        texts.append(text)
        corr.append(f"{PREFIX} {' '.join(cwords)}{CUE}")
        answers.append(" " + w)
        distr.append(" " + r)
        spans.append(sp)
        meta.append({"winner": w, "runner_up": r, "words": words, "swap": swap})
    return PromptBatch("most_frequent", texts, answers, distr, spans, corr, meta)


def positions(enc, label: str, k: int) -> torch.Tensor:
    """[B, k] token positions of ``W1..Wk`` (``label="W"``) or ``R1..Rk`` from an encoded batch."""
    return torch.stack([enc.positions[f"{label}{i}"] for i in range(1, k + 1)], 1)
