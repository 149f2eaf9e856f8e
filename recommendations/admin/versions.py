"""Model versions: train, compare, activate, roll back, recompute related items."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import ngettext

from ..learning import tasks, versions
from ..models import (
    ModelVersion,
    RelatedItem,
)
from ..serving import pool
from . import charts
from .base import (
    DASH,
    CheckedSelectionAdmin,
    fmt_duration,
    fmt_number,
    fmt_percent,
)

#: The temporal test's metrics (``all``: everything bought next; ``explore``: new items only).
METRIC_LABELS = {
    "ndcg@20": "NDCG@20",
    "recall@20": "Recall@20",
    "hitrate@20": "HitRate@20",
    "explore_ndcg@20": "NDCG@20, new items",
    "explore_recall@20": "Recall@20, new items",
}


def _models_of(version: ModelVersion) -> list[tuple[str, dict[str, Any]]]:
    """``(label, metrics)`` of the candidate, its baselines and the then-active version."""
    metrics = version.metrics or {}
    out = [(f"v{version.pk} ({version.algorithm})", metrics.get("candidate") or {})]
    out += [(name, entry or {}) for name, entry in (metrics.get("baselines") or {}).items()]
    active = metrics.get("active") or {}
    if active.get("version") and any(k in active for k in METRIC_LABELS):
        out.append((f"active v{active['version']}", active))
    return out


def broken_notice(active: ModelVersion | None) -> str:
    """One line when the active version is broken: why, and what this process serves
    instead (the last good version it loaded, else popular items)."""
    if active is None or active.status != ModelVersion.Status.BROKEN:
        return ""
    reason = (active.error or "its artifact is missing or changed").strip().splitlines()[0]
    last = pool.active_model.last_good_version_id()
    serving = f"serving v{last}" if last and last != active.pk else "serving popular items"
    return f"v{active.pk} is broken: {reason}; {serving}."


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
        "created",
        "device",
        "data_size",
        "run_time",
        "ndcg_at_20",
        "explore_ndcg_at_20",
        "gate_passed",
        "is_active",
    )
    list_display_links = ("version",)
    list_filter = ("status", "is_active", "algorithm")
    date_hierarchy = "created_at"

    class Media:
        # Readable at 1366 px: filters above the list when the sidebar leaves it too little room.
        css = {"all": ("recommendations/admin.css",)}

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
        (
            "Quality",
            {"fields": ("protocol_summary", "metrics_chart", "metrics_table", "curve_chart")},
        ),
        ("Settings", {"fields": ("hyperparameters_pretty", "related_counts")}),
        (
            "Artifact",
            {
                "fields": (
                    "artifact",
                    ("artifact_sha256", "artifact_size"),
                    "items_artifact",
                    ("items_sha256", "items_size"),
                )
            },
        ),
        ("Error", {"fields": ("error",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "run_time",
        "protocol_summary",
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

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj: ModelVersion) -> str:
        when = timezone.localtime(obj.created_at)
        return format_html("{}<br>{}", date_format(when, "j M Y"), date_format(when, "H:i"))

    @admin.display(description="data")
    def data_size(self, obj: ModelVersion) -> str:
        if not obj.n_events:
            return DASH
        return format_html(
            "{} events<br><small>{} shoppers<br>{} items</small>",
            f"{obj.n_events:,}",
            f"{obj.n_users:,}",
            f"{obj.n_items:,}",
        )

    @admin.display(description="duration")
    def run_time(self, obj: ModelVersion) -> str:
        return fmt_duration(obj.duration_seconds)

    def _metric_cell(self, obj: ModelVersion, name: str) -> str:
        ours = obj.metric("candidate", name)
        if ours is None:
            return DASH
        baselines = (obj.metrics or {}).get("baselines") or {}
        rest = format_html_join(
            mark_safe("<br>"), "{} {}", ((b, fmt_number(obj.metric(b, name))) for b in baselines)
        )
        return format_html(
            '<strong>{}</strong><br><small class="rec-baselines" title="baselines">{}</small>',
            fmt_number(ours),
            rest,
        )

    @admin.display(description="NDCG@20")
    def ndcg_at_20(self, obj: ModelVersion) -> str:
        return self._metric_cell(obj, "ndcg@20")

    @admin.display(description="NDCG@20, new items")
    def explore_ndcg_at_20(self, obj: ModelVersion) -> str:
        return self._metric_cell(obj, "explore_ndcg@20")

    @admin.display(description="how it was tested")
    def protocol_summary(self, obj: ModelVersion) -> str:
        p = (obj.metrics or {}).get("protocol") or {}
        if p.get("name") != "temporal":
            return DASH
        return format_html(
            "History before {}; truth: what {} held-out shoppers bought in the next {} days "
            "({} re-buys). Trained with event weights {}; time decay: {}.",
            str(p.get("cut", ""))[:16].replace("T", " "),
            p.get("test_users", 0),
            f"{p.get('window_days', 0):g}",
            fmt_percent(p.get("repeat_share")),
            ", ".join(f"{k} {v:g}" for k, v in (obj.event_weights or {}).items()) or DASH,
            f"half-life {obj.half_life_days:g} days" if obj.half_life_days else "none",
        )

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
                            (fmt_number(entry.get(name), 4) if name in entry else DASH,)
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
        active = versions.active_version()
        extra_context = {
            **(extra_context or {}),
            "can_train": self.has_train_permission(request),
            "can_operate": self.has_operate_permission(request),
            "active_version": active,
            "broken_notice": broken_notice(active),
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
                tasks.dispatch(tasks.score_similarity, version.pk, activate=False)
            except Exception as exc:  # in process: it ran and failed; or it was not queued
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
