import sys, torch, time
torch.set_num_threads(1)
from helpers import load_model
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch
from transformers import GPT2LMHeadModel
src, total, lr = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]); NI = int(sys.argv[4]) if len(sys.argv) > 4 else 3
m = load_model(src)
hf = GPT2LMHeadModel.from_pretrained(src)
tok = m.tokenizer
hf.tokenizer = tok
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
        r = {sp: round(evaluate_batch(hf, make("colored_objects", 200, sp, seed=777))["top1"], 3) for sp in ("train", "test")}
        print(step + 1, f"{time.time()-t0:.0f}s loss {loss.item():.3f} CO", r, "IOI", round(evaluate_batch(hf, make("ioi", 200, "test", seed=777))["accuracy"], 3), flush=True)
