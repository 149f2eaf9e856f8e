"""Customer insights: scored from the purchase log, shown to staff who may see them."""

import csv
import io
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from recommendations.learning.insights import NotEnoughCustomers, score_customers
from recommendations.models import CustomerInsight, Interaction
from recommendations.tracking.privacy import export, forget
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def purchase_history(n_customers: int = 60, seed: int = 0):
    """Signed-in customers ordering over a year: the regulars still buy every few weeks,
    the lapsed stopped months ago. Returns (regulars, lapsed)."""
    rng = random.Random(seed)
    items = [factories.product(price=Decimal("4.00")) for _ in range(6)]
    now = timezone.now()
    regulars, lapsed, rows = [], [], []
    users = get_user_model().objects.bulk_create(  # no password hashing: many customers
        [get_user_model()(username=f"customer-{seed}-{n}") for n in range(n_customers)]
    )
    for n, user in enumerate(users):
        stops = n % 3 == 0  # a third stop buying half a year ago
        (lapsed if stops else regulars).append(user)
        day = rng.uniform(300, 360)
        order = 0
        while day > (180 if stops else 1):
            for item in rng.sample(items, 2):
                rows.append(Interaction(
                    user=user, item=item, event="purchase", quantity=2,
                    value=Decimal(f"{rng.uniform(6, 30):.2f}"),
                    client_event_id=f"order:{user.pk}-{order}:{item.pk}",
                    created_at=now - timedelta(days=day),
                ))
            order += 1
            day -= rng.uniform(10, 40)
    Interaction.objects.bulk_create(rows)
    return regulars, lapsed


def insight_reader(**fields):
    staff = factories.user(is_staff=True, **fields)
    staff.user_permissions.add(Permission.objects.get(codename="view_customerinsight"))
    return staff


def test_customers_are_scored_and_the_lapsed_ranked_riskier():
    regulars, lapsed = purchase_history()
    report = score_customers()
    assert report.customers == len(regulars) + len(lapsed)
    risk = dict(CustomerInsight.objects.values_list("user_id", "churn_risk"))
    mean = lambda users: sum(risk[u.pk] for u in users) / len(users)  # noqa: E731
    assert mean(lapsed) > mean(regulars) + 0.2, (mean(lapsed), mean(regulars))
    insight = CustomerInsight.objects.get(user=regulars[0])
    assert insight.orders >= 3 and insight.expected_spend > 0 and insight.horizon_days == 90
    assert insight.price_bands  # what they paid a unit, per category
    assert all(3 <= low <= high <= 15 for low, high in insight.price_bands.values())


def test_too_few_customers_is_a_clear_error_and_nothing_is_written():
    purchase_history(n_customers=5)
    with pytest.raises(NotEnoughCustomers, match=r"\d"):
        score_customers()
    assert not CustomerInsight.objects.exists()
    with pytest.raises(CommandError, match="customers"):
        call_command("recommendations_insights", "--score")


def test_insights_are_personal_data_erased_and_exported_with_the_rest():
    regulars, _ = purchase_history()
    score_customers()
    someone = regulars[0]
    assert export(user_id=someone.pk)["recommendations.CustomerInsight"]
    forget(user_id=someone.pk)
    assert not CustomerInsight.objects.filter(user=someone).exists()
    assert CustomerInsight.objects.exists()  # nobody else's


def test_the_command_writes_a_csv_for_campaign_tools(tmp_path):
    purchase_history()
    out = tmp_path / "at-risk.csv"
    call_command("recommendations_insights", "--score", "--output", str(out), "--min-risk", "0.5")
    rows = list(csv.DictReader(out.open()))
    assert rows and all(float(r["churn_risk"]) >= 0.5 for r in rows)
    assert [float(r["churn_risk"]) for r in rows] == sorted(
        (float(r["churn_risk"]) for r in rows), reverse=True
    )
    with pytest.raises(CommandError, match="probability"):
        call_command("recommendations_insights", "--min-risk", "2")


def test_the_api_answers_staff_who_may_see_insights_only(client):
    regulars, _ = purchase_history()
    score_customers()
    url = f"/api/recommendations/customers/{regulars[0].pk}/insights/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(factories.user(is_staff=True))  # staff, without the permission
    assert client.get(url).status_code == 403
    client.force_login(insight_reader())
    response = client.get(url)
    assert response.status_code == 200 and "private" in response["Cache-Control"]
    body = response.json()
    assert body["user"] == regulars[0].pk and 0 <= body["churn_risk"] <= 1
    assert client.get("/api/recommendations/customers/999999/insights/").status_code == 404


def test_the_admin_lists_customers_at_risk_and_exports_them(admin_client):
    purchase_history()
    with override_settings(RECOMMENDATIONS=factories.TRAINED_SETTINGS):
        score_customers()
        page = admin_client.get("/admin/recommendations/customerinsight/?o=-2")
        assert page.status_code == 200
        html = page.content.decode()
        assert "churn risk" in html.lower() and "win-back" in html.lower()
        high = admin_client.get("/admin/recommendations/customerinsight/?risk=high")
        assert high.status_code == 200
        ids = list(CustomerInsight.objects.values_list("pk", flat=True)[:5])
        response = admin_client.post(
            "/admin/recommendations/customerinsight/",
            {"action": "export_csv", "_selected_action": ids},
        )
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5 and {"user_id", "churn_risk", "expected_spend"} <= set(rows[0])
