"""A/B tests: deterministic assignment, each visitor served their variant, the statistics."""

import math
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from recommendations import serving
from recommendations.models import Experiment, ExperimentVariant, Impression, Interaction
from recommendations.serving import experiments, impressions, pool
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS = {"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}, "RELATED_ITEMS_K": 5}
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 Firefox/130.0"}


def test_the_z_test_matches_a_hand_computed_value():
    # 30/1000 against 50/1000: pooled p = 0.04, se = sqrt(0.04 * 0.96 * 2/1000) = 0.0087636,
    # z = 0.02 / 0.0087636 = 2.2822; a normal table gives 2 * (1 - 0.98876) = 0.0225.
    test = experiments.two_proportion_z_test(30, 1000, 50, 1000)
    assert test.z == pytest.approx(2.2822, abs=1e-4)
    assert test.p_value == pytest.approx(0.02248, abs=1e-5)
    assert test.significant
    # Symmetric, and no evidence without a difference or without data.
    assert experiments.two_proportion_z_test(50, 1000, 30, 1000).z == pytest.approx(-test.z)
    assert experiments.two_proportion_z_test(40, 1000, 40, 1000).p_value == pytest.approx(1.0)
    assert experiments.two_proportion_z_test(0, 100, 0, 100).p_value == 1.0
    assert experiments.two_proportion_z_test(1, 0, 1, 10) is None
    # The sample size for 10% -> 12% (80% power, 5% level) is the textbook 3,839 per arm.
    assert experiments.sample_size_per_variant(0.10, 0.2) == 3839


def _running(weights):
    variants = tuple(experiments.Variant(1, name, "active", None, w) for name, w in weights.items())
    return experiments.RunningExperiment(1, "t", "related", timezone.now(), None, variants)


def test_assignment_is_deterministic_and_follows_the_weights():
    even = _running({"A": 50, "B": 50})
    keys = [f"visitor-{n}" for n in range(4000)]
    first = [experiments.assign(even, k).name for k in keys]
    assert first == [experiments.assign(even, k).name for k in keys]
    share = Counter(first)["A"] / len(keys)
    assert 0.47 < share < 0.53
    skewed = Counter(experiments.assign(_running({"A": 90, "B": 10}), k).name for k in keys)
    assert 0.87 < skewed["A"] / len(keys) < 0.93
    off = Counter(experiments.assign(_running({"A": 100, "B": 0}), k).name for k in keys)
    assert off == {"A": len(keys)}
    assert experiments.assign(even, "") is None
    assert experiments.visitor_key(None, "abc") == "abc"


@pytest.fixture
def shop():
    with override_settings(RECOMMENDATIONS=SETTINGS):
        items = factories.clustered_log()
        first = factories.trained_version(hyperparameters={"l2": 10.0})
        second = factories.trained_version(hyperparameters={"l2": 500.0})
        pool.active_model.clear()
        yield items, first, second


def _experiment(placement="related", **arms):
    experiment = Experiment.objects.create(
        name=f"test {placement}", placement=placement, starts_at=timezone.now() - timedelta(1)
    )
    for name, (kind, version) in arms.items():
        ExperimentVariant.objects.create(
            experiment=experiment, name=name, kind=kind, version=version, weight=50
        )
    return experiment


def test_each_visitor_is_served_their_variant_on_every_page(shop):
    items, first, second = shop
    experiment = _experiment(A=("version", first), B=("active", None))
    seen = {}
    for _ in range(12):
        browser = Client()
        browser.get(f"/products/{items[0].pk}/", **BROWSER)
        browser.get(f"/products/{items[1].pk}/", **BROWSER)
        impressions.flush()  # written in batches: write what the two pages logged
        rows = list(Impression.objects.filter(placement="related").order_by("-pk")[:2])
        assert rows[0].visitor_id == rows[1].visitor_id
        assert rows[0].variant == rows[1].variant  # the same arm on every page
        expected = experiments.assign(
            experiments.experiment_for("related"), rows[0].visitor_id
        ).name
        assert rows[0].variant == expected and rows[0].experiment_id == experiment.pk
        seen[rows[0].variant] = {r.version_id for r in rows}
        if len(seen) == 2:
            break
    assert seen == {"A": {first.pk}, "B": {second.pk}}
    # Other placements are not in the experiment.
    assert not Impression.objects.exclude(placement="related").exclude(experiment=None).exists()


def test_the_popularity_arm_serves_no_model(shop):
    items, _, second = shop
    _experiment(A=("popular", None), B=("active", None))
    arm = experiments.experiment_for("related")
    key = next(f"v{n}" for n in range(100) if experiments.assign(arm, f"v{n}").name == "A")
    with experiments.serving("related", None, key) as variant:
        result = serving.related_to(items[0], k=5)
    assert variant.name == "A" and result.version_id is None
    assert {r.strategy for r in result} <= {"category_popular", "popular"}
    assert serving.related_to(items[0], k=5).version_id == second.pk  # outside: the model


def test_results_count_visitors_clicks_and_purchases_per_variant(admin_client, shop):
    items, first, second = shop
    experiment = _experiment(control=("active", None), model_a=("version", first))
    t0 = timezone.now() - timedelta(hours=12)
    rows, events = [], []
    plan = {"control": (200, 20, 5), "model_a": (200, 40, 12)}  # visitors, clickers, buyers
    for variant, (visitors, clickers, buyers) in plan.items():
        version = second.pk if variant == "control" else first.pk
        for n in range(visitors):
            vid = f"{variant}-{n}"
            for repeat in range(2):
                rows.append(
                    Impression(
                        placement="related",
                        version_id=version,
                        experiment=experiment,
                        variant=variant,
                        item_ids=[items[1].pk, items[2].pk],
                        visitor_id=vid,
                        created_at=t0 + timedelta(minutes=repeat),
                    )
                )
            if n < clickers:
                events.append(
                    Interaction(
                        visitor_id=vid,
                        item=items[2],
                        event="click",
                        source=f"related:v{version}",
                        created_at=t0 + timedelta(minutes=5),
                    )
                )
            if n < buyers:
                events.append(
                    Interaction(
                        visitor_id=vid,
                        item=items[2],
                        event="purchase",
                        value=Decimal("4.00"),
                        client_event_id=f"order:{vid}:0",  # the shop's own (verified)
                        created_at=t0 + timedelta(hours=1),
                    )
                )
    Impression.objects.bulk_create(rows)
    Interaction.objects.bulk_create(events)

    data = experiments.results(experiment)
    control, treatment = data["variants"]
    assert (control.name, control.visitors, control.impressions) == ("control", 200, 400)
    assert (control.clicks, control.clickers, control.converters) == (20, 20, 5)
    assert (treatment.clickers, treatment.converters, treatment.revenue) == (40, 12, 48.0)
    assert treatment.ctr == pytest.approx(40 / 400)
    expected = experiments.two_proportion_z_test(20, 200, 40, 200)
    assert treatment.click_test == expected and treatment.click_test.p_value < 0.01
    # The conversion test: 5/200 vs 12/200.
    pooled = 17 / 400
    z = (12 / 200 - 5 / 200) / math.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert treatment.conversion_test.z == pytest.approx(z)
    assert control.click_test is None and data["needed_per_variant"] > 0

    page = admin_client.get(
        reverse("admin:recommendations_experiment_change", args=[experiment.pk])
    )
    html = page.content.decode()
    assert page.status_code == 200 and "(control)" in html and "<svg" in html
    assert f"{expected.p_value:.4f}" in html


def test_the_admin_creates_an_experiment_with_two_valid_variants(admin_client, shop):
    _, first, _ = shop
    url = reverse("admin:recommendations_experiment_add")
    form = {
        "name": "vae vs pop",
        "placement": "for_you",
        "is_active": "on",
        "starts_at_0": timezone.localdate().isoformat(),
        "starts_at_1": "00:00:00",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "model",
        "variants-0-kind": "version",
        "variants-0-weight": "50",
        "variants-1-name": "popular",
        "variants-1-kind": "popular",
        "variants-1-weight": "50",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 200  # variant "model" names no version
    assert "Choose the version" in response.content.decode()
    response = admin_client.post(url, {**form, "variants-0-version": str(first.pk)})
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert [v.kind for v in experiment.variants.all()] == ["version", "popular"]
    assert experiments.experiment_for("for_you").pk == experiment.pk  # the cache was dropped

    response = admin_client.post(
        reverse("admin:recommendations_experiment_changelist"),
        {"action": "stop", "_selected_action": [experiment.pk]},
        follow=True,
    )
    assert "Stopped 1 experiment." in [str(m) for m in response.context["messages"]]
    assert experiments.experiment_for("for_you") is None
