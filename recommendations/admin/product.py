"""The product panel: an item's hand-made and computed related lists, for the shop's own admin."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from .. import serving
from ..learning import versions
from ..models import (
    ManualRelatedItem,
    RelatedItem,
)
from .base import (
    CheckedSelectionAdmin,
)

logger = logging.getLogger(__name__)


class ManualRelatedItemForm(forms.ModelForm):
    class Meta:
        model = ManualRelatedItem
        fields = ("rank", "related")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        related = data.get("related")
        if related is not None and related.pk == self.instance.item_id:
            self.add_error("related", "An item cannot be related to itself.")
        return data


class ManualRelatedItemInline(admin.TabularInline):
    """The shop's own related list for a product: shown first, before the model's."""

    model = ManualRelatedItem
    form = ManualRelatedItemForm
    fk_name = "item"
    fields = ("rank", "related")
    raw_id_fields = ("related",)
    extra = 1
    ordering = ("rank", "pk")
    verbose_name = "hand-picked related item"
    verbose_name_plural = "Hand-picked related items (shown first, before the model's)"


class RelatedItemsPanelMixin:
    """Add to the shop's item admin: ``class ProductAdmin(RelatedItemsPanelMixin,
    admin.ModelAdmin)``. Its change page then shows the active version's related and
    bought-together items, what the shop serves now, and an inline to hand-pick related
    items that win over the model's (like django-oscar's recommended products)."""

    recommendations_panel_k = 10
    recommendations_panel_title = "Recommendations"

    def get_inlines(self, request: Any, obj: Any) -> list:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]
        if ManualRelatedItemInline not in inlines:
            inlines.append(ManualRelatedItemInline)
        return inlines

    def get_readonly_fields(self, request: Any, obj: Any = None) -> tuple:
        fields = tuple(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return fields if "recommendations_panel" in fields else (*fields, "recommendations_panel")

    def get_fieldsets(self, request: Any, obj: Any = None) -> list:
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):  # type: ignore[misc]
            fields = [f for f in options.get("fields", ()) if f != "recommendations_panel"]
            fieldsets.append((name, {**options, "fields": fields}))
        if obj is not None:
            fieldsets.append(
                (self.recommendations_panel_title, {"fields": ["recommendations_panel"]})
            )
        return fieldsets

    @admin.display(description="What the shop recommends with this item")
    def recommendations_panel(self, obj: Any) -> str:
        if obj is None or obj.pk is None:
            return "Save the item first."
        k = self.recommendations_panel_k
        active = versions.active_version()
        lists = {}
        if active is not None:
            for kind in (RelatedItem.Kind.SIMILAR, RelatedItem.Kind.BOUGHT_TOGETHER):
                lists[kind] = list(
                    RelatedItem.objects.filter(version=active, item_id=obj.pk, kind=kind)
                    .select_related("related")
                    .order_by("rank")[:k]
                )
        try:
            served = serving.related_to(obj, k)
        except Exception:
            logger.exception("the product panel could not build the related list")
            served = None
        opts = obj._meta

        def link(item: Any) -> str:
            try:
                url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[item.pk])
            except NoReverseMatch:
                return str(item)
            return format_html('<a href="{}">{}</a>', url, item)

        return render_to_string(
            "admin/recommendations/related_panel.html",
            {
                "active": active,
                "similar": [(row, link(row.related)) for row in lists.get("similar", [])],
                "together": [(row, link(row.related)) for row in lists.get("bought_together", [])],
                "served": [(rec, link(rec.item)) for rec in served or []],
                "manual_count": ManualRelatedItem.objects.filter(item_id=obj.pk).count(),
            },
        )


@admin.register(ManualRelatedItem)
class ManualRelatedItemAdmin(CheckedSelectionAdmin):
    list_display = ("item", "rank", "related", "created_at")
    raw_id_fields = ("item", "related")
    list_select_related = ("item", "related")
    search_fields = ("=item__pk",)
    ordering = ("item", "rank")
