"""helpers.clustering: k-means, 2-D projection, token kinds, purity, per-token activations."""

import pytest
import torch

from helpers import clustering as cl
from helpers import load_model


@pytest.fixture(scope="module")
def model(tiny_gpt2_dir):
    return load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)


def blobs(k=3, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(k, 5, generator=g)
    truth = torch.arange(k).repeat_interleave(n)
    return centres[truth] + 0.1 * torch.randn(k * n, 5, generator=g), truth


def test_kmeans_recovers_separated_blobs():
    x, truth = blobs()
    labels, cent, inertia = cl.kmeans(x, 3)
    assert cent.shape == (3, 5) and inertia < 0.1 * len(x) * 5
    assert cl.purity(labels, [str(t) for t in truth.tolist()]) == 1.0
    assert cl.kmeans(x, 3, seed=1)[2] == pytest.approx(inertia, rel=1e-4)


def test_kmeans_bad_inputs():
    x, _ = blobs()
    with pytest.raises(ValueError, match="k must lie"):
        cl.kmeans(x, 0)
    with pytest.raises(ValueError, match="k must lie"):
        cl.kmeans(x, len(x) + 1)
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        cl.kmeans(x[0], 2)


def test_pca_2d():
    x, _ = blobs()
    p = cl.pca_2d(x)
    assert p.shape == (len(x), 2)
    assert p[:, 0].var() >= p[:, 1].var()
    assert torch.allclose(p.mean(0), torch.zeros(2), atol=1e-4)
    with pytest.raises(ValueError):
        cl.pca_2d(torch.zeros(1, 3))


def test_purity_and_its_chance_level():
    kinds = ["a"] * 6 + ["b"] * 6
    perfect = torch.tensor([0] * 6 + [1] * 6)
    assert cl.purity(perfect, kinds) == 1.0
    assert cl.purity(torch.zeros(12, dtype=torch.long), kinds) == 0.5
    assert 0.5 <= cl.shuffled_purity(perfect, kinds) < 1.0
    with pytest.raises(ValueError, match="one kind per label"):
        cl.purity(perfect, kinds[:-1])


def test_token_kinds():
    assert cl.token_kind("anything", first=True) == "first token"
    assert [cl.token_kind(t) for t in ["Ġ12", "7", ",", "Ġ.", "Mary", "Ġred", "pencil", "store", "Ġthe"]] == \
        ["number", "number", "separator", "separator", "name", "colour", "object", "place", "word"]
    assert set(cl.KINDS) >= {cl.token_kind(t) for t in ["x", "1", "?"]}


def test_token_activations_and_table(model):
    tokens = torch.randint(0, 97, (3, 7), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([7, 5, 3])
    a = cl.token_activations(model, tokens, lengths, "blocks.1.mlp.hook_post", answers=torch.tensor([1, 2, 3]))
    assert a.acts.shape == (15, model.cfg.d_mlp) and len(a) == 15 and len(a.strings) == 15
    assert a.kinds[0] == a.kinds[7] == "first token" and a.pos.tolist()[:8] == [0, 1, 2, 3, 4, 5, 6, 0]
    assert a.next_kinds[:6] == a.kinds[1:7]
    both = cl.Activations.cat([a, a])
    assert len(both) == 30 and both.acts.shape[0] == 30
    labels, _, _ = cl.kmeans(a.acts, 3)
    table = cl.cluster_table(labels, a.kinds, a.strings)
    assert table["size"].sum() == 15 and {"main kind", "share", "frequent tokens"} <= set(table.columns)
    with pytest.raises(ValueError, match="unknown hook"):
        cl.token_activations(model, tokens, lengths, "blocks.9.mlp.hook_post")
    with pytest.raises(ValueError, match="lengths"):
        cl.token_activations(model, tokens, lengths[:2], "blocks.1.mlp.hook_post")
