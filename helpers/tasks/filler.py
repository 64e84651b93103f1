"""Neutral filler text: short plain sentences over the book's vocabulary, so the organism sees its
words (names, places, objects, nouns, numbers) outside the task templates and is not only a
template machine. It never states an object's color and never hands anything to anyone, so it
teaches none of the tasks. It also uses the words of the tasks' held-out phrasings ("sent",
"showed", "That evening", "Question: ... Answer:"), so the test splits hold out structures, not words. The "answer" of a filler prompt is its closing full stop.
"""

from __future__ import annotations

import random

from .articles import NOUNS
from .batch import PromptBatch, article, rng_of
from .colored_objects import OBJECTS as CO_OBJECTS
from .colored_objects import SURFACES
from .ioi import NAMES, PLACES
from .ioi import OBJECTS as IOI_OBJECTS

ADJECTIVES = ["big", "small", "old", "new", "quiet", "busy", "warm", "cold", "bright", "dark", "clean",
              "happy", "tired", "early", "late", "long", "short", "nice"]
THINGS = sorted(set(CO_OBJECTS + IOI_OBJECTS + [w for v, c in NOUNS.values() for w in v + c]))
WHERE = sorted(set(PLACES + SURFACES))

SENTENCES = [
    "{N} walked to the {P}.",
    "{N} was at the {P} in the morning.",
    "It was a {adj} day, and the {P} was {adj2}.",
    "The {T} was {adj}.",
    "There was {aT} on the {W}.",
    "{N} met {M} at the {P}.",
    "{N} saw {M} at the {P}.",
    "{N} called {M} from the {P}.",
    "On Monday, it was raining.",
    "Soon after that, {N} was {adj}.",
    "Just before noon, the {P} was {adj}.",
    "{N} and {M} are friends.",
    "{N} said that the {P} was {adj}.",
    "{N} has {k} books and {k2} cups.",
    "The {P} opens at {k} and closes at {k2}.",
    "{N} looked at the {T} for a long time.",
    "We found {aT} near the {P}.",
    "The {adj} {T} is under the {W}.",
    "{N} thought about the {T}.",
    "{N} sent the {T} yesterday.",
    "{N} showed us the {T}.",
    "It was early in the morning.",
    "That evening, the {P} was {adj}.",
    "As soon as it was {adj}, we left the {P}.",
    "Question: was the {P} {adj}? Answer: yes.",
    "Can you tell me the way to the {P}?",
    "The {W} has {aT} on it.",
    "Let us count the books.",
    "They visited the farm and the market.",
    "Everyone was waiting for {N}.",
    "Only {N} was at the {P}.",
    "Yesterday {N} was {adj}.",
]


def sentence(rng: random.Random) -> str:
    """One filler sentence."""
    t = rng.choice(THINGS)
    n, m = rng.sample(NAMES, 2)
    a1, a2 = rng.sample(ADJECTIVES, 2)
    return rng.choice(SENTENCES).format(N=n, M=m, P=rng.choice(PLACES), W=rng.choice(WHERE), T=t,
                                        aT=f"{article(t)} {t}", adj=a1, adj2=a2,
                                        k=rng.randint(1, 12), k2=rng.randint(1, 12))


def generate(n: int, split: str = "train", seed: int | random.Random = 0, sentences: int = 3) -> PromptBatch:
    """``n`` filler paragraphs of 1 … ``sentences`` sentences, each without its final full stop."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    rng = rng_of(seed + 1_000_003 if split == "test" and isinstance(seed, int) else seed)
    texts = []
    for _ in range(n):
        para = " ".join(sentence(rng) for _ in range(rng.randint(1, sentences)))
        texts.append(para[:-1])
    return PromptBatch("filler", texts, ["."] * n, [","] * n)
