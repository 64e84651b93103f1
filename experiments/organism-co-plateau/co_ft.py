import sys, torch
torch.set_num_threads(1)
from helpers import load_model
from helpers.finetune import finetune
from helpers.tasks import make
from helpers.tasks.evaluate import evaluate_batch
m = load_model(sys.argv[1])
for steps in (150, 300, 500):
    tuned, losses = finetune(m, lambda s: make("colored_objects", 64, "train", seed=1000 + s), steps, lr=1e-3)
    r = {sp: round(evaluate_batch(tuned, make("colored_objects", 300, sp, seed=777))["top1"], 3) for sp in ("train", "test")}
    print(steps, "CO top1", r, "IOI test", round(evaluate_batch(tuned, make("ioi", 300, "test", seed=777))["accuracy"], 3), flush=True)
