"""Probe: unfamiliar words before/between the names and a few novel IOI structures (ABBA/BABA accuracy)."""
import sys, json, torch
torch.set_num_threads(1)
from helpers import load_model
from helpers.tasks import ioi
from helpers.tasks.evaluate import evaluate_batch
m = load_model(sys.argv[1])
vocab = set(m.tokenizer.get_vocab())
T = {}
for X in ["When", "As soon as", "As", "it", "yes", "Count", "books", "walked", "we"]:
    T[f"open:{X}"] = X + " {N1} and {N2} went to the {PLACE}, {S} gave {A_OBJECT} to"
T["novel:were at"] = "{N1} and {N2} were at the {PLACE}. {S} gave {A_OBJECT} to"
T["novel:met"] = "Yesterday {N1} met {N2} at the {PLACE}. {S} handed the {OBJECT} to"
T["novel:both"] = "Then, {N1} and {N2} were both at the {PLACE}. Later, {S} brought {A_OBJECT} to"
T["novel:talked"] = "{N1} talked with {N2} at the {PLACE}. Then {S} threw the {OBJECT} to"
T["novel:two gaps"] = "When {N1} and {N2} got {A_OBJECT} at the {PLACE}, they were happy. It was a nice day. The {PLACE} was busy. {S} passed the {OBJECT} to"
out = {}
for k, t in T.items():
    words = t.replace(".", " ").replace(",", " ")
    words = [w for w in words.split() if not w.startswith("{")]
    miss = [w for w in words if w not in vocab]
    if miss:
        out[k] = f"missing {miss}"; continue
    b = ioi.generate(200, split="test", seed=3, templates=[t])
    out[k] = [round(evaluate_batch(m, b[[i for i, mt in enumerate(b.meta) if mt["order"] == o]])["accuracy"], 2) for o in ("ABBA", "BABA")]
for k, v in out.items():
    print(f"{k:20s} {v}")
print("PROBE " + json.dumps(out))
