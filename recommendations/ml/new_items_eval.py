"""``evaluate --protocol newitems``: do items the model never saw reach "for you", and do they
help?

The item cold-start protocol (:mod:`.coldstart`) ranks held-out items among themselves; a
shop's question is what happens when they compete with the items the model knows. This
protocol takes the temporal split (:func:`.temporal.split_temporal`: history before a cut,
purchases in the window after it), holds a seeded share of its items out of training
entirely (as if added after the training), trains the served algorithm on the rest, places
the held-out items by their content (:mod:`.new_items`, what ``place_new_items`` does) and
ranks *all* items for the test shoppers, from their history of known items. Rows:

- ``without``: new items are never listed (a model without placements);
- ``columns``: new items scored by their predicted item-item column only (the VAE part at
  the row's mean logit: how placements worked before decoder rows);
- ``placed``: column and predicted decoder row (what "for you" serves);
- ``retrained`` (reference, ``--no-retrained`` skips it): the same algorithm trained with
  every item known, the ceiling a retrain reaches.

Each with NDCG@20 / Recall@20 on ``all`` and ``explore``, the share of listed items that are
new, the share of shoppers with a new item in their top 20, the new items' share of the
truth, and the recall of new-item purchases within the full top 20.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .coldstart import split_items
from .content import documents, tfidf
from .datasets import DatasetNotFound, load_frame, load_item_content
from .models import DEFAULT_ALGORITHM, REGISTRY
from .new_items import (
    decoder_rows,
    item_item_term,
    predict_columns,
    predict_rows,
    score_with_new,
)
from .policy import PLACEMENT_DEFAULTS, apply_exclusion
from .serving_model import served_form
from .task_metrics import temporal_metrics
from .temporal import TemporalSplit, split_temporal

K = 20


def new_item_stats(scores: np.ndarray, truth: sp.csr_matrix, new: np.ndarray,
                   k: int = K) -> dict[str, float]:
    """What the top-``k`` lists of ``scores`` make of the ``new`` columns."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    listed_new = np.isin(top, new)
    truth = sp.csr_matrix(truth)
    truth_new = truth[:, new]
    hits = sum(len(set(new[truth_new[r].indices]) & set(top[r].tolist()))
               for r in range(truth.shape[0]))
    return {f"new_share@{k}": float(listed_new.mean()),
            f"shoppers_with_new@{k}": float(listed_new.any(axis=1).mean()),
            "truth_new_share": float(truth_new.nnz / max(truth.nnz, 1)),
            f"new_item_recall@{k}": float(hits / max(truth_new.nnz, 1))}


def evaluate_new_items(split: TemporalSplit, features: sp.csr_matrix, *, share: float = 0.1,
                       seed: int = 0, algorithm: str | None = None,
                       retrained: bool = True, k: int = K,
                       model_params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per (method, task); see the module docstring. ``model_params``: the
    algorithm's hyper-parameters over its defaults."""
    algorithm = algorithm or DEFAULT_ALGORITHM
    n = len(split.item_ids)
    if features.shape[0] != n:
        raise ValueError(f"{features.shape[0]} feature rows for {n} items")
    cold = split_items(n, share, seed)
    known, new = cold.known, cold.new
    val, held = split.validation, split.test
    started = time.perf_counter()
    params = model_params or {}
    model = REGISTRY[algorithm](**params).fit(
        split.train[:, known], validation=(val.history[:, known], val.truth[:, known]))
    fit_seconds = time.perf_counter() - started
    served = served_form(model)
    history = sp.csr_matrix(held.history[:, known])
    term = item_item_term(served)
    targets = decoder_rows(served)
    cols = np.arange(len(known))
    placed = (predict_columns(term[0], cols, features[known], features[new])
              if term is not None
              else sp.csr_matrix((len(new), len(known)), dtype=np.float32))
    rows = None if targets is None else predict_rows(targets, cols, features[known],
                                                      features[new])
    policy = PLACEMENT_DEFAULTS["for_you"]

    def full(known_scores: np.ndarray, new_scores: np.ndarray | None) -> np.ndarray:
        S = np.full((held.n_users, n), -np.inf)
        S[:, known] = known_scores
        if new_scores is not None:
            S[:, new] = new_scores
        return apply_exclusion(S, held.bought, held.history, policy)

    methods: dict[str, np.ndarray] = {"without": full(served.score(history), None)}
    methods["columns"] = full(*score_with_new(served, history, placed.T.tocsr()))
    if rows is not None:
        methods["placed"] = full(*score_with_new(served, history, placed.T.tocsr(), rows))
    info = {"algorithm": algorithm, "policy": policy, "new_items": len(new),
            "items": n, "share": share, "seed": seed, "fit_seconds": round(fit_seconds, 1)}
    if retrained:
        full_model = REGISTRY[algorithm](**params).fit(split.train, validation=(val.history,
                                                                          val.truth))
        S = np.asarray(served_form(full_model).score(held.history), dtype=np.float64)
        methods["retrained"] = apply_exclusion(S, held.bought, held.history, policy)
    out = []
    for name, S in methods.items():
        stats = new_item_stats(S, held.truth, new, k)
        for task in ("all", "explore"):
            out.append({"protocol": "newitems", "method": name, "task": task,
                        **temporal_metrics(S, held, task, k),
                        **stats, **info})
    return out


def newitems_main(args: argparse.Namespace) -> int:
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
                           validation_fraction=args.validation_fraction, salt=args.salt)
    texts, categories, prices = load_item_content(args.dataset, split.item_ids)
    features = tfidf(documents(texts, categories, prices))
    rows = evaluate_new_items(split, features, share=args.cold_share, seed=args.seed,
                              retrained=not args.no_retrained)
    common = {"dataset": args.dataset, "cut": str(split.cut), "window_days": split.window_days}
    for r in rows:
        print(json.dumps({**r, **common}))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"split": common, "results": rows}, indent=2))
    return 0
