"""Zero one head at a time during a short Colored Objects-only fine-tune of a CO-ready model: which heads does the formation need?"""
import sys, torch, json
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers.organism.corpus import build_tokenizer
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch
src, steps, heads = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
tok = build_tokenizer()
test = make("colored_objects", 200, "test", seed=777)
class Wrap(torch.nn.Module):
    def __init__(s, m): super().__init__(); s.m, s.tokenizer = m, tok
    def forward(s, input_ids=None, **kw): return s.m(input_ids=input_ids, **kw)
for hs in heads:
    hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager")
    if hs != "none":
        l, h = map(int, hs[1:].split("H"))
        idx = list(range(h * 16, h * 16 + 16))
        def pre(mod, args, idx=idx):
            x = args[0].clone(); x[..., idx] = 0; return (x,)
        hf.transformer.h[l].attn.c_proj.register_forward_pre_hook(pre)
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
    for step in range(steps):
        hf.train()
        enc = make("colored_objects", 64, "train", seed=1000 + step).encode(tok)
        lg = hf(input_ids=enc.tokens).logits
        loss = torch.nn.functional.cross_entropy(lg[torch.arange(len(enc.tokens)), enc.end].float(), enc.answers)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step()
    hf.eval()
    print("SCAN", json.dumps({"head": hs, "co_test_top1": round(evaluate_batch(Wrap(hf), test)["top1"], 3)}), flush=True)
