"""The click beacon refuses posts another site makes a shopper's browser send.

It takes no CSRF token (``sendBeacon`` cannot send one), so the browser's own word on where
the request came from decides: ``Sec-Fetch-Site``, else ``Origin``, else ``Referer``. A
request without any of them (old clients) is still recorded.
"""

import pytest
from django.test import override_settings

from recommendations.models import Interaction
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)
CLICK = "/recommendations/click/"


@pytest.fixture
def item():
    return factories.product()


def post(client, item, **headers):
    return client.post(CLICK, {"item": item.pk, "source": "related:v1"}, **BROWSER, **headers)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "http://testserver"},
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_ORIGIN": "null"},
        {"HTTP_REFERER": "https://evil.example/page"},
        {"HTTP_REFERER": "http://testserver.evil.example/"},
        {"HTTP_ORIGIN": "http://testserver:8080"},  # another port is another origin's host
    ],
)
def test_a_cross_site_click_is_refused_and_not_recorded(client, item, headers):
    response = post(client, item, **headers)
    assert response.status_code == 403
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},  # an old client: no header at all
        {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://testserver"},
        {"HTTP_ORIGIN": "http://testserver"},
        {"HTTP_REFERER": "http://testserver/products/1/"},
        {"HTTP_SEC_FETCH_SITE": "same-origin"},
    ],
)
def test_a_same_origin_or_unlabelled_click_is_recorded(client, item, headers):
    assert post(client, item, **headers).status_code == 204
    assert Interaction.objects.get().event == "click"


@override_settings(CSRF_TRUSTED_ORIGINS=["https://www.example.com"])
def test_a_trusted_origin_may_post(client, item):
    assert post(client, item, HTTP_ORIGIN="https://www.example.com").status_code == 204
