"""The click beacon: a tiny public endpoint that records which carousel entry was clicked."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import tracking
from .adapters import get_adapter
from .conf import get_item_model

CLICKS_PER_MINUTE = 60


@csrf_exempt  # sendBeacon cannot send a CSRF header; the worst forgery is one click event
@require_POST
def click(request: HttpRequest) -> HttpResponse:
    """``POST item=<pk>&source=<placement:vN>``: 204 when recorded or deliberately dropped."""
    visitor_id = get_adapter().get_visitor_id(request)
    if not _allow(f"recommendations:clicks:{visitor_id or request.META.get('REMOTE_ADDR')}"):
        return HttpResponse(status=429)
    item_id = request.POST.get("item", "")
    source = request.POST.get("source", "")[:100]
    if not item_id.isdigit() or not get_item_model()._default_manager.filter(pk=item_id).exists():
        return HttpResponse("unknown item", status=400, content_type="text/plain")
    try:
        tracking.record("click", int(item_id), request=request, source=source)
    except tracking.TrackingError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse(status=204)


def _allow(key: str, limit: int = CLICKS_PER_MINUTE) -> bool:
    """A fixed-window rate limit in the cache (shared across processes with Redis)."""
    cache.add(key, 0, 60)
    try:
        return cache.incr(key) <= limit
    except ValueError:  # expired between add and incr
        cache.set(key, 1, 60)
        return True
