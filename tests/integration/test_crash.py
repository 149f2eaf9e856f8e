"""A training worker killed with SIGKILL: its run is failed on the next start (the lock
expired), the active version keeps serving, and the next training succeeds."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from recommendations import serving
from recommendations.learning.tasks import TRAIN_LOCK, queue_training
from recommendations.models import ModelVersion, TaskLock
from recommendations.serving import pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs a database a second process can open: PostgreSQL (.ci/run)")


def test_sigkill_mid_training(postgres):
    settings_fast = {"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}}
    with override_settings(RECOMMENDATIONS=settings_fast):
        items = factories.clustered_log()
        live = factories.trained_version()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.crash_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    env.pop("CELERY_BROKER_URL", None)  # train in that process, eagerly
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "recommendations_train", "--algorithm", "vae"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        crashed = None
        while time.monotonic() < deadline and crashed is None:
            crashed = ModelVersion.objects.filter(status="running").exclude(pk=live.pk).first()
            time.sleep(0.2)
        assert crashed is not None, "the training never started"
        time.sleep(2)  # well inside the epochs
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    crashed.refresh_from_db()
    assert crashed.status == "running"  # nobody could say otherwise: the process is gone
    assert TaskLock.objects.get(name=TRAIN_LOCK).holder  # and it still holds the lock

    pool.active_model.clear()
    assert serving.related_to(items[0]).version_id == live.pk  # still serving

    time.sleep(3.5)  # the lease (LOCK_TTL=3 s in that process) runs out
    with override_settings(RECOMMENDATIONS=settings_fast):
        fresh = queue_training(algorithm="ease", hyperparameters={"l2": 10.0}, force_activate=True)
    crashed.refresh_from_db()
    fresh.refresh_from_db()
    assert crashed.status == "failed" and "lock expired" in crashed.error
    assert fresh.status == "succeeded" and fresh.is_active
