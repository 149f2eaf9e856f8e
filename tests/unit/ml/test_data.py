"""Interaction matrix construction and strong-generalisation split invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommendations.ml.data import build_interaction_matrix, split_strong

LOG = pd.DataFrame({
    "user": ["a", "a", "a", "b", "b", "c"],
    "item": ["x", "x", "y", "x", "z", "z"],
    "event": ["view", "purchase", "add_to_cart", "view", "remove_from_cart", "view"],
    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-11", "2024-01-11",
                                 "2024-01-11", "2024-01-01"]),
})


def _dense(im) -> dict:
    X = im.X.toarray()
    return {(u, i): X[r, c] for r, u in enumerate(im.user_ids) for c, i in enumerate(im.item_ids)
            if X[r, c] != 0}


def test_weights_max_sum_and_ignored_events() -> None:
    im = build_interaction_matrix(LOG)
    assert im.X.dtype == np.float32 and sp.issparse(im.X)
    # a: x = max(view 1, purchase 5) = 5, y = 3; b: x = 1 (z only removed: ignored); c: z = 1
    assert _dense(im) == {("a", "x"): 5.0, ("a", "y"): 3.0, ("b", "x"): 1.0, ("c", "z"): 1.0}
    assert _dense(build_interaction_matrix(LOG, aggregate="sum"))[("a", "x")] == 6.0
    assert im.user_index()["b"] == list(im.user_ids).index("b")
    assert im.item_ids[im.item_index()["z"]] == "z"


def test_time_decay_and_binary() -> None:
    # half-life 10 days, reference = newest event (2024-01-11): 10-day-old events count half
    im = build_interaction_matrix(LOG, half_life_days=10.0, aggregate="sum")
    d = _dense(im)
    assert d[("a", "x")] == pytest.approx(0.5 * 1 + 5)
    assert d[("c", "z")] == pytest.approx(0.5)
    assert set(build_interaction_matrix(LOG, binary=True).X.data) == {1.0}


def test_rejects_unknown_event_and_filters_quantity() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        build_interaction_matrix(LOG.assign(event="like"))
    q = LOG.assign(quantity=[1, 1, -1, 1, 1, 1])
    assert ("a", "y") not in _dense(build_interaction_matrix(q))


def _random_matrix(n_users=400, n_items=80, seed=1) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sp.random(n_users, n_items, density=0.08, random_state=rng, format="csr",
                  dtype=np.float32)
    X.data[:] = 1.0
    return X


def test_split_invariants() -> None:
    X = _random_matrix()
    s = split_strong(X, fraction=0.1, seed=3)
    users = [set(s.train_users), set(s.validation_users), set(s.test_users)]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    counts = np.diff(X.indptr)
    assert (counts[np.concatenate([s.train_users, s.validation_users, s.test_users])] >= 5).all()
    n_items = s.train.shape[1]
    assert (np.diff(s.train.tocsc().indptr) > 0).all()  # every kept item seen in training
    for (fi, tr), held in ((s.validation, s.validation_users), (s.test, s.test_users)):
        assert fi.shape == tr.shape == (len(held), n_items)
        assert (np.diff(fi.indptr) >= 1).all() and (np.diff(tr.indptr) >= 1).all()
        assert fi.multiply(tr).nnz == 0  # fold-in and truth are disjoint ...
        original = X[held][:, s.item_index]
        assert abs((fi + tr) - original).sum() == 0  # ... and together the user's kept items
        frac = fi.nnz / (fi.nnz + tr.nnz)
        assert 0.7 < frac < 0.9
    # train keeps every item of the training users (restricted to kept columns)
    assert abs(s.train - X[s.train_users][:, s.item_index]).sum() == 0


def test_split_is_deterministic_by_seed() -> None:
    X = _random_matrix()
    a, b, c = split_strong(X, seed=5), split_strong(X, seed=5), split_strong(X, seed=6)
    assert (a.test_users == b.test_users).all()
    assert (a.test[1] != b.test[1]).nnz == 0 and (a.validation[0] != b.validation[0]).nnz == 0
    assert set(a.test_users) != set(c.test_users)


def test_split_n_heldout_and_errors() -> None:
    X = _random_matrix()
    s = split_strong(X, n_heldout_users=20, seed=0)
    assert len(s.validation_users) <= 20 and len(s.test_users) <= 20
    with pytest.raises(ValueError):
        split_strong(X, n_heldout_users=10_000)
