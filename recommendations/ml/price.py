"""Price sensitivity: the price band a shopper usually pays, and a re-ranking that favours it.

:func:`price_bands` - per shopper (and category, when the log has one) the interquartile range
of the unit prices they paid; :func:`within_usual_range` - a pure re-ranking of a score matrix
that lifts the items priced inside the shopper's band. :func:`evaluate_price_rerank` measures it
on the temporal split (NDCG@20 of the served model with and without), choosing the boost on the
validation shoppers only. It is off by default: on online-retail it did not raise NDCG@20
(bench/results/churn.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

ALL = "*"  #: the category of a log without categories: one band per shopper
#: Off by default: turned on only where it was measured to raise NDCG@20 (it was not).
DEFAULT_BOOST = 0.0


def price_bands(frame: pd.DataFrame, category: str | None = "category", low_q: float = 0.25,
                high_q: float = 0.75, min_purchases: int = 3) -> pd.DataFrame:
    """Columns ``user``, ``category``, ``low``, ``high``, ``n`` (purchase lines).

    ``frame``: purchase lines with ``user``, ``unit_price`` and, when ``category`` names one of
    its columns, the item's category (else every line is category :data:`ALL`). A shopper needs
    ``min_purchases`` lines in a category for a band there: two purchases say little about a
    habit.
    """
    df = frame
    if "event" in df.columns:
        df = df[df["event"] == "purchase"]
    price = pd.to_numeric(df["unit_price"], errors="coerce")
    cat = df[category] if category is not None and category in df.columns else ALL
    lines = pd.DataFrame({"user": df["user"].to_numpy(), "price": price.to_numpy(),
                          "category": cat if isinstance(cat, str) else cat.to_numpy()})
    lines = lines[np.isfinite(lines["price"]) & (lines["price"] > 0)]
    g = lines.groupby(["user", "category"], sort=True)["price"]
    out = pd.DataFrame({"low": g.quantile(low_q), "high": g.quantile(high_q), "n": g.size()})
    return out[out["n"] >= min_purchases].reset_index()


def within_usual_range(scores: np.ndarray, item_prices: np.ndarray,
                       item_categories: Sequence[object] | np.ndarray | None,
                       bands: pd.DataFrame, user_ids: Sequence[object] | np.ndarray,
                       boost: float = 0.01) -> np.ndarray:
    """Scores (rows = ``user_ids``, columns = items) re-ranked: each row's scores become
    their rank percentile in [0, 1], and items priced inside the shopper's band for their
    category gain ``boost`` (0.01 = one hundredth of the catalogue's positions).

    Ranks, not raw scores, so the boost means the same for any model (raw scores can span
    orders of magnitude: a re-buy score dwarfs the rest). ``boost`` 0 keeps the order.
    Excluded entries (``-inf``) stay excluded; shoppers, categories or items without a band or
    a price are not boosted.
    """
    S = np.array(scores, dtype=np.float64, copy=True)
    if boost == 0 or S.size == 0 or bands.empty:
        return S
    prices = np.asarray(item_prices, np.float64)
    cats = (np.full(S.shape[1], ALL, dtype=object) if item_categories is None
            else np.asarray(item_categories, dtype=object))
    cat_index = pd.Index(pd.unique(np.concatenate([cats, bands["category"].to_numpy(object)])))
    user_index = pd.Index(user_ids)
    rows = user_index.get_indexer(bands["user"])
    cols = cat_index.get_indexer(bands["category"])
    ok = rows >= 0
    low = np.full((len(user_index), len(cat_index)), np.nan)
    high = np.full_like(low, np.nan)
    low[rows[ok], cols[ok]] = bands["low"].to_numpy(np.float64)[ok]
    high[rows[ok], cols[ok]] = bands["high"].to_numpy(np.float64)[ok]
    item_cat = cat_index.get_indexer(cats)
    with np.errstate(invalid="ignore"):
        inside = (prices[None, :] >= low[:, item_cat]) & (prices[None, :] <= high[:, item_cat])
    finite = np.isfinite(S)
    pct = rankdata(np.where(finite, S, -np.inf), axis=1) / S.shape[1]
    pct += np.where(inside, boost, 0.0)
    return np.where(finite, pct, S)


def item_prices(frame: pd.DataFrame, item_ids: np.ndarray) -> np.ndarray:
    """Median unit price of each item in ``item_ids`` over ``frame`` (NaN where never sold)."""
    med = frame.groupby("item")["unit_price"].median()
    return med.reindex(pd.Index(item_ids)).to_numpy(np.float64)


def evaluate_price_rerank(frame: pd.DataFrame, boosts: Sequence[float] = (0.001, 0.003, 0.01, 0.03),
                          window_days: float = 30.0, category: str | None = None,
                          k: int = 20) -> dict[str, Any]:
    """NDCG@k of the served model on :func:`temporal.split_temporal`, plain and re-ranked.

    Bands and item prices come from the log before the cut; the boost is chosen on the
    validation shoppers, then reported on the test shoppers next to every boost tried.
    """
    from .evaluate import default_algorithm, temporal_metrics
    from .models import REGISTRY
    from .policy import PLACEMENT_DEFAULTS, apply_exclusion
    from .temporal import split_temporal

    split = split_temporal(frame, window_days=window_days)
    before = frame[pd.to_datetime(frame["timestamp"], utc=True) < split.cut]
    bands = price_bands(before, category=category)
    cats = None
    if category is not None and category in before.columns:
        cats = before.groupby("item")[category].first().reindex(
            pd.Index(split.item_ids)).fillna(ALL).to_numpy(object)
    prices = item_prices(before, split.item_ids)
    algo = default_algorithm()
    model = REGISTRY[algo]()
    model.fit(split.train, validation=(split.validation.history, split.validation.truth))

    def served(held) -> np.ndarray:
        s = np.asarray(model.score(held.history), dtype=np.float64)
        apply_exclusion(s, held.bought, held.history, PLACEMENT_DEFAULTS["for_you"])
        return s

    result: dict[str, Any] = {"algorithm": algo, "cut": str(split.cut), "k": k,
                              "bands_customers": int(bands["user"].nunique()),
                              "category": category or "none (one band per shopper)"}
    for part in ("validation", "test"):
        held = getattr(split, part)
        base = served(held)
        rows = {"0": {t: temporal_metrics(base, held, t, k)[f"ndcg@{k}"]
                      for t in ("all", "explore")}}
        for b in boosts:
            s = within_usual_range(base, prices, cats, bands, held.user_ids, boost=b)
            rows[str(b)] = {t: temporal_metrics(s, held, t, k)[f"ndcg@{k}"]
                            for t in ("all", "explore")}
        result[part] = {"users": held.n_users, f"ndcg@{k}_by_boost": rows}
    val = result["validation"][f"ndcg@{k}_by_boost"]
    best = max(val, key=lambda b: val[b]["all"])
    test = result["test"][f"ndcg@{k}_by_boost"]
    result.update({"chosen_boost": float(best), "test_ndcg_plain": test["0"]["all"],
                   "test_ndcg_reranked": test[best]["all"],
                   "raises_ndcg": test[best]["all"] > test["0"]["all"]})
    return result
