"""Run chapter 5 on several prompt sets and print the figures its asserts rely on (a markdown table).

    python scripts/measure_ch05.py --runs 0:0 1:1 2:2 3:3 4:4   # SEED:TEMPLATE pairs
    python scripts/measure_ch05.py --model /tmp/candidate        # another checkpoint dir

Each run executes book/05_circuit_reuse.ipynb (via nbclient) with its parameters cell overridden and
collects the measured values; the asserts' thresholds in scripts/build_ch05.py are set with margin
beyond the worst run.
"""

from __future__ import annotations

from pathlib import Path

import nbmeasure

NB = Path(__file__).resolve().parents[1] / "book" / "05_circuit_reuse.ipynb"

COLLECT = """
import json as _json
print("MEASURED" + _json.dumps({
    "co_acc": co_acc, "off_list": float(off_list), "ioi_acc": ioi_eval["accuracy"],
    "overlap": ov["of_b"], "jaccard": ov["jaccard"], "overlap2": ov2["of_b"], "jaccard2": ov2["jaccard"],
    "same_role": len(same_role), "shared": len(shared), "alpha": ALPHA,
    "top1_before": before["top-1 accuracy"], "top1_after": after["top-1 accuracy"],
    "top1_after_lo": after["top-1 CI low"], "top1_before_hi": before["top-1 CI high"],
    "full_listed": full["listed accuracy"], "full_top1": full["top-1 accuracy"],
    "answer_listed": on_answer["listed accuracy"], "object_listed": on_object["listed accuracy"],
    "listed_before": before["listed accuracy"], "max_shift": max_shift, "best_share": best_share,
    "frozen_top1": frozen_top1, "mover_share": mover_share, "gain": gain, "gain_lo": gain_lo,
    "ioi_circuit": ", ".join(f"{head_name(h)} {ioi_roles[h][0]}" for h in ioi_c.heads),
    "co_circuit": ", ".join(f"{head_name(h)} {co_roles[h][0]}" for h in co_c.heads),
    "steered": ", ".join(map(head_name, inhibitors)),
}))
"""


def main() -> None:
    keys = ["co_acc", "off_list", "ioi_acc", "overlap", "jaccard", "overlap2", "jaccard2", "alpha", "top1_before",
            "top1_after", "full_listed", "full_top1", "answer_listed", "object_listed", "max_shift", "best_share",
            "frozen_top1", "mover_share", "gain", "gain_lo", "seconds"]

    def circuits(m: dict) -> str:
        return f"{m['ioi_circuit']} | {m['co_circuit']}" if m else "IOI circuit | Colored Objects circuit"

    nbmeasure.main(NB, COLLECT, keys, circuits,
                   replace={"if IS_ORGANISM:\n    rows = []": "if MODEL.startswith('organism'):\n    rows = []"})


if __name__ == "__main__":
    main()
