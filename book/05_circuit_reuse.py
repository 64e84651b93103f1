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
# This chapter runs the same experiment on the book's organism: find both circuits with one method,
# measure their overlap, and repair Colored Objects by making the organism's IOI inhibition heads do on
# colors what they do on names. The organism is not GPT-2 medium, and its circuits are smaller and
# shallower (chapter 4); the closing table says where the two stories agree and where they cannot.

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
SEED = 0                  # seeds the prompts
TEMPLATE = 0              # the held-out IOI template of the circuit search (one template = fixed positions)
N_PROMPTS = 64            # prompts per circuit search
N_EVAL = 400              # held-out prompts for accuracies and the intervention
DIRECT_MIN = 0.10         # path patching to the logits: |change| >= this fraction of the clean metric
FEEDER_MIN = 0.10         # path patching into a direct head's query, key or value: same
CARRIER_MIN = 0.05        # mean-ablating the head changes the candidates metric by >= this fraction
N_INTERVENE = 4           # at most this many inhibition heads are steered (the paper steers four)
STRENGTHS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]  # steering strengths tried on calibration prompts
RECORD = ""               # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import helpers
from helpers import circuits, measured, patching, plots, tasks
from helpers.circuits import head_name
from helpers.tasks import colored_objects, ioi
from helpers.tasks.evaluate import evaluate_batch, paired_difference_interval, wilson_interval

helpers.seed_everything(SEED)
torch.set_num_threads(1)  # the machine is shared; one thread is also fastest for the small model
model = helpers.load_model(MODEL)
L, H = model.cfg.n_layers, model.cfg.n_heads
HEAD_TICKS = {"xticks": [str(j) for j in range(H)], "yticks": [str(i) for i in range(L)]}
IS_ORGANISM = MODEL.startswith("organism")
M = measured.load("ch05")  # the asserts' thresholds and the measured table (section 6)
print(f"model: {MODEL} ({L} layers x {H} heads, d_model={model.cfg.d_model})")
print(helpers.describe(torch.device(model.cfg.device)))

# %% [markdown]
# ## 1. The task, and how the model gets it wrong
#
# `helpers.tasks.colored_objects` writes the BIG-bench prompts Merullo et al. used, with objects held out
# of the organism's training in every test prompt. A prompt counts as solved when the asked-about color's
# logit is above both other listed colors' (chance: 1 in 3). The *error modes* say which color the model
# gives instead: another listed object's (by its place in the list), a color that is not listed, or no
# color at all.

# %%
co_eval = tasks.make("colored_objects", N_EVAL, "test", seed=SEED)
co_enc = co_eval.encode(model)
co_target = colored_objects.targets(co_eval)
co_ids = colored_objects.listed_color_ids(model, co_eval)
co_logits = patching.logits_at(model, co_enc.tokens, co_enc.end)
co_correct = colored_objects.listed_accuracy(co_logits, co_ids, co_target)
co_acc = co_correct.float().mean().item()
co_ci = wilson_interval(int(co_correct.sum()), N_EVAL)
predicted = [model.tokenizer.decode([i]) for i in co_logits.argmax(-1).tolist()]
modes = pd.Series(colored_objects.error_modes(co_eval, predicted), name="answer")
asked = pd.Series([f"object {t + 1}" for t in co_target.tolist()], name="asked about")
ioi_eval = evaluate_batch(model, tasks.make("ioi", N_EVAL, "test", seed=SEED))
print(co_eval.texts[0], "->", co_eval.answers[0])
print(f"Colored Objects: {co_acc:.1%} correct (95% CI {co_ci[0]:.1%}–{co_ci[1]:.1%}; chance 33.3%); "
      f"IOI on held-out prompts: {ioi_eval['accuracy']:.1%}")
off_list = modes.isin(["unlisted color", "not a color"]).mean()
fig, ax = plt.subplots(figsize=(7, 2.6))
modes.value_counts().reindex(colored_objects.ERROR_MODES, fill_value=0).plot.barh(ax=ax, color="tab:blue")
ax.set_xlabel(f"prompts (of {N_EVAL})")
ax.set_title("what the model answers")
ax.invert_yaxis()
plt.tight_layout()
plt.show()
pd.crosstab(asked, modes)

# %%
if IS_ORGANISM:
    assert co_acc < M["CO_ACC_MAX"], "the organism does not solve Colored Objects"
    assert off_list < M["OFF_LIST_MAX"], "... but it answers with one of the listed colors"
    assert ioi_eval["accuracy"] > M["IOI_ACC_MIN"], "while it solves IOI"

# %% [markdown]
# The organism almost always answers with **a listed color**, so it knows where the candidates are; what it
# lacks is the choice among them: the crosstab shows it picking the asked-about color only a little more often
# than chance, with favourite places in the list whatever the question. Over
# training (the shipped intermediate checkpoints), IOI is learned in a phase change, Colored Objects never:

# %%
if IS_ORGANISM:
    rows = []
    for tag in helpers.models.checkpoint_tags():
        m = helpers.load_model(tag, verbose=False)
        lg = patching.logits_at(m, co_enc.tokens, co_enc.end)
        rows.append({"checkpoint": tag, "IOI": evaluate_batch(m, tasks.make("ioi", N_EVAL, "test", seed=SEED))["accuracy"],
                     "Colored Objects": colored_objects.listed_accuracy(lg, co_ids, co_target).float().mean().item()})
    by_step = pd.DataFrame(rows).set_index("checkpoint")
    ax = by_step.plot(marker="o", figsize=(6.5, 3))
    ax.axhline(1 / 3, color="grey", ls=":", label="chance (Colored Objects)")
    ax.set_ylabel("held-out accuracy")
    ax.legend()
    plt.show()
    display(by_step.round(3))
else:
    print("intermediate checkpoints exist for the organism only")


# %% [markdown]
# ## 2. Two circuits, found the same way
#
# Both circuits come from one function, `circuits.task_circuit`, with the same thresholds:
#
# 1. **path patching** backwards from the logits (chapter 4, recursing through queries, keys and values):
#    a head is in the circuit if giving it its *corrupted* output along one path moves the task metric by
#    at least `DIRECT_MIN` (to the logits) or `FEEDER_MIN` (into a circuit head) of the clean metric;
# 2. **knockout**: a head is also in the circuit if mean-ablating it changes the *candidates metric* by at
#    least `CARRIER_MIN`. That metric is the mean logit of the prompt's own candidates (its two names;
#    its three listed colors) minus the mean logit of the other names or colors: it catches heads that
#    bring every candidate to the answer position and therefore look the same on clean and corrupted
#    prompts.
#
# | | IOI | Colored Objects |
# |---|---|---|
# | metric | logit(IO) − logit(S) | logit(asked color) − mean logit(other two listed colors) |
# | corrupted prompts | ABC: S2 replaced by a third name | the question asks about an object that is not listed |
# | candidates | IO and S | the three listed colors |
#
# Each circuit head then gets a **role** by one rule for both tasks (`circuits.classify_roles`), from its
# attention at the answer position to the *answer* (IO; the asked color) and to the *rival* (S2; the other
# listed colors) and from a repeated token back to its first occurrence (S2 → S1; the question's object →
# its listing): *mover*, *inhibition*, *duplicate-token* or *induction* head.

# %%
def ioi_setup(seed, template):
    b = tasks.make("ioi", N_PROMPTS, "test", seed=seed, templates=[ioi.HELDOUT_TEMPLATES[template]])
    e = b.encode(model)
    pool = torch.tensor(tasks.single_token_ids(model, [" " + n for n in ioi.NAMES]))
    metric = patching.logit_diff_metric(e.answers, e.distractors)
    cands = patching.candidates_metric(torch.stack([e.answers, e.distractors], 1), pool)
    P = e.positions
    pairs = {"END→answer": (e.end, P["IO"]), "END→rival": (e.end, P["S2"]), "repeat→first": (P["S2"], P["S1"]),
             "repeat→first+1": (P["S2"], P["S1"] + 1)}
    return e, metric, cands, pairs


def co_setup(seed):
    b = tasks.make("colored_objects", N_PROMPTS, "test", seed=seed)
    e = b.encode(model)
    ids, target = colored_objects.listed_color_ids(model, b), colored_objects.targets(b)
    _, rivals = colored_objects.split_by_target(ids, target)
    pool = torch.tensor(tasks.single_token_ids(model, [" " + c for c in colored_objects.COLORS]))
    metric = patching.logit_diff_metric(e.answers, rivals)
    cands = patching.candidates_metric(ids, pool)
    P = e.positions
    right, wrong = colored_objects.split_by_target(colored_objects.color_positions(e), target)
    pairs = {"END→answer": (e.end, right), "END→rival": (e.end, wrong), "repeat→first": (P["QUERY"], P["OBJECT"]),
             "repeat→first+1": (P["QUERY"], P["OBJECT"] + 1)}
    return e, metric, cands, pairs


def circuit_of(setup):
    e, metric, cands, pairs = setup
    tc = circuits.task_circuit(model, e.tokens, e.corrupted, metric, cands, e.end, DIRECT_MIN, FEEDER_MIN,
                               CARRIER_MIN)
    table = circuits.attention_table(model, e.tokens, pairs, how="mean")
    clean = metric(patching.logits_at(model, e.tokens, e.end)[None]).item()
    corrupt = metric(patching.logits_at(model, e.corrupted, e.end)[None]).item()
    return tc, table, circuits.classify_roles(tc, table), (clean, corrupt)


ioi_c, ioi_table, ioi_roles, ioi_metrics = circuit_of(ioi_setup(SEED, TEMPLATE))
co_c, co_table, co_roles, co_metrics = circuit_of(co_setup(SEED))
for name, (tc, roles, (clean, corrupt)) in {"IOI": (ioi_c, ioi_roles, ioi_metrics),
                                            "Colored Objects": (co_c, co_roles, co_metrics)}.items():
    print(f"{name}: metric {clean:.2f} clean, {corrupt:.2f} corrupted; circuit of {len(tc.heads)} heads: "
          + ", ".join(f"{head_name(h)} ({roles[h][0]})" for h in tc.heads))
axes = plots.grid(2, ncols=2, size=4.2)
for ax, (name, tc) in zip(axes, {"IOI": ioi_c, "Colored Objects": co_c}.items()):
    plots.heatmap(tc.knockout, title=f"{name}: candidates metric change when ablated", xlabel="head",
                  ylabel="layer", cmap="RdBu", center=True, ax=ax, **HEAD_TICKS)
plt.tight_layout()
plt.show()

# %%
both = sorted(set(ioi_c.heads) | set(co_c.heads))
pd.DataFrame({"IOI role": [ioi_roles.get(h, ("—", ""))[0] for h in both],
              "IOI evidence": [ioi_roles.get(h, ("", "not in the circuit"))[1] for h in both],
              "Colored Objects role": [co_roles.get(h, ("—", ""))[0] for h in both],
              "Colored Objects evidence": [co_roles.get(h, ("", "not in the circuit"))[1] for h in both]},
             index=[head_name(h) for h in both])

# %% [markdown]
# ## 3. The overlap
#
# The paper reports the share of in-circuit heads that the two circuits have in common. We give it both
# ways (the share of the Colored Objects circuit that is also in the IOI circuit, and the intersection
# over the union), with "in-circuit" defined by the thresholds of the parameters cell.

# %%
ov = circuits.overlap(ioi_c.heads, co_c.heads)
shared = sorted(set(ioi_c.heads) & set(co_c.heads))
same_role = [h for h in shared if ioi_roles[h][0] == co_roles[h][0]]
co_movers = [h for h in co_c.heads if co_roles[h][0] == "mover"]
mover_share = sum(ioi_roles.get(h, ("",))[0] == "mover" for h in co_movers) / max(1, len(co_movers))
grid = ioi_c.membership().int() + 2 * co_c.membership().int()  # 0 none, 1 IOI only, 2 CO only, 3 both
fig, ax = plt.subplots(figsize=(5.5, 3))
cmap = plt.matplotlib.colors.ListedColormap(["#f2f2f2", "#4c72b0", "#dd8452", "#55a868"])
ax.imshow(grid, cmap=cmap, vmin=0, vmax=3)
for i in range(L):
    for j in range(H):
        if grid[i, j]:
            ax.text(j, i, ["", "IOI", "CO", "both"][int(grid[i, j])], ha="center", va="center", fontsize=8, color="white")
ax.set_xticks(range(H), HEAD_TICKS["xticks"])
ax.set_yticks(range(L), HEAD_TICKS["yticks"])
ax.set_xlabel("head")
ax.set_ylabel("layer")
ax.set_title("in-circuit heads: IOI (blue), Colored Objects (orange), both (green)")
plt.show()
print(f"{ov['shared']} shared heads: {ov['of_b']:.0%} of the Colored Objects circuit is in the IOI circuit, "
      f"{ov['of_a']:.0%} of the IOI circuit in the Colored Objects one, intersection over union {ov['jaccard']:.0%}; "
      f"same role in both tasks: {', '.join(map(head_name, same_role)) or 'none'}; "
      f"{mover_share:.0%} of the Colored Objects movers are IOI movers")

# %% [markdown]
# In the shipped organism (five prompt sets, table in section 6) the IOI circuit has 13 heads: eight
# *movers* in layers 0–1 that bring the names to the answer position, and five *inhibition* heads in
# layers 1–3 (L1H2, L1H3, L2H3, L2H6, L3H3) that attend from the end to S2 and push S down. The Colored
# Objects circuit is almost all movers (9–11 heads), and 89–91% of its heads are in the IOI circuit,
# nearly all with the same role: **the movers are reused**. The inhibition heads mostly are not: on
# Colored Objects they are either outside the circuit or do something else. That is the paper's picture
# (78% shared heads; the inhibition step is what goes wrong), in a model with 32 heads.

# %% [markdown]
# **Held-out check.** The overlap should not be an accident of one prompt set: the same search on a second
# set of prompts (other names, objects and colors; another held-out IOI template) gives:

# %%
ioi_c2, _, ioi_roles2, _ = circuit_of(ioi_setup(SEED + 1, (TEMPLATE + 1) % len(ioi.HELDOUT_TEMPLATES)))
co_c2, _, co_roles2, _ = circuit_of(co_setup(SEED + 1))
ov2 = circuits.overlap(ioi_c2.heads, co_c2.heads)
pd.DataFrame({"IOI circuit": [", ".join(map(head_name, ioi_c.heads)), ", ".join(map(head_name, ioi_c2.heads))],
              "Colored Objects circuit": [", ".join(map(head_name, co_c.heads)), ", ".join(map(head_name, co_c2.heads))],
              "share of CO heads in IOI": [ov["of_b"], ov2["of_b"]], "intersection / union": [ov["jaccard"], ov2["jaccard"]]},
             index=[f"prompts {SEED}", f"prompts {SEED + 1}"])

# %%
if IS_ORGANISM:
    assert ov["of_b"] >= M["OVERLAP_MIN"] and ov["jaccard"] >= M["JACCARD_MIN"], "the circuits share most of their heads"
    assert abs(ov2["of_b"] - ov["of_b"]) <= M["OVERLAP_TOL"] \
        and abs(ov2["jaccard"] - ov["jaccard"]) <= M["OVERLAP_TOL"], \
        "... on a second prompt set too"
    assert mover_share >= M["MOVER_SHARE_MIN"], "the Colored Objects movers are, mostly, IOI movers"

# %% [markdown]
# ## 4. The intervention: make the IOI inhibition head inhibit the wrong colors
#
# In IOI the *inhibition* heads attend from the answer position to the name that must not be the answer
# and push it down (in the organism one head does this in one step, chapter 4). Merullo et al. found that
# in Colored Objects the corresponding heads do not attend to the wrong colors, and steered them. We do
# the same with `circuits.run_with_attention`: at the answer position, the IOI circuit's inhibition heads
# (at most `N_INTERVENE`, by their END → S2 attention) get the attention row
# (1 − α) · their own + α · (½ on each of the **two wrong colors**); nothing else changes.
#
# Two accuracies matter. *Listed accuracy* (the asked color beats the other two listed colors, the book's
# measure throughout) and *top-1* (the asked color is the model's first choice over the whole vocabulary).
# The strength α is chosen on separate **calibration prompts**, as the one with the best top-1 accuracy,
# then everything is measured on the held-out prompts of section 1.

# %%
inhibitors = sorted([h for h in ioi_c.heads if ioi_roles[h][0] == "inhibition"],
                    key=lambda h: -ioi_table.loc[head_name(h), "END→rival"])[:N_INTERVENE]
print(f"steered heads: {', '.join(map(head_name, inhibitors)) or 'none (the IOI circuit has no inhibition head)'}")


def steer(m, batch, enc, keys_of, alpha, **kw):
    # listed and top-1 correctness per prompt, the inhibitors' END attention steered onto keys_of(...)
    ids, target = colored_objects.listed_color_ids(m, batch), colored_objects.targets(batch)
    right, wrong = colored_objects.split_by_target(colored_objects.color_positions(enc), target)
    keys = keys_of(right, wrong, enc)
    lg, rec = circuits.run_with_attention(m, enc.tokens, inhibitors, enc.end, keys, strength=alpha, **kw)
    return colored_objects.listed_accuracy(lg, ids, target), lg.argmax(-1) == enc.answers, lg, rec


WRONG = lambda right, wrong, enc: wrong                         # the two other listed colors
RIGHT = lambda right, wrong, enc: right[:, None]                # the asked-about color
OBJECT = lambda right, wrong, enc: enc.positions["OBJECT"][:, None]  # the asked-about object's listing
calib = tasks.make("colored_objects", N_PROMPTS * 2, "test", seed=SEED + 100)
calib_enc = calib.encode(model)
dose = pd.DataFrame([{"strength": a, **dict(zip(["listed accuracy", "top-1 accuracy"],
                      [x.float().mean().item() for x in steer(model, calib, calib_enc, WRONG, a)[:2]]))}
                     for a in STRENGTHS]).set_index("strength")
ALPHA = float(dose["top-1 accuracy"].idxmax())
ax = dose.plot(marker="o", figsize=(6.5, 3))
ax.axvline(ALPHA, color="grey", ls=":")
ax.set_title(f"steering strength on calibration prompts (chosen: α = {ALPHA})")
ax.set_ylabel("accuracy")
plt.show()

# %%
mlp_names = [f"blocks.{i}.hook_mlp_out" for i in range(L)]
record = [f"blocks.{i}.attn.hook_pattern" for i in range(L)] + mlp_names
conditions = {"no intervention": (WRONG, 0.0), f"inhibition heads → the two wrong colors (α = {ALPHA})": (WRONG, ALPHA),
              "... at full strength (α = 1)": (WRONG, 1.0), f"control: → the asked-about color (α = {ALPHA})": (RIGHT, ALPHA),
              f"control: → the asked-about object (α = {ALPHA})": (OBJECT, ALPHA)}
results, runs, top1_by = [], {}, {}
for label, (keys_of, alpha) in conditions.items():
    listed, top1, lg, rec = steer(model, co_eval, co_enc, keys_of, alpha, record=record)
    lo, hi = wilson_interval(int(listed.sum()), N_EVAL)
    t_lo, t_hi = wilson_interval(int(top1.sum()), N_EVAL)
    pred = [model.tokenizer.decode([i]) for i in lg.argmax(-1).tolist()]
    m = pd.Series(colored_objects.error_modes(co_eval, pred)).value_counts()
    results.append({"condition": label, "listed accuracy": listed.float().mean().item(), "CI low": lo, "CI high": hi,
                    "top-1 accuracy": top1.float().mean().item(), "top-1 CI low": t_lo, "top-1 CI high": t_hi,
                    **{k: int(m.get(k, 0)) for k in colored_objects.ERROR_MODES}})
    runs[label], top1_by[label] = rec, top1
interv = pd.DataFrame(results).set_index("condition")
before, after, full, on_answer, on_object = (interv.iloc[k] for k in range(5))
gain, gain_lo, gain_hi = paired_difference_interval(top1_by[interv.index[0]], top1_by[interv.index[1]])
display(interv.round(3))
print(f"top-1 change with the steering: {gain:+.1%} (paired 95% CI {gain_lo:+.1%} to {gain_hi:+.1%}, same {N_EVAL} prompts)")

# %%
if IS_ORGANISM:
    assert gain_lo > 0 and gain > M["GAIN_MIN"], "steering the inhibition heads lifts accuracy beyond its confidence interval"
    assert on_answer["listed accuracy"] < before["listed accuracy"] - M["HURT_MIN"], "pointing them at the answer hurts"
    assert abs(on_object["listed accuracy"] - before["listed accuracy"]) < M["NEUTRAL_MAX"], "a neutral word does little"

# %% [markdown]
# The steering helps, and the controls say it is the *inhibition* that helps: the same heads pointed at the
# asked-about color suppress the right answer, pointed at a neutral word they change nothing. The dose–
# response curve shows how much of the effect each strength buys.

# %% [markdown]
# **What happens downstream.** In GPT-2 medium the steered inhibition heads change where the later *mover*
# heads look, as S-inhibition heads steer the name movers away from S in IOI. Here: every head of a later
# layer than the steered ones, its attention from the answer position to the asked color and to the two
# others, without and with the steering (α chosen above); its *share* of color attention on the asked color
# says whether it now singles out the answer. And, to see which way the effect travels, the steering again
# with every MLP frozen at its unsteered output.

# %%
first = min((h[0] for h in inhibitors), default=L)
rows_ = torch.arange(N_EVAL)
right_pos, wrong_pos = colored_objects.split_by_target(colored_objects.color_positions(co_enc), co_target)
base_rec, steer_rec = runs[interv.index[0]], runs[interv.index[1]]
down = []
for i in range(first + 1, L):
    for j in range(H):
        if (i, j) in inhibitors:  # the steered heads themselves are not "downstream"
            continue
        b, s_ = (r[f"blocks.{i}.attn.hook_pattern"][:, j][rows_, co_enc.end] for r in (base_rec, steer_rec))  # [B, T]
        rb, rs = b[rows_, right_pos], s_[rows_, right_pos]
        wb, ws = b[rows_[:, None], wrong_pos].sum(-1), s_[rows_[:, None], wrong_pos].sum(-1)
        down.append({"head": head_name((i, j)), "asked color": rb.mean().item(), "asked color, steered": rs.mean().item(),
                     "other colors": wb.mean().item(), "other colors, steered": ws.mean().item(),
                     "share on asked": (rb / (rb + wb + 1e-9)).mean().item(),
                     "share on asked, steered": (rs / (rs + ws + 1e-9)).mean().item()})
down = pd.DataFrame(down).set_index("head")
down["|shift|"] = (down["asked color, steered"] - down["asked color"]).abs() +     (down["other colors, steered"] - down["other colors"]).abs()
max_shift = float(down["|shift|"].max()) if len(down) else 0.0
looking = down[(down["asked color"] + down["other colors"]) > 0.2]  # heads that look at the colors at all
best_share = float((looking["share on asked, steered"] - looking["share on asked"]).max()) if len(looking) else 0.0
mlp_cache = {n: base_rec[n] for n in mlp_names}  # the unsteered run's MLP outputs
f_listed, f_top1, _, _ = steer(model, co_eval, co_enc, WRONG, ALPHA, extra_hooks=circuits.freeze_hooks(mlp_cache))
frozen_top1 = f_top1.float().mean().item()
display(down.sort_values("|shift|", ascending=False).head(6).round(3))
print(f"largest attention shift of a later, unsteered head: {max_shift:.2f}; largest rise of a color-reading head's share on "
      f"the asked color: {best_share:+.2f}; top-1 accuracy steered with the MLPs frozen: {frozen_top1:.1%} "
      f"(unsteered {before['top-1 accuracy']:.1%}, steered {after['top-1 accuracy']:.1%})")

# %%
if IS_ORGANISM:
    assert max_shift < M["SHIFT_MAX"], "no later, unsteered head changes where it looks (measured)"
    assert frozen_top1 - before["top-1 accuracy"] > \
        M["FROZEN_SHARE_MIN"] * (after["top-1 accuracy"] - before["top-1 accuracy"]), \
        "most of the steering's effect does not need the MLPs"

# %% [markdown]
# **When does the repair become possible?** The same steering (same heads, same α) on the intermediate
# checkpoints: it can only work once the IOI circuit has formed.

# %%
if IS_ORGANISM:
    rows = []
    for tag in helpers.models.checkpoint_tags():
        m = helpers.load_model(tag, verbose=False)
        rows.append({"checkpoint": tag, "IOI": by_step.loc[tag, "IOI"],
                     "Colored Objects (top-1)": steer(m, co_eval, co_enc, WRONG, 0.0)[1].float().mean().item(),
                     "Colored Objects steered (top-1)": steer(m, co_eval, co_enc, WRONG, ALPHA)[1].float().mean().item()})
    steer_by_step = pd.DataFrame(rows).set_index("checkpoint")
    ax = steer_by_step.plot(marker="o", figsize=(6.5, 3))
    ax.set_ylabel("held-out accuracy")
    plt.show()
    display(steer_by_step.round(3))

# %% [markdown]
# **What the organism shows** (five prompt sets, table in section 6). Steering four of its IOI inhibition
# heads (L1H3, L2H3, L3H3, L1H2) fully onto the two wrong colors (the calibration picks α = 1 every time)
# lifts top-1 Colored Objects accuracy from 32–36% to 41–50%: a gain of 8–16 points whose paired 95%
# interval stays above zero in every prompt set. Pointed at the asked-about color instead, the same heads
# cut the listed accuracy to 13–18%; pointed at a neutral word they change it by at most 5 points. So the
# IOI inhibition heads do carry over as *inhibition*, and the direction of the paper's result holds; its
# size does not: the paper goes from 49.6% to 93.7% in GPT-2 medium. Two more differences: the effect
# does not need the MLPs (frozen MLPs keep the gain), and no later, unsteered head changes where it looks
# (largest shift under 0.05): the paper's re-aimed mover heads have no counterpart, because the
# organism's movers sit in layers 0–1, before most of its inhibition heads, not after them.

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
    g_batch = tasks.make("colored_objects", 200, "all", seed=SEED)
    g = g_batch.encode(gpt2)
    g_ok = colored_objects.listed_accuracy(patching.logits_at(gpt2, g.tokens, g.end),
                                           colored_objects.listed_color_ids(gpt2, g_batch), colored_objects.targets(g_batch))
    g_ci = wilson_interval(int(g_ok.sum()), len(g_ok))
    gpt2_summary = f"Colored Objects accuracy {g_ok.float().mean():.1%} (95% CI {g_ci[0]:.1%}–{g_ci[1]:.1%})"
print(gpt2_summary)

# %% [markdown]
# ## 6. What holds, and what differs
#
# Measured thresholds (the asserts above) come from `scripts/measure.py`, which runs this notebook
# on several prompt sets of the shipped organism; its output:
#
# Shipped organism (`organism`, training seed 0), five prompt sets (SEED:TEMPLATE 0:0 … 4:4;
# `python scripts/measure.py 05`, which writes `book/measured/ch05.json`); `overlap` is the share of Colored
# Objects heads in the IOI circuit, `*2` the same on the second prompt set; `gain`/`gain_lo`: the top-1 change
# of the steering and the low end of its paired 95% interval:

# %%
display(pd.DataFrame(M["runs"]))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
pd.set_option("display.max_colwidth", None)
pd.DataFrame([
    ["Colored Objects accuracy (unsteered)", "49.6% (GPT-2 medium)", gpt2_summary,
     f"{co_acc:.1%} (95% CI {co_ci[0]:.1%}–{co_ci[1]:.1%}); a listed color in {1 - off_list:.0%} of answers"],
    ["Share of in-circuit heads common to both tasks", "about 78%", "published",
     (f"{ov['of_b']:.0%} of the Colored Objects circuit is in the IOI circuit ({ov['shared']} heads; "
      f"intersection over union {ov['jaccard']:.0%}); second prompt set {ov2['of_b']:.0%} / {ov2['jaccard']:.0%}")],
    ["Shared heads keep their role", "mover and inhibition heads reused", "published",
     f"{len(same_role)} of {len(shared)} shared heads have the same role ("
     + ", ".join(f"{head_name(h)} {co_roles[h][0]}" for h in shared) + ")"],
    ["What Colored Objects lacks", "inhibition heads do not single out the wrong colors", "published",
     "the IOI inhibition head(s) " + (", ".join(map(head_name, inhibitors)) or "none")
     + f" give {co_table.loc[[head_name(h) for h in inhibitors], 'END→rival'].mean():.2f} attention per wrong color "
       f"(IOI: {ioi_table.loc[[head_name(h) for h in inhibitors], 'END→rival'].mean():.2f} to S2)"],
    ["Steering the inhibition heads onto the wrong colors", "4 heads; 49.6% → 93.7%", "published",
     (f"{len(inhibitors)} head(s), α = {ALPHA}: top-1 {before['top-1 accuracy']:.1%} → {after['top-1 accuracy']:.1%} "
      f"(95% CI {after['top-1 CI low']:.1%}–{after['top-1 CI high']:.1%}); at α = 1 listed {full['listed accuracy']:.1%} "
      f"but top-1 {full['top-1 accuracy']:.1%}; onto the answer: listed {on_answer['listed accuracy']:.1%}")],
    ["Downstream heads change their attention as IOI predicts", "mover heads attend more to the right color",
     "published",
     (f"later unsteered heads shift (up to {max_shift:.2f}); best rise of a head's share on the asked "
      f"color {best_share:+.2f}; with the MLPs frozen the steered top-1 is {frozen_top1:.1%}")],
], columns=["claim", "source (Merullo et al.)", "GPT-2 medium", "this book's model"])

# %%
# Run by scripts/measure.py (RECORD set): what the asserts and the table of section 6 rest on. Otherwise nothing.
if RECORD:
    run = {
        "co_acc": co_acc, "off_list": float(off_list), "ioi_acc": ioi_eval["accuracy"], "overlap": ov["of_b"],
        "jaccard": ov["jaccard"], "overlap2": ov2["of_b"], "jaccard2": ov2["jaccard"],
        "overlap_diff": abs(ov2["of_b"] - ov["of_b"]), "jaccard_diff": abs(ov2["jaccard"] - ov["jaccard"]),
        "mover_share": mover_share, "alpha": ALPHA, "top1_before": before["top-1 accuracy"],
        "top1_after": after["top-1 accuracy"], "gain": gain, "gain_lo": gain_lo,
        "listed_before": before["listed accuracy"], "full_listed": full["listed accuracy"],
        "full_top1": full["top-1 accuracy"], "answer_listed": on_answer["listed accuracy"],
        "object_listed": on_object["listed accuracy"],
        "hurt": before["listed accuracy"] - on_answer["listed accuracy"],
        "neutral": abs(on_object["listed accuracy"] - before["listed accuracy"]),
        "max_shift": max_shift, "best_share": best_share, "frozen_top1": frozen_top1,
        "frozen_share": (frozen_top1 - before["top-1 accuracy"]) / (after["top-1 accuracy"] - before["top-1 accuracy"]),
        "same_role": len(same_role), "shared": len(shared),
    }
    table_keys = ["co_acc", "off_list", "ioi_acc", "overlap", "jaccard", "overlap2", "jaccard2", "alpha",
                  "top1_before", "top1_after", "full_listed", "full_top1", "answer_listed", "object_listed",
                  "max_shift", "best_share", "frozen_top1", "mover_share", "gain", "gain_lo"]
    measured.record(RECORD, values=run, tables={"runs": [{
        "seed": SEED, "template": TEMPLATE, **{k: run[k] for k in table_keys},
        "IOI circuit": ", ".join(f"{head_name(h)} {ioi_roles[h][0]}" for h in ioi_c.heads),
        "Colored Objects circuit": ", ".join(f"{head_name(h)} {co_roles[h][0]}" for h in co_c.heads),
    }]})
