"""Celery tasks. They take ids, not objects, and retry only transient errors."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from .conf import app_settings
from .models import Interaction


@shared_task(
    name="recommendations.tasks.prune_interactions",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def prune_interactions(retention_days: int | None = None) -> int:
    """Delete events older than the retention period; returns how many were deleted."""
    days = app_settings.RETENTION_DAYS if retention_days is None else retention_days
    if days is None:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Interaction.objects.filter(created_at__lt=cutoff).delete()
    return deleted
