"""Round trips through a real Celery worker over a real broker (.ci/run starts both)."""

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from recommendations.learning.tasks import prune_interactions, queue_training
from recommendations.models import Interaction, ModelVersion, RelatedItem
from shop.celery import app
from tests import factories

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    if os.environ.get("RECOMMENDATIONS_TEST_WORKER") != "1":
        pytest.skip(
            "needs a running Celery worker: .ci/run starts one, with RECOMMENDATIONS_TEST_WORKER=1"
        )
    assert settings.CELERY_BROKER_URL and not settings.CELERY_TASK_ALWAYS_EAGER
    replies = app.control.ping(timeout=5)
    assert replies, "RECOMMENDATIONS_TEST_WORKER=1 but no worker answers on the broker"
    yield replies
    # A test ends when its assertions hold, but the tasks it started may still run (a
    # training queues its similarity scoring): the database is flushed after this, and a
    # flush under a running task deadlocks. Wait until the worker has nothing to do.
    assert _wait_for(_worker_idle, timeout=180), "the worker was still busy after the test"


def _worker_idle() -> bool:
    """Nothing waiting in the broker's queues and nothing held or running on a worker."""
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in ("recommendations", "recommendations.train"):
            try:
                if channel.queue_declare(queue, passive=True).message_count:
                    return False
            except connection.channel_errors:  # Redis drops an empty queue's key: "no queue"
                pass
    inspect = app.control.inspect(timeout=2)
    held = [inspect.active(), inspect.reserved(), inspect.scheduled()]
    return all(tasks is not None and not any(tasks.values()) for tasks in held)


def test_prune_task_round_trips_through_the_worker(worker):
    item = factories.product()
    old = Interaction.objects.create(
        item=item, visitor_id="v", event="view", created_at=timezone.now() - timedelta(days=40)
    )
    Interaction.objects.create(item=item, visitor_id="v", event="view")
    result = prune_interactions.delay(30)
    assert result.get(timeout=60) == 1
    assert not Interaction.objects.filter(pk=old.pk).exists()
    assert Interaction.objects.count() == 1


FAST_VAE = {"epochs": 50, "hidden": 64, "latent": 16, "batch_size": 64}


def _wait_for(predicate, timeout=240, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _finished(*versions):
    done = ("succeeded", "failed")
    return lambda: all(ModelVersion.objects.get(pk=v.pk).status in done for v in versions)


def test_training_round_trips_through_the_worker_and_activates(worker):
    factories.clustered_log()
    version = queue_training(hyperparameters=FAST_VAE)
    assert _wait_for(_finished(version)), "the worker did not finish the training in time"
    assert _wait_for(
        lambda: ModelVersion.objects.filter(pk=version.pk, is_active=True).exists(), 120
    )
    version.refresh_from_db()
    assert version.status == "succeeded" and version.task_id
    assert RelatedItem.objects.filter(version=version, kind="similar").exists()
    assert RelatedItem.objects.filter(version=version, kind="bought_together").exists()


def test_two_trainings_queued_at_once_run_one_after_the_other(worker):
    factories.clustered_log()
    first = queue_training(hyperparameters=FAST_VAE)
    second = queue_training(hyperparameters=FAST_VAE)
    assert _wait_for(_finished(first, second), timeout=400)
    a, b = sorted(
        ModelVersion.objects.filter(pk__in=[first.pk, second.pk]), key=lambda v: v.started_at
    )
    assert a.status == b.status == "succeeded", (a.error, b.error)
    assert a.finished_at <= b.started_at, "the two trainings overlapped"


def test_a_failed_training_on_the_worker_keeps_the_active_version(worker):
    factories.clustered_log()
    good = queue_training(hyperparameters=FAST_VAE)
    assert _wait_for(lambda: ModelVersion.objects.filter(pk=good.pk, is_active=True).exists())
    bad = queue_training(hyperparameters={"no_such_parameter": 1})
    assert _wait_for(_finished(bad))
    bad.refresh_from_db()
    assert bad.status == "failed" and "no_such_parameter" in bad.error
    assert ModelVersion.objects.get(is_active=True).pk == good.pk
