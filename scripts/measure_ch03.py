"""Measure chapter 3's findings across models and prompt seeds, to set the notebook's assert thresholds.

    python scripts/measure_ch03.py --models organism /tmp/S1 --seeds 0 1 2

For each model and seed, the same computations as book/03_debugging.ipynb (same helpers, same sizes):
the deletion test (salient vs random), the logit-lens stage at which the counting task's separator and
next number are first predicted, and the purity of k-means clusters of each layer's MLP activations.
Prints one markdown table per finding. Runs on one thread (timings are pessimistic: the machine is shared).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import helpers
from helpers import clustering, lens, saliency, tasks

DELETION_TASKS = ("ioi", "articles", "counting", "colored_objects")
CLUSTER_TASKS = ("counting", "colored_objects", "ioi", "articles", "filler")


def deletion(model, seed: int, n: int, k: int, draws: int, mode: str = "delete") -> dict[str, float]:
    """Deletion (or replacement) test pooled over DELETION_TASKS (n prompts each)."""
    results = []
    for task in DELETION_TASKS:
        enc = tasks.make(task, n, "test", seed).encode(model)
        results.append(saliency.deletion_test(model, enc.tokens, enc.lengths, k=k, draws=draws, seed=seed, mode=mode))
    pooled = saliency.DeletionResult(*[torch.cat([getattr(r, f) for r in results])
                                       for f in ("p_before", "p_salient", "p_random", "flip_salient", "flip_random")])
    return pooled.summary()


def ioi_name_shares(model, seed: int, n: int = 100) -> dict[str, float]:
    """Saliency of the IOI answer: share of the three name tokens, uniform share of 3 tokens, top token a name."""
    enc = tasks.make("ioi", n, "test", seed).encode(model)
    shares = saliency.grad_x_input(model, enc.tokens, enc.end, enc.answers)
    rows = torch.arange(n, device=enc.tokens.device)
    name_pos = torch.stack([enc.positions[k] for k in ("IO", "S1", "S2")], 1)
    context = shares.clone()
    context[:, 0] = -1
    context[rows, enc.end] = -1
    top = context.argmax(-1)
    return {"names": shares.gather(1, name_pos).sum(1).mean().item(),
            "uniform": (3 / (enc.end + 1).float()).mean().item(),
            "top_is_name": (name_pos == top[:, None]).any(1).float().mean().item()}


def counting_lens(model, seed: int, n: int) -> dict[str, object]:
    """Logit-lens accuracy by stage on counting prompts: separator, next number (<10, >=10)."""
    enc = tasks.make("counting", n, "all", seed).encode(model)
    _, cache = model.run_with_cache(enc.tokens)
    stack, labels = lens.residual_stages(model, cache)
    targets = lens.next_token_targets(enc.tokens, enc.lengths, enc.answers)
    comma = lens.token_id(model, ",")
    valid = (targets >= 0) & (torch.arange(enc.tokens.shape[1])[None] >= 1)
    values = lens.number_values(model, targets)
    masks = {"separator": valid & (enc.tokens != comma), "number": valid & (enc.tokens == comma)}
    masks["number < 10"] = masks["number"] & (values < 10)
    masks["number >= 10"] = masks["number"] & (values >= 10)
    out: dict[str, object] = {}
    for name, mask in masks.items():
        acc = lens.lens_accuracy(model, stack, targets, mask)
        out[name] = {"acc": [round(a, 2) for a in acc.tolist()],
                     "first@0.5": (lens.first_stage(acc, labels, 0.5) or (None, None))[1],
                     "first@0.9": (lens.first_stage(acc, labels, 0.9) or (None, None))[1]}
    out["labels"] = labels
    return out


def cluster_purity(model, seed: int, n: int, k: int) -> list[tuple[float, float, float, float]]:
    """Per layer: purity (token kind), shuffled purity, purity (next token's kind), its shuffled level."""
    rows = []
    encs = [tasks.make(t, n, "test", seed).encode(model) for t in CLUSTER_TASKS]
    for layer in range(model.cfg.n_layers):
        acts = clustering.Activations.cat([clustering.token_activations(model, e.tokens, e.lengths,
                                                                         f"blocks.{layer}.mlp.hook_post", e.answers)
                                           for e in encs])
        labels, _, _ = clustering.kmeans(F.normalize(acts.acts, dim=-1), k, seed=seed)
        rows.append((clustering.purity(labels, acts.kinds), clustering.shuffled_purity(labels, acts.kinds),
                     clustering.purity(labels, acts.next_kinds), clustering.shuffled_purity(labels, acts.next_kinds)))
    return rows


def counting_split(model, seed: int, n: int) -> list[float]:
    """Per layer: purity of 2 k-means clusters of the counting prompts' tokens (BOS left out): numbers vs commas."""
    enc = tasks.make("counting", n, "test", seed).encode(model)
    out = []
    for layer in range(model.cfg.n_layers):
        a = clustering.token_activations(model, enc.tokens, enc.lengths, f"blocks.{layer}.mlp.hook_post")
        keep = torch.tensor([k != "first token" for k in a.kinds])
        labels, _, _ = clustering.kmeans(F.normalize(a.acts[keep], dim=-1), 2, seed=seed)
        out.append(clustering.purity(labels, [k for k, kp in zip(a.kinds, keep.tolist()) if kp]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["organism"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--n-deletion", type=int, default=50, help="prompts per task in the deletion test")
    p.add_argument("--n-counting", type=int, default=200)
    p.add_argument("--n-cluster", type=int, default=20, help="prompts per task for the clustering")
    p.add_argument("--k", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    dele, lns, clu, cnt, names = [], [], [], [], []
    for name in args.models:
        model = helpers.load_model(name, device="cpu", verbose=False)
        for seed in args.seeds:
            t0 = time.time()
            for mode in ("delete", "replace"):
                d = deletion(model, seed, args.n_deletion, k=2, draws=5, mode=mode)
                dele.append(f"| {name} | {seed} | {mode} | {d['n']} | {d['drop_salient']:.3f} | {d['drop_random']:.3f} | "
                            f"{d['drop_salient'] - d['drop_random']:.3f} | {d['flip_salient']:.2f} | "
                            f"{d['flip_random']:.2f} | {d['salient_beats_random']:.2f} |")
            nm = ioi_name_shares(model, seed)
            names.append(f"| {name} | {seed} | {nm['names']:.3f} | {nm['uniform']:.3f} | "
                         f"{nm['names'] / nm['uniform']:.2f} | {nm['top_is_name']:.2f} |")
            c = counting_lens(model, seed, args.n_counting)
            lns.append(f"| {name} | {seed} | " + " | ".join(
                f"{c[key]['first@0.5']} / {c[key]['first@0.9']}" for key in
                ("separator", "number", "number < 10", "number >= 10")) + " |")
            for layer, (pk, sk, pn, sn) in enumerate(cluster_purity(model, seed, args.n_cluster, args.k)):
                clu.append(f"| {name} | {seed} | {layer} | {pk:.3f} | {sk:.3f} | {pk - sk:.3f} | {pn:.3f} | {sn:.3f} |")
            cnt.append(f"| {name} | {seed} | " + " ".join(f"{v:.3f}" for v in counting_split(model, seed, args.n_cluster))
                       + " |")
            print(f"{name} seed {seed}: {time.time() - t0:.1f}s; lens accuracy by stage {c['labels']}: "
                  + "; ".join(f"{key} {c[key]['acc']}" for key in ("separator", "number")), flush=True)
    print("\n| model | seed | names' share of the IOI answer | 3 tokens' uniform share | ratio | top token a name |"
          "\n|---|---|---|---|---|---|")
    print("\n".join(names))
    print("\n| model | seed | mode | prompts | p drop, salient | p drop, random | gap | flips, salient | flips, random "
          "| salient beats random |\n|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(dele))
    print("\n| model | seed | separator (first stage >= 0.5 / >= 0.9) | next number | next number < 10 | "
          "next number >= 10 |\n|---|---|---|---|---|---|")
    print("\n".join(lns))
    print("\n| model | seed | layer | purity (token kind) | shuffled | gap | purity (next token's kind) | shuffled |"
          "\n|---|---|---|---|---|---|---|---|")
    print("\n".join(clu))
    print("\n| model | seed | counting, 2 clusters: purity by layer |\n|---|---|---|")
    print("\n".join(cnt))


if __name__ == "__main__":
    main()
