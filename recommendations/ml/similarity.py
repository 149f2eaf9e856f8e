"""Item-item neighbour tables for the "similar items" / "bought together" jobs.

Both functions work block by block so memory stays O(n*k + block*n): a full n x n similarity
matrix for a 40K-item catalogue would be 6 GB, the blocks are a few hundred MB at most.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _topk_rows(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns per row, best first; ties broken by lower column index (deterministic)."""
    n = S.shape[1]
    part = np.argpartition(-S, k - 1, axis=1)[:, :k] if k < n else np.tile(
        np.arange(n), (S.shape[0], 1))
    vals = np.take_along_axis(S, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    return part, np.take_along_axis(vals, order, axis=1)


def _normalize(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)  # zero vectors get similarity 0 with everything


def topk_cosine(
    vectors: np.ndarray, k: int, block_size: int = 1024, device: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of ``vectors`` for every row.

    Returns ``(indices int32 (n, k), scores float32 (n, k))``, best first, never the row itself.
    ``k`` is clipped to ``n - 1``. ``device=None`` computes with numpy; a torch device string
    (``"cpu"``, ``"cuda"``) uses torch matrix products on that device instead.
    """
    V = _normalize(np.asarray(vectors, dtype=np.float32))
    n = V.shape[0]
    k = max(0, min(k, n - 1))
    idx_out = np.zeros((n, k), np.int32)
    val_out = np.zeros((n, k), np.float32)
    if k == 0:
        return idx_out, val_out
    if device is not None:
        import torch

        Vt = torch.from_numpy(V).to(device)
    for lo in range(0, n, block_size):
        hi = min(n, lo + block_size)
        S = (Vt[lo:hi] @ Vt.T).float().cpu().numpy() if device is not None else V[lo:hi] @ V.T
        S[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # exclude self
        i, v = _topk_rows(S, k)
        idx_out[lo:hi], val_out[lo:hi] = i, v
    return idx_out, val_out


def copurchase_lift(
    baskets: sp.spmatrix, min_support: int = 2, k: int = 10, block_size: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Per item, the ``k`` items most often bought together with it, ranked by lift.

    ``baskets`` is an order x item matrix (any non-zero = the item is in the order). For items
    i != j with ``support(i, j)`` = number of orders containing both,
    ``lift = support(i, j) * n_orders / (count(i) * count(j))`` (> 1: bought together more often
    than chance). Pairs with support below ``min_support`` are ignored because lift of a single
    co-occurrence of two rare items is huge and meaningless.

    Returns ``(indices int32 (n_items, k), lift float32 (n_items, k))``, best first (ties by
    higher support, then lower index); rows with fewer than ``k`` qualifying partners are padded
    with index -1 and lift 0.
    """
    B = sp.csr_matrix(baskets, dtype=np.float32)
    B.eliminate_zeros()
    B.data[:] = 1.0
    n_orders, n = B.shape
    counts = np.asarray(B.sum(0)).ravel()
    Bt = B.T.tocsr()
    k_eff = max(0, min(k, n - 1))
    idx_out = np.full((n, k), -1, np.int32)
    val_out = np.zeros((n, k), np.float32)
    if k_eff == 0:
        return idx_out, val_out
    for lo in range(0, n, block_size):
        hi = min(n, lo + block_size)
        S = (Bt[lo:hi] @ B).tocsr()  # sparse support counts of this block of items
        for r in range(hi - lo):
            item = lo + r
            cols = S.indices[S.indptr[r]:S.indptr[r + 1]]
            sup = S.data[S.indptr[r]:S.indptr[r + 1]]
            keep = (sup >= max(min_support, 1)) & (cols != item)
            cols, sup = cols[keep], sup[keep]
            if cols.size == 0:
                continue
            lift = sup * n_orders / (counts[item] * counts[cols])
            order = np.lexsort((cols, -sup, -lift))[:k_eff]  # lift, then support, then index
            idx_out[item, :order.size] = cols[order]
            val_out[item, :order.size] = lift[order]
    return idx_out, val_out
