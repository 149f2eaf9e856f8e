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


@register(Tags.models)
def check_visibility(app_configs: Any = None, **kwargs: Any) -> list:
    """The default adapter shows an item when the item model says nothing against it: a
    model without its active and stock fields (an Oscar product) would be served whole,
    non-public and sold-out items included."""
    from django.apps import apps

    from .adapters import DefaultAdapter, get_adapter

    try:
        adapter = get_adapter()
        model = apps.get_model(settings.RECOMMENDATIONS_ITEM_MODEL)
    except (ImportError, LookupError, ValueError, AttributeError):
        return []  # reported by check_settings
    if type(adapter).visible_items is not DefaultAdapter.visible_items:
        return []  # the shop's adapter says what is visible
    names = {f.name for f in model._meta.get_fields()}
    missing = [f for f in (adapter.active_field, adapter.stock_field) if f not in names]
    if not missing:
        return []
    return [
        Warning(
            f"The adapter cannot tell which {model._meta.label} items are visible: the model "
            f"has no {' or '.join(repr(f) for f in missing)} field, so every item may be "
            "recommended, unpublished and sold-out ones included.",
            hint="Override visible_items() in your adapter (a django-oscar shop: use "
            "'recommendations.contrib.oscar.adapter.OscarAdapter', see docs/oscar.md).",
            id="recommendations.W002",
        )
    ]


@register()
def check_celery(app_configs: Any = None, **kwargs: Any) -> list:
    """Training hands its next steps to Celery. With ``TASKS_IN_PROCESS`` "auto" (the
    default) a shop without a broker runs them in process; with False they are sent to the
    broker whatever it is, and with none configured that is Celery's default
    amqp://localhost, where nothing listens: a trained model would never go live."""
    from celery import current_app

    from .conf import app_settings
    from .learning.tasks import broker_configured

    mode = app_settings.TASKS_IN_PROCESS
    if mode not in ("auto", True, False):
        return [
            Error(
                f"RECOMMENDATIONS['TASKS_IN_PROCESS'] is {mode!r}.",
                hint='Use "auto" (the default), True or False.',
                id="recommendations.E005",
            )
        ]
    if mode is not False or current_app.conf.task_always_eager or broker_configured():
        return []
    return [
        Warning(
            "TASKS_IN_PROCESS is False but Celery has no broker configured (it would use "
            "amqp://localhost): training and similarity tasks would never run.",
            hint="Set CELERY_BROKER_URL (and load the settings into your Celery app), or "
            'leave RECOMMENDATIONS["TASKS_IN_PROCESS"] at "auto" to run tasks in process '
            "without a broker (docs/integration.md).",
            id="recommendations.W003",
        )
    ]
