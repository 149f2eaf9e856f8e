"""Artifact files in the storage: unique names, write-once saving, and checked reading.

Several databases may share one storage (staging and production on one bucket, the test
suite and the demo on one folder), and their versions' primary keys collide. So a file's
name carries a random token as well as the version's id, saving never deletes or replaces
an existing file, and each file's SHA-256 and size go into the version's record: a reader
compares the bytes it got with the record before it parses anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import Storage, storages

from ..conf import app_settings
from ..ml.artifacts import ArtifactError

CHUNK = 1 << 20
MODEL_FILE = "model.npz"
ITEMS_FILE = "items.npz"


class MissingArtifact(ArtifactError):
    """The storage has no file of the recorded name."""


@dataclass(frozen=True)
class StoredFile:
    """A file's name in the storage and what its bytes must be ("" / None: not recorded,
    as for versions trained before checksums were kept)."""

    name: str
    sha256: str = ""
    size: int | None = None


def storage() -> Storage:
    return storages[app_settings.ARTIFACT_STORAGE]


def new_names(version_id: int) -> tuple[str, str]:
    """Fresh ``(model, items)`` names: ``<prefix>/v<id>-<random token>/...``.

    The token keeps two databases whose versions share an id out of each other's files.
    """
    prefix = app_settings.ARTIFACT_PREFIX.rstrip("/")
    folder = f"{prefix}/v{version_id}-{secrets.token_hex(8)}"
    return f"{folder}/{MODEL_FILE}", f"{folder}/{ITEMS_FILE}"


def items_name_beside(model_name: str) -> str:
    """The item map of a version recorded before ``items_artifact`` existed: it was saved
    as ``items.npz`` in the model's folder."""
    return posixpath.join(posixpath.dirname(model_name), ITEMS_FILE)


def digest(path: Path) -> tuple[str, int]:
    """``(sha256 hex, size in bytes)`` of a local file."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def save_new(name: str, path: Path) -> StoredFile:
    """Copy a local file into the storage under exactly ``name``; never replaces a file.

    Raises :class:`ArtifactError` when ``name`` is taken or the storage chose another name
    (whatever it wrote under that other name is ours alone, so it is removed).
    """
    target = storage()
    if target.exists(name):
        raise ArtifactError(f"{name!r} exists already in the storage; refusing to overwrite it")
    sha256, size = digest(path)
    try:
        with open(path, "rb") as fh:
            saved = target.save(name, File(fh, name=posixpath.basename(name)))
    except Exception:
        # A full or failing storage may leave part of the file under our new name: it is
        # ours alone (the name was free a moment ago), so it goes, and its space with it.
        delete_quietly([name])
        raise
    if saved != name:
        target.delete(saved)
        raise ArtifactError(f"the storage saved {name!r} as {saved!r}: the name was taken")
    stored = target.size(saved)
    if stored != size:
        delete_quietly([saved])
        raise ArtifactError(f"{name!r}: the storage holds {stored} bytes of {size}")
    return StoredFile(name, sha256, size)


def delete_quietly(names: list[str]) -> None:
    """Remove files this process has just written (a failed save), never anything else."""
    target = storage()
    for name in names:
        with contextlib.suppress(OSError):
            target.delete(name)


def read_checked(expected: StoredFile, dst: BinaryIO | None = None) -> str:
    """Stream a stored file into ``dst`` (or nowhere) and check it against its record;
    returns its SHA-256 (hex), what the served-model cache is keyed by.

    Raises :class:`MissingArtifact` when the file is gone and :class:`ArtifactError` when
    its size or SHA-256 differ from the record; the caller parses ``dst`` only afterwards.
    Other storage errors (a network hiccup) propagate unchanged: they do not prove anything.
    """
    source = storage()
    name = expected.name
    if not source.exists(name):
        raise MissingArtifact(f"{name}: the file is missing from the storage")
    if expected.size is not None and source.size(name) != expected.size:
        raise ArtifactError(
            f"{name}: {source.size(name)} bytes, the record says {expected.size} (truncated "
            "or replaced)"
        )
    h, size = hashlib.sha256(), 0
    try:
        with source.open(name, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
                size += len(chunk)
                if dst is not None:
                    dst.write(chunk)
    except FileNotFoundError as exc:
        raise MissingArtifact(f"{name}: the file is missing from the storage") from exc
    if expected.size is not None and size != expected.size:
        raise ArtifactError(f"{name}: read {size} bytes, the record says {expected.size}")
    if expected.sha256 and h.hexdigest() != expected.sha256:
        raise ArtifactError(f"{name}: SHA-256 mismatch (the file changed after saving)")
    return h.hexdigest()
