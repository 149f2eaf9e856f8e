"""Model versions: where their artifacts live, which one is active, and switching it.

Artifacts go through Django's storage API (``STORAGES[ARTIFACT_STORAGE]``): local files in
the demo, S3 or any shared storage in production. Each version is two pickle-free files:
the model (``ml.models`` format) and its item-id map, under a name no other database can
produce (see :mod:`.artifact_files`), with their SHA-256 and size in the version's record.
A version whose files are missing or differ from that record is marked ``broken``: it is
never loaded or activated again.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .. import cache_keys
from ..conf import app_settings
from ..ml import served_cache
from ..ml.artifacts import ArtifactError, load_artifact, save_artifact
from ..ml.models import Recommender
from ..ml.serving_model import NotServable, ServedModel
from ..models import ModelVersion
from . import artifact_files
from .artifact_files import StoredFile

logger = logging.getLogger(__name__)

ID_MAP_MODEL = "item-id-map"


def stored_files(version: ModelVersion) -> tuple[StoredFile, StoredFile]:
    """The version's ``(model, items)`` files as its record names them.

    Versions saved before names carried a token and checksums were kept have only
    ``artifact``: their item map is ``items.npz`` beside it and nothing is compared but the
    in-file checksum.
    """
    model = StoredFile(version.artifact, version.artifact_sha256, version.artifact_size)
    items = StoredFile(
        version.items_artifact or artifact_files.items_name_beside(version.artifact),
        version.items_sha256,
        version.items_size,
    )
    return model, items


def artifact_names(version: ModelVersion) -> tuple[str, str]:
    """The storage names of the version's ``(model, items)`` files."""
    model, items = stored_files(version)
    return model.name, items.name


def save_version_artifacts(version: ModelVersion, model: Recommender, item_ids: np.ndarray) -> str:
    """Write the model and its item ids under fresh names and record their names, SHA-256
    and sizes on ``version`` (not saved); returns the model's storage name."""
    model_name, items_name = artifact_files.new_names(version.pk)
    written: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / artifact_files.MODEL_FILE
        items_path = Path(tmp) / artifact_files.ITEMS_FILE
        model.save(model_path)
        save_artifact(items_path, ID_MAP_MODEL, {}, {"item_ids": np.asarray(item_ids, np.int64)})
        try:
            stored_model = artifact_files.save_new(model_name, model_path)
            written.append(model_name)
            stored_items = artifact_files.save_new(items_name, items_path)
        except Exception:
            artifact_files.delete_quietly(written)
            raise
    version.artifact = stored_model.name
    version.artifact_sha256, version.artifact_size = stored_model.sha256, stored_model.size
    version.items_artifact = stored_items.name
    version.items_sha256, version.items_size = stored_items.sha256, stored_items.size
    return model_name


@dataclass(frozen=True)
class LoadedVersion:
    """A version's model in memory with its id maps: what serving and similarity need."""

    version_id: int
    #: The served form (numpy arrays mapped from the machine's cache, no torch), or the
    #: trained model itself where :func:`load_version` was asked for it.
    model: ServedModel | Recommender
    item_ids: np.ndarray  # column j of the model is item pk item_ids[j]
    #: How the version's input was weighted in training: fold-in weighs a shopper's events
    #: the same way (empty for versions trained before this was recorded).
    event_weights: dict[str, float] = field(default_factory=dict)
    half_life_days: float | None = None

    def item_index(self) -> dict[int, int]:
        return {int(pk): j for j, pk in enumerate(self.item_ids)}


def load_version(version: ModelVersion, *, served: bool = True) -> LoadedVersion:
    """Read a version's artifacts back (no pickle); ArtifactError if missing or tampered.

    Each file's size and SHA-256 are compared with the record before it is parsed; a file
    that is missing or differs marks the version broken (:func:`mark_broken`). ``served``:
    the model as web processes serve it (:mod:`..ml.serving_model`: numpy arrays mapped
    from :func:`serving_cache_dir`, shared by the machine's workers, never importing
    torch); False: the trained model itself (similarity and research jobs).
    """
    if not version.artifact:
        raise ArtifactError(f"version {version.pk} has no artifact")
    if version.status == ModelVersion.Status.BROKEN:
        raise ArtifactError(f"version {version.pk} is broken: {version.error}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model_path = Path(tmp) / artifact_files.MODEL_FILE
            items_path = Path(tmp) / artifact_files.ITEMS_FILE
            model_file, items_file = stored_files(version)
            try:
                model = (_served_model(model_file, model_path) if served
                         else _trained_model(model_file, model_path))
                with open(items_path, "wb") as dst:
                    artifact_files.read_checked(items_file, dst)
                _, arrays = load_artifact(items_path, expected_model=ID_MAP_MODEL)
            except ArtifactError as exc:  # name the stored file, not the temporary copy
                text = str(exc).replace(str(model_path), model_file.name)
                raise ArtifactError(text.replace(str(items_path), items_file.name)) from exc
        item_ids = arrays["item_ids"]
        if len(item_ids) != model.n_items:
            raise ArtifactError(
                f"version {version.pk}: {len(item_ids)} item ids for a model of "
                f"{model.n_items} items"
            )
    except ArtifactError as exc:
        mark_broken(version, str(exc))
        raise
    return LoadedVersion(
        version.pk, model, item_ids, dict(version.event_weights or {}), version.half_life_days
    )


def serving_cache_dir() -> Path:
    """Where this machine keeps served models (``SERVING_CACHE_DIR``)."""
    configured = app_settings.SERVING_CACHE_DIR
    return Path(configured) if configured else served_cache.default_directory()


def _trained_model(stored: StoredFile, path: Path) -> Recommender:
    with open(path, "wb") as dst:
        artifact_files.read_checked(stored, dst)
    return Recommender.load(path)


def _served_model(stored: StoredFile, path: Path) -> ServedModel | Recommender:
    """The served form, from the cache when this machine has it (the stored file is read
    and checked all the same), else converted from the downloaded artifact."""
    top_k, directory = app_settings.SERVING_TOP_K, serving_cache_dir()
    ann = app_settings.ANN["MIN_ITEMS"]
    if stored.sha256:
        key = served_cache.cache_key(stored.sha256, top_k, ann)
        if (directory / key / served_cache.META).exists():
            artifact_files.read_checked(stored)  # still the file the record names
            cached = served_cache.open_cached(directory, key)
            if cached is not None:
                return cached
    with open(path, "wb") as dst:
        sha256 = artifact_files.read_checked(stored, dst)
    try:
        return served_cache.load_served(path, directory,
                                        served_cache.cache_key(sha256, top_k, ann), top_k, ann)
    except NotServable as exc:  # e.g. a research network: served as trained (torch)
        logger.warning("%s has no served form (%s); loading the trained model", stored.name, exc)
        return Recommender.load(path)


def check_artifacts(version: ModelVersion) -> None:
    """Read the version's files and compare them with the record, without parsing them;
    a missing or different file marks the version broken and raises ArtifactError."""
    if version.status == ModelVersion.Status.BROKEN:
        raise ArtifactError(f"version {version.pk} is broken: {version.error}")
    try:
        for expected in stored_files(version):
            artifact_files.read_checked(expected)
    except ArtifactError as exc:
        mark_broken(version, str(exc))
        raise


def mark_broken(version: ModelVersion, reason: str) -> bool:
    """Record that a trained version's artifact is missing or not what was saved.

    Only the row whose record names these files changes (a version of another database
    that shares the storage and the id is left alone). It stays active if it was: serving
    keeps the last good model it holds, or falls back; a new version replaces it.
    """
    changed = ModelVersion.objects.filter(
        pk=version.pk, status=ModelVersion.Status.SUCCEEDED, artifact=version.artifact
    ).update(status=ModelVersion.Status.BROKEN, error=reason)
    if changed:
        version.status, version.error = ModelVersion.Status.BROKEN, reason
        logger.error("model version %s is broken: %s", version.pk, reason)
    return bool(changed)


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def activate(version: ModelVersion, *, reason: str = "") -> ModelVersion:
    """Make ``version`` the one served; the previous one is deactivated in the same transaction."""
    if version.status == ModelVersion.Status.BROKEN:
        raise ValueError(f"v{version.pk} is broken ({version.error}); it can't be activated.")
    if version.status != ModelVersion.Status.SUCCEEDED or not version.artifact:
        raise ValueError(f"{version} has not succeeded; only a trained version can be activated")
    try:
        check_artifacts(version)
    except ArtifactError as exc:
        raise ValueError(f"v{version.pk} is broken ({exc}); it can't be activated.") from exc
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        if not ModelVersion.objects.filter(
            pk=version.pk, status=ModelVersion.Status.SUCCEEDED
        ).update(is_active=True, activated_at=timezone.now()):
            raise ValueError(f"v{version.pk} changed status meanwhile; it was not activated.")
    transaction.on_commit(lambda: cache.delete(cache_keys.ACTIVE_VERSION))
    version.refresh_from_db()
    logger.info("activated %s %s", version, reason)
    return version


def previous_version(current: ModelVersion | None = None) -> ModelVersion | None:
    """The latest succeeded version activated before ``current`` (the roll-back target);
    broken versions are never a target."""
    current = current or active_version()
    qs = ModelVersion.objects.filter(
        status=ModelVersion.Status.SUCCEEDED, activated_at__isnull=False
    ).exclude(artifact="")
    if current is not None:
        qs = qs.exclude(pk=current.pk)
        if current.activated_at:
            qs = qs.filter(activated_at__lt=current.activated_at)
    return qs.order_by("-activated_at").first()


def rollback() -> ModelVersion:
    """Re-activate the version that was active before the current one; one whose files
    turn out missing or changed is marked broken and the one before it is tried."""
    while (target := previous_version()) is not None:
        try:
            return activate(target, reason="(roll back)")
        except ValueError:
            target.refresh_from_db(fields=["status"])
            if target.status != ModelVersion.Status.BROKEN:
                raise
    raise ValueError("There is no earlier activated version to roll back to.")
