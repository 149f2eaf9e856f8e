"""Fixed-window rate limits keyed on who a client provably is: its user, else its address.

Shared by the click beacon and the API's throttles. The address is the one DRF's throttles
trust: ``REMOTE_ADDR``, or the right ``X-Forwarded-For`` hop when ``NUM_PROXIES`` says how
many proxies stand in front of the site.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_address(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it (honours ``NUM_PROXIES``)."""
    return BaseThrottle().get_ident(request)


def count_in_window(cache: Any, key: str, seconds: int) -> int:
    """This request's number in its window: the counter under ``key``, created by the
    window's first request with a timeout of ``seconds`` (``incr`` keeps that timeout in
    Redis and local memory; atomic in Redis, per process in local memory)."""
    if cache.add(key, 1, seconds):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens a new window
        cache.set(key, 1, seconds)
        return 1
