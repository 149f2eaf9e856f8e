"""Shared synthetic data for the ML unit tests (no Django)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


def clustered_matrix(n_users: int = 300, n_items: int = 60, n_clusters: int = 4,
                     per_user: int = 8, noise: float = 0.1, seed: int = 0) -> sp.csr_matrix:
    """Users belong to a cluster and mostly pick items of that cluster: structure a CF model
    can learn and that item popularity alone cannot explain (clusters are equally popular)."""
    rng = np.random.default_rng(seed)
    clusters = np.array_split(np.arange(n_items), n_clusters)
    rows, cols = [], []
    for u in range(n_users):
        own = clusters[u % n_clusters]
        n_noise = rng.binomial(per_user, noise)
        items = np.concatenate([
            rng.choice(own, per_user - n_noise, replace=False),
            rng.choice(n_items, n_noise, replace=False),
        ])
        items = np.unique(items)
        rows.extend([u] * len(items))
        cols.extend(items.tolist())
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Override the project-wide Django cache fixture: the ML core must test without Django
    (``-p no:django``), and it uses no cache."""
    yield


@pytest.fixture(scope="session")
def clustered() -> sp.csr_matrix:
    return clustered_matrix()


@pytest.fixture(autouse=True)
def _celery_in_process():
    """Override the project-wide Celery fixture: no Celery (and no Django) here."""
    yield
