"""The shop-specific seams, behind one adapter class chosen by dotted path.

A shop subclasses :class:`DefaultAdapter` and names it in ``RECOMMENDATIONS["ADAPTER"]``
(the pattern of allauth's ``get_adapter()``). The app never imports the shop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.formats import number_format

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
        """The item's main category key: the one a "popular in this category" fallback uses
        for it, and price bands (None when uncategorised)."""
        return getattr(item, f"{self.category_field}_id", None)

    def item_category_ids(self, item: Model) -> tuple[Any, ...]:
        """Every category key of the item (a product may sit in several): a rule on any of
        them applies to it, and it counts as a best seller of each. Defaults to
        :meth:`item_category_id` alone, so adapters written for one category keep working."""
        main = self.item_category_id(item)
        return () if main is None else (main,)

    #: The field of the category model that the API takes in ``popular?category=``.
    category_slug_field = "slug"

    def category_queryset(self) -> QuerySet | None:
        """The shop's categories, as the API lists them (``GET .../categories/``): by
        default the model that :attr:`category_field` points to (a foreign key or a
        many-to-many), in its default order. None when items have no category model."""
        try:
            field = get_item_model()._meta.get_field(self.category_field)
        except FieldDoesNotExist:
            return None
        model = getattr(field, "related_model", None)
        return None if model is None else model._default_manager.all()

    def category_slug(self, category: Model) -> str:
        """The category's slug: what ``popular?category=`` takes and the list shows."""
        return str(getattr(category, self.category_slug_field, "") or category.pk)

    def category_payload(self, category: Model) -> dict[str, Any]:
        """A category as the API lists it: ``id``, ``slug`` and ``name``."""
        return {"id": category.pk, "slug": self.category_slug(category), "name": str(category)}

    def category_key(self, slug: str) -> Any:
        """The category key (as :meth:`item_category_ids` gives it) of the category with
        this slug, or None when there is none. One query."""
        qs = self.category_queryset()
        if qs is None:
            return None
        names = {f.name for f in qs.model._meta.get_fields()}
        if self.category_slug_field not in names:
            return None
        return qs.filter(**{self.category_slug_field: slug}).values_list("pk", flat=True).first()

    def category_names(self, category_ids: Iterable[Any]) -> dict[str, str]:
        """Names of categories by key, for people: ``{str(key): name}`` in one query.

        The default reads the item model's ``category_field`` relation (a foreign key or a
        many-to-many, as Oscar's ``categories``) and names each category by ``str()``. Keys it
        cannot find (or a model without such a relation) are left out; callers then show the
        key itself. Override it when the shop's categories live elsewhere."""
        keys = {str(key) for key in category_ids if key not in (None, "")}
        if not keys:
            return {}
        try:
            field = get_item_model()._meta.get_field(self.category_field)
        except Exception:  # FieldDoesNotExist: no category relation to name them by
            return {}
        related = getattr(field, "related_model", None)
        if not getattr(field, "is_relation", False) or related is None:
            return {}
        pk = related._meta.pk
        valid = []
        for key in keys:
            try:
                valid.append(pk.to_python(key))
            except Exception:  # ValidationError: "abc" for an integer key
                continue
        return {str(obj.pk): str(obj) for obj in related._default_manager.filter(pk__in=valid)}

    def category_name(self, category_id: Any) -> str:
        """A category's name for people (the admin's rules, their preview): the key itself
        when the category is unknown."""
        key = "" if category_id is None else str(category_id)
        return self.category_names([key]).get(key, key)

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

    #: ISO 4217 code of the prices in :meth:`item_payload` (a ``"currency"`` key there
    #: wins): carousels print it with the amount. Empty: the amount alone.
    currency = ""

    #: Symbols printed before an amount by :meth:`format_price`; other codes print as codes.
    currency_symbols = {"GBP": "£", "EUR": "€", "USD": "$", "JPY": "¥", "CHF": "CHF "}

    def format_price(self, payload: dict[str, Any]) -> str:
        """An item's price as a carousel prints it, in the active language ("" for none).

        Called at render time (not cached with the payload), so the language of the page
        decides the number format. Override it to use the shop's own formatting (the Oscar
        adapter uses Oscar's ``currency`` filter)."""
        price = payload.get("price")
        if price is None or price == "":
            return ""
        try:
            amount = Decimal(str(price))
        except InvalidOperation:
            return str(price)
        code = payload.get("currency") or self.currency
        symbol = self.currency_symbols.get(code, f"{code} " if code else "")
        return f"{symbol}{number_format(amount, 2, use_l10n=True)}"

    def item_payload(self, item: Model) -> dict[str, Any]:
        """What carousels and the API show of an item."""
        payload: dict[str, Any] = {"id": item.pk, "name": str(item)}
        if hasattr(item, "price"):  # a decimal string, as the API's schema says
            payload["price"] = None if item.price is None else str(item.price)
        if hasattr(item, "sku"):
            payload["sku"] = item.sku
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
