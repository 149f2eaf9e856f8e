"""Served models score as the trained ones, from mapped files, in a process without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.ml import served_cache
from recommendations.ml.data import split_strong
from recommendations.ml.models import REGISTRY
from recommendations.ml.serving_model import (
    SMALL_BATCH,
    NotServable,
    build,
    convert,
    served_form,
    top_k_rows,
)

ROOT = Path(__file__).resolve().parents[3]
FAST_VAE = {"epochs": 3, "hidden": 32, "latent": 8, "batch_size": 64, "seed": 3}


def _histories(n_items: int, sizes: list[int], seed: int = 0) -> sp.csr_matrix:
    """One weighted, decayed history per size (0: empty), as serving builds them."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for r, size in enumerate(sizes):
        rows += [r] * size
        cols += rng.choice(n_items, size, replace=False).tolist()
        vals += rng.uniform(0.2, 8.0, size).tolist()
    return sp.csr_matrix((np.array(vals, np.float32), (rows, cols)),
                         shape=(len(sizes), n_items))


@pytest.fixture(scope="module")
def trained(clustered: sp.csr_matrix) -> dict:
    """One fitted model of each kind (the VAEs with validation: a chosen skip weight and
    blend, as training makes them)."""
    s = split_strong(clustered, n_heldout_users=40, seed=0)
    out = {}
    for name in ("vae", "next_basket", "ease", "itemknn", "pop"):
        params = FAST_VAE if name in ("vae", "next_basket") else {}
        out[name] = REGISTRY[name](**params).fit(s.train, s.validation)
    return out


@pytest.mark.parametrize("name", ["vae", "next_basket", "ease", "itemknn", "pop"])
@pytest.mark.parametrize("sizes", [[3], [1, 0, 9], [5] * SMALL_BATCH, [4] * 40])
def test_served_scores_equal_the_trained_model(trained, name: str, sizes: list[int]) -> None:
    """Dense (top_k=None): the same scores as the torch / scipy model, for one visitor
    (the per-row path) and for a batch (the BLAS path)."""
    model = trained[name]
    X = _histories(model.n_items, sizes, seed=len(sizes))
    expected = np.asarray(model.score(X), dtype=np.float32)
    got = served_form(model, top_k=None).score(X)
    assert got.dtype == np.float32 and got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= 2e-5 * scale


@pytest.mark.parametrize("name", ["vae", "next_basket"])
def test_served_item_vectors_are_the_trained_ones(trained, name: str) -> None:
    model, served = trained[name], served_form(trained[name], top_k=None)
    np.testing.assert_array_equal(served.item_vectors(), model.item_vectors())
    ind, val = served.similar_items([0, 5], k=4)
    ind_m, val_m = model.similar_items([0, 5], k=4)
    np.testing.assert_array_equal(ind, ind_m)
    np.testing.assert_allclose(val, val_m, atol=1e-5)


def test_top_k_rows_keeps_the_largest_magnitudes() -> None:
    B = np.array([[0.0, 3.0, -5.0, 1.0], [2.0, 0.0, 0.5, -0.1], [0.0, 0.0, 0.0, 0.0],
                  [1.0, -1.5, 0.2, 0.0]], np.float32)
    M = sp.csr_matrix((lambda p: (p["data"], p["indices"], p["indptr"]))(top_k_rows(B, 2)),
                      shape=B.shape)
    np.testing.assert_array_equal(M.toarray(), [[0, 3, -5, 0], [2, 0, 0.5, 0], [0, 0, 0, 0],
                                                [1, -1.5, 0, 0]])
    full = top_k_rows(B, None)
    np.testing.assert_array_equal(
        sp.csr_matrix((full["data"], full["indices"], full["indptr"]), shape=B.shape).toarray(), B)


def test_a_top_k_ease_scores_with_the_kept_entries_only(trained) -> None:
    """top_k < items: the score is the history times B with all but k entries per row
    zeroed (nothing else changes)."""
    model = trained["ease"]
    k = 7
    kept = np.zeros_like(model.B_)
    for i, row in enumerate(model.B_):
        top = np.argsort(-np.abs(row), kind="stable")[:k]
        kept[i, top] = row[top]
    for sizes in ([4], [2, 6, 3] * 4):
        X = _histories(model.n_items, sizes)
        from recommendations.ml.recommender import transform_values

        expected = transform_values(X, model.input_transform) @ kept
        got = served_form(model, top_k=k).score(X)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
        assert not np.allclose(got, model.score(X), atol=1e-5)  # the cut does change scores


def test_the_cache_maps_files_that_give_the_same_scores(trained, tmp_path: Path) -> None:
    model = trained["next_basket"]
    path = tmp_path / "model.npz"
    model.save(path)
    key = served_cache.cache_key("ab" * 32, 16)
    first = served_cache.load_served(path, tmp_path / "cache", key, 16)
    again = served_cache.open_cached(tmp_path / "cache", key)
    assert again is not None
    assert all(isinstance(a, np.memmap) for a in again.arrays.values())
    assert not again.arrays["vae/w1"].flags.writeable
    X = _histories(model.n_items, [3, 8])
    expected = served_form(model, top_k=16).score(X)
    np.testing.assert_array_equal(first.score(X), expected)
    np.testing.assert_array_equal(again.score(X), expected)
    del first, again  # their maps would see the damage below (the cache never writes in place)
    # a damaged folder is not used: it is removed, and converted again on the next load
    (tmp_path / "cache" / key / "trend.npy").write_bytes(b"damaged")
    assert served_cache.open_cached(tmp_path / "cache", key) is None
    assert not (tmp_path / "cache" / key).exists()
    rebuilt = served_cache.load_served(path, tmp_path / "cache", key, 16)
    np.testing.assert_array_equal(rebuilt.score(X), expected)


def test_idle_folders_are_pruned_when_another_is_written(tmp_path: Path) -> None:
    served_cache.write_cached(tmp_path, "old", *convert("pop", {}, {"n_items": 2},
                                                        {"counts": np.ones(2, np.float32)}))
    past = 1_000_000_000
    os.utime(tmp_path / "old" / served_cache.META, (past, past))
    served_cache.write_cached(tmp_path, "new", *convert("pop", {}, {"n_items": 2},
                                                        {"counts": np.ones(2, np.float32)}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_unknown_models_and_formats_are_refused() -> None:
    with pytest.raises(NotServable):
        convert("nothing", {}, {"n_items": 1}, {})
    meta, arrays = convert("pop", {}, {"n_items": 2}, {"counts": np.ones(2, np.float32)})
    with pytest.raises(NotServable):
        build({**meta, "format": -1}, arrays)
    with pytest.raises(ValueError):
        served_cache.cache_key("../../etc", 4)


def test_a_fresh_process_serves_without_importing_torch(trained, tmp_path: Path) -> None:
    """Converting an artifact, mapping it and scoring a visitor never import torch."""
    model = trained["next_basket"]
    path = tmp_path / "model.npz"
    model.save(path)
    X = _histories(model.n_items, [5])
    code = f"""
import json, sys
import numpy as np, scipy.sparse as sp
from recommendations.ml import served_cache
key = served_cache.cache_key("cd" * 32, 32)
m = served_cache.load_served({str(path)!r}, {str(tmp_path / 'cache')!r}, key, 32)
X = sp.csr_matrix((np.array({X.data.tolist()}, np.float32), {X.indices.tolist()},
                   {X.indptr.tolist()}), shape=(1, {model.n_items}))
print(json.dumps({{"torch": "torch" in sys.modules, "scores": m.score(X)[0].tolist()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    np.testing.assert_allclose(result["scores"], served_form(model, 32).score(X)[0], atol=1e-6)
