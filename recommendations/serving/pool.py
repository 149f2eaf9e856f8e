"""The served model versions, loaded once per version per process.

An experiment may serve another version (or no model) for one request through
:func:`serving_version`; :class:`ActiveModel` therefore keeps the few versions in use.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from django.core.cache import cache

from .. import cache_keys
from ..learning.versions import LoadedVersion, load_version
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


Entry = tuple[LoadedVersion, np.ndarray, dict[int, int]]


class ActiveModel:
    """The served versions' models in memory: the active one, plus an experiment's arm.

    Thread-safe: one thread loads, the others keep serving the version they had (or wait
    for the first load). A version whose artifact cannot be read is remembered as broken
    so a request never retries a failing load (a missing or changed file also marks the
    version ``broken`` in the database, see :func:`load_version`). When the active version
    is broken, the last active version this process loaded keeps being served; with none,
    lists fall back (popular items). An experiment's arm whose version is broken gets no
    model (its fallbacks), never another version. At most ``KEEP`` versions stay loaded
    (an A/B test serves two), plus the last good one; :meth:`index` and :meth:`vectors`
    belong to the version the current request's :meth:`get` returned.
    """

    KEEP = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: OrderedDict[int, Entry] = OrderedDict()
        self._current: ContextVar[Entry | None] = ContextVar("recommendations_model", default=None)
        self._broken: set[int] = set()
        self._last_good: Entry | None = None

    def get(self) -> LoadedVersion | None:
        override = _version_override.get() is not None
        version_id = active_version_id()
        if version_id is None:
            return None
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

    def _load(self, version_id: int) -> Entry | None:
        with self._lock:
            entry = self._pool.get(version_id)
            if entry is not None or version_id in self._broken:
                return entry
            try:
                version = ModelVersion.objects.get(pk=version_id)
                fresh = load_version(version)
                vectors = fresh.model.item_vectors().astype(np.float32)
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                entry = (fresh, vectors / np.maximum(norms, 1e-12), fresh.item_index())
            except Exception:
                logger.exception("could not load model version %s; serving fallbacks", version_id)
                self._broken.add(version_id)
                return None
            pool = OrderedDict(self._pool)  # readers never see a half-changed dict
            pool[version_id] = entry
            while len(pool) > self.KEEP:
                pool.popitem(last=False)
            self._pool = pool
            return entry

    def last_good_version_id(self) -> int | None:
        """The active version this process served last that loaded fine (what it keeps
        serving while the active one is broken)."""
        entry = self._last_good
        return entry[0].version_id if entry is not None else None

    def index(self) -> dict[int, int]:
        entry = self._current.get()
        return entry[2] if entry is not None else {}

    def vectors(self) -> np.ndarray | None:
        entry = self._current.get()
        return entry[1] if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._pool, self._broken, self._last_good = OrderedDict(), set(), None


active_model = ActiveModel()
