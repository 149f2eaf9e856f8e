import pytest
from django.test import override_settings

from tests import factories


@pytest.fixture(autouse=True)
def _no_impressions_from_other_tests():
    """Impressions wait in a per-process batch (see recommendations.impressions): each test
    starts and ends without rows another test logged."""
    from recommendations.serving import impressions

    impressions.discard()
    yield
    impressions.discard()


@pytest.fixture
def shop():
    """A clustered interaction log and the version trained on it, active and loaded fresh."""
    from recommendations.serving import pool

    with override_settings(RECOMMENDATIONS=factories.TRAINED_SETTINGS):
        items = factories.clustered_log()
        version = factories.trained_version()
        pool.active_model.clear()
        yield items, version
