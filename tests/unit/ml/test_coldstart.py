"""The cold-start content map and its protocol (recommendations.ml.coldstart)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml.coldstart import (
    ContentMap,
    choose_alpha,
    evaluate_cold_start,
    split_items,
)
from recommendations.ml.content import documents, tfidf
from recommendations.ml.datasets import DatasetNotFound, load_item_content


def themed_world(seed: int = 0, themes: int = 16, per_theme: int = 25, shoppers: int = 800):
    """Items of a theme share a word; each shopper buys from two paired themes, so what a
    shopper's history says about the other theme is collaborative, not lexical."""
    rng = np.random.default_rng(seed)
    n = themes * per_theme
    theme = np.repeat(np.arange(themes), per_theme)
    texts = [f"theme{t} filler{rng.integers(50)} thing{rng.integers(50)}" for t in theme]
    rows, cols = [], []
    for u in range(shoppers):
        a = rng.integers(themes // 2) * 2
        for t in (a, a + 1):
            for j in rng.choice(np.flatnonzero(theme == t), size=5, replace=False):
                rows.append(u)
                cols.append(j)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(shoppers, n))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X, tfidf(documents(texts, [None] * n, [None] * n))


def test_split_items_is_a_seeded_partition() -> None:
    s = split_items(1000, 0.1, seed=3)
    assert len(s.new) == 100 and len(s.known) == 900
    assert not set(s.new) & set(s.known)
    assert sorted({*s.new, *s.known}) == list(range(1000))
    assert np.array_equal(split_items(1000, 0.1, seed=3).new, s.new)
    assert not np.array_equal(split_items(1000, 0.1, seed=4).new, s.new)
    with pytest.raises(ValueError):
        split_items(10, 1.0, seed=0)


def test_content_map_recovers_a_linear_relation() -> None:
    rng = np.random.default_rng(0)
    F = sp.random(300, 40, density=0.2, random_state=1, format="csr")
    W = rng.normal(size=(40, 7))
    targets = F @ W
    cmap = ContentMap(alpha=1e-6).fit(F[:250], targets[:250])
    assert np.allclose(cmap.predict(F[250:]), targets[250:], atol=1e-3)
    with pytest.raises(RuntimeError):
        ContentMap().predict(F)


def test_content_map_beats_random_and_the_tfidf_profile_on_paired_themes() -> None:
    X, F = themed_world()
    rows = {r["model"]: r for r in evaluate_cold_start(X, F, seed=0)}
    assert set(rows) == {"random", "tfidf_profile", "content_map"}
    assert rows["content_map"]["new_items"] == 40
    assert rows["content_map"]["ndcg@20"] > 2 * rows["random"]["ndcg@20"]
    # the profile finds only the themes the history names; the map also learnt the pairs
    assert rows["content_map"]["ndcg@20"] > rows["tfidf_profile"]["ndcg@20"]


def test_the_ridge_strength_is_chosen_without_the_test_items() -> None:
    X, F = themed_world(seed=1)
    split = split_items(X.shape[1], 0.1, seed=0)
    before = choose_alpha(X, F, split, (0.1, 1.0, 10.0), l2=10.0, seed=0)
    scrambled = X.tolil()
    rng = np.random.default_rng(5)
    for j in split.new:  # rewrite who bought the test items: nothing chosen may change
        scrambled[:, j] = (rng.random((X.shape[0], 1)) < 0.3).astype(np.float32)
    after = choose_alpha(scrambled.tocsr(), F, split, (0.1, 1.0, 10.0), l2=10.0, seed=0)
    assert before == after


def test_features_must_describe_every_item() -> None:
    X, F = themed_world()
    with pytest.raises(ValueError, match="feature rows"):
        evaluate_cold_start(X, F[:-1])


def test_online_retail_descriptions_and_prices() -> None:
    try:
        texts, categories, prices = load_item_content(
            "online-retail", np.array(["85123A", "NO-SUCH-CODE"]))
    except DatasetNotFound:
        pytest.skip("online-retail is not in data/ (it is committed: check the checkout)")
    assert "HEART" in texts[0] and texts[1] == ""
    assert prices[0] is not None and prices[0] > 0 and prices[1] is None
    assert categories == [None, None]
