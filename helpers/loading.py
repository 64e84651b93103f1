"""One loader for every model in the book: the shipped organism and its checkpoints, GPT-2, any HF id or dir.

Everything goes through ``TransformerBridge.boot_transformers`` and ``enable_compatibility_mode``
(TransformerLens 4), so the organism and GPT-2 expose the same hooks and weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import torch

from .runtime import get_device, get_dtype

ASSETS = Path(__file__).resolve().parent / "assets"
ORGANISM_DIR = ASSETS / "organism"
#: The twin trained with GPT-2's dropout (same recipe otherwise); final weights only.
ORGANISM_DROPOUT_DIR = ASSETS / "organism-dropout"
CHECKSUMS = "SHA256SUMS"

#: Short names of the GPT-2 family as the source documents use them, mapped to hub ids.
GPT2_IDS = {
    "gpt2": "openai-community/gpt2",
    "gpt2-small": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
}


class ModelUnavailableError(RuntimeError):
    """A model cannot be loaded here (no network, no local copy); the message says what to do."""


class ChecksumError(RuntimeError):
    """A shipped checkpoint does not match its recorded sha256: it is corrupted or was edited."""


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksums(model_dir: str | Path) -> Path:
    """Record the sha256 of every file of a model directory (run after saving a checkpoint)."""
    model_dir = Path(model_dir)
    lines = [f"{sha256_file(p)}  {p.name}" for p in sorted(model_dir.iterdir())
             if p.is_file() and p.name != CHECKSUMS]
    out = model_dir / CHECKSUMS
    out.write_text("\n".join(lines) + "\n")
    return out


#: Files a checkpoint's ``SHA256SUMS`` must list: a partial list would let a corrupted weight file load.
REQUIRED = ("config.json", ("model.safetensors", "pytorch_model.bin"))


def verify_checksums(model_dir: str | Path) -> None:
    """Raise :class:`ChecksumError` if ``SHA256SUMS`` is missing, malformed, does not list the weights and
    config, or a file it lists is missing or altered."""
    model_dir = Path(model_dir)
    listing = model_dir / CHECKSUMS
    if not listing.exists():
        raise ChecksumError(f"{listing} is missing: cannot check the checkpoint's integrity")
    entries: dict[str, str] = {}
    for n, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdef" for c in parts[0].lower()):
            raise ChecksumError(f"{listing}, line {n}: {line!r} is not '<sha256 hex>  <file name>'")
        entries[parts[1].strip().lstrip("*")] = parts[0].lower()
    for need in REQUIRED:
        options = (need,) if isinstance(need, str) else need
        if not any(o in entries for o in options):
            raise ChecksumError(f"{listing} does not list {' or '.join(options)}: the checkpoint's integrity "
                                "cannot be checked (regenerate it with helpers.loading.write_checksums)")
    for name, digest in entries.items():
        path = model_dir / name
        if not path.exists():
            raise ChecksumError(f"{path} is listed in {CHECKSUMS} but missing")
        if sha256_file(path) != digest:
            raise ChecksumError(
                f"{path} does not match its sha256 in {CHECKSUMS}: the checkpoint is corrupted. "
                "Restore it with `git checkout -- helpers/assets` or retrain it "
                "(`python -m helpers.organism --out helpers/assets/organism`)."
            )


def checkpoint_tags(include_final: bool = True) -> list[str]:
    """Model names of the organism's intermediate checkpoints in training order, then ``"organism"``.

    E.g. ``["organism@step500", …, "organism@step2400", "organism"]``, for loops over training.
    """
    root = ORGANISM_DIR / "checkpoints"
    steps = sorted(int(p.name[4:]) for p in root.glob("step*") if p.is_dir() and p.name[4:].isdigit()) \
        if root.is_dir() else []
    return [f"organism@step{k}" for k in steps] + (["organism"] if include_final else [])


def partial_checkpoint() -> str:
    """The organism's checkpoint where Colored Objects is partly solved, e.g. ``"organism@step2669"``.

    Training keeps it automatically (``helpers.organism.train.PARTIAL``) and names it in the training log's
    ``partial_checkpoint``; a retrain may place it at another step, so chapters read it from there.
    """
    log_path = ORGANISM_DIR / "train_log.json"
    tag = json.loads(log_path.read_text()).get("partial_checkpoint") if log_path.exists() else None
    if not tag or not (ORGANISM_DIR / "checkpoints" / tag).is_dir():
        raise FileNotFoundError(f"the organism in {ORGANISM_DIR} has no partly-solved checkpoint "
                                "(its train_log.json names none, or that checkpoint is missing)")
    return f"organism@{tag}"


def resolve(name: str) -> tuple[str, str]:
    """Map a model name to ``("local", dir)`` or ``("hub", repo_id)``.

    ``"organism"`` is the shipped checkpoint; ``"organism@<tag>"`` one of its intermediate
    checkpoints under ``assets/organism/checkpoints/<tag>``; ``"organism-dropout"`` its twin trained
    with dropout; an existing directory is used as is;
    ``gpt2-small`` … ``gpt2-xl`` map to their hub ids; anything else is taken as a hub id.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name == "organism-dropout":
        return "local", str(ORGANISM_DROPOUT_DIR)
    if name == "organism" or name.startswith("organism@"):
        path = ORGANISM_DIR
        if "@" in name:
            tag = name.split("@", 1)[1]
            path = ORGANISM_DIR / "checkpoints" / tag
            if not path.is_dir():
                avail = sorted(p.name for p in (ORGANISM_DIR / "checkpoints").glob("*") if p.is_dir()) \
                    if (ORGANISM_DIR / "checkpoints").is_dir() else []
                raise ModelUnavailableError(f"no organism checkpoint {tag!r}; available: {avail}")
        return "local", str(path)
    if os.path.isdir(os.path.expanduser(name)):
        return "local", os.path.expanduser(name)
    if name.startswith((".", "/", "~")):
        raise ModelUnavailableError(f"{name!r} looks like a path but is not a directory")
    return "hub", GPT2_IDS.get(name.lower(), name)


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    hit = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(hit, str) and os.path.exists(hit)


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub (honours ``$HF_ENDPOINT``); never retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def load_model(name: str = "organism", device: str | torch.device | None = None,
               dtype: torch.dtype | str | None = None, compatibility: bool = True,
               verbose: bool = True):
    """Boot ``name`` as a TransformerLens 4 ``TransformerBridge`` (compatibility mode on).

    ``name`` is ``"organism"`` (the book's shipped model, offline), ``"organism@<tag>"``, a
    local HF-format directory, ``"gpt2-small"`` … ``"gpt2-xl"``, or any HF hub id. Offline, a hub
    name not in the local cache raises :class:`ModelUnavailableError` at once.
    """
    from transformer_lens.model_bridge import TransformerBridge

    kind, where = resolve(name)
    device = get_device(device)  # a string or a torch.device, checked as $CIRCUITS_DEVICE is
    dtype = get_dtype(device, dtype)  # a torch dtype or its name, checked as $CIRCUITS_DTYPE is
    if kind == "local":
        if not (Path(where) / "config.json").exists():
            raise ModelUnavailableError(f"{where} has no config.json: not a Hugging Face model dir")
        if (Path(where) / CHECKSUMS).exists() or Path(where).is_relative_to(ASSETS):
            verify_checksums(where)
    else:
        if not _in_hf_cache(where) and not hub_reachable():
            raise ModelUnavailableError(
                f"{name!r} ({where}) is not in the local Hugging Face cache and the hub cannot be "
                "reached from here. Use MODEL = 'organism' (ships with the book and runs offline), "
                "a local directory holding the model, or run on a machine with network access "
                "(e.g. Colab)."
            )
        if not hub_reachable():
            os.environ["HF_HUB_OFFLINE"] = "1"  # cached copy: do not let transformers retry the network
    t0 = time.time()
    import logging

    from transformers.utils import logging as hf_logging
    prev = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    logging.getLogger("transformer_lens").setLevel(logging.ERROR)
    try:
        model = TransformerBridge.boot_transformers(where, device=device, dtype=dtype)
        if compatibility:
            model.enable_compatibility_mode(disable_warnings=True)
    finally:
        hf_logging.set_verbosity(prev)
    model.eval()
    model.model_name_or_path = where  # type: ignore[attr-defined]
    if verbose:
        c = model.cfg
        print(f"Loaded {name!r} from {where}: {c.n_layers} layers, {c.n_heads} heads, "
              f"d_model={c.d_model}, d_vocab={c.d_vocab}, n_ctx={c.n_ctx} "
              f"on {device} in {time.time() - t0:.1f}s")
    return model


def load_model_if_available(name: str, **kwargs):
    """``load_model(name)``, or ``None`` with a "skipped (offline)" line when it cannot be had here.

    For the chapters' online-only sections (GPT-2 comparisons): offline they print why and move on.
    """
    try:
        return load_model(name, **kwargs)
    except ModelUnavailableError as err:
        print(f"skipped (offline): {err}")
        return None
