"""Circuits: path patching, finding a task's circuit, naming its heads' roles, knockouts and steering.

Built on the patching engine's public primitives (:mod:`helpers.patching`) and :mod:`helpers.hooks`.
A head is ``(layer, head)``; a variant is a list of sender heads patched together.
"""

from ..patching import freeze_hooks
from .discovery import FoundCircuit, TaskCircuit, find_circuit, task_circuit
from .head_sets import (
    Head,
    check_heads,
    complement_variant,
    head_name,
    heads_variant,
    overlap,
    parse_head,
    random_overlap,
    top_heads,
    z_hooks,
)
from .knockouts import cache_with_patch, knockout_effects
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

__all__ = [
    "ROLE_COLUMNS", "FoundCircuit", "Head", "TaskCircuit", "attention_scores", "attention_table",
    "behaviour_roles", "cache_with_patch", "check_heads", "classify_heads", "classify_roles", "complement_variant",
    "copy_scores",
    "find_circuit", "freeze_hooks", "head_name", "heads_variant", "knockout_effects", "overlap", "parse_head",
    "path_patch", "random_overlap", "run_with_attention", "task_circuit", "top_heads", "z_hooks",
]
