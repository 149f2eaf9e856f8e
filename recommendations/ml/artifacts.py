"""Pickle-free model artifacts: one ``.npz`` holding plain arrays plus a JSON header.

Why not pickle / ``torch.save`` of modules: loading a pickle executes code, and model files may be
uploaded or copied between machines. An npz read with ``allow_pickle=False`` can only yield
arrays. The header (model name, hyper-parameters, format version, array shapes/dtypes and a
SHA-256 of the array bytes) lets :func:`load_artifact` reject a file that is not ours, is of
another format version, belongs to another model class, or was modified after saving.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "recommendations.ml.artifact"
FORMAT_VERSION = 1
HEADER_KEY = "__header__"


class ArtifactError(ValueError):
    """The file is not a valid model artifact of the expected kind."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.reshape(-1).view(np.uint8))  # the bytes of a.tobytes(), without a copy
    return h.hexdigest()


def save_artifact(
    path: str | os.PathLike,
    model: str,
    hyperparameters: dict[str, Any],
    arrays: dict[str, np.ndarray],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``arrays`` and a JSON header to ``path`` (exactly that name; no suffix is added).

    ``hyperparameters`` and ``extra`` must be JSON-serialisable. Object arrays are refused
    because they could only be read back with pickle.
    """
    for name, a in arrays.items():
        if name == HEADER_KEY:
            raise ArtifactError(f"array name {HEADER_KEY!r} is reserved")
        if np.asarray(a).dtype == object:
            raise ArtifactError(f"array {name!r} has dtype object (would need pickle)")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model,
        "hyperparameters": hyperparameters,
        "extra": extra or {},
        "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in arrays.items()},
        "sha256": _digest(arrays),
    }
    blob = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:  # a file handle: np.savez would otherwise append ".npz"
        np.savez(fh, **{HEADER_KEY: blob}, **arrays)
    os.replace(tmp, path)  # atomic: a reader never sees a half-written model
    return path


def load_artifact(
    path: str | os.PathLike, expected_model: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read ``(header, arrays)``; raise :class:`ArtifactError` on anything unexpected."""
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            names = list(npz.files)
            if HEADER_KEY not in names:
                raise ArtifactError(f"{path}: no artifact header (not a model file of ours)")
            header = json.loads(npz[HEADER_KEY].tobytes().decode("utf-8"))
            arrays = {k: npz[k] for k in names if k != HEADER_KEY}
    except ArtifactError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
        raise ArtifactError(f"{path}: unreadable artifact ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(f"{path}: wrong format marker {header.get('format')!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: format version {header.get('format_version')!r}, "
            f"this code reads version {FORMAT_VERSION}")
    if expected_model is not None and header.get("model") != expected_model:
        raise ArtifactError(
            f"{path}: holds model {header.get('model')!r}, expected {expected_model!r}")
    declared = header.get("arrays", {})
    if set(declared) != set(arrays):
        raise ArtifactError(
            f"{path}: arrays {sorted(arrays)} differ from header {sorted(declared)}")
    for k, meta in declared.items():
        if str(arrays[k].dtype) != meta["dtype"] or list(arrays[k].shape) != meta["shape"]:
            raise ArtifactError(f"{path}: array {k!r} does not match its header")
    if _digest(arrays) != header.get("sha256"):
        raise ArtifactError(f"{path}: checksum mismatch (file modified after saving)")
    return header, arrays
