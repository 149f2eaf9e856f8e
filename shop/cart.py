"""A cart kept in the session: {product id: quantity}. Prices are read fresh, never stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from .models import Product

SESSION_KEY = "cart"
MAX_QUANTITY = 999


@dataclass
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    def __init__(self, request: HttpRequest) -> None:
        self.session = request.session
        self.items: dict[str, int] = dict(self.session.get(SESSION_KEY, {}))

    def quantity_of(self, product_id: int) -> int:
        return self.items.get(str(product_id), 0)

    def add(self, product: Product, quantity: int = 1) -> int:
        """Adds up to the stock; returns how many were really added."""
        current = self.quantity_of(product.pk)
        new = min(current + quantity, product.stock, MAX_QUANTITY)
        self._set(product.pk, new)
        return max(new - current, 0)

    def set_quantity(self, product: Product, quantity: int) -> int:
        """Sets the quantity (0 removes); returns the signed change."""
        current = self.quantity_of(product.pk)
        new = max(0, min(quantity, product.stock, MAX_QUANTITY))
        self._set(product.pk, new)
        return new - current

    def remove(self, product: Product) -> int:
        current = self.quantity_of(product.pk)
        self._set(product.pk, 0)
        return current

    def clear(self) -> None:
        self.items = {}
        self.session[SESSION_KEY] = {}

    def _set(self, product_id: int, quantity: int) -> None:
        if quantity > 0:
            self.items[str(product_id)] = quantity
        else:
            self.items.pop(str(product_id), None)
        self.session[SESSION_KEY] = self.items

    def lines(self) -> list[CartLine]:
        products = Product.objects.in_bulk([int(pk) for pk in self.items])
        return [
            CartLine(products[int(pk)], qty)
            for pk, qty in self.items.items()
            if int(pk) in products
        ]

    def __iter__(self) -> Iterator[CartLine]:
        return iter(self.lines())

    def __len__(self) -> int:
        return sum(self.items.values())

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines()), Decimal("0"))
