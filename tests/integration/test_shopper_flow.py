"""A scripted shopper: home -> product -> add to cart -> sign up -> checkout."""

import re

import pytest

from recommendations.models import Interaction
from shop.models import Order
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"


def _first_product_link(html: str) -> str:
    match = re.search(r'href="(/products/\d+/[^"]*)"', html)
    assert match, "the home page links to no product"
    return match.group(1).replace("&amp;", "&")


def _form_action(html: str, name: str) -> str:
    match = re.search(rf'<form[^>]*action="([^"]*{name}[^"]*)"', html)
    assert match, f"no {name} form on the page"
    return match.group(1)


def test_anonymous_history_is_merged_and_every_event_lands_on_the_user(client, monkeypatch):
    shelf = factories.category("Home decor")
    product = factories.product(name="WHITE HANGING HEART T-LIGHT HOLDER", category=shelf, stock=5)
    buyer = factories.user("earlier-buyer")
    order = Order.objects.create(
        number="536365", user=buyer, status="paid", created_at="2011-01-01T10:00Z"
    )
    order.lines.create(product=product, quantity=1, unit_price=product.price)

    client.defaults["HTTP_USER_AGENT"] = BROWSER_UA
    home = client.get("/")
    assert home.status_code == 200
    assert "White Hanging Heart T-Light Holder" in home.content.decode()
    page = client.get(_first_product_link(home.content.decode()))
    assert page.status_code == 200
    html = page.content.decode()
    assert "White Hanging Heart T-Light Holder" in html

    response = client.post(_form_action(html, "cart/add"), {"quantity": "2", "source": ""})
    assert response.status_code == 302
    assert Interaction.objects.filter(user__isnull=True).count() == 2  # view + add_to_cart

    response = client.post(
        "/accounts/signup/?next=/checkout/",
        {
            "username": "newshopper",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302
    response = client.post("/checkout/")
    assert response.status_code == 302

    shopper = Order.objects.get(user__username="newshopper").user
    events = Interaction.objects.filter(user=shopper)
    assert sorted(events.values_list("event", flat=True)) == ["add_to_cart", "purchase", "view"]
    assert not Interaction.objects.filter(user__isnull=True).exists()
    purchase = events.get(event="purchase")
    assert purchase.quantity == 2 and purchase.value == 2 * product.price
    product.refresh_from_db()
    assert product.stock == 3


def test_logging_in_merges_the_anonymous_history(client):
    item = factories.product()
    factories.user("returning", password="a-long-pass-phrase-9")
    client.defaults["HTTP_USER_AGENT"] = BROWSER_UA
    client.get(f"/products/{item.pk}/")
    response = client.post(
        "/accounts/login/", {"username": "returning", "password": "a-long-pass-phrase-9"}
    )
    assert response.status_code == 302
    assert Interaction.objects.get().user.username == "returning"
