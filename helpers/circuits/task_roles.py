"""A task's circuit with every head's role, found one way for every task (chapters 5 and 7).

A :class:`RoleSetup` holds what the search and the role rule need for one task: encoded prompts with
their corrupted twins, the answer-aware metric, the (query, key) position pairs of
:data:`~helpers.circuits.roles.ROLE_COLUMNS` and the task's answer tokens (for copy scores).
:func:`circuit_with_roles` runs :func:`~helpers.circuits.discovery.find_circuit` and
:func:`~helpers.circuits.roles.behaviour_roles` on it; :func:`faithfulness` keeps a head set and
mean-ablates the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import patching
from ..hooks import capture, logits_at
from ..tasks import ioi, make, most_frequent, single_token_ids
from .discovery import FoundCircuit, find_circuit
from .head_sets import Head, complement_variant, z_hooks
from .knockouts import knockout_effects
from .roles import attention_table, behaviour_roles, copy_scores


@dataclass
class RoleSetup:
    """One task's prompts (``enc``: tokens, corrupted twins, answers, positions), metric, role pairs and
    answer tokens."""

    enc: object
    metric: patching.Metric
    pairs: dict[str, tuple]
    answer_ids: torch.Tensor


def ioi_setup(model, n: int, seed: int, template: int) -> RoleSetup:
    """IOI prompts of one held-out template (fixed positions), with ABC twins; the metric is
    logit(IO) − logit(S); roles read END→IO, END→S2, S2→S1 and S2→S1+1."""
    e = make("ioi", n, "test", seed=seed, templates=[ioi.HELDOUT_TEMPLATES[template]]).encode(model)
    P = e.positions
    pairs = {"END→answer": (e.end, P["IO"]), "END→rival": (e.end, P["S2"]), "repeat→first": (P["S2"], P["S1"]),
             "repeat→first+1": (P["S2"], P["S1"] + 1)}
    answer_ids = torch.tensor(single_token_ids(model, [" " + x for x in ioi.NAMES]))
    return RoleSetup(e, patching.logit_diff_metric(e.answers, e.distractors), pairs, answer_ids)


def most_frequent_setup(model, n: int, seed: int, length: int = 8, top: int = 3) -> RoleSetup:
    """"Which name appeared most often" prompts with their twins (the runner-up wins by one); the metric
    is logit(winner) − logit(runner-up); roles read END→the winner's mentions (summed), END→the
    runner-up's, and the winner's last mention back to its first (and the token after it)."""
    e = most_frequent.generate(n, "test", seed, length=length, top=top).encode(model)
    W, R = most_frequent.positions(e, "W", top), most_frequent.positions(e, "R", top - 1)
    pairs = {"END→answer": (e.end, W), "END→rival": (e.end, R), "repeat→first": (W[:, -1], W[:, 0]),
             "repeat→first+1": (W[:, -1], W[:, 0] + 1)}
    answer_ids = torch.tensor(single_token_ids(model, [" " + x for x in ioi.NAMES]))
    return RoleSetup(e, patching.logit_diff_metric(e.answers, e.distractors), pairs, answer_ids)


@dataclass
class RoleCircuit:
    """What :func:`circuit_with_roles` found: ``found`` (the path-patching search), ``carriers`` (heads whose
    mean-ablation lowers the answer's logit), ``heads`` (both), ``roles`` {head: (role, why)}, the
    attention ``table`` and patching ``effect`` [L, H] of every head, and the ``clean`` metric."""

    found: FoundCircuit
    carriers: list[Head]
    heads: list[Head]
    roles: dict[Head, tuple[str, str]]
    table: object
    effect: torch.Tensor
    clean: float


def circuit_with_roles(model, setup: RoleSetup, direct_min: float, feeder_min: float, att_min: float,
                       copy_min: float, depth: int = 3, carrier_min: float | None = None) -> RoleCircuit:
    """The task's circuit (answer-aware path patching, plus *carriers* if ``carrier_min`` is given) and each
    head's role from what it measurably does.

    Carriers (chapter 4's rule): heads whose output, replaced by its mean over the corrupted prompts,
    lowers the answer's logit by at least ``carrier_min`` of it. Corruption-based path patching cannot see
    heads that act alike on clean and corrupted prompts (heads that move every name); ablation can.
    ``effect``: each head's output patched from the corrupted run (fraction of the clean metric).
    """
    e = setup.enc
    found: FoundCircuit = find_circuit(model, e.tokens, e.corrupted, setup.metric, e.end, direct_min, feeder_min,
                                       depth=depth)
    table = attention_table(model, e.tokens, setup.pairs, how="sum")
    corrupt_cache = capture(model, e.corrupted, z_hooks(model))
    effect = knockout_effects(model, e.tokens, corrupt_cache, setup.metric, e.end)
    carriers: list[Head] = []
    if carrier_min is not None:
        ko = knockout_effects(model, e.tokens, patching.mean_activations(corrupt_cache),
                              patching.answer_logit_metric(e.answers), e.end)
        L, H = ko.shape
        carriers = [(i, j) for i in range(L) for j in range(H) if -ko[i, j] >= carrier_min]
    heads = found.heads + [h for h in carriers if h not in found.heads]
    roles = behaviour_roles(heads, table, effect, copy_scores(model, setup.answer_ids, top_k=5), att_min, copy_min)
    clean = setup.metric(logits_at(model, e.tokens, e.end)[None]).item()
    return RoleCircuit(found, carriers, heads, roles, table, effect, clean)


@torch.no_grad()
def faithfulness(model, setup: RoleSetup, heads: list[Head]) -> dict[str, float]:
    """The metric of the whole model (``F(M)``), of ``heads`` alone with every other head's output replaced
    by its mean over the corrupted prompts (``F(C)``), and of no head (``F(empty)``)."""
    e = setup.enc
    mean = patching.mean_activations(capture(model, e.corrupted, z_hooks(model)))
    out = patching.patch_sweep(model, e.tokens, mean, [[], complement_variant(model, heads), complement_variant(model, [])],
                               setup.metric, e.end, progress=False)
    f_m, f_c, f_0 = out.tolist()
    return {"F(M)": f_m, "F(C)": f_c, "F(empty)": f_0}
