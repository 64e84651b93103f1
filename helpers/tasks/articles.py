"""a/an prompts where the article depends on a noun the model has not written yet (Neo & Miller, 2023).

"I climbed up the pear tree and picked a pear. I climbed up the apple tree and picked" -> " an".
Each template names a noun in a cue ("I climbed up the apple tree") and then asks for the article
of that noun; an example sentence with another noun first shows the pattern. Templates are cue x
action compositions; one cue per category and a fifth of the other compositions are held out of
training.
Vowel and consonant nouns are balanced. The corrupted twin swaps the cue noun for one of the other
article.
"""

from __future__ import annotations

import random

from .batch import MAX_REDRAWS, PromptBatch, article, fits, rng_of, span_of

#: Noun categories: (vowel-initial nouns, consonant-initial nouns).
NOUNS = {
    "fruit": (["apple", "orange", "olive", "onion", "acorn"],
              ["pear", "lemon", "peach", "plum", "cherry", "banana", "mango"]),
    "animal": (["elephant", "owl", "eagle", "ant", "insect"],
               ["dog", "cat", "horse", "tiger", "lion", "rabbit", "monkey"]),
    "thing": (["umbrella", "egg", "envelope", "oven", "engine"],
              ["hammer", "candle", "basket", "pillow", "ladder", "bucket", "blanket"]),
}
#: Cue phrases per category (the noun fills ``{n}``) and actions; a template is cue + action, twice.
CUES = {
    "fruit": ["I climbed up the {n} tree", "She walked to the {n} stand", "The farmer grew the {n} tree",
              "We looked at the {n} tree", "They visited the {n} farm"],
    "animal": ["At the zoo I saw the {n} house", "He read the book about the {n}", "We looked at the {n} cage",
               "She drew the {n} cage", "They visited the {n} farm"],
    "thing": ["I went to the {n} shop", "She opened the {n} box", "He looked in the {n} drawer",
              "We walked to the {n} shop", "They visited the {n} market"],
}
#: The last cue of each category occurs only in the test split: a whole phrasing never seen in training.
HELDOUT_CUES = {cat: cues[-1] for cat, cues in CUES.items()}
ACTIONS = ["picked", "bought", "found", "took", "got"]


def _template(cue: str, action: str) -> str:
    return f"{cue.format(n='{x}')} and {action} {{ax}}. {cue.format(n='{y}')} and {action}"


TEMPLATES = {cat: [_template(c, a) for c in cues for a in ACTIONS] for cat, cues in CUES.items()}
#: Held out of training: every composition with the held-out cue, and every fifth other cue/action
#: composition (each of those cues and actions occurs in both splits).
HELDOUT = {cat: [t for i, t in enumerate(tpls)
                 if i % 5 == i // 5 % 5 or t.startswith(HELDOUT_CUES[cat].format(n="{x}"))]
           for cat, tpls in TEMPLATES.items()}
TRAIN = {cat: [t for t in tpls if t not in HELDOUT[cat]] for cat, tpls in TEMPLATES.items()}


def generate(n: int, split: str = "train", seed: int | random.Random = 0, tokenizer=None) -> PromptBatch:
    """``n`` prompts, alternating " an" and " a" answers; the distractor is the other article.

    ``tokenizer`` (a model or tokenizer): redraw a prompt's nouns and template until its nouns are single
    tokens for it (GPT-2's BPE splits " acorn" into " ac" + "orn"). ``None`` (the default) never redraws:
    the organism's prompt sets, which the chapters' measurements rest on, are the same with or without it.
    """
    pools = {"train": TRAIN, "test": HELDOUT, "all": TEMPLATES}
    if split not in pools:
        raise ValueError(f"split must be one of {sorted(pools)}, got {split!r}")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for i in range(n):
        cat = rng.choice(sorted(NOUNS))
        vow, con = NOUNS[cat]
        want_an = i % 2 == 0
        answer, distractor = ("an", "a") if want_an else ("a", "an")
        for _ in range(MAX_REDRAWS):
            y = rng.choice(vow if want_an else con)
            x = rng.choice([w for w in vow + con if w != y])
            y2 = rng.choice(con if want_an else vow)
            tpl = rng.choice(pools[split][cat])
            text = tpl.format(x=x, ax=f"{article(x)} {x}", y=y)
            cut = text.rindex(" " + y + " ") + 1
            wrong = text[:cut] + y2 + text[cut + len(y):]
            span = {"NOUN": span_of(text, y, cut - 1), "EXAMPLE_NOUN": span_of(text, x)}
            if fits(tokenizer, text, " " + answer, " " + distractor, span, wrong):
                break
        else:
            raise ValueError(f"no {answer!r} prompt of category {cat!r} whose nouns are single tokens for this "
                             f"model in {MAX_REDRAWS} draws (last: {text!r})")
        texts.append(text)
        corr.append(wrong)
        answers.append(" " + answer)
        distr.append(" " + distractor)
        spans.append(span)
        meta.append({"noun": y, "example": x, "category": cat, "template": tpl, "noun_after": " " + y,
                     "corrupt_noun": y2})
    return PromptBatch("articles", texts, answers, distr, spans, corr, meta)


def full_texts(batch: PromptBatch) -> list[str]:
    """Prompt + article + noun + full stop: the training text of an article prompt."""
    return [f"{t}{a}{m['noun_after']}." for t, a, m in zip(batch.texts, batch.answers, batch.meta)]
