import pytest
import torch

from helpers import lens, load_model


@pytest.fixture(scope="module")
def run(tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    toks = torch.randint(0, 97, (2, 6), generator=torch.Generator().manual_seed(1))
    logits, cache = model.run_with_cache(toks)
    return model, toks, logits, cache


def test_last_stage_of_logit_lens_is_the_model_output(run):
    model, _, logits, cache = run
    stack, labels = lens.residual_stages(model, cache)
    assert stack.shape[0] == 1 + 2 * model.cfg.n_layers and labels[0] == "emb" and labels[-1] == "L1.mlp"
    assert torch.allclose(lens.logit_lens(model, stack[-1]), logits, atol=1e-4)
    ids = torch.tensor([3, 4])
    assert torch.allclose(lens.logit_lens(model, stack, ids)[-1], logits[..., ids], atol=1e-4)


def test_direct_logit_attribution_adds_up(run):
    model, _, logits, cache = run
    pos = torch.tensor([5, 5])
    a, b = torch.tensor([3, 7]), torch.tensor([4, 8])
    d = lens.logit_diff_direction(model, a, b)
    heads = lens.direct_logit_attribution(model, cache, pos, d)  # [L, H, batch]
    assert heads.shape == (2, 4, 2)
    # the rest of the residual: embeddings, attention biases, MLPs
    rows = torch.arange(2)
    resid = cache["blocks.1.hook_resid_post"][rows, pos]
    rest = cache["blocks.0.hook_resid_pre"][rows, pos] + model.b_O.sum(0)
    rest = rest + sum(cache[f"blocks.{i}.hook_mlp_out"][rows, pos] for i in range(2))
    c = resid - resid.mean(-1, keepdim=True)
    scale = (c.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()
    rest_term = ((rest - rest.mean(-1, keepdim=True)) / scale * d).sum(-1)
    total = heads.sum((0, 1)) + rest_term + (model.b_U[a] - model.b_U[b])
    target = logits[rows, pos, a] - logits[rows, pos, b]
    assert torch.allclose(total, target, atol=1e-4)


def test_congruence_shape(run):
    model, *_ = run
    assert lens.neuron_congruence(model, 1).shape == (model.cfg.d_mlp, model.cfg.d_vocab)
    assert lens.neuron_congruence(model, 0, torch.tensor([1, 2])).shape == (model.cfg.d_mlp, 2)


def test_next_token_targets_and_number_values(run):
    model = run[0]
    t = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    tgt = lens.next_token_targets(t, torch.tensor([4, 2]), torch.tensor([1, 2]))
    assert tgt.tolist() == [[6, 7, 0, 1], [9, 2, -1, -1]]
    assert lens.next_token_targets(t, torch.tensor([4, 2]))[0, 3] == -1
    with pytest.raises(ValueError, match="lengths"):
        lens.next_token_targets(t, torch.tensor([4]))
    vals = lens.number_values(model, torch.tensor([[-1, 0, 1]]))
    assert vals.shape == (1, 3) and vals[0, 0] == -1


def test_lens_accuracy_and_first_stage(run):
    model, _, logits, cache = run
    stack, labels = lens.residual_stages(model, cache)
    top = logits.argmax(-1)
    mask = torch.ones_like(top, dtype=torch.bool)
    acc = lens.lens_accuracy(model, stack, top, mask)
    assert acc.shape == (len(labels),) and acc[-1] == 1.0  # the last stage is the model's own output
    assert lens.first_stage(acc, labels, 1.0)[1] in labels
    assert lens.first_stage(torch.tensor([0.1, 0.6, 0.9]), ["emb", "L0.attn", "L0.mlp"], 0.5) == (1, "L0.attn")
    assert lens.first_stage(torch.tensor([0.1]), ["emb"], 0.5) is None
    assert lens.stage_layer("L3.mlp") == 3 and lens.stage_layer("emb") == -1
    with pytest.raises(ValueError, match="selects no position"):
        lens.lens_accuracy(model, stack, top, ~mask)
    with pytest.raises(ValueError, match="accuracies"):
        lens.first_stage(acc, labels[:-1])
