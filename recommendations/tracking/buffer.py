"""An optional Redis buffer in front of the interaction log, for busy shops.

``record()`` appends each event to a Redis list (one ``RPUSH``, no database round trip on
the page) and ``tasks.flush_buffer`` writes them in bulk. Nothing is lost:

- if Redis fails on append, the event is written to the database directly instead;
- a flush first renames the list to a private ``processing`` key (atomic), writes its
  rows in one transaction and only then deletes the key (after the surrounding transaction
  commits, when there is one): a flush that dies halfway, or whose caller rolls back, leaves
  the key for the next flush, and every buffered row carries a ``client_event_id`` so a
  re-flush cannot store a row twice (the unique index skips it).

Privacy reads the log after :func:`write_pending`, so erasure, export and the log-in merge
see buffered events too; a buffered event of an account deleted since is dropped at flush.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from ..conf import app_settings
from .storage import insert_rows

logger = logging.getLogger(__name__)

_local = threading.local()


def enabled() -> bool:
    return bool(app_settings.BUFFER["ENABLED"])


def _client():
    """One Redis client per thread and URL, with short timeouts: a slow Redis must not
    slow the page (the direct write is the fallback)."""
    import redis

    url = app_settings.BUFFER["REDIS_URL"]
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "url", None) != url:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _local.client, _local.url = client, url
    return client


def with_ids(rows: list[tuple]) -> list[tuple]:
    """The rows, each with a ``client_event_id`` (``buffer:<random>`` where it had none).

    Given before the push, so a push that times out but still lands in Redis later, and the
    direct insert its caller falls back to, are one event: the unique index keeps one copy.
    """
    return [row if row[7] else (*row[:7], f"buffer:{uuid.uuid4().hex}", *row[8:])
            for row in rows]


def _encode(row: tuple) -> str:
    user_id, visitor_id, item_id, event, quantity, value, source, client_event_id, created_at = row
    return json.dumps(
        [
            user_id,
            visitor_id,
            item_id,
            event,
            quantity,
            None if value is None else str(value),
            source,
            client_event_id or f"buffer:{uuid.uuid4().hex}",
            created_at.isoformat(),
        ]
    )


def _decode(raw: bytes) -> tuple:
    user_id, visitor_id, item_id, event, quantity, value, source, cid, created = json.loads(raw)
    return (
        user_id,
        visitor_id,
        item_id,
        event,
        quantity,
        None if value is None else Decimal(value),
        source,
        cid,
        datetime.fromisoformat(created),
    )


def append(rows: list[tuple]) -> bool:
    """Push rows to the buffer; False (and nothing pushed) when Redis is unavailable."""
    try:
        _client().rpush(app_settings.BUFFER["KEY"], *[_encode(row) for row in rows])
        return True
    except Exception as exc:  # redis.RedisError, OSError, ...: fall back to the database
        logger.warning("event buffer unavailable (%s); writing %d events directly", exc, len(rows))
        return False


def flush(max_batches: int = 100) -> int:
    """Write buffered events to the database; returns how many rows were written."""
    client = _client()
    key = app_settings.BUFFER["KEY"]
    written = 0
    pending = [
        k.decode() if isinstance(k, bytes) else k
        for k in client.scan_iter(match=f"{key}:processing:*", count=100)
    ]
    for _ in range(max_batches):
        if pending:
            processing = pending.pop()
        else:
            processing = f"{key}:processing:{uuid.uuid4().hex}"
            try:
                client.rename(key, processing)
            except Exception as exc:  # no such key: the buffer is empty
                if "no such key" in str(exc).lower():
                    break
                raise
        raw = client.lrange(processing, 0, -1)
        rows = _of_existing_users([_decode(item) for item in raw])
        with transaction.atomic():
            insert_rows(rows)
        transaction.on_commit(lambda key=processing: client.delete(key))
        written += len(rows)
    return written


def write_pending() -> int:
    """Write what waits in the buffer now (0 when it is off), so that a query of the log
    sees every event: erasure, export and the log-in merge must not miss one. Raises when
    Redis is unreachable."""
    return flush() if enabled() else 0


def _of_existing_users(rows: list[tuple]) -> list[tuple]:
    """Rows whose account still exists: an erased account's events never come back (and a
    row the foreign key refuses would block the whole batch)."""
    user_ids = {row[0] for row in rows if row[0] is not None}
    if not user_ids:
        return rows
    existing = set(
        get_user_model()._default_manager.filter(pk__in=user_ids).values_list("pk", flat=True)
    )
    kept = [row for row in rows if row[0] is None or row[0] in existing]
    if len(kept) < len(rows):
        logger.info("dropped %d buffered events of deleted accounts", len(rows) - len(kept))
    return kept


def pending_count() -> int:
    return int(_client().llen(app_settings.BUFFER["KEY"]))


def settings_summary() -> dict[str, Any]:
    cfg = app_settings.BUFFER
    return {"enabled": cfg["ENABLED"], "key": cfg["KEY"]}
