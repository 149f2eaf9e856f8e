"""The app's admin screens on a 1366 x 768 laptop: nothing clipped, nothing covered.

A superuser opens the model versions list (metrics beside three baselines), an experiment
with results, and the merchandising rules list and preview. Every table fits the box it sits
in (no column cut off or hidden behind a scroll bar), every header cell lies inside the
window, and the list's buttons do not cover its intro.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from recommendations.models import (
    Experiment,
    ExperimentVariant,
    Impression,
    Interaction,
    MerchandisingRule,
)
from recommendations.serving import pool
from tests import factories
from tests.e2e.browser import MARKS, SHOPPER_UA

pytestmark = MARKS

LAPTOP = {"width": 1366, "height": 768}
# The default baselines (buy-again, popularity, EASE): the widest metric cells.
SETTINGS = {"TRAINING": {"HOLDOUT_FRACTION": 0.15}, "RELATED_ITEMS_K": 5}

# Each table in the page's content: how wide it is against the box that holds it, and where
# its header cells end.
TABLES = """() => [...document.querySelectorAll('#content table')].map(t => ({
  id: t.id || t.className || '(table)',
  scrollWidth: t.scrollWidth,
  boxWidth: t.parentElement.clientWidth,
  boxRight: t.parentElement.getBoundingClientRect().right,
  headers: [...t.querySelectorAll('thead th')].map(th => ({
    text: th.textContent.trim().replace(/\\s+/g, ' '),
    right: th.getBoundingClientRect().right,
  })),
}))"""


def assert_readable(page, must_show: tuple[str, ...] = ()) -> list[dict]:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url
    tables = page.evaluate(TABLES)
    assert tables, f"no table on {page.url}"
    for table in tables:
        assert table["scrollWidth"] <= table["boxWidth"], (
            f"{table['id']} on {page.url} is {table['scrollWidth']} px wide "
            f"in a {table['boxWidth']} px box"
        )
        for th in table["headers"]:
            limit = min(width, table["boxRight"]) + 0.5
            assert th["right"] <= limit, f"{th['text']!r} ends at {th['right']:.0f} px > {limit}"
    headers = " | ".join(th["text"] for table in tables for th in table["headers"]).lower()
    for text in must_show:
        assert text.lower() in headers, f"{text!r} not among the headers: {headers}"
    return tables


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def experiment_with_results(items, control_version, treatment_version):
    experiment = Experiment.objects.create(
        name="Related: the new model against the active one",
        placement="related",
        starts_at=timezone.now() - timedelta(days=1),
    )
    ExperimentVariant.objects.create(experiment=experiment, name="control", kind="active")
    ExperimentVariant.objects.create(
        experiment=experiment, name="model_a", kind="version", version=treatment_version
    )
    t0 = timezone.now() - timedelta(hours=12)
    shown, events = [], []
    plan = {"control": (control_version, 200, 20, 5), "model_a": (treatment_version, 200, 40, 12)}
    for variant, (version, visitors, clickers, buyers) in plan.items():
        for n in range(visitors):
            vid = f"{variant}-{n}"
            shown.append(
                Impression(
                    placement="related",
                    version_id=version.pk,
                    experiment=experiment,
                    variant=variant,
                    item_ids=[items[1].pk, items[2].pk],
                    visitor_id=vid,
                    created_at=t0,
                )
            )
            if n < clickers:
                events.append(
                    Interaction(
                        visitor_id=vid,
                        item=items[2],
                        event="click",
                        source=f"related:v{version.pk}",
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
                        client_event_id=f"order:{vid}:0",
                        created_at=t0 + timedelta(hours=1),
                    )
                )
    Impression.objects.bulk_create(shown)
    Interaction.objects.bulk_create(events)
    return experiment


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport=LAPTOP, user_agent=SHOPPER_UA)
    yield context.new_page()
    context.close()


def test_admin_screens_are_readable_on_a_laptop(live_server, laptop):
    base = live_server.url
    page = laptop
    with override_settings(RECOMMENDATIONS=SETTINGS):
        items = factories.clustered_log()
        first = factories.trained_version()
        second = factories.trained_version(hyperparameters={"l2": 500.0})
        pool.active_model.clear()
        experiment = experiment_with_results(items, second, first)
        shelf = items[0].category
        MerchandisingRule.objects.create(
            name="No mugs on product pages",
            kind="exclude",
            placement="related",
            category=str(shelf.pk),
        )
        factories.user("boss", password="s3cret-pass-word", is_staff=True, is_superuser=True)

        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "s3cret-pass-word")
        page.click('input[type="submit"]')
        page.wait_for_url(f"{base}/admin/")

        # Model versions: every metric column inside the list, the buttons off the intro.
        page.goto(f"{base}/admin/recommendations/modelversion/")
        assert_readable(page, ("NDCG@20", "new items", "gate passed", "is active"))
        tools = page.locator(".object-tools").bounding_box()
        intro = page.locator("p.rec-note").bounding_box()
        assert not overlaps(tools, intro), (tools, intro)
        assert page.locator("text=Train now").is_visible()

        # An experiment's results: up to the last column (revenue), p-values included.
        page.goto(f"{base}/admin/recommendations/experiment/{experiment.pk}/change/")
        tables = assert_readable(page, ("p, clicks", "p, buyers", "revenue"))
        results = next(t for t in tables if t["id"] == "rec-results-table")
        assert results["headers"][-1]["text"].lower() == "revenue"
        assert page.locator("#rec-results-table").is_visible()

        # Merchandising rules, list and preview: readable, categories by name.
        page.goto(f"{base}/admin/recommendations/merchandisingrule/")
        assert_readable(page, ("item or category", "in force now"))
        assert f"category {shelf.name}" in page.locator("#result_list").inner_text()
        page.goto(
            f"{base}/admin/recommendations/merchandisingrule/preview/"
            f"?list=related&item={items[0].pk}&k=6"
        )
        assert_readable(page, ("served (rules on)",))
        assert f"category {shelf.name}" in page.locator("#content-main").inner_text()
