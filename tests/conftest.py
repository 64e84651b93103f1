"""Shared fixtures: everything runs offline and on the CPU."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A tiny randomly initialised GPT-2-shaped model saved as an HF directory."""
    from helpers.models import save_random_gpt2

    return save_random_gpt2(tmp_path_factory.mktemp("tiny_gpt2"), "tiny", vocab_size=97)
