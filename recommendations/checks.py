"""System checks: a misconfigured install fails at start-up with a clear message."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.models)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    label = getattr(settings, "RECOMMENDATIONS_ITEM_MODEL", None)
    if not label:
        errors.append(
            Error(
                "RECOMMENDATIONS_ITEM_MODEL is not set.",
                hint="Name the shop's item model, e.g. RECOMMENDATIONS_ITEM_MODEL = 'shop.Product'.",  # noqa: E501
                id="recommendations.E001",
            )
        )
    else:
        from django.apps import apps

        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                Error(
                    f"RECOMMENDATIONS_ITEM_MODEL is {label!r}, which is not an installed model.",
                    id="recommendations.E002",
                )
            )
    try:
        from .adapters import get_adapter

        get_adapter()
    except ImportError as exc:
        errors.append(
            Error(
                f"RECOMMENDATIONS['ADAPTER'] cannot be imported: {exc}", id="recommendations.E003"
            )
        )
    from .conf import unknown_keys

    for key in unknown_keys():
        errors.append(
            Error(
                f"RECOMMENDATIONS[{key!r}] is not a setting of this app.",
                hint="Check the spelling; every setting is listed in recommendations/conf.py.",
                id="recommendations.E004",
            )
        )
    from .conf import diversity_errors

    for message in diversity_errors():
        errors.append(Error(message, id="recommendations.E020"))
    if "recommendations.tracking.middleware.VisitorMiddleware" not in settings.MIDDLEWARE:
        errors.append(
            Warning(
                "VisitorMiddleware is not installed: anonymous visitors won't be tracked.",
                hint="Add 'recommendations.tracking.middleware.VisitorMiddleware' to MIDDLEWARE.",
                id="recommendations.W001",
            )
        )
    return errors
