"""Item-item neighbour tables for the "similar items" / "bought together" jobs.

Both functions work block by block so memory stays O(n*k + block*n): a full n x n similarity
matrix for a 40K-item catalogue would be 6 GB, the blocks are a few hundred MB at most.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


def _normalize(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)  # zero vectors get similarity 0 with everything


def compute_device() -> str:
    """``cuda`` where torch sees a GPU, else ``cpu``: for the offline all-pairs pass.

    Chosen here, not from the model: loaded models always sit on the CPU (they serve one
    visitor at a time), while the similarity of a whole catalogue is GPU-sized work.
    """
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def topk_cosine_on_best_device(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_cosine` on :func:`compute_device`, and on the CPU when the GPU has no room
    (another process, a training run say, may hold its memory)."""
    import torch

    device = compute_device()
    if device != "cpu":
        try:
            return topk_cosine(vectors, k, device=device)
        except torch.cuda.OutOfMemoryError:
            logger.warning("similarity: the GPU is out of memory; computing on the CPU")
            torch.cuda.empty_cache()
    return topk_cosine(vectors, k, device="cpu")


def topk_cosine(
    vectors: np.ndarray, k: int, block_size: int = 1024, device: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of ``vectors`` for every row.

    Returns ``(indices int32 (n, k), scores float32 (n, k))``, best first, never the row itself.
    ``k`` is clipped to ``n - 1``. Computed block by block with torch on ``device`` (default
    CPU): the matrix product, the self-exclusion and ``torch.topk`` all run where the block
    is, and only the ``block x k`` result is copied back. (``np.argpartition`` on a numpy
    block cost three times the product itself; ``torch.topk`` is a fraction of it.) Equal
    scores are ordered by lower index, so the result is deterministic.
    """
    import torch

    V = _normalize(np.asarray(vectors, dtype=np.float32))
    n = V.shape[0]
    k = max(0, min(k, n - 1))
    idx_out = np.zeros((n, k), np.int32)
    val_out = np.zeros((n, k), np.float32)
    if k == 0:
        return idx_out, val_out
    Vt = torch.from_numpy(V).to(device or "cpu")
    with torch.inference_mode():
        for lo in range(0, n, block_size):
            hi = min(n, lo + block_size)
            S = Vt[lo:hi] @ Vt.T
            rows = torch.arange(hi - lo, device=S.device)
            S[rows, rows + lo] = -torch.inf  # exclude self, in place
            vals, idx = torch.topk(S, k, dim=1, sorted=True)
            i, v = idx.cpu().numpy(), vals.float().cpu().numpy()
            order = np.lexsort((i, -v), axis=1)  # ties: lower index first (k columns only)
            idx_out[lo:hi] = np.take_along_axis(i, order, axis=1)
            val_out[lo:hi] = np.take_along_axis(v, order, axis=1)
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
