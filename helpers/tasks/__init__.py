"""Prompt generators of the book's tasks, one module a task, sharing the batch type defined here.

Every generator returns *text* (the same strings serve GPT-2 and the organism: words carry their
leading space as GPT-2 tokenizes them) plus metadata: answer and distractor strings and the
character spans of key words. :meth:`PromptBatch.encode` turns a batch into token ids for a given
model or tokenizer, checks that every answer is a single token for it (a clear ``ValueError``
naming the word otherwise) and converts the spans into token positions (``IO``, ``S1``, ``END`` …).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "TASKS",
    "Encoded",
    "PromptBatch",
    "get_tokenizer",
    "make",
    "single_token_id",
    "single_token_ids",
]

Span = tuple[int, int]


def get_tokenizer(model_or_tokenizer: Any) -> Any:
    """The Hugging Face tokenizer of a TransformerBridge / HookedTransformer, or the tokenizer itself."""
    tok = getattr(model_or_tokenizer, "tokenizer", None)
    if tok is not None:
        return tok
    if callable(getattr(model_or_tokenizer, "encode", None)):
        return model_or_tokenizer
    raise TypeError(f"expected a model with a .tokenizer or a tokenizer, got {type(model_or_tokenizer)}")


def _ids(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def single_token_id(model_or_tokenizer: Any, word: str) -> int:
    """The id of ``word`` (e.g. ``" Mary"``) if it is exactly one known token, else a clear ValueError."""
    tok = get_tokenizer(model_or_tokenizer)
    ids = _ids(tok, word)
    unk = getattr(tok, "unk_token_id", None)
    if len(ids) != 1:
        pieces = tok.convert_ids_to_tokens(ids) if ids else []
        raise ValueError(f"{word!r} is not a single token for this model: it splits into {len(ids)} "
                         f"tokens {pieces}. Pick another word or drop it from the pool.")
    if unk is not None and ids[0] == unk and word.strip() != getattr(tok, "unk_token", None):
        raise ValueError(f"{word!r} is not in this model's vocabulary (it maps to the unknown token).")
    return ids[0]


def single_token_ids(model_or_tokenizer: Any, words: list[str]) -> list[int]:
    """Token ids of many words, each checked with :func:`single_token_id` (cached per word)."""
    cache: dict[str, int] = {}
    out = []
    for w in words:
        if w not in cache:
            cache[w] = single_token_id(model_or_tokenizer, w)
        out.append(cache[w])
    return out


def bos_id(tok: Any) -> int:
    """The id a TransformerBridge prepends (``bos_token_id``, falling back to ``eos_token_id``)."""
    b = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if b is None:
        raise ValueError("tokenizer has neither a BOS nor an EOS token")
    return int(b)


@dataclass
class Encoded:
    """Token ids of a batch for one model: right-padded ``tokens`` [batch, pos], BOS at position 0."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    answers: torch.Tensor
    distractors: torch.Tensor
    positions: dict[str, torch.Tensor]
    corrupted: torch.Tensor | None = None

    @property
    def end(self) -> torch.Tensor:
        """Position of each prompt's last token, where the answer is predicted."""
        return self.positions["END"]


@dataclass
class PromptBatch:
    """Prompts of one task: texts, the answer and a distractor for each, and key-word spans."""

    task: str
    texts: list[str]
    answers: list[str]
    distractors: list[str]
    spans: list[dict[str, Span]] = field(default_factory=list)
    corrupted: list[str] | None = None
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.texts)
        if not (len(self.answers) == len(self.distractors) == n):
            raise ValueError("texts, answers and distractors must have the same length")
        if not self.spans:
            self.spans = [{} for _ in range(n)]
        if not self.meta:
            self.meta = [{} for _ in range(n)]
        if self.corrupted is not None and len(self.corrupted) != n:
            raise ValueError("corrupted must have one text per prompt")

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, idx: slice | list[int]) -> PromptBatch:
        ix = list(range(len(self)))[idx] if isinstance(idx, slice) else list(idx)
        pick = lambda xs: [xs[i] for i in ix]
        return PromptBatch(self.task, pick(self.texts), pick(self.answers), pick(self.distractors),
                           pick(self.spans), pick(self.corrupted) if self.corrupted else None,
                           pick(self.meta))

    def full_texts(self) -> list[str]:
        """Prompt + answer: the text the organism is trained on."""
        return [t + a for t, a in zip(self.texts, self.answers)]

    def encode(self, model_or_tokenizer: Any, device: str | torch.device | None = None) -> Encoded:
        """Tokenize for a model (BOS first, as ``model.to_tokens`` does), check answers, find positions."""
        tok = get_tokenizer(model_or_tokenizer)
        bos = bos_id(tok)
        pad = tok.pad_token_id if tok.pad_token_id is not None else bos
        answers = single_token_ids(tok, self.answers)
        distractors = single_token_ids(tok, self.distractors)
        rows, corr_rows, pos = [], [], {"END": []}
        for i, text in enumerate(self.texts):
            ids = [bos] + _ids(tok, text)
            rows.append(ids)
            pos["END"].append(len(ids) - 1)
            for name, (a, b) in self.spans[i].items():
                # The key word is the last token of the text up to its end; check it is one token.
                upto = len(_ids(tok, text[:b]))
                before = len(_ids(tok, text[:a]))
                if upto - before != 1:
                    raise ValueError(f"key word {text[a:b]!r} ({name}) of prompt {i} is not a single "
                                     f"token for this model")
                pos.setdefault(name, []).append(upto)  # +1 for BOS, -1 for last index
            if self.corrupted is not None:
                cids = [bos] + _ids(tok, self.corrupted[i])
                if len(cids) != len(ids):
                    raise ValueError(f"corrupted prompt {i} has {len(cids)} tokens, clean has {len(ids)}: "
                                     f"{self.corrupted[i]!r} vs {text!r}")
                corr_rows.append(cids)
        n_pos = max(len(r) for r in rows)
        tokens = torch.full((len(rows), n_pos), pad, dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, :len(r)] = torch.tensor(r)
        corrupted = None
        if corr_rows:
            corrupted = torch.full_like(tokens, pad)
            for i, r in enumerate(corr_rows):
                corrupted[i, :len(r)] = torch.tensor(r)
        lengths = torch.tensor([len(r) for r in rows])
        missing = [k for k, v in pos.items() if len(v) != len(rows)]
        if missing:
            raise ValueError(f"positions {missing} are not defined for every prompt of the batch")
        dev = torch.device(device) if device is not None else getattr(getattr(model_or_tokenizer, "cfg", None),
                                                                       "device", None) or "cpu"
        return Encoded(tokens.to(dev), lengths.to(dev), torch.tensor(answers, device=dev),
                       torch.tensor(distractors, device=dev),
                       {k: torch.tensor(v, device=dev) for k, v in pos.items()},
                       corrupted.to(dev) if corrupted is not None else None)


def span_of(text: str, word: str, start: int = 0) -> Span:
    """Character span of ``word`` (matched as a whole word) in ``text`` from ``start``."""
    i = start
    while True:
        i = text.index(word, i)
        end = i + len(word)
        if (i == 0 or not text[i - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return (i, end)
        i += 1


def rng_of(seed: int | random.Random) -> random.Random:
    """A ``random.Random`` from a seed (or the generator itself)."""
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def article(word: str) -> str:
    """``"an"`` before a vowel sound (by spelling, adequate for this book's word pools), else ``"a"``."""
    return "an" if word.strip()[0].lower() in "aeiou" else "a"


TASKS = ("ioi", "colored_objects", "articles", "counting", "repeats", "filler")


def make(task: str, n: int, split: str = "train", seed: int = 0, **kw: Any) -> PromptBatch:
    """Generate ``n`` prompts of a task by name (``repeats`` is token-level: see its module)."""
    from . import articles, colored_objects, counting, filler, ioi

    gens = {"ioi": ioi.generate, "colored_objects": colored_objects.generate,
            "articles": articles.generate, "counting": counting.generate, "filler": filler.generate}
    if task not in gens:
        raise ValueError(f"unknown task {task!r}; text tasks are {sorted(gens)} (repeats is token-level)")
    return gens[task](n, split=split, seed=seed, **kw)
