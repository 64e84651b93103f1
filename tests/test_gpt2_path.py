"""The GPT-2 path offline: the task generators and the position logic under GPT-2's real BPE.

Uses GPT-2's tokenizer (tests/fixtures/gpt2_tokenizer) and a tiny random-weight GPT-2 with that tokenizer
(vocabulary 50257), booted through ``helpers.load_model`` as a hub model is. ``make rehearse`` runs the
chapters on the full-size shapes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from helpers import tasks

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "gpt2_tokenizer"
TEXT_TASKS = [t for t in tasks.TASKS if t != "repeats"]


def _rehearse():
    spec = importlib.util.spec_from_file_location("rehearse", ROOT / "scripts" / "rehearse.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gpt2_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(FIXTURE)


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A 2-layer GPT-2 with GPT-2's tokenizer and vocabulary, saved and booted like a hub model."""
    import shutil

    from transformers import GPT2LMHeadModel

    import helpers

    cfg = _rehearse().gpt2_config("small")
    cfg.n_layer, cfg.n_head, cfg.n_embd = 2, 4, 64
    out = tmp_path_factory.mktemp("tiny_gpt2_bpe")
    torch.manual_seed(0)
    GPT2LMHeadModel(cfg).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FIXTURE / name, out / name)
    return helpers.load_model(str(out), device="cpu", verbose=False)


def test_key_word_positions_under_bpe(gpt2_tok):
    text = "When Mary and John went to the store, John gave a drink to"
    b = tasks.PromptBatch("ioi", [text], [" Mary"], [" John"],
                          [{"IO": tasks.span_of(text, "Mary"), "S1": tasks.span_of(text, "John"),
                            "S2": tasks.span_of(text, "John", 20)}])
    enc = b.encode(gpt2_tok)
    row = enc.tokens[0].tolist()
    assert row[0] == 50256 and row[1:] == [2215, 5335, 290, 1757, 1816, 284, 262, 3650, 11, 1757, 2921, 257, 4144, 284]
    assert [row[int(enc.positions[k][0])] for k in ("IO", "S1", "S2", "END")] == [5335, 1757, 1757, 284]
    assert enc.answers.tolist() == [5335] and enc.distractors.tolist() == [1757]


def test_word_glued_to_punctuation_or_split_is_refused(gpt2_tok):
    text = "Then Mary and Zorblax went out, Zorblax gave a drink to"
    b = tasks.PromptBatch("ioi", [text], [" Mary"], [" John"], [{"S1": tasks.span_of(text, "Zorblax")}])
    with pytest.raises(ValueError, match="Zorblax"):
        b.encode(gpt2_tok)


def test_an_is_one_token(gpt2_tok):
    assert tasks.single_token_id(gpt2_tok, " an") == 281
    assert tasks.single_token_id(gpt2_tok, " a") == 257


# The generators' gaps under GPT-2's BPE, and their fix: articles' "acorn" is two GPT-2 tokens (" ac", "orn");
# an IOI prompt that *starts* with a name needs it to be one token without its space, and "Emma", "Helen",
# "Linda", "Karen" are then two. With ``tokenizer=`` the generators redraw such words (issue 13).
START = "{N1} and {N2} went to the {PLACE}. {S} gave {A_OBJECT} to"


def test_the_gaps_are_real_without_the_tokenizer_option(gpt2_tok):
    with pytest.raises(ValueError, match="acorn"):
        tasks.single_token_id(gpt2_tok, " acorn")
    for name in ("Emma", "Helen", "Linda", "Karen"):
        assert tasks.single_token_id(gpt2_tok, " " + name)        # fine with its leading space ...
        with pytest.raises(ValueError, match=name):               # ... not at the start of a prompt
            tasks.single_token_id(gpt2_tok, name)
    b = tasks.ioi.generate(40, "all", seed=0, templates=[START], order="ABBA")
    with pytest.raises(ValueError, match="not a single token"):
        b.encode(gpt2_tok)


@pytest.mark.parametrize("task", TEXT_TASKS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_generator_passes_gpt2_single_token_checks(gpt2_tok, task, split):
    """Names, colours, objects, nouns and numbers are single GPT-2 tokens where the positions need them."""
    b = tasks.make(task, 300, split=split, seed=0, tokenizer=gpt2_tok)
    enc = b.encode(gpt2_tok)
    assert enc.tokens.shape[0] == 300
    for name, p in enc.positions.items():
        assert ((p > 0) & (p < enc.lengths)).all(), name


def test_generator_pools_are_single_gpt2_tokens(gpt2_tok):
    """Every answer and distractor word of every task is one GPT-2 token with its leading space."""
    words = set()
    for task in TEXT_TASKS:
        b = tasks.make(task, 400, split="all" if task == "ioi" else "test", seed=3, tokenizer=gpt2_tok)
        words |= set(b.answers) | set(b.distractors)
    bad = []
    for w in sorted(words):
        try:
            tasks.single_token_id(gpt2_tok, w)
        except ValueError:
            bad.append(w)
    assert not bad, bad


def test_prompt_initial_names_are_redrawn_for_gpt2(gpt2_tok):
    b = tasks.ioi.generate(200, "all", seed=0, templates=[START], tokenizer=gpt2_tok)
    first = {t.split()[0] for t in b.texts}
    assert first.isdisjoint({"Emma", "Helen", "Linda", "Karen"}) and len(first) > 20
    b.encode(gpt2_tok)
    # the names themselves stay in the pool: elsewhere in a prompt (with their space) they are drawn
    assert {"Emma", "Helen", "Linda", "Karen"} <= {m["IO"] for m in b.meta} | {m["S"] for m in b.meta}
    a = tasks.make("articles", 300, "test", seed=0, tokenizer=gpt2_tok)
    assert "acorn" not in {m["noun"] for m in a.meta} | {m["example"] for m in a.meta}
    a.encode(gpt2_tok)


def test_redrawing_gives_up_with_a_clear_error(gpt2_tok):
    with pytest.raises(ValueError, match="single tokens"):
        tasks.ioi.generate(2, "all", seed=0, templates=[START], names=["Emma", "Helen", "Linda", "Karen"],
                           order="ABBA", tokenizer=gpt2_tok)


@pytest.mark.parametrize("task", TEXT_TASKS)
def test_the_tokenizer_option_leaves_the_organisms_prompts_unchanged(task):
    """The chapters' measured numbers rest on the organism's prompt sets: with the organism nothing is redrawn."""
    from transformers import AutoTokenizer

    from helpers.loading import ORGANISM_DIR

    org = AutoTokenizer.from_pretrained(ORGANISM_DIR)
    for split in ("train", "test"):
        for seed in (0, 1):
            plain = tasks.make(task, 200, split, seed)
            aware = tasks.make(task, 200, split, seed, tokenizer=org)
            assert (aware.texts, aware.corrupted, aware.answers, aware.distractors, aware.spans) == \
                   (plain.texts, plain.corrupted, plain.answers, plain.distractors, plain.spans)


def test_tiny_gpt2_runs_a_task_batch(tiny_gpt2):
    from helpers import patching as P

    b = tasks.make("ioi", 8, split="test", seed=0)
    enc = b.encode(tiny_gpt2)
    logits = P.logits_at(tiny_gpt2, enc.tokens, enc.end)
    assert logits.shape == (8, 50257)
    assert torch.allclose(logits, tiny_gpt2(enc.tokens)[torch.arange(8), enc.end], atol=1e-4)


def test_rehearsal_table_reads_the_chapters_defaults():
    """The README's table: T4 time scaled by the largest reduced count (N_TEXTS 600/60 = 10 for chapter 2)."""
    r = _rehearse()
    assert r.defaults("02_an_neuron")["N_TEXTS"] == 600
    rec = {"chapter": "02_an_neuron", "size": "large", "dtype": "float32", "params": {"N_PROMPTS": 8, "N_TEXTS": 60},
           "seconds": 1606.0, "cpu_seconds": 1598.0, "peak_rss_gb": 10.31, "findings_not_holding": [], "error": None}
    row = r.table([rec]).splitlines()[-1]
    t4 = 1598.0 * r.CPU_GFLOPS / r.T4_GFLOPS
    assert row.startswith("| 02_an_neuron | GPT-2 large | N_PROMPTS=8, N_TEXTS=60 | 1606 | 1598 | 10.3 GB |")
    assert f"{t4:.0f} s → ~{t4 * 10 / 60:.0f} min | passes |" in row
    failed = r.table([{**rec, "error": "IndexError: ..."}]).splitlines()[-1]
    assert failed.endswith("| ERROR |")
