"""A shopper's right to be forgotten and to a copy of their data (GDPR articles 15 and 17).

Personal rows are found generically: every model of this app with a ``user`` foreign key
and/or a ``visitor_id`` field (the interaction log, impressions, ...). Trained models
hold no per-user rows (only item weights and item ids), so nothing there needs erasing.

Rows never cross people. A user's rows are the ones with their ``user``, plus the anonymous
rows (no user) of the visitor ids merged into their account, unless another account's rows
carry that id too (a browser shared before ids were rotated at log-in and log-out: nobody can
say whose those anonymous rows are). A visitor's rows are the anonymous rows of that id
only: once a row has a user it is the account's. Events still waiting in the Redis buffer
are written first, so they are included.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db import transaction
from django.db.models import Model, Q

from .. import cache_keys
from ..models import Interaction, ShopperConsent
from . import buffer

logger = logging.getLogger(__name__)

#: Kept by :func:`forget` (still exported): the record of the shopper's objection, which is
#: what keeps them untracked afterwards. Deleting the account deletes it.
KEPT_ON_ERASURE: tuple[type[Model], ...] = (ShopperConsent,)


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
    """The user's rows, and the anonymous rows (no user) of ``visitor_ids``."""
    names = {f.name for f in model._meta.get_fields()}
    q = Q()
    if user_id is not None and "user" in names:
        q |= Q(user_id=user_id)
    if visitor_ids and "visitor_id" in names:
        anonymous = Q(visitor_id__in=visitor_ids)
        if "user" in names:
            anonymous &= Q(user__isnull=True)
        q |= anonymous
    return q or None


def visitor_ids_of(user_id: int) -> set[str]:
    """The anonymous ids merged into a user's account: the ids on their rows that no other
    account's rows carry."""
    own = set(
        Interaction.objects.filter(user_id=user_id)
        .exclude(visitor_id="")
        .values_list("visitor_id", flat=True)
        .distinct()
    )
    if not own:
        return own
    shared = (
        Interaction.objects.filter(visitor_id__in=own, user__isnull=False)
        .exclude(user_id=user_id)
        .values_list("visitor_id", flat=True)
        .distinct()
    )
    return own - set(shared)


def _write_buffered(required: bool) -> None:
    """Events still waiting in the Redis buffer go to the database first, so the queries
    see them. ``required=False`` (an account being deleted) carries on without Redis: the
    flush drops a deleted account's events."""
    try:
        buffer.write_pending()
    except Exception:
        if required:
            raise
        logger.warning("event buffer unreachable: its events are dropped at flush", exc_info=True)


def forget(
    user_id: int | None = None, visitor_id: str | None = None, *, buffer_required: bool = True
) -> Counter:
    """Delete every personal row of a user (and the anonymous history merged into their
    account) or of one anonymous visitor, and their cached recommendations; returns counts
    per model. Their consent choice is kept (:data:`KEPT_ON_ERASURE`)."""
    if user_id is None and not visitor_id:
        raise ValueError("Name a user or a visitor.")
    _write_buffered(buffer_required)
    visitors = visitor_ids_of(user_id) if user_id is not None else set()
    if visitor_id:
        visitors.add(visitor_id)
    removed: Counter = Counter()
    with transaction.atomic():
        for model in personal_models():
            if model in KEPT_ON_ERASURE:
                continue
            q = _filter(model, user_id, visitors)
            if q is not None:
                count, _ = model._default_manager.filter(q).delete()
                if count:
                    removed[model._meta.label] += count
    keys = [key(None, v) for v in visitors for key in (cache_keys.visitor, cache_keys.dismissed)]
    if user_id is not None:
        keys += [cache_keys.visitor(user_id, None), cache_keys.dismissed(user_id, None)]
    cache.delete_many(keys)
    removed["cached lists"] += len(keys)
    return removed


def export(user_id: int | None = None, visitor_id: str | None = None) -> dict[str, Any]:
    """Everything this app stores about a shopper, as JSON-ready data."""
    _write_buffered(True)
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
