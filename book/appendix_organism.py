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
# # Appendix: the model organism
#
# GPT-2's weights cannot be downloaded on the machine this book is built on, so the chapters run on a
# **model organism**: a 4-layer GPT-2 the book trains itself, on one CPU thread, on text written by
# small *grammars* of its tasks (`helpers/tasks/`): indirect object identification (Wang et al., 2022),
# a/an prediction (Neo & Miller, 2023), counting, induction on random tokens (Olsson et al., 2022) and
# Colored Objects (Merullo et al., 2023). It is loaded exactly like GPT-2, through TransformerLens's
# `TransformerBridge`, so every chapter's code runs on either; set `MODEL = "gpt2-small"` below on a
# machine with network access to measure GPT-2 on the same prompts.
#
# This card says how the organism is made and measures it where it matters for the book: on
# **structures it never saw**. Each grammar holds whole rules out of training (a way of joining the
# two names, a question phrasing, a counting frame …), and every task is reported on training
# structures and on held-out structures side by side.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/circuits-executable/circuits-executable/blob/main/book/appendix_organism.ipynb)

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
MODEL = "organism"   # or "gpt2-small" (needs network), "organism@step2725" (a checkpoint), "organism-dropout"
N_PROMPTS = 200      # prompts per task and structure
SEED = 12345         # seed of the prompt sets
RECORD = ""          # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import helpers
from helpers import formation, measured, organism
from helpers.loading import ORGANISM_DIR
from helpers.organism import card as card_module
from helpers.organism.card import generalisation
from helpers.tasks import colored_objects, ioi

print(helpers.describe())
model = helpers.load_model(MODEL)
IS_ORGANISM = MODEL == "organism"
M = measured.load("appendix")  # the measured floors asserted below (book/measured/appendix.json)
print(f"running on: {MODEL}")

# %% [markdown]
# ## The model and its tokenizer
#
# A Hugging Face `GPT2LMHeadModel`, GPT-2's architecture at a small size: 4 layers of 8 heads (IOI needs
# name movers, S-inhibition, induction and duplicate-token heads to be *separate* heads) and an MLP in
# every block (the "an" neuron lives in one). No dropout in the shipped organism, so the same seed gives
# the same weights on the same kind of CPU; its twin `organism-dropout` has GPT-2's dropout (chapter 4
# compares their backup heads).
#
# The tokenizer is word-level: a `tokenizers` WordLevel model whose pre-tokenizer splits on white
# space and isolates punctuation, so `"store,"` is `store` + `,`. Its vocabulary is every word the
# grammars can write (all splits, so held-out names and objects have tokens) plus the numbers 0–100.
# Like GPT-2 it has one special token, `<|endoftext|>`, used as BOS, EOS and padding; `model.to_tokens`
# prepends it, exactly as for GPT-2. A word the organism does not know is refused with its name, not
# silently turned into `<unk>`.

# %%
cfg = model.cfg
print(pd.Series({"layers": cfg.n_layers, "heads per layer": cfg.n_heads, "d_model": cfg.d_model,
                 "d_head": cfg.d_head, "d_mlp": cfg.d_mlp, "vocabulary": cfg.d_vocab, "context": cfg.n_ctx,
                 "parameters": sum(p.numel() for p in model.parameters())}).to_string())
prompt = "When Mary and John went to the store, John gave a drink to"
print(model.to_str_tokens(prompt))

# %% [markdown]
# ## The corpus: grammars, with whole structures held out
#
# A template corpus breeds template shortcuts: the book's previous organism answered IOI by suppressing
# "the last name" and fell to chance on a new sentence frame. So every task is written by a grammar, and
# the only reliable cue is the one the task is about:
#
# - **IOI**: the names at the start, after one of sixteen subordinate openings ("When", "Because", "By the
#   time" …), a sentence adverb ("Then,", "Meanwhile," …) or a scene-setting sentence; joined by "and",
#   "with" or a verb ("saw", "called"); zero or one sentence in between; a third name right after S2
#   ("John, a friend of Kate, gave …") that the answer must skip, so S2 is often not the last name; ten
#   final verbs. Half of the IOI training texts open with one to three random words right before the first
#   name, or have a random word in place of the verb that joins the names, so neither the word before nor
#   the word between the names is a cue. And three IOI texts in ten have one or two of their other words (any
#   word that is not a name: the opening, the join, the verb, "to" …) replaced by a random word of the
#   vocabulary, never a word of a held-out rule, so that no word but the names decides the answer
#   (`helpers.organism.corpus.word_noise`). **Held out** (test split only): the join "met", two sentences in
#   between, the third name in a sentence in between, the verbs "sent" and "showed", and the openings "As
#   soon as", "That evening," and "It was early in the morning.".
# - **Colored Objects**: 2–4 objects, six ways to list them, five to ask and four frames around them, with
#   "a"/"an" agreeing with the color; a training text asks up to three questions about one scene. **Held
#   out**: the list "The {surface} has … on it.", the question "Can you tell me the color of the …?", the
#   frame "Question: … Answer:", and four of the twenty objects.
# - **a/an**: cue × action templates; **held out**: one cue per category and a fifth of the other
#   compositions. **Counting**: bare sequences or after a frame; **held out**: the frame "Let us count:"
#   and a fifth of the (start, stop) sequences.
# - **Context**: half of the task texts follow one or two name-free sentences, so no task sits at fixed
#   positions. **Filler** sentences use the held-out phrasings' words ("met", "sent", "Question: …
#   Answer:") in other sentences, so the test splits hold out *structures*, not words.

# %%
mix = pd.DataFrame({"phase 1": organism.MIXTURE, "phase 2": organism.corpus.MIXTURE2})
print(mix.sort_values("phase 1", ascending=False).to_string())
for task, text in organism.mixture_sample(8, seed=1):
    print(f"{task:>16} | {text if text else '(random tokens, repeated)'}")
print("\nIOI, held-out structures:")
for t in ioi.generate(4, split="test", seed=3).texts:
    print("  ", t)
print("Colored Objects, held-out phrasings:")
for t in colored_objects.generate(3, split="test", seed=3).texts:
    print("  ", t)

# %% [markdown]
# ## Training
#
# `python -m helpers.organism --out helpers/assets/organism --seed 0` retrains from scratch on one CPU
# thread, in three stages (on this 2-core machine, 1,564 s of training, 26 min 10 s wall clock, the other core
# busy with chapter re-measurements and a second training at the lowest priority; that retrain gave the
# shipped weights and every checkpoint bit for bit). The same recipe without the random words, which costs the
# same per step, took 1,801 s on the same machine under a similar load, so the time varies by about 15%
# with what else runs; under 30 minutes is not guaranteed on a busier or slower machine:
#
# 1. **2,400 steps** of 128 sequences of the mixture above (phase 1), AdamW at 2e-3 after a 100-step
#    warm-up, a cosine decay over the last quarter. Colored Objects answers (the color after "A:") weigh
#    10× in the loss.
# 2. **A Colored Objects curriculum** (phase 1b, 450 steps, `helpers.organism.train.CO_CURRICULUM`). Asked only at
#    the end of a prompt, the task sits on a plateau at chance for hundreds to thousands of steps (*What was
#    tried*, below). It needs one lookup, the color written just *before* an earlier copy of the asked
#    object, and the curriculum asks for it in stages, with a loss on the answer alone: 150 steps *at* the
#    object ("blue cup red pen green book . cup" → blue; 256 prompts a step), 100 steps also one token later
#    ("… cup ?"), then 200 steps also inside real prompts, cut after the question's object, and at the end
#    of real prompts (128 a step). A new AdamW at a constant 1e-3, and 32 mixture sequences every step so
#    the other tasks are not forgotten meanwhile.
# 3. **400 steps** of the same tasks with Colored Objects at a larger share (phase 2), plus the answer
#    loss on 64 Colored Objects prompts a step (weighing 4×), a new AdamW at 1e-3 with a cosine decay.
#
# Phases 1b and 2 start from phase 1's saved weights, so `--resume-phase2 DIR` reproduces them from a
# finished phase 1 (checked bit-identical to a continuous run). GPT-2's learned position embeddings are
# *initialised* with sinusoids (an initialisation only). The run saves checkpoints at steps 500, 1,000,
# 1,500, 2,000 and 2,400 (end of phase 1), and one where Colored Objects is partly solved (held-out and
# training prompts both between 45% and 75%; `helpers.loading.partial_checkpoint()` names it): chapter 5's
# repair runs there. The task can jump past that window between two curriculum evaluations 25 steps apart, so
# every step's weights since the last evaluation are kept in memory, and after such a jump the step whose
# held-out accuracy is nearest 50% is evaluated and saved (the training itself is untouched: the same
# weights come out with or without the search). The log keeps every task's held-out accuracy and every head's
# attention scores every 100 steps (25 in the curriculum, 50 in phase 2), plotted here; the loss is the
# mixture's (an exponential moving average; in the curriculum, the 32 mixture sequences of each logged step),
# the curriculum's answer loss beside it.

# %%
log = json.loads((ORGANISM_DIR / "train_log.json").read_text())
print({k: log[k] for k in ("seed", "train_seconds", "vocab_size", "partial_checkpoint")})
loss = pd.DataFrame(log["loss"])
acc = pd.DataFrame(log["eval"]).set_index("step")
tasks_shown = ["induction", "articles", "counting", "ioi", "colored_objects"]
end1 = log["train"]["steps"]  # end of phase 1
end_cur = end1 + sum(k for _, k, _ in log.get("curriculum", []))  # end of the curriculum
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 3.8))
ax1.plot(loss["step"], loss["loss"], lw=1, label="mixture (language-model loss)")
if "co_loss" in loss:
    ax1.plot(loss["step"], loss["co_loss"], lw=1.4, color="tab:purple", label="Colored Objects answers (curriculum)")
ax1.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
ax1.legend(fontsize=7)
for col in tasks_shown:
    ax2.plot(acc.index, acc[col], lw=1.4, label=f"{col} (held-out)")
ax2.plot(acc.index, acc["colored_objects_train"], lw=1, ls="--", color="tab:purple",
         label="colored_objects (training structures)")
ckpts = sorted(int(p.name[4:]) for p in (ORGANISM_DIR / "checkpoints").iterdir())
for ax in (ax1, ax2):
    ax.axvspan(end1, end_cur, color="tab:purple", alpha=0.08, label="curriculum" if ax is ax2 else None)
    ax.axvspan(end_cur, acc.index.max(), color="tab:orange", alpha=0.08, label="phase 2" if ax is ax2 else None)
for s_ in ckpts:
    ax2.axvline(s_, color="grey", lw=0.6, ls=":")
ax2.set(xlabel="step", ylabel="accuracy", title="tasks during training (dotted: checkpoints)")
ax2.legend(fontsize=7, loc="lower right")
plt.tight_layout()
plt.show()


formed = pd.Series({t: formation.first_reaching(acc[t], 0.9) for t in tasks_shown},
                   name="first step at >= 90% held-out")
print(formed.to_string())

# %% [markdown]
# Counting and a/an are learned first; **induction** arrives in a phase change (the jump in the curve)
# and IOI, which in GPT-2 uses induction and duplicate-token heads, only after it. Colored Objects stays
# at chance through the whole of phase 1, on training phrasings too, and leaves it in the curriculum's
# last stage, within about a hundred steps; the partly-solved checkpoint is on that climb. Phase 2 keeps
# it and the other tasks where they are.

# %%
co_phase1_max = acc.loc[acc.index <= end1, ["colored_objects", "colored_objects_train"]].max().max()
print(f"Colored Objects in phase 1: at most {co_phase1_max:.2f} (chance 1/3); first at >= 90% held out: "
      f"step {formed['colored_objects']} (curriculum: steps {end1}-{end_cur})")
if IS_ORGANISM:
    assert formed["induction"] is not None and formed["ioi"] is not None
    assert formed["induction"] < formed["ioi"], "induction forms before IOI"
    assert co_phase1_max < M["CO_PHASE1_MAX"], "Colored Objects is at chance through phase 1"
    assert formed["colored_objects"] is not None and end1 < formed["colored_objects"] <= end_cur, \
        "Colored Objects forms in the curriculum"

# %% [markdown]
# ## Held-out structures, task by task
#
# Each task on its training structures and on held-out structures (new prompts either way), then each
# held-out rule alone (the other rules drawn from the training ones). `accuracy` is the answer's logit
# above the distractor's (IOI: IO above S; Colored Objects: above *both* other listed colors; a/an: the
# right article); `top1` is the answer being the most likely of all tokens.

# %%
card = generalisation(model, n=N_PROMPTS, seed=SEED)
pd.set_option("display.width", 160)
display(card.round(3))
main = card[card["structure"].isin(["training structures", "held-out structures (all)"])]
side = main.pivot(index="task", columns="structure", values="top1")[["training structures",
                                                                     "held-out structures (all)"]]
ioi_rules = card[(card["task"] == "ioi") & card["structure"].str.contains("=")]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.5, 3.4), gridspec_kw={"width_ratios": [1, 1.3]})
side.plot.barh(ax=a1)
a1.set(xlabel="top-1 accuracy", xlim=(0, 1.02), title="training vs held-out structures")
a1.legend(fontsize=8, loc="lower left")
a2.barh(ioi_rules["structure"], ioi_rules["accuracy"], color="tab:green")
a2.axvline(0.9, color="grey", ls=":")
a2.set(xlabel="IO above S", xlim=(0, 1.02), title="IOI, each held-out rule alone")
a2.invert_yaxis()
plt.tight_layout()
plt.show()

# %%
# The bar (held-out structures) next to what the organism reaches, with the training-structure
# figure beside each. Bars not met are printed as such. The asserts below hold the organism to every bar
# it met on all three measured prompt sets, and to floors a little under its measured values.
ioi_worst = ioi_rules.loc[ioi_rules["accuracy"].idxmin()]
row = {(r.task, r.structure): r for r in card.itertuples()}
held, train_s = "held-out structures (all)", "training structures"
B = card_module.BARS  # the bars, one home (helpers/organism/card.py)
BAR = [("IOI, held-out structures", row["ioi", held].accuracy, row["ioi", train_s].accuracy, B["ioi_heldout"]),
       (f"IOI, worst held-out rule ({ioi_worst['structure']})", ioi_worst["accuracy"], row["ioi", train_s].accuracy,
        B["ioi_worst_rule"]),
       ("Colored Objects, held-out structures (top-1)", row["colored_objects", held].top1,
        row["colored_objects", train_s].top1, B["co_heldout_top1"]),
       ("a/an, held-out structures", row["articles", held].accuracy, row["articles", train_s].accuracy,
        B["articles_heldout"]),
       ("counting, held-out structures (top-1)", row["counting", held].top1, row["counting", train_s].top1,
        B["counting_heldout"]),
       ("induction (top-1)", row["induction", "random repeated tokens"].top1, float("nan"), B["induction_top1"])]
check = pd.DataFrame(BAR, columns=["what", "measured", "training structures", "bar"])
check["met"] = check["measured"] >= check["bar"]
print(check.round(3).to_string(index=False))
unseen = row["ioi", "unseen names"].accuracy
print(f"IOI with names it never saw in an IOI text: {unseen:.3f}")

# %%
if IS_ORGANISM:
    # the bars met on every measured prompt set (book/measured/appendix.json), asserted as the bars
    assert row["ioi", held].accuracy >= B["ioi_heldout"], "IOI on held-out structures: bar 0.95"
    assert row["colored_objects", held].top1 >= B["co_heldout_top1"], "Colored Objects on held-out structures: bar 0.85"
    assert (row["articles", held].accuracy >= B["articles_heldout"]
            and row["counting", held].top1 >= B["counting_heldout"]), "a/an, counting: bar 0.95"
    assert row["induction", "random repeated tokens"].top1 >= B["induction_top1"], "induction: bar 0.95"
    # the measured floors (the worst held-out IOI rule is at its bar on average over the three sets, not on each: see below)
    assert row["ioi", held].accuracy >= M["IOI_HELDOUT_MIN"]
    assert ioi_worst["accuracy"] >= M["IOI_WORST_RULE_MIN"]
    assert row["ioi", "training structures"].accuracy >= M["IOI_TRAIN_MIN"]
    assert row["colored_objects", held].top1 >= M["CO_HELDOUT_TOP1_MIN"]
    assert row["colored_objects", "classic BIG-bench phrasing"].top1 >= M["CO_CLASSIC_TOP1_MIN"]
    assert row["colored_objects", "training structures"].top1 >= M["CO_TRAIN_TOP1_MIN"]
    assert row["articles", held].accuracy >= M["ARTICLES_HELDOUT_MIN"]
    assert row["counting", held].top1 >= M["COUNTING_HELDOUT_MIN"]
    assert row["induction", "random repeated tokens"].top1 >= M["INDUCTION_TOP1_MIN"]
    print("the organism meets those bars and is at or above its measured floors")

# %%
# The worst held-out rule, split by the order of the two names: ABBA (S is the second name introduced,
# "A met B …, B gave … to") and BABA (S is the first).
worst_orders = card_module.by_order(model, card_module.rule_of(ioi_worst["structure"]), n=N_PROMPTS, seed=SEED)
worst_order_gap = max(worst_orders.values()) - min(worst_orders.values())
print(f"{ioi_worst['structure']}: " + ", ".join(f"{k} {v:.3f}" for k, v in worst_orders.items())
      + f"; gap {worst_order_gap:.3f}")
if IS_ORGANISM:
    assert worst_order_gap > M["WORST_ORDER_GAP_MIN"], "the worst rule fails in one order of the names, not in both"

# %% [markdown]
# ### Where it still fails
#
# - **One held-out IOI rule is at its bar, not above it.** The worst held-out rule is the opening "As soon as"
#   on every prompt set: IO above S on 0.89, 0.90 and 0.925 of its 200 prompts on the three sets, 0.905 on
#   average against a bar of 0.90. Every other held-out rule is at 0.97 or above (the next worst, over the
#   three sets); the "met" join, where v7 failed (0.885), is at 0.97-0.995. "As
#   soon as" fails in one order of the names (printed above): with S introduced second ("As soon as A and B
#   …, B gave … to") IO is above S on 0.78-0.85 of the prompts, with S first on all of them (asserted as a gap
#   over a measured floor). The retrains fail in one order too, and not always on this rule (*Retrains*,
#   below): a word the model never saw in a slot sends it back to a preference for one position, and which
#   slot does so changes from run to run.
# - **Names it never saw in an IOI text.** With IO drawn from the tenth of the names held out of IOI training
#   (`split="test_names"`), IO is above S on 0.75-0.78 of the prompts, against 0.98-0.995 with trained names.
#   The random words in three IOI texts of ten lifted this from 0.275-0.305 for v7
#   (the same recipe without them): a name it never saw in the IO slot is less often taken for a word to
#   skip. Still, a quarter of such prompts get the repeated name.
# - **A new final clause after a new join.** On a probe of phrasings the grammar never writes
#   (`experiments/organism-co-plateau/probe5.py`, branch `organism-v4`, 200 prompts each), "{A} talked with {B}
#   at the {PLACE}. Then {S} threw the {O} to" is answered right on 0.08 of ABBA prompts (IO first) and all
#   BABA ones; every new opening word tried ("As", "it", "yes", "books", "walked", "we", "Count") and "{A} and
#   {B} were at the {PLACE}" are at 1.00, "As soon as" at 0.83.

# %% [markdown]
# ## What was tried, and what it taught
#
# The runs below were all made on this 2-core machine, one thread each, with the code of this
# repository at the time; only the last recipe is shipped. "The previous organism" is the one this book
# shipped until 2026-12-02 (4,000 + 1,000 steps, no curriculum), measured here for the last time; "v7" is
# the recipe shipped after it, until 2026-12-03 (the shipped recipe without the random words).
#
# - **A uniform loss leaves Colored Objects at chance.** The first grammar organism (Colored Objects
#   answers weighing 3×, 14% of the sequences, 4,000 steps) solved a/an, counting and induction, but
#   Colored Objects stayed at 25–36% at every evaluation, as in the book's previous organism (10% of the
#   sequences, 3,000 steps). Fine-tuning that previous organism on Colored Objects alone (loss on the answer
#   token only) solves it within a few hundred steps: the architecture can learn it; the mixture gave it
#   too little signal.
# - **IOI generalisation can fall as training goes on.** In the same run, IOI on held-out structures
#   peaked at 0.92 (step 2,300) and fell to 0.74 by step 4,000 while training structures stayed at 1.00:
#   the model memorised the structures it saw. A richer grammar (more openings, verb joins, a third name)
#   kept it between 0.87 and 0.97 from step 1,700 on in the previous organism's run (its eval log, 100
#   prompts each).
# - **Weighting and a second phase.** With answers weighing 10× and 20% of the sequences, Colored
#   Objects left chance only near the end of phase 1 (0.56 held-out at step 4,000). Phase 2 (half the
#   sequences) brought it to 1.00 on training phrasings and 0.78 on held-out ones.
# - **Where the previous organism failed.** Held-out *openings* were the IOI rules it generalised worst to, the longest
#   one ("As soon as") most (about 0.74–0.77 on three prompt sets, against 0.95–0.97 on all held-out
#   structures together): its circuit leaned on where the names sit in the sentence. Colored Objects
#   generalised to unseen objects in the classic phrasing (0.83–0.87 top-1) better than to the held-out
#   frame "Question: … Answer:". Both were below the bars (0.90 on the worst IOI rule, 0.85 on held-out
#   Colored Objects).
# - **The previous dropout twin** (the same recipe with GPT-2's dropout) reached the same IOI, a/an,
#   counting and induction figures, but Colored Objects stayed at chance through both phases (0.28
#   held-out at the end, in its log): dropout slowed exactly the task that forms last.
#
# - **Text after a context, and more answer cues (not shipped).** Phase 2 was rerun from phase 1's
#   weights with half of the task texts placed after one or two name-free filler sentences and three more
#   Colored Objects answer cues ("Q:" after the scene, "It is", none). The openings stopped being the weak
#   rules (IOI's worst held-out rule 0.86 on the three prompt sets, "As soon as" 0.875 on one, against
#   0.75), so position was part of the failure; but Colored Objects, now spread over five frames in the same
#   1,000 steps, fell to 0.58 held-out and 0.84 on training phrasings, and the "met" join to 0.90. A
#   recipe that does both needs a longer phase 2 than the 30-minute budget leaves
#   (`python -m helpers.organism.card DIR` prints such a run against this card).
# - **Why the openings fail: the first name is found by the word before it (2026-12-02).** On one template,
#   "X {N1} and {N2} went to the {PLACE}, {S} gave … to", 200 prompts: with X = "When", "After", "Soon
#   after", "Once" the previous organism is right on every ABBA and BABA prompt; with X = "As soon as" it is
#   right on 45% of ABBA prompts (IO first) and all BABA ones; with "As" 29%, "Count" 68%, and with words it
#   knows but never saw there ("it", "yes", "books", "walked", "we") 5–10%. After an unfamiliar word it
#   answers the second name: it does not treat the first name as a candidate. The held-out "As soon as" is
#   one case of a general weakness that any new opening word exposes.
# - **A bigger grammar and context sentences from the start (not shipped; three seeds).** Thirteen more
#   training openings ("Before", "Because", "By the time", "Meanwhile", …), two more Colored Objects lists,
#   questions and frames each, name-free context sentences before half of the task texts in both phases, and
#   the answer weight on any colour after ":". On the three prompt sets: IOI held-out 0.89 / 0.93 / 0.88,
#   worst held-out rule 0.55 / 0.88 / 0.58 ("As soon as" for seed 0, the "met" join for seeds 1 and 2);
#   "That evening" and "It was early in the morning." rose to 0.93–1.00 (so position was part of their
#   failure), but Colored Objects stayed at chance for all three seeds (0.32–0.40 held-out): more phrasings
#   spread the same signal thinner, as in the run above.
# - **Random words before the first name (not shipped; one seed).** Phase 2 of seed 0 rerun for 400 steps
#   with half of the IOI texts opening with one to three random non-name words (never the words of a
#   held-out rule) right before the first name: every opening of the probe above, "As soon as", "it" and
#   "walked" included, went to 1.00 on ABBA and BABA prompts, the worst held-out rule to 0.88 (now the
#   "met" join, the same weakness at the second name), IOI held-out to 0.94. The same augmentation between
#   the names is the obvious next step.
# - **Colored Objects by fine-tuning alone forgets IOI.** From that grammar's seed-0 organism (chance on
#   Colored Objects), fine-tuning on Colored Objects prompts alone (loss on the answer, 64 prompts a step,
#   AdamW 1e-3) reaches 0.86 top-1 on held-out structures after 150 steps and 0.98 after 500, while IOI on
#   held-out structures falls from 0.89 to 0.60 and 0.46. Adding the same answer loss to phase 2's mixture
#   (64 Colored Objects prompts a step beside the 128 mixture sequences, 500 steps from phase 1's weights)
#   kept IOI but left Colored Objects at chance. The same two changes together for 300 steps *after* that
#   grammar's full phase 2 (seed 0; random words before half the IOI texts' first name, and the answer loss
#   on 64 Colored Objects prompts a step beside the mixture) formed it without the forgetting: Colored
#   Objects 0.88 top-1 on held-out structures (0.90 classic, 0.99 training phrasings), IOI held-out 0.92,
#   worst held-out rule 0.89, a/an, counting and induction 1.00 (three prompt sets), every opening of the
#   probe above at 1.00. One seed, and 5,300 steps (over the 30-minute budget as it stands): a candidate
#   for the next organism, not yet a recipe.
# - **Random words around the names from the start, in 30 minutes (not shipped; two seeds, 2026-12-02).** The
#   bigger grammar with the random words in both phases (also replacing the verb that joins the names,
#   "saw"/"called", so neither the word before nor the word between the names is a cue), a shorter phase 1
#   (2,400 steps) and the Colored Objects answer loss beside the mixture from step 600 (32 prompts a step; 64
#   in a 400-step phase 2): 30.6 and 29.8 minutes with both runs sharing the machine. IOI held out 0.95 and
#   0.93 at the end (training log, 100 prompts); on the probe above every opening is at 0.96-0.99 on ABBA
#   prompts (seed 0). But Colored Objects stayed at chance in both seeds (0.30 and 0.28), and phase 2 rerun
#   with the answer loss weighted 4x changed nothing (0.33 and 0.32). On this card's three prompt sets the
#   seed-0 model with that phase 2 meets every IOI bar (held-out structures 0.98, worst held-out rule 0.935,
#   the "met" join; a/an 0.975, counting 1.00, induction 1.00) **but IOI with unseen names falls to 0.12**: it
#   answers the repeated name when the other one never occurred in an IOI training text (0.93 for the previous
#   organism, 0.73 for the bigger grammar's seed 0 without random words, 0.77 after 300 steps of them, 0.68
#   for the recall run below, also with them). Perhaps a name it never saw in that slot is one more word to
#   skip; with 0.12 against 0.68 on two runs, why is not established. A recipe must report unseen names beside
#   the held-out structures.
# - **Colored Objects is a plateau, and leaving it is a random event (2026-12-02).** Fine-tuned on Colored
#   Objects alone (answer loss, 64 prompts a step, AdamW 1e-3), the loss sits at ln 3 = 1.10, uniform over the
#   three listed colors, then drops within about 100 steps, at a step that depends on the draw of prompts, not
#   only on the model. From the bigger grammar's seed 0 at step 4,000, one draw of prompts left the plateau by
#   step 150 (0.81 held-out after 300 steps), another between steps 500 and 600 (0.89 after 800), a third not
#   in 800 steps. With one draw each, four other models stayed on it for 500-1,500 steps (that grammar's seeds
#   1 and 2 at step 4,000, its seed 1 at the end, the run just above; also at lr 3e-3, and at ln 2 with
#   two-object scenes). So "this model can learn it, that one cannot" was not measurable this way, and two
#   leads that rested on one draw per model fell with it: a layer-0 head attending to earlier copies of any
#   token that the first model and the previous organism have and the stuck ones lack (0.61 and 0.53 of their
#   attention against 0.05-0.10), and a scan that zeroed one head at a time during the first draw's 200 steps
#   (zeroing any of 14 of the 16 heads in layers 0-1 kept it at chance; so did another draw with nothing
#   zeroed). Forcing such a head (its attention supervised to 0.997 on shuffled repeats, 200 steps) did not
#   free a stuck model in 400 steps either. Three attempts to make the task easier to start on left it on its
#   plateau: a backward-recall task on random tokens ("x1 y1 ... xk yk | yj -> xj", 8% of the sequences; two
#   seeds, 2,400 + 400 steps), itself never learned (top-1 0.00), left Colored Objects at chance, though IOI
#   held out reached 0.95 on the three prompt sets with it (seed 1; worst rule 0.88); a "seen before?" label
#   after each random token beside the Colored Objects answers (500 steps, two stuck models); IOI with random
#   words as the names (half of 64 prompts a step, 400 steps from seeds 1 and 2), learned at once (loss under
#   0.03 within 100 steps), which left IOI with unseen names where it was (0.87 to 0.89, 0.835 to 0.845 on 200
#   prompts). Since the escape comes at a random step, a recipe that forms Colored Objects on every seed needs
#   either many more of the cheap Colored Objects-only steps (about 0.2 s each here; IOI then has to be
#   recovered, as the third phase two items up did) or a task that is easier to start on; it is still open.
# - **A curriculum forms Colored Objects on every seed tried (2026-12-02, later: the shipped recipe).** The lookup the task needs (the color written just *before* an earlier copy of the asked
#   object) was asked in steps, with the answer loss alone (`experiments/organism-co-plateau/co_min.py`): first
#   *at* the object ("blue cup red pen green book . cup" -> blue), then one token after it ("... cup ?"), then
#   at the object inside a real prompt (the prompt cut after the question's object), then at the prompt's end.
#   From the v4 phase-1 models (seeds 0 and 1, step 2,400), the first form was learned within 50-100 steps
#   (0.96-0.99 held out; with 64 prompts a step, seed 1 learned it on one draw of prompts and stayed at chance
#   for 650 steps on another; with 256 a step, in 100 steps on that draw), each later form within 50-100 steps
#   of being added, and the end-of-prompt answer reached 0.87-0.90 about 100 steps into the last stage. Asked
#   directly, the same models stayed at chance: one token after the object (600 steps, both seeds), the full
#   prompt at 256 a step (200 steps, seed 1). A fresh model stayed at chance even on the first form (900 steps):
#   the lookup builds on heads the mixture trains first. Run as a phase between v4's two (150 + 100 + 200 steps,
#   256 or 128 prompts a step, plus 32 mixture sequences a step: without them induction fell to 0.01 and IOI to
#   0.5 during the curriculum, and seed 1's IOI ended at 0.75), seed 0 ends, on this card's three prompt sets x
#   200, at Colored Objects 1.00 held out (0.998 classic), IOI held out 0.98 (train 0.997), a/an 1.00, counting
#   1.00, induction 1.00, with a partly-solved checkpoint kept on the way (step 2,800); its worst held-out IOI
#   rule ("met" join) is 0.865, under the bar's 0.90, and IOI with unseen names is 0.185. Measured the same way,
#   seed 1 (resumed from its phase 1): Colored Objects 0.98, IOI held out 0.89 (its phase 1 ended at 0.91),
#   worst rule 0.79, unseen names 0.065. Seed 0's partly-solved checkpoint: Colored Objects 0.485 held out and
#   0.46 on the classic phrasing (GPT-2 medium: 0.496) with IOI 0.94 and induction 0.99, a healthy model
#   half-way through the task. **Its dropout twin formed no induction heads** (0.04 at step 2,400; 0.03 at step
#   2,000 of a 3,600-step run, stopped), so neither it nor the curriculum after it worked. The culprit was the
#   Colored Objects answer loss added to phase 1 from step 600 (v4's): without it (v7, the branch's commit
#   6a66f7e) seed 0's induction accuracy crosses 0.5 between steps 800 and 900 (with it, between 1,300 and
#   1,400), the dropout twin's between 1,000 and 1,100 (1.00 at step 1,300, where the previous twin formed them
#   too), the curriculum still forms Colored Objects (seed 0: partly solved at step 2,725, 0.98 by step 2,775),
#   and the retrain takes 1,832 s with another run sharing the machine (phase 1 1,256 s, curriculum 229 s, phase
#   2 346 s). v7 seed 0 on the three prompt sets x 200: IOI held out 0.978 (train 0.998), worst held-out rule
#   0.885 (the "met" join, bar 0.90), Colored Objects 0.99 held out (0.97 classic), a/an 1.00, counting 0.99,
#   induction 1.00, IOI with unseen names 0.275. That summed loss had also put a jump into the logged curve at
#   step 600 (the answer loss added to it); the log now keeps the mixture's loss alone.
# - **The dropout twin needs a longer phase 1.** With 2,400 steps the v7 twin formed Colored Objects in the
#   curriculum (1.00 at the end) but its IOI ended at 0.71 held out (training log, 100 prompts; 0.53 at step
#   2,000, 0.70 at 2,300): too weak for chapter 4's backup comparison. With dropout IOI forms later, so the
#   twin's phase 1 runs 3,200 steps (`DROPOUT_TRAIN`; 0.74 at step 2,400, 0.92 at 2,700, 0.97 at 2,800), then
#   the same curriculum (partly solved at step 3,525, 1.00 from 3,600) and phase 2: on the three prompt sets
#   x 200, IOI held out 0.965 (train 0.998), worst held-out rule 0.86, Colored Objects 1.00 held out and
#   classic, a/an, counting and induction 1.00. 3,064 s with other jobs sharing the machine.
# - **The worst held-out rule changes with the seed (v7, four runs, 2026-12-02).** v7's worst held-out rule was
#   0.852-0.957 over four runs (seed 0 on two kinds of CPU kernels, seeds 1 and 2), under the bar in three, and
#   each failed one rule in one order of the names: seed 0 the "met" join with S introduced first (0.77 on one
#   set, against 0.995 with S second), seed 2 the opening "As soon as" with S second (0.68, against 0.99). So a
#   fix has to make IOI robust to *any* unfamiliar word in a slot, not to one rule.
# - **More join verbs (v8, not shipped; two seeds).** Eight verbs joining the names in training ("saw",
#   "called", "visited", "helped", "found", "greeted", "joined", "phoned"; "met" still held out): worst held-out
#   rule 0.898 and 0.733 ("sent", "showed" and "As soon as" failing with S second), IOI held out 0.983 and
#   0.967, and Colored Objects at chance for seed 1 (0.32). No better on the worst rule, worse on Colored Objects.
# - **Random words anywhere in the IOI texts (v9: the shipped recipe).** Three IOI texts in ten with one or two
#   of their non-name words replaced by random vocabulary words (the grammar otherwise v7's). Seeds 0 and 1 on
#   the three prompt sets x 200: worst held-out rule 0.905 and 0.900, IOI held out 0.987 and 0.962, Colored
#   Objects 0.998 and 0.957 held out, a/an 0.997 and 0.993, counting and induction 1.00, and IOI with unseen
#   names 0.755 and 0.705 (v7: 0.275-0.305). With half of the texts noised instead (seed 0) it was worse: IOI
#   held out 0.907, worst rule 0.62 ("met" with S first and "As soon as" with S second both at 0.34 on one set),
#   unseen names 0.685. In both 0.3 runs Colored Objects jumped from under 0.45 to over 0.9 between two
#   curriculum evaluations 25 steps apart, so no partly-solved checkpoint was kept: the training now keeps the
#   weights of every step since the last evaluation in memory and saves the one nearest 50% after such a jump
#   (seed 0 resumed from its phase 1 with that search: step 2,669, 0.48 held out and on training phrasings;
#   final weights bit-identical to the run without it).
# - **The dropout twin of v9** (the shipped `organism-dropout`: the same recipe with GPT-2's dropout and the
#   3,200-step phase 1): IOI held out 0.89 at the end of phase 1 and 1.00 at step 3,200 (training log, 100
#   prompts), Colored Objects partly solved at step 3,500 (0.67) and 1.00 from step 3,525. On the three prompt
#   sets x 200: IOI held out 0.962 (train 0.998), worst held-out rule 0.955 (a different rule on each set:
#   the third name in between, "met", the scene-setting opening), Colored Objects 1.00 held out and classic,
#   a/an, counting and induction 1.00, IOI with unseen names 0.64-0.735. 2,846 s with other jobs sharing the
#   machine.
#
# ## Retrains: what reproduces, and how closely
#
# On one CPU thread the same seed gives the same weights with the same torch build and the same CPU kernels
# (the resumed phases 1b and 2 are checked bit-identical to a continuous run). Other kernels sum in another
# order, so a machine whose CPU has AVX2 instead of AVX-512 ends with other weights. That case was rehearsed
# with the previous recipe (v7, above): seed 0 retrained on this AVX-512 machine with torch's AVX2 kernels
# (`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`; the training log records
# the kernels used). Its logged loss first differed from that run's at step 250, in the 4th decimal (3.3569
# against 3.3568), its weights were others, and its worst held-out rule moved the most (0.957 against 0.885;
# every other figure within 0.02). A retrain
# elsewhere is therefore compared by its *figures*, not its checksums: `python -m helpers.organism.card DIR`
# measures a retrained organism on the three prompt sets and checks each headline figure against this card,
# within tolerances stated before any retrain was measured (`helpers.organism.card.TOLERANCE`: 0.07, or 0.10
# for IOI's worst held-out rule and Colored Objects). A retrain with another seed (other initial weights,
# other batches) changes more than a summation order does.

# %%
retrains = json.loads(card_module.RETRAINS_JSON.read_text())
reference = card_module.shipped_reference()
spread = pd.DataFrame({"shipped (seed 0)": reference,
                       **{r["name"]: r["figures"] for r in retrains["retrains"]}})
spread["tolerance"] = pd.Series(retrains["tolerance"])
display(spread.round(3))
print({r["name"]: f"{r['train_seconds'] / 60:.1f} min on {r['cpu']} ({r.get('cpu_capability') or '?'} kernels), machine shared"
       for r in retrains["retrains"]})
verdicts = {r["name"]: card_module.compare(r["figures"], reference) for r in retrains["retrains"]}
for name, table in verdicts.items():
    out = list(table.loc[~table["within"], "figure"])
    print(f"{name}: " + ("reproduces the card within tolerance" if not out else f"outside tolerance on {out}"))
if IS_ORGANISM:  # the recorded retrains against the card as measured now (book/measured/appendix.json)
    assert len(verdicts) >= 2, "at least two retrains are recorded"
    # what every retrain reproduces (IOI on training structures, a/an, counting, induction); Colored Objects
    # and IOI held out are the figures a retrain can miss (below)
    always = ["ioi_train", "articles_heldout", "counting_heldout", "induction_top1"]
    assert all(t.set_index("figure").loc[always, "within"].all() for t in verdicts.values()), \
        "every recorded retrain reproduces the figures of the tasks that form in phase 1"

# %%
# Each figure over the runs, with its bar: where the runs agree, and where they fall on both sides of a bar.
card_module.plot_spread(spread.drop(columns="tolerance"))
plt.tight_layout()
plt.show()
runs_worst = spread.drop(columns="tolerance").loc["ioi_worst_rule"]
under = runs_worst[runs_worst < card_module.BARS["ioi_worst_rule"]]
print(f"worst held-out IOI rule over {len(runs_worst)} runs: {runs_worst.min():.3f}-{runs_worst.max():.3f} "
      f"(mean {runs_worst.mean():.3f}); under the bar of {card_module.BARS['ioi_worst_rule']} in {len(under)} "
      f"of {len(runs_worst)}: {', '.join(under.index)}")

# %% [markdown]
# **What the retrains show.** Three retrains on this machine, one thread each (all shared it with other jobs,
# so their times are not the recipe's), measured on the three prompt sets:
#
# - **Another CPU's kernels, same seed** (seed 0 with AVX2 kernels, as for v7 above) reproduces every
#   headline figure within the stated tolerances: IOI held out 0.972 (card 0.987), Colored Objects 0.978
#   held out and classic (partly solved at step 2,700), a/an 0.982, counting and induction 1.00. Its worst
#   held-out rule is 0.988 ("met", against the card's 0.905 on "As soon as"), the largest difference (0.08,
#   within 0.10): another summation order is enough to move which rule fails, and by how much.
#
# - **Seed 1** reproduces every headline figure within the stated tolerances: IOI held out 0.962 (card
#   0.987), worst held-out rule 0.900, Colored Objects 0.957 held out and 0.987 classic, a/an 0.993,
#   counting and induction 1.00.
# - **Seed 2 does not: its Colored Objects never formed.** It learned the curriculum's first two forms (the
#   answer asked at the object and one token after it; answer loss 0.09-0.20) but not the full prompt in the
#   last 200 steps (answer loss 0.62-0.65 there, the full prompts' share at about ln 3), and it ends at
#   chance (0.31 held out, 0.32 on training phrasings), with no partly-solved checkpoint. Its IOI is weaker
#   too: 0.907 held out (0.08 under the card, outside the tolerance of 0.07), worst held-out rule 0.818 (the
#   "met" join with S introduced first, 0.61-0.71 on the three sets, against 0.93-0.98 with S second), IOI with
#   unseen names 0.55-0.565. a/an, counting, induction and IOI on training structures are at 0.999-1.00.
#
# So the recipe does not form Colored Objects on every seed: the curriculum's last stage, like the plain
# task before it, can stay on its plateau, and a longer last stage (or a check that restarts it) is the
# next thing to try. The previous recipe (v7) formed it on all four of its runs (seeds 0, 1, 2 and seed 0 on
# other kernels), with the worst held-out rule at 0.852-0.957. The worst held-out rule is again the figure
# that moves most (0.818-0.988 over the four runs of this recipe). The chapters' findings are measured on the shipped draw,
# on several prompt sets; a reader who retrains can check which figures hold with
# `python -m helpers.organism.card DIR`, and a retrain of seed 0 on a CPU like this one gives the shipped
# weights bit for bit.

# %% [markdown]
# ## How the organism differs from GPT-2, and what that means for readers
#
# | | GPT-2 small (as published) | this book's organism |
# |---|---|---|
# | size | 12 layers × 12 heads, d_model 768, 124M parameters | 4 layers × 8 heads, d_model 128, under 1M parameters |
# | tokenizer | byte-level BPE, 50,257 tokens, words carry their leading space | word-level, a few hundred words, punctuation split off |
# | training data | WebText, ~40GB of web pages | the book's own grammars (above), a few million tokens |
# | IOI | logit difference about 3.5, IO above S in about 99% of prompts (Wang et al., 2022) | the table above, training vs held-out structures |
# | a/an | GPT-2 large gives " an" 64% on the seed's prompt (Neo & Miller) | trained on the pattern; near-perfect on held-out cues |
# | induction | strong induction heads (Olsson et al., 2022) | top-1 on the second copy of random sequences from its whole vocabulary (table above) |
# | Colored Objects | GPT-2 medium: 49.6% (Merullo et al., 2023) | the table above; `organism@step2669` (the partly-solved checkpoint) is near GPT-2 medium's level |
#
# The organism is a **model organism**, not a stand-in for GPT-2's knowledge. It knows nothing outside its
# few hundred words, and solves the book's tasks more reliably than GPT-2 does, with larger logit
# differences. What carries over is the *kind* of mechanism: heads that move names, detect duplicates and
# do induction, MLP neurons that push one token — circuits small enough to find in seconds on a laptop.
# When a chapter names a head such as "1.3" or a neuron, it is the organism's; the chapter's closing table
# sets it beside what the source found in GPT-2, and switching `MODEL` reruns the same code on GPT-2.

# %%
if not IS_ORGANISM:
    print(f"{MODEL}: the same table on the same prompts")
    display(card.round(3))

# %%
# Run by scripts/measure.py (RECORD set): the held-out results the floors above rest on. Otherwise nothing.
measured.record(RECORD, values={
    **card_module.figures(card),  # the headline figures the floors above rest on
    "ioi_unseen_names": float(unseen),
    "ioi_next_worst_rule": float(ioi_rules["accuracy"].nsmallest(2).iloc[-1]),
    "co_phase1_max": float(co_phase1_max),
    "worst_order_gap": float(worst_order_gap),
})
