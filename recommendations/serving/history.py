"""A shopper's own latest events, read on the serving index in one query."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef

from ..adapters import get_adapter
from ..conf import app_settings
from ..db import compiled_rows
from ..learning.extract import EpochSeconds
from ..models import Event, Interaction


def signed_in_id(user: Any) -> int | None:
    """A signed-in user's pk; None for anonymous users (and for no user at all)."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    return getattr(user, "pk", None)


def history(user_id: int | None, visitor_id: str | None) -> list[tuple[int, str, float]]:
    """The shopper's latest events as ``(item, event, epoch seconds)``, newest first: one
    query on the serving index (the time lets fold-in decay old events as training did)."""
    limit = int(app_settings.FOLD_IN_EVENTS)

    def query(who: Any) -> Any:
        return (
            _latest_events(who, signed_in=bool(user_id))
            .annotate(_recommendations_epoch=EpochSeconds("created_at"))
            .values_list("item_id", "event", "_recommendations_epoch")
        )[:limit]

    who = user_id if user_id else visitor_id
    rows = compiled_rows(("history", bool(user_id), limit), query, who)
    return rows if rows is not None else list(query(who))


def history_visible(user_id: int | None, visitor_id: str | None) -> list[tuple[int, str, bool]]:
    """:func:`history` with whether each item is visible now, in the same query."""
    adapter = get_adapter()
    limit = int(app_settings.FOLD_IN_EVENTS)

    def query(who: Any) -> Any:
        visible = Exists(adapter.visible_items().filter(pk=OuterRef("item_id")))
        return (
            _latest_events(who, signed_in=bool(user_id))
            .annotate(_recommendations_visible=visible)
            .values_list("item_id", "event", "_recommendations_visible")
        )[:limit]

    who = user_id if user_id else visitor_id
    rows = None
    if adapter.static_visibility:  # the statement may be kept: nothing in it changes
        rows = compiled_rows(("history-visible", bool(user_id), limit, adapter), query, who)
    if rows is None:
        rows = list(query(who))
    return [(item, event, bool(visible)) for item, event, visible in rows]


def _latest_events(who: Any, signed_in: bool) -> Any:
    """A user's events (by pk), or an anonymous visitor's (by id), newest first, no clicks
    (the view that follows a click is the event)."""
    qs = (
        Interaction.objects.filter(user_id=who)
        if signed_in
        else Interaction.objects.filter(visitor_id=who, user__isnull=True)
    )
    return qs.exclude(event=Event.CLICK).order_by("-created_at")
