"""Offline evaluation: strong-generalisation split, fit every model, one comparable table.

``python -m recommendations.ml.evaluate --dataset online-retail --models vae,ease,itemknn,pop``

No Django here: :func:`evaluate_models` is also what the shop's management command calls on its
own interaction log.

Memory columns, honestly: ``py_peak_mib`` is the tracemalloc peak of Python/numpy/scipy
allocations during fit + scoring (torch's own allocator is *not* traced); ``rss_peak_delta_mib``
is how much the process's maximum resident set grew (ru_maxrss) during the model's run - it
includes torch, but is 0 when the run stayed below an earlier high-water mark.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .data import InteractionMatrix, StrongSplit, split_strong
from .datasets import DatasetNotFound, load_dataset
from .metrics import evaluate_scores, exclude_seen, popularity_bias_at_k
from .models import REGISTRY, CatalogueTooLargeError, Recommender

DEFAULT_MODELS = ("vae", "ease", "itemknn", "pop")


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def evaluate_model(model: Recommender, split: StrongSplit, progress=None) -> dict[str, Any]:
    """Fit ``model`` on ``split.train`` (early stopping on validation) and score the test users."""
    rss0 = _maxrss_mib()
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        try:
            if progress is not None and model.name == "vae":
                model.fit(split.train, validation=split.validation, progress=progress)
            else:
                model.fit(split.train, validation=split.validation)
        except CatalogueTooLargeError as exc:
            return {"status": "refused", "reason": str(exc)}
        fit_s = time.perf_counter() - t0
        fi, tr = split.test
        t1 = time.perf_counter()
        res = evaluate_scores(model.score, fi, tr)
        score_s = time.perf_counter() - t1
        _, py_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n = min(fi.shape[0], 2000)
    scores = model.score(fi[:n])

    exclude_seen(scores, fi[:n])
    res.update({
        "status": "ok",
        "popularity_bias@20": popularity_bias_at_k(scores, split.train, 20),
        "fit_seconds": fit_s,
        "score_seconds": score_s,
        "py_peak_mib": py_peak / 2**20,
        "rss_peak_delta_mib": max(0.0, _maxrss_mib() - rss0),
    })
    if model.name == "vae":
        res["device"] = getattr(model, "device_", None)
        res["best_epoch"] = getattr(model, "best_epoch_", None)
        res["epochs_run"] = len(getattr(model, "history_", []))
        res["history"] = getattr(model, "history_", [])
        res["skip_search"] = getattr(model, "skip_search_", {})
    return res


def evaluate_models(
    X: InteractionMatrix | sp.spmatrix,
    models: Sequence[str | Recommender] = DEFAULT_MODELS,
    seed: int = 0,
    split_kwargs: dict[str, Any] | None = None,
    progress: Callable[[str, int, int, dict], None] | None = None,
) -> dict[str, Any]:
    """Split ``X`` (strong generalisation, ``seed``), fit and test each model; a JSON-able dict.

    ``models`` are REGISTRY names (default-constructed, i.e. tuned defaults) or instances.
    ``split_kwargs`` go to :func:`split_strong` (e.g. ``{"fraction": 0.1, "min_items": 5}``).
    ``progress(model_name, epoch, n_epochs, metrics)`` is forwarded to the VAE's training loop.
    Result: ``{"split": {...sizes}, "models": {name: {"recall@20", "recall@50", "ndcg@100",
    "coverage@20", "popularity_bias@20", "fit_seconds", ...} or {"status": "refused", ...}}}``.
    """
    split = split_strong(X, seed=seed, **(split_kwargs or {}))
    out: dict[str, Any] = {
        "seed": seed,
        "split": {
            "n_items": int(split.train.shape[1]),
            "train_users": int(split.train.shape[0]),
            "validation_users": int(split.validation[0].shape[0]),
            "test_users": int(split.test[0].shape[0]),
            "train_interactions": int(split.train.nnz),
        },
        "models": {},
    }
    for m in models:
        model = REGISTRY[m]() if isinstance(m, str) else m
        cb = None if progress is None else (
            lambda e, n, r, _name=model.name: progress(_name, e, n, r))
        out["models"][model.name] = evaluate_model(model, split, progress=cb)
    return out


COLUMNS = [("recall@20", "Recall@20", "{:.4f}"), ("recall@50", "Recall@50", "{:.4f}"),
           ("ndcg@100", "NDCG@100", "{:.4f}"), ("coverage@20", "Cov@20", "{:.3f}"),
           ("fit_seconds", "fit s", "{:.1f}"), ("py_peak_mib", "py peak MiB", "{:.0f}"),
           ("rss_peak_delta_mib", "RSS +MiB", "{:.0f}")]


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of ``evaluate_models`` output."""
    head = f"{'model':<10}" + "".join(f"{title:>13}" for _, title, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, r in result["models"].items():
        if r.get("status") != "ok":
            lines.append(f"{name:<10}  {r.get('status')}: {r.get('reason', '')}")
            continue
        lines.append(f"{name:<10}" + "".join(f"{fmt.format(r[key]):>13}"
                                             for key, _, fmt in COLUMNS))
    return "\n".join(lines)


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="online-retail, ml-100k, ml-latest-small, "
                   "instacart, or the path of a CSV log (.csv or .csv.gz) whose "
                   "user and item columns are recognised by name, e.g. user/customer_id/"
                   "visitorid and item/product_id/StockCode; see datasets.load_csv")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--output", type=Path, help="write the full result as JSON here")
    args = p.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in names if m not in REGISTRY]
    if bad:
        p.error(f"unknown models {bad}; choose from {sorted(REGISTRY)}")
    try:
        im = load_dataset(args.dataset)
    except DatasetNotFound as exc:
        print(str(exc))
        return 0
    result = evaluate_models(im, names, seed=args.seed)
    result["dataset"] = args.dataset
    print(f"dataset {args.dataset}: {result['split']}")
    print(format_table(result))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2, default=_jsonable))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
