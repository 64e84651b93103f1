"""helpers.saliency: gradient x input shares, greedy completion with saliency, the deletion test."""

import pytest
import torch

from helpers import load_model, saliency
from helpers.loading import ORGANISM_DIR


@pytest.fixture(scope="module")
def model(tiny_gpt2_dir):
    return load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)


@pytest.fixture(scope="module")
def organism():
    if not (ORGANISM_DIR / "config.json").exists():
        pytest.skip("organism not trained yet")
    return load_model("organism", device="cpu", verbose=False)


def toks(seed=0, shape=(3, 8)):
    return torch.randint(1, 97, shape, generator=torch.Generator().manual_seed(seed))


def test_shares_sum_to_one_and_ignore_the_future(model):
    t = toks()
    pos = torch.tensor([7, 4, 2])
    shares = saliency.grad_x_input(model, t, pos, torch.tensor([5, 6, 7]))
    assert shares.shape == t.shape
    assert torch.allclose(shares.sum(-1), torch.ones(3), atol=1e-5)
    assert (shares >= 0).all()
    assert shares[1, 5:].abs().max() == 0 and shares[2, 3:].abs().max() == 0


def test_batched_equals_one_by_one(model):
    t, pos, tgt = toks(1), torch.tensor([7, 6, 5]), torch.tensor([1, 2, 3])
    batched = saliency.grad_x_input(model, t, pos, tgt)
    for i in range(3):
        one = saliency.grad_x_input(model, t[i:i + 1], int(pos[i]), int(tgt[i]))
        assert torch.allclose(batched[i], one[0], atol=1e-5)


def test_shares_match_a_direct_autograd_computation(model):
    t = toks(2, (1, 6))
    emb = model.embed(t).detach().requires_grad_(True)
    out = model.run_with_hooks(t, fwd_hooks=[("hook_embed", lambda act, hook: emb)])
    (grad,) = torch.autograd.grad(out[0, -1, 9], emb)
    expected = (grad * emb).norm(dim=-1)[0]
    assert torch.allclose(saliency.grad_x_input(model, t, -1, 9)[0], expected / expected.sum(), atol=1e-5)


def test_bad_inputs_get_clear_errors(model):
    with pytest.raises(ValueError, match=r"\[batch, pos\]"):
        saliency.grad_x_input(model, torch.tensor([1, 2, 3]), 2, 4)
    with pytest.raises(ValueError, match="positions must lie"):
        saliency.grad_x_input(model, toks(), 8, 4)
    with pytest.raises(ValueError, match="non-empty"):
        saliency.check_known_words(model, "  ")


def test_unknown_word_gets_a_clear_error(organism):
    with pytest.raises(ValueError, match="Shakespeare.*not in this model's vocabulary"):
        saliency.generate_with_saliency(organism, "Shakespeare was born in", 2)
    saliency.check_known_words(organism, "When Mary and John went to the store")  # known words: no error


def test_gpt2_tokenizer_has_no_unknown_words(model):
    saliency.check_known_words(model, "Shakespeare was born in")  # byte-level BPE: nothing is unknown


def test_completion_rows_sum_to_one(organism):
    c = saliency.generate_with_saliency(organism, "1, 2, 3,", 3)
    assert c.generated[0] == "4" and len(c.tokens) == c.n_prompt + 3
    assert c.shares.shape == (3, len(c.tokens))
    assert torch.allclose(c.shares.sum(-1), torch.ones(3), atol=1e-5)
    for i in range(3):  # generated token i sees the prompt and the i tokens generated before it
        assert c.shares[i, c.n_prompt + i:].abs().max() == 0


def test_delete_positions():
    t = torch.tensor([[0, 1, 2, 3, 4], [0, 5, 6, 9, 9]])
    out, n = saliency.delete_positions(t, torch.tensor([5, 3]), torch.tensor([[1, 3], [1, 2]]), pad=9)
    assert n.tolist() == [3, 1]
    assert out.tolist() == [[0, 2, 4], [0, 9, 9]]
    with pytest.raises(ValueError, match="drop must be"):
        saliency.delete_positions(t, torch.tensor([5, 3]), torch.tensor([1, 2]), pad=9)


def test_deletion_test(model):
    t = toks(3, (4, 10))
    r = saliency.deletion_test(model, t, torch.tensor([10, 9, 8, 10]), k=2, draws=3)
    assert r.p_random.shape == (4, 3) and r.flip_salient.shape == (4,)
    assert ((r.p_before > 0) & (r.p_before <= 1)).all()
    s = r.summary()
    assert s["n"] == 4 and 0 <= s["flip_salient"] <= 1
    with pytest.raises(ValueError, match="more than k"):
        saliency.deletion_test(model, t, torch.tensor([10, 9, 3, 10]), k=2)


def test_salient_deletions_hurt_the_organism_more_than_random_ones(organism):
    from helpers import tasks

    enc = tasks.make("counting", 30, "test", 0).encode(organism)
    s = saliency.deletion_test(organism, enc.tokens, enc.lengths, k=2, draws=3).summary()
    assert s["drop_salient"] > s["drop_random"]


def test_replace_positions_and_replace_mode(model):
    t = torch.tensor([[0, 1, 2, 3], [0, 4, 5, 6]])
    g = torch.Generator().manual_seed(0)
    out = saliency.replace_positions(t, torch.tensor([[1], [2]]), torch.tensor([9]), g)
    assert out.tolist() == [[0, 9, 2, 3], [0, 4, 9, 6]]
    with pytest.raises(ValueError, match="pool"):
        saliency.replace_positions(t, torch.tensor([[1], [2]]), torch.tensor([], dtype=torch.long), g)
    r = saliency.deletion_test(model, toks(4, (4, 10)), torch.tensor([10, 9, 8, 10]), k=2, draws=3, mode="replace")
    assert r.p_random.shape == (4, 3)
    with pytest.raises(ValueError, match="mode"):
        saliency.deletion_test(model, toks(4, (4, 10)), torch.tensor([10, 9, 8, 10]), mode="mask")


def test_chunks_that_fit_free_memory_give_the_same_shares(model, monkeypatch):
    """The backward keeps every layer's activations: prompts go in chunks sized from free memory."""
    t = toks(1, (7, 8))
    pos, tgt = torch.tensor([7, 3, 5, 7, 6, 2, 7]), torch.arange(7) + 5
    whole = saliency.grad_x_input(model, t, pos, tgt)
    asked = []
    monkeypatch.setattr(saliency, "auto_batch_size", lambda n, dev, cap: asked.append((n, cap)) or 3)
    chunked = saliency.grad_x_input(model, t, pos, tgt)
    assert asked and asked[0][1] == 7 and asked[0][0] > 0
    assert torch.allclose(chunked, whole, atol=1e-6)
