"""The interaction log and the impressions: read-only, fast on millions of rows."""

from __future__ import annotations

from django.contrib import admin

from ..models import (
    Impression,
    Interaction,
)
from .base import (
    ShopperLogAdmin,
)


@admin.register(Interaction)
class InteractionAdmin(ShopperLogAdmin):
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


@admin.register(Impression)
class ImpressionAdmin(ShopperLogAdmin):
    list_display = (
        "created_at",
        "placement",
        "version_id",
        "variant",
        "shown",
        "user_id",
        "short_visitor",
    )
    list_filter = ("placement", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=visitor_id", "=user__pk")

    @admin.display(description="items shown")
    def shown(self, obj: Impression) -> int:
        return len(obj.item_ids or ())
