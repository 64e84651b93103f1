"""Prompt generators of the book's tasks, one module a task, sharing the batch type of :mod:`.batch`.

Every generator returns *text* (the same strings serve GPT-2 and the organism: words carry their
leading space as GPT-2 tokenizes them) plus metadata: answer and distractor strings and the
character spans of key words. :meth:`PromptBatch.encode` turns a batch into token ids for a given
model or tokenizer, checks that every answer is a single token for it (a clear ``ValueError``
naming the word otherwise) and converts the spans into token positions (``IO``, ``S1``, ``END`` …).
"""

from __future__ import annotations

import inspect
from typing import Any

from . import articles, colored_objects, counting, filler, ioi, most_frequent, repeats
from .batch import (
    Encoded,
    PromptBatch,
    Span,
    article,
    bos_id,
    context_length,
    fits,
    get_tokenizer,
    rng_of,
    single_token_id,
    single_token_ids,
    span_of,
)

__all__ = ["TASKS", "Encoded", "PromptBatch", "Span", "article", "articles", "bos_id", "colored_objects",
           "context_length", "counting", "filler", "fits", "get_tokenizer", "ioi", "make", "most_frequent", "repeats", "rng_of",
           "single_token_id", "single_token_ids", "span_of"]

TASKS = ("ioi", "colored_objects", "articles", "counting", "repeats", "filler", "most_frequent")
GENERATORS = {"ioi": ioi.generate, "colored_objects": colored_objects.generate, "articles": articles.generate,
              "counting": counting.generate, "filler": filler.generate, "most_frequent": most_frequent.generate}


def make(task: str, n: int, split: str = "train", seed: int = 0, tokenizer: Any = None, **kw: Any) -> PromptBatch:
    """Generate ``n`` prompts of a task by name (``repeats`` is token-level: see its module).

    ``tokenizer`` (a model or tokenizer, e.g. ``tokenizer=model``): the generators that draw words which
    another tokenizer may split (``ioi``: a name starting a prompt; ``articles``: nouns) redraw them until
    every prompt passes :meth:`PromptBatch.encode`'s checks for that model. The other tasks' pools are
    single tokens for the organism and for GPT-2 (tests/test_gpt2_path.py) and ignore it. With the
    organism the prompts are the same with or without it (nothing is redrawn), so the measured prompt
    sets do not change.
    """
    if task not in GENERATORS:
        raise ValueError(f"unknown task {task!r}; text tasks are {sorted(GENERATORS)} (repeats is token-level)")
    if tokenizer is not None and "tokenizer" in inspect.signature(GENERATORS[task]).parameters:
        kw["tokenizer"] = tokenizer
    return GENERATORS[task](n, split=split, seed=seed, **kw)
