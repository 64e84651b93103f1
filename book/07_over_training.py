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
# # 7. Circuits over training: how they form, and what fine-tuning does to them
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/07_over_training.ipynb)
#
# **Sources.** Seed 000 {cite}`dhimoila2023seminaire` (a student report, in French) set out to study
# *exaptation* in transformers: a feather evolved to keep warm and was then reused to fly; does a circuit
# learned for one task get reused, or rebuilt, when the model is fine-tuned on another? The author fine-tuned
# GPT-2 small on a task chosen to lean on the first phase of the IOI circuit (chapter 4), **"which token
# appeared most often"**, to watch the IOI heads change (its section 3). He could not: the attention diagrams
# of the heads the IOI paper names were "all about the same", smooth **gradients** ("dégradés"), with nothing
# of their role in them. His section 4 asks for better ways than eyeballing diagrams to say what a head does,
# and proposes fine-tuning on **poems** (where repetition is useless, so induction heads should fade) against
# **articles** (where terms come back, so they should strengthen). Seed 002 (a reading-group deck) cites Chen
# et al. (2024) {cite}`chen2024sudden`: the *acquisition* of a head shows as a sudden drop in the loss and a
# jump in task accuracy.
#
# This chapter does all of it on the book's organism, whose training left a dense log and checkpoints:
# (1) the circuits' heads forming during training, dated and set against the loss and the accuracies;
# (2) why the diagrams were gradients, and one number per head and role instead; (3) the fine-tuning on
# "most frequent", with every IOI circuit head measured before and after and the share of the new task's
# heads that were IOI heads, against chance; (4) poems against articles. Set `MODEL = "gpt2-small"` with
# network access for the seed's model (the training-log section is the organism's only).

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
MODEL = "organism"        # "gpt2-small" (online) runs sections 2-4 on the seed's model
SEED = 0                  # seeds the prompts and the fine-tuning runs (fine-tuning seeds SEED*FT_SEEDS + k)
TEMPLATE = 0              # the held-out IOI template of the circuit search (fixed positions)
N_PROMPTS = 32            # prompts per circuit search
N_EVAL = 300              # held-out prompts for accuracies
DIRECT_MIN = 0.10         # path patching to the logits: |change| ≥ this fraction of the clean metric
FEEDER_MIN = 0.10         # path patching into a circuit head's query, key or value: same
DEPTH = 2                 # levels of the backwards search (2: the heads writing the answer and their feeders)
CARRIER_MIN = 0.03        # a head carries the answer if its mean-ablation lowers the answer logit by ≥ this fraction
ATT_MIN = 0.30            # roles (chapter 5's rule): attention counted from this value
COPY_MIN = 0.50           # roles: a mover's OV circuit copies at least this share of the names
RISE_FRAC = 0.5           # a curve has "risen" when it has covered this share of its way to its final value
LOSS_SKIP = 300           # the loss's first fall (from log(vocabulary) to a plateau) is not a phase change
DROP_WINDOW = 300         # steps of the sharpest loss drop (about the time the induction accuracy takes to rise)
FT_SEEDS = 3              # fine-tuning runs on "most frequent"
FT_STEPS = 120            # AdamW steps per fine-tuning run (32 prompts each)
FT_LR = 1e-3
MF_LENGTH, MF_TOP = 8, 3  # names per prompt; mentions of the most frequent one (the runner-up has one fewer)
CORPUS_STEPS = 60         # fine-tuning steps on the poems and on the articles (16 sequences of 24 tokens)
N_RANDOM = 10000          # random head-set pairs for the reuse baseline
GPT2_MODEL = "gpt2-small" # section 5, online only
RECORD = ""               # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

import helpers
from helpers import circuits, finetune, formation, heads, measured, patching, plots, tasks
from helpers.circuits import head_name
from helpers.hooks import capture
from helpers.loading import ORGANISM_DIR
from helpers.tasks import most_frequent
from helpers.tasks.evaluate import evaluate_batch, evaluate_induction, paired_difference_interval

T0, CPU0 = time.time(), time.process_time()
helpers.seed_everything(SEED)
torch.set_num_threads(1)  # the machine is shared; one thread is also fastest for the small model
model = helpers.load_model(MODEL)
L, H = model.cfg.n_layers, model.cfg.n_heads
IS_ORGANISM = MODEL.startswith("organism")
BOS = model.tokenizer.bos_token_id
M = measured.load("ch07")  # the asserts' thresholds and the measured table (section 6)
print(f"model: {MODEL} ({L} layers x {H} heads, d_model={model.cfg.d_model})")
print(helpers.describe(torch.device(model.cfg.device)))

# %% [markdown]
# ## The IOI circuit of the finished model
#
# Everything below is about the heads of one circuit, found the way chapter 4 finds it: answer-aware
# path patching backwards from the logits on held-out IOI prompts of one template (metric logit(IO) −
# logit(S), ABC twins as corrupted prompts, `DEPTH` levels), plus the *carriers*, heads whose output,
# replaced by its mean over the ABC prompts, lowers the IO logit by at least `CARRIER_MIN` (path patching
# cannot see heads that move every name alike on clean and corrupted prompts). Each head's role comes from
# what it measurably does (chapter 5's `circuits.behaviour_roles`: *mover*, *inhibition*,
# *duplicate-token*, *induction* or *other*). `circuits.circuit_with_roles` does all of it, for any task.
# Nothing below names a head by hand.

# %%
ioi_set = circuits.ioi_setup(model, N_PROMPTS, SEED, TEMPLATE)
circ0 = circuits.circuit_with_roles(model, ioi_set, DIRECT_MIN, FEEDER_MIN, ATT_MIN, COPY_MIN, DEPTH, CARRIER_MIN)
found0, roles0, table0, effect0, clean0 = circ0.found, circ0.roles, circ0.table, circ0.effect, circ0.clean
ioi_heads = circ0.heads
print(f"IOI circuit ({len(ioi_heads)} heads, clean logit diff {clean0:.2f}): "
      + ", ".join(f"{head_name(h)} ({roles0[h][0]})" for h in ioi_heads))
pd.set_option("display.max_colwidth", None)
pd.set_option("display.max_columns", None)
pd.set_option("display.width", 250)
pd.DataFrame({"found by": ["path patching" if h in found0.heads else "carrier" for h in ioi_heads],
              "role": [roles0[h][0] for h in ioi_heads], "evidence": [roles0[h][1] for h in ioi_heads]},
             index=[head_name(h) for h in ioi_heads])

# %% [markdown]
# ## 1. Formation: the heads, the loss and the accuracies over training
#
# The organism's training logged its loss every 25 steps and, at every evaluation (every 100 steps in its
# first phase, 25 in the Colored Objects curriculum that follows it, 50 in the second phase), each task's
# held-out accuracy and every head's attention scores on fixed probes: previous-token, induction and
# duplicate-token on repeated random tokens, and on IOI prompts END → IO, END → S2, S2 → S1
# (`helpers.formation.TrainingLog`). Each head is followed on the score of its role (`formation.ROLE_SCORE`: a
# mover on END → IO, an inhibition head on END → S2, ...). Two more kinds of heads form the organism's
# induction circuit: the **previous-token** and **induction** heads, the heads whose final score on those
# probes is at least `ATT_MIN`.
#
# A curve's *rise step* is the first logged step at which it has covered `RISE_FRAC` of its way from its first
# to its final value (at the end of the first phase, step 2,400: the curriculum and the second phase changed
# the data). The loss's candidate phase change is the `DROP_WINDOW` steps where it falls most, after its first
# `LOSS_SKIP` steps (`formation.loss_drop`, chapter 1's `phase_change` on the log). Such a window always
# exists, so as in chapter 1 it counts as a *sudden* change only if it holds a large share of the loss's fall
# over the phase and falls several times more than the windows of the same length just before and just after
# it (`DROP_SHARE_MIN`, `DROP_SHARP_MIN` in `book/measured/ch07.json`); the first table below does the same
# for other window lengths. (The logged loss is the mixture's next-token loss, an exponential average over
# about 20 steps; in the curriculum, the mixture batches' loss of a single step.)

# %%
if IS_ORGANISM:
    tl = formation.TrainingLog.load(ORGANISM_DIR)
    P1 = tl.phase1
    EVERY = int(np.diff(tl.score_steps[tl.score_steps <= P1]).min())  # the evaluation interval of phase 1
    final = {k: v[tl.score_steps <= P1][-1] for k, v in tl.scores.items()}
    prev_heads = [h for h in circuits.top_heads(torch.tensor(final["prev_token"]), L * H)
                  if final["prev_token"][h] >= ATT_MIN]
    ind_heads = [h for h in circuits.top_heads(torch.tensor(final["induction"]), L * H)
                 if final["induction"][h] >= ATT_MIN]
    # (head, logged score, kind): the IOI circuit's heads on the score of their role, then the induction circuit
    curves = [(h, formation.ROLE_SCORE[roles0[h][0]], f"IOI {roles0[h][0]}") for h in ioi_heads
              if roles0[h][0] in formation.ROLE_SCORE]
    curves += [(h, "prev_token", "previous-token") for h in prev_heads] + [(h, "induction", "induction") for h in ind_heads]
    rise = {(h, s): formation.rise_step(tl.head_curve(s, h), RISE_FRAC, until=P1) for h, s, _ in curves}
    drop_lo, drop_hi, pc = formation.loss_drop(tl.loss, P1, after=LOSS_SKIP, window=DROP_WINDOW)
    acc_rise = {t: formation.rise_step(tl.eval[t], RISE_FRAC, until=P1) for t in ["induction", "ioi", "articles", "counting"]}
    formed = pd.DataFrame({"kind": [k for _, _, k in curves], "score": [s for _, s, _ in curves],
                           f"at step {tl.score_steps[0]}": [tl.head_curve(s, h).iloc[0] for h, s, _ in curves],
                           f"at step {P1}": [tl.head_curve(s, h).loc[P1] for h, s, _ in curves],
                           "rise step": [rise[h, s] for h, s, _ in curves]},
                          index=[head_name(h) for h, _, _ in curves]).sort_values("rise step")
    print(f"sharpest loss drop (after step {LOSS_SKIP}): steps {drop_lo}-{drop_hi}, {pc.drop:.2f} nats, {pc.share:.0%} "
          f"of the loss's fall over steps {LOSS_SKIP}-{P1} ({pc.total:.2f} nats), {pc.sharpness:.1f}x the larger fall of "
          f"the {DROP_WINDOW} steps before ({pc.before:.2f}) or after ({pc.after:.2f}); accuracy rise steps: "
          + ", ".join(f"{t} {s}" for t, s in acc_rise.items()))

    def drop_row(window):
        lo, hi, c = formation.loss_drop(tl.loss, P1, after=LOSS_SKIP, window=window)
        return {"steps": f"{lo}-{hi}", "fall (nats)": c.drop, "share of the phase's fall": c.share,
                "fall before": c.before, "fall after": c.after, "sharpness": c.sharpness}
    drop_windows = pd.DataFrame({w: drop_row(w) for w in (100, 200, DROP_WINDOW, 400, 600)}).T
    display(drop_windows.rename_axis("window (steps)").round(2))
    display(formed.round(2))
else:
    print("the training log exists for the organism only")

# %%
if IS_ORGANISM:
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ax = axes[0]
    ax.plot(tl.loss.step, tl.loss.loss)
    ax.axvspan(drop_lo, drop_hi, color="tab:red", alpha=0.2, label=f"sharpest drop ({drop_lo}-{drop_hi})")
    ax.axvline(P1, color="grey", ls=":", lw=1, label="end of phase 1")
    ax.set(xlabel="step", ylabel="training loss", title="loss (curriculum: one batch a point)", yscale="log")
    ax.legend(fontsize=7)
    ax = axes[1]
    for t in ["induction", "ioi", "articles", "counting", "colored_objects"]:
        ax.plot(tl.eval.index, tl.eval[t], label=t)
    ax.axvspan(drop_lo, drop_hi, color="tab:red", alpha=0.2)
    ax.axvline(P1, color="grey", ls=":", lw=1)
    ax.set(xlabel="step", ylabel="held-out accuracy", title="tasks")
    ax.legend(fontsize=7)
    ax = axes[2]
    style = {"previous-token": ":", "induction": "--"}
    for h, s, k in curves:
        c = tl.head_curve(s, h)
        ax.plot(c.index, c.values, ls=style.get(k, "-"), label=f"{head_name(h)} {k} ({s})")
    ax.axvspan(drop_lo, drop_hi, color="tab:red", alpha=0.2)
    ax.axvline(P1, color="grey", ls=":", lw=1)
    ax.set(xlabel="step", ylabel="attention score", title="the circuits' heads (score of their role)", xlim=(0, P1))
    ax.legend(fontsize=6, loc="lower right")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# The circuit's **faithfulness** over training: at each saved checkpoint, the IOI logit difference of the
# whole model, F(M), and of the finished model's circuit alone, F(C), every other head's output replaced by
# its mean over the ABC prompts (`circuits.faithfulness`; chapter 4, section 7, on the final model).

# %%
if IS_ORGANISM:
    faith_rows = []
    for tag in helpers.loading.checkpoint_tags():
        m = model if tag == "organism" else helpers.load_model(tag, verbose=False)
        s = circuits.ioi_setup(m, N_PROMPTS, SEED, TEMPLATE)
        f = circuits.faithfulness(m, s, ioi_heads)
        step = int(tag.split("step")[-1]) if "@" in tag else int(tl.eval.index.max())
        share = f["F(C)"] / f["F(M)"] if f["F(M)"] > 1 else float("nan")  # undefined while IOI is unsolved
        faith_rows.append({"checkpoint": tag, "step": step, **f, "F(C)/F(M)": share})
    faith = pd.DataFrame(faith_rows).set_index("step")
    ax = faith[["F(M)", "F(C)", "F(empty)"]].plot(marker="o", figsize=(6.5, 3))
    ax.axvspan(drop_lo, drop_hi, color="tab:red", alpha=0.2)
    ax.set(ylabel="IOI logit difference", title="whole model, circuit alone, no head")
    plt.show()
    display(faith.round(2))

# %%
if IS_ORGANISM:
    ind_rise = float(np.median([rise[h, "induction"] for h in ind_heads]))
    prev_rise = min(rise[h, "prev_token"] for h in prev_heads)
    inhib = [h for h in ioi_heads if roles0[h][0] == "inhibition"]
    inh_rise = [rise[h, "end_to_s2"] for h in inhib]
    ioi_done = formation.first_reaching(tl.eval["ioi"][tl.eval.index <= P1], M["IOI_DONE_FRAC"] * tl.eval["ioi"].loc[P1])
    TOL = EVERY  # one evaluation interval: a rise is dated no finer than that
    inh_with = sum(abs(r - ind_rise) <= TOL for r in inh_rise)  # inhibition heads rising with the induction heads
    before = faith[faith.index < acc_rise["ioi"]]               # checkpoints before the IOI accuracy rose
    attending = before[before.index >= np.median(inh_rise)]     # ... of them, those where most inhibition heads had risen
    after = faith[faith.index >= acc_rise["ioi"]]               # checkpoints from the IOI accuracy's rise on
    print(f"inhibition heads {', '.join(map(head_name, inhib))} rise at steps {', '.join(map(str, inh_rise))} "
          f"({inh_with} of {len(inhib)} within one evaluation of the induction heads, step {ind_rise:.0f}); the IOI "
          f"accuracy rises at step {acc_rise['ioi']} and reaches {M['IOI_DONE_FRAC']:.0%} of its final value at {ioi_done}. "
          f"The circuit alone, F(C): at most {before['F(C)'].max():.2f} before the IOI accuracy rose (steps "
          f"{', '.join(map(str, before.index))}; most inhibition heads had risen at {', '.join(map(str, attending.index))}), "
          f"at least {after['F(C)'].min():.2f} from then on")
    # the loss's sharpest fall is sudden: a large share of the phase's fall, many times faster than beside it
    assert pc.share > M["DROP_SHARE_MIN"] and pc.sharpness > M["DROP_SHARP_MIN"], (pc.share, pc.sharpness)
    # the induction heads rise inside the loss's sharpest drop, with the induction accuracy
    assert drop_lo <= ind_rise <= drop_hi + TOL, (ind_rise, drop_lo, drop_hi)
    assert abs(ind_rise - acc_rise["induction"]) <= TOL
    # the previous-token heads rise with them: not before, and at most one interval later
    assert ind_rise <= prev_rise <= ind_rise + TOL, (prev_rise, ind_rise)
    # most IOI inhibition heads' END→S2 attention rises with the induction heads, and all before IOI is done
    assert len(inhib) >= M["N_INHIB_MIN"] and inh_with > len(inhib) / 2, (inh_rise, ind_rise)
    assert max(inh_rise) <= ioi_done + TOL, (inh_rise, ioi_done)
    # attention first, function later: the circuit carries no logit difference before the IOI accuracy rises, even
    # at a checkpoint where most of its inhibition heads already attend END→S2; a large one from then on
    assert len(attending) and before["F(C)"].max() < M["FC_BEFORE_MAX"], before["F(C)"]
    assert after["F(C)"].min() > M["FC_AFTER_MIN"], after["F(C)"]

# %% [markdown]
# **What the log shows** (the tables above; the log is the same for every prompt set, and so are three of the
# circuit's inhibition heads, L2H4, L2H5 and L3H1, with L3H2 in two sets of three; its movers are L1H2 and,
# depending on the set, L1H0, L1H5 and L1H6). After a plateau (about 3.1-3.3 nats from step 350 to 750) the
# loss of the first phase falls 0.91 nats in the 300 steps 725-1025: 69% of its whole fall over steps
# 300-2,400 (1.32 nats), 5.8 times the larger fall of the 300 steps before (0.16) or after (0.15). That is
# sudden on the scale of the phase (asserted), but it is a fall of a few hundred steps, not a jump between two
# evaluations: in 100-step windows the steepest one (800-900, 0.41 nats) has neighbours that fall 0.21 and
# 0.28 (1.4 times less), and only windows of 200 steps or more stand out from theirs (the first table). In
# the same steps the induction accuracy goes from 4% (step 700) to 23%, 80% and 98% (step 1,000), and the six
# induction heads (L1H0, L1H1, L1H2, L1H5, L1H6, L1H7) get their scores: 0.41-0.44 at step 800, 0.68-0.77 at
# 900, where all six and the accuracy have covered half their way (asserted: inside the fall, together). The
# two previous-token heads start rising with them (0.22-0.26 at step 800) and reach half their final score
# one and two evaluations later (L0H0 at step 1,000, L0H6 at 1,100; asserted for the first: not before, at
# most one interval after). This is the induction phase change of Olsson et al. {cite}`olsson2022context`,
# and the acquisition signature Chen et al. (2024) report for syntactic heads: head, loss and accuracy move
# together.
#
# The IOI **inhibition** heads do not wait for it. The END → S2 attention of L2H4, L2H5 and L3H1 rises in the
# same steps (0.26-0.31 at step 700, 0.56-0.69 at 800, 0.74-0.82 at 900): their rise step is 800, one
# evaluation before the induction heads' (asserted: most inhibition heads within one interval of them). It
# then wavers (L2H4 falls back to 0.06 at step 1,100, L2H5 to 0.50) and recovers from step 1,200 (0.53-0.91);
# the fourth, L3H2, rises only at 1,400. The IOI accuracy does not follow the first three: it stays at chance
# (0.45-0.50 from step 800 to 1,200), climbs at 1,300-1,500 (0.61, 0.74, 0.89; rise step 1,400) and reaches
# 95% of its end-of-phase value (0.97) at step 1,600, after every inhibition head has risen (asserted). The
# checkpoints date the circuit's *function*: at step 1,000, when L2H4, L2H5 and L3H1 already put 0.40-0.74 of
# their attention from END on S2, the finished circuit alone gives no logit difference (−0.11 to 0.09 over the
# three prompt sets, as at step 500), and from step 1,500, once the IOI accuracy has risen, it gives 4.1-4.7
# logits, then 7-10 (asserted: below `FC_BEFORE_MAX` at every checkpoint before the IOI accuracy rose, one of
# them after most inhibition heads had; above `FC_AFTER_MIN` from then on). So these heads found where to look
# 500-700 steps before the circuit did anything with it. What changed in between is not where they look; it is
# what they write, or what the heads before them hand them, which an attention log cannot show. (Part of the
# answer to where they look is in section 2: they attend to S2's place as much on the ABC twins, where another
# name, not a repeat, stands there, so finding it needs no repeated name.) The IOI **movers** are all
# induction heads as well, one head serving both circuits with a different score on each probe: their END → IO
# attention rises at step 1,100, two evaluations after their induction scores and three before the IOI
# accuracy.
#
# The organism this book shipped before told a different order: three of its four inhibition heads rose
# *after* the induction heads (steps 1,100-1,400), and its circuit carried nothing until most of them had. Two
# asserts said so, and both were replaced by the ones above. "Most inhibition heads rise after the induction
# heads" fails here (none of three, or one of four). "The circuit carries nothing before most inhibition heads
# rose and a large logit difference after all had" no longer tested anything: in one prompt set the circuit
# has no L3H2, so all its inhibition heads rise at step 800 and the checkpoint of step 1,000 (0.06 logits)
# counted as "after", and the threshold derived from the runs fell to 0.05 logits. (At the curriculum's step
# 2,669, where Colored Objects is half learnt, the whole model's IOI logit difference dips to 1.9-7.3 while
# the circuit alone keeps 5.1-7.8: for a moment the rest of the model works against IOI.)

# %% [markdown]
# ## 2. Why the seed's diagrams were gradients
#
# The seed looked at whole attention diagrams, on inputs where the heads have nothing to do, and saw
# smooth gradients. A head's role is a statement about **one query position on the inputs it serves**:
# an inhibition head attends from END to S2 on IOI prompts. Elsewhere (every other row of the same
# diagram, or text with no IOI in it) its attention has no target, and it spreads over the earlier tokens
# or parks on the first one. `heads.attention_spread` puts a number on each picture, per head: the
# largest weight of a row (1: one key), the row's entropy (0: one key; 1: uniform) and its weight on the
# first token (the BOS "sink"); on filler, also its weight on the query's own token (a bright diagonal).
# Below, the circuit's heads on **filler text** (the organism's sentences with no IOI structure), on
# **every row** of IOI prompts, and on **the END row** of IOI prompts.

# %%
filler = tasks.make("filler", 64, "test", seed=SEED).encode(model)
ioi_eval_enc = tasks.make("ioi", 64, "test", seed=SEED).encode(model)
spread = {"filler, every row": heads.attention_spread(model, filler.tokens, filler.lengths),
          "IOI, every row": heads.attention_spread(model, ioi_eval_enc.tokens, ioi_eval_enc.lengths),
          "IOI, END row": heads.attention_spread(model, ioi_eval_enc.tokens, query_pos=ioi_eval_enc.end)}
spread_table = pd.DataFrame({f"{k}: {stat}": [float(v[stat][h]) for h in ioi_heads]
                             for k, v in spread.items() for stat in ("max", "entropy", "bos")},
                            index=[f"{head_name(h)} ({roles0[h][0]})" for h in ioi_heads])
pat_f = heads.attention_patterns(model, filler.tokens)                # (layers, prompts, heads, query, key)
q = torch.arange(pat_f.shape[-1])
rows_f = (q[None, :] >= 1) & (q[None, :] < torch.as_tensor(filler.lengths).cpu()[:, None])
own = pat_f.diagonal(dim1=-2, dim2=-1)                                # each row's weight on its own token
spread_table.insert(3, "filler, every row: own token", [float(own[h[0], :, h[1]][rows_f].mean()) for h in ioi_heads])
display(spread_table.round(2))

# %%
def show_pattern(m, tokens, length, head, ax, title):
    pat = heads.attention_patterns(m, tokens[None, :length])[head[0], 0, head[1]]
    labels = [t.strip() or "⏎" for t in m.to_str_tokens(tokens[:length])]
    ax.imshow(pat, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(length), labels, rotation=90, fontsize=6)
    ax.set_yticks(range(length), labels, fontsize=6)
    ax.set_title(title, fontsize=9)


shown = sorted(ioi_heads, key=lambda h: -float(effect0[h].abs()))[:2]
fig, axes = plt.subplots(len(shown), 2, figsize=(11, 5.2 * len(shown)))
axes = np.atleast_2d(axes)
for r, h in enumerate(shown):
    show_pattern(model, filler.tokens[0], int(filler.lengths[0]), h, axes[r, 0], f"{head_name(h)} on filler text")
    show_pattern(model, ioi_eval_enc.tokens[0], int(ioi_eval_enc.lengths[0]), h, axes[r, 1],
                 f"{head_name(h)} ({roles0[h][0]}) on an IOI prompt: look at the last row")
plt.tight_layout()
plt.show()

# %% [markdown]
# The same head, interactively (circuitsvis; hover a token to see where it attends):

# %%
n0 = int(ioi_eval_enc.lengths[0])
plots.attention_heads(
    heads.attention_patterns(model, ioi_eval_enc.tokens[:1, :n0])[[h[0] for h in shown], 0, [h[1] for h in shown]],
    model.to_str_tokens(ioi_eval_enc.tokens[0, :n0]), [head_name(h) for h in shown])

# %% [markdown]
# **Scores instead of eyeballing.** One number per head and role, each beside a baseline that says what
# no role would give: the role's attention on the task (the table of chapter 5's role rule) against the
# attention a head spreading uniformly over the row's keys would give the same keys, and the same
# attention on the corrupted (ABC) prompts, where S2 is no longer a repeated name.

# %%
e0 = ioi_set.enc
cols = {"inhibition": "END→rival", "mover": "END→answer", "duplicate-token": "repeat→first",
        "induction": "repeat→first+1", "other": "END→rival"}
uniform = {"END→rival": (1 / (e0.end.float() + 1)).mean().item(), "END→answer": (1 / (e0.end.float() + 1)).mean().item(),
           "repeat→first": (1 / (e0.positions["S2"].float() + 1)).mean().item(),
           "repeat→first+1": (1 / (e0.positions["S2"].float() + 1)).mean().item()}
abc_table = circuits.attention_table(model, e0.corrupted, ioi_set.pairs, how="sum")
role_scores = pd.DataFrame([{"head": head_name(h), "role": roles0[h][0], "score": cols[roles0[h][0]],
                             "on IOI": table0.loc[head_name(h), cols[roles0[h][0]]],
                             "on ABC twins": abc_table.loc[head_name(h), cols[roles0[h][0]]],
                             "uniform row": uniform[cols[roles0[h][0]]]} for h in ioi_heads]).set_index("head")
role_scores["IOI / uniform"] = role_scores["on IOI"] / role_scores["uniform row"]
display(role_scores.round(3))

# %%
inhib = [h for h in ioi_heads if roles0[h][0] == "inhibition"]
inh_filler_max = float(np.mean([float(spread["filler, every row"]["max"][h]) for h in inhib])) if inhib else float("nan")
inh_end_max = float(np.mean([float(spread["IOI, END row"]["max"][h]) for h in inhib])) if inhib else float("nan")
inh_ratio = float(role_scores.loc[[head_name(h) for h in inhib], "IOI / uniform"].min()) if inhib else float("nan")
movers = [h for h in ioi_heads if roles0[h][0] == "mover"]
mover_rows = spread_table.loc[[f"{head_name(h)} (mover)" for h in movers]]
mover_bos = float(mover_rows["filler, every row: bos"].max()) if movers else float("nan")  # the most parked mover
mover_end_bos = float(mover_rows["IOI, END row: bos"].max()) if movers else float("nan")
own_head = spread_table["filler, every row: own token"].idxmax()  # the circuit's most diagonal head, any role
print(f"inhibition heads: largest weight of a row {inh_filler_max:.2f} on filler, {inh_end_max:.2f} on the END "
      f"row of IOI prompts; END→S2 at least {inh_ratio:.1f}x what a uniform row would give. Movers, weight on the "
      "first token on filler / at END, and on the own token on filler: "
      + "; ".join(f"{n.split()[0]} {r['filler, every row: bos']:.2f} / {r['IOI, END row: bos']:.2f}, "
                  f"{r['filler, every row: own token']:.2f}" for n, r in mover_rows.iterrows())
      + f". Most weight on its own token on filler: {own_head}, {spread_table.loc[own_head, 'filler, every row: own token']:.2f}")
if IS_ORGANISM:
    assert inh_filler_max < M["FILLER_MAX_MAX"] and inh_end_max > M["END_MAX_MIN"], "gradient elsewhere, sharp on the job"
    assert inh_ratio > M["ROLE_RATIO_MIN"], "the role score is far above its uniform baseline"
    assert mover_bos > M["MOVER_BOS_MIN"] > mover_end_bos, "off duty a mover parks on the first token, at END none does"

# %% [markdown]
# On the organism the "dégradé" is the picture of a head **off duty**, and it takes three forms. The
# inhibition heads (L2H4, L2H5, L3H1 and, in two prompt sets, L3H2) spread their attention over the whole
# prefix on filler text and on every row of an IOI prompt but the last (largest weight of a row 0.35-0.59 per
# head, 0.49-0.50 on average over the three prompt sets; entropy 0.55-0.84): a gradient. At END on IOI prompts
# the same heads put 0.93-0.98 of their attention on one token, and their END → S2 attention is 11-16 times
# what a uniform row gives (asserted). The layer-1 movers instead park on the first token when they have
# nothing to do (weight on filler 0.94-0.95 for L1H6, 0.85-0.87 for L1H2, 0.73-0.78 for L1H0: the "attention
# sink" of Xiao et al. {cite}`xiao2023efficient`, which seed 002 cites), so their diagrams are one bright first
# column; at END they put at most 0.07 there (asserted, for the most parked mover of each prompt set) and
# 0.34-0.49 on IO. Not every mover parks (L1H5, a mover in one prompt set, puts 0.17 on the first token). The
# circuit's layer-0 heads, which no role rule names, do neither: L0H3 attends to the query's own token (weight
# 0.92-0.93 on filler, column `own token`), a bright diagonal, and L0H7 mostly too (0.56-0.57). A diagram of
# every row, or drawn on random text, shows the off-duty behaviour; one number per head, at the role's
# position, on the task, next to a baseline, shows the role. GPT-2's heads (section 5, online) can be read the
# same way.
#
# The ABC column is a caution about what that number says. On the ABC twins, where S2's place holds a fourth
# name that repeats nothing, the inhibition heads attend there from END as much as on IOI prompts (0.66-0.99
# against 0.68-0.99). So END → S2 measures that a head finds the place of the second subject mention, not that
# it has detected the repeated name: the score shows where a head looks on the job, and patching (chapter 4)
# shows that it does the job.

# %% [markdown]
# ## 3. Fine-tuning on "which name appeared most often"
#
# The seed's task, over the organism's names (`helpers.tasks.most_frequent`): "Count : Mary John Kate John
# Anna Mary John . Which ?" → John. One name comes `MF_TOP` times, a runner-up once fewer, the others
# once; the corrupted twin swaps one mention so that the runner-up wins. IOI's first phase finds the
# *repeated* name, and IOI then answers with the *other* one: the new task needs the same detection with
# the opposite answer. `finetune.finetune` trains a copy of the organism on the answer token only
# (`FT_STEPS` AdamW steps of 32 prompts, lr `FT_LR`; no IOI text), once per fine-tuning seed.
#
# For each run we measure, on the same held-out prompts before and after: the new task's accuracy (the
# winner's logit above the runner-up's) and top-1; IOI's accuracy and logit difference; every IOI
# circuit head's **path-patching effect** (its path to the logits, in logits, as chapter 4's search
# measures it) and its **role score**; and the new task's own circuit, found by the same search on the
# fine-tuned model.

# %%
mf_eval = most_frequent.generate(N_EVAL, "test", seed=10_000 + SEED, length=MF_LENGTH, top=MF_TOP)
ioi_eval = tasks.make("ioi", N_EVAL, "test", seed=SEED)


def per_prompt(m, batch):
    e = batch.encode(m)
    lg = patching.logits_at(m, e.tokens, e.end)
    rows = torch.arange(len(batch))
    return (lg[rows, e.answers] > lg[rows, e.distractors]), lg.argmax(-1) == e.answers


def head_effects(m, setup, heads_):
    """Each head's effect on ``setup``'s metric, in logits, when it gets its corrupted output: along its
    path to the logits only (path patching) and along all paths (its output patched); and its role score."""
    e = setup.enc
    f = circuits.find_circuit(m, e.tokens, e.corrupted, setup.metric, e.end, DIRECT_MIN, FEEDER_MIN, depth=1)
    clean = setup.metric(patching.logits_at(m, e.tokens, e.end)[None]).item()
    allp = circuits.knockout_effects(m, e.tokens, capture(m, e.corrupted, circuits.z_hooks(m)),
                                     setup.metric, e.end)
    tab = circuits.attention_table(m, e.tokens, setup.pairs, how="sum")
    return {h: {"path to logits": float(f.direct_effect[h]) * clean, "all paths": float(allp[h]) * clean,
                "role score": float(tab.loc[head_name(h), cols[roles0[h][0]]])} for h in heads_}, clean


mf_before_ok, mf_before_top1 = per_prompt(model, mf_eval)
ioi_before = evaluate_batch(model, ioi_eval)
before_heads, _ = head_effects(model, ioi_set, ioi_heads)
runs, per_head, new_circuits, t_ft = [], [], {}, 0.0
for k in range(FT_SEEDS):
    ft_seed = SEED * FT_SEEDS + k
    t = time.time()
    tuned, losses = finetune.finetune(
        model, lambda s, fs=ft_seed: most_frequent.generate(32, "train", seed=fs * 100_000 + s, length=MF_LENGTH, top=MF_TOP),
        FT_STEPS, lr=FT_LR, seed=ft_seed)
    t_ft += time.time() - t
    ok, top1 = per_prompt(tuned, mf_eval)
    ioi_after = evaluate_batch(tuned, ioi_eval)
    after_heads, ioi_clean_after = head_effects(tuned, circuits.ioi_setup(tuned, N_PROMPTS, SEED, TEMPLATE), ioi_heads)
    mf_set = circuits.most_frequent_setup(tuned, N_PROMPTS, SEED, MF_LENGTH, MF_TOP)
    mf_circ = circuits.circuit_with_roles(tuned, mf_set, DIRECT_MIN, FEEDER_MIN, ATT_MIN, COPY_MIN, DEPTH, CARRIER_MIN)
    new_heads, mf_roles = mf_circ.heads, mf_circ.roles
    new_circuits[ft_seed] = (new_heads, mf_roles)
    if new_heads and ioi_heads:
        ov = circuits.overlap(new_heads, ioi_heads)
        rnd = circuits.random_overlap(len(new_heads), len(ioi_heads), L * H, N_RANDOM, seed=ft_seed)
        rnd_l = circuits.random_overlap_by_layer(new_heads, ioi_heads, L, H, N_RANDOM, seed=ft_seed)
    else:  # no head passes the thresholds (a model that does not do a task): there is nothing to compare
        print(f"seed {ft_seed}: {'the new-task' if not new_heads else 'the IOI'} circuit has no head at these "
              "thresholds, so no reuse share")
        ov, rnd = {"of_a": float("nan")}, {"of_a": (float("nan"),) * 3}
        rnd_l = rnd
    gain, gain_lo, gain_hi = paired_difference_interval(mf_before_ok, ok)
    runs.append({"ft_seed": ft_seed, "final loss": float(np.mean(losses[-10:])),
                 "MF acc before": mf_before_ok.float().mean().item(), "MF acc after": ok.float().mean().item(),
                 "MF gain CI low": gain_lo, "MF top-1 after": top1.float().mean().item(),
                 "IOI acc before": ioi_before["accuracy"], "IOI acc after": ioi_after["accuracy"],
                 "IOI logit diff before": ioi_before["logit_diff"], "IOI logit diff after": ioi_after["logit_diff"],
                 "new-task heads": len(new_heads), "reuse share": ov["of_a"], "random: expected": rnd["of_a"][0],
                 "random: 97.5%": rnd["of_a"][2], "random, layer-matched: expected": rnd_l["of_a"][0],
                 "random, layer-matched: 97.5%": rnd_l["of_a"][2],
                 "new-task circuit": ", ".join(f"{head_name(h)} {mf_roles[h][0]}" for h in new_heads)})
    for h in ioi_heads:
        per_head.append({"ft_seed": ft_seed, "head": head_name(h), "IOI role": roles0[h][0],
                         **{f"{key} before": v for key, v in before_heads[h].items()},
                         **{f"{key} after": v for key, v in after_heads[h].items()},
                         "in new-task circuit": h in new_heads,
                         "new-task role": mf_roles[h][0] if h in new_heads else "—"})
runs = pd.DataFrame(runs).set_index("ft_seed")
per_head = pd.DataFrame(per_head)
print(f"{FT_SEEDS} fine-tuning runs of {FT_STEPS} steps: {t_ft:.0f} s of training in all")
display(runs.drop(columns=["new-task circuit"]).round(3))
print("\n".join(f"seed {s}: {c}" for s, c in runs["new-task circuit"].items()))

# %% [markdown]
# Every IOI circuit head, before and after, per fine-tuning run, on IOI prompts: its effect on the logit
# difference when it gets its ABC output, along its path to the logits only (path patching, as chapter 4's
# search measures it) and along all paths (its output patched), in logits (negative: the head helps IOI);
# its role score (the attention column of its role); and whether the new task's own search finds it.

# %%
show = ["ft_seed", "head", "IOI role", "path to logits before", "path to logits after", "all paths before",
        "all paths after", "role score before", "role score after", "in new-task circuit", "new-task role"]
display(per_head[show].round(2))
summary = per_head.groupby(["head", "IOI role"]).agg(
    **{"path to logits before": ("path to logits before", "mean"), "path to logits after (mean)": ("path to logits after", "mean"),
       "all paths before": ("all paths before", "mean"), "all paths after (mean)": ("all paths after", "mean"),
       "role score before": ("role score before", "mean"), "role score after (mean)": ("role score after", "mean"),
       "runs reusing it": ("in new-task circuit", "sum")})
summary

# %%
def layer(name):  # "L1H6" -> 1
    return int(name[1:].split("H")[0])


EPS = 1e-6  # the baselines' quantiles are float32 and a share often equals one: a tie is not "above"
reuse = runs["reuse share"]
beyond = int((reuse > runs["random: 97.5%"] + EPS).sum())  # runs whose share is above the random sets' 97.5% quantile
beyond_l = int((reuse > runs["random, layer-matched: 97.5%"] + EPS).sum())  # ... of random sets in the same layers
over_layer = float((reuse - runs["random, layer-matched: expected"]).min())  # the smallest excess over that expectation
head_layer = per_head["head"].map(layer)
early_reused = float(per_head.loc[head_layer < L // 2, "in new-task circuit"].mean())  # IOI heads of the first half of the layers
late_reused = float(per_head.loc[head_layer == L - 1, "in new-task circuit"].mean())   # IOI heads of the last layer
inh_rows = per_head[per_head["IOI role"] == "inhibition"]
rest_rows = per_head[per_head["IOI role"] != "inhibition"]
inh_reused = float(inh_rows["in new-task circuit"].mean()) if len(inh_rows) else float("nan")
rest_reused = float(rest_rows["in new-task circuit"].mean()) if len(rest_rows) else float("nan")
inh_role_before = float(inh_rows["role score before"].min()) if len(inh_rows) else float("nan")
inh_role_after = float(inh_rows["role score after"].max()) if len(inh_rows) else float("nan")
inh_fell = bool((inh_rows["role score after"] < inh_rows["role score before"]).all())
inh_kept = float(inh_rows["role score after"].sum() / inh_rows["role score before"].sum()) if len(inh_rows) else float("nan")
early = runs["new-task circuit"].map(lambda c: np.mean([layer(x.split()[0]) < L // 2 for x in c.split(", ")]) if c else float("nan"))
reused_roles = per_head[per_head["in new-task circuit"]].groupby("IOI role")["head"].unique()
print(f"reuse share: {reuse.min():.0%}-{reuse.max():.0%} of the new task's heads were IOI circuit heads "
      f"(random head sets of the same sizes: expected {runs['random: expected'].mean():.0%}, 97.5% quantile "
      f"{runs['random: 97.5%'].min():.0%}-{runs['random: 97.5%'].max():.0%}; above it in {beyond} of {len(runs)} "
      f"runs; random sets with the same number of heads in each layer as the two circuits: expected "
      f"{runs['random, layer-matched: expected'].min():.0%}-{runs['random, layer-matched: expected'].max():.0%}, above "
      f"their 97.5% quantile in {beyond_l} of {len(runs)}, above their expectation by {100 * over_layer:.0f} points or more); "
      f"{early.min():.0%}-{early.max():.0%} of the new task's heads are in layers 0-{L // 2 - 1}. IOI heads reused, by "
      "IOI role: " + "; ".join(f"{r}: {', '.join(v)}" for r, v in reused_roles.items())
      + f". In the new circuit: {early_reused:.0%} of the (run, head) pairs of the IOI circuit's heads in layers "
      f"0-{L // 2 - 1}, {late_reused:.0%} of those in layer {L - 1}; {rest_reused:.0%} of its non-inhibition heads', "
      f"{inh_reused:.0%} of its inhibition heads'. The inhibition heads' END→S2: {inh_role_before:.2f} or more "
      f"before, {inh_role_after:.2f} at most after, {inh_kept:.0%} of it kept in all")
if IS_ORGANISM:
    assert (runs["MF gain CI low"] > 0).all() and runs["MF acc after"].min() > M["MF_ACC_MIN"], "the fine-tuning teaches the task"
    assert over_layer > M["REUSE_OVER_LAYER_MIN"], "in every run the new circuit holds more IOI heads than layer-matched random sets"
    assert early_reused > M["EARLY_REUSED_MIN"] and late_reused < M["LATE_REUSED_MAX"], \
        "it takes the IOI circuit's heads of the first layers, not those of its last layer"
    assert inh_fell and inh_kept < M["INH_KEPT_MAX"], "the inhibition heads lose their role"
    assert runs["IOI acc after"].max() < M["IOI_AFTER_MAX"], "and IOI is lost"

# %% [markdown]
# **What fine-tuning did** (this run's fine-tuning seeds above; all nine measured runs in section 6). Before
# fine-tuning the organism does not answer "most frequent" (the winner beats the runner-up 45-54% of the
# time); after `FT_STEPS` steps it does, 80-86% (top-1 70-79%), in every run (paired interval above zero,
# asserted). IOI, which nothing in the fine-tuning data asked for, falls from 99% to 42-66% (asserted): to
# about chance in eight runs of nine (42-57%), while one keeps 66% and a logit difference of 2.2 of its 11.
#
# The seed's exaptation question gets a partly positive answer. The new task's circuit, found by the same
# search and role rule, is wide (12-15 heads) and early (60-85% of its heads in layers 0 and 1), and 46-67% of
# its heads are IOI circuit heads, against 28-31% expected of random head sets of the same sizes: above the
# random sets' 97.5% quantile in six runs of nine, and *equal* to it in the other three (a share is a
# fraction of 12-15 heads, so ties happen; a tie is not counted as above). Random sets drawn with as many heads
# in each layer as the two circuits (a baseline that knows where circuits sit) expect 28-35%; the share is
# above their 97.5% quantile in six runs of nine too (not the same six) and equal to it in the other three.
# Every run's share is above that layer-matched expectation, by 18 points or more (asserted), but a single
# run is not always far into its tail: the weakest prompt set (SEED 2) is above both quantiles in one run of
# its three. On the organism this book shipped before, the share was 25-67% against 22-25% expected and
# above the 97.5% quantile in one run of nine: a null result then, a modest but consistent excess now.
#
# What the new circuit shares is the IOI circuit's **first three layers**, mostly. Its layer-0 and layer-1
# heads are in the new circuit in every run: L0H3 and L0H7, which no role rule names, and the movers L1H0,
# L1H2, L1H5 and L1H6. In layer 2, the inhibition heads L2H5 (every run) and L2H4 (eight of nine) are in it,
# where the rule calls them *other*, and L2H1 in three runs of six. The layer-3 inhibition heads, L3H1 and
# L3H2, are in no run's new circuit (asserted: the IOI heads of layers 0-1 in more than `EARLY_REUSED_MIN` of
# the (run, head) pairs, those of layer 3 in fewer than `LATE_REUSED_MAX`). The line runs between layers, not
# roles: 50-56% of the inhibition heads' (run, head) pairs are in the new circuit, against 89-100% of the
# other heads'. On the previous organism, whose inhibition heads sat mostly in layer 3, that gap was 83-92
# points and was asserted as "not its inhibition heads"; here it is 39-44 points, and the assert states the
# layer split instead. Two cautions: the layer-0 heads are ones IOI leans on heavily (patching L0H3 costs 6-7
# logits along all paths), perhaps as any task of the organism does, so sharing them says the same heads are
# used, not that the same computation is; and chapter 5 finds the same two layer-2 heads, L2H4 and L2H5, in
# the Colored Objects circuit: on this organism they are the IOI heads that other tasks take.
#
# The new task needs the repeated name promoted where IOI suppressed it, and fine-tuning takes the inhibition
# heads' role away rather than turning it around, from the reused layer-2 heads as from the layer-3 heads
# left out: in every run each of them attends less from END to S2 than before (0.68-0.99 before, 0.00-0.88
# after; 22-47% of it kept, summed over the heads; asserted), and its path to the logits shrinks from 1.0-5.9
# logits to at most 1.9.
#
# In the seed's terms: the new task is solved in the early layers and reuses the IOI heads that live there,
# IOI's movers among them, and two of its inhibition heads, with their role cut; the part of IOI whose sign
# was wrong for the new use, and that the new circuit does not take, is dismantled. The seed could not see it
# in the diagrams, and on this organism a diagram of an inhibition head before and after would show a sharp
# END row becoming diffuse, while mover L1H6's would look about the same (END → IO 0.47-0.48 before, 0.37-0.49
# after): the change in what the heads *do* shows in the patching effects and the role scores, not in the
# pictures.

# %% [markdown]
# ## 4. Poems and articles
#
# The seed expected induction heads to fade when a model is fine-tuned on short poems (repetition is
# useless) and to strengthen on long articles (terms come back). Two synthetic corpora over the model's
# vocabulary stand for them (`helpers.finetune`): **poems**, 24-token sequences in which no token
# repeats; **articles**, 24-token sequences in which two 3-token terms come back three times each among
# single filler tokens. Each fine-tunes a copy of the model for `CORPUS_STEPS` steps (next-token loss). We
# measure the induction heads' scores (`heads.induction_scores` on repeated random tokens, the heads of
# section 1), the induction accuracy, and the **in-context loss drop**: the loss on the first copy of a
# random sequence minus the loss on its repeat (`finetune.in_context_gain`).

# %%
def repetition_profile(m):
    sc = heads.induction_scores(m, half=20, batch=32, seed=SEED, bos=BOS)
    top = ind_heads if IS_ORGANISM else circuits.top_heads(heads.induction_scores(model, half=20, batch=32, seed=SEED, bos=BOS), 4)
    icl = finetune.in_context_gain(m, n=64, seq_len=20, seed=SEED)
    return {"induction score (mean of the induction heads)": float(np.mean([float(sc[h]) for h in top])),
            "induction accuracy": evaluate_induction(m, n=100, seed=SEED)["accuracy"],
            "first-copy loss": icl["first_copy_loss"], "second-copy loss": icl["second_copy_loss"],
            "in-context loss drop": icl["gain"]}


corpora = {"poems": lambda s: finetune.poem_tokens(model, 16, 24, seed=SEED * 1000 + s),
           "articles": lambda s: finetune.article_tokens(model, 16, 24, seed=SEED * 1000 + s)}
profiles = {"before": repetition_profile(model)}
corpus_loss = {}
for name, make_batch in corpora.items():
    tuned, losses = finetune.finetune(model, make_batch, CORPUS_STEPS, lr=FT_LR, seed=SEED)
    profiles[f"after {name}"] = repetition_profile(tuned)
    corpus_loss[name] = losses
rep = pd.DataFrame(profiles).T
display(rep.round(3))
print("example poem:", model.to_str_tokens(finetune.poem_tokens(model, 1, 24, seed=1)[0])[1:])
print("example article:", model.to_str_tokens(finetune.article_tokens(model, 1, 24, seed=1)[0])[1:])

# %%
drop_poems = rep.loc["before", "induction score (mean of the induction heads)"] - rep.loc["after poems", "induction score (mean of the induction heads)"]
drop_articles = rep.loc["before", "induction score (mean of the induction heads)"] - rep.loc["after articles", "induction score (mean of the induction heads)"]
icl_poems = rep.loc["before", "in-context loss drop"] - rep.loc["after poems", "in-context loss drop"]
icl_articles = rep.loc["before", "in-context loss drop"] - rep.loc["after articles", "in-context loss drop"]
print(f"induction score lost: poems {drop_poems:+.3f}, articles {drop_articles:+.3f}; in-context loss drop "
      f"lost: poems {icl_poems:+.2f} nats, articles {icl_articles:+.2f} nats")
if IS_ORGANISM:
    assert drop_poems > M["POEM_DROP_MIN"] and icl_poems > M["POEM_ICL_LOSS_MIN"], "induction fades on poems"
    assert drop_articles < M["ARTICLE_DROP_MAX"], "and holds on articles"
    assert icl_poems > icl_articles + M["ICL_GAP_MIN"], "poems cost far more in-context learning than articles"

# %% [markdown]
# **Half of the seed's prediction holds.** On poems the induction heads **fade**: within `CORPUS_STEPS` steps
# their mean score falls from 0.87-0.88 to 0.42-0.60, the induction accuracy from 100% to 13-31%, and the
# in-context loss drop from 6.2 nats to 0.4-0.9 (asserted), although nothing in the poems penalises copying: a
# head that looks for an earlier copy finds none, and what it was built from is repurposed for the only thing
# poems reward, the frequencies of single tokens. On articles they **hold** (asserted): their scores even rise
# a little, by 0.03-0.04 in every run, but the in-context loss drop, what induction is for, loses 0.31-0.34
# nats of its 6.2, so they do not strengthen in use. The organism's induction heads are already at their
# ceiling (induction accuracy 100%; repeated random sequences are a large part of its training mixture), so
# "strengthened" cannot show here. On a model whose induction is weaker (GPT-2, online), it could.

# %% [markdown]
# ## 5. GPT-2 small (online only)
#
# With the hub reachable, this measures the seed's diagrams on its model: GPT-2 small's IOI heads as the
# IOI paper names them, their spread on every row of IOI prompts against their END row, and their weight
# on the first token. Set `MODEL = "gpt2-small"` to run sections 2-4 on GPT-2 (the fine-tuning runs take
# minutes there). Offline it says so.

# %%
GPT2_IOI_HEADS = {"name mover": [(9, 9), (9, 6), (10, 0)], "S-inhibition": [(7, 3), (7, 9), (8, 6), (8, 10)],
                  "induction": [(5, 5), (6, 9)], "duplicate-token": [(0, 1), (3, 0)], "previous-token": [(2, 2), (4, 11)]}
gpt2_summary = "not run here (offline)"
gpt2 = model if MODEL == GPT2_MODEL else helpers.load_model_if_available(GPT2_MODEL)
if gpt2 is not None:
    g = tasks.make("ioi", 32, "all", seed=SEED, tokenizer=gpt2).encode(gpt2)
    g_all = heads.attention_spread(gpt2, g.tokens, g.lengths)
    g_end = heads.attention_spread(gpt2, g.tokens, query_pos=g.end)
    g_table = pd.DataFrame([{"class": c, "head": f"{h[0]}.{h[1]}", **{f"every row: {s}": float(g_all[s][h]) for s in ("max", "entropy", "bos")},
                             **{f"END row: {s}": float(g_end[s][h]) for s in ("max", "entropy", "bos")}}
                            for c, hs in GPT2_IOI_HEADS.items() for h in hs])
    display(g_table.round(2))
    gpt2_summary = (f"IOI heads: first-token weight {g_table['every row: bos'].mean():.2f} on every row, "
                    f"largest weight of a row {g_table['every row: max'].mean():.2f} (END row {g_table['END row: max'].mean():.2f})")
print(gpt2_summary)

# %% [markdown]
# ## 6. What holds, and what differs
#
# Measured thresholds (the asserts above) come from `scripts/measure.py`, which runs this notebook with
# SEED:TEMPLATE 0:0, 1:1, 2:2 (three IOI prompt sets, nine fine-tuning seeds for "most frequent", three for
# poems and articles) and writes `book/measured/ch07.json`. One row per fine-tuning run; then every IOI
# circuit head over the runs, and section 2's attention numbers per head (their range over the prompt sets):

# %%
measured_runs = pd.DataFrame(M["runs"])
display(measured_runs)
measured_heads = pd.DataFrame(M["per_head"])
if len(measured_heads):  # every IOI circuit head over every measured fine-tuning run
    display(measured_heads.groupby(["seed", "head", "IOI role"])[
        ["all paths before", "all paths after", "role score before", "role score after", "in new-task circuit"]].mean().round(2))
measured_spread = pd.DataFrame(M["spread"])
if len(measured_spread):  # section 2's numbers: each head's range over the prompt sets
    display(measured_spread.groupby("head")[["filler, every row: max", "filler, every row: bos", "filler, every row: own token",
                                            "IOI, END row: max", "IOI, END row: bos"]].agg(["min", "max"]).round(2))
print(M.provenance())
pd.DataFrame(M.thresholds()).set_index("threshold")

# %%
inh_names = ", ".join(head_name(h) for h in inhib) or "none"
mr = measured_runs  # the reuse share over every measured fine-tuning run, not this run's only
all_reuse = (f"; all {len(mr)} measured runs: {mr['reuse share'].min():.0%}-{mr['reuse share'].max():.0%} against "
             f"{mr['random: expected'].min():.0%}-{mr['random: expected'].max():.0%} expected, above the 97.5% quantile in "
             f"{int((mr['reuse share'] > mr['random: 97.5%'] + EPS).sum())}, the layer-matched one in "
             f"{int((mr['reuse share'] > mr['random, layer-matched: 97.5%'] + EPS).sum())}") if len(mr) else ""
pd.DataFrame([
    ["A head's acquisition shows as a sudden loss drop and an accuracy jump", "Chen et al. 2024 (seed 002), for syntactic heads",
     "GPT-2's training log is not public",
     (f"the loss falls {pc.share:.0%} of its fall in steps {drop_lo}-{drop_hi} ({pc.sharpness:.1f}x the {DROP_WINDOW} steps beside; "
      f"{drop_windows.loc[100, 'sharpness']:.1f}x in 100-step windows); induction heads rise at step {ind_rise:.0f}, with the "
      f"induction accuracy (rise step {acc_rise['induction']}), the previous-token heads at {prev_rise}") if IS_ORGANISM else "—"],
    ["IOI heads form after the induction heads", "—", "—",
     (f"their attention does not, their function does: inhibition heads {inh_names} attend END→S2 from steps "
      f"{', '.join(map(str, inh_rise))} ({inh_with} of {len(inh_rise)} within one evaluation of the induction heads); the IOI "
      f"accuracy rises at step {acc_rise['ioi']} ({M['IOI_DONE_FRAC']:.0%} of it at {ioi_done}), and the circuit alone gives "
      f"{before['F(C)'].max():.2f} logits at most before that, {after['F(C)'].min():.1f} or more after") if IS_ORGANISM else "—"],
    ["IOI heads' attention diagrams are gradients ('dégradés')", "seed 000 §3, GPT-2 small", gpt2_summary,
     (f"off duty, not a role: inhibition heads' largest weight of a row {inh_filler_max:.2f} on filler text, "
      f"{inh_end_max:.2f} on the END row of IOI prompts; a mover parks on the first token off duty ({mover_bos:.2f}), "
      f"not at END ({mover_end_bos:.2f}); " if movers else "no mover; ")
     + f"{own_head} attends to the query's own token ({spread_table.loc[own_head, 'filler, every row: own token']:.2f})"],
    ["Better than eyeballing: one number per head and role", "asked for in seed 000 §4", "—",
     f"END→S2 of the inhibition heads ≥ {inh_ratio:.1f}x a uniform row (table of section 2)"],
    ["Fine-tuning on 'most frequent' changes the IOI heads", "expected, not observed (diagrams all alike)",
     "not run here (set MODEL; minutes of CPU)",
     (f"{FT_SEEDS} runs: task accuracy {runs['MF acc before'].iloc[0]:.0%} → {runs['MF acc after'].min():.0%}-{runs['MF acc after'].max():.0%}; "
      f"IOI {runs['IOI acc before'].iloc[0]:.0%} → {runs['IOI acc after'].min():.0%}-{runs['IOI acc after'].max():.0%}; "
      f"inhibition heads keep {inh_kept:.0%} of their END→S2 ({inh_role_before:.2f}+ → at most {inh_role_after:.2f})")],
    ["Exaptation: the new task reuses the IOI circuit", "the project's question", "not run here",
     f"partly: {reuse.min():.0%}-{reuse.max():.0%} of the new task's heads were IOI heads (random: "
     f"{runs['random: expected'].mean():.0%}, layer-matched: {runs['random, layer-matched: expected'].mean():.0%}; above their "
     f"97.5% quantiles in {beyond} and {beyond_l} of {len(runs)} runs{all_reuse}); it takes the IOI circuit's heads of layers "
     f"0-{L // 2 - 1} ({early_reused:.0%} of cases: " + "; ".join(
         f"{r} {', '.join(v)}" for r, v in per_head[per_head["in new-task circuit"] & (head_layer < L // 2)]
         .groupby("IOI role")["head"].unique().items())
     + f"), those of layer {L - 1} in {late_reused:.0%}; its inhibition heads in {inh_reused:.0%} ("
     + (", ".join(reused_roles["inhibition"]) if "inhibition" in reused_roles else "none") + ")"],
    ["Induction heads fade on poems", "expected (seed 000 §4)", "—",
     f"induction score −{drop_poems:.2f}, in-context loss drop −{icl_poems:.2f} nats"],
    ["Induction heads strengthen on articles", "expected (seed 000 §4)", "—",
     f"held, not strengthened in use (at ceiling): induction score {-drop_articles:+.2f}, in-context loss drop {-icl_articles:+.2f} nats"],
], columns=["claim", "seed", "GPT-2 (online)", "organism"])

# %%
print(f"chapter ran in {time.time() - T0:.0f} s of wall time, {time.process_time() - CPU0:.0f} s of CPU in this kernel "
      "(the wall time grows with what else the machine runs)")
# Run by scripts/measure.py (RECORD set): what the asserts and the table of section 6 rest on. Otherwise nothing.
if RECORD:
    values = {"ind_rise": ind_rise, "drop_lo": drop_lo, "drop_hi": drop_hi, "drop_share": pc.share,
              "drop_sharpness": pc.sharpness, "prev_rise": prev_rise,
              "inh_rise_min": min(inh_rise), "inh_rise_max": max(inh_rise), "ioi_done": ioi_done,
              "n_inhib": len(inhib), "inh_with": inh_with, "ioi_rise": acc_rise["ioi"], "n_attending": len(attending),
              "fc_before_max": before["F(C)"].max(), "fc_after_min": after["F(C)"].min(),
              "faith_final": faith["F(C)/F(M)"].iloc[-1],
              "inh_filler_max": inh_filler_max, "inh_end_max": inh_end_max, "inh_ratio": inh_ratio,
              "mover_bos": mover_bos, "mover_end_bos": mover_end_bos,
              "mf_acc_before": runs["MF acc before"].iloc[0], "mf_acc_after_min": runs["MF acc after"].min(),
              "mf_acc_after_max": runs["MF acc after"].max(), "ioi_after_min": runs["IOI acc after"].min(),
              "ioi_after_max": runs["IOI acc after"].max(), "reuse_min": reuse.min(), "reuse_max": reuse.max(),
              "reuse_mean": reuse.mean(), "reuse_beyond": beyond, "new_heads_min": runs["new-task heads"].min(),
              "new_heads_max": runs["new-task heads"].max(), "early_min": early.min(), "early_max": early.max(),
              "rand_expected": runs["random: expected"].mean(), "rand_hi": runs["random: 97.5%"].max(),
              "rand_hi_min": runs["random: 97.5%"].min(),
              "rand_layer_min": runs["random, layer-matched: expected"].min(),
              "rand_layer_max": runs["random, layer-matched: expected"].max(), "reuse_beyond_layer": beyond_l,
              "reuse_over_layer": over_layer, "early_reused": early_reused, "late_reused": late_reused,
              "rest_reused": rest_reused, "reuse_gap": rest_reused - inh_reused,
              "inh_reused": inh_reused, "inh_role_before": inh_role_before, "inh_role_after_max": inh_role_after,
              "inh_role_after_min": float(inh_rows["role score after"].min()), "inh_kept": inh_kept,
              "drop_poems": drop_poems, "drop_articles": drop_articles, "icl_poems": icl_poems,
              "icl_articles": icl_articles, "icl_gap": icl_poems - icl_articles}
    measured.record(RECORD, values=values, tables={"runs": [{
        "seed": SEED, "template": TEMPLATE, "ft_seed": s, **{k: r[k] for k in ["MF acc after", "IOI acc after",
                                                                              "IOI logit diff after", "new-task heads",
                                                                              "reuse share", "random: expected",
                                                                              "random: 97.5%",
                                                                              "random, layer-matched: expected",
                                                                              "random, layer-matched: 97.5%",
                                                                              "new-task circuit"]},
        "IOI circuit": ", ".join(f"{head_name(h)} {roles0[h][0]}" for h in ioi_heads),
        "poems: induction lost": drop_poems, "articles: induction lost": drop_articles,
        "poems: in-context drop lost": icl_poems, "articles: in-context drop lost": icl_articles,
        "seconds": time.time() - T0} for s, r in runs.iterrows()],
        "per_head": per_head.assign(seed=SEED).to_dict("records"),
        "spread": spread_table.assign(seed=SEED).reset_index(names="head").to_dict("records")})
