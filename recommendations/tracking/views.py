"""The click beacon: a tiny public endpoint that records which carousel entry was clicked."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..conf import get_item_model
from . import recording
from .keys import is_pk_text
from .origin import is_cross_site
from .ratelimit import client_address, count_in_window

CLICKS_PER_MINUTE = 60


@csrf_exempt  # sendBeacon cannot send a CSRF header: cross-site posts are refused instead
@require_POST
def click(request: HttpRequest) -> HttpResponse:
    """``POST item=<pk>&source=<placement:vN>``: 204 when recorded or deliberately dropped;
    403 when the browser says another site sent it (:mod:`.origin`)."""
    if is_cross_site(request):
        return HttpResponse("cross-site click refused", status=403, content_type="text/plain")
    # Per address: a client without a cookie gets a new visitor id on every request.
    key = f"recommendations:clicks:{client_address(request)}"
    if count_in_window(cache, key, 60) > CLICKS_PER_MINUTE:
        return HttpResponse(status=429)
    item_id = request.POST.get("item", "")
    source = request.POST.get("source", "")[:100]
    if not is_pk_text(item_id) or not get_item_model()._default_manager.filter(pk=item_id).exists():
        return HttpResponse("unknown item", status=400, content_type="text/plain")
    try:
        recording.record("click", int(item_id), request=request, source=source)
    except recording.TrackingError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    return HttpResponse(status=204)

