"""How the app sees a django-oscar catalogue: ``RECOMMENDATIONS["ADAPTER"] =
"recommendations.contrib.oscar.adapter.OscarAdapter"``.

Oscar keeps price and stock on stock records, chosen per shopper by its *strategy*, and
lets a product sit in several categories. This adapter asks Oscar for each of them, so
carousels show what Oscar's own pages show: only public products that can be bought, at
the strategy's price, in the stock record's currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from oscar.core.loading import get_class, get_model
from oscar.templatetags.currency_filters import currency as oscar_currency

from ...adapters import DefaultAdapter


class OscarAdapter(DefaultAdapter):
    """Items are Oscar's ``catalogue.Product``: parents and standalone products (what
    Oscar browses); a variant's events count for its parent (see :func:`tracked_item`)."""

    #: Oscar's many-to-many: the admin's rule form lists Oscar's categories from it.
    category_field = "categories"
    #: visible_items() is the same SQL every time (stock is still read on every list).
    static_visibility = True

    # --- the catalogue --------------------------------------------------------------
    def products(self) -> QuerySet:
        """Every product, as a plain queryset (for SQL: subqueries and id lists)."""
        return get_model("catalogue", "Product")._default_manager.all()

    def item_queryset(self) -> QuerySet:
        """Products with what payloads, rules and prices read, in four queries for any
        number of products (serving caches these objects for the catalogue epoch)."""
        return (
            self.products()
            .select_related("parent", "product_class")
            .prefetch_related("categories", "images", "stockrecords")
        )

    def visible_items(self, queryset: QuerySet | None = None) -> QuerySet:
        """Public browsable products that Oscar's default strategy would sell now: a stock
        record with a price and free stock (``num_in_stock - num_allocated > 0``), or any
        priced record where the product class does not track stock; a parent through its
        public variants. A shop with another strategy overrides this in SQL of its own."""
        qs = self.products() if queryset is None else queryset
        records = get_model("partner", "StockRecord")._default_manager.filter(
            price__isnull=False
        ).alias(free=Coalesce("num_in_stock", 0) - Coalesce("num_allocated", 0))
        own = records.filter(product=OuterRef("pk")).filter(
            Q(free__gt=0) | Q(product__product_class__track_stock=False)
        )
        variants = records.filter(product__parent=OuterRef("pk"), product__is_public=True).filter(
            Q(free__gt=0) | Q(product__parent__product_class__track_stock=False)
        )
        return qs.filter(is_public=True, parent__isnull=True).filter(
            Exists(own) | Exists(variants)
        )

    def item_category_ids(self, item: Model) -> tuple[Any, ...]:
        """The product's own categories (a variant's are its parent's), lowest id first."""
        product = item.parent if item.is_child else item
        return tuple(sorted(category.pk for category in product.categories.all()))

    def item_category_id(self, item: Model) -> Any:
        ids = self.item_category_ids(item)
        return ids[0] if ids else None

    def item_content(self, item: Model) -> str:
        product = item.parent if item.is_child else item
        names = " ".join(category.name for category in product.categories.all())
        return " ".join([item.get_title(), item.description or "", names])

    # --- price, through Oscar's strategy ----------------------------------------------
    def strategy(self) -> Any:
        """Oscar's strategy for no particular shopper: payloads are shared by every shopper
        for the catalogue epoch, so a per-customer price cannot be shown in them."""
        return get_class("partner.strategy", "Selector")().strategy()

    def price(self, item: Model) -> tuple[Decimal | None, str]:
        """The price Oscar's product page shows (tax included when the strategy knows it)
        and its currency; ``(None, "")`` when the strategy has no price."""
        strategy = self.strategy()
        if item.is_parent:
            info = strategy.fetch_for_parent(item)
        else:
            info = strategy.fetch_for_product(item)
        price = info.price
        if not price.exists:
            return None, ""
        amount = price.incl_tax if price.is_tax_known else price.excl_tax
        return amount, price.currency

    def item_price(self, item: Model) -> float | None:
        amount, _ = self.price(item)
        return None if amount is None else float(amount)

    def item_payload(self, item: Model) -> dict[str, Any]:
        amount, code = self.price(item)
        image = item.primary_image()
        product = item.parent if item.is_child else item
        return {
            "id": item.pk,
            "name": item.get_title(),
            "upc": item.upc or "",
            "price": None if amount is None else str(amount),
            "currency": code,
            "url": item.get_absolute_url(),
            "image": "" if isinstance(image, dict) else image.original.url,
            "categories": [category.name for category in product.categories.all()],
        }

    def format_price(self, payload: dict[str, Any]) -> str:
        """Oscar's own ``currency`` filter: the same text as Oscar's pages (Babel, the page's
        language, ``OSCAR_CURRENCY_FORMAT``)."""
        price = payload.get("price")
        if price is None or price == "":
            return ""
        return oscar_currency(price, payload.get("currency") or None)


def tracked_item(product: Model) -> Model:
    """The product an event counts for: a variant's parent, the product Oscar lists."""
    return product.parent if product.is_child and product.parent_id else product
