"""The demo shop on a phone (390 x 844): no page scrolls sideways, key controls stay on screen.

Every shop page is visited in a real Chromium with a phone-sized viewport: home, the product
list (all, a category, a search), a product page with its carousels, the cart, the login and
sign-up forms, checkout, the order list and an order. On each, the document may be no wider
than the window, and the controls a shopper needs there (Search, the cart's Update and Remove,
Checkout, Pay) must lie inside it.
"""

import pytest
from django.test import override_settings

from recommendations.serving import pool
from shop.models import Category, Product
from tests import factories
from tests.e2e.browser import MARKS, SHOPPER_UA

pytestmark = MARKS

PHONE = {"width": 390, "height": 844}
PASSWORD = "s3cret-pass-word"
# Real names from the online-retail catalogue: long, upper case, hard to break.
LONG_NAMES = [
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "SET OF 3 CAKE TINS PANTRY DESIGN",
    "PAPER CHAIN KIT 50'S CHRISTMAS",
    "REGENCY CAKESTAND 3 TIER",
    "JUMBO BAG PINK VINTAGE PAISLEY",
    "LUNCH BAG RED RETROSPOT",
    "ASSORTED COLOUR BIRD ORNAMENT",
    "SMALL POPCORN HOLDER",
]

# How wide the page is, and which elements stick out past the window's right edge (those
# inside a scroll container, such as a carousel's track, do not count: they scroll inside it).
MEASURE = """() => {
  const width = window.innerWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 0.5 && !scrolls(el)) {
      out.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
               + ' ' + Math.round(r.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
          offenders: out.slice(0, 8)};
}"""


def within_viewport(page, selector: str) -> None:
    """The first element matching ``selector`` is visible and wholly inside the window."""
    control = page.locator(selector).first
    assert control.is_visible(), f"{selector} is not visible on {page.url}"
    box = control.bounding_box()
    width = page.evaluate("window.innerWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (
        f"{selector} spans {box['x']:.0f}-{box['x'] + box['width']:.0f} px "
        f"in a {width} px window on {page.url}"
    )


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, user_agent=SHOPPER_UA, has_touch=True)
    yield context.new_page()
    context.close()


def test_every_shop_page_fits_a_phone(live_server, phone):
    base = live_server.url
    with override_settings(RECOMMENDATIONS=factories.TRAINED_SETTINGS):
        items = factories.clustered_log()
        factories.trained_version()
        pool.active_model.clear()
        Category.objects.filter(pk=items[0].category_id).update(
            name="Christmas decorations and party supplies"
        )
        for item, name in zip(items, LONG_NAMES * 5, strict=False):
            Product.objects.filter(pk=item.pk).update(name=name)
        factories.user("shopper_with_a_long_name", password=PASSWORD)
        product = items[0]
        category = Category.objects.get(pk=product.category_id)

        widths = {}

        def visit(name: str, url: str | None = None) -> None:
            if url is not None:
                phone.goto(base + url)
            phone.wait_for_load_state()
            got = phone.evaluate(MEASURE)
            widths[name] = got["scrollWidth"]
            assert got["scrollWidth"] <= got["innerWidth"], (
                f"{name} ({phone.url}) is {got['scrollWidth']} px wide in a "
                f"{got['innerWidth']} px window; sticking out: {got['offenders']}"
            )

        visit("home", "/")
        within_viewport(phone, ".search button")
        within_viewport(phone, ".account a[href$='/cart/']")
        visit("product list", "/products/")
        visit("category", f"/products/?category={category.slug}")
        visit("search", "/products/?q=cake+tins")
        visit("product", f"/products/{product.pk}/")
        assert phone.locator('section[data-rec-placement="related"] li.rec-card').count() >= 1
        within_viewport(phone, ".add-to-cart button")
        phone.click(".add-to-cart button")
        phone.wait_for_url("**/cart/")
        phone.goto(f"{base}/products/{items[4].pk}/")
        phone.click(".add-to-cart button")
        phone.wait_for_url("**/cart/")
        visit("cart")
        assert phone.locator(".cart-line").count() == 2
        for control in (
            ".cart-line button:text-is('Remove')",
            ".cart-line button:text-is('Update')",
            ".cart-line input[type=number]",
            "a.button:text-is('Checkout')",
        ):
            within_viewport(phone, control)

        visit("signup", "/accounts/signup/")
        visit("login", "/accounts/login/?next=/checkout/")
        phone.fill("#id_username", "shopper_with_a_long_name")
        phone.fill("#id_password", PASSWORD)
        phone.click("form.stacked button[type=submit]")
        phone.wait_for_url("**/checkout/")
        visit("checkout")
        within_viewport(phone, "form button.primary")
        phone.click("form button.primary")
        phone.wait_for_url("**/orders/W*/")
        visit("order")
        visit("orders", "/orders/")
        visit("cart (empty)", "/cart/")
        print("\nscrollWidth at 390 px:", widths)
