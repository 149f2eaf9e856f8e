"""Customers at risk: churn risk, expected spend and a win-back list for each customer."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import admin
from django.http import HttpResponse
from django.utils.html import format_html, format_html_join

from .. import serving
from ..learning.insights import write_csv
from ..models import CustomerInsight
from .base import CheckedSelectionAdmin, fmt_number, fmt_percent

#: Risk bands of the list filter: (label, lowest risk, highest risk).
RISK_BANDS = {
    "high": ("high (70 % and more)", 0.7, 1.01),
    "medium": ("medium (40-70 %)", 0.4, 0.7),
    "low": ("low (under 40 %)", 0.0, 0.4),
}


class RiskFilter(admin.SimpleListFilter):
    title = "churn risk"
    parameter_name = "risk"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _, _) in RISK_BANDS.items()]

    def queryset(self, request: Any, queryset: Any) -> Any:
        band = RISK_BANDS.get(self.value() or "")
        if band is None:
            return queryset
        return queryset.filter(churn_risk__gte=band[1], churn_risk__lt=band[2])


@admin.register(CustomerInsight)
class CustomerInsightAdmin(CheckedSelectionAdmin):
    """Read-only, scored nightly; sortable by risk and by expected spend."""

    list_display = (
        "user",
        "risk",
        "alive",
        "spend",
        "orders",
        "recency",
        "average_order",
        "win_back",
    )
    list_filter = (RiskFilter, "model")
    search_fields = ("=user__username", "=user__email")
    list_select_related = ("user",)
    list_per_page = 25  # each row folds the customer's history into the model
    ordering = ("-churn_risk", "-expected_spend")
    actions = ("export_csv",)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def get_list_display(self, request: Any) -> tuple:
        # A win-back list shows the customer's taste: for those who may read histories only.
        shown = super().get_list_display(request)
        if request.user.has_perm("recommendations.view_interaction"):
            return shown
        return tuple(name for name in shown if name != "win_back")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> tuple:
        fields = tuple(f.name for f in self.opts.concrete_fields)
        if request.user.has_perm("recommendations.view_interaction"):
            fields += ("win_back_list",)
        return fields

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="churn risk", ordering="churn_risk")
    def risk(self, obj: CustomerInsight) -> str:
        return fmt_percent(obj.churn_risk)

    @admin.display(description="P(alive)", ordering="p_alive")
    def alive(self, obj: CustomerInsight) -> str:
        return fmt_percent(obj.p_alive)

    @admin.display(description="expected spend", ordering="expected_spend")
    def spend(self, obj: CustomerInsight) -> str:
        if obj.expected_spend is None:
            return "-"
        return f"{obj.expected_spend:,.2f} in {obj.horizon_days} days"

    @admin.display(description="days since last order", ordering="recency_days")
    def recency(self, obj: CustomerInsight) -> str:
        return fmt_number(obj.recency_days, 0)

    @admin.display(description="average order", ordering="average_order_value")
    def average_order(self, obj: CustomerInsight) -> str:
        return fmt_number(obj.average_order_value, 2)

    @admin.display(description="win-back recommendations")
    def win_back(self, obj: CustomerInsight) -> str:
        items = serving.for_visitor(obj.user, None, k=3, placement="win_back")
        return format_html_join(", ", "{}", ((str(rec.item),) for rec in items)) or "-"

    @admin.display(description="win-back recommendations")
    def win_back_list(self, obj: CustomerInsight) -> str:
        items = serving.for_visitor(obj.user, None, k=8, placement="win_back")
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "", "<li>{} <small>{}</small></li>", ((str(rec.item), rec.reason) for rec in items)
            ),
        )

    @admin.action(description="Export the selected customers as CSV")
    def export_csv(self, request: Any, queryset: Any) -> HttpResponse:
        out = io.StringIO()
        write_csv(queryset.select_related("user").order_by("-churn_risk"), out)
        response = HttpResponse(out.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="customers-at-risk.csv"'
        return response
