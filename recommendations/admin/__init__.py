"""Admin screens: the interaction log (read-only, fast on millions of rows), training runs
and their operations, merchandising rules with a preview, the product panel mixin, A/B
tests, impressions and the online-metrics dashboard."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from ..adapters import get_adapter
from ..conf import get_item_model
from ..learning import tasks, versions
from ..models import (
    Experiment,
    ExperimentVariant,
    Impression,
    Interaction,
    ManualRelatedItem,
    MerchandisingRule,
    ModelVersion,
    OnlineMetrics,
    RelatedItem,
)
from ..serving import experiments, impressions, rules
from ..serving import lists as services
from ..serving import performance as dashboard
from ..tracking.keys import is_pk_text
from . import charts

logger = logging.getLogger(__name__)


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


# --- operations -------------------------------------------------------------------------
# Model versions (train, activate, roll back, recompute), merchandising rules and their
# preview, the product panel mixin, experiments, impressions and the online dashboard.


DASH = "\u2013"  # shown for a missing value


def _fmt(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.2%}"


def _duration(seconds: float | None) -> str:
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


METRIC_LABELS = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}


def _models_of(version: ModelVersion) -> list[tuple[str, dict[str, Any]]]:
    """``(label, metrics)`` of the candidate, its baselines and the then-active version."""
    metrics = version.metrics or {}
    out = [(f"v{version.pk} ({version.algorithm})", metrics.get("candidate") or {})]
    out += [(name, entry or {}) for name, entry in (metrics.get("baselines") or {}).items()]
    active = metrics.get("active") or {}
    if active.get("version") and any(k in active for k in METRIC_LABELS):
        out.append((f"active v{active['version']}", active))
    return out


@admin.register(ModelVersion)
class ModelVersionAdmin(CheckedSelectionAdmin):
    """Training runs: read-only records, with the operations people need as actions.

    Permissions: viewing needs ``view_modelversion``; training needs ``add_modelversion``;
    activating, rolling back and recomputing similarities need ``change_modelversion``.
    Every operation is written to the admin's history (``LogEntry``).
    """

    change_list_template = "admin/recommendations/modelversion/change_list.html"
    list_display = (
        "version",
        "algorithm",
        "status",
        "created_at",
        "device",
        "data_size",
        "run_time",
        "recall_at_20",
        "ndcg_at_100",
        "gate_passed",
        "is_active",
    )
    list_display_links = ("version",)
    list_filter = ("status", "is_active", "algorithm")
    date_hierarchy = "created_at"
    actions = ("train_again", "activate", "rollback", "recompute_similarities")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    ("algorithm", "status", "is_active"),
                    ("device", "task_id"),
                    ("created_at", "started_at", "finished_at", "run_time"),
                    "activated_at",
                    ("gate_passed", "gate_report"),
                )
            },
        ),
        ("Data", {"fields": (("data_since", "data_until"), ("n_events", "n_users", "n_items"))}),
        ("Quality", {"fields": ("metrics_chart", "metrics_table", "curve_chart")}),
        ("Settings", {"fields": ("hyperparameters_pretty", "related_counts", "artifact")}),
        ("Error", {"fields": ("error",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "run_time",
        "metrics_chart",
        "metrics_table",
        "curve_chart",
        "hyperparameters_pretty",
        "related_counts",
    )

    # --- permissions: the record is read-only; operations are actions --------------
    def has_add_permission(self, request: Any) -> bool:
        return False  # versions come from training ("train now"), not from a form

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        # Changelist-level (actions) only: the detail page is a read-only record.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj and obj.is_active)

    def has_train_permission(self, request: Any) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.add_{opts.model_name}")

    def has_operate_permission(self, request: Any) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_readonly_fields(self, request: Any, obj: Any = None) -> tuple:
        return tuple(f.name for f in self.opts.concrete_fields) + self.readonly_fields

    def get_actions(self, request: Any) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, never the active version
        return actions

    # --- list columns --------------------------------------------------------------
    @admin.display(description="version", ordering="-pk")
    def version(self, obj: ModelVersion) -> str:
        return f"v{obj.pk}"

    @admin.display(description="data")
    def data_size(self, obj: ModelVersion) -> str:
        if not obj.n_events:
            return DASH
        return f"{obj.n_events:,} events · {obj.n_users:,} shoppers · {obj.n_items:,} items"

    @admin.display(description="duration")
    def run_time(self, obj: ModelVersion) -> str:
        return _duration(obj.duration_seconds)

    def _metric_cell(self, obj: ModelVersion, name: str) -> str:
        ours = obj.metric("candidate", name)
        if ours is None:
            return DASH
        baselines = (obj.metrics or {}).get("baselines") or {}
        rest = format_html_join(" · ", "{} {}", ((b, _fmt(obj.metric(b, name))) for b in baselines))
        return format_html(
            '<strong>{}</strong><br><small title="baselines">{}</small>', _fmt(ours), rest
        )

    @admin.display(description="Recall@20")
    def recall_at_20(self, obj: ModelVersion) -> str:
        return self._metric_cell(obj, "recall@20")

    @admin.display(description="NDCG@100")
    def ndcg_at_100(self, obj: ModelVersion) -> str:
        return self._metric_cell(obj, "ndcg@100")

    # --- detail ----------------------------------------------------------------------
    @admin.display(description="test metrics")
    def metrics_chart(self, obj: ModelVersion) -> str:
        models = _models_of(obj)
        return charts.bar_chart(
            list(METRIC_LABELS.values()),
            [
                charts.Series(label, [entry.get(k) for k in METRIC_LABELS])
                for label, entry in models
            ],
            title=f"v{obj.pk} against the baselines, on the same test shoppers",
            y_format=lambda v: f"{v:.3f}",
        )

    @admin.display(description="all metrics")
    def metrics_table(self, obj: ModelVersion) -> str:
        models = _models_of(obj)
        names = sorted(
            {k for _, entry in models for k, v in entry.items() if isinstance(v, int | float)}
            - {"version"}
        )
        if not names:
            return DASH
        head = format_html_join("", "<th>{}</th>", ((label,) for label, _ in models))
        rows = format_html_join(
            "",
            "<tr><th>{}</th>{}</tr>",
            (
                (
                    name,
                    format_html_join(
                        "",
                        "<td>{}</td>",
                        (
                            (_fmt(entry.get(name), 4) if name in entry else DASH,)
                            for _, entry in models
                        ),
                    ),
                )
                for name in names
            ),
        )
        return format_html(
            '<table class="rec-metrics"><thead><tr><th></th>{}</tr></thead>'
            "<tbody>{}</tbody></table>",
            head,
            rows,
        )

    @admin.display(description="training curve")
    def curve_chart(self, obj: ModelVersion) -> str:
        curve = [row for row in obj.training_curve or [] if isinstance(row, dict)]
        if not curve:
            return format_html("<p>{}</p>", f"{obj.algorithm} is fitted in one step: no curve.")
        epochs = [str(row.get("epoch", i + 1)) for i, row in enumerate(curve)]
        loss = charts.line_chart(
            epochs,
            [charts.Series("training loss", [row.get("loss") for row in curve])],
            title="Training loss per epoch",
            width=460,
        )
        keys = sorted({k for row in curve for k in row if k.startswith("val_")})
        validation = charts.line_chart(
            epochs,
            [
                charts.Series(k[4:].replace("ndcg", "NDCG"), [row.get(k) for row in curve])
                for k in keys
            ],
            title="Validation metric per epoch",
            y_format=lambda v: f"{v:.3f}",
            width=460,
        )
        return format_html(
            '<div style="display:flex;flex-wrap:wrap;gap:16px">{}{}</div>', loss, validation
        )

    @admin.display(description="hyperparameters")
    def hyperparameters_pretty(self, obj: ModelVersion) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.hyperparameters, indent=2, sort_keys=True)
        )

    @admin.display(description="related items")
    def related_counts(self, obj: ModelVersion) -> str:
        counts = dict(
            RelatedItem.objects.filter(version=obj)
            .values("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
        similar, together = counts.get("similar", 0), counts.get("bought_together", 0)
        return f"{similar:,} similar · {together:,} bought together"

    # --- operations ------------------------------------------------------------------
    def get_urls(self) -> list:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("train/", self.admin_site.admin_view(self.train_now_view), name=f"{info}_train"),
            path(
                "rollback/",
                self.admin_site.admin_view(self.rollback_view),
                name=f"{info}_rollback",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: Any, extra_context: dict | None = None) -> Any:
        extra_context = {
            **(extra_context or {}),
            "can_train": self.has_train_permission(request),
            "can_operate": self.has_operate_permission(request),
            "active_version": versions.active_version(),
            "rollback_target": versions.previous_version(),
        }
        return super().changelist_view(request, extra_context)

    def _queue(self, request: Any, **kwargs: Any) -> ModelVersion | None:
        """Queue one training; in eager mode it runs now, so report how it ended."""
        try:
            version = tasks.queue_training(**kwargs)
        except Exception as exc:  # eager mode: the run failed here and now
            failed = ModelVersion.objects.order_by("-pk").first()
            self.message_user(request, f"Training failed: {exc}", messages.ERROR)
            if failed is not None:
                self.log_addition(request, failed, f"Trained now by the admin; failed: {exc}")
            return None
        self.log_addition(request, version, "Training queued from the admin (train now).")
        return version

    def _report_queued(self, request: Any, queued: list[ModelVersion]) -> None:
        if not queued:
            return
        for version in queued:
            version.refresh_from_db()
        names = ", ".join(f"v{v.pk}" for v in queued)
        message = ngettext(
            "Queued the training of %(names)s.",
            "Queued %(count)d trainings: %(names)s.",
            len(queued),
        ) % {"count": len(queued), "names": names}
        finished = [v for v in queued if v.status in ("succeeded", "failed")]
        if finished:  # eager mode: already done
            message += (
                " "
                + "; ".join(
                    f"v{v.pk} {v.status}{' and is active' if v.is_active else ''}" for v in finished
                )
                + "."
            )
        self.message_user(request, message, messages.SUCCESS)

    def train_now_view(self, request: Any) -> HttpResponseRedirect:
        """The changelist's "Train now" button: one run with the settings' defaults."""
        if not self.has_train_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(self._changelist_url())
        version = self._queue(request)
        self._report_queued(request, [version] if version else [])
        return HttpResponseRedirect(self._changelist_url())

    def rollback_view(self, request: Any) -> HttpResponseRedirect:
        """The changelist's "Roll back" button."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(self._changelist_url())
        self._rollback(request)
        return HttpResponseRedirect(self._changelist_url())

    def _changelist_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")

    def _rollback(self, request: Any) -> None:
        current = versions.active_version()
        try:
            target = versions.rollback()
        except ValueError as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        was = f"v{current.pk}" if current else "none"
        self.log_change(request, target, f"Re-activated by a roll back from {was}.")
        if current is not None:
            self.log_change(request, current, f"Deactivated: rolled back to v{target.pk}.")
        self.message_user(
            request,
            f"Rolled back from {was} to v{target.pk}; v{target.pk} is served now.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Train a new version now (same algorithm and hyperparameters)",
        permissions=["train"],
    )
    def train_again(self, request: Any, queryset: Any) -> None:
        settings_seen, queued = set(), []
        for version in queryset.order_by("pk"):
            key = (version.algorithm, json.dumps(version.hyperparameters, sort_keys=True))
            if key in settings_seen:
                continue
            settings_seen.add(key)
            new = self._queue(
                request, algorithm=version.algorithm, hyperparameters=version.hyperparameters
            )
            if new is not None:
                queued.append(new)
        self._report_queued(request, queued)

    @admin.action(description="Activate the selected version", permissions=["operate"])
    def activate(self, request: Any, queryset: Any) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.WARNING)
            return
        version = queryset.get()
        if version.is_active:
            self.message_user(request, f"v{version.pk} is already active.", messages.INFO)
            return
        previous = versions.active_version()
        try:
            versions.activate(version, reason=f"(by {request.user} in the admin)")
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        was = f"v{previous.pk}" if previous else "none"
        self.log_change(request, version, f"Activated (replacing {was}).")
        if previous is not None:
            self.log_change(request, previous, f"Deactivated: v{version.pk} activated.")
        self.message_user(request, f"v{version.pk} is active now (was {was}).", messages.SUCCESS)

    @admin.action(description="Roll back to the previous version", permissions=["operate"])
    def rollback(self, request: Any, queryset: Any) -> None:
        if not queryset.filter(is_active=True).exists():
            active = versions.active_version()
            hint = f" (v{active.pk})" if active else ""
            self.message_user(
                request,
                f"Select the active version{hint} to roll back from it.",
                messages.WARNING,
            )
            return
        self._rollback(request)

    @admin.action(description="Recompute similarities (related items)", permissions=["operate"])
    def recompute_similarities(self, request: Any, queryset: Any) -> None:
        done, skipped, failed = [], 0, []
        for version in queryset.order_by("pk"):
            if version.status != ModelVersion.Status.SUCCEEDED or not version.artifact:
                skipped += 1
                continue
            try:
                tasks.score_similarity.delay(version.pk, activate=False)
            except Exception as exc:  # eager mode: the task ran and failed here
                failed.append(f"v{version.pk}: {exc}")
                continue
            self.log_change(request, version, "Similarities recomputed from the admin.")
            done.append(version)
        if done:
            self.message_user(
                request,
                ngettext(
                    "Queued the similarity scoring of %(count)d version.",
                    "Queued the similarity scoring of %(count)d versions.",
                    len(done),
                )
                % {"count": len(done)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)d version that has no trained model.",
                    "Skipped %(count)d versions that have no trained model.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
        for line in failed:
            self.message_user(request, f"Scoring failed for {line}", messages.ERROR)


# --- merchandising -----------------------------------------------------------------------

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


def category_choices() -> list[tuple[str, str]] | None:
    """The categories of the item model's category relation, when it has one."""
    adapter = get_adapter()
    try:
        field = get_item_model()._meta.get_field(adapter.category_field)
    except Exception:
        return None
    if not getattr(field, "is_relation", False) or field.related_model is None:
        return None
    return [("", "---------")] + [
        (str(obj.pk), str(obj)) for obj in field.related_model._default_manager.all()[:1000]
    ]


class MerchandisingRuleForm(forms.ModelForm):
    class Meta:
        model = MerchandisingRule
        fields = (
            "name",
            "kind",
            "placement",
            "is_active",
            "item",
            "category",
            "position",
            "multiplier",
            "starts_at",
            "ends_at",
        )
        widgets = {"placement": PlacementInput}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = category_choices()
        if choices is not None:
            self.fields["category"] = forms.ChoiceField(
                choices=choices, required=False, help_text=self.fields["category"].help_text
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind, item, category = data.get("kind"), data.get("item"), data.get("category")
        if kind == MerchandisingRule.Kind.PIN and item is None:
            self.add_error("item", "A pin needs the item to pin.")
        if kind == MerchandisingRule.Kind.PIN and not data.get("position"):
            self.add_error("position", "Positions start at 1.")
        if kind == MerchandisingRule.Kind.EXCLUDE and bool(item) == bool(category):
            self.add_error(None, "An exclusion names either an item or a category.")
        if kind == MerchandisingRule.Kind.BOOST:
            if not category:
                self.add_error("category", "A boost needs a category.")
            if (data.get("multiplier") or 0) <= 0:
                self.add_error("multiplier", "The multiplier must be above 0.")
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The end must come after the start.")
        return data


@admin.register(MerchandisingRule)
class MerchandisingRuleAdmin(CheckedSelectionAdmin):
    form = MerchandisingRuleForm
    change_list_template = "admin/recommendations/merchandisingrule/change_list.html"
    list_display = (
        "name",
        "kind",
        "where",
        "target",
        "setting",
        "starts_at",
        "ends_at",
        "is_active",
        "in_force_now",
    )
    list_filter = ("kind", "is_active", "placement")
    search_fields = ("name", "placement")
    raw_id_fields = ("item",)
    list_select_related = ("item",)
    actions = ("switch_on", "switch_off")
    fieldsets = (
        (None, {"fields": ("name", "kind", "placement", "is_active")}),
        ("What", {"fields": ("item", "category", "position", "multiplier")}),
        ("When", {"fields": (("starts_at", "ends_at"),)}),
    )

    @admin.display(description="placement", ordering="placement")
    def where(self, obj: MerchandisingRule) -> str:
        return obj.placement or "everywhere"

    @admin.display(description="item or category")
    def target(self, obj: MerchandisingRule) -> str:
        if obj.item_id:
            return str(obj.item)
        return f"category {obj.category}" if obj.category else DASH

    @admin.display(description="position / multiplier")
    def setting(self, obj: MerchandisingRule) -> str:
        if obj.kind == MerchandisingRule.Kind.PIN:
            return f"#{obj.position}"
        if obj.kind == MerchandisingRule.Kind.BOOST:
            return f"× {obj.multiplier:g}"
        return DASH

    @admin.display(description="in force now", boolean=True)
    def in_force_now(self, obj: MerchandisingRule) -> bool:
        return obj.in_force()

    def _switch(self, request: Any, queryset: Any, on: bool) -> None:
        changed = list(queryset.exclude(is_active=on))
        for rule in changed:
            rule.is_active = on
            rule.save(update_fields=["is_active", "updated_at"])  # signals drop the cache
            self.log_change(request, rule, "Switched on." if on else "Switched off.")
        self.message_user(
            request,
            ngettext(
                "%(count)d rule switched %(state)s.",
                "%(count)d rules switched %(state)s.",
                len(changed),
            )
            % {"count": len(changed), "state": "on" if on else "off"},
            messages.SUCCESS,
        )

    @admin.action(description="Switch the selected rules on", permissions=["change"])
    def switch_on(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, True)

    @admin.action(description="Switch the selected rules off", permissions=["change"])
    def switch_off(self, request: Any, queryset: Any) -> None:
        self._switch(request, queryset, False)

    def get_urls(self) -> list:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{info}_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: Any) -> TemplateResponse:
        """What a carousel returns for a product or a shopper, before and after the rules."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PreviewForm(request.GET or None, admin_site=self.admin_site)
        before = after = None
        error = ""
        if form.is_bound and form.is_valid():
            build = form.builder()
            try:
                with rules.disabled():
                    before = build()
                after = build()
            except Exception as exc:  # show it; a preview must not 500
                error = f"{type(exc).__name__}: {exc}"
        rows = _preview_rows(before, after) if before is not None else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Preview a carousel with and without the rules",
            "form": form,
            "media": self.media + form.media,
            "rows": rows,
            "before": before,
            "after": after,
            "error": error,
            "in_force": [r for r in rules.active_rules()],
        }
        return TemplateResponse(
            request, "admin/recommendations/merchandisingrule/preview.html", context
        )


class PreviewForm(forms.Form):
    LISTS = (
        ("related", "Related items (a product)"),
        ("bought_together", "Bought together (a product)"),
        ("for_you", "For you (a user or a visitor)"),
        ("popular", "Popular"),
        ("trending", "Trending"),
    )
    list = forms.ChoiceField(choices=LISTS, initial="related")
    placement = forms.CharField(
        required=False,
        max_length=64,
        widget=PlacementInput,
        help_text="The placement whose rules apply; empty: the list's default name.",
    )
    item = forms.IntegerField(required=False, label="Product", help_text="For product lists.")
    user = forms.IntegerField(required=False, label="User", help_text="For 'for you'.")
    visitor = forms.CharField(
        required=False, max_length=64, label="or anonymous visitor id", help_text="For 'for you'."
    )
    k = forms.IntegerField(min_value=1, max_value=50, initial=12, required=False)

    def __init__(self, *args: Any, admin_site: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["item"].widget = ForeignKeyRawIdWidget(
            MerchandisingRule._meta.get_field("item").remote_field, admin_site
        )
        self.fields["user"].widget = ForeignKeyRawIdWidget(
            Impression._meta.get_field("user").remote_field, admin_site
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("list")
        if kind in ("related", "bought_together"):
            pk = data.get("item")
            item = get_item_model()._default_manager.filter(pk=pk).first() if pk else None
            if item is None:
                self.add_error("item", "Choose an existing product.")
            data["item_obj"] = item
        if kind == "for_you":
            user = None
            if data.get("user"):
                user = get_user_model()._default_manager.filter(pk=data["user"]).first()
                if user is None:
                    self.add_error("user", "No such user.")
            elif not data.get("visitor"):
                self.add_error(None, "Choose a user or type a visitor id.")
            data["user_obj"] = user
        return data

    def builder(self) -> Any:
        data = self.cleaned_data
        kind, k = data["list"], data.get("k") or None
        placement = data.get("placement") or kind
        if kind == "related":
            return lambda: services.related_to(data["item_obj"], k, placement=placement)
        if kind == "bought_together":
            return lambda: services.bought_together(data["item_obj"], k, placement=placement)
        if kind == "for_you":
            return lambda: services.for_visitor(
                data.get("user_obj"), data.get("visitor") or None, k, placement=placement
            )
        if kind == "trending":
            return lambda: services.trending(k, placement=placement)
        return lambda: services.popular(k=k, placement=placement)


def _preview_rows(before: Any, after: Any) -> list[dict[str, Any]]:
    """Side by side, with what moved: one row per position."""
    b, a = list(before or []), list(after or [])
    before_pos = {rec.item.pk: i for i, rec in enumerate(b)}
    after_ids = {rec.item.pk for rec in a}
    rows = []
    for i in range(max(len(b), len(a))):
        left = b[i] if i < len(b) else None
        right = a[i] if i < len(a) else None
        change = ""
        if right is not None:
            was = before_pos.get(right.item.pk)
            change = "new" if was is None else ("" if was == i else f"{was + 1} → {i + 1}")
        rows.append(
            {
                "position": i + 1,
                "before": left,
                "before_gone": left is not None and left.item.pk not in after_ids,
                "after": right,
                "change": change,
            }
        )
    return rows


# --- the product panel -----------------------------------------------------------------


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
            served = services.related_to(obj, k)
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


# --- experiments -------------------------------------------------------------------------


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
        fields = ("name", "kind", "version", "weight")

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


# --- impressions and the dashboard -------------------------------------------------------


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


class DashboardForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(d, f"{d} days") for d in dashboard.PERIODS],
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
        p = dashboard.period(days, end)
        online = dashboard.online_metrics(p)
        stats = dashboard.interaction_stats(p)
        labels = [d.strftime("%d %b") for d in p.dates]
        hint = None
        if not stats["events"] and not online["total"].impressions:
            newest = dashboard.newest_activity()
            if newest is not None and not p.since <= newest < p.until:
                hint = timezone.localdate(newest)

        def per(series_by: dict, name: str, fn: Any = None) -> list[charts.Series]:
            return [
                charts.Series(label, fn(s) if fn else s[name])
                for label, s in sorted(series_by.items())
            ]

        ctr = lambda s: dashboard.rate_series(s["clicks"], s["impressions"])  # noqa: E731
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
            "coverage": dashboard.coverage(p),
            "charts": chart_list,
            "hint": hint,
            "window_hours": dashboard.attribution_window().total_seconds() / 3600,
            "experiments": [e for e in Experiment.objects.filter(is_active=True) if e.running(now)],
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/recommendations/dashboard.html", context)
