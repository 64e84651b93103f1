"""Head scores: shapes, exact values on a model with known attention, and clear errors."""

import pytest
import torch

import helpers
from helpers.heads import (
    attention_patterns,
    duplicate_token_scores,
    induction_scores,
    positional_pattern,
    previous_token_scores,
    previous_token_scores_by_position,
    repeated_random_tokens,
    top_head,
)
from helpers.transformer import Transformer, TransformerConfig, export_gpt2

N_CTX = 20


@pytest.fixture(scope="module")
def uniform_model(tmp_path_factory):
    """Queries and keys zeroed: every head attends uniformly to positions 0..t, so the scores are known."""
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=30, n_ctx=N_CTX, d_model=32, n_layers=2, n_heads=2, attn_only=True)
    model = Transformer(cfg)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[: 2 * cfg.d_model].zero_()
            block.attn.qkv.bias[: 2 * cfg.d_model].zero_()
    return helpers.load_model(str(export_gpt2(model, tmp_path_factory.mktemp("uniform"))), verbose=False)


@pytest.fixture(scope="module")
def gpt2_shaped(tmp_path_factory, random_gpt2):
    return helpers.load_model(str(random_gpt2(tmp_path_factory.mktemp("g"), size="tiny")), verbose=False)


def test_uniform_attention_gives_the_exact_scores(uniform_model):
    t = torch.arange(1, N_CTX).float()
    by_pos = previous_token_scores_by_position(uniform_model, batch=4)
    assert by_pos.shape == (2, 2, N_CTX - 1)
    assert torch.allclose(by_pos, (1 / (t + 1)).expand(2, 2, -1), atol=1e-5)
    assert torch.allclose(previous_token_scores(uniform_model, batch=4), (1 / (t + 1)).mean().expand(2, 2),
                          atol=1e-5)
    half = 8
    q = torch.arange(half, 2 * half).float()
    expected = (1 / (q + 1)).mean()
    for scores in (induction_scores(uniform_model, half=half, batch=4),
                   duplicate_token_scores(uniform_model, half=half, batch=4)):
        assert scores.shape == (2, 2)
        assert torch.allclose(scores, expected.expand(2, 2), atol=1e-5)
    pos = positional_pattern(uniform_model, 0, 1)
    assert torch.allclose(pos[5, :6], torch.full((6,), 1 / 6), atol=1e-5)


def test_bos_shifts_positions(uniform_model):
    tokens = repeated_random_tokens(uniform_model, 3, 5, bos=7)
    assert tokens.shape == (3, 11) and (tokens[:, 0] == 7).all()
    assert torch.equal(tokens[:, 1:6], tokens[:, 6:])
    q = torch.arange(6, 11).float()  # second copy, after the BOS column
    assert torch.allclose(induction_scores(uniform_model, half=5, batch=3, bos=7),
                          (1 / (q + 1)).mean().expand(2, 2), atol=1e-5)
    assert previous_token_scores_by_position(uniform_model, batch=2, bos=7).shape == (2, 2, N_CTX - 2)


def test_any_bridge_model_gpt2_shaped(gpt2_shaped):
    n_layers, n_heads = gpt2_shaped.cfg.n_layers, gpt2_shaped.cfg.n_heads
    for fn in (previous_token_scores, induction_scores, duplicate_token_scores):
        s = fn(gpt2_shaped, batch=2, bos=0)
        assert s.shape == (n_layers, n_heads)
        assert ((s >= 0) & (s <= 1)).all()
    pat = attention_patterns(gpt2_shaped, torch.zeros(2, 6, dtype=torch.long))
    assert pat.shape == (n_layers, 2, n_heads, 6, 6)
    assert torch.allclose(pat.sum(-1), torch.ones(()), atol=1e-5)


def test_top_head():
    s = torch.tensor([[0.1, 0.9], [0.7, 0.2]])
    assert top_head(s) == (0, 1, pytest.approx(0.9))
    assert top_head(s, layer=1) == (1, 0, pytest.approx(0.7))
    with pytest.raises(ValueError, match="n_layers, n_heads"):
        top_head(s[0])


def test_bad_inputs_are_clear_errors(uniform_model):
    with pytest.raises(ValueError, match="does not fit"):
        induction_scores(uniform_model, half=N_CTX)
    with pytest.raises(ValueError, match="exceeds the model's n_ctx"):
        attention_patterns(uniform_model, torch.zeros(1, N_CTX + 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, seq\)"):
        attention_patterns(uniform_model, torch.zeros(N_CTX, dtype=torch.long))
    with pytest.raises(TypeError, match="TransformerLens model"):
        previous_token_scores(torch.nn.Linear(2, 2))


def test_cutoff_position():
    from helpers.heads import cutoff_position

    assert cutoff_position(torch.tensor([0.9, 0.4, 0.8, 0.3, 0.1])) == 4  # positions 1..5; last >= 0.5 is 3
    assert cutoff_position(torch.tensor([0.9, 0.8])) == 3
    assert cutoff_position(torch.tensor([0.1, 0.2])) == 1
    with pytest.raises(ValueError, match="one score per position"):
        cutoff_position(torch.ones(2, 2))


def test_loss_by_position(uniform_model):
    from helpers.heads import loss_by_position

    tokens = repeated_random_tokens(uniform_model, 4, 6)
    loss = loss_by_position(uniform_model, tokens)
    assert loss.shape == (11,) and (loss > 0).all() and torch.isfinite(loss).all()
