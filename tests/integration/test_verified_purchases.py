"""Sales that count are real: only purchases the shop's server vouches for are shared.

A shopper's app may not post purchases; an authenticated server integration may. Popular,
trending, bought together and attributed revenue read only server-verified purchases, so a
purchase row stored before this rule (or by a client) changes none of them.
"""

import base64
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from recommendations import signals, tracking
from recommendations.learning import related
from recommendations.learning.extract import extract_log, order_lines
from recommendations.models import Interaction
from recommendations.serving import performance
from recommendations.serving.popularity import popular_rows, trending_rows
from recommendations.verified import is_verified_event_id, server_event_id
from shop.models import Order
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)
EVENTS = "/api/recommendations/events/"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def api():
    client = APIClient()
    client.defaults.update(BROWSER)
    return client


def integration_user():
    """A server integration: an account holding ``recommendations.add_interaction``."""
    user = factories.user(password=PASSWORD)
    user.user_permissions.add(
        Permission.objects.get(
            codename="add_interaction", content_type__app_label="recommendations"
        )
    )
    return user


def basic_auth(user) -> dict[str, str]:
    token = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def purchase(item, **fields) -> dict:
    return {"event": "purchase", "item": item.pk, "value": "12.50", **fields}


def test_an_anonymous_visitors_purchase_is_refused_and_changes_nothing(api):
    item, other = factories.product(), factories.product()
    tracking.record("purchase", other, visitor_id="real-buyer")  # the shop's own sale
    payload = {
        "visitor_id": factories.visitor_token("phone-1111111"),
        "events": [{"event": "view", "item": item.pk}, purchase(item)],
    }
    response = api.post(EVENTS, payload, format="json")
    assert response.status_code == 400
    assert "recommendations.add_interaction" in response.json()["events"]["1"]["event"][0]
    assert not Interaction.objects.filter(item=item).exists()  # not even the view
    assert [row[0] for row in popular_rows(None)] == [other.pk]


def test_a_signed_in_shoppers_purchase_is_refused_too(api):
    item = factories.product()
    api.credentials(**basic_auth(factories.user(password=PASSWORD)))
    response = api.post(EVENTS, {"events": [purchase(item)]}, format="json")
    assert response.status_code == 400 and "event" in response.json()["events"]["0"]
    assert not Interaction.objects.exists()


def test_an_integrations_purchase_is_stored_verified_and_counts(api):
    sold, viewed = factories.product(), factories.product()
    service = integration_user()
    api.credentials(**basic_auth(service))
    payload = {
        "visitor_id": factories.visitor_token("phone-2222222"),
        "events": [
            purchase(sold, client_event_id="pos-1", quantity=2),
            {"event": "view", "item": viewed.pk, "client_event_id": "view-1"},
        ],
    }
    response = api.post(EVENTS, payload, format="json")
    assert response.status_code == 201, response.json()
    stored = Interaction.objects.get(event="purchase")
    assert stored.client_event_id == f"api:{service.pk}/pos-1"
    assert is_verified_event_id(stored.client_event_id)
    assert stored.value == Decimal("12.50") and stored.quantity == 2
    assert stored.user_id is None and stored.visitor_id == "phone-2222222"  # the shopper's
    # a view keeps the shopper's namespace: not a verified id
    assert not is_verified_event_id(Interaction.objects.get(event="view").client_event_id)
    assert [row[0] for row in popular_rows(None)] == [sold.pk]
    again = api.post(EVENTS, {"events": [purchase(sold, client_event_id="pos-1")]}, format="json")
    assert again.json()["duplicates"] == 1 and Interaction.objects.count() == 2


@pytest.mark.parametrize(
    "when, message",
    [(timedelta(days=8), "more than 7 days old"), (-timedelta(hours=1), "in the future")],
)
def test_an_integrations_purchase_is_dated_within_bounds(api, when, message):
    item = factories.product()
    api.credentials(**basic_auth(integration_user()))
    stamp = (timezone.now() - when).isoformat()
    response = api.post(EVENTS, {"events": [purchase(item, timestamp=stamp)]}, format="json")
    assert response.status_code == 400
    errors = str(response.json()["events"])
    assert "timestamp" in errors and message in errors
    assert not Interaction.objects.exists()


def unverified_purchases(item, n: int = 3) -> None:
    """Purchase rows no server vouched for: sent by clients before this rule (no id, a
    shopper's namespace, the Redis buffer's random id)."""
    now = timezone.now()
    namespaces = [None, "vphone/", "buffer:", "u9/"]
    Interaction.objects.bulk_create(
        Interaction(
            visitor_id=f"faker-{i}",
            item=item,
            event="purchase",
            value=Decimal("999"),
            client_event_id=None if ns is None else f"{ns}{i}",
            created_at=now - timedelta(minutes=i),
        )
        for i, ns in ((i, namespaces[i % len(namespaces)]) for i in range(n))
    )


def test_popular_trending_and_baskets_ignore_unverified_purchases():
    real, partner, fake = factories.product(), factories.product(), factories.product()
    for n in range(3):  # three orders of the shop's checkout, each with real + partner
        for position, item in enumerate((real, partner)):
            tracking.record(
                "purchase", item, visitor_id=f"buyer-{n}", client_event_id=f"order:{n}:{position}"
            )
    unverified_purchases(fake, 6)
    # the fake item also "shares a basket" with the real one: same shopper, same instant
    when = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(visitor_id="faker", item=item, event="purchase", created_at=when)
        for item in (real, fake)
    )
    assert {row[0] for row in popular_rows(None)} == {real.pk, partner.pk}
    assert {item for item, _ in trending_rows(7)} == {real.pk, partner.pk}
    lines = order_lines()
    assert set(lines["item"]) == {real.pk, partner.pk} and lines["basket"].nunique() == 3
    rows = related._bought_together(0, 5, np.array([real.pk, partner.pk, fake.pk]))
    assert {(source, target) for _, source, target, *_ in rows} == {
        (real.pk, partner.pk),
        (partner.pk, real.pk),
    }


def test_attributed_revenue_counts_only_verified_purchases():
    item = factories.product()
    t = timezone.now() - timedelta(hours=3)
    click = {"item": item, "event": "click", "source": "related:v1", "created_at": t}
    Interaction.objects.bulk_create(
        [
            Interaction(visitor_id="v1", **click),
            Interaction(  # a client's claim: no verified id
                visitor_id="v1", item=item, event="purchase", value=Decimal("500"),
                client_event_id="vv1/1", created_at=t + timedelta(minutes=5),
            ),
            Interaction(visitor_id="v2", **click),
            Interaction(  # the shop's checkout
                visitor_id="v2", item=item, event="purchase", value=Decimal("20"),
                client_event_id="order:1:0", created_at=t + timedelta(minutes=5),
            ),
        ]
    )
    found = list(performance.attributed_purchases(t - timedelta(days=1), timezone.now()))
    assert [value for _, _, _, _, value, _ in found] == [Decimal("20")]


def test_server_code_purchases_are_verified_whatever_id_they_carry():
    item = factories.product()
    tracking.record("purchase", item, visitor_id="a")
    tracking.record("purchase", item, visitor_id="b", client_event_id="checkout-55")
    tracking.record("purchase", item, visitor_id="c", client_event_id="x" * 140)
    ids = list(Interaction.objects.values_list("client_event_id", flat=True))
    assert all(is_verified_event_id(cid) for cid in ids) and len(set(ids)) == 3
    assert "server:checkout-55" in ids
    assert server_event_id("x" * 140) in ids and len(server_event_id("x" * 140)) <= 140
    assert server_event_id("order:5:0") == "order:5:0"  # the checkout's ids are kept


# --- order_paid never raises into the checkout ---------------------------------------------


def paid_order(user) -> Order:
    return Order.objects.create(number=f"G{user.pk}", user=user, created_at=timezone.now())


def test_a_guest_order_without_request_or_user_is_recorded_and_counts():
    a, b = factories.product(), factories.product()
    order = paid_order(factories.user())
    lines = [(a, 1, Decimal("3.00")), (b, 2, Decimal("8.00"))]
    signals.order_paid.send(sender=None, request=None, order=order, lines=lines, user=None)
    rows = Interaction.objects.filter(event="purchase")
    assert rows.count() == 2
    assert all(r.user_id is None and r.visitor_id == "" for r in rows)
    assert {row[0] for row in popular_rows(None)} == {a.pk, b.pk}
    assert order_lines()["basket"].nunique() == 1  # one basket: the order
    assert extract_log().empty  # no shopper to learn about


def test_rejected_lines_are_logged_not_raised(caplog):
    good = factories.product()
    order = paid_order(factories.user())
    lines = [(good, 1, Decimal("3.00")), (good, 0, Decimal("1.00")), (good, 1, "not money")]
    signals.order_paid.send(sender=None, request=None, order=order, lines=lines)
    assert Interaction.objects.count() == 1
    assert f"order {order.pk}: lines not recorded" in caplog.text


def test_a_broken_signal_payload_is_logged_not_raised(caplog):
    order = paid_order(factories.user())
    signals.order_paid.send(sender=None, request=None, order=order, lines=None)
    assert not Interaction.objects.exists()
    assert f"order {order.pk}: its purchases were not recorded" in caplog.text


def test_an_integrations_purchase_is_still_strict(api):
    item = factories.product()
    api.credentials(**basic_auth(integration_user()))
    payload = {"events": [purchase(item, value="-1.00"), purchase(item, value="1000000.01")]}
    response = api.post(EVENTS, payload, format="json")
    assert response.status_code == 400
    errors = response.json()["events"]
    assert "value" in errors["0"] and "value" in errors["1"]
    unknown = api.post(EVENTS, {"events": [purchase(item, price="3")]}, format="json")
    assert unknown.status_code == 400 and "Unknown field" in str(unknown.json())
    assert not Interaction.objects.exists()


def test_an_integrations_http_client_is_not_taken_for_a_bot(api):
    item = factories.product()
    api.credentials(**basic_auth(integration_user()))
    response = api.post(
        EVENTS, {"events": [purchase(item)]}, format="json", HTTP_USER_AGENT="python-requests/2.32"
    )
    assert response.status_code == 201 and response.json()["tracked"] is True
    assert Interaction.objects.filter(event="purchase", item=item).count() == 1
