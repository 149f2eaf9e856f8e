"""Top-K ranking metrics for strong-generalisation evaluation.

Conventions (Liang et al. 2018, so numbers are comparable with the literature):

* Recall@K = hits in the top K / min(K, |truth|) - normalising by min(K, |truth|) keeps a user
  with 300 truth items from being capped at K/300.
* NDCG@K uses binary relevance; the ideal DCG places min(K, |truth|) hits at the top.
* Users with an empty truth row get NaN in the per-user arrays and are ignored by the means.
* The caller excludes fold-in items (:func:`exclude_seen`) *before* ranking, so a model is not
  rewarded for recommending what the user already has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def exclude_seen(scores: np.ndarray, fold_in: sp.spmatrix) -> np.ndarray:
    """Set the scores of fold-in (already seen) items to -inf, in place; returns ``scores``."""
    F = sp.csr_matrix(fold_in)
    if F.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and fold_in {F.shape} differ in shape")
    rows = np.repeat(np.arange(F.shape[0]), np.diff(F.indptr))
    scores[rows, F.indices] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first (ties broken by lower index)."""
    n = scores.shape[1]
    k = min(k, n)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(
        np.arange(n), (scores.shape[0], 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _hits(scores: np.ndarray, truth: sp.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    T = sp.csr_matrix(truth)
    if T.shape != scores.shape:
        raise ValueError(f"scores {scores.shape} and truth {T.shape} differ in shape")
    idx = top_k(scores, k)
    rows = np.arange(T.shape[0])[:, None]
    hits = np.asarray((T[rows, idx] > 0).todense(), dtype=np.float64)
    n_truth = np.diff(T.indptr).astype(np.float64)
    return hits, n_truth


@dataclass(frozen=True)
class MetricResult:
    """Per-user values (NaN for users without truth) and their mean over valid users."""

    per_user: np.ndarray
    mean: float


def _result(values: np.ndarray) -> MetricResult:
    valid = ~np.isnan(values)
    return MetricResult(values, float(values[valid].mean()) if valid.any() else float("nan"))


def recall_at_k(scores: np.ndarray, truth: sp.spmatrix, k: int) -> MetricResult:
    """Recall@K = |top-K ∩ truth| / min(K, |truth|)."""
    hits, n_truth = _hits(scores, truth, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = hits.sum(1) / np.minimum(k, n_truth)
    values[n_truth == 0] = np.nan
    return _result(values)


def ndcg_at_k(scores: np.ndarray, truth: sp.spmatrix, k: int) -> MetricResult:
    """NDCG@K with binary relevance: DCG = sum_{hit at rank r (1-based)} 1/log2(r+1)."""
    hits, n_truth = _hits(scores, truth, k)
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    dcg = hits @ discounts
    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = cum[np.minimum(k, n_truth).astype(int)]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = dcg / idcg
    values[n_truth == 0] = np.nan
    return _result(values)


def hit_rate_at_k(scores: np.ndarray, truth: sp.spmatrix, k: int) -> MetricResult:
    """HitRate@K = 1 if at least one truth item is in the top K, else 0 (per user).

    The share of shoppers for whom the list "worked" at all, easier to explain to a shop than
    NDCG and insensitive to how many items the shopper went on to buy.
    """
    hits, n_truth = _hits(scores, truth, k)
    values = (hits.sum(1) > 0).astype(np.float64)
    values[n_truth == 0] = np.nan
    return _result(values)


def coverage_at_k(scores: np.ndarray, k: int, n_items: int | None = None) -> float:
    """Fraction of the catalogue (``n_items``, default all columns) in at least one top-K list."""
    n = scores.shape[1] if n_items is None else n_items
    return float(np.unique(top_k(scores, k)).size / n) if n else 0.0


def popularity_percentiles(train: sp.spmatrix) -> np.ndarray:
    """Each item's popularity percentile in ``train`` (0 = least, 1 = most popular).

    Percentiles (average rank of ties / (n - 1)) instead of raw counts make the number comparable
    across datasets of different sizes.
    """
    counts = np.asarray((sp.csr_matrix(train) > 0).sum(0)).ravel()
    order = counts.argsort(kind="stable")
    ranks = np.empty(len(counts), np.float64)
    ranks[order] = np.arange(len(counts))
    # average the ranks of tied counts
    _, inv = np.unique(counts, return_inverse=True)
    mean_rank = np.bincount(inv, weights=ranks) / np.bincount(inv)
    return mean_rank[inv] / max(len(counts) - 1, 1)


def popularity_bias_at_k(scores: np.ndarray, train: sp.spmatrix, k: int) -> float:
    """Mean popularity percentile (see :func:`popularity_percentiles`) of all top-K items.

    0.5 = recommendations as popular as a random item; close to 1 = only bestsellers.
    """
    pct = popularity_percentiles(train)
    return float(pct[top_k(scores, k)].mean())


def evaluate_scores(
    score_fn: Callable[[sp.csr_matrix], np.ndarray],
    fold_in: sp.csr_matrix,
    truth: sp.csr_matrix,
    ks_recall: tuple[int, ...] = (20, 50),
    ks_ndcg: tuple[int, ...] = (100,),
    k_coverage: int | None = 20,
    batch_users: int = 2000,
) -> dict[str, float]:
    """Score held-out users in batches (never a full users x items dense matrix) and average.

    Returns ``{"recall@20": ..., "recall@50": ..., "ndcg@100": ..., "coverage@20": ...}``.
    """
    fold_in, truth = sp.csr_matrix(fold_in), sp.csr_matrix(truth)
    per: dict[str, list[np.ndarray]] = {}
    covered: set[int] = set()
    for lo in range(0, fold_in.shape[0], batch_users):
        f, t = fold_in[lo:lo + batch_users], truth[lo:lo + batch_users]
        s = np.asarray(score_fn(f), dtype=np.float32)
        exclude_seen(s, f)
        for k in ks_recall:
            per.setdefault(f"recall@{k}", []).append(recall_at_k(s, t, k).per_user)
        for k in ks_ndcg:
            per.setdefault(f"ndcg@{k}", []).append(ndcg_at_k(s, t, k).per_user)
        if k_coverage:
            covered.update(np.unique(top_k(s, k_coverage)).tolist())
    out = {name: float(np.nanmean(np.concatenate(v))) for name, v in per.items()}
    if k_coverage:
        out[f"coverage@{k_coverage}"] = len(covered) / fold_in.shape[1]
    return out
