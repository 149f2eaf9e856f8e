"""Oscar's own signals, passed on as the app's signals (``recommendations.signals``), so
an Oscar shop tracks views, basket additions and orders without a line of glue.

Nothing here may break Oscar's pages or checkout: each forward uses ``send_robust`` and
logs what failed, and an order with no shopper to attribute it to (a guest order placed
outside a checkout request) is logged and skipped.

Purchases come from ``order_placed``, which Oscar sends for every order, with the buyer but
without the request. Oscar's checkout sends ``pre_payment`` (with its view) just before it
places the order in the same request: that request is kept for the order's receiver, so a
checkout's purchases honour the visitor's opt-out and reach a guest's own history.

Saves of stock records, product categories and images change what carousels show (price,
availability, category rules): each starts a new catalogue epoch at once.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_started
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal, receiver
from oscar.apps.basket.signals import basket_addition
from oscar.apps.catalogue.signals import product_viewed
from oscar.apps.checkout.signals import pre_payment
from oscar.apps.order.signals import order_placed
from oscar.core.loading import get_model

from ... import signals
from ...serving import catalogue_changed
from ...tracking.recording import MAX_SOURCE_LENGTH
from .adapter import tracked_item

logger = logging.getLogger(__name__)

#: The request of the checkout that is placing an order in this context (see the docstring).
_checkout_request: ContextVar[Any] = ContextVar("recommendations_oscar_checkout", default=None)


def forward(signal: Signal, **kwargs: Any) -> None:
    """Send one of the app's signals; a failing receiver is logged, never raised."""
    for handler, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error(
                "recommendations: %s failed for an Oscar signal; the shop carries on",
                getattr(handler, "__qualname__", handler),
                exc_info=(type(result), result, result.__traceback__),
            )


@receiver(product_viewed, dispatch_uid="recommendations.oscar.product_viewed")
def on_product_viewed(sender: Any, product: Any, request: Any = None, **kwargs: Any) -> None:
    if request is None:
        return
    source = request.GET.get("src", "")[:MAX_SOURCE_LENGTH]
    forward(
        signals.item_viewed, sender=sender, request=request, item=tracked_item(product),
        source=source,
    )


@receiver(basket_addition, dispatch_uid="recommendations.oscar.basket_addition")
def on_basket_addition(sender: Any, product: Any, request: Any = None, **kwargs: Any) -> None:
    if request is None:
        return
    forward(
        signals.item_added_to_cart,
        sender=sender,
        request=request,
        item=tracked_item(product),
        quantity=_quantity(request),
    )


def _quantity(request: Any) -> int:
    """How many the basket form added (Oscar's signal does not say; its form posts it)."""
    try:
        quantity = int(request.POST.get("quantity", 1))
    except (TypeError, ValueError):
        return 1
    return quantity if quantity > 0 else 1


@receiver(pre_payment, dispatch_uid="recommendations.oscar.pre_payment")
def on_pre_payment(sender: Any, view: Any = None, **kwargs: Any) -> None:
    _checkout_request.set(getattr(view, "request", None))


@receiver(request_started, dispatch_uid="recommendations.oscar.request_started")
def on_request_started(**kwargs: Any) -> None:
    _checkout_request.set(None)  # a thread's next request never sees the last checkout's


@receiver(order_placed, dispatch_uid="recommendations.oscar.order_placed")
def on_order_placed(sender: Any, order: Any, user: Any = None, **kwargs: Any) -> None:
    request = _checkout_request.get()
    _checkout_request.set(None)
    if request is not None and getattr(getattr(request, "basket", None), "pk", None) != (
        order.basket_id
    ):
        request = None  # not this order's checkout
    if user is not None and not user.is_authenticated:
        user = None  # Oscar passes AnonymousUser for a guest
    if user is None and request is None:
        logger.info("recommendations: guest order %s has no request; not tracked", order.number)
        return
    lines = [
        (tracked_item(line.product), line.quantity, line.line_price_incl_tax)
        for line in order.lines.select_related("product__parent").order_by("pk")
        if line.product is not None  # a deleted product: nothing to learn from
    ]
    if lines:
        forward(signals.order_paid, sender=sender, request=request, order=order, user=user,
                lines=lines)


def _catalogue_changed(sender: Any, using: str | None = None, **kwargs: Any) -> None:
    catalogue_changed(using)


def connect_catalogue() -> None:
    """Price, stock, categories and images live on Oscar's other models: their saves and
    deletes refresh the catalogue caches as an item's own save does."""
    stock_record = get_model("partner", "StockRecord")
    product_category = get_model("catalogue", "ProductCategory")
    product_image = get_model("catalogue", "ProductImage")
    for model in (stock_record, product_category, product_image):
        uid = f"recommendations.oscar.{model._meta.label_lower}"
        post_save.connect(_catalogue_changed, sender=model, dispatch_uid=f"{uid}.saved")
        post_delete.connect(_catalogue_changed, sender=model, dispatch_uid=f"{uid}.deleted")
    m2m_changed.connect(
        _catalogue_changed, sender=product_category, dispatch_uid="recommendations.oscar.m2m"
    )


connect_catalogue()
