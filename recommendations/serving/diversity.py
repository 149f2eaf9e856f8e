"""Per-placement diversity: ``RECOMMENDATIONS["DIVERSITY"]``, applied by ``assemble.finish``.

    RECOMMENDATIONS = {"DIVERSITY": {
        "for_you": {"METHOD": "mmr", "LAMBDA": 0.9},          # maximal marginal relevance
        "popular": {"METHOD": "category_cap", "CAP": 3},      # at most 3 per category
        "similar": {"METHOD": "popularity", "WEIGHT": 0.5},   # best sellers give way
    }}

Off by default (no placement named; a system check validates what is). MMR re-ranks the
first ``CANDIDATES`` x ``k`` visible items of the list (model candidates first, then
fallbacks) by their rank and how alike they are (:func:`recommendations.ml.diversity.mmr`):
``SIMILARITY`` ``"model"`` (default) is the cosine of the active version's item vectors
where both items have one, else 1 for the same category and 0 otherwise; ``"category"``
uses categories only. The category cap keeps at most
``CAP`` items of a category in the list's first positions, the rest following. The
popularity penalty re-ranks the same head by rank minus ``WEIGHT`` times each item's
popularity percentile (:func:`recommendations.ml.diversity.popularity_penalty`): the active
version's trend for the default model (what it learnt sells), else the ranks of the popular
list; an item with neither counts as unpopular. Merchandising rules apply after this (a pin
stays where the shop pinned it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..adapters import get_adapter
from ..conf import DIVERSITY_DEFAULTS, app_settings
from ..ml.diversity import (
    category_cap,
    category_similarity,
    mmr,
    popularity_penalty,
    popularity_percentiles,
)
from .types import Recommendation


def config(placement: str) -> dict[str, Any] | None:
    """The placement's diversity setting over :data:`DEFAULTS`, or None when off."""
    entry = app_settings.DIVERSITY.get(placement)
    if not entry or not entry.get("METHOD"):
        return None
    return {**DIVERSITY_DEFAULTS, **entry}


def diversify(
    placement: str, recs: list[Recommendation], k: int, cfg: dict[str, Any]
) -> list[Recommendation]:
    """``recs`` re-ordered by the placement's setting (``cfg``: :func:`config`)."""
    if len(recs) < 2:
        return recs
    adapter = get_adapter()
    head, tail = recs[: cfg["CANDIDATES"] * k], recs[cfg["CANDIDATES"] * k :]
    categories = [adapter.item_category_id(rec.item) for rec in head]
    if cfg["METHOD"] == "category_cap":
        order = category_cap(categories, cfg["CAP"])
    elif cfg["METHOD"] == "popularity":
        order = popularity_penalty(_percentiles([rec.item.pk for rec in head]),
                                   float(cfg["WEIGHT"]))
    else:
        sim = category_similarity(categories)
        if cfg["SIMILARITY"] == "model":
            sim = _model_similarity([rec.item.pk for rec in head], sim)
        order = mmr(sim, float(cfg["LAMBDA"]), k=k)
    return [head[i] for i in order] + tail


_percentile_memo: dict[int, np.ndarray] = {}


def _percentiles(item_ids: list[Any]) -> np.ndarray:
    """The items' popularity percentiles: from the served version's trend where it has one
    (computed once per version and process), else from the ranks of the popular list."""
    from .pool import active_model

    loaded = active_model.get()
    trend = None
    if loaded is not None:
        arrays = getattr(loaded.model, "arrays", None)
        trend = arrays.get("trend") if arrays is not None else None
    if trend is not None:
        pct = _percentile_memo.get(loaded.version_id)
        if pct is None:
            _percentile_memo.clear()  # one version at a time is plenty
            pct = _percentile_memo[loaded.version_id] = popularity_percentiles(trend)
        index = active_model.index()
        rows = np.array([index.get(int(pk), -1) for pk in item_ids])
        return np.where(rows >= 0, pct[np.maximum(rows, 0)], 0.0)
    from .popularity import popular_rows

    rows = popular_rows(app_settings.POPULAR_WINDOW_DAYS)
    n = max(loaded.model.n_items if loaded is not None else 0, len(rows), 1)
    rank = {item: r for r, (item, _, _) in enumerate(rows)}
    return np.array([(n - rank[pk]) / n if pk in rank else 0.0 for pk in item_ids])


def _model_similarity(item_ids: list[Any], fallback: np.ndarray) -> np.ndarray:
    """Cosine of the served version's unit item vectors where both items have one;
    ``fallback`` (category similarity) elsewhere."""
    from .pool import active_model

    if active_model.get() is None:
        return fallback
    index, unit = active_model.index(), active_model.vectors()
    rows = np.array([index.get(int(pk), -1) for pk in item_ids])
    known = rows >= 0
    sim = fallback.copy()
    if unit is not None and known.sum() >= 2:
        pos = np.flatnonzero(known)
        v = unit[rows[pos]]
        cosine = v @ v.T  # sparse for a served EASE (its item-item rows)
        sim[np.ix_(pos, pos)] = cosine.toarray() if sp.issparse(cosine) else cosine
    return sim
