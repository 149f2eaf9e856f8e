"""Between trainings: fresh lists from the events since the last refresh, no retraining.

:func:`refresh` (``manage.py recommendations_refresh``, and the beat entry
``recommendations-refresh``, every ``REFRESH["EVERY_MINUTES"]`` minutes) updates, for the
active version:

- **bought together**: the lists of every item that an order since the last run holds are
  recomputed from all orders (:func:`recommendations.ml.baskets.association` with
  ``only=``: the same counts and ranking a training would use), so a pair bought now is
  listed after one refresh. Other items' lists keep their rows until the next training
  (their scores drift only by the new orders' share of the totals);
- **similar items of new items**: items that have no ``similar`` row yet (added since the
  training) get neighbours by their content, as training gives unseen items;
- **popular and trending**: their cached rows are dropped, so the next list recomputes them
  from the log as it is (instead of when they expire).

The last run's newest event time is kept in the cache; without it (a cold cache) the refresh
starts from the version's training data (``data_until``), which recomputes more but gives
the same lists. A lease keeps one refresh at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max

from .. import cache_keys
from ..adapters import get_adapter
from ..conf import app_settings
from ..db import bulk_insert
from ..models import Event, Interaction, ModelVersion, RelatedItem
from .extract import order_lines
from .locks import Lease
from .new_items import place_new_items
from .related import COLUMNS, _content_neighbours, _rows, bought_together_partners

logger = logging.getLogger(__name__)

REFRESH_LOCK = "recommendations.refresh"


@dataclass
class RefreshReport:
    version_id: int | None = None
    since: str | None = None
    new_order_lines: int = 0
    items_touched: int = 0
    bought_together_rows: int = 0
    new_items: int = 0
    content_rows: int = 0
    new_items_placed: int = 0
    popular_windows: list = field(default_factory=list)
    trending_windows: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    skipped: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def watermark_key(version_id: int) -> str:
    return f"recommendations:refresh:{version_id}"


def refresh(
    version: ModelVersion | None = None, progress: Callable[[str], None] | None = None
) -> RefreshReport:
    """Refresh the active version's lists (or ``version``'s) from the events since the last
    run; popular and trending caches always. Returns what it did."""
    say = progress or logger.info
    report = RefreshReport()
    lease = Lease(REFRESH_LOCK, 600, holder="refresh")
    if not lease.acquire():
        report.skipped = "another refresh is running"
        return report
    try:
        version = version or ModelVersion.objects.filter(is_active=True).first()
        if version is not None:
            report.version_id = version.pk
            _refresh_version(version, report, say)
        _refresh_popularity(report, say)
    finally:
        lease.release()
    return report


def _refresh_version(version: ModelVersion, report: RefreshReport, say) -> None:
    t0 = time.perf_counter()
    since: datetime | None = cache.get(watermark_key(version.pk)) or version.data_until
    report.since = since.isoformat() if since else None
    purchases = Interaction.objects.filter(event=Event.PURCHASE)
    newest = purchases.aggregate(newest=Max("created_at"))["newest"]
    k = app_settings.RELATED_ITEMS_K
    adapter = get_adapter()
    existing = np.array(
        sorted(adapter.item_queryset().values_list("pk", flat=True)), dtype=np.int64
    )
    rows: list[tuple] = []
    touched = np.array([], dtype=np.int64)
    if newest is not None and (since is None or newest > since):
        # orders that received a line since the watermark; the lines of one order may be
        # written a moment apart, so whole orders are taken from all lines read below
        lines = order_lines()
        fresh = lines
        if since is not None:  # strictly after the watermark (the frame keeps milliseconds)
            fresh = lines[lines["timestamp"] > pd.Timestamp(since).ceil("ms")]
        report.new_order_lines = len(fresh)
        baskets = set(fresh["basket"].unique())
        touched = np.unique(lines.loc[lines["basket"].isin(baskets), "item"].to_numpy())
        report.items_touched = len(touched)
        report.seconds["read_orders"] = round(time.perf_counter() - t0, 3)
        if len(touched):
            partners = bought_together_partners(lines, k, only=touched)
            wanted = np.isin(partners.item_ids, touched)
            rows += _rows(
                version.pk,
                RelatedItem.Kind.BOUGHT_TOGETHER,
                np.asarray(partners.item_ids, np.int64)[wanted],
                partners.indices[wanted],
                partners.scores[wanted],
                existing,
                targets_of=np.asarray(partners.item_ids, np.int64),
            )
            report.bought_together_rows = len(rows)
        report.seconds["bought_together"] = round(time.perf_counter() - t0, 3)
    # new items: no similar row in this version yet
    t1 = time.perf_counter()
    listed = set(
        RelatedItem.objects.filter(version=version, kind=RelatedItem.Kind.SIMILAR)
        .values_list("item_id", flat=True)
        .distinct()
    )
    new = np.array([pk for pk in existing if int(pk) not in listed], dtype=np.int64)
    if len(new):
        catalogue = list(adapter.item_queryset().order_by("pk"))
        content_rows = _content_neighbours(version.pk, catalogue, new, k, adapter)
        rows += content_rows
        report.new_items = len(new)
        report.content_rows = len(content_rows)
    report.seconds["new_items"] = round(time.perf_counter() - t1, 3)
    t2 = time.perf_counter()
    with transaction.atomic():
        if len(touched):
            RelatedItem.objects.filter(
                version=version, kind=RelatedItem.Kind.BOUGHT_TOGETHER, item_id__in=touched.tolist()
            ).delete()
        if len(new):
            RelatedItem.objects.filter(
                version=version, kind=RelatedItem.Kind.SIMILAR, item_id__in=new.tolist()
            ).delete()
        bulk_insert(RelatedItem, COLUMNS, rows)
    for item in [*touched.tolist(), *new.tolist()]:
        for kind in RelatedItem.Kind.values:
            cache.delete(cache_keys.related(version.pk, kind, int(item)))
    if rows:  # lists finished in processes are kept per catalogue epoch: a new one starts
        cache.delete(cache_keys.CATALOGUE_EPOCH)
    if newest is not None:
        cache.set(watermark_key(version.pk), newest, None)
    report.seconds["write"] = round(time.perf_counter() - t2, 3)
    if len(new):  # new items also get a place in "for you" (by content, no retraining)
        t3 = time.perf_counter()
        try:
            report.new_items_placed = place_new_items(version)
        except Exception:  # the lists above are written; placing waits for the next run
            logger.exception("v%s: placing new items failed", version.pk)
        report.seconds["place_new_items"] = round(time.perf_counter() - t3, 3)
    say(
        f"v{version.pk}: {report.new_order_lines:,} order lines since {report.since}; "
        f"bought together of {report.items_touched:,} items ({report.bought_together_rows:,} "
        f"rows); {report.new_items:,} new items got content neighbours "
        f"({report.content_rows:,} rows)"
    )


def _refresh_popularity(report: RefreshReport, say) -> None:
    """Drop the cached popular and trending rows: the next list recomputes them from the log
    as it is now, instead of up to ``LIST_CACHE_SECONDS`` later (learning does not import
    serving, which computes them)."""
    t0 = time.perf_counter()
    for window in {app_settings.POPULAR_WINDOW_DAYS, None}:
        cache.delete(cache_keys.popular(window))
        report.popular_windows.append(window)
    window = app_settings.TRENDING_WINDOW_DAYS
    cache.delete(cache_keys.trending(window))
    report.trending_windows.append(window)
    report.seconds["popular_and_trending"] = round(time.perf_counter() - t0, 3)
    say(f"popular and trending ({window} days) caches dropped: recomputed by the next list")
