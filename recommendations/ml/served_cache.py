"""A machine's folder of served models, as ``.npy`` files every worker maps read-only.

Why files and not the artifact: an ``.npz`` member cannot be memory-mapped (``np.load``
ignores ``mmap_mode`` inside a zip). So the first process of a machine that serves a
version converts the artifact (:func:`.serving_model.convert`) into one folder, named by
the artifact's SHA-256, the served format and ``top_k``; every process then maps those
files (``np.load(mmap_mode="r")``): the kernel keeps one copy in the page cache, shared
by all workers, and pages nobody touches are never read.

A folder appears whole or not at all (written under a temporary name, then renamed); two
processes converting at once both succeed and one folder wins. Folders nobody opened for
:data:`MAX_IDLE_SECONDS` are removed when a new one is written (a process still mapping
one keeps its pages: unlinking a mapped file does not unmap it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .artifacts import load_artifact
from .serving_model import SERVE_FORMAT, ServedModel, build, convert

META = "meta.json"
#: Folders not opened for this long are pruned when another one is written (a week).
MAX_IDLE_SECONDS = 7 * 24 * 3600


def default_directory() -> Path:
    """``<temporary directory>/recommendations-served-<uid>``: local to the machine."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"recommendations-served-{uid}"


def cache_key(sha256: str, top_k: int | None, ann_min_items: int | None = None) -> str:
    """Folder name for an artifact's served form: what it is made of, nothing else (the
    ANN threshold decides whether an index is in it)."""
    if not sha256 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    ann = "" if ann_min_items is None else f"-a{int(ann_min_items)}"
    return f"{sha256}-s{SERVE_FORMAT}-k{top_k if top_k is not None else 'all'}{ann}"


def _file(name: str) -> str:
    return name.replace("/", "__") + ".npy"


#: Arrays of a model with an ANN index that a request reads a few rows of, at random: read
#: with ``pread`` (:class:`RowFile`) instead of mapped, so that they stay in the page cache
#: (one copy per machine) but out of every worker's Rss and Pss: the kernel maps 64 KiB
#: around each fault on a mapped file, so rows read at random would map most of it.
ROW_READ = ("vae/w1", "vae/dec0/w", "w1", "dec0/w")


class RowFile:
    """A read-only 2-d ``.npy`` array read row by row with ``os.pread``: ``F[rows]``
    (an integer array or a slice) returns those rows as a new array; ``np.asarray(F)``
    maps the whole file (for batch scoring and the offline passes)."""

    def __init__(self, path: Path):
        self.path = str(path)
        header = np.load(self.path, mmap_mode="r", allow_pickle=False)  # nothing is read
        if header.ndim != 2 or not header.flags.c_contiguous:
            raise ValueError(f"{path}: not a C-ordered 2-d array")
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, 2
        self.offset = int(header.offset)
        del header
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.nbytes = self.shape[0] * self.row_bytes
        self._fd = os.open(self.path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            lo, hi, step = rows.indices(self.shape[0])
            if step == 1:
                buf = os.pread(self._fd, max(hi - lo, 0) * self.row_bytes,
                               self.offset + lo * self.row_bytes)
                return np.frombuffer(buf, self.dtype).reshape(-1, self.shape[1])
            rows = np.arange(lo, hi, step)
        if np.isscalar(rows):
            return self[np.array([rows])][0]
        rows = np.asarray(rows, dtype=np.int64).ravel()
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        view = out.view(np.uint8).reshape(len(rows), self.row_bytes)
        for i, r in enumerate(rows):
            if not 0 <= r < self.shape[0]:
                raise IndexError(f"row {r} out of range")
            view[i] = np.frombuffer(os.pread(self._fd, self.row_bytes,
                                             self.offset + int(r) * self.row_bytes), np.uint8)
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return a if dtype is None else a.astype(dtype)

    @property
    def T(self) -> np.ndarray:
        return np.asarray(self).T


def open_cached(directory: Path, key: str) -> ServedModel | None:
    """The served model mapped from ``directory/key``, or None when it is not there."""
    folder = Path(directory) / key
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    arrays = {}
    try:
        rows = meta["model"].get("ann", False)
        for name, spec in meta["arrays"].items():
            if rows and name in ROW_READ:
                a = RowFile(folder / _file(name))
            else:
                a = np.load(folder / _file(name), mmap_mode="r", allow_pickle=False)
            if str(a.dtype) != spec["dtype"] or list(a.shape) != spec["shape"]:
                raise ValueError(f"{name} does not match its record")
            arrays[name] = a
    except (OSError, ValueError, KeyError):  # damaged (a full disk, a hand edit): rebuilt
        shutil.rmtree(folder, ignore_errors=True)
        return None
    os.utime(folder / META)  # last opened: what pruning reads
    return build(meta["model"], arrays)


def write_cached(directory: Path, key: str, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as ``directory/key/*.npy`` with ``meta``, atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=directory))
    try:
        for name, a in arrays.items():
            np.save(tmp / _file(name), np.ascontiguousarray(a), allow_pickle=False)
        record = {"model": meta, "arrays": {
            name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()}}
        (tmp / META).write_text(json.dumps(record, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:  # another process renamed its copy first: theirs is the same
            if not (final / META).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune(directory, keep=key)
    return final


def prune(directory: Path, keep: str = "", max_idle: float = MAX_IDLE_SECONDS) -> list[str]:
    """Remove folders (and abandoned temporary ones) not opened for ``max_idle`` seconds."""
    removed, now = [], time.time()
    for folder in Path(directory).iterdir():
        if folder.name == keep or not folder.is_dir():
            continue
        marker = folder / META if (folder / META).exists() else folder
        try:
            idle = now - marker.stat().st_mtime
        except OSError:
            continue
        if idle > max_idle:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def load_served(artifact: Path | Callable[[], Path], directory: Path, key: str,
                top_k: int | None, ann_min_items: int | None = None) -> ServedModel:
    """The served model of ``key``: mapped from the cache, converted from ``artifact``
    (a path, or a function that fetches it) the first time on this machine (building the
    ANN index there when the catalogue has ``ann_min_items`` items or more)."""
    model = open_cached(directory, key)
    if model is not None:
        return model
    path = artifact() if callable(artifact) else artifact
    header, arrays = load_artifact(path)
    meta, served = convert(header["model"], dict(header["hyperparameters"]),
                           dict(header["extra"]), arrays, top_k, ann_min_items)
    write_cached(directory, key, meta, served)
    del arrays, served  # the process keeps the maps only, not these copies
    model = open_cached(directory, key)
    if model is None:
        raise OSError(f"{directory / key} vanished right after it was written")
    return model
