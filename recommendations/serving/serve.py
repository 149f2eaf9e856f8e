"""The one path from a list to a page or a response, for template tags and API views alike:
serve the shopper's A/B variant, never fail the caller, and log what was shown."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from . import experiments, exploration, feedback, impressions, shopper
from .types import RecommendationList

logger = logging.getLogger(__name__)


def serve(
    placement: str,
    build: Callable[[], RecommendationList],
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    visitor_id: str | None = None,
    on_error: Callable[[], RecommendationList] | None = None,
) -> RecommendationList:
    """``build()`` under this shopper's variant of ``placement`` (when an experiment runs
    on it, with its exploration share), for this shopper (without the items they dismissed,
    "not interested", and item lists hide what they bought, as the placement's policy says:
    :func:`lists.hidden_for`), its impression buffered (written after the response, in
    batches).

    A failing list is logged and replaced by ``on_error()`` (the API answers with popular
    items) or by an empty list (a page leaves the carousel out); analytics never break it.
    """
    variant = None
    try:
        with (
            experiments.serving(placement, user, visitor_id) as variant,
            exploration.varying(placement, getattr(variant, "exploration_share", None)),
            feedback.hiding(user, visitor_id, request),
            shopper.building_for(user, visitor_id, request),  # whose purchases to hide
        ):
            result = build()
    except Exception:
        logger.exception("the %s list failed; serving its fallback", placement)
        result = on_error() if on_error is not None else RecommendationList(placement, None)
    try:
        impressions.log(
            request,
            placement,
            [rec.item.pk for rec in result],
            version_id=result.version_id,
            experiment_id=variant.experiment_id if variant else None,
            variant=variant.name if variant else "",
            user=user,
            visitor_id=visitor_id,
        )
    except Exception:  # analytics never break a page or an answer
        logger.exception("could not log the %s impression", placement)
    return result
