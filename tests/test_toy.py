"""The toy task: periodic sequences, the shifted control, the loss floor, and the phase change."""

import math

import pytest
import torch

from helpers.toy import (
    ToyConfig,
    ToyRun,
    first_step_reaching,
    key_demand,
    loss_floor,
    periodic_batch,
    phase_change,
    train_toy,
)


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


def test_phase_change_finds_a_sudden_drop_and_not_a_smooth_one():
    sudden = [3.0] * 300 + [3.0 - 2.5 * i / 20 for i in range(20)] + [0.5] * 280
    pc = phase_change(sudden, window=40)
    assert abs(pc.step - 310) <= 20 and pc.drop == pytest.approx(2.5)
    assert pc.share == pytest.approx(1.0) and pc.sharpness > 100 and pc.before == pc.after == 0
    smooth = [0.5 + 2.5 * math.exp(-i / 200) for i in range(600)]   # the steepest fall is at step 0
    assert math.isnan(phase_change(smooth).sharpness)
    slope = [3.0] * 100 + [3.0 - 2.5 * i / 500 for i in range(500)]  # a steady fall: no window stands out
    assert phase_change(slope).sharpness == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="at least"):
        phase_change([1.0] * 10)


def test_probing_during_training_changes_nothing():
    cfg = ToyConfig(steps=60, batch=8, d_model=16)
    plain, probed = train_toy(cfg, progress=False), train_toy(cfg, progress=False, probe_every=25)
    assert plain.losses == probed.losses and probed.probe_steps == [25, 50, 60]
    assert probed.probes.shape == (3, cfg.n_ctx - 1)
    assert torch.all((probed.probes >= 0) & (probed.probes <= 1))
    for a, b in zip(plain.model.parameters(), probed.model.parameters()):
        assert torch.equal(a, b)


def test_key_demand_stops_after_the_last_key_a_first_showing_needs():
    d = key_demand(ToyConfig(n_ctx=48, min_period=2, max_period=24))
    assert d[0] == 0 and d[1] == 1 and d[2] == 1               # keys 1, 2: every period reads them
    assert d[23] == pytest.approx(2 / 23) and d[24:].sum() == 0  # key 24 would predict position 48: none
    d16 = key_demand(ToyConfig(n_ctx=48, min_period=2, max_period=16))
    assert int(d16.nonzero().max()) == 16
    with pytest.raises(ValueError, match="periodic"):
        key_demand(ToyConfig(distribution="shifted"))


def test_first_step_reaching_reads_the_probes():
    run = ToyRun(ToyConfig(n_ctx=4), model=None, probe_steps=[10, 20, 30],
                 probes=torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.6, 0.0], [0.9, 0.9, 0.4]]))
    assert first_step_reaching(run).tolist() == [10, 20, float("inf")]
    with pytest.raises(ValueError, match="probed"):
        first_step_reaching(ToyRun(ToyConfig(), model=None))
