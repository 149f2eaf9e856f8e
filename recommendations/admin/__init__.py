"""Admin screens, one module per screen: the logs, model versions, merchandising rules, the
product panel (a mixin a shop adds to its own item admin), experiments, the dashboard and the
customers at risk."""

from . import (  # noqa: F401
    customers,
    dashboard,
    experiments,
    logs,
    merchandising,
    product,
    versions,
)
from .base import CheckedSelectionAdmin
from .product import RelatedItemsPanelMixin

__all__ = ["CheckedSelectionAdmin", "RelatedItemsPanelMixin"]
