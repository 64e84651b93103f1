"""Seed sweep of chapter 1's toy runs: where the notebook's assert thresholds come from.

Trains the main ("periodic") and control ("shifted") toy models for several seeds with the
notebook's settings and prints every quantity the notebook asserts. Run:
    python scripts/bench_toy_seeds.py --seeds 0 1 2 [--steps 1500] [--weight-decay 0.1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

import helpers
from helpers.heads import (
    cutoff_position,
    induction_scores,
    loss_by_position,
    positional_pattern,
    previous_token_scores,
    previous_token_scores_by_position,
    repeated_random_tokens,
)
from helpers.toy import ToyConfig, phase_change_step, train_toy
from helpers.transformer import export_gpt2


def measure(cfg: ToyConfig, cut: int, late: int, save: str | None = None) -> dict:
    """Train one run and return the notebook's measured quantities."""
    t0 = time.time()
    run = train_toy(cfg, progress=False)
    secs = time.time() - t0
    with tempfile.TemporaryDirectory() as d:
        out = f"{save}/{cfg.distribution}_wd{cfg.weight_decay}_seed{cfg.seed}" if save else d
        model = helpers.load_model(str(export_gpt2(run.model, out)), device="cpu", verbose=False)
        prev = previous_token_scores(model)
        ind = induction_scores(model, half=cfg.max_period)
        by_pos = previous_token_scores_by_position(model)[0, 0]       # query positions 1..n_ctx-1
        t = torch.arange(1, cfg.n_ctx)
        pos_prev = positional_pattern(model, 0, 0)[t, t - 1]
        w_pos = model.W_pos.detach()
        cos_adj = torch.nn.functional.cosine_similarity(w_pos[:-1], w_pos[1:], dim=-1)  # (n_ctx-1,)
        norms = w_pos.norm(dim=-1)
        half = cfg.max_period                                           # a period seen in training
        icl = loss_by_position(model, repeated_random_tokens(model, 256, half, seed=1))  # (2 * half - 1,)
    losses = torch.tensor(run.losses)
    return {"dist": cfg.distribution, "seed": cfg.seed, "wd": cfg.weight_decay, "train_s": round(secs, 1),
            "loss_first50": round(losses[:50].mean().item(), 3), "loss_last100": round(losses[-100:].mean().item(), 3),
            "phase_step": phase_change_step(run.losses),
            "prev_L0": round(prev[0].max().item(), 3), "ind_L1": round(ind[1].max().item(), 3),
            "prev_early": round(by_pos[: cut - 1].mean().item(), 3),      # query positions 1..cut-1
            "prev_late": round(by_pos[cut - 1: late - 1].mean().item(), 3),  # query positions cut..late-1
            "pos_prev_early": round(pos_prev[: cut - 1].mean().item(), 3),
            "pos_prev_late": round(pos_prev[cut - 1: late - 1].mean().item(), 3),
            "cos_adj_early": round(cos_adj[: cut - 1].mean().item(), 3),
            "cos_adj_late": round(cos_adj[cut: late - 1].mean().item(), 3),
            "norm_late/early": round((norms[cut:late].mean() / norms[:cut].mean()).item(), 3),
            "icl_loss_1st": round(icl[: half - 1].mean().item(), 3),
            "icl_loss_2nd": round(icl[half:].mean().item(), 3),
            "cutoff": cutoff_position(by_pos), "prev_by_pos": [round(v, 2) for v in by_pos.tolist()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--save", default=None, help="keep the exported models under this directory")
    ap.add_argument("--dists", nargs="+", default=["periodic", "shifted"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    base = ToyConfig(steps=args.steps, weight_decay=args.weight_decay)
    cut, late = base.max_period, base.n_ctx - 8
    for seed in args.seeds:
        for dist in args.dists:
            cfg = ToyConfig(**{**base.__dict__, "seed": seed, "distribution": dist})
            print(json.dumps(measure(cfg, cut, late, args.save)), flush=True)


if __name__ == "__main__":
    main()
