"""Admin screens. The interaction log is read-only and stays fast on millions of rows."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

from .models import Interaction


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


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "event",
        "item",
        "user",
        "short_visitor",
        "quantity",
        "value",
        "source",
    )
    list_filter = ("event", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=user__username", "=user__email", "=visitor_id")
    raw_id_fields = ("user", "item")
    list_select_related = ("user", "item")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    ordering = ("-created_at",)

    @admin.display(description="visitor")
    def short_visitor(self, obj: Interaction) -> str:
        return obj.visitor_id[:8]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        # Deleting a shopper's history goes through recommendations_forget (GDPR), not here.
        return False
