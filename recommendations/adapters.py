"""The shop-specific seams, behind one adapter class chosen by dotted path.

A shop subclasses :class:`DefaultAdapter` and names it in ``RECOMMENDATIONS["ADAPTER"]``
(the pattern of allauth's ``get_adapter()``). The app never imports the shop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .conf import app_settings, get_item_model, import_path
from .db import compiled_rows


class DefaultAdapter:
    """Sensible defaults for an item model with the usual field names."""

    #: Field names probed by the default implementations; override the methods instead
    #: when the shop's model differs.
    active_field = "is_active"
    stock_field = "stock"
    category_field = "category"

    # --- the catalogue --------------------------------------------------------------
    def item_queryset(self) -> QuerySet:
        return get_item_model()._default_manager.all()

    def visible_items(self, queryset: QuerySet | None = None) -> QuerySet:
        """Items a shopper may be shown now: active and in stock, where the model says."""
        qs = self.item_queryset() if queryset is None else queryset
        names = {f.name for f in qs.model._meta.get_fields()}
        if self.active_field in names:
            qs = qs.filter(**{self.active_field: True})
        if self.stock_field in names:
            qs = qs.filter(**{f"{self.stock_field}__gt": 0})
        return qs

    #: True when :meth:`visible_items` always builds the same SQL: no time, request, channel
    #: or other state in it (the default implementation qualifies; an override must say so).
    #: :meth:`visible_ids` then compiles that query once and reuses the statement, which
    #: costs a tenth of building it through the ORM on every list. The rows are still read
    #: on every call: stock stays fresh.
    static_visibility = False

    def visible_ids(self, ids: Iterable[Any]) -> set[Any]:
        """Which of ``ids`` are visible now: one query on primary keys only (no rows are
        built). Serving calls it on every list, so stock is always read fresh; override it
        only with something as fresh as :meth:`visible_items` (which it uses by default)."""
        ids = list(ids)
        if not ids:
            return set()
        if self.static_visibility and all(type(pk) is int for pk in ids):
            # One statement per IN-list size (padded to a power of two with the last id).
            size = 1 << (len(ids) - 1).bit_length()
            rows = compiled_rows(
                ("visible-ids", type(self), size),
                lambda pks: self.visible_items().filter(pk__in=pks).order_by()
                .values_list("pk", flat=True),
                ids + [ids[-1]] * (size - len(ids)),
            )
            if rows is not None:
                return {row[0] for row in rows}
        visible = self.visible_items().filter(pk__in=ids).order_by()
        return set(visible.values_list("pk", flat=True))

    def item_category_id(self, item: Model) -> Any:
        """The category key used by category fallbacks and rules (None when uncategorised)."""
        return getattr(item, f"{self.category_field}_id", None)

    def item_content(self, item: Model) -> str:
        """Text that describes an item, for content-based neighbours of items the model has
        not seen yet (new arrivals): name, description and category by default."""
        parts = [str(item), getattr(item, "description", "") or ""]
        category = getattr(item, self.category_field, None)
        if category is not None:
            parts.append(str(category))
        return " ".join(parts)

    def item_price(self, item: Model) -> float | None:
        price = getattr(item, "price", None)
        return None if price is None else float(price)

    def item_payload(self, item: Model) -> dict[str, Any]:
        """What carousels and the API show of an item."""
        payload: dict[str, Any] = {"id": item.pk, "name": str(item)}
        for name in ("price", "sku"):
            if hasattr(item, name):
                payload[name] = getattr(item, name)
        if hasattr(item, "get_absolute_url"):
            payload["url"] = item.get_absolute_url()
        return payload

    # --- visitors -------------------------------------------------------------------
    def get_visitor_id(self, request: HttpRequest) -> str:
        """The anonymous visitor id that VisitorMiddleware attached to the request."""
        return getattr(request, "recommendations_visitor_id", "") or ""

    def is_bot(self, request: HttpRequest | None, user_agent: str | None = None) -> bool:
        if user_agent is None and request is not None:
            user_agent = request.META.get("HTTP_USER_AGENT", "")
        return (
            bool(user_agent)
            and _bot_regex(app_settings.BOT_USER_AGENT_PATTERN).search(user_agent) is not None
        )

    def is_opted_out(self, request: HttpRequest | None) -> bool:
        """The visitor's own choice (session flag) or a Global Privacy Control signal.

        Override it to plug in a consent-management platform; it can only say no. The
        lasting choice and ``REQUIRE_CONSENT`` are :func:`tracking.consent.tracking_allowed`'s,
        which asks this first.
        """
        if request is None:
            return False
        session = getattr(request, "session", None)
        if session is not None and session.get(app_settings.OPT_OUT_SESSION_KEY):
            return True
        return bool(
            app_settings.HONOR_GLOBAL_PRIVACY_CONTROL and request.META.get("HTTP_SEC_GPC") == "1"
        )


@lru_cache(maxsize=8)
def _bot_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def get_adapter() -> DefaultAdapter:
    """The shop's adapter: one instance per ``RECOMMENDATIONS["ADAPTER"]`` path."""
    return _adapter(app_settings.ADAPTER)


@lru_cache(maxsize=8)
def _adapter(path: str) -> DefaultAdapter:
    return import_path(path)()
