"""The public primitives of helpers.hooks on the bridge: capture, logits at positions, the LayerNorm."""

import pytest
import torch

from helpers import load_model
from helpers.hooks import LN_FINAL, capture, final_ln, layer_norm, ln_scale, logits_at, run_with_capture


@pytest.fixture(scope="module")
def run(tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    tokens = torch.randint(0, 97, (3, 7), generator=torch.Generator().manual_seed(0))
    return model, tokens


NAMES = ["blocks.0.hook_resid_pre", "blocks.1.attn.hook_z", "blocks.0.attn.hook_pattern", LN_FINAL]


def test_capture_equals_run_with_cache_and_stops_early(run):
    model, tokens = run
    _, cache = model.run_with_cache(tokens, names_filter=NAMES, return_cache_object=False)
    got = capture(model, tokens, NAMES)
    assert set(got) == set(NAMES)  # keyed by the names asked for (resid_pre is an alias on the bridge)
    assert all(torch.equal(got[n], cache[n]) for n in NAMES)
    fired = []
    capture(model, tokens, ["blocks.0.attn.hook_z"], [("blocks.1.attn.hook_z", lambda a, hook: fired.append(1))])
    assert fired == []  # the forward stopped after the last name kept


def test_run_with_capture_sees_the_patched_run(run):
    model, tokens = run
    zero = [("blocks.0.hook_attn_out", lambda a, hook: torch.zeros_like(a))]
    logits, acts = run_with_capture(model, tokens, ["blocks.0.hook_attn_out"], zero)
    assert logits.shape == (3, 7, 97) and (acts["blocks.0.hook_attn_out"] == 0).all()
    assert not torch.allclose(logits, model(tokens))
    with pytest.raises(KeyError, match="not found|does not exist"):
        capture(model, tokens, ["blocks.9.nothing"])


def test_logits_at_positions_and_stacked_variants(run):
    model, tokens = run
    full = model(tokens)
    pos = torch.tensor([6, 2, 4])
    assert torch.allclose(logits_at(model, tokens, pos), full[torch.arange(3), pos], atol=1e-5)
    stacked = logits_at(model, tokens.repeat(2, 1), pos)  # two copies of the three prompts
    assert stacked.shape == (6, 97) and torch.allclose(stacked[3:], stacked[:3])
    with pytest.raises(ValueError, match="do not stack"):
        logits_at(model, tokens, torch.tensor([1, 2]))


def test_final_ln_is_the_models_own(run):
    model, tokens = run
    acts = capture(model, tokens, ["blocks.1.hook_resid_post", LN_FINAL])
    assert torch.allclose(final_ln(acts["blocks.1.hook_resid_post"], model), acts[LN_FINAL], atol=1e-5)
    x, w, b = torch.randn(4, 8), torch.randn(8), torch.randn(8)
    assert torch.allclose(layer_norm(x, 1e-5, w, b), torch.nn.functional.layer_norm(x, (8,), w, b, 1e-5), atol=1e-5)
    assert ln_scale(x, 1e-5).shape == (4, 1)
