"""Scoring one shopper's history against a trained model, as serving does per request.

Pure numpy/scipy, and fast for one shopper: the row is weighted exactly as the one builder
(:func:`recommendations.ml.data.build_rows`: event weight x time decay, summed per item;
a test holds the two equal) without a pandas round trip. Then it ranks, and finds for each
recommended item the history item closest to it (the "because you viewed ..." of a carousel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp


def event_row(
    columns: np.ndarray,
    events: Sequence[str],
    ages_days: np.ndarray,
    n_items: int,
    event_weights: Mapping[str, float],
    half_life_days: float | None = None,
) -> sp.csr_matrix:
    """One shopper's events (model column, event type, age in days at scoring time) as the
    model's input row: each event weighs ``event_weights[event]`` (0 for unknown types),
    times ``0.5 ** (age / half_life_days)``, summed per item; non-positive items dropped,
    and an item with an event of negative weight ("not interested") dropped whole."""
    columns = np.asarray(columns, dtype=np.int64)
    w = np.fromiter((event_weights.get(e, 0.0) for e in events), np.float64, len(columns))
    if (w < 0).any():
        w[np.isin(columns, columns[w < 0])] = 0.0
    if half_life_days is not None:
        w = w * np.power(
            0.5, np.clip(np.asarray(ages_days, np.float64), 0.0, None) / half_life_days
        )
    keep = w > 0
    cols, inverse = np.unique(columns[keep], return_inverse=True)
    values = np.bincount(inverse, weights=w[keep], minlength=len(cols))
    return history_row(cols, values.astype(np.float32), n_items)


def history_row(columns: np.ndarray, values: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One shopper's history as a 1 x n_items CSR row (columns need not be sorted)."""
    order = np.argsort(columns, kind="stable")
    return sp.csr_matrix(  # built directly: no COO conversion for one row
        (
            np.asarray(values, np.float32)[order],
            np.asarray(columns, np.int64)[order],
            np.array([0, len(columns)]),
        ),
        shape=(1, n_items),
    )


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest finite scores, best first (ties by index)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.empty(0, np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.lexsort((top, -scores[top]))]
    return top[np.isfinite(scores[top])]


def closest_history(
    vectors: np.ndarray | sp.spmatrix, recommended: np.ndarray, history_columns: np.ndarray
) -> np.ndarray:
    """For each recommended column, the history column nearest to it (rows of ``vectors``
    are unit-length item vectors, so the dot product is the cosine; a sparse matrix, as a
    served EASE's top-k rows, works too)."""
    if not len(recommended) or not len(history_columns):
        return np.empty(0, np.int64)
    similarity = vectors[recommended] @ vectors[history_columns].T
    if sp.issparse(similarity):
        similarity = similarity.toarray()
    return np.asarray(history_columns)[np.argmax(similarity, axis=1)]
