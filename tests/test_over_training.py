"""Chapter 7's helpers: the "most frequent" task, training-log curves, fine-tuning and its corpora,
attention spread, and the task circuit with roles."""

import random
from collections import Counter

import pandas as pd
import pytest
import torch

from helpers import circuits, finetune, formation, heads, tasks
from helpers.tasks import most_frequent


@pytest.fixture(scope="module")
def organism():
    import helpers

    torch.set_num_threads(1)
    return helpers.load_model("organism", verbose=False)


# --- the task -------------------------------------------------------------------------------------------

def test_most_frequent_counts_and_twins():
    b = most_frequent.generate(50, seed=3, length=8, top=3)
    for text, corr, ans, dis, meta in zip(b.texts, b.corrupted, b.answers, b.distractors, b.meta):
        words = meta["words"]
        c = Counter(words)
        assert len(words) == 8 and c[ans.strip()] == 3 and c[dis.strip()] == 2 and max(c.values()) == 3
        assert sorted(c.values()).count(3) == 1                      # one winner only
        cw = corr.split(" : ")[1].split(" . ")[0].split()
        cc = Counter(cw)
        assert cc[dis.strip()] == 3 and cc[ans.strip()] == 2          # the twin's answer flips
        assert len(cw) == len(words) and sum(a != b for a, b in zip(cw, words)) == 1
        assert text.startswith(most_frequent.PREFIX) and text.endswith(most_frequent.CUE)


def test_most_frequent_positions(organism):
    b = tasks.make("most_frequent", 20, seed=1, top=3)
    e = b.encode(organism)
    W, R = most_frequent.positions(e, "W", 3), most_frequent.positions(e, "R", 2)
    rows = torch.arange(20)[:, None]
    assert (e.tokens[rows, W] == e.answers[:, None]).all() and (e.tokens[rows, R] == e.distractors[:, None]).all()
    assert (W[:, :-1] < W[:, 1:]).all()
    assert (e.tokens[torch.arange(20), e.positions["SWAP"]] == e.answers).all()
    assert (e.corrupted[torch.arange(20), e.positions["SWAP"]] == e.distractors).all()


def test_most_frequent_bad_inputs():
    with pytest.raises(ValueError, match="split"):
        most_frequent.generate(2, split="dev")
    with pytest.raises(ValueError, match="top"):
        most_frequent.generate(2, top=1)
    with pytest.raises(ValueError, match="length"):
        most_frequent.generate(2, length=4, top=3)
    with pytest.raises(ValueError, match="pool"):
        most_frequent.generate(2, length=8, top=3, pool=["Mary", "John", "Kate"])
    with pytest.raises(TypeError):
        most_frequent.generate(2, seed=None)
    assert most_frequent.generate(3, seed=random.Random(0)).texts == most_frequent.generate(3, seed=0).texts


# --- training-log curves --------------------------------------------------------------------------------

def test_rise_step():
    c = pd.Series([0.0, 0.1, 0.2, 0.8, 1.0], index=[100, 200, 300, 400, 500])
    assert formation.rise_step(c, 0.5) == 400 and formation.rise_step(c, 0.1) == 200
    assert formation.rise_step(c, 0.5, until=300) == 200          # halfway to its value at step 300 (0.1)
    assert formation.rise_step(pd.Series([1.0, 0.5], index=[1, 2])) is None
    with pytest.raises(ValueError, match="frac"):
        formation.rise_step(c, 0)
    with pytest.raises(ValueError, match="two points"):
        formation.rise_step(c, 0.5, until=100)
    assert formation.first_reaching(c, 0.8) == 400 and formation.first_reaching(c, 2) is None


def test_loss_drop_finds_the_step():
    steps = list(range(25, 3001, 25))
    loss = [6.0 if s <= 100 else (3.0 if s < 1500 else 2.0) for s in steps]
    lo, hi, pc = formation.loss_drop(pd.DataFrame({"step": steps, "loss": loss}), until=3000, after=300)
    assert lo <= 1500 <= hi + 25 and pc.drop > 0.5 and pc.share > 0.9 and pc.sharpness > 10
    slope = [6.0 - s / 1000 for s in steps]  # a steady fall: the sharpest window exists, but is not sudden
    _, _, pc = formation.loss_drop(pd.DataFrame({"step": steps, "loss": slope}), until=3000, after=300)
    assert pc.sharpness == pytest.approx(1.0, abs=0.01) and pc.share < 0.1


def test_training_log_loads(tmp_path):
    from helpers.loading import ORGANISM_DIR

    tl = formation.TrainingLog.load(ORGANISM_DIR)
    assert {"prev_token", "induction", "end_to_s2"} <= set(tl.scores)
    assert tl.scores["induction"].shape[1:] == (4, 8) and len(tl.score_steps) == len(tl.scores["induction"])
    assert tl.head_curve("induction", (1, 2)).index[0] == tl.score_steps[0]
    with pytest.raises(KeyError, match="no score"):
        tl.head_curve("nope", (0, 0))
    with pytest.raises(FileNotFoundError):
        formation.TrainingLog.load(tmp_path)


# --- corpora and fine-tuning ----------------------------------------------------------------------------

def test_poems_never_repeat_and_articles_do(organism):
    p = finetune.poem_tokens(organism, 20, 24, seed=0)
    assert p.shape == (20, 25) and all(len(set(r[1:].tolist())) == 24 for r in p)
    a = finetune.article_tokens(organism, 20, 24, seed=0, n_terms=2, term_len=3, mentions=3)
    assert a.shape == (20, 25)
    for r in a:
        c = Counter(r[1:].tolist())
        assert sorted(c.values(), reverse=True)[:6] == [3] * 6 and len(c) == 6 + 6
    with pytest.raises(ValueError, match="length"):
        finetune.article_tokens(organism, 2, 10, n_terms=2, term_len=3, mentions=3)
    with pytest.raises(ValueError, match="length"):
        finetune.poem_tokens(organism, 2, 10_000)


def test_finetune_trains_a_copy(organism):
    before = {k: v.clone() for k, v in organism.state_dict().items()}
    tuned, losses = finetune.finetune(organism, lambda s: finetune.poem_tokens(organism, 4, 8, seed=s), 2, seed=0)
    assert len(losses) == 2 and tuned is not organism
    assert all(torch.equal(v, organism.state_dict()[k]) for k, v in before.items())   # the original is untouched
    assert any(not torch.equal(v, tuned.state_dict()[k]) for k, v in before.items())
    _, one = finetune.finetune(organism, lambda s: most_frequent.generate(4, seed=s), 1, seed=0)
    assert len(one) == 1  # a prompt batch: the loss on its answers
    with pytest.raises(ValueError, match="steps"):
        finetune.finetune(organism, lambda s: None, 0)
    with pytest.raises(TypeError, match="make_batch"):
        finetune.finetune(organism, lambda s: [1, 2], 1)


def test_in_context_gain_of_the_organism(organism):
    g = finetune.in_context_gain(organism, n=8, seq_len=10)
    assert g["gain"] == pytest.approx(g["first_copy_loss"] - g["second_copy_loss"])
    assert g["gain"] > 1  # the organism's induction: the repeat is far easier than the first copy


# --- attention spread and circuits ----------------------------------------------------------------------

def test_attention_spread(organism):
    e = tasks.make("ioi", 8, "test", seed=0).encode(organism)
    every = heads.attention_spread(organism, e.tokens, e.lengths)
    end = heads.attention_spread(organism, e.tokens, query_pos=e.end)
    for s in (every, end):
        assert set(s) == {"bos", "max", "entropy"} and all(v.shape == (4, 8) for v in s.values())
        assert (s["max"] <= 1 + 1e-5).all() and (s["bos"] >= 0).all() and (s["max"] >= s["bos"] - 1e-6).all()
        assert (s["entropy"] >= -1e-5).all() and (s["entropy"] <= 1 + 1e-4).all()
    with pytest.raises(ValueError, match="query_pos"):
        heads.attention_spread(organism, e.tokens, query_pos=torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="lengths"):
        heads.attention_spread(organism, e.tokens, lengths=torch.tensor([3]))


def test_circuit_with_roles_and_faithfulness(organism):
    s = circuits.ioi_setup(organism, 16, 0, 0)
    c = circuits.circuit_with_roles(organism, s, 0.1, 0.1, 0.3, 0.5, depth=1, carrier_min=0.03)
    assert c.heads[:len(c.found.heads)] == c.found.heads and set(c.carriers) <= set(c.heads)
    assert set(c.roles) == set(c.heads) and c.clean > 0
    f = circuits.faithfulness(organism, s, c.heads)
    assert f["F(M)"] == pytest.approx(c.clean, rel=1e-4)
    assert abs(f["F(empty)"]) < abs(f["F(M)"])
    mf = circuits.most_frequent_setup(organism, 8, 0)
    assert set(mf.pairs) == set(circuits.ROLE_COLUMNS) and mf.pairs["END→answer"][1].shape == (8, 3)
