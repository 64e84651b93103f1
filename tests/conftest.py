"""Shared fixtures: everything runs offline and on the CPU."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

GPT2_SHAPES = {"small": {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024},
               "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 64, "n_positions": 128}}


def save_random_gpt2(out_dir: str | Path, size: str = "small", seed: int = 0, **overrides) -> Path:
    """Save a randomly initialised GPT-2-shaped model as a Hugging Face directory (no tokenizer).

    It tests the GPT-2 code path offline: shapes, hook names and memory, not findings. ``size="small"``
    is the real GPT-2 small shape, ``"tiny"`` a fast stand-in; ``overrides`` go to ``GPT2Config``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if size not in GPT2_SHAPES:
        raise ValueError(f"size must be one of {sorted(GPT2_SHAPES)}")
    torch.manual_seed(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(GPT2Config(**{**GPT2_SHAPES[size], **overrides})).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def random_gpt2():
    """:func:`save_random_gpt2`, for tests that need a random GPT-2 of their own shape."""
    return save_random_gpt2


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A tiny randomly initialised GPT-2-shaped model saved as an HF directory."""
    return save_random_gpt2(tmp_path_factory.mktemp("tiny_gpt2"), "tiny", vocab_size=97)
