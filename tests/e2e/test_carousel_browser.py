"""A real browser (Debian's Chromium driven by Playwright) against the live shop."""

import os
import time
from pathlib import Path

import pytest
from django.test import override_settings

from recommendations import services
from recommendations.models import Interaction
from tests import factories

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOPPER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0 Safari/537.36"
)
SETTINGS = {"TRAINING": {"HOLDOUT_FRACTION": 0.15, "BASELINES": ["pop"]}, "RELATED_ITEMS_K": 5}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
    ),
]


@pytest.fixture
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_carousels_render_and_a_click_is_attributed(live_server, browser):
    with override_settings(RECOMMENDATIONS=SETTINGS):
        items = factories.clustered_log()
        version = factories.trained_version()
        services.active_model.clear()
        # Headless Chromium says "HeadlessChrome", which tracking drops as a bot: look human.
        page = browser.new_page(viewport={"width": 1280, "height": 900}, user_agent=SHOPPER_UA)
        page.goto(live_server.url + "/")
        home_carousel = page.locator("section.rec-carousel").first
        assert home_carousel.is_visible()
        assert page.locator("section.rec-carousel li.rec-card").count() >= 4

        page.goto(f"{live_server.url}/products/{items[0].pk}/")
        related = page.locator('section[data-rec-placement="related"]')
        assert related.is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "e2e-product-page.png"), full_page=True)

        link = related.locator("a.rec-link").first
        target = int(link.get_attribute("data-rec-item"))
        link.click()
        page.wait_for_url(f"**/products/{target}/**")
        assert page.locator("h1").inner_text().upper() == next(
            p.name for p in items if p.pk == target
        )

        deadline = time.monotonic() + 10
        click = None
        while click is None and time.monotonic() < deadline:
            click = Interaction.objects.filter(event="click", item_id=target).first()
            time.sleep(0.2)
        assert click is not None, "the beacon did not record the click"
        assert click.source == f"related:v{version.pk}"
        view = Interaction.objects.filter(event="view", item_id=target).latest("created_at")
        assert view.source == f"related:v{version.pk}"  # the landing page visit is attributed too
