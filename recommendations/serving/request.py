"""What the current request has read already, so a page's carousels read it once.

Two per-request memos (None outside requests), set on ``request_started`` and dropped on
``request_finished``: shared values (the catalogue epoch, the active version, the rules in
force per placement) and the visibility of items read from the database. A page with three
carousels then asks the cache and the database once, not three times.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from django.core.signals import request_finished, request_started
from django.dispatch import receiver

T = TypeVar("T")

_state: ContextVar[dict[Any, Any] | None] = ContextVar(
    "recommendations_request_state", default=None
)
_visibility: ContextVar[dict[Any, bool] | None] = ContextVar(
    "recommendations_visibility", default=None
)


def remembered(key: Any, compute: Callable[[], T]) -> T:
    """``compute()``, once per request for ``key`` (every time outside a request)."""
    state = _state.get()
    if state is not None and key in state:
        return state[key]
    value = compute()
    if state is not None:
        state[key] = value
    return value


def remember(key: Any, value: Any) -> None:
    """Replace what this request holds for ``key`` (no-op outside a request)."""
    state = _state.get()
    if state is not None:
        state[key] = value


def visibility() -> dict[Any, bool] | None:
    """Visibility this request read so far (item id -> visible), or None outside one."""
    return _visibility.get()


def remember_visibility(read: dict[Any, bool]) -> None:
    memo = _visibility.get()
    if memo is not None:
        memo.update(read)


def forget_visibility() -> None:
    """This process changed the catalogue: what the request read may be stale."""
    if _visibility.get() is not None:
        _visibility.set({})


@receiver(request_started, dispatch_uid="recommendations.serving.request_started")
def _request_started(**kwargs: Any) -> None:
    _visibility.set({})
    _state.set({})


@receiver(request_finished, dispatch_uid="recommendations.serving.request_finished")
def _request_finished(**kwargs: Any) -> None:
    _visibility.set(None)
    _state.set(None)
