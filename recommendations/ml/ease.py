"""EASE closed form (Steck 2019), shared by the ``ease`` model and the VAE's linear skip."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class CatalogueTooLargeError(ValueError):
    """The model would need more memory than its cap for this many items."""


def ease_memory_needed(n_items: int) -> int:
    """Bytes of the two dense float64 n x n matrices the closed form holds at once."""
    return 2 * 8 * n_items * n_items


def check_ease_memory(n_items: int, max_memory_bytes: int, who: str = "EASE") -> None:
    """Raise :class:`CatalogueTooLargeError` when the dense inverse would exceed the cap."""
    need = ease_memory_needed(n_items)
    if need > max_memory_bytes:
        raise CatalogueTooLargeError(
            f"{who} refuses {n_items} items: the dense n x n inverse needs ~{need / 2**30:.1f} GiB"
            f", above the cap of {max_memory_bytes / 2**30:.1f} GiB (max_memory_bytes); "
            "use the vae or itemknn model for this catalogue")


def ease_weights(X: sp.spmatrix, l2: float, max_memory_bytes: int) -> np.ndarray:
    """``B = I - P diag(1/diag(P))``, ``P = (X'X + l2 I)^-1``, as float32 with zero diagonal.

    ``X`` is expected binary. Computed in float64 because the Gram matrix of a large log is
    ill-conditioned at small ``l2``.
    """
    n = X.shape[1]
    check_ease_memory(n, max_memory_bytes)
    G = (X.T @ X).toarray().astype(np.float64)
    G[np.diag_indices(n)] += l2
    P = np.linalg.inv(G)
    del G
    P /= -np.diag(P)[None, :]
    P[np.diag_indices(n)] = 0.0
    return P.astype(np.float32)
