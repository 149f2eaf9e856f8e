""" "Not interested": the endpoint, its refusals, the item gone from every list of that
shopper (and only theirs), privacy, and training."""

import pytest
from django.test import Client, RequestFactory, override_settings
from rest_framework.test import APIClient

from recommendations import serving
from recommendations.learning.dataset import interaction_matrix
from recommendations.learning.extract import extract_log, visitor_code
from recommendations.models import Interaction
from recommendations.serving.feedback import HINT_COOKIE
from recommendations.tracking import privacy
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/recommendations/feedback/"


def _app(visitor: str) -> APIClient:
    client = APIClient(HTTP_X_VISITOR_ID=factories.visitor_token(visitor), **factories.BROWSER)
    return client


def _dismiss(client, item, **extra):
    return client.post(
        URL, {"item": item.pk, "kind": "not_interested", "source": "for_you:v1"}, format="json"
    )


def _ids(client, path: str) -> list[int]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return [r["item"]["id"] for r in response.json()["results"]]


def test_a_dismissal_is_stored_once_for_that_visitor():
    item = factories.product()
    client = _app("phone-feedback-1")
    response = _dismiss(client, item)
    assert response.status_code == 201, response.content
    assert response.json() == {"item": item.pk, "kind": "not_interested", "recorded": True}
    assert _dismiss(client, item).status_code == 201  # a second press: stored once
    row = Interaction.objects.get(event="not_interested")
    assert (row.item_id, row.visitor_id, row.user_id) == (item.pk, "phone-feedback-1", None)
    assert row.source == "for_you:v1"


def test_a_signed_in_users_dismissal_is_theirs():
    item, shopper = factories.product(), factories.user()
    client = APIClient(**factories.BROWSER)
    client.force_authenticate(shopper)
    assert _dismiss(client, item).status_code == 201
    assert Interaction.objects.get(event="not_interested").user_id == shopper.pk


@pytest.mark.parametrize(
    "body, field",
    [
        ({"item": 999_999, "kind": "not_interested"}, "item"),
        ({"item": "x", "kind": "not_interested"}, "item"),
        ({"kind": "not_interested"}, "item"),
        ({"item": None, "kind": "love_it"}, "kind"),
        ({"item": None, "kind": "not_interested", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_400_with_the_field(body, field):
    item = factories.product()
    if body.get("item", 0) is None:
        body["item"] = item.pk
    response = _app("phone-feedback-2").post(URL, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Interaction.objects.exists()


def test_an_invisible_item_is_a_400():
    hidden = factories.product(is_active=False)
    sold_out = factories.product(stock=0)
    for item in (hidden, sold_out):
        response = _dismiss(_app("phone-feedback-3"), item)
        assert response.status_code == 400 and "item" in response.json()
    assert not Interaction.objects.exists()


def test_a_visitor_id_the_server_did_not_issue_is_refused():
    item = factories.product()
    client = APIClient(HTTP_X_VISITOR_ID="made-up-id", **factories.BROWSER)
    response = _dismiss(client, item)
    assert response.status_code == 400 and "X-Visitor-Id" in response.json()
    assert not Interaction.objects.exists()


def test_a_browser_needs_the_csrf_token():
    item = factories.product()
    browser = Client(enforce_csrf_checks=True, **factories.BROWSER)
    browser.get(f"/products/{item.pk}/")  # the cookie visitor, and a CSRF cookie
    body = {"item": item.pk, "kind": "not_interested"}
    forged = browser.post(URL, body, content_type="application/json")
    assert forged.status_code == 403
    token = browser.cookies["csrftoken"].value
    response = browser.post(URL, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert response.cookies[HINT_COOKIE].value == "1"
    assert Interaction.objects.filter(event="not_interested", item=item).count() == 1


def test_an_opted_out_visitor_is_answered_but_nothing_is_stored(client):
    item = factories.product()
    client.defaults.update(factories.BROWSER)
    client.get(f"/products/{item.pk}/")
    client.post("/recommendations/opt-out/", {"next": "/"})
    response = client.post(
        URL, {"item": item.pk, "kind": "not_interested"}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["recorded"] is False
    assert not Interaction.objects.filter(event="not_interested").exists()


@override_settings(RECOMMENDATIONS={**factories.TRAINED_SETTINGS, "REQUIRE_CONSENT": True})
def test_without_consent_nothing_is_stored():
    item = factories.product()
    response = _dismiss(_app("phone-feedback-4"), item)
    assert response.status_code == 200 and response.json()["recorded"] is False
    assert not Interaction.objects.exists()


def test_the_item_leaves_that_shoppers_lists_at_once_and_only_theirs(shop):
    items, _ = shop
    me, other = _app("visitor-3"), _app("visitor-7")  # shoppers of the clustered log
    for_me = _ids(me, "/api/recommendations/for-me/?k=8")
    gone = for_me[0]
    assert _dismiss(me, factories_item(gone)).status_code == 201
    after = _ids(me, "/api/recommendations/for-me/?k=8")
    assert gone not in after and len(after) == 8

    anchor = items[0].pk
    related = _ids(me, f"/api/recommendations/items/{anchor}/related/?k=4")
    assert related == _ids(other, f"/api/recommendations/items/{anchor}/related/?k=4")
    _dismiss(me, factories_item(related[0]))
    mine = _ids(me, f"/api/recommendations/items/{anchor}/related/?k=4")
    assert related[0] not in mine and len(mine) == 4
    assert _ids(other, f"/api/recommendations/items/{anchor}/related/?k=4") == related

    popular = _ids(other, "/api/recommendations/popular/?k=5")
    _dismiss(me, factories_item(popular[0]))
    assert popular[0] not in _ids(me, "/api/recommendations/popular/?k=5")
    assert _ids(other, "/api/recommendations/popular/?k=5") == popular
    for path in ("for-me/?k=8", f"items/{anchor}/bought-together/?k=8", "buy-again/?k=20"):
        shown = _ids(me, f"/api/recommendations/{path}")
        assert not {gone, related[0], popular[0]} & set(shown)


def test_carousels_leave_the_item_out_and_offer_a_dismiss_button(shop):
    items, _ = shop
    from django.contrib.auth.models import AnonymousUser
    from django.template import Context, Template

    def render(cookies=None):
        request = RequestFactory().get("/", **factories.BROWSER)
        request.user = AnonymousUser()
        request.recommendations_visitor_id = "visitor-5"
        request.COOKIES.update(cookies or {})
        return Template("{% load recommendations %}{% related_items item k=4 %}").render(
            Context({"request": request, "item": items[0]})
        )

    html = render()
    assert 'class="rec-dismiss"' in html and 'aria-label="Not interested in CLUSTER' in html
    assert '<button type="button"' in html
    first = serving.related_to(items[0], 4).items[0].item.pk
    Interaction.objects.create(visitor_id="visitor-5", item_id=first, event="not_interested")
    assert f'data-rec-item="{first}"' not in render({HINT_COOKIE: "1"})
    assert f'data-rec-item="{first}"' in render()  # no hint cookie: nothing looked up


def test_dismissals_are_exported_and_forgotten():
    item = factories.product()
    _dismiss(_app("phone-feedback-5"), item)
    data = privacy.export(visitor_id="phone-feedback-5")
    assert [r["event"] for r in data["recommendations.Interaction"]] == ["not_interested"]
    privacy.forget(visitor_id="phone-feedback-5")
    assert not Interaction.objects.exists()


def test_training_drops_the_dismissed_item_from_the_shoppers_row(shop):
    del shop  # the trained clustered log
    bought = Interaction.objects.filter(visitor_id="visitor-9", event="purchase").first().item_id
    before = interaction_matrix(extract_log())
    row = before.user_index()[visitor_code("visitor-9")]
    column = before.item_index()[bought]
    assert before.X[row, column] > 0
    Interaction.objects.create(visitor_id="visitor-9", item_id=bought, event="not_interested")
    after = interaction_matrix(extract_log())
    assert after.X[after.user_index()[visitor_code("visitor-9")], column] == 0
    other = after.user_index()[visitor_code("visitor-1")]
    assert after.X[other].nnz == before.X[before.user_index()[visitor_code("visitor-1")]].nnz


def factories_item(pk: int):
    from shop.models import Product

    return Product.objects.get(pk=pk)
