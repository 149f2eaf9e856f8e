"""System checks that catch the two silent failures of an Oscar install."""

from celery import current_app
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings


def _ids() -> set[str]:
    return {message.id for message in run_checks()}


def test_the_default_adapter_on_oscar_products_is_reported():
    """Oscar's Product has no is_active / stock fields: the default adapter would serve
    unpublished and sold-out products."""
    assert "recommendations.W002" not in _ids()  # the Oscar adapter knows
    default = {"ADAPTER": "recommendations.adapters.DefaultAdapter"}
    with override_settings(RECOMMENDATIONS=default):
        assert "recommendations.W002" in _ids()


def test_a_shop_without_celery_settings_needs_no_warning():
    """No Celery app, no broker: tasks run in process ("auto"), nothing to warn about;
    told to send them anyway, W003 says they would go nowhere."""
    assert current_app.conf.broker_url is None and not current_app.conf.task_always_eager
    assert "recommendations.W003" not in _ids()
    with override_settings(RECOMMENDATIONS={**settings.RECOMMENDATIONS, "TASKS_IN_PROCESS": False}):
        assert "recommendations.W003" in _ids()
