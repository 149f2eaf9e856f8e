"""Served models: a trained model reduced to the numpy arrays a web process scores with.

Why: importing torch costs a web process ~235 MiB before it loads a single weight, and
serving never needed it (one visitor's fold-in is a few vector sums). A served model is
plain arrays, so :mod:`.served_cache` can keep them in ``.npy`` files that every worker of
a machine maps read-only: one copy in the page cache, shared.

Dense item-item terms (EASE's ``B``, the hybrid VAE's ``skip_B``: ``n x n``, 1.6 GB at 20K
items) are served as their ``top_k`` largest-magnitude entries per row (CSR): memory
``O(n k)``; the quality cost of :data:`DEFAULT_TOP_K` is measured in
``bench/results/serving_topk.md``. ``top_k=None`` keeps them dense (exact).

:func:`convert` turns an artifact's arrays into served arrays (once per machine and
version); :func:`build` wraps served arrays (mapped or not) in a :class:`ServedModel`.
Scores equal the trained model's (float32 rounding) up to the top-k cut.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .next_basket import blend_components, blended_score
from .recommender import Recommender, as_indices, topk_excluding, transform_values

#: Bumped when the served arrays of a model change meaning (the cache key includes it).
SERVE_FORMAT = 1
#: Entries kept per row of a dense item-item term; chosen on online-retail's temporal split
#: (``bench/results/serving_topk.md``).
DEFAULT_TOP_K = 64
#: Batches of at most this many rows take the per-row path (no BLAS threads to wake).
SMALL_BATCH = 8
#: Rows scored at once by the batch path (bounds the dense hidden layer's memory).
CHUNK = 2048

Arrays = Mapping[str, np.ndarray]


class NotServable(ValueError):
    """The artifact holds a model this module cannot score without its framework."""


# --- dense item-item terms as top-k rows ----------------------------------------------------


def top_k_rows(B: np.ndarray, k: int | None, block: int = 1024) -> dict[str, np.ndarray]:
    """``B``'s ``k`` largest-magnitude entries per row as CSR pieces (``indptr``,
    ``indices``, ``data``; columns sorted); zeros dropped; ``k=None`` or ``k >= n``: all."""
    n_rows, n_cols = B.shape
    keep = n_cols if k is None else min(int(k), n_cols)
    indices = np.empty((n_rows, keep), np.int32)
    data = np.empty((n_rows, keep), np.float32)
    for lo in range(0, n_rows, block):
        rows = np.asarray(B[lo:lo + block], dtype=np.float32)
        if keep < n_cols:
            part = np.argpartition(-np.abs(rows), keep - 1, axis=1)[:, :keep]
            part.sort(axis=1)
        else:
            part = np.tile(np.arange(n_cols), (len(rows), 1))
        indices[lo:lo + len(rows)] = part
        data[lo:lo + len(rows)] = np.take_along_axis(rows, part, axis=1)
    M = sp.csr_matrix((data.ravel(), indices.ravel(), np.arange(0, n_rows * keep + 1, keep)),
                      shape=(n_rows, n_cols))
    M.eliminate_zeros()
    index = np.int32 if M.nnz < 2**31 else np.int64
    return {"indptr": M.indptr.astype(index), "indices": M.indices.astype(index),
            "data": M.data.astype(np.float32)}


def _csr(arrays: Arrays, prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix over the (possibly memory-mapped) pieces ``prefix/indptr`` ..., no copy."""
    return sp.csr_matrix((arrays[f"{prefix}/data"], arrays[f"{prefix}/indices"],
                          arrays[f"{prefix}/indptr"]), shape=shape, copy=False)


def _int32(X: sp.csr_matrix) -> sp.csr_matrix:
    """``X`` with int32 index arrays: multiplied by a mapped matrix with int32 indices,
    scipy would otherwise copy that matrix's indices to int64 on every product."""
    if X.indices.dtype != np.int32 or X.indptr.dtype != np.int32:
        X = sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                          shape=X.shape)
    return X


def sparse_product(X: sp.csr_matrix, S: sp.csr_matrix) -> np.ndarray:
    """Dense float32 ``X @ S``; a few rows are gathered row by row (no scipy product)."""
    if X.shape[0] > SMALL_BATCH:
        return np.asarray((_int32(X) @ S).toarray(), dtype=np.float32)
    out = np.zeros(X.shape[0:1] + S.shape[1:], np.float32)
    for r in range(X.shape[0]):
        cols = X.indices[X.indptr[r]:X.indptr[r + 1]].astype(np.int64)
        if not len(cols):
            continue
        lo, hi = S.indptr[cols], S.indptr[cols + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        vals = np.repeat(X.data[X.indptr[r]:X.indptr[r + 1]].astype(np.float32), hi - lo)
        out[r] = np.bincount(S.indices[take], weights=vals * S.data[take],
                             minlength=S.shape[1])
    return out


def _unit(V: np.ndarray) -> np.ndarray:
    V = np.asarray(V, dtype=np.float32)
    return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)


def _unit_rows(M: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(M.multiply(M).sum(1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ M, dtype=np.float32)


# --- the served models ---------------------------------------------------------------------


class ServedModel(abc.ABC):
    """What serving calls on a model: ``n_items``, ``score``, ``item_vectors``,
    ``unit_vectors`` (explanations), ``similar_items``. Arrays may be read-only maps."""

    name: ClassVar[str] = ""
    kinds: ClassVar[dict[str, type[ServedModel]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            ServedModel.kinds[cls.name] = cls

    def __init__(self, meta: dict[str, Any], arrays: Arrays):
        self.meta, self.arrays = meta, arrays
        self.n_items = int(meta["n_items"])

    @staticmethod
    @abc.abstractmethod
    def convert(hp: dict[str, Any], extra: dict[str, Any], arrays: Arrays,
                top_k: int | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, served arrays) from an artifact's hyper-parameters, extra and arrays."""

    @abc.abstractmethod
    def score(self, X: sp.spmatrix) -> np.ndarray:
        """float32 (rows of X, items), as the trained model's ``score``."""

    @abc.abstractmethod
    def item_vectors(self) -> np.ndarray | sp.csr_matrix:
        """The trained model's item vectors (a sparse matrix for top-k item-item terms)."""

    def unit_vectors(self) -> np.ndarray | sp.csr_matrix:
        """Unit-length item vectors: the dot product is the cosine (kept in the cache)."""
        return self.arrays["unit"]

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        rows, scalar = as_indices(idx)
        U = self.unit_vectors()
        S = U[rows] @ U.T
        ind, val = topk_excluding(rows, S.toarray() if sp.issparse(S) else S, k)
        return (ind[0], val[0]) if scalar else (ind, val)

    def _columns(self, X: sp.spmatrix) -> sp.csr_matrix:
        X = sp.csr_matrix(X, dtype=np.float32)
        if X.shape[1] != self.n_items:
            raise ValueError(f"X has {X.shape[1]} item columns, model has {self.n_items}")
        return X


class ServedPopularity(ServedModel):
    name = "pop"

    @staticmethod
    def convert(hp, extra, arrays, top_k):
        counts = np.asarray(arrays["counts"], np.float32)
        return {}, {"counts": counts, "unit": _unit(np.log1p(counts)[:, None])}

    def score(self, X: sp.spmatrix) -> np.ndarray:
        return np.tile(np.asarray(self.arrays["counts"]), (self._columns(X).shape[0], 1))

    def item_vectors(self) -> np.ndarray:
        return np.log1p(np.asarray(self.arrays["counts"]))[:, None].astype(np.float32)

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        rows, scalar = as_indices(idx)
        ind, val = topk_excluding(rows, np.tile(self.arrays["counts"], (len(rows), 1)), k)
        return (ind[0], val[0]) if scalar else (ind, val)


class ServedItemKNN(ServedModel):
    name = "itemknn"

    @staticmethod
    def convert(hp, extra, arrays, top_k):
        n = int(extra["n_items"])
        N = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))
        W = N.T.tocsr()  # history item j -> candidate i: the scoring direction
        out = {f"n/{p}": getattr(N, p) for p in ("indptr", "indices", "data")}
        out.update({f"w/{p}": getattr(W, p) for p in ("indptr", "indices", "data")})
        return {}, {**out, "factors": arrays["factors"], "unit": _unit(arrays["factors"])}

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = transform_values(self._columns(X), "binary")
        return sparse_product(X, _csr(self.arrays, "w", (self.n_items, self.n_items)))

    def item_vectors(self) -> np.ndarray:
        return self.arrays["factors"]

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        rows, scalar = as_indices(idx)
        N = _csr(self.arrays, "n", (self.n_items, self.n_items))
        ind, val = topk_excluding(rows, N[rows].toarray(), k)
        return (ind[0], val[0]) if scalar else (ind, val)


class ServedEASE(ServedModel):
    """EASE with ``B`` as top-k rows: a history item adds its row's kept entries."""

    name = "ease"

    @staticmethod
    def convert(hp, extra, arrays, top_k):
        B = top_k_rows(arrays["B"], top_k)
        meta = {"input_transform": hp.get("input_transform", "binary"), "top_k": top_k}
        return meta, {f"b/{p}": v for p, v in B.items()}

    def _B(self) -> sp.csr_matrix:
        return _csr(self.arrays, "b", (self.n_items, self.n_items))

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = transform_values(self._columns(X), self.meta["input_transform"])
        return sparse_product(X, self._B())

    def item_vectors(self) -> sp.csr_matrix:
        return self._B()

    def unit_vectors(self) -> sp.csr_matrix:
        return _unit_rows(self._B())

    def similar_items(self, idx, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items whose score item ``idx`` raises most (largest kept ``B[idx, j]``)."""
        rows, scalar = as_indices(idx)
        dense = self._B()[rows].toarray()
        dense[dense == 0] = -np.inf  # entries beyond the top k are unknown, not zero
        ind, val = topk_excluding(rows, dense, k)
        return (ind[0], val[0]) if scalar else (ind, val)


#: Layer names of the Mult-VAE's state dict (``vae.VAENet`` with its ``MLPEncoder``).
_ENCODER = ("encoder.fc1.weight", "encoder.fc1.bias", "encoder.fc2.weight", "encoder.fc2.bias")


class ServedVAE(ServedModel):
    """The hybrid Mult-VAE's posterior-mean logits (what ``vae.score_users`` computes):
    L2-normalised row -> tanh(x W1 + b1) -> mu -> decoder -> + s * (x S) with S the EASE
    term as top-k rows."""

    name = "vae"

    @staticmethod
    def convert(hp, extra, arrays, top_k):
        state = {k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")}
        decoder = sorted(int(k.split(".")[1]) for k in state
                         if k.startswith("decoder.") and k.endswith(".weight"))
        known = {*_ENCODER, "skip_B", "skip_weight",
                 *(f"decoder.{i}.{p}" for i in decoder for p in ("weight", "bias"))}
        if set(_ENCODER) - set(state) or set(state) - known or not decoder:
            raise NotServable(f"not a Mult-VAE state this module can score: {sorted(state)}")
        latent = state["encoder.fc2.weight"].shape[0] // 2
        out = {"w1": state["encoder.fc1.weight"], "b1": state["encoder.fc1.bias"],
               "w2": state["encoder.fc2.weight"][:latent],  # the mu half; logvar is unused
               "b2": state["encoder.fc2.bias"][:latent]}
        for n, i in enumerate(decoder):
            out[f"dec{n}/w"] = state[f"decoder.{i}.weight"]
            out[f"dec{n}/b"] = state[f"decoder.{i}.bias"]
        out["unit"] = _unit(out[f"dec{len(decoder) - 1}/w"])
        skip_weight = 0.0
        if "skip_B" in state:
            out.update({f"skip/{p}": v for p, v in top_k_rows(state["skip_B"], top_k).items()})
            skip_weight = float(np.asarray(state["skip_weight"]))
        meta = {"input_transform": hp.get("input_transform", "binary"), "layers": len(decoder),
                "skip": "skip_B" in state, "skip_weight": skip_weight, "top_k": top_k}
        return meta, {k: np.ascontiguousarray(v, dtype=np.float32) if v.dtype.kind == "f"
                      else v for k, v in out.items()}

    def score(self, X: sp.spmatrix) -> np.ndarray:
        X = transform_values(self._columns(X), self.meta["input_transform"])
        return self.logits(X)

    def logits(self, X: sp.csr_matrix) -> np.ndarray:
        """Scores of already transformed rows (``next_basket`` passes them)."""
        if X.shape[0] <= SMALL_BATCH:
            return np.vstack([self._row(X, r) for r in range(X.shape[0])]) if X.shape[0] \
                else np.empty((0, self.n_items), np.float32)
        return np.vstack([self._batch(X[lo:lo + CHUNK]) for lo in range(0, X.shape[0], CHUNK)])

    def _skip(self) -> sp.csr_matrix:
        return _csr(self.arrays, "skip", (self.n_items, self.n_items))

    def _row(self, X: sp.csr_matrix, r: int) -> np.ndarray:
        """One row without BLAS (row-wise ``einsum``): a 1 x 1200 product costs less than
        waking a multi-threaded BLAS, and far less on a busy machine (see vae.py)."""
        a = self.arrays
        cols = X.indices[X.indptr[r]:X.indptr[r + 1]].astype(np.int64)
        vals = X.data[X.indptr[r]:X.indptr[r + 1]].astype(np.float64)
        if len(cols):
            scaled = (vals / np.sqrt(max(float((vals ** 2).sum()), 1e-12))).astype(np.float32)
            x = (a["w1"][cols] * scaled[:, None]).sum(0) + a["b1"]
        else:
            x = np.array(a["b1"], copy=True)
        z = np.einsum("ji,i->j", a["w2"], np.tanh(x)) + a["b2"]
        for n in range(self.meta["layers"]):
            if n:
                z = np.tanh(z)
            z = np.einsum("ji,i->j", a[f"dec{n}/w"], z) + a[f"dec{n}/b"]
        if self.meta["skip"] and len(cols):
            z = z + np.float32(self.meta["skip_weight"]) * sparse_product(X[r], self._skip())[0]
        return z.astype(np.float32)

    def _batch(self, X: sp.csr_matrix) -> np.ndarray:
        a = self.arrays
        sq = np.asarray(X.multiply(X).sum(1), dtype=np.float64).ravel()
        Xn = sp.diags((1.0 / np.sqrt(np.maximum(sq, 1e-12))).astype(np.float32)) @ X
        z = np.tanh(np.asarray(Xn @ a["w1"], np.float32) + a["b1"]) @ a["w2"].T + a["b2"]
        for n in range(self.meta["layers"]):
            if n:
                z = np.tanh(z)
            z = z @ a[f"dec{n}/w"].T + a[f"dec{n}/b"]
        if self.meta["skip"]:
            z = z + np.float32(self.meta["skip_weight"]) * sparse_product(X, self._skip())
        return np.asarray(z, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.arrays[f"dec{self.meta['layers'] - 1}/w"]


class ServedNextBasket(ServedModel):
    """Re-buys + trend + the hybrid VAE's explore part, blended as trained
    (:func:`.next_basket.blend_components`)."""

    name = "next_basket"

    @staticmethod
    def convert(hp, extra, arrays, top_k):
        vae_arrays = {k[4:]: v for k, v in arrays.items() if k.startswith("vae/")}
        vae_meta, vae_served = ServedVAE.convert(
            hp, {**extra.get("vae", {}), "n_items": extra["n_items"]}, vae_arrays, top_k)
        meta = {"vae": vae_meta, "blend": {k: float(v) for k, v in extra["blend"].items()}}
        served = {f"vae/{k}": v for k, v in vae_served.items()}
        return meta, {**served, "trend": np.asarray(arrays["trend"], np.float32)}

    def __init__(self, meta: dict[str, Any], arrays: Arrays):
        super().__init__(meta, arrays)
        self.vae = ServedVAE({**meta["vae"], "n_items": self.n_items},
                             {k[4:]: v for k, v in arrays.items() if k.startswith("vae/")})

    def components(self, X: sp.spmatrix) -> dict[str, np.ndarray]:
        return blend_components(self._columns(X), self.vae.score,
                                np.asarray(self.arrays["trend"]), self.meta["blend"])

    def score(self, X: sp.spmatrix) -> np.ndarray:
        return blended_score(self.components(X), self.meta["blend"])

    def item_vectors(self) -> np.ndarray:
        return self.vae.item_vectors()

    def unit_vectors(self) -> np.ndarray:
        return self.vae.unit_vectors()


# --- entry points ----------------------------------------------------------------------------


def convert(model: str, hp: dict[str, Any], extra: dict[str, Any], arrays: Arrays,
            top_k: int | None = DEFAULT_TOP_K) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An artifact's contents (:func:`.artifacts.load_artifact`) as ``(meta, served arrays)``."""
    kind = ServedModel.kinds.get(model)
    if kind is None:
        raise NotServable(f"no served form for model {model!r}")
    meta, served = kind.convert(hp, extra, arrays, top_k)
    return {"model": model, "n_items": int(extra["n_items"]), "format": SERVE_FORMAT,
            **meta}, served


def build(meta: dict[str, Any], arrays: Arrays) -> ServedModel:
    """The :class:`ServedModel` over ``arrays`` (in memory or mapped from the cache)."""
    kind = ServedModel.kinds.get(meta.get("model", ""))
    if kind is None or meta.get("format") != SERVE_FORMAT:
        raise NotServable(f"no served form for {meta.get('model')!r} "
                          f"(format {meta.get('format')!r})")
    return kind(meta, arrays)


def served_form(model: Recommender, top_k: int | None = DEFAULT_TOP_K) -> ServedModel:
    """A trained model as serving will score it (in memory): to measure what is served."""
    hp = model.hyperparameters()
    extra = {"n_items": int(model.n_items), **model._extra()}
    return build(*convert(model.name, hp, extra, model._arrays(), top_k))
