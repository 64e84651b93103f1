"""Circuits, Executable: the one home of the book's analysis code; notebooks import it."""

from . import notebook

notebook.setup()  # in a Jupyter kernel: figures inline, text progress bars where no widget frontend runs

from . import models  # noqa: F401  the loader's former name (``helpers.models.checkpoint_tags()``)
from .loading import ChecksumError, ModelUnavailableError, load_model, load_model_if_available
from .runtime import describe, get_device, get_dtype, seed_everything

__all__ = ["ChecksumError", "ModelUnavailableError", "describe", "get_device", "get_dtype",
           "load_model", "load_model_if_available", "seed_everything"]
