"""A real browser: a carousel card's "not interested" button, pressed from the keyboard,
takes the card away without a reload, and the item stays away."""

import time

from django.test import override_settings

from recommendations.models import Interaction
from recommendations.serving import pool
from tests import factories
from tests.e2e.browser import ARTIFACTS, MARKS, SHOPPER_UA

pytestmark = MARKS


def test_dismissing_a_card_by_keyboard_removes_it_without_a_reload(live_server, browser):
    with override_settings(RECOMMENDATIONS=factories.TRAINED_SETTINGS):
        items = factories.clustered_log()
        factories.trained_version()
        pool.active_model.clear()
        page = browser.new_page(viewport={"width": 1280, "height": 900}, user_agent=SHOPPER_UA)
        product_url = f"{live_server.url}/products/{items[0].pk}/"
        page.goto(product_url)
        related = page.locator('section[data-rec-placement="related"]')
        cards = related.locator("li.rec-card")
        before = cards.count()
        assert before >= 2
        button = related.locator("button.rec-dismiss").first
        target = int(button.get_attribute("data-rec-dismiss"))
        assert button.get_attribute("aria-label").startswith("Not interested in ")
        page.evaluate("window.__notReloaded = true")

        button.focus()
        page.keyboard.press("Enter")

        page.wait_for_function(
            f'!document.querySelector(\'section[data-rec-placement="related"] '
            f'button[data-rec-dismiss="{target}"]\')'
        )
        assert cards.count() == before - 1
        assert page.evaluate("window.__notReloaded === true")  # the same page: no reload
        assert page.url == product_url
        focused = page.evaluate("document.activeElement.className")
        assert focused in {"rec-dismiss", "rec-track"}  # focus stays in the carousel
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "e2e-dismissed-card.png"), full_page=True)

        deadline = time.monotonic() + 10
        row = None
        while row is None and time.monotonic() < deadline:
            row = Interaction.objects.filter(event="not_interested", item_id=target).first()
            time.sleep(0.2)
        assert row is not None, "the dismissal was not recorded"
        assert row.source.startswith("related:")

        page.reload()
        assert page.locator(f'[data-rec-item="{target}"]').count() == 0  # gone for good
