"""``{% load recommendations_admin %}``: small formatting filters for the admin's pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def pct(value: float | None, digits: int = 2) -> str:
    """0.01234 -> "1.23%"; None -> an en dash."""
    if value is None:
        return "\u2013"
    return f"{value:.{int(digits)}%}"
