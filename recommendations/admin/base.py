"""What every screen shares: safe selections, fast counts on big logs, number formats and
the placement input."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db import connections
from django.http import HttpResponseRedirect
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from ..models import (
    Impression,
    Interaction,
)
from ..tracking.keys import is_pk_text


class CheckedSelectionAdmin(admin.ModelAdmin):
    """Refuses an action whose selection is not a list of primary keys.

    Django's admin filters the queryset on the raw ``_selected_action`` values, so a
    hand-made POST with ``abc`` (or a NUL) raises deep in the ORM: a 500. Every admin here
    has integer keys; anything else is an error message and nothing done.
    """

    def response_action(self, request: Any, queryset: Any) -> Any:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(is_pk_text(pk) for pk in selected):
            self.message_user(request, "That selection is not a list of items.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)


class EstimatedCountPaginator(Paginator):
    """Avoids ``COUNT(*)`` over the whole log: PostgreSQL's planner estimate when unfiltered.

    An exact count of a filtered page is still exact (filters hit the indexes); only the
    unfiltered list, the expensive one, is estimated.
    """

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if getattr(qs, "query", None) is not None and not qs.query.where:
            connection = connections[qs.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                        [qs.model._meta.db_table],
                    )
                    row = cursor.fetchone()
                if row and row[0] > 10_000:
                    return int(row[0])
        return super().count


class ShopperLogAdmin(CheckedSelectionAdmin):
    """A read-only view of a large per-shopper log (events, impressions), newest first.

    Nothing is added, changed or deleted here: rows come from the shop's traffic, and
    deleting a shopper's rows goes through ``recommendations_forget`` (GDPR), which also
    clears what was derived from them. Counting a large table is skipped.
    """

    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    ordering = ("-created_at",)

    @admin.display(description="visitor")
    def short_visitor(self, obj: Interaction | Impression) -> str:
        return obj.visitor_id[:8]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


DASH = "\u2013"  # shown for a missing value


def fmt_number(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.2%}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


KNOWN_PLACEMENTS = (
    "related",
    "bought_together",
    "for_you",
    "recently_viewed",
    "trending",
    "popular",
)


class PlacementInput(forms.TextInput):
    """A text input with the usual placements suggested (an HTML ``datalist``, no JS)."""

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
        list_id = f"{(attrs or {}).get('id', name)}-choices"
        self.attrs["list"] = list_id
        options = format_html_join("", '<option value="{}">', ((p,) for p in KNOWN_PLACEMENTS))
        return format_html(
            '{}<datalist id="{}">{}</datalist>',
            super().render(name, value, attrs, renderer),
            list_id,
            options,
        )
