"""Item-item neighbour tables for the "similar items" job ("bought together": :mod:`.baskets`).

It works block by block so memory stays O(n*k + block*n): a full n x n similarity matrix for
a 40K-item catalogue would be 6 GB, the blocks are a few hundred MB at most.
"""

from __future__ import annotations

import logging

import numpy as np

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


def topk_cosine_on_best_device(vectors: np.ndarray, k: int, ann_min_items: int | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_cosine` on :func:`compute_device`, and on the CPU when the GPU has no room
    (another process, a training run say, may hold its memory). Without a GPU, a catalogue
    of ``ann_min_items`` items or more is searched by an HNSW graph (:func:`.ann.topk_cosine`:
    approximate, ``n log n`` instead of ``n^2``)."""
    import torch

    device = compute_device()
    if (device == "cpu" and ann_min_items is not None and not hasattr(vectors, "tocsr")
            and len(vectors) >= ann_min_items):
        from .ann import topk_cosine as topk_cosine_ann

        return topk_cosine_ann(vectors, k)
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
