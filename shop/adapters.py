"""How `recommendations` sees this shop's catalogue (named in RECOMMENDATIONS['ADAPTER'])."""

from typing import Any

from django.db.models import Model, QuerySet

from recommendations.adapters import DefaultAdapter

from .models import Product


class ShopAdapter(DefaultAdapter):
    static_visibility = True  # visible_items() below: the same SQL every time
    currency = "GBP"  # carousels print £ before the amount

    def item_queryset(self) -> QuerySet:
        return Product.objects.select_related("category")

    def visible_items(self, queryset: QuerySet | None = None) -> QuerySet:
        qs = self.item_queryset() if queryset is None else queryset
        return qs.filter(is_active=True, stock__gt=0)

    def item_payload(self, item: Model) -> dict[str, Any]:
        return {
            "id": item.pk,
            "sku": item.sku,
            "name": item.name,
            "price": str(item.price),
            "category": item.category.name if item.category_id else None,
            "url": item.get_absolute_url(),
        }
