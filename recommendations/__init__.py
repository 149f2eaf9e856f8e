"""A recommendation engine that lives inside a Django shop.

Add ``"recommendations"`` to ``INSTALLED_APPS``, set ``RECOMMENDATIONS_ITEM_MODEL`` and
send the signals of :mod:`recommendations.signals` from the shop's views.
"""

__version__ = "0.1.0"
