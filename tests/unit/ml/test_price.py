"""Price bands and the within-usual-range re-ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommendations.ml.price import ALL, price_bands, within_usual_range


def lines() -> pd.DataFrame:
    return pd.DataFrame({
        "user": ["a"] * 5 + ["b"] * 4 + ["c"] * 2,
        "unit_price": [1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 12.0, 14.0, 50.0, 1.0, 2.0],
        "category": ["x"] * 5 + ["y"] * 4 + ["x"] * 2,
    })


def test_bands_are_interquartile_ranges_with_enough_purchases() -> None:
    b = price_bands(lines()).set_index(["user", "category"])
    assert b.loc[("a", "x"), ["low", "high"]].tolist() == [2.0, 4.0]
    assert b.loc[("b", "y"), ["low", "high"]].tolist() == [11.5, 23.0]
    assert ("c", "x") not in b.index  # two purchases: no habit yet
    one = price_bands(lines(), category=None)
    assert set(one["category"]) == {ALL}


def test_rerank_lifts_in_band_items_only_for_their_category() -> None:
    bands = price_bands(lines())
    scores = np.array([[0.9, 0.5, 0.1, -np.inf], [0.9, 0.5, 0.1, 0.0]])
    prices = np.array([10.0, 3.0, 12.0, 3.0])
    cats = np.array(["x", "x", "y", "x"], dtype=object)
    out = within_usual_range(scores, prices, cats, bands, ["a", "b"], boost=0.6)
    assert np.argmax(out[0]) == 1  # a's x band is [2, 4]: item 1 jumps ahead
    assert np.isneginf(out[0, 3])  # excluded stays excluded
    assert np.argsort(-out[1]).tolist()[:2] == [2, 0]  # b's y band [11.5, 23] lifts item 2
    same = within_usual_range(scores, prices, cats, bands, ["a", "b"], boost=0.0)
    assert np.array_equal(same, scores)
    nobody = within_usual_range(scores, prices, cats, bands, ["u", "v"], boost=0.5)
    assert np.array_equal(np.argsort(-nobody, axis=1), np.argsort(-scores, axis=1))
