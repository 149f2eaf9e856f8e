"""The interface every recommender implements (the models themselves: :mod:`.models`).

Every model (subclass of the abstract :class:`Recommender`):

* ``fit(X, validation=None, *, progress=None) -> self`` - ``X`` is the training shoppers'
  matrix as built by ``data.build_interaction_matrix`` (event weight x time decay, summed), not
  binarised: strength and recency reach the model. ``validation`` is ``(history, truth)`` of
  held-out shoppers; ``progress(epoch, n_epochs, metrics)`` is called by models with epochs.
* ``score(X) -> float32 (users, items)`` - rows of ``X`` are shoppers' histories over the
  model's item columns, built the same way (shoppers need not have been in the training data).
* ``similar_items(idx, k)``, ``item_vectors()``, ``device_``, ``training_report()``,
  ``save(path)`` / ``load(path)`` through pickle-free :mod:`.artifacts`.

"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .artifacts import ArtifactError, load_artifact, save_artifact

Validation = tuple[sp.spmatrix, sp.spmatrix] | None
ProgressFn = Callable[[int, int, dict], None]

#: How a model reads the matrix's values (event weight x decay, summed per shopper and item).
#: ``"log"`` = log2(1 + x): a lone weight-1 event stays 1, repeated or strong evidence counts
#: more but sub-linearly (ten purchases are not ten times the preference); ``"binary"`` = the
#: old behaviour (presence only); ``"identity"`` = raw values.
INPUT_TRANSFORMS = ("log", "binary", "identity")


def transform_values(X: sp.spmatrix, kind: str) -> sp.csr_matrix:
    """A float32 CSR copy of ``X`` with :data:`INPUT_TRANSFORMS` ``kind`` applied to its values."""
    if kind not in INPUT_TRANSFORMS:
        raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {kind!r}")
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.data[B.data < 0] = 0.0
    B.eliminate_zeros()
    if kind == "binary":
        B.data[:] = 1.0
    elif kind == "log":
        B.data = np.log2(1.0 + B.data).astype(np.float32)
    return B


def as_indices(idx: int | np.ndarray | list) -> tuple[np.ndarray, bool]:
    arr = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    return arr, np.ndim(idx) == 0


def topk_excluding(rows: np.ndarray, S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of S excluding the row's own item ``rows[i]``."""
    S = np.array(S, dtype=np.float32, copy=True)
    S[np.arange(len(rows)), rows] = -np.inf
    k = min(k, S.shape[1] - 1)
    from .metrics import top_k

    ind = top_k(S, k)
    return ind.astype(np.int32), np.take_along_axis(S, ind, axis=1)


#: Every concrete model class by its ``name``, filled as classes are defined: what
#: ``Recommender.load`` reads a saved artifact's class from.
_CLASSES: dict[str, type[Recommender]] = {}


class Recommender(abc.ABC):
    """Abstract base: one fit/score contract, save/load plumbing and shared helpers."""

    name: ClassVar[str] = ""
    n_items: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _CLASSES[cls.name] = cls

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor keywords that rebuild this model (saved in the artifact)."""

    @abc.abstractmethod
    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> Recommender:
        """Train on ``X``; ``validation`` = (history, truth) of held-out shoppers, if any."""

    @abc.abstractmethod
    def score(self, X: sp.spmatrix) -> np.ndarray:
        """float32 (rows of X, items): higher = recommend first."""

    @abc.abstractmethod
    def item_vectors(self) -> np.ndarray:
        """(items, d) float32 vectors whose cosine is the model's item similarity."""

    @property
    def device_(self) -> str:
        """Where the model trained ("cpu" for numpy models), for reports and the admin."""
        return "cpu"

    def training_report(self) -> dict[str, Any]:
        """What training chose and saw (curve, best epoch, device, blend...); {} if nothing."""
        return {}

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Cosine neighbours in :meth:`item_vectors` space (subclasses may override)."""
        rows, scalar = as_indices(idx)
        V = self.item_vectors()
        V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        ind, val = topk_excluding(rows, V[rows] @ V.T, k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def _check_columns(self, X: sp.spmatrix) -> sp.csr_matrix:
        self._check_fitted()
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.shape[1] != self.n_items:
            raise ValueError(f"X has {X.shape[1]} item columns, model has {self.n_items}")
        return X

    # --- persistence -------------------------------------------------------------------------
    @abc.abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays (no pickle)."""

    @abc.abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        """Inverse of :meth:`_arrays` (+ :meth:`_extra`) on a freshly constructed model."""

    @classmethod
    def _upgrade_hyperparameters(cls, hp: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters of an older artifact as this version's constructor takes them."""
        return hp

    def _extra(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | os.PathLike) -> None:
        self._check_fitted()
        save_artifact(path, self.name, self.hyperparameters(), self._arrays(),
                      extra={"n_items": int(self.n_items), **self._extra()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recommender:
        header, arrays = load_artifact(path, expected_model=cls.name or None)
        klass = _CLASSES.get(header["model"]) if cls is Recommender else cls
        if klass is None:
            raise ArtifactError(f"{path}: unknown model {header['model']!r}")
        try:
            model = klass(**klass._upgrade_hyperparameters(dict(header["hyperparameters"])))
            model.n_items = int(header["extra"]["n_items"])
            model._restore(arrays, header["extra"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: inconsistent {header['model']} artifact ({exc})") from exc
        return model
