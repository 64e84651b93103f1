"""Edge-level circuit discovery (helpers/circuits/graph.py, edge_methods.py, scoring.py, planted.py)."""

from __future__ import annotations

import pytest
import torch

from helpers.circuits import EdgeModel, planted, scoring
from helpers.circuits import edge_methods as M


@pytest.fixture(scope="module")
def induction():
    p = planted.induction_model()
    return p, EdgeModel(p.weights)


@pytest.fixture(scope="module")
def ioi_planted():
    p = planted.ioi_model()
    return p, EdgeModel(p.weights)


def test_graph_edges_are_topological(induction):
    _, em = induction
    g = em.graph
    assert len(g.edges) == 4 + 4 * 5 + 9  # embed->L0 heads, (embed + L0 heads)->L1 heads, everything->logits
    for s, r in g.edges:
        assert g.index[s] < g.index[r]
    with pytest.raises(ValueError, match="not an edge"):
        g.mask([("L1H0", "L0H0")])


def test_all_kept_and_all_removed_are_the_clean_and_corrupted_runs(ioi_planted):
    p, em = ioi_planted
    clean, corrupt, pos, _ = p.batch(8, seed=3)
    corr = em.outputs(corrupt)
    E = len(em.graph.edges)
    with torch.no_grad():
        both = em.run(clean, torch.stack([torch.ones(E), torch.zeros(E)]), corr, pos)
        assert torch.allclose(both[0], em.run(clean, pos=pos)[0], atol=1e-5)
        assert torch.allclose(both[1], em.run(corrupt, pos=pos)[0], atol=1e-5)


def test_removing_one_edge_matches_a_manual_patch(ioi_planted):
    """Removing (L2H0, logits) = the logits' input with L2H0's clean output swapped for its corrupted one."""
    p, em = ioi_planted
    clean, corrupt, pos, _ = p.batch(8, seed=4)
    corr = em.outputs(corrupt)
    keep = em.graph.mask([e for e in em.graph.edges if e != ("L2H0", "logits")]).float()[None]
    with torch.no_grad():
        got = em.run(clean, keep, corr, pos)[0]
        outs = em.outputs(clean)
        i = em.graph.index["L2H0"]
        x = outs.sum(0) - outs[i] + corr[i]
        want = x[torch.arange(8), pos] @ p.weights.W_U
    assert torch.allclose(got, want, atol=1e-4)


def test_start_layer_resume_is_exact(ioi_planted):
    p, em = ioi_planted
    clean, corrupt, pos, _ = p.batch(8, seed=5)
    corr = em.outputs(corrupt)
    g = em.graph
    keep = torch.ones(3, len(g.edges))
    for k, e in enumerate(g.incoming("L2H1")[:3]):
        keep[k, e] = 0
    with torch.no_grad():
        _, outs = em.run(clean, pos=pos, return_outputs=True)
        full = em.run(clean, keep, corr, pos)
        resumed = em.run(clean, keep, corr, pos, start_layer=2, cached=outs)
    assert torch.allclose(full, resumed, atol=1e-5)


def test_eap_is_the_linearisation_of_edge_patching(induction):
    """On the toy induction model EAP ranks the edges as exact edge patching does, for the unsaturated edges."""
    p, em = induction
    clean, corrupt, pos, metric = p.batch(16, seed=1)
    corr = em.outputs(corrupt)
    exact = M.edge_patching(em, clean, corr, metric, pos, threshold=0.5)
    approx = M.eap(em, clean, corrupt, metric, pos, threshold=0.5)
    # the direct edges into the logits are linear: EAP is exact there
    into_logits = em.graph.incoming("logits")
    assert torch.allclose(exact.scores[into_logits], approx.scores[into_logits], atol=1e-3)
    assert scoring.spearman(exact.scores, approx.scores) > 0.5


@pytest.mark.parametrize("build", [planted.induction_model, planted.ioi_model])
def test_patching_methods_recover_the_planted_circuit(build):
    p = build()
    em = EdgeModel(p.weights)
    clean, corrupt, pos, metric = p.batch(32, seed=2)
    truth = em.graph.mask(p.truth)
    with torch.no_grad():
        gap = (metric(em.run(clean, pos=pos)) - metric(em.run(corrupt, pos=pos))).item()
    assert gap > 3, "the planted circuit solves the task and the corruption removes it"
    corr = em.outputs(corrupt)
    found = M.acdc(em, clean, corr, metric, pos, threshold=0.05 * gap)
    assert scoring.precision_recall(found.keep, truth) == (1.0, 1.0)


def test_scoring():
    truth = torch.tensor([True, True, False, False, False])
    assert scoring.auroc(torch.tensor([5.0, 4, 3, 2, 1]), truth) == 1.0
    assert scoring.auroc(torch.tensor([1.0, 2, 3, 4, 5]), truth) == 0.0
    assert scoring.auroc(torch.ones(5), truth) == 0.5
    assert scoring.precision_recall(torch.tensor([True, False, True, False, False]), truth) == (0.5, 0.5)
    pts = scoring.roc_points([torch.tensor([True, True, False, False, False])], truth)
    assert scoring.auroc_from_points(pts) == 1.0
    assert scoring.spearman(torch.arange(5.0), torch.arange(5.0) ** 2) == pytest.approx(1.0)
    assert scoring.topk_overlap(torch.arange(5.0), torch.arange(5.0), 2) == 1.0
    with pytest.raises(ValueError):
        scoring.auroc(torch.ones(3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError):
        scoring.auroc(torch.ones(3), torch.zeros(4, dtype=torch.bool))


def test_bad_inputs(induction):
    p, em = induction
    clean, corrupt, pos, metric = p.batch(4)
    with pytest.raises(ValueError, match="keep must be"):
        em.run(clean, torch.ones(1, 3))
    with pytest.raises(ValueError, match="corrupted node outputs"):
        em.run(clean, torch.zeros(1, len(em.graph.edges)))
    with pytest.raises(ValueError, match="steps"):
        M.eap(em, clean, corrupt, metric, pos, 0.1, steps=0)


def test_from_bridge_matches_the_bridge():
    from helpers import load_model, patching, tasks
    from helpers.loading import ORGANISM_DIR
    if not (ORGANISM_DIR / "config.json").exists():
        pytest.skip("organism not available")
    model = load_model("organism", device="cpu", verbose=False)
    em = EdgeModel.from_bridge(model)
    enc = tasks.make("ioi", 8, "test", seed=0, templates=[tasks.ioi.HELDOUT_TEMPLATES[0]]).encode(model)
    with torch.no_grad():
        ours = em.run(enc.tokens, pos=enc.end)[0]
    assert torch.allclose(ours, patching.logits_at(model, enc.tokens, enc.end), atol=1e-4)


def test_interchange_sources_swap_the_right_names():
    from helpers import tasks
    from helpers.circuits import abstraction
    batch = tasks.make("ioi", 4, "test", seed=0, templates=[tasks.ioi.HELDOUT_TEMPLATES[0]])
    src = abstraction.interchange_sources(batch)
    def words(t: str) -> list[str]:
        return [w.strip(",.") for w in t.split()]

    for text, i_text, r_text, meta in zip(batch.texts, src["I"].texts, src["R"].texts, batch.meta):
        io, s = meta["IO"], meta["S"]

        def names(t: str, pair=(io, s)) -> list[str]:
            return [w for w in words(t) if w in pair]
        assert names(text)[2] == s and names(i_text)[2] == io  # I-source: the repeated name is now IO
        assert names(r_text)[2] == s and names(r_text)[:2] == names(text)[:2][::-1]  # R-source: slots swapped
        assert len(words(i_text)) == len(words(text)) == len(words(r_text))


def test_circuit_criteria_of_the_whole_model():
    """Every head kept: faithfulness 1 and incompleteness 0 (removing a head from C or from M is the same run)."""
    from helpers import circuits, load_model, patching, tasks
    from helpers.loading import ORGANISM_DIR
    if not (ORGANISM_DIR / "config.json").exists():
        pytest.skip("organism not available")
    model = load_model("organism", device="cpu", verbose=False)
    enc = tasks.make("ioi", 8, "test", seed=0, templates=[tasks.ioi.HELDOUT_TEMPLATES[0]]).encode(model)
    metric = patching.logit_diff_metric(enc.answers, enc.distractors)
    mean = patching.mean_activations(patching.cache_activations(model, enc.corrupted, circuits.z_hooks(model)))
    every = [(i, j) for i in range(model.cfg.n_layers) for j in range(model.cfg.n_heads)]
    c = circuits.circuit_criteria(model, enc.tokens, mean, every, metric, enc.end)
    assert c["faithfulness"] == pytest.approx(1.0, abs=1e-5) and c["incompleteness"] < 1e-5


def test_batched_passes_follow_free_memory(ioi_planted, monkeypatch):
    """Edge patching and ACDC size their passes from free memory (GPT-2 small took 14 GB at a fixed 16,384
    token rows, over a T4's 16 GB); an explicit ``tokens_per_pass`` wins; a small pass gives the same scores."""
    import helpers.runtime as rt

    p, em = ioi_planted
    n, d = len(em.graph.nodes), em.w.W_E.shape[-1]
    per_token = 2 * n * d * em.w.W_E.element_size()
    monkeypatch.setattr(rt, "free_memory_bytes", lambda device=None: 100 * per_token)
    assert M.pass_tokens(em) == 30  # 30% of free memory
    monkeypatch.setattr(rt, "free_memory_bytes", lambda device=None: 10**15)
    assert M.pass_tokens(em) == M.TOKENS_PER_PASS
    assert M.pass_tokens(em, 77) == 77
    with pytest.raises(ValueError, match="tokens_per_pass"):
        M.pass_tokens(em, 0)
    clean, corrupt, pos, metric = p.batch(8, seed=3)
    corr = em.outputs(corrupt)
    big = M.edge_patching(em, clean, corr, metric, pos, 0.1)
    monkeypatch.setattr(rt, "free_memory_bytes", lambda device=None: 200 * per_token)
    small = M.edge_patching(em, clean, corr, metric, pos, 0.1)
    assert small.passes > big.passes
    torch.testing.assert_close(small.scores, big.scores, atol=1e-5, rtol=1e-4)
