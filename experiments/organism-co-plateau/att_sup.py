"""Grow a layer-0 duplicate-token head by supervising its attention (diagnostic, not a recipe), then save."""
import sys, torch
torch.set_num_threads(1)
from transformers import GPT2LMHeadModel
from helpers.organism.corpus import build_tokenizer
from helpers.tasks.repeats import vocab_ids
src, out, steps, layer, head = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tok = build_tokenizer(); vocab = vocab_ids(tok)
hf = GPT2LMHeadModel.from_pretrained(src, attn_implementation="eager")
opt = torch.optim.AdamW(hf.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98))
g = torch.Generator().manual_seed(11); L = 16
for step in range(steps):
    seqs = torch.stack([vocab[torch.randperm(len(vocab), generator=g)[:L]] for _ in range(32)])
    # shuffle the second copy so that only token identity (not position) finds the earlier copy
    perm = torch.stack([torch.randperm(L, generator=g) for _ in range(32)])
    second = torch.gather(seqs, 1, perm)
    ids = torch.cat([torch.full((32, 1), tok.bos_token_id), seqs, second], 1)
    att = hf(input_ids=ids, output_attentions=True).attentions[layer][:, head]  # [b, q, k]
    q = torch.arange(L + 1, 2 * L + 1)
    tgt = 1 + perm  # position of the earlier copy
    p = att[torch.arange(32)[:, None], q[None, :], tgt]
    loss = -(p + 1e-6).log().mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if (step + 1) % 50 == 0:
        print(step + 1, "att to earlier copy", round(p.mean().item(), 3), flush=True)
hf.save_pretrained(out); tok.save_pretrained(out)
