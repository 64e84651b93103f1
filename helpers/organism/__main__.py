"""Command line: ``python -m helpers.organism --out DIR [--seed N] [--steps K] [--dropout]``.

Retrains the organism from scratch on one CPU thread (the same seed on the same kind of CPU gives the
same weights; see the model card for what holds across machines).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..loading import ORGANISM_DIR
from .train import DROPOUT_TRAIN, TRAIN, train


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, clear the output's old checkpoints, train, print the final evaluation."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ORGANISM_DIR), help="output directory (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None,
                    help=f"phase 1's steps (default {TRAIN['steps']}; {DROPOUT_TRAIN['steps']} with --dropout)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for reproducibility)")
    ap.add_argument("--dropout", action="store_true", help="train with GPT-2's dropout (the organism-dropout twin)")
    ap.add_argument("--no-checkpoints", action="store_true", help="keep only the final weights")
    ap.add_argument("--resume-phase2", default=None, metavar="DIR",
                    help="skip phase 1: phases 1b and 2 start from DIR (a finished phase-1 run of the same recipe)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if (out / "checkpoints").exists() and args.resume_phase2 is None:
        shutil.rmtree(out / "checkpoints")
    kw = {"checkpoint_steps": ()} if args.no_checkpoints else {}
    log = train(out, seed=args.seed, steps=args.steps, threads=args.threads, dropout=args.dropout,
                resume_from=args.resume_phase2, **kw)
    print(json.dumps({"train_seconds": log["train_seconds"], "final_eval": log["eval"][-1]}, indent=1))


if __name__ == "__main__":
    main()
