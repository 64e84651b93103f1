"""Where and how the book runs: device, dtype, seeding, batch sizes from free memory, a one-line description.

The same code runs on CUDA, Apple MPS or the CPU.

Set ``CIRCUITS_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) to override the automatic
choice, and ``CIRCUITS_DTYPE`` (``float32``, ``float16``, ``bfloat16``) to override the dtype.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Pick the device: explicit argument > ``$CIRCUITS_DEVICE`` > cuda > mps > cpu.

    An argument and the environment variable are checked alike: a device this machine lacks is a clear
    error naming it, whichever way it was asked for.
    """
    choice = str(prefer) if prefer is not None else os.environ.get("CIRCUITS_DEVICE")
    if choice:
        try:
            dev = torch.device(choice)
        except RuntimeError as err:
            raise ValueError(f"device {choice!r} is not a device name (cpu, cuda, cuda:1, mps): {err}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was requested but CUDA is not available here")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {choice!r} was requested but MPS is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_dtype(device: torch.device | str | None = None, prefer: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype: explicit ``prefer`` (a torch dtype or its name) > ``$CIRCUITS_DTYPE`` > float32.

    Findings are asserted in float32; float16 and bfloat16 give the same top-1 on the chapters' tasks
    (``tests/test_bad_inputs.py``). A name is checked the same way from either source.
    """
    if isinstance(prefer, torch.dtype):
        if prefer not in _DTYPES.values():
            raise ValueError(f"dtype {prefer}: expected one of {sorted(_DTYPES)}")
        return prefer
    name, where = (prefer, "dtype") if prefer is not None else (os.environ.get("CIRCUITS_DTYPE", "float32"),
                                                               "CIRCUITS_DTYPE")
    key = str(name).removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"{where}={name!r}: expected one of {sorted(_DTYPES)}")
    return _DTYPES[key]


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed python, numpy and torch; on CPU make kernels deterministic. Returns a torch Generator."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.cuda.is_available():
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def free_memory_bytes(device: torch.device | str | None = None) -> int:
    """Free memory on the device (CUDA: driver figure; CPU/MPS: available system RAM)."""
    dev = torch.device(device) if device is not None else get_device()
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024**3


def auto_batch_size(bytes_per_item: int, device: torch.device | str | None = None,
                    fraction: float = 0.3, cap: int = 4096) -> int:
    """How many items of ``bytes_per_item`` fit in ``fraction`` of free memory (at least 1)."""
    if bytes_per_item <= 0:
        raise ValueError("bytes_per_item must be positive")
    return int(max(1, min(cap, fraction * free_memory_bytes(device) // bytes_per_item)))


def describe(device: torch.device | None = None, dtype: torch.dtype | None = None) -> str:
    """A one-line description of where the notebook runs, printed at the top of every chapter."""
    device = device or get_device()
    dtype = dtype or get_dtype(device)
    extra = ""
    if device.type == "cuda":
        extra = f" ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        extra = f" ({torch.get_num_threads()} threads)"
    return f"device={device}{extra} dtype={str(dtype).replace('torch.', '')} torch={torch.__version__}"
