import matplotlib
import pandas as pd
import pytest
import torch

from helpers import circuits as C
from helpers import load_model, plots
from helpers import patching as P

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def setup(tiny_gpt2_dir):
    torch.set_num_threads(1)
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 97, (3, 7), generator=g)
    corrupt = clean.clone()
    corrupt[:, 2] = torch.randint(0, 97, (3,), generator=g)  # only position 2 differs, as S2 in IOI
    metric = P.logit_diff_metric(torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]))
    return model, clean, corrupt, metric


def _heads(model):
    return [(i, j) for i in range(model.cfg.n_layers) for j in range(model.cfg.n_heads)]


def _metric_of(model, tokens, metric):
    return metric(P.logits_at(model, tokens, -1)[None]).item()


def test_path_patching_nothing_changes_nothing(setup):
    model, clean, corrupt, metric = setup
    base = _metric_of(model, clean, metric)
    out = C.path_patch(model, clean, corrupt, [[]], metric)
    assert abs(out.item() - base) < 1e-5
    out = C.path_patch(model, clean, corrupt, [[]], metric, receivers=[(1, 0)], receiver_input="k")
    assert abs(out.item() - base) < 1e-5


def test_same_source_changes_nothing(setup):
    model, clean, _, metric = setup
    base = _metric_of(model, clean, metric)
    out = C.path_patch(model, clean, clean, [[h] for h in _heads(model)], metric)
    assert (out - base).abs().max() < 1e-5


def test_every_sender_restores_the_source_metric(setup):
    # The END residual is its own embedding + every head's output at END + MLPs of it: with every head
    # given the source's outputs (and END's token the same), the source's metric comes back exactly.
    model, clean, corrupt, metric = setup
    out = C.path_patch(model, corrupt, clean, [_heads(model)], metric)
    assert abs(out.item() - _metric_of(model, clean, metric)) < 1e-4


def test_last_layer_to_logits_equals_activation_patching(setup):
    model, clean, corrupt, metric = setup
    last = model.cfg.n_layers - 1
    senders = [[(last, h)] for h in range(model.cfg.n_heads)]
    path = C.path_patch(model, clean, corrupt, senders, metric)
    src = P.cache_activations(model, corrupt, C.z_hooks(model))
    act = P.patch_sweep(model, clean, src, [C.heads_variant(model, s) for s in senders], metric, progress=False)
    assert (path - act).abs().max() < 1e-5


def test_receiver_path_equals_two_step_reference(setup):
    model, clean, corrupt, metric = setup
    sender, receiver = (0, 1), (1, 2)
    src = P.cache_activations(model, corrupt, C.z_hooks(model))
    base = P.cache_activations(model, clean, C.z_hooks(model))

    def freeze(act, hook):  # every head frozen to clean except the sender, given its corrupted output
        layer = int(hook.name.split(".")[1])
        out = base[f"blocks.{layer}.attn.hook_z"].clone()
        if layer == sender[0]:
            out[:, :, sender[1]] = src[f"blocks.{layer}.attn.hook_z"][:, :, sender[1]]
        return out

    rec = {}
    model.run_with_hooks(clean, fwd_hooks=[(n, freeze) for n in C.z_hooks(model)]
                         + [("blocks.1.attn.hook_v", lambda a, hook: rec.setdefault("v", a.clone()))])

    def put(act, hook):
        act = act.clone()
        act[:, :, receiver[1]] = rec["v"][:, :, receiver[1]]
        return act
    ref = metric(model.run_with_hooks(clean, fwd_hooks=[("blocks.1.attn.hook_v", put)])[:, -1][None]).item()
    out = C.path_patch(model, clean, corrupt, [[sender]], metric, receivers=[receiver], receiver_input="v")
    assert abs(out.item() - ref) < 1e-5


def test_chunking_does_not_change_results(setup):
    model, clean, corrupt, metric = setup
    senders = [[h] for h in _heads(model) if h[0] == 0]
    a = C.path_patch(model, clean, corrupt, senders, metric, receivers=[(1, 0), (1, 3)], receiver_input="q",
                     receiver_pos=-1, chunk_size=3)
    b = C.path_patch(model, clean, corrupt, senders, metric, receivers=[(1, 0), (1, 3)], receiver_input="q",
                     receiver_pos=-1, chunk_size=100)
    assert (a - b).abs().max() < 1e-5


def test_path_patch_bad_inputs(setup):
    model, clean, corrupt, metric = setup
    with pytest.raises(ValueError, match="same shape"):
        C.path_patch(model, clean, corrupt[:, :5], [[(0, 0)]], metric)
    with pytest.raises(ValueError, match="not a \\(layer, head\\)"):
        C.path_patch(model, clean, corrupt, [[(9, 0)]], metric)
    with pytest.raises(ValueError, match="upstream"):
        C.path_patch(model, clean, corrupt, [[(1, 0)]], metric, receivers=[(1, 1)])
    with pytest.raises(ValueError, match="'q', 'k' or 'v'"):
        C.path_patch(model, clean, corrupt, [[(0, 0)]], metric, receivers=[(1, 1)], receiver_input="z")
    with pytest.raises(ValueError, match="no sender"):
        C.path_patch(model, clean, corrupt, [], metric)
    with pytest.raises(ValueError, match="receivers is empty"):
        C.path_patch(model, clean, corrupt, [[(0, 0)]], metric, receivers=[])


def test_attention_scores(setup):
    model, clean, _, _ = setup
    s = C.attention_scores(model, clean, -1, 0)
    assert s.shape == (model.cfg.n_layers, model.cfg.n_heads) and (s >= 0).all() and (s <= 1).all()
    total = sum(C.attention_scores(model, clean, 3, k) for k in range(4))
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    with pytest.raises(ValueError, match="causal"):
        C.attention_scores(model, clean, 2, 4)


def test_copy_scores(setup):
    model = setup[0]
    ids = torch.arange(10, 30)
    s = C.copy_scores(model, ids, top_k=3)
    assert s.shape == (model.cfg.n_layers, model.cfg.n_heads) and (s >= 0).all() and (s <= 1).all()
    assert (C.copy_scores(model, ids, top_k=len(ids), within=True) == 1).all()
    with pytest.raises(ValueError, match="token ids"):
        C.copy_scores(model, torch.tensor([10_000]))
    with pytest.raises(ValueError, match="at least one"):
        C.copy_scores(model, torch.tensor([], dtype=torch.long))


def test_ablation_variants_and_cache_with_patch(setup):
    model, clean, corrupt, _ = setup
    n = model.cfg.n_layers * model.cfg.n_heads
    assert len(C.complement_variant(model, [(0, 0)])) == n - 1 and len(C.complement_variant(model, [])) == n
    with pytest.raises(ValueError, match="circuit"):
        C.complement_variant(model, [(0, 99)])
    plain = P.cache_activations(model, clean, C.z_hooks(model))
    same = C.cache_with_patch(model, clean, C.z_hooks(model), [], plain)
    assert all(torch.allclose(plain[k], same[k]) for k in plain)
    src = P.cache_activations(model, corrupt, C.z_hooks(model))
    ko = C.cache_with_patch(model, clean, C.z_hooks(model), C.heads_variant(model, [(0, 1)]), src)
    assert torch.allclose(ko["blocks.0.attn.hook_z"][:, :, 1], src["blocks.0.attn.hook_z"][:, :, 1])
    with pytest.raises(KeyError, match="not found|does not exist"):
        C.cache_with_patch(model, clean, ["blocks.9.nothing"], [], plain)


def test_top_heads_and_classify():
    s = torch.tensor([[0.1, 0.9], [0.5, 0.2]])
    assert C.top_heads(s, 2) == [(0, 1), (1, 0)]
    with pytest.raises(ValueError):
        C.top_heads(s, 5)
    cols = ["DLA", "END→IO", "END→S2", "S2→S1", "S2→S1+1", "prev-token (random)"]
    table = pd.DataFrame([[0.0, 0, 0, 0.9, 0.1, 0.1], [0.5, 0.8, 0.1, 0, 0, 0], [0.4, 0.0, 0.6, 0, 0, 0],
                          [-0.3, 0.5, 0.1, 0, 0, 0]], index=["L0H0", "L1H0", "L1H1", "L1H2"], columns=cols)
    feeders = pd.DataFrame([["L0H0", "L1H0", "k", -0.4]], columns=["sender", "receivers", "input", "change"])
    out = C.classify_heads(table, [(1, 0), (1, 1), (1, 2)], feeders)
    assert [out[h][0] for h in [(1, 0), (1, 1), (1, 2), (0, 0)]] == \
        ["name mover", "S-suppression", "negative name mover", "duplicate-token"]
    out = C.classify_heads(table, [(1, 1)], feeders.iloc[:0], carriers=[(1, 0), (1, 1)])
    assert out[(1, 0)][0] == "name mover" and out[(1, 1)][0] == "S-suppression"


def test_circuit_diagram():
    ax = plots.circuit_diagram({"L0H0": (0, "duplicate-token"), "L1H0": (1, "name mover")},
                               [("L0H0", "L1H0", "k -0.4"), ("L1H0", "logits", "-0.8")], n_layers=2)
    assert ax.get_title() == "circuit"
    with pytest.raises(ValueError, match="not in the circuit"):
        plots.circuit_diagram({"L0H0": (0, "x")}, [("L0H1", "logits", "")], n_layers=2)


def test_find_circuit_matches_path_patching(setup):
    model, clean, corrupt, metric = setup
    found = C.find_circuit(model, clean, corrupt, metric, -1, direct_min=0.0, feeder_min=0.0, depth=2)
    base = _metric_of(model, clean, metric)
    heads = _heads(model)
    ref = C.path_patch(model, clean, corrupt, [[h] for h in heads], metric)
    assert torch.allclose(found.direct_effect.flatten(), (ref - base) / base, atol=1e-5)
    assert found.direct_heads == heads  # threshold 0: every head is direct
    L = model.cfg.n_layers
    # every earlier head feeds every later layer's heads through q, k and v
    n_feeds = sum(3 * layer * model.cfg.n_heads for layer in range(1, L))
    assert len(found.feeds) == n_feeds == len(found.feed_table)
    assert set(found.heads) == set(heads)
    assert set(found.feed_table.level) == {2}
    ref_q = C.path_patch(model, clean, corrupt, [[(0, h)] for h in range(model.cfg.n_heads)], metric,
                         receivers=[(1, h) for h in range(model.cfg.n_heads)], receiver_input="q",
                         receiver_pos=clean.shape[1] - 1)
    rows = found.feed_table[(found.feed_table.input == "q") & found.feed_table.receivers.str.startswith("L1H0")]
    assert torch.allclose(torch.tensor(rows.change.tolist()[:model.cfg.n_heads]), (ref_q - base) / base, atol=1e-5)
    strict = C.find_circuit(model, clean, corrupt, metric, -1, direct_min=10.0)
    assert strict.direct_heads == [] and strict.feeders.empty and strict.heads == []


def test_find_circuit_recurses(tmp_path, random_gpt2):
    torch.set_num_threads(1)
    model = load_model(str(random_gpt2(tmp_path, "tiny", vocab_size=97, n_layer=3, n_head=2)),
                       device="cpu", verbose=False)
    metric = P.logit_diff_metric(torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]))
    for seed in range(20):  # prompts on which the last layer's heads have the largest direct effects
        g = torch.Generator().manual_seed(seed)
        clean = torch.randint(0, 97, (3, 6), generator=g)
        corrupt = clean.clone()
        corrupt[:, 1] = torch.randint(0, 97, (3,), generator=g)
        eff = C.find_circuit(model, clean, corrupt, metric, -1, direct_min=0.0, depth=1).direct_effect.abs()
        cut = eff[:2].max().item() + 1e-6  # just above every earlier head's effect: only layer 2 is direct
        if eff[2].max().item() > cut:
            break
    else:
        raise AssertionError("no prompt set found")
    found = C.find_circuit(model, clean, corrupt, metric, -1, direct_min=cut, feeder_min=0.0, depth=3)
    assert all(h[0] == 2 for h in found.direct_heads)
    levels = found.feed_table.groupby("level").receivers.apply(set).to_dict()
    assert set(levels) == {2, 3}
    assert all(r.startswith("L2") for r in levels[2]) and all(r.startswith("L1") for r in levels[3])
    shallow = C.find_circuit(model, clean, corrupt, metric, -1, direct_min=cut, feeder_min=0.0, depth=2)
    assert set(shallow.feed_table.level) == {2}
    with pytest.raises(ValueError, match="depth"):
        C.find_circuit(model, clean, corrupt, metric, -1, depth=0)


def test_overlap():
    o = C.overlap([(0, 1), (1, 2), (2, 3)], [(1, 2), (2, 3), (3, 0), (3, 1)])
    assert o["shared"] == 2 and o["of_b"] == 0.5 and abs(o["of_a"] - 2 / 3) < 1e-9 and o["jaccard"] == 0.4
    with pytest.raises(ValueError, match="at least one head"):
        C.overlap([], [(0, 0)])


def test_run_with_attention(setup):
    model, clean, _, _ = setup
    B, T = clean.shape
    end = torch.full((B,), T - 1)
    base = P.logits_at(model, clean, end)
    same, _ = C.run_with_attention(model, clean, [], end, torch.zeros(B, 1, dtype=torch.long))
    assert torch.allclose(same, base, atol=1e-5)
    keys = torch.tensor([[1, 3]] * B)
    out, rec = C.run_with_attention(model, clean, [(1, 0)], end, keys, record=["blocks.1.attn.hook_pattern"])
    row = rec["blocks.1.attn.hook_pattern"][:, 0, T - 1]
    assert torch.allclose(row[:, [1, 3]], torch.full((B, 2), 0.5)) and abs(row.sum(-1) - 1).max() < 1e-6
    assert not torch.allclose(out, base, atol=1e-4)
    with pytest.raises(ValueError, match="at or before"):
        C.run_with_attention(model, clean, [(1, 0)], torch.zeros(B, dtype=torch.long), keys)


def test_attention_table_matches_attention_scores(setup):
    model, clean, _, _ = setup
    B, T = clean.shape
    end, k1, k2 = torch.full((B,), T - 1), torch.full((B,), 2), torch.full((B,), 4)
    tab = C.attention_table(model, clean, {"a": (end, k1), "b": (end, torch.stack([k1, k2], 1))})
    a = C.attention_scores(model, clean, end, k1).flatten()
    b = a + C.attention_scores(model, clean, end, k2).flatten()
    assert torch.allclose(torch.tensor(tab["a"].values, dtype=torch.float32), a, atol=1e-6)
    assert torch.allclose(torch.tensor(tab["b"].values, dtype=torch.float32), b, atol=1e-6)
    mean = C.attention_table(model, clean, {"b": (end, torch.stack([k1, k2], 1))}, how="mean")
    assert torch.allclose(torch.tensor(mean["b"].values, dtype=torch.float32), b / 2, atol=1e-6)
    with pytest.raises(ValueError, match="after query"):
        C.attention_table(model, clean, {"x": (k1, end)})
    with pytest.raises(ValueError, match="how"):
        C.attention_table(model, clean, {"a": (end, k1)}, how="max")


def test_knockout_effects_match_single_ablations(setup):
    model, clean, corrupt, metric = setup
    mean = P.mean_activations(P.cache_activations(model, corrupt, C.z_hooks(model)))
    ko = C.knockout_effects(model, clean, mean, metric, -1)
    base = _metric_of(model, clean, metric)
    h = (1, 2)
    one = P.patch_one_by_one(model, clean, mean, [C.heads_variant(model, [h])], metric).item()
    assert abs(ko[h].item() - (one - base) / base) < 1e-4


def test_task_circuit_and_roles(setup):
    model, clean, corrupt, metric = setup
    T = clean.shape[1]
    cands = P.candidates_metric(torch.tensor([[5, 8], [6, 9], [7, 10]]), torch.arange(5, 20))
    tc = C.task_circuit(model, clean, corrupt, metric, cands, -1, direct_min=0.05, feeder_min=0.05, carrier_min=0.01)
    assert set(tc.found.heads) <= set(tc.heads) and set(tc.carriers) <= set(tc.heads)
    assert tc.membership().sum().item() == len(tc.heads)
    end = torch.full((3,), T - 1)
    table = C.attention_table(model, clean, {"END→answer": (end, 1), "END→rival": (end, 2),
                                             "repeat→first": (2, 0), "repeat→first+1": (2, 1)})
    roles = C.classify_roles(tc, table)
    assert set(roles) == set(tc.heads)
    assert {r for r, _ in roles.values()} <= {"mover", "inhibition", "duplicate-token", "induction"}
    for h in tc.found.direct_heads:
        r = table.loc[C.head_name(h)]
        assert roles[h][0] == ("inhibition" if r["END→rival"] > r["END→answer"] else "mover")
    with pytest.raises(KeyError, match="columns"):
        C.classify_roles(tc, table[["END→answer"]])


def test_freeze_hooks_and_steering_strength(setup):
    model, clean, _, _ = setup
    B, T = clean.shape
    end = torch.full((B,), T - 1)
    keys = torch.tensor([[1]] * B)
    none, _ = C.run_with_attention(model, clean, [(1, 0)], end, keys, strength=0.0)
    assert torch.allclose(none, P.logits_at(model, clean, end), atol=1e-5)
    _, rec = C.run_with_attention(model, clean, [(1, 0)], end, keys, strength=0.5,
                                  record=["blocks.1.attn.hook_pattern"])
    _, base = C.run_with_attention(model, clean, [], end, keys, record=["blocks.1.attn.hook_pattern"])
    row, base_row = rec["blocks.1.attn.hook_pattern"][:, 0, T - 1], base["blocks.1.attn.hook_pattern"][:, 0, T - 1]
    assert torch.allclose(row[:, 1], 0.5 * base_row[:, 1] + 0.5, atol=1e-6)
    with pytest.raises(ValueError, match="strength"):
        C.run_with_attention(model, clean, [(1, 0)], end, keys, strength=1.5)
    # freezing every MLP at its cached value: same logits when nothing else changes
    names = [f"blocks.{i}.hook_mlp_out" for i in range(model.cfg.n_layers)]
    frozen, _ = C.run_with_attention(model, clean, [], end, keys,
                                     extra_hooks=C.freeze_hooks(P.cache_activations(model, clean, names)))
    assert torch.allclose(frozen, P.logits_at(model, clean, end), atol=1e-5)
    # ... and the MLPs no longer respond to a steered head
    steered, _ = C.run_with_attention(model, clean, [(0, 0)], end, keys)
    steered_frozen, _ = C.run_with_attention(model, clean, [(0, 0)], end, keys,
                                             extra_hooks=C.freeze_hooks(P.cache_activations(model, clean, names)))
    assert not torch.allclose(steered, steered_frozen, atol=1e-5)


def test_behaviour_roles_one_rule():
    idx = [C.head_name((0, j)) for j in range(4)]
    table = pd.DataFrame({"END→answer": [0.5, 0.5, 0.0, 0.0], "END→rival": [0.0, 0.6, 0.6, 0.0],
                          "repeat→first": [0.0, 0.0, 0.0, 0.1], "repeat→first+1": [0.0, 0.0, 0.0, 0.4]}, index=idx)
    effect = torch.tensor([[-0.1, -0.2, -0.3, 0.0]])
    copy = torch.tensor([[0.9, 0.1, 0.0, 0.0]])
    roles = C.behaviour_roles([(0, j) for j in range(4)], table, effect, copy, att_min=0.3, copy_min=0.5)
    assert [roles[(0, j)][0] for j in range(4)] == ["mover", "inhibition", "inhibition", "induction"]
    effect[0, 2] = 0.1  # looks at the rival but patching it does not lower the metric: not inhibition
    roles = C.behaviour_roles([(0, 2)], table, effect, copy, att_min=0.3, copy_min=0.5)
    assert roles[(0, 2)][0] == "other"
    with pytest.raises(KeyError, match="columns"):
        C.behaviour_roles([(0, 0)], table[["END→answer"]], effect, copy, 0.3, 0.5)


def test_random_overlap_baseline():
    r = C.random_overlap(4, 8, 32, draws=20000, seed=0)
    assert abs(r["of_a"][0] - 8 / 32) < 0.01  # E|a ∩ b| / |a| = |b| / n
    assert r["of_a"][1] <= r["of_a"][0] <= r["of_a"][2]
    assert C.random_overlap(32, 32, 32, draws=10)["jaccard"] == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="sizes"):
        C.random_overlap(0, 3, 32)


def test_random_overlap_by_layer_keeps_each_layer_count():
    # disjoint layers: random sets confined to them never meet
    assert C.random_overlap_by_layer([(0, 1), (0, 2)], [(3, 0)], 4, 8, draws=500)["of_a"] == (0.0, 0.0, 0.0)
    # a whole layer each: every draw is the same layer
    full = [(2, h) for h in range(8)]
    assert C.random_overlap_by_layer(full, full, 4, 8, draws=50)["jaccard"] == (1.0, 1.0, 1.0)
    # two heads of one layer against four of it: expected |a ∩ b| / |a| = 4 / 8
    r = C.random_overlap_by_layer([(1, 0), (1, 1)], [(1, 2), (1, 3), (1, 4), (1, 5)], 4, 8, draws=20000, seed=0)
    assert abs(r["of_a"][0] - 0.5) < 0.02
    # the same sizes spread over the model share less than when both sit in one layer
    assert C.random_overlap(2, 4, 32, draws=20000)["of_a"][0] < r["of_a"][0]
    with pytest.raises(ValueError, match="not \\(layer, head\\)"):
        C.random_overlap_by_layer([(5, 0)], [(0, 0)], 4, 8)
    with pytest.raises(ValueError, match="at least one"):
        C.random_overlap_by_layer([], [(0, 0)], 4, 8)
