import shutil
import time

import pytest
import torch

from helpers import loading
from helpers.loading import ChecksumError, ModelUnavailableError, load_model


def test_local_dir_boots_with_standard_hooks(tiny_gpt2_dir):
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    assert model.cfg.n_layers == 2 and model.cfg.n_heads == 4
    toks = torch.randint(0, 97, (2, 9))
    logits, cache = model.run_with_cache(toks)
    assert logits.shape == (2, 9, 97)
    assert cache["blocks.1.attn.hook_pattern"].shape == (2, 4, 9, 9)
    assert cache["blocks.0.attn.hook_z"].shape == (2, 9, 4, 16)
    assert "blocks.1.hook_resid_post" in cache


def test_local_dir_matches_hugging_face(tiny_gpt2_dir):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval()
    model = load_model(str(tiny_gpt2_dir), device="cpu", verbose=False)
    toks = torch.randint(0, 97, (1, 12))
    with torch.no_grad():
        ours = model(toks).log_softmax(-1)
        ref = hf(toks).logits.log_softmax(-1)
    assert (ours - ref).abs().max() < 1e-4


def test_hub_name_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(ModelUnavailableError, match="organism"):
        load_model("gpt2-small", verbose=False)
    assert time.time() - t0 < 5


def test_hub_name_unreachable_fails_fast(monkeypatch):
    # No offline flag: the probe finds no route (an unroutable endpoint), without retries.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    t0 = time.time()
    with pytest.raises(ModelUnavailableError, match="cannot be reached"):
        load_model("gpt2-xl", verbose=False)
    assert time.time() - t0 < 10


def test_name_mapping():
    assert loading.resolve("gpt2-small") == ("hub", "openai-community/gpt2")
    assert loading.resolve("GPT2-XL") == ("hub", "openai-community/gpt2-xl")
    assert loading.resolve("organism")[0] == "local"
    with pytest.raises(ValueError):
        loading.resolve("")
    with pytest.raises(ModelUnavailableError, match="not a directory"):
        loading.resolve("./no/such/dir")
    with pytest.raises(ModelUnavailableError, match="no organism checkpoint"):
        loading.resolve("organism@no-such-step")


def test_checksums_detect_corruption(tiny_gpt2_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_gpt2_dir, d)
    loading.write_checksums(d)
    loading.verify_checksums(d)
    weights = next(d.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="corrupted"):
        load_model(str(d), verbose=False)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ModelUnavailableError, match="config.json"):
        load_model(str(tmp_path), verbose=False)


def test_load_model_if_available_offline(monkeypatch, capsys, tiny_gpt2_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loading.load_model_if_available("gpt2-large", verbose=False) is None
    assert "skipped (offline)" in capsys.readouterr().out
    assert loading.load_model_if_available(str(tiny_gpt2_dir), verbose=False) is not None


def test_checkpoint_tags_are_in_training_order_and_load():
    from helpers.loading import checkpoint_tags, resolve

    tags = checkpoint_tags()
    assert tags[-1] == "organism" and checkpoint_tags(include_final=False) == tags[:-1]
    steps = [int(t.split("@step")[1]) for t in tags[:-1]]
    assert steps == sorted(steps) and len(steps) >= 2
    for t in tags:
        assert resolve(t)[0] == "local"
