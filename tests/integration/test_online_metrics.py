"""Impressions (cheap, batched), click -> purchase attribution, and the dashboard."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from recommendations.models import Impression, Interaction
from recommendations.serving import impressions, performance
from tests import factories
from tests.factories import BROWSER, TRAINED_SETTINGS

pytestmark = pytest.mark.django_db(transaction=True)




def impression_inserts(queries) -> int:
    return sum(
        1
        for q in queries
        if q["sql"].startswith("INSERT") and "recommendations_impression" in q["sql"]
    )


def _shown(html: str) -> dict[str, list[int]]:
    return {
        placement: [int(pk) for pk in re.findall(r'data-rec-item="(\d+)"', section)]
        for placement, section in re.findall(
            r'data-rec-placement="(\w+)"(.*?)</section>', html, flags=re.S
        )
    }


def test_a_page_of_carousels_costs_no_statement_its_rows_join_the_batch(client, shop):
    items, version = shop
    client.get(f"/products/{items[3].pk}/", **BROWSER)  # a history, so 3 carousels show
    impressions.flush()
    Impression.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/products/{items[0].pk}/", **BROWSER)
    assert impression_inserts(ctx.captured_queries) == 0  # below the batch's thresholds
    shown = _shown(response.content.decode())
    assert len(shown) >= 3 and len(impressions.pending()) == len(shown)
    with CaptureQueriesContext(connection) as ctx:
        assert impressions.flush() == len(shown)
    assert impression_inserts(ctx.captured_queries) == 1  # the whole batch in one INSERT
    rows = {row.placement: row for row in Impression.objects.all()}
    assert set(rows) == set(shown)
    for placement, row in rows.items():
        assert row.item_ids == shown[placement]
        assert row.visitor_id and row.user_id is None
    assert rows["related"].version_id == version.pk
    assert rows["recently_viewed"].version_id is None


@pytest.mark.parametrize("flush", [{"IMPRESSIONS_FLUSH_ROWS": 1}, {"IMPRESSIONS_FLUSH_SECONDS": 0}])
def test_a_due_batch_is_one_insert_written_after_rendering(client, shop, flush):
    items, version = shop
    client.get(f"/products/{items[3].pk}/", **BROWSER)  # a history, so 3 carousels show
    impressions.discard()
    with (
        override_settings(RECOMMENDATIONS={**TRAINED_SETTINGS, **flush}),
        CaptureQueriesContext(connection) as ctx,
    ):
        response = client.get(f"/products/{items[0].pk}/", **BROWSER)
    html = response.content.decode()
    assert impression_inserts(ctx.captured_queries) == 1
    # The INSERT comes after the response was rendered: the last statement but its COMMIT.
    statements = [q["sql"] for q in ctx.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert "recommendations_impression" in statements[-1]
    shown = _shown(html)
    rows = {row.placement: row for row in Impression.objects.all()}
    assert set(rows) == set(shown) and len(rows) >= 3
    for placement, row in rows.items():
        assert row.item_ids == shown[placement]
    assert rows["related"].version_id == version.pk and not impressions.pending()


def test_a_batch_is_written_when_it_reaches_its_size(client, shop):
    items, _ = shop
    with override_settings(RECOMMENDATIONS={**TRAINED_SETTINGS, "IMPRESSIONS_FLUSH_ROWS": 5}):
        client.get(f"/products/{items[0].pk}/", **BROWSER)  # 2 or 3 carousels
        written = Impression.objects.count()
        client.get(f"/products/{items[1].pk}/", **BROWSER)
        client.get(f"/products/{items[2].pk}/", **BROWSER)
    assert written == 0 and Impression.objects.count() >= 5
    assert Impression.objects.count() + len(impressions.pending()) >= 7


def test_the_batch_is_written_at_exit(client, shop):
    items, _ = shop
    client.get(f"/products/{items[0].pk}/", **BROWSER)
    waiting = len(impressions.pending())
    assert waiting >= 2 and not Impression.objects.exists()
    impressions._flush_at_exit()  # what atexit runs when the worker stops
    assert Impression.objects.count() == waiting and not impressions.pending()


def test_signed_in_shoppers_are_logged_with_their_account(client, shop):
    items, _ = shop
    user = factories.user()
    client.force_login(user)
    client.get(f"/products/{items[0].pk}/", **BROWSER)
    impressions.flush()
    assert set(Impression.objects.values_list("user_id", flat=True)) == {user.pk}


def test_bots_and_opted_out_visitors_are_not_logged(client, shop):
    items, _ = shop
    client.get(f"/products/{items[0].pk}/", HTTP_USER_AGENT="curl/8.0")
    client.get(f"/products/{items[0].pk}/", HTTP_USER_AGENT="Mozilla/5.0", HTTP_SEC_GPC="1")
    assert not impressions.pending() and impressions.flush() == 0
    assert not Impression.objects.exists()


def test_outside_a_request_impressions_wait_for_an_explicit_flush(shop):
    items, _ = shop
    request = RequestFactory().get("/", **BROWSER)
    request.user = AnonymousUser()
    request.recommendations_visitor_id = "template-visitor"
    Template("{% load recommendations %}{% related_items item %}{% trending %}").render(
        Context({"request": request, "item": items[0]})
    )
    assert not Impression.objects.exists() and len(impressions.pending()) == 2
    with CaptureQueriesContext(connection) as ctx:
        assert impressions.flush() == 2
    assert impression_inserts(ctx.captured_queries) == 1
    assert len([q for q in ctx.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]) == 1
    assert Impression.objects.filter(visitor_id="template-visitor").count() == 2


# --- attribution and the dashboard ------------------------------------------------------


@pytest.fixture
def activity():
    """Two shoppers shown the related carousel of model v7; one clicks and buys."""
    shelf = factories.category()
    x, y = factories.product(category=shelf), factories.product(category=shelf)
    t = timezone.now() - timedelta(days=2)
    Impression.objects.bulk_create(
        [
            Impression(
                placement="related",
                version_id=7,
                item_ids=[x.pk, y.pk],
                visitor_id=vid,
                created_at=t,
            )
            for vid in ("alice", "bob")
        ]
        + [
            Impression(
                placement="for_you",
                version_id=None,
                item_ids=[y.pk],
                visitor_id="alice",
                created_at=t,
            )
        ]
    )
    rows = [
        ("alice", x, "click", None, "related:v7", t + timedelta(minutes=1)),
        ("alice", x, "purchase", "10.00", "", t + timedelta(hours=2)),  # attributed
        ("alice", x, "purchase", "5.00", "", t + timedelta(hours=30)),  # too late (24 h)
        ("alice", y, "purchase", "7.00", "", t + timedelta(hours=1)),  # never clicked
        ("bob", x, "purchase", "9.00", "", t + timedelta(hours=1)),  # someone else
        ("bob", y, "view", None, "", t),
    ]
    Interaction.objects.bulk_create(
        Interaction(
            visitor_id=v,
            item=i,
            event=e,
            value=val and Decimal(val),
            source=s,
            # Purchases as the shop's checkout records them (verified); clicks carry no id.
            client_event_id=f"order:{n}:0" if e == "purchase" else None,
            created_at=when,
        )
        for n, (v, i, e, val, s, when) in enumerate(rows)
    )
    return x, y


def test_a_purchase_counts_when_it_follows_a_click_within_the_window(activity):
    p = performance.period(7)
    metrics = performance.online_metrics(p)
    related = dict(metrics["placements"])["related"]
    assert (related.impressions, related.clicks, related.purchases) == (2, 1, 1)
    assert related.ctr == 0.5 and related.conversion == 1.0 and related.revenue == 10.0
    v7 = dict(metrics["versions"])["v7"]
    assert (v7.impressions, v7.clicks, v7.revenue) == (2, 1, 10.0)
    assert dict(metrics["placements"])["for_you"].clicks == 0
    assert metrics["matched_clicks"] == 1
    assert sum(metrics["placement_days"]["related"]["revenue"]) == 10.0

    with override_settings(RECOMMENDATIONS={"ATTRIBUTION_WINDOW_HOURS": 48}):
        related = dict(performance.online_metrics(p)["placements"])["related"]
    assert related.purchases == 2 and related.revenue == 15.0


def test_interaction_stats_and_coverage(activity):
    p = performance.period(7)
    stats = performance.interaction_stats(p)
    assert dict(stats["totals"]) == {"Purchase": 4, "Recommendation click": 1, "View": 1}
    assert stats["active_shoppers"] == 2 and sum(stats["per_type"]["Purchase"]) == 4
    assert max(stats["active_per_day"]) == 2
    cover = performance.coverage(p)
    assert cover["catalogue"] == 2 and cover["all"] == (2, 1.0)
    assert dict((name, n) for name, n, _ in cover["placements"]) == {"related": 2, "for_you": 1}


def test_the_dashboard_page_shows_charts_and_tables(admin_client, activity):
    url = reverse("admin:recommendations_onlinemetrics_changelist")
    response = admin_client.get(url, {"days": 7})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="rec-chart"') == 6
    for title in ("CTR per day, by placement", "Attributed revenue per day", "Events per day"):
        assert title in html
    table = re.search(r'id="rec-by-placement".*?</table>', html, flags=re.S).group(0)
    assert "related" in table and "50.00%" in table and "10.00" in table
    assert "v7" in re.search(r'id="rec-by-version".*?</table>', html, flags=re.S).group(0)
    assert "<script" not in html.split('id="content-main"')[1]

    # A quiet period says where the data is.
    response = admin_client.get(url, {"days": 7, "end": "2001-01-01"})
    assert response.context["hint"] == timezone.localdate(
        Interaction.objects.latest("created_at").created_at
    )


def test_the_dashboard_needs_its_view_permission(client, activity):
    url = reverse("admin:recommendations_onlinemetrics_changelist")
    staff = factories.user(is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_onlinemetrics"))
    assert client.get(url).status_code == 200
