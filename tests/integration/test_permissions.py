"""The permissions matrix: every endpoint and admin page as anonymous, as another
(non-staff) user and as staff. Admin pages are enumerated from the admin site itself, so a
page added later is covered without editing this file."""

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, URLPattern, reverse

from tests import factories

pytestmark = pytest.mark.django_db
UA = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


def _admin_pages() -> list[str]:
    """Every admin URL that takes no argument: index, each changelist and add page, and the
    custom pages (dashboards, previews) the model admins add."""
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for pattern in model_admin.get_urls():
            if (
                isinstance(pattern, URLPattern)
                and pattern.name
                and not pattern.pattern.regex.groups
            ):
                name = f"admin:{pattern.name}"
                try:
                    urls.append(reverse(name))
                except NoReverseMatch:  # needs arguments after all
                    continue
    return sorted(set(urls))


ADMIN_PAGES = _admin_pages()


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_are_closed_to_anonymous_and_non_staff(client, url):
    response = client.get(url, **UA)
    assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    client.force_login(factories.user())
    response = client.get(url, **UA)
    assert response.status_code in (302, 403), url
    if response.status_code == 302:
        assert "/admin/login/" in response["Location"], url


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_open_to_staff_with_permissions(admin_client, url):
    response = admin_client.get(url, **UA)
    assert response.status_code in (200, 302, 403), url  # some add pages are disabled on purpose
    assert response.status_code != 500


def test_staff_without_model_permissions_cannot_read_the_log(client):
    staff = factories.user(is_staff=True)
    client.force_login(staff)
    url = reverse("admin:recommendations_interaction_changelist")
    assert client.get(url, **UA).status_code == 403


API = [
    ("get", "/api/recommendations/for-me/", 200, 200, 200),
    # Anonymous: 401 with WWW-Authenticate (who are you?); signed in without the right: 403.
    ("get", "/api/recommendations/users/{user}/", 401, 403, 200),
    ("get", "/api/recommendations/items/{item}/related/", 200, 200, 200),
    ("get", "/api/recommendations/items/{item}/bought-together/", 200, 200, 200),
    ("get", "/api/recommendations/popular/", 200, 200, 200),
    ("get", "/api/recommendations/categories/", 200, 200, 200),
    ("get", "/api/schema/", 200, 200, 200),
    ("get", "/api/docs/", 200, 200, 200),
]


@pytest.mark.parametrize(("method", "path", "anonymous", "other", "staff"), API)
def test_api_matrix(client, method, path, anonymous, other, staff):
    owner = factories.user()
    item = factories.product()
    url = path.format(user=owner.pk, item=item.pk)
    assert getattr(client, method)(url, **UA).status_code == anonymous
    client.force_login(factories.user())
    assert getattr(client, method)(url, **UA).status_code == other
    client.force_login(factories.log_reader())
    assert getattr(client, method)(url, **UA).status_code == staff


def test_staff_who_may_not_read_the_log_cannot_read_a_users_list(client):
    # A user's list explains itself with their history ("because you bought X").
    owner = factories.user()
    client.force_login(factories.user(is_staff=True))
    assert client.get(f"/api/recommendations/users/{owner.pk}/", **UA).status_code == 403


def test_events_endpoint_matrix(client):
    item = factories.product()
    body = {"events": [{"event": "view", "item": item.pk}]}
    # anonymous without a visitor id: refused; with one: accepted
    assert (
        client.post(
            "/api/recommendations/events/", body, content_type="application/json", **UA
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/recommendations/events/",
            {**body, "visitor_id": factories.visitor_token("visitor-123")},
            content_type="application/json",
            **UA,
        ).status_code
        == 201
    )


def test_a_shopper_reads_only_their_own_orders(client):
    alice, bob = factories.user(), factories.user()
    from shop.models import Order

    order = Order.objects.create(
        number="A1", user=alice, status="paid", created_at="2026-01-01T00:00Z"
    )
    client.force_login(bob)
    assert client.get(f"/orders/{order.number}/").status_code == 404
    client.force_login(alice)
    assert client.get(f"/orders/{order.number}/").status_code == 200
    client.logout()
    assert client.get(f"/orders/{order.number}/").status_code == 302
