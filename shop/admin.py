from django.contrib import admin

from recommendations.admin import CheckedSelectionAdmin, RelatedItemsPanelMixin

from .models import Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(CheckedSelectionAdmin):
    list_display = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Product)
class ProductAdmin(RelatedItemsPanelMixin, CheckedSelectionAdmin):
    """The catalogue, with the recommendations panel and hand-picked related items."""

    list_display = ("sku", "name", "category", "price", "stock", "is_active")
    list_filter = ("is_active", "category")
    search_fields = ("sku", "name")
    list_editable = ("stock", "is_active")
    list_select_related = ("category",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    raw_id_fields = ("product",)
    extra = 0


@admin.register(Order)
class OrderAdmin(CheckedSelectionAdmin):
    list_display = ("number", "user", "status", "total", "created_at")
    list_filter = ("status",)
    search_fields = ("number", "user__username")
    raw_id_fields = ("user",)
    inlines = [OrderLineInline]
    show_full_result_count = False
