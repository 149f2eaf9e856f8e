"""``record()``: the one way an event enters the interaction log.

It validates, drops bots and opted-out visitors, and writes after the surrounding
transaction commits (so a rolled-back checkout leaves no purchase behind). A page view
costs one ``INSERT`` and nothing else: no lookup first, de-duplication of
``client_event_id`` is left to the unique index (``INSERT ... ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from ..adapters import get_adapter
from ..conf import app_settings
from ..models import Event, Interaction
from ..verified import server_event_id
from . import buffer, consent
from .storage import insert_rows, invalidate

logger = logging.getLogger(__name__)

MAX_SOURCE_LENGTH = Interaction._meta.get_field("source").max_length
MAX_EVENT_ID_LENGTH = Interaction._meta.get_field("client_event_id").max_length  # as stored
MAX_CLIENT_EVENT_ID_LENGTH = 64  # as an API client may send it (shopper_event_id adds <= 66)
MAX_VISITOR_ID_LENGTH = Interaction._meta.get_field("visitor_id").max_length
MAX_VALUE = Decimal("1e10")  # max_digits=12, decimal_places=2
CENT = Decimal("0.01")


def shopper_event_id(client_event_id: str, user_id: int | None, visitor_id: str) -> str:
    """A client's event id in its shopper's own namespace, as it is stored.

    The unique index deduplicates retries. Were client ids stored as sent, one client that
    guessed another shopper's ids (they are often counters) could get that shopper's future
    events dropped as "duplicates". A signed-in shopper's ids live under their user id, which
    no one else can claim; an anonymous one's under their visitor id.
    """
    owner = f"u{user_id}" if user_id is not None else f"v{visitor_id}"
    return f"{owner}/{client_event_id}"


class TrackingError(ValueError):
    """An event that cannot be recorded as given (unknown event type, no shopper, ...)."""


@dataclass
class RecordResult:
    """What :func:`record_many` did with a batch."""

    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position, reason)


EVENTS = frozenset(Event.values)


def record(
    event: str,
    item: Model | int,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    visitor_id: str | None = None,
    quantity: int = 1,
    value: Decimal | float | str | None = None,
    source: str = "",
    client_event_id: str | None = None,
    created_at: datetime | None = None,
) -> bool:
    """Record one event; returns False when it was deliberately not recorded.

    ``item`` is an item instance or its primary key. The shopper is ``user`` or
    ``visitor_id`` when given, otherwise read from ``request``. Raises
    :class:`TrackingError` for invalid input. Bots (by user agent), a disabled tracker
    and opted-out visitors are dropped silently (False).
    """
    if not should_track(request):
        return False
    if request is not None:
        if user is None:
            request_user = getattr(request, "user", None)
            if request_user is not None and request_user.is_authenticated:
                user = request_user
        if visitor_id is None:
            visitor_id = get_adapter().get_visitor_id(request)
    row = validate_event(
        event,
        item,
        user=user,
        visitor_id=visitor_id,
        quantity=quantity,
        value=value,
        source=source,
        client_event_id=client_event_id,
        created_at=created_at,
    )
    transaction.on_commit(lambda: write([row]))
    return True


def record_many(rows: Iterable[dict[str, Any]], *, defer: bool = True) -> RecordResult:
    """Validate and write many events in one bulk ``INSERT``.

    Each row holds :func:`record`'s keyword arguments plus ``event`` and ``item``.
    Invalid rows are rejected with their reason; the rest are written. With
    ``defer=False`` they are written in the caller's transaction at once (bulk loaders
    that must commit orders and their events together). Visitor-level checks (bots,
    opt-out) are the caller's: use :func:`should_track` with the request.
    """
    result = RecordResult()
    valid: list[tuple] = []
    for position, row in enumerate(rows):
        try:
            valid.append(validate_event(**row))
        except (TrackingError, TypeError) as exc:
            result.rejected.append((position, str(exc)))
    result.written = len(valid)
    if defer:
        transaction.on_commit(lambda: write(valid))
    else:
        insert_rows(valid)  # the caller's transaction: never through the buffer
    return result


def should_track(request: HttpRequest | None, *, user_agent: bool = True) -> bool:
    """False for a disabled tracker, a bot, a visitor who opted out, or one who has not
    consented where ``REQUIRE_CONSENT`` asks for consent (:mod:`.consent`).

    ``user_agent=False`` skips the bot filter (by user agent), which is for page views: the
    events API's callers are apps holding a visitor id the server issued, or signed in."""
    if not app_settings.TRACKING_ENABLED:
        return False
    if user_agent and get_adapter().is_bot(request):
        return False
    return consent.tracking_allowed(request)


def validate_event(
    event: str,
    item: Model | int,
    *,
    user: Any = None,
    visitor_id: str | None = None,
    quantity: int = 1,
    value: Decimal | float | str | None = None,
    source: str = "",
    client_event_id: str | None = None,
    created_at: datetime | None = None,
) -> tuple:
    """One validated row of :data:`COLUMNS`; raises :class:`TrackingError`.

    Plain tuples rather than model instances: building 400,000 ``Interaction`` objects
    for an import costs more than writing them.
    """
    if event not in EVENTS:
        raise TrackingError(
            f"Unknown event {event!r}; expected one of {', '.join(sorted(EVENTS))}."
        )
    item_id = item.pk if isinstance(item, Model) else item
    if item_id is None or isinstance(item_id, bool):
        raise TrackingError("The item has no primary key (save it first).")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise TrackingError(f"quantity must be a positive integer, not {quantity!r}.")
    visitor_id = visitor_id or ""
    if len(visitor_id) > MAX_VISITOR_ID_LENGTH:
        raise TrackingError(f"visitor_id is longer than {MAX_VISITOR_ID_LENGTH} characters.")
    user_id = getattr(user, "pk", None) if user is not None else None
    if user_id is None and not visitor_id and event != Event.PURCHASE:
        # A guest order the shop sends without a request is still a sale: it counts for
        # popularity and baskets, it just belongs to no shopper.
        raise TrackingError("An event needs a signed-in user or an anonymous visitor_id.")
    if value is not None:
        try:
            value = Decimal(str(value))
        except InvalidOperation:
            raise TrackingError(f"value must be a number, not {value!r}.") from None
        if not value.is_finite() or abs(value) >= MAX_VALUE:
            raise TrackingError(f"value must be a finite amount below {MAX_VALUE}, not {value!r}.")
        value = value.quantize(CENT)
    source = source or ""
    for name, text in (
        ("visitor_id", visitor_id),
        ("source", source),
        ("client_event_id", client_event_id or ""),
    ):
        if "\x00" in text:  # PostgreSQL refuses NUL in text: a clear error, not a DataError
            raise TrackingError(f"{name} must not contain NUL characters.")
    if len(source) > MAX_SOURCE_LENGTH:
        raise TrackingError(f"source is longer than {MAX_SOURCE_LENGTH} characters.")
    if client_event_id is not None and not (0 < len(client_event_id) <= MAX_EVENT_ID_LENGTH):
        raise TrackingError(f"client_event_id must be 1 to {MAX_EVENT_ID_LENGTH} characters.")
    if event == Event.PURCHASE:
        # Callers of record() are the shop's server code: its purchases are verified
        # (recommendations.verified). The events API refuses purchases from anyone else.
        client_event_id = server_event_id(client_event_id)
    if created_at is None:
        created_at = timezone.now()
    elif timezone.is_naive(created_at):
        raise TrackingError("created_at must be timezone-aware.")
    return (
        user_id,
        visitor_id,
        item_id,
        event,
        quantity,
        value,
        source,
        client_event_id,
        created_at,
    )


def write(rows: list[tuple]) -> None:
    """Append to the Redis buffer when it is enabled and up, else insert directly."""
    if buffer.enabled():
        rows = buffer.with_ids(rows)  # a timed-out push that lands later is not a duplicate
        if buffer.append(rows):
            invalidate({(row[0], row[1]) for row in rows})  # the visitor acted: fresh lists
            return
    insert_rows(rows)


def merge_visitor_into_user(visitor_id: str, user: Any) -> int:
    """Give a visitor's anonymous events to the user they signed in as; returns the count.

    Events still waiting in the Redis buffer are written first, so they are merged too (a
    log-in costs one bulk write of what waits there; if Redis is down they stay anonymous).
    """
    if not visitor_id or user is None or not user.pk:
        return 0
    try:
        buffer.write_pending()
    except Exception:  # a log-in must not fail on the buffer: the merge covers the database
        logger.warning("event buffer unreachable: buffered events stay anonymous", exc_info=True)
    moved = Interaction.objects.filter(visitor_id=visitor_id, user__isnull=True).update(user=user)
    invalidate({(user.pk, visitor_id)}, dismissed={(user.pk, visitor_id)})
    return moved


def opt_out(request: HttpRequest) -> None:
    """Stop recording this visitor (kept in their session)."""
    request.session[app_settings.OPT_OUT_SESSION_KEY] = True


def opt_in(request: HttpRequest) -> None:
    """Undo :func:`opt_out`."""
    request.session.pop(app_settings.OPT_OUT_SESSION_KEY, None)
