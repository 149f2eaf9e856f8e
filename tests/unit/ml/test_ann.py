"""Approximate nearest neighbours for big catalogues (ml/ann.py, the served VAE's candidates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml import ann, served_cache
from recommendations.ml.data import split_strong
from recommendations.ml.models import REGISTRY
from recommendations.ml.serving_model import served_form

from .test_serving_model import FAST_VAE, _histories


def _clustered_vectors(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decoder-like rows: 50 cluster directions plus noise, norms and biases that vary."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    W = centres[rng.integers(0, 50, n)] + 0.7 * rng.standard_normal((n, dim)).astype(np.float32)
    W *= rng.uniform(0.5, 1.5, (n, 1)).astype(np.float32)
    return W, rng.normal(0, 0.5, n).astype(np.float32)


def test_mips_augmentation_keeps_the_inner_product_order() -> None:
    W, b = _clustered_vectors(500, 16)
    z = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    items, q = ann.mips_items(W, b), ann.mips_queries(z)[0]
    by_l2 = np.argsort(((items - q) ** 2).sum(1), kind="stable")
    by_ip = np.argsort(-(W @ z + b), kind="stable")
    assert (by_l2[:50] == by_ip[:50]).all()


@pytest.mark.parametrize("dim", [16, 64])
def test_index_recall_at_100_against_the_exact_top_100(dim: int) -> None:
    """The goal of issue 17: recall@100 >= 0.95 of the exact top 100 (inner product)."""
    W, b = _clustered_vectors(20_000, dim)
    rng = np.random.default_rng(2)
    Z = W[rng.integers(0, len(W), 100)] + 0.3 * rng.standard_normal((100, dim)).astype(
        np.float32)
    index = ann.MipsIndex.build(W, b)
    found = index.search(Z, 100)
    truth = ann.exact_top(W, b, Z, 100)
    assert ann.recall(found, truth) >= 0.95
    # and it is a search, not a lookup: a tiny beam on a bad graph does worse
    poor = ann.MipsIndex.build(W, b, connectivity=2, expansion_add=2)
    assert ann.recall(poor.search(Z, 100, ef=1), truth) < ann.recall(found, truth)


def test_the_index_survives_bytes_and_a_mapped_view(tmp_path: Path) -> None:
    W, b = _clustered_vectors(3_000, 8)
    index = ann.MipsIndex.build(W, b)
    np.save(tmp_path / "index.npy", index.to_array())
    mapped = np.load(tmp_path / "index.npy", mmap_mode="r")
    view = ann.MipsIndex.view(mapped, W.shape[1] + 2)
    Z = W[:5]
    np.testing.assert_array_equal(view.search(Z, 20), index.search(Z, 20))


@pytest.fixture(scope="module")
def trained(clustered: sp.csr_matrix) -> dict:
    s = split_strong(clustered, n_heldout_users=40, seed=0)
    return {name: REGISTRY[name](**FAST_VAE).fit(s.train, s.validation)
            for name in ("vae", "next_basket")}


@pytest.mark.parametrize("name", ["vae", "next_basket"])
def test_candidates_covering_the_catalogue_score_as_the_exact_path(trained, name) -> None:
    """With every item a candidate, the candidate path (moments, blend on candidates) gives
    the exact path's scores: nothing is approximated but the set of items."""
    model = trained[name]
    exact = served_form(model)
    approx = served_form(model, ann_min_items=1)
    assert exact.score_candidates(_histories(model.n_items, [3]), 10, 64) is None
    for size in (1, 3, 9):
        X = _histories(model.n_items, [size], seed=size)
        cols, scores = approx.score_candidates(X, model.n_items, 256)
        assert len(cols) == model.n_items
        np.testing.assert_allclose(scores, exact.score(X)[0, cols], rtol=1e-4, atol=1e-7)


def test_few_candidates_keep_the_shoppers_own_items_scored_exactly(trained) -> None:
    """Only 5 candidates from the index, yet the shopper's own items (repeat, trend) are
    all among the columns with their exact repeat + trend scores."""
    model = trained["next_basket"]
    exact, approx = served_form(model), served_form(model, ann_min_items=1)
    X = _histories(model.n_items, [7], seed=4)
    cols, scores = approx.score_candidates(X, 5, 16)
    own = X.indices
    assert set(own) <= set(cols)
    full = exact.score(X)[0]
    at = np.searchsorted(cols, own)
    np.testing.assert_allclose(scores[at], full[own], rtol=1e-6)
    # new items: same order as the exact scores (the normaliser is estimated, the order not)
    new = np.setdiff1d(cols, own)
    s_new = scores[np.searchsorted(cols, new)]
    assert (np.argsort(-s_new, kind="stable") == np.argsort(-full[new], kind="stable")).all()


def test_the_cache_key_and_files_carry_the_index(trained, tmp_path: Path) -> None:
    model = trained["vae"]
    path = tmp_path / "model.npz"
    model.save(path)
    small = served_cache.cache_key("ab" * 32, 64, None)
    big = served_cache.cache_key("ab" * 32, 64, 1)
    assert small != big
    mapped = served_cache.load_served(path, tmp_path / "cache", big, 64, ann_min_items=1)
    assert isinstance(mapped.arrays["ann/index"], np.memmap)
    assert mapped.ann_index() is not None
    # rows read at random are read, not mapped (RowFile); they are the same rows
    w1 = mapped.arrays["w1"]
    assert isinstance(w1, served_cache.RowFile)
    rows = np.array([4, 0, 4, model.n_items - 1])
    np.testing.assert_array_equal(w1[rows], np.asarray(w1)[rows])
    np.testing.assert_array_equal(w1[1:3], np.asarray(w1)[1:3])
    with pytest.raises(IndexError):
        w1[np.array([model.n_items])]
    plain = served_cache.load_served(path, tmp_path / "cache", small, 64, ann_min_items=None)
    assert plain.ann_index() is None
    for sizes in ([2, 5], [3] * 12):  # the per-row and the batch paths read whole files
        np.testing.assert_allclose(mapped.score(_histories(model.n_items, sizes)),
                                   plain.score(_histories(model.n_items, sizes)), atol=1e-6)
    X = _histories(model.n_items, [4])
    cols, scores = mapped.score_candidates(X, model.n_items, 256)
    np.testing.assert_allclose(scores, plain.score(X)[0, cols], rtol=1e-5, atol=1e-6)


def test_similar_items_by_the_graph_match_the_exact_neighbours() -> None:
    from recommendations.ml.similarity import topk_cosine, topk_cosine_on_best_device

    W, _ = _clustered_vectors(5_000, 24, seed=5)
    exact_idx, exact_val = topk_cosine(W, 20)
    idx, val = ann.topk_cosine(W, 20)
    assert (idx != np.arange(len(W))[:, None]).all()  # never the item itself
    assert ann.recall(idx.astype(np.int64), exact_idx.astype(np.int64)) >= 0.95
    assert (np.diff(val, axis=1) <= 1e-6).all()  # best first
    assert np.mean(np.abs(val[:, 0] - exact_val[:, 0]) < 1e-4) >= 0.95  # cosines, not distances
    # the threshold switches the path: below it, exactly topk_cosine
    below_idx, _ = topk_cosine_on_best_device(W, 20, ann_min_items=len(W) + 1)
    np.testing.assert_array_equal(below_idx, exact_idx)
    above_idx, _ = topk_cosine_on_best_device(W, 20, ann_min_items=len(W))
    assert not np.array_equal(above_idx, exact_idx)  # the graph's (approximate) answer
    assert ann.recall(above_idx.astype(np.int64), exact_idx.astype(np.int64)) >= 0.95


def test_big_served_models_normalise_rows_when_read(trained) -> None:
    """With the index, the unit vectors are not stored twice: rows are normalised on read."""
    model = trained["vae"]
    exact, approx = served_form(model), served_form(model, ann_min_items=1)
    assert "unit" not in approx.arrays
    rows = np.array([0, 5, 7])
    np.testing.assert_allclose(approx.unit_vectors()[rows], exact.unit_vectors()[rows],
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(approx.unit_vectors()), exact.unit_vectors(),
                               atol=1e-6)
