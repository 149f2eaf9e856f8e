"""Diversity: re-rank a list so that it does not show ten versions of the same thing.

Pure numpy, no Django: serving (``serving/assemble.py``, per placement, off by default) and
the temporal evaluation (``ml/evaluate.py``) call the same functions.

- :func:`mmr`: maximal marginal relevance (Carbonell & Goldstein 1998). Greedily, the next
  item is the one that maximises ``lam * relevance - (1 - lam) * max similarity to the
  items already chosen``. ``lam = 1`` keeps the relevance order; lower values trade
  relevance for variety. Relevance is the *rank* of an item in the incoming list by
  default (:func:`rank_relevance`: 1 for the first, falling linearly), so ``lam`` means
  the same whatever the scale of a model's scores, and mixed lists (model candidates
  followed by best sellers) need no common scale.
- :func:`category_cap`: at most ``cap`` items of one category among the first positions;
  the items it defers follow, in their order, so nothing is lost.
- :func:`popularity_penalty`: each item's rank relevance minus ``weight`` times its
  popularity percentile (:func:`popularity_percentiles`), so a best seller gives way to a
  less-known item ranked just below it. MMR varies a list within itself but brings up the
  same best sellers for everyone; this spreads lists over the catalogue (coverage), which
  is what a shop with a long tail wants (measured: docs/serving.md, "Diversity").
- :func:`intra_list_diversity`: the evaluation's measure, mean pairwise ``1 - cosine`` of a
  list's item vectors.

Similarities come from the model's item vectors (:func:`cosine_matrix`) or from categories
(:func:`category_similarity`: 1 within a category, else 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

METHODS = ("mmr", "category_cap", "popularity")


def rank_relevance(n: int) -> np.ndarray:
    """Relevance of the positions of an ``n``-long ranked list: 1, then falling linearly to
    ``1 / n`` (strictly decreasing, so ``lam = 1`` keeps the order)."""
    return (n - np.arange(n, dtype=np.float64)) / max(n, 1)


def normalise_rows(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Rows scaled to unit length (zero rows stay zero); sparse input stays sparse."""
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
        return (sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m).tocsr()
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the rows of ``vectors`` (an ``n x n`` array)."""
    v = normalise_rows(vectors)
    return v @ v.T


def category_similarity(categories: Sequence[Any]) -> np.ndarray:
    """1 where two items share a (non-None) category, else 0; 1 on the diagonal."""
    cats = list(categories)
    codes = {c: i for i, c in enumerate(dict.fromkeys(c for c in cats if c is not None))}
    ids = np.array([codes.get(c, -1 - i) for i, c in enumerate(cats)])  # None: own category
    return (ids[:, None] == ids[None, :]).astype(np.float64)


def mmr(
    similarity: np.ndarray,
    lam: float,
    k: int | None = None,
    relevance: np.ndarray | None = None,
) -> np.ndarray:
    """The order (indices into the incoming list) maximal marginal relevance gives.

    ``similarity``: ``n x n`` similarities of the incoming list's items (e.g.
    :func:`cosine_matrix`); ``relevance``: their relevance (default :func:`rank_relevance`:
    the incoming order), min-max scaled to [0, 1] here. The first ``k`` positions (default
    all) are chosen greedily; the rest follow in their incoming order. Ties go to the item
    ranked first, so the result is deterministic, and ``lam = 1`` returns ``0 .. n - 1``
    when ``relevance`` is non-increasing.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be within [0, 1], got {lam}")
    sim = np.asarray(similarity, dtype=np.float64)
    n = sim.shape[0]
    if sim.shape != (n, n):
        raise ValueError(f"similarity must be square, got {sim.shape}")
    rel = rank_relevance(n) if relevance is None else np.asarray(relevance, np.float64)
    if rel.shape != (n,):
        raise ValueError(f"relevance must have {n} entries, got {rel.shape}")
    span = rel.max() - rel.min() if n else 0.0
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    k = n if k is None else min(max(k, 0), n)
    if lam == 1.0:  # pure relevance: a stable sort, no similarity needed
        order = np.argsort(-rel, kind="stable")
        return np.concatenate([order[:k], np.sort(order[k:])])
    chosen: list[int] = []
    free = np.ones(n, dtype=bool)
    closest = np.full(n, -np.inf)  # max similarity to the chosen items
    for _ in range(k):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        gain = lam * rel - (1.0 - lam) * redundancy
        gain[~free] = -np.inf
        best = int(np.argmax(gain))  # first maximum: ties go to the earlier item
        chosen.append(best)
        free[best] = False
        closest = np.maximum(closest, sim[best])
    rest = np.flatnonzero(free)
    return np.array(chosen + rest.tolist(), dtype=np.int64)


def category_cap(categories: Sequence[Any], cap: int) -> np.ndarray:
    """The order that keeps at most ``cap`` items of any category at the top.

    Walks the incoming list in order and takes each item whose category has fewer than
    ``cap`` items taken so far; the items it skipped follow, in their incoming order (a list
    never gets shorter because of the cap; with enough categories the first ``k`` items
    respect it). Items without a category (None) are never capped.
    """
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    taken: dict[Any, int] = {}
    head: list[int] = []
    tail: list[int] = []
    for i, category in enumerate(categories):
        if category is None or taken.get(category, 0) < cap:
            head.append(i)
            if category is not None:
                taken[category] = taken.get(category, 0) + 1
        else:
            tail.append(i)
    return np.array(head + tail, dtype=np.int64)


def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity as a percentile in [0, 1] (ties share their mean rank): 1 for
    the best seller, 0 for the least bought."""
    from scipy.stats import rankdata

    pop = np.asarray(popularity, dtype=np.float64).ravel()
    if pop.size < 2:
        return np.zeros(pop.size)
    return (rankdata(pop) - 1.0) / (pop.size - 1.0)


def popularity_penalty(percentiles: np.ndarray, weight: float) -> np.ndarray:
    """The order (indices into the incoming list) by ``rank relevance - weight *
    percentile``: ``percentiles`` of the incoming list's items (0 for an item without
    sales). ``weight = 0`` keeps the order; at 0.5 on a 60-item list, a best seller gives way
    to a median item ranked up to 15 places below it. Stable: ties keep the incoming order."""
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    pct = np.asarray(percentiles, dtype=np.float64)
    return np.argsort(-(rank_relevance(pct.size) - weight * pct), kind="stable")


def intra_list_diversity(lists: np.ndarray, vectors: np.ndarray | sp.spmatrix) -> float:
    """Mean over lists of the mean pairwise ``1 - cosine`` of their items' ``vectors``.

    ``lists``: ``users x k`` item indices (rows of ``vectors``, dense or sparse: the
    evaluation uses each item's column of the training matrix, a model-free space). 0 for
    lists of identical items; 1 for orthogonal ones. Lists shorter than 2 items are skipped.
    """
    lists = np.asarray(lists)
    if lists.ndim != 2 or lists.shape[1] < 2 or lists.shape[0] == 0:
        return float("nan")
    v = normalise_rows(vectors)
    k = lists.shape[1]
    total = 0.0
    for row in lists:
        x = v[row]
        sims = x @ x.T
        sims = sims.toarray() if sp.issparse(sims) else sims
        total += (k * k - sims.sum()) / (k * (k - 1))  # diagonal: 1 - 1 = 0
    return float(total / lists.shape[0])


def rerank_scores(
    scores: np.ndarray,
    vectors: np.ndarray,
    lam: float,
    k: int = 20,
    candidates: int = 100,
) -> np.ndarray:
    """MMR applied to every row of a ``users x items`` score matrix (the evaluation's path).

    Each row's top ``candidates`` by score are re-ranked with :func:`mmr` (rank relevance,
    cosine of ``vectors``, the first ``k`` positions chosen); the returned matrix ranks them
    in that order above every other item (whose order is kept). ``lam = 1`` leaves each
    row's top ``candidates`` order unchanged.
    """
    S = np.array(scores, dtype=np.float64, copy=True)
    n_items = S.shape[1]
    c = min(candidates, n_items)
    v = normalise_rows(vectors)
    top = np.argsort(-S, axis=1, kind="stable")[:, :c]
    bonus = np.abs(S[np.isfinite(S)]).max(initial=0.0) * 2 + 2.0 * c + 1.0
    for r in range(S.shape[0]):
        row = top[r]
        row = row[np.isfinite(S[r, row])]
        if row.size == 0:
            continue
        order = mmr(v[row] @ v[row].T, lam, k=k)
        S[r, row[order]] = bonus + (row.size - np.arange(row.size))
    return S


def rerank_popularity_scores(scores: np.ndarray, percentiles: np.ndarray, weight: float,
                             candidates: int = 60) -> np.ndarray:
    """:func:`popularity_penalty` applied to every row of a ``users x items`` score matrix
    (the evaluation's path, as :func:`rerank_scores`): each row's top ``candidates`` finite
    scores re-ranked, above every other item (whose order is kept)."""
    S = np.array(scores, dtype=np.float64, copy=True)
    pct = np.asarray(percentiles, dtype=np.float64)
    c = min(candidates, S.shape[1])
    top = np.argsort(-S, axis=1, kind="stable")[:, :c]
    bonus = np.abs(S[np.isfinite(S)]).max(initial=0.0) * 2 + 2.0 * c + 1.0
    for r in range(S.shape[0]):
        row = top[r]
        row = row[np.isfinite(S[r, row])]
        if row.size == 0:
            continue
        order = popularity_penalty(pct[row], weight)
        S[r, row[order]] = bonus + (row.size - np.arange(row.size))
    return S
