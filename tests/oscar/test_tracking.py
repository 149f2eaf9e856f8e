"""Oscar's own views and checkout feed the interaction log through the contrib receivers."""

import logging
from decimal import Decimal

import pytest
from oscar.test.factories import create_order

from recommendations.models import Interaction

from .conftest import Shopper

pytestmark = pytest.mark.django_db(transaction=True)


def _events(**filters) -> list[tuple]:
    rows = Interaction.objects.filter(**filters).order_by("pk")
    return list(rows.values_list("event", "item_id", "quantity", "value"))


def test_a_guest_browses_adds_and_checks_out_through_oscar(shop):
    mug, towel = shop["Blue enamel mug"], shop["Tea towel"]
    guest = Shopper()
    guest.view(mug, src="product:related:v1")
    guest.view(towel)
    guest.add_to_basket(mug, quantity=2)
    guest.add_to_basket(towel)
    order = guest.checkout(guest_email="guest@example.com")

    assert order.user is None and order.lines.count() == 2
    visitors = set(Interaction.objects.values_list("visitor_id", flat=True))
    assert len(visitors) == 1 and "" not in visitors  # one guest, all under their visitor id
    assert _events(event="view") == [("view", mug.pk, 1, None), ("view", towel.pk, 1, None)]
    assert Interaction.objects.get(event="view", item=mug).source == "product:related:v1"
    assert _events(event="add_to_cart") == [
        ("add_to_cart", mug.pk, 2, None),
        ("add_to_cart", towel.pk, 1, None),
    ]
    assert _events(event="purchase") == [
        ("purchase", mug.pk, 2, Decimal("18.00")),
        ("purchase", towel.pk, 1, Decimal("4.00")),
    ]


def test_a_signed_in_checkout_records_each_line_once(shop, django_user_model):
    user = django_user_model.objects.create_user(
        username="ann", email="ann@example.com", password="x-long-password"
    )
    shopper = Shopper(user)
    shopper.view(shop["Kite"])
    shopper.add_to_basket(shop["Kite"], quantity=3)
    order = shopper.checkout()

    assert order.user == user
    purchases = Interaction.objects.filter(event="purchase")
    assert list(purchases.values_list("user_id", "item_id", "quantity", "value")) == [
        (user.pk, shop["Kite"].pk, 3, Decimal("36.00"))
    ]
    assert set(Interaction.objects.values_list("user_id", flat=True)) == {user.pk}


def test_an_opted_out_guest_checks_out_untracked(shop):
    guest = Shopper()
    guest.client.defaults["HTTP_SEC_GPC"] = "1"  # Global Privacy Control
    guest.view(shop["Kite"])
    guest.add_to_basket(shop["Kite"])
    guest.checkout(guest_email="private@example.com")
    assert not Interaction.objects.exists()


def test_an_order_placed_without_a_request_never_breaks_oscar(shop, caplog, monkeypatch):
    """A guest order from a script or an import (Oscar's OrderCreator, no request, no user):
    nothing to attribute it to, so it is logged and skipped; the order is placed."""
    # (recommendations_train, run by other tests, stops the app's logger propagating)
    monkeypatch.setattr(logging.getLogger("recommendations"), "propagate", True)
    caplog.set_level(logging.INFO, logger="recommendations.contrib.oscar")
    order = create_order()  # Oscar's own test helper: OrderCreator().place_order(...)
    assert order.pk is not None and order.lines.count() == 1
    assert not Interaction.objects.filter(event="purchase").exists()
    assert f"guest order {order.number} has no request" in caplog.text


def test_an_order_placed_for_a_user_without_a_request_is_recorded(shop, django_user_model):
    user = django_user_model.objects.create_user(username="bo", email="bo@example.com")
    order = create_order(user=user)
    line = order.lines.get()
    assert _events(event="purchase", user=user) == [
        ("purchase", line.product_id, 1, line.line_price_incl_tax)
    ]
