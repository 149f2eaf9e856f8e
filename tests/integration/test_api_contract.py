"""What generated clients rely on: the schema says what the API does, and the API does it.

JSON-only nested bodies, documented error bodies, typed items, bounds as constraints,
optional authentication, categories by slug, JSON 404s, 401 for wrong credentials, and an
app's events recorded whatever its HTTP library calls itself.
"""

import base64
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from recommendations.models import Interaction
from recommendations.tracking import record
from tests import factories
from tests.factories import BROWSER

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/recommendations"
#: What httpx (the generated Python client's transport) sends: it matches the bot pattern.
HTTPX = {"HTTP_USER_AGENT": "python-httpx/0.28.1"}


@pytest.fixture
def api():
    client = APIClient()
    client.defaults.update(BROWSER)
    return client


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operation(schema, path, method="get"):
    return schema["paths"][path][method]


def resolve(schema, ref_or_schema):
    ref = ref_or_schema.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else ref_or_schema


def json_body(schema, response):
    return resolve(schema, response["content"]["application/json"]["schema"])


def test_the_events_endpoint_takes_json_only(api, schema):
    body = operation(schema, f"{API}/events/", "post")["requestBody"]
    assert list(body["content"]) == ["application/json"]
    token = factories.visitor_token("phone-json-only")
    item = factories.product()
    form = api.post(f"{API}/events/", {"visitor_id": token, "events": f"view {item.pk}"})
    assert form.status_code == 415 and "detail" in form.json()
    assert Interaction.objects.count() == 0


def test_every_operation_documents_its_errors_with_bodies(schema):
    for path, methods in schema["paths"].items():
        if not path.startswith(API):
            continue
        for method, op in methods.items():
            codes = set(op["responses"])
            assert {"401", "429"} <= codes, (method, path, codes)
            for code in codes - {"200", "201"}:
                body = json_body(schema, op["responses"][code])
                assert body["type"] == "object" and body["properties"], (method, path, code)
    related = operation(schema, f"{API}/items/{{id}}/related/")["responses"]
    assert {"400", "404"} <= set(related)
    assert "k" in json_body(schema, related["400"])["properties"]
    assert "detail" in json_body(schema, related["404"])["properties"]
    users = operation(schema, f"{API}/users/{{user_id}}/")["responses"]
    assert {"401", "403", "404"} <= set(users)
    events = operation(schema, f"{API}/events/", "post")["responses"]
    assert {"200", "201", "400", "403", "415"} <= set(events)
    tracked = json_body(schema, events["200"])["properties"]["tracked"]
    assert tracked["type"] == "boolean"
    assert {"visitor_id", "events"} <= set(json_body(schema, events["400"])["properties"])


def test_items_are_typed(schema, api):
    listed = json_body(schema, operation(schema, f"{API}/popular/")["responses"]["200"])
    recommendation = resolve(schema, listed["properties"]["results"]["items"])
    item = resolve(schema, recommendation["properties"]["item"])
    assert {"id", "name"} <= set(item["required"])
    assert item["properties"]["id"]["type"] == "integer"
    assert {"url", "price", "currency", "image", "category", "categories"} <= set(
        item["properties"]
    )
    assert item["properties"]["price"]["nullable"] is True
    # ... and what the demo's adapter serves fits it.
    product = factories.product(category=factories.category())
    body = api.get(f"{API}/popular/?k=3").json()
    served = next(r["item"] for r in body["results"] if r["item"]["id"] == product.pk)
    assert isinstance(served["price"], str) and isinstance(served["category"], str)


def test_bounds_are_schema_constraints(schema):
    params = {p["name"]: p["schema"] for p in operation(schema, f"{API}/for-me/")["parameters"]}
    assert (params["k"]["minimum"], params["k"]["maximum"]) == (1, 50)
    batch = schema["components"]["schemas"]["EventBatch"]["properties"]["events"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 100)
    event = resolve(schema, batch["items"])["properties"]
    assert (event["quantity"]["minimum"], event["quantity"]["maximum"]) == (1, 10_000)
    assert (event["value"]["minimum"], event["value"]["maximum"]) == (0, 1_000_000)
    assert event["item"]["minimum"] == 1
    assert event["client_event_id"]["maxLength"] == 64
    with override_settings(RECOMMENDATIONS={"MAX_EVENTS_PER_REQUEST": 20}):
        resized = APIClient().get("/api/schema/?format=json").json()
    assert resized["components"]["schemas"]["EventBatch"]["properties"]["events"]["maxItems"] == 20


def test_anonymous_access_is_declared_optional(schema):
    """Anonymous-capable operations inherit the root's requirements, which include ``{}``;
    the staff ones keep their own, without it."""
    assert {} in schema["security"] and {"basicAuth": []} in schema["security"]
    for path in ("for-me/", "popular/", "events/", "visitors/", "categories/"):
        methods = schema["paths"][f"{API}/{path}"]
        assert all("security" not in op for op in methods.values()), path
    staff = operation(schema, f"{API}/users/{{user_id}}/")["security"]
    assert staff and {} not in staff


def test_categories_by_slug_and_a_list_of_them(api):
    mugs, toys = factories.category("Mugs"), factories.category("Toys")
    mug, toy = factories.product(category=mugs), factories.product(category=toys)
    for item in (mug, toy):  # the shop's own record of a sale: popular counts it
        record("purchase", item, visitor_id="shopper-1")
    listed = api.get(f"{API}/categories/").json()
    assert {"id": mugs.pk, "slug": mugs.slug, "name": "Mugs"} in listed
    assert {c["slug"] for c in listed} == {mugs.slug, toys.slug}
    by_slug = api.get(f"{API}/popular/?category={mugs.slug}").json()["results"]
    assert [r["item"]["id"] for r in by_slug] == [mug.pk]
    by_id = api.get(f"{API}/popular/?category={toys.pk}").json()["results"]  # older clients
    assert [r["item"]["id"] for r in by_id] == [toy.pk]
    unknown = api.get(f"{API}/popular/?category=no-such-shelf")
    assert unknown.status_code == 400 and unknown.json()["category"] == ["No such category."]
    assert api.get(f"{API}/popular/?category=bad%20slug").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "items/-1/related/",
        "items/0/bought-together/",
        "items/99999999999999999999/related/",
        "items/abc/related/",
        "users/-5/",
        "no-such-endpoint/",
    ],
)
def test_not_found_is_json(api, path):
    response = api.get(f"{API}/{path}")
    assert response.status_code in (401, 404)
    assert response["Content-Type"] == "application/json" and "detail" in response.json()


def test_the_lists_of_an_item_shoppers_cannot_see_are_404(api):
    shown = factories.product()
    hidden = factories.product(is_active=False)
    sold_out = factories.product(stock=0)
    assert api.get(f"{API}/items/{shown.pk}/related/").status_code == 200
    for item in (hidden, sold_out):
        for kind in ("related", "bought-together"):
            response = api.get(f"{API}/items/{item.pk}/{kind}/")
            assert response.status_code == 404, (item, kind)
    # Served once while visible, then sold out: the cached item is not enough.
    shown.stock = 0
    shown.save()
    assert api.get(f"{API}/items/{shown.pk}/related/").status_code == 404


def test_wrong_credentials_are_401_with_the_scheme(api):
    factories.user(username="app", password="right")
    wrong = base64.b64encode(b"app:wrong").decode()
    response = api.get(f"{API}/for-me/", HTTP_AUTHORIZATION=f"Basic {wrong}")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    right = base64.b64encode(b"app:right").decode()
    assert api.get(f"{API}/for-me/", HTTP_AUTHORIZATION=f"Basic {right}").status_code == 200
    owner = factories.user()
    assert api.get(f"{API}/users/{owner.pk}/").status_code == 401  # nobody: who are you?


def test_an_app_s_events_are_recorded_whatever_its_http_library(api):
    item = factories.product()
    token = api.post(f"{API}/visitors/", **HTTPX).json()["visitor_id"]
    body = {"visitor_id": token, "events": [{"event": "view", "item": item.pk}]}
    response = api.post(f"{API}/events/", body, format="json", **HTTPX)
    assert response.status_code == 201 and response.json()["tracked"] is True
    assert Interaction.objects.filter(item_id=item.pk).count() == 1
    # Page views from the same user agent are still a bot's, and not recorded.
    assert Interaction.objects.count() == 1


def test_an_opted_out_visitor_gets_the_documented_200(api):
    item = factories.product()
    token = api.post(f"{API}/visitors/").json()["visitor_id"]
    refused = api.post(f"{API}/consent/", {"consent": False}, HTTP_X_VISITOR_ID=token)
    assert refused.status_code == 200
    body = {"visitor_id": token, "events": [{"event": "view", "item": item.pk}]}
    response = api.post(f"{API}/events/", body, format="json")
    assert response.status_code == 200
    assert response.json() == {"received": 1, "stored": 0, "duplicates": 0, "tracked": False}
    assert Interaction.objects.count() == 0


def test_event_errors_are_keyed_by_position(api):
    item = factories.product()
    token = factories.visitor_token("phone-errors")
    late = (timezone.now() - timedelta(days=30)).isoformat()
    events = [
        {"event": "view", "item": item.pk},
        {"event": "teleport", "item": item.pk},
        {"event": "view", "item": item.pk, "timestamp": late},
    ]
    response = api.post(f"{API}/events/", {"visitor_id": token, "events": events}, format="json")
    assert response.status_code == 400
    errors = response.json()["events"]
    assert set(errors) == {"1", "2"} and "event" in errors["1"] and "timestamp" in errors["2"]
    empty = api.post(f"{API}/events/", {"visitor_id": token, "events": []}, format="json")
    assert empty.status_code == 400 and empty.json()["events"]["non_field_errors"]
    assert Interaction.objects.count() == 0
