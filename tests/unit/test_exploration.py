"""Thompson sampling and the exploring positions: pure functions, seeded, no database."""

import numpy as np
import pytest

from recommendations.serving.exploration import positions, thompson


def test_thompson_prefers_an_item_with_clicks_over_one_shown_often_and_never_clicked():
    rng = np.random.default_rng(20240601)
    impressions, clicks = np.array([20, 200]), np.array([3, 0])  # 15 % vs 0 % observed
    wins = sum(int(thompson(impressions, clicks, 1, rng)[0] == 0) for _ in range(2000))
    # Beta(4, 18) beats Beta(1, 201) in about 99.9 % of draws; 1,900 of 2,000 at least.
    assert wins >= 1900


def test_thompson_gives_an_unseen_item_its_chance_and_keeps_exploring():
    rng = np.random.default_rng(7)
    impressions, clicks = np.array([0, 99, 99]), np.array([0, 0, 5])
    picks = np.bincount(
        [thompson(impressions, clicks, 1, rng)[0] for _ in range(3000)], minlength=3
    )
    # The flat prior of an unseen item wins most draws; the 0-click item almost never wins.
    assert picks[0] > picks[2] > picks[1]
    assert picks[1] < 30 and picks[2] > 30


def test_thompson_returns_the_n_best_draws_in_order():
    rng = np.random.default_rng(1)
    top = thompson(np.array([10, 10, 10, 10]), np.array([9, 0, 5, 1]), 3, rng)
    assert len(set(top.tolist())) == 3 and top[0] == 0
    assert thompson(np.array([1]), np.array([0]), 0, rng).size == 0


@pytest.mark.parametrize(
    ("k", "rate", "expected"),
    [(8, 0.25, [2, 5]), (12, 0.0, []), (12, 0.5, [1, 3, 5, 6, 8, 10]), (4, 1.0, [0, 1, 2, 3])],
)
def test_positions_are_the_share_spread_evenly(k, rate, expected):
    got = positions(k, rate, np.random.default_rng(0))
    assert len(got) == round(k * rate) and got == expected[: len(got)]
    assert all(0 <= p < k for p in got)


def test_a_fractional_share_is_rounded_at_random_to_its_expectation():
    rng = np.random.default_rng(3)
    counts = [len(positions(12, 0.1, rng)) for _ in range(4000)]  # 1.2 positions a list
    assert set(counts) == {1, 2}
    assert abs(np.mean(counts) - 1.2) < 0.03
