"""Signal receivers: each turns one signal into tracking calls and does nothing else."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from .. import signals
from ..adapters import get_adapter
from . import consent, recording
from .middleware import rotate
from .privacy import forget

logger = logging.getLogger(__name__)


@receiver(signals.item_viewed, dispatch_uid="recommendations.item_viewed")
def on_item_viewed(sender: Any, request: Any, item: Any, source: str = "", **kwargs: Any) -> None:
    recording.record("view", item, request=request, source=source)


@receiver(signals.item_added_to_cart, dispatch_uid="recommendations.item_added_to_cart")
def on_item_added_to_cart(
    sender: Any, request: Any, item: Any, quantity: int = 1, source: str = "", **kwargs: Any
) -> None:
    recording.record("add_to_cart", item, request=request, quantity=quantity, source=source)


@receiver(signals.item_removed_from_cart, dispatch_uid="recommendations.item_removed_from_cart")
def on_item_removed_from_cart(
    sender: Any, request: Any, item: Any, quantity: int = 1, **kwargs: Any
) -> None:
    recording.record("remove_from_cart", item, request=request, quantity=quantity)


@receiver(signals.order_paid, dispatch_uid="recommendations.order_paid")
def on_order_paid(
    sender: Any, request: Any, order: Any, lines: Any, user: Any = None, **kwargs: Any
) -> None:
    """Runs inside the shop's checkout: whatever goes wrong here is logged, never raised
    (a sale must not fail because its tracking did). A guest order sent without a request
    or user is recorded without a shopper: it still counts for popularity and baskets."""
    try:
        _record_order(request, order, lines, user)
    except Exception:
        logger.exception("order %s: its purchases were not recorded", getattr(order, "pk", order))


def _record_order(request: Any, order: Any, lines: Any, user: Any) -> None:
    if not recording.should_track(request):
        return
    if user is None and request is not None and request.user.is_authenticated:
        user = request.user
    visitor_id = get_adapter().get_visitor_id(request) if request is not None else ""
    paid_at = timezone.now()  # one instant for every line: that is what makes them one basket
    rows = [
        {
            "event": "purchase",
            "item": item,
            "user": user,
            "visitor_id": visitor_id,
            "quantity": quantity,
            "value": value,
            # One purchase event per order line, however often the signal is re-sent.
            "client_event_id": f"order:{order.pk}:{position}",
            "created_at": paid_at,
        }
        for position, (item, quantity, value) in enumerate(lines)
    ]
    result = recording.record_many(rows)
    if result.rejected:
        logger.warning("order %s: lines not recorded: %s", order.pk, result.rejected)


@receiver(user_logged_in, dispatch_uid="recommendations.merge_visitor_on_login")
def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """The anonymous history becomes the account's (unless it opted out); the browser then
    browses under a new visitor id, which is the account's alone."""
    if request is None:
        return
    if consent.tracking_allowed(request):
        recording.merge_visitor_into_user(get_adapter().get_visitor_id(request), user)
    rotate(request)


@receiver(user_logged_out, dispatch_uid="recommendations.rotate_visitor_on_logout")
def on_user_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Whoever uses the browser next starts as a new visitor."""
    if request is not None:
        rotate(request)


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="recommendations.forget_user")
def on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted account takes its history, its anonymous ids' history and caches with it,
    events still waiting in the Redis buffer included (dropped at flush if Redis is down)."""
    forget(user_id=instance.pk, buffer_required=False)
