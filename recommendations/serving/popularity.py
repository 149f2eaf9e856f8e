"""What sells now: popular and trending rows, shared by their lists and every fallback."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Q

from .. import cache_keys
from ..adapters import get_adapter
from ..conf import app_settings
from ..models import Event, Interaction
from ..verified import verified_purchases_q
from .catalogue import item_cache

POPULAR_DEPTH = 500  # popular items kept per window: enough for any category fallback
POPULAR_MEMO_SECONDS = 30  # a process keeps the cached popular rows this long besides


def popular_rows(window_days: int | None) -> list[tuple[int, int, tuple[Any, ...]]]:
    """``(item id, purchases, category ids)``, most bought first, cached (and kept in this
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
    purchases = Interaction.objects.filter(verified_purchases_q())  # the shop's word only
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
    rows = [
        (item, n, tuple(adapter.item_category_ids(items[item])))
        for item, n in counts
        if item in items
    ]
    cache.set(key, rows, app_settings.LIST_CACHE_SECONDS)
    return rows


def _count_by_item(qs) -> Iterable[tuple[int, int]]:
    return (
        qs.values("item_id")
        .annotate(n=Count("id"))
        .order_by("-n", "item_id")
        .values_list("item_id", "n")[:POPULAR_DEPTH]
    )


def trending_rows(window_days: int) -> list[tuple[int, float]]:
    events = Interaction.objects.filter(
        Q(event__in=[Event.VIEW, Event.ADD_TO_CART]) | verified_purchases_q()
    )
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
