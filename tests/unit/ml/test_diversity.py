"""ml/diversity.py: MMR and the category cap keep their promises."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml.diversity import (
    category_cap,
    category_similarity,
    cosine_matrix,
    intra_list_diversity,
    mmr,
    popularity_penalty,
    popularity_percentiles,
    rank_relevance,
    rerank_popularity_scores,
    rerank_scores,
)
from recommendations.ml.metrics import coverage_at_k, top_k


def _clustered(n: int = 30, seed: int = 0) -> np.ndarray:
    """Items in 3 tight clusters, the incoming order putting one cluster first."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3) * 5
    labels = np.repeat(np.arange(3), n // 3)
    return centres[labels] + rng.normal(scale=0.1, size=(n, 3))


def test_lambda_one_keeps_the_order():
    sim = cosine_matrix(_clustered())
    assert mmr(sim, 1.0).tolist() == list(range(30))
    assert mmr(sim, 1.0, k=5).tolist() == list(range(30))


def test_lambda_one_with_scores_is_a_stable_sort():
    rel = np.array([3.0, 5.0, 5.0, 1.0])
    assert mmr(np.eye(4), 1.0, relevance=rel).tolist() == [1, 2, 0, 3]


def test_mmr_spreads_the_clusters_and_is_a_permutation():
    vectors = _clustered()
    order = mmr(cosine_matrix(vectors), 0.5, k=6)
    assert sorted(order.tolist()) == list(range(30))
    clusters = order[:3] // 10
    assert sorted(clusters.tolist()) == [0, 1, 2]  # one of each before any repeat
    assert order[0] == 0  # the most relevant item still leads
    plain = intra_list_diversity(np.arange(6)[None], vectors)
    diverse = intra_list_diversity(order[:6][None], vectors)
    assert diverse > plain + 0.3


def test_mmr_is_deterministic_with_ties():
    sim = np.ones((6, 6))  # every item alike: ties everywhere
    first = mmr(sim, 0.3)
    assert first.tolist() == list(range(6))
    for _ in range(3):
        assert mmr(sim, 0.3).tolist() == first.tolist()


def test_mmr_rejects_bad_input():
    with pytest.raises(ValueError):
        mmr(np.eye(3), 1.5)
    with pytest.raises(ValueError):
        mmr(np.ones((2, 3)), 0.5)
    with pytest.raises(ValueError):
        mmr(np.eye(3), 0.5, relevance=np.ones(2))


def test_category_cap_respected_and_nothing_lost():
    cats = ["a", "a", "a", "b", "a", "c", "b", "b", None, None, "c"]
    order = category_cap(cats, 2)
    assert sorted(order.tolist()) == list(range(len(cats)))
    head = [cats[i] for i in order[:8]]
    for c in ("a", "b", "c"):
        assert head.count(c) <= 2
    assert order[:8].tolist() == [0, 1, 3, 5, 6, 8, 9, 10]  # incoming order kept
    assert order[8:].tolist() == [2, 4, 7]  # deferred, in order
    assert category_cap(cats, 2).tolist() == order.tolist()
    assert category_cap(cats, 100).tolist() == list(range(len(cats)))
    with pytest.raises(ValueError):
        category_cap(cats, 0)


def test_category_similarity():
    s = category_similarity(["a", "b", "a", None, None])
    assert s[0, 2] == 1 and s[0, 1] == 0 and s[3, 4] == 0 and s[3, 3] == 1


def test_intra_list_diversity_bounds_and_sparse_input():
    v = np.eye(4)
    assert intra_list_diversity(np.array([[0, 1, 2]]), v) == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[0, 0, 0]]), v) == pytest.approx(0.0)
    assert intra_list_diversity(np.array([[0, 1, 2]]), sp.csr_matrix(v)) == pytest.approx(1.0)


def test_rerank_scores_lambda_one_is_unchanged_and_lower_raises_coverage():
    rng = np.random.default_rng(1)
    vectors = _clustered(60)
    # every user's scores favour cluster 0 (items 0..19), with a little noise
    base = np.concatenate([np.full(20, 2.0), np.full(20, 1.0), np.zeros(20)])
    scores = base + rng.normal(scale=0.3, size=(40, 60))
    same = rerank_scores(scores, vectors, 1.0, k=10, candidates=30)
    assert (top_k(same, 10) == top_k(scores, 10)).all()
    diverse = rerank_scores(scores, vectors, 0.5, k=10, candidates=30)
    assert intra_list_diversity(top_k(diverse, 10), vectors) > intra_list_diversity(
        top_k(scores, 10), vectors)
    assert coverage_at_k(diverse, 10) > coverage_at_k(scores, 10)


def test_rerank_scores_keeps_masked_items_out():
    scores = np.array([[3.0, -np.inf, 2.0, 1.0]])
    out = rerank_scores(scores, np.eye(4), 0.5, k=2, candidates=4)
    assert np.isneginf(out[0, 1])
    assert top_k(out, 3)[0].tolist().count(1) == 0


def test_rank_relevance():
    r = rank_relevance(4)
    assert r[0] == 1.0 and (np.diff(r) < 0).all()


def test_temporal_cli_reports_diversity_and_mmr_rows(tmp_path, capsys):
    import json

    from recommendations.ml import evaluate
    from tests.unit.ml.test_evaluate import _timed_log

    csv = _timed_log(tmp_path)
    assert evaluate.main(["--dataset", str(csv), "--protocol", "temporal", "--window-days",
                          "30", "--test-fraction", "0.3", "--models", "pop,served",
                          "--mmr", "1,0.3", "--popularity", "0,1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    by = {(r["model"], r["task"]): r for r in lines}
    assert set(by) == {(m, t) for m in ("pop", "served", "served_mmr1", "served_mmr0.3",
                                        "served_pop0", "served_pop1")
                       for t in ("all", "explore")}
    for r in lines:
        assert 0 < r["coverage@20"] <= 1 and 0 <= r["popularity_bias@20"] <= 1
        assert 0 <= r["ild@20"] <= 1
    plain, same = by[("served", "all")], by[("served_mmr1", "all")]
    for key in ("ndcg@20", "coverage@20", "ild@20"):
        assert same[key] == plain[key]
    assert by[("served_mmr0.3", "all")]["ild@20"] > plain["ild@20"]
    assert by[("served_mmr0.3", "all")]["diversity"] == {"method": "mmr", "lambda": 0.3}
    for task in ("all", "explore"):  # weight 0 serves the plain lists
        assert by[("served_pop0", task)]["ndcg@20"] == by[("served", task)]["ndcg@20"]
    assert by[("served_pop1", "all")]["popularity_bias@20"] < plain["popularity_bias@20"]
    # everybody gets the same best sellers: one list's worth of the catalogue
    assert by[("pop", "all")]["coverage@20"] <= plain["coverage@20"]


def test_popularity_percentiles_rank_with_ties():
    pct = popularity_percentiles(np.array([5.0, 0.0, 5.0, 10.0]))
    np.testing.assert_allclose(pct, [0.5, 0.0, 0.5, 1.0])
    assert popularity_percentiles(np.array([3.0])).tolist() == [0.0]


def test_popularity_penalty_lets_best_sellers_give_way_by_its_weight():
    # a 10-item list whose first three items are the best sellers, the rest unknown
    pct = np.array([1.0, 1.0, 1.0] + [0.0] * 7)
    assert popularity_penalty(pct, 0.0).tolist() == list(range(10))
    # weight 0.25 = 2.5 places of a 10-item list: each best seller moves 2.5 places down,
    # behind the unknown items it was less than 2.5 places ahead of
    order = popularity_penalty(pct, 0.25).tolist()
    assert order == [0, 3, 1, 4, 2, 5, 6, 7, 8, 9]
    assert popularity_penalty(pct, 5.0).tolist()[:7] == list(range(3, 10))
    with pytest.raises(ValueError, match="weight"):
        popularity_penalty(pct, -0.1)


def test_rerank_popularity_scores_spreads_lists_over_the_catalogue():
    rng = np.random.default_rng(2)
    popularity = np.arange(60, 0, -1).astype(float)  # item 0 sells best
    scores = -np.arange(60) + rng.normal(scale=3.0, size=(40, 60))  # everyone likes them
    scores[:, 5] = -np.inf  # hidden: stays out
    pct = popularity_percentiles(popularity)
    same = rerank_popularity_scores(scores, pct, 0.0, candidates=30)
    assert (top_k(same, 10) == top_k(scores, 10)).all()
    spread = rerank_popularity_scores(scores, pct, 1.0, candidates=30)
    assert coverage_at_k(spread, 10) > coverage_at_k(scores, 10)
    assert np.isneginf(spread[:, 5]).all()
