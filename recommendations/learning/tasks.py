"""Celery tasks. They take ids, not objects, lock what must not run twice, and retry only
transient errors (a lost database connection), with backoff.

``train`` goes to the ``recommendations.train`` queue (GPU workers); the rest to
``recommendations`` (see ``CELERY_TASK_ROUTES`` in the README).

The app starts its tasks with :func:`dispatch` only: a shop without a Celery broker (no
``CELERY_BROKER_URL``, or no Celery app at all) runs them in the calling process instead
of sending them to Celery's default ``amqp://localhost``, where nothing listens
(``RECOMMENDATIONS["TASKS_IN_PROCESS"]``). A follow-up that cannot be started never turns
a trained version into a failed one: the version stays *succeeded*, not active, and its
``error`` says what did not happen.
"""

from __future__ import annotations

import logging
import socket
import traceback
from datetime import timedelta
from typing import Any

from celery import current_app, shared_task
from celery.exceptions import MaxRetriesExceededError
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ..conf import app_settings
from ..models import Interaction, ModelVersion
from .locks import Lease, LockBusy

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)
TRAIN_LOCK = "recommendations.train"
#: How many times a queued training retries while another holds the lock (with the default
#: RETRY_COUNTDOWN of 15 s: 24 hours), after which it is marked failed, not left queued.
LOCK_WAIT_RETRIES = 5760
#: How a succeeded version's ``error`` starts when its related items were not scored.
FOLLOW_UP_NOTE = "Trained, but"


class NotQueued(Exception):
    """A task could not be handed to Celery's broker (it is down, or none is listening)."""


def broker_configured(app: Any = None) -> bool:
    """Whether the Celery app names a broker (``CELERY_BROKER_URL``, ``broker_url``): one
    that names none would send tasks to Celery's default, ``amqp://guest@localhost//``."""
    conf = (app or current_app).conf
    return bool(conf.broker_url or conf.broker_write_url)


def runs_in_process(app: Any = None) -> bool:
    """Whether the app's tasks run in this process rather than on a worker: always with
    ``TASKS_IN_PROCESS = True``, never with False; with "auto" (the default) when Celery
    runs tasks eagerly or has no broker configured."""
    mode = app_settings.TASKS_IN_PROCESS
    if isinstance(mode, bool):
        return mode
    app = app or current_app
    return bool(app.conf.task_always_eager) or not broker_configured(app)


def dispatch(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Start ``task``: run it here (see :func:`runs_in_process`; its errors are raised here)
    or send it to the broker (:class:`NotQueued` when that fails). The one way the app
    starts its own tasks."""
    if runs_in_process(task.app):
        return task.apply(args=args, kwargs=kwargs, throw=True)
    if task.app.conf.task_always_eager:  # TASKS_IN_PROCESS = False, but Celery runs it here
        return task.delay(*args, **kwargs)
    try:
        return task.delay(*args, **kwargs)
    except Exception as exc:
        raise NotQueued(f"{task.name} could not be sent to Celery's broker: {exc}") from exc


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
    transaction.on_commit(lambda: _start_training(version.pk))
    return version


def _start_training(version_id: int) -> None:
    """Train now (no broker) or queue it; a version that could not be queued is failed,
    so that no version waits forever for a task that was never sent."""
    try:
        dispatch(train, version_id)
    except NotQueued as exc:
        ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.QUEUED).update(
            status=ModelVersion.Status.FAILED,
            finished_at=timezone.now(),
            error=f"Not trained: {exc}",
        )
        logger.error("training v%s was not queued: %s", version_id, exc)
        raise


@shared_task(
    bind=True,
    name="recommendations.tasks.train",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=5,
)
def train(self, version_id: int, score: bool = True) -> dict:
    """Train a queued version; on success, score its related items (which activates it),
    unless ``score`` is False (the train command scores them itself)."""
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
        # Another training holds the lock: wait our turn. (``max_retries=None`` here would
        # mean the task's default, 5: about a minute, shorter than a training.)
        try:
            raise self.retry(countdown=cfg["RETRY_COUNTDOWN"], max_retries=LOCK_WAIT_RETRIES)
        except MaxRetriesExceededError:
            waited = LOCK_WAIT_RETRIES * cfg["RETRY_COUNTDOWN"]
            ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.QUEUED).update(
                status=ModelVersion.Status.FAILED,
                finished_at=timezone.now(),
                error=f"Not trained: another training held the lock for {waited:.0f} s.",
            )
            raise
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
    result = {"version": version_id, "status": version.status, "gate_passed": version.gate_passed}
    if score:
        result["related"] = _score_after_training(version_id)
    return result


def _score_after_training(version_id: int) -> str:
    """Start the scoring of a trained version's related items. A failure to start it (or,
    in process, of the scoring itself) is written on the version, which stays succeeded:
    its model is sound, it is only not live yet."""
    try:
        dispatch(score_similarity, version_id)
    except NotQueued as exc:
        what = f"scoring its related items was not queued ({exc})"
    except Exception as exc:
        what = f"scoring its related items failed ({type(exc).__name__}: {exc})"
    else:
        return "scored" if runs_in_process(score_similarity.app) else "queued"
    return note_unscored(version_id, what)


def note_unscored(version_id: int, what: str) -> str:
    """Write on a trained version why its related items were not scored; returns the note."""
    note = (
        f"{FOLLOW_UP_NOTE} {what}. The version is kept, not active: recompute its "
        "similarities (the admin's action, or manage.py recommendations_similarity "
        f"--model-version {version_id}) and activate it."
    )
    ModelVersion.objects.filter(pk=version_id).update(error=note)
    logger.error("v%s: %s", version_id, note)
    return note


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
    new_items = _place_new_items(version)
    if version.error.startswith(FOLLOW_UP_NOTE):  # scored now: the note is out of date
        ModelVersion.objects.filter(pk=version_id).update(error="")
    should_activate = version.activate_when_ready if activate is None else activate
    activated = False
    if (
        should_activate
        and not version.is_active
        and (version.gate_passed or version.force_activate)
    ):
        activate_version(version, reason="(passed the gate)" if version.gate_passed else "(forced)")
        activated = True
    return {"version": version_id, "activated": activated, **report.__dict__,
            "new_items_placed": new_items}


def _place_new_items(version: ModelVersion) -> int | None:
    """Items the version does not know, placed by content (learning/new_items.py); a
    failure is logged and leaves them to content neighbours, never blocks activation."""
    from .new_items import place_new_items

    try:
        return place_new_items(version)
    except Exception:
        logger.exception("v%s: placing new items failed", version.pk)
        return None


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
