"""The read side: what a carousel or an API response shows. Tags and views call this only.

Every list is built the same way: candidates from the model (or the precomputed related
lists), then the fallbacks (same-category popular, then popular), all fetched in **one**
query through the adapter's ``visible_items`` (active, in stock), de-duplicated, the
current item and (optionally) already-bought items excluded, merchandising rules applied
last. A list is never empty while the shop has a visible item.

"For you" folds the shopper's latest events into the active model in process: no
retraining, so a new anonymous visitor's third click already changes their list. The model
is loaded once per version per process (:class:`ActiveModel`), swapped when the active
version changes.

Serving cost (see bench/serving). **Stock is read fresh on every list**: whether each
candidate is visible now comes from the database in this request (``adapter.visible_ids``,
one primary-key query; for "recently viewed", the history query itself), so an item that
goes out of stock or inactive is never served, however it changed (a save, an order's
``queryset.update``, raw SQL) and whatever is cached. Cached, per process, for one
*catalogue epoch* (:func:`catalogue_epoch`: a token in Django's cache that an item's save
or delete and ``order_paid`` replace at once and again on commit, and that expires after
``CATALOGUE_CACHE_SECONDS``, default 300):

- the item objects and their payloads (a small catalogue is loaded whole, see
  :meth:`_ItemCache.prewarm`), and rendered carousel cards (the template tags);
- finished related / bought-together lists: served again while every item in them is still
  visible (one query, which also reads the visibility of the item's other cached lists for
  the page's next carousel); rebuilt when one is not.

Staleness, honestly: with a shared cache (Redis) every process starts a new epoch on its
next request after a change that sends a signal. With a per-process cache (local memory),
or for a change that sends none (``queryset.update`` of a name or price), a process may show
an item's old name, price or category, or leave a restocked item out of a cached related
list, for at most ``CATALOGUE_CACHE_SECONDS``. Never an invisible item. Within one request,
the shared values (epoch, active version, rules in force) and visibility are read once.

Operations hooks (kept small): :func:`serving_version` lets an A/B test
(:mod:`recommendations.experiments`) serve another version, or no model, for one request;
:class:`ActiveModel` therefore keeps the few versions in use; ``related_to`` puts the
shop's hand-made related items first; ``_finish`` applies :mod:`recommendations.rules`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.db.models import Count, Exists, Max, Model, OuterRef, Q
from django.dispatch import receiver

from .. import cache_keys
from ..adapters import get_adapter
from ..conf import app_settings
from ..learning.versions import LoadedVersion, load_version
from ..models import Event, Interaction, ModelVersion, RelatedItem

logger = logging.getLogger(__name__)

POPULAR_DEPTH = 500  # popular items kept per window: enough for any category fallback
POPULAR_MEMO_SECONDS = 30  # a process keeps the cached popular rows this long besides


@dataclass(frozen=True)
class Recommendation:
    item: Model
    score: float
    strategy: str  # "model", "related", "bought_together", "category_popular", "popular", ...
    placement: str
    version_id: int | None = None
    reason: str = ""

    @property
    def source(self) -> str:
        """Attribution tag carried by the click and the visit: ``placement:v3`` or
        ``placement:popular`` when no model version produced the entry."""
        tag = f"v{self.version_id}" if self.version_id else self.strategy
        return f"{self.placement}:{tag}"[:100]


@dataclass
class RecommendationList:
    placement: str
    version_id: int | None
    items: list[Recommendation] = field(default_factory=list)
    #: Shared by every copy of a list served from the per-process list cache (None for one
    #: built for this request): what callers derive from the list alone may be kept here
    #: (the template tags keep the rendered carousel).
    memo: dict | None = field(default=None, compare=False, repr=False)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


# --- the active model, once per version per process ----------------------------------


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
    state = _request_state.get()
    value = state.get("version") if state is not None else None
    if value is None:
        value = cache.get(cache_keys.ACTIVE_VERSION)
    if value is None:
        value = (
            ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first() or 0
        )
        cache.set(cache_keys.ACTIVE_VERSION, value, 30)
    if state is not None:
        state["version"] = value
    return value or None


class ActiveModel:
    """The served versions' models in memory: the active one, plus an experiment's arm.

    Thread-safe: one thread loads, the others keep serving the version they had (or wait
    for the first load). A version whose artifact cannot be read is remembered as broken
    so a request never retries a failing load; services fall back instead. At most
    ``KEEP`` versions stay loaded (an A/B test serves two); :meth:`index` and
    :meth:`vectors` belong to the version the current request's :meth:`get` returned.
    """

    KEEP = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: OrderedDict[int, tuple[LoadedVersion, np.ndarray, dict[int, int]]]
        self._pool = OrderedDict()
        self._current: ContextVar[tuple | None] = ContextVar("recommendations_model", default=None)
        self._broken: set[int] = set()

    def get(self) -> LoadedVersion | None:
        version_id = active_version_id()
        if version_id is None or version_id in self._broken:
            return None
        entry = self._pool.get(version_id)
        if entry is None:
            with self._lock:
                entry = self._pool.get(version_id)
                if entry is None:
                    try:
                        version = ModelVersion.objects.get(pk=version_id)
                        fresh = load_version(version)
                        vectors = fresh.model.item_vectors().astype(np.float32)
                        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                        entry = (fresh, vectors / np.maximum(norms, 1e-12), fresh.item_index())
                    except Exception:
                        logger.exception(
                            "could not load model version %s; serving fallbacks", version_id
                        )
                        self._broken.add(version_id)
                        return None
                    pool = OrderedDict(self._pool)  # readers never see a half-changed dict
                    pool[version_id] = entry
                    while len(pool) > self.KEEP:
                        pool.popitem(last=False)
                    self._pool = pool
        self._current.set(entry)
        return entry[0]

    def index(self) -> dict[int, int]:
        entry = self._current.get()
        return entry[2] if entry is not None else {}

    def vectors(self) -> np.ndarray | None:
        entry = self._current.get()
        return entry[1] if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._pool, self._broken = OrderedDict(), set()


active_model = ActiveModel()


# --- the catalogue epoch and the item cache -----------------------------------------

#: Default of ``RECOMMENDATIONS["CATALOGUE_CACHE_SECONDS"]``: how long a catalogue epoch
#: lives, so how long another process with a per-process cache may show an old payload.
CATALOGUE_CACHE_SECONDS = 300
#: Default of ``RECOMMENDATIONS["PREWARM_ITEMS"]``: catalogues up to this size are loaded
#: whole into each process's item cache (see ``_ItemCache.prewarm``).
PREWARM_ITEMS = 10_000


def _setting(name: str, default: Any) -> Any:
    """A RECOMMENDATIONS key that conf.DEFAULTS may not define (yet): ``default`` then."""
    try:
        return getattr(app_settings, name)
    except AttributeError:
        return app_settings.user_settings.get(name, default)


def catalogue_epoch() -> str:
    """The current catalogue epoch: a token that changes whenever items may have changed
    (:func:`catalogue_changed`) and at the latest every ``CATALOGUE_CACHE_SECONDS``."""
    state = _request_state.get()
    if state is not None and "epoch" in state:
        return state["epoch"]
    epoch = cache.get(cache_keys.CATALOGUE_EPOCH)
    if epoch is None:
        epoch = secrets.token_hex(8)
        timeout = int(_setting("CATALOGUE_CACHE_SECONDS", CATALOGUE_CACHE_SECONDS))
        if not cache.add(cache_keys.CATALOGUE_EPOCH, epoch, timeout):
            epoch = cache.get(cache_keys.CATALOGUE_EPOCH) or epoch
    if state is not None:
        state["epoch"] = epoch
    return epoch


def _new_epoch() -> None:
    timeout = int(_setting("CATALOGUE_CACHE_SECONDS", CATALOGUE_CACHE_SECONDS))
    epoch = secrets.token_hex(8)
    cache.set(cache_keys.CATALOGUE_EPOCH, epoch, timeout)
    state = _request_state.get()
    if state is not None:
        state["epoch"] = epoch


def catalogue_changed(using: str | None = None) -> None:
    """Items (or their stock) changed: start a new catalogue epoch now, and again when the
    current transaction commits (a request that read the old rows meanwhile cached them
    under the epoch this replaces)."""
    _new_epoch()
    if _request_visibility.get() is not None:
        _request_visibility.set({})  # what this request read may have just changed
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(_new_epoch, using=using)


class _Generation:
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


class _ItemCache:
    """This process's item objects and finished related lists for one catalogue epoch.

    Objects are shared by requests and threads: treat them as read-only. A new epoch, or a
    new adapter (settings changed), starts an empty generation; readers holding the old one
    finish with it. Visibility is never taken from here (see :func:`_fetch`).
    """

    MAX_ITEMS = 50_000
    MAX_LISTS = 20_000

    def __init__(self) -> None:
        self._generation = _Generation(None)
        self._prewarm_lock = threading.Lock()
        self._next_prewarm = 0.0  # monotonic time before which no full load is tried again

    def prewarm(self, generation: _Generation) -> None:
        """Load the whole catalogue into ``generation`` in one query, when it has at most
        ``PREWARM_ITEMS`` items (default 10,000; 0: never) and this process has not done so
        in the last ``CATALOGUE_CACHE_SECONDS``. Lists then find every object here and cost
        one primary-key query each; between loads (an epoch replaced early, by a save or an
        order) objects are fetched as lists need them. A larger catalogue is not tried again
        for an hour (its first ``PREWARM_ITEMS + 1`` objects are kept)."""
        limit = int(_setting("PREWARM_ITEMS", PREWARM_ITEMS))
        now = time.monotonic()
        if limit <= 0 or now < self._next_prewarm or not self._prewarm_lock.acquire(False):
            return  # another thread is loading: this one fetches what it needs meanwhile
        try:
            if now < self._next_prewarm:
                return
            interval = int(_setting("CATALOGUE_CACHE_SECONDS", CATALOGUE_CACHE_SECONDS))
            objects = list(get_adapter().item_queryset().order_by()[: limit + 1])
            self._next_prewarm = now + (3600 if len(objects) > limit else interval)
            store = generation.items
            for obj in objects:
                store.setdefault(obj.pk, obj)
        finally:
            self._prewarm_lock.release()

    def current(self) -> _Generation:
        key = (catalogue_epoch(), get_adapter())
        generation = self._generation
        stale = generation.key is None or generation.key[0] != key[0]
        if stale or generation.key[1] is not key[1] or len(generation.items) > self.MAX_ITEMS:
            generation = self._generation = _Generation(key)
        elif len(generation.lists) > self.MAX_LISTS or len(generation.derived) > self.MAX_LISTS:
            generation.lists, generation.siblings, generation.derived = {}, {}, {}
        return generation

    def store(self) -> dict[int, Model]:
        return self.current().items

    def clear(self) -> None:
        self._generation = _Generation(None)
        self._next_prewarm = 0.0


item_cache = _ItemCache()
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


# --- lists -------------------------------------------------------------------------


def for_visitor(
    user: Any = None,
    visitor_id: str | None = None,
    k: int | None = None,
    placement: str = "for_you",
    exclude: Iterable[int] = (),
) -> RecommendationList:
    """Personal recommendations for a signed-in ``user`` or an anonymous ``visitor_id``."""
    k = k or app_settings.CAROUSEL_SIZE
    user_id = _signed_in_id(user)
    if user_id is None and not visitor_id:
        return _finish(placement, None, [], k, exclude=set(exclude))
    loaded = active_model.get()
    version_id = loaded.version_id if loaded else None
    exclude = set(exclude)
    key = cache_keys.visitor(user_id, visitor_id)
    entry_key = f"{placement}:{k}:{version_id}:{sorted(exclude)}"
    cached = cache.get(key) or {}
    if entry_key in cached:
        ids, scores, strategies, reasons, history_categories, bought = cached[entry_key]
    else:
        history = _history(user_id, visitor_id)
        bought = {item for item, event in history if event == Event.PURCHASE}
        ids, scores, strategies, reasons = [], [], [], []
        if loaded is not None and history:
            ids, scores, reasons = _fold_in(loaded, history, k * 3 + len(exclude) + len(bought))
            strategies = ["model"] * len(ids)
        history_categories = [item for item, _ in history[:5]]
        cached[entry_key] = (ids, scores, strategies, reasons, history_categories, bought)
        cache.set(key, cached, app_settings.VISITOR_CACHE_SECONDS)
    if app_settings.EXCLUDE_PURCHASED:
        exclude |= set(bought)
    candidates = list(zip(ids, scores, strategies, reasons, strict=True))
    return _finish(
        placement, version_id, candidates, k, exclude=exclude, context_items=history_categories
    )


def related_to(
    item: Model | int, k: int | None = None, placement: str = "related"
) -> RecommendationList:
    """Items like this one (the active version's ``similar`` list)."""
    return _related(item, RelatedItem.Kind.SIMILAR, k, placement)


def bought_together(
    item: Model | int, k: int | None = None, placement: str = "bought_together"
) -> RecommendationList:
    """Items bought in the same orders as this one, by lift; then similar ones."""
    return _related(item, RelatedItem.Kind.BOUGHT_TOGETHER, k, placement)


def popular(
    category: Any = None,
    k: int | None = None,
    window_days: int | None = None,
    placement: str = "popular",
) -> RecommendationList:
    """Most bought items over the window (ending at the newest event), optionally by category."""
    k = k or app_settings.CAROUSEL_SIZE
    window = window_days or app_settings.POPULAR_WINDOW_DAYS
    rows = _popular_rows(window)
    if category is not None:
        category_id = getattr(category, "pk", category)
        rows = [row for row in rows if row[2] == category_id]
    candidates = [(item, float(count), "popular", "Popular right now") for item, count, _ in rows]
    return _finish(placement, None, candidates, k, fallback=category is None)


def trending(
    k: int | None = None, window_days: int | None = None, placement: str = "trending"
) -> RecommendationList:
    """Items whose recent sales and views grew most against the four windows before."""
    k = k or app_settings.CAROUSEL_SIZE
    window = window_days or app_settings.TRENDING_WINDOW_DAYS
    rows = cache.get(cache_keys.trending(window))
    if rows is None:
        rows = _trending_rows(window)
        cache.set(cache_keys.trending(window), rows, app_settings.LIST_CACHE_SECONDS)
    candidates = [(item, score, "trending", "Trending this week") for item, score in rows]
    return _finish(placement, None, candidates, k)


def recently_viewed(
    user: Any = None,
    visitor_id: str | None = None,
    k: int | None = None,
    placement: str = "recently_viewed",
    exclude: Iterable[int] = (),
) -> RecommendationList:
    """The shopper's own latest distinct views (no fallback: an empty history is empty)."""
    k = k or app_settings.CAROUSEL_SIZE
    user_id = _signed_in_id(user)
    if user_id is None and not visitor_id:
        return RecommendationList(placement, None)
    seen: dict[int, bool] = {}  # item -> visible now (read by the history query itself)
    for item, event, visible in _history_visible(user_id, visitor_id):
        if event == Event.VIEW and item not in seen:
            seen[item] = visible
    candidates = [(item, float(-i), "history", "You viewed this") for i, item in enumerate(seen)]
    return _finish(
        placement, None, candidates, k, exclude=set(exclude), fallback=False, known=seen
    )


# --- building blocks -----------------------------------------------------------------


def _signed_in_id(user: Any) -> int | None:
    """A signed-in user's pk; None for anonymous users (and for no user at all)."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return getattr(user, "pk", None)


def _history(user_id: int | None, visitor_id: str | None) -> list[tuple[int, str]]:
    """The shopper's latest events, newest first: one query on the serving index."""
    limit = int(app_settings.FOLD_IN_EVENTS)

    def query(who: Any) -> Any:
        qs = (
            Interaction.objects.filter(user_id=who)
            if user_id
            else Interaction.objects.filter(visitor_id=who, user__isnull=True)
        )
        return (
            qs.exclude(event=Event.CLICK).order_by("-created_at").values_list("item_id", "event")
        )[:limit]

    who = user_id if user_id else visitor_id
    rows = _compiled_rows(("history", bool(user_id), limit), query, who)
    return rows if rows is not None else list(query(who))


def _history_visible(user_id: int | None, visitor_id: str | None) -> list[tuple[int, str, bool]]:
    """:func:`_history` with whether each item is visible now, in the same query."""
    adapter = get_adapter()
    limit = int(app_settings.FOLD_IN_EVENTS)

    def query(who: Any) -> Any:
        qs = (
            Interaction.objects.filter(user_id=who)
            if user_id
            else Interaction.objects.filter(visitor_id=who, user__isnull=True)
        )
        visible = Exists(adapter.visible_items().filter(pk=OuterRef("item_id")))
        return (
            qs.exclude(event=Event.CLICK)
            .order_by("-created_at")
            .annotate(_recommendations_visible=visible)
            .values_list("item_id", "event", "_recommendations_visible")
        )[:limit]

    who = user_id if user_id else visitor_id
    rows = None
    if adapter.static_visibility:  # the statement may be kept: nothing in it changes
        rows = _compiled_rows(("history-visible", bool(user_id), limit, adapter), query, who)
    if rows is None:
        rows = list(query(who))
    return [(item, event, bool(visible)) for item, event, visible in rows]


_statements: dict[tuple, tuple | None] = {}


def _sentinel(kind: type, n: int) -> Any:
    """The ``n``-th stand-in value of a type: what no row holds."""
    return -7_340_000_000_001 - n if kind is int else f"\x00recommendations-sentinel-{n}\x00"


def _compiled_rows(key: tuple, build: Any, *values: Any) -> list[tuple] | None:
    """The rows of ``build(*values)``, from a statement compiled once per ``key``.

    For the queries every request makes (their shape never changes, only the values do):
    the queryset is built with stand-ins for ``values`` and compiled once; later calls run
    that SQL with the values in the stand-ins' places, skipping the ORM's query building
    (most of a small query's cost). Only for values_list queries of ints and strings (no
    converters). None where a stand-in is not found exactly once: use the ORM then.
    """
    from django.db import connections

    if not all(type(v) in (int, str) for v in values):
        return None
    statement = _statements.get(key, False)
    if statement is False:
        stand_ins = [_sentinel(type(v), n) for n, v in enumerate(values)]
        qs = build(*stand_ins)
        sql, params = qs.query.get_compiler(qs.db).as_sql()
        places = []
        for stand_in in stand_ins:
            found = [i for i, p in enumerate(params) if type(p) is type(stand_in) and p == stand_in]
            places.append(found[0] if len(found) == 1 else None)
        ok = None not in places
        statement = _statements[key] = (qs.db, sql, list(params), places) if ok else None
    if statement is None:
        return None
    db, sql, params, places = statement
    params = list(params)
    for place, value in zip(places, values, strict=True):
        params[place] = value
    with connections[db].cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _fold_in(
    loaded: LoadedVersion, history: Sequence[tuple[int, str]], n: int
) -> tuple[list[int], list[float], list[str]]:
    """Score the model on this history; the top ``n`` items with a "because ..." reason."""
    index = active_model.index()
    weights = app_settings.EVENT_WEIGHTS
    row: dict[int, float] = {}
    for item, event in history:
        j = index.get(item)
        w = weights.get(event, 0.0)
        if j is not None and w > 0:
            row[j] = max(row.get(j, 0.0), w)
    if not row:
        return [], [], []
    cols = np.fromiter(row.keys(), dtype=np.int64)
    X = sp.csr_matrix(  # one row, built directly (no COO conversion)
        (np.ones(len(cols), np.float32), np.sort(cols), np.array([0, len(cols)])),
        shape=(1, loaded.model.n_items),
    )
    scores = np.asarray(loaded.model.score(X), dtype=np.float32).ravel()
    scores[cols] = -np.inf  # what they already interacted with is not a discovery
    n = min(n, len(scores))
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    top = top[np.isfinite(scores[top])]
    reasons = _because(top, cols, history, loaded)
    return [int(loaded.item_ids[j]) for j in top], [float(scores[j]) for j in top], reasons


def _because(
    top: np.ndarray,
    history_cols: np.ndarray,
    history: Sequence[tuple[int, str]],
    loaded: LoadedVersion,
) -> list[str]:
    """For each recommendation, the history item closest to it in the model's item space."""
    vectors = active_model.vectors()
    if vectors is None or not len(top):
        return [""] * len(top)
    closest = history_cols[np.argmax(vectors[top] @ vectors[history_cols].T, axis=1)]
    events = {}
    for item, event in history:
        events.setdefault(item, event)
    out = []
    for j in closest:
        item = int(loaded.item_ids[j])
        verb = "bought" if events.get(item) == Event.PURCHASE else "viewed"
        out.append(f"because:{verb}:{item}")
    return out


def _related(item: Model | int, kind: str, k: int | None, placement: str) -> RecommendationList:
    from .rules import manual_related, rules_enabled

    k = k or app_settings.CAROUSEL_SIZE
    item_id = getattr(item, "pk", item)
    version_id = active_version_id()
    category_hint = get_adapter().item_category_id(item) if isinstance(item, Model) else None
    manual = manual_related(item_id) if kind == RelatedItem.Kind.SIMILAR else []
    # The finished list is kept in this process for the catalogue epoch (at most
    # LIST_CACHE_SECONDS) under everything it was built from; serving it again costs one
    # query, whether its items are still visible. If one is not, the list is rebuilt.
    enabled = rules_enabled()
    key = (
        placement, kind, item_id, isinstance(item, Model), category_hint, k, version_id,
        tuple(manual), enabled, _rules_in_force(placement) if enabled else (),
    )
    generation = item_cache.current()
    hit = generation.lists.get(key)
    if hit is not None and hit[0] > time.monotonic():
        ids = [rec.item.pk for rec in hit[1].items]
        if _visible(ids, also=generation.sibling_ids(item_id, key)) == set(ids):
            return RecommendationList(placement, version_id, list(hit[1].items), hit[1].memo)
    candidates: list[tuple] = []
    if version_id is not None:
        key_rows = cache_keys.related(version_id, kind, item_id)
        rows = cache.get(key_rows)
        if rows is None:
            kinds = [kind] if kind == RelatedItem.Kind.SIMILAR else [kind, RelatedItem.Kind.SIMILAR]

            def query(version: Any, item: Any) -> Any:
                return (
                    RelatedItem.objects.filter(version_id=version, item_id=item, kind__in=kinds)
                    .order_by(
                        "kind" if kind == RelatedItem.Kind.BOUGHT_TOGETHER else "rank", "rank"
                    )
                    .values_list("related_id", "score", "kind")
                )

            rows = _compiled_rows(("related", kind), query, version_id, item_id)
            if rows is None:
                rows = list(query(version_id, item_id))
            cache.set(key_rows, rows, app_settings.LIST_CACHE_SECONDS)
        label = {
            RelatedItem.Kind.SIMILAR: "Similar",
            RelatedItem.Kind.BOUGHT_TOGETHER: "Often bought together",
        }
        candidates = [(rid, score, str(k_), label.get(k_, "")) for rid, score, k_ in rows]
    if manual:  # the shop's hand-made list wins over the model's
        candidates = [(rid, 1.0, "manual", "Recommended") for rid in manual] + candidates
    result = _finish(
        placement,
        version_id,
        candidates,
        k,
        exclude={item_id},
        context_items=[item_id] if not isinstance(item, Model) else None,
        category_hint=category_hint,
    )
    if not result.items:  # rebuilt each time: it fills as soon as anything can be shown
        return result
    cached = RecommendationList(placement, version_id, result.items, memo={})
    generation.store_list(key, item_id, cached)
    return RecommendationList(placement, version_id, list(result.items), cached.memo)


def _explain(reason: str, items: dict[int, Model]) -> str:
    """``because:viewed:42`` -> "Because you viewed Red Retrospot Mug"."""
    if not reason.startswith("because:"):
        return reason
    _, verb, item_id = reason.split(":", 2)
    named = items.get(int(item_id))
    return f"Because you {verb} {str(named).title()}" if named is not None else ""


def _popular_rows(window_days: int | None) -> list[tuple[int, int, Any]]:
    """``(item id, purchases, category id)``, most bought first, cached (and kept in this
    process for up to ``POPULAR_MEMO_SECONDS`` of the catalogue epoch, so a list does not
    unpickle 500 rows each time)."""
    derived = item_cache.current().derived
    memo_key = ("popular-rows", window_days)
    memo = derived.get(memo_key)
    if memo is not None and memo[0] > time.monotonic():
        return memo[1]
    key = cache_keys.popular(window_days)
    rows = cache.get(key)
    if rows is not None:
        derived[memo_key] = (time.monotonic() + POPULAR_MEMO_SECONDS, rows)
        return rows
    purchases = Interaction.objects.filter(event=Event.PURCHASE)
    newest = purchases.aggregate(newest=Max("created_at"))["newest"]
    if newest is not None and window_days:
        recent = purchases.filter(created_at__gte=newest - timedelta(days=window_days))
        counts = list(_count_by_item(recent))
        if len(counts) < POPULAR_DEPTH // 10:  # a quiet window: use all time instead
            counts = list(_count_by_item(purchases))
    else:
        counts = list(_count_by_item(purchases))
    adapter = get_adapter()
    items = adapter.item_queryset().in_bulk([item for item, _ in counts])
    rows = [(item, n, adapter.item_category_id(items[item])) for item, n in counts if item in items]
    cache.set(key, rows, app_settings.LIST_CACHE_SECONDS)
    return rows


def _count_by_item(qs) -> Iterable[tuple[int, int]]:
    return (
        qs.values("item_id")
        .annotate(n=Count("id"))
        .order_by("-n", "item_id")
        .values_list("item_id", "n")[:POPULAR_DEPTH]
    )


def _trending_rows(window_days: int) -> list[tuple[int, float]]:
    events = Interaction.objects.filter(event__in=[Event.PURCHASE, Event.VIEW, Event.ADD_TO_CART])
    newest = events.aggregate(newest=Max("created_at"))["newest"]
    if newest is None:
        return []
    recent_start = newest - timedelta(days=window_days)
    base_start = newest - timedelta(days=5 * window_days)
    rows = (
        events.filter(created_at__gte=base_start)
        .values("item_id")
        .annotate(
            recent=Count("id", filter=Q(created_at__gte=recent_start)),
            before=Count("id", filter=Q(created_at__lt=recent_start)),
        )
        .filter(recent__gte=2)
    )
    # Smoothed growth: recent / (average earlier window + 2), so one sale of a dead item is
    # not "trending" and a steady bestseller scores about 1.
    scored = [(r["item_id"], r["recent"] / (r["before"] / 4 + 2)) for r in rows]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:POPULAR_DEPTH]


def _finish(
    placement: str,
    version_id: int | None,
    candidates: list[tuple],
    k: int,
    *,
    exclude: set[int] | None = None,
    fallback: bool = True,
    context_items: list[int] | None = None,
    category_hint: Any = None,
    known: dict[int, bool] | None = None,
) -> RecommendationList:
    """Candidates + fallbacks -> visible items in one query -> rules -> at most ``k``.
    ``known``: visibility already read in this request (then no query is needed for it)."""
    from .rules import apply_rules, rules_enabled

    exclude = exclude or set()
    adapter = get_adapter()
    size = max(4 * k, k + 40)  # candidates checked: enough for sold-out items and rules
    ordered: list[tuple] = []
    seen: set[int] = set(exclude)
    for candidate in candidates:
        if candidate[0] not in seen:
            seen.add(candidate[0])
            ordered.append(candidate)
            if len(ordered) >= size:
                break
    if fallback and len(ordered) < size:
        popular_rows = _popular_rows(app_settings.POPULAR_WINDOW_DAYS)
        wanted_category = category_hint
        if wanted_category is None and context_items:
            categories = {row[0]: row[2] for row in popular_rows}
            wanted_category = next((categories[i] for i in context_items if i in categories), None)
        if wanted_category is not None:
            for item, n, category in popular_rows:
                if len(ordered) >= size:
                    break
                if category == wanted_category and item not in seen:
                    seen.add(item)
                    ordered.append((item, float(n), "category_popular", "Popular in this category"))
        for item, n, _ in popular_rows:
            if len(ordered) >= size:
                break
            if item not in seen:
                seen.add(item)
                ordered.append((item, float(n), "popular", "Popular right now"))
    pool = ordered[:size]
    named = {int(c[3].rsplit(":", 1)[1]) for c in pool if c[3].startswith("because:")}
    # Without rules in force the list is the first k visible entries; rules (exclusions,
    # boosts) may reach further down, so they see every visible candidate.
    limit = None if rules_enabled() and _rules_in_force(placement) else k
    items, visible = _fetch([c[0] for c in pool], named, known)
    result: list[Recommendation] = []
    for item_id, score, strategy, reason in pool:
        if item_id not in visible or item_id not in items:
            continue
        result.append(
            Recommendation(
                item=items[item_id],
                score=score,
                strategy=strategy,
                placement=placement,
                version_id=version_id
                if strategy in ("model", "similar", "bought_together")
                else None,
                reason=_explain(reason, items),
            )
        )
        if limit is not None and len(result) >= limit:
            break
    if fallback and len(result) < k:
        # A shop with (almost) no sales yet: any visible items, newest first.
        have = {rec.item.pk for rec in result} | exclude
        for obj in adapter.visible_items().exclude(pk__in=have).order_by("-pk")[: k - len(result)]:
            result.append(Recommendation(obj, 0.0, "catalogue", placement, None, "New in"))
    result = apply_rules(placement, result, exclude=exclude)
    return RecommendationList(placement, version_id, result[:k])


def _fetch(
    ids: list[int], named: set[int], known: dict[int, bool] | None = None
) -> tuple[dict[int, Model], set[int]]:
    """The item objects of ``ids`` and ``named``, and which of ``ids`` are visible now.

    Visibility is always read from the database, in this request, in one query at most.
    When every object is in this process's item cache (see :meth:`_ItemCache.prewarm`),
    that query reads primary keys only (:func:`_visible`), or is not needed when ``known``
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
        return {pk: store[pk] for pk in wanted}, _visible(ids, known) if ids else set()
    fetched = (
        adapter.item_queryset()
        .filter(pk__in=list(wanted))
        .annotate(
            _recommendations_visible=Exists(adapter.visible_items().filter(pk=OuterRef("pk")))
        )
    )
    items: dict[int, Model] = {}
    visible: set[int] = set()
    for obj in fetched:
        if obj.__dict__.pop("_recommendations_visible"):
            visible.add(obj.pk)
        items[obj.pk] = store[obj.pk] = obj
    _remember({pk: pk in visible for pk in ids})
    return items, visible


# --- what this request read --------------------------------------------------------------

#: Shared values read once per request (None outside requests): the catalogue epoch, the
#: active version, the rules in force per placement. A page's carousels then read the cache
#: once, not once each. Set on ``request_started``, dropped on ``request_finished``.
_request_state: ContextVar[dict[Any, Any] | None] = ContextVar(
    "recommendations_request_state", default=None
)


def _rules_in_force(placement: str) -> tuple:
    """``rules.rules_for(placement)`` as a tuple, read once per request."""
    from .rules import rules_for

    state = _request_state.get()
    key = ("rules", placement)
    if state is not None and key in state:
        return state[key]
    value = tuple(rules_for(placement))
    if state is not None:
        state[key] = value
    return value


#: Visibility read from the database during the current request (None outside requests):
#: a page's later lists reuse it instead of asking again. Set on ``request_started``,
#: dropped on ``request_finished`` and whenever this process changes the catalogue.
_request_visibility: ContextVar[dict[Any, bool] | None] = ContextVar(
    "recommendations_visibility", default=None
)


def _visible(
    ids: list[Any], known: dict[Any, bool] | None = None, also: Iterable[Any] = ()
) -> set[Any]:
    """Which of ``ids`` are visible now: from ``known`` or what this request read already,
    else one query (``adapter.visible_ids``) that also reads ``also`` for later lists."""
    memo = _request_visibility.get()
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
        _remember(read)
        answers.update(read)
    return {pk for pk in ids if answers.get(pk)}


def _remember(read: dict[Any, bool]) -> None:
    memo = _request_visibility.get()
    if memo is not None:
        memo.update(read)


@receiver(request_started, dispatch_uid="recommendations.services.request_started")
def _request_started(**kwargs: Any) -> None:
    _request_visibility.set({})
    _request_state.set({})


@receiver(request_finished, dispatch_uid="recommendations.services.request_finished")
def _request_finished(**kwargs: Any) -> None:
    _request_visibility.set(None)
    _request_state.set(None)
