import sys, random, torch, importlib
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers.organism.corpus import build_tokenizer
from helpers.tasks.repeats import vocab_ids
tok = build_tokenizer(); vocab = vocab_ids(tok)
g = torch.Generator().manual_seed(99); rng = random.Random(99)
for src in sys.argv[1:]:
    m = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager").eval()
    ok = n = 0; att_dup = []
    for _ in range(200):
        k = rng.randint(3, 10)
        seq = vocab[torch.randperm(len(vocab), generator=g)[:2 * k]].tolist()
        j = rng.randrange(k)
        ids = torch.tensor([[tok.bos_token_id] + seq + [seq[2 * j + 1]]])
        with torch.no_grad():
            out = m(ids, output_attentions=True)
        ok += int(out.logits[0, -1].argmax() == seq[2 * j]); n += 1
        att = torch.stack(out.attentions, 0)[:, 0, :, -1, :]  # layer, head, key
        att_dup.append(att[:, :, 1 + 2 * j + 1])  # attention to the earlier copy of the query
    a = torch.stack(att_dup).mean(0)
    best = sorted(((float(a[l, h]), f"L{l}H{h}") for l in range(a.shape[0]) for h in range(a.shape[1])), reverse=True)[:3]
    print(src, "recall top1", ok / n, "query->earlier copy", [(round(v, 2), h) for v, h in best])
