"""Former name of :mod:`helpers.loading`, kept so that ``helpers.models`` imports keep working."""

from .loading import (
    CHECKSUMS,
    GPT2_IDS,
    ORGANISM_DIR,
    ChecksumError,
    ModelUnavailableError,
    checkpoint_tags,
    hub_reachable,
    load_model,
    load_model_if_available,
    resolve,
    sha256_file,
    verify_checksums,
    write_checksums,
)

__all__ = ["CHECKSUMS", "GPT2_IDS", "ORGANISM_DIR", "ChecksumError", "ModelUnavailableError", "checkpoint_tags",
           "hub_reachable", "load_model", "load_model_if_available", "resolve", "sha256_file", "verify_checksums",
           "write_checksums"]
