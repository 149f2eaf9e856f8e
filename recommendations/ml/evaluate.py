"""Offline evaluation: strong-generalisation or temporal split, fit every model, compare.

``python -m recommendations.ml.evaluate --dataset online-retail --models vae,ease,itemknn,pop``
(``--protocol random``, the default: items hidden at random from unseen shoppers) or
``python -m recommendations.ml.evaluate --dataset online-retail --protocol temporal``: what do
shoppers buy in the 30 days after a cut? One JSON line per model and task (``all``: every
purchase of the window counts, nothing masked; ``explore``: only items new to the shopper,
history masked). See :mod:`recommendations.ml.temporal`.

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

from . import models as models_module
from .data import DEFAULT_HALF_LIFE_DAYS, InteractionMatrix, StrongSplit, split_strong
from .datasets import DatasetNotFound, load_dataset, load_frame
from .diversity import popularity_percentiles, rerank_popularity_scores, rerank_scores
from .metrics import (
    evaluate_scores,
    exclude_seen,
    popularity_bias_at_k,
)
from .models import REGISTRY, CatalogueTooLargeError, Recommender
from .policy import PLACEMENT_DEFAULTS, apply_exclusion
from .serving_model import served_form
from .task_metrics import TASKS, temporal_metrics
from .temporal import (
    HeldOut,
    TemporalSplit,
    buy_again_scores,
    recent_popularity_scores,
    split_temporal,
)

DEFAULT_MODELS = ("vae", "ease", "itemknn", "pop")
#: Temporal protocol: ``buy_again`` and ``pop`` (recent best sellers) are baselines computed
#: from the split (not REGISTRY models); ``served`` is what "for you" serves.
TEMPORAL_BASELINES = ("buy_again", "pop")
DEFAULT_TEMPORAL_MODELS = ("buy_again", "pop", "ease", "served")


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
            model.fit(split.train, validation=split.validation, progress=progress)
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
    res["device"] = model.device_
    res.update(model.training_report())  # history, best epoch, ... for models with epochs
    if "history" in res:
        res["epochs_run"] = len(res["history"])
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


def default_algorithm() -> str:
    """The algorithm "for you" serves (``models.DEFAULT_ALGORITHM``, ``vae`` where undefined)."""
    return getattr(models_module, "DEFAULT_ALGORITHM", "vae")


def evaluate_temporal(
    split: TemporalSplit,
    models: Sequence[str] = DEFAULT_TEMPORAL_MODELS,
    k: int = 20,
    model_params: dict[str, dict[str, Any]] | None = None,
    served_algorithm: str | None = None,
    served_policy: str | None = None,
    top_ks: Sequence[int] = (),
    diversity: Sequence[float] = (),
    popularity: Sequence[float] = (),
) -> list[dict[str, Any]]:
    """One result dict per (model, task) on ``split.test``.

    ``popularity``: popularity-penalty weights to measure on top of ``served``, as a
    placement with ``{"METHOD": "popularity", "WEIGHT": w}`` serves them (the top ``3 * k``
    re-ranked, :func:`recommendations.ml.diversity.popularity_penalty`); rows
    ``served_pop<w>``. On ``explore`` the shopper's own items are hidden *before* the
    re-ranking, as a placement that hides them does.

    ``diversity``: MMR trade-offs (lambdas) to measure on top of ``served``, as "for you"
    would serve them with ``RECOMMENDATIONS["DIVERSITY"]["for_you"] = {"METHOD": "mmr",
    "LAMBDA": lam}`` (:func:`recommendations.ml.diversity.rerank_scores`: the top ``3 * k``
    re-ranked, cosine of the served model's item vectors); one extra model row
    ``served_mmr<lam>`` per value.

    ``served_algorithm`` / ``served_policy`` say what "for you" serves (a shop's settings);
    by default the default algorithm and :data:`policy.PLACEMENT_DEFAULTS`.

    ``buy_again`` / ``pop`` are the baselines of :mod:`.temporal`; any REGISTRY name is
    ``REGISTRY[name](**model_params.get(name, {}))`` fitted on ``split.train`` with the
    validation shoppers for tuning / early stopping, scored on the test histories (raw scores,
    no exclusion); ``served`` is the default algorithm with the ``for_you`` exclusion policy
    applied: exactly what the "for you" placement would show. A model fitted once is reused.
    Each of ``top_ks`` adds rows ``<model>@top<k>``: the same fitted model as web processes
    serve it with dense item-item terms cut to k entries per row (:mod:`.serving_model`).
    """
    fitted: dict[str, tuple[Recommender, float]] = {}
    held = split.test
    out: list[dict[str, Any]] = []

    def fit(name: str) -> tuple[Recommender, float]:
        if name not in fitted:
            model = REGISTRY[name](**(model_params or {}).get(name, {}))
            t0 = time.perf_counter()
            model.fit(split.train, validation=(split.validation.history,
                                               split.validation.truth))
            fitted[name] = (model, time.perf_counter() - t0)
        return fitted[name]

    for name in models:
        info: dict[str, Any] = {}
        if name == "buy_again":
            scores = buy_again_scores(held, split.recent_popularity)
        elif name == "pop":
            scores = recent_popularity_scores(split, held.n_users)
            info["note"] = "recent best sellers (orders in the window before the cut)"
        elif name == "served" or name in REGISTRY:
            algo = (served_algorithm or default_algorithm()) if name == "served" else name
            try:
                model, fit_s = fit(algo)
            except CatalogueTooLargeError as exc:
                for task in TASKS:
                    out.append({"protocol": "temporal", "task": task, "model": name,
                                "status": "refused", "reason": str(exc)})
                continue
            info["fit_seconds"] = fit_s
            policy = served_policy or PLACEMENT_DEFAULTS["for_you"]
            if name == "served":
                info.update({"algorithm": algo, "policy": policy})
            variants = [(name, model), *((f"{name}@top{t}", served_form(model, t))
                                         for t in top_ks)]
            for label, scorer in variants:
                scores = np.asarray(scorer.score(held.history), dtype=np.float64)
                if name == "served":
                    apply_exclusion(scores, held.bought, held.history, policy)
                for task in TASKS:
                    out.append({"protocol": "temporal", "task": task, "model": label,
                                **temporal_metrics(scores, held, task, k, split.train),
                                **info})
                if label == "served":
                    out += _mmr_rows(scores, model.item_vectors(), diversity, held, split,
                                     k, info)
                    out += _popularity_rows(scores, _popularity(model, split), popularity,
                                            held, split, k, info)
            continue
        else:
            raise ValueError(f"unknown model {name!r}; choose from "
                             f"{sorted({*TEMPORAL_BASELINES, 'served', *REGISTRY})}")
        for task in TASKS:
            out.append({"protocol": "temporal", "task": task, "model": name,
                        **temporal_metrics(scores, held, task, k, split.train), **info})
    return out


def _mmr_rows(scores: np.ndarray, vectors: np.ndarray, lambdas: Sequence[float],
              held: HeldOut, split: TemporalSplit, k: int, info: dict[str, Any]
              ) -> list[dict[str, Any]]:
    """Rows ``served_mmr<lambda>``: the served scores re-ranked by MMR (as "for you" with
    ``DIVERSITY = {"for_you": {"METHOD": "mmr", "LAMBDA": lam}}``)."""
    out = []
    for lam in lambdas:
        t0 = time.perf_counter()
        reranked = rerank_scores(scores, vectors, lam, k=k, candidates=3 * k)
        extra = {**info, "diversity": {"method": "mmr", "lambda": lam},
                 "rerank_seconds": time.perf_counter() - t0}
        for task in TASKS:
            out.append({"protocol": "temporal", "task": task, "model": f"served_mmr{lam:g}",
                        **temporal_metrics(reranked, held, task, k, split.train), **extra})
    return out


def _popularity(model: Recommender, split: TemporalSplit) -> np.ndarray:
    """What serving ranks popularity by: the default model's trend (its decayed purchase
    share), else the items' buyers in training."""
    trend = getattr(model, "trend_", None)
    if trend is not None:
        return np.asarray(trend, dtype=np.float64)
    return np.asarray((sp.csr_matrix(split.train) > 0).sum(0), dtype=np.float64).ravel()


def _popularity_rows(scores: np.ndarray, popularity: np.ndarray, weights: Sequence[float],
                     held: HeldOut, split: TemporalSplit, k: int, info: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    """Rows ``served_pop<w>``: the served scores re-ranked by the popularity penalty."""
    pct = popularity_percentiles(popularity)
    seen = ((held.history > 0) + (held.bought > 0)).toarray()
    out = []
    for w in weights:
        extra = {**info, "diversity": {"method": "popularity", "weight": w}}
        for task in TASKS:
            base = scores if task == "all" else np.where(seen, -np.inf, scores)
            reranked = rerank_popularity_scores(base, pct, w, candidates=3 * k)
            out.append({"protocol": "temporal", "task": task, "model": f"served_pop{w:g}",
                        **temporal_metrics(reranked, held, task, k, split.train), **extra})
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


def _temporal_main(args: argparse.Namespace, names: list[str]) -> int:
    try:
        frame = load_frame(args.dataset)
    except DatasetNotFound as exc:
        print(str(exc))
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    split = split_temporal(frame, cut=args.cut, window_days=args.window_days,
                           test_fraction=args.test_fraction,
                           validation_fraction=args.validation_fraction, salt=args.salt,
                           half_life_days=args.half_life_days or None)
    lambdas = [float(x) for x in args.mmr.split(",") if x.strip()] if args.mmr else []
    weights = [float(x) for x in args.popularity.split(",") if x.strip()] \
        if args.popularity else []
    rows = evaluate_temporal(split, names, top_ks=args.top_k, diversity=lambdas,
                             popularity=weights)
    common = {"dataset": args.dataset, "cut": str(split.cut), "window_days": split.window_days,
              "half_life_days": args.half_life_days,
              "items": int(split.train.shape[1]), "train_users": int(split.train.shape[0])}
    for r in rows:
        print(json.dumps({**r, **common}, default=_jsonable))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"split": common, "results": rows}, indent=2,
                                          default=_jsonable))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="online-retail, ml-100k, ml-latest-small, "
                   "instacart, or the path of a CSV log (.csv or .csv.gz) whose "
                   "user and item columns are recognised by name, e.g. user/customer_id/"
                   "visitorid and item/product_id/StockCode; see datasets.load_csv")
    p.add_argument("--protocol",
                   choices=("random", "temporal", "churn", "coldstart", "newitems"),
                   default="random",
                   help="random: strong generalisation (default); temporal: purchases in the "
                   "window after a cut (needs timestamps); churn: who orders again in the "
                   "--horizon-days after a cut (recommendations.ml.churn_eval); coldstart: "
                   "new items ranked by their content (recommendations.ml.coldstart); "
                   "newitems: the temporal split with --cold-share of the items unknown to "
                   "the model, placed by content (recommendations.ml.new_items_eval)")
    p.add_argument("--cold-share", type=float, default=0.1,
                   help="coldstart, newitems: the share of items held out of training")
    p.add_argument("--no-retrained", action="store_true",
                   help="newitems: skip the reference model trained with every item")
    p.add_argument("--horizon-days", type=float, default=90.0, help="churn: the horizon")
    p.add_argument("--window-days", type=float, default=30.0)
    p.add_argument("--cut", help="temporal: cut date (default: last timestamp - window)")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--salt", default="", help="temporal: salt of the held-out shopper hash")
    p.add_argument("--half-life-days", type=float, default=DEFAULT_HALF_LIFE_DAYS,
                   help="temporal: time decay of the input, as the product trains (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default=None, help="comma-separated; random default "
                   f"{','.join(DEFAULT_MODELS)}, temporal default "
                   f"{','.join(DEFAULT_TEMPORAL_MODELS)}")
    p.add_argument("--output", type=Path, help="write the full result as JSON here")
    p.add_argument("--top-k", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                   help="temporal: also score each model as served with dense item-item "
                   "terms cut to these k per row, e.g. 64,256 (rows <model>@top<k>)")
    p.add_argument("--mmr", default="", help="temporal: comma-separated MMR lambdas to "
                   "measure on top of served (e.g. 0.9,0.8); rows served_mmr<lambda>")
    p.add_argument("--popularity", default="", help="temporal: comma-separated popularity "
                   "penalty weights to measure on top of served (e.g. 0.3,0.5); rows "
                   "served_pop<weight>")
    args = p.parse_args(argv)
    if args.protocol == "churn":
        from .churn_eval import churn_main

        return churn_main(args)
    if args.protocol == "coldstart":
        from .coldstart_eval import coldstart_main

        return coldstart_main(args)
    if args.protocol == "newitems":
        from .new_items_eval import newitems_main

        return newitems_main(args)
    temporal = args.protocol == "temporal"
    default = DEFAULT_TEMPORAL_MODELS if temporal else DEFAULT_MODELS
    names = [m.strip() for m in (args.models or ",".join(default)).split(",") if m.strip()]
    known = {*REGISTRY, *TEMPORAL_BASELINES, "served"} if temporal else set(REGISTRY)
    bad = [m for m in names if m not in known]
    if bad:
        p.error(f"unknown models {bad}; choose from {sorted(known)}")
    if temporal:
        return _temporal_main(args, names)
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
