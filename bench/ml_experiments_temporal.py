#!/usr/bin/env python
"""Temporal next-purchase quality: default model vs buy-again, EASE, recent popularity.

    PYTHONPATH=. python bench/ml_experiments_temporal.py --dataset online-retail --half-life 30

The protocol of ``recommendations.ml.temporal`` (cut = window before the last day, 30-day
window, held-out shoppers by stable hash) through ``evaluate.evaluate_temporal``, plus the
training matrices' half-life (the CLI builds them without decay). NDCG@20 on the test shoppers:
``all`` (nothing masked) and ``explore`` (history masked, truth = items new to the shopper).
Appends one record per run to bench/results/ml_experiments_temporal.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recommendations.ml.datasets import load_frame
from recommendations.ml.evaluate import evaluate_temporal
from recommendations.ml.models import DEFAULT_ALGORITHM, REGISTRY
from recommendations.ml.temporal import split_temporal

OUT = Path(__file__).resolve().parent / "results" / "ml_experiments_temporal.json"


REPORTS: dict[str, dict] = {}


def _recording(name: str) -> None:
    """Swap REGISTRY[name] for a subclass that keeps its training_report (the evaluator
    does not return fitted models)."""
    base = REGISTRY[name]

    class Recorded(base):  # type: ignore[misc, valid-type]
        def fit(self, *a, **kw):
            out = super().fit(*a, **kw)
            rpt = self.training_report()
            rpt.pop("history", None)
            REPORTS[name] = rpt
            return out

    Recorded.name = base.name
    REGISTRY[name] = Recorded


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="online-retail")
    p.add_argument("--half-life", default="30")
    p.add_argument("--models", default=f"buy_again,pop,ease,{DEFAULT_ALGORITHM}")
    p.add_argument("--params", default="{}", help='JSON {"model": {hyper-parameters}}')
    p.add_argument("--label", default="")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    args = p.parse_args()
    hl = None if args.half_life == "None" else float(args.half_life)
    t0 = time.perf_counter()
    split = split_temporal(load_frame(args.dataset), half_life_days=hl,
                           test_fraction=args.test_fraction,
                           validation_fraction=args.validation_fraction)
    for name in ("vae", "next_basket"):
        _recording(name)
    rows = evaluate_temporal(split, args.models.split(","), model_params=json.loads(args.params))
    rec = {"dataset": args.dataset, "half_life_days": hl, "label": args.label,
           "test_fraction": args.test_fraction,
           "validation_fraction": args.validation_fraction,
           "cut": str(split.cut), "train": list(split.train.shape),
           "validation_users": int(split.validation.n_users),
           "test_users": int(split.test.n_users), "results": rows, "reports": REPORTS,
           "seconds": time.perf_counter() - t0}
    for r in rows:
        print(f"{args.dataset} hl={hl} {r['model']:<12} {r['task']:<8} "
              f"ndcg@20 {r.get('ndcg@20', float('nan')):.4f} users {r.get('users')}", flush=True)
    for name, rpt in REPORTS.items():
        print(name, rpt.get("blend"), rpt.get("best_epoch"), flush=True)
    runs = json.loads(OUT.read_text()) if OUT.exists() else []
    runs.append(rec)
    OUT.write_text(json.dumps(runs, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
