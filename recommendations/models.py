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
