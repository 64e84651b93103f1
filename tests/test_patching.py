import pytest
import torch

from helpers import load_model
from helpers import patching as P
from helpers.loading import ORGANISM_DIR
from helpers.patching.bridge import bridge_start, resume_states
from helpers.patching.gpt2_blocks import GPT2Blocks
from helpers.patching.suffix import SuffixEngine, plan_suffix, suffix_start, suffix_starts


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
    assert set(resume_states(model, corrupt, {(0, 0), (1, 1)})) == {(0, 0), (1, 1)}
    mixed = (P.head_variants(2, 4)[0] + P.neuron_variants(1, 256)[0][:20]
             + [[P.Site("hook_embed", (slice(None),))], [], [P.Site("blocks.1.hook_resid_pre", (3,))]])
    fast = P.patch_sweep(model, corrupt, src, mixed, metric, chunk_size=7, progress=False)
    full = P.patch_sweep(model, corrupt, src, mixed, metric, chunk_size=7, progress=False, skip_unpatched=False)
    slow = P.patch_one_by_one(model, corrupt, src, mixed, metric)
    assert (fast - slow).abs().max() < 1e-5 and (full - slow).abs().max() < 1e-5
    assert bridge_start([P.Site("blocks.1.mlp.hook_post", (0, 1))]) == (1, 1)
    assert bridge_start([P.Site("blocks.1.mlp.hook_post", (0, 1)), P.Site("blocks.1.attn.hook_z", (0, 0))]) == (1, 0)
    assert bridge_start([P.Site("hook_embed", (0,))]) == (-1, 0)


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


# --------------------------------------------------------------------------- the suffix engine
# Every case compares patch_sweep with the one-forward-per-variant loop to 1e-5, on the shipped organism
# and on the tiny random GPT-2, and checks that the plain-torch suffix engine really ran.

def _pair_for(model, batch: int, n_pos: int, first_diff: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, model.cfg.d_vocab, (batch, n_pos), generator=g)
    corrupt = clean.clone()
    corrupt[:, first_diff:] = torch.randint(0, model.cfg.d_vocab, (batch, n_pos - first_diff), generator=g)
    answer = torch.randint(0, model.cfg.d_vocab, (batch,), generator=g)
    return clean, corrupt, P.logit_diff_metric(answer, (answer + 7) % model.cfg.d_vocab)


@pytest.fixture(scope="module", params=["organism", "tiny"])
def fast_case(request, tiny_gpt2_dir):
    if request.param == "organism":
        if not (ORGANISM_DIR / "config.json").exists():
            pytest.skip("organism not trained yet")
        model = load_model("organism", device="cpu", verbose=False)
    else:
        model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    clean, corrupt, metric = _pair_for(model, 4, 10, first_diff=3)
    n = model.cfg.n_layers
    kinds = ["hook_resid_pre", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "mlp.hook_pre",
             "mlp.hook_post", "hook_mlp_out", "hook_resid_post"]
    src = P.cache_activations(model, clean, [f"blocks.{i}.{k}" for i in range(n) for k in kinds])
    return model, clean, corrupt, metric, src


@pytest.fixture
def fast_runs(monkeypatch):
    """Counts the variants run by the suffix path (the self-check's runs included)."""
    count = {"variants": 0}
    run = SuffixEngine.run

    def counting(self, start, K, *args):
        count["variants"] += K
        return run(self, start, K, *args)
    monkeypatch.setattr(SuffixEngine, "run", counting)
    return count


def _agree(model, corrupt, src, variants, metric, pos=-1, chunk_size=None):
    fast = P.patch_sweep(model, corrupt, src, variants, metric, pos=pos, chunk_size=chunk_size, progress=False)
    slow = P.patch_one_by_one(model, corrupt, src, variants, metric, pos=pos)
    assert fast.shape == slow.shape and (fast - slow).abs().max() <= 1e-5
    return fast


def test_fast_head_position_sweep_matches_loop(fast_case, fast_runs):
    model, _, corrupt, metric, src = fast_case
    variants, _ = P.head_variants(model.cfg.n_layers, model.cfg.n_heads, n_pos=corrupt.shape[1])
    _agree(model, corrupt, src, variants, metric)
    _agree(model, corrupt, src, variants[::5], metric, chunk_size=3)  # small chunks, mixed positions
    assert fast_runs["variants"] >= len(variants) * 7 // 10  # positions 0-2 are no-ops, the rest ran fast


def test_fast_ragged_answers_and_mean_sources(fast_case, fast_runs):
    model, _, corrupt, metric, src = fast_case
    n, T = model.cfg.n_layers, corrupt.shape[1]
    variants, _ = P.head_variants(n, model.cfg.n_heads, n_pos=T)
    variants = variants[::3] + [[P.Site(f"blocks.{n - 1}.hook_resid_pre", (q,))] for q in range(T)]
    pos = torch.tensor([9, 4, 6, 2])  # one answer position per prompt, one of them before the first patch
    for source in (src, P.mean_activations(src)):
        _agree(model, corrupt, source, variants, metric, pos=pos)
        _agree(model, corrupt, source, variants, P.logit_diff_metric(torch.arange(4), torch.arange(4) + 1,
                                                                      reduce=False), pos=pos)
    assert fast_runs["variants"] > len(variants)


def test_fast_multi_site_variants_spanning_layers(fast_case, fast_runs):
    model, _, corrupt, metric, src = fast_case
    last = model.cfg.n_layers - 1
    S = P.Site
    variants = [
        [S("blocks.0.attn.hook_z", (3, 1)), S(f"blocks.{last}.mlp.hook_post", (slice(None), 5))],
        [S("blocks.0.mlp.hook_post", (6, 2)), S("blocks.1.attn.hook_z", (4, slice(None)))],
        [S("blocks.1.hook_attn_out", (slice(None),)), S(f"blocks.{last}.hook_mlp_out", (9,))],
        [S("blocks.0.hook_resid_post", (7,)), S(f"blocks.{last}.attn.hook_z", (slice(None), 2))],
        [S("blocks.0.hook_mlp_out", (slice(4, 8),)), S("blocks.1.hook_resid_pre", (5,)),
         S(f"blocks.{last}.hook_resid_post", (9,))],
        [S("blocks.1.mlp.hook_pre", ([3, 8], 0)), S("blocks.0.attn.hook_z", (-1, 0))],
        [S("blocks.0.attn.hook_z", (0, 0))],  # before the first difference: a no-op
        [S(f"blocks.{last}.hook_resid_post", (slice(None),))],  # patching the end restores the clean run
    ]
    out = _agree(model, corrupt, src, variants, metric, chunk_size=2)
    clean_m = metric(P.logits_at(model, fast_case[1], -1)[None])
    base_m = metric(P.logits_at(model, corrupt, -1)[None])
    assert torch.allclose(out[-1], clean_m[0], atol=1e-5) and torch.allclose(out[-2], base_m[0], atol=1e-5)
    assert fast_runs["variants"] >= len(variants) - 1


def test_fast_mlp_neuron_sweeps(fast_case, fast_runs):
    model, _, corrupt, metric, src = fast_case
    d_mlp, last = model.cfg.d_mlp, model.cfg.n_layers - 1
    variants = (P.neuron_variants(0, d_mlp)[0][::9] + P.neuron_variants(last, d_mlp)[0][::9]
                + P.neuron_variants(0, d_mlp, pos=5)[0][::13] + P.neuron_variants(last, d_mlp, pos=9)[0][::13])
    _agree(model, corrupt, src, variants, metric)
    _agree(model, corrupt, P.mean_activations(src), variants, metric, pos=torch.tensor([9, 8, 7, 5]))
    assert fast_runs["variants"] >= len(variants)


def test_fast_path_leaves_resid_mid_to_the_bridge(fast_case):
    # The bridge's blocks.L.hook_resid_mid feeds only ln2 (the residual add skips it), so it stays on
    # the bridge path, where the loop's semantics hold by construction.
    model, _, corrupt, metric, src = fast_case
    variants = [[P.Site(f"blocks.{i}.hook_resid_mid", (q,))] for i in range(2) for q in (3, 9)]
    assert suffix_starts(model, variants, {k: v.shape for k, v in src.items()}, corrupt.shape[1]) == {}
    _agree(model, corrupt, src, variants + [[P.Site("blocks.0.attn.hook_z", (4, 1))]], metric)


def test_no_op_patches_are_found_exactly(fast_case):
    model, _, corrupt, _, src = fast_case
    T = corrupt.shape[1]
    p = P.as_positions(-1, 4, T)
    hooks = ["blocks.0.attn.hook_z", "blocks.1.mlp.hook_post"]
    engine = SuffixEngine(model, GPT2Blocks(model), corrupt, p, hooks)
    differs = {h: (src[h] != engine.base_acts[h]).any(0) for h in hooks}
    z, post = (P.Site(h, i) for h, i in zip(hooks, [(slice(0, 3), 1), (slice(None), 3)], strict=True))
    assert suffix_start([z], T, differs) is None          # clean and corrupted agree before 3
    assert suffix_start([z, post], T, differs) == (1, 2, 3)
    assert suffix_start([P.Site(hooks[0], (slice(None), 1))], T, differs) == (0, 1, 3)


HOOKS3 = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z", "blocks.1.mlp.hook_post"]


def test_fast_path_falls_back_when_not_exact(tiny_gpt2_dir, tmp_path, monkeypatch, random_gpt2):
    # (1) a model the plain-torch blocks do not describe: the sweep uses the bridge and still agrees
    d = random_gpt2(tmp_path / "inv", "tiny", vocab_size=97, scale_attn_by_inverse_layer_idx=True)
    odd = load_model(str(d), device="cpu", verbose=False)
    clean, corrupt, metric = _pair_for(odd, 3, 8, first_diff=2)
    src = P.cache_activations(odd, clean, HOOKS3)
    variants = P.head_variants(2, 4, n_pos=8)[0] + P.neuron_variants(1, odd.cfg.d_mlp, pos=7)[0][:20]
    shapes = {k: v.shape for k, v in src.items()}
    p = P.as_positions(-1, 3, 8)
    assert plan_suffix(odd, corrupt, p, src, variants, suffix_starts(odd, variants, shapes, 8), shapes) is None
    _agree(odd, corrupt, src, variants, metric)
    # (2) a plain-torch path that is wrong (here: a sabotaged MLP) fails the once-per-sweep check
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    src = P.cache_activations(model, clean, HOOKS3)
    runnable = suffix_starts(model, variants, shapes, 8)
    assert plan_suffix(model, corrupt, p, src, variants, runnable, shapes) is not None
    mlp = GPT2Blocks.mlp
    monkeypatch.setattr(GPT2Blocks, "mlp", lambda self, layer, x, patch: mlp(self, layer, x, patch) + 1e-2)
    assert plan_suffix(model, corrupt, p, src, variants, runnable, shapes) is None
    _agree(model, corrupt, src, variants, metric)


def test_fast_metric_columns_and_metrics_without_them(fast_case, fast_runs):
    # logit_diff_metric declares the vocabulary ids it reads: the suffix path unembeds only those.
    model, _, corrupt, metric, src = fast_case
    assert set(P.logit_diff_metric(torch.tensor([5, 6]), torch.tensor([6, 9])).tokens.tolist()) == {5, 6, 9}
    variants = P.head_variants(model.cfg.n_layers, model.cfg.n_heads, n_pos=corrupt.shape[1])[0][::4]
    _agree(model, corrupt, src, variants, metric)
    # a metric that reads every logit (no ``tokens``) gets full logits
    def log_prob(logits):
        return logits.log_softmax(-1)[:, :, 3].mean(-1)
    _agree(model, corrupt, src, variants, log_prob)
    assert fast_runs["variants"] >= len(variants)


def test_logit_diff_metric_with_several_rivals(setup):
    logits = torch.randn(2, 3, 11)
    ans, rivals = torch.tensor([1, 2, 3]), torch.tensor([[4, 5], [6, 7], [8, 9]])
    m = P.logit_diff_metric(ans, rivals, reduce=False)
    want = logits[:, [0, 1, 2], ans] - (logits[:, [0, 1, 2], rivals[:, 0]] + logits[:, [0, 1, 2], rivals[:, 1]]) / 2
    assert torch.allclose(m(logits), want)
    assert set(m.tokens.tolist()) == set(range(1, 10))
    with pytest.raises(ValueError, match="distractor"):
        P.logit_diff_metric(ans, torch.tensor([1, 2]))
    # through the engine (fast path) too, against the loop
    model = setup[0]
    g = torch.Generator().manual_seed(3)
    clean = torch.randint(0, 97, (3, 6), generator=g)
    corrupt = clean.clone()
    corrupt[:, 2] = torch.randint(0, 97, (3,), generator=g)
    src = P.cache_activations(model, clean, [f"blocks.{i}.attn.hook_z" for i in range(model.cfg.n_layers)])
    variants, _ = P.head_variants(model.cfg.n_layers, model.cfg.n_heads, n_pos=6)
    metric = P.logit_diff_metric(ans, rivals)
    fast = P.patch_sweep(model, corrupt, src, variants, metric, progress=False)
    slow = P.patch_one_by_one(model, corrupt, src, variants, metric)
    assert (fast - slow).abs().max() < 1e-5


def test_candidates_metric():
    logits = torch.randn(2, 2, 12)
    cands, pool = torch.tensor([[1, 2], [3, 4]]), torch.tensor([1, 2, 3, 4, 5])
    m = P.candidates_metric(cands, pool, reduce=False)
    want0 = logits[:, 0, [1, 2]].mean(-1) - logits[:, 0, [3, 4, 5]].mean(-1)
    want1 = logits[:, 1, [3, 4]].mean(-1) - logits[:, 1, [1, 2, 5]].mean(-1)
    assert torch.allclose(m(logits), torch.stack([want0, want1], -1))
    assert torch.allclose(P.candidates_metric(cands, pool)(logits), torch.stack([want0, want1], -1).mean(-1))
    with pytest.raises(ValueError, match=r"\[B, k\]"):
        P.candidates_metric(torch.tensor([1, 2]), pool)
    with pytest.raises(ValueError, match="at least one"):
        P.candidates_metric(torch.tensor([[1, 2]]), torch.tensor([1, 2]))


def test_answer_logit_metric():
    logits = torch.randn(2, 3, 7)
    ans = torch.tensor([1, 4, 6])
    m = P.answer_logit_metric(ans, reduce=False)
    want = logits[:, [0, 1, 2], ans] - logits.mean(-1)
    assert torch.allclose(m(logits), want) and torch.allclose(P.answer_logit_metric(ans)(logits), want.mean(-1))
    assert m.tokens is None  # it reads the whole vocabulary


def test_metric_type_carries_checked_tokens():
    m = P.Metric(lambda logits: logits[..., 0].mean(-1), torch.tensor([3, 1]))
    assert torch.equal(m(torch.ones(2, 3, 5)), torch.ones(2)) and m.tokens.tolist() == [3, 1]
    with pytest.raises(ValueError, match="token ids"):
        P.Metric(lambda logits: logits, torch.tensor([0.5]))
    with pytest.raises(ValueError, match="token ids"):
        P.Metric(lambda logits: logits, [3, 1])
