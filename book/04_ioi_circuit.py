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
# # 4. The IOI circuit, found by batched patching
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/04_ioi_circuit.ipynb)
#
# **Source.** Wang et al. (2022), *Interpretability in the Wild: a Circuit for Indirect Object
# Identification in GPT-2 small*, as summarised in seed document 002 (a reading-group deck on circuits) and
# built on by seed 004 (Merullo et al., circuit reuse). Given *"When Mary and John went to the store, John
# gave a drink to"*, GPT-2 small says *Mary*. The paper finds 26 heads that do it: **duplicate-token** and
# **induction** heads notice that *John* is repeated, **S-inhibition** heads carry that to the end, and
# **name mover** heads copy the name that is *not* inhibited; **negative** and **backup** name movers
# complicate the picture. The circuit is found by *path patching* and checked by *faithfulness*,
# *completeness* and *minimality*.
#
# This chapter runs every step of that method on the book's model organism (offline, CPU) with the
# batched patching engine of `helpers/patching.py` and path patching from `helpers/circuits.py`. The
# organism is much smaller than GPT-2 small (4 layers) and was trained on a grammar of IOI sentences (three in ten
# with one or two of their non-name words replaced by random words; the appendix has its recipe); we report the
# circuit it actually has, which is **not** GPT-2's, and say where it differs.

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
MODEL = "organism"        # "gpt2-small" (online) runs the same analysis on the paper's model
SEED = 0                  # seeds the prompts
N_PROMPTS = 64            # prompts per batch (GPT-2 small: 32 keeps the sweeps short on a CPU)
SPLIT = "test"            # held-out templates and name pairs (the organism was trained on IOI text)
TEMPLATE = 0              # index into the held-out templates: one template, fixed positions for patching
DIRECT_MIN = 0.10         # a head is a *direct* head if path patching it to the logits moves ≥ this fraction
FEEDER_MIN = 0.10         # a head feeds a direct head if patching its path to the q/k/v moves ≥ this fraction
CARRIER_MIN = 0.03        # a head carries names if knocking it out lowers the IO logit by ≥ this fraction
DEPTH = 3                 # levels of the backwards path-patching search (1: to the logits only)
GPT2_MODEL = "gpt2-small" # section 9, online only
RECORD = ""               # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import helpers
from helpers import circuits, heads, lens, loading, measured, patching, plots, tasks
from helpers.circuits import head_name
from helpers.tasks import ioi
from helpers.tasks.evaluate import evaluate_batch

helpers.seed_everything(SEED)
torch.set_num_threads(1)  # the machine is shared; one thread is also fastest for the small model
model = helpers.load_model(MODEL)
L, H = model.cfg.n_layers, model.cfg.n_heads
HEAD_TICKS = {"xticks": [str(j) for j in range(H)], "yticks": [str(i) for i in range(L)]}  # for layer x head maps
IS_ORGANISM = MODEL.startswith("organism")
M = measured.load("ch04")  # the asserts' thresholds and the measured table (section 10)
print(f"model: {MODEL} ({L} layers x {H} heads, d_model={model.cfg.d_model}, vocabulary {model.cfg.d_vocab})")
print(helpers.describe(torch.device(model.cfg.device)))

# %% [markdown]
# ## 1. The task and the metric
#
# Each prompt names two people, repeats one (the subject **S**) and ends where the other (the indirect
# object **IO**) should come. The metric is the **logit difference** logit(IO) − logit(S) at the last
# position. The *ABC* twin of each prompt replaces the second S by a third name, which removes the
# information the circuit uses (which name was repeated): its logit difference should be near zero.
# `helpers.tasks.ioi` builds both, with templates and name pairs held out of the organism's training.

# %%
mixed = tasks.make("ioi", 4 * N_PROMPTS, SPLIT, seed=SEED, tokenizer=model)
abc = tasks.PromptBatch("ioi", mixed.corrupted, mixed.answers, mixed.distractors)
clean_eval, abc_eval = evaluate_batch(model, mixed), evaluate_batch(model, abc)
print(mixed.texts[0], "->", mixed.answers[0], "| ABC:", mixed.corrupted[0])
pd.DataFrame([clean_eval, abc_eval], index=["clean (all held-out templates)", "ABC-corrupted"]).round(3)

# %% [markdown]
# Patching compares activations position by position, so the sweeps use prompts of **one template**
# (names and objects vary, the positions of IO, S1, S2 and END do not; ABBA and BABA orders alternate).

# %%
template = ioi.HELDOUT_TEMPLATES[TEMPLATE]
batch = tasks.make("ioi", N_PROMPTS, SPLIT, seed=SEED, templates=[template], tokenizer=model)
enc = batch.encode(model)
clean_tokens, abc_tokens, END = enc.tokens, enc.corrupted, enc.end
metric = patching.logit_diff_metric(enc.answers, enc.distractors)
per_prompt = patching.logit_diff_metric(enc.answers, enc.distractors, reduce=False)
clean_ld = metric(patching.logits_at(model, clean_tokens, END)[None]).item()
abc_ld = metric(patching.logits_at(model, abc_tokens, END)[None]).item()
accuracy = (per_prompt(patching.logits_at(model, clean_tokens, END)[None]) > 0).float().mean().item()
str_tokens = model.to_str_tokens(clean_tokens[0])
labels = [f"{i}:{t.strip()}" for i, t in enumerate(str_tokens)]
print(template)
print(f"clean logit diff {clean_ld:.3f}, ABC {abc_ld:.3f}, accuracy {accuracy:.2f} on {N_PROMPTS} prompts")

# %%
if IS_ORGANISM:
    assert clean_eval["accuracy"] > M["ACC_MIN"], "the organism should prefer IO over S on held-out prompts"
    assert clean_eval["logit_diff"] > M["LD_MIN"] and abs(abc_eval["logit_diff"]) < M["ABC_MAX"]
    assert clean_ld - abc_ld > M["GAP_MIN"], "the ABC corruption should remove most of the logit difference"

# %% [markdown]
# ## 2. Direct logit attribution
#
# With LayerNorm folded (compatibility mode), the final residual at END is a sum of the embeddings and
# every head's and MLP's output; dividing each by the final LayerNorm scale and projecting on
# W_U[IO] − W_U[S] splits the logit difference among them (`helpers.lens.direct_logit_attribution`).
# In GPT-2 small the name movers (9.9, 9.6, 10.0) dominate and 10.7 and 11.10 push the other way.

# %%
_, clean_cache = model.run_with_cache(clean_tokens)
direction = lens.logit_diff_direction(model, enc.answers, enc.distractors)
dla = lens.direct_logit_attribution(model, clean_cache, END, direction).mean(-1).detach()
top_dla = circuits.top_heads(dla, 3)
plots.heatmap(dla, title="direct logit attribution to IO − S", xlabel="head", ylabel="layer", cmap="RdBu",
              center=True, **HEAD_TICKS)
plt.show()
print("largest |DLA|:", ", ".join(f"{head_name(h)} {dla[h].item():+.2f}" for h in top_dla),
      f"(clean logit diff {clean_ld:.2f})")

# %% [markdown]
# ## 3. Activation patching
#
# Run the ABC prompts and restore one activation from the clean run; the fraction of the logit
# difference that comes back ("recovery", 0 = still corrupted, 1 = clean) says how much that
# activation carries. `patching.patch_sweep` stacks the patched runs on the batch axis, so each sweep
# below is a handful of forward passes, not one per variant (the benchmark in
# `tests/test_bench_patching.py` compares it with the one-run-per-variant loop).
#
# ### 3.1 The residual stream, by layer and position

# %%
resid_hooks = [f"blocks.{i}.hook_resid_pre" for i in range(L)]
clean_acts = patching.cache_activations(model, clean_tokens, resid_hooks + circuits.z_hooks(model))
T = clean_tokens.shape[1]
variants, shape = patching.layer_variants(L, kinds=("resid_pre",), n_pos=T)
resid_rec = patching.recovery(patching.patch_sweep(model, abc_tokens, clean_acts, variants, metric, END),
                              abc_ld, clean_ld).view(shape)[0]
ax = plots.heatmap(resid_rec, title="recovery: residual stream (resid_pre) patched", xlabel="position",
                   ylabel="layer", cmap="RdBu", center=True, xticks=labels, yticks=HEAD_TICKS["yticks"])
plt.setp(ax.get_xticklabels(), rotation=90)
plt.show()
s2 = int(enc.positions["S2"][0])
print(f"layer 0: recovery {resid_rec[0, s2]:.2f} at S2 (position {s2}), {resid_rec[0, -1]:.2f} at END; "
      f"layer {L - 1}: {resid_rec[L - 1, s2]:.2f} at S2, {resid_rec[L - 1, -1]:.2f} at END")

# %% [markdown]
# The information starts at S2 (only S2 differs between the prompts); by the input of the last layer most of it
# is at END, and the last layer's heads move the rest. Which heads move it?
#
# ### 3.2 Every head, all positions and per position

# %%
variants, shape = patching.head_variants(L, H)
head_rec = patching.recovery(patching.patch_sweep(model, abc_tokens, clean_acts, variants, metric, END),
                             abc_ld, clean_ld).view(shape)
variants, shape = patching.head_variants(L, H, n_pos=T)
head_pos_rec = patching.recovery(patching.patch_sweep(model, abc_tokens, clean_acts, variants, metric, END),
                                 abc_ld, clean_ld).view(shape)
axes = plots.grid(2, ncols=2, size=4.8)
plots.heatmap(head_rec, title="recovery: head output patched (all positions)", xlabel="head", ylabel="layer",
              cmap="RdBu", center=True, ax=axes[0], **HEAD_TICKS)
plots.heatmap(head_pos_rec.reshape(L * H, T), title="recovery: head output at one position",
              xlabel="position", ylabel="layer.head", cmap="RdBu", center=True, ax=axes[1],
              xticks=labels, yticks=[f"{i}.{j}" for i in range(L) for j in range(H)])
plt.setp(axes[1].get_xticklabels(), rotation=90)
plt.tight_layout()
plt.show()
top_patch = circuits.top_heads(head_rec, 4)
print("largest recovery:", ", ".join(f"{head_name(h)} {head_rec[h].item():.2f} "
                                      f"(mostly at {labels[int(head_pos_rec[h].abs().argmax())]})" for h in top_patch))

# %% [markdown]
# ## 4. Path patching, backwards from the logits
#
# Activation patching mixes direct and indirect effects: a layer-0 head can matter only because later
# heads read it. *Path patching* isolates one path. Run the **clean** prompts; give the sender head its
# **ABC** output and freeze every other head at its clean output (MLPs recompute), so the change reaches
# the receiver only along the direct path; the receiver is either the logits or one input (query, key
# or value) of a later head (`circuits.path_patch`, two batched passes). We report the fraction of the
# clean logit difference lost.
#
# ### 4.1 Senders → logits: the heads that write the answer

# %%
all_heads = [(i, j) for i in range(L) for j in range(H)]
found = circuits.find_circuit(model, clean_tokens, abc_tokens, metric, END, DIRECT_MIN, FEEDER_MIN, depth=DEPTH)
direct_effect, direct_heads = found.direct_effect, found.direct_heads
no_mlp = circuits.path_patch(model, clean_tokens, abc_tokens, [[h] for h in direct_heads], metric, END,
                             freeze_mlps=True) if direct_heads else torch.empty(0)
direct_no_mlp = dict(zip(direct_heads, ((no_mlp - clean_ld) / clean_ld).tolist()))
plots.heatmap(direct_effect, title="path patching head → logits: change / clean logit diff", xlabel="head",
              ylabel="layer", cmap="RdBu", center=True, **HEAD_TICKS)
plt.show()
for h in direct_heads:
    print(f"direct head {head_name(h)}: {direct_effect[h].item():+.2f} with the MLPs recomputing, "
          f"{direct_no_mlp[h]:+.2f} with the MLPs frozen too (its own write to the logits)")

# %% [markdown]
# A head whose effect vanishes once the MLPs are frozen does not write the answer itself: an MLP after it
# reads what it wrote and writes the answer. In the paper the name movers write the answer directly.
#
# ### 4.2 Senders → the direct heads' queries, keys and values
#
# For every layer holding direct heads, every head of an earlier layer is a sender; the receivers are
# that layer's direct heads, through their query (at END), key or value (all positions). The search
# (`circuits.find_circuit`, the same function chapter 5 uses) then recurses as the paper did: the feeders
# found become receivers in turn (level 3: S-inhibition heads fed by induction and duplicate-token
# heads, and so on), up to `DEPTH` levels.

# %%
# found above by circuits.find_circuit: level 2 feeds the direct heads, level 3 feeds the level-2 feeders
feeds = {key: change for key, (level, change) in found.feeds.items()}  # (sender, receivers, input) -> change
feed_table, feeders = found.feed_table, found.feeders
if feed_table.empty:
    print("no sender: every direct head is in layer 0, there is no earlier head to feed it")
feeders

# %% [markdown]
# ## 5. Head classes, each with a score
#
# The paper names heads by what they attend to and what they write. Each class gets a number here,
# measured on the same prompts (attention averaged over prompts) or on random tokens (`helpers.heads`):
#
# | class | score |
# |---|---|
# | name mover | attention END → IO; OV copy score (a name, after layer 0, through the head's W_V W_O and the unembedding, is the top name); how much the IO logit falls when the head is mean-ablated |
# | negative name mover | negative DLA; attention END → IO; negative copy score |
# | S-inhibition | attention END → S2; its path into name movers' queries |
# | duplicate-token | attention S2 → S1; on repeated random tokens (`heads.duplicate_token_scores`) |
# | (none: the name at S2 itself) | attention S2 → S2 |
# | induction | attention S2 → S1+1; `heads.induction_scores` |
# | previous-token | `heads.previous_token_scores` |

# %%
P = enc.positions
name_ids = torch.tensor(tasks.single_token_ids(model, [" " + n for n in ioi.NAMES]))
bos = model.tokenizer.bos_token_id
score = {
    "END→IO": circuits.attention_scores(model, clean_tokens, END, P["IO"]),
    "END→S1": circuits.attention_scores(model, clean_tokens, END, P["S1"]),
    "END→S2": circuits.attention_scores(model, clean_tokens, END, P["S2"]),
    "S2→S1": circuits.attention_scores(model, clean_tokens, P["S2"], P["S1"]),
    "S2→S1+1": circuits.attention_scores(model, clean_tokens, P["S2"], P["S1"] + 1),
    "S2→S2": circuits.attention_scores(model, clean_tokens, P["S2"], P["S2"]),
    "copy": circuits.copy_scores(model, name_ids, top_k=1, within=True),
    "neg. copy": circuits.copy_scores(model, name_ids, top_k=1, within=True, negative=True),
    "dup-token (random)": heads.duplicate_token_scores(model, half=20, batch=16, bos=bos),
    "induction (random)": heads.induction_scores(model, half=20, batch=16, bos=bos),
    "prev-token (random)": heads.previous_token_scores(model, batch=16, bos=bos),
}
mean_abc = patching.mean_activations(patching.cache_activations(model, abc_tokens, circuits.z_hooks(model)))
rows_ = torch.arange(len(END))
score["knockout: IO logit"] = circuits.knockout_effects(model, clean_tokens, mean_abc,
                                                        patching.answer_logit_metric(enc.answers), END)
carriers = [h for h in all_heads if -score["knockout: IO logit"][h] >= CARRIER_MIN]
score_table = pd.DataFrame({k: v.flatten().tolist() for k, v in score.items()},
                           index=[head_name(h) for h in all_heads])
score_table.insert(0, "DLA", dla.flatten().tolist())
score_table.insert(1, "to logits", direct_effect.flatten().tolist())
chance = 1 / len(name_ids)
print(f"chance level of the copy scores: {chance:.3f}; heads whose knockout lowers the IO logit by >= "
      f"{CARRIER_MIN:.0%}: {', '.join(map(head_name, carriers)) or 'none'}")
score_table.round(2).style.background_gradient(cmap="Blues", axis=0)

# %% [markdown]
# Classify the heads the path patching found (and those whose knockout lowers the IO logit), by the rule
# the paper uses in words: a direct head that
# attends END → IO and raises IO is a name mover; one that lowers IO − S is a negative name mover; one that
# attends END → S2 and raises IO − S suppresses S instead of copying IO. A head that feeds a direct head
# is named by where it looks from S2 (back to S1: duplicate-token; to S1+1: induction) or from END
# (to S2: S-inhibition), or as a previous-token head.

# %%
circuit = circuits.classify_heads(score_table, direct_heads, feeders, carriers)
circuit_heads = list(circuit)
pd.DataFrame({"class": [c for c, _ in circuit.values()], "why": [w for _, w in circuit.values()]},
             index=[head_name(h) for h in circuit])

# %% [markdown]
# A feeder gets the class of its largest score even when every score is near zero, so look at the scores
# themselves: where the heads that feed the S-heads look from S2, whether they detect a repeat on random
# tokens, and whether the name movers (found by knockout) prefer IO to S1.

# %%
feeder_names = list(dict.fromkeys(feeders.sender)) if not feeders.empty else []
movers = [h for h in circuit_heads if circuit[h][0] == "name mover"]
io_pref = score["END→IO"] - score["END→S1"]
pref_head = circuits.top_heads(io_pref, 1)[0]
print(f"largest END→IO − END→S1 of any head: {io_pref[pref_head].item():+.3f} ({head_name(pref_head)})")
display(score_table.loc[feeder_names, ["S2→S2", "S2→S1", "S2→S1+1", "dup-token (random)", "induction (random)",
                                       "prev-token (random)"]].round(3))
score_table.loc[[head_name(h) for h in movers], ["END→IO", "END→S1", "END→S2", "copy", "induction (random)",
                                                  "knockout: IO logit"]].round(3)

# %%
if IS_ORGANISM:
    repeat_scores = score_table.loc[feeder_names, ["dup-token (random)", "induction (random)"]]
    assert feeder_names and score_table.loc[feeder_names, "S2→S2"].min() > M["FEEDER_SELF_MIN"], \
        "the heads that feed the S-heads attend from S2 to S2 itself"
    assert repeat_scores.max().max() < M["FEEDER_REPEAT_MAX"], "... and none of them detects a repeat"
    assert movers and max(abs(io_pref[h].item()) for h in movers) < M["MOVER_CHOICE_MAX"], \
        "the name movers attend IO and S1 alike: they do not choose IO"

# %% [markdown]
# ### 5.1 Does the circuit use the repetition, or the last name?
#
# GPT-2's S-inhibition heads act because S occurs twice: duplicate-token and induction heads mark S2 as a
# repeat. A model trained on frames where S2 is always the last name before the end could instead learn
# *suppress the last name*. Two behavioural tests tell them apart, each with the S-heads' attention beside it:
#
# * **ABC** (`batch.corrupted`): S2 replaced by a fourth name, so that no name is repeated. A circuit that
#   uses the repetition loses the logit difference IO − S (IO and S are then alike); attention to the
#   position of S2 that stays as high shows a head that looks for a *position*, not a repeat. The last
#   three columns say how the logits of IO, S and D (the new name in the slot, absent from the clean
#   prompt) move from each clean prompt to its ABC twin.
# * **A third name after S2** (`rules={"distractor": "after_s2"}`: *"John, a friend of Kate, gave a drink
#   to"*): the last name before the end is now C, seen once. A last-name circuit attends C and pushes it
#   down; a circuit that tracks S attends S2. The logits alone cannot settle this (a name that no head
#   copies stays low whether or not it is suppressed, so "S below C" is shown but not decisive); the
#   S-heads' attention does, beside the behaviour: does the model still answer IO?

# %%
def add_third_name(b: tasks.PromptBatch) -> tasks.PromptBatch:
    """Give each prompt the span of its third name C (after S2), so that ``encode`` finds its position."""
    for text, spans, meta in zip(b.texts, b.spans, b.meta):
        spans["C"] = tasks.span_of(text, meta["C"], spans["S2"][1])
    return b


def name_logits(tokens: torch.Tensor, e, *ids: torch.Tensor) -> torch.Tensor:
    """logit(IO), logit(S) and logit(each of ``ids``, e.g. D or C) at END, per prompt -> [B, 2 + len(ids)]."""
    lg = patching.logits_at(model, tokens, e.end)
    rows = torch.arange(len(lg))
    return torch.stack([lg[rows, e.answers], lg[rows, e.distractors]] + [lg[rows, i] for i in ids], -1)


def meta_ids(b: tasks.PromptBatch, key: str) -> torch.Tensor:
    """The token of each prompt's name ``key`` (``"C"``: the third name; ``"D"``: the name ABC puts at S2)."""
    return torch.tensor(tasks.single_token_ids(model, [" " + m[key] for m in b.meta]))


third = add_third_name(ioi.generate(2 * N_PROMPTS, SPLIT, seed=SEED, rules={"distractor": "after_s2"}, tokenizer=model))
t_enc = third.encode(model)
mixed_enc = mixed.encode(model)
rep_rows = {}  # per condition: IO − S, C − S, S below C, IO top; ABC rows: how IO's, S's and D's logits moved
for label, b, e in [("one template", batch, enc), ("all held-out structures", mixed, mixed_enc),
                    ("third name after S2", third, t_enc)]:
    ids = [meta_ids(b, "D")] + ([meta_ids(b, "C")] if b is third else [])  # x[:, 2] = D, x[:, 3] = C
    x0, x1 = name_logits(e.tokens, e, *ids), name_logits(e.corrupted, e, *ids)
    for kind, x in [("clean", x0), ("ABC", x1)]:
        rep_rows[f"{label}: {kind}"] = [
            (x[:, 0] - x[:, 1]).mean().item(),
            (x[:, 3] - x[:, 1]).mean().item() if b is third else None,
            (x[:, 1] < x[:, 3]).float().mean().item() if b is third else None,
            (x[:, [0, 1] + ([3] if b is third else [])].argmax(-1) == 0).float().mean().item()
            if kind == "clean" or b is third else None,
            *([None] * 3 if kind == "clean" else (x1[:, :3] - x0[:, :3]).mean(0).tolist())]
rep_table = pd.DataFrame.from_dict(rep_rows, orient="index",
                                   columns=["logit(IO) − logit(S)", "logit(C) − logit(S)", "S below C",
                                            "IO top (of IO, S, C)", "Δ logit(IO), ABC − clean",
                                            "Δ logit(S), ABC − clean", "Δ logit(D), ABC − clean"])
abc_delta_io, abc_delta_s, abc_delta_d = rep_rows["all held-out structures: ABC"][4:7]
third_ld, third_c_s = rep_rows["third name after S2: clean"][0], rep_rows["third name after S2: clean"][1]
third_s_below_c = rep_rows["third name after S2: clean"][2]
print(third.texts[0], "->", third.answers[0])
rep_table.round(3)

# %% [markdown]
# And where the S-heads look (mean attention from END, over the same prompts; "ABC" columns: the position
# that held S2, now a name seen once):

# %%
s_heads = ([h for h in circuit if circuit[h][0] == "S-suppression"]  # the direct heads that attend S2
           or [h for h in circuit if circuit[h][0] == "S-inhibition"]  # else (GPT-2) the S-inhibition feeders
           or [max(circuit_heads, key=lambda h: score["END→S2"][h].item())])  # else the head attending S2 most
abc_attn_s2 = circuits.attention_scores(model, abc_tokens, END, P["S2"])
tp = t_enc.positions
t_attn = {k: circuits.attention_scores(model, t_enc.tokens, t_enc.end, tp[k]) for k in ("IO", "S1", "S2", "C")}
t_attn_abc = {k: circuits.attention_scores(model, t_enc.corrupted, t_enc.end, tp[k]) for k in ("S2", "C")}
attn_table = pd.DataFrame({
    "END→IO": [score["END→IO"][h].item() for h in s_heads],
    "END→S1": [score["END→S1"][h].item() for h in s_heads],
    "END→S2": [score["END→S2"][h].item() for h in s_heads],
    "ABC: END→S2 position": [abc_attn_s2[h].item() for h in s_heads],
    "third name: END→S2": [t_attn["S2"][h].item() for h in s_heads],
    "third name: END→C": [t_attn["C"][h].item() for h in s_heads],
    "third name, ABC: END→S2 position": [t_attn_abc["S2"][h].item() for h in s_heads],
    "third name, ABC: END→C": [t_attn_abc["C"][h].item() for h in s_heads],
}, index=[f"{head_name(h)} ({circuit[h][0]})" for h in s_heads])
s_main = max(s_heads, key=lambda h: abs(direct_effect[h].item()))  # the S-head with the strongest path
s2_vs_c = t_attn["S2"][s_main].item() - t_attn["C"][s_main].item()
abc_drop = score["END→S2"][s_main].item() - abc_attn_s2[s_main].item()
attn_table.round(3)

# %% [markdown]
# How to read the two tables: if the S-heads looked for *the last name*, "third name: END→C" would be high
# and the model would stop answering IO on those prompts; if they looked only for *a repeated name*, the
# "ABC" columns would fall to near zero.
#
# **What the organism does: it suppresses the name in the final clause's subject slot, repeated or not**
# (three prompt sets, `book/measured/ch04.json`):
#
# * **Attention does not depend on the repetition.** The S-heads (three or four: L2H4, L2H5 and L3H1 on every
#   prompt set, L3H2 on two) give the S2 slot 0.69–0.99 of their attention from END on clean prompts; on ABC
#   prompts, where the name in that slot is seen once, none of them loses more than 0.05 of it (the main
#   S-head, L2H5: 0.96–0.99 clean, 0.95–0.98 ABC). Nor do their inputs detect the repeat: the two heads that
#   feed them attend from S2 to S2 itself (section 5, above).
# * **The logit difference does.** Without the repetition it is gone: 9.9–11.2 on clean prompts of all
#   held-out structures, +0.01 to +0.35 on their ABC twins (on the one template of each prompt set: 9.7–10.2
#   against +0.17 to +0.74). S's logit rises by 5.5–6.1 and IO's falls by 4.3–4.8, so the two meet; D, the
#   new name ABC puts in the slot, ends 7.7–8.5 logits *below* where it stands on the clean prompt, where it
#   does not occur at all: the heads now push D down instead of S. (IO's fall says that something on the
#   clean prompts also raises IO; this chapter does not trace what, nor whether it reads the repetition.)
# * **Not the last name.** With a third name C after S2, the S-heads give C at most 0.007 of their attention
#   and the main one keeps 0.98 on S2; the model still answers IO (logit difference 10.8–11.3, IO the first
#   of the three names on 99–100% of prompts). The logits of S and C end close, and settle nothing (see
#   above): C is 0.2–0.8 below S on average, and S below C on 42–48% of prompts. The organism before its
#   retraining with random words put S 0.5–1.2 *below* C, with the same attention: that comparison flipped
#   sign, the S-heads' attention did not.
#
# In this grammar the final clause's subject is always the repeated name, so "suppress the subject of the
# final clause" and "suppress the repeated name" agree on every prompt the organism was trained or tested
# on; ABC is where they part, and there the organism follows the slot. As far as its S-heads go, the
# circuit depends on the repetition only in that the right answer does.

# %%
if IS_ORGANISM:
    assert third_ld > M["THIRD_LD_MIN"], "a third name after S2 does not stop the model from answering IO"
    assert s2_vs_c > M["S2_OVER_C_MIN"], "the main S-head attends the repeated name S2, not the last name C"
    assert abc_attn_s2[s_main] > M["SLOT_ABC_MIN"], "... and still attends that slot when the name there is new (ABC)"
    assert max(score["END→S2"][h].item() - abc_attn_s2[h].item() for h in s_heads) < M["SLOT_DROP_MAX"], \
        "no S-head's attention to the slot depends on the repetition"
    assert abc_delta_d < M["SLOT_NAME_MAX"], "on ABC prompts the new name in the slot is pushed down"

# %% [markdown]
# The attention of the circuit's heads on one prompt (hover over the tokens):

# %%
if circuit_heads:
    pattern = torch.stack([clean_cache[f"blocks.{i}.attn.hook_pattern"][0, j] for i, j in circuit_heads])
    display(plots.attention_heads(pattern, str_tokens, head_names=[head_name(h) for h in circuit_heads]))
else:
    print("no circuit heads found at these thresholds")

# %% [markdown]
# ## 6. Knockouts: is there a backup, and does dropout make one?
#
# In GPT-2 small, ablating the name movers makes other heads (10.10, 10.6, …) start doing their job:
# *backup name movers*. Seed 002 asks whether they exist because of **dropout**: a model trained with
# dropout has learnt to survive losing a head. `organism-dropout` is the organism's twin, trained by the
# same recipe with GPT-2's dropout (0.1 on attention, residual and embeddings), so the question can be put
# to two models that differ in dropout only. The measurement is the same on both (`backup_effect`): find
# the direct heads by path patching to the logits, keep those that raise IO − S (positive DLA: the heads
# that write the answer, the name movers' place in GPT-2), mean-ablate them (over the ABC prompts) and
# recompute every other head's DLA. *Compensation* is the other heads' total DLA change as a fraction of the
# DLA the knocked-out heads lost; a *backup head* is one whose own DLA rises by more than
# `BACKUP_MIN` (10%) of that lost DLA. Both are fractions of the lost DLA, not of the clean logit difference,
# so that a model that barely separates IO from S (a clean logit difference near zero) is not credited with
# backup heads for rises of a few hundredths of a logit. The twin's accuracy and logit difference are
# printed beside its knockout, since a knockout says little about a model that does not do the task.

# %%
def backup_effect(m, e) -> dict:
    """Knock out ``m``'s answer-writing heads on the encoded batch ``e``; how much do the other heads' DLA rise?"""
    Lm, Hm = m.cfg.n_layers, m.cfg.n_heads
    met = patching.logit_diff_metric(e.answers, e.distractors)
    clean = met(patching.logits_at(m, e.tokens, e.end)[None]).item()
    fc = circuits.find_circuit(m, e.tokens, e.corrupted, met, e.end, DIRECT_MIN, FEEDER_MIN, depth=1)
    _, cache = m.run_with_cache(e.tokens)
    dirn = lens.logit_diff_direction(m, e.answers, e.distractors)
    before = lens.direct_logit_attribution(m, cache, e.end, dirn).mean(-1).detach()
    movers = [h for h in fc.direct_heads if before[h] > 0]  # the heads that write the answer (raise IO − S)
    mean = patching.mean_activations(patching.cache_activations(m, e.corrupted, circuits.z_hooks(m)))
    variant = circuits.heads_variant(m, movers)
    hooks = circuits.z_hooks(m) + [f"blocks.{Lm - 1}.hook_resid_post"]
    after = lens.direct_logit_attribution(m, circuits.cache_with_patch(m, e.tokens, hooks, variant, mean), e.end,
                                          dirn).mean(-1).detach()
    ko = patching.patch_sweep(m, e.tokens, mean, [variant], met, e.end).item()
    correct = (patching.logit_diff_metric(e.answers, e.distractors, reduce=False)(
        patching.logits_at(m, e.tokens, e.end)[None]) > 0).float().mean().item()
    rise = after - before
    for h in movers:
        rise[h] = 0.0
    lost = sum(before[h].item() - after[h].item() for h in movers)
    top = circuits.top_heads(rise, 1)[0]
    return {"accuracy (IO above S)": correct, "clean logit diff": clean,
            "direct heads": ", ".join(map(head_name, fc.direct_heads)),
            "knocked out (answer writers)": ", ".join(map(head_name, movers)),
            "logit diff after knockout": ko, "their DLA lost": lost,
            "other heads' DLA rise (sum)": rise.sum().item(), "compensation": rise.sum().item() / lost,
            "largest rise": f"{head_name(top)} {rise[top].item():+.3f}", "largest rise (logits)": rise.max().item(),
            "largest rise / DLA lost": rise.max().item() / lost,
            "backup heads": ", ".join(head_name((i, j)) for i in range(Lm) for j in range(Hm)
                                      if rise[i, j] > M["BACKUP_MIN"] * lost) or "none",
            "_rise": rise}


twin = helpers.load_model_if_available("organism-dropout") if IS_ORGANISM else None
twin_sha = None if twin is None else loading.sha256_file(
    os.path.join(loading.resolve("organism-dropout")[1], "model.safetensors"))[:12]  # which twin was measured
backups = {MODEL: {"held-out accuracy (all structures)": clean_eval["accuracy"],
                   "held-out logit diff (all structures)": clean_eval["logit_diff"], **backup_effect(model, enc)}}
if twin is not None:
    twin_eval = evaluate_batch(twin, mixed)  # the same held-out prompts as section 1
    backups["organism-dropout"] = {"held-out accuracy (all structures)": twin_eval["accuracy"],
                                   "held-out logit diff (all structures)": twin_eval["logit_diff"],
                                   **backup_effect(twin, batch.encode(twin))}
else:
    print("organism-dropout is not available here: only this model is measured")
axes = plots.grid(len(backups), ncols=len(backups), size=4.2)
for ax, (name, b) in zip(axes, backups.items()):
    plots.heatmap(b["_rise"], title=f"{name}: DLA change, answer writers knocked out", xlabel="head",
                  ylabel="layer", cmap="RdBu", center=True, ax=ax, **HEAD_TICKS)
plt.tight_layout()
plt.show()
backup_table = pd.DataFrame({k: {c: v for c, v in b.items() if not c.startswith("_")} for k, b in backups.items()})
ours = backups[MODEL]
backup = [] if ours["backup heads"] == "none" else ours["backup heads"].split(", ")
for k, b in backups.items():
    print(f"{k}: IO above S on {b['held-out accuracy (all structures)']:.0%} of all held-out prompts and "
          f"{b['accuracy (IO above S)']:.0%} of this template's; logit diff "
          f"{b['clean logit diff']:.2f} -> {b['logit diff after knockout']:.2f} without "
          f"{b['knocked out (answer writers)']}; the other heads make up {b['compensation']:.1%} of the "
          f"{b['their DLA lost']:.2f} logits of DLA lost; largest single rise {b['largest rise']} logits "
          f"({b['largest rise / DLA lost']:.1%} of the DLA lost); backup heads: {b['backup heads']}")
backup_table

# %% [markdown]
# The same measurement on every measured prompt set (ranges over the runs of `book/measured/ch04.json`,
# written by `scripts/measure.py`; the twin's column is re-read whenever the chapter is re-measured):

# %%
runs = pd.DataFrame(M["runs"])


SIDE = [("IO above S, all held-out structures", "accuracy", "{:.0%}"),
        ("logit diff, all held-out structures", "logit_diff", "{:.1f}"),
        ("IO above S, the prompt set's template", "template_accuracy", "{:.0%}"),
        ("logit diff, the template", "template_ld", "{:.1f}"),
        ("answer writers knocked out", "movers", ""),
        ("logit diff after the knockout", "ko_ld", "{:.2f}"),
        ("compensation (share of the lost DLA)", "compensation", "{:.1%}"),
        ("largest single rise (logits)", "max_rise", "{:.3f}"),
        ("largest single rise / lost DLA", "max_rise_lost", "{:.1%}"),
        ("backup heads (count)", "n_backup", "{:.0f}")]
if twin_sha is not None and "dropout_sha256" in runs and twin_sha not in set(runs["dropout_sha256"]):
    print(f"note: the twin on disk ({twin_sha}) is not the one measured ({M.span('dropout_sha256')}): "
          "re-run `python scripts/measure.py 04`")
pd.DataFrame({name: {row: M.span(pre + col, f) for row, col, f in SIDE}
              for name, pre in [("organism", ""), ("organism-dropout", "dropout_")]})

# %% [markdown]
# **Neither model has a backup head, and the one trained with dropout compensates less.** Knocking out the
# organism's answer writers leaves a little for the other heads: they make up 0.7–4.0% of the DLA lost, and the
# largest single rise (L3H2 or L1H2, 0.10–0.30 logits) is 1.8–5.1% of it, well under the 10% a backup head
# needs. The twin, measured the same way on the same prompts, has its own answer writers (L2H0, L2H4, L2H5, L3H4,
# and L3H7 on one prompt set) and even less behind them: its other heads' DLA falls in total (−1.3% to −0.1%
# of the DLA lost) and its largest single rise, 0.008–0.027 logits (0.1–0.6%), is about a tenth of the
# organism's on every prompt set. Seed 002's guess, that dropout is what makes backup heads, is not borne out
# at this size: the model trained with dropout is the one whose other heads take over less.

# %%
if IS_ORGANISM:
    assert not backup, "no backup heads (measured)"
    assert ours["largest rise / DLA lost"] > M["RISE_MIN"], "... but the organism's other heads rise a little"
    if "organism-dropout" in backups:  # the twin, measured the same way
        tw = backups["organism-dropout"]
        assert tw["backup heads"] == "none", "dropout did not make backup heads (measured)"
        assert tw["largest rise / DLA lost"] < M["DROPOUT_RISE_MAX"] < M["RISE_MIN"], \
            "the dropout twin's other heads rise less than the organism's (ranges apart over the prompt sets)"


# %% [markdown]
# ## 7. Faithfulness, completeness, minimality
#
# Keep the circuit's heads, replace every other head's output by its mean over the ABC prompts (per
# position: one template), and compare the logit difference F(C) with the whole model's F(M). Because a
# logit *difference* can be kept by pushing S down without pushing IO up, we also report **top-1
# accuracy** (IO is the model's first choice) under the same ablations. We score two circuits: the heads
# found by ABC path patching alone, and those plus the heads whose knockout lowers the IO logit.
# *Completeness*: for subsets K of the circuit, removing K from the circuit and from the whole model
# should hurt alike, |F(C∖K) − F(M∖K)| small. *Minimality*: each head v of the circuit matters,
# |F(C∖{v}) − F(C)| large for some K (here K = {v}, on either metric). All these ablations are variants
# of one batched sweep.

# %%
def both(logits):  # [K, B, V] -> [K, 2]: logit difference, top-1 accuracy
    top1 = (logits[:, rows_, enc.answers] >= logits.max(-1).values).float().mean(-1)
    return torch.stack([metric(logits), top1], -1)


abc_circuit = [h for h in circuit_heads if h in direct_heads or head_name(h) in set(feeders.sender)]
groups = {cls: [h for h in circuit_heads if circuit[h][0] == cls] for cls in sorted({c for c, _ in circuit.values()})}
groups.update({head_name(h): [h] for h in circuit_heads})
variants = [[], circuits.complement_variant(model, circuit_heads), circuits.complement_variant(model, abc_circuit),
            circuits.complement_variant(model, [])]
names = ["F(M)", "F(C)", "F(C_ABC)", "F(empty)"]
for k, K in groups.items():
    variants += [circuits.complement_variant(model, [h for h in circuit_heads if h not in K]),
                 circuits.heads_variant(model, K)]
    names += [f"F(C∖{k})", f"F(M∖{k})"]
out = patching.patch_sweep(model, clean_tokens, mean_abc, variants, both, END)
ld, top1 = dict(zip(names, out[:, 0].tolist())), dict(zip(names, out[:, 1].tolist()))
F_M, F_C = ld["F(M)"], ld["F(C)"]
faithfulness, faith_abc = F_C / F_M, ld["F(C_ABC)"] / F_M
faith_table = pd.DataFrame({"heads": [L * H, len(circuit_heads), len(abc_circuit), 0],
                            "logit diff": [ld[n] for n in names[:4]], "share of F(M)": [ld[n] / F_M for n in names[:4]],
                            "top-1 accuracy": [top1[n] for n in names[:4]]},
                           index=["whole model", "circuit", "ABC-path-patching heads only", "nothing"])
rows = [[k, ld[f"F(C∖{k})"], ld[f"F(M∖{k})"], abs(ld[f"F(C∖{k})"] - ld[f"F(M∖{k})"]) / F_M,
         abs(F_C - ld[f"F(C∖{k})"]) / F_C, abs(top1["F(C)"] - top1[f"F(C∖{k})"])] for k in groups]
crit = pd.DataFrame(rows, columns=["K", "F(C∖K)", "F(M∖K)", "incompleteness / F(M)", "Δ logit diff / F(C)",
                                   "Δ top-1"])
crit["minimality"] = crit[["Δ logit diff / F(C)", "Δ top-1"]].max(axis=1)
singles = crit[crit.K.isin([head_name(h) for h in circuit_heads])].set_index("K").minimality  # one head each
least = singles.idxmin()  # the least needed circuit head
single_drop = singles[least]
pp_singles = singles[[head_name(h) for h in abc_circuit]]  # ... of the heads path patching found
pp_drop = pp_singles.min()
print(f"whole model: logit diff {F_M:.2f}, top-1 {top1['F(M)']:.0%}; circuit alone: {faithfulness:.0%} of the "
      f"logit difference, top-1 {top1['F(C)']:.0%}; ABC-found heads alone: {faith_abc:.0%}, top-1 "
      f"{top1['F(C_ABC)']:.0%}; least needed circuit head: {least}, minimality {single_drop:.3f}; least needed "
      f"of the heads path patching found: {pp_singles.idxmin()}, {pp_drop:.3f}")
display(faith_table.round(3))
crit.round(3)

# %%
if IS_ORGANISM:
    main = circuits.top_heads(direct_effect.abs(), 1)[0]
    s_direct = [h for h in direct_heads if circuit[h][0] == "S-suppression"]
    assert len(s_direct) >= M["S_HEADS_MIN"] and len({h[0] for h in s_direct}) >= 2, \
        "several S-suppression heads, in more than one layer, write the answer"
    assert -direct_effect[main] > M["DIRECT_MAIN_MIN"] and -direct_no_mlp[main] > M["NO_MLP_MIN"], \
        "the strongest S-head carries a large share of the logit difference, a good part of it by itself"
    # not asserted: how many heads the knockout finds (4 to 7 over the prompt sets; section 5 names them)
    assert faithfulness > M["FAITH_LO"] and top1["F(C)"] > M["TOP1_MIN"], "the circuit alone keeps the logit difference"
    assert ld["F(C_ABC)"] / F_M > M["ABC_FAITH_MIN"] and top1["F(C_ABC)"] < M["ABC_TOP1_MAX"], \
        "the ABC heads alone keep the logit difference but not the answer"
    assert top1["F(C)"] - top1["F(C_ABC)"] > M["TOP1_GAIN_MIN"], "the heads found by knockout bring top-1 back"
    # removed: "every circuit head matters" (single_drop > MINIMAL_MIN). Over the retrained organism's prompt sets
    # the least needed head changes the circuit by 0.006-0.078, so the threshold fell to 0.004: it tested nothing.
    assert pp_drop > M["MINIMAL_PP_MIN"], "every head path patching found matters (minimality, on either metric)"
    assert crit["incompleteness / F(M)"].max() > M["INCOMPLETE_MIN"], "the circuit is not complete (measured)"

# %% [markdown]
# ## 8. The circuit
#
# Nodes are the circuit's heads by layer, coloured by class; an arrow is a path that path patching found,
# labelled with the receiver's input (q, k, v) and the fraction of the logit difference it carries, or (for
# the heads found by knockout) the fraction of the IO logit lost without the head. Paths to the logits
# include the MLPs after the head.

# %%
edges = [(head_name(s), "logits", f"{direct_effect[s].item():+.2f}") for s in direct_heads]
edges += [(head_name(s), head_name(r), f"{inp} {c:+.2f}") for (s, rs, inp), c in feeds.items() if abs(c) >= FEEDER_MIN
          for r in rs]
edges += [(head_name(h), "logits", f"IO {score['knockout: IO logit'][h].item():+.2f}") for h in carriers
          if h not in direct_heads]
plots.circuit_diagram({head_name(h): (h[0], c) for h, (c, _) in circuit.items()}, edges, n_layers=L)
plt.show()

# %% [markdown]
# **What the organism does** (figures of the shipped organism over three prompt sets, each on its own
# held-out template; table in section 10).
#
# * **Three or four S-suppression heads in layers 2–3** (L2H4, L2H5 and L3H1 on every prompt set, L3H2 on two
#   of the three) attend from END to S2 (0.69–0.99 of their attention) and push S down; they are the heads that
#   write IO − S (the answer writers of section 6). The strongest, L2H5, carries 39–54% of the logit difference
#   along its path to the logits, about half of it written by the head itself (MLPs frozen: 22–28%). They work
#   like GPT-2's negative name movers, copy suppression (L3H1 and L2H5 have the model's largest negative copy
#   scores, 0.62 and 0.60; chance 0.025), aimed at S; so they do the job of GPT-2's S-inhibition heads and of
#   the name movers' choice in one step.
# * **They find the final clause's subject, not a repeat and not the last name** (section 5.1). Their
#   attention to the S2 slot hardly moves when the name there is new (ABC: no S-head loses more than 0.05
#   of it); the logit difference goes with the repetition (9.9–11.2 → +0.01 to +0.35 over all held-out
#   structures) because they then push down the new name instead of S; a third name after S2 gets at most
#   0.007 of their attention, and IO stays the model's choice of the three on 99–100% of those prompts.
# * **Upstream, no repetition detector.** Two layer-0 heads, L0H3 and L0H7, feed the S-heads' values on
#   every prompt set (L0H3 the most). Both attend from S2 to S2 itself (0.95 or more), and neither has a
#   duplicate-token or induction score above 0.001 on random tokens: they pass on *which name* sits at S2, not
#   that it is a repeat. Their labels in the class table (previous-token for L0H3, the largest of scores near
#   zero; S-inhibition for L0H7, which gives S2 about 0.2 of its attention from END) are not the paper's
#   classes: they act through the S-heads' values at S2. Path patching finds no induction or duplicate-token
#   head feeding the S-heads, though layer 1 is full of induction heads (the score table above).
# * **Name movers that do not choose.** Knocking a head out lowers the IO logit by 3% or more for four to
#   seven heads. Three or four of them on each prompt set, among L1H0, L1H2, L1H5 and L1H6 (all induction heads
#   on random tokens), attend the names from END, copy the name they attend (OV copy scores 0.80–0.98), and
#   their knockouts lower the IO logit by 3–12%; but each gives IO and S1 nearly the same attention (they differ
#   by at most 0.06, either way), and the largest preference for IO over S1 of any head in the model is
#   0.02–0.06 of its attention. The names reach END unsorted, and the choice is made by suppressing S. ABC
#   patching cannot see these heads, because they act the same on ABC prompts. The class rule also calls L2H1
#   a name mover on two prompt sets (its knockout lowers the IO logit by 4–8%), but it attends no name from
#   END (0.00 to IO and to S1, so END→IO ≥ END→S2 holds at zero) and copies none (copy score 0.05): its
#   knockout effect has no role this chapter can name, and section 7 finds the circuit does not need it.
# * **Faithful in logit difference, less so in the answer.** The circuit alone (10 of 32 heads on every prompt
#   set, the rest mean-ablated) keeps 93–100% of the logit difference, but IO is its top-1 token on 55–91% of
#   prompts, against 83–98% for the whole model. The heads path patching finds alone keep 101–120% of the
#   logit difference and only 3–13% top-1: they push S down, but without the name movers, which only the
#   knockout finds, IO is rarely the top token; the heads the knockout adds bring 52–86 points back. A logit-difference
#   faithfulness score would call the ABC-found heads the whole circuit. Removing subsets from circuit and
#   model hurts them differently (incompleteness up to 7–13% of F(M), depending on the prompt set).
# * **Not minimal.** Every head path patching finds is needed: removing the least needed of them changes the
#   circuit's logit difference or its top-1 accuracy by 9–12%. The heads added by knockout are another matter:
#   on the two prompt sets that include L2H1, removing it changes the circuit's logit difference by under 1%
#   and its top-1 by at most one prompt in 64 (minimality 0.006–0.016); on the third, the least needed head,
#   L1H5, still moves top-1 by 8%. The assert that every circuit head matters would now rest on a threshold of
#   0.004, which tests nothing, so section 7 asserts it of the heads path patching found only.
# * **No backup, and dropout makes less compensation, not more** (section 6). Knocking out the organism's
#   answer writers (its S-heads) takes the logit difference from 9.7–10.2 to between −0.09 and +1.90; the other
#   heads make up 0.7–4.0% of the DLA lost, and no single head's DLA rises by more than 0.30 logits, 1.8–5.1%
#   of the DLA lost (a backup head would need 10%). The dropout twin, measured the same way on the same prompts,
#   has no backup head either, and less compensation: without its answer writers its logit difference goes
#   from 6.9–8.4 to between −0.37 and +0.71, its other heads' DLA falls in total, and its largest single rise
#   (0.1–0.6% of the DLA lost) is about a tenth of the organism's. Seed 002's guess that dropout makes backup
#   heads is not borne out at this size.
#
# ## 9. GPT-2 small (online only)
#
# With the hub reachable, set `MODEL = "gpt2-small"` to run this whole chapter on the paper's model;
# this cell only compares the direct heads found by path patching with the published name movers
# (the full run takes several minutes on a CPU). Offline it says so.

# %%
PUBLISHED = {"name mover": [(9, 9), (9, 6), (10, 0)], "negative name mover": [(10, 7), (11, 10)],
             "S-inhibition": [(7, 3), (7, 9), (8, 6), (8, 10)], "induction": [(5, 5), (5, 8), (5, 9), (6, 9)],
             "duplicate-token": [(0, 1), (0, 10), (3, 0)], "previous-token": [(2, 2), (4, 11)]}
gpt2_summary = "not run here (offline)"
gpt2 = model if MODEL == GPT2_MODEL else helpers.load_model_if_available(GPT2_MODEL)
if gpt2 is not None:
    g = tasks.make("ioi", 16, "all", seed=SEED, templates=[template], tokenizer=gpt2).encode(gpt2)
    g_metric = patching.logit_diff_metric(g.answers, g.distractors)
    g_clean = g_metric(patching.logits_at(gpt2, g.tokens, g.end)[None]).item()
    g_heads = [(i, j) for i in range(gpt2.cfg.n_layers) for j in range(gpt2.cfg.n_heads)]
    g_out = circuits.path_patch(gpt2, g.tokens, g.corrupted, [[h] for h in g_heads], g_metric, g.end, progress=True)
    g_eff = ((g_out - g_clean) / g_clean).view(gpt2.cfg.n_layers, gpt2.cfg.n_heads)
    found = circuits.top_heads(g_eff.abs(), 6)
    known = {h: c for c, hs in PUBLISHED.items() for h in hs}
    gpt2_summary = "; ".join(f"{head_name(h)} {g_eff[h].item():+.2f} ({known.get(h, 'not in the published list')})"
                             for h in found)
print(gpt2_summary)

# %% [markdown]
# ## 10. What holds, and what differs
#
# Measured thresholds (the asserts above) come from `scripts/measure.py`, which runs this notebook
# on several prompt sets (seeds of the prompts) of the shipped organism; its output:
#
# Shipped organism (`organism`, training seed 0), three prompt sets (SEED:TEMPLATE 0:0, 1:1, 2:2;
# `python scripts/measure.py 04`, which writes `book/measured/ch04.json`):

# %%
display(pd.DataFrame(M["runs"]))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
pd.set_option("display.max_colwidth", None)
classes = {c: [head_name(h) for h in circuit if circuit[h][0] == c] for c in {c for c, _ in circuit.values()}}
negatives = [h for h in circuit if circuit[h][0] == "negative name mover"]
pd.DataFrame([
    ["The model solves IOI; ABC corruption removes the logit difference",
     "Wang et al.: logit diff 3.56, IO > S in 99% of prompts", "GPT-2 small (published)",
     (f"IO above S on {clean_eval['accuracy']:.0%}, logit diff {clean_eval['logit_diff']:.2f} "
      f"(ABC {abc_eval['logit_diff']:.2f})")],
    ["A circuit of heads in classes", "26 heads in 7 classes", "published",
     f"{len(circuit_heads)} heads: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(classes.items()))],
    ["Name movers attend END→IO (not S) and copy the name (OV)", "9.9, 9.6, 10.0",
     "published; online: " + gpt2_summary,
     "; ".join(f"{head_name(h)}: END→IO {score['END→IO'][h].item():.2f}, "
               f"END→S1 {score['END→S1'][h].item():.2f}, "
               f"copy score {score['copy'][h].item():.2f} (chance {chance:.3f})" for h in movers)
     + " (found by knockout)" if movers else "none"],
    ["Negative name movers write against the answer", "10.7, 11.10", "published",
     "; ".join(f"{head_name(h)}: DLA {dla[h].item():+.2f}, path to the logits {direct_effect[h].item():+.2f}"
               for h in negatives) or "none found by path patching"],
    ["S-inhibition heads move 'S is repeated' to END; induction and duplicate-token heads detect the repeat",
     "7.3, 7.9, 8.6, 8.10; 5.5, 5.8, 5.9, 6.9; 0.1, 0.10, 3.0; 2.2, 4.11", "published",
     f"S-heads ({', '.join(map(head_name, s_heads))}) attend END→S2 and write IO − S themselves; their feeders: "
     + (", ".join(f"{n} (S2→S2 {score_table.loc[n, 'S2→S2']:.2f}, duplicate-token "
                  f"{score_table.loc[n, 'dup-token (random)']:.2f}, "
                  f"induction {score_table.loc[n, 'induction (random)']:.2f})" for n in feeder_names) or "none")],
    ["Backup name movers take over when name movers are knocked out (seed 002: because of dropout?)",
     "10.10, 10.6, 10.2, 10.1, 11.2, 9.7, 9.0, 11.9", "published",
     "; ".join(f"{k}: backup heads {b['backup heads']}, compensation {b['compensation']:.1%} of the "
               f"lost DLA (largest single rise {b['largest rise / DLA lost']:.1%}), logit diff "
               f"{b['clean logit diff']:.2f} -> {b['logit diff after knockout']:.2f}" for k, b in backups.items())
     + " (the same measurement on both; the twin was trained with dropout)" * ("organism-dropout" in backups)],
    ["The circuit uses the repetition (ABC removes the signal)", "ABC corruption: logit diff ≈ 0", "published",
     (f"logit diff: ABC {abc_eval['logit_diff']:+.2f} vs clean {clean_eval['logit_diff']:.2f} (IO {abc_delta_io:+.1f}, "
      f"S {abc_delta_s:+.1f}, the new name in the slot {abc_delta_d:+.1f}); {head_name(s_main)} END→S2 slot "
      f"{score['END→S2'][s_main].item():.2f} clean, {abc_attn_s2[s_main].item():.2f} ABC; third name after S2: "
      f"IO − S {third_ld:.2f}, C − S {third_c_s:+.2f}, END→S2 {t_attn['S2'][s_main].item():.2f} vs "
      f"END→C {t_attn['C'][s_main].item():.2f}")],
    ["Faithfulness: the circuit alone keeps the logit difference", "87% (arXiv version)", "published",
     (f"{faithfulness:.0%} with {len(circuit_heads)} of {L * H} heads (top-1 {top1['F(C)']:.0%}, whole model "
      f"{top1['F(M)']:.0%}); the ABC-found heads alone: {faith_abc:.0%} of the logit difference but top-1 "
      f"{top1['F(C_ABC)']:.0%}")],
    ["Completeness / minimality", "holds for the subsets K tried (greedy search)", "published",
     (f"max |F(C∖K) − F(M∖K)| = {crit['incompleteness / F(M)'].max():.0%} of F(M); smallest single-head "
      f"minimality {single_drop:.3f} ({least}); of the heads path patching found, {pp_drop:.2f}")],
], columns=["claim", "source (Wang et al. 2022)", "GPT-2", "this book's model"])

# %% [markdown]
# **Where the organism differs from GPT-2, and why.** GPT-2 small sorts the names by attention: its
# S-inhibition heads steer the name movers' queries away from S, and the name movers copy IO. The organism
# has no such division of labour. Its name movers (layer-1 induction heads) copy IO and S alike, and its
# S-heads write the answer themselves by suppressing the name they attend, one step where GPT-2 takes two. GPT-2's
# S-inhibition heads read a repetition that duplicate-token and induction heads compute; the organism's
# S-heads read the name in the final clause's subject slot, and ABC shows that they do not check whether
# it is a repeat (section 5.1). The likely reasons: four layers leave room for few compositions, and the
# training grammar never separates the subject slot from the repeated name, so nothing rewarded detecting
# the repeat. The rest of GPT-2's picture is absent too: negative name movers (none on any prompt set),
# backup name movers (none, with or without dropout; the twin trained with dropout compensates less than the
# organism, not more), and faithfulness in the paper's sense: the organism's circuit keeps the whole logit
# difference but less of the answer.

# %%
# Run by scripts/measure.py (RECORD set): what the asserts and the tables of sections 6 and 10 rest on.
# Otherwise nothing.
if RECORD:
    main_head = circuits.top_heads(direct_effect.abs(), 1)[0]
    run = {
        "accuracy": clean_eval["accuracy"], "logit_diff": clean_eval["logit_diff"],
        "abc_logit_diff": abc_eval["logit_diff"], "abs_abc_logit_diff": abs(abc_eval["logit_diff"]),
        "template_accuracy": accuracy, "template_ld": clean_ld, "template_abc_ld": abc_ld,
        "gap": clean_ld - abc_ld, "abc_delta_io": abc_delta_io, "abc_delta_s": abc_delta_s, "abc_delta_d": abc_delta_d,
        "s_heads": len([h for h in direct_heads if circuit[h][0] == "S-suppression"]),
        "main_direct": -direct_effect[main_head].item(), "main_no_mlp": -direct_no_mlp[main_head],
        "carriers": len(carriers), "feeder_self_min": score_table.loc[feeder_names, "S2→S2"].min(),
        "feeder_repeat_max": repeat_scores.max().max() if feeder_names else None,
        "mover_choice_max": max((abs(io_pref[h].item()) for h in movers), default=None),
        "mover_names_min": min((score["END→IO"][h].item() + score["END→S1"][h].item() for h in movers),
                               default=None),
        "mover_knockout_max": max((-score["knockout: IO logit"][h].item() for h in movers), default=None),
        "max_io_pref": io_pref.max().item(),
        "faithfulness": faithfulness, "top1_model": top1["F(M)"], "top1_circuit": top1["F(C)"],
        "faith_abc": faith_abc, "top1_abc": top1["F(C_ABC)"], "top1_gain": top1["F(C)"] - top1["F(C_ABC)"],
        "min_single_drop": single_drop, "min_single_drop_pp": pp_drop,
        "max_incompleteness_rel": crit["incompleteness / F(M)"].max(),
        "third_ld": third_ld, "third_c_minus_s": third_c_s, "third_s_below_c": third_s_below_c,
        "third_abc_ld": rep_rows["third name after S2: ABC"][0],
        "third_io_top": rep_rows["third name after S2: clean"][3],
        "s_head_s2": score["END→S2"][s_main].item(), "s_head_abc_s2": abc_attn_s2[s_main].item(),
        "s_head_third_s2": t_attn["S2"][s_main].item(), "s_head_third_c": t_attn["C"][s_main].item(),
        "s2_over_c": s2_vs_c, "abc_attn_drop": abc_drop,
        "s_heads_s2_min": min(score["END→S2"][h].item() for h in s_heads),
        "s_heads_s2_max": max(score["END→S2"][h].item() for h in s_heads),
        "s_heads_c_max": max(t_attn["C"][h].item() for h in s_heads),
        "s_heads_abc_min": min(abc_attn_s2[h].item() for h in s_heads),
        "s_heads_abc_drop_max": max(score["END→S2"][h].item() - abc_attn_s2[h].item() for h in s_heads),
        "max_copy": score["copy"].max().item(), "max_neg_copy": score["neg. copy"].max().item(),
    }
    twins = {"": ours, "dropout_": backups.get("organism-dropout")}
    for pre, b in twins.items():
        if b is not None:
            run.update({pre + "ko_ld": b["logit diff after knockout"], pre + "compensation": b["compensation"],
                        pre + "max_rise": b["largest rise (logits)"],
                        pre + "max_rise_lost": b["largest rise / DLA lost"],
                        pre + "n_backup": 0 if b["backup heads"] == "none" else len(b["backup heads"].split(", "))})
    if twins["dropout_"] is not None:
        tb = twins["dropout_"]
        run.update({"dropout_accuracy": tb["held-out accuracy (all structures)"],
                    "dropout_logit_diff": tb["held-out logit diff (all structures)"],
                    "dropout_template_accuracy": tb["accuracy (IO above S)"],
                    "dropout_template_ld": tb["clean logit diff"]})
    table_keys = ["accuracy", "logit_diff", "abc_logit_diff", "template_accuracy", "template_ld", "template_abc_ld",
                  "gap", "abc_delta_io", "abc_delta_s", "abc_delta_d", "main_direct", "main_no_mlp", "carriers",
                  "feeder_self_min",
                  "feeder_repeat_max", "mover_choice_max", "mover_names_min", "mover_knockout_max", "max_io_pref",
                  "faithfulness", "top1_model", "top1_circuit", "faith_abc", "top1_abc", "top1_gain",
                  "min_single_drop", "min_single_drop_pp", "max_incompleteness_rel", "third_ld", "third_c_minus_s",
                  "third_s_below_c", "third_io_top",
                  "third_abc_ld", "s_head_s2", "s_head_abc_s2", "s_head_third_s2", "s_head_third_c", "s_heads_s2_min",
                  "s_heads_s2_max", "s_heads_c_max", "s_heads_abc_min", "s_heads_abc_drop_max", "max_copy",
                  "max_neg_copy"]
    table_keys += [k for k in run if k.startswith(("ko_ld", "compensation", "max_rise", "n_backup", "dropout_"))]
    measured.record(RECORD, values=run, tables={"runs": [{
        "seed": SEED, "template": TEMPLATE, **{k: run[k] for k in table_keys},
        "circuit": ", ".join(f"{head_name(h)} {c}" for h, (c, _) in circuit.items()),
        "s_head": head_name(s_main), "least_needed": least,
        "name_movers": ", ".join(map(head_name, movers)) or "none",
        "feeders": ", ".join(feeder_names) or "none",
        "movers": ours["knocked out (answer writers)"], "backup": ours["backup heads"],
        **({} if twins["dropout_"] is None else {"dropout_movers": twins["dropout_"]["knocked out (answer writers)"],
                                                  "dropout_backup": twins["dropout_"]["backup heads"],
                                                  "dropout_sha256": twin_sha}),
    }]})
