""""Not interested": the items a shopper dismissed leave every list served to them.

Personal lists know their shopper and hide the set themselves; lists that are not personal
(similar, bought together, popular, trending) learn who is looking from :func:`hiding`,
which :func:`serve.serve` wraps around every list, and :func:`assemble.finish` excludes
:func:`hidden`, so the next candidates fill the place.

The set is one indexed query per shopper, kept in the cache until the shopper dismisses
something else (the write side drops the key: ``tracking.storage.invalidate``) and read
once per request. A browser's anonymous visitor who never dismissed anything costs no query
at all: the endpoint leaves a cookie (:data:`HINT_COOKIE`) on the browsers that did, and
only those (and signed-in users and apps, who may have dismissed elsewhere) are looked up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest

from .. import cache_keys
from ..conf import app_settings
from ..models import Event, Interaction
from . import request
from .history import signed_in_id

#: The cookie the feedback endpoint sets on a browser whose anonymous visitor dismissed
#: something: a browser without it has nothing to hide, and its pages read nothing more.
HINT_COOKIE = "rec_dismissed"

#: Inside :func:`hiding`: the shopper served, and what they dismissed.
_served: ContextVar[tuple[tuple[int | None, str], frozenset[int]] | None] = ContextVar(
    "recommendations_dismissed", default=None
)


def dismissed(user: Any = None, visitor_id: str | None = None) -> frozenset[int]:
    """The items this shopper said "not interested" in (a signed-in user's own, else the
    anonymous visitor's); empty for nobody."""
    user_id = signed_in_id(user)
    if user_id is None and not visitor_id:
        return frozenset()
    who = (user_id, "" if user_id is not None else visitor_id or "")
    served = _served.get()
    if served is not None and served[0] == who:
        return served[1]
    key = cache_keys.dismissed(user_id, visitor_id)
    return request.remembered(("dismissed", key), lambda: _cached(key, user_id, visitor_id))


def _cached(key: str, user_id: int | None, visitor_id: str | None) -> frozenset[int]:
    items = cache.get(key)
    if items is None:
        rows = (
            Interaction.objects.filter(user_id=user_id)
            if user_id is not None
            else Interaction.objects.filter(visitor_id=visitor_id, user__isnull=True)
        )
        items = tuple(
            sorted(
                set(
                    rows.filter(event=Event.NOT_INTERESTED)
                    .order_by()
                    .values_list("item_id", flat=True)
                )
            )
        )
        cache.set(key, items, app_settings.VISITOR_CACHE_SECONDS)
    return frozenset(items)


def _nothing_dismissed(http_request: HttpRequest | None, user_id: int | None) -> bool:
    """A browser's anonymous visitor (known by the cookie, not an app's header) that never
    dismissed anything: the feedback endpoint would have left :data:`HINT_COOKIE`."""
    if http_request is None or user_id is not None:
        return False
    headers = getattr(http_request, "headers", None)
    cookies = getattr(http_request, "COOKIES", None)
    if headers is None or cookies is None or headers.get("X-Visitor-Id"):
        return False
    return HINT_COOKIE not in cookies


@contextmanager
def hiding(
    user: Any = None, visitor_id: str | None = None, http_request: HttpRequest | None = None
) -> Iterator[frozenset[int]]:
    """Inside the block, every list leaves out what this shopper dismissed."""
    user_id = signed_in_id(user)
    who = (user_id, "" if user_id is not None else visitor_id or "")
    if _nothing_dismissed(http_request, user_id):
        items: frozenset[int] = frozenset()
    else:
        items = dismissed(user, visitor_id)
    token = _served.set((who, items))
    try:
        yield items
    finally:
        _served.reset(token)


def hidden() -> frozenset[int]:
    """What the shopper being served dismissed (empty outside :func:`hiding`)."""
    served = _served.get()
    return served[1] if served is not None else frozenset()
