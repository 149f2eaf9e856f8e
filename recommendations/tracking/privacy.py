"""A shopper's right to be forgotten and to a copy of their data (GDPR articles 15 and 17).

Personal rows are found generically: every model of this app with a ``user`` foreign key
and/or a ``visitor_id`` field (the interaction log, impressions, ...). Trained models
hold no per-user rows (only item weights and item ids), so nothing there needs erasing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db import transaction
from django.db.models import Model, Q

from .. import cache_keys
from ..models import Interaction


def personal_models() -> list[type[Model]]:
    config = apps.get_app_config("recommendations")
    out = []
    for model in config.get_models():
        if model._meta.proxy:  # its rows belong to the concrete model, counted once there
            continue
        names = {f.name for f in model._meta.get_fields()}
        if "user" in names or "visitor_id" in names:
            out.append(model)
    return out


def _filter(model: type[Model], user_id: int | None, visitor_ids: set[str]) -> Q | None:
    names = {f.name for f in model._meta.get_fields()}
    q = Q()
    if user_id is not None and "user" in names:
        q |= Q(user_id=user_id)
    if visitor_ids and "visitor_id" in names:
        q |= Q(visitor_id__in=visitor_ids)
    return q or None


def visitor_ids_of(user_id: int) -> set[str]:
    """The anonymous ids a user browsed under (merged into their account on log-in)."""
    return set(
        Interaction.objects.filter(user_id=user_id)
        .exclude(visitor_id="")
        .values_list("visitor_id", flat=True)
        .distinct()
    )


def forget(user_id: int | None = None, visitor_id: str | None = None) -> Counter:
    """Delete every personal row of a user (and the visitor ids they used) or of one
    anonymous visitor, and their cached recommendations; returns counts per model."""
    if user_id is None and not visitor_id:
        raise ValueError("Name a user or a visitor.")
    visitors = visitor_ids_of(user_id) if user_id is not None else set()
    if visitor_id:
        visitors.add(visitor_id)
    removed: Counter = Counter()
    with transaction.atomic():
        for model in personal_models():
            q = _filter(model, user_id, visitors)
            if q is not None:
                count, _ = model._default_manager.filter(q).delete()
                if count:
                    removed[model._meta.label] += count
    keys = [cache_keys.visitor(None, v) for v in visitors]
    if user_id is not None:
        keys.append(cache_keys.visitor(user_id, None))
    cache.delete_many(keys)
    removed["cached lists"] += len(keys)
    return removed


def export(user_id: int | None = None, visitor_id: str | None = None) -> dict[str, Any]:
    """Everything this app stores about a shopper, as JSON-ready data."""
    visitors = visitor_ids_of(user_id) if user_id is not None else set()
    if visitor_id:
        visitors.add(visitor_id)
    data: dict[str, Any] = {"user_id": user_id, "visitor_ids": sorted(visitors)}
    for model in personal_models():
        q = _filter(model, user_id, visitors)
        if q is None:
            continue
        fields = [f.attname for f in model._meta.concrete_fields]
        rows = list(model._default_manager.filter(q).order_by("pk").values(*fields))
        data[model._meta.label] = [
            {
                k: (
                    v.isoformat()
                    if hasattr(v, "isoformat")
                    else str(v)
                    if v is not None and not isinstance(v, int | float | str | bool | list | dict)
                    else v
                )
                for k, v in row.items()
            }
            for row in rows
        ]
    return data
