"""Clustering per-token activations (chapter 3): k-means in torch, a 2-D projection, token kinds, purity.

The seed clustered GPT-2's feed-forward activations token by token and found clusters a person can
name (the first token, separators, numbers, names, …). Here: collect one activation vector per
token (:func:`token_activations`), cluster them (:func:`kmeans`, k-means++ then Lloyd, a few lines
of torch), label every token with a *kind* from the book's word lists (:func:`token_kind`), and
measure how well clusters and kinds agree (:func:`purity`, against a shuffled-label baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

#: Token kinds, in the order tables show them.
KINDS = ("first token", "separator", "number", "name", "colour", "object", "place", "word")


@dataclass
class Activations:
    """Per-token activations of a set of prompts, flattened over (prompt, position)."""

    acts: torch.Tensor        # [N, d]
    strings: list[str]        # the token strings
    kinds: list[str]          # each token's kind (one of KINDS)
    next_kinds: list[str]     # the kind of the token that follows it (what the model must predict)
    pos: torch.Tensor         # [N] position in the prompt

    def __len__(self) -> int:
        return len(self.kinds)

    @staticmethod
    def cat(parts: Sequence[Activations]) -> Activations:
        """Several sets (e.g. one per task, each of its own length) as one."""
        flat = lambda field: [x for p in parts for x in getattr(p, field)]
        return Activations(torch.cat([p.acts for p in parts]), flat("strings"), flat("kinds"),
                           flat("next_kinds"), torch.cat([p.pos for p in parts]))


def _word_lists() -> dict[str, set[str]]:
    from .tasks import articles, colored_objects, ioi

    nouns = {w for v, c in articles.NOUNS.values() for w in v + c}
    objects = set(colored_objects.OBJECTS) | set(ioi.OBJECTS) | nouns
    return {"name": set(ioi.NAMES), "colour": set(colored_objects.COLORS),
            "place": set(ioi.PLACES) | set(colored_objects.SURFACES), "object": objects}


def token_kind(token: str, first: bool = False) -> str:
    """The kind of one token string (GPT-2's leading space or "Ġ" is ignored); one of :data:`KINDS`."""
    if first:
        return "first token"
    word = token.replace("Ġ", " ").strip()
    if not word:
        return "separator"  # whitespace, newlines
    if word.isdigit():
        return "number"
    if not any(ch.isalnum() for ch in word):
        return "separator"
    for kind, words in _word_lists().items():
        if word in words:
            return kind
    return "word"


def token_activations(model, tokens: torch.Tensor, lengths: torch.Tensor, hook: str,
                      answers: torch.Tensor | None = None) -> Activations:
    """One activation vector per real (unpadded) token at ``hook``, with each token's kind and the next one's.

    The next token of a prompt's last token is its answer if ``answers`` is given, else ``"end"``.
    """
    if tokens.ndim != 2 or lengths.shape != (tokens.shape[0],):
        raise ValueError("tokens must be [batch, pos] and lengths [batch]")
    if hook not in model.hook_dict:
        raise ValueError(f"unknown hook {hook!r}; e.g. 'blocks.0.mlp.hook_post' or 'blocks.0.hook_resid_post'")
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook)
    act = cache[hook]
    if act.ndim != 3:
        raise ValueError(f"{hook} has shape {tuple(act.shape)}: need one vector per token [batch, pos, d]")
    T = tokens.shape[1]
    mask = torch.arange(T, device=tokens.device)[None] < lengths[:, None]
    strs, kinds, next_kinds = [], [], []
    def convert(ids):  # ids the tokenizer does not know (a random model's spare rows) read as "<unk>"
        out = model.tokenizer.convert_ids_to_tokens(ids)
        return [p if p is not None else "<unk>" for p in out] if isinstance(out, list) else (out or "<unk>")

    for i, (row, n) in enumerate(zip(tokens.tolist(), lengths.tolist())):
        pieces = convert(row[:n])
        strs += pieces
        here = [token_kind(p, first=(j == 0)) for j, p in enumerate(pieces)]
        kinds += here
        last = token_kind(convert(int(answers[i]))) if answers is not None else "end"
        next_kinds += here[1:] + [last]
    pos = torch.arange(T, device=tokens.device).expand_as(tokens)[mask]
    return Activations(act[mask].float().cpu(), strs, kinds, next_kinds, pos.cpu())


def kmeans(x: torch.Tensor, k: int, iters: int = 50, n_init: int = 4, seed: int = 0,
           ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """k-means (k-means++ seeding, Lloyd steps, best of ``n_init``) -> (labels [N], centroids [k, d], inertia)."""
    if x.ndim != 2:
        raise ValueError(f"x must be [N, d], got shape {tuple(x.shape)}")
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must lie in [1, N={x.shape[0]}], got {k}")
    x = x.float()
    gen = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(n_init):
        cent = x[torch.randint(len(x), (1,), generator=gen)]
        for _ in range(k - 1):  # k-means++: next centre drawn with probability ~ squared distance
            d2 = torch.cdist(x, cent).min(1).values.pow(2)
            p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1 / len(d2))
            cent = torch.cat([cent, x[torch.multinomial(p, 1, generator=gen)]])
        for _ in range(iters):
            labels = torch.cdist(x, cent).argmin(1)
            new = torch.zeros_like(cent).index_add_(0, labels, x)
            counts = torch.bincount(labels, minlength=k).float()
            new = torch.where(counts[:, None] > 0, new / counts.clamp_min(1)[:, None], cent)  # empty: keep
            if torch.allclose(new, cent):
                break
            cent = new
        labels = torch.cdist(x, cent).argmin(1)
        inertia = (x - cent[labels]).pow(2).sum().item()
        if best is None or inertia < best[2]:
            best = (labels, cent, inertia)
    return best


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """Projection of the rows of ``x`` [N, d] on their first two principal components -> [N, 2]."""
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be [N >= 2, d], got shape {tuple(x.shape)}")
    xc = x.float() - x.float().mean(0)
    _, _, vh = torch.linalg.svd(xc, full_matrices=False)
    return xc @ vh[:2].T


def purity(labels: torch.Tensor, kinds: Sequence[str]) -> float:
    """Fraction of tokens whose kind is the most common kind of their cluster (1 = clusters are kinds)."""
    if len(labels) != len(kinds) or len(kinds) == 0:
        raise ValueError(f"need one kind per label, got {len(labels)} labels and {len(kinds)} kinds")
    table = pd.crosstab(pd.Series(labels.tolist(), name="cluster"), pd.Series(list(kinds), name="kind"))
    return float(table.max(axis=1).sum() / len(kinds))


def shuffled_purity(labels: torch.Tensor, kinds: Sequence[str], draws: int = 20, seed: int = 0) -> float:
    """Purity of the same cluster sizes with the tokens shuffled among them: the chance level."""
    gen = torch.Generator().manual_seed(seed)
    return sum(purity(labels[torch.randperm(len(labels), generator=gen)], kinds) for _ in range(draws)) / draws


def cluster_table(labels: torch.Tensor, kinds: Sequence[str], strings: Sequence[str] | None = None,
                  examples: int = 6) -> pd.DataFrame:
    """One row a cluster: its size, its main kind and that kind's share, the kind counts, frequent tokens."""
    df = pd.DataFrame({"cluster": labels.tolist(), "kind": list(kinds)})
    counts = pd.crosstab(df["cluster"], df["kind"]).reindex(columns=[k for k in KINDS if k in set(kinds)])
    out = pd.DataFrame({"size": counts.sum(1), "main kind": counts.idxmax(1),
                        "share": (counts.max(1) / counts.sum(1)).round(2)})
    out = out.join(counts)
    if strings is not None:
        df["token"] = [s.replace("Ġ", " ").strip() for s in strings]
        out["frequent tokens"] = df.groupby("cluster")["token"].agg(
            lambda s: " ".join(repr(t) for t in s.value_counts().index[:examples]))
    return out.sort_values("size", ascending=False)
