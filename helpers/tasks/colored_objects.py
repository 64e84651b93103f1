"""Colored Objects prompts, the task Merullo et al. (2023) took from BIG-bench (Ippolito & Callison-Burch).

"Q: On the table, I see a silver pencil, a green book, and a red pen. What color is the pen? A:"
-> " red". Two to four objects with distinct colors on a surface; the question names one of them,
and the distractor is the color of another listed object. The prompts come from a small grammar:
several ways to list the objects, to ask, and to frame the question, with "a"/"an" agreeing with the
color. Whole phrasings (:data:`HELDOUT_LISTS`, :data:`HELDOUT_QUESTIONS`, :data:`HELDOUT_FRAMES`)
and some objects occur only in the test split. The corrupted twin asks about an object that is not
on the surface. :func:`training_text` writes several questions and answers about one scene, so the
organism gets more answer tokens per sequence.
"""

from __future__ import annotations

import random

import torch

from .batch import PromptBatch, article, rng_of, span_of

COLORS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "brown",
          "grey", "silver", "gold"]
OBJECTS = ["pencil", "book", "pen", "cup", "plate", "phone", "key", "bowl", "ball", "hat", "bag",
           "lamp", "chair", "box", "clock", "shoe", "bottle", "candle", "spoon", "ring"]
SURFACES = ["table", "desk", "floor", "shelf", "bed", "counter"]
HELDOUT_OBJECTS = OBJECTS[3::5]
TRAIN_OBJECTS = [o for o in OBJECTS if o not in HELDOUT_OBJECTS]
#: Ways to list the objects ({items}) on a surface; the last one occurs only in the test split.
LISTS = ["On the {surface}, I see {items}.", "I see {items} on the {surface}.",
         "On the {surface}, there is {items}.", "There is {items} on the {surface}.",
         "You can see {items} on the {surface}.", "Look at the {surface}: {items}.",
         "The {surface} has {items} on it."]
HELDOUT_LISTS = LISTS[-1:]
#: Ways to ask; the last one occurs only in the test split.
QUESTIONS = ["What color is the {query}?", "What is the color of the {query}?", "Which color is the {query}?",
             "Of what color is the {query}?", "Do you know the color of the {query}?",
             "Can you tell me the color of the {query}?"]
HELDOUT_QUESTIONS = QUESTIONS[-1:]
#: Frames around the scene and the question; the last one occurs only in the test split.
FRAMES = ["Q: {scene} {question} A:", "{scene} {question} A:", "{scene} Q: {question} A:",
          "Input: {scene} {question} Output:", "Question: {scene} {question} Answer:"]
HELDOUT_FRAMES = FRAMES[-1:]
#: The classic BIG-bench phrasing, what chapter 5 measures by default.
TEMPLATE = "Q: On the {surface}, I see {items}. What color is the {query}? A:"
SPLITS = ("train", "test", "all", "classic")


def items_text(colors: list[str], objects: list[str]) -> str:
    """"a red pen, a green book, and an orange cup" (two items: "a red pen and a green book")."""
    pieces = [f"{article(c)} {c} {o}" for c, o in zip(colors, objects)]
    if len(pieces) == 2:
        return f"{pieces[0]} and {pieces[1]}"
    return ", ".join(pieces[:-1]) + f", and {pieces[-1]}"


def _phrasing(rng: random.Random, split: str) -> tuple[str, str, str]:
    """(list, question, frame) templates: training ones only, or at least one held-out (``test``)."""
    if split == "classic":
        return LISTS[0], QUESTIONS[0], FRAMES[0]
    while True:
        lst, q, fr = rng.choice(LISTS), rng.choice(QUESTIONS), rng.choice(FRAMES)
        held = lst in HELDOUT_LISTS or q in HELDOUT_QUESTIONS or fr in HELDOUT_FRAMES
        if split == "all" or held == (split == "test"):
            return lst, q, fr


def _scene(rng: random.Random, split: str, n_items: int) -> tuple[list[str], list[str], str]:
    if split in ("train", "classic"):
        objs = rng.sample(TRAIN_OBJECTS, n_items)
    elif split == "test":
        objs = [rng.choice(HELDOUT_OBJECTS)] + rng.sample(TRAIN_OBJECTS, n_items - 1)
        rng.shuffle(objs)
    else:
        objs = rng.sample(OBJECTS, n_items)
    return rng.sample(COLORS, n_items), objs, rng.choice(SURFACES)


def generate(n: int, split: str = "train", seed: int | random.Random = 0, n_items: int = 3,
             phrasing: str = "grammar") -> PromptBatch:
    """``n`` prompts; ``split="test"`` uses a held-out object and at least one held-out phrasing.

    ``n_items`` objects per prompt (2 to 4; the chapters use 3). ``phrasing="classic"`` keeps the
    BIG-bench sentence for every prompt (same length), ``"grammar"`` draws from the grammar.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if not 2 <= n_items <= 4:
        raise ValueError(f"n_items must be 2, 3 or 4, got {n_items}")
    if phrasing not in ("grammar", "classic"):
        raise ValueError(f"phrasing must be 'grammar' or 'classic', got {phrasing!r}")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for _ in range(n):
        cols, objs, surface = _scene(rng, split, n_items)
        lst, q, fr = _phrasing(rng, "classic" if phrasing == "classic" else split)
        target = rng.randrange(n_items)
        scene = lst.format(surface=surface, items=items_text(cols, objs))
        question = q.format(query=objs[target])
        text = fr.format(scene=scene, question=question)
        other = rng.choice([o for o in OBJECTS if o not in objs])
        qa = text.rindex(" " + objs[target] + ("?" if q.endswith("?") else "")) + 1
        corr.append(text[:qa] + other + text[qa + len(objs[target]):])
        sp, at = {}, text.index(scene)
        for k, (c, o) in enumerate(zip(cols, objs), start=1):
            sp[f"C{k}"] = span_of(text, c, at)
            sp[f"O{k}"] = span_of(text, o, sp[f"C{k}"][1])
            at = sp[f"O{k}"][1]
        sp["COLOR"], sp["OBJECT"] = sp[f"C{target + 1}"], sp[f"O{target + 1}"]
        sp["QUERY"] = (qa, qa + len(objs[target]))
        others = [cols[k] for k in range(n_items) if k != target]
        texts.append(text)
        answers.append(" " + cols[target])
        distr.append(" " + others[0])
        spans.append(sp)
        meta.append({"target": target, "colors": cols, "objects": objs, "surface": surface,
                     "other_colors": others, "phrasing": (LISTS.index(lst), QUESTIONS.index(q), FRAMES.index(fr))})
    return PromptBatch("colored_objects", texts, answers, distr, spans, corr, meta)


def training_text(rng: random.Random, max_questions: int = 3) -> str:
    """A training text: one scene of 2-4 objects, then 1 to ``max_questions`` questions, each answered."""
    n_items = rng.choice((2, 3, 3, 4))
    cols, objs, surface = _scene(rng, "train", n_items)
    lst, _, fr = _phrasing(rng, "train")
    asked = rng.sample(range(n_items), min(n_items, rng.randint(1, max_questions)))
    text = ""
    for j, t in enumerate(asked):
        q = rng.choice([x for x in QUESTIONS if x not in HELDOUT_QUESTIONS]).format(query=objs[t])
        if j == 0:
            text = fr.format(scene=lst.format(surface=surface, items=items_text(cols, objs)), question=q)
        else:
            text += " " + fr.format(scene="", question=q).replace("  ", " ").replace(": ", ": ", 1).strip()
        text += f" {cols[t]}."
    return text


ERROR_MODES = ("correct", "color of object 1", "color of object 2", "color of object 3", "unlisted color",
               "not a color")


def error_modes(batch: PromptBatch, predicted: list[str]) -> list[str]:
    """Name each prediction: correct, the color of another listed object (by its place), another color, or not a color.

    ``predicted``: the model's top token per prompt, as text (leading space allowed).
    """
    if len(predicted) != len(batch):
        raise ValueError(f"{len(predicted)} predictions for {len(batch)} prompts")
    out = []
    for m, pred in zip(batch.meta, predicted):
        word = pred.strip()
        if word == m["colors"][m["target"]]:
            out.append("correct")
        elif word in m["colors"]:
            out.append(f"color of object {m['colors'].index(word) + 1}")
        elif word in COLORS:
            out.append("unlisted color")
        else:
            out.append("not a color")
    return out


def targets(batch: PromptBatch) -> torch.Tensor:
    """Place (0, 1, 2) of the asked-about object among the three listed, per prompt."""
    return torch.tensor([m["target"] for m in batch.meta], dtype=torch.long)


def listed_color_ids(model_or_tokenizer, batch: PromptBatch) -> torch.Tensor:
    """Token ids of the three listed colors, in listed order -> [B, 3] (each must be one token)."""
    from .batch import single_token_ids

    return torch.tensor([single_token_ids(model_or_tokenizer, [" " + c for c in m["colors"]]) for m in batch.meta])


def color_positions(enc) -> torch.Tensor:
    """Positions of the three listed colors in the encoded prompts -> [B, 3]."""
    return torch.stack([enc.positions["C1"], enc.positions["C2"], enc.positions["C3"]], 1)


def split_by_target(values: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From [B, 3] per-listed-object values: the asked-about one [B] and the two others [B, 2]."""
    rows = torch.arange(len(target))
    keep = torch.ones_like(values, dtype=torch.bool)
    keep[rows, target] = False
    return values[rows, target], values[keep].view(len(target), 2)


def listed_accuracy(logits: torch.Tensor, color_ids: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per prompt: is the asked-about color's logit above both other listed colors'? ([B, V] -> [B] bool)."""
    listed = logits.gather(-1, color_ids.to(logits.device))
    return listed.argmax(-1) == target.to(logits.device)
