"""Causal abstraction (Geiger et al.): a high-level IOI algorithm, and interchange interventions that test it.

The high-level model reads the two introduced names N1, N2 and the repeated one S2 and computes
- ``R``: which introduction slot is repeated (1 if S2 = N1, else 2): "which name is repeated";
- ``I``: the name in slot R: "which name to inhibit";
- the output: the introduced name that is not I.
An *interchange intervention* on a variable takes its value from a source prompt and predicts the output.
The sources keep every token position of the base prompt:
- ``I``-source: the base prompt with IO and S swapped everywhere (R is the same, I becomes the base's IO);
- ``R``-source: the base prompt with the two introduced names swapped, S2 unchanged (I is the same name,
  R the other slot).
Under either intervention the high-level model now inhibits the base's IO and answers the base's S. A
low-level alignment (a set of the model's components) carries the variable if patching those components
from the source makes the model answer S: the *interchange-intervention accuracy* (IIA) is the share of
prompts where it does (S above IO).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..patching import Metric, Site, patch_sweep
from ..tasks.batch import PromptBatch


def _swap_spans(text: str, spans: Sequence[tuple[int, int]], words: Sequence[str]) -> str:
    """Replace each character span by a word (spans in any order, not overlapping)."""
    for (a, b), w in sorted(zip(spans, words), reverse=True):
        text = text[:a] + w + text[b:]
    return text


def interchange_sources(batch: PromptBatch) -> dict[str, PromptBatch]:
    """The ``I``- and ``R``-source of every prompt of an IOI batch (see the module docstring); same answers."""
    i_texts, r_texts = [], []
    for text, sp, meta in zip(batch.texts, batch.spans, batch.meta):
        io, s = meta["IO"], meta["S"]
        i_texts.append(_swap_spans(text, [sp["IO"], sp["S1"], sp["S2"]], [s, io, io]))
        r_texts.append(_swap_spans(text, [sp["IO"], sp["S1"]], [s, io]))
    return {"I": PromptBatch("ioi", i_texts, batch.answers, batch.distractors),
            "R": PromptBatch("ioi", r_texts, batch.answers, batch.distractors)}


def flip_metric(io: torch.Tensor, s: torch.Tensor) -> Metric:
    """Share of prompts whose logit of S is above that of IO: the high-level prediction after either intervention."""
    rows = torch.arange(len(io))
    return Metric(lambda lg: (lg[:, rows, s] > lg[:, rows, io]).float().mean(-1), torch.unique(torch.cat([io, s])))


@torch.no_grad()
def interchange_accuracy(model, base_tokens: torch.Tensor, source_cache: dict[str, torch.Tensor],
                         alignments: dict[str, list[Site]], io: torch.Tensor, s: torch.Tensor,
                         pos: torch.Tensor) -> dict[str, float]:
    """IIA of each alignment (name -> the sites patched from the source run), by one batched sweep."""
    names = list(alignments)
    out = patch_sweep(model, base_tokens, source_cache, [alignments[n] for n in names], flip_metric(io, s), pos,
                      progress=False)
    return dict(zip(names, out.tolist()))
