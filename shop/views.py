"""The demo shop's pages. Each sends the `recommendations` signal for what it does."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_cookie

from recommendations import signals

from .cart import Cart
from .forms import QuantityForm, SignUpForm
from .models import Category, Order, OrderLine, Product

PAGE_SIZE = 24
#: One shopper's own page (their cart, their orders): no shared cache may keep it.
personal_page = cache_control(private=True)


def home(request: HttpRequest) -> HttpResponse:
    bestsellers = cache.get_or_set("shop:bestsellers", _bestseller_ids, timeout=600)
    products = Product.objects.available().select_related("category").in_bulk(bestsellers)
    return render(
        request,
        "shop/home.html",
        {
            "bestsellers": [products[pk] for pk in bestsellers if pk in products][:12],
            "categories": Category.objects.all(),
        },
    )


def _bestseller_ids() -> list[int]:
    return list(
        OrderLine.objects.values("product")
        .annotate(orders=Count("order", distinct=True))
        .order_by("-orders")
        .values_list("product", flat=True)[:48]
    )


def _text_param(request: HttpRequest, name: str, limit: int = 100) -> str:
    """A query-string value as plain text: NUL removed (PostgreSQL refuses it), truncated."""
    return request.GET.get(name, "").replace("\x00", "").strip()[:limit]


def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(is_active=True).select_related("category")
    query = _text_param(request, "q")
    if query:
        for word in query.split()[:8]:
            products = products.filter(Q(name__icontains=word) | Q(sku__iexact=word))
    category = None
    if slug := _text_param(request, "category"):
        category = get_object_or_404(Category, slug=slug)
        products = products.filter(category=category)
    page = Paginator(products.order_by("name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "shop/product_list.html",
        {
            "page": page,
            "query": query,
            "category": category,
            "categories": Category.objects.all(),
        },
    )


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("category"), pk=pk, is_active=True)
    source = _text_param(request, "src")
    signals.item_viewed.send(sender=product_detail, request=request, item=product, source=source)
    return render(
        request,
        "shop/product_detail.html",
        {"product": product, "source": source, "in_cart": Cart(request).quantity_of(product.pk)},
    )


@require_POST
def cart_add(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk, is_active=True)
    form = QuantityForm(request.POST)
    if not form.is_valid() or form.cleaned_data["quantity"] < 1:
        messages.error(request, "Please choose a quantity of at least 1.")
        return redirect(product)
    added = Cart(request).add(product, form.cleaned_data["quantity"])
    if added:
        signals.item_added_to_cart.send(
            sender=cart_add,
            request=request,
            item=product,
            quantity=added,
            source=form.cleaned_data["source"],
        )
        messages.success(request, f"Added {added} × {product.name} to your cart.")
    else:
        messages.warning(request, f"Sorry, no more {product.name} in stock.")
    return redirect("cart")


@require_POST
def cart_update(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk)
    form = QuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please enter a quantity between 0 and 999.")
        return redirect("cart")
    change = Cart(request).set_quantity(product, form.cleaned_data["quantity"])
    if change > 0:
        signals.item_added_to_cart.send(
            sender=cart_update, request=request, item=product, quantity=change
        )
    elif change < 0:
        signals.item_removed_from_cart.send(
            sender=cart_update, request=request, item=product, quantity=-change
        )
    return redirect("cart")


@require_POST
def cart_remove(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk)
    removed = Cart(request).remove(product)
    if removed:
        signals.item_removed_from_cart.send(
            sender=cart_remove, request=request, item=product, quantity=removed
        )
        messages.info(request, f"Removed {product.name} from your cart.")
    return redirect("cart")


@personal_page
@vary_on_cookie
def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    lines = cart.lines()
    return render(
        request,
        "shop/cart.html",
        {"lines": lines, "total": sum((line.total for line in lines), 0)},
    )


class OutOfStock(Exception):
    pass


@login_required
def checkout(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    lines = cart.lines()
    if not lines:
        messages.info(request, "Your cart is empty.")
        return redirect("cart")
    if request.method != "POST":
        total = sum((line.total for line in lines), 0)
        return render(request, "shop/checkout.html", {"lines": lines, "total": total})
    try:
        order = _place_order(request, cart)
    except OutOfStock as exc:
        messages.error(request, str(exc))
        return redirect("cart")
    cart.clear()
    messages.success(request, f"Thank you! Order {order.number} is paid.")
    return redirect("order-detail", number=order.number)


def _place_order(request: HttpRequest, cart: Cart) -> Order:
    """Creates the order, its lines and the stock movements in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        quantities = {int(pk): qty for pk, qty in cart.items.items()}
        products = Product.objects.select_for_update().in_bulk(list(quantities))
        for pk, qty in quantities.items():
            product = products.get(pk)
            if product is None or not product.is_active or product.stock < qty:
                name = product.name if product else "an item"
                raise OutOfStock(f"Sorry, not enough {name} in stock; please update your cart.")
        order = Order.objects.create(
            number=f"W{now:%y%m%d}{secrets.token_hex(4).upper()}",
            user=request.user,
            status=Order.Status.PAID,
            created_at=now,
            paid_at=now,
        )
        order_lines = OrderLine.objects.bulk_create(
            OrderLine(
                order=order, product=products[pk], quantity=qty, unit_price=products[pk].price
            )
            for pk, qty in quantities.items()
        )
        for pk, qty in quantities.items():
            Product.objects.filter(pk=pk).update(stock=F("stock") - qty)
        order.total = sum((line.line_total for line in order_lines), 0)
        order.save(update_fields=["total"])
        signals.order_paid.send(
            sender=checkout,
            request=request,
            order=order,
            user=request.user,
            lines=[(line.product, line.quantity, line.line_total) for line in order_lines],
        )
    return order


@login_required
@personal_page
@vary_on_cookie
def order_list(request: HttpRequest) -> HttpResponse:
    orders = (
        Order.objects.filter(user=request.user)
        .annotate(items=Sum("lines__quantity"))
        .order_by("-created_at")
    )
    page = Paginator(orders, 20).get_page(request.GET.get("page"))
    return render(request, "shop/order_list.html", {"page": page})


@login_required
@personal_page
@vary_on_cookie
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = get_object_or_404(Order, number=number, user=request.user)
    lines = order.lines.select_related("product")
    return render(request, "shop/order_detail.html", {"order": order, "lines": lines})


def signup(request: HttpRequest) -> HttpResponse:
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}!")
        target = request.GET.get("next", "")
        safe = url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return redirect(target if safe else "home")
    return render(request, "registration/signup.html", {"form": form})
