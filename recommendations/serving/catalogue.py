"""The catalogue as serving sees it: one epoch token, this process's item cache, and
visibility read fresh from the database.

**Stock is read fresh on every list**: whether each candidate is visible now comes from the
database in this request (``adapter.visible_ids``, one primary-key query), so an item that
goes out of stock or inactive is never served, however it changed and whatever is cached.
Cached, per process, for one *catalogue epoch* (:func:`catalogue_epoch`: a token in
Django's cache that an item's save or delete and ``order_paid`` replace at once and again on
commit, and that expires after ``CATALOGUE_CACHE_SECONDS``): the item objects and their
payloads (a small catalogue is loaded whole, see :meth:`ItemCache.prewarm`), rendered
carousel cards, and finished related lists.

Staleness, honestly: with a shared cache (Redis) every process starts a new epoch on its
next request after a change that sends a signal. With a per-process cache, or for a change
that sends none (``queryset.update`` of a name or price), a process may show an item's old
name, price or category for at most ``CATALOGUE_CACHE_SECONDS``. Never an invisible item.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, Model, OuterRef
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .. import cache_keys, signals
from ..adapters import get_adapter
from ..conf import app_settings
from . import request
from .types import RecommendationList


def catalogue_epoch() -> str:
    """The current catalogue epoch: a token that changes whenever items may have changed
    (:func:`catalogue_changed`) and at the latest every ``CATALOGUE_CACHE_SECONDS``."""
    return request.remembered("epoch", _read_epoch)


def _read_epoch() -> str:
    epoch = cache.get(cache_keys.CATALOGUE_EPOCH)
    if epoch is None:
        epoch = secrets.token_hex(8)
        timeout = int(app_settings.CATALOGUE_CACHE_SECONDS)
        if not cache.add(cache_keys.CATALOGUE_EPOCH, epoch, timeout):
            epoch = cache.get(cache_keys.CATALOGUE_EPOCH) or epoch
    return epoch


def _new_epoch() -> None:
    epoch = secrets.token_hex(8)
    cache.set(cache_keys.CATALOGUE_EPOCH, epoch, int(app_settings.CATALOGUE_CACHE_SECONDS))
    request.remember("epoch", epoch)


def catalogue_changed(using: str | None = None) -> None:
    """Items (or their stock) changed: start a new catalogue epoch now, and again when the
    current transaction commits (a request that read the old rows meanwhile cached them
    under the epoch this replaces)."""
    _new_epoch()
    request.forget_visibility()  # what this request read may have just changed
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(_new_epoch, using=using)


class Generation:
    """What this process caches for one catalogue epoch and one adapter."""

    __slots__ = ("derived", "items", "key", "lists", "siblings")

    def __init__(self, key: tuple[str, Any] | None) -> None:
        self.key = key
        self.items: dict[int, Model] = {}  # item objects by primary key
        self.lists: dict[tuple, tuple[float, RecommendationList]] = {}  # related lists
        self.siblings: dict[Any, set[tuple]] = {}  # item -> keys of its lists in ``lists``
        #: What callers derive from this epoch's items (the template tags: rendered cards).
        self.derived: dict[Any, Any] = {}

    def store_list(self, key: tuple, item_id: Any, value: RecommendationList) -> None:
        self.lists[key] = (time.monotonic() + app_settings.LIST_CACHE_SECONDS, value)
        self.siblings.setdefault(item_id, set()).add(key)

    def sibling_ids(self, item_id: Any, key: tuple) -> list[Any]:
        """The items of the other cached lists of ``item_id`` (a page that shows one of
        them usually shows the others: their visibility is read in the same query)."""
        now = time.monotonic()
        out: list[Any] = []
        for other in self.siblings.get(item_id, ()):
            hit = self.lists.get(other) if other != key else None
            if hit is not None and hit[0] > now:
                out += [rec.item.pk for rec in hit[1].items]
        return out


class ItemCache:
    """This process's item objects and finished related lists for one catalogue epoch.

    Objects are shared by requests and threads: treat them as read-only. A new epoch, or a
    new adapter (settings changed), starts an empty generation; readers holding the old one
    finish with it. Visibility is never taken from here (see :func:`fetch`).
    """

    MAX_ITEMS = 50_000
    MAX_LISTS = 20_000

    def __init__(self) -> None:
        self._generation = Generation(None)
        self._prewarm_lock = threading.Lock()
        self._next_prewarm = 0.0  # monotonic time before which no full load is tried again

    def prewarm(self, generation: Generation) -> None:
        """Load the whole catalogue into ``generation`` in one query, when it has at most
        ``PREWARM_ITEMS`` items (default 10,000; 0: never) and this process has not done so
        in the last ``CATALOGUE_CACHE_SECONDS``. Lists then find every object here and cost
        one primary-key query each; between loads (an epoch replaced early, by a save or an
        order) objects are fetched as lists need them. A larger catalogue is not tried again
        for an hour (its first ``PREWARM_ITEMS + 1`` objects are kept)."""
        limit = int(app_settings.PREWARM_ITEMS)
        now = time.monotonic()
        if limit <= 0 or now < self._next_prewarm or not self._prewarm_lock.acquire(False):
            return  # another thread is loading: this one fetches what it needs meanwhile
        try:
            if now < self._next_prewarm:
                return
            interval = int(app_settings.CATALOGUE_CACHE_SECONDS)
            objects = list(get_adapter().item_queryset().order_by()[: limit + 1])
            self._next_prewarm = now + (3600 if len(objects) > limit else interval)
            store = generation.items
            for obj in objects:
                store.setdefault(obj.pk, obj)
        finally:
            self._prewarm_lock.release()

    def current(self) -> Generation:
        key = (catalogue_epoch(), get_adapter())
        generation = self._generation
        stale = generation.key is None or generation.key[0] != key[0]
        if stale or generation.key[1] is not key[1] or len(generation.items) > self.MAX_ITEMS:
            generation = self._generation = Generation(key)
        elif len(generation.lists) > self.MAX_LISTS or len(generation.derived) > self.MAX_LISTS:
            generation.lists, generation.siblings, generation.derived = {}, {}, {}
        return generation

    def store(self) -> dict[int, Model]:
        return self.current().items

    def clear(self) -> None:
        self._generation = Generation(None)
        self._next_prewarm = 0.0


item_cache = ItemCache()
_PAYLOAD_ATTR = "_recommendations_payload"


def get_item(pk: Any) -> Model:
    """The item with this primary key, from this process's item cache (one query on a miss).
    Raises the item model's ``DoesNotExist``. An item deleted in another process may be
    found here until the epoch changes (see the module docstring)."""
    store = item_cache.store()
    obj = store.get(pk)
    if obj is None:
        obj = store[pk] = get_adapter().item_queryset().get(pk=pk)
    return obj


def item_payload(item: Model) -> dict[str, Any]:
    """The adapter's ``item_payload``, computed once per item object (cached objects keep it
    for their epoch). Returns a copy the caller may change."""
    payload = item.__dict__.get(_PAYLOAD_ATTR)
    if payload is None:
        payload = get_adapter().item_payload(item)
        item.__dict__[_PAYLOAD_ATTR] = payload
    return dict(payload)


def fetch(
    ids: list[int], named: set[int], known: dict[int, bool] | None = None
) -> tuple[dict[int, Model], set[int]]:
    """The item objects of ``ids`` and ``named``, and which of ``ids`` are visible now.

    Visibility is always read from the database, in this request, in one query at most.
    When every object is in this process's item cache (see :meth:`ItemCache.prewarm`),
    that query reads primary keys only (:func:`visible`), or is not needed when ``known``
    (or an earlier list of this request) read it already; otherwise one query fetches the
    objects with their visibility and keeps them.
    """
    if not ids and not named:
        return {}, set()
    adapter = get_adapter()
    generation = item_cache.current()
    store = generation.items
    wanted = set(ids) | named
    if not all(pk in store for pk in wanted):
        item_cache.prewarm(generation)
    if all(pk in store for pk in wanted):
        return {pk: store[pk] for pk in wanted}, visible(ids, known) if ids else set()
    fetched = (
        adapter.item_queryset()
        .filter(pk__in=list(wanted))
        .annotate(
            _recommendations_visible=Exists(adapter.visible_items().filter(pk=OuterRef("pk")))
        )
    )
    items: dict[int, Model] = {}
    found_visible: set[int] = set()
    for obj in fetched:
        if obj.__dict__.pop("_recommendations_visible"):
            found_visible.add(obj.pk)
        items[obj.pk] = store[obj.pk] = obj
    request.remember_visibility({pk: pk in found_visible for pk in ids})
    return items, found_visible


def visible(
    ids: list[Any], known: dict[Any, bool] | None = None, also: Iterable[Any] = ()
) -> set[Any]:
    """Which of ``ids`` are visible now: from ``known`` or what this request read already,
    else one query (``adapter.visible_ids``) that also reads ``also`` for later lists."""
    memo = request.visibility()
    answers: dict[Any, bool] = {}
    missing: list[Any] = []
    for pk in ids:
        if known is not None and pk in known:
            answers[pk] = known[pk]
        elif memo is not None and pk in memo:
            answers[pk] = memo[pk]
        else:
            missing.append(pk)
    if missing:
        extra = [pk for pk in also if pk not in memo] if memo is not None else []
        asked = list(dict.fromkeys(missing + extra))
        found = get_adapter().visible_ids(asked)
        read = {pk: pk in found for pk in asked}
        request.remember_visibility(read)
        answers.update(read)
    return {pk for pk in ids if answers.get(pk)}


@receiver(
    post_save,
    sender=settings.RECOMMENDATIONS_ITEM_MODEL,
    dispatch_uid="recommendations.catalogue_saved",
)
@receiver(
    post_delete,
    sender=settings.RECOMMENDATIONS_ITEM_MODEL,
    dispatch_uid="recommendations.catalogue_deleted",
)
@receiver(signals.order_paid, dispatch_uid="recommendations.catalogue_order_paid")
def on_catalogue_changed(sender: Any, **kwargs: Any) -> None:
    """An item was saved or deleted, or an order changed stock (``queryset.update``, which
    sends no ``post_save``): cached item objects and payloads start a new epoch. Stock itself
    is read fresh on every list; raw fixture loads count too (they change rows)."""
    catalogue_changed(kwargs.get("using"))
