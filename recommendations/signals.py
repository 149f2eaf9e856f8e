"""The signals a shop sends so that shoppers' actions reach the interaction log.

Each is sent by the shop's own view (``sender`` = the view class or function), with the
``request`` so that the visitor, the user agent and the opt-out can be read. The
receivers in :mod:`recommendations.receivers` turn them into
:func:`recommendations.tracking.record` calls, written after the transaction commits.
"""

from django.dispatch import Signal

#: A shopper opened an item's page.
#:
#: - ``request``: the ``HttpRequest`` (identifies the user or anonymous visitor).
#: - ``item``: the item instance (a ``RECOMMENDATIONS_ITEM_MODEL`` object).
#: - ``source`` (optional): the placement that led here, e.g. ``"home:for_you:v3"``.
item_viewed = Signal()

#: A shopper put an item in their cart.
#:
#: - ``request``: the ``HttpRequest``.
#: - ``item``: the item instance.
#: - ``quantity``: how many were added (a positive int).
#: - ``source`` (optional): the placement that led here.
item_added_to_cart = Signal()

#: A shopper took an item out of their cart (or lowered its quantity).
#:
#: - ``request``: the ``HttpRequest``.
#: - ``item``: the item instance.
#: - ``quantity``: how many were removed (a positive int).
item_removed_from_cart = Signal()

#: An order was paid. Send it inside the checkout's transaction: the purchase events
#: are written only if it commits.
#:
#: - ``request``: the ``HttpRequest`` (may be ``None`` for a payment webhook).
#: - ``order``: the shop's order object (only its ``pk`` is read, for idempotency).
#: - ``user``: the buyer (a user instance, or ``None`` for a guest checkout).
#: - ``lines``: an iterable of ``(item, quantity, value)`` tuples, ``value`` being the
#:   line's total price (a ``Decimal``) or ``None``.
order_paid = Signal()
