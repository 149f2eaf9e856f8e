"""Versions are served torch-free, mapped from the machine's cache, and unloaded as soon
as no request uses them."""

import contextvars
import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.cache import cache
from django.core.files.storage import default_storage

from recommendations import serving
from recommendations.conf import app_settings
from recommendations.learning import versions
from recommendations.ml.artifacts import ArtifactError
from recommendations.ml.served_cache import cache_key
from recommendations.ml.serving_model import ServedModel
from recommendations.models import ModelVersion
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
TINY_VAE = {"epochs": 2, "hidden": 16, "latent": 4, "batch_size": 32}


def served_version(visitor: str = "visitor-1") -> int | None:
    cache.clear()  # lists are cached per visitor and version; ask afresh
    return serving.for_visitor(visitor_id=visitor, k=5).version_id


def _rows(n_items: int) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    X = sp.random(12, n_items, density=0.1, random_state=rng, dtype=np.float32).tocsr()
    X.data = (X.data * 6).astype(np.float32)
    return X


def test_a_version_is_served_from_mapped_files_with_the_trained_scores(shop):
    _, version = shop
    loaded = versions.load_version(version)
    assert isinstance(loaded.model, ServedModel)
    assert all(isinstance(a, np.memmap) for a in loaded.model.arrays.values())
    folder = versions.serving_cache_dir() / cache_key(version.artifact_sha256,
                                                      app_settings.SERVING_TOP_K,
                                                      app_settings.ANN["MIN_ITEMS"])
    assert folder.is_dir()
    trained = versions.load_version(version, served=False).model
    X = _rows(trained.n_items)  # 40 items, top k >= items: the served B is the whole B
    np.testing.assert_allclose(loaded.model.score(X), trained.score(X), rtol=0, atol=1e-5)


def test_a_changed_artifact_is_caught_although_the_cache_holds_its_served_form(shop):
    _, version = shop
    versions.load_version(version)  # the machine's cache has it now
    path = Path(default_storage.path(version.artifact))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        versions.load_version(version)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.BROKEN


def test_the_old_version_is_unloaded_when_the_active_one_changes(shop):
    _, first = shop
    assert served_version() == first.pk
    old = weakref.ref(pool.active_model.get().model)
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    assert served_version() == second.pk
    assert pool.active_model.loaded_version_ids() == [second.pk]
    gc.collect()
    assert old() is None  # nothing holds it: its maps are closed


def test_a_request_keeps_its_version_until_it_finishes(client, shop):
    loaded = pool.active_model.get()  # this context's request serves the first version
    held = weakref.ref(loaded.model)
    del loaded
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    contextvars.copy_context().run(pool.active_model.get)  # another request: the new one
    assert pool.active_model.loaded_version_ids() == [second.pk]
    assert pool.active_model.last_good_version_id() == second.pk
    gc.collect()
    assert held() is not None  # still in use by this context's request
    client.get("/")  # a request's end releases what its context held
    assert pool.active_model.index() == {}
    gc.collect()
    assert held() is None


def test_an_experiment_arm_stays_loaded_while_it_is_used(shop, monkeypatch):
    _, first = shop
    served_version()
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    with pool.serving_version(first.pk):
        assert pool.active_model.get().version_id == first.pk
    assert served_version() == second.pk
    assert pool.active_model.loaded_version_ids() == sorted([first.pk, second.pk])
    monkeypatch.setattr(pool.active_model, "ARM_IDLE_SECONDS", 0.0)  # no request since
    assert served_version() == second.pk
    assert pool.active_model.loaded_version_ids() == [second.pk]


FRESH_PROCESS = """
import json, os, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from recommendations.models import ModelVersion
fields = json.loads(os.environ["VERSION_FIELDS"])
ModelVersion.objects.create(**fields)
from recommendations.serving import pool
from recommendations.serving.personal import fold_in
loaded = pool.active_model.get()
items = [int(i) for i in loaded.item_ids[:3]]
found = fold_in(loaded, [(i, "purchase", time.time()) for i in items], 5)
print(json.dumps({"torch": "torch" in sys.modules, "model": type(loaded.model).__name__,
                  "items": items, "found": [c.item_id for c in found]}))
"""


def test_a_fresh_process_serves_the_default_model_without_importing_torch(tmp_path):
    factories.clustered_log()
    version = factories.trained_version("next_basket", TINY_VAE)
    fields = {name: getattr(version, name) for name in (
        "algorithm", "status", "is_active", "artifact", "artifact_sha256", "artifact_size",
        "items_artifact", "items_sha256", "items_size", "event_weights", "half_life_days")}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "DJANGO_MEDIA_ROOT": str(default_storage.location),
           "VERSION_FIELDS": json.dumps(fields)}
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["model"] == "ServedNextBasket"
    assert len(result["found"]) == 5
    assert result["torch"] is False


def _for_you(settings, ann: dict) -> tuple[list, ServedModel]:
    """A "for you" list of one history with ``RECOMMENDATIONS["ANN"] = ann``, loaded afresh."""
    from recommendations.serving.personal import fold_in

    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "ANN": ann}
    pool.active_model.clear()
    loaded = pool.active_model.get()
    ids = loaded.item_ids
    now = 1_800_000_000.0
    history = [(int(ids[3]), "purchase", now - 86400), (int(ids[5]), "view", now - 3600),
               (int(ids[17]), "add_to_cart", now - 60)]
    got = fold_in(loaded, history, 12, now=now)
    return [(c.item_id, round(c.score, 6)) for c in got], loaded.model


def test_the_ann_threshold_switches_the_for_you_path(shop, settings):
    """Below ANN["MIN_ITEMS"] every item is scored (no index); at or above it the served
    form carries an index and "for you" scores its candidates; with candidates covering the
    catalogue the two lists are the same, items and scores."""
    factories.trained_version("next_basket", {**TINY_VAE, "seed": 1})
    n = pool.active_model.get().model.n_items
    exact, model = _for_you(settings, {"MIN_ITEMS": n + 1, "CANDIDATES": 200, "EF": 64})
    assert model.vae.ann_index() is None
    assert model.score_candidates(_rows(n)[:1], 5, 64) is None
    approx, model = _for_you(settings, {"MIN_ITEMS": n, "CANDIDATES": n, "EF": 256})
    assert model.vae.ann_index() is not None
    assert approx == exact


def test_the_item_index_finds_each_item_and_only_those():
    ids = np.array([40, 7, 1000, 3], dtype=np.int64)  # any order, as a version lists them
    index = pool.ItemIndex(ids)
    assert [index[pk] for pk in (40, 7, 1000, 3)] == [0, 1, 2, 3]
    assert 8 not in index and "x" not in index and None not in index
    assert index.get(8) is None and index.get(3) == 3 and len(index) == 4
    with pytest.raises(KeyError):
        index[5]
