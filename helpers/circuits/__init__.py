"""Circuits: path patching, finding a task's circuit, naming its heads' roles, knockouts and steering;
edge-level discovery (ACDC, EAP, EAP-IG, information flow routes) on one graph type, scored against planted circuits.

Built on the patching engine's public primitives (:mod:`helpers.patching`) and :mod:`helpers.hooks`.
A head is ``(layer, head)``; a variant is a list of sender heads patched together.
"""

from ..patching import freeze_hooks
from . import abstraction, edge_methods, planted, scoring
from .discovery import FoundCircuit, TaskCircuit, find_circuit, task_circuit
from .edge_methods import EdgeScores, acdc, eap, edge_patching, information_flow_routes
from .graph import EdgeModel, Graph, Weights
from .head_sets import (
    Head,
    check_heads,
    complement_variant,
    head_name,
    heads_variant,
    overlap,
    parse_head,
    random_overlap,
    random_overlap_by_layer,
    top_heads,
    z_hooks,
)
from .knockouts import cache_with_patch, circuit_criteria, knockout_effects
from .paths import path_patch
from .roles import (
    ROLE_COLUMNS,
    attention_scores,
    attention_table,
    behaviour_roles,
    classify_heads,
    classify_roles,
    copy_scores,
)
from .steering import run_with_attention
from .task_roles import (
    RoleCircuit,
    RoleSetup,
    circuit_with_roles,
    faithfulness,
    ioi_setup,
    most_frequent_setup,
)

__all__ = [
    "ROLE_COLUMNS",
    "EdgeModel",
    "EdgeScores",
    "FoundCircuit",
    "Graph",
    "Head",
    "RoleCircuit",
    "RoleSetup",
    "TaskCircuit",
    "Weights",
    "abstraction",
    "acdc",
    "attention_scores",
    "attention_table",
    "behaviour_roles",
    "cache_with_patch",
    "check_heads",
    "circuit_criteria",
    "circuit_with_roles",
    "classify_heads",
    "classify_roles",
    "complement_variant",
    "copy_scores",
    "eap",
    "edge_methods",
    "edge_patching",
    "faithfulness",
    "find_circuit",
    "freeze_hooks",
    "head_name",
    "heads_variant",
    "information_flow_routes",
    "ioi_setup",
    "knockout_effects",
    "most_frequent_setup",
    "overlap",
    "parse_head",
    "path_patch",
    "planted",
    "random_overlap",
    "random_overlap_by_layer",
    "run_with_attention",
    "scoring",
    "task_circuit",
    "top_heads",
    "z_hooks",
]
