import pytest
import torch

from helpers import lens, load_model, neurons


@pytest.fixture(scope="module")
def model(tiny_gpt2_dir):
    return load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)


def test_encode_texts_pads_and_masks():
    model = load_model("organism", device="cpu", verbose=False)
    toks, mask = neurons.encode_texts(model, ["The apple was big .", "The apple"])
    assert toks.shape == mask.shape == (2, 6)
    assert mask.sum(1).tolist() == [6, 3]
    assert (toks[:, 0] == model.tokenizer.bos_token_id).all()
    assert neurons.encode_texts(model, ["The apple was big ."], max_len=4)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="no texts"):
        neurons.encode_texts(model, [])


def test_record_stream_matches_the_cache(model):
    toks = torch.randint(0, 97, (5, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(toks, dtype=torch.bool)
    rec = neurons.record_stream(model, toks, mask, [(1, 3), (0, 5)], batch_size=2, progress=False)
    logits, cache = model.run_with_cache(toks)
    assert torch.allclose(rec.act((1, 3)), cache["blocks.1.mlp.hook_post"][..., 3], atol=1e-5)
    assert torch.allclose(rec.act((0, 5)), cache["blocks.0.mlp.hook_post"][..., 5], atol=1e-5)
    assert torch.equal(rec.top, logits.argmax(-1))


def test_record_stream_bad_inputs(model):
    toks = torch.zeros((2, 4), dtype=torch.long)
    mask = torch.ones_like(toks, dtype=torch.bool)
    with pytest.raises(ValueError, match="layer 9 out of range"):
        neurons.record_stream(model, toks, mask, [(9, 0)])
    with pytest.raises(ValueError, match="neuron .* out of range"):
        neurons.record_stream(model, toks, mask, [(0, 10_000)])
    with pytest.raises(ValueError, match="same"):
        neurons.record_stream(model, toks, mask[:, :3], [(0, 0)])
    with pytest.raises(ValueError, match="no neurons"):
        neurons.record_stream(model, toks, mask, [])


def test_max_activating_skips_padding():
    acts = torch.tensor([[1.0, 9.0, 2.0], [3.0, 0.5, 8.0]])
    mask = torch.tensor([[True, False, True], [True, True, True]])
    assert neurons.max_activating(acts, mask, k=2) == [(1, 2, 8.0), (1, 0, 3.0)]
    with pytest.raises(ValueError, match="same shape"):
        neurons.max_activating(acts, mask[:, :2])
    with pytest.raises(ValueError, match="k must"):
        neurons.max_activating(acts, mask, k=0)


def test_activation_bins_counts_and_proportions():
    acts = torch.tensor([[0.0, 0.1, 0.9, 1.0]])
    hit = torch.tensor([[False, False, True, False]])
    mask = torch.ones_like(hit)
    df = neurons.activation_bins(acts, hit, mask, n_bins=2)
    assert df["count"].tolist() == [2, 2] and df["proportion"].tolist() == [0.0, 0.5]
    with pytest.raises(ValueError, match="same shape"):
        neurons.activation_bins(acts, hit[:, :2], mask)
    with pytest.raises(ValueError, match="no tokens"):
        neurons.activation_bins(acts, hit, torch.zeros_like(mask))


def test_congruence_search_agrees_with_brute_force(model):
    L, D = model.cfg.n_layers, model.cfg.d_mlp
    full = torch.cat([lens.neuron_congruence(model, layer) for layer in range(L)]).detach()  # [L*D, V]
    s = neurons.congruence_search(model, chunk=5, progress=False)  # chunks smaller than a layer
    top2 = full.topk(2, dim=0)
    assert torch.allclose(s.token_best, top2.values[0], atol=1e-5)
    assert torch.allclose(s.token_second, top2.values[1], atol=1e-5)
    flat = s.token_best_neuron[:, 0] * D + s.token_best_neuron[:, 1]
    assert torch.equal(flat, top2.indices[0])
    ntop = full.topk(2, dim=1)
    assert torch.equal(s.neuron_best_token.flatten(), ntop.indices[:, 0])
    assert torch.allclose(s.neuron_margin.flatten(), ntop.values[:, 0] - ntop.values[:, 1], atol=1e-5)
    pairs = neurons.exclusive_pairs(s, model, k=100)
    for _, r in pairs.iterrows():  # each pair is mutual
        assert int(s.neuron_best_token[r.layer, r.neuron]) == r.token_id
        assert flat[r.token_id] == r.layer * D + r.neuron
    assert (pairs["score"].diff().dropna() <= 0).all()
    assert len(neurons.top_token_neurons(s, model, k=3)) == 3


def test_congruence_search_exclude_and_bad_input(model):
    s = neurons.congruence_search(model, exclude=[0, 1], progress=False)
    assert torch.isnan(s.token_best[:2]).all() and not (s.neuron_best_token < 2).any()
    with pytest.raises(ValueError, match="excluded token ids"):
        neurons.congruence_search(model, exclude=[10_000], progress=False)
    with pytest.raises(ValueError, match="chunk"):
        neurons.congruence_search(model, chunk=0, progress=False)


def test_congruence_rank(model):
    c = lens.neuron_congruence(model, 1, torch.tensor([3]))[:, 0]
    all_c = torch.cat([lens.neuron_congruence(model, layer, torch.tensor([3]))[:, 0] for layer in range(2)])
    best = int(all_c.argmax())
    assert neurons.congruence_rank(model, 3, divmod(best, model.cfg.d_mlp)) == 0
    assert neurons.congruence_rank(model, 3, (1, int(c.argmin()))) >= int((c > c.min()).sum())
    with pytest.raises(ValueError, match="out of range"):
        neurons.congruence_rank(model, 3, (5, 0))


def test_neuron_congruence_rows(model):
    full = lens.neuron_congruence(model, 0)
    assert torch.allclose(lens.neuron_congruence(model, 0, neurons=slice(2, 5)), full[2:5])


def test_equal_length_prompts():
    from helpers import tasks
    model = load_model("organism", device="cpu", verbose=False)
    b = neurons.equal_length_prompts(tasks.make("articles", 60, split="test", seed=0), model, 10)
    assert 1 <= len(b) <= 10 and len(set(b.encode(model).end.tolist())) == 1
    with pytest.raises(ValueError, match="empty"):
        neurons.equal_length_prompts(b[[]], model, 3)


def test_colored_tokens_renders_and_checks_lengths():
    from helpers import plots
    html = plots.colored_tokens(["a", " b"], torch.tensor([0.5, 2.0]))
    assert "circuits-vis" in html._repr_html_()
    with pytest.raises(ValueError, match="one value per token"):
        plots.colored_tokens(["a"], [1.0, 2.0])


def test_congruence_reads_one_layer_without_autograd(model, monkeypatch):
    """Chapter 2 calls it once per layer: a kept autograd graph of the stacked W_out ran GPT-2 large out of memory."""
    from helpers import attribution

    ref = model.W_out[1].detach() @ model.W_U.detach()
    c = attribution.neuron_congruence(model, 1)
    assert not c.requires_grad and torch.allclose(c, ref)
    monkeypatch.setattr(type(model), "W_out", property(lambda self: pytest.fail("stacked every layer's W_out")))
    assert torch.allclose(attribution.neuron_congruence(model, 1, neurons=slice(0, 4)), ref[:4])
    with pytest.raises(ValueError, match="layer"):
        attribution.neuron_congruence(model, model.cfg.n_layers)
