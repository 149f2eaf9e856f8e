"""A real browser (Debian's Chromium driven by Playwright) against the live shop."""

import time

from django.test import override_settings

from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories
from tests.e2e.browser import ARTIFACTS, MARKS, SHOPPER_UA

pytestmark = MARKS


def test_carousels_render_and_a_click_is_attributed(live_server, browser):
    with override_settings(RECOMMENDATIONS=factories.TRAINED_SETTINGS):
        items = factories.clustered_log()
        version = factories.trained_version()
        pool.active_model.clear()
        page = browser.new_page(viewport={"width": 1280, "height": 900}, user_agent=SHOPPER_UA)
        page.goto(live_server.url + "/")
        home_carousel = page.locator("section.rec-carousel").first
        assert home_carousel.is_visible()
        assert page.locator("section.rec-carousel li.rec-card").count() >= 4

        page.goto(f"{live_server.url}/products/{items[0].pk}/")
        related = page.locator('section[data-rec-placement="related"]')
        assert related.is_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
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


def test_the_beacon_posts_where_the_shop_mounted_the_app(live_server, browser):
    """The app's URLs under another prefix: the browser's click reaches the moved endpoint
    (reversed into the page), not the old hard-coded path."""
    from tests.urls_prefixed import PREFIX

    with override_settings(
        RECOMMENDATIONS=factories.TRAINED_SETTINGS, ROOT_URLCONF="tests.urls_prefixed"
    ):
        items = factories.clustered_log()
        factories.trained_version()
        pool.active_model.clear()
        page = browser.new_page(user_agent=SHOPPER_UA)
        posted = []
        page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
        page.goto(f"{live_server.url}/products/{items[0].pk}/")
        link = page.locator('section[data-rec-placement="related"] a.rec-link').first
        target = int(link.get_attribute("data-rec-item"))
        link.click()
        page.wait_for_url(f"**/products/{target}/**")
        deadline = time.monotonic() + 10
        while not Interaction.objects.filter(event="click", item_id=target).exists():
            assert time.monotonic() < deadline, f"no click recorded; posts: {posted}"
            time.sleep(0.2)
        assert f"{live_server.url}/{PREFIX}recommendations/click/" in posted
