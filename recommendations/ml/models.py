"""Recommenders behind one interface, selectable by name through :data:`REGISTRY`.

Every model: ``fit(X, validation=None) -> self``; ``score(X) -> float32 (users, items)`` where the
rows of ``X`` are users' histories over the model's item columns (users need not have been in the
training data - strong generalisation); ``similar_items(idx, k)``; ``item_vectors()``;
``save(path)`` / ``load(path)`` through pickle-free :mod:`.artifacts`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .artifacts import ArtifactError, load_artifact, save_artifact
from .data import binarize
from .ease import CatalogueTooLargeError, ease_memory_needed, ease_weights  # noqa: F401 (re-export)
from .similarity import topk_cosine

Validation = tuple[sp.spmatrix, sp.spmatrix] | None


def _as_idx(idx: int | np.ndarray | list) -> tuple[np.ndarray, bool]:
    arr = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    return arr, np.ndim(idx) == 0


def _topk_excluding(rows: np.ndarray, S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns of each row of S excluding the row's own item ``rows[i]``."""
    S = np.array(S, dtype=np.float32, copy=True)
    S[np.arange(len(rows)), rows] = -np.inf
    k = min(k, S.shape[1] - 1)
    from .metrics import top_k

    ind = top_k(S, k)
    return ind.astype(np.int32), np.take_along_axis(S, ind, axis=1)


class Recommender:
    """Base class: save/load plumbing and shared helpers."""

    name: ClassVar[str] = ""
    n_items: int

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, X: sp.spmatrix, validation: Validation = None) -> Recommender:
        raise NotImplementedError

    def score(self, X: sp.spmatrix) -> np.ndarray:
        raise NotImplementedError

    def item_vectors(self) -> np.ndarray:
        raise NotImplementedError

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Cosine neighbours in :meth:`item_vectors` space (subclasses may override)."""
        rows, scalar = _as_idx(idx)
        V = self.item_vectors()
        V = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        ind, val = _topk_excluding(rows, V[rows] @ V.T, k)
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
    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        raise NotImplementedError

    def _extra(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | os.PathLike) -> None:
        self._check_fitted()
        save_artifact(path, self.name, self.hyperparameters(), self._arrays(),
                      extra={"n_items": int(self.n_items), **self._extra()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recommender:
        header, arrays = load_artifact(path, expected_model=cls.name or None)
        klass = REGISTRY.get(header["model"]) if cls is Recommender else cls
        if klass is None:
            raise ArtifactError(f"{path}: unknown model {header['model']!r}")
        try:
            model = klass(**header["hyperparameters"])
            model.n_items = int(header["extra"]["n_items"])
            model._restore(arrays, header["extra"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: inconsistent {header['model']} artifact ({exc})") from exc
        return model


class Popularity(Recommender):
    """Most-purchased items for everyone: the baseline every model must beat."""

    name = "pop"

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def fit(self, X: sp.spmatrix, validation: Validation = None) -> Popularity:
        B = binarize(X)
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
        rows, scalar = _as_idx(idx)
        ind, val = _topk_excluding(rows, np.tile(self.counts_, (len(rows), 1)), k)
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

    def fit(self, X: sp.spmatrix, validation: Validation = None, block: int = 1024) -> ItemKNN:
        B = binarize(X)
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
            ind, val = _topk_excluding(np.arange(lo, hi), S, k)
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
        X = binarize(self._check_columns(X))
        return np.asarray((X @ self.W_).todense(), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.factors_

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The stored neighbours (exact cosine, not the SVD approximation)."""
        rows, scalar = _as_idx(idx)
        ind, val = _topk_excluding(rows, self.N_[rows].toarray(), k)
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
    """

    name = "ease"

    def __init__(self, l2: float = 100.0, max_memory_bytes: int = 4 * 1024**3):
        self.l2, self.max_memory_bytes = float(l2), int(max_memory_bytes)

    def hyperparameters(self) -> dict[str, Any]:
        return {"l2": self.l2, "max_memory_bytes": self.max_memory_bytes}

    @staticmethod
    def memory_needed(n_items: int) -> int:
        """Bytes of the two dense float64 n x n matrices the closed form holds at once."""
        return ease_memory_needed(n_items)

    def fit(self, X: sp.spmatrix, validation: Validation = None) -> EASE:
        B = binarize(X)
        self.B_ = ease_weights(B, self.l2, self.max_memory_bytes)
        self.n_items = B.shape[1]
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = binarize(self._check_columns(X))
        return np.asarray(X @ self.B_, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """Row i of B: how item i's presence raises every other item's score (n-dim)."""
        self._check_fitted()
        return self.B_

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items whose score item ``idx`` raises most (largest B[idx, j])."""
        rows, scalar = _as_idx(idx)
        ind, val = _topk_excluding(rows, self.B_[rows], k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if arrays["B"].shape != (self.n_items, self.n_items):
            raise ValueError("B has the wrong shape")
        self.B_ = arrays["B"]


# Tuned defaults of our VAE (bench/results/ml_experiments.md has what each change gave).
VAE_DEFAULTS: dict[str, Any] = {
    "encoder": "mult",
    "decoder_hidden": False,  # latent -> items directly (RecVAE style): better and cheaper
    "hidden": None,  # 1200/400 up to 20K items, the paper's 600/200 above (vae.resolve_width)
    "latent": None,
    "dropout": 0.5,
    "beta_cap": 0.2,
    "lr": 3e-3,  # converges in ~25 epochs instead of ~80-110 at 1e-3
    "batch_size": 500,
    "epochs": 100,
    "patience": 10,
    "skip_l2": 200.0,  # the EASE linear term (hybrid), see the class docstring
}


class MultVAE(Recommender):
    """Variational autoencoder recommender (torch, imported lazily) - a hybrid by default.

    Hyper-parameters are those of :class:`recommendations.ml.vae.VAEConfig`; the no-argument
    defaults are the tuned ones in :data:`VAE_DEFAULTS`:

    * a Mult-VAE with a sparse-input encoder, a linear decoder, width chosen from the
      catalogue size, lr 3e-3 and early stopping (pure-VAE changes, test NDCG@100 on
      online-retail 0.28 -> 0.31);
    * **plus a fixed linear item-item term**: the closed-form EASE matrix (l2=200) computed on
      the same training data, added to the VAE's logits with a weight chosen on the validation
      users after the VAE is trained (weight 0 = pure VAE). So the default ``vae`` is honestly
      an ensemble of a VAE and EASE inside one model class and one artifact, not a pure VAE:
      on online-retail the pure VAE reaches ~0.83 x EASE and the hybrid matches/exceeds EASE.
      Where EASE's n x n inverse would exceed ``skip_max_memory_bytes`` (e.g. instacart's 39K
      items) the term is dropped and the model is a pure VAE. ``skip_l2=None`` disables it.

    ``fit`` keeps the weights with the best validation NDCG@100 when a validation pair is given,
    stores the training curve in ``history_`` and the device used in ``device_``.
    """

    name = "vae"

    def __init__(self, **params: Any):
        from .vae import VAEConfig

        self.config = VAEConfig.from_dict({**VAE_DEFAULTS, **params})
        unknown = set(params) - set(self.config.to_dict())
        if unknown:
            raise TypeError(f"unknown VAE hyper-parameters {sorted(unknown)}")
        self.history_: list[dict] = []
        self.device_ = "unfitted"

    def hyperparameters(self) -> dict[str, Any]:
        return self.config.to_dict()

    def fit(self, X: sp.spmatrix, validation: Validation = None, progress=None,
            device: str | None = None) -> MultVAE:
        from .vae import train_vae

        B = binarize(X)
        val = None if validation is None else (binarize(validation[0]), binarize(validation[1]))
        self.net_, self.history_, dev, self.best_epoch_ = train_vae(
            B, val, self.config, progress=progress, device=device)
        self.config = self.net_.cfg  # widths resolved from the catalogue size
        self._device = dev
        self.device_ = str(dev)
        self.skip_search_ = getattr(self.net_, "skip_search", {})
        self.n_items = B.shape[1]
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        from .vae import SMALL_BATCH, score_users, score_users_small

        X = binarize(self._check_columns(X))
        if X.shape[0] <= SMALL_BATCH:  # serving one visitor: numpy, no torch threads
            scores = score_users_small(self.net_, X)
            if scores is not None:
                return scores
        return score_users(self.net_, X, self._device)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.net_.item_vectors()

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return super().similar_items(idx, k)

    def all_similar_items(self, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Blocked cosine neighbours for the whole catalogue."""
        return topk_cosine(self.item_vectors(), k)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"state/{k}": v.detach().float().cpu().numpy()
                for k, v in self.net_.state_dict().items()}

    def _extra(self) -> dict[str, Any]:
        return {"history": self.history_, "device": self.device_,
                "skip_search": getattr(self, "skip_search_", {}),
                "best_epoch": int(getattr(self, "best_epoch_", 0))}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        import torch

        from .vae import VAENet

        state = {k[len("state/"):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        net = VAENet(self.n_items, self.config, skip=state.get("skip_B"))
        net.load_state_dict(state, strict=True)
        # Always the CPU, also on a GPU machine: a loaded model serves, one visitor at a time,
        # through score_users_small's numpy path; a web worker should not open a CUDA context
        # (hundreds of MiB each) to score one row in bf16. Training picks its own device.
        self._device = torch.device("cpu")
        self.net_ = net.to(self._device).eval()
        self.history_ = list(extra.get("history", []))
        self.device_ = str(extra.get("device", "unknown"))
        self.best_epoch_ = int(extra.get("best_epoch", 0))


REGISTRY: dict[str, type[Recommender]] = {
    "vae": MultVAE,
    "ease": EASE,
    "itemknn": ItemKNN,
    "pop": Popularity,
}
