"""Finding a task's circuit: Wang et al.'s backwards path-patching search, plus knockout carriers.

:func:`find_circuit` recurses from the logits to the heads that feed them; :func:`task_circuit` adds
the heads whose mean-ablation changes the answer candidates. Chapters 4 and 5 find every circuit this
way, with the thresholds stated, so that circuits of different tasks can be compared.
"""

from __future__ import annotations

import torch

from ..hooks import as_positions, capture, logits_at
from ..patching import MetricFn, mean_activations
from .head_sets import Head, head_name, parse_head, z_hooks
from .knockouts import knockout_effects
from .paths import path_patch


class FoundCircuit:
    """What :func:`find_circuit` found: direct heads (path patching to the logits) and their feeders.

    ``direct_effect`` [L, H]: change of the metric when the head's path to the logits is patched, as a
    fraction of the clean metric; ``direct_heads``: heads with |effect| >= the threshold;
    ``feeds``: {(sender, receivers, input): (level, change fraction)} for every sender of an earlier
    layer into each receiver layer's heads through their query, key or value (level 2 feeds the direct
    heads, level 3 the level-2 feeders, ...); ``feeders``: the rows of ``feed_table`` with |change| >=
    the feeder threshold.
    """

    def __init__(self, direct_effect: torch.Tensor, direct_heads: list[Head], feeds: dict,
                 feeder_min: float):
        import pandas as pd

        self.direct_effect = direct_effect
        self.direct_heads = direct_heads
        self.feeds = feeds
        self.feed_table = pd.DataFrame(
            [(lvl, head_name(s), "+".join(map(head_name, rs)), inp, r) for (s, rs, inp), (lvl, r) in feeds.items()],
            columns=["level", "sender", "receivers", "input", "change"])
        self.feeders = self.feed_table[self.feed_table.change.abs() >= feeder_min].sort_values(["level", "change"])

    @property
    def feeder_heads(self) -> list[Head]:
        """The feeders as (layer, head), in the order of ``feeders``, without repeats."""
        out: list[Head] = []
        for name in self.feeders.sender:
            if parse_head(name) not in out:
                out.append(parse_head(name))
        return out

    @property
    def heads(self) -> list[Head]:
        """Direct heads, then feeders that are not direct heads."""
        return list(self.direct_heads) + [h for h in self.feeder_heads if h not in self.direct_heads]


def find_circuit(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, metric: MetricFn, pos,
                 direct_min: float = 0.10, feeder_min: float = 0.10, depth: int = 3,
                 progress: bool = False) -> FoundCircuit:
    """Wang et al.'s backwards search: heads -> logits, then earlier heads -> their q/k/v, recursively.

    Level 1: every head's path to the logits is patched from the corrupted run (MLPs recompute); heads
    moving the clean metric by >= ``direct_min`` of it are *direct*. Level 2: for each layer holding
    direct heads, every head of an earlier layer is patched into those heads' queries (at ``pos``),
    keys or values (all positions); senders moving the metric by >= ``feeder_min`` are feeders. Level
    3 and on (up to ``depth``) repeat this with the previous level's new feeders as receivers (queries
    at every position, as their position is not the answer's), as the paper went from name movers to
    S-inhibition to induction and duplicate-token heads to previous-token heads.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    B, T = clean_tokens.shape
    p = as_positions(pos, B, T)
    clean = metric(logits_at(model, clean_tokens, p)[None]).item()
    if abs(clean) < 1e-6:
        raise ValueError("the clean metric is zero: effects cannot be expressed as a fraction of it")
    L, H = model.cfg.n_layers, model.cfg.n_heads
    all_heads = [(i, j) for i in range(L) for j in range(H)]
    to_logits = path_patch(model, clean_tokens, corrupt_tokens, [[h] for h in all_heads], metric, p,
                           progress=progress)
    direct_effect = ((to_logits - clean) / clean).view(L, H)
    direct = [h for h in all_heads if abs(direct_effect[h]) >= direct_min]
    feeds: dict = {}
    query_pos = int(p[0]) if bool((p == p[0]).all()) else None
    frontier, seen = list(direct), set(direct)
    for level in range(2, depth + 1):
        new: list[Head] = []
        for layer in sorted({h[0] for h in frontier}):
            receivers = [h for h in frontier if h[0] == layer]
            senders = [h for h in all_heads if h[0] < layer]
            if not senders:
                continue
            for inp in ("q", "k", "v"):
                out = path_patch(model, clean_tokens, corrupt_tokens, [[s] for s in senders], metric, p,
                                 receivers=receivers, receiver_input=inp,
                                 receiver_pos=query_pos if inp == "q" and level == 2 else None)
                for s, r in zip(senders, ((out - clean) / clean).tolist()):
                    feeds[(s, tuple(receivers), inp)] = (level, r)
                    if abs(r) >= feeder_min and s not in seen:
                        seen.add(s)
                        new.append(s)
        frontier = new
        if not frontier:
            break
    return FoundCircuit(direct_effect, direct, feeds, feeder_min)


class TaskCircuit:
    """A task's circuit found by :func:`task_circuit`: path-patching heads plus knockout carriers."""

    def __init__(self, found: FoundCircuit, knockout: torch.Tensor, carrier_min: float):
        self.found = found
        self.knockout = knockout
        L, H = knockout.shape
        self.carriers = [(i, j) for i in range(L) for j in range(H) if abs(knockout[i, j]) >= carrier_min]
        self.heads = found.heads + [h for h in self.carriers if h not in found.heads]

    def membership(self) -> torch.Tensor:
        """[L, H] boolean map of the circuit's heads."""
        m = torch.zeros(self.knockout.shape, dtype=torch.bool)
        for h in self.heads:
            m[h] = True
        return m


def task_circuit(model, clean_tokens: torch.Tensor, corrupt_tokens: torch.Tensor, metric: MetricFn,
                 candidates: MetricFn, pos, direct_min: float = 0.10, feeder_min: float = 0.10,
                 carrier_min: float = 0.05, depth: int = 3) -> TaskCircuit:
    """One task's circuit, the same way for every task (chapters 4 and 5).

    1. :func:`find_circuit`: heads whose path to the logits, or into such a head's q/k/v (recursively,
       ``depth`` levels), moves the task ``metric`` by >= the thresholds when given the corrupted input;
    2. *carriers*: heads whose mean-ablation (mean over the corrupted prompts) changes the
       ``candidates`` metric (e.g. :func:`helpers.patching.candidates_metric`: in-context candidates
       vs the rest of their kind) by >= ``carrier_min`` of it. Corruption-based patching cannot see
       heads that act the same on clean and corrupted prompts (e.g. heads that move every name);
       ablation can.
    """
    found = find_circuit(model, clean_tokens, corrupt_tokens, metric, pos, direct_min, feeder_min, depth)
    mean_src = mean_activations(capture(model, corrupt_tokens, z_hooks(model)))
    ko = knockout_effects(model, clean_tokens, mean_src, candidates, pos)
    return TaskCircuit(found, ko, carrier_min)
