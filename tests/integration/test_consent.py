"""Consent as the law asks: with REQUIRE_CONSENT nothing is tracked before the shopper says
yes, and an opt-out lasts (a signed cookie for a browser, a flag on the account)."""

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from recommendations.conf import app_settings
from recommendations.learning.insights import score_customers
from recommendations.models import CustomerInsight, Interaction, ShopperConsent
from tests import factories
from tests.integration.test_insights import purchase_history

pytestmark = pytest.mark.django_db(transaction=True)
UA = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}
PASSWORD = "a-long-pass-phrase-9"
REQUIRED = {"REQUIRE_CONSENT": True}


def _cookie(client, name: str) -> str:
    cookie = client.cookies.get(name)
    return cookie.value if cookie is not None and cookie.value else ""


def _forget_session(client) -> None:
    """A new session on the same browser (the session expired): only lasting cookies stay."""
    client.cookies.pop("sessionid", None)


@pytest.fixture
def browser(client):
    client.defaults.update(UA)
    return client


@override_settings(RECOMMENDATIONS=REQUIRED)
def test_nothing_is_tracked_and_no_visitor_cookie_before_consent(browser):
    item = factories.product()
    response = browser.get(f"/products/{item.pk}/")
    assert response.status_code == 200
    assert app_settings.VISITOR_COOKIE_NAME not in response.cookies
    assert not Interaction.objects.exists()
    page = browser.get("/").content.decode()
    assert 'class="consent-banner"' in page
    # Lists that are nobody's in particular are still served.
    body = browser.get("/api/recommendations/popular/").json()
    assert body["results"]
    body = browser.get("/api/recommendations/for-me/").json()
    assert all(r["strategy"] != "model" for r in body["results"])


@override_settings(RECOMMENDATIONS=REQUIRED)
def test_consenting_starts_tracking_and_hides_the_banner(browser):
    item = factories.product()
    response = browser.post("/recommendations/consent/", {"next": f"/products/{item.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/products/{item.pk}/"
    assert _cookie(browser, app_settings.VISITOR_COOKIE_NAME)
    browser.get(f"/products/{item.pk}/")
    assert Interaction.objects.filter(item=item, event="view").count() == 1
    _forget_session(browser)
    browser.get(f"/products/{item.pk}/")
    assert Interaction.objects.count() == 2  # the consent outlives the session
    assert 'class="consent-banner"' not in browser.get("/").content.decode()


def test_an_opt_out_lasts_beyond_the_session_and_drops_the_visitor_cookie(browser):
    item = factories.product()
    browser.get(f"/products/{item.pk}/")
    assert _cookie(browser, app_settings.VISITOR_COOKIE_NAME)
    response = browser.post("/recommendations/opt-out/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"  # never sent to another site
    assert response.cookies[app_settings.VISITOR_COOKIE_NAME].value == ""  # deleted
    _forget_session(browser)
    browser.get(f"/products/{item.pk}/")
    assert Interaction.objects.count() == 1  # the view before the opt-out only
    assert not _cookie(browser, app_settings.VISITOR_COOKIE_NAME)


def test_an_opt_out_cookie_cannot_be_forged_into_a_consent(browser):
    item = factories.product()
    with override_settings(RECOMMENDATIONS=REQUIRED):
        browser.cookies[app_settings.CONSENT_COOKIE_NAME] = "yes"
        browser.get(f"/products/{item.pk}/")
    assert not Interaction.objects.exists()


def test_a_signed_in_shoppers_opt_out_is_kept_on_the_account(browser):
    item = factories.product()
    nora = factories.user("nora", password=PASSWORD)
    CustomerInsight.objects.create(
        user=nora, p_alive=0.5, churn_risk=0.5, expected_orders=1.0, horizon_days=90,
        orders=2, recency_days=3.0, model="bgnbd", scored_at="2026-01-01T00:00:00Z",
    )
    browser.post("/accounts/login/", {"username": "nora", "password": PASSWORD})
    browser.post("/recommendations/opt-out/")
    assert ShopperConsent.objects.get(user=nora).tracking_allowed is False
    assert not CustomerInsight.objects.filter(user=nora).exists()
    other_browser = Client(**UA)  # the account's choice follows Nora to another browser
    other_browser.post("/accounts/login/", {"username": "nora", "password": PASSWORD})
    other_browser.get(f"/products/{item.pk}/")
    assert not Interaction.objects.exists()


def test_an_opted_out_account_does_not_take_the_anonymous_history_on_log_in(browser):
    item = factories.product()
    olga = factories.user("olga", password=PASSWORD)
    ShopperConsent.objects.create(user=olga, tracking_allowed=False)
    browser.get(f"/products/{item.pk}/")
    browser.post("/accounts/login/", {"username": "olga", "password": PASSWORD})
    assert not Interaction.objects.filter(user=olga).exists()


def test_an_account_consent_counts_on_a_browser_that_never_chose(browser):
    item = factories.product()
    pia = factories.user("pia", password=PASSWORD)
    ShopperConsent.objects.create(user=pia, tracking_allowed=True)
    with override_settings(RECOMMENDATIONS=REQUIRED):
        browser.post("/accounts/login/", {"username": "pia", "password": PASSWORD})
        assert _cookie(browser, app_settings.VISITOR_COOKIE_NAME)
        browser.get(f"/products/{item.pk}/")
        assert Interaction.objects.get().user == pia
        browser.post("/accounts/logout/")  # the browser itself never said yes
        assert not _cookie(browser, app_settings.VISITOR_COOKIE_NAME)
        browser.get(f"/products/{item.pk}/")
    assert Interaction.objects.count() == 1


def test_api_consent_by_visitor_id():
    item = factories.product()
    api = APIClient(**UA)
    token = factories.visitor_token("phone-7654321")
    events = {"visitor_id": token, "events": [{"event": "view", "item": item.pk}]}
    with override_settings(RECOMMENDATIONS=REQUIRED):
        body = api.post("/api/recommendations/events/", events, format="json").json()
        assert body["tracked"] is False
        state = api.get("/api/recommendations/consent/", HTTP_X_VISITOR_ID=token).json()
        assert state == {"required": True, "consent": None, "tracked": False}
        response = api.post(
            "/api/recommendations/consent/", {"consent": True}, format="json",
            HTTP_X_VISITOR_ID=token,
        )
        assert response.json() == {"required": True, "consent": True, "tracked": True}
        api.cookies.clear()  # an app keeps its visitor id, not cookies
        response = api.post(
            "/api/recommendations/events/", events, format="json", HTTP_X_VISITOR_ID=token
        )
        assert response.json()["tracked"] is True
    assert Interaction.objects.filter(visitor_id="phone-7654321").count() == 1
    api.post(
        "/api/recommendations/consent/", {"consent": False}, format="json",
        HTTP_X_VISITOR_ID=token,
    )
    api.cookies.clear()
    # Opted out, even when the events name the visitor in the body only.
    response = api.post("/api/recommendations/events/", events, format="json")
    assert response.json()["tracked"] is False
    assert ShopperConsent.objects.get(visitor_id="phone-7654321").tracking_allowed is False


def test_api_consent_of_a_signed_in_user_and_a_forged_header():
    api = APIClient(**UA)
    quinn = factories.user()
    api.force_authenticate(quinn)
    response = api.post("/api/recommendations/consent/", {"consent": False}, format="json")
    assert response.status_code == 200 and response.json()["tracked"] is False
    assert ShopperConsent.objects.get(user=quinn).tracking_allowed is False
    anonymous = APIClient(**UA)
    response = anonymous.post(
        "/api/recommendations/consent/", {"consent": True}, format="json",
        HTTP_X_VISITOR_ID="made-up-visitor-id",
    )
    assert response.status_code == 400
    assert anonymous.post("/api/recommendations/consent/", {}, format="json").status_code == 400


def test_another_site_cannot_give_consent_for_a_browser():
    forged = Client(enforce_csrf_checks=True, **UA)
    with override_settings(RECOMMENDATIONS=REQUIRED):
        assert forged.post("/recommendations/consent/").status_code == 403
        response = forged.post("/api/recommendations/consent/", {"consent": "true"})
        assert response.status_code == 403
    assert app_settings.CONSENT_COOKIE_NAME not in forged.cookies


def test_the_demo_shop_shows_no_banner_by_default(browser):
    page = browser.get("/").content.decode()
    assert "consent-banner" not in page and "personal recommendations" not in page


def test_opted_out_customers_are_not_scored():
    regulars, lapsed = purchase_history()
    ShopperConsent.objects.create(user=regulars[0], tracking_allowed=False)
    report = score_customers()
    assert report.customers == len(regulars) + len(lapsed) - 1
    assert not CustomerInsight.objects.filter(user=regulars[0]).exists()
    with override_settings(RECOMMENDATIONS=REQUIRED):
        ShopperConsent.objects.bulk_create(
            [ShopperConsent(user=u, tracking_allowed=True) for u in regulars[1:]]
        )
        report = score_customers()
    assert report.customers == len(regulars) - 1
    assert not CustomerInsight.objects.filter(user__in=lapsed).exists()
