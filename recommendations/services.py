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

Operations hooks (kept small): :func:`serving_version` lets an A/B test
(:mod:`recommendations.experiments`) serve another version, or no model, for one request;
:class:`ActiveModel` therefore keeps the few versions in use; ``related_to`` puts the
shop's hand-made related items first; ``_finish`` applies :mod:`recommendations.rules`.
"""

from __future__ import annotations

import logging
import threading
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
from django.db.models import Count, Exists, Max, Model, OuterRef, Q

from . import cache_keys
from .adapters import get_adapter
from .conf import app_settings
from .models import Event, Interaction, ModelVersion, RelatedItem
from .versions import LoadedVersion, load_version

logger = logging.getLogger(__name__)

POPULAR_DEPTH = 500  # popular items kept per window: enough for any category fallback


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
    value = cache.get(cache_keys.ACTIVE_VERSION)
    if value is None:
        value = (
            ModelVersion.objects.filter(is_active=True).values_list("pk", flat=True).first() or 0
        )
        cache.set(cache_keys.ACTIVE_VERSION, value, 30)
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
    user_id = (
        getattr(user, "pk", None)
        if user is not None and getattr(user, "is_authenticated", True)
        else None
    )
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
    user_id = (
        getattr(user, "pk", None)
        if user is not None and getattr(user, "is_authenticated", True)
        else None
    )
    if user_id is None and not visitor_id:
        return RecommendationList(placement, None)
    seen: list[int] = []
    for item, event in _history(user_id, visitor_id):
        if event == Event.VIEW and item not in seen:
            seen.append(item)
    candidates = [(item, float(-i), "history", "You viewed this") for i, item in enumerate(seen)]
    return _finish(placement, None, candidates, k, exclude=set(exclude), fallback=False)


# --- building blocks -----------------------------------------------------------------


def _history(user_id: int | None, visitor_id: str | None) -> list[tuple[int, str]]:
    """The shopper's latest events, newest first: one query on the serving index."""
    qs = (
        Interaction.objects.filter(user_id=user_id)
        if user_id
        else Interaction.objects.filter(visitor_id=visitor_id, user__isnull=True)
    )
    return list(
        qs.exclude(event=Event.CLICK)
        .order_by("-created_at")
        .values_list("item_id", "event")[: app_settings.FOLD_IN_EVENTS]
    )


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
    X = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (np.zeros(len(cols), np.int64), cols)),
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
    k = k or app_settings.CAROUSEL_SIZE
    item_id = getattr(item, "pk", item)
    version_id = active_version_id()
    candidates: list[tuple] = []
    if version_id is not None:
        key = cache_keys.related(version_id, kind, item_id)
        rows = cache.get(key)
        if rows is None:
            kinds = [kind] if kind == RelatedItem.Kind.SIMILAR else [kind, RelatedItem.Kind.SIMILAR]
            rows = list(
                RelatedItem.objects.filter(version_id=version_id, item_id=item_id, kind__in=kinds)
                .order_by("kind" if kind == RelatedItem.Kind.BOUGHT_TOGETHER else "rank", "rank")
                .values_list("related_id", "score", "kind")
            )
            cache.set(key, rows, app_settings.LIST_CACHE_SECONDS)
        label = {
            RelatedItem.Kind.SIMILAR: "Similar",
            RelatedItem.Kind.BOUGHT_TOGETHER: "Often bought together",
        }
        candidates = [(rid, score, str(k_), label.get(k_, "")) for rid, score, k_ in rows]
    if kind == RelatedItem.Kind.SIMILAR:  # the shop's hand-made list wins over the model's
        from .rules import manual_related

        manual = [(rid, 1.0, "manual", "Recommended") for rid in manual_related(item_id)]
        candidates = manual + candidates
    return _finish(
        placement,
        version_id,
        candidates,
        k,
        exclude={item_id},
        context_items=[item_id] if not isinstance(item, Model) else None,
        category_hint=get_adapter().item_category_id(item) if isinstance(item, Model) else None,
    )


def _explain(reason: str, items: dict[int, Model]) -> str:
    """``because:viewed:42`` -> "Because you viewed Red Retrospot Mug"."""
    if not reason.startswith("because:"):
        return reason
    _, verb, item_id = reason.split(":", 2)
    named = items.get(int(item_id))
    return f"Because you {verb} {str(named).title()}" if named is not None else ""


def _popular_rows(window_days: int | None) -> list[tuple[int, int, Any]]:
    """``(item id, purchases, category id)``, most bought first, cached."""
    key = cache_keys.popular(window_days)
    rows = cache.get(key)
    if rows is not None:
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
) -> RecommendationList:
    """Candidates + fallbacks -> visible items in one query -> rules -> at most ``k``."""
    from .rules import apply_rules

    exclude = exclude or set()
    adapter = get_adapter()
    ordered: list[tuple] = []
    seen: set[int] = set(exclude)
    for candidate in candidates:
        if candidate[0] not in seen:
            seen.add(candidate[0])
            ordered.append(candidate)
    if fallback:
        popular_rows = _popular_rows(app_settings.POPULAR_WINDOW_DAYS)
        wanted_category = category_hint
        if wanted_category is None and context_items:
            categories = {row[0]: row[2] for row in popular_rows}
            wanted_category = next((categories[i] for i in context_items if i in categories), None)
        if wanted_category is not None:
            for item, n, category in popular_rows:
                if category == wanted_category and item not in seen:
                    seen.add(item)
                    ordered.append((item, float(n), "category_popular", "Popular in this category"))
        for item, n, _ in popular_rows:
            if item not in seen:
                seen.add(item)
                ordered.append((item, float(n), "popular", "Popular right now"))
    # One query for every candidate and every item an explanation names, with whether it
    # is visible now (the adapter decides: active, in stock).
    pool = ordered[: max(4 * k, k + 40)]
    named = {int(c[3].rsplit(":", 1)[1]) for c in pool if c[3].startswith("because:")}
    fetched = (
        adapter.item_queryset()
        .filter(pk__in=[c[0] for c in pool] + list(named))
        .annotate(
            _recommendations_visible=Exists(adapter.visible_items().filter(pk=OuterRef("pk")))
        )
    )
    items = {obj.pk: obj for obj in fetched}
    result = [
        Recommendation(
            item=items[item_id],
            score=score,
            strategy=strategy,
            placement=placement,
            version_id=version_id if strategy in ("model", "similar", "bought_together") else None,
            reason=_explain(reason, items),
        )
        for item_id, score, strategy, reason in pool
        if item_id in items and items[item_id]._recommendations_visible
    ]
    if fallback and len(result) < k:
        # A shop with (almost) no sales yet: any visible items, newest first.
        have = {rec.item.pk for rec in result} | exclude
        for obj in adapter.visible_items().exclude(pk__in=have).order_by("-pk")[: k - len(result)]:
            result.append(Recommendation(obj, 0.0, "catalogue", placement, None, "New in"))
    result = apply_rules(placement, result, exclude=exclude)
    return RecommendationList(placement, version_id, result[:k])
