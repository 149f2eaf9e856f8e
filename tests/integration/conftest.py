import pytest


@pytest.fixture(autouse=True)
def _no_impressions_from_other_tests():
    """Impressions wait in a per-process batch (see recommendations.impressions): each test
    starts and ends without rows another test logged."""
    from recommendations import impressions

    impressions.discard()
    yield
    impressions.discard()
