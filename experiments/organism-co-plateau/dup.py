import sys, json, importlib, torch
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
T = importlib.import_module("helpers.organism.train")
from helpers.organism.corpus import build_tokenizer
for src in sys.argv[1:]:
    m = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager").eval()
    tok = build_tokenizer(); m.tokenizer = tok
    sc = T.HeadProbe(tok).scores(m)
    out = {}
    for key in ("duplicate", "prev_token", "induction"):
        flat = sorted(((v, f"L{l}H{i}") for l, row in enumerate(sc[key]) for i, v in enumerate(row)), reverse=True)[:2]
        out[key] = flat
    print(src, json.dumps(out))
