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
# its training and only partly solves it at an intermediate checkpoint (`organism@step4050`, about where
# GPT-2 medium stands). Both circuits are found by one answer-aware method with the same thresholds; their
# overlap is compared with what two *random* head sets of the same sizes share; each head's role comes
# from what it measurably does; and the repair is tried where the task is partly solved. The closing table
# says where the organism's story agrees with the paper's and where it does not.

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
PARTIAL = "organism@step4050"  # the checkpoint where Colored Objects is partly solved: the repair runs there
SEED = 0                  # seeds the prompts
TEMPLATE = 0              # the held-out IOI template of the circuit search (one template = fixed positions)
N_PROMPTS = 32            # prompts per circuit search
N_EVAL = 300              # held-out prompts for accuracies and the repair
DIRECT_MIN = 0.10         # path patching to the logits: |change| >= this fraction of the clean metric
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
from helpers.loading import ORGANISM_DIR
from helpers.tasks import colored_objects, ioi
from helpers.tasks.evaluate import evaluate_batch, paired_difference_interval, wilson_interval

helpers.seed_everything(SEED)
torch.set_num_threads(1)  # the machine is shared; one thread is also fastest for the small model
model = helpers.load_model(MODEL)
L, H = model.cfg.n_layers, model.cfg.n_heads
IS_ORGANISM = MODEL.startswith("organism")
M = measured.load("ch05")  # the asserts' thresholds and the measured table (section 6)
print(f"model: {MODEL} ({L} layers x {H} heads, d_model={model.cfg.d_model})")
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
# The two tasks are learned at different times. The training log (held-out accuracies every 100 steps,
# every 50 in the second phase, on the grammar's held-out phrasings; no checkpoint is re-evaluated here)
# shows IOI rising between steps 1200 and 1500, and Colored Objects staying near chance until about step
# 3000, partly solved around steps 3700–4300 (about half right, on these held-out phrasings) and solved best
# only at the end, after the second phase (from step 4000) weighted it more. The dotted line marks
# `organism@step4050`, where section 4 tries the repair.

# %%
if IS_ORGANISM:
    log = json.loads((ORGANISM_DIR / "train_log.json").read_text())
    curve = pd.DataFrame(log["eval"]).set_index("step")[["ioi", "colored_objects"]]
    ax = curve.rename(columns={"ioi": "IOI", "colored_objects": "Colored Objects"}).plot(figsize=(6.5, 3))
    ax.axhline(1 / 3, color="grey", ls=":", lw=1, label="chance (Colored Objects)")
    ax.axvline(int(PARTIAL.split("step")[-1]), color="black", ls=":", lw=1, label=PARTIAL)
    ax.set_ylabel("held-out accuracy (training log)")
    ax.legend(fontsize=8)
    plt.show()
    display(curve.loc[[s for s in (1000, 2000, 3000, 4000, 4050, 5000) if s in curve.index]])
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
co_heads, co_roles, co_clean = circuit_of(co_setup(model, SEED))
for name, heads, roles, clean in [("IOI", ioi_heads, ioi_roles, ioi_clean), ("Colored Objects", co_heads, co_roles, co_clean)]:
    print(f"{name} (clean metric {clean:.2f}): {len(heads)} heads: "
          + ", ".join(f"{head_name(h)} ({roles[h][0]})" for h in heads))
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
# 32 heads, would share: the expected value and the central 95% of `N_RANDOM` draws.

# %%
ov = circuits.overlap(ioi_heads, co_heads)
rand = circuits.random_overlap(len(ioi_heads), len(co_heads), L * H, N_RANDOM, seed=SEED)
shared = sorted(set(ioi_heads) & set(co_heads))
same_role = [h for h in shared if ioi_roles[h][0] == co_roles[h][0]]
overlap_table = pd.DataFrame(
    {"measured": [ov["of_a"], ov["jaccard"]], "random sets: expected": [rand["of_a"][0], rand["jaccard"][0]],
     "random: 2.5%": [rand["of_a"][1], rand["jaccard"][1]], "random: 97.5%": [rand["of_a"][2], rand["jaccard"][2]]},
    index=["share of IOI heads in the Colored Objects circuit", "Jaccard"])
display(overlap_table.round(3))
print(f"shared heads: {', '.join(f'{head_name(h)} ({ioi_roles[h][0]} / {co_roles[h][0]})' for h in shared) or 'none'}; "
      f"same role in both tasks: {', '.join(map(head_name, same_role)) or 'none'}")

# %%
if IS_ORGANISM:
    assert ov["of_a"] - rand["of_a"][0] < M["EXCESS_MAX"], "the overlap is not far above that of random head sets"

# %% [markdown]
# The measured prompt sets (section 6, one row per set: another IOI template and other Colored Objects
# prompts each time) give the same comparison on independent prompts, with each set's own random baseline:

# %%
runs = pd.DataFrame(M["runs"])
display(runs.reindex(columns=["seed", "template", "n_ioi", "n_co", "overlap", "jaccard", "rand_mean", "rand_hi",
                             "IOI circuit", "Colored Objects circuit"]))

# %% [markdown]
# In the shipped organism (three prompt sets, section 6) the answer-aware search finds small circuits. The
# IOI circuit (4–6 heads) has the same three inhibition heads in every set, L2H1, L2H7 and L3H2: they
# attend from the end to S2 (0.9 or more) and patching them lowers the logit difference; with them L0H4,
# and sometimes a layer-1 mover or a duplicate-token head. The Colored Objects circuit (3–6 heads; L0H5,
# L1H7 in every set) has *no* mover and no inhibition head: none of its heads attends from the answer
# position to the colors. The two circuits share at most one head (L0H4, in two of the three sets), and
# the share of the IOI heads found in the Colored Objects circuit (0–25%) is what two random head sets of
# these sizes share (expected 9–19%, 95% of random pairs up to 33–60%): **in this organism the
# answer-aware circuits give no evidence of reuse**. The paper's 78% was measured in GPT-2 medium, with
# far more heads, where one circuit serves both tasks; the organism, trained on the two tasks as separate
# grammars, solved them with different heads.

# %% [markdown]
# ## 4. The repair at the partly-solved checkpoint
#
# Merullo et al. steered four inhibition heads of GPT-2 medium to attend to the wrong colors and lifted
# Colored Objects from 49.6% to 93.7%. The final organism already solves the task, so the repair runs at
# `organism@step4050`, where it is partly solved. The steered heads are that checkpoint's **IOI inhibition
# heads** by the rule of section 2 (every head, on IOI prompts: END → S2 at least `ATT_MIN` and patching its
# output lowers IOI's metric), the `N_INTERVENE` whose patching lowers it most. Their attention row at the
# answer position is mixed with a uniform row on the two wrong colors (strength α: 0 none, 1 entirely); α
# is chosen on separate **calibration prompts** as the one with the best top-1 accuracy, then everything is
# measured on the held-out prompts of section 1, before and after, on the same prompts.

# %%
partial = helpers.load_model(PARTIAL, verbose=False) if IS_ORGANISM else model
p_table, p_effect, p_copy = behaviour(partial, ioi_setup(partial, SEED, TEMPLATE))
p_roles = circuits.behaviour_roles([(i, j) for i in range(L) for j in range(H)], p_table, p_effect, p_copy,
                                   ATT_MIN, COPY_MIN)
inhibitors = sorted([h for h, (r, _) in p_roles.items() if r == "inhibition"], key=lambda h: float(p_effect[h]))
inhibitors = inhibitors[:N_INTERVENE]
p_co_eval, p_co_enc = co_eval, co_eval.encode(partial)
p_co_table = circuits.attention_table(partial, p_co_enc.tokens, co_setup(partial, SEED, N_EVAL)[2], how="sum")
print(f"{PARTIAL}: steered heads " + (", ".join(
    f"{head_name(h)} (IOI: END→S2 {p_table.loc[head_name(h), 'END→rival']:.2f}, patched {float(p_effect[h]):+.0%}; "
    f"Colored Objects: END→wrong colors {p_co_table.loc[head_name(h), 'END→rival']:.2f})" for h in inhibitors)
    or "none (no head meets the inhibition rule)"))


def steer(m, batch, enc, keys_of, alpha):
    # restricted-choice and top-1 correctness per prompt, the inhibitors' END attention steered onto keys_of(...)
    ids, target = colored_objects.listed_color_ids(m, batch), colored_objects.targets(batch)
    right, wrong = colored_objects.split_by_target(colored_objects.color_positions(enc), target)
    lg, _ = circuits.run_with_attention(m, enc.tokens, inhibitors, enc.end, keys_of(right, wrong), strength=alpha)
    return colored_objects.listed_accuracy(lg, ids, target), lg.argmax(-1) == enc.answers


WRONG = lambda right, wrong: wrong            # the two other listed colors
RIGHT = lambda right, wrong: right[:, None]   # control: the asked-about color
calib = co_batch(4 * N_PROMPTS, SEED + 100)
calib_enc = calib.encode(partial)
dose = pd.DataFrame([{"strength": a, **dict(zip(["restricted-choice accuracy", "top-1 accuracy"],
                      [x.float().mean().item() for x in steer(partial, calib, calib_enc, WRONG, a)]))}
                     for a in STRENGTHS]).set_index("strength")
ALPHA = float(dose["top-1 accuracy"].idxmax())
ax = dose.plot(marker="o", figsize=(6.5, 3))
ax.axvline(ALPHA, color="grey", ls=":")
ax.set_title(f"{PARTIAL}: steering strength on {len(calib)} calibration prompts (chosen: α = {ALPHA})")
ax.set_ylabel("accuracy")
plt.show()

# %%
conditions = {"no intervention": (WRONG, 0.0), f"inhibition heads → the two wrong colors (α = {ALPHA})": (WRONG, ALPHA),
              "control: → the asked-about color (α = 1)": (RIGHT, 1.0)}
by = {label: steer(partial, p_co_eval, p_co_enc, k, a) for label, (k, a) in conditions.items()}
labels = list(conditions)
interv = pd.DataFrame([{"condition": lab, "restricted-choice": li.float().mean().item(), "top-1": t1.float().mean().item()}
                       for lab, (li, t1) in by.items()]).set_index("condition")
gain, gain_lo, gain_hi = paired_difference_interval(by[labels[0]][1], by[labels[1]][1])
lgain, lgain_lo, lgain_hi = paired_difference_interval(by[labels[0]][0], by[labels[1]][0])
hurt = interv.iloc[0]["restricted-choice"] - interv.iloc[2]["restricted-choice"]
display(interv.round(3))
print(f"{PARTIAL}, {N_EVAL} held-out prompts: top-1 {interv.iloc[0]['top-1']:.1%} → {interv.iloc[1]['top-1']:.1%} "
      f"({gain:+.1%}, paired 95% CI {gain_lo:+.1%} to {gain_hi:+.1%}); restricted-choice "
      f"{interv.iloc[0]['restricted-choice']:.1%} → {interv.iloc[1]['restricted-choice']:.1%} ({lgain:+.1%}, "
      f"{lgain_lo:+.1%} to {lgain_hi:+.1%}). Paper (GPT-2 medium): 49.6% → 93.7%.")

# %%
if IS_ORGANISM:
    assert hurt > M["HURT_MIN"], "pointing the same heads at the asked-about color hurts"

# %% [markdown]
# **What the organism shows** (three prompt sets, section 6). At `organism@step4050` the steered heads are
# the same in every set (L2H1, L2H7, L3H2, L3H6): they attend to S2 in IOI but hardly look at the colors in
# Colored Objects, as the paper's diagnosis says. On two of the three prompt sets the calibration picks
# α = 1 and top-1 accuracy rises from 50% to 58% (+8 points, paired 95% interval about +5 to +12); on the
# third its calibration prompts pick α = 0 (no strength helps there), so no steering is applied and the gain
# is 0. Restricted-choice and top-1 accuracy are the same here: at this checkpoint the first word is always
# a listed color. This is **far from the paper's 49.6% → 93.7%**, and the chapter asserts no gain, since
# one of its three sets has none. Pointed at the asked-about color instead, the same heads cut the
# restricted-choice accuracy from about 50% to 32–34% (asserted), so their output does act as inhibition on
# colors when they are made to look at them; it is not what the checkpoint is missing. What took the
# organism from partly solved to solved was more training on the task (section 1), with a circuit of its
# own (section 3). The paper's second observation, later mover heads re-aiming when the inhibition
# heads are steered, is not measured in this chapter: the organism's Colored Objects circuit has no heads
# that move colors from the answer position.

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
# `rand_mean`/`rand_hi`: the random baseline's expected value and 97.5% quantile; `gain`/`gain_lo`: the
# repair's top-1 change at the partly-solved checkpoint and the low end of its paired 95% interval:

# %%
display(runs.drop(columns=["IOI circuit", "Colored Objects circuit"], errors="ignore"))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
pd.DataFrame([
    ["Colored Objects accuracy", "49.6% (GPT-2 medium)", gpt2_summary,
     (f"final: {co_acc:.1%} restricted-choice (95% CI {co_ci[0]:.1%}–{co_ci[1]:.1%}), {co_top1_acc:.1%} top-1; "
      f"{PARTIAL}: {interv.iloc[0]['restricted-choice']:.1%} / {interv.iloc[0]['top-1']:.1%}")],
    ["Share of in-circuit heads common to both tasks", "about 78%", "published",
     (f"{ov['of_a']:.0%} of the IOI heads are in the Colored Objects circuit ({ov['shared']} of {len(ioi_heads)}; "
      f"Jaccard {ov['jaccard']:.0%}); random sets of the same sizes: {rand['of_a'][0]:.0%} "
      f"(95%: {rand['of_a'][1]:.0%}–{rand['of_a'][2]:.0%}); measured sets: {runs.reindex(columns=['overlap'])['overlap'].min():.0%}–{runs.reindex(columns=['overlap'])['overlap'].max():.0%}")],
    ["Shared heads keep their role", "mover and inhibition heads reused", "published",
     f"{len(same_role)} of {len(shared)} shared heads have the same role ("
     + (", ".join(f"{head_name(h)} {ioi_roles[h][0]} / {co_roles[h][0]}" for h in shared) or "no head") + ")"],
    ["What Colored Objects lacks", "inhibition heads do not single out the wrong colors", "published",
     (f"at {PARTIAL} the IOI inhibition heads give {p_co_table.loc[[head_name(h) for h in inhibitors], 'END→rival'].mean():.2f} "
      f"attention to the two wrong colors (IOI: {p_table.loc[[head_name(h) for h in inhibitors], 'END→rival'].mean():.2f} to S2)")
     if inhibitors else "no head meets the inhibition rule"],
    ["Steering the inhibition heads onto the wrong colors", "4 heads; 49.6% → 93.7%", "published",
     (f"{PARTIAL}, {len(inhibitors)} heads, α = {ALPHA}: top-1 {interv.iloc[0]['top-1']:.1%} → {interv.iloc[1]['top-1']:.1%} "
      f"(paired 95% CI of the change {gain_lo:+.1%} to {gain_hi:+.1%}); restricted-choice "
      f"{interv.iloc[0]['restricted-choice']:.1%} → {interv.iloc[1]['restricted-choice']:.1%}")],
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
        "shared": len(shared), "same_role": len(same_role), "alpha": ALPHA,
        "top1_before": interv.iloc[0]["top-1"], "top1_after": interv.iloc[1]["top-1"], "gain": gain,
        "gain_lo": gain_lo, "gain_hi": gain_hi, "listed_before": interv.iloc[0]["restricted-choice"],
        "listed_after": interv.iloc[1]["restricted-choice"], "answer_listed": interv.iloc[2]["restricted-choice"],
        "hurt": hurt,
    }
    table_keys = ["co_acc", "co_top1", "ioi_acc", "n_ioi", "n_co", "overlap", "jaccard", "rand_mean", "rand_hi",
                  "rand_jaccard", "alpha", "top1_before", "top1_after", "gain", "gain_lo", "gain_hi",
                  "listed_before", "listed_after", "answer_listed"]
    measured.record(RECORD, values=run, tables={"runs": [{
        "seed": SEED, "template": TEMPLATE, **{k: run[k] for k in table_keys},
        "steered": ", ".join(map(head_name, inhibitors)),
        "IOI circuit": ", ".join(f"{head_name(h)} {ioi_roles[h][0]}" for h in ioi_heads),
        "Colored Objects circuit": ", ".join(f"{head_name(h)} {co_roles[h][0]}" for h in co_heads),
    }]})
