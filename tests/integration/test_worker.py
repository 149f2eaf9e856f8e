"""Round trips through a real Celery worker over a real broker (.ci/run starts both)."""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from recommendations.models import Interaction
from recommendations.tasks import prune_interactions
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
    return replies


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
