"""System checks that catch the two silent failures of an Oscar install."""

from django.core.checks import run_checks
from django.test import override_settings

from .celery import app


def _ids() -> set[str]:
    return {message.id for message in run_checks()}


def test_the_default_adapter_on_oscar_products_is_reported():
    """Oscar's Product has no is_active / stock fields: the default adapter would serve
    unpublished and sold-out products."""
    assert "recommendations.W002" not in _ids()  # the Oscar adapter knows
    default = {"ADAPTER": "recommendations.adapters.DefaultAdapter"}
    with override_settings(RECOMMENDATIONS=default):
        assert "recommendations.W002" in _ids()


def test_celery_without_a_broker_must_run_eagerly():
    before = (app.conf.task_always_eager, app.conf.broker_url)
    try:
        assert "recommendations.W003" not in _ids()  # eager, as the settings say
        app.conf.task_always_eager = False
        assert "recommendations.W003" in _ids()  # tasks would go to amqp://localhost
        app.conf.broker_url = "redis://127.0.0.1:6379/0"
        assert "recommendations.W003" not in _ids()
    finally:
        app.conf.task_always_eager, app.conf.broker_url = before
