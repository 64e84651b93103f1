"""A decoder-only transformer written from scratch, with the GPT-2 architecture (chapter 1).

Read top to bottom: config, layer norm, attention, MLP, block, model; then the export of its weights
to Hugging Face's ``GPT2LMHeadModel`` (the tests hold the way back). GPT-2 is a pre-LN decoder: each block
adds ``attn(ln_1(x))`` then ``mlp(ln_2(x))`` to the residual stream; positions are learned vectors
added to the token embeddings; the MLP uses the tanh approximation of GELU ("gelu_new"); the
unembedding is the transposed token embedding (tied), unless ``tie_weights=False``.

``attn_only=True`` drops the MLPs (the toy models of Olsson et al. and of the seed). Exported to
GPT-2 format, such a model gets all-zero MLP weights: ``gelu_new(0) = 0``, so each MLP adds exactly
zero and the HF model computes the very same function.

Shapes in comments: B batch, T sequence length, D d_model, H heads, Dh d_head, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass
class TransformerConfig:
    """Sizes of the model; defaults are a tiny GPT-2."""

    vocab_size: int = 64
    n_ctx: int = 64          # longest sequence: number of learned position vectors
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 1
    d_mlp: int | None = None  # None: 4 * d_model as in GPT-2
    attn_only: bool = False   # no MLPs (toy models)
    tie_weights: bool = True  # unembedding = token embedding transposed, as in GPT-2
    layer_norm_eps: float = 1e-5
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_ctx", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        if not isinstance(self.d_mlp, int) or self.d_mlp < 1:
            raise ValueError(f"d_mlp must be a positive int or None, got {self.d_mlp!r}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, the tanh approximation."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class LayerNorm(nn.Module):
    """Normalise each position's vector to mean 0, variance 1, then scale and shift."""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class Attention(nn.Module):
    """Causal multi-head self-attention. Each position reads from itself and earlier positions."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)  # queries, keys, values of all heads at once
        self.out = nn.Linear(cfg.d_model, cfg.d_model)      # heads' outputs back to the residual stream
        mask = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)  # (n_ctx, n_ctx): key j <= query i
        self.last_pattern: torch.Tensor | None = None         # (B, H, T, T), kept for inspection

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)                           # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.n_heads, self.d_head).transpose(1, 2) for t in (q, k, v))  # (B,H,T,Dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)        # (B, H, T, T)
        scores = scores.masked_fill(~self.mask[:T, :T], float("-inf"))
        pattern = scores.softmax(dim=-1)                                 # rows sum to 1
        self.last_pattern = pattern.detach()
        z = pattern @ v                                                  # (B, H, T, Dh)
        z = z.transpose(1, 2).reshape(B, T, D)                           # heads side by side
        return self.out(z)


class MLP(nn.Module):
    """Position-wise two-layer perceptron: D -> d_mlp -> D with GELU in between."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.d_mlp)
        self.proj = nn.Linear(cfg.d_mlp, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        return self.proj(gelu_new(self.fc(x)))


class Block(nn.Module):
    """One pre-LN residual block: x + attn(ln_1(x)), then + mlp(ln_2(x))."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.attn = Attention(cfg)
        self.attn_only = cfg.attn_only
        if not cfg.attn_only:
            self.ln_2 = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
            self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        x = x + self.attn(self.ln_1(x))
        if not self.attn_only:
            x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    """GPT-2-style decoder: embed tokens and positions, n_layers blocks, final layer norm, unembed."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)  # token embedding W_E  (V, D)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)       # position embedding W_pos (n_ctx, D)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)  # W_U (D, V), stored as (V, D)
        if cfg.tie_weights:
            self.unembed.weight = self.wte.weight
        self.apply(self._init)

    def _init(self, module: nn.Module) -> None:
        """GPT-2's initialisation: normal(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.cfg.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) int -> (B, T, V) logits
        T = tokens.shape[1]
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence of length {T} is longer than n_ctx={self.cfg.n_ctx}")
        pos = torch.arange(T, device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)  # (B, T, D): the residual stream
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))

    def attention_patterns(self) -> list[torch.Tensor]:
        """Attention patterns of the last forward pass, one (B, H, T, T) tensor per layer."""
        return [b.attn.last_pattern for b in self.blocks]

    def n_params(self) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------- Hugging Face GPT-2 bridge

def to_hf_config(cfg: TransformerConfig):
    """The ``transformers.GPT2Config`` with the same shape as ``cfg``."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.n_ctx, n_embd=cfg.d_model,
                      n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_mlp,
                      activation_function="gelu_new", layer_norm_epsilon=cfg.layer_norm_eps,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      tie_word_embeddings=cfg.tie_weights, bos_token_id=0, eos_token_id=0,
                      initializer_range=cfg.init_std)


def hf_weight_pairs(model: Transformer, hf) -> list[tuple[torch.Tensor | None, torch.Tensor, bool]]:
    """(our tensor, HF tensor, transpose?) for every weight. HF's GPT-2 uses ``Conv1D`` layers whose
    weight is (in, out), the transpose of ``nn.Linear``'s (out, in). ``None``: MLP of an attn-only model."""
    t = hf.transformer
    pairs = [(model.wte.weight, t.wte.weight, False), (model.wpe.weight, t.wpe.weight, False),
             (model.ln_f.weight, t.ln_f.weight, False), (model.ln_f.bias, t.ln_f.bias, False)]
    for ours, theirs in zip(model.blocks, t.h):
        pairs += [(ours.ln_1.weight, theirs.ln_1.weight, False), (ours.ln_1.bias, theirs.ln_1.bias, False),
                  (ours.attn.qkv.weight, theirs.attn.c_attn.weight, True),
                  (ours.attn.qkv.bias, theirs.attn.c_attn.bias, False),
                  (ours.attn.out.weight, theirs.attn.c_proj.weight, True),
                  (ours.attn.out.bias, theirs.attn.c_proj.bias, False)]
        mlp = None if ours.attn_only else ours
        pairs += [(mlp and mlp.ln_2.weight, theirs.ln_2.weight, False),
                  (mlp and mlp.ln_2.bias, theirs.ln_2.bias, False),
                  (mlp and mlp.mlp.fc.weight, theirs.mlp.c_fc.weight, True),
                  (mlp and mlp.mlp.fc.bias, theirs.mlp.c_fc.bias, False),
                  (mlp and mlp.mlp.proj.weight, theirs.mlp.c_proj.weight, True),
                  (mlp and mlp.mlp.proj.bias, theirs.mlp.c_proj.bias, False)]
    if not model.cfg.tie_weights:
        pairs.append((model.unembed.weight, hf.lm_head.weight, False))
    return pairs


@torch.no_grad()
def to_hf(model: Transformer):
    """A ``GPT2LMHeadModel`` computing the same function as ``model`` (MLPs zero if attn-only)."""
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel(to_hf_config(model.cfg)).eval()
    for ours, theirs, transpose in hf_weight_pairs(model, hf):
        if ours is None:  # attn-only: handled below
            continue
        theirs.copy_(ours.T if transpose else ours)
    if model.cfg.attn_only:  # the MLP must add exactly zero: gelu_new(0 @ x + 0) @ 0 + 0 = 0
        for block in hf.transformer.h:
            for p in (block.mlp.c_fc.weight, block.mlp.c_fc.bias, block.mlp.c_proj.weight, block.mlp.c_proj.bias):
                p.zero_()
    return hf


def export_gpt2(model: Transformer, out_dir: str | Path) -> Path:
    """Save ``model`` as a Hugging Face GPT-2 directory that ``helpers.load_model(out_dir)`` boots."""
    import json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    to_hf(model).save_pretrained(out)
    (out / "circuits_config.json").write_text(json.dumps(asdict(model.cfg), indent=1))
    return out
