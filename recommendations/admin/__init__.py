"""Admin screens, one module per screen: the logs, model versions, merchandising rules, the
product panel (a mixin a shop adds to its own item admin), experiments and the dashboard."""

from . import dashboard, experiments, logs, merchandising, product, versions  # noqa: F401
from .base import CheckedSelectionAdmin
from .product import RelatedItemsPanelMixin

__all__ = ["CheckedSelectionAdmin", "RelatedItemsPanelMixin"]
