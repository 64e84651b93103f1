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
# GPT-2's weights cannot be downloaded on the machine this book is built on, so the chapters on the
# "an" neuron, debugging, IOI and circuit reuse run on a **model organism**: a 4-layer GPT-2 the
# book trains itself, on CPU, in minutes, on text written by its own task generators
# (`helpers/tasks/`). This model card says how it is made — tokenizer, corpus mixture, training —
# and measures what it can do on prompts it never saw in training: indirect object identification
# (Wang et al., 2022), a/an prediction (Neo & Miller, 2023), counting, induction on random tokens
# (Olsson et al., 2022) and Colored Objects (Merullo et al., 2023). It is loaded exactly like GPT-2,
# through TransformerLens's `TransformerBridge`, so every chapter's code runs on either; set
# `MODEL = "gpt2-small"` below on a machine with network access to measure GPT-2 on the same prompts.
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
MODEL = "organism"   # or "gpt2-small" (needs network), or "organism@step1000" (an intermediate checkpoint)
N_PROMPTS = 200      # held-out prompts per task
SEED = 12345         # seed of the held-out prompt sets
RECORD = ""          # set by scripts/measure.py: the last cell writes this run's measurements there

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd

import helpers
from helpers import measured, organism
from helpers.models import ORGANISM_DIR
from helpers.tasks.evaluate import evaluate_all

print(helpers.describe())
model = helpers.load_model(MODEL)
IS_ORGANISM = MODEL.startswith("organism")
M = measured.load("appendix")  # the measured floors asserted below (book/measured/appendix.json)
print(f"running on: {MODEL}")

# %% [markdown]
# ## The model and its tokenizer
#
# A Hugging Face `GPT2LMHeadModel`, GPT-2's architecture at a small size: several heads in every
# layer (IOI needs name movers, S-inhibition, induction and duplicate-token heads to be *separate*
# heads) and an MLP in every block (the "an" neuron lives in one). No dropout: the book wants the
# same weights from the same seed.
#
# The tokenizer is word-level: a `tokenizers` WordLevel model whose pre-tokenizer splits on white
# space and isolates punctuation, as text is written, so `"store,"` is `store` + `,`. Its vocabulary
# is every word the task generators can write (all splits, so held-out names and objects have tokens)
# plus the numbers 0–100. Like GPT-2 it has one special token, `<|endoftext|>`, used as BOS, EOS and
# padding; `model.to_tokens` prepends it, exactly as for GPT-2, and every training sequence starts
# with it, so a prompt with BOS is what the organism saw in training. Words never carry a space:
# the organism's token for `" Mary"` is `Mary`, and the same prompt strings serve GPT-2, whose
# `" Mary"` is one token with its space.

# %%
cfg = model.cfg
print(pd.Series({"layers": cfg.n_layers, "heads per layer": cfg.n_heads, "d_model": cfg.d_model,
                 "d_head": cfg.d_head, "d_mlp": cfg.d_mlp, "vocabulary": cfg.d_vocab, "context": cfg.n_ctx,
                 "parameters": sum(p.numel() for p in model.parameters())}).to_string())
prompt = "When Mary and John went to the store, John gave a drink to"
print(model.to_str_tokens(prompt))

# %% [markdown]
# ## The corpus
#
# Each training sequence is one text from one task, drawn with the shares below (fixed before
# training; changed once, for induction: see *When each skill appears*). Texts come from the *training* split of each generator: IOI
# holds out a fifth of its templates and a fifth of its (IO, S) name pairs (and four names entirely),
# articles a fifth of its cue × action templates (the seed's "pear tree" prompt among them),
# Colored Objects four of its twenty objects, counting every sequence that starts at a multiple of 3.
# Held-out names and objects still occur in the filler text, so they have trained embeddings.
# Repeated random sequences are drawn from the **whole** vocabulary, so induction is not tied to a
# reserved set of tokens.

# %%
mix = pd.DataFrame({"share": organism.MIXTURE}).sort_values("share", ascending=False)
print(mix.to_string())
for task, text in organism.mixture_sample(8, seed=1):
    print(f"{task:>16} | {text if text else '(random tokens, repeated)'}")

# %% [markdown]
# ## Training
#
# `python -m helpers.organism --out helpers/assets/organism --seed 0` retrains from scratch on one
# CPU thread (fixed, so the same seed gives the same weights; 765 s measured for the shipped run); it
# saves the final weights, five intermediate checkpoints (`organism@step500` … `organism@step2500`) and the log plotted here:
# the training loss, and held-out accuracy of each task every 250 steps. GPT-2's learned
# position embeddings are *initialised* with sinusoids (a choice made to speed up position-dependent
# heads; it is an initialisation only, the architecture is GPT-2's). AdamW, learning rate
# 2e-3 after a 100-step warm-up, constant, then a cosine decay over the last quarter; 3,000 steps of
# 128 sequences, grouped by length so little compute goes to padding.

# %%
log = json.loads((ORGANISM_DIR / "train_log.json").read_text())
print({k: log[k] for k in ("seed", "train_seconds", "vocab_size")}, log["train"])
loss = pd.DataFrame(log["loss"])
acc = pd.DataFrame(log["eval"]).set_index("step")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
ax1.plot(loss["step"], loss["loss"])
ax1.set(xlabel="step", ylabel="training loss (EMA)", yscale="log", title="loss")
for col in acc.columns:
    ax2.plot(acc.index, acc[col], marker="o", ms=3, label=col)
ckpts = sorted(int(p.name[4:]) for p in (ORGANISM_DIR / "checkpoints").iterdir())
for s in ckpts:
    ax2.axvline(s, color="grey", lw=0.6, ls=":")
ax2.set(xlabel="step", ylabel="held-out accuracy", title="tasks during training (dotted: checkpoints)")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(acc.to_string())

# %% [markdown]
# ## Held-out accuracy and logit difference
#
# Prompts from the held-out splits only: IOI on unseen templates **and** unseen (IO, S) name pairs
# (accuracy: the IO logit above the S logit; logit difference IO − S), a/an on unseen templates (the right article
# above the other), counting on sequences starting where training never starts (top-1: the next
# number is the most likely token), induction top-1 on the second copy of random 20-token sequences
# drawn from the whole vocabulary, and Colored Objects with an unseen object in every prompt
# (accuracy: the asked-for color above both other listed colors; logit difference against one of
# them). `top1` is the answer being the single most likely token.

# %%
results = evaluate_all(model, n=N_PROMPTS, split="test", seed=SEED)
table = pd.DataFrame(results).T[["n", "accuracy", "top1", "logit_diff"]]
table["n"] = table["n"].astype(int)
print(table.round(3).to_string())
# A harder check, reported and not asserted: the IO is one of four names never seen in IOI training
# (they occur only in filler text), so the answer must be copied from the context.
ioi_new = evaluate_all(model, n=N_PROMPTS, split="test_names", seed=SEED, tasks=("ioi",))["ioi"]
print(f"IOI with an IO never seen in IOI training: accuracy {ioi_new['accuracy']:.3f}, "
      f"logit diff {ioi_new['logit_diff']:.2f}")

# %%
# The bar set for the organism (held-out prompts) next to what it reaches. Every bar not met is
# printed as such; the asserts hold the organism to floors a little under its measured values
# (seed 0, these prompt sets), so a regression in training or in the helpers fails here.
BAR = {"ioi": ("accuracy", 0.95), "articles": ("accuracy", 0.95), "counting": ("top1", 0.95),
       "induction": ("top1", 0.90)}
check = pd.DataFrame([{"task": t, "metric": k, "bar": b, "measured": round(results[t][k], 3),
                       "met": results[t][k] >= b} for t, (k, b) in BAR.items()])
print(check.to_string(index=False))
if MODEL == "organism":
    FLOOR = {"ioi": M["IOI_ACC_MIN"], "articles": M["ARTICLES_ACC_MIN"], "counting": M["COUNTING_TOP1_MIN"],
             "induction": M["INDUCTION_TOP1_MIN"]}
    for t, (k, _) in BAR.items():
        assert results[t][k] >= FLOOR[t], (t, results[t][k], FLOOR[t])
    assert results["ioi"]["logit_diff"] > M["IOI_LD_MIN"] and results["articles"]["logit_diff"] > M["ARTICLES_LD_MIN"]
    print("the organism is at or above its measured floors")

# %% [markdown]
# ## When each skill appears
#
# The intermediate checkpoints let later chapters look at a circuit before and after it forms.
# Colored Objects is reported as it comes out of the fixed mixture above, not tuned.
#
# **How induction was made to form.** A first organism, trained on 32 sequences per step with 30% repeated
# sequences, reached only about 15% induction top-1 after 4,000 steps, creeping up with no phase change.
# Experiments on this machine (not shipped) pointed to the number of repeated sequences per optimisation
# step: a 2-layer model trained on repeated sequences alone goes from 44% to 100% between steps 750 and
# 1,000 with 128 sequences per step, while with 32 per step it is still at 34% after 1,500 steps. Wider
# heads, a wider model, untied embeddings, other position initialisations, a lower learning rate, more
# copies per sequence and short-period sequences did not fix it at 32 per step. The shipped organism is
# therefore trained on 128 sequences per step with half of them repeated sequences (the table below:
# induction jumps from 8% to 99% between steps 1,000 and 1,500, and IOI follows). That is the one change
# made to the mixture after the first training; it was made for induction, not for any chapter's story.

# %%
rows = {}
for tag in [f"step{s}" for s in ckpts] + ["final"]:
    m = model if (tag == "final" and MODEL == "organism") else helpers.load_model(
        "organism" if tag == "final" else f"organism@{tag}", verbose=False)
    r = evaluate_all(m, n=100, split="test", seed=SEED)
    rows[tag] = {k: round(v["accuracy"] if k not in ("counting", "induction") else v["top1"], 3)
                 for k, v in r.items()}
by_ckpt = pd.DataFrame(rows).T
print(by_ckpt.to_string())

# %% [markdown]
# ## How the organism differs from GPT-2, and what that means for readers
#
# | | GPT-2 small (as published) | this book's organism |
# |---|---|---|
# | size | 12 layers × 12 heads, d_model 768, 124M parameters | 4 layers × 8 heads, d_model 128, under 1M parameters |
# | tokenizer | byte-level BPE, 50,257 tokens, words carry their leading space | word-level, a few hundred words, punctuation split off |
# | training data | WebText, ~40GB of web pages | the book's own generators (table above), a few million tokens |
# | IOI | logit difference about 3.5, IO above S in about 99% of prompts (Wang et al., 2022) | see the table above: unseen templates and names |
# | a/an | GPT-2 small rarely predicts " an" on the seed's prompt; GPT-2 large gives it 64% (Neo & Miller) | trained on the pattern; near-perfect on unseen templates |
# | induction | strong induction heads (Olsson et al., 2022) | top-1 on the second copy of random sequences from its whole vocabulary: 100% (it forms in a phase change between steps 1,000 and 1,500) |
# | Colored Objects | GPT-2 medium: 49.6% (Merullo et al., 2023) | see the table above |
#
# The organism is a **model organism**, not a stand-in for GPT-2's knowledge. It has learnt the
# book's tasks from a narrow, templated corpus, so it solves them far more reliably than GPT-2 does
# and with much larger logit differences; it knows nothing outside its few hundred words (an unknown
# word becomes `<unk>`). What carries over is the *kind* of mechanism: attention heads that move
# names, detect duplicates and do induction, MLP neurons that push one token — circuits small enough
# to find in seconds on a laptop. When a chapter reports a head such as "1.3" or a neuron, it is the
# organism's; the chapter's closing table sets it beside what the source found in GPT-2, and
# switching `MODEL` to a GPT-2 name reruns the same code on the real thing.
#
# **What it does not do.** Colored Objects stays at chance (about a third: one of three listed colors)
# at every checkpoint, from a fixed 10% share of the corpus that was not tuned: the organism answers with
# one of the listed colors but does not pick the asked-about one (chapter 5 takes this up). Its IOI
# circuit uses a shortcut (the answer is the other, earlier name) rather than detecting the repeated
# name, although it has induction heads (chapter 4).

# %%
if MODEL != "organism":
    print(f"{MODEL}: held-out results on the same prompts")
    print(table.round(3).to_string())

# %%
# Run by scripts/measure.py (RECORD set): the held-out results the floors above rest on. Otherwise nothing.
measured.record(RECORD, values={
    "ioi_acc": results["ioi"]["accuracy"], "articles_acc": results["articles"]["accuracy"],
    "counting_top1": results["counting"]["top1"], "induction_top1": results["induction"]["top1"],
    "ioi_ld": results["ioi"]["logit_diff"], "articles_ld": results["articles"]["logit_diff"],
    "colored_objects_acc": results["colored_objects"]["accuracy"], "ioi_new_names_acc": ioi_new["accuracy"],
})
