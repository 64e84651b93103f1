"""GPT-2 blocks in plain torch, on a TransformerBridge's own (processed) weights.

The suffix engine (:mod:`helpers.patching.suffix`) runs them on a suffix of the positions, or at the
answer positions only, which the bridge's blocks cannot do. Nothing is copied: the weights are
``[out, in]`` views of the parameters the bridge runs on. Only GPT-2-like models qualify (LayerNorm,
learned positions, sequential attention and MLP, a known activation); the engine checks the result
against the bridge once per sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..hooks import layer_norm

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": torch.relu,
    "silu": F.silu,
}
LN = tuple[torch.Tensor, torch.Tensor]


class GPT2Blocks:
    """GPT-2 blocks in plain torch from a TransformerBridge's weights (compatibility mode)."""

    def __init__(self, model):
        cfg = model.cfg
        unsupported = [getattr(cfg, "normalization_type", None) != "LN",
                       getattr(cfg, "positional_embedding_type", "standard") != "standard",
                       bool(getattr(cfg, "parallel_attn_mlp", False)), bool(getattr(cfg, "gated_mlp", False)),
                       bool(getattr(cfg, "attn_only", False)), bool(getattr(cfg, "use_local_attn", False)),
                       bool(getattr(cfg, "scale_attn_by_inverse_layer_idx", False)),
                       getattr(cfg, "n_key_value_heads", None) not in (None, cfg.n_heads),
                       cfg.act_fn not in ACTIVATIONS]
        if any(unsupported):
            raise ValueError("not a GPT-2-like model")
        self.n, self.H, self.dh, self.d = cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.d_model
        self.eps = float(cfg.eps)
        act = getattr(getattr(model.blocks[0].mlp, "original_component", None), "act", None)
        self.act = act if isinstance(act, torch.nn.Module) else ACTIVATIONS[cfg.act_fn]  # the model's own, if any
        self.scale = self.dh ** -0.5
        H, dh, d = self.H, self.dh, self.d
        self.W_qkv, self.b_qkv, self.W_O, self.b_O = [], [], [], []
        self.W_in, self.b_in, self.W_out, self.b_out, self.ln1, self.ln2 = [], [], [], [], [], []
        for block in model.blocks:
            attn, mlp = block.attn, block.mlp
            self.W_qkv.append([w.detach().permute(1, 0, 2).reshape(d, H * dh).T
                               for w in (attn.W_Q, attn.W_K, attn.W_V)])
            self.b_qkv.append([b.detach().reshape(H * dh) for b in (attn.b_Q, attn.b_K, attn.b_V)])
            self.W_O.append(attn.W_O.detach().reshape(H * dh, d).T)
            self.b_O.append(attn.b_O.detach())
            self.W_in.append(mlp.W_in.detach().T)
            self.b_in.append(mlp.b_in.detach())
            self.W_out.append(mlp.W_out.detach().T)
            self.b_out.append(mlp.b_out.detach())
            self.ln1.append(self._ln(block.ln1))
            self.ln2.append(self._ln(block.ln2))
        self.lnf = self._ln(model.ln_final)
        self.W_U, self.b_U = model.W_U.detach(), model.b_U.detach()

    @staticmethod
    def _ln(bridge) -> LN:
        c = bridge.original_component
        return c.weight.detach(), c.bias.detach()

    def norm(self, x: torch.Tensor, wb: LN) -> torch.Tensor:
        """A LayerNorm with weights ``wb``, by the bridge's formula, so that results agree to float rounding."""
        return layer_norm(x, self.eps, *wb)

    def qkv(self, layer: int, x: torch.Tensor, which: Sequence[int] = (0, 1, 2)) -> list[torch.Tensor]:
        """[N, S, d] -> the queries, keys, values (``which`` of them), each [N, S, H, dh]"""
        h = self.norm(x, self.ln1[layer])
        return [F.linear(h, self.W_qkv[layer][i], self.b_qkv[layer][i]).view(x.shape[:-1] + (self.H, self.dh))
                for i in which]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """q [N, S, H, dh], k/v [N, T, H, dh], mask [N or 1, S, T] (True = may attend) -> z [N, S, H, dh]"""
        scores = q.transpose(1, 2) @ k.permute(0, 2, 3, 1) * self.scale
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        return (scores.softmax(-1) @ v.transpose(1, 2)).transpose(1, 2)

    def attn_out(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """The heads' outputs z [N, S, H, dh] through W_O -> [N, S, d]."""
        return F.linear(z.flatten(2), self.W_O[layer], self.b_O[layer])

    def mlp(self, layer: int, x: torch.Tensor, patch: Callable) -> torch.Tensor:
        """x is resid_mid; returns resid_post, with ``patch(name, act)`` applied at each MLP hook."""
        pre = patch("mlp.hook_pre", F.linear(self.norm(x, self.ln2[layer]), self.W_in[layer], self.b_in[layer]))
        post = patch("mlp.hook_post", self.act(pre))
        out = patch("hook_mlp_out", F.linear(post, self.W_out[layer], self.b_out[layer]))
        return patch("hook_resid_post", x + out)

    def unembed(self, x: torch.Tensor, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, V]; with ``tokens`` only those columns are computed (the rest are 0)."""
        x = self.norm(x, self.lnf)
        if tokens is None:
            return x @ self.W_U + self.b_U  # as hooks.unembed_at computes it
        out = x.new_zeros(x.shape[0], self.W_U.shape[1])
        out[:, tokens] = x @ self.W_U[:, tokens] + self.b_U[tokens]
        return out
