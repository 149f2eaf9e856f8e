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

import abc
import os
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .artifacts import ArtifactError, load_artifact, save_artifact
from .ease import CatalogueTooLargeError, ease_weights  # noqa: F401 (re-export)

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


class Recommender(abc.ABC):
    """Abstract base: one fit/score contract, save/load plumbing and shared helpers."""

    name: ClassVar[str] = ""
    n_items: int

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
        klass = REGISTRY.get(header["model"]) if cls is Recommender else cls
        if klass is None:
            raise ArtifactError(f"{path}: unknown model {header['model']!r}")
        try:
            model = klass(**klass._upgrade_hyperparameters(dict(header["hyperparameters"])))
            model.n_items = int(header["extra"]["n_items"])
            model._restore(arrays, header["extra"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{path}: inconsistent {header['model']} artifact ({exc})") from exc
        return model


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
        X = transform_values(self._check_columns(X), "binary")
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
    "input_transform": "log",  # counts reach the multinomial likelihood (ml_experiments_temporal)
}

# Keys older artifacts carry for the RecVAE branch now in bench/research/recvae.py, with the
# values that meant "plain Mult-VAE": accepted (and dropped) so those artifacts still load.
_LEGACY_VAE_KEYS = {"encoder": "mult", "gamma": 0.0, "composite_prior": False,
                    "encoder_passes": 1}


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

    The input is ``transform_values(X, input_transform)``: with ``"log"`` the multinomial
    likelihood and the EASE term weigh items by (log) event strength x recency.
    ``device`` (not a hyper-parameter: the artifact always loads on the CPU) forces where
    training runs; None = CUDA when available. ``fit`` keeps the weights with the best
    validation NDCG@100 when a validation pair is given; :meth:`training_report` has the curve.
    """

    name = "vae"

    def __init__(self, device: str | None = None, **params: Any):
        from .vae import VAEConfig

        for key, neutral in _LEGACY_VAE_KEYS.items():
            if key in params and params[key] == neutral:
                del params[key]
        self.config = VAEConfig.from_dict({**VAE_DEFAULTS, **params})
        unknown = set(params) - set(self.config.to_dict())
        if unknown:
            raise TypeError(f"unknown VAE hyper-parameters {sorted(unknown)}")
        transform_values(sp.csr_matrix((1, 1)), self.config.input_transform)
        self.device = device
        self.history_: list[dict] = []
        self.best_epoch_ = 0
        self.skip_search_: dict[str, float] = {}
        self._device_name = "unfitted"

    def hyperparameters(self) -> dict[str, Any]:
        return self.config.to_dict()

    @classmethod
    def _upgrade_hyperparameters(cls, hp: dict[str, Any]) -> dict[str, Any]:
        return {"input_transform": "binary", **hp}  # artifacts before the transform: binary

    @property
    def device_(self) -> str:
        return self._device_name

    def training_report(self) -> dict[str, Any]:
        return {"device": self.device_, "best_epoch": int(self.best_epoch_),
                "epochs_run": len(self.history_), "history": list(self.history_),
                "skip_search": dict(self.skip_search_)}

    def _net_class(self):
        """The network class train_vae builds (research subclasses in bench/ override)."""
        return None

    def fit(self, X: sp.spmatrix, validation: Validation = None, *,
            progress: ProgressFn | None = None) -> MultVAE:
        from .vae import train_vae

        kind = self.config.input_transform
        B = transform_values(X, kind)
        val = None if validation is None else (transform_values(validation[0], kind),
                                               transform_values(validation[1], "binary"))
        self.net_, self.history_, dev, self.best_epoch_ = train_vae(
            B, val, self.config, progress=progress, device=self.device,
            net_class=self._net_class())
        self.config = self.net_.cfg  # widths resolved from the catalogue size
        self._device = dev
        self._device_name = str(dev)
        self.skip_search_ = getattr(self.net_, "skip_search", {})
        self.n_items = B.shape[1]
        return self

    def score(self, X: sp.spmatrix) -> np.ndarray:
        from .vae import SMALL_BATCH, score_users, score_users_small

        X = transform_values(self._check_columns(X), self.config.input_transform)
        if X.shape[0] <= SMALL_BATCH:  # serving one visitor: numpy, no torch threads
            scores = score_users_small(self.net_, X)
            if scores is not None:
                return scores
        return score_users(self.net_, X, self._device)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.net_.item_vectors()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"state/{k}": v.detach().float().cpu().numpy()
                for k, v in self.net_.state_dict().items()}

    def _extra(self) -> dict[str, Any]:
        return {"history": self.history_, "device": self.device_,
                "skip_search": self.skip_search_, "best_epoch": int(self.best_epoch_)}

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
        self._device_name = str(extra.get("device", "unknown"))
        self.skip_search_ = dict(extra.get("skip_search", {}))
        self.best_epoch_ = int(extra.get("best_epoch", 0))


REGISTRY: dict[str, type[Recommender]] = {
    "vae": MultVAE,
    "ease": EASE,
    "itemknn": ItemKNN,
    "pop": Popularity,
}

#: The model the shop trains unless configured otherwise: the repeat-explore next-basket
#: model built on the Mult-VAE hybrid (``next_basket.py``; numbers in
#: bench/results/ml_experiments_temporal.md).
DEFAULT_ALGORITHM = "next_basket"

# Registers "next_basket" (it subclasses Recommender and wraps MultVAE, so it imports this
# module; importing it here makes REGISTRY complete whichever module is imported first).
from . import next_basket as _next_basket  # noqa: E402,F401
