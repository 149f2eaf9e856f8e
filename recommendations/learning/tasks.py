"""Celery tasks. They take ids, not objects, lock what must not run twice, and retry only
transient errors (a lost database connection), with backoff.

``train`` goes to the ``recommendations.train`` queue (GPU workers); the rest to
``recommendations`` (see ``CELERY_TASK_ROUTES`` in the README).
"""

from __future__ import annotations

import logging
import socket
import traceback
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ..conf import app_settings
from ..models import Interaction, ModelVersion
from .locks import Lease, LockBusy

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)
TRAIN_LOCK = "recommendations.train"


def queue_training(
    *,
    algorithm: str | None = None,
    hyperparameters: dict | None = None,
    force_activate: bool = False,
    activate: bool = True,
) -> ModelVersion:
    """Create a queued version and send its training task once the row is committed."""
    version = ModelVersion.objects.create(
        algorithm=algorithm or app_settings.TRAINING["ALGORITHM"],
        hyperparameters=hyperparameters or {},
        force_activate=force_activate,
        activate_when_ready=activate,
    )
    transaction.on_commit(lambda: train.delay(version.pk))
    return version


@shared_task(
    bind=True,
    name="recommendations.tasks.train",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
)
def train(self, version_id: int) -> dict:
    """Train a queued version; on success, score its related items (which activates it)."""
    from .training import train_version

    version = ModelVersion.objects.get(pk=version_id)
    if version.status in (
        ModelVersion.Status.SUCCEEDED,
        ModelVersion.Status.FAILED,
        ModelVersion.Status.BROKEN,
    ):
        return {"version": version_id, "status": version.status, "skipped": "already done"}
    cfg = app_settings.TRAINING
    lease = Lease(TRAIN_LOCK, cfg["LOCK_TTL"], holder=f"{socket.gethostname()}:{version_id}")
    if not lease.acquire():
        if self.request.is_eager:  # no worker to retry later: say so instead of spinning
            raise LockBusy(TRAIN_LOCK)
        # Another training holds the lock: wait our turn (forever is fine: it expires).
        raise self.retry(countdown=cfg["RETRY_COUNTDOWN"], max_retries=None)
    try:
        _fail_abandoned_runs(exclude=version_id)
        ModelVersion.objects.filter(pk=version_id).update(
            status=ModelVersion.Status.RUNNING,
            started_at=timezone.now(),
            error="",
            task_id=self.request.id or "",
        )
        version.refresh_from_db()
        try:
            train_version(version, heartbeat=lease.hold)
        except TRANSIENT:
            ModelVersion.objects.filter(pk=version_id).update(status=ModelVersion.Status.QUEUED)
            raise
        except Exception as exc:
            ModelVersion.objects.filter(pk=version_id).update(
                status=ModelVersion.Status.FAILED,
                finished_at=timezone.now(),
                error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}",
            )
            logger.exception("training v%s failed", version_id)
            raise
        version.status = ModelVersion.Status.SUCCEEDED
        version.finished_at = timezone.now()
        version.save()
    finally:
        lease.release()
    score_similarity.delay(version_id)
    return {"version": version_id, "status": version.status, "gate_passed": version.gate_passed}


def _fail_abandoned_runs(exclude: int) -> None:
    """Runs left ``running`` by a worker that died: we hold the lock, so nobody runs them."""
    ModelVersion.objects.filter(status=ModelVersion.Status.RUNNING).exclude(pk=exclude).update(
        status=ModelVersion.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker stopped during training (its lock expired).",
    )


@shared_task(
    name="recommendations.tasks.score_similarity",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
)
def score_similarity(version_id: int, activate: bool | None = None) -> dict:
    """Write the version's related items; then activate it if it is due and passed the gate."""
    from .related import compute_related
    from .versions import activate as activate_version

    version = ModelVersion.objects.get(pk=version_id)
    if version.status != ModelVersion.Status.SUCCEEDED:
        raise ValueError(f"{version} has not succeeded: no model to score similarity with")
    report = compute_related(version)
    should_activate = version.activate_when_ready if activate is None else activate
    activated = False
    if (
        should_activate
        and not version.is_active
        and (version.gate_passed or version.force_activate)
    ):
        activate_version(version, reason="(passed the gate)" if version.gate_passed else "(forced)")
        activated = True
    return {"version": version_id, "activated": activated, **report.__dict__}


@shared_task(
    name="recommendations.tasks.prune_interactions",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def prune_interactions(retention_days: int | None = None) -> int:
    """Delete events older than the retention period; returns how many were deleted."""
    days = app_settings.RETENTION_DAYS if retention_days is None else retention_days
    if days is None:
        return 0
    from ..models import Impression

    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = Interaction.objects.filter(created_at__lt=cutoff).delete()
    Impression.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@shared_task(
    name="recommendations.tasks.flush_buffer",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def flush_buffer() -> int:
    """Write the Redis event buffer to the log in bulk (a no-op when buffering is off)."""
    from ..tracking import buffer

    return buffer.flush() if buffer.enabled() else 0


@shared_task(
    name="recommendations.tasks.refresh",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def refresh() -> dict:
    """Between trainings: bought together, new items' similar lists, popular and trending
    from the events since the last run (learning/refresh.py); no retraining."""
    from .refresh import refresh as run

    return run().as_dict()


@shared_task(name="recommendations.tasks.train_nightly")
def train_nightly() -> int:
    """The beat entry point: queue one training with the settings' defaults."""
    return queue_training().pk


@shared_task(name="recommendations.tasks.score_customers")
def score_customers() -> dict:
    """Nightly: every customer's churn risk and expected spend (learning/insights.py)."""
    from .insights import NotEnoughCustomers
    from .insights import score_customers as score

    try:
        report = score()
    except NotEnoughCustomers as exc:
        logger.warning("customer insights not scored: %s", exc)
        return {"scored": 0, "reason": str(exc)}
    return {"scored": report.customers, "model": report.model}
