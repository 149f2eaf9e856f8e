import os
import shutil
import tempfile

import pytest


def pytest_configure(config):
    """Files the suite writes (trained models, uploads) go to a temporary folder that is
    removed at the end, never to the shop's own ``var/media``. ``.ci/run`` sets
    ``DJANGO_MEDIA_ROOT`` itself, so its Celery worker writes to the same place."""
    if not os.environ.get("DJANGO_MEDIA_ROOT"):
        path = tempfile.mkdtemp(prefix="recommendations-test-media-")
        os.environ["DJANGO_MEDIA_ROOT"] = path
        config.add_cleanup(lambda: shutil.rmtree(path, ignore_errors=True))
    # Served models are cached in a folder of the temporary directory (SERVING_CACHE_DIR
    # unset): this session's, and its subprocesses', go to a folder removed at the end.
    scratch = tempfile.mkdtemp(prefix="recommendations-test-tmp-")
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    config.add_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))


@pytest.fixture(autouse=True, scope="session")
def _temporary_media_root():
    """Django's settings may be loaded before ``pytest_configure`` runs: point them at the
    temporary folder too (subprocesses and the CI worker read the environment)."""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=os.environ["DJANGO_MEDIA_ROOT"]):
        yield


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


# tests/oscar/ is a django-oscar shop with settings of its own: `make test-oscar` runs it in
# .venv-oscar; this suite (the demo shop's settings, no Oscar installed) leaves it out, and
# tests/clients/ (generated API clients, `make test-clients`, its own generators) too.
collect_ignore = ["oscar", "clients"]
