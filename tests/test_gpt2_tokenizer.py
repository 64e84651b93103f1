"""The GPT-2 tokenizer fixture (tests/fixtures/gpt2_tokenizer) is GPT-2's: checked on published ids.

Each expected id list is copied from a public source that ran GPT-2's own tokenizer; the source is
named beside it. The fixture's provenance is in tests/fixtures/gpt2_tokenizer/PROVENANCE.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gpt2_tokenizer"

# transformers, src/transformers/models/gpt2/tokenization_gpt2.py, GPT2Tokenizer docstring
# (the example run on openai-community/gpt2).
HF_DOCSTRING = {
    "Hello world": [15496, 995],
    " Hello world": [18435, 995],
}
# huggingface/transformers.js @ 5ed4c5c0, packages/transformers/tests/models/gpt2/test_tokenization_gpt2.js,
# TEST_CONFIG["Xenova/gpt2"] (strings from tests/models/test_strings.js).
TRANSFORMERS_JS = {
    "How are you doing?": [2437, 389, 345, 1804, 30],
    "You should've done this": [1639, 815, 1053, 1760, 428],
    "0123456789 0 1 2 3 4 5 6 7 8 9 10 100 1000":
        [486, 1954, 2231, 3134, 4531, 657, 352, 362, 513, 604, 642, 718, 767, 807, 860, 838, 1802, 8576],
    "The company was founded in 2016.": [464, 1664, 373, 9393, 287, 1584, 13],
    "A\n'll !!to?'d''d of, can't.": [32, 198, 1183, 37867, 1462, 8348, 67, 7061, 67, 286, 11, 460, 470, 13],
    "def main():\n\tpass": [4299, 1388, 33529, 198, 197, 6603],
    "This\n\nis\na\ntest.": [1212, 198, 198, 271, 198, 64, 198, 9288, 13],
    "UNwant\u00e9d,running": [4944, 42949, 2634, 67, 11, 20270],
    "Hello World": [15496, 2159],
    "hello world": [31373, 995],
    "生活的真谛是": [37955, 162, 112, 119, 21410, 40367, 253, 164, 108, 249, 42468],
    "   leading space": [220, 220, 3756, 2272],
    "trailing space   ": [9535, 4386, 2272, 220, 220, 220],
    "Hi  Hello": [17250, 220, 18435],
    # " an" is 281: the token of chapter 2's "an" neuron.
    "I bought an apple for $1.00 at the store.": [40, 5839, 281, 17180, 329, 720, 16, 13, 405, 379, 262, 3650, 13],
}
# openai/tiktoken @ ba2c9881, tests/test_encoding.py, test_simple and test_simple_repeated ("gpt2").
TIKTOKEN = {
    "hello world": [31373, 995],
    "0": [15], "00": [405], "000": [830], "0000": [2388], "00000": [20483], "000000": [10535],
    "0000000": [24598], "00000000": [8269], "000000000": [10535, 830], "0000000000": [8269, 405],
    "0000000000000000": [25645], "00000000000000000": [8269, 10535, 830],
}
# TransformerLensOrg/TransformerLens @ 4cd36aae, demos/Activation_Patching_in_TL_Demo.ipynb, the printed
# "Answer token indices" of the IOI prompts (GPT-2 small's tokenizer): name tokens with their space.
TL_IOI_NAMES = {" Mary": 5335, " John": 1757, " Tom": 4186, " James": 3700, " Dan": 6035, " Sid": 15686,
                " Martin": 5780, " Amy": 14235}
# The IOI paper's example prompt (Wang et al. 2022, fig. 1). Its names are the TransformerLens ids above;
# " the" 262, " store" 3650, "," 11 and " a" 257 are in the transformers.js cases above; the whole list is
# also a test case of a public JavaScript GPT-2 tokenizer found by code search.
IOI_PROMPT = ("When Mary and John went to the store, John gave a drink to",
              [2215, 5335, 290, 1757, 1816, 284, 262, 3650, 11, 1757, 2921, 257, 4144, 284])


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(FIXTURE)


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("table", [HF_DOCSTRING, TRANSFORMERS_JS, TIKTOKEN], ids=["hf", "transformers.js", "tiktoken"])
def test_published_ids(tok, table):
    for text, want in table.items():
        assert ids(tok, text) == want, text
        assert tok.decode(want) == text


def test_ioi_names_and_prompt(tok):
    for word, want in TL_IOI_NAMES.items():
        assert ids(tok, word) == [want], word
    text, want = IOI_PROMPT
    assert ids(tok, text) == want
    assert ids(tok, " an") == [281]


def test_special_token_and_sizes(tok):
    assert len(tok) == 50257
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 50256
    assert tok.bos_token_id == tok.eos_token_id == 50256
    assert ids(tok, "hello <|endoftext|>") == [31373, 220, 50256]  # tiktoken test_simple, allowed_special
    assert tok.model_max_length == 1024


def test_every_token_is_reachable_by_the_merges(tok):
    """BPE of each vocabulary entry's own text gives that entry back (tiktoken's single-token round trip)."""
    model = tok.backend_tokenizer.model
    spec = json.loads((FIXTURE / "tokenizer.json").read_text())["model"]
    assert len(spec["merges"]) == 50000
    assert spec["merges"][:4] == [["Ġ", "t"], ["Ġ", "a"], ["h", "e"], ["i", "n"]]  # GPT-2's merges.txt
    bad = [(piece, i) for piece, i in spec["vocab"].items() if [t.id for t in model.tokenize(piece)] != [i]]
    assert not bad, bad[:5]


def test_provenance_is_recorded():
    text = (FIXTURE / "PROVENANCE.md").read_text()
    assert "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96" in text
    assert "MIT License" in (FIXTURE / "LICENSE").read_text()
