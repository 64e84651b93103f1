"""Rebuild ``tests/fixtures/gpt2_tokenizer/`` (GPT-2's tokenizer, Hugging Face format) from PyPI alone.

GPT-2's BPE ranks ship in the ``openai-whisper`` source distribution (MIT) as
``whisper/assets/gpt2.tiktoken``: one ``base64(token bytes) rank`` line per token, ranks 0..50255,
which are GPT-2's token ids. The file has no merge list, so the merges are recovered from the ranks:
a token of rank r is what byte-level BPE makes of its own bytes using only the merges of ranks < r,
which leaves exactly two pieces, and ``(left, right)`` is merge number r - 256. With GPT-2's split
pattern (the ByteLevel pre-tokenizer's built-in regex, the ``pat_str`` whisper pairs with this
file) and ``<|endoftext|>`` = 50256 this is GPT-2's tokenizer; ``tests/test_gpt2_tokenizer.py``
checks it on published ids.

    python scripts/build_gpt2_tokenizer.py            # pip-downloads the sdist into a temp dir
    python scripts/build_gpt2_tokenizer.py --sdist openai_whisper-20250625.tar.gz
    python scripts/build_gpt2_tokenizer.py --check    # rebuild and compare with the committed files
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "gpt2_tokenizer"
SDIST = "openai_whisper-20250625.tar.gz"
SDIST_SHA256 = "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96"
MEMBER = "openai_whisper-20250625/whisper/assets/gpt2.tiktoken"
TIKTOKEN_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
EOT = "<|endoftext|>"
N_CTX = 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sdist(dest: Path) -> Path:
    """``pip download`` the pinned whisper sdist (no dependencies, no wheel) into ``dest``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    "--no-build-isolation", "-d", str(dest), "openai-whisper==20250625"],
                   check=True, capture_output=True)
    path = dest / SDIST
    if not path.exists():
        raise FileNotFoundError(f"pip did not produce {SDIST} in {dest}")
    return path


def read_ranks(sdist: Path) -> dict[bytes, int]:
    """The BPE ranks of ``gpt2.tiktoken`` inside the sdist, after checking both sha256 digests."""
    raw = sdist.read_bytes()
    if sha256(raw) != SDIST_SHA256:
        raise ValueError(f"{sdist} has sha256 {sha256(raw)}, expected {SDIST_SHA256}")
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise FileNotFoundError(f"{MEMBER} is not in {sdist}")
        text = member.read()
    if sha256(text) != TIKTOKEN_SHA256:
        raise ValueError(f"{MEMBER} has sha256 {sha256(text)}, expected {TIKTOKEN_SHA256}")
    ranks = {}
    for line in text.decode().splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    if sorted(ranks.values()) != list(range(len(ranks))) or len(ranks) != 50256:
        raise ValueError("expected ranks 0..50255, one per token")
    return ranks


def bpe_pieces(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Byte-level BPE of ``token`` using only merges whose result has rank < ``max_rank``."""
    parts = [bytes([b]) for b in token]
    while True:
        best, at = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best):
                best, at = r, i
        if at is None:
            return parts
        parts[at:at + 2] = [parts[at] + parts[at + 1]]


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (``encoder.py``'s ``bytes_to_unicode``)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    n = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(keep, map(chr, chars)))


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's ``vocab.json`` (without ``<|endoftext|>``) and its merges, in rank order."""
    enc = byte_to_unicode()
    text = lambda b: "".join(enc[x] for x in b)
    vocab = {text(tok): r for tok, r in ranks.items()}
    merges = []
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) == 1:
            if r >= 256:
                raise ValueError("single bytes must have the first 256 ranks")
            continue
        pieces = bpe_pieces(ranks, tok, r)
        if len(pieces) != 2:
            raise ValueError(f"token {tok!r} (rank {r}) does not come from one merge: {pieces}")
        merges.append((text(pieces[0]), text(pieces[1])))
    return vocab, merges


def build(sdist: Path, out: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` (GPT-2's, as Hugging Face saves them)."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    vocab, merges = vocab_and_merges(read_ranks(sdist))
    tok = Tokenizer(BPE(vocab, merges, fuse_unk=False))
    # The ByteLevel pre-tokenizer's regex is GPT-2's split pattern.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
    if tok.token_to_id(EOT) != 50256:
        raise ValueError("<|endoftext|> must be id 50256")
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"), pretty=False)
    config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": N_CTX, "add_prefix_space": False,
              "bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sdist", type=Path, help=f"path to {SDIST} (default: pip download it)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with --out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(Path(tmp))
        target = Path(tmp) / "built" if args.check else args.out
        build(sdist, target)
        if args.check:
            for name in ("tokenizer.json", "tokenizer_config.json"):
                if (target / name).read_bytes() != (args.out / name).read_bytes():
                    sys.exit(f"{args.out / name} differs from the rebuilt file")
            print(f"{args.out} matches the rebuild from {SDIST}")
        else:
            print(f"wrote {target}")


if __name__ == "__main__":
    main()
