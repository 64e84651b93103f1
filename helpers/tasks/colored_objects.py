"""Colored Objects prompts, the task Merullo et al. (2023) took from BIG-bench (Ippolito & Callison-Burch).

"Q: On the table, I see a silver pencil, a green book, and a red pen. What color is the pen? A:"
-> " red". Three distinct objects with three distinct colors on a surface; the question names one
of them. The distractor is the color of another listed object. Some objects are held out of the
training split. The corrupted twin asks about an object that is not on the surface.
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
TEMPLATE = "Q: On the {surface}, I see {items}. What color is the {query}? A:"


def generate(n: int, split: str = "train", seed: int | random.Random = 0) -> PromptBatch:
    """``n`` Colored Objects prompts; ``split="test"`` puts one held-out object in every prompt."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    rng = rng_of(seed)
    texts, corr, answers, distr, spans, meta = [], [], [], [], [], []
    for _ in range(n):
        if split == "train":
            objs = rng.sample(TRAIN_OBJECTS, 3)
        elif split == "test":
            objs = [rng.choice(HELDOUT_OBJECTS)] + rng.sample(TRAIN_OBJECTS, 2)
            rng.shuffle(objs)
        else:
            objs = rng.sample(OBJECTS, 3)
        cols = rng.sample(COLORS, 3)
        target = rng.randrange(3)
        pieces = [f"{article(c)} {c} {o}" for c, o in zip(cols, objs)]
        items = f"{pieces[0]}, {pieces[1]}, and {pieces[2]}"
        surface = rng.choice(SURFACES)
        text = TEMPLATE.format(surface=surface, items=items, query=objs[target])
        other = rng.choice([o for o in OBJECTS if o not in objs])
        qa = text.rindex(" " + objs[target] + "?") + 1
        corr.append(text[:qa] + other + text[qa + len(objs[target]):])
        sp, at = {}, text.index("I see")
        for k, (c, o) in enumerate(zip(cols, objs), start=1):
            sp[f"C{k}"] = span_of(text, c, at)
            sp[f"O{k}"] = span_of(text, o, sp[f"C{k}"][1])
            at = sp[f"O{k}"][1]
        sp["COLOR"], sp["OBJECT"] = sp[f"C{target + 1}"], sp[f"O{target + 1}"]
        sp["QUERY"] = (qa, qa + len(objs[target]))
        others = [cols[k] for k in range(3) if k != target]
        texts.append(text)
        answers.append(" " + cols[target])
        distr.append(" " + others[0])
        spans.append(sp)
        meta.append({"target": target, "colors": cols, "objects": objs, "surface": surface,
                     "other_colors": others})
    return PromptBatch("colored_objects", texts, answers, distr, spans, corr, meta)


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
