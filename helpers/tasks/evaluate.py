"""Per-task accuracy and logit difference, for any model that maps token ids to logits.

Works through a TransformerBridge (the book's path, organism or GPT-2) and, during training, on the
bare Hugging Face model (its output's ``.logits``). Only the answer positions are read.
"""

from __future__ import annotations

from typing import Any

import torch

from . import make
from .batch import PromptBatch
from .repeats import generate_tokens, second_copy_targets


def logits_of(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """Logits [batch, pos, vocab] of a TransformerBridge/HookedTransformer or a HF causal LM."""
    out = model(tokens)
    return out.logits if hasattr(out, "logits") else out


@torch.no_grad()
def evaluate_batch(model: Any, batch: PromptBatch, batch_size: int = 256) -> dict[str, float]:
    """Accuracy (answer logit above the distractor's), top-1 accuracy and mean logit difference.

    For Colored Objects the accuracy asks the answer to beat *both* other listed colors.
    """
    enc = batch.encode(model)
    tok = getattr(model, "tokenizer", None) or model  # for the colored-objects rivals
    rivals = None
    if batch.task == "colored_objects":
        from .batch import single_token_ids
        rivals = torch.tensor([single_token_ids(tok, [" " + c for c in m["other_colors"]]) for m in batch.meta],
                              device=enc.tokens.device)
    beats, top1, diffs = [], [], []
    for i in range(0, len(batch), batch_size):
        sl = slice(i, i + batch_size)
        logits = logits_of(model, enc.tokens[sl])
        rows = torch.arange(logits.shape[0], device=logits.device)
        final = logits[rows, enc.end[sl]].float()
        a = final[rows, enc.answers[sl]]
        d = final[rows, enc.distractors[sl]]
        diffs.append(a - d)
        top1.append(final.argmax(-1) == enc.answers[sl])
        if rivals is not None:
            r = final.gather(1, rivals[sl])
            beats.append((a[:, None] > r).all(-1))
        else:
            beats.append(a > d)
    diff = torch.cat(diffs)
    return {"n": len(batch), "accuracy": torch.cat(beats).float().mean().item(),
            "top1": torch.cat(top1).float().mean().item(), "logit_diff": diff.mean().item(),
            "logit_diff_std": diff.std().item() if len(diff) > 1 else 0.0}


@torch.no_grad()
def evaluate_induction(model: Any, n: int = 100, seq_len: int = 20, seed: int = 0) -> dict[str, float]:
    """Top-1 accuracy and mean (correct − max other) logit on the second copy of random sequences."""
    tokens = generate_tokens(model, n, seq_len, seed=seed)
    dev = getattr(getattr(model, "cfg", None), "device", None) or "cpu"
    tokens = tokens.to(dev)
    logits = logits_of(model, tokens).float()
    pos, tgt = second_copy_targets(tokens)
    lg = logits[:, pos.to(dev)]
    correct = lg.gather(-1, tgt[..., None]).squeeze(-1)
    other = lg.scatter(-1, tgt[..., None], float("-inf")).max(-1).values
    first = logits[:, torch.arange(1, seq_len, device=dev)]  # first copy: no induction possible
    return {"n": n * (seq_len - 1), "accuracy": (lg.argmax(-1) == tgt).float().mean().item(),
            "top1": (lg.argmax(-1) == tgt).float().mean().item(),
            "logit_diff": (correct - other).mean().item(),
            "first_copy_top1": (first.argmax(-1) == tokens[:, 2:seq_len + 1]).float().mean().item()}


EVAL_TASKS = ("ioi", "articles", "counting", "induction", "colored_objects")


def evaluate_all(model: Any, n: int = 200, split: str = "test", seed: int = 12345,
                 tasks: tuple[str, ...] = EVAL_TASKS) -> dict[str, dict[str, float]]:
    """Held-out accuracy and logit difference of every task (``split="test"``: unseen templates etc.)."""
    out = {}
    for task in tasks:
        if task == "induction":
            out[task] = evaluate_induction(model, n=max(10, n // 4), seed=seed)
        else:
            out[task] = evaluate_batch(model, make(task, n, split=split, seed=seed))
    return out


def wilson_interval(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% for z = 1.96): sound near 0 and 1, unlike p ± z·se."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= k <= n:
        raise ValueError(f"k must lie in [0, n], got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(before: torch.Tensor, after: torch.Tensor, z: float = 1.96) -> tuple[float, float, float]:
    """Change of a proportion measured twice on the same items: (difference, low, high), 95% for z = 1.96.

    ``before`` and ``after`` are per-item booleans. The interval is the Wald interval of a paired
    difference (it uses the items that changed, as McNemar's test does), so an intervention that flips
    many answers both ways is not mistaken for a gain.
    """
    before, after = torch.as_tensor(before).bool().flatten(), torch.as_tensor(after).bool().flatten()
    if before.shape != after.shape or before.numel() == 0:
        raise ValueError("before and after must be non-empty and of the same length")
    n = before.numel()
    gained = (after & ~before).sum().item()
    lost = (before & ~after).sum().item()
    diff = (gained - lost) / n
    var = ((gained + lost) / n - diff ** 2) / n
    half = z * max(var, 0.0) ** 0.5
    return diff, diff - half, diff + half
