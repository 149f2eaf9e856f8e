"""The single-visitor scoring path (numpy, no torch threads) gives the batch path's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recommendations.ml.models import MultVAE, transform_values
from recommendations.ml.vae import (
    SMALL_BATCH,
    VAEConfig,
    VAENet,
    score_users,
    score_users_small,
)

FAST_VAE = {"epochs": 3, "hidden": 32, "latent": 8, "batch_size": 64}
TOL = 1e-4


def _rows(n_items: int, sizes: list[int], seed: int = 0) -> sp.csr_matrix:
    """One row per size: that many distinct items (0: an empty history)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for r, size in enumerate(sizes):
        picked = rng.choice(n_items, size, replace=False)
        rows += [r] * size
        cols += picked.tolist()
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sizes), n_items)
    )


def _net(n_items: int, skip: bool, decoder_hidden: bool, seed: int = 0) -> VAENet:
    torch.manual_seed(seed)
    cfg = VAEConfig(hidden=48, latent=16, decoder_hidden=decoder_hidden)
    B = torch.randn(n_items, n_items) * 0.1 if skip else None
    net = VAENet(n_items, cfg, skip=B).eval()
    if skip:
        net.skip_weight.fill_(20.0)
    return net


@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("decoder_hidden", [True, False])
def test_small_path_matches_the_batch_path(skip: bool, decoder_hidden: bool) -> None:
    net = _net(300, skip, decoder_hidden)
    X = _rows(300, [4, 1, 0, 17, 50, 3])
    expected = score_users(net, X, torch.device("cpu"))
    fast = score_users_small(net, X)
    assert fast is not None and fast.dtype == np.float32 and fast.shape == expected.shape
    np.testing.assert_allclose(fast, expected, rtol=0, atol=TOL)


def test_a_trained_model_ranks_a_visitor_the_same(clustered: sp.csr_matrix) -> None:
    """Through MultVAE.score (what services' fold-in calls), on a trained hybrid model."""
    m = MultVAE(**FAST_VAE, device="cpu").fit(clustered)  # as served: artifacts load on CPU
    assert m.net_.skip_B is not None  # the default hybrid: the EASE term is included
    for sizes in ([4], [1], [3, 9, 2], [5] * SMALL_BATCH):
        X = _rows(clustered.shape[1], sizes, seed=len(sizes))
        X.data = np.linspace(0.5, 6.0, X.nnz).astype(np.float32)  # weighted, decayed values
        expected = score_users(m.net_, transform_values(X, "log"), m._device)
        got = m.score(X)
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
        for row_got, row_exp in zip(got, expected, strict=True):
            top = np.argsort(-row_exp, kind="stable")[:20]
            # Same top 20 unless two scores tie within the tolerance.
            gaps = np.diff(np.sort(row_exp)[::-1][:21])
            if np.all(np.abs(gaps) > 2 * TOL):
                assert list(np.argsort(-row_got, kind="stable")[:20]) == list(top)


def test_weighted_rows_are_normalised_like_the_batch_path() -> None:
    net = _net(120, skip=True, decoder_hidden=False)
    X = _rows(120, [5, 2])
    X.data = np.array([1, 2, 3, 4, 5, 0.5, 7], np.float32)
    np.testing.assert_allclose(
        score_users_small(net, X), score_users(net, X, torch.device("cpu")), rtol=0, atol=TOL
    )


def test_the_small_path_follows_the_weights_after_they_change() -> None:
    net = _net(100, skip=True, decoder_hidden=False)
    X = _rows(100, [4])
    before = score_users_small(net, X)
    with torch.no_grad():
        net.encoder.fc1.weight.add_(0.5)
        net.skip_weight.fill_(3.0)
    after = score_users_small(net, X)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, score_users(net, X, torch.device("cpu")), atol=TOL)


def test_where_it_does_not_apply_the_batch_path_is_used(tmp_path: Path) -> None:
    class OtherEncoder(VAENet):  # a research encoder (bench/research) the path cannot read
        def make_encoder(self, n_items, cfg):
            return torch.nn.Sequential(torch.nn.Linear(n_items, 2 * cfg.latent))

    torch.manual_seed(0)
    other = OtherEncoder(80, VAEConfig(hidden=32, latent=8)).eval()
    assert score_users_small(other, _rows(80, [3])) is None
    big = _rows(80, [2] * (SMALL_BATCH + 1))
    assert score_users_small(_net(80, True, False), big) is None
    # MultVAE.score still answers for more rows than SMALL_BATCH, through score_users.
    m = MultVAE(**FAST_VAE, skip_l2=None, device="cpu").fit(_rows(80, [6] * 40, seed=3))
    np.testing.assert_array_equal(
        m.score(big), score_users(m.net_, transform_values(big, "log"), m._device))
    X = _rows(80, [3])
    # and a saved, reloaded mult model takes the small path with the same result
    mult = MultVAE(**FAST_VAE, device="cpu").fit(_rows(80, [6] * 40, seed=4))
    mult.save(tmp_path / "m.npz")
    loaded = MultVAE.load(tmp_path / "m.npz")
    assert loaded._device.type == "cpu"  # served on CPU, also where a GPU is present
    np.testing.assert_allclose(loaded.score(X), mult.score(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(
        loaded.score(X), score_users(loaded.net_, transform_values(X, "log"), loaded._device),
        atol=TOL
    )


def test_a_network_off_cpu_float32_is_declined_not_crashed() -> None:
    """A net trained on CUDA (or cast to bf16) is scored by score_users on its own device: the
    small path must decline it before touching its weights as numpy (an H200 run caught a
    .numpy() of a CUDA tensor here; bf16 weights fail the same way and run on any machine)."""
    net = _net(50, skip=True, decoder_hidden=True).to(torch.bfloat16)
    assert score_users_small(net, _rows(50, [3])) is None
    if torch.cuda.is_available():
        assert score_users_small(_net(50, True, True).cuda(), _rows(50, [3])) is None
