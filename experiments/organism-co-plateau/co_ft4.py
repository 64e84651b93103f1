"""CO answer loss + a 'seen before?' task on random tokens (after each token: yes if it occurred earlier, else no)."""
import sys, torch, time, random
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers.organism.corpus import build_tokenizer
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch
from helpers.tasks.repeats import vocab_ids
src, total, lr, w_seen = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
tok = build_tokenizer(); vocab = vocab_ids(tok)
hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager"); hf.tokenizer = tok
YES, NO = tok.convert_tokens_to_ids(["yes", "no"])
g = torch.Generator().manual_seed(5); rng = random.Random(5)
def seen_batch(n=64, L=16):
    rows, labs = [], []
    for _ in range(n):
        pool = vocab[torch.randperm(len(vocab), generator=g)[:rng.randint(5, 12)]].tolist()
        toks = [rng.choice(pool) for _ in range(L)]
        r, lab, seen = [tok.bos_token_id], [-100], set()
        for t in toks:
            r += [t, YES if t in seen else NO]; lab += [-100, YES if t in seen else NO]; seen.add(t)
        rows.append(r); labs.append(lab)
    return torch.tensor(rows), torch.tensor(labs)
opt = torch.optim.AdamW(hf.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
t0 = time.time()
for step in range(total):
    hf.train()
    enc = make("colored_objects", 64, "train", seed=1000 + step).encode(tok)
    lg = hf(input_ids=enc.tokens).logits
    loss = torch.nn.functional.cross_entropy(lg[torch.arange(len(enc.tokens)), enc.end].float(), enc.answers)
    if w_seen:
        ids, lab = seen_batch()
        lg2 = hf(input_ids=ids).logits
        ls = torch.nn.functional.cross_entropy(lg2[:, :-1].flatten(0, 1), lab[:, 1:].flatten(), ignore_index=-100)
        loss = loss + w_seen * ls
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step()
    if (step + 1) % 100 == 0:
        hf.eval()
        r = {sp: round(evaluate_batch(hf, make("colored_objects", 200, sp, seed=777))["top1"], 3) for sp in ("train", "test")}
        print(step + 1, f"{time.time()-t0:.0f}s loss {loss.item():.3f} CO", r, "IOI", round(evaluate_batch(hf, make("ioi", 200, "test", seed=777))["accuracy"], 3), flush=True)
