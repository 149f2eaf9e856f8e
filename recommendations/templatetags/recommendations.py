"""``{% load recommendations %}``: carousels for server-rendered pages.

Each tag reads the shopper from ``request`` (``takes_context``), asks :mod:`services` and
renders ``recommendations/carousel.html``. A failing recommender never breaks the page:
the error is logged and the carousel is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django import template
from django.db.models import Model

from .. import experiments, impressions, services
from ..adapters import get_adapter

register = template.Library()
logger = logging.getLogger(__name__)

TEMPLATE = "recommendations/carousel.html"


def _shopper(context: template.Context) -> tuple[Any, str | None]:
    request = context.get("request")
    if request is None or get_adapter().is_opted_out(request):
        return None, None  # opted out: no history is read, the carousel is not personal
    user = getattr(request, "user", None)
    user = user if user is not None and user.is_authenticated else None
    return user, get_adapter().get_visitor_id(request)


def _carousel(
    title: str,
    build: Callable[[], services.RecommendationList],
    placement: str,
    context: template.Context | None = None,
) -> dict[str, Any]:
    """Build the list (this visitor's A/B variant, if an experiment runs on ``placement``)
    and buffer its impression (written once per page, after the response)."""
    request = context.get("request") if context is not None else None
    user, visitor_id = _shopper(context) if context is not None else (None, None)
    variant = None
    try:
        with experiments.serving(placement, user, visitor_id) as variant:
            recommendations = build()
    except Exception:
        logger.exception("the %s carousel failed; leaving it out", placement)
        recommendations = services.RecommendationList(placement, None)
    try:
        impressions.log(
            request,
            placement,
            [rec.item.pk for rec in recommendations],
            version_id=recommendations.version_id,
            experiment_id=variant.experiment_id if variant else None,
            variant=variant.name if variant else "",
            user=user,
            visitor_id=visitor_id,
        )
    except Exception:  # analytics never break a page
        logger.exception("could not log the %s impression", placement)
    adapter = get_adapter()
    entries = [
        {"rec": rec, "item": rec.item, "payload": adapter.item_payload(rec.item)}
        for rec in recommendations
    ]
    return {
        "title": title,
        "placement": placement,
        "version_id": recommendations.version_id,
        "entries": entries,
    }


@register.inclusion_tag(TEMPLATE, takes_context=True)
def recommended_for_you(
    context: template.Context,
    k: int | None = None,
    title: str = "Recommended for you",
    placement: str = "for_you",
    exclude: Model | None = None,
) -> dict[str, Any]:
    user, visitor_id = _shopper(context)
    skip = [exclude.pk] if exclude is not None else []
    return _carousel(
        title,
        lambda: services.for_visitor(user, visitor_id, k, placement, skip),
        placement,
        context,
    )


@register.inclusion_tag(TEMPLATE, takes_context=True)
def related_items(
    context: template.Context,
    item: Model,
    k: int | None = None,
    title: str = "You may also like",
    placement: str = "related",
) -> dict[str, Any]:
    return _carousel(title, lambda: services.related_to(item, k, placement), placement, context)


@register.inclusion_tag(TEMPLATE, takes_context=True)
def bought_together(
    context: template.Context,
    item: Model,
    k: int | None = None,
    title: str = "Customers also bought",
    placement: str = "bought_together",
) -> dict[str, Any]:
    return _carousel(
        title, lambda: services.bought_together(item, k, placement), placement, context
    )


@register.inclusion_tag(TEMPLATE, takes_context=True)
def recently_viewed(
    context: template.Context,
    k: int | None = None,
    title: str = "Recently viewed",
    placement: str = "recently_viewed",
    exclude: Model | None = None,
) -> dict[str, Any]:
    user, visitor_id = _shopper(context)
    skip = [exclude.pk] if exclude is not None else []
    return _carousel(
        title,
        lambda: services.recently_viewed(user, visitor_id, k, placement, skip),
        placement,
        context,
    )


@register.inclusion_tag(TEMPLATE, takes_context=True)
def trending(
    context: template.Context,
    k: int | None = None,
    title: str = "Trending now",
    placement: str = "trending",
) -> dict[str, Any]:
    return _carousel(title, lambda: services.trending(k, placement=placement), placement, context)


@register.inclusion_tag("recommendations/assets.html")
def recommendations_assets() -> dict[str, Any]:
    """The carousel stylesheet and click beacon; put it once in the page's ``<head>``."""
    return {}
