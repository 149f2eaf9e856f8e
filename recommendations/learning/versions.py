"""Model versions: where their artifacts live, which one is active, and switching it.

Artifacts go through Django's storage API (``STORAGES[ARTIFACT_STORAGE]``): local files in
the demo, S3 or any shared storage in production. Each version is two pickle-free files:
the model (``ml.models`` format) and its item-id map.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone

from .. import cache_keys
from ..conf import app_settings
from ..ml.artifacts import ArtifactError, load_artifact, save_artifact
from ..ml.models import Recommender
from ..models import ModelVersion

logger = logging.getLogger(__name__)

ID_MAP_MODEL = "item-id-map"


def _storage():
    return storages[app_settings.ARTIFACT_STORAGE]


def artifact_names(version_id: int) -> tuple[str, str]:
    prefix = app_settings.ARTIFACT_PREFIX.rstrip("/")
    return f"{prefix}/v{version_id}/model.npz", f"{prefix}/v{version_id}/items.npz"


def save_version_artifacts(version: ModelVersion, model: Recommender, item_ids: np.ndarray) -> str:
    """Write the model and its item ids; returns the model's storage name."""
    storage = _storage()
    model_name, items_name = artifact_names(version.pk)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.npz"
        items_path = Path(tmp) / "items.npz"
        model.save(model_path)
        save_artifact(items_path, ID_MAP_MODEL, {}, {"item_ids": np.asarray(item_ids, np.int64)})
        for name, path in ((model_name, model_path), (items_name, items_path)):
            if storage.exists(name):
                storage.delete(name)
            with open(path, "rb") as fh:
                saved = storage.save(name, File(fh))
            if saved != name:
                raise ArtifactError(f"storage saved {name!r} as {saved!r}")
    return model_name


@dataclass(frozen=True)
class LoadedVersion:
    """A version's model in memory with its id maps: what serving and similarity need."""

    version_id: int
    model: Recommender
    item_ids: np.ndarray  # column j of the model is item pk item_ids[j]
    #: How the version's input was weighted in training: fold-in weighs a shopper's events
    #: the same way (empty for versions trained before this was recorded).
    event_weights: dict[str, float] = field(default_factory=dict)
    half_life_days: float | None = None

    def item_index(self) -> dict[int, int]:
        return {int(pk): j for j, pk in enumerate(self.item_ids)}


def load_version(version: ModelVersion) -> LoadedVersion:
    """Read a version's artifacts back (no pickle); ArtifactError if missing or tampered."""
    if not version.artifact:
        raise ArtifactError(f"version {version.pk} has no artifact")
    storage = _storage()
    model_name, items_name = artifact_names(version.pk)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name in (model_name, items_name):
            if not storage.exists(name):
                raise ArtifactError(f"version {version.pk}: artifact {name!r} is missing")
            path = Path(tmp) / Path(name).name
            with storage.open(name, "rb") as src, open(path, "wb") as dst:
                for chunk in iter(lambda s=src: s.read(1 << 20), b""):
                    dst.write(chunk)
            paths.append(path)
        model = Recommender.load(paths[0])
        _, arrays = load_artifact(paths[1], expected_model=ID_MAP_MODEL)
    item_ids = arrays["item_ids"]
    if len(item_ids) != model.n_items:
        raise ArtifactError(
            f"version {version.pk}: {len(item_ids)} item ids for a model of {model.n_items} items"
        )
    return LoadedVersion(
        version.pk, model, item_ids, dict(version.event_weights or {}), version.half_life_days
    )


def active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def activate(version: ModelVersion, *, reason: str = "") -> ModelVersion:
    """Make ``version`` the one served; the previous one is deactivated in the same transaction."""
    if version.status != ModelVersion.Status.SUCCEEDED or not version.artifact:
        raise ValueError(f"{version} has not succeeded; only a trained version can be activated")
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(
            is_active=True, activated_at=timezone.now()
        )
    transaction.on_commit(lambda: cache.delete(cache_keys.ACTIVE_VERSION))
    version.refresh_from_db()
    logger.info("activated %s %s", version, reason)
    return version


def previous_version(current: ModelVersion | None = None) -> ModelVersion | None:
    """The latest succeeded version activated before ``current`` (the roll-back target)."""
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
    """Re-activate the version that was active before the current one."""
    target = previous_version()
    if target is None:
        raise ValueError("There is no earlier activated version to roll back to.")
    return activate(target, reason="(roll back)")
