"""The suite's own fixtures (a temporary media folder, a fresh cache, Celery in process)."""

from tests.conftest import (  # noqa: F401
    _celery_in_process,
    _fresh_cache,
    _temporary_media_root,
    pytest_configure,
)
