"""Impression logging that costs the page nothing: buffered per request, one bulk ``INSERT``.

The carousel tags call :func:`log` for each list they render; the rows wait in a buffer
that lives for the current request (a context variable set on ``request_started``) and
are written in **one** ``INSERT`` for the whole page when ``request_finished`` fires, that
is once the response has been handed to the server. Rendering a page with five carousels
costs no query during rendering and one statement after it.

Outside a request cycle (a test rendering with ``RequestFactory``, a management command)
the rows stay in the buffer until :func:`flush` is called; the next request discards
them, so they never leak into another request. A buffer that grows past ``MAX_BUFFER``
rows (a long loop outside any request) is flushed on the spot.

Bots, opted-out visitors and a disabled tracker are not logged (``tracking.should_track``),
nor are empty carousels; ``RECOMMENDATIONS["IMPRESSIONS_ENABLED"] = False`` turns it off.
A failed write is logged and dropped: analytics never break a page.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connections, router
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from .conf import app_settings
from .models import Impression

logger = logging.getLogger(__name__)

MAX_BUFFER = 500

_buffer: ContextVar[list[Impression] | None] = ContextVar(
    "recommendations_impressions", default=None
)


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
    from .tracking import should_track

    if not item_ids or request is None or not enabled() or not should_track(request):
        return False
    if user is None:
        request_user = getattr(request, "user", None)
        user = request_user if request_user is not None and request_user.is_authenticated else None
    if visitor_id is None:
        from .adapters import get_adapter

        visitor_id = get_adapter().get_visitor_id(request)
    if user is None and not visitor_id:
        return False
    row = Impression(
        placement=placement[:64],
        version_id=version_id or None,
        experiment_id=experiment_id,
        variant=variant[:32],
        item_ids=[int(pk) for pk in item_ids],
        user_id=getattr(user, "pk", None),
        visitor_id=(visitor_id or "")[:64],
        created_at=timezone.now(),
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
    """The buffered, unwritten impressions of the current request (a copy)."""
    return list(_buffer.get() or ())


def flush() -> int:
    """Write the buffered impressions in one ``INSERT``; returns how many."""
    buffer = _buffer.get()
    if not buffer:
        return 0
    rows = buffer[:]
    buffer.clear()
    try:
        Impression.objects.bulk_create(rows, batch_size=MAX_BUFFER)
    except DatabaseError:
        logger.warning("could not write %d impressions; dropped", len(rows), exc_info=True)
        return 0
    return len(rows)


def discard() -> None:
    buffer = _buffer.get()
    if buffer:
        buffer.clear()


@receiver(request_started, dispatch_uid="recommendations.impressions.start")
def _start(**kwargs: Any) -> None:
    _buffer.set([])  # whatever an earlier, non-request render left belongs to nobody


@receiver(request_finished, dispatch_uid="recommendations.impressions.finish")
def _finish(**kwargs: Any) -> None:
    if not _buffer.get():
        return
    connection = connections[router.db_for_write(Impression)]
    was_closed = connection.connection is None  # Django's receiver closed it before ours
    flush()
    if was_closed and not connection.in_atomic_block:
        connection.close()  # as Django left it: no connection idling until the next request
