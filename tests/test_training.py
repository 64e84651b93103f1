"""helpers.training: AdamW decay groups, the training loop, torch threads."""

import torch

from helpers.training import adamw, next_token_loss, torch_threads, train_steps
from helpers.transformer import Transformer, TransformerConfig


def test_adamw_decays_matrices_only():
    model = Transformer(TransformerConfig(vocab_size=11, n_ctx=8, d_model=16, n_layers=1, n_heads=2))
    opt = adamw(model, 1e-3, 0.1, betas=(0.9, 0.98))
    decay, rest = opt.param_groups
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0 and decay["betas"] == (0.9, 0.98)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in rest["params"])
    assert len(decay["params"]) + len(rest["params"]) == len(list(model.parameters()))


def test_train_steps_lowers_the_loss_and_restores_threads():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=5, n_ctx=8, d_model=16, n_layers=1, n_heads=1))
    data = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]] * 4)
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        losses = train_steps(model, adamw(model, 1e-2, 0.0), lambda: data,
                             lambda t: next_token_loss(model(t[:, :-1]), t), 60)
    assert torch.get_num_threads() == before
    assert len(losses) == 60 and losses[-1] < losses[0] / 2 and not model.training
