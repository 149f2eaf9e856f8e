"""Scoring one shopper's history against a trained model, as serving does per request.

Pure numpy/scipy: the caller turns the shopper's events into column indices and weights;
this module builds the one-row matrix, ranks, and finds for each recommended item the
history item closest to it (the "because you viewed ..." of a carousel).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def history_row(columns: np.ndarray, values: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One shopper's history as a 1 x n_items CSR row (columns need not be sorted)."""
    order = np.argsort(columns, kind="stable")
    return sp.csr_matrix(  # built directly: no COO conversion for one row
        (np.asarray(values, np.float32)[order], np.asarray(columns, np.int64)[order],
         np.array([0, len(columns)])),
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
    vectors: np.ndarray, recommended: np.ndarray, history_columns: np.ndarray
) -> np.ndarray:
    """For each recommended column, the history column nearest to it (rows of ``vectors``
    are unit-length item vectors, so the dot product is the cosine)."""
    if not len(recommended) or not len(history_columns):
        return np.empty(0, np.int64)
    similarity = vectors[recommended] @ vectors[history_columns].T
    return np.asarray(history_columns)[np.argmax(similarity, axis=1)]
