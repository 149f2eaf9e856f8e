"""Every response that shows one shopper's data is private to caches and varies on who asks.

A shared cache (a CDN, a proxy) that kept one shopper's "for you" list, their insights or a
page with their carousels would hand it to the next visitor.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from recommendations import tracking
from recommendations.models import CustomerInsight
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db


def assert_personal(response) -> None:
    assert response.status_code == 200, response.status_code
    assert "private" in response.get("Cache-Control", ""), response.get("Cache-Control")
    vary = response.get("Vary", "")
    assert "Cookie" in vary, vary


def assert_api_personal(response) -> None:
    assert_personal(response)
    assert {"Authorization", "X-Visitor-Id"} <= {v.strip() for v in response["Vary"].split(",")}


@pytest.fixture
def api():
    client = APIClient()
    client.defaults.update(BROWSER)
    return client


@pytest.fixture
def catalogue():
    items = [factories.product() for _ in range(4)]
    tracking.record("purchase", items[0], visitor_id="someone")
    return items


@pytest.mark.parametrize("url", ["/api/recommendations/for-me/", "/api/recommendations/buy-again/"])
def test_the_shoppers_own_api_lists(api, catalogue, url):
    assert_api_personal(api.get(url, HTTP_X_VISITOR_ID=factories.visitor_token("phone-1234567")))
    assert_api_personal(api.get(url))  # a browser: the cookie visitor
    api.force_authenticate(factories.user())
    assert_api_personal(api.get(url))


def test_a_users_list_for_staff(api, catalogue):
    api.force_authenticate(factories.log_reader())
    assert_api_personal(api.get(f"/api/recommendations/users/{factories.user().pk}/"))


def test_customer_insights(api):
    customer = factories.user()
    CustomerInsight.objects.create(
        user=customer, p_alive=0.5, churn_risk=0.5, expected_orders=1.0, expected_spend=10.0,
        horizon_days=90, orders=2, recency_days=30.0, model="bgnbd", scored_at=timezone.now(),
    )
    reader = factories.user(is_staff=True)
    reader.user_permissions.add(
        Permission.objects.get(
            codename="view_customerinsight", content_type__app_label="recommendations"
        )
    )
    api.force_authenticate(reader)
    assert_api_personal(api.get(f"/api/recommendations/customers/{customer.pk}/insights/"))


def test_shared_lists_stay_cacheable(api, catalogue):
    related = f"/api/recommendations/items/{catalogue[0].pk}/related/"
    for url in ("/api/recommendations/popular/", related):
        assert "private" not in api.get(url).get("Cache-Control", "")


def test_pages_with_personal_carousels(client, catalogue):
    client.defaults.update(BROWSER)
    assert_personal(client.get("/"))  # for you, buy again
    assert_personal(client.get(f"/products/{catalogue[1].pk}/"))  # recently viewed
    assert_personal(client.get("/cart/"))  # empty: "for you"


def test_the_cart_page_with_lines_is_private(client, catalogue):
    """Its "complete your order" carousel is built from what is in this shopper's cart."""
    client.defaults.update(BROWSER)
    client.post(f"/cart/add/{catalogue[1].pk}/", {"quantity": 1})
    assert_personal(client.get("/cart/"))


def test_the_order_pages_are_private(client, catalogue):
    shopper = factories.user()
    client.force_login(shopper)
    client.defaults.update(BROWSER)
    assert_personal(client.get("/orders/"))  # buy again
    from shop.models import Order

    order = Order.objects.create(
        number="P1", user=shopper, created_at=timezone.now(), total=Decimal("1.00")
    )
    assert_personal(client.get(f"/orders/{order.number}/"))
