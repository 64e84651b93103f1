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
# # 3. Debugging a transformer: saliency, the logit lens, activation clusters
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/03_debugging.ipynb)
#
# **Source.** Seed document 003, a post in Hebrew, *"How do you debug transformers?"*. A model said
# something silly; why? The post names three ways to look inside any transformer and shows each on GPT-2 XL:
#
# 1. **the input**: a gradient × input saliency map says which input tokens a generated token came from
#    ("Shakespeare was born in the year 1564": 53% of the first token of *1564* is attributed to
#    *Shakespeare*, 22% to *in the year*, 14% to *born*);
# 2. **the hidden representation over depth**: "half a model can talk too" — read the prediction off the
#    middle of the model (the logit lens). Counting "1, 2, 3,", the early layers already know a comma comes
#    after each number; the numbers themselves come from deeper layers;
# 3. **the activations**: cluster the feed-forward activations token by token; the clusters are humanly
#    readable (one for the first token, one for separators, one for numbers, names …).
#
# The post shows pictures and makes no measurement. This chapter runs each method on the book's model
# organism, and *tests* each: does deleting the most salient tokens change the prediction more than deleting
# random ones? at which layer does each prediction first appear, over hundreds of prompts? how pure are the
# clusters, against chance?

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
MODEL = "organism"          # the book's offline model; "gpt2-xl" (the seed's model) or "gpt2-small" online
SEED = 0                    # prompt sets, random deletions, k-means initialisation
N_PER_TASK = 50             # deletion test: prompts per task (4 tasks)
K_DELETE, DRAWS = 2, 5      # tokens deleted per prompt; random deletions drawn per prompt
N_COUNTING = 200            # counting prompts read with the logit lens
N_CLUSTER = 20              # clustering: prompts per task (5 tasks) whose tokens are clustered
K = 8                       # number of clusters
INTERACTIVE = None          # the cluster explorer's sliders: None means only when a live notebook frontend runs
GPT2_MODEL = "gpt2-xl"      # section 4, online only: the seed's Shakespeare example (skipped offline)
RECORD = ""                 # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display

import helpers
from helpers import clustering, lens, measured, plots, saliency, tasks

helpers.seed_everything(SEED)
model = helpers.load_model(MODEL)
DEVICE = model.cfg.device
if torch.device(DEVICE).type == "cpu" and MODEL == "organism":
    torch.set_num_threads(1)  # a tiny model: one thread is fastest and immune to busy neighbours
N_LAYERS = model.cfg.n_layers
IS_ORGANISM = MODEL.startswith("organism")  # the asserts' thresholds were measured on the organism
print(helpers.describe(torch.device(DEVICE)))
print(f"model: {MODEL} ({N_LAYERS} layers, {model.cfg.n_heads} heads, d_model {model.cfg.d_model}, "
      f"d_mlp {model.cfg.d_mlp}, vocabulary {model.cfg.d_vocab})")
M = measured.load("ch03")  # the asserts' thresholds and the measured tables

# %% [markdown]
# ## 1. Which input tokens did a prediction come from?
#
# ### 1.1 Gradient × input, as the seed computed it
#
# For a generated token $t$ with logit $\ell_t$, take the gradient of $\ell_t$ with respect to each input
# token's embedding $e_i$, multiply by the embedding, and take the L2 norm over the hidden dimension:
# $s_i = \lVert \nabla_{e_i} \ell_t \odot e_i \rVert_2$. Normalised, $s_i / \sum_j s_j$ is the *share*
# of input token $i$ (the shares of one prediction sum to 1). `helpers.saliency.grad_x_input` computes it for
# a batch in one backward pass; `generate_with_saliency` does it for each token of a greedy completion.
#
# The organism speaks a small word-level vocabulary, so the seed's own sentence is not available to it
# (*Shakespeare* is not one of its words: the next cell shows the error it gets). An IOI sentence plays the
# same role: which names does the answer come from?

# %%
try:
    saliency.generate_with_saliency(model, "Shakespeare was born in the year", n_new=2)
    print("this model knows every word of the seed's prompt: see section 4")
except ValueError as err:
    print(f"ValueError: {err}")

# %%
PROMPT = "When Mary and John went to the store, John gave a drink to"
completion = saliency.generate_with_saliency(model, PROMPT, n_new=3)
print("generated:", completion.generated)
ioi_shares = completion.shares[0, :completion.n_prompt]
top = ioi_shares.topk(5)
pd.DataFrame({"input token": [completion.tokens[i] for i in top.indices.tolist()],
              f"share of {completion.generated[0]!r}": [f"{v:.0%}" for v in top.values.tolist()]})

# %% [markdown]
# One sentence is an anecdote. Over 100 held-out IOI prompts: what share of the answer's saliency goes to
# the three name tokens (the indirect object, and the subject twice), against the share any 3 tokens would get
# if saliency were uniform, and how often the most salient context token is a name?

# %%
ioi = tasks.make("ioi", 100, "test", SEED, tokenizer=model).encode(model)
ioi_saliency = saliency.grad_x_input(model, ioi.tokens, ioi.end, ioi.answers)
rows = torch.arange(len(ioi.end), device=ioi.tokens.device)
name_pos = torch.stack([ioi.positions[k] for k in ("IO", "S1", "S2")], 1)
context = ioi_saliency.clone()
context[:, 0] = -1             # BOS and the last token are not context
context[rows, ioi.end] = -1
names_share = ioi_saliency.gather(1, name_pos.to(ioi_saliency.device)).sum(1).mean().item()
uniform_share = (3 / (ioi.end + 1).float()).mean().item()
top_is_name = (name_pos == context.argmax(-1)[:, None]).any(1).float().mean().item()
print(f"names' share of the answer: {names_share:.0%} (uniform: {uniform_share:.0%}); "
      f"the most salient context token is a name in {top_is_name:.0%} of prompts")
if IS_ORGANISM:
    assert names_share > M["NAMES_RATIO_MIN"] * uniform_share and top_is_name > M["TOP_NAME_MIN"]

# %% [markdown]
# Over the three prompt sets of `book/measured/ch03.json` the names get 2.4-2.5 times the uniform share
# (30% of the answer's saliency, against 12-13%), and the most salient context token is a name in 60-65%
# of the prompts: the names matter most on average, but in a third of the prompts another token (a comma, the
# last token, a verb) takes the largest single share (the IOI prompts here are of many structures and
# lengths). The asserts sit below the worst prompt set (`NAMES_RATIO_MIN`, `TOP_NAME_MIN`).
#
# The completion, coloured by the shares of each generated token (choose the generated token in the menu;
# hover over a token for its share). A static copy follows.

# %%
labels = [f"{i}: {tok!r}" for i, tok in enumerate(completion.generated)]
plots.colored_tokens_multi(completion.tokens, completion.shares.T, labels)

# %%
counting = saliency.generate_with_saliency(model, "1, 2, 3,", n_new=4)
axes = plots.grid(2, ncols=2, size=6)
for ax, c, name in [(axes[0], completion, "IOI"), (axes[1], counting, "counting")]:
    plots.heatmap(c.shares, title=f"{name}: shares of each generated token", xlabel="input token",
                  ylabel="generated token", xticks=c.tokens, yticks=c.generated, vmin=0, ax=ax)
    ax.tick_params(axis="x", rotation=90)
plt.tight_layout()
plt.show()

# %% [markdown]
# In the example sentence the names take the largest shares: the first *John* (19%) and *Mary* (18%), then
# the second *John* (11%), ahead of the comma (9%) and the last token, *to* (7%), from which the answer is
# predicted. The three name tokens together take about half of the answer's saliency, as the seed's *1564*
# drew on *Shakespeare*. In the counting heatmap each new number draws most on the number and the comma just
# before it. That is a picture. Is it right? A saliency map makes a checkable claim: *these* tokens matter,
# the others less.
#
# ### 1.2 Testing it: delete the most salient tokens, or random ones
#
# For each prompt, take the model's own top-1 prediction, compute its saliency, delete the `K_DELETE`
# context tokens with the largest shares, and predict again; as a control, delete `K_DELETE` context tokens
# at random (`DRAWS` draws). *Context* excludes the BOS token and the last token (deleting the token the
# prediction is made from would move the prediction itself, a trivial effect). Two measures: the drop in
# the probability of the original prediction, and how often the top-1 prediction changes. Four tasks,
# `N_PER_TASK` held-out prompts each. Deleting shortens the prompt and breaks its layout, so the whole test is
# run a second time *replacing* the chosen tokens instead, each by a token drawn from the context tokens of the
# same batch (last row of the table).

# %%
DELETION_TASKS = ("ioi", "articles", "counting", "colored_objects")
FIELDS = ("p_before", "p_salient", "p_random", "flip_salient", "flip_random")
results = {}
for task in DELETION_TASKS:
    enc = tasks.make(task, N_PER_TASK, "test", SEED, tokenizer=model).encode(model)
    results[task] = saliency.deletion_test(model, enc.tokens, enc.lengths, k=K_DELETE, draws=DRAWS, seed=SEED)
results["all tasks"] = saliency.DeletionResult(*[torch.cat([getattr(results[t], f) for t in DELETION_TASKS])
                                                for f in FIELDS])
replaced = []
for task in DELETION_TASKS:  # the same test, replacing the chosen tokens by random context tokens of the batch
    enc = tasks.make(task, N_PER_TASK, "test", SEED, tokenizer=model).encode(model)
    replaced.append(saliency.deletion_test(model, enc.tokens, enc.lengths, k=K_DELETE, draws=DRAWS, seed=SEED,
                                           mode="replace"))
results["all tasks, replaced"] = saliency.DeletionResult(*[torch.cat([getattr(r, f) for r in replaced])
                                                          for f in FIELDS])
deletion = pd.DataFrame({task: r.summary() for task, r in results.items()}).T
deletion["n"] = deletion["n"].astype(int)
deletion.round(3)

# %%
ax = deletion[["drop_salient", "drop_random", "flip_salient", "flip_random"]].plot.bar(figsize=(8, 3.5), rot=0)
ax.set(title=f"Deleting {K_DELETE} context tokens: the most salient vs random ones",
       ylabel="probability drop / flip rate")
ax.legend(["probability drop, salient", "probability drop, random", "prediction changed, salient",
           "prediction changed, random"], fontsize=8)
plt.show()

# %% [markdown]
# Across three prompt seeds of the shipped organism (`python scripts/measure.py 03`, 200 prompts a row; the
# numbers of this section's tables are read from `book/measured/ch03.json`), deleting the salient tokens
# always costs the prediction much more than deleting random ones, and the same holds when they are replaced
# (the gap in probability drop is 0.50-0.59 over the six rows, in prediction changed 0.50-0.62):

# %%
print(M.provenance())
pd.DataFrame(M["deletion"])

# %% [markdown]
# The asserts sit below the worst row: gap in probability drop > `DELETION_GAP_MIN`, gap in flip rate >
# `FLIP_GAP_MIN`, and salient deletion hurts more than a random one in more than `BEATS_MIN` of the
# (prompt, draw) pairs (values in the table of thresholds, section 3.3).

# %%
pooled = deletion.loc["all tasks"]
swapped = deletion.loc["all tasks, replaced"]
if IS_ORGANISM:
    assert pooled["drop_salient"] - pooled["drop_random"] > M["DELETION_GAP_MIN"], \
        "salient tokens matter more than random ones"
    assert pooled["flip_salient"] - pooled["flip_random"] > M["FLIP_GAP_MIN"]
    assert pooled["salient_beats_random"] > M["BEATS_MIN"]
    assert swapped["drop_salient"] - swapped["drop_random"] > M["DELETION_GAP_MIN"], \
        "... and when they are replaced, not deleted"
    assert swapped["flip_salient"] - swapped["flip_random"] > M["FLIP_GAP_MIN"]
    assert swapped["salient_beats_random"] > M["BEATS_MIN"]

# %% [markdown]
# ## 2. Half a model can talk too: the logit lens on counting
#
# Every stage of the residual stream (after the embedding, after each attention and each MLP sub-layer) can
# be read as a prediction by passing it through the final LayerNorm and the unembedding
# (`helpers.lens.residual_stages`, `logit_lens`). On "1, 2, 3,", position by position, the top token each
# stage predicts (the last row is the model's output):

# %%
one = model.to_tokens("1, 2, 3,")
_, cache = model.run_with_cache(one)
stack, stages = lens.residual_stages(model, cache)
top = lens.logit_lens(model, stack)[:, 0].argmax(-1)  # [stage, pos]
words = model.to_str_tokens(one[0])
pd.DataFrame([[model.to_string(t) for t in row] for row in top.tolist()], index=stages,
             columns=[f"{i}: {w!r}" for i, w in enumerate(words)])

# %% [markdown]
# The same over `N_COUNTING` counting prompts (starts and lengths vary, numbers up to 30). At number
# positions the model must predict the separator ","; at comma positions, the next number. For each stage,
# the fraction of positions where the logit lens's top-1 token is the right one; numbers are also split into
# one-digit and two-digit ones (the seed saw two-digit numbers handled differently past 10).

# %%
enc = tasks.make("counting", N_COUNTING, "all", SEED).encode(model)
_, cache = model.run_with_cache(enc.tokens)
stack, stages = lens.residual_stages(model, cache)
targets = lens.next_token_targets(enc.tokens, enc.lengths, enc.answers)
comma = lens.token_id(model, ",")
valid = (targets >= 0) & (torch.arange(enc.tokens.shape[1], device=enc.tokens.device)[None] >= 1)
values = lens.number_values(model, targets)
masks = {"separator (after a number)": valid & (enc.tokens != comma),
         "next number (after a comma)": valid & (enc.tokens == comma)}
masks["next number < 10"] = masks["next number (after a comma)"] & (values >= 0) & (values < 10)
masks["next number >= 10"] = masks["next number (after a comma)"] & (values >= 10)
lens_acc = {name: lens.lens_accuracy(model, stack, targets, m).cpu() for name, m in masks.items()}
ax = plots.lines(lens_acc, title="Counting: top-1 accuracy of the logit lens by depth", ylabel="accuracy")
ax.set_xticks(range(len(stages)), stages, rotation=45)
plt.show()
first = pd.DataFrame({name: {f"first stage >= {lv}": (lens.first_stage(acc, stages, lv) or (None, "never"))[1]
                             for lv in (0.5, 0.9)} for name, acc in lens_acc.items()}).T
first

# %% [markdown]
# Measured with `scripts/measure.py 03` (first stage where the lens is right on at least half / 90% of the
# positions):

# %%
pd.DataFrame(M["lens"])

# %% [markdown]
# This run's lens accuracy, stage by stage:

# %%
pd.DataFrame({name: acc.tolist() for name, acc in lens_acc.items()}, index=stages).T.round(2)

# %% [markdown]
# At the 90% level the separator comes first in every prompt set (after MLP 1), the next number later (after
# MLP 2), as the seed saw: commas early, numbers deeper. The 50% level keeps the order: the separator is top-1
# on half the number positions after MLP 0, the next number on half the comma positions after layer 1's
# attention. The last layer adds little to either (the number is at 0.97-1.00 from MLP 2 on in this run).
# In a 4-layer model "early" and "deep" are one layer apart (the separator's 90% stage is in layer 1, the
# number's in layer 2, in every prompt set), so the chapter asserts the order at the 90% level (separator
# before number), not which half of the model each is in.

# %%
sep_stage = lens.first_stage(lens_acc["separator (after a number)"], stages, 0.9)
num_stage = lens.first_stage(lens_acc["next number (after a comma)"], stages, 0.9)
sep_layer, num_layer = [None if s is None else lens.stage_layer(s[1]) for s in (sep_stage, num_stage)]
sep_txt, num_txt = ["no stage (none reaches 90%)" if s is None else f"{s[1]} (layer {lay})"
                    for s, lay in ((sep_stage, sep_layer), (num_stage, num_layer))]
print(f"separator first predicted at {sep_txt}, next number at {num_txt} of {N_LAYERS} layers")
if IS_ORGANISM:
    assert sep_stage is not None and num_stage is not None, "the model counts"
    assert sep_stage[0] < num_stage[0], "the separator is predicted before the number"

# %% [markdown]
# **Two-digit numbers.** For GPT-2 and for the organism alike, every number up to 30 is a single token, so
# "two-digit" is not two steps of generation. One-digit numbers also only occur near the start of a prompt,
# with little counting before them, so a difference between the two rows of the table above may be no more
# than position. The next cell compares them at the same comma of the sequence (its 1st, 2nd, 3rd, 4th
# comma), at the stage where one-digit numbers first reach 50%:

# %%
comma_index = torch.cumsum((enc.tokens == comma).long(), 1)  # at a comma: which comma of the prompt it is
digit_stage = lens.first_stage(lens_acc["next number < 10"], stages, 0.5)
digit_stage = digit_stage if digit_stage is not None else (len(stages) - 1, stages[-1])
by_comma = {}
for i in range(1, 5):
    at = masks["next number (after a comma)"] & (comma_index == i)
    one_stage = stack[digit_stage[0]:digit_stage[0] + 1]
    by_comma[f"comma {i}"] = {name: lens.lens_accuracy(model, one_stage, targets, at & masks[name])[0].item()
                              if (at & masks[name]).any() else float("nan")  # few prompts: maybe none
                              for name in ("next number < 10", "next number >= 10")}
by_comma = pd.DataFrame(by_comma).T
digit_lag = by_comma["next number < 10"] - by_comma["next number >= 10"]
print(f"lens accuracy at {digit_stage[1]}, by the comma's place in the sequence; one-digit minus two-digit: "
      f"{digit_lag.round(2).tolist()}")
by_comma.round(2)

# %% [markdown]
# Measured over the three prompt sets (the stage is where one-digit numbers first reach 50%; each cell: the
# lens's accuracy on one-digit / two-digit next numbers):

# %%
pd.DataFrame(M["lens_digits"])

# %% [markdown]
# No lag. In every prompt set the lens reads one-digit and two-digit next numbers at the same stages: on
# half the commas after layer 1's attention, on 90% after MLP 2. Over all commas the one-digit row is a little
# ahead before that (in this run 0.74 against 0.60 after layer 1's attention), but not at the same comma of
# the sequence: there, after layer 1's attention, the lens is right on *more* two-digit next numbers at the
# first comma (0.74-0.82, against 0.47-0.55 for one-digit ones) and about as often at the 2nd to 4th (within
# 0.1 either way), so the mean gap, one-digit minus two-digit, is negative in every prompt set (-0.06 to
# -0.10). In this organism two-digit numbers are decided neither in another place nor later than one-digit
# ones. Asserted: the two-digit 50% stage no later than the one-digit one, and a mean gap below
# `DIGIT_LAG_MAX` (two-digit numbers read at least as well at the same commas). Section 3.3 asks the same of
# the activations.

# %%
stage_of = {name: lens.first_stage(lens_acc[name], stages, 0.5)
            for name in ("next number < 10", "next number >= 10")}
stage_txt = {name: s[1] if s is not None else "no stage" for name, s in stage_of.items()}
if IS_ORGANISM:
    assert None not in stage_of.values(), "the lens reads both kinds of number on half the commas somewhere"
    assert stage_of["next number >= 10"][0] <= stage_of["next number < 10"][0], \
        "two-digit numbers reach 50% no later than one-digit ones"
    assert digit_lag.mean() < M["DIGIT_LAG_MAX"], "... and at the same commas they are read at least as well"

# %% [markdown]
# ## 3. Clustering the activations
#
# ### 3.1 One layer
#
# Tokens of 100 prompts (20 each of counting, Colored Objects, IOI, articles and filler text), the MLP
# activations (`blocks.{l}.mlp.hook_post`) of one layer, one vector per token. Each vector is scaled to unit
# length (the first token's activations are far larger than the others' and would otherwise take clusters
# of their own by size alone), then `clustering.kmeans` (k-means++ and Lloyd steps in a few lines of torch)
# makes `K` clusters, and `pca_2d` projects them on their two main directions. Each token also gets a
# *kind* from the book's word lists: first token, separator, number, name, colour, object, place, or other
# word (`clustering.token_kind`).

# %%
CLUSTER_TASKS = ("counting", "colored_objects", "ioi", "articles", "filler")
cluster_encs = [tasks.make(t, N_CLUSTER, "test", SEED, tokenizer=model).encode(model) for t in CLUSTER_TASKS]
_acts: dict[int, clustering.Activations] = {}


def acts_at(layer: int) -> clustering.Activations:
    """Unit-length MLP activations of every token of the cluster prompts at ``layer`` (cached)."""
    if layer not in _acts:
        a = clustering.Activations.cat([clustering.token_activations(model, e.tokens, e.lengths,
                                                                     f"blocks.{layer}.mlp.hook_post", e.answers)
                                        for e in cluster_encs])
        a.acts = F.normalize(a.acts, dim=-1)
        _acts[layer] = a
    return _acts[layer]


def show_clusters(layer: int, k: int = K, axes=None) -> float:
    """Scatter of one layer's clusters (coloured by cluster and by token kind); returns the purity."""
    a = acts_at(layer)
    labels, _, _ = clustering.kmeans(a.acts, k, seed=SEED)
    xy = clustering.pca_2d(a.acts)
    p = clustering.purity(labels, a.kinds)
    axes = axes if axes is not None else plots.grid(2, ncols=2, size=5)
    plots.scatter(xy, labels.tolist(), title=f"layer {layer}: {k} k-means clusters (purity {p:.2f})",
                  xlabel="PC 1", ylabel="PC 2", ax=axes[0])
    plots.scatter(xy, a.kinds, title=f"layer {layer}: token kinds", xlabel="PC 1", ax=axes[1])
    return p


LAYER = N_LAYERS // 2
show_clusters(LAYER)
plt.tight_layout()
plt.show()
a = acts_at(LAYER)
labels, _, _ = clustering.kmeans(a.acts, K, seed=SEED)
clustering.cluster_table(labels, a.kinds, a.strings)

# %% [markdown]
# On prompt seed 0 the table reads partly like the seed's list: a cluster of first tokens (with a few full
# stops; in the scatter the first tokens are a single point: the same token at the same position always has
# the same activations), one of numbers, one mostly of commas, one of colours (all of them, and nothing
# else), two almost only of plain words (one of verbs and prepositions such as "at", "visited", "on", one of
# the articles "the" and "The"), and two large mixed clusters: the largest (almost 900 tokens), mostly plain
# words with punctuation and nearly all the names, and one where objects and places gather with plain words
# and verbs of taking ("found", "bought"). Names do not form a cluster of their own here.
# *Purity* puts one number on it: the fraction of tokens whose kind is their cluster's majority kind. Its
# chance level is not 1/8: shuffling the tokens among the same clusters gives about the share of the most
# common kind, plain words (the "shuffled" column below).
#
# ### 3.2 Every layer
#
# Purity by layer, against the token's own kind and against the kind of the token the model must predict
# next (is a layer organised by what it reads, or by what it is about to write?), with the shuffled level:

# %%
rows = {}
for layer in range(N_LAYERS):
    a = acts_at(layer)
    labels, _, _ = clustering.kmeans(a.acts, K, seed=SEED)
    rows[f"layer {layer}"] = {"purity (token kind)": clustering.purity(labels, a.kinds),
                              "purity (next token's kind)": clustering.purity(labels, a.next_kinds),
                              "shuffled (token kind)": clustering.shuffled_purity(labels, a.kinds, seed=SEED),
                              "shuffled (next kind)": clustering.shuffled_purity(labels, a.next_kinds, seed=SEED)}
purity = pd.DataFrame(rows).T
# above chance, next token's kind minus the token's own (> 0: organised by what comes next)
next_minus_own = ((purity["purity (next token's kind)"] - purity["shuffled (next kind)"])
                  - (purity["purity (token kind)"] - purity["shuffled (token kind)"])).values
ax = purity.plot.bar(figsize=(8, 3.5), rot=0, ylim=(0, 1))
ax.set(title=f"Purity of {K} k-means clusters of MLP activations", ylabel="purity")
ax.legend(fontsize=8, loc="lower right")
plt.show()
purity.round(3)

# %% [markdown]
# Run live, the next cell gives sliders for the layer and the number of clusters. In the book (and under
# the tests) it shows every layer at `K` clusters instead.

# %%
live = INTERACTIVE if INTERACTIVE is not None else helpers.notebook.widget_frontend()
if live:
    import ipywidgets as widgets

    def _explore(layer: int, k: int) -> None:
        show_clusters(layer, k)
        plt.tight_layout()
        plt.show()

    widgets.interact(_explore, layer=widgets.IntSlider(LAYER, 0, N_LAYERS - 1, description="layer"),
                     k=widgets.IntSlider(K, 2, 16, description="clusters"))
else:
    axes = plots.grid(2 * N_LAYERS, ncols=4, size=3.6)
    for layer in range(N_LAYERS):
        show_clusters(layer, K, axes=axes[2 * layer: 2 * layer + 2])
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ### 3.3 Counting alone
#
# The seed's cleanest picture: on counting, the activations split in two, "one cluster produces the commas,
# the other the numbers"; past 10, it adds, a new cluster takes over the numbers. A number is produced at
# the comma before it, so that new cluster would hold the commas before two-digit numbers. Clustering the
# tokens of the counting prompts alone (the first token left out), at every layer:
#
# - 2 clusters, against number / comma. A number and a comma are different tokens, so this split may be no
#   more than the token's identity: layer 0's MLP, which has seen only the token and one attention layer,
#   is the baseline to beat;
# - 3 clusters: where the third cluster goes (the column counts the clusters that are mostly commas), and
#   whether it parts the commas before one-digit numbers from those before two-digit ones. The *digit
#   split* measures that: in the cluster holding most commas before a one-digit number, their share minus
#   the share of the commas before a two-digit number (0 when the clusters ignore the digits, 1 when the
#   two kinds of comma are fully apart). Its chance level comes from handing the same clusters out at
#   random among the commas. One-digit numbers only come early in a prompt, so the split is also counted
#   over the 1st to 4th comma of each prompt alone, where both kinds occur. Whatever parts the commas, the
#   last column says which next numbers each cluster holding commas has (lowest-highest, and how many
#   commas): clusters by digit would read "2-9" and "10-29".

# %%
count_enc = cluster_encs[0]
count_next = lens.number_values(model, lens.next_token_targets(count_enc.tokens, count_enc.lengths,
                                                               count_enc.answers))
real = torch.arange(count_enc.tokens.shape[1], device=count_enc.tokens.device)[None] < count_enc.lengths[:, None]
count_place = torch.cumsum((count_enc.tokens == comma).long(), 1)[real].cpu()  # at a comma: which comma it is


def digit_split(clusters: torch.Tensor, one: torch.Tensor, two: torch.Tensor) -> float:
    """In the cluster holding most commas before one-digit numbers: their share minus the two-digit ones'."""
    n1, n2 = [torch.bincount(clusters[m], minlength=int(clusters.max()) + 1).float() for m in (one, two)]
    c = n1.argmax()
    return (n1[c] / n1.sum() - n2[c] / n2.sum()).item()


def comma_ranges(clusters: torch.Tensor, commas: torch.Tensor, next_values: torch.Tensor) -> str:
    """Each cluster holding commas: the lowest-highest next number of its commas (their count)."""
    parts = sorted((int(v.min()), int(v.max()), len(v)) for v in
                   (next_values[commas & (clusters == c)] for c in clusters[commas].unique().tolist()))
    return " | ".join(f"{lo}-{hi} ({n})" for lo, hi, n in parts)


counting_rows, counting_tables = {}, {}
shuffle_gen = torch.Generator().manual_seed(SEED)
for layer in range(N_LAYERS):
    a = clustering.token_activations(model, count_enc.tokens, count_enc.lengths, f"blocks.{layer}.mlp.hook_post")
    keep = torch.tensor([k != "first token" for k in a.kinds])
    kinds = [k for k, kp in zip(a.kinds, keep.tolist()) if kp]
    strings = [t.replace("Ġ", " ").strip() for t, kp in zip(a.strings, keep.tolist()) if kp]
    next_value = count_next[real].cpu()[keep]
    fine = ["number" if k == "number" else
            ("frame word" if w != "," or v < 0 else "comma -> 1 digit" if v < 10 else "comma -> 2 digits")
            for k, w, v in zip(kinds, strings, next_value.tolist())]
    x = F.normalize(a.acts[keep], dim=-1)
    two, _, _ = clustering.kmeans(x, 2, seed=SEED)
    three, _, _ = clustering.kmeans(x, 3, seed=SEED)
    one_d = torch.tensor([f == "comma -> 1 digit" for f in fine])
    two_d = torch.tensor([f == "comma -> 2 digits" for f in fine])
    is_number = torch.tensor([f == "number" for f in fine])
    same_place = count_place[keep] <= 4     # the 1st to 4th comma of a prompt: both kinds occur there
    at_commas = (one_d | two_d).nonzero().squeeze(1)
    shuffled = []
    for _ in range(20):  # chance: the same clusters, handed out at random among the commas
        labels_ = three.clone()
        labels_[at_commas] = three[at_commas[torch.randperm(len(at_commas), generator=shuffle_gen)]]
        shuffled.append(digit_split(labels_, one_d, two_d))
    table = pd.crosstab(pd.Series(three.tolist(), name="cluster (k=3)"), pd.Series(fine, name=""))
    numbers_together = torch.bincount(three[is_number]).max().item() / int(is_number.sum())
    counting_rows[f"layer {layer}"] = {
        "k=2: purity (number / comma)": clustering.purity(two, kinds),
        "k=3: clusters mostly commas": int(table.idxmax(1).str.startswith("comma").sum()),
        "k=3: digit split": digit_split(three, one_d, two_d),
        "k=3: digit split, 1st-4th comma": digit_split(three, one_d & same_place, two_d & same_place),
        "shuffled": sum(shuffled) / len(shuffled),
        "k=3: numbers in their largest cluster": numbers_together,
        "k=3: commas' clusters (next numbers)": comma_ranges(three, one_d | two_d, next_value)}
    counting_tables[layer] = table
# the most a 2-cluster split can reach against these kinds: the two largest (numbers, separators) split clean
k2_ceiling = sum(sorted(pd.Series(kinds).value_counts())[-2:]) / len(kinds)
counting_purity = pd.DataFrame.from_dict(counting_rows, orient="index")
display(counting_purity.round(3))
print(f"k=2, the highest purity these tokens allow (the frames' words fall in one cluster or the other): "
      f"{k2_ceiling:.3f}")
print("3 clusters at every layer:")
pd.concat({f"layer {layer}": counting_tables[layer] for layer in range(N_LAYERS)}).fillna(0).astype(int)

# %% [markdown]
# Measured (`scripts/measure.py 03`, K = 8, 100 prompts, the first token included; purity by layer, the
# shuffled level averaged over layers):

# %%
pd.DataFrame(M["clusters"])

# %% [markdown]
# The K = 8 clusters of section 3.2 read mostly the token's kind: in every prompt set their purity is highest
# at layer 0 (0.74-0.79) and lower at every later layer (0.65-0.73), against 0.46 by chance.
#
# Reads or writes? Purity against the token's own kind and against the kind of the token that comes next
# (this run's table in section 3.2), by layer, in every prompt set:

# %%
pd.DataFrame(M["clusters_next"])

# %% [markdown]
# Counted above each one's shuffled level (the two levels differ by less than 0.01), layer 0's clusters
# follow the token's own kind more than the next token's, by 0.04-0.11 over the three prompt sets, and the
# last layer's follow the next token's kind more, by 0.01-0.04: the first MLP is organised by what it reads;
# from layer 2 on, the clusters lean, slightly, towards what the model is about to write. At the last layer
# the effect is small (0.01 in two of the three prompt sets), but its sign is the same in every prompt set;
# the asserts ask for it with `NEXT_KIND_FIRST_MAX` and `NEXT_KIND_LAST_MIN`.

# %%
print("above chance, next token's kind minus own kind, by layer:", next_minus_own.round(3).tolist())
if IS_ORGANISM:
    assert next_minus_own[0] < M["NEXT_KIND_FIRST_MAX"], "layer 0's clusters follow what the token is"
    assert next_minus_own[-1] > M["NEXT_KIND_LAST_MIN"], "the last layer's follow what comes next"

# %% [markdown]
# On counting alone, 2 clusters against number / comma, purity by layer (and the highest purity these tokens
# allow):

# %%
pd.DataFrame(M["counting_split"])

# %% [markdown]
# The split is there, but it is the tokens themselves: its purity is highest already at layer 0 (0.93-0.94
# over the three prompt sets), and that is the most a 2-cluster split of these tokens can reach (every number
# on one side, every comma and colon on the other; the frames' few words, "Count", "The numbers are", fall
# on either side). Layer 0 has done no more than look at each token and one attention layer, and no later
# layer raises the purity. A split that layer 0 already makes says nothing about what the model computes, so
# the chapter asserts nothing about it.
#
# With 3 clusters (this run's tables above) the number tokens keep one cluster at every layer, one-digit and
# two-digit numbers together. What moves is the commas. In this run they share one cluster at layer 0 (the
# third cluster takes the frames' words and a few numbers), split in two at layers 1 and 2, and are together
# again at the last layer, with a few of the frames' words. The split of layers 1 and 2 is not by digits: both
# halves hold commas before small and large numbers alike (the last column). The digit split by layer, over
# the last layer's 1st to 4th commas alone, and its chance level, in every prompt set; then the next numbers
# of each cluster's commas:

# %%
pd.DataFrame(M["counting_digits"])

# %%
pd.DataFrame(M["counting_commas"])

# %% [markdown]
# The seed's "new cluster past 10" does not appear in this organism. In every prompt set the last layer keeps
# all the commas in one cluster, so its digit split is 0, over the 1st to 4th commas too. At layers 1 and 2
# the commas split in two in every prompt set, but not by the number that follows: the digit split there is
# -0.02 to 0.18 (in this run 0.08 and 0.10, against 0.06 by chance), and each of the two clusters holds commas
# before one-digit and two-digit numbers alike (every range runs from 6 or less to 21 or more). Layer 0
# differs between prompt sets. In one, the commas share a cluster. In the other two, the early commas part
# from the late ones: those before the numbers 2 to 13 from those before 14 to 28. The digit split scores
# that 0.71-0.76, but the boundary is at 13/14, not at 10: early against late in the count, not one digit
# against two. Nothing here sets two-digit numbers apart, and the lens of section 2 agrees: it reads them no
# later than one-digit ones. (The book's previous organism, trained with an earlier recipe (see the
# appendix), did both: its last layer put the commas before two-digit numbers in a cluster of their own, and
# its lens read those numbers later. That was a property of one trained model, not of counting.) Asserted:
# the last layer's digit split stays below `DIGIT_SPLIT_LAST_MAX`, also over the 1st to 4th commas alone. That
# bound is above what the middle layers' splits, which are not by digits, reach, and far below a cluster of
# their own for the commas before two-digit numbers, which would score near 1.

# %%
split = counting_purity["k=3: digit split"]
split_same_place = counting_purity["k=3: digit split, 1st-4th comma"]
print(f"digit split at the last layer: {split.iloc[-1]:.2f} "
      f"({split_same_place.iloc[-1]:.2f} at the 1st-4th commas)")
if IS_ORGANISM:
    assert split.iloc[-1] < M["DIGIT_SPLIT_LAST_MAX"], "the last layer does not part the commas by digits"
    assert split_same_place.iloc[-1] < M["DIGIT_SPLIT_LAST_MAX"], "... nor at the same places in the sequence"

# %% [markdown]
# Every layer's K = 8 clusters are purer than chance in every run (all five tasks; the smallest gap is
# 0.18-0.22): the assert asks for a gap above `PURITY_GAP_MIN` at every layer. The chapter's thresholds, each
# with the rule that derived it from the runs above:

# %%
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
gaps = purity["purity (token kind)"] - purity["shuffled (token kind)"]
print("purity - shuffled, by layer:", gaps.round(3).tolist())
if IS_ORGANISM:
    assert (gaps > M["PURITY_GAP_MIN"]).all(), "every layer's clusters follow token kinds far above chance"

# %% [markdown]
# ## 4. The seed's example on GPT-2 (online only)
#
# With access to the Hugging Face hub, the same call runs the seed's own sentence on GPT-2 XL (set
# `GPT2_MODEL = "gpt2-small"` for a faster, smaller check). Offline, the cell says so and moves on.

# %%
gpt2 = model if GPT2_MODEL == MODEL else helpers.load_model_if_available(GPT2_MODEL)  # one copy in memory
gpt2_summary = "not run here (offline)"
if gpt2 is not None:
    g = saliency.generate_with_saliency(gpt2, "Shakespeare was born in the year", n_new=2)
    shake = [i for i, t in enumerate(g.tokens) if "Shakespeare" in t]
    gpt2_summary = (f"{GPT2_MODEL} completes {g.generated}; share of 'Shakespeare': "
                    + ", ".join(f"{g.shares[i, shake].sum():.0%}" for i in range(len(g.generated))))
    display(plots.colored_tokens_multi(g.tokens, g.shares.T, [repr(t) for t in g.generated]))
print(gpt2_summary)

# %% [markdown]
# ## 5. What holds, and what differs

# %%
pd.set_option("display.max_colwidth", None)
two_digits_later = (None not in stage_of.values()
                    and stage_of["next number >= 10"][0] > stage_of["next number < 10"][0])
two_digits_apart = split.iloc[-1] >= M["DIGIT_SPLIT_LAST_MAX"]  # the last layer parts the commas by digits
digits_verdict = {0: "no", 1: "partly", 2: "yes"}[int(two_digits_later) + int(two_digits_apart)]
ONLINE = "the same cells with MODEL = 'gpt2-xl' (not run here: offline)" if MODEL == "organism" else f"see above ({MODEL})"
pd.DataFrame([
    ["Gradient x input shares say which input tokens a prediction came from",
     "seed 003: 'Shakespeare' gets 53% of the first token of 1564 (GPT-2 XL)", gpt2_summary,
     (f"IOI (100 prompts): the three name tokens get {names_share:.0%} of the answer's saliency ({uniform_share:.0%} "
      f"if uniform); the most salient token is a name in {top_is_name:.0%}. The seed's sentence is outside the "
      "organism's vocabulary (clear error)")],
    ["... and they are right: deleting (or replacing) the salient tokens changes the prediction more than random ones",
     "not tested in the seed", ONLINE,
     (f"{int(pooled['n'])} prompts: probability drop {pooled['drop_salient']:.2f} vs {pooled['drop_random']:.2f}, "
      f"prediction changed {pooled['flip_salient']:.0%} vs {pooled['flip_random']:.0%}; replacing instead of "
      f"deleting: {swapped['drop_salient']:.2f} vs {swapped['drop_random']:.2f}, "
      f"{swapped['flip_salient']:.0%} vs {swapped['flip_random']:.0%}")],
    ["Half a model can talk: early layers predict the comma, deeper layers the number",
     "seed 003: logit lens on '1, 2, 3,' (picture)", ONLINE,
     f"separator at {sep_txt}, number at {num_txt} of {N_LAYERS} (>= 90% of {N_COUNTING} prompts)"],
    ["Two-digit numbers are decided elsewhere",
     "seed 003: a new cluster takes over past 10", ONLINE,
     (f"{digits_verdict}: numbers are single tokens here (as in GPT-2); the lens reads a one-digit next "
      f"number on half the commas after {stage_txt['next number < 10']}, a two-digit one after "
      f"{stage_txt['next number >= 10']} (one-digit minus two-digit accuracy at {digit_stage[1]}, at the "
      f"same commas of the sequence: {digit_lag.mean():+.2f}); with 3 clusters, the last layer's digit split "
      f"of the commas is {split.iloc[-1]:.2f} ({split_same_place.iloc[-1]:.2f} at the 1st-4th commas; "
      "1 would be a cluster of their own), and at every layer one cluster holds at least "
      f"{counting_purity['k=3: numbers in their largest cluster'].min():.0%} of the number tokens")],
    ["Activation clusters are humanly readable (first token, separators, numbers, names …)",
     "seed 003: observed (pictures)", ONLINE,
     (f"purity {purity['purity (token kind)'].min():.2f}-{purity['purity (token kind)'].max():.2f} by layer vs "
      f"{purity['shuffled (token kind)'].mean():.2f} by chance (K={K})")],
    ["Counting splits into a comma cluster and a number cluster",
     "seed 003: observed", ONLINE,
     (f"2-cluster purity up to {counting_purity['k=2: purity (number / comma)'].max():.2f}, the most these "
      f"tokens allow ({k2_ceiling:.2f}), already at layer 0: the split is the token itself")],
], columns=["claim", "source document", "GPT-2 (online)", "this book's model"])

# %% [markdown]
# What differs, and why: the seed's model is GPT-2 XL (48 layers, a 50k-token byte-level vocabulary); the
# organism has 4 layers and a few hundred words, so the seed's sentence cannot even be written to it, and
# "early" and "deep" layers are one layer apart (the separator is read after MLP 1, the next number after
# MLP 2, not in halves of dozens of layers). The methods are the same calls on both; the seed's pictures
# become measurements here. One claim does not hold on the organism: two-digit numbers are decided neither
# in another place nor later. The lens reads them at the same stages as one-digit ones, the clusters never
# part the commas at 10 (in two prompt sets layer 0 parts the early commas from the late ones, at 13/14), and
# the last layer keeps all the commas together. The book's previous organism did set two-digit numbers apart
# in both ways, so this is a property of a trained model, not of the task. Whether GPT-2 XL shows the seed's
# new cluster past 10 is for the online run to say. The 2-cluster number / comma split, which the seed shows
# as a finding, is on the organism the tokens' identity, complete at layer 0.

# %%
# Run by scripts/measure.py (RECORD set): what the asserts and the tables above rest on. Otherwise nothing.
if RECORD:
    modes = {"delete": deletion.loc["all tasks"], "replace": deletion.loc["all tasks, replaced"]}
    stage = {name: " / ".join(str(v) for v in row) for name, row in first.iterrows()}
    measured.record(RECORD, values={
        **{f"drop_gap_{m}": r["drop_salient"] - r["drop_random"] for m, r in modes.items()},
        **{f"flip_gap_{m}": r["flip_salient"] - r["flip_random"] for m, r in modes.items()},
        **{f"beats_{m}": r["salient_beats_random"] for m, r in modes.items()},
        "names_ratio": names_share / uniform_share, "top_is_name": top_is_name,
        "sep_layer": sep_layer, "num_layer": num_layer,
        "digit_stage_lag": None if None in stage_of.values()
                           else stage_of["next number >= 10"][0] - stage_of["next number < 10"][0],
        "digit_lag_mean": digit_lag.mean(), "digit_lag_min": digit_lag.min(), "min_purity_gap": gaps.min(),
        "next_minus_own_first": next_minus_own[0], "next_minus_own_last": next_minus_own[-1],
        "count_ceiling": k2_ceiling,
        "count_purity_layer0": counting_purity["k=2: purity (number / comma)"].iloc[0],
        "count_purity_max": counting_purity["k=2: purity (number / comma)"].max(),
        "k3_comma_clusters_first": int(counting_purity["k=3: clusters mostly commas"].iloc[0]),
        "k3_comma_clusters_last": int(counting_purity["k=3: clusters mostly commas"].iloc[-1]),
        "digit_split_first": split.iloc[0], "digit_split_last": split.iloc[-1],
        "digit_split_gain": split.iloc[-1] - split.iloc[0], "digit_split_same_place": split_same_place.iloc[-1],
        "digit_split_shuffled_last": counting_purity["shuffled"].iloc[-1],
    }, tables={
        "deletion": [{"model": MODEL, "prompt seed": SEED, "mode": m, "prompts": int(r["n"]),
                      "p drop, salient": r["drop_salient"], "p drop, random": r["drop_random"],
                      "gap": r["drop_salient"] - r["drop_random"], "changed, salient": r["flip_salient"],
                      "changed, random": r["flip_random"], "salient beats random": r["salient_beats_random"]}
                     for m, r in modes.items()],
        "lens": [{"model": MODEL, "prompt seed": SEED, "separator": stage["separator (after a number)"],
                  "next number": stage["next number (after a comma)"],
                  "next number < 10": stage["next number < 10"], "next number >= 10": stage["next number >= 10"]}],
        "lens_digits": [{"model": MODEL, "prompt seed": SEED, "stage": digit_stage[1],
                         **{f"{c}: 1 / 2 digits": f"{r['next number < 10']:.2f} / {r['next number >= 10']:.2f}"
                            for c, r in by_comma.iterrows()}, "mean gap": digit_lag.mean()}],
        "clusters": [{"model": MODEL, "prompt seed": SEED,
                      **{f"purity, layer {i}": v for i, v in enumerate(purity["purity (token kind)"])},
                      "shuffled": purity["shuffled (token kind)"].mean(), "smallest gap": gaps.min()}],
        "clusters_next": [{"model": MODEL, "prompt seed": SEED,
                           **{f"layer {i}: own / next kind": f"{o:.3f} / {n:.3f}" for i, (o, n) in enumerate(
                               zip(purity["purity (token kind)"], purity["purity (next token's kind)"]))}}],
        "counting_split": [{"model": MODEL, "prompt seed": SEED,
                            **{f"layer {i}": v for i, v in enumerate(counting_purity["k=2: purity (number / comma)"])},
                            "highest possible": k2_ceiling}],
        "counting_digits": [{"model": MODEL, "prompt seed": SEED,
                             **{f"layer {i}": g for i, g in enumerate(split.tolist())},
                             f"layer {N_LAYERS - 1}, 1st-4th comma": split_same_place.iloc[-1],
                             f"layer {N_LAYERS - 1}, shuffled": counting_purity["shuffled"].iloc[-1],
                             f"k=3, layer {N_LAYERS - 1}: clusters mostly commas":
                                 int(counting_purity["k=3: clusters mostly commas"].iloc[-1])}],
        "counting_commas": [{"model": MODEL, "prompt seed": SEED,
                             **{f"layer {i}": r for i, r in enumerate(
                                 counting_purity["k=3: commas' clusters (next numbers)"])}}],
    })
