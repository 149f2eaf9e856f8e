"""Strength and time reach the models; the next-basket blend learns re-buys from validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommendations.ml.artifacts import load_artifact, save_artifact
from recommendations.ml.data import build_interaction_matrix, split_strong
from recommendations.ml.models import EASE, REGISTRY, MultVAE, Recommender
from recommendations.ml.next_basket import NextBasket

FAST = {"epochs": 3, "hidden": 32, "latent": 8, "batch_size": 64, "seed": 1}


def _log(seed: int = 0) -> pd.DataFrame:
    """A tiny event log: 60 shoppers, 25 items, views / carts / purchases over 90 days."""
    rng = np.random.default_rng(seed)
    n = 900
    return pd.DataFrame({
        "user": rng.integers(0, 60, n), "item": rng.integers(0, 25, n),
        "event": rng.choice(["view", "add_to_cart", "purchase"], n, p=[0.6, 0.25, 0.15]),
        "timestamp": pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(rng.uniform(0, 90, n), unit="D"),
    })


@pytest.mark.parametrize("name", ["ease", "vae", "next_basket"])
def test_event_weights_change_the_scores(name: str) -> None:
    frame = _log()
    a = build_interaction_matrix(frame, {"view": 1, "add_to_cart": 3, "purchase": 5},
                                 aggregate="sum", half_life_days=30)
    b = build_interaction_matrix(frame, {"view": 1, "add_to_cart": 1, "purchase": 1},
                                 aggregate="sum", half_life_days=30)
    assert a.X.shape == b.X.shape and (a.X > 0).sum() == (b.X > 0).sum()  # same support

    def fit_score(X: sp.csr_matrix) -> np.ndarray:
        params = FAST if name != "ease" else {"l2": 10.0}
        return REGISTRY[name](**params).fit(X).score(X[:10])

    sa, sb = fit_score(a.X), fit_score(b.X)
    assert np.isfinite(sa).all() and not np.allclose(sa, sb, atol=1e-6)
    # ... and fitting twice on the same matrix is deterministic (the difference is the input)
    np.testing.assert_array_equal(sa, fit_score(a.X))


def test_binary_transform_keeps_the_old_behaviour(clustered: sp.csr_matrix) -> None:
    W = clustered.copy()
    W.data = np.linspace(1, 9, W.nnz).astype(np.float32)
    np.testing.assert_array_equal(EASE(input_transform="binary").fit(W).score(W[:5]),
                                  EASE(input_transform="binary").fit(clustered).score(W[:5]))
    with pytest.raises(ValueError, match="input_transform"):
        EASE(input_transform="sqrt")


def _validation(clustered: sp.csr_matrix, rebuy: bool):
    s = split_strong(clustered, seed=0, fraction=0.15)
    hist, new = s.validation
    if not rebuy:  # MovieLens-like: what they take next is never something they had
        return s.train, (hist, new)
    # grocery-like: the next basket is half of what they bought before
    rng = np.random.default_rng(0)
    again = hist.copy()
    again.data = (rng.random(again.nnz) < 0.5).astype(np.float32)
    again.eliminate_zeros()
    return s.train, (hist, again)


def test_the_blend_learns_that_nobody_rebuys(clustered: sp.csr_matrix) -> None:
    train, val = _validation(clustered, rebuy=False)
    m = NextBasket(**FAST).fit(train, val)
    assert m.blend_["repeat"] == 0.0 and m.blend_["explore"] > 0, m.blend_
    assert m.training_report()["blend"] == m.blend_


def test_the_blend_learns_that_rebuys_dominate(clustered: sp.csr_matrix) -> None:
    train, val = _validation(clustered, rebuy=True)
    m = NextBasket(**FAST).fit(train, val)
    assert m.blend_["repeat"] > 0 and m.blend_["repeat"] >= 10 * m.blend_["explore"], m.blend_
    hist = val[0][:20]
    top = np.argsort(-m.score(hist), axis=1)[:, :3]
    assert all(hist[i, j] > 0 for i, row in enumerate(top) for j in row)  # own items first
    # ... and the new items still follow the explore part (never all tied at 0)
    assert m.blend_["explore"] > 0
    new = np.where(hist.toarray() > 0, -np.inf, 0.0)
    np.testing.assert_array_equal(np.argmax(m.score(hist) + new, 1),
                                  np.argmax(m.components(hist)["explore"] + new, 1))


def test_the_explore_mix_is_chosen_on_the_explore_task(clustered: sp.csr_matrix) -> None:
    train, val = _validation(clustered, rebuy=False)
    m = NextBasket(**FAST).fit(train, val)
    b, search = m.blend_, m.blend_search_["explore_ndcg@20_by_T_s_a"]
    at_t = [v for k, v in search.items() if k.startswith(f"T={b['temperature']},")]
    chosen = search[f"T={b['temperature']},s={b['ease_weight']},a={b['trend_share']}"]
    assert len(at_t) == len(m.ease_weights) * len(m.trend_shares) and chosen == max(at_t)
    assert float(m.vae.net_.skip_weight) == b["ease_weight"]  # what scoring reads
    # a single EASE weight of 0 and no trend: the explore part ranks as the pure VAE
    m0 = NextBasket(**FAST, ease_weights=(0.0,), trend_shares=(0.0,)).fit(train, val)
    X = val[0][:10]
    m0.vae.net_.use_skip = False
    pure = np.where(X.toarray() > 0, -np.inf, m0.vae.score(X))
    m0.vae.net_.use_skip = True
    explore = np.where(X.toarray() > 0, -np.inf, m0.components(X)["explore"])
    np.testing.assert_array_equal(np.argmax(explore, 1), np.argmax(pure, 1))
    assert float(m0.vae.net_.skip_weight) == 0.0 and m0.blend_["ease_weight"] == 0.0


def test_explore_keeps_the_order_of_huge_logits() -> None:
    """Logits scaled by a large EASE weight must not saturate the softmax into ties."""
    from recommendations.ml.next_basket import _explore

    logits = np.array([[0.0, 1e3, 2e3, 3e3, 5e3, 9e3, -4e3]])
    seen = np.array([[False, False, False, False, False, True, False]])
    for T in (0.25, 2.0):
        E = _explore(logits, seen, np.zeros(7), T, 0.0).astype(np.float32)
        assert E[0, 5] == 0.0 and abs(E.sum() - 1.0) < 1e-5
        np.testing.assert_array_equal(np.argsort(-E[0, :5]), [4, 3, 2, 1, 0])
        assert len(set(E[0].tolist())) == 7  # no ties anywhere


def test_round_trip_and_one_visitor(clustered: sp.csr_matrix, tmp_path: Path) -> None:
    train, val = _validation(clustered, rebuy=True)
    m = NextBasket(**FAST, device="cpu").fit(train, val)
    X = val[0][:12]
    batch = m.score(X)  # 12 rows: the torch batch path
    one = m.score(X[3])  # one row: the numpy path
    assert one.shape == (1, X.shape[1]) and one.dtype == np.float32
    np.testing.assert_allclose(one[0], batch[3], rtol=1e-4, atol=1e-7)
    m.save(tmp_path / "nb.npz")
    loaded = Recommender.load(tmp_path / "nb.npz")
    assert isinstance(loaded, NextBasket) and loaded.blend_ == m.blend_
    np.testing.assert_allclose(loaded.score(X), batch, rtol=1e-4, atol=1e-7)
    assert loaded.training_report()["blend_search"] == m.training_report()["blend_search"]


def test_without_validation_the_documented_blend_is_used(clustered: sp.csr_matrix) -> None:
    from recommendations.ml.next_basket import FALLBACK_BLEND

    m = NextBasket(**FAST).fit(clustered)
    assert m.blend_ == FALLBACK_BLEND
    assert np.isfinite(m.score(sp.csr_matrix((2, clustered.shape[1])))).all()  # empty rows


def test_artifacts_from_before_the_transform_still_load(clustered: sp.csr_matrix,
                                                        tmp_path: Path) -> None:
    """Older artifacts have no input_transform (binary input) and RecVAE-era VAE keys."""
    for model in (EASE(input_transform="binary").fit(clustered),
                  MultVAE(**FAST, input_transform="binary").fit(clustered)):
        path = tmp_path / f"{model.name}.npz"
        model.save(path)
        header, arrays = load_artifact(path)
        hp = {k: v for k, v in header["hyperparameters"].items() if k != "input_transform"}
        if model.name == "vae":
            hp.update(encoder="mult", gamma=0.0, composite_prior=False, encoder_passes=1)
        save_artifact(path, model.name, hp, arrays, extra=header["extra"])
        loaded = Recommender.load(path)
        assert json.dumps(loaded.hyperparameters()["input_transform"]) == '"binary"'
        np.testing.assert_allclose(loaded.score(clustered[:5]), model.score(clustered[:5]),
                                   rtol=1e-5, atol=1e-5)
