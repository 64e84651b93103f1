"""The encoder-decoder of the seed's failed attempt: shapes and the copying shortcut's measurement."""

import torch

from helpers.encdec import EncoderDecoder, cheat_score


def test_shapes_and_scores_are_probabilities():
    torch.manual_seed(0)
    model = EncoderDecoder(vocab_size=11, n_ctx=9, d_model=16).eval()
    tokens = torch.randint(0, 11, (3, 9))
    assert model(tokens).shape == (3, 9, 11)
    loss, to_next = cheat_score(model, tokens)
    assert loss > 0 and 0 <= to_next <= 1
    assert model.self_attn.last_pattern[0].triu(1).abs().max() == 0      # decoder self-attention is causal
    assert model.cross_attn.last_pattern[0].triu(1).abs().max() > 0      # cross-attention sees the future
