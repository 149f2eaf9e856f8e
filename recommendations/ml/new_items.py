"""Items a served model does not know (added after its training), placed and scored by their
content: no torch, no retraining.

**Placing** (:func:`predict_columns`): the map of :class:`.coldstart.ContentMap` (kernel
ridge regression with a linear kernel from an item's content features, :mod:`.content`, to
its column of the model's item-item matrix), learnt on the items the model knows and applied
to the new ones. Here the targets are the columns of the *served* item-item term (the top-k
rows of :mod:`.serving_model`, transposed: column ``j`` says how much each history item
raises item ``j``), and the ridge is solved on whichever side is smaller - the features
(``d x d``) or the known items (``n x n``, the dual, as ``KernelRidge``) - with sparse
targets, so no ``n x n`` dense matrix of targets is ever built. The same predictions as
``ContentMap`` (a test holds them equal). Each predicted column is cut to its ``top_k``
largest-magnitude entries, like the served rows.

For a model with a Mult-VAE (the default ``next_basket``, the hybrid ``vae``) the same map,
fitted on the rows of the VAE's last decoder layer and its biases (:func:`decoder_rows`),
predicts a new item's decoder row (:func:`predict_rows`): the item's VAE logit is then
``hidden . w + b`` like any known item's. Without it a new item's VAE logit could only be
the row's mean, and the default model surfaced no new items (0 of 300 demo shoppers had
one among their top 36); measured in ``bench/results/new_items_temporal.json``.

**Scoring** (:func:`score_with_new`): a served model's scores of its own items and of the
new ones, on one scale, as if each new item were one more column of the model:

- EASE: ``x . c`` (the item-item term is the whole model);
- the hybrid Mult-VAE: logit ``= hidden . w + b + s x . c``, ``(w, b)`` the predicted
  decoder row and ``c`` the predicted column times the term's weight ``s``
  (``skip_weight``), exactly as a known item's parts enter. Without predicted rows (placed
  before they existed) the VAE part is the row's mean VAE logit (neutral);
- the default ``next_basket``: those logits join the known items' logits in the explore
  distribution (standardised per row, softmax at the blend's temperature, times the blend's
  explore weight), the new items have no re-buy and no trend; so a new item's score is what
  a known item with the same logit would get.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .next_basket import _explore, _repeat, blended_score
from .recommender import transform_values
from .serving_model import (
    DEFAULT_TOP_K,
    ServedEASE,
    ServedModel,
    ServedNextBasket,
    ServedVAE,
    sparse_product,
    top_k_rows,
)

#: Ridge strength. Chosen on validation items by ``evaluate --protocol coldstart``
#: (``bench/results/coldstart.json``): 0.3 and 1.0 on online-retail, 10 on ml-100k.
DEFAULT_ALPHA = 1.0
#: Where both the vocabulary and the known items exceed this, the map learns from this many
#: known items (those closest to the new ones by content): the solve is ``O(MAX_SIDE^3)``.
MAX_SIDE = 6000
#: New items predicted at once (bounds the dense ``block x n`` predictions).
BLOCK = 512


def item_item_term(model: ServedModel) -> tuple[sp.csr_matrix, float] | None:
    """The served model's item-item term as top-k rows (row = history item, column =
    candidate) and the weight its product with a history row carries in the logits; None for
    a model without one (a pure VAE, popularity, item-kNN)."""
    if isinstance(model, ServedNextBasket):
        model = model.vae
    if isinstance(model, ServedEASE):
        return model._B(), 1.0
    if isinstance(model, ServedVAE) and model.meta.get("skip"):
        return model._skip(), float(model.meta["skip_weight"])
    return None


def decoder_rows(model: ServedModel) -> np.ndarray | None:
    """(n, width + 1) float64: the served model's last decoder layer with its bias as the
    last column (what a known item's VAE logit is made of); None for a model without a
    Mult-VAE (EASE, popularity, item-kNN)."""
    if isinstance(model, ServedNextBasket):
        model = model.vae
    if not isinstance(model, ServedVAE):
        return None
    last = model.meta["layers"] - 1
    W = np.asarray(model.arrays[f"dec{last}/w"], dtype=np.float64)
    b = np.asarray(model.arrays[f"dec{last}/b"], dtype=np.float64)
    return np.hstack([W, b[:, None]])


def placeable(model: ServedModel) -> bool:
    """Whether new items can be placed in ``model``: it has an item-item term or a VAE."""
    return item_item_term(model) is not None or decoder_rows(model) is not None


def _with_bias(F: sp.spmatrix) -> sp.csr_matrix:
    F = sp.csr_matrix(F, dtype=np.float64)
    return sp.hstack([F, np.ones((F.shape[0], 1))], format="csr")


def _smoother(known: sp.csr_matrix, new: sp.csr_matrix, alpha: float) -> np.ndarray:
    """``S^T`` (known x new): the kernel ridge prediction of the new items is ``S @ Y`` for
    centred targets ``Y``, solved on the smaller of the feature and item sides (the same
    matrix either way: the push-through identity)."""
    Fb, Nb = _with_bias(known), _with_bias(new)
    if Fb.shape[1] <= Fb.shape[0]:  # primal: (F'F + a I) is d x d
        A = (Fb.T @ Fb).toarray()
        A[np.diag_indices_from(A)] += alpha
        Z = np.linalg.solve(A, Nb.T.toarray())  # d x m
        return np.asarray(Fb @ Z)
    K = (Fb @ Fb.T).toarray()  # dual: (K + a I) is n x n, as KernelRidge
    K[np.diag_indices_from(K)] += alpha
    return np.linalg.solve(K, (Fb @ Nb.T).toarray())


def _closest(known: sp.csr_matrix, new: sp.csr_matrix, keep: int) -> np.ndarray:
    """Positions of the ``keep`` known items most similar by content to any new item."""
    best = np.asarray((known @ new.T).max(axis=1).toarray()).ravel()
    return np.sort(np.argsort(-best, kind="stable")[:keep])


def _known_and_new(known_cols: np.ndarray, known_features: sp.spmatrix,
                   new_features: sp.spmatrix) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    known_cols = np.asarray(known_cols, dtype=np.int64)
    F = sp.csr_matrix(known_features, dtype=np.float64)
    N = sp.csr_matrix(new_features, dtype=np.float64)
    if F.shape[0] != len(known_cols) or F.shape[1] != N.shape[1]:
        raise ValueError(f"features {F.shape} / {N.shape} for {len(known_cols)} known items")
    if len(known_cols) and N.shape[0] and min(F.shape[1] + 1, F.shape[0]) > MAX_SIDE:
        keep = _closest(F, N, MAX_SIDE)
        F, known_cols = F[keep], known_cols[keep]
    return known_cols, F, N


def _predicted_blocks(Y: np.ndarray | sp.csr_matrix, F: sp.csr_matrix, N: sp.csr_matrix,
                      alpha: float):
    """The ridge predictions of the targets ``Y`` (known x t) for the new items ``N``,
    :data:`BLOCK` new items at a time: (block x t) dense arrays."""
    mu = np.asarray(Y.mean(axis=0), dtype=np.float64).ravel()
    for lo in range(0, N.shape[0], BLOCK):
        St = _smoother(F, N[lo:lo + BLOCK], alpha)  # known x block
        P = np.asarray((Y.T @ St).T)  # block x t
        P += (1.0 - St.sum(axis=0))[:, None] * mu[None, :]
        yield P


def predict_columns(
    term: sp.csr_matrix,
    known_cols: np.ndarray,
    known_features: sp.spmatrix,
    new_features: sp.spmatrix,
    *,
    alpha: float = DEFAULT_ALPHA,
    top_k: int | None = DEFAULT_TOP_K,
) -> sp.csr_matrix:
    """(new items, n) CSR: row ``i`` is new item ``i``'s predicted column of ``term`` (n x n,
    row = history item), its ``top_k`` largest-magnitude entries.

    ``known_cols``: the model columns whose content is ``known_features`` (row for row; items
    deleted since training are simply left out); ``new_features``: the new items' rows, in
    the same feature space (one :func:`.content.tfidf` over known and new items together).
    """
    n = term.shape[0]
    known_cols, F, N = _known_and_new(known_cols, known_features, new_features)
    if not len(known_cols) or not N.shape[0]:
        return sp.csr_matrix((N.shape[0], n), dtype=np.float32)
    Y = sp.csr_matrix(term.T, dtype=np.float64)[known_cols]  # row j: column j of the term
    pieces = []
    for P in _predicted_blocks(Y, F, N, alpha):
        rows = top_k_rows(P.astype(np.float32), top_k)
        pieces.append(sp.csr_matrix((rows["data"], rows["indices"], rows["indptr"]),
                                    shape=P.shape))
    return sp.vstack(pieces, format="csr").astype(np.float32)


def predict_rows(
    targets: np.ndarray,
    known_cols: np.ndarray,
    known_features: sp.spmatrix,
    new_features: sp.spmatrix,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> np.ndarray:
    """(new items, t) float32: the new items' predicted rows of ``targets`` (n x t, dense:
    :func:`decoder_rows`), by the same map as :func:`predict_columns`."""
    targets = np.asarray(targets, dtype=np.float64)
    known_cols, F, N = _known_and_new(known_cols, known_features, new_features)
    if not len(known_cols) or not N.shape[0]:
        return np.zeros((N.shape[0], targets.shape[1]), np.float32)
    Y = targets[known_cols]
    return np.vstack(list(_predicted_blocks(Y, F, N, alpha))).astype(np.float32)


def term_input(model: ServedModel, X: sp.spmatrix) -> sp.csr_matrix:
    """History rows as the model's item-item term sees them (its input transform; the
    default model drops vetoes first, as :func:`.next_basket.blend_components` does)."""
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    if isinstance(model, ServedNextBasket):
        X.data[X.data < 0] = 0.0
        X.eliminate_zeros()
        model = model.vae
    return transform_values(X, model.meta.get("input_transform", "binary"))


def _new_logits(model: ServedVAE, Xt: sp.csr_matrix, logits: np.ndarray,
                columns: sp.csr_matrix, rows: np.ndarray | None) -> np.ndarray:
    """The VAE's logits of the new items (``Xt``: rows already transformed as the model
    transforms them): ``hidden . w + b`` with their predicted decoder ``rows`` ((m, width +
    1), :func:`predict_rows`), else the row's mean VAE-only logit; plus ``s x . c``."""
    s = np.float32(model.meta["skip_weight"]) if model.meta["skip"] else np.float32(0.0)
    term = s * sparse_product(Xt, columns) if model.meta["skip"] and columns.nnz \
        else np.zeros((Xt.shape[0], columns.shape[1]), np.float32)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.float32)
        return model.hidden(Xt) @ rows[:, :-1].T + rows[:, -1][None, :] + term
    term_mean = np.zeros(Xt.shape[0], np.float32)
    if model.meta["skip"]:
        row_sums = np.asarray(model._skip().sum(axis=1), dtype=np.float32).ravel()
        term_mean = np.asarray(Xt @ row_sums, dtype=np.float32).ravel() / max(model.n_items, 1)
    vae_mean = logits.mean(axis=1) - s * term_mean
    return vae_mean[:, None] + term


def score_with_new(model: ServedModel, X: sp.spmatrix, columns: sp.csr_matrix,
                   rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores of the model's items, scores of the new items), float32, one scale.

    ``columns``: (n, m) CSR, column ``i`` the predicted item-item column of new item ``i``
    (the transpose of :func:`predict_columns`; all zero for a model without the term);
    ``rows``: (m, width + 1) their predicted decoder rows (:func:`predict_rows`) for a model
    with a VAE, or None. Raises ``ValueError`` for a model that cannot place new items
    (:func:`placeable`)."""
    if not placeable(model):
        raise ValueError(f"{type(model).__name__} has no item-item term or VAE to score "
                         "new items")
    X = model._columns(X)
    columns = sp.csr_matrix(columns, dtype=np.float32)
    if columns.shape[0] != model.n_items:
        raise ValueError(f"columns have {columns.shape[0]} rows, model has {model.n_items}")
    if rows is not None and np.shape(rows)[0] != columns.shape[1]:
        raise ValueError(f"{np.shape(rows)[0]} decoder rows for {columns.shape[1]} new items")
    if isinstance(model, ServedEASE):
        Xt = transform_values(X, model.meta["input_transform"])
        return model.score(X), sparse_product(Xt, columns)
    if isinstance(model, ServedVAE):
        Xt = transform_values(X, model.meta["input_transform"])
        logits = model.logits(Xt)
        return logits, _new_logits(model, Xt, logits, columns, rows).astype(np.float32)
    assert isinstance(model, ServedNextBasket)
    return _next_basket(model, X, columns, rows)


def _next_basket(model: ServedNextBasket, X: sp.csr_matrix, columns: sp.csr_matrix,
                 rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`.next_basket.blend_components` over the known items plus the new ones."""
    blend = model.meta["blend"]
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    X.data[X.data < 0] = 0.0
    X.eliminate_zeros()
    n, m = model.n_items, columns.shape[1]
    Xt = term_input(model, X)
    logits = model.vae.logits(Xt)
    new = _new_logits(model.vae, Xt, logits, columns, rows)
    seen = np.hstack([X.toarray() > 0, np.zeros((X.shape[0], m), bool)])
    trend = np.concatenate([np.asarray(model.arrays["trend"], np.float64), np.zeros(m)])
    parts = {
        "repeat": np.hstack([_repeat(X), np.zeros((X.shape[0], m))]),
        "trend": np.where(seen, trend[None, :], 0.0),
        "explore": _explore(np.hstack([logits, new]), seen, trend, blend["temperature"],
                            blend["trend_share"]),
    }
    scores = blended_score(parts, blend)
    return scores[:, :n], scores[:, n:]


def closest_history(Xt: sp.csr_matrix, columns: sp.csr_matrix, new: np.ndarray) -> np.ndarray:
    """For each of the ``new`` items (positions in ``columns``' columns), the history column
    of one row ``Xt`` contributing most to its score (``x_i c_i``), or -1 if none is positive:
    the item behind "New, like ..."."""
    cols = Xt.indices.astype(np.int64)
    contrib = columns[cols][:, new].toarray() * Xt.data[:, None] if len(cols) \
        else np.zeros((0, len(new)))
    out = np.full(len(new), -1, np.int64)
    if len(cols):
        best = contrib.argmax(axis=0)
        positive = contrib[best, np.arange(len(new))] > 0
        out[positive] = cols[best[positive]]
    return out
