"""The toy task's data: periodic sequences, the shifted control, and the loss floor."""

import pytest
import torch

from helpers.toy import ToyConfig, loss_floor, periodic_batch, phase_change_step


def test_periodic_sequences_repeat_distinct_patterns():
    g = torch.Generator().manual_seed(0)
    x = periodic_batch(200, 48, 32, 2, 16, generator=g)
    assert x.shape == (200, 48) and x.min() >= 0 and x.max() < 32
    for row in x:
        p = int((row[1:] == row[0]).nonzero()[0]) + 1          # first return of token 0
        assert 2 <= p <= 16
        assert len(set(row[:p].tolist())) == p                   # distinct tokens within a period
        assert torch.equal(row[p:], row[:-p])                    # periodic from the start


def test_shifted_sequences_start_anywhere():
    g = torch.Generator().manual_seed(0)
    x = periodic_batch(500, 48, 32, 2, 16, "shifted", generator=g)
    starts = []
    for row in x:
        # the periodic part is the longest suffix with some period p <= 16
        for s in range(48):
            tail = row[s:]
            if any(len(tail) >= 2 * p and torch.equal(tail[p:], tail[:-p]) for p in range(2, 17)):
                starts.append(s)
                break
    assert max(starts) > 30 and min(starts) == 0


@pytest.mark.parametrize("kw, match", [
    ({"distribution": "nope"}, "distribution"),
    ({"max_period": 40}, "vocab_size"),
    ({"max_period": 30, "vocab_size": 64}, "n_ctx/2"),
    ({"min_period": 5, "max_period": 4}, "min_period"),
])
def test_bad_task_parameters(kw, match):
    args = {"batch": 2, "n_ctx": 48, "vocab_size": 32, "min_period": 2, "max_period": 16, **kw}
    with pytest.raises(ValueError, match=match):
        periodic_batch(**args)


def test_loss_floor():
    floor = loss_floor(ToyConfig())
    assert 0.55 < floor < 0.65                                   # 0.613 nats for the book's settings
    one_period = loss_floor(ToyConfig(min_period=4, max_period=4, n_ctx=9))
    expected = -sum(torch.log(torch.tensor(1 / (32 - i))).item() for i in range(1, 4)) / 8
    assert one_period == pytest.approx(expected)                 # a known period: only tokens 1..3 are unknown
    with pytest.raises(ValueError, match="periodic"):
        loss_floor(ToyConfig(distribution="shifted"))


def test_phase_change_step_finds_the_drop():
    losses = [3.0] * 300 + [0.5] * 300
    assert abs(phase_change_step(losses) - 300) <= 50
    with pytest.raises(ValueError, match="at least"):
        phase_change_step([1.0] * 10)
