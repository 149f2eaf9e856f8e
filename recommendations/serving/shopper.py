"""Who a list is being built for, while :func:`serve.serve` builds it.

Item lists (similar, bought together, trending, popular) take an item, not a shopper; the
exclusion policy still hides what *this* shopper bought. ``serve()`` runs each build inside
:func:`building_for`, so those lists read the shopper from here instead of every tag and API
view passing it down. Outside ``serve()`` (a direct call, the admin's preview) nobody is
known and nothing is hidden, unless the caller names a shopper itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest

_current: ContextVar[tuple[Any, str | None, HttpRequest | None] | None] = ContextVar(
    "recommendations_shopper", default=None
)


@contextmanager
def building_for(
    user: Any = None, visitor_id: str | None = None, request: HttpRequest | None = None
) -> Iterator[None]:
    token = _current.set((user, visitor_id or None, request))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> tuple[Any, str | None]:
    """``(user, visitor_id)`` of the list being built, ``(None, None)`` when unknown."""
    state = _current.get()
    return (state[0], state[1]) if state is not None else (None, None)


def mark_personal() -> None:
    """The list being built depends on who asks: the response must not be shared (the
    visitor middleware marks it ``private`` and ``Vary``s it on the shopper)."""
    state = _current.get()
    request = state[2] if state is not None else None
    if request is not None:
        request.recommendations_personal = True
