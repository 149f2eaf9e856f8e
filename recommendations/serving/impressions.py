"""Impression logging that costs the page nothing: buffered, written in batches.

The carousel tags and API views call :func:`log` for each list they show; the rows wait in
a buffer that lives for the current request (a context variable set on
``request_started``). When ``request_finished`` fires, that is once the response has been
handed to the server, the request's rows join this process's **batch**, and the batch is
written in **one** ``INSERT`` when it holds ``IMPRESSIONS_FLUSH_ROWS`` rows (default 200)
or its oldest row has waited ``IMPRESSIONS_FLUSH_SECONDS`` (default 1), checked at the end
of each request, and at process exit (``atexit``). Most requests therefore cost no
statement at all for impressions, and a worker writes (and commits, an fsync on SQLite)
once per batch instead of once per page. ``IMPRESSIONS_FLUSH_ROWS = 1`` writes at the end
of every request, as before.

What a crash can lose: a process killed without running its exit handlers (SIGKILL, the
OOM killer, power loss) drops the batch it had not written yet: at most one batch, fewer
than ``IMPRESSIONS_FLUSH_ROWS`` rows plus one request's rows, gathered since its last write
(normally at most ``IMPRESSIONS_FLUSH_SECONDS`` ago; an idle worker writes at its next
request or at exit). Impressions are analytics: the interaction log itself is not batched.

Outside a request cycle (a test rendering with ``RequestFactory``, a management command)
the rows stay in the request buffer until :func:`flush` is called; the next request
discards them, so they never leak into another request. A buffer that grows past
``MAX_BUFFER`` rows (a long loop outside any request) is flushed on the spot.

Bots, opted-out visitors and a disabled tracker are not logged (``tracking.should_track``),
nor are empty carousels; ``RECOMMENDATIONS["IMPRESSIONS_ENABLED"] = False`` turns it off.
A failed write is logged and dropped: analytics never break a page.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connections, router
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from ..conf import app_settings
from ..models import Impression

logger = logging.getLogger(__name__)

MAX_BUFFER = 500
#: What a buffered row holds, in order (Impression fields).
COLUMNS = (
    "placement",
    "version_id",
    "experiment_id",
    "variant",
    "item_ids",
    "user_id",
    "visitor_id",
    "created_at",
)
_buffer: ContextVar[list[tuple] | None] = ContextVar("recommendations_impressions", default=None)


class _Batch:
    """Rows of finished requests in this process, waiting for one bulk INSERT."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple] = []
        self.since = 0.0  # monotonic time of the oldest waiting row

    def add(self, rows: list[tuple]) -> None:
        with self.lock:
            if not self.rows:
                self.since = time.monotonic()
            self.rows.extend(rows)

    def due(self) -> bool:
        with self.lock:
            if not self.rows:
                return False
            return len(self.rows) >= max(
                1, int(app_settings.IMPRESSIONS_FLUSH_ROWS)
            ) or time.monotonic() - self.since >= float(app_settings.IMPRESSIONS_FLUSH_SECONDS)

    def take(self) -> list[tuple]:
        with self.lock:
            rows, self.rows = self.rows, []
            return rows

    def peek(self) -> list[tuple]:
        with self.lock:
            return list(self.rows)


_batch = _Batch()


def log(
    request: HttpRequest | None,
    placement: str,
    item_ids: list[int],
    *,
    version_id: int | None = None,
    experiment_id: int | None = None,
    variant: str = "",
    user: Any = None,
    visitor_id: str | None = None,
) -> bool:
    """Buffer one impression; False when it was deliberately not logged."""
    from ..tracking.recording import should_track

    if not item_ids or request is None or not enabled() or not should_track(request):
        return False
    if user is None:
        request_user = getattr(request, "user", None)
        user = request_user if request_user is not None and request_user.is_authenticated else None
    if visitor_id is None:
        from ..adapters import get_adapter

        visitor_id = get_adapter().get_visitor_id(request)
    if user is None and not visitor_id:
        return False
    row = (  # the values of COLUMNS
        placement[:64],
        version_id or None,
        experiment_id,
        variant[:32],
        [int(pk) for pk in item_ids],
        getattr(user, "pk", None),
        (visitor_id or "")[:64],
        timezone.now(),
    )
    buffer = _buffer.get()
    if buffer is None:
        buffer = []
        _buffer.set(buffer)
    buffer.append(row)
    if len(buffer) >= MAX_BUFFER:
        flush()
    return True


def enabled() -> bool:
    """``RECOMMENDATIONS["IMPRESSIONS_ENABLED"]`` (default True): False logs nothing."""
    return bool(app_settings.IMPRESSIONS_ENABLED)


def pending() -> list[Impression]:
    """The unwritten impressions: this process's batch, then the current request's (unsaved
    model instances)."""
    rows = _batch.peek() + list(_buffer.get() or ())
    return [Impression(**dict(zip(COLUMNS, row, strict=True))) for row in rows]


def flush() -> int:
    """Write this process's batch and the current request's rows in one ``INSERT``;
    returns how many."""
    buffer = _buffer.get()
    rows = _batch.take()
    if buffer:
        rows.extend(buffer)
        buffer.clear()
    return _write(rows)


def _write(rows: list[tuple]) -> int:
    """One multi-row ``INSERT`` per ``MAX_BUFFER`` rows, its values prepared by the model's
    fields but the statement built directly (``bulk_create`` compiles every value)."""
    if not rows:
        return 0
    try:
        connection = connections[router.db_for_write(Impression)]
        fields = [Impression._meta.get_field(name) for name in COLUMNS]
        qn = connection.ops.quote_name
        head = "INSERT INTO {} ({}) VALUES ".format(
            qn(Impression._meta.db_table), ", ".join(qn(f.column) for f in fields)
        )
        group = "(" + ", ".join(["%s"] * len(fields)) + ")"
        for start in range(0, len(rows), MAX_BUFFER):
            chunk = rows[start : start + MAX_BUFFER]
            params = [
                f.get_db_prep_save(value, connection)
                for row in chunk
                for f, value in zip(fields, row, strict=True)
            ]
            with connection.cursor() as cursor:
                cursor.execute(head + ", ".join([group] * len(chunk)), params)
    except DatabaseError:
        logger.warning("could not write %d impressions; dropped", len(rows), exc_info=True)
        return 0
    return len(rows)


def discard() -> None:
    """Forget the unwritten impressions (the current request's and this process's batch)."""
    buffer = _buffer.get()
    if buffer:
        buffer.clear()
    _batch.take()


@receiver(request_started, dispatch_uid="recommendations.impressions.start")
def _start(**kwargs: Any) -> None:
    _buffer.set([])  # whatever an earlier, non-request render left belongs to nobody


@receiver(request_finished, dispatch_uid="recommendations.impressions.finish")
def _finish(**kwargs: Any) -> None:
    buffer = _buffer.get()
    if buffer:
        _batch.add(buffer[:])
        buffer.clear()
    if not _batch.due():
        return
    connection = connections[router.db_for_write(Impression)]
    was_closed = connection.connection is None  # Django's receiver closed it before ours
    _write(_batch.take())
    if was_closed and not connection.in_atomic_block:
        connection.close()  # as Django left it: no connection idling until the next request


@atexit.register
def _flush_at_exit() -> None:
    """A worker that shuts down cleanly writes what it still holds."""
    rows = _batch.take()
    if not rows:
        return
    try:
        _write(rows)
    except Exception:  # the interpreter is going away: never raise from here
        logger.warning("could not write %d impressions at exit", len(rows), exc_info=True)
