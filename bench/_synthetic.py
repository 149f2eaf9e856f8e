"""Synthetic catalogues for bench/ann and bench/scale: item popularity, basket sizes and
item vectors shaped like the real datasets', generated in chunks (500K items fit easily).

- Popularity: a Zipf-like curve ``p(rank) ~ (rank + q) ** -s`` with ``s, q`` fit (least
  squares on log frequency vs log rank) to online-retail's item-frequency curve
  (:data:`ONLINE_RETAIL_ZIPF`, refit with ``bench/ann --fit``).
- Basket sizes (distinct items per order): a log-normal fit to online-retail's orders
  (:data:`ONLINE_RETAIL_BASKETS`).
- Item vectors: what a trained decoder looks like, not i.i.d. noise (on which no ANN index
  does well, and no trained model produces): items belong to aisles; a vector is its
  aisle's direction plus item noise, with a norm that grows with popularity (a trained
  Mult-VAE's popular items have larger logits), and a bias column that does too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: ``p(rank) ~ (rank + q) ** -s`` fit to online-retail's item purchase counts
#: (3,941 stock codes, distinct orders per code; the top half of the ranks, log-MSE 0.005);
#: ``bench/ann --fit`` refits it.
ONLINE_RETAIL_ZIPF: dict[str, float] = {"s": 1.311, "q": 300.0}
#: log-normal of distinct items per order, fit to online-retail's 20,728 orders (median 15).
ONLINE_RETAIL_BASKETS: dict[str, float] = {"mu": 2.456, "sigma": 1.309}


def popularity(n_items: int, zipf: dict[str, float] = ONLINE_RETAIL_ZIPF) -> np.ndarray:
    """Item probabilities by rank (item 0 the most popular), summing to 1."""
    p = (np.arange(1, n_items + 1, dtype=np.float64) + zipf["q"]) ** -zipf["s"]
    return p / p.sum()


def basket_sizes(n: int, rng: np.random.Generator,
                 fit: dict[str, float] = ONLINE_RETAIL_BASKETS) -> np.ndarray:
    """Distinct items per order (at least 1)."""
    return np.maximum(1, np.round(rng.lognormal(fit["mu"], fit["sigma"], n))).astype(np.int64)


def fit_zipf(counts: np.ndarray) -> dict[str, float]:
    """``s, q`` of ``(rank + q) ** -s`` fit to item counts (log-log least squares over the
    top half of the ranks)."""
    c = np.sort(np.asarray(counts, np.float64))[::-1]
    c = c[c > 0][: max(2, len(c) // 2)]  # the body: the tail's cliff is items' short lives
    rank = np.arange(1, len(c) + 1)
    best: tuple[float, float, float] | None = None
    for q in (0.0, 1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 700, 1000, 1500, 2000, 3000):
        x, y = np.log(rank + q), np.log(c)
        slope, icpt = np.polyfit(x, y, 1)
        err = float(((slope * x + icpt - y) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, -slope, q)
    assert best is not None
    return {"s": round(best[1], 3), "q": float(best[2]), "mse_log": round(best[0], 4)}


def item_vectors(n_items: int, dim: int, seed: int = 0, aisles: int | None = None,
                 chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vectors (n, dim) float32, bias (n,) float32, aisle (n,) int32)``: decoder-like
    rows, item 0 the most popular."""
    rng = np.random.default_rng(seed)
    aisles = aisles or max(20, n_items // 500)
    centres = rng.standard_normal((aisles, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    aisle = rng.integers(0, aisles, n_items).astype(np.int32)
    rank_pop = np.log(popularity(n_items))
    strength = 1.0 + 0.25 * (rank_pop - rank_pop.mean()) / rank_pop.std()
    V = np.empty((n_items, dim), np.float32)
    for lo in range(0, n_items, chunk):
        hi = min(n_items, lo + chunk)
        noise = rng.standard_normal((hi - lo, dim)).astype(np.float32) / np.sqrt(dim)
        V[lo:hi] = (centres[aisle[lo:hi]] * 0.8 + noise * 0.6) * strength[lo:hi, None]
    bias = (0.5 * (rank_pop - rank_pop.mean()) / rank_pop.std()).astype(np.float32)
    return V, bias, aisle


def user_vectors(n_users: int, V: np.ndarray, aisle: np.ndarray, seed: int = 1,
                 history: int = 8) -> np.ndarray:
    """Hidden vectors of shoppers: the mean of a few popular-weighted items' vectors of two
    or three aisles, plus noise (what an encoder gives for a short history)."""
    rng = np.random.default_rng(seed)
    p = popularity(len(V))
    out = np.empty((n_users, V.shape[1]), np.float32)
    for u in range(n_users):
        items = rng.choice(len(V), history, p=p)
        out[u] = V[items].mean(0) * 2.0 + rng.standard_normal(V.shape[1]) * 0.1
    return out


def interactions(n_users: int, n_items: int, seed: int = 0, aisles: int | None = None):
    """A shoppers x items CSR of purchase counts: each shopper places a few orders (sizes
    from :func:`basket_sizes`) of items drawn by popularity within two or three aisles."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    aisles = aisles or max(20, n_items // 500)
    aisle = np.random.default_rng(seed + 7).integers(0, aisles, n_items)
    p = popularity(n_items)
    order = np.argsort(aisle, kind="stable")
    bounds = np.searchsorted(aisle[order], np.arange(aisles + 1))
    cum = [np.cumsum(p[order[bounds[a]:bounds[a + 1]]]) for a in range(aisles)]
    rows, cols = [], []
    for u in range(n_users):
        size = int(min(basket_sizes(1, rng)[0] * rng.integers(1, 4), 200))
        mine = rng.choice(aisles, 3, replace=False)
        pick = mine[rng.integers(0, 3, size)]
        for a in np.unique(pick):
            k = int((pick == a).sum())
            cdf = cum[a]
            if not len(cdf):
                continue
            at = np.searchsorted(cdf, rng.uniform(0, cdf[-1], k))
            cols.append(order[bounds[a] + np.minimum(at, len(cdf) - 1)])
            rows.append(np.full(k, u))
    r, cl = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((np.ones(len(r), np.float32), (r, cl)), shape=(n_users, n_items))
    X.sum_duplicates()
    return X


def split_rows(X, seed: int = 0, share: float = 0.8):
    """Each row's items split at random: ``share`` folded in, the rest the truth."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(X)
    keep = rng.random(X.nnz) < share
    A, B = X.copy(), X.copy()
    A.data = np.where(keep, A.data, 0).astype(np.float32)
    B.data = np.where(keep, 0, B.data).astype(np.float32)
    A.eliminate_zeros()
    B.eliminate_zeros()
    return A, B


def describe() -> dict[str, Any]:
    return {"zipf": ONLINE_RETAIL_ZIPF, "baskets_lognormal": ONLINE_RETAIL_BASKETS}
