#!/usr/bin/env python
"""Temporal next-purchase quality: default model vs buy-again, EASE, recent popularity.

    PYTHONPATH=. python bench/ml_experiments_temporal.py --dataset online-retail --half-life 30
    PYTHONPATH=. python bench/ml_experiments_temporal.py --folds 5    # pooled over 5 folds
    PYTHONPATH=. python bench/ml_experiments_temporal.py --refit      # gate model vs refit

The protocol of ``recommendations.ml.temporal`` (cut = window before the last day, 30-day
window, held-out shoppers by stable hash) through ``evaluate.evaluate_temporal``, plus the
training matrices' half-life (the CLI builds them without decay). NDCG@20 on the test shoppers:
``all`` (nothing masked) and ``explore`` (history masked, truth = items new to the shopper).
Appends one record per run to bench/results/ml_experiments_temporal.json.

``--folds K``: K held-out draws (``split_temporal(fold=k)``, test fraction 1/K), so every
shopper who bought in the window is a test shopper exactly once; the goals are judged on the
pooled numbers (mean over all test shoppers), the spread is the std over folds.
``--refit``: the model the gate fitted a window earlier (events < T1 = T2 - window) vs one
refitted up to T2, both scoring the same test shoppers' histories at T2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recommendations.ml.datasets import load_frame
from recommendations.ml.evaluate import evaluate_temporal, temporal_metrics
from recommendations.ml.models import DEFAULT_ALGORITHM, REGISTRY
from recommendations.ml.policy import PLACEMENT_DEFAULTS, apply_exclusion
from recommendations.ml.temporal import TemporalSplit, split_temporal

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
            hist = rpt.pop("history", None) or [{}]
            rpt["vae_seconds"] = hist[-1].get("elapsed")
            REPORTS[name] = rpt
            return out

    Recorded.name = base.name
    REGISTRY[name] = Recorded


def pool(folds: list[list[dict]]) -> dict[str, dict[str, dict]]:
    """{task: {model: {ndcg@20 pooled over all test shoppers, fold mean, fold std, users}}}."""
    out: dict[str, dict[str, dict]] = {}
    for rows in folds:
        for r in rows:
            if "ndcg@20" not in r or not r.get("users"):
                continue
            d = out.setdefault(r["task"], {}).setdefault(
                r["model"], {"values": [], "users": [], "fit_seconds": []})
            d["values"].append(float(r["ndcg@20"]))
            d["users"].append(int(r["users"]))
            if "fit_seconds" in r:
                d["fit_seconds"].append(float(r["fit_seconds"]))
    for by_model in out.values():
        for d in by_model.values():
            v, n = np.array(d["values"]), np.array(d["users"])
            d.update({"pooled": float((v * n).sum() / n.sum()), "fold_mean": float(v.mean()),
                      "fold_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                      "total_users": int(n.sum())})
    return out


def ratios(pooled: dict[str, dict[str, dict]], folds: list[list[dict]]) -> dict[str, dict]:
    """served / buy_again (all) and served / ease (explore): pooled, and per fold."""
    out = {}
    for task, base in (("all", "buy_again"), ("explore", "ease")):
        p = pooled.get(task, {})
        if "served" not in p or base not in p:
            continue
        per = [p["served"]["values"][i] / p[base]["values"][i]
               for i in range(len(p["served"]["values"]))]
        out[f"{task}: served/{base}"] = {
            "pooled": p["served"]["pooled"] / p[base]["pooled"], "per_fold": per,
            "fold_min": min(per), "fold_max": max(per)}
    return out


def run_folds(args: argparse.Namespace, frame: pd.DataFrame, hl: float | None) -> dict:
    folds: list[list[dict]] = []
    blends = []
    for k in range(args.folds):
        split = split_temporal(frame, half_life_days=hl, test_fraction=1.0 / args.folds,
                               validation_fraction=args.validation_fraction, fold=k,
                               salt=args.salt)
        rows = evaluate_temporal(split, args.models.split(","),
                                 model_params=json.loads(args.params))
        folds.append(rows)
        blends.append({n: {"blend": r.get("blend"), "best_epoch": r.get("best_epoch"),
                           "epochs_run": r.get("epochs_run"),
                           "vae_seconds": r.get("vae_seconds"),
                           "blend_seconds": r.get("blend_search", {}).get("seconds")}
                       for n, r in REPORTS.items()})
        for r in rows:
            print(f"fold {k} {r['model']:<10} {r['task']:<8} ndcg@20 "
                  f"{r.get('ndcg@20', float('nan')):.4f} users {r.get('users')} "
                  f"fit {r.get('fit_seconds', 0):.1f}s", flush=True)
        print(f"fold {k}", blends[-1], flush=True)
    pooled = pool(folds)
    rec = {"dataset": args.dataset, "half_life_days": hl, "label": args.label,
           "folds": args.folds, "salt": args.salt,
           "validation_fraction": args.validation_fraction, "pooled": pooled,
           "ratios": ratios(pooled, folds), "blends": blends, "fold_results": folds}
    for task, by_model in pooled.items():
        for m, d in by_model.items():
            print(f"POOLED {task:<8} {m:<10} {d['pooled']:.4f} (folds {d['fold_mean']:.4f} "
                  f"+- {d['fold_std']:.4f}) users {d['total_users']}", flush=True)
    for k, v in rec["ratios"].items():
        print(f"RATIO {k}: pooled {v['pooled']:.3f}, folds {v['fold_min']:.3f}.."
              f"{v['fold_max']:.3f}", flush=True)
    return rec


def _served(model, split: TemporalSplit, columns: np.ndarray | None = None) -> np.ndarray:
    """"for you" scores of ``split.test`` by ``model``; ``columns`` = positions of the model's
    items among the split's (an item the model never saw ranks last)."""
    held = split.test
    X = held.history if columns is None else held.history[:, columns]
    s = np.asarray(model.score(X), dtype=np.float64)
    if columns is not None:
        full = np.full((held.n_users, len(split.item_ids)), -1e30)
        full[:, columns] = s
        s = full
    apply_exclusion(s, held.bought, held.history, PLACEMENT_DEFAULTS["for_you"])
    return s


def run_refit(args: argparse.Namespace, frame: pd.DataFrame, hl: float | None) -> dict:
    """(a) the gate's model, fitted on events < T1 = T2 - window, vs (b) refitted on events
    < T2; both score the test shoppers' histories at T2 (window [T2, T2 + window))."""
    t_last = pd.to_datetime(frame["timestamp"], utc=True).max()
    t2 = t_last - pd.Timedelta(days=args.window_days)
    t1 = t2 - pd.Timedelta(days=args.window_days)
    kw = {"half_life_days": hl, "window_days": args.window_days, "salt": args.salt,
          "test_fraction": args.test_fraction,
          "validation_fraction": args.validation_fraction}
    s1, s2 = split_temporal(frame, cut=t1, **kw), split_temporal(frame, cut=t2, **kw)
    cols = pd.Index(s2.item_ids).get_indexer(s1.item_ids)
    assert (cols >= 0).all(), "items known at T1 are known at T2"
    out = {"t1": str(t1), "t2": str(t2), "items_t1": len(s1.item_ids),
           "items_t2": len(s2.item_ids), "train_users_t1": int(s1.train.shape[0]),
           "train_users_t2": int(s2.train.shape[0])}
    for label, split, c in (("a_gate_model_fitted_before_T1", s1, cols),
                            ("b_refitted_before_T2", s2, None)):
        model = REGISTRY[DEFAULT_ALGORITHM]()
        t0 = time.perf_counter()
        model.fit(split.train, validation=(split.validation.history, split.validation.truth))
        scores = _served(model, s2, c)
        out[label] = {"fit_seconds": time.perf_counter() - t0,
                      "blend": model.training_report().get("blend"),
                      **{task: temporal_metrics(scores, s2.test, task) for task in
                         ("all", "explore")}}
        print(label, {t: (round(out[label][t]["ndcg@20"], 4), out[label][t]["users"])
                      for t in ("all", "explore")}, out[label]["blend"], flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="online-retail")
    p.add_argument("--half-life", default="30")
    p.add_argument("--models", default=f"buy_again,pop,ease,{DEFAULT_ALGORITHM}")
    p.add_argument("--params", default="{}", help='JSON {"model": {hyper-parameters}}')
    p.add_argument("--label", default="")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--window-days", type=float, default=30.0)
    p.add_argument("--salt", default="")
    p.add_argument("--folds", type=int, default=0, help="K > 1: pool K held-out folds")
    p.add_argument("--refit", action="store_true", help="gate model vs refitted model")
    args = p.parse_args()
    hl = None if args.half_life == "None" else float(args.half_life)
    t0 = time.perf_counter()
    frame = load_frame(args.dataset)
    for name in ("vae", "next_basket"):
        _recording(name)
    if args.folds > 1 or args.refit:
        if args.folds > 1:
            args.models = args.models.replace(DEFAULT_ALGORITHM, "served")
            rec = run_folds(args, frame, hl)
        else:
            rec = {"dataset": args.dataset, "half_life_days": hl, "label": args.label,
                   "refit": run_refit(args, frame, hl)}
        rec["seconds"] = time.perf_counter() - t0
        runs = json.loads(OUT.read_text()) if OUT.exists() else []
        runs.append(rec)
        OUT.write_text(json.dumps(runs, indent=1, default=float))
        return 0
    split = split_temporal(frame, half_life_days=hl,
                           test_fraction=args.test_fraction,
                           validation_fraction=args.validation_fraction)
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
