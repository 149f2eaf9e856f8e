"""The temporal protocol's measures of one model's scores: per task (``all`` purchases in the
window, or ``explore``: only items new to the shopper), ranking quality and what the lists
look like. Shared by the evaluation CLI (:mod:`.evaluate`), the training's test
(``learning/training.py``) and the other protocols built on the temporal split."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .diversity import intra_list_diversity
from .metrics import (
    coverage_at_k,
    exclude_seen,
    hit_rate_at_k,
    ndcg_at_k,
    popularity_bias_at_k,
    recall_at_k,
    top_k,
)
from .temporal import HeldOut

TASKS = ("all", "explore")


def _task_matrices(held: HeldOut, task: str) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix
                                                      | None]:
    """(rows kept, truth, mask) of a task: ``all`` keeps everything and masks nothing;
    ``explore`` keeps only truth items absent from the history (any event before the cut, or a
    purchase), drops shoppers left without one and masks their history."""
    if task == "all":
        return np.arange(held.n_users), held.truth, None
    if task != "explore":
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    seen = ((held.history > 0) + (held.bought > 0)).astype(np.float32).tocsr()
    truth = (held.truth - held.truth.multiply(seen)).tocsr()
    truth.eliminate_zeros()
    rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    return rows, truth[rows], seen[rows]


def temporal_metrics(scores: np.ndarray, held: HeldOut, task: str, k: int = 20,
                     train: sp.spmatrix | None = None) -> dict[str, Any]:
    """NDCG@k, Recall@k, HitRate@k of ``scores`` (rows = ``held``'s shoppers) for ``task``.

    With ``train`` (the split's training matrix) also what the lists look like: catalogue
    ``coverage@k`` (share of the columns in at least one top-k list), ``popularity_bias@k``
    (mean popularity percentile of the listed items) and ``ild@k`` (intra-list diversity:
    mean pairwise 1 - cosine of the listed items' buyer columns in ``train``)."""
    rows, truth, mask = _task_matrices(held, task)
    s = np.array(scores[rows], dtype=np.float64)
    if mask is not None:
        exclude_seen(s, mask)
    if len(rows) == 0:
        nan = float("nan")
        return {f"ndcg@{k}": nan, f"recall@{k}": nan, f"hitrate@{k}": nan, "users": 0,
                "repeat_share": nan}
    bought = sp.csr_matrix(held.bought)[rows]
    repeat = truth.multiply(bought > 0).nnz / max(truth.nnz, 1)
    out = {f"ndcg@{k}": ndcg_at_k(s, truth, k).mean,
           f"recall@{k}": recall_at_k(s, truth, k).mean,
           f"hitrate@{k}": hit_rate_at_k(s, truth, k).mean,
           "users": len(rows), "repeat_share": float(repeat)}
    if train is not None:
        out.update({f"coverage@{k}": coverage_at_k(s, k),
                    f"popularity_bias@{k}": popularity_bias_at_k(s, train, k),
                    f"ild@{k}": intra_list_diversity(top_k(s, k), sp.csr_matrix(train).T)})
    return out
