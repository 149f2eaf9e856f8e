"""The online dashboard: carousel impressions, clicks and attributed sales over a period."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from ..models import (
    Experiment,
    OnlineMetrics,
)
from ..serving import impressions, performance
from . import charts
from .base import (
    CheckedSelectionAdmin,
)


class DashboardForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} days") for d in performance.PERIODS],
        coerce=int,
        initial=30,
        required=False,
    )
    end = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The last day shown (default: today).",
    )

    def clean_end(self) -> Any:
        """A day a shop can have data for: far dates overflow the date arithmetic."""
        end = self.cleaned_data.get("end")
        if end is not None:
            today = timezone.localdate()
            earliest, latest = date(1990, 1, 1), today + timedelta(days=366)
            if not earliest <= end <= latest:
                raise ValidationError(f"Choose a day between {earliest} and {latest}.")
        return end


@admin.register(OnlineMetrics)
class OnlineMetricsAdmin(CheckedSelectionAdmin):
    """The dashboard: CTR, conversion and attributed revenue per placement and version, A/B
    tests in progress, and interaction statistics. Needs ``view_onlinemetrics``."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("", self.admin_site.admin_view(self.changelist_view), name=f"{info}_changelist"),
        ]

    def changelist_view(self, request: Any, extra_context: dict | None = None) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        # Impressions are written in batches; include what this process still holds.
        impressions.flush()
        form = DashboardForm(request.GET or None)
        days, end = 30, None
        if form.is_valid():
            days = form.cleaned_data.get("days") or 30
            end = form.cleaned_data.get("end")
        p = performance.period(days, end)
        online = performance.online_metrics(p)
        stats = performance.interaction_stats(p)
        labels = [d.strftime("%d %b") for d in p.dates]
        hint = None
        if not stats["events"] and not online["total"].impressions:
            newest = performance.newest_activity()
            if newest is not None and not p.since <= newest < p.until:
                hint = timezone.localdate(newest)

        def per(series_by: dict, name: str, fn: Any = None) -> list[charts.Series]:
            return [
                charts.Series(label, fn(s) if fn else s[name])
                for label, s in sorted(series_by.items())
            ]

        ctr = lambda s: performance.rate_series(s["clicks"], s["impressions"])  # noqa: E731
        chart_list = [
            charts.line_chart(
                labels,
                per(online["placement_days"], "impressions"),
                title="Impressions per day, by placement",
            ),
            charts.line_chart(
                labels,
                per(online["placement_days"], "", ctr),
                title="CTR per day, by placement",
                y_format=charts.percent,
            ),
            charts.line_chart(
                labels,
                per(online["placement_days"], "revenue"),
                title="Attributed revenue per day, by placement",
            ),
            charts.line_chart(
                labels,
                per(online["version_days"], "", ctr),
                title="CTR per day, by model version",
                y_format=charts.percent,
            ),
            charts.line_chart(
                labels,
                [charts.Series(k, v) for k, v in stats["per_type"].items()],
                title="Events per day, by type",
            ),
            charts.line_chart(
                labels,
                [charts.Series("active shoppers", stats["active_per_day"])],
                title="Active shoppers per day",
            ),
        ]
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Online metrics",
            "form": form,
            "period": p,
            "online": online,
            "stats": stats,
            "coverage": performance.coverage(p),
            "charts": chart_list,
            "hint": hint,
            "window_hours": performance.attribution_window().total_seconds() / 3600,
            "experiments": [e for e in Experiment.objects.filter(is_active=True) if e.running(now)],
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/recommendations/dashboard.html", context)
