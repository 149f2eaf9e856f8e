#!/usr/bin/env python
"""Temporal next-purchase quality: default model vs buy-again, EASE, recent popularity.

    PYTHONPATH=. python bench/ml_experiments_temporal.py --dataset online-retail --half-life 30

Split: bench/ml_temporal_harness.py (throwaway stand-in for ml/temporal.py of branch ml-eval).
NDCG@20 on the test shoppers: ``all`` (nothing masked) and ``explore`` (history masked, truth =
items new to the shopper). Appends one record per run to bench/results/ml_experiments_temporal
.json (the .md is written by hand from it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ml_temporal_harness import buy_again_scores, load_frame, ndcg20, split_temporal

from recommendations.ml.models import DEFAULT_ALGORITHM, REGISTRY

OUT = Path(__file__).resolve().parent / "results" / "ml_experiments_temporal.json"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="online-retail")
    p.add_argument("--half-life", default="30")
    p.add_argument("--models", default=f"{DEFAULT_ALGORITHM},ease")
    p.add_argument("--params", default="{}", help="JSON hyper-parameters for the first model")
    p.add_argument("--label", default="")
    args = p.parse_args()
    hl = None if args.half_life == "None" else float(args.half_life)
    t0 = time.perf_counter()
    s = split_temporal(load_frame(args.dataset), half_life_days=hl)
    h, v = s.test, s.validation
    rec = {"dataset": args.dataset, "half_life_days": hl, "label": args.label,
           "train": list(s.train.shape), "validation_users": int(v.history.shape[0]),
           "test_users": int(h.history.shape[0]),
           "test_rebuy_share": float((h.history > 0).multiply(h.truth).sum() / h.truth.sum()),
           "models": {}}
    base = {"buy_again": buy_again_scores(h, s.recent_popularity),
            "recent_pop": np.tile(s.recent_popularity, (h.history.shape[0], 1))}
    for name, sc in base.items():
        rec["models"][name] = {"all": ndcg20(sc, h), "explore": ndcg20(sc, h, "explore")}
    for i, name in enumerate(args.models.split(",")):
        params = json.loads(args.params) if i == 0 else {}
        t = time.perf_counter()
        m = REGISTRY[name](**params).fit(s.train, validation=(v.history, v.truth))
        fit_s = time.perf_counter() - t
        sc = m.score(h.history)
        rpt = m.training_report()
        rpt.pop("history", None)
        rec["models"][name] = {"all": ndcg20(sc, h), "explore": ndcg20(sc, h, "explore"),
                               "fit_s": fit_s, "params": params, "report": rpt}
    rec["seconds"] = time.perf_counter() - t0
    for name, r in rec["models"].items():
        print(f"{args.dataset} hl={hl} {name:<12} all {r['all']:.4f} explore {r['explore']:.4f}"
              + (f" fit {r['fit_s']:.0f}s {r['report'].get('blend', '')}" if "fit_s" in r
                 else ""), flush=True)
    runs = json.loads(OUT.read_text()) if OUT.exists() else []
    runs.append(rec)
    OUT.write_text(json.dumps(runs, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
