"""A dismissal ("not interested", a negative weight) is a veto in training and in fold-in."""

import numpy as np
import pandas as pd

from recommendations.ml.data import DEFAULT_EVENT_WEIGHTS, build_interaction_matrix, build_rows
from recommendations.ml.foldin import event_row


def _log(rows):
    frame = pd.DataFrame(rows, columns=["user", "item", "event", "days_ago"])
    now = pd.Timestamp("2024-06-01", tz="UTC")
    frame["timestamp"] = now - pd.to_timedelta(frame.pop("days_ago"), unit="D")
    return frame


def test_a_dismissal_removes_the_item_from_that_shoppers_row_only():
    frame = _log(
        [
            (1, 10, "purchase", 30),
            (1, 10, "view", 29),
            (1, 10, "not_interested", 1),
            (1, 11, "view", 1),
            (2, 10, "view", 1),
            (2, 11, "view", 1),
        ]
    )
    for aggregate in ("max", "sum"):
        m = build_interaction_matrix(frame, aggregate=aggregate, half_life_days=30.0)
        X = pd.DataFrame(m.X.toarray(), index=m.user_ids, columns=m.item_ids)
        assert X.loc[1, 10] == 0 and X.loc[1, 11] > 0  # vetoed, whatever came before
        assert X.loc[2, 10] > 0  # another shopper's row keeps it


def test_without_the_veto_the_dismissed_item_would_count():
    """The test can fail: weight 0 (ignore) leaves the earlier purchase in the row."""
    frame = _log([(1, 10, "purchase", 3), (1, 10, "not_interested", 1), (1, 11, "view", 1)])
    ignore = {**DEFAULT_EVENT_WEIGHTS, "not_interested": 0.0}
    kept = build_interaction_matrix(frame, ignore)
    assert list(kept.item_ids) == [10, 11] and kept.X.toarray()[0, 0] > 0
    assert list(build_interaction_matrix(frame).item_ids) == [11]


def test_an_old_dismissal_never_fades():
    frame = _log([(1, 10, "view", 0), (1, 10, "not_interested", 100_000), (1, 11, "view", 0)])
    m = build_interaction_matrix(frame, half_life_days=1.0)
    assert list(m.item_ids) == [11]


def test_fold_in_row_equals_the_builders_row_with_a_dismissal():
    frame = _log(
        [
            (0, 10, "purchase", 5),
            (0, 10, "not_interested", 1),
            (0, 11, "view", 2),
            (0, 12, "add_to_cart", 0),
        ]
    )
    items = np.array([10, 11, 12, 13])
    weights = DEFAULT_EVENT_WEIGHTS
    expected = build_rows(
        frame.drop(columns="user"), items, weights, 30.0, now=frame["timestamp"].max()
    ).toarray()
    columns = np.searchsorted(items, frame["item"].to_numpy())
    ages = (frame["timestamp"].max() - frame["timestamp"]).dt.total_seconds().to_numpy() / 86400
    row = event_row(columns, list(frame["event"]), ages, len(items), weights, 30.0).toarray()
    np.testing.assert_allclose(row, expected, rtol=1e-6)
    assert row[0, 0] == 0 and row[0, 1] > 0
