"""The temporal protocol: stable held-out shoppers, truth only in the window, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommendations.ml.data import build_interaction_matrix, build_rows
from recommendations.ml.temporal import (
    DAYS_EPS,
    buy_again_scores,
    heldout_bucket,
    split_temporal,
)

T0 = pd.Timestamp("2024-01-01")


def synthetic_log(n_users: int = 200, seed: int = 0) -> pd.DataFrame:
    """Shoppers buy from one of 4 item clusters over 100 days, re-buying some items."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = np.arange(10) + 10 * (u % 4)
        for day in sorted(rng.choice(100, 6, replace=False)):
            for item in rng.choice(own, 2, replace=False):
                rows.append((f"u{u}", f"i{item}", T0 + pd.Timedelta(days=int(day))))
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_heldout_bucket_is_stable_and_uniformish() -> None:
    assert heldout_bucket("u1") == heldout_bucket("u1")
    assert heldout_bucket(17) == heldout_bucket("17")  # str(id): an int id and its text agree
    assert heldout_bucket("u1") != heldout_bucket("u1", salt="x")
    b = np.array([heldout_bucket(f"u{i}") for i in range(2000)])
    assert b.min() >= 0 and b.max() < 1 and 0.07 < (b < 0.1).mean() < 0.13


def test_same_shoppers_held_out_on_a_grown_log() -> None:
    log = synthetic_log()
    a = split_temporal(log, cut=T0 + pd.Timedelta(days=60), test_fraction=0.2)
    more = pd.concat([log, synthetic_log(400, seed=1).assign(
        user=lambda f: "new" + f["user"])])
    b = split_temporal(more, cut=T0 + pd.Timedelta(days=60), test_fraction=0.2)
    assert len(a.test.user_ids) > 5
    assert set(a.test.user_ids) <= set(b.test.user_ids)
    assert set(a.validation.user_ids) <= set(b.validation.user_ids)


def test_folds_make_every_window_buyer_a_test_shopper_once() -> None:
    log = synthetic_log()
    cut = T0 + pd.Timedelta(days=60)
    splits = [split_temporal(log, cut=cut, test_fraction=0.25, fold=k) for k in range(4)]
    tests = [set(s.test.user_ids) for s in splits]
    assert all(tests) and sum(map(len, tests)) == len(set().union(*tests))  # disjoint
    before = log[log["timestamp"] < cut]
    window = log[(log["timestamp"] >= cut) & (log["timestamp"] < cut + pd.Timedelta(days=30))]
    items = set(splits[0].item_ids)
    eligible = set(before["user"]) & set(window.loc[window["item"].isin(items), "user"])
    assert set().union(*tests) == eligible  # every window buyer is tested exactly once
    for s, t in zip(splits, tests, strict=True):
        assert not (t & set(s.train_user_ids)) and not (t & set(s.validation.user_ids))
    assert tests[0] == set(split_temporal(log, cut=cut, test_fraction=0.25).test.user_ids)


def test_no_held_out_shopper_trains_and_truth_is_the_window() -> None:
    log = synthetic_log()
    cut = T0 + pd.Timedelta(days=60)
    s = split_temporal(log, cut=cut, window_days=20, test_fraction=0.2,
                       validation_fraction=0.2)
    train, test, val = set(s.train_user_ids), set(s.test.user_ids), set(s.validation.user_ids)
    assert train and test and val
    assert not (train & test) and not (train & val) and not (test & val)
    window = log[(log["timestamp"] >= cut) & (log["timestamp"] < cut + pd.Timedelta(days=20))]
    for r, u in enumerate(s.test.user_ids):
        got = set(s.item_ids[s.test.truth[r].indices])
        want = set(window.loc[window["user"] == u, "item"]) & set(s.item_ids)
        assert got == want and got
        hist = set(s.item_ids[s.test.history[r].indices])
        assert hist == set(log.loc[(log["user"] == u) & (log["timestamp"] < cut), "item"])
    assert s.test.truth.data.max() == 1.0
    assert 0 < s.repeat_share() < 1


def test_history_weights_orders_and_recency() -> None:
    cut = pd.Timestamp("2024-02-01")
    log = pd.DataFrame({
        "user": ["a", "a", "a", "a", "b"],
        "item": ["x", "x", "y", "x", "x"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-21", "2024-02-05",
                                     "2024-01-10"]),
        "basket": ["o1", "o1", "o2", "o3", "o4"],
    })
    s = split_temporal(log, cut=cut, test_fraction=0.999, validation_fraction=0.0,
                       half_life_days=10.0)
    # training shoppers: none (all held out) -> no columns; so build against a trainer
    assert s.train.shape[0] == 0 and len(s.item_ids) == 0
    log = pd.concat([log, pd.DataFrame({"user": ["t"] * 2, "item": ["x", "y"],
                                        "timestamp": pd.to_datetime(["2024-01-05"] * 2)})])
    salt = next(f"s{i}" for i in range(1000) if heldout_bucket("a", f"s{i}") < 0.5
                and heldout_bucket("t", f"s{i}") >= 0.5)
    s = split_temporal(log, cut=cut, test_fraction=0.5, validation_fraction=0.0,
                       half_life_days=10.0, salt=salt)
    assert list(s.test.user_ids) == ["a"] and list(s.item_ids) == ["x", "y"]
    # no event column: weight 1 per line; x: two lines of one order, 31 days old, summed;
    # y: 11 days old
    np.testing.assert_allclose(s.test.history.toarray()[0],
                               [2 * 0.5 ** 3.1, 0.5 ** 1.1], rtol=1e-5)
    assert s.test.orders.toarray()[0].tolist() == [1.0, 1.0]  # o1 counted once
    np.testing.assert_allclose(s.test.last_bought_days.toarray()[0],
                               [31 + DAYS_EPS, 11 + DAYS_EPS], rtol=1e-6)
    # serving-time fold-in gives the same row as the split's history
    one = log[(log["user"] == "a") & (log["timestamp"] < cut)].drop(columns="user")
    np.testing.assert_allclose(
        build_rows(one, s.item_ids, half_life_days=10.0, now=cut).toarray(),
        s.test.history.toarray(), rtol=1e-6)


def test_missing_timestamp_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        split_temporal(pd.DataFrame({"user": [1], "item": [2]}))


def test_buy_again_orders_then_recency_then_recent_best_sellers() -> None:
    from recommendations.ml.temporal import HeldOut

    # items 0..4; bought: 1 (3 orders, 40 days), 2 (3 orders, 5 days), 3 (1 order, 1 day)
    def row(values: dict[int, float]) -> sp.csr_matrix:
        m = np.zeros((1, 5), np.float32)
        for k, v in values.items():
            m[0, k] = v
        return sp.csr_matrix(m)

    held = HeldOut(user_ids=np.array(["a"]), history=row({1: 1, 2: 1, 3: 1}),
                   truth=row({0: 1}), bought=row({1: 1, 2: 1, 3: 1}),
                   orders=row({1: 3, 2: 3, 3: 1}),
                   last_bought_days=row({1: 40, 2: 5, 3: 1}))
    s = buy_again_scores(held, recent_popularity=np.array([1.0, 50, 50, 50, 9]))
    assert np.argsort(-s[0]).tolist() == [2, 1, 3, 4, 0]


def test_builder_over_given_items_keeps_old_behaviour() -> None:
    log = pd.DataFrame({"user": ["a", "b", "b"], "item": ["x", "y", "z"]})
    im = build_interaction_matrix(log, item_ids=np.array(["z", "x", "w"]),
                                  user_ids=np.array(["b", "a", "c"]))
    # rows in the given user order, columns in the given item order, y (not given) dropped
    assert im.X.toarray().tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert build_interaction_matrix(log).X.shape == (2, 3)


def test_recent_popularity_counts_training_orders_in_the_last_window() -> None:
    log = synthetic_log()
    cut = T0 + pd.Timedelta(days=60)
    s = split_temporal(log, cut=cut, window_days=20, test_fraction=0.2)
    recent = log[(log["timestamp"] >= cut - pd.Timedelta(days=20)) & (log["timestamp"] < cut)
                 & log["user"].isin(s.train_user_ids)]
    want = recent.groupby("item").size().reindex(s.item_ids).fillna(0).to_numpy()
    np.testing.assert_array_equal(s.recent_popularity, want)
    assert s.recent_popularity.sum() < len(log[log["timestamp"] < cut])
