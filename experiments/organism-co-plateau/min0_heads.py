"""Per head, on min0 prompts ("blue cup red pen green book . cup"): attention from the last token to its
earlier copy (dup) and to the token before that copy (prev-of-copy); plus a previous-token score."""
import sys, random, torch
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers import load_model
from helpers.tasks import colored_objects as co
for src in sys.argv[1:]:
    tok = load_model(src).tokenizer
    hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager").eval()
    rng = random.Random(5); rows, cp = [], []
    for _ in range(200):
        cols, objs, _ = co._scene(rng, "train", 3); t = rng.randrange(3)
        text = " ".join(f"{c} {o}" for c, o in zip(cols, objs)) + f" . {objs[t]}"
        rows.append(tok(text)["input_ids"]); cp.append(1 + 2 * t + 1)  # bos, then c o pairs
    x = torch.tensor(rows)
    with torch.no_grad():
        att = hf(input_ids=x, output_attentions=True).attentions  # L x [B,H,T,T]
    i = torch.arange(len(x)); cp = torch.tensor(cp)
    print(src)
    for L, a in enumerate(att):
        dup = a[i, :, -1, cp].mean(0); pre = a[i, :, -1, cp - 1].mean(0)
        prev = torch.stack([a[:, :, p, p - 1] for p in range(2, x.shape[1])]).mean((0, 1))
        print(f" L{L} dup", [round(v, 2) for v in dup.tolist()], "pre", [round(v, 2) for v in pre.tolist()], "prevtok", [round(v, 2) for v in prev.tolist()])
