import pytest
import torch

from helpers import load_model
from helpers import patching as P


@pytest.fixture(scope="module")
def setup(tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 97, (3, 7), generator=g)
    corrupt = clean.clone()
    corrupt[:, 2] = torch.randint(0, 97, (3,), generator=g)
    answer, distractor = torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10])
    metric = P.logit_diff_metric(answer, distractor)
    return model, clean, corrupt, metric


def _hooks(model):
    n = model.cfg.n_layers
    return ([f"blocks.{i}.attn.hook_z" for i in range(n)] + [f"blocks.{i}.hook_resid_pre" for i in range(n)]
            + [f"blocks.{i}.mlp.hook_post" for i in range(n)] + [f"blocks.{i}.hook_attn_out" for i in range(n)])


def test_stop_early_logits_equal_full_forward(setup):
    model, clean, _, _ = setup
    full = model(clean)[:, -1]
    assert torch.allclose(P.logits_at(model, clean, -1), full, atol=1e-5)


def test_batched_equals_loop(setup):
    model, clean, corrupt, metric = setup
    src = P.cache_activations(model, clean, _hooks(model))
    for variants, _ in [P.head_variants(2, 4, n_pos=7), P.layer_variants(2, ("resid_pre", "attn_out"), 7),
                        P.neuron_variants(1, 256)]:
        fast = P.patch_sweep(model, corrupt, src, variants, metric, chunk_size=17, progress=False)
        slow = P.patch_one_by_one(model, corrupt, src, variants, metric)
        assert (fast - slow).abs().max() < 1e-5


def test_patch_of_nothing_changes_nothing(setup):
    model, clean, corrupt, metric = setup
    src = P.cache_activations(model, clean, ["blocks.0.attn.hook_z"])
    base = metric(P.logits_at(model, corrupt, -1)[None])
    empty = P.patch_sweep(model, corrupt, src, [[]], metric, progress=False)
    assert torch.allclose(empty, base, atol=1e-6)
    # patching the corrupted run with its own activations is also a no-op
    own = P.cache_activations(model, corrupt, ["blocks.0.attn.hook_z"])
    same = P.patch_sweep(model, corrupt, own, P.head_variants(2, 4, layers=[0])[0], metric, progress=False)
    assert torch.allclose(same, base.expand_as(same), atol=1e-5)


def test_patching_everything_restores_clean(setup):
    model, clean, corrupt, metric = setup
    src = P.cache_activations(model, clean, ["blocks.0.hook_resid_pre"])
    clean_m = metric(P.logits_at(model, clean, -1)[None])
    everything = [[P.Site("blocks.0.hook_resid_pre", (slice(None),))]]
    assert torch.allclose(P.patch_sweep(model, corrupt, src, everything, metric, progress=False),
                          clean_m, atol=1e-5)


def test_mean_ablation_source_broadcasts(setup):
    model, clean, corrupt, metric = setup
    src = P.mean_activations(P.cache_activations(model, clean, ["blocks.1.attn.hook_z"]))
    variants, shape = P.head_variants(2, 4, layers=[1])
    fast = P.patch_sweep(model, corrupt, src, variants, metric, progress=False)
    slow = P.patch_one_by_one(model, corrupt, src, variants, metric)
    assert shape == (1, 4) and (fast - slow).abs().max() < 1e-5


def test_bad_inputs_are_clear(setup):
    model, clean, _, metric = setup
    with pytest.raises(ValueError, match="same shape"):
        P.check_tokens(clean[:, :5], clean)
    with pytest.raises(ValueError, match="answer positions"):
        P.as_positions(9, 3, 7)
    with pytest.raises(ValueError, match="one answer position per prompt"):
        P.as_positions([1, 2], 3, 7)
    with pytest.raises(KeyError, match="no source activation"):
        P.patch_sweep(model, clean, {}, [[P.Site("blocks.0.attn.hook_z", (0, 0))]], metric)
    with pytest.raises(ValueError, match="nothing to recover"):
        P.recovery(torch.ones(3), 1.0, 1.0)
    assert torch.allclose(P.recovery(torch.tensor([1.0, 2.0, 3.0]), 1.0, 3.0), torch.tensor([0, 0.5, 1.0]))


def test_resuming_mid_model_is_exact_and_used(setup):
    model, clean, corrupt, metric = setup
    hooks = _hooks(model) + ["hook_embed"]
    src = P.cache_activations(model, clean, hooks)
    # the resume path is available on GPT-2-style blocks (its self-check passed)
    assert set(P._resume_states(model, corrupt, {(0, 0), (1, 1)})) == {(0, 0), (1, 1)}
    mixed = (P.head_variants(2, 4)[0] + P.neuron_variants(1, 256)[0][:20]
             + [[P.Site("hook_embed", (slice(None),))], [], [P.Site("blocks.1.hook_resid_pre", (3,))]])
    fast = P.patch_sweep(model, corrupt, src, mixed, metric, chunk_size=7, progress=False)
    full = P.patch_sweep(model, corrupt, src, mixed, metric, chunk_size=7, progress=False, skip_unpatched=False)
    slow = P.patch_one_by_one(model, corrupt, src, mixed, metric)
    assert (fast - slow).abs().max() < 1e-5 and (full - slow).abs().max() < 1e-5
    assert P._start_of([P.Site("blocks.1.mlp.hook_post", (0, 1))]) == (1, 1)
    assert P._start_of([P.Site("blocks.1.mlp.hook_post", (0, 1)), P.Site("blocks.1.attn.hook_z", (0, 0))]) == (1, 0)
    assert P._start_of([P.Site("hook_embed", (0,))]) == (-1, 0)


def test_last_mlp_shortcut_matches_loop_for_means_positions_and_ragged_answers(setup):
    model, clean, corrupt, metric = setup
    src = P.cache_activations(model, clean, ["blocks.1.mlp.hook_post", "blocks.1.mlp.hook_pre"])
    mean = P.mean_activations(src)
    variants = (P.neuron_variants(1, 256)[0][:10] + P.neuron_variants(1, 256, pos=6)[0][:5]
                + P.neuron_variants(1, 256, pos=2)[0][:5] + [[P.Site("blocks.1.mlp.hook_pre", (slice(None), 3))]])
    pos = torch.tensor([6, 4, 5])  # a different answer position per prompt
    for source in (src, mean):
        fast = P.patch_sweep(model, corrupt, source, variants, metric, pos=pos, chunk_size=6, progress=False)
        slow = P.patch_one_by_one(model, corrupt, source, variants, metric, pos=pos)
        assert (fast - slow).abs().max() < 1e-5
