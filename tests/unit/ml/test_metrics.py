"""Metrics against hand-computed values (written out from the formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml.metrics import (
    coverage_at_k,
    evaluate_scores,
    exclude_seen,
    ndcg_at_k,
    popularity_bias_at_k,
    popularity_percentiles,
    recall_at_k,
    top_k,
)

# 2 users x 5 items. User 0 ranks items 0,1,2,3,4; user 1 ranks items 4,3,2,1,0.
SCORES = np.array([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]], dtype=np.float32)
# truth: user 0 -> {1, 3}; user 1 -> {0}
TRUTH = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))


def test_top_k_order_and_ties() -> None:
    s = np.array([[1.0, 3.0, 3.0, 2.0]])
    assert top_k(s, 3).tolist() == [[1, 2, 3]]  # tie 1 vs 2 broken by lower index


def test_recall_hand_computed() -> None:
    # k=2: user 0 top {0,1}: 1 hit / min(2, 2) = 0.5; user 1 top {4,3}: 0 / min(2, 1) = 0
    r = recall_at_k(SCORES, TRUTH, 2)
    assert r.per_user.tolist() == [0.5, 0.0]
    assert r.mean == pytest.approx(0.25)
    # k=4: user 0 hits {1,3} -> 2/2 = 1; user 1 top {4,3,2,1}: 0/1 = 0
    assert recall_at_k(SCORES, TRUTH, 4).per_user.tolist() == [1.0, 0.0]
    # k=5: user 1 finds item 0 at rank 5 -> 1 / min(5, 1) = 1
    assert recall_at_k(SCORES, TRUTH, 5).mean == pytest.approx(1.0)


def test_ndcg_hand_computed() -> None:
    # user 0, k=4: hits at ranks 2 and 4 -> DCG = 1/log2(3) + 1/log2(5);
    # ideal (2 relevant) = 1/log2(2) + 1/log2(3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    # user 1, k=4: no hit -> 0
    n = ndcg_at_k(SCORES, TRUTH, 4)
    assert n.per_user[0] == pytest.approx(dcg / idcg)
    assert n.per_user[1] == 0.0
    # k=5: user 1 hit at rank 5 -> (1/log2(6)) / (1/log2(2))
    assert ndcg_at_k(SCORES, TRUTH, 5).per_user[1] == pytest.approx(1 / math.log2(6))
    # k=1: user 0 top is item 0 (miss) -> 0; ideal over min(1, 2) = 1 item
    assert ndcg_at_k(SCORES, TRUTH, 1).per_user.tolist() == [0.0, 0.0]


def test_perfect_ranking_is_one_and_empty_truth_is_nan() -> None:
    truth = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    n = ndcg_at_k(SCORES, truth, 3)
    assert n.per_user[0] == pytest.approx(1.0)
    assert math.isnan(n.per_user[1])
    assert n.mean == pytest.approx(1.0)  # NaN users are ignored by the mean


def test_exclude_seen_and_evaluate_scores() -> None:
    fold_in = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    s = exclude_seen(SCORES.copy(), fold_in)
    assert s[0, 0] == -np.inf and s[1, 4] == -np.inf
    # after exclusion user 0 ranks 1,2,3,4: top-2 {1,2} -> recall 1/2; user 1 ranks 3,2,1,0
    assert recall_at_k(s, TRUTH, 2).per_user.tolist() == [0.5, 0.0]
    res = evaluate_scores(lambda f: SCORES.copy(), fold_in, TRUTH, ks_recall=(2,), ks_ndcg=(2,),
                          k_coverage=2, batch_users=2)
    assert res["recall@2"] == pytest.approx(0.25)
    # user 0 top-2 after exclusion = items 1 (hit, rank 1), 2 -> DCG 1, IDCG 1 + 1/log2(3)
    assert res["ndcg@2"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 0.0) / 2)
    # top-2 after exclusion: user 0 {1, 2}, user 1 {3, 2} -> 3 distinct of 5 items
    assert res["coverage@2"] == pytest.approx(3 / 5)


def test_coverage_and_popularity_bias() -> None:
    # top-2: user 0 {0,1}, user 1 {4,3} -> 4 distinct of 5 items
    assert coverage_at_k(SCORES, 2) == pytest.approx(0.8)
    train = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]],
                                   dtype=np.float32))
    # counts 3,2,1,0,0 -> ranks (ties averaged) 4,3,2,0.5,0.5 / 4
    pct = popularity_percentiles(train)
    assert pct.tolist() == pytest.approx([1.0, 0.75, 0.5, 0.125, 0.125])
    # top-1: user 0 item 0 (1.0), user 1 item 4 (0.125) -> mean 0.5625
    assert popularity_bias_at_k(SCORES, train, 1) == pytest.approx(0.5625)


def test_hit_rate_at_k() -> None:
    from recommendations.ml.metrics import hit_rate_at_k

    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.8, 0.1, 0.0], [1, 0, 0, 0]], np.float32)
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]], np.float32))
    r = hit_rate_at_k(scores, truth, 2)
    assert r.per_user[:2].tolist() == [1.0, 0.0] and np.isnan(r.per_user[2])
    assert r.mean == 0.5
    assert hit_rate_at_k(scores, truth, 4).mean == 1.0
