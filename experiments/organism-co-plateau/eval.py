import sys, json, torch
torch.set_num_threads(1)
from helpers import load_model
from helpers.organism import card
m = load_model(sys.argv[1])
out = {"dir": sys.argv[1], "generators": sys.argv[2], "figures": {k: round(v, 4) for k, v in card.mean_figures(m).items()}}
df = card.generalisation(m, n=200, seed=card.PROMPT_SETS[0])
out["rows"] = {f"{r.task}|{r.structure}": round(r.accuracy, 3) for r in df.itertuples()}
print("RESULT " + json.dumps(out), flush=True)
