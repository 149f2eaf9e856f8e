"""Every REGISTRY model: fit, score shape, save/load round trip; artifacts; EASE memory cap."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recommendations.ml.artifacts import ArtifactError, load_artifact, save_artifact
from recommendations.ml.data import split_strong
from recommendations.ml.metrics import evaluate_scores
from recommendations.ml.models import (
    DEFAULT_ALGORITHM,
    EASE,
    REGISTRY,
    CatalogueTooLargeError,
    MultVAE,
    Recommender,
)

FAST_VAE = {"epochs": 3, "hidden": 32, "latent": 8, "batch_size": 64}


def _make(name: str):
    return REGISTRY[name](**FAST_VAE) if name in ("vae", "next_basket") else REGISTRY[name]()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_fit_score_save_load_round_trip(name: str, clustered: sp.csr_matrix,
                                        tmp_path: Path) -> None:
    s = split_strong(clustered, seed=0)
    model = _make(name).fit(s.train, validation=s.validation, progress=None)
    fi = s.test[0]
    scores = model.score(fi)
    assert scores.shape == fi.shape and scores.dtype == np.float32
    vec = model.item_vectors()
    assert vec.ndim == 2 and vec.shape[0] == s.train.shape[1] and vec.dtype == np.float32
    ind, _ = model.similar_items(3, k=5)
    assert ind.shape == (5,) and 3 not in ind.tolist()
    ind2, _ = model.similar_items([0, 1], k=4)
    assert ind2.shape == (2, 4)
    path = tmp_path / f"{name}.npz"
    model.save(path)
    loaded = type(model).load(path)
    if model.device_ == "cpu":
        assert np.array_equal(loaded.score(fi), scores)
        assert np.array_equal(Recommender.load(path).score(fi), scores)  # generic loader
    else:  # trained on a GPU, scored there in bf16; artifacts load and score on CPU in float32
        for name_, tensor in model.net_.state_dict().items():
            assert torch.equal(loaded.net_.state_dict()[name_], tensor.cpu()), name_
        tol = 1e-2 * float(np.abs(scores).max())
        np.testing.assert_allclose(loaded.score(fi), scores, rtol=0, atol=tol)
        np.testing.assert_allclose(Recommender.load(path).score(fi), scores, rtol=0, atol=tol)
    assert np.array_equal(loaded.similar_items(3, k=5)[0], ind)
    assert loaded.training_report().keys() == model.training_report().keys()


def test_the_base_is_abstract_and_every_model_has_one_fit_signature() -> None:
    import inspect

    with pytest.raises(TypeError):
        Recommender()  # type: ignore[abstract]
    assert DEFAULT_ALGORITHM in REGISTRY
    for klass in REGISTRY.values():
        params = inspect.signature(klass.fit).parameters
        assert list(params)[:3] == ["self", "X", "validation"], klass
        assert params["progress"].kind is inspect.Parameter.KEYWORD_ONLY, klass
    assert EASE().device_ == "cpu" and EASE().training_report() == {}


def test_dead_helpers_are_gone() -> None:
    assert not hasattr(MultVAE, "all_similar_items") and not hasattr(EASE, "memory_needed")


def test_vae_records_history_and_progress(clustered: sp.csr_matrix) -> None:
    s = split_strong(clustered, seed=0)
    seen: list[int] = []
    m = MultVAE(**FAST_VAE).fit(s.train, s.validation, progress=lambda e, n, r: seen.append(e))
    assert seen == [1, 2, 3]
    report = m.training_report()
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3]
    assert {"loss", "val_ndcg@100", "seconds"} <= set(report["history"][0])
    assert m.device_ == report["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert 1 <= report["best_epoch"] <= 3 and report["skip_search"]


def test_vae_is_reproducible_on_cpu(clustered: sp.csr_matrix) -> None:
    s = split_strong(clustered, seed=0)
    a = MultVAE(**FAST_VAE, seed=7).fit(s.train, s.validation).score(s.test[0])
    b = MultVAE(**FAST_VAE, seed=7).fit(s.train, s.validation).score(s.test[0])
    assert np.array_equal(a, b)


def test_vae_beats_popularity_on_structured_data(clustered: sp.csr_matrix) -> None:
    s = split_strong(clustered, seed=0, fraction=0.15)
    vae = MultVAE(epochs=30, hidden=64, latent=16, batch_size=64, lr=3e-3, skip_l2=None,
                  patience=10).fit(s.train, s.validation)
    pop = REGISTRY["pop"]().fit(s.train)
    nd_vae = evaluate_scores(vae.score, *s.test)["ndcg@100"]
    nd_pop = evaluate_scores(pop.score, *s.test)["ndcg@100"]
    assert nd_vae > nd_pop + 0.1, (nd_vae, nd_pop)


def test_ease_refuses_over_cap_catalogue() -> None:
    X = sp.random(50, 2000, density=0.01, format="csr", dtype=np.float32, random_state=0)
    with pytest.raises(CatalogueTooLargeError, match="refuses 2000 items"):
        EASE(max_memory_bytes=10 * 2**20).fit(X)  # needs 2*8*2000^2 B = 61 MiB > 10 MiB
    assert issubclass(CatalogueTooLargeError, ValueError)


def test_artifact_rejects_tampering_and_wrong_formats(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save_artifact(path, "pop", {"a": 1}, {"w": np.arange(5, dtype=np.float32)})
    header, arrays = load_artifact(path, expected_model="pop")
    assert header["hyperparameters"] == {"a": 1} and arrays["w"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ArtifactError, match="expected 'ease'"):
        load_artifact(path, expected_model="ease")
    with pytest.raises(ArtifactError):
        EASE.load(path)
    # modified array -> checksum mismatch
    bad = tmp_path / "bad.npz"
    with np.load(path) as npz:
        content = {k: npz[k] for k in npz.files}
    content["w"] = content["w"] + 1
    np.savez(bad, **content)
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(bad)
    # wrong format version in the header
    hdr = json.loads(content["__header__"].tobytes())
    hdr["format_version"] = 99
    content["w"] = content["w"] - 1
    content["__header__"] = np.frombuffer(json.dumps(hdr).encode(), dtype=np.uint8)
    np.savez(bad, **content)
    with pytest.raises(ArtifactError, match="format version"):
        load_artifact(bad)
    # a plain npz without header, a pickle-only object array, and junk bytes
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(3))
    with pytest.raises(ArtifactError, match="no artifact header"):
        load_artifact(plain)
    objs = tmp_path / "obj.npz"
    np.savez(objs, __header__=content["__header__"], w=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ArtifactError):
        load_artifact(objs)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_artifact(junk)
    with pytest.raises(ArtifactError):
        save_artifact(tmp_path / "o.npz", "pop", {}, {"w": np.array([None], dtype=object)})
    assert zipfile.is_zipfile(path)


def test_vae_without_validation_uses_last_epoch_and_default_blend(
        clustered: sp.csr_matrix) -> None:
    m = MultVAE(**FAST_VAE).fit(clustered)
    assert m.best_epoch_ == 3 and "val_ndcg@100" not in m.history_[0]
    assert float(m.net_.skip_weight) == 20.0  # no validation: the documented fixed weight
    assert m.score(clustered[:5]).shape == (5, clustered.shape[1])


def test_vae_skip_dropped_over_memory_cap(clustered: sp.csr_matrix) -> None:
    m = MultVAE(**FAST_VAE, skip_max_memory_bytes=1).fit(clustered)
    assert m.net_.skip_B is None  # pure VAE when EASE would not fit


def test_the_bf16_autocast_path_trains_and_scores(clustered: sp.csr_matrix, monkeypatch) -> None:
    """CI has no GPU: run the CUDA path's bf16 autocast on CPU, so a dtype mix-up in the
    training loop, the EASE term or the scoring shows up here, not first on a GPU machine."""
    from recommendations.ml import vae

    monkeypatch.setattr(vae, "uses_bf16", lambda device: True)
    params = {**FAST_VAE, "skip_l2": 50.0}
    s = split_strong(clustered, seed=0)
    model = MultVAE(**params).fit(s.train, validation=s.validation)
    assert all(np.isfinite(h["loss"]) for h in model.history_)
    scores = model.score(s.test[0])
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    quality = evaluate_scores(model.score, *s.test, ks_recall=(), ks_ndcg=(100,), k_coverage=None)
    assert quality["ndcg@100"] > 0.3  # bf16 still learns the clusters


def test_the_gpu_batch_densification_matches_scipy() -> None:
    """On CUDA the dense batch is scattered on the device (make_batch); CI has no GPU, so the
    scatter itself is checked on CPU against scipy, duplicates (which add) included."""
    from recommendations.ml.vae import scatter_dense

    coo = sp.coo_matrix(([1.0, 2.0, 0.5, 3.0], ([0, 2, 2, 2], [1, 0, 3, 0])), shape=(3, 4))
    dense = scatter_dense((3, 4), torch.from_numpy(coo.row.astype(np.int64)),
                          torch.from_numpy(coo.col.astype(np.int64)),
                          torch.from_numpy(coo.data.astype(np.float32)))
    assert dense.dtype == torch.float32
    np.testing.assert_array_equal(dense.numpy(), coo.toarray())
