import pytest


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (local memory or Redis)."""
    from django.core.cache import cache

    cache.clear()
    yield
