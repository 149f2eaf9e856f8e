"""The served model versions, loaded once per version per process.

An experiment may serve another version (or no model) for one request through
:func:`serving_version`; :class:`ActiveModel` therefore keeps the few versions in use, and
only those. Models are served torch-free (:mod:`recommendations.ml.serving_model`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from django.core.cache import cache
from django.core.signals import request_finished
from django.dispatch import receiver

from .. import cache_keys
from ..learning.versions import LoadedVersion, load_version
from ..ml.serving_model import ServedModel
from ..models import ModelVersion
from . import request

logger = logging.getLogger(__name__)


#: Serve no model at all (fallbacks only): the "popularity" arm of an experiment.
NO_MODEL = 0
_version_override: ContextVar[int | None] = ContextVar("recommendations_version", default=None)


@contextmanager
def serving_version(version_id: int | None) -> Iterator[None]:
    """Within the block, serve ``version_id`` instead of the active version (``NO_MODEL``:
    no model; ``None``: the active one). Used by experiments to serve a visitor's variant."""
    token = _version_override.set(version_id)
    try:
        yield
    finally:
        _version_override.reset(token)


def active_version_id() -> int | None:
    """The version served now: an experiment's override, else the active version's id,
    cached briefly (and dropped at once on activation)."""
    override = _version_override.get()
    if override is not None:
        return override or None
    return request.remembered("version", _read_active_version_id) or None


def _read_active_version_id() -> int:
    value = cache.get(cache_keys.ACTIVE_VERSION)
    if value is None:
        value = (
            ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first() or 0
        )
        cache.set(cache_keys.ACTIVE_VERSION, value, 30)
    return value


class ItemIndex:
    """Item pk -> model column, by binary search over the version's ids: a few bytes per
    item where a dict of Python ints costs ~100 (50 MB per worker at 500K items)."""

    def __init__(self, item_ids: np.ndarray):
        ids = np.asarray(item_ids, dtype=np.int64)
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    def _find(self, pk: Any) -> int:
        try:
            key = int(pk)
        except (TypeError, ValueError):
            return -1
        at = int(np.searchsorted(self._sorted, key))
        if at < len(self._sorted) and self._sorted[at] == key:
            return int(self._order[at])
        return -1

    def __contains__(self, pk: Any) -> bool:
        return self._find(pk) >= 0

    def __getitem__(self, pk: Any) -> int:
        j = self._find(pk)
        if j < 0:
            raise KeyError(pk)
        return j

    def get(self, pk: Any, default: Any = None) -> Any:
        j = self._find(pk)
        return default if j < 0 else j

    def __len__(self) -> int:
        return len(self._sorted)


Entry = tuple[LoadedVersion, Any, "ItemIndex | dict[int, int]"]


def _unit_vectors(model: Any) -> Any:
    """Unit item vectors for explanations: a served model keeps them in its cache (shared);
    a trained model's are normalised here."""
    if isinstance(model, ServedModel):
        return model.unit_vectors()
    vectors = np.asarray(model.item_vectors(), dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class ActiveModel:
    """The served versions' models in memory: the active one, plus experiments' arms.

    Thread-safe: one thread loads, the others keep serving the version they had (or wait
    for the first load). A version whose artifact cannot be read is remembered as broken
    so a request never retries a failing load (a missing or changed file also marks the
    version ``broken`` in the database, see :func:`load_version`). When the active version
    is broken, the last active version this process loaded keeps being served; with none,
    lists fall back (popular items). An experiment's arm whose version is broken gets no
    model (its fallbacks), never another version.

    Only versions in use stay loaded: the active one, and arms a request asked for in the
    last ``ARM_IDLE_SECONDS``. When the active id changes, every other version leaves the
    pool at once; a request still serving one holds its own reference until it finishes
    (``request_finished`` releases it), so its arrays (maps of the machine's served-model
    files, see :mod:`recommendations.ml.served_cache`) are closed as soon as no request
    uses them. :meth:`index` and :meth:`vectors` belong to the version the current
    request's :meth:`get` returned.
    """

    ARM_IDLE_SECONDS = 120.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: dict[int, Entry] = {}
        self._current: ContextVar[Entry | None] = ContextVar("recommendations_model", default=None)
        self._broken: set[int] = set()
        self._last_good: Entry | None = None
        self._active_id: int | None = None  # the active version this process saw last
        self._arm_used: dict[int, float] = {}  # arm version -> when a request last asked
        self._pruned_at = time.monotonic()

    def get(self) -> LoadedVersion | None:
        override = _version_override.get() is not None
        version_id = active_version_id()
        if version_id is None:
            return None
        now = time.monotonic()
        if override:
            self._arm_used[version_id] = now
        if not override and version_id != self._active_id:
            self._active_id = version_id
            self._prune(now)
        elif now - self._pruned_at > self.ARM_IDLE_SECONDS:
            self._prune(now)
        entry = self._pool.get(version_id)
        if entry is None and version_id not in self._broken:
            entry = self._load(version_id)
        if entry is None:  # broken: the last good active model, unless an arm asked for it
            entry = None if override else self._last_good
            if entry is None:
                return None
        elif not override:
            self._last_good = entry
        self._current.set(entry)
        return entry[0]

    def _prune(self, now: float) -> None:
        """Drop every version but the active one and recently used arms."""
        with self._lock:
            self._pruned_at = now
            self._arm_used = {v: t for v, t in self._arm_used.items()
                              if now - t <= self.ARM_IDLE_SECONDS}
            keep = {self._active_id, *self._arm_used}
            if set(self._pool) - keep:
                self._pool = {v: e for v, e in self._pool.items() if v in keep}

    def _load(self, version_id: int) -> Entry | None:
        with self._lock:
            entry = self._pool.get(version_id)
            if entry is not None or version_id in self._broken:
                return entry
            try:
                version = ModelVersion.objects.get(pk=version_id)
                fresh = load_version(version)
                entry = (fresh, _unit_vectors(fresh.model), ItemIndex(fresh.item_ids))
            except Exception:
                logger.exception("could not load model version %s; serving fallbacks", version_id)
                self._broken.add(version_id)
                return None
            self._pool = {**self._pool, version_id: entry}  # readers never see a half-changed dict
            return entry

    def loaded_version_ids(self) -> list[int]:
        """The versions this process holds in its pool now (the last good one aside)."""
        return sorted(self._pool)

    def release(self) -> None:
        """The current request is done with its version (its reference is dropped)."""
        self._current.set(None)

    def last_good_version_id(self) -> int | None:
        """The active version this process served last that loaded fine (what it keeps
        serving while the active one is broken)."""
        entry = self._last_good
        return entry[0].version_id if entry is not None else None

    def index(self) -> ItemIndex | dict[int, int]:
        entry = self._current.get()
        return entry[2] if entry is not None else {}

    def vectors(self) -> Any:
        """The current version's unit item vectors (an array, or sparse rows for a served
        EASE), or None."""
        entry = self._current.get()
        return entry[1] if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._pool, self._broken, self._last_good = {}, set(), None
            self._active_id, self._arm_used = None, {}


active_model = ActiveModel()


@receiver(request_finished, dispatch_uid="recommendations.serving.pool.release")
def _release(**kwargs: Any) -> None:
    active_model.release()
