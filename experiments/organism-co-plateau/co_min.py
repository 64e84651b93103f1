"""Colored Objects alone from a checkpoint, with a shorter prompt format first (curriculum test).

python co_min.py MODEL SCHEDULE OFFSET   e.g. SCHEDULE = "min:300,std:300" (format:steps, in order).
Formats: min "blue cup red pen green book . cup ?" | mid "a blue cup, ... . What color is the cup? A:"
| std the generator's grammar. Prints held-out top-1 of min and std every 50 steps.
"""
import sys, time, random, torch
torch.set_num_threads(1)
from helpers import load_model
from helpers.tasks import make
from helpers.tasks import colored_objects as co
from helpers.tasks.evaluate import evaluate_batch
from transformers import GPT2LMHeadModel

src, sched, OFF = sys.argv[1], sys.argv[2], int(sys.argv[3])
LR = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-3
BS = int(sys.argv[5]) if len(sys.argv) > 5 else 64
if src.startswith("scratch:"):  # a fresh model of the organism's shape, seeded: "scratch:SEED:TOKDIR"
    from transformers import GPT2Config
    _, sd, tdir = src.split(":")
    tok = load_model(tdir).tokenizer; torch.manual_seed(int(sd))
    hf = GPT2LMHeadModel(GPT2Config.from_pretrained(tdir))
else:
    m = load_model(src); tok = m.tokenizer
    hf = GPT2LMHeadModel.from_pretrained(src)
hf.tokenizer = tok
opt = torch.optim.AdamW(hf.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.98))


def fmt_rows(fmt, n, split, seed):
    """Token rows (unpadded) and answer ids for one format."""
    if fmt in ("std", "std0"):
        b = make("colored_objects", n, split, seed=seed)
        enc = b.encode(tok)
        rows = [r[: int(e) + 1].tolist() for r, e in zip(enc.tokens, enc.end)]
        if fmt == "std0":  # cut right after the question's object: the lookup without the move
            q = [tok(" " + mt["objects"][mt["target"]])["input_ids"][-1] for mt in b.meta]
            rows = [r[: max(i for i, t in enumerate(r) if t == qi) + 1] for r, qi in zip(rows, q)]
        return rows, enc.answers.tolist()
    rng = random.Random(seed); rows, ans = [], []
    for _ in range(n):
        cols, objs, _s = co._scene(rng, split, rng.choice((2, 3, 4)) if split == "train" else 3)
        t = rng.randrange(len(objs))
        if fmt == "min0":
            text = " ".join(f"{c} {o}" for c, o in zip(cols, objs)) + f" . {objs[t]}"
        elif fmt == "min":
            text = " ".join(f"{c} {o}" for c, o in zip(cols, objs)) + f" . {objs[t]} ?"
        else:
            text = co.items_text(cols, objs) + f". What color is the {objs[t]}? A:"
        rows.append(tok(text)["input_ids"]); ans.append(tok(" " + cols[t])["input_ids"][-1])
    return rows, ans


def fmt_batch(fmt, n, split, seed):
    fmts = fmt.split("+"); rows, ans = [], []
    for k, f in enumerate(fmts):
        r, a = fmt_rows(f, n // len(fmts), split, seed * 7 + k)
        rows += r; ans += a
    L = max(map(len, rows)); pad = tok.eos_token_id or 0
    end = torch.tensor([len(r) - 1 for r in rows])
    return torch.tensor([r + [pad] * (L - len(r)) for r in rows]), end, torch.tensor(ans)


@torch.no_grad()
def acc(fmt):
    hf.eval()
    x, e, a = fmt_batch(fmt, 200, "test", 777)
    lg = hf(input_ids=x).logits[torch.arange(len(x)), e]
    return round((lg.argmax(-1) == a).float().mean().item(), 3)


FMTS = ("min0", "min", "std0", "mid", "std")
t0, step = time.time(), 0
print("start", {f: acc(f) for f in FMTS}, flush=True)
for part in sched.split(","):
    fmt, n = part.split(":")
    for _ in range(int(n)):
        hf.train()
        x, e, a = fmt_batch(fmt, BS, "train", OFF + step)
        lg = hf(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(lg[torch.arange(len(x)), e].float(), a)
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0); opt.step()
        step += 1
        if step % 50 == 0:
            print(step, fmt, f"{time.time()-t0:.0f}s loss {loss.item():.3f}", {f: acc(f) for f in FMTS}, flush=True)
