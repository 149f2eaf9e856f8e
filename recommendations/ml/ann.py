"""Approximate nearest neighbours over a model's item vectors: big catalogues' candidates.

A served VAE scores a shopper as ``logits = z @ W.T + b`` (``z`` the shopper's hidden
vector, ``W, b`` the decoder's last layer): the best items are a maximum-inner-product
search (MIPS) over ``[w_j, b_j]`` with ``[z, 1]``. Above ``ANN["MIN_ITEMS"]`` items,
serving asks an HNSW graph (usearch, chosen by ``bench/ann``: ``bench/results/ann.json``)
for the top candidates instead of scoring every item, and scores only those exactly.

MIPS is turned into a nearest-neighbour search by one extra column (Bachrach et al. 2014,
"Speeding up the Xbox recommender system"): items ``[w_j, b_j, sqrt(R^2 - |w_j, b_j|^2)]``
with ``R`` the largest norm, queries ``[z, 1, 0]``; then ``|q - x_j|^2 = |z|^2 + 1 + R^2 -
2 (z . w_j + b_j)``, so the L2 order is the inner-product order, exactly.

The graph is saved as bytes (:meth:`MipsIndex.to_array`), kept as one more ``.npy`` array in
the served-model cache (:mod:`.served_cache`), and mapped by every worker
(:meth:`MipsIndex.view`): one copy per machine, as the other arrays.

Pure numpy + usearch: no Django, no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Graph degree, construction beam and stored precision (``bench/ann``: recall@100 >= 0.95;
#: half precision halves the mapped bytes). The benches ran with a construction beam of 64;
#: on the tests' higher-dimensional vectors that gave 0.94-0.96 from build to build (the
#: threads' order varies), 128 gives 0.997, so 128 ships: builds take longer (not re-measured).
CONNECTIVITY = 16
EXPANSION_ADD = 128
DTYPE = "f16"
#: Search beam: candidates considered per query (``ANN["EF"]`` overrides).
EXPANSION_SEARCH = 256
#: Vectors added per call while building (bounds the augmented copy's memory).
CHUNK = 65_536


def decoder_rows(vae: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` of a served VAE's last decoder layer: item rows and biases."""
    last = vae.meta["layers"] - 1
    return vae.arrays[f"dec{last}/w"], vae.arrays[f"dec{last}/b"]


def _radius(W: np.ndarray, b: np.ndarray) -> float:
    sq = np.zeros(len(W), np.float64)
    for lo in range(0, len(W), CHUNK):
        block = np.asarray(W[lo:lo + CHUNK], np.float64)
        sq[lo:lo + CHUNK] = (block ** 2).sum(1) + np.asarray(b[lo:lo + CHUNK], np.float64) ** 2
    return float(np.sqrt(sq.max())) if len(sq) else 0.0


def mips_items(W: np.ndarray, b: np.ndarray, radius: float | None = None,
               lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Rows ``lo:hi`` of the augmented items ``[w_j, b_j, sqrt(R^2 - |w_j, b_j|^2)]``."""
    R = _radius(W, b) if radius is None else radius
    hi = len(W) if hi is None else hi
    Wb = np.hstack([np.asarray(W[lo:hi], np.float32), np.asarray(b[lo:hi], np.float32)[:, None]])
    sq = (Wb.astype(np.float64) ** 2).sum(1)
    extra = np.sqrt(np.maximum(R * R - sq, 0.0)).astype(np.float32)
    return np.hstack([Wb, extra[:, None]])


def mips_queries(Z: np.ndarray) -> np.ndarray:
    """Queries ``[z, 1, 0]`` for hidden vectors ``Z`` (rows)."""
    Z = np.atleast_2d(np.asarray(Z, np.float32))
    n = len(Z)
    return np.hstack([Z, np.ones((n, 1), np.float32), np.zeros((n, 1), np.float32)])


class MipsIndex:
    """An HNSW graph over the augmented items; ``search`` gives item rows by inner product."""

    def __init__(self, index: Any, buffer: np.ndarray | None = None):
        self.index = index
        self._buffer = buffer  # a mapped view must outlive the index that reads it

    @classmethod
    def build(cls, W: np.ndarray, b: np.ndarray, *, connectivity: int = CONNECTIVITY,
              expansion_add: int = EXPANSION_ADD, threads: int = 0) -> MipsIndex:
        """Index every row of ``W`` (with bias ``b``); ``threads=0``: all cores."""
        from usearch.index import Index

        index = Index(ndim=W.shape[1] + 2, metric="l2sq", dtype=DTYPE,
                      connectivity=connectivity, expansion_add=expansion_add)
        R = _radius(W, b)
        for lo in range(0, len(W), CHUNK):
            hi = min(len(W), lo + CHUNK)
            index.add(np.arange(lo, hi, dtype=np.uint64), mips_items(W, b, R, lo, hi),
                      threads=threads)
        return cls(index)

    def to_array(self) -> np.ndarray:
        """The graph and vectors as bytes (a uint8 array): what the cache saves."""
        return np.frombuffer(self.index.save(), dtype=np.uint8)

    @classmethod
    def view(cls, data: np.ndarray, ndim: int) -> MipsIndex:
        """The index over ``data`` (:meth:`to_array`'s bytes, usually a read-only map),
        without copying it: pages are read as searches touch them."""
        from usearch.index import Index

        index = Index(ndim=ndim, metric="l2sq", dtype=DTYPE)
        index.view(data)
        return cls(index, data)

    def __len__(self) -> int:
        return len(self.index)

    def search(self, Z: np.ndarray, k: int, ef: int = EXPANSION_SEARCH) -> np.ndarray:
        """int64 item rows (rows of ``Z``, up to ``k``), best first; one thread per query
        (a web worker's request). Rows with fewer hits are padded with -1."""
        Q = mips_queries(Z)
        k = min(int(k), len(self))
        out = np.full((len(Q), k), -1, np.int64)
        if k <= 0:
            return out
        self.index.expansion_search = max(int(ef), k)
        for r, q in enumerate(Q):
            keys = np.asarray(self.index.search(q, k, threads=1).keys, np.int64)
            out[r, :len(keys)] = keys
        return out


def topk_cosine(vectors: np.ndarray, k: int, *, connectivity: int = CONNECTIVITY,
                expansion_add: int = EXPANSION_ADD, ef: int = EXPANSION_SEARCH,
                threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`.similarity.topk_cosine` by an HNSW graph (metric cosine): ``(indices int32
    (n, k), scores float32 (n, k))``, best first, never the row itself; padded with -1 / 0
    where the graph found fewer. Time ~ ``n log n`` instead of ``n^2``; the index lives
    only for this call (the related-items pass, offline)."""
    from usearch.index import Index

    V = np.asarray(vectors, np.float32)
    n = len(V)
    k = max(0, min(int(k), n - 1))
    idx = np.full((n, k), -1, np.int32)
    val = np.zeros((n, k), np.float32)
    if k == 0:
        return idx, val
    index = Index(ndim=V.shape[1], metric="cos", dtype=DTYPE, connectivity=connectivity,
                  expansion_add=expansion_add, expansion_search=max(ef, k + 1))
    for lo in range(0, n, CHUNK):
        index.add(np.arange(lo, min(n, lo + CHUNK), dtype=np.uint64), V[lo:lo + CHUNK],
                  threads=threads)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        found = index.search(V[lo:hi], k + 1, threads=threads)
        keys = np.asarray(found.keys, np.int64).reshape(hi - lo, -1)
        dist = np.asarray(found.distances, np.float32).reshape(hi - lo, -1)
        counts = np.asarray(found.counts).reshape(-1)
        for r in range(hi - lo):
            got, d = keys[r, :counts[r]], dist[r, :counts[r]]
            keep = got != lo + r
            got, d = got[keep][:k], d[keep][:k]
            idx[lo + r, :len(got)] = got
            val[lo + r, :len(got)] = 1.0 - d
    return idx, val


def exact_top(W: np.ndarray, b: np.ndarray, Z: np.ndarray, k: int,
              block: int = 65_536) -> np.ndarray:
    """The exact top ``k`` item rows by ``z . w_j + b_j`` (sets, unordered): what the index
    is measured against. Blocked over items: memory ``O(rows x block)``."""
    Z = np.atleast_2d(np.asarray(Z, np.float32))
    k = min(int(k), len(W))
    best_s = np.full((len(Z), 0), -np.inf, np.float32)
    best_i = np.empty((len(Z), 0), np.int64)
    for lo in range(0, len(W), block):
        S = Z @ np.asarray(W[lo:lo + block], np.float32).T + np.asarray(b[lo:lo + block])
        s = np.hstack([best_s, S])
        i = np.hstack([best_i, np.broadcast_to(np.arange(lo, lo + S.shape[1]), S.shape)])
        part = np.argpartition(-s, k - 1, axis=1)[:, :k] if s.shape[1] > k else \
            np.broadcast_to(np.arange(s.shape[1]), s.shape)
        best_s = np.take_along_axis(s, part, axis=1)
        best_i = np.take_along_axis(i, part, axis=1)
    return best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` found in the same row of ``found``."""
    return float(np.mean([len(np.intersect1d(f[f >= 0], t)) / max(len(t), 1)
                          for f, t in zip(found, truth, strict=True)]))
