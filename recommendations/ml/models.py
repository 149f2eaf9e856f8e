"""Recommenders behind one interface, selectable by name through :data:`REGISTRY`.

Every model (subclass of the abstract :class:`Recommender`):

* ``fit(X, validation=None, *, progress=None) -> self`` - ``X`` is the training shoppers'
  matrix as built by ``data.build_interaction_matrix`` (event weight x time decay, summed), not
  binarised: strength and recency reach the model. ``validation`` is ``(history, truth)`` of
  held-out shoppers; ``progress(epoch, n_epochs, metrics)`` is called by models with epochs.
* ``score(X) -> float32 (users, items)`` - rows of ``X`` are shoppers' histories over the
  model's item columns, built the same way (shoppers need not have been in the training data).
* ``similar_items(idx, k)``, ``item_vectors()``, ``device_``, ``training_report()``,
  ``save(path)`` / ``load(path)`` through pickle-free :mod:`.artifacts`.

:data:`DEFAULT_ALGORITHM` names the model the shop trains unless configured otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .ease import CatalogueTooLargeError, ease_weights  # noqa: F401 (re-export)
from .multvae import VAE_DEFAULTS, MultVAE  # noqa: F401 (re-export)
from .next_basket import NextBasket
from .recommender import (  # noqa: F401 (re-export: the interface is imported from here)
    INPUT_TRANSFORMS,
    ProgressFn,
    Recommender,
    Validation,
    as_indices,
    topk_excluding,
    transform_values,
)


class Popularity(Recommender):
    """Items most shoppers interacted with, for everyone: the baseline every model must beat."""

    name = "pop"

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> Popularity:
        B = transform_values(X, "binary")  # how many shoppers bought it: robust to bulk buyers
        self.n_items = B.shape[1]
        self.counts_ = np.asarray(B.sum(0), dtype=np.float32).ravel()
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = self._check_columns(X)
        return np.tile(self.counts_, (X.shape[0], 1))

    def item_vectors(self) -> np.ndarray:
        """A 1-d embedding (log popularity); cosine over it is meaningless, kept for the API."""
        self._check_fitted()
        return np.log1p(self.counts_)[:, None].astype(np.float32)

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The most popular other items (popularity has no notion of similarity)."""
        rows, scalar = as_indices(idx)
        ind, val = topk_excluding(rows, np.tile(self.counts_, (len(rows), 1)), k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.counts_ = arrays["counts"].astype(np.float32)


class ItemKNN(Recommender):
    """Cosine item-item neighbourhood (Sarwar et al. 2001; Deshpande & Karypis 2004).

    Similarities between binarised item columns, each item keeping only its ``k`` nearest
    neighbours (sparse n x k, never n x n). A user's score for candidate item i = sum of the
    similarities of i's neighbours that are in the user's history (the candidate's
    neighbourhood, Sarwar et al.; 0.3275 vs 0.2537 validation NDCG@100 on online-retail for
    the history items' neighbourhoods). ``shrink`` damps similarities built on few
    co-occurrences. k=10, shrink 0 were best on the online-retail validation users.
    """

    name = "itemknn"

    def __init__(self, k: int = 10, shrink: float = 0.0, n_factors: int = 64):
        self.k, self.shrink, self.n_factors = int(k), float(shrink), int(n_factors)

    def hyperparameters(self) -> dict[str, Any]:
        return {"k": self.k, "shrink": self.shrink, "n_factors": self.n_factors}

    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None, block: int = 1024) -> ItemKNN:
        B = transform_values(X, "binary")
        n = B.shape[1]
        self.n_items = n
        norms = np.sqrt(np.asarray(B.sum(0)).ravel()).astype(np.float32)
        Bt = B.T.tocsr()
        k = min(self.k, max(n - 1, 1))
        rows, cols, vals = [], [], []
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            co = (Bt[lo:hi] @ B).toarray()  # co-occurrence counts, block x n
            denom = np.outer(norms[lo:hi], norms) + self.shrink + 1e-9
            S = co / denom
            S[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            ind, val = topk_excluding(np.arange(lo, hi), S, k)
            rows.append(np.repeat(np.arange(lo, hi), k))
            cols.append(ind.ravel())
            vals.append(val.ravel())
        W = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n, n), dtype=np.float32)
        W.eliminate_zeros()
        self._set_neighbours(W)
        self.factors_ = self._factors(B)
        return self

    def _set_neighbours(self, N: sp.csr_matrix) -> None:
        self.N_ = N  # row i: the k neighbours of item i
        self.W_ = N.T.tocsr()  # scoring matrix: history item j -> candidate i

    def _factors(self, B: sp.csr_matrix) -> np.ndarray:
        """Item vectors for the cosine job: truncated SVD of the column-normalised matrix.

        The raw item columns have one dimension per user; an SVD keeps the geometry in
        ``n_factors`` dimensions. Deterministic (fixed start vector).
        """
        d = min(self.n_factors, min(B.shape) - 1)
        if d < 1:
            return np.zeros((B.shape[1], 1), np.float32)
        from scipy.sparse.linalg import svds

        norms = np.sqrt(np.asarray(B.sum(0)).ravel()) + 1e-9
        Bn = B @ sp.diags(1.0 / norms)
        v0 = np.ones(min(Bn.shape), dtype=np.float64) / np.sqrt(min(Bn.shape))
        _, s, vt = svds(Bn.astype(np.float64), k=d, v0=v0)
        return (vt.T * s).astype(np.float32)

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = transform_values(self._check_columns(X), "binary")
        return np.asarray((X @ self.W_).todense(), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.factors_

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The stored neighbours (exact cosine, not the SVD approximation)."""
        rows, scalar = as_indices(idx)
        ind, val = topk_excluding(rows, self.N_[rows].toarray(), k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"indptr": self.N_.indptr, "indices": self.N_.indices, "data": self.N_.data,
                "factors": self.factors_}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        n = self.n_items
        self._set_neighbours(sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n)))
        self.factors_ = arrays["factors"]


class EASE(Recommender):
    """EASE^R (Steck 2019): closed-form linear item-item model with zero diagonal.

    ``B = I - P diag(1/diag(P))`` with ``P = (X'X + lambda I)^-1``. Needs a dense n x n Gram matrix
    and its inverse (float64), i.e. about ``2 * 8 * n^2`` bytes; above ``max_memory_bytes`` it
    raises :class:`CatalogueTooLargeError` instead of exhausting the machine (4 GiB = ~16K items).
    ``l2=100`` was the best of 50/100/200/400/800 on the online-retail validation users
    (NDCG@100 0.3520; 200: 0.3495, 400: 0.3432).

    Fit and score read ``transform_values(X, input_transform)``: the Gram matrix weighs each
    shopper's items by strength and recency (see :data:`INPUT_TRANSFORMS`; the default is in
    bench/results/ml_experiments_temporal.md).
    """

    name = "ease"

    def __init__(self, l2: float = 100.0, max_memory_bytes: int = 4 * 1024**3,
                 input_transform: str = "log"):
        self.l2, self.max_memory_bytes = float(l2), int(max_memory_bytes)
        transform_values(sp.csr_matrix((1, 1)), input_transform)  # validates the name
        self.input_transform = input_transform

    def hyperparameters(self) -> dict[str, Any]:
        return {"l2": self.l2, "max_memory_bytes": self.max_memory_bytes,
                "input_transform": self.input_transform}

    @classmethod
    def _upgrade_hyperparameters(cls, hp: dict[str, Any]) -> dict[str, Any]:
        return {"input_transform": "binary", **hp}  # artifacts before the transform: binary

    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> EASE:
        B = transform_values(X, self.input_transform)
        self.B_ = ease_weights(B, self.l2, self.max_memory_bytes)
        self.n_items = B.shape[1]
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = transform_values(self._check_columns(X), self.input_transform)
        return np.asarray(X @ self.B_, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """Row i of B: how item i's presence raises every other item's score (n-dim)."""
        self._check_fitted()
        return self.B_

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items whose score item ``idx`` raises most (largest B[idx, j])."""
        rows, scalar = as_indices(idx)
        ind, val = topk_excluding(rows, self.B_[rows], k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if arrays["B"].shape != (self.n_items, self.n_items):
            raise ValueError("B has the wrong shape")
        self.B_ = arrays["B"]


REGISTRY: dict[str, type[Recommender]] = {
    "vae": MultVAE,
    "ease": EASE,
    "itemknn": ItemKNN,
    "pop": Popularity,
    "next_basket": NextBasket,
}

#: The model the shop trains unless configured otherwise: the repeat-explore next-basket
#: model built on the Mult-VAE hybrid (``next_basket.py``; numbers in
#: bench/results/ml_experiments_temporal.md).
DEFAULT_ALGORITHM = "next_basket"
