"""A staff user in a real browser: train now, activate / roll back, and a pin rule's life."""

import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from recommendations.models import ModelVersion
from recommendations.serving import pool
from tests import factories
from tests.e2e.browser import ARTIFACTS, MARKS, SHOPPER_UA

SETTINGS = {
    "TRAINING": {
        "HOLDOUT_FRACTION": 0.15,
        "BASELINES": ["pop"],
        "ALGORITHM": "vae",
        "HYPERPARAMETERS": {"epochs": 4, "hidden": 32, "latent": 8, "batch_size": 64},
    },
    "RELATED_ITEMS_K": 5,
}

pytestmark = MARKS


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1400, "height": 1000}, user_agent=SHOPPER_UA)


def served_version(page, base, item) -> int:
    page.goto(f"{base}/api/recommendations/items/{item.pk}/related/?format=json")
    return json.loads(page.locator("body").inner_text())["version"]


def run_action(page, base, name, version):
    page.goto(f"{base}/admin/recommendations/modelversion/")
    page.check(f'input[name="_selected_action"][value="{version.pk}"]')
    page.select_option('select[name="action"]', name)
    page.click('button[name="index"]')
    page.wait_for_load_state()


def first_related(page, base, item) -> int:
    page.goto(f"{base}/products/{item.pk}/")
    link = page.locator('section[data-rec-placement="related"] a.rec-link').first
    return int(link.get_attribute("data-rec-item"))


def test_staff_operate_versions_and_rules_in_the_browser(live_server, page, monkeypatch):
    base = live_server.url
    with override_settings(RECOMMENDATIONS=SETTINGS):
        items = factories.clustered_log()
        first = factories.trained_version(hyperparameters={"l2": 10.0})
        pool.active_model.clear()
        factories.user("boss", password="s3cret-pass-word", is_staff=True, is_superuser=True)

        page.goto(f"{base}/admin/login/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "s3cret-pass-word")
        page.click('input[type="submit"]')
        page.wait_for_url(f"{base}/admin/")

        # Train now: a new version appears with its metrics and charts.
        page.goto(f"{base}/admin/recommendations/modelversion/")
        page.click("text=Train now")
        page.wait_for_load_state()
        new = ModelVersion.objects.latest()
        assert new.pk != first.pk and new.status == "succeeded", new.error
        assert f"Queued the training of v{new.pk}" in page.locator("ul.messagelist").inner_text()
        assert page.locator(f"text=v{new.pk}").first.is_visible()
        page.click(f'a:text-is("v{new.pk}")')
        page.wait_for_url(f"**/modelversion/{new.pk}/change/")
        page.wait_for_selector("svg.rec-chart")
        assert page.locator("svg.rec-chart").count() >= 3  # metrics + loss + validation
        title = page.locator("svg.rec-chart > text", has_text="Training loss per epoch")
        assert title.is_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "e2e-admin-version.png"), full_page=True)

        # Activate the first version, then roll back: the API follows.
        current = ModelVersion.objects.get(is_active=True)
        other = first if current.pk != first.pk else new
        run_action(page, base, "activate", other)
        assert served_version(page, base, items[0]) == other.pk
        page.goto(f"{base}/admin/recommendations/modelversion/")
        page.click("text=Roll back to")
        page.wait_for_load_state()
        assert served_version(page, base, items[0]) == current.pk

        # A pin rule: first in the carousel until its end.
        cluster = items[0].name.split()[1]
        pinned = next(p for p in reversed(items) if p.name.split()[1] != cluster)
        assert first_related(page, base, items[0]) != pinned.pk
        end = timezone.localtime(timezone.now() + timedelta(hours=1))
        page.goto(f"{base}/admin/recommendations/merchandisingrule/add/")
        page.fill("#id_name", "Pin for the browser test")
        page.select_option("#id_kind", "pin")
        page.fill("#id_placement", "related")
        page.fill("#id_item", str(pinned.pk))
        page.fill("#id_position", "1")
        page.fill("#id_ends_at_0", end.strftime("%Y-%m-%d"))
        page.fill("#id_ends_at_1", end.strftime("%H:%M:%S"))
        page.click('input[name="_save"]')
        page.wait_for_load_state()
        assert "was added successfully" in page.locator("ul.messagelist").inner_text()
        assert first_related(page, base, items[0]) == pinned.pk
        page.screenshot(path=str(ARTIFACTS / "e2e-pinned-carousel.png"), full_page=True)
        page.goto(
            f"{base}/admin/recommendations/merchandisingrule/preview/"
            f"?list=related&item={items[0].pk}&k=6"
        )
        assert page.locator("#rec-preview-table tbody tr").count() == 6
        page.screenshot(path=str(ARTIFACTS / "e2e-admin-preview.png"), full_page=True)
        page.goto(f"{base}/admin/recommendations/onlinemetrics/")
        assert page.locator("svg.rec-chart").count() == 6
        assert "related" in page.locator("#rec-by-placement").inner_text()
        page.screenshot(path=str(ARTIFACTS / "e2e-admin-dashboard.png"), full_page=True)

        later = timezone.now() + timedelta(hours=1, minutes=5)
        monkeypatch.setattr(timezone, "now", lambda: later)  # the live server shares it
        assert first_related(page, base, items[0]) != pinned.pk
