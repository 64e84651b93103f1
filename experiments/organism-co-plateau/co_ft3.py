import sys, torch, time
torch.set_num_threads(1)
from helpers import load_model
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch
from transformers import GPT2LMHeadModel
class Masked(torch.nn.Module):
    def __init__(s, m, hm):
        super().__init__(); s.m, s.hm, s.tokenizer = m, hm, m.tokenizer
    def forward(s, input_ids=None, **kw):
        return s.m(input_ids=input_ids, **kw)

src, total, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]); NI = int(sys.argv[4]) if len(sys.argv) > 4 else 3
m = load_model(src)
hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager")
tok = m.tokenizer
hf.tokenizer = tok
HM = torch.ones(4, 8)
for hs in sys.argv[5].split(','):
    l, h = hs[1:].split('H'); HM[int(l), int(h)] = 0
def _mk(idx):
    def pre(mod, args):
        x = args[0].clone(); x[..., idx] = 0; return (x,)
    return pre
for l in range(4):
    idx = [h * 16 + d for h in range(8) if HM[l, h] == 0 for d in range(16)]
    if idx:
        hf.transformer.h[l].attn.c_proj.register_forward_pre_hook(_mk(idx))
print('masked', sys.argv[5])
opt = torch.optim.AdamW(hf.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
t0 = time.time()
for step in range(total):
    hf.train()
    enc = make("colored_objects", 64, "train", seed=1000 + step, n_items=NI).encode(tok)
    lg = hf(input_ids=enc.tokens).logits
    loss = torch.nn.functional.cross_entropy(lg[torch.arange(len(enc.tokens)), enc.end].float(), enc.answers)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step()
    if (step + 1) % 100 == 0:
        hf.eval()
        r = {sp: round(evaluate_batch(Masked(hf, HM), make("colored_objects", 200, sp, seed=777))["top1"], 3) for sp in ("train", "test")}
        print(step + 1, f"{time.time()-t0:.0f}s loss {loss.item():.3f} CO", r, "IOI", round(evaluate_batch(hf, make("ioi", 200, "test", seed=777))["accuracy"], 3), flush=True)
