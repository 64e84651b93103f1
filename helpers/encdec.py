"""The seed's first, failed attempt: an encoder-decoder on the next-token task (chapter 1, briefly).

The encoder reads the *whole* sequence without a causal mask; the decoder, at position t, must predict
token t+1. Its cross-attention can simply look up encoder position t+1 — the answer itself — so the task
is solved by copying, on any sequence, periodic or not, and no induction circuit is ever needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .toy import ToyConfig
from .training import adamw, next_token_loss, torch_threads, train_steps


class CrossAttention(nn.Module):
    """Single-head attention from decoder positions (queries) to all encoder positions (keys, values)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.q, self.kv, self.out = nn.Linear(d_model, d_model), nn.Linear(d_model, 2 * d_model), \
            nn.Linear(d_model, d_model)
        self.last_pattern: torch.Tensor | None = None  # (B, T_dec, T_enc)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, causal: bool) -> torch.Tensor:  # (B,T,D) -> (B,T,D)
        q = self.q(x)
        k, v = self.kv(memory).chunk(2, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])          # (B, T, T)
        if causal:
            T = scores.shape[-1]
            scores = scores.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
        pattern = scores.softmax(-1)
        self.last_pattern = pattern.detach()
        return self.out(pattern @ v)


class EncoderDecoder(nn.Module):
    """One bidirectional encoder layer, one decoder layer (causal self-attention, then cross-attention)."""

    def __init__(self, vocab_size: int, n_ctx: int, d_model: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, d_model), nn.Embedding(n_ctx, d_model)
        self.ln_enc, self.enc_attn = nn.LayerNorm(d_model), CrossAttention(d_model)
        self.ln_self, self.self_attn = nn.LayerNorm(d_model), CrossAttention(d_model)
        self.ln_cross, self.cross_attn = nn.LayerNorm(d_model), CrossAttention(d_model)
        self.ln_f, self.unembed = nn.LayerNorm(d_model), nn.Linear(d_model, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V): logits for token t+1
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
        h = self.ln_enc(x)
        memory = x + self.enc_attn(h, h, causal=False)                    # the encoder sees everything
        h = self.ln_self(x)
        y = x + self.self_attn(h, h, causal=True)                           # decoder: causal over its input
        y = y + self.cross_attn(self.ln_cross(y), memory, causal=False)     # ... but reads the whole encoding
        return self.unembed(self.ln_f(y))


def train_encdec(cfg: ToyConfig, steps: int = 300) -> tuple[EncoderDecoder, list[float]]:
    """Train the encoder-decoder on ``cfg``'s periodic sequences; returns the model and its losses."""
    with torch_threads(1):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = EncoderDecoder(cfg.vocab_size, cfg.n_ctx, cfg.d_model)
        losses = train_steps(model, adamw(model, cfg.lr, cfg.weight_decay), lambda: cfg.batch_of(cfg.batch, gen),
                             lambda tokens: next_token_loss(model(tokens)[:, :-1], tokens), steps)
    return model, losses


@torch.no_grad()
def cheat_score(model: EncoderDecoder, tokens: torch.Tensor) -> tuple[float, float]:
    """(mean loss, cross-attention from decoder t to encoder t+1) on ``tokens``: the copying shortcut."""
    logits = model(tokens)[:, :-1]
    loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:]).item()
    t = torch.arange(tokens.shape[1] - 1)
    return loss, model.cross_attn.last_pattern[:, t, t + 1].mean().item()
