"""Writing validated event rows, shared by :func:`record` and the Redis buffer's flush."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection

from .. import cache_keys
from ..db import bulk_insert
from ..models import Event, Interaction

logger = logging.getLogger(__name__)

#: The columns written, in order. ``id`` comes from the database.
COLUMNS = (
    "user_id",
    "visitor_id",
    "item_id",
    "event",
    "quantity",
    "value",
    "source",
    "client_event_id",
    "created_at",
)


def insert_rows(rows: list[tuple]) -> None:
    """One ``INSERT ... ON CONFLICT DO NOTHING`` per batch of validated rows.

    Written with ``executemany`` on the cursor rather than ``bulk_create``: for imports
    Django's per-value SQL compilation costs ten times the database's own work. A
    retried ``client_event_id`` hits the unique index and is skipped, not raised.
    """
    if not rows:
        return
    adapt_dt = connection.ops.adapt_datetimefield_value
    adapt_dec = connection.ops.adapt_decimalfield_value
    params = [
        (
            *row[:5],
            None if row[5] is None else adapt_dec(row[5], 12, 2),
            *row[6:8],
            adapt_dt(row[8]),
        )
        for row in rows
    ]
    bulk_insert(
        Interaction, COLUMNS, params, ignore_conflicts=True, conflict_fields=["client_event_id"]
    )
    # The shoppers who acted get fresh "for you" lists on their next request; those who
    # dismissed an item, a fresh "not interested" set too.
    invalidate(
        {(row[0], row[1]) for row in rows},
        dismissed={(row[0], row[1]) for row in rows if row[3] == Event.NOT_INTERESTED},
    )


def invalidate(
    shoppers: set[tuple[int | None, str]], dismissed: set[tuple[int | None, str]] = frozenset()
) -> None:
    """Drop the cached lists of ``shoppers``, and the cached "not interested" sets of
    ``dismissed`` (kept apart: a page view must not cost a re-read of them)."""
    keys = set()
    for key, group in ((cache_keys.visitor, shoppers), (cache_keys.dismissed, dismissed)):
        for user_id, visitor_id in group:
            if user_id:
                keys.add(key(user_id, None))
            if visitor_id:
                keys.add(key(None, visitor_id))
    try:
        cache.delete_many(list(keys))
    except Exception:  # a cache outage must not lose the event that was just written
        logger.warning("could not invalidate %d cached visitor lists", len(keys), exc_info=True)
