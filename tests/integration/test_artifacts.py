"""Artifacts that identify themselves: unique names, recorded SHA-256 and size, broken
versions, and two databases that share one storage without touching each other's files."""

import hashlib
import re
import resource
import signal
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.urls import reverse

from recommendations import serving
from recommendations.conf import app_settings
from recommendations.learning import artifact_files, versions
from recommendations.learning.tasks import queue_training
from recommendations.ml.artifacts import ArtifactError
from recommendations.ml.models import EASE
from recommendations.models import ModelVersion
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:recommendations_modelversion_changelist"


def local(name: str) -> Path:
    """The file behind a storage name (the suite's storage is a temporary folder)."""
    return Path(default_storage.path(name))


def flip_a_byte(name: str) -> None:
    """Change one byte in the middle of the file: same size, other content."""
    data = bytearray(local(name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    local(name).write_bytes(bytes(data))


def served_version(visitor: str = "visitor-1") -> int | None:
    cache.clear()  # lists are cached per visitor and version; ask afresh
    return serving.for_visitor(visitor_id=visitor, k=5).version_id


def test_each_version_gets_unique_names_and_records_their_sha256_and_size(shop):
    _, first = shop
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    prefix = re.escape(app_settings.ARTIFACT_PREFIX)
    folders = set()
    for version in (first, second):
        model_name, items_name = versions.artifact_names(version)
        folder = re.fullmatch(rf"({prefix}/v{version.pk}-[0-9a-f]{{16}})/model\.npz", model_name)
        assert folder, model_name
        assert items_name == f"{folder.group(1)}/items.npz"
        folders.add(folder.group(1))
        for name, sha, size in (
            (model_name, version.artifact_sha256, version.artifact_size),
            (items_name, version.items_sha256, version.items_size),
        ):
            data = local(name).read_bytes()
            assert sha == hashlib.sha256(data).hexdigest() and size == len(data) > 0
    assert len(folders) == 2
    assert versions.load_version(second).version_id == second.pk


def test_saving_never_replaces_an_existing_file(shop, tmp_path):
    _, version = shop
    name = versions.artifact_names(version)[0]
    before = local(name).read_bytes()
    other = tmp_path / "other.npz"
    other.write_bytes(b"another database's model")
    with pytest.raises(ArtifactError, match="exists already"):
        artifact_files.save_new(name, other)
    assert local(name).read_bytes() == before
    assert versions.load_version(version).version_id == version.pk


def test_a_storage_that_fills_up_midway_keeps_no_partial_file(tmp_path):
    """The disk fills during the copy (a real write limit: RLIMIT_FSIZE, so writes past 4 KiB
    fail with EFBIG): the error reaches the caller and no half-written file stays behind."""
    source = tmp_path / "model.npz"
    source.write_bytes(np.random.default_rng(0).bytes(256 * 1024))
    name = f"{app_settings.ARTIFACT_PREFIX.rstrip('/')}/v0-fills-up/model.npz"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError):
            artifact_files.save_new(name, source)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert not default_storage.exists(name)


def test_a_flipped_byte_marks_the_version_broken_before_parsing_and_serving_falls_back(shop):
    _, version = shop
    flip_a_byte(versions.artifact_names(version)[0])
    pool.active_model.clear()
    assert served_version() is None  # popular items: no model was ever good here
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.BROKEN
    # The record's checksum caught it, before the file was parsed (the in-file checksum
    # would say "checksum mismatch (file modified after saving)").
    assert "SHA-256 mismatch" in version.error and version.is_active
    with pytest.raises(ArtifactError, match="is broken"):
        versions.load_version(version)


@pytest.mark.parametrize("damage", ["truncate", "delete_items"])
def test_a_truncated_or_missing_file_marks_the_version_broken(shop, damage):
    _, version = shop
    model_name, items_name = versions.artifact_names(version)
    if damage == "truncate":
        data = local(model_name).read_bytes()
        local(model_name).write_bytes(data[: len(data) // 2])
        expected = "bytes, the record says"
    else:
        default_storage.delete(items_name)
        expected = "missing"
    with pytest.raises(ArtifactError, match=expected):
        versions.load_version(version)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.BROKEN and expected in version.error


def test_serving_keeps_the_last_good_model_when_the_active_one_breaks(shop):
    _, first = shop
    assert served_version() == first.pk  # loaded and served in this process
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    flip_a_byte(versions.artifact_names(second)[1])
    assert served_version() == first.pk
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.BROKEN and second.is_active
    assert pool.active_model.last_good_version_id() == first.pk
    pool.active_model.clear()  # a fresh process never loaded a good model: popular items
    assert served_version() is None


def test_the_admin_says_in_one_line_that_the_active_version_is_broken(admin_client, shop):
    _, first = shop
    served_version()
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    flip_a_byte(versions.artifact_names(second)[0])
    served_version()
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    line = re.search(r'<li class="warning" id="rec-broken">([^<]*)</li>', html)
    assert line, html
    assert line.group(1).startswith(f"v{second.pk} is broken: ")
    assert "SHA-256 mismatch" in line.group(1)
    assert f"; serving v{first.pk}." in line.group(1)
    assert f"Roll back to v{first.pk}" in html
    pool.active_model.clear()
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "; serving popular items." in html


def test_a_broken_version_cannot_be_activated(admin_client, shop):
    _, first = shop
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    default_storage.delete(versions.artifact_names(first)[0])  # not noticed yet
    with pytest.raises(ValueError, match="can't be activated"):
        versions.activate(first)
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.BROKEN and not first.is_active
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "activate", "_selected_action": [first.pk]}, follow=True
    )
    assert any("can't be activated" in str(m) for m in response.context["messages"])
    assert ModelVersion.objects.get(is_active=True).pk == second.pk
    assert versions.previous_version() is None  # never a roll-back target
    with pytest.raises(ValueError, match="no earlier activated version"):
        versions.rollback()


def test_a_roll_back_skips_a_version_whose_files_are_gone(shop):
    _, first = shop
    second = factories.trained_version(hyperparameters={"l2": 500.0})
    factories.trained_version(hyperparameters={"l2": 50.0})
    local(versions.artifact_names(second)[1]).unlink()
    assert versions.rollback().pk == first.pk
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.BROKEN and "missing" in second.error


def test_a_new_training_activates_when_the_active_version_is_broken(shop):
    _, first = shop
    flip_a_byte(versions.artifact_names(first)[0])
    new = queue_training(algorithm="ease", hyperparameters={"l2": 10.0})  # not forced
    new.refresh_from_db()
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.BROKEN and not first.is_active
    assert new.is_active and new.gate_passed, new.gate_report
    assert f"active v{first.pk} could not be tested" in new.gate_report
    assert served_version() == new.pk


def test_two_databases_sharing_one_storage_never_touch_each_others_files(shop):
    _, mine = shop
    names = versions.artifact_names(mine)
    before = {name: local(name).read_bytes() for name in names}
    scores = versions.load_version(mine).model.score(np.eye(1, mine.n_items, dtype=np.float32))
    # The other database: its own row with the same primary key, and another model.
    ModelVersion.objects.filter(pk=mine.pk).delete()
    twin = ModelVersion.objects.create(
        pk=mine.pk, algorithm="ease", status=ModelVersion.Status.SUCCEEDED
    )
    rng = np.random.default_rng(1)
    other = EASE(l2=1.0).fit(sp.csr_matrix((rng.random((30, 12)) > 0.6).astype(np.float32)))
    versions.save_version_artifacts(twin, other, np.arange(1000, 1012))
    twin.save()
    assert not set(versions.artifact_names(twin)) & set(names)
    assert {name: local(name).read_bytes() for name in names} == before  # byte-identical
    again = versions.load_version(mine)  # the first database's record still loads
    assert np.array_equal(again.model.score(np.eye(1, mine.n_items, dtype=np.float32)), scores)
    assert versions.load_version(twin).item_ids.tolist() == list(range(1000, 1012))


def test_versions_saved_before_names_had_a_token_still_load(shop):
    _, version = shop
    prefix = app_settings.ARTIFACT_PREFIX.rstrip("/")
    old_model, old_items = f"{prefix}/v{version.pk}/model.npz", f"{prefix}/v{version.pk}/items.npz"
    for new, old in zip(versions.artifact_names(version), (old_model, old_items), strict=True):
        with default_storage.open(new, "rb") as fh:
            assert default_storage.save(old, fh) == old
    ModelVersion.objects.filter(pk=version.pk).update(
        artifact=old_model, artifact_sha256="", artifact_size=None,
        items_artifact="", items_sha256="", items_size=None,
    )
    version.refresh_from_db()
    assert versions.artifact_names(version) == (old_model, old_items)
    assert versions.load_version(version).version_id == version.pk
    flip_a_byte(old_model)  # no record to compare: the in-file checksum still refuses it
    with pytest.raises(ArtifactError):
        versions.load_version(version)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.BROKEN
