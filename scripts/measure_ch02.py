"""Chapter 2's findings on several organism training seeds and prompt sets: the numbers its asserts rest on.

    python scripts/measure_ch02.py --models organism /tmp/S1 --seeds 0 1 2

One thread (as the notebook), so timings are pessimistic on a shared 2-core machine. Prints a markdown
table that scripts/build_ch02.py pastes into the chapter.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

import helpers
from helpers import lens, neurons, tasks
from helpers import patching as P
from helpers.organism import training_texts


def measure(model, seed: int, n_prompts: int = 32, n_texts: int = 600) -> dict:
    """Every asserted number of the chapter for one model and one prompt set (the notebook's steps)."""
    an, a = tasks.single_token_id(model, " an"), tasks.single_token_id(model, " a")
    b = neurons.equal_length_prompts(tasks.make("articles", 16 * n_prompts, split="test", seed=seed)[::2],
                                     model, n_prompts)
    enc = b.encode(model)
    metric = P.logit_diff_metric(torch.full((len(b),), an), torch.full((len(b),), a))
    cm = metric(P.logits_at(model, enc.tokens, -1)[None]).item()
    km = metric(P.logits_at(model, enc.corrupted, -1)[None]).item()
    _, cache = model.run_with_cache(enc.tokens)
    stack, labels = lens.residual_stages(model, cache)
    ll = lens.logit_lens(model, stack[:, :, -1], torch.tensor([an, a]))
    curve = (ll[..., 0] - ll[..., 1]).mean(1)
    steps = curve.diff()
    jump = labels[int(steps.argmax()) + 1]
    mlp_stages = [i for i, lab in enumerate(labels) if lab.endswith(".mlp")]
    decisive = int(labels[max(mlp_stages, key=lambda i: steps[i - 1])].split(".")[0][1:])
    L, D, T = model.cfg.n_layers, model.cfg.d_mlp, enc.tokens.shape[1]
    kinds = ("resid_pre", "attn_out", "mlp_out")
    src = P.cache_activations(model, enc.tokens, [f"blocks.{i}.hook_{k}" for i in range(L) for k in kinds])
    v, shape = P.layer_variants(L, kinds=kinds, n_pos=T)
    rec = P.recovery(P.patch_sweep(model, enc.corrupted, src, v, metric, pos=-1, progress=False), km, cm).view(shape)
    mlp_end = rec[2, :, -1]
    layer = decisive
    src = P.cache_activations(model, enc.tokens, [f"blocks.{i}.mlp.hook_post" for i in range(L)])
    v = [var for i in range(L) for var in P.neuron_variants(i, D, pos=T - 1)[0]]
    nrec = P.recovery(P.patch_sweep(model, enc.corrupted, src, v, metric, pos=-1, progress=False), km, cm).view(L, D)
    in_layer = int(nrec[layer].argmax())
    overall = divmod(int(nrec.argmax()), D)
    best = (layer, in_layer)
    texts = [t for task, t in training_texts(random.Random(seed), n_texts) if task != "repeats"]
    toks, mask = neurons.encode_texts(model, texts)
    rec_s = neurons.record_stream(model, toks, mask, [best], progress=False)
    valid = mask.clone()
    valid[:, :-1] &= mask[:, 1:]
    valid[:, -1] = False
    nxt = torch.zeros_like(toks)
    nxt[:, :-1] = toks[:, 1:]
    act = rec_s.act(best)[valid]
    top_an = (rec_s.top == an)[valid].float()
    corr = torch.corrcoef(torch.stack([act, top_an]))[0, 1].item()
    cong_best = lens.neuron_congruence(model, best[0])[best[1]].detach()
    return {"clean": cm, "corrupt": km, "largest lens step": jump, "MLP 0 rec": mlp_end[0].item(),
            "decisive MLP (lens)": layer, "its rec": mlp_end[layer].item(),
            "best neuron in it": f"L{layer}.N{in_layer}", "neuron rec": nrec[layer, in_layer].item(),
            "share of layer": (nrec[layer, in_layer] / mlp_end[layer]).item(),
            "best neuron overall": f"L{overall[0]}.N{overall[1]}", "its rec ": nrec[overall].item(),
            "an occurs": int((nxt[valid] == an).sum()), "an predicted": int(top_an.sum()),
            "corr(act, top=an)": corr, "an-congruence rank": neurons.congruence_rank(model, an, best),
            "an's rank for the neuron": int((cong_best > cong_best[an]).sum())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["organism"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models:
        model = helpers.load_model(name, device="cpu", verbose=False)
        for seed in args.seeds:
            t0 = time.time()
            r = measure(model, seed)
            r = {"model": name, "prompt seed": seed, **r, "s": time.time() - t0}
            rows.append(r)
            print(r, flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")


if __name__ == "__main__":
    main()
