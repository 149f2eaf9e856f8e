"""Hostile input on the shop's own pages: NUL characters (PostgreSQL refuses them in text)
and off-site redirects. Each gets a clean answer and writes nothing bad."""

import pytest
from django.contrib.auth import get_user_model

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
