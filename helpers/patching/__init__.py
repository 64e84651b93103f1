"""Activation patching, batched: one engine for every sweep in the book.

A *site* is a slice of one hooked activation (``blocks.3.attn.hook_z[:, pos, head]``); a *variant*
is a set of sites patched together in one run (one head, one neuron, a whole layer, a circuit).
The engine runs the *base* prompts (usually the corrupted ones) with the *source* activations
(usually the clean cache, or a mean for ablations) written into each variant's sites.

Speed comes from doing less arithmetic, not only from batching (see ``tests/test_bench_patching.py``):
1. variants are stacked on the batch axis, K at a time, each batch slice with its own patch mask,
   so a sweep over N components costs about N/K forward passes instead of N (:mod:`.sites`);
2. suffix-only resume (GPT-2-like models, :mod:`.suffix` on the plain-torch blocks of
   :mod:`.gpt2_blocks`): a variant whose sites all lie in layer L or later and at positions >= q
   recomputes only positions q.. from the base run's cached states; the patched block only at the
   patched position; the last block at the answer positions only. Chunks are grouped by (layer,
   stage, q), split where the wasted positions would cost more than another pass;
3. patches that write what the base run already has (positions before the first token where clean
   and corrupted prompts differ) are no-ops: those variants get the base metric without a run;
4. other sites (embeddings, ``hook_resid_mid``, which on the bridge feeds only ``ln2``, anything
   unknown) and other architectures use the bridge (:mod:`.bridge`): each chunk resumes from the base
   run's cached residual just before its first patched site;
5. the forward stops at ``ln_final`` and only the metric's positions, and a :class:`Metric`'s tokens,
   are unembedded (:mod:`.metrics`); the clean and corrupted caches are computed once and reused.
The suffix engine is checked once per sweep against the bridge (the unpatched residual stream and
logits, and the patched logits of three of the sweep's variants, to 1e-4); if it differs, or the model
is not GPT-2-like, the sweep falls back to the bridge. :func:`patch_one_by_one` is the straightforward
loop, kept as the reference the tests compare to (:mod:`.sweep`).
"""

from ..hooks import as_positions, check_tokens, logits_at
from ..hooks import capture as cache_activations
from .metrics import Metric, MetricFn, answer_logit_metric, candidates_metric, logit_diff_metric, recovery
from .sites import (
    Site,
    Variant,
    freeze_hooks,
    head_variants,
    layer_variants,
    mean_activations,
    neuron_variants,
    patch_hook,
    patch_hooks,
    variant_masks,
)
from .sweep import patch_one_by_one, patch_sweep

__all__ = [
    "Metric", "MetricFn", "Site", "Variant", "answer_logit_metric", "as_positions", "cache_activations",
    "candidates_metric", "check_tokens", "freeze_hooks", "head_variants", "layer_variants", "logit_diff_metric",
    "logits_at", "mean_activations", "neuron_variants", "patch_hook", "patch_hooks", "patch_one_by_one",
    "patch_sweep", "recovery", "variant_masks",
]
