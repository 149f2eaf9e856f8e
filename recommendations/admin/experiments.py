"""A/B tests of model versions (or no model) on a placement, with their results."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import ngettext

from ..models import (
    Experiment,
    ExperimentVariant,
    ModelVersion,
)
from ..serving import experiments
from . import charts
from .base import (
    DASH,
    CheckedSelectionAdmin,
    PlacementInput,
)


class ExperimentVariantFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        live = [
            f.cleaned_data
            for f in self.forms
            if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")
        ]
        if len(live) < 2:
            raise ValidationError("An experiment needs at least two variants.")
        if sum(d.get("weight") or 0 for d in live) <= 0:
            raise ValidationError("Give at least one variant some traffic (a weight above 0).")


class ExperimentVariantForm(forms.ModelForm):
    class Meta:
        model = ExperimentVariant
        fields = ("name", "kind", "version", "weight", "exploration_share")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        version = data.get("version")
        if data.get("kind") == ExperimentVariant.Kind.VERSION:
            if version is None:
                self.add_error("version", "Choose the version this variant serves.")
            elif version.status != ModelVersion.Status.SUCCEEDED or not version.artifact:
                self.add_error("version", "Only a trained (succeeded) version can be served.")
        elif version is not None:
            data["version"] = None
        return data


class ExperimentVariantInline(admin.TabularInline):
    model = ExperimentVariant
    form = ExperimentVariantForm
    formset = ExperimentVariantFormSet
    extra = 0
    min_num = 2

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.name == "version":
            kwargs["queryset"] = ModelVersion.objects.filter(
                status=ModelVersion.Status.SUCCEEDED
            ).exclude(artifact="")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ("name", "placement", "description", "is_active", "starts_at", "ends_at")
        widgets = {"placement": PlacementInput}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data


@admin.register(Experiment)
class ExperimentAdmin(CheckedSelectionAdmin):
    form = ExperimentForm
    inlines = (ExperimentVariantInline,)
    list_display = ("name", "placement", "arms", "starts_at", "ends_at", "is_active", "running_now")
    list_filter = ("is_active", "placement")
    search_fields = ("name", "placement")
    actions = ("stop",)
    readonly_fields = ("results",)

    class Media:
        # The results table takes the form's full width (see the stylesheet).
        css = {"all": ("recommendations/admin.css",)}

    def get_fieldsets(self, request: Any, obj: Any = None) -> list:
        fieldsets = [
            (None, {"fields": ("name", "placement", "description", "is_active")}),
            ("When", {"fields": (("starts_at", "ends_at"),)}),
        ]
        if obj is not None:
            fieldsets.insert(0, ("Results", {"fields": ("results",)}))
        return fieldsets

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("variants")

    @admin.display(description="variants")
    def arms(self, obj: Experiment) -> str:
        return " vs ".join(f"{v.name} ({v.weight})" for v in obj.variants.all()) or DASH

    @admin.display(description="running now", boolean=True)
    def running_now(self, obj: Experiment) -> bool:
        return obj.running()

    @admin.display(description="results")
    def results(self, obj: Experiment) -> str:
        if obj.pk is None:
            return DASH
        data = experiments.results(obj)
        variants = data["variants"]
        chart = charts.bar_chart(
            [v.name for v in variants],
            [
                charts.Series("visitors who clicked", [v.click_rate for v in variants]),
                charts.Series("visitors who bought", [v.conversion_rate for v in variants]),
            ],
            title="Share of exposed visitors, per variant",
            y_format=charts.percent,
            width=560,
        )
        return render_to_string(
            "admin/recommendations/experiment/results.html",
            {**data, "experiment": obj, "chart": chart},
        )

    @admin.action(description="Stop the selected experiments now", permissions=["change"])
    def stop(self, request: Any, queryset: Any) -> None:
        now = timezone.now()
        stopped = 0
        for experiment in queryset:
            if not experiment.running(now):
                continue
            experiment.ends_at = now
            experiment.save(update_fields=["ends_at"])
            self.log_change(request, experiment, "Stopped from the admin.")
            stopped += 1
        self.message_user(
            request,
            ngettext("Stopped %(count)d experiment.", "Stopped %(count)d experiments.", stopped)
            % {"count": stopped},
            messages.SUCCESS,
        )
