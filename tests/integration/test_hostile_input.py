"""Hostile input: NUL characters (PostgreSQL refuses them in text), out-of-range ids and dates,
forged addresses, cookie-less scripts and off-site redirects. Each gets a clean answer."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import override_settings

from recommendations.models import Interaction
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def item():
    return factories.product(name="RED RETROSPOT MUG")


def test_nul_in_search_and_category_is_not_a_server_error(client, item):
    assert client.get("/products/", {"q": "mug\x00"}, **BROWSER).status_code == 200
    assert client.get("/products/", {"category": "mugs\x00"}, **BROWSER).status_code == 404


def test_nul_in_a_source_is_dropped_from_the_attribution(client, item):
    response = client.get(f"/products/{item.pk}/", {"src": "related:v1\x00"}, **BROWSER)
    assert response.status_code == 200
    click = client.post("/recommendations/click/", {"item": item.pk, "source": "x\x00y"}, **BROWSER)
    assert click.status_code == 400  # a clear error: "source must not contain NUL characters"
    sources = set(Interaction.objects.values_list("source", flat=True))
    assert sources and not any("\x00" in source for source in sources)


def test_sign_up_never_redirects_off_site(client):
    response = client.post(
        "/accounts/signup/?next=https://evil.example/phish",
        {"username": "newshopper", "password1": "a-Long-pass-7", "password2": "a-Long-pass-7"},
        **BROWSER,
    )
    assert get_user_model().objects.filter(username="newshopper").exists()
    assert response.status_code == 302 and "evil.example" not in response["Location"]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/recommendations/interaction/",
        "/admin/recommendations/modelversion/",
        "/admin/recommendations/merchandisingrule/",
        "/admin/shop/product/",
    ],
)
def test_nul_in_an_admin_search_is_not_a_server_error(client, item, url):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    assert client.get(url, {"q": "mug\x00"}).status_code in (200, 400)


def test_click_item_must_be_ascii_digits_in_range(client, item):
    for bad in ("\u00b2", "9" * 30, "-1", ""):
        response = client.post("/recommendations/click/", {"item": bad}, **BROWSER)
        assert response.status_code == 400, bad


def test_clicks_are_limited_per_address_even_without_a_cookie(item):
    from django.test import Client

    from recommendations.tracking.views import CLICKS_PER_MINUTE

    cache.clear()
    # A script that never keeps the visitor cookie gets a new visitor id on every request.
    codes = [
        Client().post("/recommendations/click/", {"item": item.pk}, **BROWSER).status_code
        for _ in range(CLICKS_PER_MINUTE + 1)
    ]
    assert codes[:CLICKS_PER_MINUTE] == [204] * CLICKS_PER_MINUTE and codes[-1] == 429


def test_a_forged_forwarded_for_does_not_escape_the_events_throttle(client, item):
    cache.clear()
    body = {
        "visitor_id": factories.visitor_token("phone-abcdefgh"),
        "events": [{"event": "view", "item": item.pk}],
    }
    with override_settings(RECOMMENDATIONS={**factories.TRAINED_SETTINGS, "EVENTS_RATE": "2/min"}):
        codes = [
            client.post(
                "/api/recommendations/events/",
                body,
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
                **BROWSER,
            ).status_code
            for n in range(3)
        ]
    assert codes == [201, 201, 429]


def test_list_reads_are_throttled_per_address(client, item):
    cache.clear()
    with override_settings(RECOMMENDATIONS={**factories.TRAINED_SETTINGS, "READS_RATE": "2/min"}):
        codes = [
            client.get("/api/recommendations/popular/", **BROWSER).status_code for _ in range(3)
        ]
    assert codes == [200, 200, 429]


def test_nul_in_an_order_number_is_a_404(client):
    client.force_login(factories.user())
    assert client.get("/orders/W1%00/", **BROWSER).status_code == 404


def test_a_session_cookie_with_an_escaped_nul_is_no_session(client, item):
    response = client.get("/", HTTP_COOKIE='sessionid="abcdefgh\\000ijklmnop"', **BROWSER)
    assert response.status_code == 200


@pytest.mark.parametrize("end", ["9999-12-31", "0001-01-01"])
def test_the_dashboard_refuses_far_dates_with_a_form_error(client, end):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    response = client.get("/admin/recommendations/onlinemetrics/", {"end": end, "days": "30"})
    assert response.status_code == 200
    assert b"Choose a day between" in response.content


def test_the_public_product_api_hides_deactivated_products(client):
    hidden = factories.product(is_active=False)
    assert client.get(f"/api/products/{hidden.pk}/", **BROWSER).status_code == 404


@pytest.mark.parametrize(
    ("url", "action"),
    [
        ("/admin/recommendations/modelversion/", "activate"),
        ("/admin/recommendations/merchandisingrule/", "switch_on"),
        ("/admin/recommendations/experiment/", "stop"),
        ("/admin/shop/product/", "delete_selected"),
    ],
)
@pytest.mark.parametrize("selection", ["abc", "9" * 30, "1\x00"])
def test_an_admin_action_on_a_hand_made_selection_is_refused(client, url, action, selection):
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "pw"))
    response = client.post(
        url, {"action": action, "_selected_action": [selection], "index": "0"}, follow=True
    )
    assert response.status_code == 200
    assert b"That selection is not a list of items." in response.content
