"""Task generators: shapes, splits, positions, and clear errors for non-single-token answers."""

import pytest
import torch

from helpers.organism import build_tokenizer
from helpers.tasks import PromptBatch, articles, colored_objects, counting, ioi, make, single_token_id
from helpers.tasks.repeats import generate_tokens, second_copy_targets, vocab_ids


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.mark.parametrize("task", ["ioi", "colored_objects", "articles", "counting", "filler"])
def test_generators_are_deterministic_and_encode(task, tok):
    a, b = make(task, 20, seed=3), make(task, 20, seed=3)
    assert a.texts == b.texts and a.answers == b.answers and len(a) == 20
    enc = a.encode(tok)
    assert enc.tokens.shape[0] == 20 and (enc.tokens[:, 0] == tok.bos_token_id).all()
    assert (enc.tokens != tok.unk_token_id).all(), "every generated word is in the organism's vocabulary"
    assert (enc.end == enc.lengths - 1).all()


def test_ioi_positions_and_corruption(tok):
    b = ioi.generate(50, split="test", seed=1)
    enc = b.encode(tok)
    rows = torch.arange(len(b))
    assert (enc.tokens[rows, enc.positions["IO"]] == enc.answers).all()
    assert (enc.tokens[rows, enc.positions["S1"]] == enc.distractors).all()
    assert (enc.tokens[rows, enc.positions["S2"]] == enc.distractors).all()
    assert (enc.positions["S1"] < enc.positions["S2"]).all() and (enc.positions["S2"] < enc.end).all()
    diff = enc.tokens != enc.corrupted
    assert (diff.sum(1) == 1).all() and diff[rows, enc.positions["S2"]].all()  # ABC: S2 -> C only
    orders = {m["order"] for m in b.meta}
    assert orders == {"ABBA", "BABA"}
    for m in b.meta:
        assert ioi.heldout_pair(m["IO"], m["S"]) and m["IO"] in ioi.TRAIN_NAMES
    for m in ioi.generate(20, split="test_names", seed=1).meta:
        assert m["IO"] in ioi.HELDOUT_NAMES and m["S"] in ioi.TRAIN_NAMES


def test_ioi_splits_are_disjoint():
    assert not set(ioi.TRAIN_TEMPLATES) & set(ioi.HELDOUT_TEMPLATES)
    assert not set(ioi.TRAIN_NAMES) & set(ioi.HELDOUT_NAMES)
    train = ioi.generate(300, split="train", seed=0)
    assert all(m["IO"] in ioi.TRAIN_NAMES and not m["heldout_rules"] for m in train.meta)
    assert not any(ioi.heldout_pair(m["IO"], m["S"]) for m in train.meta)
    test = ioi.generate(300, split="test", seed=0)
    assert all(m["heldout_rules"] for m in test.meta)
    seen = {r.split("=")[0] for m in test.meta for r in m["heldout_rules"]}
    assert seen == set(ioi.HELDOUT_RULES), "every held-out rule occurs in the test split"
    for t in ioi.HELDOUT_TEMPLATES:  # the fixed held-out templates use a held-out rule each
        assert any(w in t for w in (" met ", " sent ", " showed ", "As soon as", "They saw", "That evening",
                                    "early in the morning")) or t.count(". ") >= 3, t
    assert not set(articles.TRAIN["fruit"]) & set(articles.HELDOUT["fruit"])
    with pytest.raises(ValueError, match="split"):
        ioi.generate(2, split="nope")


def test_ioi_grammar_varies_what_a_template_would_fix():
    b = ioi.generate(400, split="train", seed=2)
    last_name_is_s2 = []
    for text, m in zip(b.texts, b.meta):
        names = [w.strip(",.") for w in text.split() if w.strip(",.") in ioi.NAMES]
        last_name_is_s2.append(names[-1] == m["S"])
        assert names.count(m["S"]) == 2 and names.count(m["IO"]) == 1
    share = sum(last_name_is_s2) / len(last_name_is_s2)
    assert 0.4 < share < 0.9, "S2 is often, but not always, the last name before the end"
    st = {(m["structure"].join, m["structure"].opening.split(":")[0], len(m["structure"].gap_ids)) for m in b.meta}
    assert {j for j, _, _ in st} == set(ioi.JOINS) - set(ioi.HELDOUT_RULES["join"]) and {o for _, o, _ in st} == {"none", "sub", "adv", "scene"}
    with pytest.raises(ValueError, match="order"):
        ioi.generate(2, order="abba")
    one = ioi.generate(5, split="test", seed=0, rules={"join": "met"})
    assert all(" met " in t for t in one.texts)


def test_colored_objects_heldout_phrasings_never_train():
    import random
    import re

    texts = [colored_objects.training_text(random.Random(i)) for i in range(300)]
    for held in colored_objects.HELDOUT_QUESTIONS + colored_objects.HELDOUT_LISTS:
        pattern = re.escape(held).replace(r"\{surface\}", r"\w+").replace(r"\{items\}", ".*")
        pattern = pattern.replace(r"\{query\}", r"\w+")
        assert not any(re.search(pattern, t) for t in texts), held
    assert not any(t.startswith("Question:") for t in texts)
    test = colored_objects.generate(100, split="test", seed=0)
    assert all(set(m["phrasing"]) & {len(colored_objects.LISTS) - 1, len(colored_objects.QUESTIONS) - 1,
                                     len(colored_objects.FRAMES) - 1} for m in test.meta)
    for k in (2, 4):
        b = colored_objects.generate(10, split="test", seed=1, n_items=k)
        assert all(len(m["colors"]) == k for m in b.meta)
    with pytest.raises(ValueError, match="n_items"):
        colored_objects.generate(2, n_items=5)


def test_colored_objects_positions(tok):
    b = colored_objects.generate(40, split="test", seed=2)
    enc = b.encode(tok)
    rows = torch.arange(len(b))
    assert (enc.tokens[rows, enc.positions["COLOR"]] == enc.answers).all()
    assert (enc.tokens[rows, enc.positions["OBJECT"]] == enc.tokens[rows, enc.positions["QUERY"]]).all()
    assert all(set(m["objects"]) & set(colored_objects.HELDOUT_OBJECTS) for m in b.meta)
    assert (enc.tokens != enc.corrupted).sum(1).eq(1).all()


def test_articles_answers_follow_the_noun(tok):
    b = articles.generate(40, split="test", seed=0)
    for text, ans, m in zip(b.texts, b.answers, b.meta):
        assert ans == (" an" if m["noun"][0] in "aeiou" else " a")
        assert m["noun"] in text and not text.endswith(m["noun"])
    assert {a for a in b.answers} == {" a", " an"}
    enc = b.encode(tok)
    assert enc.tokens.shape == enc.corrupted.shape


def test_counting(tok):
    b = counting.generate(30, split="test", seed=0)
    for t, a, m in zip(b.texts, b.answers, b.meta):
        assert counting.heldout(m["start"], m["stop"]) and f"{m['start']}," in t
        assert int(a) == m["stop"] + 1
    assert counting.sequence(1, 3) == "1, 2, 3,"
    assert all(int(a) <= counting.MAX_NUMBER for a in counting.generate(200, seed=1).answers)


def test_repeats_cover_the_whole_vocabulary(tok):
    toks = generate_tokens(tok, 200, seq_len=10, seed=0)
    assert toks.shape == (200, 21) and (toks[:, 0] == tok.bos_token_id).all()
    assert torch.equal(toks[:, 1:11], toks[:, 11:])
    seen = set(toks[:, 1:].flatten().tolist())
    assert len(seen) > 0.9 * len(vocab_ids(tok)) and tok.bos_token_id not in seen
    _pos, tgt = second_copy_targets(toks)
    assert torch.equal(tgt, toks[:, 2:11])


def test_non_single_token_answer_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="Bartholomew"):
        single_token_id(tok, " Bartholomew")
    with pytest.raises(ValueError, match="not a single token"):
        single_token_id(tok, " Mary Mary")
    bad = PromptBatch("ioi", ["When Mary and John went out, John waved to"], [" Mary Ann"], [" John"])
    with pytest.raises(ValueError, match="Mary Ann"):
        bad.encode(tok)


def test_corrupted_length_mismatch_is_a_clear_error(tok):
    bad = PromptBatch("ioi", ["Then, Mary and John went to the store. John said goodbye to"], [" Mary"], [" John"],
                      corrupted=["Then, Mary and John went to the store. Kate and Bob said goodbye to"])
    with pytest.raises(ValueError, match="tokens"):
        bad.encode(tok)


def test_colored_objects_error_modes():
    from helpers.tasks import colored_objects as co

    b = co.generate(3, seed=0)
    m = b.meta
    preds = [" " + m[0]["colors"][m[0]["target"]], " " + m[1]["colors"][(m[1]["target"] + 1) % 3], " table"]
    modes = co.error_modes(b, preds)
    assert modes[0] == "correct" and modes[1].startswith("color of object") and modes[2] == "not a color"
    unlisted = next(c for c in co.COLORS if c not in m[0]["colors"])
    assert co.error_modes(b[:1], [unlisted]) == ["unlisted color"]
    assert set(modes) <= set(co.ERROR_MODES)
    with pytest.raises(ValueError, match="predictions"):
        co.error_modes(b, preds[:2])


def test_wilson_interval():
    from helpers.tasks.evaluate import wilson_interval

    lo, hi = wilson_interval(50, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(5, 0)


def test_colored_objects_helpers(tok):
    from helpers.tasks import colored_objects as co

    b = co.generate(6, split="test", seed=3)
    enc = b.encode(tok)
    t = co.targets(b)
    ids = co.listed_color_ids(tok, b)
    assert ids.shape == (6, 3) and torch.equal(ids[torch.arange(6), t], enc.answers)
    pos = co.color_positions(enc)
    assert torch.equal(enc.tokens.gather(1, pos), ids)
    right, wrong = co.split_by_target(pos, t)
    assert torch.equal(right, enc.positions["COLOR"]) and wrong.shape == (6, 2)
    assert not (wrong == right[:, None]).any()
    logits = torch.zeros(6, len(tok))
    logits[torch.arange(6), enc.answers] = 1.0
    assert co.listed_accuracy(logits, ids, t).all()
    logits[torch.arange(6), ids[torch.arange(6), (t + 1) % 3]] = 2.0
    assert not co.listed_accuracy(logits, ids, t).any()


def test_paired_difference_interval():
    from helpers.tasks.evaluate import paired_difference_interval

    before = torch.tensor([0] * 50 + [1] * 50, dtype=torch.bool)
    after = before.clone()
    after[:30] = True  # 30 gained, none lost
    d, lo, hi = paired_difference_interval(before, after)
    assert abs(d - 0.3) < 1e-9 and 0 < lo < d < hi
    same = paired_difference_interval(before, before)
    assert same == (0.0, 0.0, 0.0)
    swapped = before.clone()
    swapped[:20], swapped[50:70] = True, False  # 20 gained, 20 lost: no change, wide interval
    d, lo, hi = paired_difference_interval(before, swapped)
    assert d == 0.0 and lo < 0 < hi
    with pytest.raises(ValueError):
        paired_difference_interval(before, before[:3])
