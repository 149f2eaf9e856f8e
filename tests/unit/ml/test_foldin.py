"""Serving's one-shopper row is the training builder's row, and ranking helpers behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommendations.ml.data import build_rows
from recommendations.ml.foldin import closest_history, event_row, top_n

WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "remove_from_cart": 0.0, "purchase": 5.0}


@pytest.mark.parametrize("half_life", [None, 7.0, 30.0])
def test_event_row_equals_the_builder_for_one_shopper(half_life):
    rng = np.random.default_rng(3)
    item_ids = np.arange(100, 140)
    n = 60
    now = pd.Timestamp("2026-06-01", tz="UTC")
    ages = rng.uniform(0, 90, n)
    frame = pd.DataFrame({
        "item": rng.choice(item_ids, n),
        "event": rng.choice(list(WEIGHTS), n),
        "timestamp": now - pd.to_timedelta(ages, unit="D"),
    })
    expected = build_rows(frame, item_ids, WEIGHTS, half_life, now=now).toarray()
    columns = np.searchsorted(item_ids, frame["item"].to_numpy())
    got = event_row(columns, frame["event"].tolist(), ages, len(item_ids), WEIGHTS,
                    half_life).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert (got > 0).sum() < len(item_ids)  # not a trivially full row


def test_a_purchase_outweighs_a_view_and_old_events_fade():
    row = event_row(np.array([0, 1, 2]), ["purchase", "view", "purchase"],
                    np.array([0.0, 0.0, 60.0]), 3, WEIGHTS, 30.0).toarray().ravel()
    assert row[0] == pytest.approx(5.0) and row[1] == pytest.approx(1.0)
    assert row[2] == pytest.approx(5.0 / 4)


def test_top_n_ranks_finite_scores_best_first():
    scores = np.array([0.1, np.inf * -1, 0.9, 0.5, 0.9])
    assert top_n(scores, 3).tolist() == [2, 4, 3]
    assert top_n(scores, 10).tolist() == [2, 4, 3, 0]


def test_closest_history_picks_the_nearest_history_item():
    vectors = np.eye(4, dtype=np.float32)
    vectors[3] = [0.9, 0.1, 0.0, 0.0]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert closest_history(vectors, np.array([3]), np.array([1, 0])).tolist() == [0]
