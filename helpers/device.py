"""Former name of :mod:`helpers.runtime`, kept so that ``helpers.device`` imports keep working."""

from .runtime import auto_batch_size, describe, free_memory_bytes, get_device, get_dtype, seed_everything

__all__ = ["auto_batch_size", "describe", "free_memory_bytes", "get_device", "get_dtype", "seed_everything"]
