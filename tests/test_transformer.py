"""The from-scratch transformer computes the same function as Hugging Face's GPT2LMHeadModel."""

import pytest
import torch

from helpers.transformer import Transformer, TransformerConfig, export_gpt2, hf_weight_pairs, to_hf


def from_hf_config(hf_cfg, attn_only: bool = False) -> TransformerConfig:
    """Our config for a ``GPT2Config`` (rejects what this implementation does not do)."""
    act = getattr(hf_cfg, "activation_function", "gelu_new")
    if act != "gelu_new":
        raise ValueError(f"only activation_function='gelu_new' is implemented, got {act!r}")
    if getattr(hf_cfg, "scale_attn_by_inverse_layer_idx", False) or getattr(hf_cfg, "reorder_and_upcast_attn",
                                                                              False):
        raise ValueError("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not implemented")
    return TransformerConfig(vocab_size=hf_cfg.vocab_size, n_ctx=hf_cfg.n_positions, d_model=hf_cfg.n_embd,
                             n_layers=hf_cfg.n_layer, n_heads=hf_cfg.n_head,
                             d_mlp=hf_cfg.n_inner or 4 * hf_cfg.n_embd, attn_only=attn_only,
                             tie_weights=bool(getattr(hf_cfg, "tie_word_embeddings", True)),
                             layer_norm_eps=hf_cfg.layer_norm_epsilon)


@torch.no_grad()
def from_hf(hf, attn_only: bool = False) -> Transformer:
    """Our ``Transformer`` with the weights of a ``GPT2LMHeadModel``.

    With ``attn_only=True`` the HF model's MLPs must be exactly zero (as ``to_hf`` writes them).
    """
    cfg = from_hf_config(hf.config, attn_only=attn_only)
    model = Transformer(cfg).eval()
    for ours, theirs, transpose in hf_weight_pairs(model, hf):
        if ours is None:
            if theirs.dim() == 2 and theirs.abs().max() > 0:
                raise ValueError("attn_only=True but the Hugging Face model has non-zero MLP weights")
            continue
        ours.copy_(theirs.T if transpose else theirs)
    return model


def _random_model(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=50, n_ctx=24, d_model=48, n_layers=3, n_heads=4, **kw)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # move LayerNorms and biases away from their identity initialisation
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("kw", [{}, {"tie_weights": False}, {"attn_only": True}, {"d_mlp": 40}],
                         ids=["gpt2", "untied", "attn_only", "d_mlp"])
def test_same_logits_as_gpt2lmheadmodel(kw):
    model = _random_model(**kw)
    hf = to_hf(model)
    tokens = torch.randint(0, 50, (4, 24))
    with torch.no_grad():
        diff = (model(tokens) - hf(tokens).logits).abs().max().item()
    assert diff < 1e-4
    back = from_hf(hf, attn_only=model.cfg.attn_only)
    with torch.no_grad():
        assert torch.equal(back(tokens), model(tokens))


def test_from_hf_of_a_fresh_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=32, n_layer=2, n_head=2)).eval()
    ours = from_hf(hf)
    tokens = torch.randint(0, 40, (2, 16))
    with torch.no_grad():
        assert (ours(tokens) - hf(tokens).logits).abs().max().item() < 1e-4


def test_attn_only_export_boots_with_load_model(tmp_path):
    import helpers

    model = _random_model(attn_only=True, tie_weights=False)
    bridge = helpers.load_model(str(export_gpt2(model, tmp_path / "m")), verbose=False)
    tokens = torch.randint(0, 50, (2, 24))
    with torch.no_grad():
        ours = model(tokens).log_softmax(-1)
        theirs, cache = bridge.run_with_cache(tokens)
    # compatibility mode centres the unembedding: compare log-probabilities, not raw logits
    assert (theirs.log_softmax(-1) - ours).abs().max().item() < 1e-4
    assert torch.allclose(cache["blocks.1.attn.hook_pattern"], model.attention_patterns()[1], atol=1e-5)


def test_attn_only_from_hf_rejects_nonzero_mlp():
    hf = to_hf(_random_model())
    with pytest.raises(ValueError, match="non-zero MLP"):
        from_hf(hf, attn_only=True)


@pytest.mark.parametrize("kw, match", [
    ({"d_model": 50, "n_heads": 4}, "divisible"),
    ({"n_layers": 0}, "n_layers must be a positive int"),
    ({"vocab_size": 3.5}, "vocab_size must be a positive int"),
    ({"d_mlp": -1}, "d_mlp"),
])
def test_bad_config_is_a_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        TransformerConfig(**kw)


def test_too_long_input_is_a_clear_error():
    model = _random_model()
    with pytest.raises(ValueError, match="longer than n_ctx"):
        model(torch.zeros(1, 25, dtype=torch.long))


def test_unsupported_hf_config_is_rejected():
    from transformers import GPT2Config

    with pytest.raises(ValueError, match="gelu_new"):
        from_hf_config(GPT2Config(activation_function="relu"))
