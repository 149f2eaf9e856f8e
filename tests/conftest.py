import pytest


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (local memory or Redis)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _celery_in_process(request):
    """Tasks run in the test's own process, except in tests marked ``worker``.

    With ``CELERY_BROKER_URL`` set (the PostgreSQL pass of .ci/run) a real worker is up,
    and only the tests written for it should hand it tasks: the rest check what a task
    did right after calling it, inside their own database transaction.
    """
    from shop.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = request.node.get_closest_marker("worker") is None
    yield
    app.conf.task_always_eager = previous
