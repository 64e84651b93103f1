"""Indirect Object Identification prompts, built as Wang et al. (2022) built theirs.

"When Mary and John went to the store, John gave a drink to" -> " Mary". Templates are composed
from an opening, a middle and an ending (BABA and ABBA orders of the two names); a fixed fifth of
the compositions and a fifth of the (IO, S) name pairs are held out of training for evaluation;
four names never occur in IOI training at all (split ``"test_names"``, a harder check). Each
clean prompt has an ABC-corrupted twin (the second mention of S replaced by a third name), of the
same length in tokens, and the character spans of IO, S1 and S2.
"""

from __future__ import annotations

import itertools
import random

from .batch import PromptBatch, article, rng_of, span_of

NAMES = ["Mary", "John", "Alice", "Bob", "Tom", "James", "Sarah", "Emma", "David", "Michael",
         "Anna", "Paul", "Peter", "Kate", "Lisa", "Mark", "Laura", "Daniel", "Rachel", "Susan",
         "Jack", "Ryan", "Emily", "Chris", "Jessica", "George", "Helen", "Steven", "Andrew", "Amy",
         "Kevin", "Linda", "Jennifer", "Brian", "Karen", "Scott", "Eric", "Adam", "Jane", "Sam"]
PLACES = ["store", "garden", "restaurant", "school", "hospital", "office", "house", "station",
          "park", "beach", "library", "market"]
OBJECTS = ["drink", "snack", "ring", "ball", "book", "gift", "key", "cake", "flower", "letter",
           "bag", "hat"]

#: Openings: (text before the names, joint between the middle and the ending).
OPENINGS = [("Then,", "."), ("Afterwards,", "."), ("Later,", "."), ("When", ","), ("After", ","),
            ("While", ",")]
MIDDLES = ["went to the {PLACE}", "had a lot of fun at the {PLACE}", "were working at the {PLACE}",
           "were thinking about going to the {PLACE}", "got {A_OBJECT} at the {PLACE}",
           "had a long argument"]
ENDINGS = ["gave {A_OBJECT} to", "decided to give {A_OBJECT} to", "wanted to give {A_OBJECT} to",
           "handed the {OBJECT} to", "said goodbye to", "threw the {OBJECT} to"]


def _template(opening: tuple[str, str], middle: str, ending: str) -> str:
    first, joint = opening
    return f"{first} {{N1}} and {{N2}} {middle}{joint} {{S}} {ending}"


TEMPLATES = [_template(o, m, e) for o, m, e in itertools.product(OPENINGS, MIDDLES, ENDINGS)]
#: Every fifth composition (offset so each opening, middle and ending occurs in both splits).
HELDOUT_TEMPLATES = [t for i, t in enumerate(TEMPLATES) if i % 5 == 2]
TRAIN_TEMPLATES = [t for i, t in enumerate(TEMPLATES) if i % 5 != 2]
#: Four names never occur in IOI training (only in filler text): the "unseen names" split.
HELDOUT_NAMES = NAMES[9::10]
TRAIN_NAMES = [n for n in NAMES if n not in HELDOUT_NAMES]


def heldout_pair(a: str, b: str) -> bool:
    """Whether the (unordered) name pair is held out of training: a fixed fifth of all pairs."""
    i, j = sorted((NAMES.index(a), NAMES.index(b)))
    return (i * 7 + j * 3) % 5 == 0


SPLITS = ("train", "test", "test_names", "all")


def _pools(split: str) -> tuple[list[str], list[str]]:
    if split == "train":
        return TRAIN_TEMPLATES, TRAIN_NAMES
    if split == "test":  # unseen templates and unseen (IO, S) pairs of names seen in training
        return HELDOUT_TEMPLATES, TRAIN_NAMES
    if split == "test_names":  # unseen templates, IO a name never seen in IOI training
        return HELDOUT_TEMPLATES, NAMES
    if split == "all":
        return TEMPLATES, NAMES
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _names(rng: random.Random, pool: list[str], split: str) -> tuple[str, str, str]:
    """(IO, S, C) for a split: training pairs avoid held-out pairs, test pairs are held out."""
    while True:
        if split == "test_names":
            io = rng.choice(HELDOUT_NAMES)
            s, c = rng.sample([n for n in TRAIN_NAMES], 2)
            return io, s, c
        io, s, c = rng.sample(pool, 3)
        if split == "all" or heldout_pair(io, s) == (split == "test"):
            return io, s, c


def fill(template: str, io: str, s: str, place: str, obj: str, order: str) -> str:
    """One prompt from a template: ``order`` ``"ABBA"`` puts IO first, ``"BABA"`` puts S first."""
    n1, n2 = (io, s) if order == "ABBA" else (s, io)
    return template.format(N1=n1, N2=n2, S=s, PLACE=place, OBJECT=obj, A_OBJECT=f"{article(obj)} {obj}")


def generate(n: int, split: str = "train", seed: int | random.Random = 0, order: str | None = None,
             names: list[str] | None = None, templates: list[str] | None = None) -> PromptBatch:
    """``n`` IOI prompts with ABC-corrupted twins; ``order`` fixes BABA/ABBA (alternating by default)."""
    rng = rng_of(seed)
    tpls, pool = _pools(split)
    tpls = templates or tpls
    pool = names or pool
    if len(pool) < 3:
        raise ValueError("need at least three names (IO, S and the corrupting C)")
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for i in range(n):
        tpl = rng.choice(tpls)
        io, s, c = _names(rng, pool, split) if names is None else rng.sample(pool, 3)
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        o = order or ("ABBA" if i % 2 == 0 else "BABA")
        text = fill(tpl, io, s, place, obj, o)
        s1 = span_of(text, s)
        s2 = span_of(text, s, s1[1])
        io_span = span_of(text, io)
        texts.append(text)
        corr.append(text[:s2[0]] + c + text[s2[1]:])
        answers.append(" " + io)
        distr.append(" " + s)
        spans.append({"IO": io_span, "S1": s1, "S2": s2})
        meta.append({"template": TEMPLATES.index(tpl) if tpl in TEMPLATES else -1, "order": o,
                     "IO": io, "S": s, "C": c})
    return PromptBatch("ioi", texts, answers, distr, spans, corr, meta)
