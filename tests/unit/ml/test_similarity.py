"""Blocked similarity jobs against brute force on small random data."""

from __future__ import annotations

import numpy as np

from recommendations.ml.similarity import topk_cosine


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
