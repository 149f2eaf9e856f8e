"""Blocked similarity jobs against brute force on small random data."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recommendations.ml.similarity import copurchase_lift, topk_cosine


def test_topk_cosine_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    V = rng.normal(size=(53, 7)).astype(np.float32)
    idx, val = topk_cosine(V, k=5, block_size=8)  # several blocks, last one partial
    assert idx.shape == (53, 5) and idx.dtype == np.int32 and val.dtype == np.float32
    Vn = V / np.linalg.norm(V, axis=1, keepdims=True)
    S = Vn @ Vn.T
    np.fill_diagonal(S, -np.inf)
    expected = np.argsort(-S, axis=1, kind="stable")[:, :5]
    assert (idx == expected).all()
    assert np.allclose(val, np.take_along_axis(S, expected, axis=1), atol=1e-5)
    assert (idx != np.arange(53)[:, None]).all()  # never the item itself
    # torch path gives the same neighbours
    idx_t, _ = topk_cosine(V, k=5, block_size=16, device="cpu")
    assert (idx_t == idx).all()


def test_topk_cosine_clips_k() -> None:
    idx, _ = topk_cosine(np.eye(3, dtype=np.float32), k=10)
    assert idx.shape == (3, 2)


def test_copurchase_lift_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    B = (rng.random((200, 15)) < 0.25).astype(np.float32)
    idx, lift = copurchase_lift(sp.csr_matrix(B), min_support=3, k=4, block_size=4)
    n, counts = B.shape[0], B.sum(0)
    support = B.T @ B
    for i in range(15):
        cand = [(-(support[i, j] * n / (counts[i] * counts[j])), -support[i, j], j)
                for j in range(15) if j != i and support[i, j] >= 3]
        best = sorted(cand)[:4]
        exp_idx = [j for _, _, j in best] + [-1] * (4 - len(best))
        assert idx[i].tolist() == exp_idx
        assert np.allclose(lift[i, :len(best)], [-x for x, _, _ in best], rtol=1e-5)


def test_copurchase_lift_min_support_pads() -> None:
    B = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    idx, lift = copurchase_lift(B, min_support=2, k=2)
    assert (idx == -1).all() and (lift == 0).all()  # no pair bought together twice
    idx, lift = copurchase_lift(B, min_support=1, k=2)
    # item 0 with 1: support 1, lift 1*3/(2*1) = 1.5; with 2: 1*3/(2*2) = 0.75
    assert idx[0].tolist() == [1, 2]
    assert np.allclose(lift[0], [1.5, 0.75])


def test_the_similarity_pass_falls_back_to_the_cpu_when_the_gpu_is_full(monkeypatch) -> None:
    """CI has no GPU: a stand-in device that runs out of memory exercises the fallback."""
    import torch

    from recommendations.ml import similarity

    real = similarity.topk_cosine
    tried: list[str] = []

    def full_gpu(vectors, k, block_size=1024, device=None):
        tried.append(device)
        if device == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(vectors, k, block_size, device)

    monkeypatch.setattr(similarity, "compute_device", lambda: "cuda")
    monkeypatch.setattr(similarity, "topk_cosine", full_gpu)
    V = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    idx, _ = similarity.topk_cosine_on_best_device(V, 3)
    assert tried == ["cuda", "cpu"]
    assert (idx == real(V, 3)[0]).all()
