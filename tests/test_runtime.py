import pytest
import torch

from helpers import runtime


@pytest.mark.parametrize("cuda, mps, expected", [(False, False, "cpu"), (True, True, "cuda"), (False, True, "mps")])
def test_device_preference(monkeypatch, cuda, mps, expected):
    """CUDA > Apple MPS > CPU when CIRCUITS_DEVICE is unset."""
    monkeypatch.delenv("CIRCUITS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert runtime.get_device() == torch.device(expected)


def test_env_override(monkeypatch):
    monkeypatch.setenv("CIRCUITS_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device() == torch.device("cpu")


def test_unavailable_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CIRCUITS_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.get_device()


def test_dtype_override(monkeypatch):
    monkeypatch.setenv("CIRCUITS_DTYPE", "bfloat16")
    assert runtime.get_dtype() == torch.bfloat16
    monkeypatch.setenv("CIRCUITS_DTYPE", "float8")
    with pytest.raises(ValueError, match="CIRCUITS_DTYPE"):
        runtime.get_dtype()


def test_seeding_is_reproducible():
    runtime.seed_everything(123)
    a = torch.randn(5)
    runtime.seed_everything(123)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_batch_sizing():
    assert 1 <= runtime.auto_batch_size(10**6, "cpu") <= 4096
    assert runtime.auto_batch_size(10**15, "cpu") == 1
    with pytest.raises(ValueError):
        runtime.auto_batch_size(0)
    assert "device=cpu" in runtime.describe(torch.device("cpu"))
