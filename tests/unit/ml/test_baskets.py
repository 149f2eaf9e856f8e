"""Bought-together association lists and their offline check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommendations.ml.baskets import (
    association,
    evaluate_bought_together,
    raw_copurchase,
)


def orders(spec: list[tuple[list[str], int]]) -> pd.DataFrame:
    """``[(items, n_orders)]`` -> one row per order line."""
    rows, o = [], 0
    for items, n in spec:
        for _ in range(n):
            rows += [(f"o{o}", i) for i in items]
            o += 1
    return pd.DataFrame(rows, columns=["basket", "item"])


# 1000 orders; A in 100. X: 3 orders, 2 with A (lift 6.7, support 2);
# Y: 98 orders, 50 with A (lift 5.1, support 50); Z: filler best seller.
LOG = orders([(["A", "X"], 2), (["A", "Y"], 50), (["A", "Z"], 48), (["X", "Z"], 1),
              (["Y", "Z"], 48), (["Z", "W"], 851)])


def test_raw_lift_prefers_the_pair_seen_twice_shrinkage_does_not() -> None:
    assert association(LOG, method="lift").of("A")[0] == "X"
    shrunk = association(LOG, method="shrunk_lift", prior=50)
    assert shrunk.of("A")[:2] == ["Y", "X"]


def test_min_support_and_unknown_items() -> None:
    p = association(LOG, min_support=3)
    assert "X" not in p.of("A") and p.of("nope") == []
    assert p.indices.shape == (len(p.item_ids), 10) and (p.indices[:, -1] == -1).all()


def test_raw_copurchase_ranks_by_count() -> None:
    assert raw_copurchase(LOG).of("A")[:2] == ["Y", "Z"]


def test_evaluate_bought_together_counts_hits_per_order_item() -> None:
    train = orders([(["a", "b"], 5), (["c", "d"], 5)])
    test = orders([(["a", "b"], 1), (["a", "c"], 1), (["d"], 1)])
    r = evaluate_bought_together(train, test, k=10, build=raw_copurchase)
    # order 1: a->b hit, b->a hit; order 2: a->[b] miss, c->[d] miss; order 3 has 1 item
    assert r["orders"] == 2 and r["pairs"] == 4
    assert r["hitrate@10"] == pytest.approx(0.5) and r["coverage"] == 1.0
    big = orders([(["a", "b", "c"], 1)])
    assert evaluate_bought_together(train, big, build=raw_copurchase)["pairs"] == 3
    assert evaluate_bought_together(train, big, build=raw_copurchase,
                                    max_order_size=2)["pairs"] == 0


def test_recency_weighting_needs_timestamps_and_favours_recent_orders() -> None:
    old = orders([(["a", "b"], 5)]).assign(timestamp=pd.Timestamp("2020-01-01"))
    new = orders([(["a", "c"], 3)]).assign(basket=lambda f: "n" + f["basket"],
                                           timestamp=pd.Timestamp("2021-01-01"))
    log = pd.concat([old, new])
    assert association(log, method="count").of("a")[0] == "b"
    assert association(log, method="count", half_life_days=30).of("a")[0] == "c"
    with pytest.raises(KeyError):
        association(log.drop(columns="timestamp"), half_life_days=30)
    assert np.isfinite(association(log).scores).all()
