"""Bad inputs give a clear error, never a silent wrong answer (issue 13), and half precision works.

Each test names the mistake a reader made and the error it must now raise (before: a silent wrong
number or an error deep inside torch).
"""

from __future__ import annotations

import shutil

import pytest
import torch

import helpers
from helpers import lens, tasks
from helpers import patching as P
from helpers.models import ORGANISM_DIR, verify_checksums


@pytest.fixture(scope="module")
def model():
    return helpers.load_model("organism", device="cpu", dtype=torch.float32, verbose=False)


@pytest.fixture(scope="module")
def ioi_enc(model):
    return tasks.make("ioi", 8, split="test", seed=0).encode(model)


# --------------------------------------------------------------------------- unknown words

def test_unknown_word_in_a_prompt_is_refused_by_name(model):
    text = "When Mary and Zorblax went to the store, Zorblax gave a drink to"
    b = tasks.PromptBatch("ioi", [text], [" Mary"], [" John"])
    with pytest.raises(ValueError, match="Zorblax"):
        b.encode(model)


def test_unknown_word_as_an_answer_is_refused(model):
    b = tasks.PromptBatch("ioi", ["When Mary and John went to the store, John gave a drink to"],
                          [" Zorblax"], [" John"])
    with pytest.raises(ValueError, match="Zorblax"):
        b.encode(model)


def test_token_lookup_refuses_unknown_words(model):
    with pytest.raises(ValueError, match="Zorblax"):
        lens.token_id(model, " Zorblax")
    assert lens.token_id(model, " Mary") == tasks.single_token_id(model, " Mary")


# --------------------------------------------------------------------------- padding

def test_padded_batch_with_default_last_position_is_refused(model):
    pool = tasks.make("ioi", 32, split="test", seed=0)
    lengths = pool.encode(model).lengths.tolist()
    short, long_ = lengths.index(min(lengths)), lengths.index(max(lengths))
    enc = pool[[short, long_]].encode(model)
    assert enc.lengths[0] < enc.lengths[1]  # right-padded
    with pytest.raises(ValueError, match="pad"):
        P.logits_at(model, enc.tokens, -1)
    metric = P.logit_diff_metric(enc.answers, enc.distractors)
    variants, _ = P.head_variants(1, model.cfg.n_heads)
    source = P.cache_activations(model, enc.tokens, ["blocks.0.attn.hook_z"])
    with pytest.raises(ValueError, match="pad"):
        P.patch_sweep(model, enc.tokens, source, variants, metric, progress=False)
    # with each prompt's own last position it works, and reads the real last token
    good = P.logits_at(model, enc.tokens, enc.end)
    full = model(enc.tokens)
    assert torch.allclose(good, full[torch.arange(2), enc.end], atol=1e-4)


# --------------------------------------------------------------------------- context length

def test_prompt_longer_than_the_context_is_refused_with_lengths(model):
    n_ctx = model.cfg.n_ctx
    text = " ".join(["Mary"] * (n_ctx + 5))
    b = tasks.PromptBatch("ioi", [text], [" Mary"], [" John"])
    with pytest.raises(ValueError, match=str(n_ctx)):
        b.encode(model)
    tokens = torch.full((1, n_ctx + 5), tasks.single_token_id(model, " Mary"))
    with pytest.raises(ValueError, match=rf"{n_ctx + 5}.*{n_ctx}"):
        P.logits_at(model, tokens, -1)
    with pytest.raises(ValueError, match=rf"{n_ctx + 5}.*{n_ctx}"):
        P.cache_activations(model, tokens, ["blocks.0.hook_resid_pre"])


# --------------------------------------------------------------------------- checksums

@pytest.fixture()
def organism_copy(tmp_path):
    out = tmp_path / "organism"
    out.mkdir()
    for p in ORGANISM_DIR.iterdir():
        if p.is_file():
            shutil.copy(p, out / p.name)
    return out


def test_empty_checksum_list_is_refused(organism_copy):
    (organism_copy / "SHA256SUMS").write_text("")
    with pytest.raises(helpers.ChecksumError, match="does not list"):
        verify_checksums(organism_copy)


def test_partial_checksum_list_is_refused(organism_copy):
    lines = [ln for ln in (organism_copy / "SHA256SUMS").read_text().splitlines() if "safetensors" not in ln]
    (organism_copy / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    data = bytearray((organism_copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # a corrupted weight the partial list would not catch
    (organism_copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(helpers.ChecksumError, match="model.safetensors"):
        verify_checksums(organism_copy)
    with pytest.raises(helpers.ChecksumError):
        helpers.load_model(str(organism_copy), device="cpu", verbose=False)


def test_malformed_checksum_line_is_a_checksum_error(organism_copy):
    with open(organism_copy / "SHA256SUMS", "a") as fh:
        fh.write("not-a-valid-line\n")
    with pytest.raises(helpers.ChecksumError, match="not-a-valid-line"):
        verify_checksums(organism_copy)


# --------------------------------------------------------------------------- shapes and ranges

def test_source_cache_of_other_positions_is_refused(model, ioi_enc):
    tokens = ioi_enc.tokens
    short = P.cache_activations(model, tokens[:, :-2], ["blocks.0.attn.hook_z"])
    variants, _ = P.head_variants(1, model.cfg.n_heads)
    metric = P.logit_diff_metric(ioi_enc.answers, ioi_enc.distractors)
    with pytest.raises(ValueError, match="position"):
        P.patch_sweep(model, ioi_enc.corrupted, short, variants, metric, pos=ioi_enc.end, progress=False)


def test_head_variants_beyond_the_model_are_refused(model, ioi_enc):
    H = model.cfg.n_heads
    source = P.cache_activations(model, ioi_enc.tokens, ["blocks.0.attn.hook_z"])
    variants, _ = P.head_variants(1, H + 2)
    metric = P.logit_diff_metric(ioi_enc.answers, ioi_enc.distractors)
    with pytest.raises(ValueError, match=f"{H}"):
        P.patch_sweep(model, ioi_enc.corrupted, source, variants, metric, pos=ioi_enc.end, progress=False)
    layers, _ = P.head_variants(model.cfg.n_layers + 1, H)
    with pytest.raises((ValueError, KeyError), match="blocks"):
        P.patch_sweep(model, ioi_enc.corrupted, source, layers[-H:], metric, pos=ioi_enc.end, progress=False)


def test_token_id_beyond_the_vocabulary_in_a_metric_is_refused(model, ioi_enc):
    V = model.cfg.d_vocab
    bad = ioi_enc.answers.clone()
    bad[0] = V + 3
    metric = P.logit_diff_metric(bad, ioi_enc.distractors)
    logits = P.logits_at(model, ioi_enc.tokens, ioi_enc.end)[None]
    with pytest.raises(ValueError, match=str(V)):
        metric(logits)
    source = P.cache_activations(model, ioi_enc.tokens, ["blocks.0.attn.hook_z"])
    variants, _ = P.head_variants(1, model.cfg.n_heads)
    with pytest.raises(ValueError, match=str(V)):
        P.patch_sweep(model, ioi_enc.corrupted, source, variants, metric, pos=ioi_enc.end, progress=False)
    with pytest.raises(ValueError, match="vocab"):
        P.answer_logit_metric(bad)(logits)


def test_empty_batches_are_refused(model):
    with pytest.raises(ValueError, match="empty"):
        tasks.PromptBatch("ioi", [], [], []).encode(model)
    empty = torch.zeros((0, 5), dtype=torch.long)
    with pytest.raises(ValueError, match="empty|no prompt"):
        P.logits_at(model, empty, -1)
    with pytest.raises(ValueError, match="empty|no prompt"):
        P.logit_diff_metric(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))


# --------------------------------------------------------------------------- devices and dtypes as strings

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_the_same_clear_error_both_ways(monkeypatch):
    with pytest.raises(RuntimeError, match="CUDA is not available") as by_arg:
        helpers.load_model("organism", device="cuda", verbose=False)
    monkeypatch.setenv("CIRCUITS_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available") as by_env:
        helpers.load_model("organism", verbose=False)
    assert str(by_arg.value) == str(by_env.value)


def test_dtype_as_a_string_equals_the_environment_variable(monkeypatch):
    by_arg = helpers.load_model("organism", device="cpu", dtype="float16", verbose=False)
    monkeypatch.setenv("CIRCUITS_DTYPE", "float16")
    by_env = helpers.load_model("organism", device="cpu", verbose=False)
    assert by_arg.W_U.dtype == by_env.W_U.dtype == torch.float16
    with pytest.raises(ValueError, match="bfloat16"):
        helpers.load_model("organism", device="cpu", dtype="float8", verbose=False)
    monkeypatch.setenv("CIRCUITS_DTYPE", "float8")
    with pytest.raises(ValueError, match="bfloat16"):
        helpers.load_model("organism", device="cpu", verbose=False)


# --------------------------------------------------------------------------- half precision

TASKS = ["ioi", "colored_objects", "articles", "counting"]


@pytest.fixture(scope="module")
def fp32_reference(model):
    out = {}
    for task in TASKS:
        enc = tasks.make(task, 48, split="test", seed=0).encode(model)
        out[task] = (enc, P.logits_at(model, enc.tokens, enc.end))
    return out


#: Logit margins past which a half-precision run must keep float32's top-1: a few times the rounding of
#: the logits measured on the organism (max |logit - float32 logit|: float16 ~0.03, bfloat16 ~0.3).
MARGIN = {torch.float16: 0.15, torch.bfloat16: 1.0}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_gives_the_same_top1_on_the_chapters_tasks(fp32_reference, dtype, monkeypatch):
    """CIRCUITS_DTYPE=float16|bfloat16 runs, and top-1 is float32's wherever float32 is not a near tie."""
    monkeypatch.setenv("CIRCUITS_DTYPE", str(dtype).replace("torch.", ""))
    half = helpers.load_model("organism", device="cpu", verbose=False)
    assert half.W_U.dtype == dtype
    for task, (enc, ref) in fp32_reference.items():
        got = P.logits_at(half, enc.tokens, enc.end).float()
        assert got.shape == ref.shape and torch.isfinite(got).all(), task
        top2 = ref.topk(2, -1).values
        clear = (top2[:, 0] - top2[:, 1]) > MARGIN[dtype]
        assert clear.any(), task
        assert torch.equal(got.argmax(-1)[clear], ref.argmax(-1)[clear]), task
        assert (got - ref).abs().max() < MARGIN[dtype], task


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision_sweeps_agree_with_float32(model, fp32_reference, dtype):
    half = helpers.load_model("organism", device="cpu", dtype=dtype, verbose=False)
    enc, _ = fp32_reference["ioi"]
    metric = P.logit_diff_metric(enc.answers, enc.distractors)
    hooks = [f"blocks.{i}.attn.hook_z" for i in range(model.cfg.n_layers)]
    variants, _ = P.head_variants(model.cfg.n_layers, model.cfg.n_heads)
    want = P.patch_sweep(model, enc.corrupted, P.cache_activations(model, enc.tokens, hooks), variants, metric,
                         pos=enc.end, progress=False)
    got = P.patch_sweep(half, enc.corrupted, P.cache_activations(half, enc.tokens, hooks), variants, metric,
                        pos=enc.end, progress=False).float()
    scale = want.abs().max()
    assert (got - want).abs().max() < 0.05 * scale + 0.05
    assert got.argmax() == want.argmax()
    stack, _ = lens.residual_stages(half, half.run_with_cache(enc.tokens)[1])
    read = lens.logit_lens(half, stack[:, torch.arange(len(enc.end)), enc.end], enc.answers)
    assert torch.isfinite(read.float()).all()


# --------------------------------------------------------------------------- generator options

@pytest.mark.parametrize("task", ["ioi", "colored_objects", "articles", "counting", "filler"])
def test_seed_none_is_refused(task):
    """A book whose promise is reproducibility: seed=None would draw different prompts every run."""
    with pytest.raises(TypeError, match="seed"):
        tasks.make(task, 4, seed=None)
    assert tasks.make(task, 4, seed=3).texts == tasks.make(task, 4, seed=3).texts


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_every_analysis_helper_runs_in_half_precision(model, fp32_reference, dtype):
    """The chapters' other helpers (lens, attribution, heads, neurons, saliency, clustering) in half precision:
    no dtype error, finite results, and the same winners as float32 where they are clear."""
    from helpers import attribution, clustering, heads, neurons, saliency

    half = helpers.load_model("organism", device="cpu", dtype=dtype, verbose=False)
    enc, _ = fp32_reference["ioi"]
    rows = torch.arange(len(enc.end))
    for m in (model, half):
        _, cache = m.run_with_cache(enc.tokens)
        stack, _ = lens.residual_stages(m, cache)
        direction = attribution.logit_diff_direction(m, enc.answers, enc.distractors)
        dla = attribution.direct_logit_attribution(m, cache, enc.end, direction).float()
        assert torch.isfinite(dla).all() and torch.isfinite(lens.logit_lens(m, stack[:, rows, enc.end]).float()).all()
        if m is model:
            dla32 = dla
    assert torch.allclose(dla.mean(-1), dla32.mean(-1), atol=0.1 * dla32.abs().max().item())
    prev = heads.previous_token_scores(half, batch=8).float()
    assert torch.isfinite(prev).all() and prev.argmax() == heads.previous_token_scores(model, batch=8).argmax()
    assert torch.isfinite(heads.induction_scores(half, batch=8).float()).all()
    cong = attribution.neuron_congruence(half, 0).float()
    assert torch.isfinite(cong).all()
    search = neurons.congruence_search(half, progress=False)
    assert len(neurons.top_token_neurons(search, half, k=3)) == 3
    texts = [t for t in tasks.make("filler", 16, seed=0).texts]
    stream, mask = neurons.encode_texts(half, texts)
    rec = neurons.record_stream(half, stream, mask, [(0, 0), (1, 3)])
    assert torch.isfinite(rec.act((0, 0)).float()).all()
    shares = saliency.grad_x_input(half, enc.tokens, enc.end, enc.answers).float()
    assert torch.isfinite(shares).all() and torch.allclose(shares.sum(-1), torch.ones(len(rows)), atol=0.05)
    acts = clustering.token_activations(half, enc.tokens, enc.end + 1, "blocks.1.hook_resid_post")
    labels, _, inertia = clustering.kmeans(acts.acts, 3)  # the chapter's call, on half-precision activations
    assert labels.shape[0] == acts.acts.shape[0] and torch.isfinite(torch.tensor(float(inertia)))
