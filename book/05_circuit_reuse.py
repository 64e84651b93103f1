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
# # 5. Circuit component reuse: IOI and Colored Objects
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/05_circuit_reuse.ipynb)
#
# Merullo, Eickhoff & Pavlick {cite}`merullo2023circuit` asked whether a circuit found for one task is a
# one-off. They took the IOI circuit of {cite}`wang2022interpretability` (chapter 4), found it again in GPT-2 medium,
# and showed that the same model solves a different-looking task, **Colored Objects** ("On the table, I
# see a red pen, a blue cup and a green book. What color is the cup?"), with mostly the *same* heads:
# about **78%** of the in-circuit attention heads are shared. GPT-2 medium answers only **49.6%** of
# Colored Objects questions correctly; the paper's diagnosis is that the middle-layer *inhibition* heads,
# which in IOI tell the mover heads which name *not* to copy, do not single out the wrong colors. Making
# **four** of them attend to the wrong colors, as they attend to the repeated name in IOI, raises the
# accuracy to **93.7%**.
#
# This chapter runs the same experiment on the book's organism, which solves Colored Objects at the end of
# its training and only partly solves it at an intermediate checkpoint (`organism@step2669`, named in its
# training log; about where GPT-2 medium stands). Both circuits are found by one answer-aware method with
# the same thresholds; their overlap is compared with what two *random* head sets of the same sizes share;
# each head's role comes from what it measurably does; and the repair is tried where the task is partly
# solved. The closing table says where the organism's story agrees with the paper's and where it does not.

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
MODEL = "organism"        # "gpt2-medium" (online) runs the same analysis on the paper's model
PARTIAL = ""              # where Colored Objects is partly solved (the repair runs there); "": the organism's own
                          # (its training log names it), or the model itself when MODEL is GPT-2
SEED = 0                  # seeds the prompts
TEMPLATE = 0              # the held-out IOI template of the circuit search (one template, fixed positions)
N_PROMPTS = 32            # prompts per circuit search
N_EVAL = 300              # held-out prompts for accuracies and the repair
DIRECT_MIN = 0.10         # path patching to the logits: |change| ≥ this fraction of the clean metric
FEEDER_MIN = 0.10         # path patching into a circuit head's query, key or value: same
DEPTH = 3                 # levels of the backwards path-patching search (1: to the logits only), as in chapter 4
ATT_MIN = 0.30            # roles: attention (END -> answer / rival(s), repeat -> first) counted from this value
COPY_MIN = 0.50           # roles: a mover's OV circuit copies at least this share of the task's answer tokens
N_INTERVENE = 4           # at most this many inhibition heads are steered (the paper steers four)
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]  # steering strengths tried on calibration prompts
N_RANDOM = 10000          # random head-set pairs for the overlap baseline
RECORD = ""               # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import helpers
from helpers import circuits, measured, patching, tasks
from helpers.circuits import head_name
from helpers.hooks import capture
from helpers.loading import ORGANISM_DIR, partial_checkpoint
from helpers.tasks import colored_objects, ioi
from helpers.tasks.evaluate import evaluate_batch, paired_difference_interval, wilson_interval

helpers.seed_everything(SEED)
torch.set_num_threads(1)  # the machine is shared; one thread is also fastest for the small model
model = helpers.load_model(MODEL)
L, H = model.cfg.n_layers, model.cfg.n_heads
IS_ORGANISM = MODEL.startswith("organism")
M = measured.load("ch05")  # the asserts' thresholds and the measured table (section 6)
PARTIAL = PARTIAL or (partial_checkpoint() if IS_ORGANISM else MODEL)
print(f"model: {MODEL} ({L} layers x {H} heads, d_model={model.cfg.d_model}); the repair runs on {PARTIAL}")
print(helpers.describe(torch.device(model.cfg.device)))

# %% [markdown]
# ## 1. The task, and when the organism learns it
#
# `helpers.tasks.colored_objects` writes the BIG-bench prompts Merullo et al. used, here in their classic
# phrasing ("Q: On the table, I see … What color is the cup? A:"), with one object in every prompt held out
# of the organism's training. A prompt counts as solved when the asked-about color's logit is above both
# other listed colors' (*restricted-choice* accuracy, chance 1 in 3); *top-1* asks that it be the model's
# first word outright. The *error modes* say which color the model gives instead.

# %%
def co_batch(n, seed):
    return colored_objects.generate(n, "test", seed, phrasing="classic")


def co_accuracy(m, batch, enc):
    # restricted-choice (listed) and top-1 correctness per prompt, and the logits at the answer position
    lg = patching.logits_at(m, enc.tokens, enc.end)
    listed = colored_objects.listed_accuracy(lg, colored_objects.listed_color_ids(m, batch), colored_objects.targets(batch))
    return listed, lg.argmax(-1) == enc.answers, lg


co_eval = co_batch(N_EVAL, SEED)
co_enc = co_eval.encode(model)
co_listed, co_top1, co_logits = co_accuracy(model, co_eval, co_enc)
co_acc, co_top1_acc = co_listed.float().mean().item(), co_top1.float().mean().item()
co_ci = wilson_interval(int(co_listed.sum()), N_EVAL)
predicted = [model.tokenizer.decode([i]) for i in co_logits.argmax(-1).tolist()]
modes = pd.Series(colored_objects.error_modes(co_eval, predicted), name="answer")
ioi_eval = evaluate_batch(model, tasks.make("ioi", N_EVAL, "test", seed=SEED, tokenizer=model))
print(co_eval.texts[0], "->", co_eval.answers[0])
print(f"Colored Objects: {co_acc:.1%} restricted-choice (95% CI {co_ci[0]:.1%}–{co_ci[1]:.1%}; chance 33.3%), "
      f"{co_top1_acc:.1%} top-1; IOI on held-out prompts: {ioi_eval['accuracy']:.1%}")
display(modes.value_counts().reindex(colored_objects.ERROR_MODES, fill_value=0).to_frame("prompts"))

# %%
if IS_ORGANISM:
    assert co_acc > M["CO_ACC_MIN"], "the final organism solves Colored Objects"
    assert ioi_eval["accuracy"] > M["IOI_ACC_MIN"], "and IOI"

# %% [markdown]
# The two tasks are learned at different times. The training log (held-out accuracy on 100 prompts of the
# grammar's held-out phrasings: every 100 steps in phase 1, every 25 in the curriculum, every 50 in phase 2,
# and once at the partly-solved checkpoint; no checkpoint is re-evaluated here) shows IOI rising between
# steps 1,200 and 1,600 (0.48 → 0.93) of phase 1 (steps 0–2,400, the mixture of tasks), while Colored
# Objects stays near chance throughout it (0.24–0.45 on 100 prompts). Colored Objects forms in the
# curriculum that follows (steps 2,400–2,850, shaded), which asks for the lookup in easier forms first (the
# color written before an earlier copy of the object, asked at the object itself) and adds the full prompt
# at step 2,650. It stays at chance until then (0.25–0.35 in the curriculum, 0.25 at step 2,650), then goes
# from 0.48 at step 2,669 to 0.92 at 2,675 and 1.00 at 2,700: within 25 steps of the full prompt entering,
# and in six steps from half right to nearly solved. Phase 2 (steps 2,850–3,250, the mixture weighted
# towards Colored Objects) keeps it there (0.99 at the end). The dotted line marks the partly-solved
# checkpoint, `organism@step2669`, where section 4 tries the repair: the jump happened between the
# evaluations at steps 2,650 and 2,675, so training saved the step in between whose held-out accuracy is
# nearest 50% (0.48 on held-out and on training prompts alike).

# %%
if IS_ORGANISM:
    log = json.loads((ORGANISM_DIR / "train_log.json").read_text())
    curve = pd.DataFrame(log["eval"]).set_index("step")[["ioi", "colored_objects"]]
    p1_end = log["train"]["steps"]                                          # phase 1: the task mixture
    cur_end = p1_end + sum(steps for _, steps, _ in log.get("curriculum") or [])  # then the curriculum
    p_step = int(PARTIAL.split("@step")[-1]) if "@step" in PARTIAL else None
    curve["phase"] = ["phase 1" if s <= p1_end else "curriculum" if s <= cur_end else "phase 2" for s in curve.index]
    ax = curve.drop(columns="phase").rename(columns={"ioi": "IOI", "colored_objects": "Colored Objects"}).plot(
        figsize=(6.5, 3))
    ax.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance (Colored Objects)")
    ax.axvspan(p1_end, cur_end, color="tab:orange", alpha=0.12, label="Colored Objects curriculum")
    if p_step is not None:
        ax.axvline(p_step, color="black", ls=":", lw=1, label=PARTIAL)
    ax.set_ylabel("held-out accuracy (training log)")
    ax.legend(fontsize=8)
    plt.show()
    steps = list(curve.index)  # the partly-solved step and the two evaluations on either side of it
    near = steps[max(0, steps.index(p_step) - 2):steps.index(p_step) + 3] if p_step in steps else []
    shown = (1000, 1200, 1300, 1400, 1500, 1600, p1_end, *near, cur_end, int(curve.index.max()))
    display(curve.loc[sorted({s for s in shown if s in curve.index})])
    before = curve[curve.index < (p_step or cur_end + 1)].groupby("phase", sort=False)["colored_objects"]
    print("Colored Objects in the log" + (f", before {PARTIAL}" if p_step else "") + ": "
          + "; ".join(f"{ph} {g.min():.2f}–{g.max():.2f}" for ph, g in before))
else:
    print("the training log exists for the organism only")

# %% [markdown]
# ## 2. Two circuits, found the same way
#
# Both circuits come from one function, `circuits.find_circuit`, with the same thresholds: **path
# patching** backwards from the logits (chapter 4, recursing through queries, keys and values). A head is
# in the circuit if giving it its *corrupted* output along one path moves the task metric by at least
# `DIRECT_MIN` (its path to the logits) or `FEEDER_MIN` (its path into a circuit head) of the clean
# metric. The metric knows the right answer:
#
# | | IOI | Colored Objects |
# |---|---|---|
# | metric | logit(IO) − logit(S) | logit(asked color) − mean logit(the two other listed colors) |
# | corrupted prompts | ABC: S2 replaced by a third name | the question asks about an object that is not listed |
#
# Each circuit head then gets a **role** by one rule for both tasks (`circuits.behaviour_roles`), from
# what it measurably does: a *mover* attends from the answer position to the answer (IO; the asked color)
# with at least `ATT_MIN` and its OV circuit copies at least `COPY_MIN` of the task's answer tokens (names;
# colors) into their own logits (`circuits.copy_scores`, top 5 of the vocabulary); an *inhibition* head
# attends to the rival(s) (S2; the two other colors, summed) with at least `ATT_MIN`, and patching its output
# lowers the metric; a *duplicate-token* or *induction* head attends from the repeated token (S2; the
# question's object) to its first occurrence or the token after it with at least `ATT_MIN`; any other head
# is *other*.

# %%
def ioi_setup(m, seed, template, n=N_PROMPTS):
    e = tasks.make("ioi", n, "test", seed=seed, templates=[ioi.HELDOUT_TEMPLATES[template]], tokenizer=m).encode(m)
    P = e.positions
    pairs = {"END→answer": (e.end, P["IO"]), "END→rival": (e.end, P["S2"]), "repeat→first": (P["S2"], P["S1"]),
             "repeat→first+1": (P["S2"], P["S1"] + 1)}
    answer_ids = torch.tensor(tasks.single_token_ids(m, [" " + x for x in ioi.NAMES]))
    return e, patching.logit_diff_metric(e.answers, e.distractors), pairs, answer_ids


def co_setup(m, seed, n=N_PROMPTS):
    b = co_batch(n, seed)
    e = b.encode(m)
    target = colored_objects.targets(b)
    _, rivals = colored_objects.split_by_target(colored_objects.listed_color_ids(m, b), target)
    right, wrong = colored_objects.split_by_target(colored_objects.color_positions(e), target)
    P = e.positions
    pairs = {"END→answer": (e.end, right), "END→rival": (e.end, wrong), "repeat→first": (P["QUERY"], P["OBJECT"]),
             "repeat→first+1": (P["QUERY"], P["OBJECT"] + 1)}
    answer_ids = torch.tensor(tasks.single_token_ids(m, [" " + c for c in colored_objects.COLORS]))
    return e, patching.logit_diff_metric(e.answers, rivals), pairs, answer_ids


def behaviour(m, setup):
    # every head's attention table, the metric change when its output is patched, and its copy score
    e, metric, pairs, answer_ids = setup
    table = circuits.attention_table(m, e.tokens, pairs, how="sum")
    effect = circuits.knockout_effects(m, e.tokens, capture(m, e.corrupted, circuits.z_hooks(m)), metric, e.end)
    return table, effect, circuits.copy_scores(m, answer_ids, top_k=5)


def circuit_of(setup):
    e, metric, _, _ = setup
    found = circuits.find_circuit(model, e.tokens, e.corrupted, metric, e.end, DIRECT_MIN, FEEDER_MIN, depth=DEPTH)
    table, effect, copy = behaviour(model, setup)
    clean = metric(patching.logits_at(model, e.tokens, e.end)[None]).item()
    return found.heads, circuits.behaviour_roles(found.heads, table, effect, copy, ATT_MIN, COPY_MIN), clean


ioi_heads, ioi_roles, ioi_clean = circuit_of(ioi_setup(model, SEED, TEMPLATE))
co_set = co_setup(model, SEED)
co_heads, co_roles, co_clean = circuit_of(co_set)
for name, heads, roles, clean in [("IOI", ioi_heads, ioi_roles, ioi_clean), ("Colored Objects", co_heads, co_roles, co_clean)]:
    print(f"{name} (clean metric {clean:.2f}): {len(heads)} heads: "
          + ", ".join(f"{head_name(h)} ({roles[h][0]})" for h in heads))
# where the Colored Objects heads look from the answer position, if not at the colors: the question's object
to_query = circuits.attention_table(model, co_set[0].tokens, {"q": (co_set[0].end, co_set[0].positions["QUERY"])})["q"]
co_to_query = to_query[[head_name(h) for h in co_heads]]
print("Colored Objects circuit, attention from the answer position to the question's object: "
      + ", ".join(f"{k} {v:.2f}" for k, v in co_to_query.items()))
both = sorted(set(ioi_heads) | set(co_heads))
pd.set_option("display.max_colwidth", None)
pd.DataFrame({"IOI role": [ioi_roles.get(h, ("—", ""))[0] for h in both],
              "IOI evidence": [ioi_roles.get(h, ("", "not in the circuit"))[1] for h in both],
              "Colored Objects role": [co_roles.get(h, ("—", ""))[0] for h in both],
              "Colored Objects evidence": [co_roles.get(h, ("", "not in the circuit"))[1] for h in both]},
             index=[head_name(h) for h in both])

# %% [markdown]
# ## 3. The overlap, against chance
#
# The paper reports the share of in-circuit heads the two circuits have in common. We give the share of
# the IOI circuit's heads that are also in the Colored Objects circuit, and the intersection over the
# union (Jaccard), next to what two **random** sets of heads of the same sizes, drawn from the model's
# 32 heads, would share: the expected value and the central 95% of `N_RANDOM` draws. Circuits that both
# sit in the last layers would share more than sets spread over the model, so a second baseline draws random
# sets with as many heads in each layer as the two circuits (`layer-matched`).

# %%
ov = circuits.overlap(ioi_heads, co_heads)
rand = circuits.random_overlap(len(ioi_heads), len(co_heads), L * H, N_RANDOM, seed=SEED)
rand_l = circuits.random_overlap_by_layer(ioi_heads, co_heads, L, H, N_RANDOM, seed=SEED) if ioi_heads and co_heads else None
shared = sorted(set(ioi_heads) & set(co_heads))
same_role = [h for h in shared if ioi_roles[h][0] == co_roles[h][0]]
reused = [h for h in shared if ioi_roles[h][0] == "inhibition"]  # IOI inhibition heads in the Colored Objects circuit
reused_query = co_to_query[[head_name(h) for h in reused]].mean() if reused else float("nan")
overlap_table = pd.DataFrame(
    {"measured": [ov["of_a"], ov["jaccard"]], "random sets: expected": [rand["of_a"][0], rand["jaccard"][0]],
     "random: 2.5%": [rand["of_a"][1], rand["jaccard"][1]], "random: 97.5%": [rand["of_a"][2], rand["jaccard"][2]],
     **({"random, layer-matched: expected": [rand_l["of_a"][0], rand_l["jaccard"][0]],
         "layer-matched: 97.5%": [rand_l["of_a"][2], rand_l["jaccard"][2]]} if rand_l else {})},
    index=["share of IOI heads in the Colored Objects circuit", "Jaccard"])
display(overlap_table.round(3))
print(f"shared heads: {', '.join(f'{head_name(h)} ({ioi_roles[h][0]} / {co_roles[h][0]})' for h in shared) or 'none'}; "
      f"same role in both tasks: {', '.join(map(head_name, same_role)) or 'none'}")
print(f"IOI inhibition heads in the Colored Objects circuit: {', '.join(map(head_name, reused)) or 'none'}"
      + (f"; there they attend from the answer position to the question's object ({reused_query:.2f} on average)"
         if reused else ""))

# %%
if IS_ORGANISM:
    assert len(reused) >= M["REUSED_MIN"], "IOI inhibition heads are in the Colored Objects circuit"
    assert ov["of_a"] - rand["of_a"][0] > M["EXCESS_MIN"], "the overlap is above what random head sets share on average"
    assert reused_query > M["REUSED_QUERY_MIN"], "there they attend from the answer position to the question's object"

# %% [markdown]
# The measured prompt sets (section 6, one row per set: another IOI template and other Colored Objects
# prompts each time) give the same comparison on independent prompts, with each set's own random baseline:

# %%
runs = pd.DataFrame(M["runs"])
display(runs.reindex(columns=["seed", "template", "n_ioi", "n_co", "overlap", "jaccard", "rand_mean", "rand_hi",
                             "rand_l_mean", "rand_l_hi", "IOI circuit", "Colored Objects circuit"]))

# %% [markdown]
# In the shipped organism (three prompt sets, section 6) the answer-aware search finds an IOI circuit of 5–6
# heads. Three inhibition heads are in it in every set, L2H4, L2H5 and L3H1, and L3H2 in two: they attend
# from the end to S2 (0.68–0.99) and patching each lowers the logit difference (by 8–59%). The other two
# heads are in layer 0 and meet no role rule: L0H3 (patching it costs 59–67% of the logit difference) and
# L0H7 (0.20–0.24 of its attention on S2, under `ATT_MIN`). The circuit has no mover (no head gives IO more
# than 0.01 of its attention from the end), so the inhibition heads act on the answer themselves, as chapter
# 4's S-suppression heads do, rather than by telling a later mover what not to copy.
#
# The Colored Objects circuit is small (2–4 heads), and in every set it holds **two of those IOI inhibition
# heads, L2H4 and L2H5** (in one set also L0H3, which is in every IOI circuit, and an induction head, L1H2).
# It has no mover and no inhibition head: none of its heads gives the colors any measurable attention from
# the answer position (0.00 in the table above). L2H4 and L2H5 attend instead to the question's object
# ("What color is the **cup**?"; 0.88–0.98 per head), and patching them lowers the metric by 19–36%. So
# the share of the IOI heads found in the Colored Objects circuit is 33–60% (2 of 6 heads; 3 of 5 in one
# set), against 6–12% expected of random head sets of the same sizes and 8–15% of random sets with as many
# heads in each layer (asserted: above the random expectation by more than a measured floor). It is not far
# into the random baseline's tail, though: above its 97.5% quantile in one set (60% against 40%) and *equal*
# to it in the other two (33%). There the Colored Objects circuit is just L2H4 and L2H5, and two heads
# drawn at random both land in a 6-head circuit in 15 of the 496 possible pairs (3%); with the heads drawn
# layer by layer (two of layer 2's eight heads against two others) 1 draw in 28 does so. What makes the
# case is that the same two heads come back in every set (asserted), not the size of one overlap.
#
# **The heads are reused, their role is not.** In IOI, L2H4 and L2H5 are inhibition heads; in Colored
# Objects the rule of section 2 calls them *other*: they look at neither the answer nor the rivals (asserted:
# they attend to the question's object). Their attention has something in common across the tasks, since
# S2 and the question's object are both the second mention of a repeated word, but in IOI that word is
# the wrong answer and in Colored Objects it is the key to the right one. The paper found about 78% of
# GPT-2 medium's in-circuit heads shared, with movers and inhibition heads keeping their roles; the
# organism shares fewer heads (33–60% of its IOI circuit) and gives them another job. (The organism this book
# shipped before, trained without the random words in its IOI texts, shared no head between the two
# circuits in any prompt set; which change brought the reuse is not established.)

# %% [markdown]
# ## 4. The repair at the partly-solved checkpoint
#
# Merullo et al. steered four inhibition heads of GPT-2 medium to attend to the wrong colors and lifted
# Colored Objects from 49.6% to 93.7%. The final organism already solves the task, so the repair runs at
# the checkpoint where it is partly solved (`PARTIAL`; here `organism@step2669`, from the training log).
# The steered heads are that checkpoint's **IOI inhibition heads** by the rule of section 2 (every head, on
# IOI prompts: END → S2 at least `ATT_MIN` and patching its output lowers IOI's metric), the `N_INTERVENE`
# whose patching lowers it most. Their attention row at the answer position is mixed with a uniform row on
# the two wrong colors (strength α: 0 none, 1 entirely); α is chosen on separate **calibration prompts** as
# the one with the best top-1 accuracy, then everything is measured on the held-out prompts of section 1,
# before and after, on the same prompts. Two controls: as many *other* heads of the same layers (none of
# them an inhibition head, drawn at random) steered the same way, and the inhibition heads pointed at the
# asked-about color instead.

# %%
partial = model if PARTIAL == MODEL else helpers.load_model(PARTIAL, verbose=False)
p_table, p_effect, p_copy = behaviour(partial, ioi_setup(partial, SEED, TEMPLATE))
p_roles = circuits.behaviour_roles([(i, j) for i in range(L) for j in range(H)], p_table, p_effect, p_copy,
                                   ATT_MIN, COPY_MIN)
inhibitors = sorted([h for h, (r, _) in p_roles.items() if r == "inhibition"], key=lambda h: float(p_effect[h]))
inhibitors = inhibitors[:N_INTERVENE]
p_co_eval, p_co_enc = co_eval, co_eval.encode(partial)
p_co_table = circuits.attention_table(partial, p_co_enc.tokens, co_setup(partial, SEED, N_EVAL)[2], how="sum")
f_co_table = circuits.attention_table(model, co_enc.tokens, co_setup(model, SEED, N_EVAL)[2], how="sum")
names = [head_name(h) for h in inhibitors]
p_rival_ioi, p_rival_co = p_table.loc[names, "END→rival"].mean(), p_co_table.loc[names, "END→rival"].mean()
f_rival_co = f_co_table.loc[names, "END→rival"].mean()
print(f"{PARTIAL}: steered heads " + (", ".join(
    f"{head_name(h)} (IOI: END→S2 {p_table.loc[head_name(h), 'END→rival']:.2f}, patched {float(p_effect[h]):+.0%}; "
    f"Colored Objects: END→wrong colors {p_co_table.loc[head_name(h), 'END→rival']:.2f}, in {MODEL} "
    f"{f_co_table.loc[head_name(h), 'END→rival']:.2f})" for h in inhibitors)
    or "none (no head meets the inhibition rule)"))
# the IOI inhibition heads of the final Colored Objects circuit (section 3): where they look from the answer
# position here and in the final model, on the same held-out prompts
to_query_at = {m_name: circuits.attention_table(m, enc.tokens, {"q": (enc.end, enc.positions["QUERY"])})["q"]
               for m_name, m, enc in [(PARTIAL, partial, p_co_enc), (MODEL, model, co_enc)]}
reused_query_partial, reused_query_final = (to_query_at[k][[head_name(h) for h in reused]].mean() if reused
                                            else float("nan") for k in (PARTIAL, MODEL))
print("attention from the answer position to the question's object: "
      + ("; ".join(f"{head_name(h)} {to_query_at[PARTIAL][head_name(h)]:.2f} at {PARTIAL}, "
                   f"{to_query_at[MODEL][head_name(h)]:.2f} in {MODEL}" for h in reused) or "no head to follow"))


# control heads: as many heads of the same layers, none of them an inhibition head, drawn at random
g = torch.Generator().manual_seed(SEED)
pool = {la: [(la, j) for j in torch.randperm(H, generator=g).tolist() if p_roles[(la, j)][0] != "inhibition"]
        for la in {la for la, _ in inhibitors}}
control_heads = [pool[la].pop(0) for la, _ in inhibitors]


def steer(m, batch, enc, heads, keys_of, alpha):
    # restricted-choice and top-1 correctness per prompt, the heads' END attention steered onto keys_of(...)
    ids, target = colored_objects.listed_color_ids(m, batch), colored_objects.targets(batch)
    right, wrong = colored_objects.split_by_target(colored_objects.color_positions(enc), target)
    lg, _ = circuits.run_with_attention(m, enc.tokens, heads, enc.end, keys_of(right, wrong), strength=alpha)
    return colored_objects.listed_accuracy(lg, ids, target), lg.argmax(-1) == enc.answers


WRONG = lambda right, wrong: wrong            # the two other listed colors
RIGHT = lambda right, wrong: right[:, None]   # control: the asked-about color
calib = co_batch(4 * N_PROMPTS, SEED + 100)
calib_enc = calib.encode(partial)
dose = pd.DataFrame([{"strength": a, **dict(zip(["restricted-choice accuracy", "top-1 accuracy"],
                      [x.float().mean().item() for x in steer(partial, calib, calib_enc, inhibitors, WRONG, a)]))}
                     for a in STRENGTHS]).set_index("strength")
ALPHA = float(dose["top-1 accuracy"].idxmax())
ax = dose.plot(marker="o", figsize=(6.5, 3))
ax.axvline(ALPHA, color="grey", ls=":")
ax.set_title(f"{PARTIAL}: steering strength on {len(calib)} calibration prompts (chosen: α = {ALPHA})")
ax.set_ylabel("accuracy")
plt.show()

# %%
conditions = {"no intervention": (inhibitors, WRONG, 0.0),
              f"inhibition heads → the two wrong colors (α = {ALPHA})": (inhibitors, WRONG, ALPHA),
              f"control: other heads ({', '.join(map(head_name, control_heads))}) → the wrong colors (α = {ALPHA})":
                  (control_heads, WRONG, ALPHA),
              "control: inhibition heads → the asked-about color (α = 1)": (inhibitors, RIGHT, 1.0)}
by = {label: steer(partial, p_co_eval, p_co_enc, hs, k, a) for label, (hs, k, a) in conditions.items()}
NONE, STEERED, OTHERS, ASKED = conditions
interv = pd.DataFrame([{"condition": lab, "restricted-choice": li.float().mean().item(),
                        "top-1": t1.float().mean().item()} for lab, (li, t1) in by.items()]).set_index("condition")
gain, gain_lo, gain_hi = paired_difference_interval(by[NONE][1], by[STEERED][1])
lgain, lgain_lo, lgain_hi = paired_difference_interval(by[NONE][0], by[STEERED][0])
vs_other, vs_other_lo, vs_other_hi = paired_difference_interval(by[OTHERS][1], by[STEERED][1])
hurt = interv.loc[NONE, "restricted-choice"] - interv.loc[ASKED, "restricted-choice"]
display(interv.round(3))
print(f"{PARTIAL}, {N_EVAL} held-out prompts: top-1 {interv.loc[NONE, 'top-1']:.1%} → "
      f"{interv.loc[STEERED, 'top-1']:.1%} "
      f"({gain:+.1%}, paired 95% CI {gain_lo:+.1%} to {gain_hi:+.1%}); restricted-choice "
      f"{interv.loc[NONE, 'restricted-choice']:.1%} → {interv.loc[STEERED, 'restricted-choice']:.1%} ({lgain:+.1%}, "
      f"{lgain_lo:+.1%} to {lgain_hi:+.1%}). Paper (GPT-2 medium): 49.6% → 93.7%.\n"
      f"Inhibition heads against the same-layer control heads steered the same way: top-1 {vs_other:+.1%} "
      f"(paired 95% CI {vs_other_lo:+.1%} to {vs_other_hi:+.1%}).")

# %%
if IS_ORGANISM:
    assert gain_lo > M["GAIN_LO_MIN"], "steering the inhibition heads onto the wrong colors raises top-1 accuracy"
    assert vs_other_lo > M["VS_OTHERS_LO_MIN"], "more than steering other heads of the same layers does"
    assert hurt > M["HURT_MIN"], "pointing the same heads at the asked-about color hurts"

# %% [markdown]
# **What the organism shows** (three prompt sets, section 6). At `organism@step2669` the steered heads are
# L2H5, L3H1 and L2H4 in every set, with L3H2 (two sets) or L0H7 (one): but for L0H7, the final organism's
# IOI inhibition heads, already there when Colored Objects is half solved (END → S2 0.55–0.95, the four
# heads' mean per set). In Colored Objects they hardly look at the colors (0.002–0.004 of their attention on
# the two wrong colors, on average, in every set), as the paper's diagnosis says. The calibration prompts
# pick α = 1 in every set, and top-1 accuracy rises from 41–46% to 73–82% (+30 to +36 points; the low end of
# the paired 95% interval is +24 to +30 points, asserted), most of the way to the paper's 49.6% → 93.7%.
# Restricted-choice and top-1 accuracy are the same here: at this checkpoint the first word is always a
# listed color. The gain belongs to these heads: as many other heads of the same layers, steered the same
# way, leave top-1 near where it was (34–51%, against 41–46% unsteered), 26–39 points below the inhibition
# heads (the paired interval's low end +19 to +33 points, asserted). Pointed at the asked-about color
# instead, the inhibition heads cut the restricted-choice accuracy from 41–46% to about 4% (asserted): their
# output pushes down whatever they attend to, as it pushes down S in IOI. So the paper's repair carries
# over: half-way to solving Colored Objects, the organism has IOI heads the task could use, aimed at the
# wrong place.
#
# Training used two of the same heads, but not the repair's way. The final organism's Colored Objects
# circuit is built on L2H4 and L2H5, both steered here (section 3), yet in the final model the steered
# heads still give the two wrong colors almost nothing (0.002–0.004, their mean per set). What training
# changed is where L2H4 and L2H5 look from the answer position: at the question's object, 0.14–0.16 (L2H4)
# and 0.40–0.43 (L2H5) of their attention at step 2,669, 0.97–0.98 and 0.88–0.89 in the final model (printed
# above, on the held-out prompts). The repair turns the inhibition heads against the wrong colors; training
# turned two of them onto the object the question asks about (what they write from there is not measured
# in this chapter). The paper's second observation, later mover heads re-aiming when the inhibition heads
# are steered, is not measured either: the organism has no color-mover heads to watch (no head of its
# Colored Objects circuit attends from the answer position to the colors).

# %% [markdown]
# ## 5. GPT-2 medium (online only)
#
# With the hub reachable, set `MODEL = "gpt2-medium"` to run this chapter on the paper's model (the circuit
# searches take a while on a CPU). This cell only measures GPT-2 medium's Colored Objects accuracy on the
# same prompts, to compare with the paper's 49.6%. Offline it says so.

# %%
gpt2_summary = "not run here (offline)"
gpt2 = model if MODEL == "gpt2-medium" else helpers.load_model_if_available("gpt2-medium")
if gpt2 is not None:
    g_batch = co_batch(200, SEED)
    g = g_batch.encode(gpt2)
    g_ok = colored_objects.listed_accuracy(patching.logits_at(gpt2, g.tokens, g.end),
                                           colored_objects.listed_color_ids(gpt2, g_batch), colored_objects.targets(g_batch))
    g_ci = wilson_interval(int(g_ok.sum()), len(g_ok))
    gpt2_summary = f"Colored Objects accuracy {g_ok.float().mean():.1%} (95% CI {g_ci[0]:.1%}–{g_ci[1]:.1%})"
print(gpt2_summary)

# %% [markdown]
# ## 6. What holds, and what differs
#
# Measured thresholds (the asserts above) come from `scripts/measure.py`, which runs this notebook on
# several prompt sets of the shipped organism (SEED:TEMPLATE 0:0, 1:1, 2:2; `python scripts/measure.py 05`
# writes `book/measured/ch05.json`). `overlap`: share of the IOI heads in the Colored Objects circuit;
# `rand_mean`/`rand_hi`: the random baseline's expected value and 97.5% quantile (`rand_l_mean`/`rand_l_hi`:
# layer-matched); `excess`: `overlap` minus `rand_mean`; `reused`: the IOI inhibition heads in the Colored
# Objects circuit, and `reused_query` their mean attention from the answer to the question's object (the
# circuit-search prompts; `reused_query_partial`/`reused_query_final`: on the held-out prompts, at the
# partly-solved checkpoint and in the final model); `gain`/`gain_lo`: the
# repair's top-1 change at the partly-solved checkpoint and the low end of its paired 95% interval;
# `top1_others`, `vs_others`/`vs_others_lo`: top-1 with the control heads steered instead, and the
# inhibition heads' advantage over them; `answer_listed`: restricted-choice accuracy with the inhibition heads
# pointed at the asked-about color; `rival_ioi`, `rival_co`, `rival_co_final`: the steered heads' mean
# attention to S2 (IOI), to the two wrong colors (partly-solved checkpoint) and to the wrong colors in the
# final model; `co_to_query`: the Colored Objects heads' mean attention from the answer to the question's
# object:

# %%
display(runs.drop(columns=["IOI circuit", "Colored Objects circuit"], errors="ignore"))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
pd.DataFrame([
    ["Colored Objects accuracy", "49.6% (GPT-2 medium)", gpt2_summary,
     (f"final: {co_acc:.1%} restricted-choice (95% CI {co_ci[0]:.1%}–{co_ci[1]:.1%}), {co_top1_acc:.1%} top-1; "
      f"{PARTIAL}: {interv.loc[NONE, 'restricted-choice']:.1%} restricted-choice / "
      f"{interv.loc[NONE, 'top-1']:.1%} top-1")],
    ["Share of in-circuit heads common to both tasks", "about 78%", "published",
     (f"{ov['of_a']:.0%} of the IOI heads are in the Colored Objects circuit ({ov['shared']} of {len(ioi_heads)}; "
      f"Jaccard {ov['jaccard']:.0%}); random sets of the same sizes: {rand['of_a'][0]:.0%} "
      f"(95%: {rand['of_a'][1]:.0%}–{rand['of_a'][2]:.0%})"
      + (f", in the same layers: {rand_l['of_a'][0]:.0%} (97.5%: {rand_l['of_a'][2]:.0%})" if rand_l else "")
      + f"; measured sets: {M.span('overlap', '{:.0%}')} (random: {M.span('rand_mean', '{:.0%}')} expected, "
      f"{M.span('rand_hi', '{:.0%}')} at the 97.5% quantile; layer-matched: {M.span('rand_l_mean', '{:.0%}')} "
      f"expected)")],
    ["Shared heads keep their role", "mover and inhibition heads reused", "published",
     (f"{len(same_role)} of {len(shared)} shared heads have the same role ("
      + ", ".join(f"{head_name(h)} {ioi_roles[h][0]} / {co_roles[h][0]}" for h in shared) + ")"
      + (f"; the IOI inhibition heads among them ({', '.join(map(head_name, reused))}) attend from the answer to "
         f"the question's object in Colored Objects ({reused_query:.2f}; measured sets: "
         f"{M.span('reused_query')}), not to the colors" if reused else "")) if shared
     else "no head is shared, so no role to compare; the Colored Objects heads attend from the answer to the "
          f"question's object ({co_to_query.mean():.2f} on average), not to the colors" if len(co_to_query)
     else "no head is shared"],
    ["What Colored Objects lacks", "inhibition heads do not single out the wrong colors", "published",
     (f"at {PARTIAL} the IOI inhibition heads give {p_rival_co:.2f} attention to the two wrong colors (IOI: "
      f"{p_rival_ioi:.2f} to S2)" + (f"; the same heads in the final model: {f_rival_co:.2f}" if PARTIAL != MODEL else ""))
     if inhibitors else "no head meets the inhibition rule"],
    ["Steering the inhibition heads onto the wrong colors", "4 heads; 49.6% → 93.7%", "published",
     (f"{PARTIAL}, {len(inhibitors)} heads, α = {ALPHA}: top-1 {interv.loc[NONE, 'top-1']:.1%} → "
      f"{interv.loc[STEERED, 'top-1']:.1%} (paired 95% CI of the change {gain_lo:+.1%} to {gain_hi:+.1%}); "
      f"other heads of the same layers steered the same way: {interv.loc[OTHERS, 'top-1']:.1%}; measured sets: "
      f"{M.span('top1_before', '{:.0%}')} → {M.span('top1_after', '{:.0%}')}")],
    ["Downstream mover heads re-aim", "mover heads attend more to the right color", "published",
     "not measured here: the organism's Colored Objects circuit has no color movers at the answer position"],
], columns=["claim", "source (Merullo et al.)", "GPT-2 medium", "this book's model"])

# %%
# Run by scripts/measure.py (RECORD set): what the asserts and the table of section 6 rest on. Otherwise nothing.
if RECORD:
    run = {
        "co_acc": co_acc, "co_top1": co_top1_acc, "ioi_acc": ioi_eval["accuracy"], "n_ioi": len(ioi_heads),
        "n_co": len(co_heads), "overlap": ov["of_a"], "jaccard": ov["jaccard"], "rand_mean": rand["of_a"][0],
        "rand_hi": rand["of_a"][2], "rand_jaccard": rand["jaccard"][0], "excess": ov["of_a"] - rand["of_a"][0],
        "rand_l_mean": rand_l["of_a"][0] if rand_l else float("nan"),
        "rand_l_hi": rand_l["of_a"][2] if rand_l else float("nan"),
        "shared": len(shared), "same_role": len(same_role), "reused": len(reused), "reused_query": reused_query,
        "reused_query_partial": reused_query_partial, "reused_query_final": reused_query_final, "alpha": ALPHA,
        "top1_before": interv.loc[NONE, "top-1"], "top1_after": interv.loc[STEERED, "top-1"], "gain": gain,
        "gain_lo": gain_lo, "gain_hi": gain_hi, "listed_before": interv.loc[NONE, "restricted-choice"],
        "listed_after": interv.loc[STEERED, "restricted-choice"], "top1_others": interv.loc[OTHERS, "top-1"],
        "vs_others": vs_other, "vs_others_lo": vs_other_lo, "answer_listed": interv.loc[ASKED, "restricted-choice"],
        "hurt": hurt, "rival_ioi": p_rival_ioi, "rival_co": p_rival_co, "rival_co_final": f_rival_co,
        "co_to_query": co_to_query.mean() if len(co_to_query) else float("nan"),
    }
    table_keys = ["co_acc", "co_top1", "ioi_acc", "n_ioi", "n_co", "overlap", "jaccard", "rand_mean", "rand_hi",
                  "rand_jaccard", "rand_l_mean", "rand_l_hi", "excess", "reused", "reused_query",
                  "reused_query_partial", "reused_query_final", "alpha", "top1_before", "top1_after", "gain",
                  "gain_lo", "gain_hi", "listed_before", "listed_after", "top1_others", "vs_others", "vs_others_lo",
                  "answer_listed", "rival_ioi", "rival_co", "rival_co_final", "co_to_query"]
    measured.record(RECORD, values=run, tables={"runs": [{
        "seed": SEED, "template": TEMPLATE, **{k: run[k] for k in table_keys},
        "steered": ", ".join(map(head_name, inhibitors)), "control heads": ", ".join(map(head_name, control_heads)),
        "IOI circuit": ", ".join(f"{head_name(h)} {ioi_roles[h][0]}" for h in ioi_heads),
        "Colored Objects circuit": ", ".join(f"{head_name(h)} {co_roles[h][0]}" for h in co_heads),
    }]})
