"""Fine-tuning a loaded model on CPU, and the two synthetic corpora of seed 000's "poems" and "articles".

:func:`finetune` trains a *copy* of a TransformerBridge (the original is left as it was, so before and
after can be measured side by side) with the book's one loop (:func:`helpers.training.train_steps`).
Two losses: the answer token of a prompt batch (a task such as "which name appeared most often"), or
next-token prediction on token sequences (a corpus).

The corpora are token-level, over the model's whole vocabulary (as :mod:`helpers.tasks.repeats`):
*poems* never repeat a token within a sequence, so looking back for an earlier copy never pays;
*articles* bring back a few multi-token *terms* several times, so copying what followed a term's
earlier mention (induction) does. :func:`in_context_gain` measures the in-context loss drop on repeated
random sequences: the mean loss on the first copy minus that on the second.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .heads import loss_by_position
from .tasks.batch import PromptBatch, bos_id, get_tokenizer
from .tasks.repeats import generate_tokens, vocab_ids
from .training import adamw, next_token_loss, train_steps


def _device(model) -> torch.device:
    return torch.device(getattr(getattr(model, "cfg", None), "device", None) or "cpu")


def answer_loss(model, enc) -> torch.Tensor:
    """Cross-entropy of the answer token at each prompt's last position (an encoded prompt batch)."""
    logits = model(enc.tokens)
    rows = torch.arange(len(enc.tokens), device=logits.device)
    return F.cross_entropy(logits[rows, enc.end].float(), enc.answers)


def finetune(model, make_batch: Callable[[int], PromptBatch | torch.Tensor], steps: int, lr: float = 1e-3,
             weight_decay: float = 0.01, seed: int = 0, desc: str | None = None):
    """A fine-tuned copy of ``model`` and its per-step losses: ``steps`` AdamW steps on ``make_batch(step)``.

    ``make_batch(step)`` returns a :class:`PromptBatch` (loss on its answers, :func:`answer_loss`) or a
    [B, T] token tensor (next-token loss on every position). ``seed`` seeds torch during training.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    tuned = copy.deepcopy(model)
    dev = _device(model)
    counter = iter(range(steps))

    def batch():
        b = make_batch(next(counter))
        if isinstance(b, PromptBatch):
            return b.encode(tuned)
        if not isinstance(b, torch.Tensor) or b.dim() != 2:
            raise TypeError("make_batch must return a PromptBatch or a [batch, pos] token tensor")
        return b.to(dev)

    def loss(b):
        if isinstance(b, torch.Tensor):
            return next_token_loss(tuned(b)[:, :-1].float(), b)
        return answer_loss(tuned, b)

    g = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        losses = train_steps(tuned, adamw(tuned, lr, weight_decay), batch, loss, steps, desc=desc)
    finally:
        torch.random.set_rng_state(g)
    return tuned, losses


def poem_tokens(model_or_tokenizer, n: int, length: int = 24, seed: int = 0) -> torch.Tensor:
    """``n`` rows ``[BOS, t_1 … t_length]`` with no token repeated within a row: repetition never pays."""
    tok = get_tokenizer(model_or_tokenizer)
    vocab = vocab_ids(tok)
    if length > len(vocab):
        raise ValueError(f"length {length} exceeds the {len(vocab)} tokens of the vocabulary")
    g = torch.Generator().manual_seed(seed)
    rows = torch.stack([vocab[torch.randperm(len(vocab), generator=g)[:length]] for _ in range(n)])
    return torch.cat([torch.full((n, 1), bos_id(tok), dtype=torch.long), rows], 1)


def article_tokens(model_or_tokenizer, n: int, length: int = 24, seed: int = 0, n_terms: int = 2,
                   term_len: int = 3, mentions: int = 3) -> torch.Tensor:
    """``n`` rows ``[BOS, …]`` of ``length`` tokens in which ``n_terms`` terms of ``term_len`` tokens each
    come back ``mentions`` times, among filler tokens that occur once: after a term's first token, its
    next tokens are predictable from an earlier mention (induction pays)."""
    tok = get_tokenizer(model_or_tokenizer)
    vocab = vocab_ids(tok)
    used = n_terms * term_len * mentions
    if used > length:
        raise ValueError(f"{n_terms} terms x {term_len} tokens x {mentions} mentions = {used} > length {length}")
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, length + 1, dtype=torch.long)
    out[:, 0] = bos_id(tok)
    n_fill = length - used
    for i in range(n):
        ids = vocab[torch.randperm(len(vocab), generator=g)[: n_terms * term_len + n_fill]]
        terms = ids[: n_terms * term_len].view(n_terms, term_len)
        pieces = [terms[t] for t in range(n_terms) for _ in range(mentions)] + [ids[n_terms * term_len + j: n_terms * term_len + j + 1]
                                                                               for j in range(n_fill)]
        order = torch.randperm(len(pieces), generator=g).tolist()
        out[i, 1:] = torch.cat([pieces[j] for j in order])
    return out


@torch.no_grad()
def in_context_gain(model, n: int = 64, seq_len: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean next-token loss on the first and on the second copy of ``[BOS, seq, seq]`` and their difference.

    The second copy is predictable only from the first (induction): the drop is the in-context gain.
    """
    tokens = generate_tokens(model, n, seq_len, seed=seed).to(_device(model))
    per_pos = loss_by_position(model, tokens)  # position i predicts token i + 1
    first = per_pos[1:seq_len].mean().item()             # predicting t_2 … t_L of the first copy
    second = per_pos[seq_len + 1: 2 * seq_len].mean().item()  # t_2 … t_L of the second copy
    return {"first_copy_loss": first, "second_copy_loss": second, "gain": first - second}
