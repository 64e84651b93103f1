"""a/an prompts where the article depends on a noun the model has not written yet (Neo & Miller, 2023).

"I climbed up the pear tree and picked a pear. I climbed up the apple tree and picked" -> " an".
Each template names a noun in a cue and then asks for the article of that noun; an example
sentence with another noun first shows the pattern. Vowel and consonant nouns are balanced; some
templates are held out of training. The corrupted twin swaps the cue noun for one of the other
article.
"""

from __future__ import annotations

import random

from . import PromptBatch, article, rng_of, span_of

#: Noun categories: (vowel-initial nouns, consonant-initial nouns).
NOUNS = {
    "fruit": (["apple", "orange", "olive", "onion", "acorn"],
              ["pear", "lemon", "peach", "plum", "cherry", "banana", "mango"]),
    "animal": (["elephant", "owl", "eagle", "ant", "insect"],
               ["dog", "cat", "horse", "tiger", "lion", "rabbit", "monkey"]),
    "thing": (["umbrella", "egg", "envelope", "oven", "engine"],
              ["hammer", "candle", "basket", "pillow", "ladder", "bucket", "blanket"]),
}
TEMPLATES = {
    "fruit": ["I climbed up the {x} tree and picked {ax}. I climbed up the {y} tree and picked",
              "She walked to the {x} stand and bought {ax}. She walked to the {y} stand and bought",
              "The farmer grows {x} trees and sold me {ax}. The farmer grows {y} trees and sold me",
              "We saw the {x} tree and ate {ax}. We saw the {y} tree and ate"],
    "animal": ["At the zoo I saw the {x} house and fed {ax}. Then I saw the {y} house and fed",
               "The book about the {x} had a picture of {ax}. The book about the {y} had a picture of",
               "He drew the {x} cage and painted {ax}. He drew the {y} cage and painted",
               "We read the {x} story and met {ax}. We read the {y} story and met"],
    "thing": ["I went to the {x} shop and bought {ax}. I went to the {y} shop and bought",
              "The {x} box was open, so she took {ax}. The {y} box was open, so she took",
              "He looked in the {x} drawer and found {ax}. He looked in the {y} drawer and found",
              "We opened the {x} crate and took out {ax}. We opened the {y} crate and took out"],
}
#: The last template of each category is held out of training.
HELDOUT = {cat: tpls[-1:] for cat, tpls in TEMPLATES.items()}
TRAIN = {cat: tpls[:-1] for cat, tpls in TEMPLATES.items()}


def generate(n: int, split: str = "train", seed: int | random.Random = 0) -> PromptBatch:
    """``n`` prompts, alternating " an" and " a" answers; the distractor is the other article."""
    pools = {"train": TRAIN, "test": HELDOUT, "all": TEMPLATES}
    if split not in pools:
        raise ValueError(f"split must be one of {sorted(pools)}, got {split!r}")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for i in range(n):
        cat = rng.choice(sorted(NOUNS))
        vow, con = NOUNS[cat]
        want_an = i % 2 == 0
        y = rng.choice(vow if want_an else con)
        x = rng.choice([w for w in vow + con if w != y])
        y2 = rng.choice(con if want_an else vow)
        tpl = rng.choice(pools[split][cat])
        text = tpl.format(x=x, ax=f"{article(x)} {x}", y=y)
        cut = text.rindex(" " + y + " ") + 1
        texts.append(text)
        corr.append(text[:cut] + y2 + text[cut + len(y):])
        answers.append(" " + article(y))
        distr.append(" " + ("a" if want_an else "an"))
        spans.append({"NOUN": span_of(text, y, cut - 1), "EXAMPLE_NOUN": span_of(text, x)})
        meta.append({"noun": y, "example": x, "category": cat, "template": tpl, "noun_after": " " + y,
                     "corrupt_noun": y2})
    return PromptBatch("articles", texts, answers, distr, spans, corr, meta)


def full_texts(batch: PromptBatch) -> list[str]:
    """Prompt + article + noun + full stop: the training text of an article prompt."""
    return [f"{t}{a}{m['noun_after']}." for t, a, m in zip(batch.texts, batch.answers, batch.meta)]
