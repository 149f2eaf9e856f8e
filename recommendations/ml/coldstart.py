"""Items the model has never seen, placed in its item space by what they are.

A new product has no interactions, so a collaborative model cannot score it. What it has is
a description: words, category, price band (:mod:`.content`). :class:`ContentMap` learns, on
the items the model knows, a linear map from those features to each item's column of the
model's item-item matrix (``B[:, j]``: how much each item in a shopper's history raises item
``j``'s score, as in EASE and the default model's linear term). Applied to a new item, the
map predicts that column, so the item is scored for a shopper like any other:
``history @ predicted_column``. The map is kernel ridge regression with a linear kernel
(scikit-learn), solved in the dual: its cost grows with the number of known items, not with
the vocabulary.

:func:`evaluate_cold_start` is the standard item cold-start protocol: 10% of the items are
held out of training entirely; test shoppers are those who bought a held-out item; each
shopper's held-out items are ranked among all held-out items, from their history of known
items. Baselines: random order and the shopper's TF-IDF profile (cosine between the mean of
their items' content vectors and each held-out item's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.kernel_ridge import KernelRidge

from .metrics import hit_rate_at_k, ndcg_at_k, recall_at_k
from .models import EASE

#: Ridge strengths tried on validation items (never on the test items).
DEFAULT_ALPHAS: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)


class ContentMap:
    """Content features -> a column of the model's item-item matrix, learnt on known items."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)

    def fit(self, features: sp.spmatrix, columns: np.ndarray) -> ContentMap:
        """``features``: (known items, d); ``columns``: (known items, m), row j = item j's
        target (its column of the item-item matrix, transposed)."""
        columns = np.asarray(columns, dtype=np.float64)
        if features.shape[0] != columns.shape[0]:
            raise ValueError(
                f"{features.shape[0]} feature rows for {columns.shape[0]} target rows")
        self.mean_ = columns.mean(axis=0)
        self.ridge_ = KernelRidge(alpha=self.alpha, kernel="linear")
        self.ridge_.fit(_with_bias(features), columns - self.mean_)
        return self

    def predict(self, features: sp.spmatrix) -> np.ndarray:
        """(items, m) float32: the predicted target rows of (new) items."""
        if not hasattr(self, "ridge_"):
            raise RuntimeError("ContentMap is not fitted")
        out = self.ridge_.predict(_with_bias(features)) + self.mean_
        return out.astype(np.float32)


def _with_bias(features: sp.spmatrix) -> sp.csr_matrix:
    """The features plus a constant column: what centring the targets leaves over (their
    mean is not a linear function of uncentred sparse features) is then learnable."""
    features = sp.csr_matrix(features, dtype=np.float64)
    return sp.hstack([features, np.ones((features.shape[0], 1))], format="csr")


def tfidf_profile_scores(history: sp.spmatrix, known_features: sp.spmatrix,
                         new_features: sp.spmatrix) -> np.ndarray:
    """The content baseline: each shopper's summed TF-IDF profile against each new item
    (cosine up to a per-shopper factor, which does not change a shopper's ranking)."""
    profile = sp.csr_matrix(history, dtype=np.float32) @ known_features
    return np.asarray((profile @ new_features.T).todense(), dtype=np.float32)


def mapped_scores(history: sp.spmatrix, predicted_columns: np.ndarray) -> np.ndarray:
    """Shoppers' scores of new items from their predicted item-item columns."""
    return np.asarray(sp.csr_matrix(history, dtype=np.float32) @ predicted_columns.T,
                      dtype=np.float32)


@dataclass(frozen=True)
class ColdSplit:
    """Item indices of the known (trained-on) and held-out (new) items."""

    known: np.ndarray
    new: np.ndarray


def split_items(n_items: int, share: float, seed: int) -> ColdSplit:
    """A seeded random ``share`` of the items held out of training entirely."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    order = np.random.default_rng(seed).permutation(n_items)
    n_new = max(1, round(n_items * share))
    return ColdSplit(np.sort(order[n_new:]), np.sort(order[:n_new]))


def _test_rows(X: sp.csr_matrix, split: ColdSplit) -> tuple[np.ndarray, sp.csr_matrix,
                                                               sp.csr_matrix]:
    """(shoppers, history over known items, truth over new items) of the shoppers who have
    both a known item and a new one."""
    known, new = X[:, split.known].tocsr(), X[:, split.new].tocsr()
    rows = np.flatnonzero((np.diff(new.indptr) > 0) & (np.diff(known.indptr) > 0))
    truth = new[rows]
    truth.data[:] = 1.0
    return rows, known[rows], truth


def _fit_map(X_known: sp.csr_matrix, features: sp.csr_matrix, alpha: float,
             l2: float) -> tuple[EASE, ContentMap]:
    model = EASE(l2=l2).fit(X_known)
    return model, ContentMap(alpha).fit(features, model.B_.T)


def choose_alpha(X: sp.csr_matrix, features: sp.csr_matrix, split: ColdSplit,
                 alphas: Sequence[float], l2: float, seed: int, k: int = 20
                 ) -> tuple[float, dict[float, float]]:
    """The ridge strength with the best NDCG@k on validation items: a further share of the
    known items held out the same way (the test items are never looked at)."""
    inner = split_items(len(split.known), len(split.new) / len(split.known), seed + 1)
    val = ColdSplit(split.known[inner.known], split.known[inner.new])
    _, history, truth = _test_rows(X, val)
    model = EASE(l2=l2).fit(X[:, val.known])
    by_alpha = {}
    for alpha in alphas:
        cmap = ContentMap(alpha).fit(features[val.known], model.B_.T)
        scores = mapped_scores(history, cmap.predict(features[val.new]))
        by_alpha[float(alpha)] = ndcg_at_k(scores, truth, k).mean
    best = max(by_alpha, key=lambda a: (by_alpha[a], -a))
    return best, by_alpha


def evaluate_cold_start(X: sp.spmatrix, features: sp.spmatrix, *, share: float = 0.1,
                        seed: int = 0, alphas: Sequence[float] = DEFAULT_ALPHAS,
                        l2: float = 100.0, k: int = 20) -> list[dict[str, Any]]:
    """One result row per method: ``random``, ``tfidf_profile``, ``content_map``.

    ``X``: shoppers x items (binary or weighted); ``features``: items x d content vectors
    (row-normalised TF-IDF from :func:`.content.tfidf`).
    """
    X = sp.csr_matrix(X, dtype=np.float32)
    features = sp.csr_matrix(features, dtype=np.float32)
    if features.shape[0] != X.shape[1]:
        raise ValueError(f"{features.shape[0]} feature rows for {X.shape[1]} items")
    split = split_items(X.shape[1], share, seed)
    alpha, by_alpha = choose_alpha(X, features, split, alphas, l2, seed, k)
    rows, history, truth = _test_rows(X, split)
    if not len(rows):
        raise ValueError("no shopper has both a known and a held-out item")
    _, cmap = _fit_map(X[:, split.known], features[split.known], alpha, l2)
    rng = np.random.default_rng(seed)
    scores = {
        "random": rng.random((len(rows), len(split.new))).astype(np.float32),
        "tfidf_profile": tfidf_profile_scores(history, features[split.known],
                                              features[split.new]),
        "content_map": mapped_scores(history, cmap.predict(features[split.new])),
    }
    common = {"protocol": "coldstart", "items": int(X.shape[1]), "new_items": len(split.new),
              "test_users": len(rows), "share": share, "seed": seed}
    out = []
    for name, S in scores.items():
        row = {**common, "model": name,
               f"recall@{k}": recall_at_k(S, truth, k).mean,
               f"ndcg@{k}": ndcg_at_k(S, truth, k).mean,
               f"hit_rate@{k}": hit_rate_at_k(S, truth, k).mean}
        if name == "content_map":
            row.update(alpha=alpha, validation_ndcg_by_alpha=by_alpha, l2=l2)
        out.append(row)
    return out
