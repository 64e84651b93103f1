"""The batch type every task shares, and the one token lookup: texts in, token ids and positions out.

A generator returns a :class:`PromptBatch` of *text* plus metadata (answers, distractors, key-word
spans); :meth:`PromptBatch.encode` turns it into token ids for one model or tokenizer, with clear
errors, never a silent wrong batch. :func:`single_token_id` is the book's one token lookup. The
bridge's ``to_single_token`` does not serve: checked on the organism, it returns the ``<unk>`` id
for a word outside the vocabulary (" Bartholomew" -> 1) instead of refusing it, and takes no tokenizer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch

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


def fits(model_or_tokenizer: Any, text: str, answer: str, distractor: str, spans: dict[str, Span],
         corrupted: str | None = None) -> bool:
    """Whether one prompt passes :meth:`PromptBatch.encode`'s checks for a model (``None``: any model).

    The generators' ``tokenizer`` option redraws the words of a prompt that does not: e.g. under GPT-2's
    BPE a name that *starts* a prompt has no leading space, and "Emma" is then two tokens ("Em", "ma").
    """
    if model_or_tokenizer is None:
        return True
    one = PromptBatch("check", [text], [answer], [distractor], [spans], None if corrupted is None else [corrupted])
    try:
        one.encode(model_or_tokenizer, device="cpu")
    except ValueError:
        return False
    return True


#: How many times a generator with a ``tokenizer`` redraws one prompt's words before it gives up.
MAX_REDRAWS = 200


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
        """Tokenize for a model (BOS first, as ``model.to_tokens`` does), check answers, find positions.

        Clear ``ValueError``s, never a silent wrong batch: an empty batch, a word the vocabulary does not
        know (it would become ``<unk>``), a key word or answer that is not one token, a prompt longer than
        the model's context, a corrupted twin of another length. Positions come from the tokenizer's
        character offsets, so they hold under byte-level BPE (GPT-2: " Mary" is one token with its space).
        """
        if len(self) == 0:
            raise ValueError(f"empty {self.task!r} batch: nothing to encode")
        tok = get_tokenizer(model_or_tokenizer)
        bos = bos_id(tok)
        pad = tok.pad_token_id if tok.pad_token_id is not None else bos
        answers = single_token_ids(tok, self.answers)
        distractors = single_token_ids(tok, self.distractors)
        n_ctx = context_length(model_or_tokenizer)
        rows, corr_rows, pos = [], [], {"END": []}
        for i, text in enumerate(self.texts):
            ids, offsets = _ids_offsets(tok, text)
            _check_known(tok, text, ids, offsets, f"prompt {i}")
            if n_ctx is not None and len(ids) + 1 > n_ctx:
                raise ValueError(f"prompt {i} is {len(ids) + 1} tokens long (with BOS) but the model's context "
                                 f"is {n_ctx} tokens: shorten it or drop it from the batch")
            rows.append([bos] + ids)
            pos["END"].append(len(ids))
            for name, (a, b) in self.spans[i].items():
                pos.setdefault(name, []).append(1 + _span_token(tok, text, offsets, a, b, name, i))
            if self.corrupted is not None:
                cids, coffsets = _ids_offsets(tok, self.corrupted[i])
                _check_known(tok, self.corrupted[i], cids, coffsets, f"corrupted prompt {i}")
                if len(cids) != len(ids):
                    raise ValueError(f"corrupted prompt {i} has {len(cids) + 1} tokens, clean has {len(ids) + 1}: "
                                     f"{self.corrupted[i]!r} vs {text!r}")
                corr_rows.append([bos] + cids)
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


def context_length(model_or_tokenizer: Any) -> int | None:
    """The model's context (``cfg.n_ctx``), or a tokenizer's ``model_max_length`` when it is a real limit."""
    n = getattr(getattr(model_or_tokenizer, "cfg", None), "n_ctx", None)
    if n is None:
        n = getattr(get_tokenizer(model_or_tokenizer), "model_max_length", None)
    return int(n) if isinstance(n, int) and 0 < n < 10**7 else None


def _ids_offsets(tok: Any, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
    """Token ids of ``text`` and each token's character span (None for tokenizers without offsets)."""
    try:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        return _ids(tok, text), None


def _check_known(tok: Any, text: str, ids: list[int], offsets: list[tuple[int, int]] | None, where: str) -> None:
    """Refuse a text with a word the vocabulary does not know (it would silently become ``<unk>``)."""
    unk = getattr(tok, "unk_token_id", None)
    if unk is None or unk in {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id} or unk not in ids:
        return  # byte-level BPE (GPT-2) has no unknown words: its "unk" is <|endoftext|>
    words = sorted({text[s:e].strip() for i, (s, e) in zip(ids, offsets or []) if i == unk}) or ["?"]
    raise ValueError(f"{where} has words this model's vocabulary does not know: {words} (they would become "
                     f"{tok.unk_token!r}): {text!r}. Use words from the task's pools or another model.")


def _span_token(tok: Any, text: str, offsets: list[tuple[int, int]] | None, a: int, b: int, name: str,
                i: int) -> int:
    """Index (without BOS) of the one token that is the key word ``text[a:b]`` (its leading space allowed)."""
    if offsets is not None:
        hits = [j for j, (s, e) in enumerate(offsets) if s < b and e > a]
        if len(hits) == 1:
            s, e = offsets[hits[0]]
            if e == b and not text[s:a].strip():
                return hits[0]
    else:  # no offsets: count tokens of the text up to the word (without the space before it) and through it
        upto, before = len(_ids(tok, text[:b])), len(_ids(tok, text[:a].rstrip()))
        if upto - before == 1:
            return upto - 1
    raise ValueError(f"key word {text[a:b]!r} ({name}) of prompt {i} is not a single token for this model "
                     f"in {text!r}")


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
    """A ``random.Random`` from a seed (or the generator itself); ``None`` is refused: the book's prompts
    are reproducible, and ``random.Random(None)`` would seed from the clock."""
    if isinstance(seed, random.Random):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int (or a random.Random), got {seed!r}: prompts must be reproducible")
    return random.Random(seed)


def article(word: str) -> str:
    """``"an"`` before a vowel sound (by spelling, adequate for this book's word pools), else ``"a"``."""
    return "an" if word.strip()[0].lower() in "aeiou" else "a"
