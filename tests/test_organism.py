"""The shipped organism: offline loading, checksum protection, and the GPT-2 path on a random GPT-2-small.

The GPT-2-small-shaped test uses random weights and the organism's word-level tokenizer (GPT-2's own
tokenizer cannot be downloaded here), with ``vocab_size`` set to match: it proves that shapes, hook
names, memory and every generator's prompts go through the same ``load_model`` path, not findings.
"""

import os
import shutil

import pytest
import torch

from helpers.loading import ORGANISM_DIR, ChecksumError, load_model
from helpers.organism import build_tokenizer
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch, evaluate_induction

pytestmark = pytest.mark.skipif(not (ORGANISM_DIR / "model.safetensors").exists(),
                                reason="organism checkpoint not built")


@pytest.fixture(scope="module")
def organism():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return load_model("organism", device="cpu", verbose=False)


def test_organism_loads_offline_with_bos(organism):
    toks = organism.to_tokens("When Mary and John went to the store, John gave a drink to")
    assert toks[0, 0].item() == organism.tokenizer.bos_token_id
    assert organism.to_str_tokens(" Mary", prepend_bos=False) == ["Mary"]
    assert organism.cfg.n_heads > 1 and organism.cfg.d_mlp > 0


def test_checkpoints_load():
    tags = sorted(p.name for p in (ORGANISM_DIR / "checkpoints").iterdir())
    assert tags, "intermediate checkpoints are shipped"
    m = load_model(f"organism@{tags[0]}", device="cpu", verbose=False)
    assert m.cfg.n_layers >= 2


def test_corrupted_checkpoint_is_refused(tmp_path):
    bad = tmp_path / "organism"
    shutil.copytree(ORGANISM_DIR, bad, ignore=shutil.ignore_patterns("checkpoints"))
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ChecksumError, match="corrupted"):
        load_model(str(bad), device="cpu", verbose=False)


def test_organism_generalises_to_held_out_structures(organism):
    # Floors under the model card's measured figures (IOI 0.92-0.94 held-out, 1.00 on training structures;
    # Colored Objects 0.87 top-1 in the classic phrasing with unseen objects; induction 1.0).
    assert evaluate_batch(organism, make("ioi", 100, split="test", seed=5))["accuracy"] >= 0.88
    assert evaluate_batch(organism, make("ioi", 100, split="train", seed=5))["accuracy"] >= 0.97
    co = evaluate_batch(organism, make("colored_objects", 100, split="test", seed=5, phrasing="classic"))
    assert co["top1"] >= 0.75
    assert evaluate_induction(organism, n=20, seed=5)["accuracy"] >= 0.9


def test_partly_solved_checkpoint_is_partly_solved():
    import json

    tag = json.loads((ORGANISM_DIR / "train_log.json").read_text())["partial_checkpoint"]
    m = load_model(f"organism@{tag}", device="cpu", verbose=False)
    acc = evaluate_batch(m, make("colored_objects", 150, split="test", seed=5))["accuracy"]
    assert 0.4 <= acc <= 0.8, acc


def test_gpt2_small_shaped_model_runs_every_generator(tmp_path, random_gpt2):
    tok = build_tokenizer()
    out = random_gpt2(tmp_path / "gpt2_small_random", "small", vocab_size=len(tok),
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    tok.save_pretrained(out)
    model = load_model(str(out), device="cpu", verbose=False)
    assert (model.cfg.n_layers, model.cfg.n_heads, model.cfg.d_model) == (12, 12, 768)
    for task in ("ioi", "colored_objects", "articles", "counting", "filler"):
        res = evaluate_batch(model, make(task, 8, split="test", seed=0))
        assert 0.0 <= res["accuracy"] <= 1.0 and res["n"] == 8
    ind = evaluate_induction(model, n=4, seq_len=10)
    assert 0.0 <= ind["accuracy"] <= 1.0
    b = make("ioi", 4, split="test", seed=0)
    enc = b.encode(model)
    _, cache = model.run_with_cache(enc.tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    assert cache["blocks.11.attn.hook_pattern"].shape == (4, 12, enc.tokens.shape[1], enc.tokens.shape[1])
    assert torch.isfinite(model(enc.corrupted)).all()


def test_training_is_deterministic(tmp_path):
    from helpers.loading import sha256_file
    from helpers.organism import train

    tiny = ((("pairs",), 2, 8), (("pairs", "pairs?", "cut", "full"), 2, 8))  # phase 1b, shortened
    kw = {"seed": 3, "steps": 3, "checkpoint_steps": (), "progress": False, "phase2_steps": 2,
          "curriculum": tiny, "curriculum_mix": 4, "curriculum_eval_every": 2}
    logs = [train(tmp_path / name, **kw) for name in "ab"]
    assert sha256_file(tmp_path / "a" / "model.safetensors") == sha256_file(tmp_path / "b" / "model.safetensors")
    assert logs[0]["eval"] == logs[1]["eval"]
    # Phases 1b and 2 from phase 1's saved weights (--resume-phase2) give the same model as the continuous run.
    train(tmp_path / "p1", **{**kw, "phase2_steps": 0, "curriculum": ()})
    train(tmp_path / "c", resume_from=tmp_path / "p1", **kw)
    assert sha256_file(tmp_path / "c" / "model.safetensors") == sha256_file(tmp_path / "a" / "model.safetensors")


def test_card_compare_flags_a_figure_outside_tolerance():
    from helpers.organism.card import TOLERANCE, compare

    ref = {k: 0.9 for k in TOLERANCE}
    assert compare(dict(ref), ref)["within"].all()
    off = {**ref, "co_heldout_top1": 0.9 - TOLERANCE["co_heldout_top1"] - 0.01}
    table = compare(off, ref)
    assert list(table.loc[~table["within"], "figure"]) == ["co_heldout_top1"]
    with pytest.raises(ValueError, match="missing"):
        compare({"ioi_heldout": 1.0}, ref)


def test_card_figures_read_the_generalisation_table():
    import pandas as pd

    from helpers.organism.card import FIGURES, figures

    rows = [{"task": t, "structure": s, "accuracy": 0.5, "top1": 0.25} for t, s, _ in FIGURES.values()]
    rows.append({"task": "ioi", "structure": "join=met", "accuracy": 0.7, "top1": 0.6})
    rows.append({"task": "ioi", "structure": "gap=2", "accuracy": 0.8, "top1": 0.6})
    f = figures(pd.DataFrame(rows))
    assert f["ioi_worst_rule"] == 0.7 and f["co_heldout_top1"] == 0.25 and f["ioi_heldout"] == 0.5
    with pytest.raises(ValueError, match="no single row"):
        figures(pd.DataFrame(rows[1:]))


def test_card_plot_spread_draws_every_run_and_bar():
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from helpers.organism.card import BARS, TOLERANCE, plot_spread

    spread = pd.DataFrame({"shipped": {k: 0.9 for k in TOLERANCE}, "seed 1": {k: 0.8 for k in TOLERANCE}})
    ax = plot_spread(spread)
    assert len(ax.collections) == 2                       # one scatter per run
    assert len(ax.lines) == sum(k in BARS for k in spread.index)  # one tick per figure that has a bar
    with pytest.raises(ValueError, match="no runs"):
        plot_spread(pd.DataFrame(index=list(TOLERANCE)))


def test_card_rule_of_and_by_order(organism):
    from helpers.organism.card import IOI_RULES, by_order, rule_of

    assert rule_of("join=met") == {"join": "met"} and rule_of("gap=2") == {"gap": 2}
    assert [rule_of(f"{k}={v}") for r in IOI_RULES for k, v in r.items()] == IOI_RULES
    with pytest.raises(ValueError, match="not one of"):
        rule_of("join=saw")
    acc = by_order(organism, {"join": "met"}, n=40, seed=3)
    assert set(acc) == {"ABBA", "BABA"} and all(0.0 <= v <= 1.0 for v in acc.values())


def test_partial_checkpoint_search_saves_a_step_between_evaluations_and_restores_the_weights(tmp_path, monkeypatch):
    """Colored Objects can jump past the partly-solved window between two evaluations: the kept weights of the
    steps in between are searched, the one nearest 50% is saved and logged, and training resumes unchanged."""
    import importlib

    from transformers import GPT2Config, GPT2LMHeadModel

    train_mod = importlib.import_module("helpers.organism.train")

    tok = build_tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=16, n_inner=32, n_positions=128,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    model.tokenizer = tok
    log = {"loss": [], "eval": [{"step": 10}], "heads": [{"step": 10}], "partial_checkpoint": None}
    run = train_mod._Run(model, tok, tmp_path, log, train_mod.HeadProbe(tok, n=4), (), False, 1.0)
    snaps = []
    for step in (3, 4, 5):  # three "steps" with other weights
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        snaps.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))
    now = {k: v.detach().clone() for k, v in model.state_dict().items()}
    monkeypatch.setattr(train_mod, "PARTIAL", (1.01, 1.01))  # no step inside the window: nothing is kept
    run.partial_between(snaps)
    assert log["partial_checkpoint"] is None and not (tmp_path / "checkpoints").exists()
    monkeypatch.setattr(train_mod, "PARTIAL", (0.0, 1.0))  # every step inside: the one nearest 50% is kept
    run.partial_between(snaps)
    step = int(log["partial_checkpoint"].removeprefix("step"))
    assert step in (3, 4, 5) and (tmp_path / "checkpoints" / f"step{step}" / "model.safetensors").exists()
    assert [r["step"] for r in log["eval"]] == sorted([10, step]) and len(log["heads"]) == 2
    assert all(torch.equal(v, now[k]) for k, v in model.state_dict().items()), "the training's weights are restored"
