"""Merchandising rules, applied last to every list (pins, exclusions, boosts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .services import Recommendation


def apply_rules(placement: str, items: list[Recommendation]) -> list[Recommendation]:
    """No rules configured yet: the list as it is."""
    return items
