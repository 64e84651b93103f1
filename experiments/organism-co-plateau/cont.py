import sys, importlib
T = importlib.import_module("helpers.organism.train")
src, out, seed, start, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
extra = dict(a.split("=") for a in sys.argv[6:])
extra = {k: float(v) if "." in v else int(v) for k, v in extra.items()}
log = T.train(out, seed=seed, resume_from=src, steps=start, phase2_steps=n, checkpoint_steps=(), **extra)
print(log["eval"][-1])
