"""What the app stores: the interaction log (training runs and related items follow)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Event(models.TextChoices):
    VIEW = "view", "View"
    ADD_TO_CART = "add_to_cart", "Add to cart"
    REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
    PURCHASE = "purchase", "Purchase"
    #: A click on a recommendation (its ``source`` names the placement and version).
    CLICK = "click", "Recommendation click"


class Interaction(models.Model):
    """One thing a shopper did with an item.

    Written by :func:`recommendations.tracking.record` only. A row belongs to a signed-in
    ``user`` or to an anonymous ``visitor_id`` (both once the visitor signs in and their
    anonymous history is merged). Deliberately no ``auto_now_add``: imports carry their
    own timestamps.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # covered by the (user, -created_at) index
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # an item's events are read by the (item, created_at) index
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    quantity = models.PositiveIntegerField(default=1)
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    source = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="The placement and model version that led here, e.g. 'product:related:v3'.",
    )
    client_event_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        help_text="Set by the client; a retried event with the same id is stored once.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Training: every event since a date, streamed in order.
            models.Index(fields=["created_at"], name="rec_interaction_created"),
            # Serving: one visitor's / one user's latest N events.
            models.Index(fields=["visitor_id", "-created_at"], name="rec_interaction_visitor"),
            models.Index(fields=["user", "-created_at"], name="rec_interaction_user"),
            models.Index(fields=["item", "created_at"], name="rec_interaction_item"),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"visitor {self.visitor_id[:8]}"
        return f"{who} {self.event} item {self.item_id}"


class ModelVersion(models.Model):
    """One training run and, when it succeeded, the model it produced.

    At most one version is active: the one carousels and the API serve. Its related-item
    lists are written before it is activated, so activating switches model and lists at once.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    algorithm = models.CharField(max_length=32, default="vae")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    is_active = models.BooleanField(default=False)
    hyperparameters = models.JSONField(default=dict, blank=True)
    device = models.CharField(max_length=32, blank=True)
    data_since = models.DateTimeField(null=True, blank=True, help_text="Oldest event used.")
    data_until = models.DateTimeField(null=True, blank=True, help_text="Newest event used.")
    n_events = models.PositiveBigIntegerField(default=0)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    training_curve = models.JSONField(default=list, blank=True)
    artifact = models.CharField(max_length=255, blank=True, help_text="Path in the storage.")
    gate_passed = models.BooleanField(null=True, blank=True)
    gate_report = models.TextField(blank=True)
    activate_when_ready = models.BooleanField(
        default=True, help_text="Activate once related items are written, if the gate passes."
    )
    force_activate = models.BooleanField(
        default=False, help_text="Manual override: activate even if the gate fails."
    )
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="rec_one_active_version",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.pk} ({self.algorithm}, {self.status}{', active' if self.is_active else ''})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def metric(self, model: str, name: str) -> float | None:
        """A test metric of this run: ``model`` is ``"candidate"`` or a baseline name."""
        if model == "candidate":
            entry = self.metrics.get("candidate", {})
        else:
            entry = self.metrics.get("baselines", {}).get(model, {})
        value = entry.get(name)
        return float(value) if isinstance(value, int | float) else None


class RelatedItem(models.Model):
    """A precomputed neighbour of an item for one model version: one indexed read per carousel."""

    class Kind(models.TextChoices):
        SIMILAR = "similar", "Similar"
        BOUGHT_TOGETHER = "bought_together", "Bought together"

    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="related_items"
    )
    item = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    related = models.ForeignKey(
        settings.RECOMMENDATIONS_ITEM_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["version", "kind", "item", "rank"]
        indexes = [
            models.Index(fields=["version", "kind", "item", "rank"], name="rec_related_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.rank} of item {self.item_id}: {self.related_id}"


class TaskLock(models.Model):
    """A named lease in the database: one holder at a time, and it expires.

    A crashed worker cannot hold it forever: a lease not renewed before ``expires_at`` can be
    taken over. Works on every database Django supports (no Redis needed in eager mode).
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"
