"""A shop without a Celery broker: the app's tasks run in process, and a trained version is
never reported (or stored) as failed because a follow-up could not be started.

"Unreachable" is a real broker URL where nothing listens (port 1 of this machine): every
send to it fails with ``Connection refused``, as it did for a shop that never set one.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from recommendations.learning.tasks import (
    FOLLOW_UP_NOTE,
    NotQueued,
    queue_training,
    runs_in_process,
    score_similarity,
    train,
)
from recommendations.models import ModelVersion, RelatedItem
from shop.celery import app
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "amqp://guest@127.0.0.1:1//"
FAST = factories.TRAINED_SETTINGS


@pytest.fixture
def celery(monkeypatch):
    """The shop's Celery app as a shop configures it, not eager (restored afterwards)."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery reads it first
    before = (app.conf.task_always_eager, app.conf.broker_url)
    app.conf.task_always_eager = False
    # Connections are pooled per app from the broker URL of their first use (an eager
    # .delay() elsewhere opens one too): drop them, so this test's URL is the one used.
    forget_connections()
    yield app.conf
    app.conf.task_always_eager, app.conf.broker_url = before
    forget_connections()


def forget_connections() -> None:
    app._pool = None  # what Celery itself does after a fork
    app.amqp._producer_pool = None


@pytest.fixture
def log():
    with override_settings(RECOMMENDATIONS=FAST):
        yield factories.clustered_log()


def test_with_no_broker_configured_training_runs_in_process_and_goes_live(celery, log):
    celery.broker_url = ""  # what a shop without a broker has
    assert runs_in_process(app)
    version = queue_training(algorithm="ease", force_activate=True)
    version.refresh_from_db()
    assert version.status == "succeeded" and version.error == ""
    assert version.is_active
    assert RelatedItem.objects.filter(version=version, kind="similar").exists()


def test_with_a_broker_configured_tasks_are_sent_to_it(celery, log):
    celery.broker_url = UNREACHABLE
    assert not runs_in_process(app)
    with pytest.raises(NotQueued, match="Connection refused"):
        queue_training(algorithm="ease")
    version = ModelVersion.objects.latest()
    # Never sent: not left queued forever, and nothing pretends it trained.
    assert version.status == "failed" and version.error.startswith("Not trained:")
    with override_settings(RECOMMENDATIONS={**FAST, "TASKS_IN_PROCESS": True}):
        assert runs_in_process(app)
        forced = queue_training(algorithm="ease", force_activate=True)
    forced.refresh_from_db()
    assert forced.status == "succeeded" and forced.is_active


def test_the_train_command_finishes_everything_itself_with_an_unreachable_broker(
    celery, log, capsys
):
    celery.broker_url = UNREACHABLE
    call_command("recommendations_train", "--algorithm", "ease", "--force-activate")
    out = capsys.readouterr().out
    version = ModelVersion.objects.latest()
    assert version.status == "succeeded" and version.error == ""
    assert version.is_active
    assert RelatedItem.objects.filter(version=version).count() > 0
    assert f"v{version.pk} succeeded" in out and ": active." in out


def test_a_failed_enqueue_leaves_a_trained_version_succeeded(celery, log):
    """A worker trained the version; the broker is gone when it hands on the scoring."""
    celery.broker_url = UNREACHABLE
    version = ModelVersion.objects.create(algorithm="ease", force_activate=True)
    result = train.apply(args=(version.pk,), throw=True).get()
    version.refresh_from_db()
    assert version.status == "succeeded" and not version.is_active
    assert version.error.startswith(FOLLOW_UP_NOTE)
    assert "not queued" in version.error and "Connection refused" in version.error
    assert f"--model-version {version.pk}" in version.error
    assert result["status"] == "succeeded" and result["related"] == version.error
    # What the note says to do works, and the note goes once it is done.
    score_similarity.apply(args=(version.pk,), throw=True)
    version.refresh_from_db()
    assert version.is_active and version.error == ""


def test_the_train_command_reports_a_failed_scoring_as_such(celery, log):
    celery.broker_url = ""
    broken = {**FAST, "RELATED_ITEMS_K": "five"}  # trains fine, cannot score
    with override_settings(RECOMMENDATIONS=broken), pytest.raises(CommandError) as error:
        call_command("recommendations_train", "--algorithm", "ease", "--force-activate")
    version = ModelVersion.objects.latest()
    message = str(error.value)
    assert message.startswith(f"v{version.pk} succeeded. {FOLLOW_UP_NOTE} scoring")
    assert "failed" not in message.split(".")[0]
    assert version.status == "succeeded" and not version.is_active
    assert version.error.startswith(FOLLOW_UP_NOTE)


def test_async_without_a_broker_trains_here(celery, log, capsys):
    celery.broker_url = None  # no Celery configuration at all
    call_command("recommendations_train", "--async", "--algorithm", "ease", "--force-activate")
    out = capsys.readouterr().out
    assert "No Celery broker is configured" in out
    assert ModelVersion.objects.latest().is_active


def test_w003_warns_only_when_tasks_must_go_to_a_missing_broker(celery):
    def ids():
        return {m.id for m in run_checks()}

    celery.broker_url = ""
    assert "recommendations.W003" not in ids()  # "auto": runs in process
    with override_settings(RECOMMENDATIONS={"TASKS_IN_PROCESS": False}):
        assert "recommendations.W003" in ids()
        celery.broker_url = UNREACHABLE
        assert "recommendations.W003" not in ids()
    with override_settings(RECOMMENDATIONS={"TASKS_IN_PROCESS": "sometimes"}):
        assert "recommendations.E005" in ids()


def test_the_command_exits_0_in_a_shop_whose_broker_is_down(tmp_path):
    """The whole command as an operator runs it: its own process, the shop's settings with
    ``CELERY_BROKER_URL`` pointing where nothing listens (so not eager), a SQLite file."""
    db = tmp_path / "shop.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{db}",
        "CELERY_BROKER_URL": UNREACHABLE,
        "CELERY_RESULT_BACKEND": "",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert manage("migrate", "--noinput", "-v", "0").returncode == 0
    made = manage("shell", "-c", "from tests import factories; factories.clustered_log()")
    assert made.returncode == 0, made.stderr
    run = manage("recommendations_train", "--algorithm", "ease", "--force-activate")
    assert run.returncode == 0, run.stderr
    assert "Connection refused" not in run.stdout + run.stderr
    with sqlite3.connect(db) as conn:
        status, active, error = conn.execute(
            "SELECT status, is_active, error FROM recommendations_modelversion"
        ).fetchone()
        related = conn.execute("SELECT COUNT(*) FROM recommendations_relateditem").fetchone()[0]
    assert (status, active, error) == ("succeeded", 1, "")
    assert related > 0
