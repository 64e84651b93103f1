"""Gradient x input saliency, and the deletion test that checks it (chapter 3).

For a predicted token, the gradient of its logit with respect to each input token embedding
(``hook_embed``), times that embedding, has one L2 norm per input token; normalised to sum to 1,
these are the *shares* of the prediction each input token gets (the method of the Ecco library,
which the seed used on GPT-2 XL). A saliency map is only worth something if it predicts what
matters: :func:`deletion_test` deletes the most salient tokens and, as a control, random ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .runtime import auto_batch_size


def _tokenizer(model):
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise TypeError(f"expected a TransformerLens model with a .tokenizer, got {type(model)}")
    return tok


def check_known_words(model, text: str) -> None:
    """Raise a clear ValueError if a word of ``text`` is not in the model's vocabulary.

    Word-level tokenizers (the organism's) map unknown words to ``<unk>``, whose saliency means
    nothing; byte-level BPE (GPT-2) knows every string, so this never fires there.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a non-empty prompt, got {text!r}")
    tok = _tokenizer(model)
    unk = getattr(tok, "unk_token_id", None)
    if unk is None or unk in (tok.bos_token_id, tok.eos_token_id):  # GPT-2: no real unknown token
        return
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    bad = [text[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if i == unk]
    if bad:
        raise ValueError(f"{sorted(set(bad))} not in this model's vocabulary (they would all read as "
                         f"{tok.unk_token!r}); rephrase the prompt with known words")


def to_tokens(model, text: str) -> torch.Tensor:
    """``text`` as token ids [1, pos] with BOS first, after checking every word is known."""
    check_known_words(model, text)
    return model.to_tokens(text)


def grad_x_input(model, tokens: torch.Tensor, pos: torch.Tensor | int, targets: torch.Tensor | int) -> torch.Tensor:
    """Shares [batch, pos] of each input token in the logit of ``targets`` at ``pos`` (rows sum to 1).

    ``pos`` and ``targets`` are per prompt (or one int for all). Positions after ``pos`` get 0 (a
    causal model cannot see them), so right-padded batches are fine. The backward pass keeps every
    layer's activations, so prompts go through in chunks that fit free memory (:func:`auto_batch_size`;
    rows are independent, and the organism's batches fit in one chunk): GPT-2 small held 7.6 GB for
    100 IOI prompts in one pass (chapter 3's rehearsal), GPT-2 XL would not fit a 16 GB GPU.
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
    B, T = tokens.shape
    dev = tokens.device
    pos = torch.as_tensor(pos, device=dev).long().expand(B).clone()
    targets = torch.as_tensor(targets, device=dev).long().expand(B).clone()
    pos = torch.where(pos < 0, pos + T, pos)
    if (pos < 0).any() or (pos >= T).any():
        raise ValueError(f"positions must lie in [0, {T}), got {pos.tolist()}")
    cfg = model.cfg
    per_prompt = 4 * T * (cfg.n_layers * (32 * cfg.d_model + 2 * cfg.n_heads * T) + 3 * cfg.d_vocab)
    step = auto_batch_size(per_prompt, dev, cap=B)
    if step < B:
        return torch.cat([_grad_x_input(model, tokens[i:i + step], pos[i:i + step], targets[i:i + step])
                          for i in range(0, B, step)])
    return _grad_x_input(model, tokens, pos, targets)


def _grad_x_input(model, tokens: torch.Tensor, pos: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    B, T = tokens.shape
    dev = tokens.device
    store: dict[str, torch.Tensor] = {}

    def grab(act, hook):
        act = act.detach().requires_grad_(True)
        store["emb"] = act
        return act

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", grab)])
        rows = torch.arange(B, device=dev)
        picked = logits[rows, pos, targets].sum()  # prompts are independent: one backward for all
        (grad,) = torch.autograd.grad(picked, store["emb"])
    scores = (grad * store["emb"].detach()).norm(dim=-1).float()
    scores = scores * (torch.arange(T, device=dev)[None] <= pos[:, None])
    return scores / scores.sum(-1, keepdim=True).clamp_min(1e-30)


@dataclass
class Completion:
    """A greedy completion with one saliency row per generated token."""

    tokens: list[str]     # prompt tokens (BOS first) followed by the generated ones
    n_prompt: int         # how many of ``tokens`` are the prompt
    shares: torch.Tensor  # [n_new, len(tokens)]: row i = shares of generated token i (0 from its own slot on)

    @property
    def generated(self) -> list[str]:
        """The generated tokens."""
        return self.tokens[self.n_prompt:]


def generate_with_saliency(model, text: str, n_new: int = 3) -> Completion:
    """Greedy-generate ``n_new`` tokens after ``text``; the saliency of each over everything before it."""
    if n_new < 1:
        raise ValueError(f"n_new must be at least 1, got {n_new}")
    toks = to_tokens(model, text)
    n_prompt = toks.shape[1]
    rows = []
    for _ in range(n_new):
        with torch.no_grad():
            nxt = model(toks)[0, -1].argmax()
        rows.append(grad_x_input(model, toks, -1, nxt)[0])
        toks = torch.cat([toks, nxt.view(1, 1)], dim=1)
    T = toks.shape[1]
    # Row i covers the n_prompt + i tokens before generated token i; pad to the full length.
    shares = torch.stack([torch.nn.functional.pad(r, (0, T - r.numel())) for r in rows]).cpu()
    return Completion(list(model.to_str_tokens(toks[0])), n_prompt, shares)


def delete_positions(tokens: torch.Tensor, lengths: torch.Tensor, drop: torch.Tensor,
                     pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Delete the positions ``drop`` [batch, k] from each right-padded row -> (tokens, lengths)."""
    B, T = tokens.shape
    if drop.ndim != 2 or drop.shape[0] != B:
        raise ValueError(f"drop must be [batch={B}, k], got shape {tuple(drop.shape)}")
    keep = torch.arange(T, device=tokens.device)[None] < lengths[:, None]
    keep = keep.scatter(1, drop, False)
    new_len = keep.sum(1)
    out = torch.full((B, int(new_len.max())), pad, dtype=tokens.dtype, device=tokens.device)
    for i in range(B):
        out[i, : new_len[i]] = tokens[i][keep[i]]
    return out, new_len


@dataclass
class DeletionResult:
    """Per-prompt effects of deleting the ``k`` most salient context tokens vs ``k`` random ones."""

    p_before: torch.Tensor        # [n] probability of the model's prediction on the full prompt
    p_salient: torch.Tensor       # [n] ... after deleting the k most salient tokens
    p_random: torch.Tensor        # [n, draws] ... after deleting k random tokens (several draws)
    flip_salient: torch.Tensor    # [n] bool: the top-1 prediction changed
    flip_random: torch.Tensor     # [n, draws] bool

    def summary(self) -> dict[str, float]:
        """Mean probability drop and flip rate, salient vs random."""
        return {"n": len(self.p_before),
                "drop_salient": (self.p_before - self.p_salient).mean().item(),
                "drop_random": (self.p_before[:, None] - self.p_random).mean().item(),
                "flip_salient": self.flip_salient.float().mean().item(),
                "flip_random": self.flip_random.float().mean().item(),
                "salient_beats_random": ((self.p_salient[:, None] < self.p_random).float().mean().item())}


@torch.no_grad()
def _prob_and_top(model, tokens: torch.Tensor, lengths: torch.Tensor, pred: torch.Tensor,
                  batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    ps, tops = [], []
    for i in range(0, tokens.shape[0], batch):
        sl = slice(i, i + batch)
        logits = model(tokens[sl])
        rows = torch.arange(logits.shape[0], device=logits.device)
        final = logits[rows, lengths[sl] - 1].float().softmax(-1)
        ps.append(final[rows, pred[sl]])
        tops.append(final.argmax(-1))
    return torch.cat(ps), torch.cat(tops)


def replace_positions(tokens: torch.Tensor, positions: torch.Tensor, pool: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """Overwrite ``positions`` [batch, k] of each row with tokens drawn uniformly from ``pool`` (1-D)."""
    if positions.ndim != 2 or positions.shape[0] != tokens.shape[0]:
        raise ValueError(f"positions must be [batch={tokens.shape[0]}, k], got shape {tuple(positions.shape)}")
    if pool.ndim != 1 or pool.numel() == 0:
        raise ValueError("pool must be a non-empty 1-D tensor of token ids")
    draw = pool[torch.randint(len(pool), tuple(positions.shape), generator=generator).to(pool.device)]
    return tokens.scatter(1, positions, draw.to(tokens.device))


def deletion_test(model, tokens: torch.Tensor, lengths: torch.Tensor, k: int = 2, draws: int = 5,
                  seed: int = 0, batch: int = 256, mode: str = "delete") -> DeletionResult:
    """Delete the ``k`` most salient context tokens of each prompt, or ``k`` random ones, and re-predict.

    Candidates are the context tokens: not BOS (position 0) and not the last token (the one the
    prediction is made from: deleting it would change *where* the model predicts, a trivial effect).
    The saliency is that of the model's own top-1 prediction on the full prompt. ``mode="replace"``
    overwrites the chosen tokens instead, each with a token drawn from the batch's own context tokens
    (the prompt keeps its length and layout; only the words change).
    """
    if mode not in ("delete", "replace"):
        raise ValueError(f"mode must be 'delete' or 'replace', got {mode!r}")
    if tokens.ndim != 2 or lengths.shape != (tokens.shape[0],):
        raise ValueError("tokens must be [batch, pos] and lengths [batch]")
    if k < 1 or int(lengths.min()) - 2 < k:
        raise ValueError(f"every prompt needs more than k={k} context tokens (shortest has "
                         f"{int(lengths.min()) - 2})")
    tok = _tokenizer(model)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.bos_token_id
    end = lengths - 1
    with torch.no_grad():
        logits = model(tokens)
    pred = logits[torch.arange(len(end)), end].argmax(-1)
    shares = torch.cat([grad_x_input(model, tokens[i:i + batch], end[i:i + batch], pred[i:i + batch])
                        for i in range(0, len(end), batch)])
    T = tokens.shape[1]
    ar = torch.arange(T, device=tokens.device)[None]
    candidate = (ar >= 1) & (ar < end[:, None])
    top = shares.masked_fill(~candidate, -1.0).topk(k, dim=-1).indices
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand((draws, *tokens.shape), generator=gen).to(tokens.device)
    rand = noise.masked_fill(~candidate[None], -1.0).topk(k, dim=-1).indices  # [draws, B, k]
    B = tokens.shape[0]
    if mode == "delete":
        variants = [delete_positions(tokens, lengths, d, pad) for d in [top, *rand]]
    else:
        pool = tokens[candidate].unique()
        variants = [(replace_positions(tokens, d, pool, gen), lengths) for d in [top, *rand]]
    width = max(v[0].shape[1] for v in variants)
    all_toks = torch.cat([torch.nn.functional.pad(v[0], (0, width - v[0].shape[1]), value=pad) for v in variants])
    all_len = torch.cat([v[1] for v in variants])
    p_before, _ = _prob_and_top(model, tokens, lengths, pred, batch)
    p, topk = _prob_and_top(model, all_toks, all_len, pred.repeat(1 + draws), batch)
    p, topk = p.view(1 + draws, B), topk.view(1 + draws, B)
    flips = topk != pred[None]
    return DeletionResult(p_before.cpu(), p[0].cpu(), p[1:].T.cpu(), flips[0].cpu(), flips[1:].T.cpu())
