# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. An "an" neuron: logit lens, patching, congruence
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/02_an_neuron.ipynb)
#
# **Source.** Seed document 001: Clement Neo and Joseph Miller, *We found an neuron in GPT-2* (2023; read here
# in a Russian translation on Habr). How does GPT-2 know to write " an" rather than " a" when the choice
# depends on a noun it has not written yet? In GPT-2 large they found that MLP layer 31 makes the
# decision, that one of its neurons (L31.N892) alone recovers about half of the logit difference when
# patched (the whole layer: 49%), that its activation tracks predicting " an" over a large corpus, and that
# its output weights point along the unembedding of " an" (*congruence*). Searching the congruence of
# every neuron with every token then finds other token-specific neurons. This chapter takes each step in
# turn on the book's model organism, measures the claim, and says what carries over.

# %%
# On Colab: fetch the book and install what Colab lacks (Colab's own torch is kept). Elsewhere: nothing.
import os
import sys

if "google.colab" in sys.modules and not os.path.isdir("circuits-executable"):
    # !git clone -q --depth 1 https://github.com/circuits-executable/circuits-executable
    # %pip install -q -r circuits-executable/requirements.txt
    # %pip install -q --no-deps -e circuits-executable
    sys.path.insert(0, os.path.abspath("circuits-executable"))

# %% tags=["parameters"]
MODEL = "organism"     # the seed's model is "gpt2-large" (online only; set it here, everything below follows)
SEED = 0               # seeds the prompt set and the corpus
N_PROMPTS = 32         # clean/corrupted " an" prompt pairs for patching (one token length)
N_TEXTS = 600          # texts drawn for the corpus of section 5 (the seed used pile-10k: ~10M tokens)
N_BINS = 20            # activation bins of section 5
CHUNK = 16             # patched variants per forward pass (x N_PROMPTS prompts): see section 4
NEURON_BUDGET = 4096   # section 4 patches every neuron of every MLP if the model has at most this many
                       # (the organism: 1,024), else the decisive MLP's only (GPT-2 large: 36 x 5,120)
GPT2_MODEL = "gpt2-large"  # section 8, online only: the seed's own numbers on GPT-2 large (skipped offline)
RECORD = ""            # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import random
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import helpers
from helpers import lens, measured, neurons, plots, tasks
from helpers import patching as P
from helpers.organism import training_texts

helpers.seed_everything(SEED)
torch.set_num_threads(1)  # small model: one thread is fastest and immune to busy neighbours
model = helpers.load_model(MODEL)
cfg = model.cfg
IS_ORGANISM = MODEL.startswith("organism")  # the findings' thresholds were measured on the organism
print(f"model: {MODEL}: {cfg.n_layers} layers x {cfg.n_heads} heads, d_model {cfg.d_model}, "
      f"d_mlp {cfg.d_mlp}, vocabulary {cfg.d_vocab}")
print(helpers.describe(torch.device(cfg.device)))
M = measured.load("ch02")  # the asserts' thresholds and the measured table (section 7.3)

# %% [markdown]
# ## 1. Choosing a prompt
#
# The seed found it surprisingly hard to make GPT-2 predict " an" at all; it settled on
# *"I climbed up the pear tree and picked a pear. I climbed up the apple tree and picked"*, where GPT-2 large
# gives " an" 64%. The first sentence shows that an article comes next; without it the model prefers
# "[picked] up". Here is the organism on the same prompt, on the prompt without its first sentence, and
# on the corrupted prompt (apple → lemon) used for patching below.

# %%
AN, A = tasks.single_token_id(model, " an"), tasks.single_token_id(model, " a")
SEED_PROMPT = "I climbed up the pear tree and picked a pear. I climbed up the apple tree and picked"
variants = {"seed prompt": SEED_PROMPT,
            "without the first sentence": "I climbed up the apple tree and picked",
            "corrupted (apple -> lemon)": SEED_PROMPT.replace("apple", "lemon")}
prompt_rows = []
with torch.no_grad():
    for name, text in variants.items():
        probs = model(text)[0, -1].softmax(-1)
        top = probs.topk(3)
        prompt_rows.append({"prompt": name, "p(' an')": probs[AN].item(), "p(' a')": probs[A].item(),
                     "top 3": ", ".join(f"{model.to_single_str_token(int(i))!r} {p:.2f}"
                                        for p, i in zip(top.values, top.indices))})
pd.DataFrame(prompt_rows).round(3)

# %% [markdown]
# The organism gives " an" 1.00 on the seed prompt and also without its first sentence: unlike GPT-2 large, it
# needs no example sentence (and the corrupted prompt gives " a" 1.00).
#
# One prompt is an anecdote. The `articles` task generator writes many such prompts (held-out templates:
# different cues and verbs, several nouns), each with a corrupted twin whose noun takes the other article.
# We keep the " an" prompts of one token length (patching position by position needs that).

# %%
pool = tasks.make("articles", 16 * N_PROMPTS, split="test", seed=SEED)[::2]  # even items: the " an" prompts
batch = neurons.equal_length_prompts(pool, model, N_PROMPTS)
enc = batch.encode(model)
tokens, corrupted = enc.tokens, enc.corrupted
metric = P.logit_diff_metric(torch.full((len(batch),), AN), torch.full((len(batch),), A))
clean_diff = metric(P.logits_at(model, tokens, -1)[None]).item()
corrupt_diff = metric(P.logits_at(model, corrupted, -1)[None]).item()
str_tokens = model.to_str_tokens(tokens[0])
print(f"{len(batch)} prompt pairs of {tokens.shape[1]} tokens, e.g.\n  clean:     {batch.texts[0]!r}\n"
      f"  corrupted: {batch.corrupted[0]!r}")
print(f"logit(' an') - logit(' a'): clean {clean_diff:.2f}, corrupted {corrupt_diff:.2f}")
if IS_ORGANISM:
    assert clean_diff > 0 > corrupt_diff, "the clean prompts ask for ' an', the corrupted ones for ' a'"

# %% [markdown]
# **How often is " an" under-predicted?** The seed ran GPT-2 large over pile-10k: " an" is the next token about
# 12,000 times, the top prediction only about 1,500 times. Our corpus is fresh text from the organism's own
# training mixture (every task except token-level repeats: IOI, colored objects, counting, articles,
# filler sentences). In filler sentences ("There was an egg on the table") nothing announces the noun, so
# the article is a guess there too.

# %%
texts = [t for task, t in training_texts(random.Random(SEED), N_TEXTS) if task != "repeats"]
stream, mask = neurons.encode_texts(model, texts)
nxt = torch.zeros_like(stream)
nxt[:, :-1] = stream[:, 1:]
valid = mask.clone()                      # positions whose next token is real text
valid[:, :-1] &= mask[:, 1:]
valid[:, -1] = False
with torch.no_grad():
    top_pred = torch.cat([model(stream[i:i + 64]).argmax(-1) for i in range(0, len(stream), 64)])
occurs = int((nxt[valid] == AN).sum())
predicted = int((top_pred[valid] == AN).sum())
right = int(((top_pred == AN) & (nxt == AN))[valid].sum())
print(f"{len(texts)} texts, {int(valid.sum())} predicted positions: ' an' occurs {occurs} times, "
      f"is the top prediction {predicted} times ({right} of them right)")
print(f"predicted / occurs = {predicted / occurs:.2f} (the seed, GPT-2 large on pile-10k: 1500 / 12000 = 0.13)")
# The bound is the highest ratio measured over three corpora plus a margin (section 7.3); below 1 it says
# "under-predicted", by how much the table says.
if IS_ORGANISM:
    assert predicted / occurs < M["AN_RATIO_MAX"], "' an' is under-predicted"

# %% [markdown]
# Over the three corpora of section 7.3, " an" is the top prediction 0.49-0.59 times per occurrence, and it is
# right every time it is the top prediction: under-predicted, but less than in GPT-2 large (0.13).

# %% [markdown]
# ## 2. Logit lens: where does " an" win?
#
# The seed read logit(" an") − logit(" a") off the residual stream between layers (through the final
# LayerNorm and the unembedding) and saw a jump after MLP 31. `lens.residual_stages` gives the residual
# after the embedding and after every attention and MLP sub-layer; `lens.logit_lens` reads both logits.

# %%
_, cache = model.run_with_cache(tokens)
stack, labels = lens.residual_stages(model, cache)
read = lens.logit_lens(model, stack[:, :, -1], torch.tensor([AN, A]))   # [stage, prompt, 2]
curve = (read[..., 0] - read[..., 1]).mean(1).detach()
steps = curve.diff()                      # steps[i]: the change made by the sub-layer labels[i + 1]
jump_stage = labels[int(steps.argmax()) + 1]
mlp_stages = [i for i, lab in enumerate(labels) if lab.endswith(".mlp")]
mlp_steps = {int(labels[i].split(".")[0][1:]): steps[i - 1].item() for i in mlp_stages}   # MLP layer -> its step
DECISIVE = max(mlp_steps, key=mlp_steps.get)   # the seed's rule: the MLP with the largest lens step
ax = plots.lines(curve, title="logit lens at the last position (mean over prompts)", xlabel="after",
                 ylabel="logit(' an') - logit(' a')")
ax.set_xticks(range(len(labels)), labels, rotation=45)
plt.show()
print("lens after each stage: " + ", ".join(f"{lab} {v:.2f}" for lab, v in zip(labels, curve.tolist())))
print("step of each MLP: " + ", ".join(f"MLP {i} {v:+.2f}" for i, v in mlp_steps.items()))
print(f"largest step: after {jump_stage} ({steps.max():+.2f}); largest MLP step: after L{DECISIVE}.mlp "
      f"({mlp_steps[DECISIVE]:+.2f} of {curve[-1]:.2f})")
del cache
assert abs(curve[-1].item() - clean_diff) < 1e-3, "the lens after the last layer is the model's own output"

# %% [markdown]
# In the organism " an" does not win in one jump. Read off the embedding alone, the residual favours " a"
# (-2.5 to -2.4 over the prompt sets of section 7.3); layer 0's attention takes it to -0.6 to -0.3, and then
# every MLP adds: MLP 0 the most (+3.8 to +3.9, the largest step of all), MLP 1 +2.5 to +3.0, MLP 2 +1.0 to
# +1.3, MLP 3 +1.5 to +1.9, while layer 3's attention takes some back (-1.2 to -1.5). The final difference
# is 8.0-9.2. The largest step is the *first* MLP's, not a late one's as in GPT-2 large.

# %% [markdown]
# ## 3. Layer activation patching
#
# Run the corrupted prompts (" a") and write in one clean activation (" an") at a time: a
# layer's attention output, its MLP output, or the residual stream entering it, at one position. The
# *recovery* is the fraction of the clean logit difference that comes back (0: none, 1: all). All
# `3 x layers x positions` variants run through the batched engine (`patching.patch_sweep`), many per
# forward pass.

# %%
L, T, D = cfg.n_layers, tokens.shape[1], cfg.d_mlp
kinds = ("resid_pre", "attn_out", "mlp_out")
source = P.cache_activations(model, tokens, [f"blocks.{i}.hook_{k}" for i in range(L) for k in kinds])
variants, shape = P.layer_variants(L, kinds=kinds, n_pos=T)
rec = P.recovery(P.patch_sweep(model, corrupted, source, variants, metric, pos=-1, chunk_size=CHUNK),
                 corrupt_diff, clean_diff).view(shape)
axes = plots.grid(3, ncols=1, size=5)
for k, (kind, ax) in enumerate(zip(kinds, axes)):
    plots.heatmap(rec[k], title=f"recovery, patching {kind}", cmap="RdBu_r", vmin=-1, vmax=1,
                  xticks=[t.strip() or "·" for t in str_tokens], yticks=[f"L{i}" for i in range(L)], ax=ax)
    ax.tick_params(axis="x", rotation=60, labelsize=7)
plt.tight_layout()
plt.show()
at_end = pd.DataFrame({"attention": rec[1, :, -1], "MLP": rec[2, :, -1]}, index=[f"L{i}" for i in range(L)])
at_end.round(3).T

# %% [markdown]
# In GPT-2 large, the noun reaches the last position through attention around layer 26, and two MLPs stand
# out, 0 and 31; the seed sets MLP 0 aside (Neel Nanda's note: in GPT-2, MLP 0 acts like an extension of
# the embedding and matters for almost everything) and follows MLP 31, where the logit lens jumps. In the
# 4-layer organism (heatmaps and table above, prompt seed 0) the noun's information reaches the last position
# in one step, through layer 0's attention: patching it there recovers 1.00 (1.00-1.01 over the three prompt
# sets of section 7.3), each later attention layer -0.05 to 0.01. Then *every* MLP at the last position
# restores a share: MLP 0 0.61-0.66, MLP 1 0.36-0.40, MLP 2 0.42-0.46, MLP 3 0.22-0.24. These are not parts
# of one total (they sum to more than 1): patching MLP 0 also changes what the later MLPs read. No MLP matters
# at any other position (printout below: at most 0.004), so the organism's MLP 0 is not an extension of the
# noun's embedding: it works on what layer 0's attention brought to the last position.
#
# We keep the seed's rule: the **decisive layer** is the MLP where the logit lens makes its largest step. On
# every prompt set that is MLP 0, the first MLP, the one the seed set aside in GPT-2 large. (Choosing another
# rule now, after seeing where this one lands, would choose the answer.) We follow it, and check that
# patching it at the last position recovers a good share of the logit difference.

# %%
mlp_end = rec[2, :, -1]
layer_rec = mlp_end[DECISIVE].item()
print(f"decisive layer (logit lens): MLP {DECISIVE}; patching it at the last position recovers {layer_rec:.2f}")
print("MLP recoveries at the last position: " + ", ".join(f"L{i} {v:.2f}" for i, v in enumerate(mlp_end.tolist())))
mlp_elsewhere = rec[2, :, :-1].abs().max().item()
print(f"MLP recoveries at every other position: at most {mlp_elsewhere:.3f} in absolute value")
if IS_ORGANISM:
    assert layer_rec > M["LAYER_REC_MIN"], "patching the decisive MLP at the last position recovers a share"

# %% [markdown]
# ## 4. Patching single neurons
#
# Neurons of one MLP do not feed each other: each writes its activation times its row of `W_out` into the
# residual stream. So a neuron can be patched like a head: write its clean activation (at the last
# position) into the corrupted run. The seed patched every neuron of MLP 31, one of GPT-2 large's 36 layers
# of 5,120 neurons. The organism has 4 x 256 = 1,024 neurons, so one sweep patches every neuron of every MLP
# (a model with more than `NEURON_BUDGET` neurons gets the decisive MLP's only): `patching.neuron_variants`
# makes one variant per neuron and the engine runs them in batches; a plain loop (one forward per neuron)
# on a sample checks the numbers and the speed.
#
# On a CPU, with 32 prompts of about 20 tokens per variant, a moderate chunk (`CHUNK` variants per pass) is
# best; the printout below has this run's times for the batched sweep and the loop. Each variant is already
# a batch of 32 prompts, so stacking many more only adds memory traffic. The speedups of
# `tests/test_bench_patching.py` are largest with few, short prompts, where a forward's fixed cost
# dominates; on a GPU batching pays in both regimes.

# %%
swept = list(range(L)) if L * D <= NEURON_BUDGET else [DECISIVE]   # the MLPs whose every neuron is patched
hooks = {i: f"blocks.{i}.mlp.hook_post" for i in swept}
source = P.cache_activations(model, tokens, list(hooks.values()))
variants = [v for i in swept for v in P.neuron_variants(i, D, pos=T - 1)[0]]   # neuron f: layer swept[f // D]
t0 = time.perf_counter()
srec = P.recovery(P.patch_sweep(model, corrupted, source, variants, metric, pos=-1, chunk_size=CHUNK),
                  corrupt_diff, clean_diff).view(len(swept), D)   # [swept MLP, neuron]
t_batched = time.perf_counter() - t0
flat_rec = srec.flatten()
sample = sorted(set(flat_rec.topk(8).indices.tolist()) | set(range(0, len(variants), max(1, len(variants) // 8))))
t0 = time.perf_counter()
loop = P.recovery(P.patch_one_by_one(model, corrupted, source, [variants[i] for i in sample], metric, pos=-1),
                  corrupt_diff, clean_diff)
t_loop = (time.perf_counter() - t0) / len(sample) * len(variants)
max_diff = (loop - flat_rec[sample]).abs().max().item()
print(f"batched: {len(variants)} neurons ({len(swept)} MLPs) in {t_batched:.1f}s; loop: {t_loop:.1f}s "
      f"(extrapolated from {len(sample)}); ratio {t_loop / t_batched:.1f}x; max |difference| {max_diff:.1e}")
# float32 agreement in the logits, in units of recovery (which divides by the clean - corrupted gap: on a model
# where that gap is small, e.g. random weights, the same rounding is a larger recovery)
tol = 1e-5 * max(1.0, max(abs(clean_diff), abs(corrupt_diff)) / abs(clean_diff - corrupt_diff))
assert max_diff <= tol, "the batched sweep agrees with the loop"

# %% [markdown]
# ### 4.1 The decisive MLP, neuron by neuron
#
# First the seed's step: the neurons of the decisive MLP, against the whole layer's recovery.

# %%
hook = hooks[DECISIVE]
nrec = srec[swept.index(DECISIVE)]
layer_best = (DECISIVE, int(nrec.argmax()))
layer_best_rec = nrec.max().item()
share = layer_best_rec / layer_rec
layer_lead = layer_best_rec / nrec.topk(2).values[1].item()
ax = plots.lines(nrec, title=f"recovery, patching one neuron of MLP {DECISIVE} at the last position",
                 xlabel="neuron", ylabel="recovery")
ax.axhline(layer_rec, color="grey", linestyle="--", linewidth=1)
ax.annotate("whole layer", (0, layer_rec), fontsize=8, color="grey", va="bottom")
plt.show()
top = nrec.topk(5)
print("best neurons: " + ", ".join(f"L{DECISIVE}.N{int(i)} {v:.3f}" for v, i in zip(top.values, top.indices)))
print(f"L{layer_best[0]}.N{layer_best[1]} alone recovers {layer_best_rec:.2f}; the whole layer {layer_rec:.2f} "
      f"({share:.0%} of it; the seed: L31.N892 0.50, the whole layer 0.49); it leads the next best "
      f"{layer_lead:.2f} times")

# %% [markdown]
# How many neurons does the layer's recovery take? We patch the top k neurons (ranked by their single
# recovery) together, for k = 1, 2, 4, ... up to the whole layer, which is section 3's patch of the MLP's
# output at the last position (a check of the engine).

# %%
ks = sorted({min(2 ** j, D) for j in range(D.bit_length() + 1)})
by_rec = nrec.argsort(descending=True)
joint_variants = [[P.Site(hook, (T - 1, int(n))) for n in by_rec[:k]] for k in ks]
joint = P.recovery(P.patch_sweep(model, corrupted, source, joint_variants, metric, pos=-1, chunk_size=CHUNK,
                                 progress=False), corrupt_diff, clean_diff)
k_half = next((k for k, v in zip(ks, joint.tolist()) if v >= layer_rec / 2), None)
display(pd.DataFrame({"top k neurons patched together": ks, "recovery": joint.tolist(),
                      "share of the layer": (joint / layer_rec).tolist()}).round(3).set_index(
                          "top k neurons patched together").T)
print(f"the top {k_half} neurons together are the first to recover half of the layer's {layer_rec:.2f}"
      if k_half else f"no top-k set recovers half of the layer's {layer_rec:.2f}")
# all D neurons at the last position are the MLP's whole output there: the same patch as section 3's
assert abs(joint[-1].item() - layer_rec) <= 10 * tol, "patching every neuron is patching the layer"
if IS_ORGANISM:
    assert share < M["SHARE_MAX"], "no single neuron carries the decisive MLP's recovery"

# %% [markdown]
# **In the decisive MLP no neuron stands out.** L31.N892 alone recovers about as much as its whole layer (0.50
# vs 0.49). MLP 0's best neuron recovers 0.03 (0.027-0.032 over the three prompt sets of section 7.3, and not
# the same neuron on every set) while the layer recovers 0.61-0.66: 4-5% of it, and the next best neuron is
# nearly as good (the best leads it 1.04-1.16 times). Patched together, the top 16 neurons are the first to
# pass half of the layer's recovery (55-59%); the top 64 recover 74-84%. The assert: the best neuron carries
# less than `SHARE_MAX` of the layer's recovery. This chapter used to assert also that the best neuron of the
# decisive MLP leads the next best; re-measured on this organism, that threshold fell below 1, which any best
# neuron passes by construction, so the assert is gone. The lead is asserted below for the neuron that does
# stand out.

# %% [markdown]
# ### 4.2 Every neuron of every MLP
#
# The seed's question is whether one neuron carries the decision. The decisive MLP has no such neuron; the
# other MLPs might. The sweep above already patched every neuron of every MLP (the figure: all of them, layer
# by layer; red: the best). We take the best, see how much of its own MLP's recovery it carries, and patch
# the top k neurons of the whole model together.

# %%


def neuron_of(f: int) -> tuple[int, int]:
    """A neuron's (layer, index) from its index in the sweep (MLP by MLP)."""
    return swept[f // D], f % D


ranked = flat_rec.argsort(descending=True)
BEST = neuron_of(int(ranked[0]))
best_rec = flat_rec[ranked[0]].item()
own_rec = mlp_end[BEST[0]].item()              # its whole MLP, patched at the last position (section 3)
own_share = best_rec / own_rec
lead = best_rec / srec[swept.index(BEST[0])].topk(2).values[1].item()   # over the next best of its own MLP
second_overall = "L{}.N{}".format(*neuron_of(int(ranked[1])))
second_overall_rec = flat_rec[ranked[1]].item()
ax = plots.lines(flat_rec, title="recovery, patching one neuron at the last position", xlabel="neuron (layer by "
                 "layer: " + ", ".join(f"MLP {i}" for i in swept) + ")", ylabel="recovery")
ax.scatter([int(ranked[0])], [best_rec], color="red", zorder=3)
for j in range(1, len(swept)):
    ax.axvline(j * D, color="grey", linewidth=0.5)
plt.show()
print("best neurons of the model: " + ", ".join("L{}.N{} ".format(*neuron_of(int(f))) + f"{flat_rec[f]:.3f}"
                                               for f in ranked[:6]))
ks_all = sorted({min(2 ** j, len(variants)) for j in range(len(variants).bit_length() + 1)})
joint_all = P.recovery(P.patch_sweep(model, corrupted, source, [[s for f in ranked[:k] for s in variants[int(f)]]
                                                                 for k in ks_all],
                                     metric, pos=-1, chunk_size=CHUNK, progress=False), corrupt_diff, clean_diff)
k_half_all = next((k for k, v in zip(ks_all, joint_all.tolist()) if v >= 0.5), None)
display(pd.DataFrame({"top k neurons of the model patched together": ks_all, "recovery": joint_all.tolist()})
        .round(3).set_index("top k neurons of the model patched together").T)
print(f"L{BEST[0]}.N{BEST[1]} alone recovers {best_rec:.2f} of the logit difference; its whole MLP {own_rec:.2f} "
      f"({own_share:.0%} of it); it leads the next best neuron of MLP {BEST[0]} {lead:.1f} times, and the next "
      f"best of the model, {second_overall} ({second_overall_rec:.2f}), {best_rec / second_overall_rec:.2f} times")
print(f"the top {k_half_all} neurons of the model together are the first to recover half of the logit difference"
      if k_half_all else "no top-k set of neurons recovers half of the logit difference")
if IS_ORGANISM:
    assert best_rec > M["BEST_REC_MIN"], "one neuron alone recovers a share of the logit difference"
    assert best_rec < M["BEST_REC_MAX"], "no single neuron recovers the seed's half of the logit difference"
    assert own_share > M["OWN_SHARE_MIN"], "the best neuron carries a large part of its own MLP's recovery"
    assert lead > M["LEAD_MIN"], "the best neuron stands out from the rest of its MLP"

# %% [markdown]
# **The best neuron of the model is in the last MLP: L3.N82**, on every prompt set. Alone it recovers 0.13-0.14
# of the logit difference, about a quarter of what L31.N892 recovers in GPT-2 large, and it is only just ahead
# of the runner-up, L2.N163 (0.11-0.12). Within its own MLP it is the seed's kind of neuron: MLP 3 patched
# whole recovers 0.22-0.24, and L3.N82 alone 58-61% of that, 2.5-3.0 times as much as the next best neuron of
# MLP 3. But MLP 3 is the MLP that restores least at the last position (section 3), and the rest of the effect
# is spread: patched together, the top 8 neurons of the model are the first to recover half of the logit
# difference, and all 1,024 recover 0.96-0.97. So this organism has **no single decisive " an" neuron**: one
# neuron in its last layer carries about a seventh of the decision, and many neurons in every MLP carry the
# rest. The asserts: the best neuron recovers more than `BEST_REC_MIN` and less than `BEST_REC_MAX`, carries
# more than `OWN_SHARE_MIN` of its own MLP's recovery, and leads the next best of that MLP more than
# `LEAD_MIN` times. The next sections put L3.N82 through the seed's other tests: is it an " an" neuron?

# %% [markdown]
# ## 5. Does the neuron predict " an" outside the prompt?
#
# **On the patching prompts** first: its activation at the last position on the clean prompts (" an") and on
# their corrupted twins (" a").

# %%
best_hook = f"blocks.{BEST[0]}.mlp.hook_post"
on_an = source[best_hook][:, -1, BEST[1]]
on_a = P.cache_activations(model, corrupted, [best_hook])[best_hook][:, -1, BEST[1]]
prompt_gap = (on_an.min() - on_a.max()).item()
print(f"L{BEST[0]}.N{BEST[1]} at the last position: ' an' prompts mean {on_an.mean():.2f} (lowest {on_an.min():.2f}); "
      f"' a' prompts mean {on_a.mean():.2f} (highest {on_a.max():.2f})")
if IS_ORGANISM:
    assert prompt_gap > M["PROMPT_GAP_MIN"], "the neuron is on for every ' an' prompt and off for every ' a' prompt"

# %% [markdown]
# It is on for " an" and off for " a": over the three prompt sets it averages 3.9-4.1 on the " an" prompts
# (lowest 1.6-2.1) and about 0 on the " a" prompts (highest 0.35). The assert: every " an" prompt is above
# every " a" prompt by more than `PROMPT_GAP_MIN`.
#
# **Max-activating examples.** Neuroscope shows the texts where a GPT-2 neuron fires most; L31.N892 fires on
# tokens followed by " an". We run the corpus of section 1 through the organism once, keeping the neuron's
# activation at every token (`neurons.record_stream`), and show the top examples: each token coloured by
# the activation, the strongest one marked.

# %%
record = neurons.record_stream(model, stream, mask, [BEST])
act = record.act(BEST)
examples = neurons.max_activating(act, valid, k=8)
rows = []
for r, p, v in examples:
    rows.append({"context": " ".join(model.to_str_tokens(stream[r, max(1, p - 10):p + 1])),
                 "next token": model.to_single_str_token(int(nxt[r, p])),
                 "top prediction": model.to_single_str_token(int(record.top[r, p])), "activation": round(v, 2)})
display(pd.DataFrame(rows))
n_an_top8 = sum(int(record.top[r, p]) == AN for r, p, _ in examples)
print(f"' an' is the top prediction at {n_an_top8} of the {len(examples)} strongest activations")
r0, p0, v0 = examples[0]
n_real = int(mask[r0].sum())
plots.colored_tokens(model.to_str_tokens(stream[r0, 1:n_real]), act[r0, 1:n_real], max_value=v0)

# %% [markdown]
# Unlike L31.N892, L3.N82 fires most *not* before " an": in each of the three corpora of section 7.3, " an" is
# the top prediction at only 1-3 of its eight strongest activations (6.3-7.2). Most of the others are on
# " the" in the articles task's zoo sentences ("We looked at the", "At the zoo I saw the"), where the model's
# top prediction is a noun that takes " an": "elephant", "insect", "eagle". At all eight, in every corpus, the
# top prediction is " an" or such a noun. The neuron fires where a word that takes " an" comes next, whether
# or not the article comes first.
#
# **Across the whole corpus.** The seed binned every activation in pile-10k and plotted, per bin, the
# proportion of tokens where " an" is the top prediction: it rises with the activation until " an" is
# always predicted, noisily. Same here (`neurons.activation_bins`; bins holding fewer than 5 tokens are
# dropped), with the proportion where " an" actually comes next for comparison.

# %%
is_top = record.top == AN
bins = neurons.activation_bins(act, is_top, valid, n_bins=N_BINS, min_count=5)
bins_true = neurons.activation_bins(act, nxt == AN, valid, n_bins=N_BINS, min_count=5)
plots.lines({"' an' is the top prediction": bins["proportion"], "' an' is the next token": bins_true["proportion"]},
            x=bins["mid"], title=f"L{BEST[0]}.N{BEST[1]} over the corpus", xlabel="activation", ylabel="proportion")
plt.show()
corr = torch.corrcoef(torch.stack([act[valid], is_top[valid].float()]))[0, 1].item()
print(f"correlation of the activation with 'top prediction is \" an\"' over {int(valid.sum())} tokens: {corr:.2f}")
act_an = act[valid & is_top].mean().item()                   # where the model's top prediction is " an"
act_a = act[valid & (record.top == A)].mean().item()         # ... and where it is " a"
print(f"mean activation where ' an' is the top prediction: {act_an:.2f}; where ' a' is: {act_a:.2f}; "
      f"over all {int(valid.sum())} positions: {act[valid].mean().item():.2f}")
hit_bins = bins[bins["hits"] > 0]
first_hit = hit_bins["lo"].min() if len(hit_bins) else float("nan")   # the lowest bin where ' an' is ever top
bins_max_prop = bins["proportion"].max()
print(f"the proportion is 0 in every bin below an activation of {first_hit:.2f}; its highest is {bins_max_prop:.2f}")
display(bins.round(3))
if IS_ORGANISM:
    assert corr > M["CORR_MIN"], "the neuron's activation tracks predicting ' an' over the corpus"

# %% [markdown]
# **The curve rises, as the seed's does, but it never reaches 1.** Over the three corpora of section 7.3 the
# proportion is 0 in every bin below an activation of about 2.9-3.7, and above that it climbs noisily to at
# most 0.57-0.71 (few tokens a bin). The correlation of the activation with "top prediction is ' an'" is
# 0.41-0.46. Where " an" is the top prediction the neuron's mean activation is 4.9-5.3; where " a" is, about 0
# (-0.05 to -0.04). Most tokens sit in the lowest bin, at about 0: the neuron is silent on most text, and where it fires
# strongly, the top prediction is often not " an" but one of the nouns above. The assert asks for a
# correlation above `CORR_MIN`.

# %% [markdown]
# ## 6. Congruence: the neuron writes the unembedding of " an"
#
# How does the neuron raise " an"? Its output weights (its row of `W_out`) dotted with the unembedding of
# a token is how much one unit of activation adds to that token's logit: the seed calls it the neuron's
# *congruence* with the token (`lens.neuron_congruence`). First the neuron against every token, then every
# neuron of every layer against " an", and against the direction that the patching metric reads: " an" minus
# " a" (the neuron's congruence with " an" minus its congruence with " a"). The tables add each neuron's
# recovery when patched alone (section 4.2).

# %%
cong = lens.neuron_congruence(model, BEST[0])[BEST[1]].detach()
order = cong.argsort(descending=True)
outliers = [(model.to_single_str_token(int(i)), round(cong[i].item(), 2)) for i in order[:8]]
compare = {w: cong[tasks.single_token_id(model, w)].item() for w in [" an", " a", " the", " was"]}
print("most congruent tokens:", outliers)
print("congruence with " + ", ".join(f"{w!r} {v:.2f}" for w, v in compare.items()))
both = torch.cat([lens.neuron_congruence(model, i, torch.tensor([AN, A])) for i in range(L)]).detach()
an_all, diff_all = both[:, 0], both[:, 0] - both[:, 1]     # every neuron, layer by layer: ' an', ' an' - ' a'
flat = BEST[0] * D + BEST[1]
rank = neurons.congruence_rank(model, AN, BEST)
diff_rank = int((diff_all > diff_all[flat]).sum())
axes = plots.grid(3, ncols=3, size=4)
plots.lines(cong[order], title=f"L{BEST[0]}.N{BEST[1]}: every token (sorted)", xlabel="token rank", ax=axes[0])
for ax, v, what in zip(axes[1:], (an_all, diff_all), ("' an'", "' an' - ' a'")):
    plots.lines(v, title=f"every neuron's congruence with {what}", xlabel="neuron (layer by layer)", ax=ax)
    ax.scatter([flat], [v[flat]], color="red", zorder=3)
    for i in range(1, L):
        ax.axvline(i * D, color="grey", linewidth=0.5)
plt.tight_layout()
plt.show()


def top_neurons(v, k):
    """The k neurons highest in ``v``: their congruences with ' an' and ' a', and their recovery alone."""
    idx = v.argsort(descending=True)[:k].tolist()
    alone = [srec[swept.index(i // D), i % D].item() if i // D in swept else float("nan") for i in idx]
    return pd.DataFrame({"neuron": [f"L{i // D}.N{i % D}" for i in idx], "' an'": both[idx, 0].tolist(),
                         "' a'": both[idx, 1].tolist(), "' an' - ' a'": diff_all[idx].tolist(),
                         "recovery alone": alone}).round(2)


print("the most congruent neurons with ' an'")
display(top_neurons(an_all, min(rank + 1, 12)))
print("the most congruent neurons with ' an' - ' a'")
display(top_neurons(diff_all, 5))
an_rank_of_token = int((cong > cong[AN]).sum())
print(f"' an' is the neuron's #{an_rank_of_token + 1} token of {cfg.d_vocab}; the neuron is #{rank + 1} "
      f"of {L * D} neurons for ' an', #{diff_rank + 1} for ' an' - ' a'")
if IS_ORGANISM:
    assert rank < M["RANK_MAX"], "the patching neuron is among the most congruent with ' an'"
    assert an_rank_of_token < M["TOKEN_RANK_MAX"], "' an' is among the neuron's most congruent tokens"
    assert diff_rank < M["DIFF_RANK_MAX"], "the patching neuron is among the most congruent with ' an' - ' a'"

# %% [markdown]
# For L3.N82, " an" is among the most congruent tokens (#5 of 427, 1.00) but not the seed's lone outlier: "At",
# "eagle", "me" and "know" are above it, and "owl" and "horse" just below; " a" is negative (-0.30). Two of
# those tokens, "eagle" and "owl", are nouns that take " an", which fits where the neuron fires (section 5).
# Among all 1,024 neurons it is #7 for " an", not the top one as L31.N892 is in GPT-2 large: the six above it,
# all in MLP 2, raise " a" about as much or more (first table): they write "an article comes next", not
# which one, and none of them recovers anything when patched alone. Against " an" - " a", the direction the patching metric reads, it is #2 (1.30), just behind
# L2.N240 (1.33), which recovers only about 0.06 when patched alone (second table). The congruences depend on
# the weights only: the same on every prompt set. The asserts: the neuron among the top `RANK_MAX` for " an",
# " an" among its top `TOKEN_RANK_MAX` tokens, and the neuron among the top `DIFF_RANK_MAX` for " an" - " a".
#
# By the seed's three tests, then, L3.N82 is an " an" neuron, a weaker one than L31.N892: patching it alone
# recovers a seventh of the logit difference, not half; it tracks " an" over the corpus, but also fires
# before nouns that take " an"; and it writes " an" against " a", with other tokens as congruent as " an".

# %% [markdown]
# ## 7. Searching for token-specific neurons by congruence
#
# If congruence is how a neuron predicts a token, it can find such neurons without any prompt. The seed's
# first search: for each token, its most congruent neuron and the margin over the next most congruent
# one. The second: **mutually exclusive** pairs, where the neuron is the token's most congruent neuron
# *and* the token is the neuron's most congruent token, ranked by the product of the two margins.
# `neurons.congruence_search` scans `W_out @ W_U` of every layer in chunks (GPT-2 large's full matrix,
# 36 x 5120 x 50257, would not fit in memory); the special tokens (BOS/EOS, unknown, padding) are left out:
# the model never has to predict them. (Rarely trained rows may be what the seed's "forbidden tokens" are;
# that is not tested here.)

# %%
tok = model.tokenizer
special = sorted({t for t in [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id]
                  if t is not None})
search = neurons.congruence_search(model, exclude=special)
display(neurons.top_token_neurons(search, model, k=8).round(2))
pairs = neurons.exclusive_pairs(search, model, k=8)
display(pairs.round(2))

# %% [markdown]
# The margin search is led by neurons for a kind of word rather than one token, like the seed's " though"
# neuron: L2.N132 is the most congruent neuron of four question words ("Do", "What", "Of", "Which"), L2.N147
# of three places ("bed", "counter", "floor"). The mutually exclusive pairs are function words: "in" with
# L3.N136, "to" with L2.N13, "was" with L2.N10 on top (the seed's top pair: "i" with L33.N4142). Like the
# congruences, both tables depend on the weights only.
#
# Do the top pairs' neurons predict their tokens over the corpus? Proportion of positions where the
# token is the top prediction, per activation bin, for the three highest-scoring pairs.

# %%
top3 = pairs.head(3)
pair_neurons = [(int(r.layer), int(r.neuron)) for r in top3.itertuples()]
rec3 = neurons.record_stream(model, stream, mask, pair_neurons)
axes = plots.grid(len(pair_neurons), ncols=3, size=3.6)
pair_corr = []
for ax, r, n in zip(axes, top3.itertuples(), pair_neurons):
    hit = rec3.top == r.token_id
    b = neurons.activation_bins(rec3.act(n), hit, valid, n_bins=N_BINS, min_count=5)
    plots.lines(b["proportion"], x=b["mid"], title=f"L{n[0]}.N{n[1]} -> {r.token}", xlabel="activation", ax=ax)
    pair_corr.append(torch.corrcoef(torch.stack([rec3.act(n)[valid], hit[valid].float()]))[0, 1].item())
plt.tight_layout()
plt.show()
print("correlations of activation with 'top prediction is the token': "
      + ", ".join(f"{t} {c:.2f}" for t, c in zip(top3.token, pair_corr)))
if IS_ORGANISM:
    assert min(pair_corr) > M["PAIR_CORR_MIN"], "the top pairs' neurons predict their tokens over the corpus"

# %% [markdown]
# All three correlate with predicting their token over the corpus, as the seed's top pairs do, but unevenly:
# "to" 0.92, "was" 0.45-0.50, and "in", the top pair, only 0.23-0.30 over the three corpora of section 7.3.
# The assert asks for more than `PAIR_CORR_MIN` for each: a low bar, set by "in" (still far from the 0 of a
# neuron unrelated to its token).

# %% [markdown]
# ### 7.3 Measured across prompt sets
#
# `python scripts/measure.py 02` runs this chapter for prompt/corpus seeds 0, 1, 2 on the shipped organism,
# one CPU thread, and writes `book/measured/ch02.json`. "best single neuron (all layers)" is the best single
# neuron of the *whole model* (section 4.2). Each threshold is the worst value over the runs with the margin
# its rule states:

# %%
display(pd.DataFrame(M["runs"]))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %% [markdown]
# In every row the decisive MLP (largest lens step) is MLP 0, and the best single neuron of the whole model is
# L3.N82, outside it.
#
# Thresholds: the decisive MLP's recovery > `LAYER_REC_MIN`, its best neuron's share of it < `SHARE_MAX`; the
# best neuron of the model recovers more than `BEST_REC_MIN` and less than `BEST_REC_MAX`, carries more than
# `OWN_SHARE_MIN` of its own MLP's recovery and leads the next best of that MLP more than `LEAD_MIN` times;
# its activation is higher on every " an" prompt than on every " a" prompt by more than `PROMPT_GAP_MIN`, and
# its correlation with predicting " an" over the corpus is above `CORR_MIN`; it is among the top `RANK_MAX`
# neurons for " an" and the top `DIFF_RANK_MAX` for " an" - " a", with " an" among its top `TOKEN_RANK_MAX`
# tokens; the top congruence pairs' correlations > `PAIR_CORR_MIN`; " an" top-predicted fewer than
# `AN_RATIO_MAX` times per occurrence.

# %% [markdown]
# ## 8. The seed's own numbers on GPT-2 large (online only)
#
# With the network, the same calls reproduce the seed's headline facts about L31.N892 cheaply: its
# congruence rank for " an" and its most congruent tokens (no sweeps: GPT-2 large is 774M parameters).
# Setting `MODEL = "gpt2-large"` in the parameters cell runs the whole chapter on it instead. Offline, this
# cell says so and moves on.

# %%
gpt2 = model if GPT2_MODEL == MODEL else helpers.load_model_if_available(GPT2_MODEL)  # one copy in memory
gpt2_summary = "not run here (offline)"
if gpt2 is not None:
    g_an = tasks.single_token_id(gpt2, " an")
    g_neuron = (31, 892) if gpt2.cfg.n_layers == 36 else BEST
    g_cong = lens.neuron_congruence(gpt2, g_neuron[0])[g_neuron[1]].detach()
    g_top = [gpt2.to_single_str_token(int(i)) for i in g_cong.topk(5).indices]
    g_probs = gpt2(SEED_PROMPT)[0, -1].softmax(-1)
    gpt2_summary = (f"p(' an') = {g_probs[g_an].item():.2f} on the seed prompt; L{g_neuron[0]}.N{g_neuron[1]} is "
                    f"#{neurons.congruence_rank(gpt2, g_an, g_neuron) + 1} for ' an'; its top tokens {g_top}")
    del gpt2
print(gpt2_summary)

# %% [markdown]
# ## 9. What holds, and what differs

# %%
pd.set_option("display.max_colwidth", None)
p_seed, p_short = prompt_rows[0]["p(' an')"], prompt_rows[1]["p(' an')"]
best_name = f"L{BEST[0]}.N{BEST[1]}"
pd.DataFrame([
    ["A prompt with an example sentence makes the model predict ' an'", "p(' an') = 0.64 on GPT-2 large",
     gpt2_summary, (f"p(' an') = {p_seed:.2f}; without the example sentence {p_short:.2f}"
                    + (": no example needed" if p_short > 0.5 else ""))],
    ["' an' is under-predicted", "top prediction ~1,500 times, occurs ~12,000 (0.13)", "—",
     f"{predicted} vs {occurs} ({predicted / occurs:.2f}; {right} of the {predicted} right): milder"],
    ["The logit lens jumps after one late MLP", "after MLP 31 (of 36)", "—",
     (("one jump" if mlp_steps[DECISIVE] > curve[-1] / 2 else "no single jump")
      + f": the MLPs' steps {', '.join(f'MLP {i} {v:+.1f}' for i, v in mlp_steps.items())} (of {curve[-1]:.1f}); "
      f"the largest step is after {jump_stage}, of {L} layers")],
    ["Layer patching: that MLP matters (with MLP 0)", "MLP 31 and MLP 0 stand out", "—",
     (f"every MLP, at the last position only: {', '.join(f'MLP {i} {v:.2f}' for i, v in enumerate(mlp_end.tolist()))}"
      f", after layer 0's attention ({rec[1, 0, -1]:.2f}) brought the noun there; the seed's rule (largest lens "
      f"step) picks MLP {DECISIVE}")],
    ["One neuron of it recovers about as much as the whole layer", "L31.N892: 0.50 vs layer 0.49", "—",
     (f"{'yes' if share > 0.5 else 'not'} in MLP {DECISIVE}: its best, L{layer_best[0]}.N{layer_best[1]}, "
      f"{layer_best_rec:.2f} vs layer {layer_rec:.2f} ({share:.0%}), "
      + (f"top {k_half} for half" if k_half else "no top k for half") + ". In the whole model: "
      f"{best_name} {best_rec:.2f} alone, {own_share:.0%} of its MLP {BEST[0]}'s {own_rec:.2f}; next best "
      f"{second_overall} {second_overall_rec:.2f}; half of the logit difference takes "
      + (f"the top {k_half_all} neurons together" if k_half_all else "more than every neuron's patch gives")
      + (": no single decisive neuron" if best_rec < 0.5 else ""))],
    ["Its activation correlates with predicting ' an' over a corpus", "rising, noisy curve over pile-10k", "—",
     (f"{best_name}: on the patching prompts {on_an.mean():.2f} (' an') vs {on_a.mean():.2f} (' a'); over the "
      f"corpus a rising, noisy curve up to {bins_max_prop:.2f}, correlation {corr:.2f}; ' an' is the top "
      f"prediction at {n_an_top8} of its {len(examples)} strongest activations (section 5: the others)")],
    ["It is congruent with ' an'", "' an' an outlier of its congruences; the top neuron for ' an'", "—",
     (f"' an' is its #{an_rank_of_token + 1} token, not an outlier; it is #{rank + 1} of {L * D} neurons for "
      f"' an' (those above raise ' a' too), #{diff_rank + 1} for ' an' - ' a'")],
    ["Congruence search finds mutually exclusive token-neuron pairs that predict their token",
     "top pair: 'i' with L33.N4142, smooth curves for the top 5", "—",
     f"top pairs {', '.join(top3.token)}; correlations {', '.join(f'{c:.2f}' for c in pair_corr)}"],
], columns=["claim", "source document (GPT-2 large)", "GPT-2 (online)", "this book's model"])

# %% [markdown]
# The seed's method carries over; its headline finding only in part. Patching, the corpus and congruence all
# single out the same neuron, L3.N82, on every prompt set: on for " an" and off for " a", tracking " an" over
# the corpus, writing " an" against " a". But it is not GPT-2 large's L31.N892, which recovers half of the
# logit difference alone. L3.N82 recovers about a seventh, sits in the MLP that restores least, and fires as
# much before nouns that take " an" as before " an" itself. The decision is spread: the logit lens climbs
# through all four MLPs, the one with the largest step (MLP 0) has no neuron that stands out, and half of the
# logit difference takes eight neurons together.
#
# Where the organism differs from GPT-2 large, the differences go with its size and its corpus; this chapter
# varies neither, so which of the two causes them is not tested. With 4 layers, the noun reaches the last
# position through the first attention layer and every MLP after it adds to the decision there; with 256
# neurons a layer, each MLP spreads its share over many neurons, where GPT-2 large's MLP 31, with 5,120
# neurons, puts it in one.

# %%
# Run by scripts/measure.py (RECORD set): what the asserts and the table of section 7.3 rest on. Otherwise nothing.
if RECORD:
    measured.record(RECORD, values={
        "clean_diff": clean_diff, "corrupt_diff": corrupt_diff, "decisive": DECISIVE, "layer_rec": layer_rec,
        "mlp0_rec": mlp_end[0].item(), "layer_best": f"L{layer_best[0]}.N{layer_best[1]}",
        "layer_best_rec": layer_best_rec, "share": share, "layer_lead": layer_lead, "k_half": k_half,
        "swept_layers": len(swept), "best_overall": best_name, "best_rec": best_rec,
        "best_overall_in_decisive": int(BEST[0] == DECISIVE), "own_rec": own_rec, "own_share": own_share,
        "lead": lead, "second_overall": second_overall, "second_overall_rec": second_overall_rec,
        "k_half_all": k_half_all, "prompt_gap": prompt_gap, "act_prompt_an": on_an.mean().item(),
        "act_prompt_an_min": on_an.min().item(), "act_prompt_a": on_a.mean().item(),
        "act_prompt_a_max": on_a.max().item(), "n_an_top8": n_an_top8, "top_activation": v0,
        "first_hit": first_hit, "bins_max_prop": bins_max_prop, "corr": corr, "act_an": act_an, "act_a": act_a,
        "rank": rank, "an_rank_of_token": an_rank_of_token, "diff_rank": diff_rank,
        "an_ratio": predicted / occurs, "an_right": right / predicted,
        "pair_corr_min": min(pair_corr), "mlp_elsewhere": mlp_elsewhere,
        "lens_top_step": steps.max().item(), "lens_mlp_step": mlp_steps[DECISIVE],
        **{f"lens_{lab}": v for lab, v in zip(labels, curve.tolist())},
        **{f"lens_step_mlp{i}": v for i, v in mlp_steps.items()},
        **{f"attn{i}_rec": v for i, v in enumerate(rec[1, :, -1].tolist())},
        **{f"mlp{i}_rec": v for i, v in enumerate(mlp_end.tolist())},
        **{f"joint{k}_share": v for k, v in zip(ks, (joint / layer_rec).tolist())},
        **{f"joint_all{k}": v for k, v in zip(ks_all, joint_all.tolist())},
        **{f"pair{j}": f"{t} L{n[0]}.N{n[1]}" for j, (t, n) in enumerate(zip(top3.token, pair_neurons))},
        **{f"pair{j}_corr": c for j, c in enumerate(pair_corr)},
    }, tables={"runs": [{
        "model": MODEL, "prompt/corpus seed": SEED, "logit diff clean": clean_diff, "corrupted": corrupt_diff,
        "largest lens step": jump_stage, "decisive MLP (largest MLP lens step)": DECISIVE, "its recovery": layer_rec,
        "its best neuron": f"L{layer_best[0]}.N{layer_best[1]}", "its share": share,
        "top k to half the layer": k_half, "best single neuron (all layers)": best_name,
        "its recovery ": best_rec, "its MLP's recovery": own_rec, "share of its MLP": own_share,
        "lead over the next best of its MLP": lead, "runner-up (all layers)": second_overall,
        "top k (all layers) to half": k_half_all, "act. on ' an' prompts": on_an.mean().item(),
        "act. on ' a' prompts": on_a.mean().item(),
        "' an' occurs": occurs, "' an' top prediction": predicted, "predicted / occurs": predicted / occurs,
        "mean act., top ' an'": act_an, "mean act., top ' a'": act_a, "corr(activation, top = ' an')": corr,
        f"neuron's rank for ' an' (of {L * D})": rank + 1, "' an''s rank for the neuron": an_rank_of_token + 1,
        "neuron's rank for ' an' - ' a'": diff_rank + 1,
    }]})
