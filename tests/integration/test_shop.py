import pytest

from recommendations.models import Interaction
from shop.models import Order
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
UA = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


def test_product_list_searches_and_paginates(client):
    shelf = factories.category("Christmas")
    for i in range(30):
        factories.product(name=f"CHRISTMAS BAUBLE {i}", category=shelf)
    factories.product(name="TEA CUP")
    factories.product(name="HIDDEN BAUBLE", is_active=False)
    page1 = client.get("/products/", {"q": "bauble"})
    assert page1.status_code == 200
    assert page1.context["page"].paginator.count == 30
    assert len(page1.context["page"].object_list) == 24
    page2 = client.get("/products/", {"q": "bauble", "page": 2})
    assert len(page2.context["page"].object_list) == 6
    assert client.get("/products/", {"category": shelf.slug}).context["page"].paginator.count == 30
    assert client.get("/products/", {"category": "no-such"}).status_code == 404
    assert client.get("/products/", {"page": "999"}).status_code == 200


def test_inactive_product_page_is_404(client):
    item = factories.product(is_active=False)
    assert client.get(f"/products/{item.pk}/").status_code == 404


def test_cart_add_change_remove_send_their_events(client):
    item = factories.product(stock=5)
    client.post(f"/cart/add/{item.pk}/", {"quantity": 2}, **UA)
    client.post(f"/cart/update/{item.pk}/", {"quantity": 4}, **UA)
    client.post(f"/cart/update/{item.pk}/", {"quantity": 1}, **UA)
    client.post(f"/cart/remove/{item.pk}/", **UA)
    events = list(Interaction.objects.order_by("id").values_list("event", "quantity"))
    assert events == [
        ("add_to_cart", 2),
        ("add_to_cart", 2),
        ("remove_from_cart", 3),
        ("remove_from_cart", 1),
    ]
    assert client.session["cart"] == {}


def test_cart_never_exceeds_stock_and_rejects_bad_quantities(client):
    item = factories.product(stock=3)
    client.post(f"/cart/add/{item.pk}/", {"quantity": 10}, **UA)
    assert client.session["cart"] == {str(item.pk): 3}
    response = client.post(f"/cart/add/{item.pk}/", {"quantity": "-1"}, **UA)
    assert response.status_code == 302
    assert client.session["cart"] == {str(item.pk): 3}
    assert client.get(f"/cart/add/{item.pk}/").status_code == 405


def test_checkout_requires_login_and_stock(client):
    item = factories.product(stock=2)
    client.post(f"/cart/add/{item.pk}/", {"quantity": 2}, **UA)
    assert client.get("/checkout/").status_code == 302
    user = factories.user()
    client.force_login(user)
    item.stock = 1
    item.save()
    response = client.post("/checkout/", **UA)
    assert response.status_code == 302 and response.url == "/cart/"
    assert not Order.objects.exists()
    assert not Interaction.objects.filter(event="purchase").exists()


def test_order_history_shows_only_your_orders(client):
    alice, bob = factories.user(), factories.user()
    item = factories.product(stock=5)
    client.force_login(alice)
    client.post(f"/cart/add/{item.pk}/", {"quantity": 1}, **UA)
    client.post("/checkout/", **UA)
    order = Order.objects.get(user=alice)
    assert order.status == "paid" and order.lines.count() == 1
    assert order.number in client.get("/orders/").content.decode()
    client.force_login(bob)
    assert client.get(f"/orders/{order.number}/").status_code == 404
    assert order.number not in client.get("/orders/").content.decode()


def test_visitor_cookie_is_signed_and_stable(client):
    item = factories.product()
    client.get(f"/products/{item.pk}/", **UA)
    client.get(f"/products/{item.pk}/", **UA)
    visitors = set(Interaction.objects.values_list("visitor_id", flat=True))
    assert len(visitors) == 1 and len(next(iter(visitors))) == 32
    client.cookies["rec_vid"] = "forged-id"
    client.get(f"/products/{item.pk}/", **UA)
    assert "forged-id" not in set(Interaction.objects.values_list("visitor_id", flat=True))
