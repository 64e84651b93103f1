"""Fine-tune on IOI where the names are random (non-name) words, then save: does a general duplicate-token head grow?"""
import sys, torch, random, re
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers.organism.corpus import build_tokenizer, _junk_words
from helpers.tasks import ioi, make
from helpers.tasks.evaluate import evaluate_batch
src, total, out, p_rand = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
tok = build_tokenizer(); junk = _junk_words()
hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager"); hf.tokenizer = tok
opt = torch.optim.AdamW(hf.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
rng = random.Random(3)
for step in range(total):
    b = ioi.generate(64, split="train", seed=5000 + step)
    rows, ans = [], []
    for t, a, m in zip(b.texts, b.answers, b.meta):
        if rng.random() < p_rand:
            names = [m[k] for k in ("IO", "S", "C") if m.get(k)]
            sub = dict(zip(names, rng.sample(junk, len(names))))
            t = re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda x: sub[x.group(1)], t)
            a = " " + sub[a.strip()]
        rows.append([tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"]); ans.append(tok.convert_tokens_to_ids(a.strip()))
    T = max(map(len, rows)); ids = torch.zeros(len(rows), T, dtype=torch.long); end = torch.tensor([len(r) - 1 for r in rows])
    for i, r in enumerate(rows): ids[i, :len(r)] = torch.tensor(r)
    hf.train()
    lg = hf(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(lg[torch.arange(len(rows)), end], torch.tensor(ans))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step()
    if (step + 1) % 100 == 0:
        hf.eval()
        print(step + 1, f"loss {loss.item():.3f} IOI test", round(evaluate_batch(hf, make("ioi", 200, "test", seed=777))["accuracy"], 3),
              "unseen names", round(evaluate_batch(hf, ioi.generate(200, "test_names", seed=777))["accuracy"], 3), flush=True)
hf.save_pretrained(out); tok.save_pretrained(out)
