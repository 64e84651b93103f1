"""Run chapter 4 on several prompt sets and print the figures its asserts rely on (a markdown table).

    python scripts/measure_ch04.py --runs 0:0 1:1 2:2 3:3 4:4   # SEED:TEMPLATE pairs
    python scripts/measure_ch04.py --model /tmp/candidate        # another checkpoint dir

Each run executes book/04_ioi_circuit.ipynb (via nbclient) with its parameters cell overridden and
collects the measured values; the asserts' thresholds in scripts/build_ch04.py are set with margin
beyond the worst run. The executed notebook of the first run is saved to /tmp/ch04_executed.ipynb.
"""

from __future__ import annotations

from pathlib import Path

import nbmeasure

NB = Path(__file__).resolve().parents[1] / "book" / "04_ioi_circuit.ipynb"

COLLECT = """
import json as _json
_single = crit[crit.K.isin([head_name(h) for h in circuit_heads])]
_main = circuits.top_heads(direct_effect.abs(), 1)[0]
print("MEASURED" + _json.dumps({
    "accuracy": clean_eval["accuracy"], "logit_diff": clean_eval["logit_diff"], "abc_logit_diff": abc_eval["logit_diff"],
    "gap": clean_ld - abc_ld, "direct": {head_name(h): round(direct_effect[h].item(), 3) for h in direct_heads},
    "main_direct": direct_effect.abs().max().item(),
    "feeders": {f"{r.sender}>{r.receivers}.{r.input}": round(r.change, 3) for r in feeders.itertuples()},
    "main_feed": -feeders.change.min() if len(feeders) else 0.0, "main_no_mlp": abs(direct_no_mlp[_main]),
    "carriers": len(carriers), "top1_circuit": top1["F(C)"], "faith_abc": faith_abc, "top1_abc": top1["F(C_ABC)"],
    "classes": {head_name(h): c for h, (c, _) in circuit.items()},
    "faithfulness": faithfulness, "min_single_drop": _single.minimality.min(),
    "max_incompleteness_rel": crit["incompleteness / F(M)"].max(), "max_dla_rise": rise.max().item(),
    "ko_logit_diff": ko_logits, "last_name_clean": score["END→S2"][s_heads[0]].item(),
    "last_name_abc": abc_attn_s2[s_heads[0]].item(), "max_copy": score["copy"].max().item(), "max_neg_copy": score["neg. copy"].max().item(),
}))
"""


def main() -> None:
    keys = ["accuracy", "logit_diff", "abc_logit_diff", "gap", "main_direct", "main_no_mlp", "carriers",
            "faithfulness", "top1_circuit", "faith_abc", "top1_abc", "min_single_drop", "max_incompleteness_rel",
            "max_dla_rise", "last_name_clean", "last_name_abc", "max_copy", "max_neg_copy", "seconds"]

    def circuit(m: dict) -> str:
        return ", ".join(f"{h} {c}" for h, c in m["classes"].items()) if m else "circuit"

    nbmeasure.main(NB, COLLECT, keys, circuit, save_first="/tmp/ch04_executed.ipynb")


if __name__ == "__main__":
    main()
