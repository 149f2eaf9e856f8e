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

from .ann import MipsIndex
from .next_basket import Candidates, blend_candidates, blend_components, blended_score
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


class NormalizedRows:
    """Unit-length rows of ``V``, normalised when indexed (``U[rows]``): the unit vectors of
    a big catalogue without a second copy of the decoder (explanations read a few rows)."""

    def __init__(self, V: np.ndarray):
        self.V = V
        self.shape = V.shape

    def __len__(self) -> int:
        return len(self.V)

    def __getitem__(self, rows) -> np.ndarray:
        return _unit(np.atleast_2d(self.V[rows]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return _unit(self.V) if dtype is None else _unit(self.V).astype(dtype)

    @property
    def T(self) -> np.ndarray:
        return np.asarray(self).T


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

    def _row_hidden(self, X: sp.csr_matrix, r: int) -> np.ndarray:
        """Row ``r``'s input to the last decoder layer, without BLAS (row-wise ``einsum``):
        a 1 x 1200 product costs less than waking a multi-threaded BLAS, and far less on a
        busy machine (see vae.py)."""
        a = self.arrays
        cols = X.indices[X.indptr[r]:X.indptr[r + 1]].astype(np.int64)
        vals = X.data[X.indptr[r]:X.indptr[r + 1]].astype(np.float64)
        if len(cols):
            scaled = (vals / np.sqrt(max(float((vals ** 2).sum()), 1e-12))).astype(np.float32)
            x = (a["w1"][cols] * scaled[:, None]).sum(0) + a["b1"]
        else:
            x = np.array(a["b1"], copy=True)
        z = np.einsum("ji,i->j", a["w2"], np.tanh(x)) + a["b2"]
        for n in range(self.meta["layers"] - 1):
            z = np.tanh(np.einsum("ji,i->j", a[f"dec{n}/w"], z) + a[f"dec{n}/b"])
        return z.astype(np.float32)

    def _row(self, X: sp.csr_matrix, r: int) -> np.ndarray:
        a, last = self.arrays, self.meta["layers"] - 1
        z = np.einsum("ji,i->j", np.asarray(a[f"dec{last}/w"]), self._row_hidden(X, r)) \
            + a[f"dec{last}/b"]
        if self.meta["skip"] and X.indptr[r + 1] > X.indptr[r]:
            z = z + np.float32(self.meta["skip_weight"]) * sparse_product(X[r], self._skip())[0]
        return z.astype(np.float32)

    def hidden(self, X: sp.csr_matrix) -> np.ndarray:
        """Transformed rows' inputs to the last decoder layer, float32 (rows, width): the
        logits are ``hidden @ W.T + b`` (+ the EASE term), a maximum-inner-product search
        over the rows of :meth:`item_vectors` (:mod:`.ann`)."""
        if X.shape[0] <= SMALL_BATCH:
            return np.vstack([self._row_hidden(X, r) for r in range(X.shape[0])]) \
                if X.shape[0] else np.empty((0, self.item_vectors().shape[1]), np.float32)
        return np.vstack([self._batch_hidden(X[lo:lo + CHUNK])
                          for lo in range(0, X.shape[0], CHUNK)])

    def _batch_hidden(self, X: sp.csr_matrix) -> np.ndarray:
        a = self.arrays
        sq = np.asarray(X.multiply(X).sum(1), dtype=np.float64).ravel()
        Xn = sp.diags((1.0 / np.sqrt(np.maximum(sq, 1e-12))).astype(np.float32)) @ X
        z = np.tanh(np.asarray(Xn @ np.asarray(a["w1"]), np.float32) + a["b1"]) @ a["w2"].T \
            + a["b2"]
        for n in range(self.meta["layers"] - 1):
            z = np.tanh(z @ a[f"dec{n}/w"].T + a[f"dec{n}/b"])
        return np.asarray(z, dtype=np.float32)

    def _batch(self, X: sp.csr_matrix) -> np.ndarray:
        a, last = self.arrays, self.meta["layers"] - 1
        z = self._batch_hidden(X) @ np.asarray(a[f"dec{last}/w"]).T + a[f"dec{last}/b"]
        if self.meta["skip"]:
            z = z + np.float32(self.meta["skip_weight"]) * sparse_product(X, self._skip())
        return np.asarray(z, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.arrays[f"dec{self.meta['layers'] - 1}/w"]

    def unit_vectors(self) -> np.ndarray | NormalizedRows:
        if "unit" in self.arrays:
            return self.arrays["unit"]
        return NormalizedRows(self.item_vectors())

    # --- big catalogues: candidates from the ANN index, scored exactly -------------------

    def ann_index(self) -> MipsIndex | None:
        """The mapped MIPS index over the decoder rows, or None (below ``ANN["MIN_ITEMS"]``
        when the version was converted)."""
        if "ann/index" not in self.arrays:
            return None
        if getattr(self, "_ann", None) is None:
            self._ann = MipsIndex.view(self.arrays["ann/index"],
                                       self.item_vectors().shape[1] + 2)
        return self._ann

    def skip_entries(self, X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """One transformed row's EASE term as (columns, values): the sum of its history
        items' top-k rows; empty without the term."""
        if not self.meta["skip"] or not X.nnz:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        S = self._skip()
        rows = X.indices.astype(np.int64)
        lo, hi = S.indptr[rows], S.indptr[rows + 1]
        take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        vals = np.repeat(X.data.astype(np.float32), hi - lo) * S.data[take]
        cols, inverse = np.unique(S.indices[take].astype(np.int64), return_inverse=True)
        return cols, (np.bincount(inverse, weights=vals, minlength=len(cols))
                      * self.meta["skip_weight"]).astype(np.float32)

    def candidates(self, X: sp.csr_matrix, k: int, ef: int, extra: np.ndarray | None = None
                   ) -> Candidates | None:
        """One transformed row's candidates with their exact logits, or None without an
        index: the index's top ``k`` by the decoder's inner product, every item the EASE
        term raises, the row's own items and ``extra``; with the moments of the logits over
        all items (exact, from ``ann/sum`` and ``ann/gram``) and a fixed sample's logits."""
        index = self.ann_index()
        if index is None or X.shape[0] != 1:
            return None
        a = self.arrays
        z = self.hidden(X)[0]
        W, b = self.item_vectors(), a[f"dec{self.meta['layers'] - 1}/b"]
        found = index.search(z[None, :], k, ef)[0]
        skip_cols, skip_vals = self.skip_entries(X)
        cols = np.unique(np.concatenate([found[found >= 0], skip_cols,
                                         X.indices.astype(np.int64),
                                         np.empty(0, np.int64) if extra is None else extra]))
        dec = np.asarray(W[cols], np.float32) @ z + b[cols]
        logits = dec.copy()
        logits[np.searchsorted(cols, skip_cols)] += skip_vals
        q = np.append(z.astype(np.float64), 1.0)
        total = float(q @ a["ann/sum"])
        sumsq = float(q @ a["ann/gram"] @ q)
        on_skip = dec[np.searchsorted(cols, skip_cols)].astype(np.float64)
        total += float(skip_vals.sum())
        sumsq += float((2 * on_skip * skip_vals + skip_vals.astype(np.float64) ** 2).sum())
        outside = ~np.isin(a["ann/sample"], cols, assume_unique=True)
        sample = np.asarray(a["ann/sample"])[outside]
        s_logits = (np.asarray(a["ann/sample_w"], np.float32) @ z + a["ann/sample_b"])[outside]
        return Candidates(cols, logits.astype(np.float32), total, sumsq, sample,
                          s_logits.astype(np.float32), self.n_items)

    def score_candidates(self, X: sp.spmatrix, k: int, ef: int
                         ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(columns, scores)`` of one row from the index's candidates (None: no index)."""
        X = transform_values(self._columns(X), self.meta["input_transform"])
        c = self.candidates(X, k, ef)
        return None if c is None else (c.cols, c.logits)


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

    def score_candidates(self, X: sp.spmatrix, k: int, ef: int
                         ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(columns, scores)`` of one row, blended on the VAE's candidates plus the most
        popular items (:func:`.next_basket.blend_candidates`); None without an index."""
        if "ann/popular" not in self.arrays:
            return None
        X = sp.csr_matrix(self._columns(X), copy=True)
        X.data[X.data < 0] = 0.0
        X.eliminate_zeros()
        Xt = transform_values(X, self.vae.meta["input_transform"])
        c = self.vae.candidates(Xt, k, ef, extra=np.asarray(self.arrays["ann/popular"]))
        if c is None:
            return None
        return c.cols, blend_candidates(X, c, np.asarray(self.arrays["trend"]),
                                        self.meta["blend"])


# --- entry points ----------------------------------------------------------------------------


def convert(model: str, hp: dict[str, Any], extra: dict[str, Any], arrays: Arrays,
            top_k: int | None = DEFAULT_TOP_K, ann_min_items: int | None = None
            ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """An artifact's contents (:func:`.artifacts.load_artifact`) as ``(meta, served arrays)``;
    a VAE of at least ``ann_min_items`` items also gets its ANN index (:func:`add_ann`)."""
    kind = ServedModel.kinds.get(model)
    if kind is None:
        raise NotServable(f"no served form for model {model!r}")
    meta, served = kind.convert(hp, extra, arrays, top_k)
    meta = {"model": model, "n_items": int(extra["n_items"]), "format": SERVE_FORMAT, **meta}
    if ann_min_items is not None and meta["n_items"] >= ann_min_items:
        add_ann(meta, served)
    return meta, served


#: Items in the fixed sample that estimates the softmax over items outside the candidates.
ANN_SAMPLE = 2048
#: Most popular items always among a next-basket model's candidates (its trend part).
ANN_POPULAR = 100


def add_ann(meta: dict[str, Any], served: dict[str, np.ndarray], seed: int = 0) -> None:
    """Add to a served VAE (or next-basket) model, in place: ``ann/index`` (the MIPS index
    over the decoder rows, :class:`.ann.MipsIndex`), ``ann/sum`` and ``ann/gram`` (the sum
    and Gram matrix of the rows ``[w_j, b_j]``: exact mean and deviation of any shopper's
    logits), ``ann/sample`` (a fixed random sample of items) and, for next-basket,
    ``ann/popular`` (its trend's top items). The unit vectors are dropped: at this size they
    would double the decoder's bytes for the few rows an explanation reads."""
    prefix = {"vae": "", "next_basket": "vae/"}.get(meta["model"])
    if prefix is None:
        return  # item-item models score sparsely already: nothing to search
    vae_meta = meta["vae"] if prefix else meta
    last = vae_meta["layers"] - 1
    W, b = served[f"{prefix}dec{last}/w"], served[f"{prefix}dec{last}/b"]
    total = np.zeros(W.shape[1] + 1, np.float64)
    gram = np.zeros((W.shape[1] + 1, W.shape[1] + 1), np.float64)
    for lo in range(0, len(W), 65_536):
        block = np.hstack([W[lo:lo + 65_536], b[lo:lo + 65_536, None]]).astype(np.float64)
        total += block.sum(0)
        gram += block.T @ block
    n = len(W)
    rng = np.random.default_rng(seed)
    served[f"{prefix}ann/index"] = MipsIndex.build(W, b).to_array()
    served[f"{prefix}ann/sum"] = total
    served[f"{prefix}ann/gram"] = gram
    sample = np.sort(rng.choice(n, min(ANN_SAMPLE, n), replace=False))
    served[f"{prefix}ann/sample"] = sample
    served[f"{prefix}ann/sample_w"] = np.ascontiguousarray(W[sample])  # read together
    served[f"{prefix}ann/sample_b"] = np.ascontiguousarray(b[sample])
    del served[f"{prefix}unit"]  # rows normalised when read (NormalizedRows): no second copy
    if prefix:
        trend = served["trend"]
        served["ann/popular"] = np.sort(np.argsort(-trend, kind="stable")[:ANN_POPULAR])
    vae_meta["ann"] = True
    meta["ann"] = True


def build(meta: dict[str, Any], arrays: Arrays) -> ServedModel:
    """The :class:`ServedModel` over ``arrays`` (in memory or mapped from the cache)."""
    kind = ServedModel.kinds.get(meta.get("model", ""))
    if kind is None or meta.get("format") != SERVE_FORMAT:
        raise NotServable(f"no served form for {meta.get('model')!r} "
                          f"(format {meta.get('format')!r})")
    return kind(meta, arrays)


def served_form(model: Recommender, top_k: int | None = DEFAULT_TOP_K,
                ann_min_items: int | None = None) -> ServedModel:
    """A trained model as serving will score it (in memory): to measure what is served."""
    hp = model.hyperparameters()
    extra = {"n_items": int(model.n_items), **model._extra()}
    return build(*convert(model.name, hp, extra, model._arrays(), top_k, ann_min_items))
